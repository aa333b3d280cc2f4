"""Errors weir answers itself: unknown model (404), a body that is not JSON (400, OpenAI-shaped),
a request without messages (400 naming the field); Envoy keeps serving afterwards."""

from __future__ import annotations

import anthropic
import httpx
import ollama
import openai
import pytest

from weir_clients import DEMO_KEY, anthropic_client, chat, ollama_client, openai_client

AUTH = {"authorization": f"Bearer {DEMO_KEY}", "content-type": "application/json"}
HI = [{"role": "user", "content": "hi"}]


def openai_error(r: httpx.Response) -> dict:
    """The OpenAI error shape: {"error": {"message": str, "type": str, ...}}."""
    body = r.json()
    assert isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    assert isinstance(body["error"].get("type"), str), body
    return body["error"]


def test_unknown_model_is_404(envoy, mock):
    with pytest.raises(openai.NotFoundError) as exc:
        openai_client(envoy.url).chat.completions.create(model="no-such-model", messages=HI)
    assert "no-such-model" in exc.value.body["message"] and exc.value.body["type"], exc.value.body
    with pytest.raises(anthropic.NotFoundError) as aexc:
        anthropic_client(envoy.url).messages.create(model="no-such-model", max_tokens=16, messages=HI)
    assert aexc.value.body["type"] == "error" and aexc.value.body["error"]["type"] == "not_found_error"
    assert "no-such-model" in aexc.value.body["error"]["message"], aexc.value.body
    with pytest.raises(ollama.ResponseError) as oexc:
        ollama_client(envoy.url).chat(model="no-such-model", messages=HI, stream=False)
    assert oexc.value.status_code == 404 and "no-such-model" in oexc.value.error, oexc.value.error
    assert mock.requests() == []


def test_malformed_json_is_400_openai_shaped(envoy, mock):
    r = httpx.post(envoy.url + "/v1/chat/completions", content=b'{"model": "mock-openai", "messages": [',
                   headers=AUTH, timeout=30)
    assert r.status_code == 400
    assert "json" in openai_error(r)["message"].lower(), r.text
    assert mock.requests() == []


def test_missing_messages_is_400_naming_it(envoy, mock):
    r = httpx.post(envoy.url + "/v1/chat/completions", json={"model": "mock-openai"}, headers=AUTH, timeout=30)
    assert r.status_code == 400
    assert "messages" in openai_error(r)["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client(envoy.url).chat.completions.create(model="mock-openai", messages=None)
    assert "messages" in str(exc.value)
    assert mock.requests() == []


def test_envoy_keeps_serving_after_errors(envoy, mock):
    for body in (b"", b"null", b"[]", b"\xff\xfe", b'{"model": 3, "messages": "x"}'):
        r = httpx.post(envoy.url + "/v1/chat/completions", content=body, headers=AUTH, timeout=30)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert openai_error(r)["type"] == "invalid_request_error", r.text
    for protocol in ("openai", "anthropic", "ollama"):
        assert chat(envoy.url, protocol, "mock-openai", "still there?", False) == "echo: still there?"
    assert len(mock.requests()) == 3
