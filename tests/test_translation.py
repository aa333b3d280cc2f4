"""What today's clients send, through real Envoy to every provider type, with the newest official
SDKs: reasoning controls and reasoning coming back (signatures round-tripping to their own
provider and dropped, never forged, elsewhere), structured output, refusals, the `unsupported`
policy (x-weir-dropped, the access log), the newest Anthropic SDK's fields, count_tokens,
anthropic-beta, images, and the three recorded provider failures (Anthropic's 529, Gemini's
bare-JSON mid-stream error, OpenAI's refusal). The mocks validate every request with the
providers' official types and check the signatures they issued."""

from __future__ import annotations

import json

import anthropic
import httpx
import ollama
import openai
import pydantic
import pytest

from conftest import access_summaries, poll
from weir_clients import DEMO_KEY, DEMO_MODELS, anthropic_client, ollama_client, openai_client

MODELS = list(DEMO_MODELS)
HI = [{"role": "user", "content": "hello there"}]


def only(mock) -> dict:
    recs = mock.requests()
    assert len(recs) == 1, [(r["provider"], r["status"], r["errors"]) for r in recs]
    assert recs[0]["valid"] is True, recs[0]["errors"]
    return recs[0]


def reasoning_text(message) -> str | None:
    """OpenAI SDK messages keep fields they do not declare (`reasoning_content`) as extras."""
    return (message.model_extra or {}).get("reasoning_content")


# --- reasoning controls, every client protocol to every provider -------------------------------

