"""Routing strategies and target health through real Envoy with two workers (the demo's
mock-rr, mock-weighted, mock-wrr, mock-least-busy, mock-fastest, mock-cheapest, mock-affinity, mock-breaker,
mock-breaker-solo and mock-vllm-guarded models): distribution, shared counters, the circuit breaker, prefix affinity
on a ring-hash cluster of three replicas, and Envoy's active health checks."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import ollama
import openai
import pytest

from conftest import poll, weir_requests
from weir_clients import anthropic_client, ollama_client, openai_client

PRIMARY_HOST = "breaker-primary.mock"
COOLDOWN_S = 2  # models mock-breaker / mock-breaker-solo in envoy/demo.yaml
MIN_REQUESTS = 4


def ask(client: openai.OpenAI, model: str, text: str = "hi", system: str | None = None,
        turns: list[dict] | None = None, headers: dict | None = None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    msgs += turns or []
    return client.chat.completions.with_raw_response.create(model=model, messages=msgs, max_tokens=8,
                                                            extra_headers=headers)


def served_by(client: openai.OpenAI, model: str, **kw) -> str:
    return ask(client, model, **kw).headers.get("x-weir-served-by")


def fan_out(fn, n: int, workers: int = 16) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, range(n)))


def worker_connections(envoy) -> dict[str, int]:
    """Downstream connections each Envoy worker accepted on weir's listener so far."""
    text = httpx.get(envoy.admin_url + "/stats", params={"filter": r"^listener\..*worker_\d+\.downstream_cx_total$"},
                     timeout=10).text
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(worker_\d+)\.downstream_cx_total: (\d+)", text)}


def prometheus(envoy) -> str:
    return httpx.get(envoy.admin_url + "/stats/prometheus", timeout=10).text


def breaker_events(envoy, model: str, provider: str, event: str) -> int:
    pattern = re.compile(r'^weir_breaker_events_total\{([^}]*)\} (\d+)', re.M)
    for m in pattern.finditer(prometheus(envoy)):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("model") == model and labels.get("provider") == provider and labels.get("event") == event:
            return int(m.group(2))
    return 0


def health(headers) -> dict[str, str]:
    """x-weir-health (debug header): the chosen target's shared record."""
    return dict(part.split("=", 1) for part in headers["x-weir-health"].split("; "))


def primary_requests(mock) -> int:
    return sum(1 for r in mock.requests() if r["headers"].get("host", "").startswith(PRIMARY_HOST))


def break_primary(mock) -> None:
    httpx.post(mock.url + "/_mock/faults", json={"host": PRIMARY_HOST, "status": 500}, timeout=10).raise_for_status()


def heal_primary(mock) -> None:
    httpx.delete(mock.url + "/_mock/faults", timeout=10).raise_for_status()


def recorded(envoy, model: str, n: int) -> None:
    """Waits until weir has recorded n requests of `model` (outcomes, latency and breaker state
    are recorded in Envoy's log phase, just after the client has its answer)."""
    poll(lambda: weir_requests(envoy, model=model) >= n, f"{n} requests of {model} recorded")


def fail_until_open(envoy, client: openai.OpenAI, model: str) -> int:
    """Sends requests while they fail (each retried twice by Envoy on the primary) until the
    breaker opens: the next one is served by another target or refused. Returns the failures;
    with MIN_REQUESTS 4 and ratio 0.3, at most MIN_REQUESTS."""
    for failures in range(MIN_REQUESTS + 1):
        seen = weir_requests(envoy, model=model)
        try:
            ask(client, model)
            return failures
        except openai.APIStatusError as e:
            if e.status_code == 503:  # refused: every target's breaker is open
                return failures
            assert e.status_code == 500, e
            recorded(envoy, model, seen + 1)  # the failure counts before the next request
    pytest.fail(f"the breaker of {model} did not open after {MIN_REQUESTS + 1} failures")


