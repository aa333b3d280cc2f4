"""Global limits across replicas, as shipped: three weir replicas running envoy/central-lb.yaml
behind envoy/central-lb-front.yaml, Envoy's ratelimit filter asking tests/rls (the same limits
file production gives envoyproxy/ratelimit, envoy/ratelimit/weir.yaml) over a Redis this module
starts. A key's requests and tokens are counted once for the whole fleet, whichever replica a
request lands on; refusals reach SDKs as their own 429 with Retry-After; weir's descriptor
headers never reach a provider.

Each test uses its own key; counters live in this module's own Redis, so nothing carries over
between runs. The service's clock is shifted (`--clock-offset`) so that this module starts
WINDOW_HEADROOM_S into an hour window whenever it runs: a run crossing xx:00 on the wall clock
does not cross a window, and Retry-After is checked against the shifted clock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import anthropic
import httpx
import openai
import pytest

import render_envoy
from conftest import ROOT, WASM, die_with_parent, free_port, start_envoy, stop, tail
from weir_clients import DEMO_KEY, anthropic_client, openai_client

CENTRAL = os.path.join(ROOT, "envoy", "central-lb.yaml")
FRONT = os.path.join(ROOT, "envoy", "central-lb-front.yaml")
RLS_CONFIG = os.path.join(ROOT, "envoy", "ratelimit", "weir.yaml")
REQUESTS_KEY = "sk-weir-global-requests"   # 30 requests/hour across the fleet
TOKENS_KEY = "sk-weir-global-tokens"       # 200 tokens/hour across the fleet
REPLICAS = 3
WINDOW_HEADROOM_S = 5  # the service's clock at start-up: this far into an hour
# See tests/test_limits.py: 35 bytes -> 9 estimated prompt tokens; with max_tokens 10 the
# estimate (19) equals the mock's usage (9 words in, "echo:" + 9 words out).
NINE_WORDS = "one two six ten red big cat dog sun"
COST = 19


@dataclass
class Fleet:
    url: str                 # the front balancer
    replica_logs: list[str]  # each replica's access log
    rls_log: str             # one JSON line per ShouldRateLimit call
    rls: subprocess.Popen    # the rate limit service (the last test stops it)
    clock_offset: float      # the service's clock minus the wall clock

    def rls_now(self) -> float:
        return time.time() + self.clock_offset

    def rls_calls(self) -> list[dict]:
        with open(self.rls_log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


def wait_port(port: int, proc: subprocess.Popen, log: str, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not listening after {timeout:.0f} s:\n{tail(log)}")
            time.sleep(0.1)


def spawn(cmd: list[str], log: str, env=None) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, preexec_fn=die_with_parent)


@pytest.fixture(scope="module")
def fleet(mock_server, tmp_path_factory):
    if not os.path.exists(WASM):
        pytest.fail("dist/weir.wasm is missing: run scripts/build first")
    redis_server = "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else "redis-server"
    tmp = tmp_path_factory.mktemp("global")
    procs: list[subprocess.Popen] = []
    try:
        redis_port = free_port()
        log = str(tmp / "redis.log")
        try:
            procs.append(spawn([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"], log))
        except FileNotFoundError:
            pytest.fail("redis-server is missing: run scripts/bootstrap (Debian package redis-server)")
        wait_port(redis_port, procs[-1], log, "redis-server")

        rls_port, rls_log = free_port(), str(tmp / "rls-calls.jsonl")
        open(rls_log, "w").close()
        mock_port = int(mock_server.url.rsplit(":", 1)[1])
        replica_ports, replica_logs = [], []
        for i in range(REPLICAS):
            port, admin = free_port(), free_port()
            access = str(tmp / f"replica{i}-access.log")
            text = render_envoy.render_text(open(CENTRAL, encoding="utf-8").read(), port=port,
                                            admin_port=admin, mock_port=mock_port, wasm=WASM,
                                            access_log=access, rls_port=rls_port)
            # This machine's two cores also run three Envoys, the mock and a Python rate limit
            # service: give that service more than production's 0.5 s before failing closed.
            assert text.count("timeout: 0.5s") == 2
            text = text.replace("timeout: 0.5s", "timeout: 5s")
            config = tmp / f"replica{i}.yaml"
            config.write_text(text, encoding="utf-8")
            procs.append(start_envoy(str(config), str(tmp), str(tmp / f"replica{i}.log"), port=port,
                                     admin_url=f"http://127.0.0.1:{admin}", concurrency=1,
                                     log_args=("--log-level", "warn", "--file-flush-interval-msec", "250")))
            replica_ports.append(port)
            replica_logs.append(access)

        port, admin = free_port(), free_port()
        config = render_envoy.render(FRONT, str(tmp / "front.yaml"), port=port, admin_port=admin,
                                     replica_ports=tuple(replica_ports))
        procs.append(start_envoy(config, str(tmp), str(tmp / "front.log"), port=port,
                                 admin_url=f"http://127.0.0.1:{admin}", concurrency=1))
        # The service starts last, just before the tests: its clock is shifted so that they start
        # WINDOW_HEADROOM_S into an hour window (hour windows are the tight ones in weir.yaml;
        # an hour's start is also a minute's and a second's). Envoy connects to it lazily.
        log = str(tmp / "rls.log")
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests"))
        offset = WINDOW_HEADROOM_S - time.time() % 3600
        procs.append(spawn([sys.executable, "-m", "rls", "--config", RLS_CONFIG, "--port", str(rls_port),
                            "--redis", f"redis://127.0.0.1:{redis_port}/0", "--log", rls_log,
                            "--clock-offset", repr(offset)], log, env))
        wait_port(rls_port, procs[-1], log, "the rate limit service")
        rls = procs[-1]
        yield Fleet(f"http://127.0.0.1:{port}", replica_logs, rls_log, rls, offset)
    finally:
        for p in reversed(procs):
            stop(p)


def access_lines(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def until(check, timeout: float = 10):
    """Polls check() until it returns something truthy (logs are flushed every 250 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def until_n(items, n: int, timeout: float = 10) -> list:
    """Polls items() until it holds at least n entries; returns what it holds then."""
    deadline = time.monotonic() + timeout
    while True:
        got = items()
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.25)


