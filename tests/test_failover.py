"""mock-failover: the priority-0 provider always answers 503; Envoy retries on the priority-1
endpoint (anthropic) and weir-provider translates the retry for it, with that provider's key."""

from __future__ import annotations

import pytest

from weir_clients import PROTOCOLS, anthropic_client, chat, openai_client, sha12

MESSAGE = "fail over, s'il vous plaît ✈"


def assert_failed_over(mock) -> None:
    recs = mock.requests()
    assert [(r["provider"], r["status"]) for r in recs] == [("failing", 503), ("anthropic", 200)], recs
    failing, served = recs
    assert failing["valid"] and served["valid"], (failing["errors"], served["errors"])
    assert failing["key_sha12"] == sha12("sk-mock-failing") and failing["model"] == "gpt-4o-mini"
    assert served["key_sha12"] == sha12("sk-ant-mock") and served["model"] == "claude-sonnet-4-5"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_failover_answers_from_the_next_priority(envoy, mock, protocol, stream):
    assert chat(envoy.url, protocol, "mock-failover", MESSAGE, stream) == "echo: " + MESSAGE
    assert_failed_over(mock)


# Assumption (debug_headers on in the demo): the answer names the provider that served it in
# x-weir-served-by, by its configured name.
def test_served_by_header_names_the_provider_that_answered(envoy, mock):
    raw = openai_client(envoy.url).chat.completions.with_raw_response.create(
        model="mock-failover", messages=[{"role": "user", "content": MESSAGE}])
    assert raw.headers.get("x-weir-served-by") == "mock-anthropic"
    assert raw.parse().choices[0].message.content == "echo: " + MESSAGE
    assert_failed_over(mock)


def test_served_by_header_on_streams_and_anthropic(envoy, mock):
    with openai_client(envoy.url).chat.completions.with_streaming_response.create(
            model="mock-failover", stream=True, messages=[{"role": "user", "content": MESSAGE}]) as resp:
        assert resp.headers.get("x-weir-served-by") == "mock-anthropic"
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text == "echo: " + MESSAGE
    assert_failed_over(mock)
    mock.clear()
    raw = anthropic_client(envoy.url).messages.with_raw_response.create(
        model="mock-failover", max_tokens=64, messages=[{"role": "user", "content": MESSAGE}])
    assert raw.headers.get("x-weir-served-by") == "mock-anthropic"
    assert raw.parse().content[0].text == "echo: " + MESSAGE
    assert_failed_over(mock)


def test_plain_models_do_not_carry_failover_traces(envoy, mock):
    raw = openai_client(envoy.url).chat.completions.with_raw_response.create(
        model="mock-openai", messages=[{"role": "user", "content": MESSAGE}])
    assert raw.headers.get("x-weir-served-by") == "mock-openai"
    assert [r["provider"] for r in mock.requests()] == ["openai"]
