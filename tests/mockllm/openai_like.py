"""The OpenAI chat-completions family: OpenAI itself, Azure OpenAI, Mistral, vLLM and the
always-failing upstream; one wire shape, with each flavour's differences as small overrides."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Union

from openai.types import EmbeddingCreateParams
from openai.types.chat import completion_create_params as ccp
from pydantic import BaseModel, ConfigDict, Field

from . import validate
from .common import (Answer, Conversation, Provider, Reply, Request, embedding,
                     embedding_b64, halves, hexid, now, pieces, rand, sse, text_of, words)


def bearer(req: Request) -> str | None:
    value = req.headers.get("authorization", "")
    return value[7:].strip() if value[:7].lower() == "bearer " and value[7:].strip() else None


class OpenAI(Provider):
    name = "openai"
    id_prefix = "chatcmpl-"
    refuses = True            # says a refusal as `refusal` (OpenAI's structured-output refusals)
    reasoning_field = None    # the message field that carries reasoning text, where one does
    error_types = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                   404: "invalid_request_error", 409: "invalid_request_error", 422: "invalid_request_error",
                   429: "requests"}

    # --- auth, errors ---------------------------------------------------------------------
    def authenticate(self, req: Request) -> Reply | None:
        req.key = bearer(req)
        if req.key is None:
            return self.error(401, "You didn't provide an API key. You need to provide your API key in an "
                                   "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        return None

    def error(self, status: int, message: str) -> Reply:
        etype = self.error_types.get(status, "server_error")
        code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
        return Reply.json(status, {"error": {"message": message, "type": etype, "param": None, "code": code}},
                          {"x-request-id": "req_" + hexid()})

    # --- validation -------------------------------------------------------------------------
    def validate(self, req: Request) -> list[str]:
        if req.kind == "embed":
            return validate.typed_dict(EmbeddingCreateParams, req.body)
        td = ccp.CompletionCreateParamsStreaming if req.stream else ccp.CompletionCreateParamsNonStreaming
        return validate.typed_dict(td, req.body)

    # --- reading the conversation ---------------------------------------------------------------
    def conversation(self, req: Request) -> Conversation:
        body, conv = req.body, Conversation()
        msgs = body.get("messages") or []
        for m in msgs:
            text = text_of(m.get("content"))
            if text:
                conv.texts.append(text)
            if m.get("role") == "user":
                conv.last_user = text
        trailing = []
        for m in reversed(msgs):
            if m.get("role") != "tool":
                break
            trailing.insert(0, text_of(m.get("content")))
        if trailing:
            conv.tool_result = "".join(trailing)
        tools = body.get("tools") or []
        if tools and body.get("tool_choice") != "none":
            first = tools[0]
            conv.tool_name = (first.get("function") or first.get("custom") or {}).get("name")
        conv.reasoning = body.get("reasoning_effort") not in (None, "none")
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            conv.schema = (fmt.get("json_schema") or {}).get("schema") or {}
        elif fmt.get("type") == "json_object":
            conv.schema = {}
        return conv

    # --- answering ---------------------------------------------------------------------------
    def usage(self, ans: Answer) -> dict:
        reasoning = words(ans.reasoning) if ans.reasoning else 0
        return {"prompt_tokens": ans.input_tokens, "completion_tokens": ans.output_tokens + reasoning,
                "total_tokens": ans.input_tokens + ans.output_tokens + reasoning,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    def call_id(self) -> str:
        return "call_" + rand(24)

    def choice_extra(self) -> dict:
        return {"logprobs": None}

    def envelope(self, req: Request, cid: str) -> dict:
        return {"id": cid, "object": "chat.completion", "created": now(), "model": req.model,
                "service_tier": "default", "system_fingerprint": "fp_weirmock01"}

    def headers(self) -> dict:
        return {"x-request-id": "req_" + hexid(), "openai-processing-ms": "1"}

    def respond(self, req: Request, ans: Answer) -> Reply:
        cid = self.id_prefix + rand(29) if self.id_prefix == "chatcmpl-" else self.id_prefix + hexid()
        return self.stream(req, ans, cid) if req.stream else self.complete(req, ans, cid)

    def complete(self, req: Request, ans: Answer, cid: str) -> Reply:
        msg: dict[str, Any] = {"role": "assistant", "content": ans.text, "refusal": None, "annotations": []}
        if ans.refusal and self.refuses:
            msg.update(content=None, refusal=ans.refusal)
        if ans.reasoning and self.reasoning_field:
            msg[self.reasoning_field] = ans.reasoning
        if ans.tool_name:
            msg["tool_calls"] = [{"id": self.call_id(), "type": "function",
                                  "function": {"name": ans.tool_name, "arguments": ans.tool_json}}]
        body = self.envelope(req, cid)
        body["choices"] = [dict({"index": 0, "message": msg}, **self.choice_extra(),
                                finish_reason="tool_calls" if ans.tool_name else "stop")]
        body["usage"] = self.usage(ans)
        return Reply.json(200, body, self.headers())

    def usage_in_stream(self, req: Request) -> bool:
        return bool((req.body.get("stream_options") or {}).get("include_usage"))

    def stream(self, req: Request, ans: Answer, cid: str) -> Reply:
        base = dict(self.envelope(req, cid), object="chat.completion.chunk")
        with_usage = self.usage_in_stream(req)

        def chunk(delta: dict, finish: str | None = None) -> bytes:
            c = dict(base, choices=[dict({"index": 0, "delta": delta}, **self.choice_extra(), finish_reason=finish)])
            if with_usage:
                c["usage"] = None
            return sse(c)

        def gen():
            yield from self.stream_prelude(req)
            if ans.reasoning and self.reasoning_field:
                yield chunk({"role": "assistant", "content": ""})
                for p in pieces(ans.reasoning):
                    yield chunk({self.reasoning_field: p})
            if ans.refusal and self.refuses:
                # OpenAI's refusal stream: content stays null, the refusal comes in deltas.
                yield chunk({"role": "assistant", "content": None, "refusal": ""})
                for p in pieces(ans.refusal):
                    yield chunk({"refusal": p})
            elif ans.tool_name:
                yield chunk({"role": "assistant", "content": None, "refusal": None, "tool_calls": [
                    {"index": 0, "id": self.call_id(), "type": "function",
                     "function": {"name": ans.tool_name, "arguments": ""}}]})
                for part in halves(ans.tool_json):
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
            else:
                yield chunk({"role": "assistant", "content": "", "refusal": None})
                for p in pieces(ans.text):
                    yield chunk({"content": p})
            yield chunk({}, "tool_calls" if ans.tool_name else "stop")
            if with_usage:
                yield sse(dict(base, choices=[], usage=self.usage(ans)))
            yield b"data: [DONE]\n\n"

        return self.stream_reply(gen(), self.headers())

    def stream_prelude(self, req: Request):
        return iter(())

    # --- embeddings --------------------------------------------------------------------------
    def embed(self, req: Request) -> Reply:
        inputs = req.body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
        b64 = req.body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i,
                 "embedding": embedding_b64(embedding(t)) if b64 else embedding(t)} for i, t in enumerate(texts)]
        n = sum(words(t) for t in texts)
        return Reply.json(200, self.embed_envelope(req, data, n), self.headers())

    def embed_envelope(self, req: Request, data: list, n: int) -> dict:
        return {"object": "list", "data": data, "model": req.model,
                "usage": {"prompt_tokens": n, "total_tokens": n}}


class Azure(OpenAI):
    """Azure OpenAI: deployment in the path, api-key header, api-version query, content filters."""
    name = "azure-openai"
    _FILTERS = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "self_harm", "sexual", "violence")}

    def authenticate(self, req: Request) -> Reply | None:
        req.key = req.headers.get("api-key") or None
        if req.key is None:
            return self.error(401, "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                                   "to provide a valid key for an active subscription and use a correct regional "
                                   "API endpoint for your resource.")
        if not req.query.get("api-version"):
            return self.error(404, "Resource not found (the api-version query parameter is required)")
        return None

    def error(self, status: int, message: str) -> Reply:
        code = {400: "BadRequest", 401: "401", 404: "404", 429: "429"}.get(status, str(status))
        return Reply.json(status, {"error": {"code": code, "message": message, "param": None, "type": None}},
                          {"apim-request-id": hexid(), "x-request-id": hexid()})

    def validate(self, req: Request) -> list[str]:
        if isinstance(req.body, dict) and "model" not in req.body:
            req = Request(**{**req.__dict__, "body": dict(req.body, model=req.model)})
        return super().validate(req)

    def choice_extra(self) -> dict:
        return {"logprobs": None, "content_filter_results": self._FILTERS}

    def envelope(self, req: Request, cid: str) -> dict:
        env = super().envelope(req, cid)
        env["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": self._FILTERS}]
        return env

    def stream_prelude(self, req: Request):
        # Azure's first streamed chunk carries only the prompt filter results, with no choices.
        yield sse({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                   "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": self._FILTERS}]})

    def headers(self) -> dict:
        return {"apim-request-id": hexid(), "x-request-id": hexid(), "x-ms-region": "Mock Region"}


# --- Mistral ---------------------------------------------------------------------------------
# Bodies are checked against Mistral's published API reference itself: mistral_openapi.json is its
# OpenAPI document (github.com/mistralai/platform-docs-public, openapi.yaml) trimmed to the
# ChatCompletionRequest and EmbeddingRequest schemas and what they reference; see its $comment.
MISTRAL_SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mistral_openapi.json")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Mistral(OpenAI):
    """Mistral: OpenAI-like wire, its own request fields, usage always in the last stream chunk."""
    name = "mistral"
    id_prefix = ""
    refuses = False

    def validate(self, req: Request) -> list[str]:
        root = "EmbeddingRequest" if req.kind == "embed" else "ChatCompletionRequest"
        return validate.json_schema(MISTRAL_SCHEMA, root, req.body)

    def error(self, status: int, message: str) -> Reply:
        if status == 401:
            return Reply.json(401, {"message": "Unauthorized", "request_id": hexid()})
        return Reply.json(status, {"object": "error", "message": message, "type": "invalid_request_error"
                                   if status < 500 else "internal_server_error", "param": None, "code": None})

    def usage(self, ans: Answer) -> dict:
        return {"prompt_tokens": ans.input_tokens, "completion_tokens": ans.output_tokens,
                "total_tokens": ans.input_tokens + ans.output_tokens}

    def call_id(self) -> str:
        return rand(9)

    def choice_extra(self) -> dict:
        return {}

    def envelope(self, req: Request, cid: str) -> dict:
        return {"id": cid, "object": "chat.completion", "model": req.model, "created": now()}

    def headers(self) -> dict:
        return {"mistral-correlation-id": hexid()}

    def stream(self, req: Request, ans: Answer, cid: str) -> Reply:
        base = dict(self.envelope(req, cid), object="chat.completion.chunk")

        def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
            c = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])
            if usage:
                c["usage"] = usage
            return sse(c)

        def gen():
            yield chunk({"role": "assistant", "content": ""})
            if ans.tool_name:  # Mistral sends a whole tool call in one chunk
                yield chunk({"tool_calls": [{"id": self.call_id(), "function": {
                    "name": ans.tool_name, "arguments": ans.tool_json}, "index": 0}]})
            else:
                for p in pieces(ans.text):
                    yield chunk({"content": p})
            yield chunk({"content": ""}, "tool_calls" if ans.tool_name else "stop", self.usage(ans))
            yield b"data: [DONE]\n\n"

        return self.stream_reply(gen(), self.headers())

    def embed_envelope(self, req: Request, data: list, n: int) -> dict:
        return {"id": hexid(), "object": "list", "data": data, "model": req.model,
                "usage": {"prompt_tokens": n, "total_tokens": n, "completion_tokens": 0}}


# --- vLLM ------------------------------------------------------------------------------------
# vLLM's OpenAI-compatible server accepts OpenAI's fields plus its own sampling/extra params
# (vllm/entrypoints/openai/protocol.py ChatCompletionRequest / EmbeddingChatRequest).

class VllmChatExtras(_M):
    best_of: Optional[int] = None
    use_beam_search: Optional[bool] = None
    top_k: Optional[int] = None
    min_p: Optional[float] = None
    repetition_penalty: Optional[float] = None
    length_penalty: Optional[float] = None
    stop_token_ids: Optional[List[int]] = None
    include_stop_str_in_output: Optional[bool] = None
    ignore_eos: Optional[bool] = None
    min_tokens: Optional[int] = None
    skip_special_tokens: Optional[bool] = None
    spaces_between_special_tokens: Optional[bool] = None
    truncate_prompt_tokens: Optional[int] = Field(None, ge=1)
    prompt_logprobs: Optional[int] = None
    allowed_token_ids: Optional[List[int]] = None
    bad_words: Optional[List[str]] = None
    echo: Optional[bool] = None
    add_generation_prompt: Optional[bool] = None
    continue_final_message: Optional[bool] = None
    add_special_tokens: Optional[bool] = None
    documents: Optional[List[Dict[str, str]]] = None
    chat_template: Optional[str] = None
    chat_template_kwargs: Optional[Dict[str, Any]] = None
    mm_processor_kwargs: Optional[Dict[str, Any]] = None
    guided_json: Optional[Union[str, Dict[str, Any]]] = None
    guided_regex: Optional[str] = None
    guided_choice: Optional[List[str]] = None
    guided_grammar: Optional[str] = None
    structural_tag: Optional[str] = None
    guided_decoding_backend: Optional[str] = None
    guided_whitespace_pattern: Optional[str] = None
    structured_outputs: Optional[Dict[str, Any]] = None
    priority: Optional[int] = None
    request_id: Optional[str] = None
    logits_processors: Optional[List[Union[str, Dict[str, Any]]]] = None
    return_tokens_as_token_ids: Optional[bool] = None
    cache_salt: Optional[str] = None
    kv_transfer_params: Optional[Dict[str, Any]] = None
    vllm_xargs: Optional[Dict[str, Union[str, int, float]]] = None


class VllmEmbedExtras(_M):
    truncate_prompt_tokens: Optional[int] = Field(None, ge=-1)
    add_special_tokens: Optional[bool] = None
    priority: Optional[int] = None
    request_id: Optional[str] = None
    additional_data: Optional[Any] = None
    normalize: Optional[bool] = None


class Vllm(OpenAI):
    name = "openai-compatible"
    refuses = False
    reasoning_field = "reasoning_content"  # vLLM's reasoning parsers (and DeepSeek's API)

    def validate(self, req: Request) -> list[str]:
        extras_model = VllmEmbedExtras if req.kind == "embed" else VllmChatExtras
        if not isinstance(req.body, dict):
            return ["<body>: must be a JSON object"]
        extra_keys = set(extras_model.model_fields)
        extras = {k: v for k, v in req.body.items() if k in extra_keys}
        rest = {k: v for k, v in req.body.items() if k not in extra_keys}
        return validate.model(extras_model, extras) + super().validate(Request(**{**req.__dict__, "body": rest}))

    def usage(self, ans: Answer) -> dict:
        return {"prompt_tokens": ans.input_tokens, "total_tokens": ans.input_tokens + ans.output_tokens,
                "completion_tokens": ans.output_tokens, "prompt_tokens_details": None}

    def call_id(self) -> str:
        return "chatcmpl-tool-" + hexid()

    def choice_extra(self) -> dict:
        return {"logprobs": None, "stop_reason": None}

    def envelope(self, req: Request, cid: str) -> dict:
        return {"id": cid, "object": "chat.completion", "created": now(), "model": req.model,
                "prompt_logprobs": None, "kv_transfer_params": None}

    def error(self, status: int, message: str) -> Reply:
        return Reply.json(status, {"error": {"message": message, "type": "BadRequestError" if status < 500
                                             else "InternalServerError", "param": None, "code": status}})

    def headers(self) -> dict:
        return {"x-request-id": hexid()}

    def embed_envelope(self, req: Request, data: list, n: int) -> dict:
        return {"id": "embd-" + hexid(), "object": "list", "created": now(), "model": req.model, "data": data,
                "usage": {"prompt_tokens": n, "total_tokens": n, "completion_tokens": 0,
                          "prompt_tokens_details": None}}


class Failing(OpenAI):
    """An upstream that is always down: validates and records, then answers 503."""
    name = "failing"

    def respond(self, req: Request, ans: Answer) -> Reply:
        return self.error(503, "The server is overloaded or not ready yet.")

    def embed(self, req: Request) -> Reply:
        return self.respond(req, None)  # type: ignore[arg-type]
