"""Shared behaviour of every mock provider: word splitting, usage, the deterministic answer,
ids, embeddings, and the Request/Reply/Provider types the provider modules fill in."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

TOOL_WORD = re.compile(r"\btool\b", re.IGNORECASE)


def words(text: str) -> int:
    """Whitespace-separated words: the mock's token count."""
    return len(text.split())


def pieces(text: str) -> list[str]:
    """Split word by word, keeping the spaces, so that ''.join(pieces(t)) == t."""
    parts = re.findall(r"\s*\S+\s*", text)
    return parts or [text]


def halves(text: str) -> list[str]:
    """Two pieces (tool-call arguments stream in two deltas)."""
    mid = len(text) // 2
    return [text[:mid], text[mid:]]


def compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sha12(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def rand(n: int = 24, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def hexid(n: int = 32) -> str:
    return secrets.token_hex(n // 2)


def now() -> int:
    return int(time.time())


def embedding(text: str, dims: int = 8) -> list[float]:
    """Deterministic vector from the text's hash; every value is exact in float32."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 128) / 128.0 for b in digest[:dims]]


def embedding_b64(vec: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


def sse(obj: Any, event: str | None = None, eol: str = "\n") -> bytes:
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {compact(obj)}{eol}{eol}".encode()


def text_of(value: Any) -> str:
    """Text of a content value: a string, or a list of parts carrying 'text'."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


@dataclass
class Conversation:
    """What a provider module extracts from a request body."""
    texts: list[str] = field(default_factory=list)  # every prompt text (input usage)
    last_user: str = ""                             # last user message's text, as received
    tool_result: str | None = None                  # set when the last message is a tool result
    tool_name: str | None = None                    # first offered tool, None if none or choice "none"
    reasoning: bool = False                         # the request asks the model to reason
    schema: dict | None = None                      # structured output: its JSON schema ({}: any JSON)
    forced_schema: dict | None = None               # the schema of a tool the request forces


@dataclass
class Answer:
    text: str | None
    tool_name: str | None
    tool_args: dict | None
    input_tokens: int
    output_tokens: int
    reasoning: str | None = None                    # the model's reasoning, when asked to reason
    refusal: str | None = None                      # the model declines (providers that say so)

    @property
    def tool_json(self) -> str:
        return compact(self.tool_args)


REFUSAL = "I'm sorry, I can't help with that."


def mock_signature(text: str) -> str:
    """The mock's signature over reasoning it wrote: providers that check signatures on the way
    back (Anthropic, Gemini, Claude on Bedrock) recompute it, so an altered or forged block fails."""
    digest = hashlib.sha256(("weir-mock:" + text).encode()).digest()
    return base64.b64encode(digest).decode()


def fill(schema: Any, text: str) -> Any:
    """A value of `schema`: strings are `text`, numbers its word count, objects every property."""
    if not isinstance(schema, dict):
        return text
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    kind = kind.lower() if isinstance(kind, str) else kind  # Gemini's Schema spells types in capitals
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if not props:
            return {"echo": text}
        return {name: fill(sub, text) for name, sub in props.items()}
    if kind == "array":
        return [fill(schema.get("items") or {"type": "string"}, text)]
    if kind in ("integer", "number"):
        return words(text)
    if kind == "boolean":
        return True
    return text


def decide(conv: Conversation) -> Answer:
    """The mock's only 'model': echo the last user text, or call the first tool when asked to;
    with structured output the echo is a value of the schema; it reasons when asked to."""
    inp = sum(words(t) for t in conv.texts)
    reasoning = "thinking about: " + conv.last_user if conv.reasoning else None
    refusal = REFUSAL if conv.last_user.startswith("REFUSE") else None
    if conv.forced_schema is not None and conv.tool_name and conv.tool_result is None:
        args = fill(conv.forced_schema, conv.last_user)
        return Answer(None, conv.tool_name, args, inp, words(compact(args)), reasoning)
    if conv.tool_result is not None:
        text = "echo: " + conv.tool_result
    elif conv.tool_name and TOOL_WORD.search(conv.last_user):
        args = {"query": conv.last_user}
        return Answer(None, conv.tool_name, args, inp, words(compact(args)), reasoning)
    elif conv.schema is not None:
        text = compact(fill(conv.schema, conv.last_user))
    else:
        text = "echo: " + conv.last_user
    return Answer(text, None, None, inp, words(text), reasoning, refusal)


@dataclass
class Request:
    method: str
    path: str                 # raw (still percent-encoded) path without the query
    query: dict[str, str]
    query_string: str
    headers: dict[str, str]   # lower-case names
    raw: bytes
    body: Any                 # parsed JSON or None
    kind: str = "chat"        # chat | embed | generate | count
    model: str = ""
    stream: bool = False
    key: str | None = None    # the provider credential found (for key_sha12)

    @property
    def host(self) -> str:
        return self.headers.get("host", "").split(":")[0].lower()


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] | None = None  # a streamed reply when set

    @staticmethod
    def json(status: int, obj: Any, headers: dict[str, str] | None = None,
             content_type: str = "application/json") -> "Reply":
        return Reply(status, compact(obj).encode(), content_type, dict(headers or {}))


class Provider:
    """What differs per provider. Subclasses override what their wire format needs."""
    name = "?"
    stream_type = "text/event-stream"

    def authenticate(self, req: Request) -> Reply | None:
        """Set req.key; return an error reply when the credential is missing or wrong."""
        return None

    def validate(self, req: Request) -> list[str]:
        return []

    def conversation(self, req: Request) -> Conversation:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Reply:
        raise NotImplementedError

    def respond(self, req: Request, ans: Answer) -> Reply:
        raise NotImplementedError

    def embed(self, req: Request) -> Reply:
        return self.error(404, f"{self.name} has no embeddings endpoint here")

    def count(self, req: Request) -> Reply:
        return self.error(404, f"{self.name} has no token counting endpoint here")

    def stream_reply(self, chunks: Iterator[bytes], headers: dict[str, str] | None = None) -> Reply:
        return Reply(200, content_type=self.stream_type, headers=dict(headers or {}), chunks=chunks)
