"""The mock's shared, thread-safe state: the bounded record of received requests (credentials
redacted to sha256 prefixes), also kept per tag (a test's `x-mock-test-id` header, else the
provider key's sha12) so a test can read back every request it caused however many others ran,
and the scripted fault rules tests install via /_mock/faults."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from typing import Any

from .common import sha12

MAX_RECORDS = 10_000
PER_TAG = 64          # the last requests kept per tag
MAX_TAGS = 1_000      # tags kept, least recently used dropped first
TEST_ID_HEADER = "x-mock-test-id"
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key",
                      "x-amz-security-token", "cookie"}
LEAK_MARK = "sk-weir-"


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Credential values become sha12 of the secret (the token after 'Bearer ' for bearer auth).
    A SigV4 authorization header carries no secret and is kept, so tests can read its scope."""
    out = {}
    for name, value in headers.items():
        if name == "authorization" and value.startswith("AWS4-HMAC-SHA256"):
            out[name] = value
        elif name in CREDENTIAL_HEADERS or LEAK_MARK in value:
            secret = value[7:].strip() if value[:7].lower() == "bearer " else value
            out[name] = sha12(secret)
        else:
            out[name] = value
    return out


def tag_of(entry: dict) -> str | None:
    """A request's tag: the test id it carries, else its provider key's sha12 ("key:<sha12>")."""
    test_id = (entry.get("headers") or {}).get(TEST_ID_HEADER)
    if test_id:
        return test_id
    return f"key:{entry['key_sha12']}" if entry.get("key_sha12") else None


class Recorder:
    """Every request in arrival order (the last MAX_RECORDS), and the last PER_TAG per tag for
    at most MAX_TAGS tags: memory stays bounded whatever the tests send."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[dict] = deque(maxlen=MAX_RECORDS)
        self._tags: OrderedDict[str, deque[dict]] = OrderedDict()
        self._seq = 0

    def add(self, entry: dict) -> None:
        tag = tag_of(entry)
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            entry["time"] = time.time()
            entry["tag"] = tag
            self._items.append(entry)
            if tag is not None:
                self._tags.setdefault(tag, deque(maxlen=PER_TAG)).append(entry)
                self._tags.move_to_end(tag)
                while len(self._tags) > MAX_TAGS:
                    self._tags.popitem(last=False)

    def all(self) -> list[dict]:
        with self._lock:
            return list(self._items)

    def tagged(self, tag: str) -> list[dict]:
        """The last PER_TAG requests with this tag, oldest first."""
        with self._lock:
            return list(self._tags.get(tag, ()))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._tags.clear()


class Faults:
    """Ordered rules; the first that matches a request applies (and uses up one of its 'times')."""
    KEYS = {"provider", "host", "key_sha12", "status", "headers", "body", "times", "delay_ms",
            "truncate_stream_after", "stream_error_after", "stream_error_body", "chunk_delay_ms"}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[dict] = []

    def set(self, rules: Any) -> None:
        if isinstance(rules, dict):
            rules = [rules]
        if not isinstance(rules, list):
            raise ValueError("faults must be a JSON list of rules")
        for r in rules:
            if not isinstance(r, dict) or not isinstance(r.get("status"), int):
                raise ValueError(f"each rule needs an integer 'status': {r!r}")
            unknown = set(r) - self.KEYS
            if unknown:
                raise ValueError(f"unknown rule keys {sorted(unknown)}")
        with self._lock:
            self._rules.extend(dict(r) for r in rules)

    def list(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def match(self, provider: str, host: str, key_sha12: str | None) -> dict | None:
        with self._lock:
            for rule in self._rules:
                if "provider" in rule and rule["provider"] != provider:
                    continue
                if "host" in rule and not (host == rule["host"].lower() or host.startswith(rule["host"].lower())):
                    continue
                if "key_sha12" in rule and rule["key_sha12"] != key_sha12:
                    continue
                if "times" in rule:
                    if rule["times"] <= 0:
                        continue
                    rule["times"] -= 1
                return dict(rule)
        return None
