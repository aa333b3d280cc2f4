"""Client keys: no key or a wrong one is 401 in every protocol, a key limited to some models gets
404 for the others (as if they did not exist), the per-key request rate limit answers 429, /v1/models lists what a key may
use, and no client key ever reaches a provider."""

from __future__ import annotations

import anthropic
import httpx
import ollama
import openai
import pytest

from weir_clients import (ALL_DEMO_MODELS, DEMO_KEY, LIMITED_KEY, anthropic_client, chat, dumps,
                          ollama_client, openai_client)

HI = [{"role": "user", "content": "hi"}]


def test_missing_key_is_401_in_every_protocol(envoy, mock):
    # The official OpenAI and Anthropic clients refuse to send a request without a key, so
    # these two go out through httpx; Ollama's client sends none by default.
    r = httpx.post(envoy.url + "/v1/chat/completions", json={"model": "mock-openai", "messages": HI}, timeout=30)
    assert r.status_code == 401
    err = r.json()["error"]  # OpenAI's own 401: invalid_request_error, code invalid_api_key
    assert (err["type"], err["code"]) == ("invalid_request_error", "invalid_api_key"), err
    assert "key" in err["message"].lower(), err
    r = httpx.post(envoy.url + "/v1/messages", timeout=30,
                   json={"model": "mock-anthropic", "max_tokens": 16, "messages": HI})
    assert r.status_code == 401
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error", body
    assert "key" in body["error"]["message"].lower(), body
    with pytest.raises(ollama.ResponseError) as exc:
        ollama_client(envoy.url, key=None).chat(model="mock-ollama", messages=HI, stream=False)
    assert exc.value.status_code == 401 and "key" in exc.value.error.lower(), exc.value.error
    assert mock.requests() == []


def test_wrong_key_is_401_in_every_protocol(envoy, mock):
    with pytest.raises(openai.AuthenticationError) as exc:
        openai_client(envoy.url, "sk-weir-wrong").chat.completions.create(model="mock-openai", messages=HI)
    assert exc.value.body["code"] == "invalid_api_key" and "key" in exc.value.body["message"].lower()
    assert "sk-weir-wrong" not in exc.value.body["message"]  # a refused key is never echoed
    with pytest.raises(anthropic.AuthenticationError) as aexc:
        anthropic_client(envoy.url, "sk-weir-wrong").messages.create(model="mock-anthropic", max_tokens=16,
                                                                     messages=HI)
    assert aexc.value.body["type"] == "error" and aexc.value.body["error"]["type"] == "authentication_error"
    assert "sk-weir-wrong" not in aexc.value.body["error"]["message"]
    with pytest.raises(ollama.ResponseError) as exc:
        ollama_client(envoy.url, "sk-weir-wrong").chat(model="mock-ollama", messages=HI, stream=False)
    assert exc.value.status_code == 401 and "key" in exc.value.error.lower(), exc.value.error
    with pytest.raises(openai.AuthenticationError):  # not a prefix match, not case-insensitive
        openai_client(envoy.url, DEMO_KEY.upper()).chat.completions.create(model="mock-openai", messages=HI)
    assert mock.requests() == []


def test_limited_key_may_not_use_other_models(envoy, mock):
    # Answered exactly like a model that does not exist: a key cannot probe what others have.
    answers = []
    for model in ("mock-anthropic", "no-such-model"):
        with pytest.raises(openai.NotFoundError) as exc:
            openai_client(envoy.url, LIMITED_KEY).chat.completions.create(model=model, messages=HI)
        answers.append(exc.value.body["message"].replace(model, "M"))
    assert answers[0] == answers[1], answers
    assert mock.requests() == []


def test_models_list_shows_what_each_key_may_use(envoy):
    listed = sorted(m.id for m in openai_client(envoy.url, DEMO_KEY).models.list())
    assert listed == ALL_DEMO_MODELS
    assert [m.id for m in openai_client(envoy.url, LIMITED_KEY).models.list()] == ["mock-openai"]
    with pytest.raises(openai.AuthenticationError):
        openai_client(envoy.url, "sk-weir-wrong").models.list()


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_client_keys_never_reach_a_provider(envoy, mock, protocol):
    for model in ("mock-openai", "mock-anthropic", "mock-gemini", "mock-bedrock", "mock-ollama"):
        assert chat(envoy.url, protocol, model, "key check", stream=False) == "echo: key check"
    recs = mock.requests()
    assert len(recs) == 5
    # The mock refuses (valid: false) any request with a header holding "sk-weir-" or named x-weir-*.
    assert all(r["valid"] for r in recs), [r["errors"] for r in recs]
    assert "sk-weir-" not in dumps(recs)


# The limit lives in Envoy's shared data for the life of the process: this runs after every other
# test. Earlier tests used the limited key a few times (models list, a 403); whether those count
# is weir's choice, so up to two of the ten may already be used.
@pytest.mark.late(1)
def test_limited_key_rate_limit_is_429(envoy, mock):
    client = openai_client(envoy.url, LIMITED_KEY)
    outcomes = []
    for _ in range(11):
        try:
            client.chat.completions.create(model="mock-openai", messages=HI)
            outcomes.append("ok")
        except openai.RateLimitError as exc:
            assert exc.status_code == 429
            outcomes.append("429")
    assert outcomes[-1] == "429", outcomes
    first = outcomes.index("429")
    assert 8 <= first <= 10 and set(outcomes[first:]) == {"429"}, outcomes
    assert len(mock.requests()) == first  # refused requests never reach the provider
    # Another key is not affected.
    assert openai_client(envoy.url, DEMO_KEY).chat.completions.create(
        model="mock-openai", messages=HI).choices[0].message.content == "echo: hi"
