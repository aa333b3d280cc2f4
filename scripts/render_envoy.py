#!/usr/bin/env python3
"""Renders an envoy/*.yaml for a run: its fixed ports (listener 10000, admin 9901, mock 18000, rate
limit service 8081, central-lb-front's replicas 10001-10003), the relative wasm path dist/weir.wasm
and the /dev/stdout access log become the given values. A port the file does not use is ignored.

    scripts/render_envoy.py envoy/demo.yaml [--port N] [--admin-port N] [--mock-port N]
                            [--rls-port N] [--replica-ports A,B,C]
                            [--wasm PATH] [--access-log PATH] [--out FILE]   -> prints the file written
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WASM = "dist/weir.wasm"


REPLICA_PORTS = (10001, 10002, 10003)


def render_text(text: str, port: int = 10000, admin_port: int = 9901, mock_port: int = 18000,
                wasm: str | None = None, access_log: str | None = None, rls_port: int = 8081,
                replica_ports: tuple[int, ...] = REPLICA_PORTS) -> str:
    wasm = os.path.abspath(wasm or os.path.join(ROOT, WASM))
    if "envoy.filters.http.wasm" in text:  # a plain Envoy (central-lb-front) loads no filter
        if f"filename: {WASM}" not in text:
            raise ValueError(f"no 'filename: {WASM}' to render")
        text = text.replace(f"filename: {WASM}", f"filename: {wasm}")
    if len(replica_ports) != len(REPLICA_PORTS):
        raise ValueError(f"replica_ports: give {len(REPLICA_PORTS)} ports")
    fixed_ports = ((10000, port), (9901, admin_port), (18000, mock_port), (8081, rls_port),
                   *zip(REPLICA_PORTS, replica_ports))
    # One pass, so a rendered port can never be rendered again as another fixed one.
    table = {str(fixed): str(new) for fixed, new in fixed_ports}
    text = re.sub(r"\bport_value: (\d+)\b",
                  lambda m: f"port_value: {table.get(m.group(1), m.group(1))}", text)
    if access_log:
        text = text.replace("path: /dev/stdout", f"path: {access_log}")
    return text


def render(src: str, out: str | None = None, **kw) -> str:
    """Renders src into out (default: a new temp file); returns out's path."""
    with open(src, encoding="utf-8") as f:
        text = render_text(f.read(), **kw)
    if out is None:
        fd, out = tempfile.mkstemp(prefix="weir-" + os.path.basename(src).rsplit(".", 1)[0] + "-", suffix=".yaml")
        os.close(fd)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("--port", type=int, default=10000)
    ap.add_argument("--admin-port", type=int, default=9901)
    ap.add_argument("--mock-port", type=int, default=18000)
    ap.add_argument("--rls-port", type=int, default=8081)
    ap.add_argument("--replica-ports", default=",".join(map(str, REPLICA_PORTS)),
                    help="central-lb-front's three replica ports, comma-separated")
    ap.add_argument("--wasm", help=f"default: the repo's {WASM}")
    ap.add_argument("--access-log", help="file for the access log instead of stdout")
    ap.add_argument("--out", help="default: a new temp file")
    a = ap.parse_args()
    print(render(a.src, a.out, port=a.port, admin_port=a.admin_port, mock_port=a.mock_port,
                 wasm=a.wasm, access_log=a.access_log, rls_port=a.rls_port,
                 replica_ports=tuple(int(p) for p in a.replica_ports.split(","))))


if __name__ == "__main__":
    main()