# What each provider type must receive for `reasoning_effort: "high"` (docs/translation.md).
HIGH = {
    "openai": lambda b: b["reasoning_effort"] == "high",
    "azure-openai": lambda b: b["reasoning_effort"] == "high",
    "anthropic": lambda b: b["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    and b["max_tokens"] == 4096 + 16384,
    "gemini": lambda b: b["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 16384, "includeThoughts": True},
    "bedrock": lambda b: b["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    and b["inferenceConfig"]["maxTokens"] == 4096 + 16384,
    "ollama": lambda b: b["think"] is True,
    "openai-compatible": lambda b: b["reasoning_effort"] == "high",
    "openai-responses": lambda b: b["reasoning"]["effort"] == "high",
}
# Providers whose answers carry reasoning text (OpenAI's and Azure's reasoning stays hidden).
SHOWS_REASONING = {"anthropic", "gemini", "bedrock", "ollama", "openai-compatible"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_openai_reasoning_effort_reaches_every_provider_and_reasoning_comes_back(envoy, mock, model, stream):
    provider = DEMO_MODELS[model][0]
    c = openai_client(envoy.url)
    if provider == "mistral":  # mock-mistral keeps the default policy: refuse, by name
        with pytest.raises(openai.BadRequestError) as exc:
            c.chat.completions.create(model=model, messages=HI, reasoning_effort="high", stream=stream)
        assert "reasoning" in str(exc.value) and "mistral" in str(exc.value)
        assert mock.requests() == []
        return
    if stream:
        reasoning, text = "", ""
        for ch in c.chat.completions.create(model=model, messages=HI, reasoning_effort="high", stream=True):
            for choice in ch.choices:
                reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
                text += choice.delta.content or ""
    else:
        m = c.chat.completions.create(model=model, messages=HI, reasoning_effort="high").choices[0].message
        reasoning, text = reasoning_text(m) or "", m.content
    assert text == "echo: hello there"
    assert HIGH[provider](only(mock)["body"]), only(mock)["body"]
    want = "thinking about: hello there" if provider in SHOWS_REASONING else ""
    assert reasoning == want


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_anthropic_thinking_and_ollama_think_reach_every_provider(envoy, mock, model, stream):
    provider = DEMO_MODELS[model][0]
    if provider == "mistral":
        with pytest.raises(anthropic.BadRequestError):
            anthropic_client(envoy.url).messages.create(
                model=model, max_tokens=4000, messages=HI, thinking={"type": "enabled", "budget_tokens": 2048})
        return
    kw = dict(model=model, max_tokens=4000, messages=HI, thinking={"type": "enabled", "budget_tokens": 2048})
    if stream:
        with anthropic_client(envoy.url).messages.stream(**kw) as s:
            m = s.get_final_message()
    else:
        m = anthropic_client(envoy.url).messages.create(**kw)
    thinking = [b for b in m.content if b.type == "thinking"]
    assert [b.text for b in m.content if b.type == "text"] == ["echo: hello there"]
    assert [b.thinking for b in thinking] == (["thinking about: hello there"] if provider in SHOWS_REASONING else [])
    body = only(mock)["body"]
    if provider == "anthropic":
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and body["max_tokens"] == 4000
    if provider in ("openai", "azure-openai", "openai-compatible"):
        assert body["reasoning_effort"] == "low"  # 2048 tokens is the `low` level's budget
    if provider == "openai-responses":
        assert body["reasoning"]["effort"] == "low"
    mock.clear()
    r = ollama_client(envoy.url).chat(model=model, messages=HI, think=True, stream=stream)
    if stream:
        parts = list(r)
        thought = "".join(p.message.thinking or "" for p in parts)
        content = "".join(p.message.content or "" for p in parts)
    else:
        thought, content = r.message.thinking or "", r.message.content
    assert content == "echo: hello there"
    # Reasoning merely turned on asks OpenAI-type providers for nothing: their models reason by
    # default or not at all, and `reasoning_effort` fails on the models that cannot.
    shows = SHOWS_REASONING - {"openai-compatible"}
    assert thought == ("thinking about: hello there" if provider in shows else "")


# --- signatures ----------------------------------------------------------------------------------

TOOLS = [{"name": "search", "description": "Search", "input_schema": {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]
ASK = "please use the tool for weir"


def thinking_turn(envoy, model: str, stream: bool):
    """One Anthropic tool call with thinking on; returns the assistant turn to send back."""
    kw = dict(model=model, max_tokens=4000, messages=[{"role": "user", "content": ASK}], tools=TOOLS,
              thinking={"type": "enabled", "budget_tokens": 2048})
    if stream:
        with anthropic_client(envoy.url).messages.stream(**kw) as s:
            m = s.get_final_message()
    else:
        m = anthropic_client(envoy.url).messages.create(**kw)
    assert m.stop_reason == "tool_use"
    return {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]}


RESULT = '{"found":1}'  # a one-key object: Gemini gets it as the response object, all echo it alike


def follow_up(envoy, model: str, turn: dict) -> str:
    use = next(b for b in turn["content"] if b["type"] == "tool_use")
    msgs = [{"role": "user", "content": ASK}, turn,
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": RESULT}]}]
    m = anthropic_client(envoy.url).messages.create(model=model, max_tokens=4000, messages=msgs, tools=TOOLS,
                                                    thinking={"type": "enabled", "budget_tokens": 2048})
    return "".join(b.text for b in m.content if b.type == "text")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", ["mock-anthropic", "mock-bedrock", "mock-gemini"])
def test_signed_reasoning_round_trips_unchanged_to_its_own_provider(envoy, mock, model, stream):
    turn = thinking_turn(envoy, model, stream)
    signed = [b for b in turn["content"] if b["type"] == "thinking"]
    assert len(signed) == 1 and signed[0]["signature"], turn
    if model == "mock-gemini":  # Gemini's signature, carried in Anthropic's field, says whose it is
        assert signed[0]["signature"].startswith("weir:gemini:")
    mock.clear()
    # The mock checks every signature it receives against the one it issued.
    assert follow_up(envoy, model, turn) == "echo: " + RESULT
    body = only(mock)["body"]
    sent = json.dumps(body)
    if model == "mock-gemini":
        call = body["contents"][1]["parts"][-1]
        assert call["functionCall"]["name"] == "search" and call["thoughtSignature"] != "skip_thought_signature_validator"
    else:
        assert signed[0]["thinking"] in sent and signed[0]["signature"] in sent


@pytest.mark.parametrize("source,target", [("mock-gemini", "mock-anthropic"), ("mock-anthropic", "mock-gemini"),
                                           ("mock-gemini", "mock-bedrock"), ("mock-anthropic", "mock-openai")])
def test_a_signature_never_reaches_a_provider_that_did_not_make_it(envoy, mock, source, target):
    turn = thinking_turn(envoy, source, False)
    mock.clear()
    # The target would reject (Anthropic, Bedrock) a thinking block it did not sign: weir leaves it out.
    assert follow_up(envoy, target, turn) == "echo: " + RESULT
    sent = json.dumps(only(mock)["body"])
    signature = next(b for b in turn["content"] if b["type"] == "thinking")["signature"]
    assert signature.split(":")[-1] not in sent


def test_signed_reasoning_is_not_restored_or_scrubbed_so_it_round_trips_with_pii(envoy, mock):
    ask = "please use the tool for jane@example.com"
    kw = dict(model="mock-anthropic", max_tokens=4000, tools=TOOLS, thinking={"type": "enabled", "budget_tokens": 2048})
    m = anthropic_client(envoy.url).messages.create(messages=[{"role": "user", "content": ask}], **kw)
    thinking = next(b for b in m.content if b.type == "thinking")
    assert "<EMAIL_1>" in thinking.thinking, "reasoning reaches the client as the provider wrote it"
    use = next(b for b in m.content if b.type == "tool_use")
    assert use.input == {"query": ask}, "tool arguments are restored"
    assert "jane@example.com" not in json.dumps(mock.requests())
    mock.clear()
    msgs = [{"role": "user", "content": ask}, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "found"}]}]
    anthropic_client(envoy.url).messages.create(messages=msgs, **kw)  # the mock checks the signature
    assert "jane@example.com" not in json.dumps(only(mock)["body"])
    # A signed block a client edited to hold PII is left out, not scrubbed (which would break it).
    mock.clear()
    edited = dict(msgs[1]["content"][0], thinking="mail jane@example.com")
    msgs[1] = {"role": "assistant", "content": [edited] + msgs[1]["content"][1:]}
    anthropic_client(envoy.url).messages.create(messages=msgs, **kw)
    body = only(mock)["body"]
    assert not any(b["type"] == "thinking" for b in body["messages"][1]["content"]), body["messages"][1]
    assert "jane@example.com" not in json.dumps(body)


# --- structured output ---------------------------------------------------------------------------

class City(pydantic.BaseModel):
    name: str
    words: int


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_openai_structured_output_parses_on_every_provider(envoy, mock, model, stream):
    c = openai_client(envoy.url)
    msgs = [{"role": "user", "content": "zurich is nice"}]
    if stream:
        with c.chat.completions.stream(model=model, messages=msgs, response_format=City) as s:
            message = s.get_final_completion().choices[0].message
    else:
        message = c.chat.completions.parse(model=model, messages=msgs, response_format=City).choices[0].message
    assert message.refusal is None
    assert message.parsed == City(name="zurich is nice", words=3)
    body = only(mock)["body"]
    provider = DEMO_MODELS[model][0]
    if provider == "bedrock":  # a forced tool, its input unwrapped into the answer's text
        assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "json_response"}}
    if provider == "anthropic":
        assert body["output_config"]["format"]["type"] == "json_schema"


def test_anthropic_and_ollama_structured_output(envoy, mock):
    schema = City.model_json_schema()
    m = anthropic_client(envoy.url).messages.create(
        model="mock-gemini", max_tokens=100, messages=[{"role": "user", "content": "bern"}],
        output_config={"format": {"type": "json_schema", "schema": schema}})
    assert json.loads(m.content[0].text) == {"name": "bern", "words": 1}
    assert only(mock)["body"]["generationConfig"]["responseMimeType"] == "application/json"
    mock.clear()
    r = ollama_client(envoy.url).chat(model="mock-bedrock", messages=[{"role": "user", "content": "bern"}],
                                      format=schema, stream=False)
    assert json.loads(r.message.content) == {"name": "bern", "words": 1}


# --- refusals (recorded shape: OpenAI's `refusal` and `delta.refusal`) ---------------------------

REFUSED = [{"role": "user", "content": "REFUSE this"}]


def test_an_openai_refusal_stays_a_refusal_for_the_openai_sdk(envoy, mock):
    c = openai_client(envoy.url)
    m = c.chat.completions.parse(model="mock-openai", messages=REFUSED, response_format=City).choices[0].message
    assert m.refusal == "I'm sorry, I can't help with that." and m.parsed is None and m.content is None
    with c.chat.completions.stream(model="mock-azure", messages=REFUSED, response_format=City) as s:
        m = s.get_final_completion().choices[0].message
    assert m.refusal == "I'm sorry, I can't help with that." and m.parsed is None


def test_a_refusal_reaches_other_protocols_in_their_nearest_form(envoy, mock):
    m = anthropic_client(envoy.url).messages.create(model="mock-openai", max_tokens=50, messages=REFUSED)
    assert m.stop_reason == "refusal" and m.content[0].text == "I'm sorry, I can't help with that."
    with anthropic_client(envoy.url).messages.stream(model="mock-openai", max_tokens=50, messages=REFUSED) as s:
        m = s.get_final_message()
    assert m.stop_reason == "refusal" and m.content[0].text == "I'm sorry, I can't help with that."
    r = ollama_client(envoy.url).chat(model="mock-openai", messages=REFUSED, stream=False)
    assert r.message.content == "I'm sorry, I can't help with that."


# --- Anthropic's 529 (recorded: overloaded_error) ------------------------------------------------

OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
              "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


def test_anthropic_overloaded_is_529_for_anthropic_clients_and_503_for_the_others(envoy, mock):
    httpx.post(mock.url + "/_mock/faults", json={"provider": "anthropic", "status": 529, "body": OVERLOADED},
               timeout=10).raise_for_status()
    with pytest.raises(anthropic.OverloadedError) as exc:
        anthropic_client(envoy.url).messages.create(model="mock-anthropic", max_tokens=16, messages=HI)
    assert exc.value.status_code == 529 and "Overloaded" in str(exc.value)
    with pytest.raises(openai.InternalServerError) as oexc:
        openai_client(envoy.url).chat.completions.create(model="mock-anthropic", messages=HI)
    assert oexc.value.status_code == 503
    with pytest.raises(ollama.ResponseError) as lexc:
        ollama_client(envoy.url).chat(model="mock-anthropic", messages=HI, stream=False)
    assert lexc.value.status_code == 503


# --- Gemini's mid-stream error outside SSE framing (recorded: Vertex AI / Gemini) ---------------

GEMINI_ABORT = '{\n  "error": {\n    "code": 499,\n    "message": "The operation was cancelled.",\n    "status": "CANCELLED"\n  }\n}\n'


def test_a_bare_json_error_after_two_gemini_events_ends_every_clients_stream_with_an_error(envoy, mock):
    long = [{"role": "user", "content": "one two three four five six"}]

    def fail():
        mock.clear()
        httpx.post(mock.url + "/_mock/faults", json={"provider": "gemini", "status": 200, "stream_error_after": 2,
                                                     "stream_error_body": GEMINI_ABORT}, timeout=10).raise_for_status()

    fail()
    with pytest.raises(openai.APIError) as exc:
        list(openai_client(envoy.url).chat.completions.create(model="mock-gemini", messages=long, stream=True))
    assert "cancelled" in str(exc.value)
    fail()
    with pytest.raises(anthropic.APIStatusError) as aexc:
        with anthropic_client(envoy.url).messages.stream(model="mock-gemini", max_tokens=50, messages=long) as s:
            s.get_final_message()
    assert "cancelled" in str(aexc.value)
    fail()
    with pytest.raises(ollama.ResponseError) as lexc:
        list(ollama_client(envoy.url).chat(model="mock-gemini", messages=long, stream=True))
    assert "cancelled" in str(lexc.value)


# --- the unsupported policy ----------------------------------------------------------------------

def summaries(envoy, model: str) -> list[dict]:
    return [s for s in access_summaries(envoy) if s.get("model") == model]


def test_drop_removes_tuning_fields_says_so_and_logs_it(envoy, mock):
    seen = len(summaries(envoy, "mock-anthropic"))
    raw = openai_client(envoy.url).chat.completions.with_raw_response.create(
        model="mock-anthropic", messages=HI, seed=7, frequency_penalty=0.5, temperature=0.3, user="u-1")
    assert raw.parse().choices[0].message.content == "echo: hello there"
    assert raw.headers["x-weir-dropped"] == "seed, frequency_penalty"
    body = only(mock)["body"]
    assert "seed" not in body and body["temperature"] == 0.3 and body["metadata"] == {"user_id": "u-1"}
    # The access log is flushed every 250 ms: wait for this request's line.
    logged = poll(lambda: summaries(envoy, "mock-anthropic")[seen:], "the request's access-log summary")
    assert logged[-1]["dropped"] == ["seed", "frequency_penalty"]


def test_refuse_names_the_field_and_labels_are_dropped_anyway(envoy, mock):
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client(envoy.url).chat.completions.create(model="mock-mistral", messages=HI, extra_body={"top_k": 5})
    assert "`top_k` is not supported by the mistral provider" in str(exc.value)
    assert mock.requests() == []
    raw = openai_client(envoy.url).chat.completions.with_raw_response.create(model="mock-mistral", messages=HI, user="u")
    assert raw.headers["x-weir-dropped"] == "user" and "user" not in only(mock)["body"]


def test_fields_that_change_the_answer_are_refused_whatever_the_policy(envoy, mock):
    c = openai_client(envoy.url)
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(model="mock-anthropic", messages=HI, n=2)
    assert "`n`" in str(exc.value)
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(model="mock-anthropic", messages=HI, response_format={"type": "json_object"})
    assert "response_format" in str(exc.value)
    with pytest.raises(anthropic.BadRequestError) as aexc:
        anthropic_client(envoy.url).messages.create(model="mock-openai", max_tokens=16, messages=HI,
                                                    inference_geo="eu")
    assert "inference_geo" in str(aexc.value) and "openai" in str(aexc.value)
    assert mock.requests() == []


# --- the newest Anthropic SDK's fields -----------------------------------------------------------

NEW_FIELDS = dict(cache_control={"type": "ephemeral"}, service_tier="standard_only", speed="standard",
                  output_config={"effort": "high"})


def test_new_anthropic_fields_pass_untouched_to_anthropic_and_are_dropped_by_name_elsewhere(envoy, mock):
    c = anthropic_client(envoy.url)
    tools = [dict(TOOLS[0], allowed_callers=["direct"], strict=True, input_examples=[{"query": "x"}])]
    history = [{"role": "user", "content": ASK},
               {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "search",
                                                  "input": {"query": "x"}, "caller": {"type": "direct"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "found"}]}]
    m = c.messages.create(model="mock-anthropic", max_tokens=64, messages=history, tools=tools, **NEW_FIELDS)
    assert m.content[0].text == "echo: found"
    body = only(mock)["body"]
    for k, v in NEW_FIELDS.items():
        assert body[k] == v, k
    assert body["tools"][0]["strict"] is True and body["tools"][0]["input_examples"] == [{"query": "x"}]
    mock.clear()
    raw = c.messages.with_raw_response.create(model="mock-openai", max_tokens=64, messages=history, tools=tools,
                                              **NEW_FIELDS)
    assert raw.parse().content[0].text == "echo: found"
    assert raw.headers["x-weir-dropped"] == "cache_control, service_tier, speed, tools[0].input_examples"
    body = only(mock)["body"]
    assert body["reasoning_effort"] == "high" and body["tools"][0]["function"]["strict"] is True