def served_when_cooled(client: openai.OpenAI, model: str, want: str) -> None:
    """Asks until `want` serves `model`: the breaker's cooldown (COOLDOWN_S) has to run out
    first, during which requests go to another target or are refused."""
    def served():
        try:
            return served_by(client, model) == want
        except openai.APIStatusError as e:
            assert e.status_code == 503, e  # every target still open: refused, retry later
            return False
    poll(served, f"{want} serving {model} after the cooldown", timeout=COOLDOWN_S + 5, interval=0.2)


def recover(client: openai.OpenAI, model: str, mock) -> None:
    heal_primary(mock)
    served_when_cooled(client, model, "mock-breaker-primary")  # the half-open probe succeeds


def test_round_robin_is_exact_across_both_workers(envoy, mock):
    client = openai_client(envoy.url)
    before = worker_connections(envoy)
    picks = Counter(fan_out(lambda i: served_by(client, "mock-rr"), 300, workers=24))
    assert picks == {"mock-openai": 100, "mock-mistral": 100, "mock-ollama": 100}
    assert Counter(r["provider"] for r in mock.requests()) == {"openai": 100, "mistral": 100, "ollama": 100}
    after = worker_connections(envoy)
    assert len(after) == 2 and all(after[w] > before.get(w, 0) for w in after), (before, after)


def test_weighted_round_robin_is_exact(envoy, mock):
    client = openai_client(envoy.url)
    picks = Counter(fan_out(lambda i: served_by(client, "mock-wrr"), 400))
    assert picks == {"mock-openai": 200, "mock-mistral": 100, "mock-ollama": 100}


def test_weighted_random_follows_the_weights_within_five_percent(envoy, mock):
    client = openai_client(envoy.url)
    n = 2000
    picks = Counter(fan_out(lambda i: served_by(client, "mock-weighted"), n, workers=32))
    print("weighted 3:1 over", n, dict(picks))
    assert sum(picks.values()) == n and set(picks) == {"mock-openai", "mock-mistral"}
    # Weights 3:1. Random, so not exact: each share within 5 points of its weight's.
    assert abs(picks["mock-openai"] / n - 0.75) <= 0.05, picks
    assert abs(picks["mock-mistral"] / n - 0.25) <= 0.05, picks
    assert len(mock.requests()) == n


def test_least_in_flight_avoids_the_slow_target(envoy, mock):
    client = openai_client(envoy.url)
    # mock-openai answers after 1.5 s: its requests pile up in flight, so the rest go to ollama.
    httpx.post(mock.url + "/_mock/faults", json={"provider": "openai", "status": 200, "delay_ms": 1500},
               timeout=10).raise_for_status()
    picks = Counter(fan_out(lambda i: served_by(client, "mock-least-busy"), 40, workers=8))
    assert picks["mock-ollama"] >= 30, picks


def test_lowest_latency_learns_which_target_is_fast(envoy, mock):
    client = openai_client(envoy.url)
    httpx.post(mock.url + "/_mock/faults", json={"provider": "openai", "status": 200, "delay_ms": 400},
               timeout=10).raise_for_status()

    def one() -> str:
        seen = weir_requests(envoy, model="mock-fastest")
        raw = ask(client, "mock-fastest")
        recorded(envoy, "mock-fastest", seen + 1)  # its latency counts for the next pick
        return raw.headers["x-weir-served-by"]

    picks = [one() for _ in range(20)]
    # Each target is measured once (the unmeasured go first), then the fast one keeps the traffic.
    assert sorted(picks[:2]) == ["mock-ollama", "mock-openai"], picks
    assert picks[2:] == ["mock-ollama"] * 18, picks


def test_shared_counters_agree_across_workers(envoy, mock):
    """The success counter is exact after requests spread over both workers: no lost update.
    (mock-vllm-guarded: a route keeps target health only when a decision reads it, here its
    breaker.)"""
    client = openai_client(envoy.url)
    seen = weir_requests(envoy, model="mock-vllm-guarded")
    first = health(ask(client, "mock-vllm-guarded").headers)
    n = 200
    fan_out(lambda i: ask(client, "mock-vllm-guarded"), n, workers=24)
    recorded(envoy, "mock-vllm-guarded", seen + 1 + n)
    last = health(ask(client, "mock-vllm-guarded").headers)
    assert int(last["successes"]) == int(first["successes"]) + 1 + n
    # Only the request reading the header is in flight: every other was released exactly once.
    assert last["in_flight"] == "1" and last["breaker"] == "closed"
    assert "latency_ms" in last


