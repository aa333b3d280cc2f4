"""OpenAI's Responses API (POST /v1/responses, GET/DELETE /v1/responses/{id}, GET .../input_items):
strict validation against the openai SDK's ResponseCreateParams plus the checks the real API makes
(stored ids exist, tool outputs answer calls, reasoning items come back with what the API gave,
referenced items exist, strict schemas are strict), `response` objects and the semantic event
stream, and a bounded store for `store: true` responses. With the built-in `web_search` tool it
searches: a `web_search_call` item, then the answer citing its source (`url_citation`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterator

from openai.types.responses import response_create_params as rcp

from . import validate
from .common import (Answer, Conversation, Reply, Request, halves, hexid, now, pieces, rand, sse,
                     text_of)
from .openai_like import OpenAI

MAX_STORED = 1000
WEB_SEARCH = {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}


def _items(value: Any) -> list[dict]:
    """`input` as a list of items (a string is one user message)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [i for i in value or [] if isinstance(i, dict)]


def _kind(item: dict) -> str:
    return item.get("type") or ("message" if "role" in item else "?")


def _strict_problems(schema: Any, where: str) -> list[str]:
    """What OpenAI's strict mode rejects: objects must close (`additionalProperties: false`) and
    require every property."""
    if not isinstance(schema, dict):
        return []
    out = []
    if schema.get("type") == "object":
        if schema.get("additionalProperties") is not False:
            out.append(f"{where}: 'additionalProperties' is required to be supplied and to be false")
        props = schema.get("properties") or {}
        missing = sorted(set(props) - set(schema.get("required") or []))
        if missing:
            out.append(f"{where}: 'required' is required to include every key in properties; missing {missing}")
        for name, sub in props.items():
            out.extend(_strict_problems(sub, f"{where}.properties.{name}"))
    if isinstance(schema.get("items"), dict):
        out.extend(_strict_problems(schema["items"], f"{where}.items"))
    return out


