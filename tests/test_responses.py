"""OpenAI's Responses API through weir with the official `openai` SDK: answers and streams that hold
to the SDK's own types, structured output to every demo model, the stateless rule, stored-response
calls passed to the Responses provider, and built-in tools served by the Responses model (items,
citations, streams) and refused by name elsewhere. (Plain, streamed and
tool round trips against every demo model are in test_matrix.py; PII in test_pii.py.)"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from mockllm import validate
from weir_clients import DEMO_KEY, DEMO_MODELS, LIMITED_KEY, dumps, openai_client

EVENTS = TypeAdapter(ResponseStreamEvent)
SCHEMA = {"type": "object", "properties": {"weir_answer_field": {"type": "string"}},
          "required": ["weir_answer_field"], "additionalProperties": False}


def raw_events(url: str, body: dict) -> list[dict]:
    """A streamed create, read as SSE without the SDK: every event as it came."""
    with httpx.stream("POST", url + "/v1/responses", json=body, timeout=30,
                      headers={"authorization": f"Bearer {DEMO_KEY}"}) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        return [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize("model", ["mock-anthropic", "mock-ollama", "mock-responses"])
def test_answers_and_events_are_exactly_the_sdks_types(envoy, mock, model):
    raw = openai_client(envoy.url).responses.with_raw_response.create(
        model=model, input="héllo", instructions="Be brief.", max_output_tokens=64, metadata={"run": "1"})
    body = raw.http_response.json()
    assert validate.model(Response, body) == [], body
    r = raw.parse()
    assert (r.output_text, r.status, r.metadata) == ("echo: héllo", "completed", {"run": "1"})
    assert r.usage.input_tokens > 0 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens

    events = raw_events(envoy.url, {"model": model, "input": "héllo", "stream": True})
    for n, ev in enumerate(events):
        assert ev["sequence_number"] == n
        assert validate.model(type(EVENTS.validate_python(ev)), ev) == [], ev
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[-1]["type"] == "response.completed"
    assert validate.model(Response, events[-1]["response"]) == []
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "echo: héllo" == events[-1]["response"]["output"][0]["content"][0]["text"]


@pytest.mark.parametrize("model", list(DEMO_MODELS))
def test_structured_output_reaches_every_provider_in_its_own_form(envoy, mock, model):
    fmt = {"type": "json_schema", "name": "Answer", "schema": SCHEMA, "strict": True}
    try:
        r = openai_client(envoy.url).responses.create(model=model, input="answer in JSON", text={"format": fmt})
    except openai.BadRequestError as e:
        # A provider with no structured output says so by name, before any upstream call.
        assert "response_format" in e.message and mock.requests() == [], e.message
        return
    # The mocks answer structured output with the schema filled in from the prompt.
    assert json.loads(r.output_text) == {"weir_answer_field": "answer in JSON"}
    assert r.text.format.type == "json_schema" and r.text.format.name == "Answer"
    recs = mock.requests()
    assert [x["provider"] for x in recs] == [DEMO_MODELS[model][0]] and recs[0]["valid"], recs
    assert "weir_answer_field" in dumps(recs[0]["body"]), recs[0]["body"]


def test_stored_state_is_served_only_by_a_responses_provider(envoy, mock):
    c = openai_client(envoy.url)
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model="mock-anthropic", input="and then?", previous_response_id="resp_1")
    assert e.value.body["param"] == "previous_response_id"
    assert "send the whole conversation in `input`" in e.value.message
    assert mock.requests() == []

    first = c.responses.create(model="mock-responses", input="remember me")  # stored by default
    follow = c.responses.create(model="mock-responses", input="and then?", previous_response_id=first.id)
    assert follow.output_text == "echo: and then?"
    assert [r["body"].get("previous_response_id") for r in mock.requests()] == [None, first.id]

    # The stored response, its input and its stream, straight from the provider.
    assert c.responses.retrieve(first.id).output_text == "echo: remember me"
    assert [i.content[0].text for i in c.responses.input_items.list(first.id)] == ["remember me"]
    replay = list(c.responses.retrieve(first.id, stream=True))
    assert replay[0].type == "response.created" and replay[-1].response.id == first.id
    c.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(first.id)
    stored = [r for r in mock.requests() if r["kind"] == "stored"]
    assert [(r["method"], r["status"]) for r in stored] == [
        ("GET", 200), ("GET", 200), ("GET", 200), ("DELETE", 200), ("GET", 404)]
    assert all(r["key_sha12"] == stored[0]["key_sha12"] and r["valid"] for r in stored)


def test_a_key_without_a_responses_provider_is_told_weir_is_stateless(envoy, mock):
    c = openai_client(envoy.url, LIMITED_KEY)  # may use mock-openai only
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.retrieve("resp_123")
    assert "weir is stateless" in e.value.message
    with pytest.raises(openai.BadRequestError):
        c.responses.delete("resp_123")
    assert mock.requests() == []


SEARCH = [{"type": "web_search"}]


def test_built_in_tools_are_served_by_the_responses_model_with_their_items_and_citations(envoy, mock):
    c = openai_client(envoy.url)
    raw = c.responses.with_raw_response.create(model="mock-responses", input="news about jane@example.com?",
                                               tools=SEARCH, include=["web_search_call.action.sources"])
    body = raw.http_response.json()
    assert validate.model(Response, body) == [], body
    r = raw.parse()
    assert [o.type for o in r.output] == ["web_search_call", "message"]
    search, message = r.output
    # The provider's own item and ids, verbatim: the client can send them back.
    assert search.id.startswith("ws_") and search.status == "completed"
    assert message.id.startswith("msg_")
    cite = message.content[0].annotations[0]
    assert cite.type == "url_citation" and cite.url.startswith("https://search.example/")
    # PII: the provider saw a placeholder; the answer's text is restored, the search item is not
    # touched.
    assert r.output_text == "echo: news about jane@example.com?"
    [rec] = mock.requests()
    assert rec["valid"] and rec["body"]["tools"] == SEARCH, rec
    assert "jane@example.com" not in dumps(rec["body"])
    assert search.action.sources[0].url == cite.url

    # Sent back in a stateless conversation, the items reach the provider as they were.
    mock.clear()
    items = [{"role": "user", "content": "news?"}]
    items += [o.model_dump(mode="json", exclude_none=True) for o in r.output]
    items += [{"type": "item_reference", "id": search.id}, {"role": "user", "content": "more?"}]
    again = c.responses.create(model="mock-responses", input=items, tools=SEARCH, store=False)
    assert again.output_text == "echo: more?"
    [rec] = mock.requests()
    assert rec["valid"], rec
    sent = rec["body"]["input"]
    assert [i.get("type", "message") for i in sent] == [
        "message", "web_search_call", "message", "item_reference", "message"]
    assert sent[1] == items[1] and sent[3] == items[3]


@pytest.mark.parametrize("model", ["mock-anthropic", "mock-openai", "mock-gemini"])
def test_built_in_tools_and_their_items_are_refused_by_name_elsewhere(envoy, mock, model):
    c = openai_client(envoy.url)
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model=model, input="news?",
                           tools=[{"type": "function", "name": "f", "parameters": {}}, *SEARCH])
    assert e.value.body["param"] == "tools[1].type"
    assert "`web_search`" in e.value.message and "openai-responses" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model=model, input=[
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
            {"role": "user", "content": "more?"}])
    assert e.value.body["param"] == "input" and "`web_search_call`" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model=model, input=[{"type": "item_reference", "id": "msg_1"}])
    assert "stateless" in e.value.message
    assert mock.requests() == []


def test_a_streamed_search_reaches_the_sdks_accumulator_in_order(envoy, mock):
    ask = {"model": "mock-responses", "input": "héllo world", "tools": SEARCH, "stream": True}
    events = raw_events(envoy.url, ask)
    for n, ev in enumerate(events):
        assert ev["sequence_number"] == n
        assert validate.model(type(EVENTS.validate_python(ev)), ev) == [], ev
    kinds = [e["type"] for e in events]
    assert kinds[:6] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.web_search_call.in_progress", "response.web_search_call.searching",
                         "response.web_search_call.completed"]
    assert kinds.index("response.output_text.annotation.added") > kinds.index("response.output_text.delta")
    assert kinds[-1] == "response.completed"
    ws_id = events[2]["item"]["id"]
    assert all(e["output_index"] == 0 and e["item_id"] == ws_id for e in events[3:6])

    del ask["stream"]
    with openai_client(envoy.url).responses.stream(**ask) as s:
        seen = [ev.type for ev in s]
        final = s.get_final_response()
    assert "response.web_search_call.searching" in seen
    assert [o.type for o in final.output] == ["web_search_call", "message"]
    assert final.output_text == "echo: héllo world"
    assert final.output[1].content[0].annotations[0].type == "url_citation"


def test_a_chat_client_and_the_agents_style_history_reach_the_responses_provider(envoy, mock):
    c = openai_client(envoy.url)
    out = c.chat.completions.create(model="mock-responses", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "echo: hi"
    sent = mock.requests()[0]["body"]
    assert (sent["instructions"], sent["store"], sent["model"]) == ("Be brief.", False, "gpt-5")
    # Reasoning comes back with the provider's own id and payload, so the next turn verifies.
    mock.clear()
    r = c.responses.create(model="mock-responses", input="think", store=False,
                           reasoning={"effort": "low", "summary": "auto"}, include=["reasoning.encrypted_content"])
    reasoning = r.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content.startswith("gAAAA")
    items = [{"role": "user", "content": "think"}] + [o.model_dump(mode="json", exclude_none=True) for o in r.output]
    items.append({"role": "user", "content": "again"})
    again = c.responses.create(model="mock-responses", input=items, store=False, reasoning={"effort": "low"},
                               include=["reasoning.encrypted_content"])
    assert again.output_text == "echo: again"
    assert mock.requests()[-1]["valid"] is True


def test_a_stored_call_is_tried_once_and_its_failure_reaches_the_client(envoy, mock):
    first = openai_client(envoy.url).responses.create(model="mock-responses", input="keep me")
    mock.clear()
    httpx.post(mock.url + "/_mock/faults", json=[{"provider": "openai-responses", "status": 503}],
               timeout=10).raise_for_status()
    with pytest.raises(openai.InternalServerError) as e:
        openai_client(envoy.url).responses.retrieve(first.id)
    assert e.value.status_code == 503
    # Untranslated calls are not failed over: the route's retries do not apply.
    assert [(r["kind"], r["status"]) for r in mock.requests()] == [("stored", 503)]


def test_cached_answers_replay_in_the_responses_shape(envoy, mock):
    c = openai_client(envoy.url)
    ask = {"model": "mock-gemini", "input": "cache me, s'il vous plaît", "temperature": 0}
    fresh = c.responses.create(**ask)
    raw = c.responses.with_raw_response.create(**ask)
    assert raw.headers.get("x-weir-cache") == "hit"
    hit = raw.parse()
    assert (hit.output_text, hit.id) == (fresh.output_text, fresh.id)
    with c.responses.stream(**ask) as s:
        replayed = s.get_final_response()
    assert replayed.output_text == fresh.output_text
    assert len(mock.requests()) == 1

