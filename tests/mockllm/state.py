"""The mock's shared, thread-safe state: the bounded record of received requests (credentials
redacted to sha256 prefixes) and the scripted fault rules tests install via /_mock/faults."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from .common import sha12

MAX_RECORDS = 10_000
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


class Recorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[dict] = deque(maxlen=MAX_RECORDS)
        self._seq = 0

    def add(self, entry: dict) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            entry["time"] = time.time()
            self._items.append(entry)

    def all(self) -> list[dict]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


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