def is_stream_done(call: dict) -> bool:
    """The ratelimit filter's apply_on_stream_done call carries only the token descriptors."""
    return all(d["entries"][0] == ["generic_key", "tokens"] for d in call["descriptors"])


def descriptor_calls(fleet: Fleet, kind: str, key_id: str, stream_done: bool | None = False) -> list[int]:
    """hits of every descriptor (generic_key=kind, weir_key=key_id) the service received, in
    request-time calls (stream_done False), stream-done calls (True) or both (None)."""
    return [d["hits"] for call in fleet.rls_calls() for d in call["descriptors"]
            if d["entries"] == [["generic_key", kind], ["weir_key", key_id]]
            and (stream_done is None or is_stream_done(call) == stream_done)]


def test_requests_limit_is_exact_across_replicas(fleet, mock):
    """100 requests at once, half OpenAI and half Anthropic, spread by the front balancer over
    three replicas: exactly 30 (the key's global limit) get an answer."""
    def one(i: int):
        try:
            if i % 2:
                r = openai_client(fleet.url, REQUESTS_KEY).chat.completions.with_raw_response.create(
                    model="mock-openai", messages=[{"role": "user", "content": f"global {i}"}])
                return ("ok", r.parse().choices[0].message.content)
            m = anthropic_client(fleet.url, REQUESTS_KEY).messages.create(
                model="mock-anthropic", max_tokens=64, messages=[{"role": "user", "content": f"global {i}"}])
            return ("ok", m.content[0].text)
        except (openai.RateLimitError, anthropic.RateLimitError) as exc:
            return ("refused", exc)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(100)))
    ok = [r for kind, r in results if kind == "ok"]
    refused = [r for kind, r in results if kind == "refused"]
    assert (len(ok), len(refused)) == (30, 70), [r for kind, r in results if kind != "ok"][:3]
    assert all(text.startswith("echo: global ") for text in ok)
    for exc in refused:
        assert exc.status_code == 429
        assert 1 <= int(exc.response.headers["retry-after"]) <= 3600, exc.response.headers
    # Refused requests never reached a provider; answered ones did, once each.
    assert len(mock.requests()) == 30
    # Every replica served some of the 100 (the limit held across them, not inside one).
    per_replica = until(lambda: [len(access_lines(p)) for p in fleet.replica_logs]
                        if sum(len(access_lines(p)) for p in fleet.replica_logs) >= 100 else None)
    assert per_replica and all(n > 0 for n in per_replica), per_replica
    answered = [sum(1 for line in access_lines(p) if line["status"] == 200) for p in fleet.replica_logs]
    assert sum(answered) == 30 and sum(1 for n in answered if n) >= 2, answered
    # The global refusals are the ratelimit filter's (flag RL), not weir's per-replica limits.
    flags = [line["flags"] for p in fleet.replica_logs for line in access_lines(p) if line["status"] == 429]
    assert len(flags) == 70 and set(flags) == {"RL"}, set(flags)