class Responses(OpenAI):
    name = "openai-responses"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: OrderedDict[str, dict] = OrderedDict()
        self._sealed: set[str] = set()   # encrypted_content values this mock handed out

    # --- the store -----------------------------------------------------------------------------
    def _keep(self, response: dict, items: list[dict]) -> None:
        with self._lock:
            self._stored[response["id"]] = {"response": response, "input": items}
            while len(self._stored) > MAX_STORED:
                self._stored.popitem(last=False)

    def stored(self, rid: str) -> dict | None:
        with self._lock:
            return self._stored.get(rid)

    def forget(self, rid: str) -> bool:
        with self._lock:
            return self._stored.pop(rid, None) is not None

    def _history(self, body: dict) -> list[dict]:
        """Items a `previous_response_id` chain stands for, oldest first."""
        out: list[dict] = []
        rid = body.get("previous_response_id")
        while rid:
            entry = self.stored(rid)
            if entry is None:
                break
            out[:0] = entry["input"] + entry["response"]["output"]
            rid = entry["response"].get("previous_response_id")
        return out

    # --- validation ---------------------------------------------------------------------------
    def validate(self, req: Request) -> list[str]:
        td = rcp.ResponseCreateParamsStreaming if req.stream else rcp.ResponseCreateParamsNonStreaming
        errors = validate.typed_dict(td, req.body)
        if errors:
            return errors
        body = req.body
        if not body.get("model"):
            errors.append("model: Field required")
        prev = body.get("previous_response_id")
        if prev is not None and self.stored(prev) is None:
            errors.append(f"previous_response_id: Previous response with id '{prev}' not found.")
        if "input" not in body and prev is None and "conversation" not in body:
            errors.append("input: Field required")
        history = self._history(body)
        calls = {i.get("call_id") for i in history + _items(body.get("input")) if _kind(i) == "function_call"}
        stored_ids = {i.get("id") for i in history if i.get("id")}
        searched = {i.get("id") for i in _items(body.get("input")) if _kind(i) == "web_search_call"}
        store = body.get("store", True) is not False
        for n, item in enumerate(_items(body.get("input"))):
            kind = _kind(item)
            if kind == "function_call_output" and item.get("call_id") not in calls:
                errors.append(f"input.{n}: No tool call found for function call output with call_id "
                              f"{item.get('call_id')}.")
            if kind == "reasoning":
                sealed = item.get("encrypted_content")
                if sealed is not None and sealed not in self._sealed:
                    errors.append(f"input.{n}.encrypted_content: The encrypted content could not be verified.")
                if sealed is None and item.get("id") not in stored_ids and not self._known_item(item.get("id")):
                    why = ("Items are not persisted when `store` is set to false." if not store else "")
                    errors.append(f"input.{n}: Item with id '{item.get('id')}' not found. {why}".strip())
            if kind == "item_reference" and item.get("id") not in stored_ids | searched \
                    and not self._known_item(item.get("id")):
                errors.append(f"input.{n}: Item with id '{item.get('id')}' not found.")
            if kind == "web_search_call" and not str(item.get("id", "")).startswith("ws_"):
                errors.append(f"input.{n}.id: Invalid web search call id '{item.get('id')}'.")
        for n, tool in enumerate(body.get("tools") or []):
            if tool.get("type") == "function" and tool.get("strict") is True:
                errors.extend(_strict_problems(tool.get("parameters"), f"tools.{n}.parameters"))
        return errors

    def _known_item(self, item_id: Any) -> bool:
        with self._lock:
            return any(item_id == i.get("id") for e in self._stored.values() for i in e["response"]["output"])

    # --- the conversation ------------------------------------------------------------------------
    def conversation(self, req: Request) -> Conversation:
        body, conv = req.body, Conversation()
        if body.get("instructions"):
            conv.texts.append(body["instructions"])
        items = self._history(body) + _items(body.get("input"))
        for item in items:
            kind = _kind(item)
            if kind == "message":
                text = text_of(item.get("content"))
                if text:
                    conv.texts.append(text)
                if item.get("role") == "user":
                    conv.last_user = text
            elif kind == "function_call_output":
                output = item.get("output")
                conv.texts.append(text_of(output))
        trailing = []
        for item in reversed(items):
            if _kind(item) != "function_call_output":
                break
            trailing.insert(0, text_of(item.get("output")))
        if trailing:
            conv.tool_result = "".join(trailing)
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        if tools and body.get("tool_choice") != "none":
            conv.tool_name = tools[0].get("name")
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":
            conv.schema = fmt.get("schema") or {}
        elif fmt.get("type") == "json_object":
            conv.schema = {}
        return conv

    # --- answers -------------------------------------------------------------------------------
    def _reasoning(self, body: dict) -> dict | None:
        effort = (body.get("reasoning") or {}).get("effort")
        if effort in (None, "none"):
            return None
        item: dict[str, Any] = {"id": "rs_" + hexid(48), "type": "reasoning", "summary": []}
        if (body.get("reasoning") or {}).get("summary"):
            item["summary"] = [{"type": "summary_text", "text": "**Echoing the user**"}]
        if "reasoning.encrypted_content" in (body.get("include") or []):
            sealed = "gAAAAAB" + rand(64)
            with self._lock:
                self._sealed.add(sealed)
            item["encrypted_content"] = sealed
        return item

    def _response(self, req: Request, head: tuple[str, int], status: str, output: list[dict],
                  usage: dict | None) -> dict:
        body = req.body
        text_cfg = dict(body.get("text") or {})
        text_cfg.setdefault("format", {"type": "text"})
        text_cfg.setdefault("verbosity", "medium")
        reasoning = body.get("reasoning") or {}
        return {
            "id": head[0], "object": "response", "created_at": head[1], "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"), "model": req.model, "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "safety_identifier": body.get("safety_identifier"), "service_tier": "default",
            "temperature": body.get("temperature", 1.0),
            "text": text_cfg, "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
            "top_logprobs": 0, "top_p": body.get("top_p", 1.0), "truncation": body.get("truncation", "disabled"),
            "usage": usage, "user": body.get("user"), "metadata": body.get("metadata") or {},
        }

    def _output(self, req: Request, ans: Answer) -> list[dict]:
        out = []
        reasoning = self._reasoning(req.body)
        if reasoning:
            out.append(reasoning)
        searches = any(t.get("type") in WEB_SEARCH for t in req.body.get("tools") or [])
        if searches and not ans.tool_name and req.body.get("tool_choice") != "none":
            return out + self._searched(req.body, ans)
        if ans.tool_name:
            out.append({"id": "fc_" + hexid(48), "type": "function_call", "status": "completed",
                        "arguments": ans.tool_json, "call_id": "call_" + rand(24), "name": ans.tool_name})
        else:
            out.append({"id": "msg_" + hexid(48), "type": "message", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": ans.text}]})
        return out

    @staticmethod
    def _searched(body: dict, ans: Answer) -> list[dict]:
        """A web search for the user's words, then the answer citing the page it found."""
        query = ans.text.removeprefix("echo: ")
        url = "https://search.example/result?q=" + hexid(8)
        action: dict[str, Any] = {"type": "search", "query": query}
        if "web_search_call.action.sources" in (body.get("include") or []):
            action["sources"] = [{"type": "url", "url": url}]
        call = {"id": "ws_" + hexid(48), "type": "web_search_call", "status": "completed", "action": action}
        cite = {"type": "url_citation", "start_index": 0, "end_index": len(ans.text), "url": url,
                "title": "Search result"}
        message = {"id": "msg_" + hexid(48), "type": "message", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "annotations": [cite], "logprobs": [], "text": ans.text}]}
        return [call, message]

    @staticmethod
    def _usage(ans: Answer, reasoning: bool) -> dict:
        spent = 8 if reasoning else 0
        return {"input_tokens": ans.input_tokens,
                "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0},
                "output_tokens": ans.output_tokens + spent,
                "output_tokens_details": {"reasoning_tokens": spent},
                "total_tokens": ans.input_tokens + ans.output_tokens + spent}

    def respond(self, req: Request, ans: Answer) -> Reply:
        head = ("resp_" + hexid(48), now())
        output = self._output(req, ans)
        usage = self._usage(ans, output[0]["type"] == "reasoning")
        response = self._response(req, head, "completed", output, usage)
        if req.body.get("store", True) is not False:
            self._keep(response, _items(req.body.get("input")))
        if not req.stream:
            return Reply.json(200, response, self.headers())
        obfuscate = (req.body.get("stream_options") or {}).get("include_obfuscation", True) is not False
        start = self._response(req, head, "in_progress", [], None)
        return self.stream_reply(events(start, response, obfuscate), self.headers())

    # --- stored responses ----------------------------------------------------------------------
    def stored_call(self, method: str, rid: str, op: str | None, query: dict[str, str]) -> Reply:
        entry = self.stored(rid)
        if entry is None:
            return self.error(404, f"Response with id '{rid}' not found.")
        if method == "DELETE" and op is None:
            self.forget(rid)
            return Reply.json(200, {"id": rid, "object": "response", "deleted": True}, self.headers())
        if method != "GET":
            return self.error(405, f"{method} is not allowed here")
        if op == "input_items":
            data = [dict(item, id=item.get("id") or f"msg_{rid[5:17]}{n}", status="completed",
                         type=_kind(item)) for n, item in enumerate(entry["input"])]
            for item in data:
                if item["type"] == "message" and isinstance(item.get("content"), str):
                    item["content"] = [{"type": "input_text", "text": item["content"]}]
            return Reply.json(200, {"object": "list", "data": data, "has_more": False,
                                    "first_id": data[0]["id"] if data else None,
                                    "last_id": data[-1]["id"] if data else None}, self.headers())
        response = entry["response"]
        if query.get("stream") == "true":
            start = dict(response, status="in_progress", output=[], usage=None)
            return self.stream_reply(events(start, response, False), self.headers())
        return Reply.json(200, response, self.headers())


