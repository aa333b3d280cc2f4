"""Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens): x-api-key +
anthropic-version, strict validation against the anthropic SDK's MessageCreateParams (the beta
ones when an anthropic-beta header comes), Message replies with signed thinking blocks, the full
SSE event sequence, and thinking blocks in the history checked against their signatures."""

from __future__ import annotations

from typing import Optional

from anthropic.types import message_count_tokens_params as mctp
from anthropic.types import message_create_params as mcp
from anthropic.types.beta import message_create_params as beta_mcp
from pydantic import BaseModel, ConfigDict

from . import validate
from .common import (Answer, Conversation, Provider, Reply, Request, halves, mock_signature, pieces, rand,
                     sse, text_of, words)


class LegacySampling(BaseModel):
    """Sampling fields the API still takes for the models that have them, which the newest SDK's
    request types no longer declare (clients send them through extra_body)."""
    model_config = ConfigDict(extra="forbid")
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_k: Optional[int] = None

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
        if not isinstance(req.body, dict):
            return ["<body>: must be a JSON object"]
        if req.kind == "count":
            return validate.typed_dict(mctp.MessageCountTokensParams, req.body)
        params = beta_mcp if req.headers.get("anthropic-beta") else mcp
        td = params.MessageCreateParamsStreaming if req.stream else params.MessageCreateParamsNonStreaming
        sampling = {k: v for k, v in req.body.items() if k in LegacySampling.model_fields}
        rest = {k: v for k, v in req.body.items() if k not in LegacySampling.model_fields}
        return (validate.model(LegacySampling, sampling) + validate.typed_dict(td, rest)
                + self._signatures(req.body))

    @staticmethod
    def _signatures(body: dict) -> list[str]:
        """Thinking blocks must come back exactly as the mock signed them, as Anthropic checks."""
        errs = []
        for i, m in enumerate(body.get("messages") or []):
            content = m.get("content") if isinstance(m.get("content"), list) else []
            for j, b in enumerate(content):
                if isinstance(b, dict) and b.get("type") == "thinking" \
                        and b.get("signature") != mock_signature(b.get("thinking", "")):
                    errs.append(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
        return errs

    def count(self, req: Request) -> Reply:
        conv = self.conversation(req)
        return Reply.json(200, {"input_tokens": sum(words(t) for t in conv.texts)})

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
        conv.reasoning = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive", "between_tools")
        fmt = (body.get("output_config") or {}).get("format")
        if isinstance(fmt, dict):
            conv.schema = fmt.get("schema") or {}
        return conv

    def _usage(self, inp: int, out: int) -> dict:
        return {"input_tokens": inp, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "output_tokens": out, "service_tier": "standard"}

    def respond(self, req: Request, ans: Answer) -> Reply:
        mid, tid = "msg_01" + rand(22), "toolu_01" + rand(22)
        stop = "tool_use" if ans.tool_name else "end_turn"
        headers = {"request-id": "req_" + rand(24), "anthropic-organization-id": "mock-org"}
        thinking = ([{"type": "thinking", "thinking": ans.reasoning, "signature": mock_signature(ans.reasoning)}]
                    if ans.reasoning else [])
        if not req.stream:
            content = thinking + ([{"type": "tool_use", "id": tid, "name": ans.tool_name, "input": ans.tool_args}]
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
            n = 0
            if ans.reasoning:
                yield ev({"type": "content_block_start", "index": 0,
                          "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                for p in pieces(ans.reasoning):
                    yield ev({"type": "content_block_delta", "index": 0,
                              "delta": {"type": "thinking_delta", "thinking": p}})
                yield ev({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "signature_delta", "signature": mock_signature(ans.reasoning)}})
                yield ev({"type": "content_block_stop", "index": 0})
                n = 1
            if ans.tool_name:
                yield ev({"type": "content_block_start", "index": n, "content_block": {
                    "type": "tool_use", "id": tid, "name": ans.tool_name, "input": {}}})
                for part in halves(ans.tool_json):
                    yield ev({"type": "content_block_delta", "index": n,
                              "delta": {"type": "input_json_delta", "partial_json": part}})
            else:
                yield ev({"type": "content_block_start", "index": n, "content_block": {"type": "text", "text": ""}})
                for p in pieces(ans.text):
                    yield ev({"type": "content_block_delta", "index": n, "delta": {"type": "text_delta", "text": p}})
            yield ev({"type": "content_block_stop", "index": n})
            yield ev({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                      "usage": {"input_tokens": ans.input_tokens, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0, "output_tokens": ans.output_tokens}})
            yield ev({"type": "message_stop"})

        return self.stream_reply(gen(), headers)
