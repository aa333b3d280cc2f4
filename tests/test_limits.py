"""Per-key limits under real concurrency, through Envoy's two workers: requests per minute are
exact (never one more than the limit), every admitted answer counts down in its x-ratelimit-*
headers, and token limits reserve an estimate at admission and hold within the documented bound.

Each test uses its own key from envoy/demo.yaml: a limit's window lives in Envoy's shared data
for ~61 s, longer than the test, so no key is shared between tests (or with other files)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import openai
import pytest

from weir_clients import (ABANDON_KEY, BURST_KEY, HEADERS_KEY, TIMEOUT, TOKENS_FLOOD_KEY, TOKENS_KEY,
                          openai_client)

# Nine three-letter words: 35 bytes, so weir estimates ceil(35 / 4) = 9 prompt tokens; the mock
# counts 9 words in and answers "echo: <the nine words>", 10 words out. With max_tokens 10 the
# reservation (9 + 10 = 19) equals the real usage: see the comment on sk-weir-tokens in demo.yaml.
NINE_WORDS = "one two six ten red big cat dog sun"
assert len(NINE_WORDS) == 35 and len(NINE_WORDS.split()) == 9
TOKENS_PER_MINUTE = 200
COST = 19                      # estimate == actual usage of one NINE_WORDS request, max_tokens 10
FLOOD_LIMIT = 500              # sk-weir-tokens-flood
FLOOD_MAX_TOKENS = 100         # estimate 9 + 100 = 109 > actual 19


def async_client(envoy, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=envoy.url + "/v1", api_key=key, max_retries=0, timeout=TIMEOUT)


async def fire(envoy, key: str, n: int, model: str, **kw) -> list:
    """n requests at once; each result is the raw response (admitted) or the RateLimitError."""
    async with async_client(envoy, key) as client:
        async def one(i: int):
            try:
                return await client.chat.completions.with_raw_response.create(
                    model=model, messages=[{"role": "user", "content": kw.get("text", f"burst {i}")}],
                    **{k: v for k, v in kw.items() if k != "text"})
            except openai.RateLimitError as exc:
                return exc
        return await asyncio.gather(*(one(i) for i in range(n)))


def go_duration_s(value: str) -> float:
    """OpenAI's reset format: 250ms, 6s, 1m1s."""
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?|(\d+)ms", value)
    assert m and value, value
    if m.group(3):
        return int(m.group(3)) / 1000
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)


def test_requests_per_minute_is_exact_under_200_concurrent_requests(envoy, mock):
    results = asyncio.run(fire(envoy, BURST_KEY, 200, "mock-ollama"))
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert (len(ok), len(refused)) == (60, 140)
    for exc in refused:
        assert exc.status_code == 429
        assert "requests per minute limit of 60" in exc.message, exc.message
        assert 1 <= int(exc.response.headers["retry-after"]) <= 61, exc.response.headers
    # Each admission saw its own count: the 60 answers say 59, 58, ..., 0 remaining, once each.
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok)
    assert remaining == list(range(60)), remaining
    assert {r.headers["x-ratelimit-limit-requests"] for r in ok} == {"60"}
    for r in ok:
        assert r.parse().choices[0].message.content.startswith("echo: burst ")
    assert len(mock.requests("ollama")) == 60  # refused requests never reach the provider


def test_ratelimit_headers_count_down(envoy, mock):
    client = openai_client(envoy.url, HEADERS_KEY)
    seen = []
    for i in range(5):
        raw = client.chat.completions.with_raw_response.create(
            model="mock-openai", messages=[{"role": "user", "content": f"count {i}"}])
        assert raw.parse().choices[0].message.content == f"echo: count {i}"
        assert raw.headers["x-ratelimit-limit-requests"] == "20"
        assert 0 < go_duration_s(raw.headers["x-ratelimit-reset-requests"]) <= 61, raw.headers
        seen.append(int(raw.headers["x-ratelimit-remaining-requests"]))
    assert seen == [19, 18, 17, 16, 15]
    assert len(mock.requests("openai")) == 5


