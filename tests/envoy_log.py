"""The one check for a wasm VM that trapped or panicked, read from an Envoy log: used after every
test for every Envoy the tests start (conftest.start_envoy registers them) and by the soak.

Call order: `watch(log)` when an Envoy starts; `new_trap_lines()` after each test reads only what
each watched log gained since the last call, so a trap fails the test during which it happened."""

from __future__ import annotations

import re
import threading

# What V8, the proxy-wasm host and Rust print when a VM dies: V8's own "Uncaught RuntimeError:
# unreachable" (a Rust panic compiled to wasm ends in `unreachable`), the host's
# "Function: proxy_on_... failed: ...", the Rust panic message, and "wasm trap" wordings.
TRAP = re.compile(r"uncaught runtimeerror|function: \S+ failed|panicked|wasm trap|wasm_trap", re.IGNORECASE)

_lock = threading.Lock()
_offsets: dict[str, int] = {}


def trap_lines(text: str) -> list[str]:
    """Every line of `text` that reports a trap or a panic."""
    return [line for line in text.splitlines() if TRAP.search(line)]


def watch(log: str) -> None:
    """Check `log` from its start from now on (an Envoy writing there has just started)."""
    with _lock:
        _offsets[log] = 0


def new_trap_lines() -> dict[str, list[str]]:
    """Trap lines each watched log gained since the last call, by log path (empty when none)."""
    found: dict[str, list[str]] = {}
    with _lock:
        for log, offset in _offsets.items():
            try:
                with open(log, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            cut = data.rfind(b"\n") + 1  # an unfinished last line is read next time, whole
            _offsets[log] = offset + cut
            lines = trap_lines(data[:cut].decode("utf-8", "replace"))
            if lines:
                found[log] = lines
    return found


def describe(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{log}:\n  " + "\n  ".join(lines[:10]) for log, lines in found.items())