def test_global_refusal_is_each_protocols_own_429(fleet):
    """The key of the previous test is spent for the hour: each SDK raises its own rate-limit
    error, the body is in its protocol's error shape, and Retry-After says when the window ends."""
    key_spent = len(descriptor_calls(fleet, "requests", "global-requests")) >= 30
    if not key_spent:  # run alone: spend the key first
        for i in range(30):
            openai_client(fleet.url, REQUESTS_KEY).chat.completions.create(
                model="mock-openai", messages=[{"role": "user", "content": f"spend {i}"}])
    to_hour_end = 3600 - int(fleet.rls_now()) % 3600
    with pytest.raises(openai.RateLimitError) as oe:
        openai_client(fleet.url, REQUESTS_KEY).chat.completions.create(
            model="mock-openai", messages=[{"role": "user", "content": "one more"}])
    body = oe.value.response.json()["error"]
    assert oe.value.status_code == 429 and body["code"] == "rate_limit_exceeded", body
    assert "rate limit reached" in body["message"], body
    retry = int(oe.value.response.headers["retry-after"])
    assert abs(retry - to_hour_end) <= 2, (retry, to_hour_end)
    assert oe.value.response.headers["x-ratelimit-remaining"] == "0"

    with pytest.raises(anthropic.RateLimitError) as ae:
        anthropic_client(fleet.url, REQUESTS_KEY).messages.create(
            model="mock-anthropic", max_tokens=64, messages=[{"role": "user", "content": "one more"}])
    assert ae.value.status_code == 429
    body = ae.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error", body
    assert 1 <= int(ae.value.response.headers["retry-after"]) <= 3600

    # A stream request is refused before any stream starts, as a plain 429.
    with pytest.raises(openai.RateLimitError):
        openai_client(fleet.url, REQUESTS_KEY).chat.completions.create(
            model="mock-openai", messages=[{"role": "user", "content": "one more"}], stream=True)


def test_token_budget_is_charged_with_the_estimate(fleet, mock):
    """200 tokens/hour across the fleet; each request is estimated (and uses) 19 tokens, sent as
    the descriptor's hits_addend: 10 requests fit, the 11th and 12th are refused."""
    outcomes = []
    for i in range(12):
        try:
            openai_client(fleet.url, TOKENS_KEY).chat.completions.create(
                model="mock-openai", max_tokens=10, messages=[{"role": "user", "content": NINE_WORDS}])
            outcomes.append("ok")
        except openai.RateLimitError as exc:
            assert exc.status_code == 429, exc
            assert exc.response.json()["error"]["code"] == "rate_limit_exceeded"
            outcomes.append("refused")
    assert outcomes == ["ok"] * 10 + ["refused"] * 2, outcomes
    # Request time: every call charged the estimate to the key's token descriptor.
    assert descriptor_calls(fleet, "tokens", "global-tokens") == [COST] * 12
    # At stream end nothing more is added: the estimate was the answered requests' usage, and
    # the refused ones used nothing (the ratelimit filter makes its stream-done call for them too).
    done = until_n(lambda: descriptor_calls(fleet, "tokens", "global-tokens", True), 12)
    assert done == [0] * 12, done
    assert len(mock.requests()) == 10


