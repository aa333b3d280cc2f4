#!/usr/bin/env python3
"""scripts/bench's TensorZero peer: starts the Rust gateway that the `tensorzero` wheel embeds
(run with .venv-bench's Python), prints `BASE_URL <its OpenAI-compatible base URL>`, and serves
until it is sent SIGTERM.

    tensorzero_gateway.py CONFIG.toml

The wheel ships no separate gateway executable: the gateway's HTTP server runs on the Rust side
(its own tokio threads) while this thread only waits, so the process's CPU time is the gateway's.
Set TENSORZERO_DISABLE_PSEUDONYMOUS_USAGE_ANALYTICS=1; the config disables observability, so no
database is needed.
"""

import signal
import sys

import tensorzero


def main() -> None:
    gateway = tensorzero._start_http_gateway(config_file=sys.argv[1], clickhouse_url=None, postgres_url=None,
                                             valkey_url=None, async_setup=False)
    print(f"BASE_URL {gateway.base_url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
