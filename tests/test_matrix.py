"""Every demo model through every client protocol, plain and streamed: the answer is the mock's
exact echo, and the mock saw exactly one valid request, in its provider's format, with its key."""

from __future__ import annotations

import pytest

from weir_clients import DEMO_MODELS, PROTOCOLS, chat, sha12, tool_call, tool_result

MESSAGE = "héllo wörld 🦀"
TOOL_ASK = "please use the tool for héllo wörld 🦀"
TOOL_RESULT = '{"city":"Zürich"}'  # a compact one-key object: Gemini gets it as the response object

CASES = [(m, p, s) for m in DEMO_MODELS for p in PROTOCOLS for s in (False, True)]
IDS = [f"{m}-{p}-{'stream' if s else 'plain'}" for m, p, s in CASES]


def only_request(mock, model: str) -> dict:
    provider, upstream_model, key = DEMO_MODELS[model]
    recs = mock.requests()
    assert [(r["provider"], r["status"]) for r in recs] == [(provider, 200)], recs
    rec = recs[0]
    assert rec["valid"] is True, rec["errors"]
    assert rec["model"] == upstream_model
    keys = key if isinstance(key, tuple) else (key,)  # mock-openai rotates over three keys
    assert rec["key_sha12"] in [sha12(k) if k else None for k in keys], rec["key_sha12"]
    return rec


@pytest.mark.parametrize("model,protocol,stream", CASES, ids=IDS)
def test_echo(envoy, mock, model, protocol, stream):
    assert chat(envoy.url, protocol, model, MESSAGE, stream) == "echo: " + MESSAGE
    only_request(mock, model)


@pytest.mark.parametrize("model,protocol,stream", CASES, ids=IDS)
def test_tool_round_trip(envoy, mock, model, protocol, stream):
    name, args, convo = tool_call(envoy.url, protocol, model, TOOL_ASK, stream)
    assert (name, args) == ("search", {"query": TOOL_ASK})
    only_request(mock, model)
    mock.clear()
    assert tool_result(envoy.url, protocol, model, convo, TOOL_RESULT) == "echo: " + TOOL_RESULT
    only_request(mock, model)


@pytest.mark.parametrize("model", ["mock-openai", "mock-anthropic"])
def test_large_prompt_fits_the_buffers(envoy, mock, model):
    """3 MB in and out: above Envoy's 1 MiB default buffer, within the demo's 8 MiB route limit
    and weir's 4 MiB default max_request_bytes."""
    text = "lorem ipsum dolor sit amet " * 110_000
    assert chat(envoy.url, "openai", model, text, False) == "echo: " + text
    only_request(mock, model)
