"""Metrics and access log through real Envoy: Prometheus counters move by exactly what requests
did, and every access-log line is JSON carrying weir's own summary of the request."""

from __future__ import annotations

import re
import time

import httpx
import openai
import pytest

from conftest import access_summaries, poll
from weir_clients import DEMO_KEY

SERIES = re.compile(r'^([a-z_]+)\{([^}]*)\} ([0-9.e+]+)$')


def scrape(envoy) -> dict[tuple[str, frozenset], float]:
    """Envoy's Prometheus output, weir's and GenAI series only: (name, labels) -> value."""
    text = httpx.get(f"{envoy.admin_url}/stats/prometheus", timeout=10).text
    out = {}
    for line in text.splitlines():
        m = SERIES.match(line)
        if m and (m[1].startswith("weir_") or m[1].startswith("gen_ai_")):
            labels = frozenset(tuple(kv.split("=", 1)) for kv in re.findall(r'[a-z_]+="[^"]*"', m[2]))
            out[(m[1], labels)] = float(m[3])
    return out


def value(series, name: str, **labels) -> float:
    want = {(k, f'"{v}"') for k, v in labels.items()}
    return sum(v for (n, ls), v in series.items() if n == name and want <= set(ls))


def histogram_count_reaches(envoy, name: str, target: float, **labels) -> float:
    """Envoy folds histogram samples into its admin output at each stats flush (every 5 s by
    default), so poll until the count reaches `target` or a flush and a half has passed."""
    deadline = time.monotonic() + 8
    while True:
        seen = value(scrape(envoy), name, **labels)
        if seen >= target or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def client(envoy, key=DEMO_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{envoy.url}/v1", api_key=key, max_retries=0)


def settled(envoy, before, name: str, by: float, **labels) -> dict:
    """Scrapes until `name` (with `labels`) has moved by `by` since `before`: metrics are recorded
    in Envoy's log phase, just after the client has its answer. Returns that scrape."""
    def moved():
        now = scrape(envoy)
        return now if value(now, name, **labels) - value(before, name, **labels) >= by else None
    return poll(moved, f"{name}{labels} moved by {by}")


def test_requests_and_tokens_counters_move_by_what_the_requests_did(envoy):
    before = scrape(envoy)
    durations = value(before, "weir_request_duration_ms_count", model="mock-gemini")
    c = client(envoy)
    usage_in = usage_out = 0
    for i in range(3):
        r = c.chat.completions.create(model="mock-gemini", messages=[{"role": "user", "content": f"count me {i}"}])
        usage_in += r.usage.prompt_tokens
        usage_out += r.usage.completion_tokens
    after = settled(envoy, before, "weir_requests_total", 3, model="mock-gemini", outcome="success")

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    labels = dict(model="mock-gemini", provider="mock-gemini", key="demo")
    assert delta("weir_requests_total", outcome="success", **labels) == 3
    assert delta("weir_tokens_total", token_type="input", **labels) == usage_in
    assert delta("weir_tokens_total", token_type="output", **labels) == usage_out
    # At least: samples of earlier requests may land in the same flush.
    assert histogram_count_reaches(envoy, "weir_request_duration_ms_count", durations + 3,
                                   model="mock-gemini") >= durations + 3


def test_refusals_failovers_and_pii_are_counted(envoy):
    before = scrape(envoy)
    c = client(envoy)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    c.chat.completions.create(model="mock-failover", messages=[{"role": "user", "content": "x"}])
    c.chat.completions.create(model="mock-openai",
                              messages=[{"role": "user", "content": "write to jane.doe@example.com"}])
    # The three are recorded in order of their answers; the last one's count means all are in.
    settled(envoy, before, "weir_requests_total", 1, model="mock-openai", key="demo")
    after = settled(envoy, before, "weir_requests_total", 1, key="demo", outcome="client_error")

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("weir_requests_total", key="demo", outcome="client_error") == 1
    assert delta("weir_failovers_total", model="mock-failover") == 1
    assert delta("weir_pii_detections_total", detector="email") == 1


def test_streams_record_time_to_first_token(envoy):
    name = "gen_ai_server_time_to_first_token_ms_count"
    before = histogram_count_reaches(envoy, name, 0, model="mock-anthropic")
    stream = client(envoy).chat.completions.create(
        model="mock-anthropic", messages=[{"role": "user", "content": "a b c"}], stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices) == "echo: a b c"
    assert histogram_count_reaches(envoy, name, before + 1, model="mock-anthropic") >= before + 1


def test_label_values_never_come_from_client_input(envoy):
    before = scrape(envoy)
    with pytest.raises(openai.NotFoundError):
        client(envoy).chat.completions.create(model="attacker-controlled-label",
                                              messages=[{"role": "user", "content": "x"}])
    settled(envoy, before, "weir_requests_total", 1, key="demo", outcome="client_error")
    text = httpx.get(f"{envoy.admin_url}/stats/prometheus", timeout=10).text
    assert "attacker-controlled-label" not in text


def test_access_log_lines_are_json_with_weirs_summary(envoy):
    marker = "access log marker"

    def successes() -> list[dict]:
        return [s for s in access_summaries(envoy) if s.get("model") == "mock-bedrock" and s.get("outcome") == "success"]
    seen = len(successes())
    client(envoy).chat.completions.create(model="mock-bedrock", messages=[{"role": "user", "content": marker}])
    # Every access-log line is JSON (access_summaries parses each); the access log is flushed
    # every 250 ms, so wait for this request's line.
    bedrock = poll(lambda: successes()[seen:], "the bedrock request's summary in the access log")
    last = bedrock[-1]
    assert last["provider"] == "mock-bedrock" and last["key"] == "demo" and last["status"] == 200
    assert last["output_tokens"] > 0 and last["attempts"] >= 1
    assert last["co2e_mg"] > 0, "the carbon estimate is part of the summary"
    with open(envoy.access_log, encoding="utf-8") as f:
        assert marker not in f.read(), "prompt text must never reach the access log"