def test_breaker_opens_sends_to_the_healthy_target_and_recovers(envoy, mock):
    client = openai_client(envoy.url)
    assert served_by(client, "mock-breaker") == "mock-breaker-primary"
    opened = breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "open")
    break_primary(mock)
    failed = fail_until_open(envoy, client, "mock-breaker")
    # One success then three failures: 3/4 > 0.3 with MIN_REQUESTS 4 in the window.
    assert failed == 3
    sent = primary_requests(mock)
    assert sent == 1 + failed * 3  # Envoy's two retries per failed request
    # Open: the gateway routes to the backup's cluster directly; the primary hears nothing.
    for _ in range(5):
        raw = ask(client, "mock-breaker")
        assert raw.headers["x-weir-served-by"] == "mock-anthropic"
        assert raw.headers["x-weir-attempts"] == "1"
    assert primary_requests(mock) == sent
    assert breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "open") == opened + 1
    assert breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "skipped") >= 5
    # After the cooldown one probe goes to the primary; it is healthy again, so it closes.
    recover(client, "mock-breaker", mock)
    assert primary_requests(mock) == sent + 1
    assert [served_by(client, "mock-breaker") for _ in range(3)] == ["mock-breaker-primary"] * 3
    assert breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "closed") >= 1


def test_half_open_lets_exactly_one_probe_through_across_workers(envoy, mock):
    client = openai_client(envoy.url)
    break_primary(mock)
    assert fail_until_open(envoy, client, "mock-breaker") >= 1
    half_opened = breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "half_open")
    reopened = breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "open")
    # Nothing observable marks the cooldown's end short of a request, which would be the probe
    # this test counts: wait the cooldown out on the clock.
    time.sleep(COOLDOWN_S + 0.3)
    sent = primary_requests(mock)

    def one(i: int) -> str:
        try:
            return ask(client, "mock-breaker").headers["x-weir-served-by"]
        except openai.InternalServerError:
            return "failed"

    # Twelve requests at once on both workers after the cooldown: one is the probe (it fails:
    # the primary is still broken, and the backup is another cluster), the rest go to the backup.
    picks = Counter(fan_out(one, 12, workers=12))
    assert picks == {"failed": 1, "mock-anthropic": 11}, picks
    assert primary_requests(mock) == sent + 3  # the probe and Envoy's two retries
    poll(lambda: breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "open") > reopened,
         "the failed probe reopening the breaker")
    assert breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "half_open") == half_opened + 1
    assert breaker_events(envoy, "mock-breaker", "mock-breaker-primary", "open") == reopened + 1
    # Reopened for a full cooldown.
    assert served_by(client, "mock-breaker") == "mock-anthropic"
    assert primary_requests(mock) == sent + 3
    recover(client, "mock-breaker", mock)


def test_every_target_down_is_503_with_retry_after_in_each_protocol(envoy, mock):
    client = openai_client(envoy.url)
    break_primary(mock)
    assert fail_until_open(envoy, client, "mock-breaker-solo") >= 1
    sent = len(mock.requests())
    with pytest.raises(openai.APIStatusError) as e:
        ask(client, "mock-breaker-solo")
    assert e.value.status_code == 503
    assert 1 <= int(e.value.response.headers["retry-after"]) <= COOLDOWN_S
    assert "mock-breaker-solo" in e.value.message
    with pytest.raises(anthropic.APIStatusError) as a:
        anthropic_client(envoy.url).messages.create(model="mock-breaker-solo", max_tokens=8,
                                                    messages=[{"role": "user", "content": "hi"}])
    assert a.value.status_code == 503 and a.value.body["type"] == "error"
    assert 1 <= int(a.value.response.headers["retry-after"]) <= COOLDOWN_S
    with pytest.raises(ollama.ResponseError) as o:
        ollama_client(envoy.url).chat(model="mock-breaker-solo", messages=[{"role": "user", "content": "hi"}],
                                      stream=False)
    assert o.value.status_code == 503 and "retry in" in o.value.error
    assert len(mock.requests()) == sent  # no upstream call at all
    assert breaker_events(envoy, "mock-breaker-solo", "-", "refused") >= 3
    recover(client, "mock-breaker-solo", mock)