def test_anthropic_beta_reaches_anthropic_providers_only(envoy, mock):
    c = anthropic_client(envoy.url)
    for model in ("mock-anthropic", "mock-openai"):
        c.beta.messages.create(model=model, max_tokens=16, messages=HI, betas=["context-1m-2025-08-07"])
    anth, oai = mock.requests()
    assert anth["headers"]["anthropic-beta"] == "context-1m-2025-08-07" and anth["valid"], anth["errors"]
    assert "anthropic-beta" not in oai["headers"] and oai["valid"]


# --- count_tokens ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
def test_count_tokens_answers_for_every_model(envoy, mock, model):
    raw = anthropic_client(envoy.url).messages.with_raw_response.count_tokens(
        model=model, messages=[{"role": "user", "content": "count these five words"}], system="be brief")
    count = raw.parse().input_tokens
    if DEMO_MODELS[model][0] == "anthropic":
        assert count == 6 and "x-weir-token-count" not in raw.headers  # the mock counts words
        assert only(mock)["path"] == "/v1/messages/count_tokens"
    else:
        assert count > 0 and raw.headers["x-weir-token-count"] == "estimate"
        assert mock.requests() == []


# --- images ---------------------------------------------------------------------------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
FETCHES_URLS = {"openai", "openai-responses", "azure-openai", "anthropic", "gemini", "mistral", "openai-compatible"}


