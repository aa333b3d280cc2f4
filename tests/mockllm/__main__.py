"""Command line: `python -m mockllm [--host 127.0.0.1] [--port N]` (port defaults to $WEIR_MOCK_PORT,
else 18000); serves every mock provider until interrupted."""

import argparse
import os
import signal
import sys

from .server import MockServer


def main() -> None:
    ap = argparse.ArgumentParser(prog="mockllm", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("WEIR_MOCK_PORT", "18000")))
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args()
    server = MockServer(args.host, args.port, args.verbose)
    # As a container's PID 1 (docker-compose.yaml) Python would ignore SIGTERM: `stop` would wait
    # out its timeout and then kill. Exit as on Ctrl-C instead.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"mockllm listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
