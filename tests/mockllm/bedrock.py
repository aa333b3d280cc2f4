"""Amazon Bedrock Runtime Converse / ConverseStream: SigV4-verified, bodies validated by botocore's
ParamValidator against the bedrock-runtime service model, streams as AWS event-stream frames."""

from __future__ import annotations

import functools

import botocore.session

from . import eventstream, sigv4, validate
from .common import (Answer, Conversation, Provider, Reply, Request, compact, halves, mock_signature, pieces,
                     rand)

ERRORS = {400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
          408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
          500: "InternalServerException", 503: "ServiceUnavailableException"}


@functools.lru_cache(maxsize=None)
def _service_model():
    return botocore.session.get_session().get_service_model("bedrock-runtime")


def _block_text(block: dict) -> str:
    if isinstance(block.get("text"), str):
        return block["text"]
    if isinstance(block.get("toolResult"), dict):
        return "".join(c["text"] if isinstance(c.get("text"), str) else compact(c["json"]) if "json" in c else ""
                       for c in block["toolResult"].get("content") or [])
    return ""


class Bedrock(Provider):
    name = "bedrock"
    stream_type = "application/vnd.amazon.eventstream"

    def authenticate(self, req: Request) -> Reply | None:
        qs = "?" + req.query_string if req.query_string else ""
        try:
            req.key = sigv4.verify(req.method, req.path + qs, req.headers, req.raw)
        except sigv4.AuthError as exc:
            return self.error(403, str(exc), exc.error_type)
        return None

    def error(self, status: int, message: str, error_type: str | None = None) -> Reply:
        etype = error_type or ERRORS.get(status, "InternalServerException" if status >= 500 else "ValidationException")
        return Reply.json(status, {"message": message},
                          {"x-amzn-ErrorType": f"{etype}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                           "x-amzn-RequestId": rand(8) + "-mock-" + rand(12)})

    def validate(self, req: Request) -> list[str]:
        if not isinstance(req.body, dict):
            return ["<body>: must be a JSON object"]
        op = _service_model().operation_model("ConverseStream" if req.stream else "Converse")
        shape = op.input_shape
        if "modelId" in req.body:
            return ["modelId: Unknown parameter in input: the model id travels in the path, not the body"]
        params, errs = validate.botocore_input(shape, dict(req.body, modelId=req.model))
        errs += validate.botocore_params(shape, params) + validate.botocore_constraints(shape, req.body)
        if not req.body.get("messages"):
            # Converse needs a conversation: with no prompt template there is nothing to answer.
            errs.append("messages: A conversation must start with a user message. Try again with a "
                        "conversation that starts with a user message.")
        return errs + self._signatures(req.body)

    @staticmethod
    def _signatures(body: dict) -> list[str]:
        """Claude on Bedrock checks the reasoning it signed when the history comes back."""
        errs = []
        for i, m in enumerate(body.get("messages") or []):
            for j, b in enumerate(m.get("content") or []):
                text = (b.get("reasoningContent") or {}).get("reasoningText")
                if isinstance(text, dict) and text.get("signature") != mock_signature(text.get("text", "")):
                    errs.append(f"messages.{i}.content.{j}.reasoningContent: the signature does not match")
        return errs

    def conversation(self, req: Request) -> Conversation:
        body, conv = req.body, Conversation()
        for s in body.get("system") or []:
            if isinstance(s.get("text"), str):
                conv.texts.append(s["text"])
        msgs = body.get("messages") or []
        for m in msgs:
            for b in m.get("content") or []:
                if _block_text(b):
                    conv.texts.append(_block_text(b))
            if m.get("role") == "user":
                conv.last_user = "".join(b["text"] for b in m.get("content") or [] if isinstance(b.get("text"), str))
        if msgs and msgs[-1].get("role") == "user":
            results = [b for b in msgs[-1].get("content") or [] if isinstance(b.get("toolResult"), dict)]
            if results:
                conv.tool_result = "".join(_block_text(b) for b in results)
        tools = (body.get("toolConfig") or {}).get("tools") or []
        specs = [t["toolSpec"] for t in tools if isinstance(t.get("toolSpec"), dict)]
        if specs:
            conv.tool_name = specs[0].get("name")
        forced = ((body.get("toolConfig") or {}).get("toolChoice") or {}).get("tool")
        if isinstance(forced, dict):
            spec = next((s for s in specs if s.get("name") == forced.get("name")), {})
            conv.tool_name = forced.get("name")
            conv.forced_schema = (spec.get("inputSchema") or {}).get("json") or {}
        extra = body.get("additionalModelRequestFields") or {}
        conv.reasoning = ((extra.get("thinking") or {}).get("type") in ("enabled", "adaptive")
                          or (extra.get("reasoningConfig") or {}).get("type") == "enabled")
        return conv

    def respond(self, req: Request, ans: Answer) -> Reply:
        stop = "tool_use" if ans.tool_name else "end_turn"
        tid = "tooluse_" + rand(22)
        usage = {"inputTokens": ans.input_tokens, "outputTokens": ans.output_tokens,
                 "totalTokens": ans.input_tokens + ans.output_tokens}
        headers = {"x-amzn-RequestId": rand(8) + "-mock-" + rand(12)}
        reasoning = ([{"reasoningContent": {"reasoningText": {
            "text": ans.reasoning, "signature": mock_signature(ans.reasoning)}}}] if ans.reasoning else [])
        if not req.stream:
            block = ({"toolUse": {"toolUseId": tid, "name": ans.tool_name, "input": ans.tool_args}}
                     if ans.tool_name else {"text": ans.text})
            return Reply.json(200, {"output": {"message": {"role": "assistant", "content": reasoning + [block]}},
                                    "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 1}}, headers)

        def gen():
            ev = eventstream.event
            yield ev("messageStart", {"role": "assistant"})
            n = 0
            if ans.reasoning:
                for p in pieces(ans.reasoning):
                    yield ev("contentBlockDelta", {"contentBlockIndex": 0,
                                                   "delta": {"reasoningContent": {"text": p}}})
                yield ev("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
                    "reasoningContent": {"signature": mock_signature(ans.reasoning)}}})
                yield ev("contentBlockStop", {"contentBlockIndex": 0})
                n = 1
            if ans.tool_name:
                yield ev("contentBlockStart", {"contentBlockIndex": n,
                                               "start": {"toolUse": {"toolUseId": tid, "name": ans.tool_name}}})
                for part in halves(ans.tool_json):
                    yield ev("contentBlockDelta", {"contentBlockIndex": n, "delta": {"toolUse": {"input": part}}})
            else:
                for p in pieces(ans.text):
                    yield ev("contentBlockDelta", {"contentBlockIndex": n, "delta": {"text": p}})
            yield ev("contentBlockStop", {"contentBlockIndex": n})
            yield ev("messageStop", {"stopReason": stop})
            yield ev("metadata", {"usage": usage, "metrics": {"latencyMs": 1}})

        return self.stream_reply(gen(), headers)
