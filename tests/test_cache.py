"""The response cache through real Envoy (two workers) with the official clients: a repeated
deterministic prompt is answered without reaching the provider (the mock's request record does
not grow), in the asking client's protocol and stream form; client directives, errors,
expiry, eviction and per-key scoping are honoured. The demo caches temperature-0 answers,
shared across keys and protocols; a second Envoy runs a tiny per-key cache for the bounds."""

from __future__ import annotations

import json
import os
import re
import uuid

import httpx
import openai
import pytest
import yaml

import render_envoy
from conftest import DEMO_YAML, WASM, free_port, poll, start_envoy, stop
from weir_clients import (DEMO_KEY, LIMITED_KEY, anthropic_client, ollama_client, openai_client)

MODEL = "mock-openai"
# The Anthropic SDK in use no longer has a `temperature` parameter; the API still takes it.
ZERO = {"temperature": 0}


def prompt(tag: str = "") -> list[dict]:
    """A user message no other test sends, so the shared demo cache starts cold for it."""
    return [{"role": "user", "content": f"cache {tag} {uuid.uuid4().hex}"}]


def oai(url: str, msgs: list[dict], key: str = DEMO_KEY, **kw):
    """OpenAI chat with temperature 0: (text, x-weir-cache)."""
    raw = openai_client(url, key).chat.completions.with_raw_response.create(
        model=kw.pop("model", MODEL), messages=msgs, temperature=kw.pop("temperature", 0), max_tokens=64, **kw)
    return raw.parse().choices[0].message.content, raw.headers.get("x-weir-cache")


def oai_stream(url: str, msgs: list[dict], **kw):
    raw = openai_client(url).chat.completions.with_raw_response.create(
        model=MODEL, messages=msgs, temperature=0, max_tokens=64, stream=True,
        stream_options={"include_usage": True}, **kw)
    text, finish, usage = "", None, None
    for ch in raw.parse():
        if ch.choices:
            text += ch.choices[0].delta.content or ""
            finish = ch.choices[0].finish_reason or finish
        if ch.usage:
            usage = ch.usage
    return text, finish, usage, raw.headers


def upstream(mock) -> int:
    return len(mock.requests("openai"))


def test_a_repeated_prompt_is_answered_from_the_cache_without_an_upstream_call(envoy, mock):
    msgs = prompt("hit")
    text, state = oai(envoy.url, msgs)
    assert (state, upstream(mock)) == ("miss", 1)
    raw = openai_client(envoy.url).chat.completions.with_raw_response.create(
        model=MODEL, messages=msgs, temperature=0, max_tokens=64)
    assert raw.headers["x-weir-cache"] == "hit"
    assert int(raw.headers["age"]) >= 0
    assert raw.parse().choices[0].message.content == text
    assert upstream(mock) == 1, "a hit must not reach the provider"
    # A different prompt, or another model route, is a miss.
    assert oai(envoy.url, prompt("other"))[1] == "miss"
    assert oai(envoy.url, msgs, model="mock-vllm")[1] == "miss"
    assert upstream(mock) == 2 and len(mock.requests()) == 3


def test_only_temperature_zero_is_cached_in_the_demo(envoy, mock):
    msgs = prompt("warm")
    for temperature in (0.7, 0.7):
        assert oai(envoy.url, msgs, temperature=temperature)[1] == "bypass"
    raw = openai_client(envoy.url).chat.completions.with_raw_response.create(model=MODEL, messages=msgs)
    assert raw.headers["x-weir-cache"] == "bypass"
    raw = openai_client(envoy.url).chat.completions.with_raw_response.create(model=MODEL, messages=msgs)
    assert raw.headers["x-weir-cache"] == "bypass"
    assert upstream(mock) == 4


