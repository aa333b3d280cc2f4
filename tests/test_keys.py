"""Keys, both kinds: weir rotates a provider's keys and sidelines one the provider answered 429
(for its Retry-After) while the client never notices; and a client cannot steer routing with
weir's internal headers, smuggle a key in a way auth does not accept, or trap a VM with odd
header values. Plus the official clients' exception types for weir's refusals."""

from __future__ import annotations

import time

import anthropic
import httpx
import ollama
import openai
import pytest

from conftest import assert_no_trap
from weir_clients import (DEMO_KEY, LIMITED_KEY, OPENAI_KEYS, anthropic_client, ollama_client,
                          openai_client, sha12)

HI = [{"role": "user", "content": "hi"}]
KEY_SHAS = [sha12(k) for k in OPENAI_KEYS]


def ask(envoy, text: str) -> str:
    return openai_client(envoy.url, DEMO_KEY).chat.completions.create(
        model="mock-openai", messages=[{"role": "user", "content": text}]).choices[0].message.content


def key_indexes(recs: list[dict]) -> list[int]:
    """Which of mock-openai's keys (0, 1, 2) each recorded request carried."""
    shas = [r["key_sha12"] for r in recs]
    assert set(shas) <= set(KEY_SHAS), shas
    return [KEY_SHAS.index(s) for s in shas]


# --- provider key rotation ------------------------------------------------------------------

def test_provider_keys_rotate_and_a_429_key_cools_down_for_its_retry_after(envoy, mock):
    # 1. Round robin: sequential requests use the three keys in turn, all of them.
    for i in range(12):
        assert ask(envoy, f"rotate {i}") == f"echo: rotate {i}"
    used = key_indexes(mock.requests("openai"))
    assert len(used) == 12
    assert all(b == (a + 1) % 3 for a, b in zip(used, used[1:])), used
    assert set(used) == {0, 1, 2}

    # 2. The provider answers 429 (Retry-After: 3) to key 2: the client never sees it (Envoy
    # retries 429 and weir picks another key), and key 2 is not used again while it cools.
    mock.clear()
    r = httpx.post(mock.url + "/_mock/faults", timeout=10, json=[
        {"provider": "openai", "key_sha12": KEY_SHAS[1], "status": 429, "headers": {"retry-after": "3"}}])
    assert r.status_code == 200, r.text
    for i in range(8):
        assert ask(envoy, f"cool {i}") == f"echo: cool {i}"
    recs = mock.requests("openai")
    idx = key_indexes(recs)
    first_429 = next(n for n, r in enumerate(recs) if r["status"] == 429)
    assert idx[first_429] == 1 and first_429 <= 2, idx  # key 2 came up within one turn
    t429 = recs[first_429]["time"]
    during = [(i, r) for i, r in zip(idx[first_429 + 1:], recs[first_429 + 1:]) if r["time"] < t429 + 2.9]
    # Every attempt after the 429 fell in the cooldown; with 6 or more of them, plain round
    # robin would have picked key 2 at least twice.
    assert len(during) == len(recs) - first_429 - 1 >= 6, "the requests took too long"
    assert all(i != 1 for i, _ in during), idx
    assert all(r["status"] == 200 for _, r in during), [r["status"] for _, r in during]
    assert {i for i, _ in during} == {0, 2}  # the other two still rotate
    assert [r["status"] for r in recs].count(429) == 1, [r["status"] for r in recs]
    assert len(recs) == 9  # 8 client requests, one of them retried once

    # 3. Once the cooldown is over (and the provider is happy again) key 2 is back in rotation.
    httpx.delete(mock.url + "/_mock/faults", timeout=10).raise_for_status()
    wait = t429 + 3.5 - time.time()
    assert wait < 5
    time.sleep(max(0.0, wait))
    mock.clear()
    for i in range(3):
        assert ask(envoy, f"back {i}") == f"echo: back {i}"
    recs = mock.requests("openai")
    assert sorted(key_indexes(recs)) == [0, 1, 2], key_indexes(recs)
    assert all(r["status"] == 200 for r in recs)