@pytest.mark.parametrize("model", MODELS)
def test_images_reach_every_provider_and_urls_those_that_fetch_them(envoy, mock, model):
    c = openai_client(envoy.url)

    def ask(url: str):
        return c.chat.completions.create(model=model, messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": url}}]}])

    assert ask("data:image/png;base64," + PNG).choices[0].message.content == "echo: what is this"
    assert PNG in json.dumps(only(mock)["body"])
    mock.clear()
    url = "https://example.com/cat.png"
    if DEMO_MODELS[model][0] in FETCHES_URLS:
        ask(url)
        assert url in json.dumps(only(mock)["body"])
    else:
        with pytest.raises(openai.BadRequestError) as exc:
            ask(url)
        assert "`messages[0].content[1]` is a URL" in str(exc.value) and "needs the file's bytes" in str(exc.value)
        assert mock.requests() == []


# --- the Anthropic SDK's tool runner (as Claude Code-style agents loop) --------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", MODELS)
def test_the_anthropic_tool_runner_completes_its_loop_on_every_provider(envoy, mock, model, stream):
    ran = []

    @anthropic.beta_tool
    def search(query: str) -> str:
        """Search the web."""
        ran.append(query)
        return RESULT

    runner = anthropic_client(envoy.url).beta.messages.tool_runner(
        model=model, max_tokens=512, tools=[search], stream=stream,
        messages=[{"role": "user", "content": ASK}])
    final = runner.until_done()
    assert ran == [ASK]
    assert [b.text for b in final.content if b.type == "text"] == ["echo: " + RESULT]
    recs = mock.requests()
    assert len(recs) == 2 and all(r["valid"] for r in recs), [r["errors"] for r in recs]
