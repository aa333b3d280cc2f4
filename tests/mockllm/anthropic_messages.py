"""Anthropic Messages API (POST /v1/messages): x-api-key + anthropic-version, strict validation
against the anthropic SDK's MessageCreateParams, Message replies and the full SSE event sequence."""

from __future__ import annotations

from anthropic.types import message_create_params as mcp

from . import validate
from .common import (Answer, Conversation, Provider, Reply, Request, halves, pieces, rand, sse, text_of)

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}


def _block_text(block: dict) -> str:
    if block.get("type") == "tool_result":
        return text_of(block.get("content"))
    return block.get("text", "") if isinstance(block.get("text"), str) else ""


class Anthropic(Provider):
    name = "anthropic"

    def authenticate(self, req: Request) -> Reply | None:
        # API keys travel in x-api-key; current SDKs (anthropic>=2) send 'Authorization: Bearer' instead.
        auth = req.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        req.key = req.headers.get("x-api-key") or bearer or None
        if req.key is None:
            return self.error(401, "x-api-key header is required")
        if not req.headers.get("anthropic-version"):
            return self.error(400, "anthropic-version: header is required")
        return None

    def error(self, status: int, message: str) -> Reply:
        etype = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        rid = "req_" + rand(24)
        return Reply.json(status, {"type": "error", "error": {"type": etype, "message": message},
                                   "request_id": rid}, {"request-id": rid})

    def validate(self, req: Request) -> list[str]:
        td = mcp.MessageCreateParamsStreaming if req.stream else mcp.MessageCreateParamsNonStreaming
        return validate.typed_dict(td, req.body)

    def conversation(self, req: Request) -> Conversation:
        body, conv = req.body, Conversation()
        system = body.get("system")
        if system:
            conv.texts.append(text_of(system))
        msgs = body.get("messages") or []
        for m in msgs:
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            for b in blocks:
                if _block_text(b):
                    conv.texts.append(_block_text(b))
            if m.get("role") == "user":
                conv.last_user = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        if msgs and msgs[-1].get("role") == "user" and isinstance(msgs[-1].get("content"), list):
            results = [b for b in msgs[-1]["content"] if b.get("type") == "tool_result"]
            if results:
                conv.tool_result = "".join(_block_text(b) for b in results)
        tools = body.get("tools") or []
        if tools and (body.get("tool_choice") or {}).get("type") != "none":
            conv.tool_name = tools[0].get("name")
        return conv

    def _usage(self, inp: int, out: int) -> dict:
        return {"input_tokens": inp, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "output_tokens": out, "service_tier": "standard"}

    def respond(self, req: Request, ans: Answer) -> Reply:
        mid, tid = "msg_01" + rand(22), "toolu_01" + rand(22)
        stop = "tool_use" if ans.tool_name else "end_turn"
        headers = {"request-id": "req_" + rand(24), "anthropic-organization-id": "mock-org"}
        if not req.stream:
            content = ([{"type": "tool_use", "id": tid, "name": ans.tool_name, "input": ans.tool_args}]
                       if ans.tool_name else [{"type": "text", "text": ans.text}])
            return Reply.json(200, {"id": mid, "type": "message", "role": "assistant", "model": req.model,
                                    "content": content, "stop_reason": stop, "stop_sequence": None,
                                    "usage": self._usage(ans.input_tokens, ans.output_tokens)}, headers)

        def ev(obj: dict) -> bytes:
            return sse(obj, event=obj["type"])

        def gen():
            yield ev({"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": req.model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": self._usage(ans.input_tokens, 1)}})
            yield ev({"type": "ping"})
            if ans.tool_name:
                yield ev({"type": "content_block_start", "index": 0, "content_block": {
                    "type": "tool_use", "id": tid, "name": ans.tool_name, "input": {}}})
                for part in halves(ans.tool_json):
                    yield ev({"type": "content_block_delta", "index": 0,
                              "delta": {"type": "input_json_delta", "partial_json": part}})
            else:
                yield ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
                for p in pieces(ans.text):
                    yield ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})
            yield ev({"type": "content_block_stop", "index": 0})
            yield ev({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                      "usage": {"input_tokens": ans.input_tokens, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0, "output_tokens": ans.output_tokens}})
            yield ev({"type": "message_stop"})

        return self.stream_reply(gen(), headers)