def set_faults(mock, rules: list[dict]) -> None:
    r = httpx.post(mock.url + "/_mock/faults", timeout=10, json=rules)
    assert r.status_code == 200, r.text


def test_a_refusal_the_request_caused_benches_no_key(envoy, mock):
    # Every key of mock-openai gets a 403 for what this request asks (the provider's project
    # may not use the model). The client gets the gateway's 502, which quotes no account id, and
    # no key is benched: before, each of the three attempts benched the key it used.
    forbidden = {"error": {"message": "Project `proj_Tenant42` does not have access to model `gpt-4o-mini`",
                           "type": "invalid_request_error", "param": None, "code": "model_not_found"}}
    mock.clear()
    set_faults(mock, [{"provider": "openai", "status": 403, "body": forbidden}])
    try:
        with pytest.raises(openai.InternalServerError) as refused:
            ask(envoy, "forbidden")
    finally:
        httpx.delete(mock.url + "/_mock/faults", timeout=10).raise_for_status()
    assert refused.value.status_code == 502
    assert "refused this request" in str(refused.value) and "proj_Tenant42" not in str(refused.value)
    recs = mock.requests("openai")
    assert [r["status"] for r in recs] == [403, 403, 403]  # Envoy retried the 502 on each key
    assert sorted(key_indexes(recs)) == [0, 1, 2]
    mock.clear()
    for i in range(6):
        assert ask(envoy, f"after {i}") == f"echo: after {i}"
    used = key_indexes(mock.requests("openai"))
    assert all(b == (a + 1) % 3 for a, b in zip(used, used[1:])), used  # plain rotation


def test_geminis_invalid_key_400_is_the_gateways_502(envoy, mock):
    # Gemini says a key is bad with a 400 INVALID_ARGUMENT and the reason API_KEY_INVALID: that
    # is the gateway's key, not the client's request, so the client gets the gateway's 502.
    invalid_key = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                             "status": "INVALID_ARGUMENT", "details": [
                                 {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                  "domain": "googleapis.com",
                                  "metadata": {"service": "generativelanguage.googleapis.com"}}]}}
    set_faults(mock, [{"provider": "gemini", "status": 400, "body": invalid_key}])
    try:
        with pytest.raises(openai.InternalServerError) as rejected:
            openai_client(envoy.url, DEMO_KEY).chat.completions.create(model="mock-gemini", messages=HI)
    finally:
        httpx.delete(mock.url + "/_mock/faults", timeout=10).raise_for_status()
    assert rejected.value.status_code == 502
    assert "rejected the gateway's credentials (key 'demo')" in str(rejected.value)
    assert "API key not valid" not in str(rejected.value)


# --- spoofing and odd credentials, through Envoy ---------------------------------------------

def post_chat(envoy, headers, model: str = "mock-openai", query: str = "") -> httpx.Response:
    return httpx.post(envoy.url + "/v1/chat/completions" + query, headers=headers, timeout=30,
                      json={"model": model, "messages": HI})


def test_internal_headers_from_clients_change_nothing(envoy, mock):
    auth = ("authorization", f"Bearer {DEMO_KEY}")
    for spoof in ([("x-weir-cluster", "mock_anthropic")],
                  [("x-weir-provider", "mock-anthropic"), ("x-weir-ir", "response")],
                  [("x-weir-cluster", "mock_anthropic"), ("x-weir-provider", "mock-anthropic"),
                   ("x-weir-ir", "stream"), ("x-weir-served-by", "x")]):
        mock.clear()
        r = post_chat(envoy, [auth, *spoof])
        assert r.status_code == 200, (spoof, r.text)
        assert r.json()["choices"][0]["message"]["content"] == "echo: hi"
        assert r.headers.get("x-weir-served-by") == "mock-openai", dict(r.headers)
        recs = mock.requests()
        # The mock marks a request invalid if any x-weir-* header reached it.
        assert [(x["provider"], x["valid"]) for x in recs] == [("openai", True)], (spoof, recs)


