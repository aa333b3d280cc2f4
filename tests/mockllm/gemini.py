"""Gemini API (generativelanguage v1beta): generateContent, streamGenerateContent?alt=sse,
embedContent, batchEmbedContents; bodies validated against google-genai's pydantic types."""

from __future__ import annotations

from typing import List, Literal, Optional

from google.genai import types
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from . import validate
from .common import (Answer, Conversation, Provider, Reply, Request, compact, embedding, mock_signature, pieces,
                     rand, sse, words)

SKIP_SIGNATURE = "skip_thought_signature_validator"

STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
          503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

# GenerateContentRequest's members (REST reference); each is checked with the SDK type below.
# The wire is proto3 JSON, which takes lowerCamel and snake_case names alike, as the SDK types do.
REQUEST_FIELDS = {
    "contents": List[types.Content],
    "systemInstruction": types.Content,
    "tools": List[types.Tool],
    "toolConfig": types.ToolConfig,
    "generationConfig": types.GenerationConfig,
    "safetySettings": List[types.SafetySetting],
    "cachedContent": str,
}
_SNAKE = {"system_instruction": "systemInstruction", "tool_config": "toolConfig",
          "generation_config": "generationConfig", "safety_settings": "safetySettings",
          "cached_content": "cachedContent"}


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class EmbedContentRequest(_Camel):
    model: Optional[str] = None
    content: types.Content
    task_type: Optional[Literal["TASK_TYPE_UNSPECIFIED", "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT",
                                "SEMANTIC_SIMILARITY", "CLASSIFICATION", "CLUSTERING",
                                "QUESTION_ANSWERING", "FACT_VERIFICATION", "CODE_RETRIEVAL_QUERY"]] = None
    title: Optional[str] = None
    output_dimensionality: Optional[int] = None


class BatchEmbedContentsRequest(_Camel):
    requests: List[EmbedContentRequest]


def _get(d: dict, camel: str):
    snake = next((s for s, c in _SNAKE.items() if c == camel), camel)
    return d.get(camel, d.get(snake))


def _text(content: dict | None) -> str:
    return "".join(p.get("text", "") for p in (content or {}).get("parts") or []
                   if isinstance(p.get("text"), str) and not p.get("thought"))