def test_an_answer_fetched_by_openai_serves_anthropic_and_ollama_clients(envoy, mock):
    msgs = prompt("cross")
    text, state = oai(envoy.url, msgs)
    assert state == "miss" and text.startswith("echo: cache cross")
    raw = anthropic_client(envoy.url).messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=msgs, extra_body=ZERO)
    m = raw.parse()
    assert raw.headers["x-weir-cache"] == "hit"
    assert m.type == "message" and m.content[0].text == text and m.stop_reason == "end_turn"
    with anthropic_client(envoy.url).messages.stream(model=MODEL, max_tokens=64, messages=msgs,
                                                     extra_body=ZERO) as s:
        assert "".join(s.text_stream) == text
        assert s.get_final_message().stop_reason == "end_turn"
    r = ollama_client(envoy.url).chat(model=MODEL, messages=msgs, stream=False,
                                      options={"temperature": 0, "num_predict": 64})
    assert r.message.content == text and r.done
    streamed = "".join(p.message.content or "" for p in ollama_client(envoy.url).chat(
        model=MODEL, messages=msgs, stream=True, options={"temperature": 0, "num_predict": 64}))
    assert streamed == text
    assert upstream(mock) == 1, "every other protocol and form must have been a hit"


def test_pii_never_enters_the_cache_and_each_hit_gets_its_own_values_back(envoy, mock):
    tag = uuid.uuid4().hex
    alice = [{"role": "user", "content": f"pii {tag} mail alice@example.com"}]
    bob = [{"role": "user", "content": f"pii {tag} mail bob@example.org"}]
    assert oai(envoy.url, alice) == (f"echo: pii {tag} mail alice@example.com", "miss")
    seen = json.dumps(mock.requests())
    assert "alice" not in seen and "<EMAIL_1>" in seen
    # Scrubbed, both prompts are the same text: Bob's is a hit, with his own address restored.
    assert oai(envoy.url, bob) == (f"echo: pii {tag} mail bob@example.org", "hit")
    assert upstream(mock) == 1


def test_embeddings_are_cached(envoy, mock):
    c = openai_client(envoy.url)
    text = f"embed {uuid.uuid4().hex}"
    first = c.embeddings.with_raw_response.create(model=MODEL, input=[text], encoding_format="float")
    second = c.embeddings.with_raw_response.create(model=MODEL, input=[text], encoding_format="float")
    assert (first.headers["x-weir-cache"], second.headers["x-weir-cache"]) == ("miss", "hit")
    assert first.parse().data[0].embedding == second.parse().data[0].embedding
    assert upstream(mock) == 1


def test_a_completed_stream_is_stored_and_replayed_as_a_stream(envoy, mock):
    msgs = prompt("stream")
    text, finish, usage, headers = oai_stream(envoy.url, msgs)
    assert headers["x-weir-cache"] == "miss" and finish == "stop" and text
    again, finish2, usage2, headers2 = oai_stream(envoy.url, msgs)
    assert headers2["x-weir-cache"] == "hit"
    assert headers2["content-type"].startswith("text/event-stream")
    assert (again, finish2) == (text, "stop")
    assert usage2 is not None and usage2.completion_tokens == usage.completion_tokens
    # The stored stream also answers a plain request.
    assert oai(envoy.url, msgs) == (text, "hit")
    assert upstream(mock) == 1


def test_errors_and_broken_streams_are_not_cached(envoy, mock):
    msgs = prompt("error")
    httpx.post(mock.url + "/_mock/faults", json=[{"provider": "openai", "status": 400, "times": 1}],
               timeout=10).raise_for_status()
    with pytest.raises(openai.BadRequestError) as exc:
        oai(envoy.url, msgs)
    assert "injected by the weir mock" in exc.value.body["message"], exc.value.body  # the provider's 400
    assert oai(envoy.url, msgs)[1] == "miss", "the error must not have been stored"
    msgs = prompt("cut")
    httpx.post(mock.url + "/_mock/faults", json=[{"provider": "openai", "status": 200, "times": 1,
                                                  "truncate_stream_after": 1}], timeout=10).raise_for_status()
    # The provider resets the connection after one chunk; Envoy resets the client's stream.
    with pytest.raises(openai.APIConnectionError):
        oai_stream(envoy.url, msgs)
    text, finish, _, headers = oai_stream(envoy.url, msgs)
    assert headers["x-weir-cache"] == "miss" and finish == "stop"
    assert oai_stream(envoy.url, msgs)[3]["x-weir-cache"] == "hit"
    assert upstream(mock) == 4