def test_stream_end_charges_what_the_estimate_missed(fleet, mock):
    """A prompt of one-letter words is under-estimated (4 bytes per token, the mock counts a
    token per word): at the end of the answer, weir publishes actual - estimate and the
    ratelimit filter's apply_on_stream_done descriptors add exactly that, plain and streamed."""
    # 79 bytes -> 20 estimated prompt tokens (+ 45 max_tokens = 65); the mock counts 40 in and
    # 41 out ("echo:" and the 40 words) = 81.
    prompt = " ".join(["a"] * 40)
    client = openai_client(fleet.url, DEMO_KEY)

    before = len(descriptor_calls(fleet, "tokens", "demo", None))
    r = client.chat.completions.create(model="mock-openai", max_tokens=45,
                                       messages=[{"role": "user", "content": prompt}])
    used = r.usage.prompt_tokens + r.usage.completion_tokens
    hits = until_n(lambda: descriptor_calls(fleet, "tokens", "demo", None)[before:], 2)
    assert hits, "no stream-done call reached the rate limit service"
    estimate, overrun = hits
    assert overrun == used - estimate > 0, (used, hits)

    before += 2
    chunks = list(client.chat.completions.create(
        model="mock-openai", max_tokens=45, messages=[{"role": "user", "content": prompt}],
        stream=True, stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if c.usage][-1]
    used = usage.prompt_tokens + usage.completion_tokens
    hits = until_n(lambda: descriptor_calls(fleet, "tokens", "demo", None)[before:], 2)
    assert hits, "no stream-done call for the streamed answer"
    estimate, overrun = hits
    assert overrun == used - estimate > 0, (used, hits)


def test_descriptors_come_from_weir_and_never_reach_the_provider(fleet, mock):
    """A client cannot pick its descriptors (its x-weir-rl-* headers are dropped and weir sets the
    authenticated key's id), and the provider sees none of them."""
    before = len(fleet.rls_calls())
    r = httpx.post(fleet.url + "/v1/chat/completions", timeout=30,
                   headers={"authorization": f"Bearer {DEMO_KEY}", "x-weir-rl-key": "global-requests",
                            "x-weir-rl-tokens": "0", "x-weir-rl-model": "mock-anthropic"},
                   json={"model": "mock-openai", "messages": [{"role": "user", "content": "who am i"}]})
    assert r.status_code == 200, r.text
    calls = until(lambda: fleet.rls_calls()[before:])
    first = calls[0]["descriptors"]
    keys = {v for d in first for k, v in d["entries"] if k == "weir_key"}
    models = {v for d in first for k, v in d["entries"] if k == "weir_model"}
    assert keys == {"demo"} and models == {"mock-openai"}, first
    assert all(d["hits"] > 0 for d in first if d["entries"][0] == ["generic_key", "tokens"])
    seen = mock.requests()
    assert len(seen) == 1
    assert not [h for h in seen[0]["headers"] if h.lower().startswith("x-weir")], seen[0]["headers"]


def test_without_the_rate_limit_service_requests_fail_closed(fleet, mock):
    """Runs last: with the service gone, no request gets through unlimited; clients get their
    protocol's 503 with Retry-After, and no provider is asked."""
    stop(fleet.rls)
    with pytest.raises(openai.APIStatusError) as oe:
        openai_client(fleet.url, DEMO_KEY).chat.completions.create(
            model="mock-openai", messages=[{"role": "user", "content": "no limiter"}])
    assert oe.value.status_code == 503
    assert oe.value.response.headers["retry-after"] == "1"
    assert "rate limit service is unavailable" in oe.value.response.json()["error"]["message"]
    with pytest.raises(anthropic.APIStatusError) as ae:
        anthropic_client(fleet.url, DEMO_KEY).messages.create(
            model="mock-anthropic", max_tokens=64, messages=[{"role": "user", "content": "no limiter"}])
    assert ae.value.status_code == 503 and ae.value.response.json()["type"] == "error"
    assert mock.requests() == []
