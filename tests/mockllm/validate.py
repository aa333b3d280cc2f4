"""Strict validation of request bodies against the providers' published types (pydantic models,
TypedDicts, botocore shapes, JSON Schema); every mismatch comes back as a 'location: message' string.

Strict means what the wire says, not what it can be coerced to: pydantic runs in strict mode, so
`"0.5"` is not a number, `"100"` and `64.0` are not integers and `"false"` is not a boolean; types
with enums and bytes (google-genai) are validated from the JSON text, where strict mode still
takes enum values and base64 strings. Unknown keys are refused at every level."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any, Iterable, Tuple

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

MAX_ERRORS = 12
_FORBID = ConfigDict(extra="forbid", strict=True)
# the (private) class pydantic returns for a validated Iterable[...]
ValidatorIterator = type(TypeAdapter(Iterable[int]).validate_python([]))


def _prune_unions(errs: list[dict]) -> list[dict]:
    """A failed union reports every branch; keep the branches whose discriminator matched
    (no literal_error on 'type'/'role'), so the message names the real problem."""
    def branch(e: dict) -> tuple:
        loc = tuple(e.get("loc", ()))
        idx = [i for i, p in enumerate(loc) if isinstance(p, str) and p[:1].isupper()]
        return loc[: idx[-1] + 1] if idx else ()

    wrong = {branch(e) for e in errs if e.get("type") == "literal_error"
             and tuple(e.get("loc", ()))[-1:] in (("type",), ("role",))}
    kept = [e for e in errs if branch(e) == () or branch(e) not in wrong]
    return kept or errs


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _fmt(err: dict, prefix: tuple = ()) -> str:
    loc = ".".join(str(p) for p in prefix + tuple(err.get("loc", ())))
    return f"{loc or '<body>'}: {err.get('msg')}"


def _errors(exc: ValidationError, prefix: tuple = ()) -> list[str]:
    return [_fmt(e, prefix) for e in _prune_unions(exc.errors(include_url=False))[:MAX_ERRORS]]


def _drain(value: Any, loc: tuple, out: list[str]) -> Any:
    """Pydantic validates Iterable[...] lazily: consume every iterator so its items are checked."""
    if isinstance(value, ValidatorIterator):
        items, it, i = [], iter(value), 0
        while True:
            try:
                item = next(it)
            except StopIteration:
                break
            except ValidationError as exc:
                out.extend(_errors(exc, loc))  # pydantic's loc already starts with the index
                break
            items.append(_drain(item, loc + (i,), out))
            i += 1
        return items
    if isinstance(value, dict):
        return {k: _drain(v, loc + (k,), out) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_drain(v, loc + (i,), out) for i, v in enumerate(value)]
    return value


@functools.lru_cache(maxsize=None)
def _strict_adapter(tp: Any) -> TypeAdapter:
    # A TypedDict cannot take a config itself; wrapped in a tuple the config applies to it and,
    # through pydantic's config stack, to every nested TypedDict without a config of its own.
    return TypeAdapter(Tuple[tp], config=_FORBID)


def typed_dict(tp: Any, data: Any, prefix: tuple = ()) -> list[str]:
    """Validate against a TypedDict (or union of them), rejecting keys it does not declare."""
    if not isinstance(data, dict):
        return [f"{'.'.join(map(str, prefix)) or '<body>'}: must be a JSON object"]
    try:
        result = _strict_adapter(tp).validate_python((data,), strict=True, extra="forbid")
    except ValidationError as exc:
        # drop the tuple index pydantic puts first
        errs = [dict(e, loc=tuple(e["loc"])[1:]) for e in exc.errors(include_url=False)]
        return [_fmt(e, prefix) for e in _prune_unions(errs)[:MAX_ERRORS]]
    out: list[str] = []
    _drain(result[0], prefix, out)
    return out


def model(cls: type[BaseModel], data: Any, prefix: tuple = ()) -> list[str]:
    """Validate against a pydantic model, forbidding unknown keys at every level."""
    try:
        cls.model_validate(data, strict=True, extra="forbid")  # nested models too
    except ValidationError as exc:
        return _errors(exc, prefix)
    return []


@functools.lru_cache(maxsize=None)
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def of_type(tp: Any, data: Any, prefix: tuple = ()) -> list[str]:
    """Validate against any type whose models already forbid extras (google-genai)."""
    try:
        _adapter(tp).validate_json(_json(data), strict=True, extra="forbid")
    except ValidationError as exc:
        return _errors(exc, prefix)
    return []


def unknown_keys(data: dict, allowed: set[str], prefix: tuple = ()) -> list[str]:
    return [f"{'.'.join(map(str, prefix + (k,)))}: Extra inputs are not permitted" for k in data if k not in allowed]


# --- botocore --------------------------------------------------------------------------------

def botocore_input(shape: Any, data: Any, loc: str = "") -> tuple[Any, list[str]]:
    """Turn a JSON wire body into botocore input params: base64 blob members become bytes.
    Document members are left alone; everything else is copied as is for ParamValidator."""
    errors: list[str] = []

    def walk(sh: Any, value: Any, where: str) -> Any:
        if sh.type_name == "blob" and isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                errors.append(f"{where}: blob is not valid base64")
                return value
        if sh.type_name == "structure" and isinstance(value, dict) and not sh.metadata.get("document"):
            return {k: (walk(sh.members[k], v, f"{where}.{k}") if k in sh.members else v) for k, v in value.items()}
        if sh.type_name == "list" and isinstance(value, list):
            return [walk(sh.member, v, f"{where}[{i}]") for i, v in enumerate(value)]
        if sh.type_name == "map" and isinstance(value, dict):
            return {k: walk(sh.value, v, f"{where}.{k}") for k, v in value.items()}
        return value

    return walk(shape, data, loc or "<body>"), errors


def botocore_constraints(shape: Any, data: Any, loc: str = "") -> list[str]:
    """What botocore's ParamValidator leaves to the service: enum values and minimum list lengths
    (in the wording of Bedrock's ValidationException)."""
    errors: list[str] = []

    def walk(sh: Any, value: Any, where: str) -> None:
        enum = getattr(sh, "enum", None)
        if enum and isinstance(value, str) and value not in enum:
            errors.append(f"{where}: Value '{value}' failed to satisfy constraint: Member must satisfy enum "
                          f"value set: [{', '.join(enum)}]")
        if sh.type_name == "structure" and isinstance(value, dict) and not sh.metadata.get("document"):
            for k, v in value.items():
                if k in sh.members:
                    walk(sh.members[k], v, f"{where}.{k}")
        elif sh.type_name == "list" and isinstance(value, list):
            least = sh.metadata.get("min", 0)
            if len(value) < least:
                errors.append(f"{where}: Member must have length greater than or equal to {least}")
            for i, v in enumerate(value):
                walk(sh.member, v, f"{where}.{i}")
        elif sh.type_name == "map" and isinstance(value, dict):
            for k, v in value.items():
                walk(sh.value, v, f"{where}.{k}")

    walk(shape, data, loc or "<body>")
    return errors[:MAX_ERRORS]


# --- JSON Schema (a provider's published OpenAPI reference) -----------------------------------

@functools.lru_cache(maxsize=None)
def _schema_validator(path: str, root: str):
    import jsonschema

    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    # JSON Schema counts 64.0 as an integer; the wire contract is a JSON integer literal.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    return cls({"$defs": doc["$defs"], "$ref": f"#/$defs/{root}"})


def json_schema(path: str, root: str, data: Any) -> list[str]:
    """Validate against schema `root` of a trimmed OpenAPI document (`$defs` of its schemas)."""
    import jsonschema

    out = []
    for err in sorted(_schema_validator(path, root).iter_errors(data), key=lambda e: list(e.absolute_path)):
        best = jsonschema.exceptions.best_match([err])
        loc = ".".join(str(p) for p in best.absolute_path) or "<body>"
        out.append(f"{loc}: {best.message}")
    return out[:MAX_ERRORS]


def botocore_params(shape: Any, params: Any) -> list[str]:
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, shape)
    if not report.has_errors():
        return []
    text = report.generate_report()
    return [line.strip() for line in text.splitlines()[1:] if line.strip()][:MAX_ERRORS] or [text]