def test_cache_control_no_store_and_no_cache_are_honoured(envoy, mock):
    msgs = prompt("directives")
    assert oai(envoy.url, msgs, extra_headers={"Cache-Control": "no-store"})[1] == "bypass"
    assert oai(envoy.url, msgs)[1] == "miss", "no-store must not have stored the answer"
    assert upstream(mock) == 2
    assert oai(envoy.url, msgs)[1] == "hit"
    # no-cache: fresh from the provider although an entry exists (and stored again).
    assert oai(envoy.url, msgs, extra_headers={"Cache-Control": "no-cache"})[1] == "miss"
    assert upstream(mock) == 3
    assert oai(envoy.url, msgs, extra_headers={"Cache-Control": "no-store"})[1] == "bypass"
    assert upstream(mock) == 4
    assert oai(envoy.url, msgs)[1] == "hit"
    assert upstream(mock) == 4


def test_every_worker_sees_the_same_cache(envoy, mock):
    msgs = prompt("workers")
    body = {"model": MODEL, "messages": msgs, "temperature": 0, "max_tokens": 64}
    first = httpx.post(envoy.url + "/v1/chat/completions", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {DEMO_KEY}"})
    assert first.headers["x-weir-cache"] == "miss"
    before = worker_connections(envoy)
    states = []
    for _ in range(24):
        # A fresh connection each time: Envoy spreads them over its two workers.
        with httpx.Client(timeout=30) as c:
            r = c.post(envoy.url + "/v1/chat/completions", json=body,
                       headers={"Authorization": f"Bearer {DEMO_KEY}", "Connection": "close"})
            states.append((r.status_code, r.headers.get("x-weir-cache")))
            assert r.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    assert states == [(200, "hit")] * 24
    assert upstream(mock) == 1
    after = worker_connections(envoy)
    served = {w: after[w] - before.get(w, 0) for w in after}
    assert len([w for w, n in served.items() if n > 0]) == 2, f"one worker took every connection: {served}"


def worker_connections(envoy) -> dict[str, int]:
    """Connections each Envoy worker accepted on the listener (Envoy's per-worker stats)."""
    text = httpx.get(envoy.admin_url + "/stats", params={"filter": r"worker_\d+\.downstream_cx_total"},
                     timeout=10).text
    return {m[1]: int(m[2]) for m in re.finditer(r"^listener\.[^:]*\.(worker_\d+)\.downstream_cx_total: (\d+)$",
                                                 text, re.M)}


def scrape(envoy, name: str) -> dict[str, float]:
    text = httpx.get(envoy.admin_url + "/stats/prometheus", timeout=10).text
    out: dict[str, float] = {}
    for m in re.finditer(rf'^{name}\{{([^}}]*)\}} ([0-9.e+]+)$', text, re.M):
        if f'model="{MODEL}"' in m[1]:
            state = re.search(r'cache="(\w+)"', m[1])
            if state:
                out[state[1]] = out.get(state[1], 0) + float(m[2])
    return out


def test_hits_and_misses_are_counted(envoy, mock):
    before = scrape(envoy, "weir_cache_requests_total")
    msgs = prompt("metrics")
    oai(envoy.url, msgs)
    oai(envoy.url, msgs)
    oai(envoy.url, msgs)
    oai(envoy.url, msgs, temperature=1)

    def delta() -> dict:
        after = scrape(envoy, "weir_cache_requests_total")
        return {k: after.get(k, 0) - before.get(k, 0) for k in ("hit", "miss", "bypass")}
    # Counted in Envoy's log phase, just after each answer: wait for all four, then compare.
    poll(lambda: sum(delta().values()) >= 4, "four cache outcomes counted")
    assert delta() == {"hit": 2, "miss": 1, "bypass": 1}


# ---- a second Envoy with a tiny, per-key cache: expiry, eviction, size limit, scoping

TINY = {"enabled": True, "scope": "key", "max_bytes": 8192, "max_entry_bytes": 4096, "ways": 2,
        "ttl_seconds": 300, "routes": {"mock-vllm": {"ttl_seconds": 1}}}


@pytest.fixture(scope="module")
def tiny(mock_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    port, admin = free_port(), free_port()
    text = render_envoy.render_text(open(DEMO_YAML, encoding="utf-8").read(), port=port, admin_port=admin,
                                    mock_port=int(mock_server.url.rsplit(":", 1)[1]), wasm=WASM)
    doc = yaml.safe_load(text)
    cfg = None

    def patch(node):
        nonlocal cfg
        if isinstance(node, dict):
            c = node.get("configuration")
            if isinstance(c, dict) and isinstance(c.get("value"), str) and node.get("root_id", "").startswith("weir-"):
                weir = json.loads(c["value"])
                weir["cache"] = TINY
                c["value"] = cfg = json.dumps(weir)
            for v in node.values():
                patch(v)
        elif isinstance(node, list):
            for v in node:
                patch(v)
    patch(doc)
    assert cfg, "no weir configuration found in demo.yaml"
    path = str(tmp / "tiny.yaml")
    with open(path, "w") as f:
        json.dump(doc, f)
    proc = start_envoy(path, str(tmp), str(tmp / "envoy.log"), port=port, admin_url=f"http://127.0.0.1:{admin}",
                       concurrency=2)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def test_an_entry_expires_with_its_routes_ttl(tiny, mock):
    msgs = prompt("ttl")
    assert oai(tiny, msgs, model="mock-vllm")[1] == "miss"
    assert oai(tiny, msgs, model="mock-vllm")[1] == "hit"
    # The route's TTL is 1 s: hits (which never reach the provider) until it runs out, then a miss.
    poll(lambda: oai(tiny, msgs, model="mock-vllm")[1] == "miss", "the entry expiring", timeout=5, interval=0.1)
    assert len(mock.requests("openai-compatible")) == 2


def test_a_full_cache_evicts_the_oldest_entry_and_stays_within_its_slots(tiny, mock):
    # 8192 bytes / 4096 per entry = 2 slots in one set.
    a, b, c = prompt("a"), prompt("b"), prompt("c")
    assert [oai(tiny, m)[1] for m in (a, b, a, b)] == ["miss", "miss", "hit", "hit"]
    assert oai(tiny, c)[1] == "miss"  # evicts a, the oldest stored
    assert [oai(tiny, m)[1] for m in (c, b)] == ["hit", "hit"]
    assert oai(tiny, a)[1] == "miss"
    assert upstream(mock) == 4
    # Whatever is sent, no more than two prompts are ever answered from the cache at once.
    many = [prompt(f"n{i}") for i in range(6)]
    for m in many:
        oai(tiny, m)
    hits = sum(oai(tiny, m)[1] == "hit" for m in many)
    assert hits <= 2


def test_an_answer_larger_than_a_slot_is_not_cached(tiny, mock):
    msgs = [{"role": "user", "content": "big " + uuid.uuid4().hex + " x" * 3000}]
    assert oai(tiny, msgs)[1] == "miss"
    assert oai(tiny, msgs)[1] == "miss"
    assert upstream(mock) == 2


def test_per_key_scope_never_serves_one_keys_answer_to_another(tiny, mock):
    msgs = prompt("tenant")
    assert oai(tiny, msgs, key=LIMITED_KEY)[1] == "miss"
    assert oai(tiny, msgs, key=DEMO_KEY)[1] == "miss"
    assert oai(tiny, msgs, key=DEMO_KEY)[1] == "hit"
    assert oai(tiny, msgs, key=LIMITED_KEY)[1] == "hit"
    assert upstream(mock) == 2


def test_hits_count_against_request_limits(tiny, mock):
    import openai
    # sk-weir-limited: 10 requests per minute on mock-openai (its window is this Envoy's own).
    msgs = prompt("limits")
    c = openai_client(tiny, LIMITED_KEY)
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0, max_tokens=64)
    assert raw.headers["x-weir-cache"] == "miss"
    remaining = int(raw.headers["x-ratelimit-remaining-requests"])
    assert remaining < 10
    for _ in range(remaining):
        raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=msgs, temperature=0, max_tokens=64)
        assert raw.headers["x-weir-cache"] == "hit"
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model=MODEL, messages=msgs, temperature=0, max_tokens=64)
    assert upstream(mock) == 1
