"""The whole request each provider gets, for every client protocol x provider type, plain and
streamed: the system prompt, every turn in order, the tool definitions, the sampling parameters,
the stop sequences and the token limit, read back from the mock's record of that one request
(its `x-mock-test-id`) and compared, in one provider-neutral form, with what the client sent.

Each provider wire is read by its own function below (`VIEW`), written from that provider's
request format; a field weir lost, reordered, renamed wrongly or put in the wrong place makes the
views differ. Only what a protocol or provider cannot carry is left out, each case saying why."""

from __future__ import annotations

import uuid

import pytest

from weir_clients import (ANTHROPIC_TOOLS, DEMO_MODELS, OPENAI_TOOLS, PROTOCOLS, RESPONSES_TOOLS, SCHEMA,
                          anthropic_client, ollama_client, openai_client)

SYSTEM = "You are terse and exact."
TURNS = [("user", "first question about rivers"), ("assistant", "first answer: the Rhine"),
         ("user", "second question about lakes")]
TOOLS = [("search", "Search the web", SCHEMA)]
TEMPERATURE, TOP_P, MAX_TOKENS, STOP = 0.3, 0.9, 77, ["END", "HALT"]
CASES = [(p, m, s) for p in PROTOCOLS for m in DEMO_MODELS for s in (False, True)]


def text_of(content) -> str:
    """Text of a content value in any of the wires: a string, or blocks/parts carrying text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(p.get("text")) if isinstance(p, dict) and "text" in p else "" for p in content)
    return ""


def view(**kw) -> dict:
    return dict({"system": "", "turns": [], "tools": [], "temperature": None, "top_p": None, "stop": None,
                 "max_tokens": None}, **kw)


def stops(value) -> list | None:
    return [value] if isinstance(value, str) else value


# --- each provider wire, read into the neutral view -------------------------------------------

def openai_chat(b: dict) -> dict:
    msgs = b.get("messages") or []
    return view(system="".join(text_of(m.get("content")) for m in msgs if m["role"] in ("system", "developer")),
                turns=[(m["role"], text_of(m.get("content"))) for m in msgs if m["role"] not in ("system", "developer")],
                tools=[(t["function"]["name"], t["function"].get("description"), t["function"].get("parameters"))
                       for t in b.get("tools") or []],
                temperature=b.get("temperature"), top_p=b.get("top_p"), stop=stops(b.get("stop")),
                max_tokens=b.get("max_completion_tokens", b.get("max_tokens")))


def openai_responses(b: dict) -> dict:
    items = b.get("input") if isinstance(b.get("input"), list) else [{"role": "user", "content": b.get("input")}]
    msgs = [i for i in items if i.get("type", "message") == "message"]
    system = (b.get("instructions") or "") + "".join(text_of(m.get("content")) for m in msgs
                                                     if m["role"] in ("system", "developer"))
    return view(system=system,
                turns=[(m["role"], text_of(m.get("content"))) for m in msgs if m["role"] not in ("system", "developer")],
                tools=[(t["name"], t.get("description"), t.get("parameters")) for t in b.get("tools") or []],
                temperature=b.get("temperature"), top_p=b.get("top_p"), max_tokens=b.get("max_output_tokens"))


def anthropic_messages(b: dict) -> dict:
    return view(system=text_of(b.get("system")),
                turns=[(m["role"], text_of(m.get("content"))) for m in b.get("messages") or []],
                tools=[(t["name"], t.get("description"), t.get("input_schema")) for t in b.get("tools") or []],
                temperature=b.get("temperature"), top_p=b.get("top_p"), stop=b.get("stop_sequences"),
                max_tokens=b.get("max_tokens"))


def gemini_schema(schema):
    """Gemini's Schema (OpenAPI subset, type names in capitals) read back as JSON Schema."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else gemini_schema(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [gemini_schema(v) for v in schema]
    return schema


def gemini(b: dict) -> dict:
    gen = b.get("generationConfig") or {}
    decls = [d for t in b.get("tools") or [] for d in t.get("functionDeclarations") or []]
    return view(system=text_of((b.get("systemInstruction") or {}).get("parts")),
                turns=[({"model": "assistant"}.get(c.get("role"), c.get("role")), text_of(c.get("parts")))
                       for c in b.get("contents") or []],
                tools=[(d["name"], d.get("description"),
                        d["parametersJsonSchema"] if "parametersJsonSchema" in d else gemini_schema(d.get("parameters")))
                       for d in decls],
                temperature=gen.get("temperature"), top_p=gen.get("topP"), stop=gen.get("stopSequences"),
                max_tokens=gen.get("maxOutputTokens"))