def test_tokens_per_minute_admits_until_the_window_is_spent(envoy, mock):
    client = openai_client(envoy.url, TOKENS_KEY)
    remaining, usage = [], []
    refusal = None
    for _ in range(TOKENS_PER_MINUTE // COST + 2):
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="mock-openai", max_tokens=10, messages=[{"role": "user", "content": NINE_WORDS}])
        except openai.RateLimitError as exc:
            refusal = exc
            break
        usage.append(raw.parse().usage.total_tokens)
        assert raw.headers["x-ratelimit-limit-tokens"] == str(TOKENS_PER_MINUTE)
        remaining.append(int(raw.headers["x-ratelimit-remaining-tokens"]))
    # 10 requests of 19 tokens fit in 200; the 11th (190 + 19 > 200) is refused.
    assert usage == [COST] * 10, usage
    assert remaining == [TOKENS_PER_MINUTE - COST * k for k in range(1, 11)], remaining
    assert refusal is not None and refusal.status_code == 429
    assert "tokens per minute limit of 200" in refusal.message, refusal.message
    assert int(refusal.response.headers["retry-after"]) >= 1
    assert len(mock.requests("openai")) == 10


def test_tokens_per_minute_holds_under_50_concurrent_requests(envoy, mock):
    # Each request reserves 9 + 100 = 109 tokens and really uses 19, so actual <= estimate for
    # every one and the overshoot bound is zero: what the admitted requests used must fit the
    # limit. (All 50 would use 950 > 500: some must be refused.)
    results = asyncio.run(fire(envoy, TOKENS_FLOOD_KEY, 50, "mock-openai", text=NINE_WORDS,
                               max_tokens=FLOOD_MAX_TOKENS))
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    used = [r.parse().usage.total_tokens for r in ok]
    assert set(used) == {COST}, used
    assert sum(used) <= FLOOD_LIMIT, (len(ok), sum(used))
    # At admission, the reservation itself fit: 0 <= remaining <= limit - estimate.
    for r in ok:
        assert 0 <= int(r.headers["x-ratelimit-remaining-tokens"]) <= FLOOD_LIMIT - (9 + FLOOD_MAX_TOKENS), r.headers
    assert len(ok) >= FLOOD_LIMIT // (9 + FLOOD_MAX_TOKENS)  # at least the first 4 reservations fit
    assert refused, "all 50 admitted: 950 tokens in a 500-token minute"
    for exc in refused:
        assert exc.status_code == 429 and "tokens per minute limit of 500" in exc.message, exc.message
    assert len(mock.requests("openai")) == len(ok)


def test_a_client_that_gives_up_is_charged_its_estimate(envoy, mock):
    # 120 tokens a minute; each request reserves ceil(2 / 4) + 50 = 51: two fit, not three. The
    # provider is slow, and the client gives up before the answer: the provider still did the work.
    httpx.post(mock.url + "/_mock/faults", json={"provider": "openai", "status": 200, "delay_ms": 2000},
               timeout=10).raise_for_status()
    body = {"model": "mock-openai", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {ABANDON_KEY}"}
    for _ in range(2):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(envoy.url + "/v1/chat/completions", json=body, headers=headers, timeout=0.5)
    time.sleep(0.3)  # Envoy finishes the abandoned streams
    mock.clear()
    with pytest.raises(openai.RateLimitError):
        openai_client(envoy.url, ABANDON_KEY).chat.completions.create(**body)
    time.sleep(0.6)  # the access log is flushed every 250 ms
    with open(envoy.access_log, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    mine = [json.loads(line["weir"]) for line in lines
            if line.get("weir") not in (None, "", "-") and '"abandon"' in line["weir"]]
    charged = [s for s in mine if s.get("charged") == "estimate"]
    assert len(charged) == 2, mine
    assert all(s["status"] == 499 and s["estimated_tokens"] == 51 for s in charged), charged