class Gemini(Provider):
    name = "gemini"

    def authenticate(self, req: Request) -> Reply | None:
        req.key = req.headers.get("x-goog-api-key") or None
        if req.key is None:
            return self.error(403, "Method doesn't allow unregistered callers (callers without established "
                                   "identity). Please use API Key or other form of API consumer identity to "
                                   "call this API.")
        return None

    def error(self, status: int, message: str) -> Reply:
        return Reply.json(status, {"error": {"code": status, "message": message,
                                             "status": STATUS.get(status, "UNKNOWN")}},
                          content_type="application/json; charset=UTF-8")

    def validate(self, req: Request) -> list[str]:
        body = req.body
        if not isinstance(body, dict):
            return ["<body>: must be a JSON object"]
        if req.kind == "embed":
            cls = BatchEmbedContentsRequest if req.path.endswith(":batchEmbedContents") else EmbedContentRequest
            errs = validate.model(cls, body)
            if cls is BatchEmbedContentsRequest and not errs:
                errs = [f"requests.{i}.model: Field required" for i, r in enumerate(body["requests"])
                        if not r.get("model")]
            return errs
        errs = [f"{k}: Unknown name \"{k}\": Cannot find field." for k in body
                if k not in REQUEST_FIELDS and k not in _SNAKE]
        if "contents" not in body:
            errs.append("contents: Field required")
        for key, value in body.items():
            camel = _SNAKE.get(key, key)
            if camel in REQUEST_FIELDS:
                errs += validate.of_type(REQUEST_FIELDS[camel], value, (key,))
        # The SDK types `role` as any string; the API takes only these (its docs and its 400s).
        for i, c in enumerate(body.get("contents") or []):
            if isinstance(c, dict) and c.get("role") not in (None, "user", "model"):
                errs.append(f"contents[{i}].role: Please use a valid role: user, model.")
        return errs + self._signatures(body)

    @staticmethod
    def _signatures(body: dict) -> list[str]:
        """A function call in the history carries the signature Gemini gave it, or Google's
        documented placeholder for histories Gemini did not write."""
        errs = []
        for i, c in enumerate(body.get("contents") or []):
            for j, p in enumerate(c.get("parts") or []):
                call, sig = p.get("functionCall"), p.get("thoughtSignature")
                if isinstance(call, dict) and sig not in (None, SKIP_SIGNATURE) \
                        and sig != mock_signature("fc:" + str(call.get("name"))):
                    errs.append(f"contents[{i}].parts[{j}].thoughtSignature: Corrupted thought signature.")
        return errs

    def conversation(self, req: Request) -> Conversation:
        body, conv = req.body, Conversation()
        if _text(_get(body, "systemInstruction")):
            conv.texts.append(_text(_get(body, "systemInstruction")))
        contents = body.get("contents") or []
        for c in contents:
            if _text(c):
                conv.texts.append(_text(c))
            if c.get("role", "user") == "user" and _text(c):
                conv.last_user = _text(c)
        if contents:
            parts = contents[-1].get("parts") or []
            responses = [r for r in (p.get("functionResponse") or p.get("function_response") for p in parts)
                         if isinstance(r, dict)]
            if responses:
                conv.tool_result = "".join(compact(r.get("response", {})) for r in responses)
                conv.texts.append(conv.tool_result)
        mode = ((_get(body, "toolConfig") or {}).get("functionCallingConfig")
                or (_get(body, "toolConfig") or {}).get("function_calling_config") or {}).get("mode")
        if str(mode or "").upper() != "NONE":
            for tool in body.get("tools") or []:
                decls = tool.get("functionDeclarations") or tool.get("function_declarations") or []
                if decls:
                    conv.tool_name = decls[0].get("name")
                    break
        gen = _get(body, "generationConfig") or {}
        thinking = gen.get("thinkingConfig") or {}
        conv.reasoning = bool(thinking.get("includeThoughts")) and thinking.get("thinkingBudget") != 0
        if gen.get("responseMimeType") == "application/json":
            conv.schema = gen.get("responseSchema") or {}
        return conv

    def _usage(self, ans: Answer, out: int) -> dict:
        usage = {"promptTokenCount": ans.input_tokens, "candidatesTokenCount": out,
                 "totalTokenCount": ans.input_tokens + out,
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": ans.input_tokens}]}
        if ans.reasoning:
            usage["thoughtsTokenCount"] = words(ans.reasoning)
        return usage

    def respond(self, req: Request, ans: Answer) -> Reply:
        rid = rand(22)

        def response(parts: list, usage_out: int, finish: bool) -> dict:
            cand = {"content": {"parts": parts, "role": "model"}, "index": 0}
            if finish:
                cand["finishReason"] = "STOP"  # Gemini ends function calls with STOP too
            return {"candidates": [cand], "usageMetadata": self._usage(ans, usage_out),
                    "modelVersion": req.model, "responseId": rid}

        # Gemini signs a function call (on its part) when it thought first.
        call = [{"functionCall": {"name": ans.tool_name, "args": ans.tool_args}}] if ans.tool_name else None
        if call and ans.reasoning:
            call[0]["thoughtSignature"] = mock_signature("fc:" + ans.tool_name)
        thought = [{"text": ans.reasoning, "thought": True}] if ans.reasoning else []
        if not req.stream:
            return Reply.json(200, response(thought + (call or [{"text": ans.text}]), ans.output_tokens, True),
                              content_type="application/json; charset=UTF-8")

        def gen():
            # alt=sse: CRLF-delimited events; usageMetadata is cumulative on every chunk.
            if thought:
                yield sse(response(thought, 0, False), eol="\r\n")
            if call:
                yield sse(response(call, ans.output_tokens, True), eol="\r\n")
                return
            parts, done = pieces(ans.text), ""
            for i, p in enumerate(parts):
                done += p
                yield sse(response([{"text": p}], words(done), i == len(parts) - 1), eol="\r\n")

        return self.stream_reply(gen())

    def embed(self, req: Request) -> Reply:
        if req.path.endswith(":batchEmbedContents"):
            vecs = [{"values": embedding(_text(r["content"]))} for r in req.body["requests"]]
            return Reply.json(200, {"embeddings": vecs}, content_type="application/json; charset=UTF-8")
        return Reply.json(200, {"embedding": {"values": embedding(_text(req.body["content"]))}},
                          content_type="application/json; charset=UTF-8")