def bedrock(b: dict) -> dict:
    inf = b.get("inferenceConfig") or {}
    specs = [t["toolSpec"] for t in (b.get("toolConfig") or {}).get("tools") or [] if "toolSpec" in t]
    return view(system=text_of(b.get("system")),
                turns=[(m["role"], text_of(m.get("content"))) for m in b.get("messages") or []],
                tools=[(s["name"], s.get("description"), (s.get("inputSchema") or {}).get("json")) for s in specs],
                temperature=inf.get("temperature"), top_p=inf.get("topP"), stop=inf.get("stopSequences"),
                max_tokens=inf.get("maxTokens"))


def ollama_chat(b: dict) -> dict:
    msgs, opts = b.get("messages") or [], b.get("options") or {}
    return view(system="".join(m.get("content") or "" for m in msgs if m["role"] == "system"),
                turns=[(m["role"], m.get("content") or "") for m in msgs if m["role"] != "system"],
                tools=[(t["function"]["name"], t["function"].get("description"), t["function"].get("parameters"))
                       for t in b.get("tools") or []],
                temperature=opts.get("temperature"), top_p=opts.get("top_p"), stop=stops(opts.get("stop")),
                max_tokens=opts.get("num_predict"))


VIEW = {"openai": openai_chat, "azure-openai": openai_chat, "mistral": openai_chat, "openai-compatible": openai_chat,
        "openai-responses": openai_responses, "anthropic": anthropic_messages, "gemini": gemini,
        "bedrock": bedrock, "ollama": ollama_chat}


# --- each client protocol, sending the same conversation through its official SDK --------------

def send(envoy_url: str, protocol: str, model: str, stream: bool, test_id: str, stop: list | None) -> None:
    """One call with the conversation above; reads the answer to its end."""
    headers = {"x-mock-test-id": test_id}
    msgs = [{"role": r, "content": t} for r, t in TURNS]
    if protocol == "openai":
        kw = dict(model=model, messages=[{"role": "system", "content": SYSTEM}, *msgs], tools=OPENAI_TOOLS,
                  temperature=TEMPERATURE, top_p=TOP_P, max_completion_tokens=MAX_TOKENS, extra_headers=headers)
        if stop:
            kw["stop"] = stop
        out = openai_client(envoy_url).chat.completions.create(stream=stream, **kw)
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in out if c.choices)
        else:
            assert out.choices[0].message.content
    elif protocol == "anthropic":
        kw = dict(model=model, system=SYSTEM, messages=msgs, tools=ANTHROPIC_TOOLS, max_tokens=MAX_TOKENS,
                  extra_body={"temperature": TEMPERATURE, "top_p": TOP_P}, extra_headers=headers)
        if stop:
            kw["stop_sequences"] = stop
        c = anthropic_client(envoy_url)
        if stream:
            with c.messages.stream(**kw) as s:
                assert "".join(s.text_stream)
        else:
            assert c.messages.create(**kw).content
    elif protocol == "ollama":
        options = {"temperature": TEMPERATURE, "top_p": TOP_P, "num_predict": MAX_TOKENS}
        if stop:
            options["stop"] = stop
        c = ollama_client(envoy_url)
        c._client.headers.update(headers)
        out = c.chat(model=model, messages=[{"role": "system", "content": SYSTEM}, *msgs], tools=OPENAI_TOOLS,
                     options=options, stream=stream)
        assert "".join(p.message.content or "" for p in out) if stream else out.message.content
    else:  # the Responses API has no stop sequences
        kw = dict(model=model, instructions=SYSTEM, input=msgs, tools=RESPONSES_TOOLS, temperature=TEMPERATURE,
                  top_p=TOP_P, max_output_tokens=MAX_TOKENS, extra_headers=headers)
        c = openai_client(envoy_url)
        if stream:
            with c.responses.stream(**kw) as s:
                assert s.get_final_response().output_text
        else:
            assert c.responses.create(**kw).output_text


@pytest.mark.parametrize("protocol,model,stream", CASES,
                         ids=[f"{p}-{m}-{'stream' if s else 'plain'}" for p, m, s in CASES])
def test_the_provider_gets_the_whole_request(envoy, mock, protocol, model, stream):
    provider = DEMO_MODELS[model][0]
    # Stop sequences: the Responses API has none to send, and a Responses provider cannot take
    # them (weir refuses them for it: they change the answer, docs/translation.md).
    stop = None if protocol == "responses" or provider == "openai-responses" else STOP
    test_id = f"whole-{uuid.uuid4().hex}"
    send(envoy.url, protocol, model, stream, test_id, stop)
    recs = mock.requests(test_id=test_id)
    assert [(r["provider"], r["valid"], r["stream"]) for r in recs] == [(provider, True, stream)], \
        [(r["provider"], r["errors"]) for r in recs]
    got = VIEW[provider](recs[0]["body"])
    want = view(system=SYSTEM, turns=TURNS, tools=TOOLS, temperature=TEMPERATURE, top_p=TOP_P, stop=stop,
                max_tokens=MAX_TOKENS)
    assert got == want, recs[0]["body"]