def test_cheapest_healthy_target_and_failover_when_it_breaks(envoy, mock):
    client = openai_client(envoy.url)
    assert served_by(client, "mock-cheapest") == "mock-openai"
    httpx.post(mock.url + "/_mock/faults", json={"provider": "openai", "status": 500}, timeout=10).raise_for_status()
    assert fail_until_open(envoy, client, "mock-cheapest") >= 1
    assert served_by(client, "mock-cheapest") == "mock-anthropic"
    heal_primary(mock)
    served_when_cooled(client, "mock-cheapest", "mock-openai")


AFFINITY_SYSTEM = "You are the support assistant of ACME. Answer in one sentence."


def test_shared_prefix_sticks_to_one_replica(envoy, mock):
    client = openai_client(envoy.url)

    def conversation(i: int) -> str:
        # Same system prompt and first user turn, then a different tail each time.
        return served_by(client, "mock-affinity", system=AFFINITY_SYSTEM, text="My order is late.",
                         turns=[{"role": "assistant", "content": "Sorry to hear that."},
                                {"role": "user", "content": f"Order number {i}?"}])

    picks = Counter(fan_out(conversation, 100))
    print("one prefix over three replicas:", dict(picks))
    replica, hits = picks.most_common(1)[0]
    assert replica.startswith("mock-replica-") and hits >= 95, picks
    recs = mock.requests()
    assert len(recs) == 100 and all(r["valid"] for r in recs)
    # The affinity hash steered Envoy but never reached the provider.
    assert not any(name.startswith("x-weir-") for r in recs for name in r["headers"])


def test_different_prefixes_spread_over_the_replicas(envoy, mock):
    client = openai_client(envoy.url)
    # A client cannot pin its own replica: weir drops a client's x-weir-affinity and sets its own.
    picks = Counter(fan_out(lambda i: served_by(client, "mock-affinity", system=f"Tenant {i} assistant.",
                                                headers={"x-weir-affinity": "pinned"}), 60))
    print("60 prefixes over three replicas:", dict(picks))
    assert set(picks) == {"mock-replica-a", "mock-replica-b", "mock-replica-c"}, picks
    assert min(picks.values()) >= 5, picks


def test_active_health_checks_use_the_cheap_endpoints(envoy, mock):
    checks = httpx.get(mock.url + "/_mock/health_checks", timeout=10).json()
    assert checks.get("/api/version", 0) >= 1 and checks.get("/health", 0) >= 1, checks
    stats = httpx.get(envoy.admin_url + "/stats", params={"filter": r"health_check\.success$"}, timeout=10).text
    ok = dict(re.findall(r"cluster\.(\w+)\.health_check\.success: (\d+)", stats))
    assert int(ok.get("mock_ollama", 0)) >= 1 and int(ok.get("mock_vllm", 0)) >= 1, ok
    assert int(ok.get("mock_replicas", 0)) >= 1, ok
    # Health checks are not provider calls: the request record does not show them.
    assert not any(r["path"] in ("/api/version", "/health") for r in mock.requests())


def test_a_client_model_name_cannot_change_the_providers_path(envoy, mock):
    # The glob route passes the client's model name on to Gemini as it came.
    for model in ("gemini-any/x:countTokens?key=stolen&", "gemini-any/../../v1/files"):
        mock.clear()
        try:
            openai_client(envoy.url).chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError:
            pass  # the mock knows no such model; what matters is where the request went
        recs = mock.requests()
        assert len(recs) == 1, recs
        path, query = recs[0]["path"], recs[0]["query"]
        assert path.startswith("/v1beta/models/gemini-any%2F") and path.endswith(":generateContent"), path
        assert "/../" not in path and ":countTokens" not in path, path
        assert "stolen" not in str(query), query
