"""Tests of the embedded mock providers (tests/mockllm): each official SDK must parse the mock's
plain and streamed answers, and the mock must refuse what the real providers would refuse."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import time

import anthropic
import boto3
import botocore.exceptions
import httpx
import httpx2  # the transport of the openai SDK in use
import ollama
import openai
import pytest
from botocore.config import Config
from google import genai
from google.genai import types as gtypes

import mockllm
from mockllm import eventstream

KEY = "sk-provider-test-key-0001"
OTHER_KEY = "sk-provider-test-key-0002"
TOOLS_OAI = [{"type": "function", "function": {"name": "search", "description": "search the web",
                                               "parameters": {"type": "object",
                                                              "properties": {"query": {"type": "string"}}}}}]


def sha12(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:12]


@pytest.fixture(scope="session")
def mock():
    server = mockllm.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def clean(mock):
    httpx.delete(mock.url + "/_mock/requests")
    httpx.delete(mock.url + "/_mock/faults")
    yield


def recorded(mock) -> list[dict]:
    return httpx.get(mock.url + "/_mock/requests").json()


def last(mock) -> dict:
    return recorded(mock)[-1]


def post(mock, path, body, headers=None, **kw) -> httpx.Response:
    return httpx.post(mock.url + path, content=json.dumps(body), headers=headers or {}, timeout=30, **kw)


# --- OpenAI ------------------------------------------------------------------------------------

@pytest.fixture
def oai(mock):
    return openai.OpenAI(api_key=KEY, base_url=mock.url + "/v1", max_retries=0)


def test_openai_chat_plain_and_usage(mock, oai):
    r = oai.chat.completions.create(model="gpt-4o", messages=[
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello  there world"}])
    assert r.choices[0].message.content == "echo: hello  there world"
    assert r.id.startswith("chatcmpl-") and r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (5, 4)
    rec = last(mock)
    assert rec["provider"] == "openai" and rec["valid"] is True and rec["errors"] == []
    assert rec["headers"]["authorization"] == sha12(KEY) and rec["key_sha12"] == sha12(KEY)
    assert KEY not in json.dumps(rec)


def test_openai_stream_usage_only_when_asked(mock, oai):
    chunks = list(oai.chat.completions.create(model="gpt-4o", stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": "one two three"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.usage is not None for c in chunks].count(True) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    plain = list(oai.chat.completions.create(model="gpt-4o", stream=True,
                                             messages=[{"role": "user", "content": "x"}]))
    assert all(c.usage is None for c in plain) and all(c.choices for c in plain)


def test_openai_tool_call_and_result(mock, oai):
    msgs = [{"role": "user", "content": "use the tool please"}]
    r = oai.chat.completions.create(model="gpt-4o", messages=msgs, tools=TOOLS_OAI)
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls" and call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": "use the tool please"}
    # streamed: the arguments arrive in pieces and concatenate to the same JSON
    args, name = "", None
    for c in oai.chat.completions.create(model="gpt-4o", messages=msgs, tools=TOOLS_OAI, stream=True):
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            name = tc.function.name or name
            args += tc.function.arguments or ""
    assert name == "search" and json.loads(args) == {"query": "use the tool please"}
    # tool_choice none: no call
    r = oai.chat.completions.create(model="gpt-4o", messages=msgs, tools=TOOLS_OAI, tool_choice="none")
    assert r.choices[0].message.content == "echo: use the tool please"
    # the tool's result comes back as the answer
    msgs += [{"role": "assistant", "tool_calls": [{"id": call.id, "type": "function",
                                                   "function": {"name": "search", "arguments": call.function.arguments}}]},
             {"role": "tool", "tool_call_id": call.id, "content": '{"hits":3}'}]
    r = oai.chat.completions.create(model="gpt-4o", messages=msgs, tools=TOOLS_OAI)
    assert r.choices[0].message.content == 'echo: {"hits":3}'


def test_openai_embeddings(mock, oai):
    r = oai.embeddings.create(model="text-embedding-3-small", input=["alpha beta", "gamma"])  # base64 on the wire
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8 and r.usage.prompt_tokens == 3
    f = oai.embeddings.create(model="text-embedding-3-small", input="alpha beta", encoding_format="float")
    assert f.data[0].embedding == r.data[0].embedding
    assert last(mock)["valid"] is True


def test_openai_rejects_unknown_field_and_wrong_type(mock):
    h = {"authorization": "Bearer " + KEY}
    r = post(mock, "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                                            "top_k": 3}, h)
    assert r.status_code == 400 and "top_k" in r.json()["error"]["message"]
    assert r.json()["error"]["type"] == "invalid_request_error"
    rec = last(mock)
    assert rec["valid"] is False and any("top_k" in e for e in rec["errors"])
    r = post(mock, "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x",
                                                                        "bogus": 1}]}, h)
    assert r.status_code == 400 and "bogus" in r.text
    r = post(mock, "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                                            "temperature": "hot"}, h)
    assert r.status_code == 400 and "temperature" in r.text
    r = post(mock, "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 401


def test_azure_openai_sdk(mock):
    az = openai.AzureOpenAI(azure_endpoint=mock.url, api_key=KEY, api_version="2024-10-21", max_retries=0)
    r = az.chat.completions.create(model="gpt4o-deploy", messages=[{"role": "user", "content": "hi azure"}])
    assert r.choices[0].message.content == "echo: hi azure"
    rec = last(mock)
    assert rec["provider"] == "azure-openai" and rec["model"] == "gpt4o-deploy"
    assert rec["query"]["api-version"] == "2024-10-21" and rec["headers"]["api-key"] == sha12(KEY)
    chunks = list(az.chat.completions.create(model="gpt4o-deploy", stream=True,
                                             stream_options={"include_usage": True},
                                             messages=[{"role": "user", "content": "hi azure"}]))
    assert chunks[0].choices == [] and chunks[0].usage is None  # Azure's prompt-filter chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi azure"
    assert chunks[-1].usage.prompt_tokens == 2
    e = az.embeddings.create(model="embed-deploy", input="a b")
    assert len(e.data[0].embedding) == 8
    # no body model needed: the deployment is in the path
    r = post(mock, "/openai/deployments/d1/chat/completions?api-version=2024-10-21",
             {"messages": [{"role": "user", "content": "x"}]}, {"api-key": KEY})
    assert r.status_code == 200
    r = post(mock, "/openai/deployments/d1/chat/completions", {"messages": []}, {"api-key": KEY})
    assert r.status_code == 404 and "api-version" in r.json()["error"]["message"], r.text


def test_mistral_fields_and_stream(mock):
    h = {"authorization": "Bearer " + KEY, "host": "mistral.upstream"}
    base = {"model": "mistral-small-latest", "messages": [{"role": "user", "content": "bonjour le monde"}]}
    r = post(mock, "/v1/chat/completions", dict(base, random_seed=7, safe_prompt=False), h)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "echo: bonjour le monde"
    assert last(mock)["provider"] == "mistral"
    for openai_only in ({"seed": 1}, {"max_completion_tokens": 5}, {"stream_options": {"include_usage": True}}):
        r = post(mock, "/v1/chat/completions", dict(base, **openai_only), h)
        assert r.status_code == 400 and next(iter(openai_only)) in r.json()["message"]
    r = post(mock, "/v1/chat/completions", dict(base, stream=True), h)
    events = [json.loads(line[6:]) for line in r.text.split("\n\n") if line.startswith("data: {")]
    assert r.text.rstrip().endswith("data: [DONE]")
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == "echo: bonjour le monde"
    assert events[-1]["usage"]["completion_tokens"] == 4 and events[-1]["choices"][0]["finish_reason"] == "stop"
    r = post(mock, "/v1/chat/completions", dict(base, tools=TOOLS_OAI, tool_choice="any",
                                                messages=[{"role": "user", "content": "tool time"}]), h)
    tc = r.json()["choices"][0]["message"]["tool_calls"][0]
    assert tc["function"]["name"] == "search" and r.json()["choices"][0]["finish_reason"] == "tool_calls"
    r = post(mock, "/v1/embeddings", {"model": "mistral-embed", "input": ["a", "b"]}, h)
    assert r.status_code == 200 and len(r.json()["data"]) == 2


def test_vllm_accepts_its_sampling_params(mock):
    client = openai.OpenAI(api_key=KEY, base_url=mock.url + "/v1", max_retries=0,
                           default_headers={"Host": "vllm.internal"})
    r = client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "hey"}],
                                       extra_body={"top_k": 20, "repetition_penalty": 1.1})
    assert r.choices[0].message.content == "echo: hey" and last(mock)["provider"] == "openai-compatible"
    chunks = list(client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "a b"}],
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.total_tokens == 2 + 3
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "hey"}],
                                       extra_body={"not_a_vllm_param": 1})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="llama", messages=[{"role": "user", "content": "hey"}],
                                       extra_body={"top_k": "many"})


def test_failing_upstream_is_503_and_recorded(mock):
    client = openai.OpenAI(api_key=KEY, base_url=mock.url + "/v1", max_retries=0,
                           default_headers={"Host": "failing.upstream"})
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hey"}])
    assert exc.value.status_code == 503
    rec = last(mock)
    assert rec["provider"] == "failing" and rec["status"] == 503 and rec["valid"] is True


# --- OpenAI Responses -----------------------------------------------------------------------------

STRICT_TOOL = {"type": "function", "name": "search", "strict": True,
               "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                              "required": ["query"], "additionalProperties": False}}


def test_responses_create_stream_and_answers_match_the_sdk_types(mock, oai):
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import TypeAdapter

    raw = oai.responses.with_raw_response.create(model="gpt-5", input="hello there", instructions="be brief",
                                                 reasoning={"effort": "low", "summary": "auto"},
                                                 include=["reasoning.encrypted_content"])
    body = raw.http_response.json()
    assert mockllm.validate.model(Response, body) == []
    r = raw.parse()
    assert r.output_text == "echo: hello there" and r.status == "completed"
    assert [o.type for o in r.output] == ["reasoning", "message"]
    assert r.output[0].encrypted_content.startswith("gAAAA") and r.usage.output_tokens_details.reasoning_tokens > 0
    rec = last(mock)
    assert rec["provider"] == "openai-responses" and rec["valid"] is True and rec["key_sha12"] == sha12(KEY)

    events = TypeAdapter(ResponseStreamEvent)
    with httpx.stream("POST", mock.url + "/v1/responses", headers={"authorization": f"Bearer {KEY}"},
                      json={"model": "gpt-5", "input": "stream me", "stream": True}) as resp:
        lines = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    seqs = []
    for line in lines:
        ev = json.loads(line)
        # Documented padding (`stream_options.include_obfuscation`) the SDK's types leave out.
        padded = ev.pop("obfuscation", None) is not None
        assert padded == ev["type"].endswith(".delta"), ev
        assert mockllm.validate.model(type(events.validate_python(ev)), ev) == [], ev["type"]
        seqs.append(ev["sequence_number"])
    assert seqs == list(range(len(lines))) and json.loads(lines[-1])["type"] == "response.completed"

    with oai.responses.stream(model="gpt-5", input="stream me too") as s:
        final = s.get_final_response()
    assert final.output_text == "echo: stream me too"


def test_responses_tool_round_trip_and_the_checks_the_api_makes(mock, oai):
    r = oai.responses.create(model="gpt-5", input="use the tool", tools=[STRICT_TOOL], store=False)
    call = r.output[0]
    assert (call.type, call.name, json.loads(call.arguments)) == ("function_call", "search", {"query": "use the tool"})
    items = [{"role": "user", "content": "use the tool"}, call.model_dump(exclude_none=True),
             {"type": "function_call_output", "call_id": call.call_id, "output": "42"}]
    assert oai.responses.create(model="gpt-5", input=items, tools=[STRICT_TOOL], store=False).output_text == "echo: 42"

    def refused(**kw):
        with pytest.raises(openai.BadRequestError) as e:
            oai.responses.create(model="gpt-5", **kw)
        return e.value.message

    assert "No tool call found" in refused(input=[{"type": "function_call_output", "call_id": "x", "output": "1"}])
    loose = dict(STRICT_TOOL, parameters={"type": "object", "properties": {"q": {"type": "string"}}})
    assert "additionalProperties" in refused(input="x", tools=[loose])
    assert "not found" in refused(input="x", previous_response_id="resp_nope")
    # Reasoning items come back with the payload the API gave, or by an id it stored.
    assert "not persisted" in refused(input=[{"type": "reasoning", "id": "rs_made_up", "summary": []}], store=False)
    assert "could not be verified" in refused(
        input=[{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "forged"}])
    assert "Extra inputs" in refused(input="x", extra_body={"max_tokens": 5})


def test_responses_store_retrieve_items_and_delete(mock, oai):
    r = oai.responses.create(model="gpt-5", input="remember me")
    follow = oai.responses.create(model="gpt-5", input="and now?", previous_response_id=r.id)
    assert follow.previous_response_id == r.id
    assert oai.responses.retrieve(r.id).output_text == "echo: remember me"
    assert [i.content[0].text for i in oai.responses.input_items.list(r.id)] == ["remember me"]
    with httpx.stream("GET", f"{mock.url}/v1/responses/{r.id}?stream=true",
                      headers={"authorization": f"Bearer {KEY}"}) as resp:
        kinds = [json.loads(line[6:])["type"] for line in resp.iter_lines() if line.startswith("data: ")]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    oai.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(r.id)
    kinds = [(e["kind"], e["status"]) for e in recorded(mock)]
    assert kinds[-1] == ("stored", 404) and ("stored", 200) in kinds
    unsigned = httpx.get(f"{mock.url}/v1/responses/{follow.id}")
    assert unsigned.status_code == 401


# --- Anthropic ---------------------------------------------------------------------------------

@pytest.fixture
def ant(mock):
    return anthropic.Anthropic(api_key=KEY, base_url=mock.url, max_retries=0)


ANT_TOOLS = [{"name": "lookup", "description": "look up", "input_schema": {
    "type": "object", "properties": {"query": {"type": "string"}}}}]


def test_anthropic_message_and_stream(mock, ant):
    m = ant.messages.create(model="claude-haiku-4-5", max_tokens=64, system="sys prompt",
                            messages=[{"role": "user", "content": [{"type": "text", "text": "hi "},
                                                                   {"type": "text", "text": "claude"}]}])
    assert m.content[0].text == "echo: hi claude" and m.id.startswith("msg_") and m.stop_reason == "end_turn"
    assert (m.usage.input_tokens, m.usage.output_tokens) == (4, 3)
    rec = last(mock)
    assert rec["valid"] and rec["key_sha12"] == sha12(KEY) and "anthropic-version" in rec["headers"]
    with ant.messages.stream(model="claude-haiku-4-5", max_tokens=64,
                             messages=[{"role": "user", "content": "stream me"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "echo: stream me" and final.usage.output_tokens == 3 and final.usage.input_tokens == 2
    raw = post(mock, "/v1/messages", {"model": "c", "max_tokens": 9, "stream": True,
                                      "messages": [{"role": "user", "content": "x"}]},
               {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    kinds = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert kinds == ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]


def test_anthropic_tool_use(mock, ant):
    msgs = [{"role": "user", "content": "call a tool"}]
    m = ant.messages.create(model="c", max_tokens=64, messages=msgs, tools=ANT_TOOLS)
    assert m.stop_reason == "tool_use" and m.content[0].name == "lookup"
    assert m.content[0].input == {"query": "call a tool"} and m.content[0].id.startswith("toolu_")
    with ant.messages.stream(model="c", max_tokens=64, messages=msgs, tools=ANT_TOOLS) as s:
        final = s.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == {"query": "call a tool"}
    m2 = ant.messages.create(model="c", max_tokens=64, tools=ANT_TOOLS, messages=msgs + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42 results"}]}])
    assert m2.content[0].text == "echo: 42 results"
    m3 = ant.messages.create(model="c", max_tokens=64, messages=msgs, tools=ANT_TOOLS, tool_choice={"type": "none"})
    assert m3.content[0].type == "text"


def test_anthropic_validation_and_auth(mock):
    h = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    r = post(mock, "/v1/messages", {"model": "c", "messages": [{"role": "user", "content": "x"}]}, h)
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    r = post(mock, "/v1/messages", {"model": "c", "max_tokens": 5, "temperature": 0.5, "top_k": 2, "seed": 1,
                                    "messages": [{"role": "user", "content": "x"}]}, h)
    assert r.status_code == 400 and "seed" in r.text and last(mock)["valid"] is False
    r = post(mock, "/v1/messages", {"model": "c", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "x", "cache": True}]}]}, h)
    assert r.status_code == 400 and "cache" in r.text
    r = post(mock, "/v1/messages", {"model": "c", "max_tokens": 5, "messages": []}, {"x-api-key": KEY})
    assert r.status_code == 400 and "anthropic-version" in r.text
    r = post(mock, "/v1/messages", {"model": "c", "max_tokens": 5, "messages": []}, {"anthropic-version": "x"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


# --- Gemini ------------------------------------------------------------------------------------

@pytest.fixture
def gem(mock):
    return genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=mock.url))


def test_gemini_generate_stream_tools_embed(mock, gem):
    r = gem.models.generate_content(model="gemini-2.5-flash", contents="hello gemini",
                                    config=gtypes.GenerateContentConfig(system_instruction="be nice",
                                                                        temperature=0.2, max_output_tokens=50))
    assert r.text == "echo: hello gemini" and r.usage_metadata.prompt_token_count == 4
    rec = last(mock)
    assert rec["provider"] == "gemini" and rec["valid"], rec["errors"]
    assert rec["headers"]["x-goog-api-key"] == sha12(KEY) and rec["model"] == "gemini-2.5-flash"
    chunks = list(gem.models.generate_content_stream(model="gemini-2.5-flash", contents="stream this now"))
    assert "".join(c.text for c in chunks) == "echo: stream this now"
    assert chunks[-1].usage_metadata.candidates_token_count == 4  # cumulative
    tool = gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
        name="find", description="find", parameters=gtypes.Schema(type="OBJECT", properties={
            "query": gtypes.Schema(type="STRING")}))])
    cfg = gtypes.GenerateContentConfig(tools=[tool], automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(
        disable=True))
    r = gem.models.generate_content(model="gemini-2.5-flash", contents="use a tool", config=cfg)
    assert r.function_calls[0].name == "find" and r.function_calls[0].args == {"query": "use a tool"}
    chunks = list(gem.models.generate_content_stream(model="gemini-2.5-flash", contents="use a tool", config=cfg))
    assert chunks[0].function_calls[0].name == "find"
    r = gem.models.generate_content(model="gemini-2.5-flash", config=cfg, contents=[
        gtypes.Content(role="user", parts=[gtypes.Part(text="use a tool")]),
        gtypes.Content(role="model", parts=[gtypes.Part(function_call=gtypes.FunctionCall(name="find", args={}))]),
        gtypes.Content(role="user", parts=[gtypes.Part(function_response=gtypes.FunctionResponse(
            name="find", response={"answer": "yes"}))])])
    assert r.text == 'echo: {"answer":"yes"}'
    e = gem.models.embed_content(model="text-embedding-004", contents=["one", "two"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0].values) == 8
    assert last(mock)["valid"]


def test_gemini_validation(mock):
    h = {"x-goog-api-key": KEY}
    ok = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    assert post(mock, "/v1beta/models/g:generateContent", ok, h).status_code == 200
    r = post(mock, "/v1beta/models/g:generateContent", dict(ok, temperature=0.1), h)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT" and "temperature" in r.text
    r = post(mock, "/v1beta/models/g:generateContent", dict(ok, generationConfig={"maxTokens": 5}), h)
    assert r.status_code == 400 and "maxTokens" in r.text
    r = post(mock, "/v1beta/models/g:generateContent", {"contents": [{"role": "user", "parts": [{"txt": "x"}]}]}, h)
    assert r.status_code == 400
    r = post(mock, "/v1beta/models/g:generateContent", dict(ok, generationConfig={"maxOutputTokens": 5}), h)
    assert r.status_code == 200
    assert post(mock, "/v1beta/models/g:generateContent", ok).status_code == 403
    r = post(mock, "/v1beta/models/g:streamGenerateContent?alt=sse", ok, h)
    assert r.headers["content-type"].startswith("text/event-stream") and "\r\n\r\n" in r.text


# --- Bedrock -----------------------------------------------------------------------------------

def bedrock(mock, secret=mockllm.AWS_SECRET_KEY):
    return boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=mock.url,
                        aws_access_key_id=mockllm.AWS_ACCESS_KEY, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


BR_TOOLS = {"tools": [{"toolSpec": {"name": "weather", "description": "w", "inputSchema": {
    "json": {"type": "object", "properties": {"query": {"type": "string"}}}}}}]}
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def test_bedrock_converse_and_stream(mock):
    br = bedrock(mock)
    r = br.converse(modelId=MODEL, system=[{"text": "sys"}],
                    messages=[{"role": "user", "content": [{"text": "hola bedrock"}]}],
                    inferenceConfig={"maxTokens": 20})
    assert r["output"]["message"]["content"][0]["text"] == "echo: hola bedrock"
    assert r["usage"] == {"inputTokens": 3, "outputTokens": 3, "totalTokens": 6}
    rec = last(mock)
    assert rec["valid"] and rec["model"] == MODEL and rec["key_sha12"] == sha12(mockllm.AWS_ACCESS_KEY)
    events = list(br.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "a b c"}]}])["stream"])
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == "echo: a b c" and events[-1]["metadata"]["usage"]["outputTokens"] == 4
    assert [next(iter(e)) for e in events][0] == "messageStart" and events[-2]["messageStop"]["stopReason"] == "end_turn"


def test_bedrock_tools_and_images(mock):
    br = bedrock(mock)
    msgs = [{"role": "user", "content": [{"text": "tool please"},
                                         {"image": {"format": "png", "source": {"bytes": b"\x89PNG..."}}}]}]
    r = br.converse(modelId=MODEL, messages=msgs, toolConfig=BR_TOOLS)
    use = r["output"]["message"]["content"][0]["toolUse"]
    assert r["stopReason"] == "tool_use" and use["name"] == "weather" and use["input"] == {"query": "tool please"}
    events = list(br.converse_stream(modelId=MODEL, messages=msgs, toolConfig=BR_TOOLS)["stream"])
    start = next(e for e in events if "contentBlockStart" in e)["contentBlockStart"]["start"]["toolUse"]
    args = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    assert start["name"] == "weather" and json.loads(args) == {"query": "tool please"}
    r = br.converse(modelId=MODEL, toolConfig=BR_TOOLS, messages=msgs + [
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "weather", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp": 21}}]}}]}])
    assert r["output"]["message"]["content"][0]["text"] == 'echo: {"temp":21}'


def test_bedrock_refuses_bad_signature_and_bad_body(mock):
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        bedrock(mock, secret="wrong-secret").converse(
            modelId=MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    r = post(mock, f"/model/{MODEL}/converse", {"messages": []})
    assert r.status_code == 403 and "x-amzn-errortype" in r.headers
    # a correctly signed body with an unknown member: botocore's validator rejects it
    br = bedrock(mock)
    br.meta.events.register("before-sign.bedrock-runtime.Converse", _add_unknown_member)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        br.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "temperature" in exc.value.response["Error"]["Message"]
    assert last(mock)["valid"] is False


def _add_unknown_member(request, **_):
    body = json.loads(request.body)
    body["temperature"] = 0.3  # belongs in inferenceConfig
    request.data = json.dumps(body).encode()
    request.headers["Content-Length"] = str(len(request.data))


def test_eventstream_frames_roundtrip():
    data = eventstream.event("messageStart", {"role": "assistant"}) + eventstream.event("messageStop", {})
    frames = eventstream.decode(data)
    assert [h[":event-type"] for h, _ in frames] == ["messageStart", "messageStop"]
    assert json.loads(frames[0][1])["role"] == "assistant"
    with pytest.raises(AssertionError):
        eventstream.decode(data[:20] + b"X" + data[21:])


# --- Ollama ------------------------------------------------------------------------------------

def test_ollama_chat_stream_tools_generate_embed(mock):
    cl = ollama.Client(host=mock.url)
    r = cl.chat(model="llama3.2", messages=[{"role": "user", "content": "hi llama"}])
    assert r.message.content == "echo: hi llama" and r.done and r.prompt_eval_count == 2 and r.eval_count == 3
    parts = list(cl.chat(model="llama3.2", messages=[{"role": "user", "content": "hi llama"}], stream=True,
                         options={"temperature": 0}))
    assert "".join(p.message.content for p in parts) == "echo: hi llama" and parts[-1].done
    assert last(mock)["valid"], last(mock)["errors"]
    r = cl.chat(model="llama3.2", messages=[{"role": "user", "content": "tool?"}], tools=TOOLS_OAI)
    assert r.message.tool_calls[0].function.name == "search"
    assert r.message.tool_calls[0].function.arguments == {"query": "tool?"}
    r = cl.chat(model="llama3.2", messages=[{"role": "user", "content": "tool?"},
                                            {"role": "tool", "content": "sunny", "tool_name": "search"}])
    assert r.message.content == "echo: sunny"
    g = cl.generate(model="llama3.2", prompt="complete me")
    assert g.response == "echo: complete me"
    e = cl.embed(model="all-minilm", input=["x", "y"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 8


def test_ollama_validation_and_auth(mock):
    r = post(mock, "/api/chat", {"model": "m", "messages": [{"role": "user", "content": "x", "name": "bob"}]})
    assert r.status_code == 400 and "name" in r.json()["error"]
    r = post(mock, "/api/chat", {"model": "m", "stream": False, "options": {"temprature": 1},
                                 "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400 and "temprature" in r.text
    r = post(mock, "/api/chat", {"model": "m", "stream": False, "messages": []}, {"authorization": "Basic abc"})
    assert r.status_code == 401
    r = post(mock, "/api/chat", {"model": "m", "messages": [{"role": "user", "content": "a"}]})
    assert r.headers["content-type"] == "application/x-ndjson"  # Ollama streams by default
    assert [json.loads(x)["done"] for x in r.text.splitlines()][-1] is True


# --- cross-cutting: leaks, recording, faults, transport ------------------------------------------

def test_leaked_client_key_and_internal_headers_are_refused(mock):
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    r = post(mock, "/v1/chat/completions", body, {"authorization": "Bearer sk-weir-client-123"})
    assert r.status_code == 400 and "client credential leaked upstream" in r.text
    rec = last(mock)
    assert rec["valid"] is False and "sk-weir-" not in json.dumps(rec)
    r = post(mock, "/v1/messages", {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
             {"x-api-key": KEY, "anthropic-version": "2023-06-01", "x-weir-tenant": "t1"})
    assert r.status_code == 400 and "x-weir-tenant" in r.json()["error"]["message"]
    r = post(mock, "/api/chat", {"model": "m", "messages": []}, {"x-forwarded-client-cert": "sk-weir-zzz"})
    assert r.status_code == 400


def test_faults_per_key_times_and_default_shapes(mock, oai):
    other = openai.OpenAI(api_key=OTHER_KEY, base_url=mock.url + "/v1", max_retries=0)
    httpx.post(mock.url + "/_mock/faults", json=[{"key_sha12": sha12(KEY), "status": 429, "times": 2,
                                                  "headers": {"retry-after": "1"}}])
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as exc:
            oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert exc.value.response.headers["retry-after"] == "1"
    assert other.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices
    assert oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices  # used up
    assert [r["status"] for r in recorded(mock)] == [429, 429, 200, 200]
    httpx.post(mock.url + "/_mock/faults", json=[{"provider": "anthropic", "status": 529}])
    r = post(mock, "/v1/messages", {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
             {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    httpx.post(mock.url + "/_mock/faults", json=[{"host": "failing", "status": 200}])
    assert httpx.post(mock.url + "/_mock/faults", json=[{"stauts": 1}]).status_code == 400


def test_fault_delay_and_truncated_stream(mock, oai):
    httpx.post(mock.url + "/_mock/faults", json=[{"provider": "openai", "status": 200, "delay_ms": 300, "times": 1},
                                                 {"provider": "openai", "status": 200, "truncate_stream_after": 2}])
    t0 = time.monotonic()
    oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.monotonic() - t0 >= 0.3
    # The reset cuts the chunked body: the SDK's transport says so (no [DONE], no error event).
    with pytest.raises(openai.APIConnectionError) as exc:
        list(oai.chat.completions.create(model="m", stream=True, messages=[{"role": "user", "content": "a b c d"}]))
    cut = (httpx.RemoteProtocolError, httpx.ReadError, httpx2.RemoteProtocolError, httpx2.ReadError)
    assert isinstance(exc.value.__cause__, cut), repr(exc.value.__cause__)
    with httpx.stream("POST", mock.url + "/v1/chat/completions", headers={"authorization": "Bearer k"},
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b c"}]}) as r:
        got = []
        with pytest.raises(httpx.HTTPError):
            for chunk in r.iter_text():
                got.append(chunk)
    assert "[DONE]" not in "".join(got) and '"content":""' in "".join(got)


def test_chunked_request_body_and_keepalive(mock):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "chunky"}]}).encode()
    with httpx.Client(base_url=mock.url, headers={"authorization": "Bearer " + KEY}) as c:
        for _ in range(3):  # same connection
            r = c.post("/v1/chat/completions", content=iter([body[:10], body[10:]]))
            assert r.json()["choices"][0]["message"]["content"] == "echo: chunky"


def test_many_concurrent_requests(mock):
    def one(i):
        with httpx.Client(timeout=60) as c:
            return c.post(mock.url + "/v1/chat/completions", headers={"authorization": "Bearer " + KEY},
                          json={"model": "m", "stream": i % 2 == 0,
                                "messages": [{"role": "user", "content": f"n{i}"}]}).status_code
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(one, range(128)))
    assert codes == [200] * 128
    assert len(recorded(mock)) == 128


def test_unknown_route_and_record_filter(mock):
    assert httpx.post(mock.url + "/v2/nothing", content=b"{}").status_code == 404
    assert httpx.get(mock.url + "/_mock/health").status_code == 200
    assert httpx.get(mock.url + "/_mock/requests?provider=openai").json() == []
    assert last(mock)["status"] == 404


def test_cli_runs_on_env_port():
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, WEIR_MOCK_PORT=str(port),
               PYTHONPATH=os.path.dirname(os.path.abspath(__file__)) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "mockllm"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == f"mockllm listening on http://127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/_mock/health", timeout=10).json() == {"ok": True}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- strict validation: what the wire says, never what it can be coerced to ---------------------

OAI_MSG = [{"role": "user", "content": "x"}]
ROBOT = [{"role": "robot", "content": "x"}]
BEARER = {"authorization": "Bearer " + KEY}
ANT_H = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
GEM_OK = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
STRICT_CASES = {
    # name: (path, headers, body, the field the refusal must name)
    "openai-temperature-string": ("/v1/chat/completions", BEARER,
                                  {"model": "m", "messages": OAI_MSG, "temperature": "0.5"}, "temperature"),
    "openai-max-tokens-string": ("/v1/chat/completions", BEARER,
                                 {"model": "m", "messages": OAI_MSG, "max_tokens": "100"}, "max_tokens"),
    "openai-max-tokens-float": ("/v1/chat/completions", BEARER,
                                {"model": "m", "messages": OAI_MSG, "max_tokens": 64.0}, "max_tokens"),
    "openai-stream-string": ("/v1/chat/completions", BEARER,
                             {"model": "m", "messages": OAI_MSG, "stream": "false"}, "stream"),
    "openai-role-robot": ("/v1/chat/completions", BEARER, {"model": "m", "messages": ROBOT}, "role"),
    "mistral-temperature-string": ("/v1/chat/completions", dict(BEARER, host="mistral.mock"),
                                   {"model": "m", "messages": OAI_MSG, "temperature": "0.5"}, "temperature"),
    "mistral-max-tokens-float": ("/v1/chat/completions", dict(BEARER, host="mistral.mock"),
                                 {"model": "m", "messages": OAI_MSG, "max_tokens": 64.0}, "max_tokens"),
    "mistral-stream-string": ("/v1/chat/completions", dict(BEARER, host="mistral.mock"),
                              {"model": "m", "messages": OAI_MSG, "stream": "false"}, "stream"),
    "mistral-role-robot": ("/v1/chat/completions", dict(BEARER, host="mistral.mock"),
                           {"model": "m", "messages": ROBOT}, "messages.0"),
    "vllm-max-tokens-string": ("/v1/chat/completions", dict(BEARER, host="vllm.mock"),
                               {"model": "m", "messages": OAI_MSG, "max_tokens": "100"}, "max_tokens"),
    "responses-temperature-string": ("/v1/responses", BEARER, {"model": "m", "input": "x", "temperature": "0.5"},
                                     "temperature"),
    "responses-max-output-tokens-float": ("/v1/responses", BEARER,
                                          {"model": "m", "input": "x", "max_output_tokens": 64.0},
                                          "max_output_tokens"),
    "responses-stream-string": ("/v1/responses", BEARER, {"model": "m", "input": "x", "stream": "false"}, "stream"),
    "anthropic-temperature-string": ("/v1/messages", ANT_H, {"model": "m", "max_tokens": 5, "messages": OAI_MSG,
                                                             "temperature": "0.5"}, "temperature"),
    "anthropic-max-tokens-string": ("/v1/messages", ANT_H, {"model": "m", "max_tokens": "100", "messages": OAI_MSG},
                                    "max_tokens"),
    "anthropic-max-tokens-float": ("/v1/messages", ANT_H, {"model": "m", "max_tokens": 64.0, "messages": OAI_MSG},
                                   "max_tokens"),
    "anthropic-stream-string": ("/v1/messages", ANT_H, {"model": "m", "max_tokens": 5, "messages": OAI_MSG,
                                                        "stream": "false"}, "stream"),
    "anthropic-role-robot": ("/v1/messages", ANT_H, {"model": "m", "max_tokens": 5, "messages": ROBOT}, "role"),
    "gemini-max-output-tokens-string": ("/v1beta/models/g:generateContent", {"x-goog-api-key": KEY},
                                        dict(GEM_OK, generationConfig={"maxOutputTokens": "5"}), "maxOutputTokens"),
    "gemini-temperature-string": ("/v1beta/models/g:generateContent", {"x-goog-api-key": KEY},
                                  dict(GEM_OK, generationConfig={"temperature": "0.5"}), "temperature"),
    "gemini-role-robot": ("/v1beta/models/g:generateContent", {"x-goog-api-key": KEY},
                          {"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}, "role"),
    "ollama-option-string": ("/api/chat", {}, {"model": "m", "stream": False, "messages": OAI_MSG,
                                               "options": {"temperature": "0.5"}}, "temperature"),
    "ollama-num-predict-float": ("/api/chat", {}, {"model": "m", "stream": False, "messages": OAI_MSG,
                                                   "options": {"num_predict": 64.0}}, "num_predict"),
    "ollama-stream-string": ("/api/chat", {}, {"model": "m", "stream": "false", "messages": OAI_MSG}, "stream"),
    "ollama-role-robot": ("/api/chat", {}, {"model": "m", "stream": False, "messages": ROBOT}, "role"),
}


@pytest.mark.parametrize("case", sorted(STRICT_CASES))
def test_a_coercible_but_wrong_value_is_refused(mock, case):
    path, headers, body, field = STRICT_CASES[case]
    r = post(mock, path, body, headers)
    assert r.status_code == 400, (case, r.status_code, r.text)
    rec = last(mock)
    assert rec["valid"] is False and any(field in e for e in rec["errors"]), (case, rec["errors"])


BEDROCK_STRICT = {
    "empty-messages": ({"messages": []}, "messages"),
    "role-robot": ({"messages": [{"role": "robot", "content": [{"text": "x"}]}]}, "role"),
    "max-tokens-string": ({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                           "inferenceConfig": {"maxTokens": "100"}}, "maxTokens"),
    "max-tokens-float": ({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                          "inferenceConfig": {"maxTokens": 64.0}}, "maxTokens"),
    "temperature-string": ({"messages": [{"role": "user", "content": [{"text": "x"}]}],
                            "inferenceConfig": {"temperature": "0.5"}}, "temperature"),
}


@pytest.mark.parametrize("case", sorted(BEDROCK_STRICT))
def test_bedrock_refuses_a_signed_body_that_is_wrong(mock, case):
    body, field = BEDROCK_STRICT[case]

    def replace_body(request, **_):  # after botocore's own client-side checks, before signing
        request.data = json.dumps(body).encode()
        request.headers["Content-Length"] = str(len(request.data))

    br = bedrock(mock)
    br.meta.events.register("before-sign.bedrock-runtime.Converse", replace_body)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        br.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}])
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert field in exc.value.response["Error"]["Message"], exc.value.response["Error"]
    assert last(mock)["valid"] is False


def test_requests_are_kept_per_test_id_and_per_key_bounded(mock, oai):
    from mockllm import state

    for i in range(state.PER_TAG + 5):
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": f"tagged {i}"}],
                                    extra_headers={"x-mock-test-id": "t-1"})
    oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "other"}],
                                extra_headers={"x-mock-test-id": "t-2"})
    mine = httpx.get(mock.url + "/_mock/requests", params={"test_id": "t-1"}).json()
    # Only this test id's requests, the last PER_TAG of them, oldest first, bodies whole.
    assert [r["body"]["messages"][0]["content"] for r in mine] == [f"tagged {i}" for i in range(5, state.PER_TAG + 5)]
    other = httpx.get(mock.url + "/_mock/requests", params={"test_id": "t-2"}).json()
    assert [r["body"]["messages"][0]["content"] for r in other] == ["other"]
    by_key = httpx.get(mock.url + "/_mock/requests", params={"key_sha12": sha12(OTHER_KEY)}).json()
    assert by_key == []
    openai.OpenAI(base_url=mock.url + "/v1", api_key=OTHER_KEY, max_retries=0).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "by key"}])
    by_key = httpx.get(mock.url + "/_mock/requests", params={"key_sha12": sha12(OTHER_KEY)}).json()
    assert [r["body"]["messages"][0]["content"] for r in by_key] == ["by key"]
    rec = state.Recorder()
    for i in range(state.MAX_TAGS + 3):
        rec.add({"headers": {"x-mock-test-id": f"t{i}"}})
    assert rec.tagged("t0") == [] and len(rec.tagged(f"t{state.MAX_TAGS + 2}")) == 1
