#!/usr/bin/env python3
"""scripts/soak's driver: the mock providers and Envoy running envoy/demo.yaml (--concurrency 2),
then N requests (default 20,000) at concurrency 64 from the official async SDKs (OpenAI,
Anthropic, Ollama; max_retries=0), mixed streaming and not, over every demo model. Each request
carries a unique message and must come back as `echo: <that message>` (zero mis-routed). Per-VM
wasm linear memory is read from /proc/<envoy pid>/smaps (as tests/bench/bench.py does) after the
first 2,000 requests and at the end, with no request in flight, to show it is flat. Prints a
summary; exits 1 on any lost, failed or mis-routed request, a wasm panic/trap in Envoy's log, or
linear memory growth. Every process it starts is stopped on exit.

    tests/soak/soak.py [--requests N] [--concurrency C] [--checkpoint N] [--deadline SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import anthropic
import httpx
import ollama
import openai

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import envoy_log  # noqa: E402  (tests/envoy_log.py: the trap check the tests use)
import render_envoy  # noqa: E402  (scripts/render_envoy.py)
from bench import Procs, envoy_binary, free_ports, rss_bytes, wasm_linear_memories  # noqa: E402

KEY = "sk-weir-demo"  # every model, no limits
MODELS = ["mock-openai", "mock-azure", "mock-anthropic", "mock-gemini", "mock-bedrock", "mock-ollama",
          "mock-mistral", "mock-vllm", "mock-failover"]
PROTOCOLS = ("openai", "anthropic", "ollama")
TIMEOUT = 30.0
# Linear memory may grow by at most this much between the checkpoints (all VMs together).
MAX_GROWTH = 1 << 20

for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN",
             "ANTHROPIC_BASE_URL", "OLLAMA_API_KEY", "OLLAMA_HOST"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def wait_ready(check, what: str, proc: subprocess.Popen, procs: Procs, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{procs.log_tail(name)}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n{procs.log_tail(name)}")
        time.sleep(0.1)


def start(procs: Procs, workdir: str) -> tuple[subprocess.Popen, str, str]:
    """Starts the mock and Envoy; returns (envoy process, listener url, admin url)."""
    port, admin, mock = free_ports(3)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests"))
    mock_proc = procs.start("mock", [sys.executable, "-m", "mockllm", "--port", str(mock)], env=env)
    wait_ready(lambda: httpx.get(f"http://127.0.0.1:{mock}/_mock/health", timeout=1).status_code == 200,
               "mockllm", mock_proc, procs, "mock")
    config = render_envoy.render(os.path.join(ROOT, "envoy", "demo.yaml"), os.path.join(workdir, "demo.yaml"),
                                 port=port, admin_port=admin, mock_port=mock,
                                 wasm=os.path.join(ROOT, "dist", "weir.wasm"),
                                 access_log=os.path.join(workdir, "access.log"))
    envoy = procs.start("envoy", [envoy_binary(), "-c", config, "--concurrency", "2", "--disable-hot-restart",
                                  "--log-level", "warn", "--file-flush-interval-msec", "250"])

    def ready() -> bool:
        if httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code != 200:
            return False
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    wait_ready(ready, "Envoy", envoy, procs, "envoy")
    return envoy, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}"


class Clients:
    def __init__(self, url: str, concurrency: int):
        limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
        self.openai = openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=TIMEOUT,
                                         http_client=openai.DefaultAsyncHttpxClient(limits=limits))
        self.anthropic = anthropic.AsyncAnthropic(base_url=url, api_key=KEY, max_retries=0, timeout=TIMEOUT,
                                                  http_client=anthropic.DefaultAsyncHttpxClient(limits=limits))
        self.ollama = ollama.AsyncClient(host=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=TIMEOUT,
                                         limits=limits)

    async def chat(self, protocol: str, model: str, text: str, stream: bool) -> str:
        msgs = [{"role": "user", "content": text}]
        if protocol == "openai":
            if not stream:
                r = await self.openai.chat.completions.create(model=model, messages=msgs)
                return r.choices[0].message.content or ""
            out = []
            async for ch in await self.openai.chat.completions.create(model=model, messages=msgs, stream=True):
                if ch.choices:
                    out.append(ch.choices[0].delta.content or "")
            return "".join(out)
        if protocol == "anthropic":
            if not stream:
                m = await self.anthropic.messages.create(model=model, max_tokens=256, messages=msgs)
                return "".join(b.text for b in m.content if b.type == "text")
            async with self.anthropic.messages.stream(model=model, max_tokens=256, messages=msgs) as s:
                return "".join([t async for t in s.text_stream])
        if not stream:
            return (await self.ollama.chat(model=model, messages=msgs, stream=False)).message.content or ""
        return "".join([p.message.content or "" async for p in await self.ollama.chat(model=model, messages=msgs,
                                                                                        stream=True)])

    async def close(self) -> None:
        await self.openai.close()
        await self.anthropic.close()
        await self.ollama._client.aclose()  # noqa: SLF001  (ollama.AsyncClient has no close())


class Tally:
    def __init__(self):
        self.ok = 0
        self.misrouted: list[str] = []
        self.failed: collections.Counter = collections.Counter()  # an HTTP error from Envoy/weir
        self.lost: collections.Counter = collections.Counter()    # no answer: timeout, reset, refused
        self.by_kind: collections.Counter = collections.Counter()
        self.samples: list[str] = []
        self.latencies: list[float] = []

    @property
    def done(self) -> int:
        return self.ok + len(self.misrouted) + sum(self.failed.values()) + sum(self.lost.values())


def kind_of(i: int) -> tuple[str, str, bool]:
    """Request i's (protocol, model, stream): every combination, evenly, interleaved."""
    protocol = PROTOCOLS[i % 3]
    model = MODELS[(i // 3) % len(MODELS)]
    stream = (i // (3 * len(MODELS))) % 2 == 1
    return protocol, model, stream


async def one(clients: Clients, tally: Tally, i: int, run_id: str) -> None:
    protocol, model, stream = kind_of(i)
    text = f"soak {run_id} request {i} via {protocol} to {model}{' streamed' if stream else ''}"
    label = f"{protocol}/{model}/{'stream' if stream else 'plain'}"
    t0 = time.monotonic()
    try:
        got = await asyncio.wait_for(clients.chat(protocol, model, text, stream), TIMEOUT + 5)
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        tally.failed[f"{label} HTTP {e.status_code}"] += 1
        if len(tally.samples) < 10:
            tally.samples.append(f"{label}: {e!r}"[:300])
        return
    except ollama.ResponseError as e:
        tally.failed[f"{label} HTTP {e.status_code}"] += 1
        if len(tally.samples) < 10:
            tally.samples.append(f"{label}: {e!r}"[:300])
        return
    except Exception as e:  # noqa: BLE001  (timeouts, resets, SDK stream errors: no answer)
        tally.lost[f"{label} {type(e).__name__}"] += 1
        if len(tally.samples) < 10:
            tally.samples.append(f"{label}: {e!r}"[:300])
        return
    tally.latencies.append(time.monotonic() - t0)
    tally.by_kind[label] += 1
    if got == f"echo: {text}":
        tally.ok += 1
    else:
        tally.misrouted.append(f"{label}: sent {text!r}, got {got[:200]!r}")


async def drive(clients: Clients, tally: Tally, start: int, stop: int, concurrency: int, run_id: str,
                deadline: float) -> None:
    """Requests start..stop-1 with at most `concurrency` in flight; returns when all are done."""
    next_i = start

    async def worker() -> None:
        nonlocal next_i
        while next_i < stop and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            await one(clients, tally, i, run_id)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if next_i < stop:  # the deadline stopped us: the rest count as lost
        tally.lost["not sent before the deadline"] += stop - next_i


def snapshot(pid: int) -> dict:
    return {"vms": wasm_linear_memories(pid), "rss": rss_bytes(pid)}


def fmt_vms(s: dict) -> str:
    return ", ".join(f"{size // 1024} KiB" for size, _ in s["vms"])


async def soak(url: str, envoy: subprocess.Popen, args) -> tuple[Tally, dict, float]:
    clients = Clients(url, args.concurrency)
    tally, snaps = Tally(), {}
    run_id = uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    deadline = t0 + args.deadline
    try:
        for point in (args.checkpoint, args.requests):
            await drive(clients, tally, tally.done, point, args.concurrency, run_id, deadline)
            await asyncio.sleep(0.5)
            snaps[point] = snapshot(envoy.pid)
            print(f"  [{time.monotonic() - t0:5.1f} s] after {tally.done:>6} requests: wasm linear memory per VM "
                  f"[{fmt_vms(snaps[point])}], Envoy RSS {snaps[point]['rss'] / 2**20:.1f} MiB; "
                  f"ok {tally.ok}, failed {sum(tally.failed.values())}, lost {sum(tally.lost.values())}, "
                  f"mis-routed {len(tally.misrouted)}", flush=True)
    finally:
        await clients.close()
    return tally, snaps, time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--checkpoint", type=int, default=2_000, help="first memory reading after this many")
    ap.add_argument("--deadline", type=float, default=480, help="seconds of load at most (then: lost)")
    args = ap.parse_args()
    args.checkpoint = min(args.checkpoint, args.requests)

    # SIGTERM (e.g. from the shell wrapper) unwinds like Ctrl-C, so `finally` stops the children.
    signal.signal(signal.SIGTERM, _interrupted)
    workdir = tempfile.mkdtemp(prefix="weir-soak-")
    procs = Procs(workdir)
    try:
        envoy, url, _admin = start(procs, workdir)
        print(f"soak: {args.requests} requests, concurrency {args.concurrency}, {len(MODELS)} models x "
              f"{len(PROTOCOLS)} client protocols x plain/stream; Envoy pid {envoy.pid} (logs in {workdir})",
              flush=True)
        tally, snaps, seconds = asyncio.run(soak(url, envoy, args))
        time.sleep(0.5)
        envoy_alive = envoy.poll() is None
    finally:
        procs.stop_all()

    with open(os.path.join(workdir, "envoy.log"), encoding="utf-8", errors="replace") as f:
        log = f.read()
    traps = envoy_log.trap_lines(log)
    first, last = snaps.get(args.checkpoint), snaps.get(args.requests)
    growth = (sum(s for s, _ in last["vms"]) - sum(s for s, _ in first["vms"])) if first and last else None
    lat = sorted(tally.latencies)
    pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: float("nan"))

    print("\n==== soak summary")
    print(f"requests        {tally.done} in {seconds:.1f} s ({tally.done / seconds:.0f}/s), concurrency {args.concurrency}")
    print(f"ok (echoed own) {tally.ok}")
    print(f"mis-routed      {len(tally.misrouted)}")
    print(f"failed (HTTP)   {sum(tally.failed.values())}  {dict(tally.failed) or ''}")
    print(f"lost            {sum(tally.lost.values())}  {dict(tally.lost) or ''}")
    print(f"latency ms      p50 {pct(0.5):.0f}  p99 {pct(0.99):.0f}  max {pct(1.0):.0f}")
    print(f"combinations    {len(tally.by_kind)} (protocol x model x plain/stream), "
          f"min {min(tally.by_kind.values(), default=0)} ok each")
    if first and last:
        print(f"wasm memory     after {args.checkpoint}: [{fmt_vms(first)}]; after {args.requests}: [{fmt_vms(last)}]; "
              f"growth {growth // 1024} KiB (limit {MAX_GROWTH // 1024} KiB)")
        print(f"Envoy RSS       {first['rss'] / 2**20:.1f} MiB -> {last['rss'] / 2**20:.1f} MiB")
    print(f"Envoy           {'alive at the end' if envoy_alive else 'DIED'}; panics/traps in log: {len(traps)}")
    for s in tally.misrouted[:5] + tally.samples[:5] + traps[:5]:
        print("  " + s)

    bad = (tally.ok != args.requests or tally.misrouted or tally.failed or tally.lost or traps
           or not envoy_alive or growth is None or growth > MAX_GROWTH)
    print("RESULT: " + ("FAIL (logs kept in " + workdir + ")" if bad else "PASS"))
    if not bad:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bad else 0


def _interrupted(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nsoak: interrupted; every process it started is stopped", file=sys.stderr)
        sys.exit(130)