def events(start: dict, final: dict, obfuscate: bool) -> Iterator[bytes]:
    """The semantic event stream that ends in `final`, as OpenAI sends it."""
    seq = 0

    def ev(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        data = {"type": kind, "sequence_number": seq, **fields}
        if obfuscate and kind.endswith(".delta"):
            data["obfuscation"] = rand(4 + seq % 8)
        seq += 1
        return sse(data, kind)

    yield ev("response.created", response=start)
    yield ev("response.in_progress", response=start)
    for n, item in enumerate(final["output"]):
        at = {"output_index": n}
        if item["type"] == "reasoning":
            yield ev("response.output_item.added", **at, item=dict(item, summary=[]))
            for k, part in enumerate(item["summary"]):
                ids = {"item_id": item["id"], **at, "summary_index": k}
                yield ev("response.reasoning_summary_part.added", **ids, part={"type": "summary_text", "text": ""})
                yield ev("response.reasoning_summary_text.delta", **ids, delta=part["text"])
                yield ev("response.reasoning_summary_text.done", **ids, text=part["text"])
                yield ev("response.reasoning_summary_part.done", **ids, part=part)
        elif item["type"] == "web_search_call":
            yield ev("response.output_item.added", **at,
                     item=dict(item, status="in_progress", action={"type": "search"}))
            for phase in ("in_progress", "searching", "completed"):
                yield ev(f"response.web_search_call.{phase}", item_id=item["id"], **at)
        elif item["type"] == "message":
            yield ev("response.output_item.added", **at, item=dict(item, status="in_progress", content=[]))
            ids = {"item_id": item["id"], **at, "content_index": 0}
            text = item["content"][0]["text"]
            yield ev("response.content_part.added", **ids,
                     part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""})
            for p in pieces(text):
                yield ev("response.output_text.delta", **ids, delta=p, logprobs=[])
            # Citations arrive once the text they point into has.
            for k, annotation in enumerate(item["content"][0]["annotations"]):
                yield ev("response.output_text.annotation.added", **ids, annotation_index=k,
                         annotation=annotation)
            yield ev("response.output_text.done", **ids, text=text, logprobs=[])
            yield ev("response.content_part.done", **ids, part=item["content"][0])
        else:
            yield ev("response.output_item.added", **at, item=dict(item, status="in_progress", arguments=""))
            for part in halves(item["arguments"]):
                yield ev("response.function_call_arguments.delta", item_id=item["id"], **at, delta=part)
            yield ev("response.function_call_arguments.done", item_id=item["id"], **at,
                     arguments=item["arguments"])
        yield ev("response.output_item.done", **at, item=item)
    yield ev("response.completed", response=final)
