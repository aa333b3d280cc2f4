"""Command line: `python -m rls --config FILE [--config FILE...] [--port 8081]
[--redis redis://127.0.0.1:6379/0] [--log FILE] [--clock-offset SECONDS]`: serves ShouldRateLimit
until interrupted. `--log` appends one JSON line per call (descriptors and hits as received, and
the verdict). `--clock-offset` shifts the service's clock, so tests can put themselves at the start
of a window instead of depending on when they run."""

import argparse
import sys
import time

from .server import ConfigError, load_config, serve


def main() -> None:
    ap = argparse.ArgumentParser(prog="rls", description=__doc__)
    ap.add_argument("--config", action="append", required=True,
                    help="envoyproxy/ratelimit-format YAML (one domain per file)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--log", help="file for one JSON line per call")
    ap.add_argument("--clock-offset", type=float, default=0.0,
                    help="seconds added to the wall clock when placing a request in its window")
    a = ap.parse_args()
    try:
        domains = load_config(a.config)
    except (ConfigError, OSError) as e:
        sys.exit(f"rls: invalid configuration: {e}")
    log = open(a.log, "a", encoding="utf-8") if a.log else None
    server, port = serve(a.port, domains, a.redis, log, a.host,
                         clock=lambda: time.time() + a.clock_offset)
    print(f"rls listening on {a.host}:{port}, domains {sorted(domains)}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=1)


if __name__ == "__main__":
    main()