@pytest.mark.parametrize("case", ["two-authorization-same", "two-authorization-different",
                                  "authorization-and-x-api-key-differ", "basic-scheme",
                                  "key-in-query-only", "huge-value", "non-utf8-authorization",
                                  "non-utf8-x-api-key"])
def test_odd_credentials_are_refused_and_envoy_keeps_serving(envoy, mock, case):
    bearer = f"Bearer {DEMO_KEY}"
    headers, query, allowed = {
        "two-authorization-same": ([("authorization", bearer), ("authorization", bearer)], "", {401}),
        "two-authorization-different": ([("authorization", bearer), ("authorization", f"Bearer {LIMITED_KEY}")],
                                        "", {401}),
        "authorization-and-x-api-key-differ": ([("authorization", bearer), ("x-api-key", LIMITED_KEY)], "", {401}),
        "basic-scheme": ([("authorization", "Basic c2std2Vpci1kZW1vOg==")], "", {401}),
        "key-in-query-only": ([], f"?api_key={DEMO_KEY}&key={DEMO_KEY}", {401}),
        # 10 KB: past weir's 512-byte cap; Envoy itself may refuse it first (431).
        "huge-value": ([("authorization", "Bearer sk-weir-" + "x" * 10240)], "", {401, 431}),
        "non-utf8-authorization": ([("authorization", b"Bearer sk-weir-demo\xff\xfe")], "", {401}),
        "non-utf8-x-api-key": ([("x-api-key", b"sk-weir-\xc3\x28demo")], "", {401}),
    }[case]
    r = post_chat(envoy, headers, query=query)
    assert r.status_code in allowed, (r.status_code, r.text)
    if r.status_code == 401:
        err = r.json()["error"]
        assert isinstance(err["message"], str) and "sk-weir" not in err["message"]
    assert mock.requests() == []
    # Envoy and every weir VM keep serving: a normal request right after works...
    for _ in range(4):  # two workers: likely both see one
        assert ask(envoy, "still here") == "echo: still here"
    # ...and nothing panicked or trapped.
    assert_no_trap("after an odd credential")


# --- the official clients' exception types ---------------------------------------------------
# test_auth.py covers openai.AuthenticationError / NotFoundError, anthropic's
# AuthenticationError and ollama's 401; these are the remaining refusals.

def test_anthropic_client_gets_not_found_for_a_model_the_key_may_not_use(envoy, mock):
    with pytest.raises(anthropic.NotFoundError) as exc:
        anthropic_client(envoy.url, LIMITED_KEY).messages.create(model="mock-anthropic", max_tokens=16, messages=HI)
    assert exc.value.status_code == 404
    assert "mock-anthropic" in exc.value.message
    assert exc.value.body["type"] == "error" and exc.value.body["error"]["type"] == "not_found_error"
    assert mock.requests() == []


def test_ollama_client_gets_404_for_a_model_the_key_may_not_use(envoy, mock):
    with pytest.raises(ollama.ResponseError) as exc:
        ollama_client(envoy.url, LIMITED_KEY).chat(model="mock-ollama", messages=HI, stream=False)
    assert exc.value.status_code == 404
    assert "mock-ollama" in exc.value.error
    assert mock.requests() == []


def test_anthropic_client_with_a_key_in_two_headers_is_refused(envoy, mock):
    # The SDK sends its api_key in one credential header (Authorization: Bearer in recent
    # versions); a second, different key in x-api-key is a conflict, whichever one is valid.
    client = anthropic.Anthropic(base_url=envoy.url, api_key=DEMO_KEY, max_retries=0, timeout=30,
                                 default_headers={"x-api-key": LIMITED_KEY})
    with pytest.raises(anthropic.AuthenticationError) as exc:
        client.messages.create(model="mock-anthropic", max_tokens=16, messages=HI)
    assert exc.value.body["type"] == "error" and exc.value.body["error"]["type"] == "authentication_error"
    message = exc.value.body["error"]["message"]
    assert "sk-weir" not in message and ("header" in message.lower() or "key" in message.lower()), message
    assert mock.requests() == []
