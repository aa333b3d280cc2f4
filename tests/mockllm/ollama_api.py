"""Ollama native API (/api/chat, /api/generate, /api/embed): bodies validated strictly against the
ollama package's pydantic request models, NDJSON streaming with stats on the done line."""

from __future__ import annotations

import datetime as dt

import ollama._types as ot

from . import validate
from .common import Answer, Conversation, Provider, Reply, Request, compact, embedding, pieces, words

ROLES = ("system", "user", "assistant", "tool")
REQUESTS = {"chat": ot.ChatRequest, "generate": ot.GenerateRequest, "embed": ot.EmbedRequest}


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Ollama(Provider):
    name = "ollama"
    stream_type = "application/x-ndjson"

    def authenticate(self, req: Request) -> Reply | None:
        auth = req.headers.get("authorization")
        if auth is not None:
            if auth[:7].lower() != "bearer " or not auth[7:].strip():
                return self.error(401, "unauthorized: authorization must be 'Bearer <token>'")
            req.key = auth[7:].strip()
        return None

    def error(self, status: int, message: str) -> Reply:
        return Reply.json(status, {"error": message}, content_type="application/json; charset=utf-8")

    @staticmethod
    def _images_as_models(obj):
        """On the wire an image is a base64 string; the client's models hold it as Image."""
        if isinstance(obj, dict) and isinstance(obj.get("images"), list):
            return dict(obj, images=[{"value": i} if isinstance(i, str) else i for i in obj["images"]])
        return obj

    def validate(self, req: Request) -> list[str]:
        body = self._images_as_models(req.body)
        errs = validate.model(REQUESTS[req.kind], body)
        if errs or not isinstance(body, dict):
            return errs
        # ChatRequest types messages/options as Mapping | Model, which lets any mapping through:
        # check each against the model itself.
        for i, m in enumerate(body.get("messages") or []):
            errs += validate.model(ot.Message, self._images_as_models(m), ("messages", i))
            # The model types `role` as any string; Ollama's server takes only these four.
            if isinstance(m, dict) and m.get("role") not in ROLES:
                errs.append(f"messages.{i}.role: invalid role {m.get('role')!r} (one of {', '.join(ROLES)})")
        if isinstance(req.body.get("options"), dict):
            errs += validate.model(ot.Options, req.body["options"], ("options",))
        return errs

    def conversation(self, req: Request) -> Conversation:
        body, conv = req.body, Conversation()
        think = body.get("think")
        conv.reasoning = bool(think) and think is not False
        fmt = body.get("format")
        if fmt == "json" or isinstance(fmt, dict):
            conv.schema = fmt if isinstance(fmt, dict) else {}
        if req.kind == "generate":
            conv.texts = [t for t in (body.get("system"), body.get("prompt")) if t]
            conv.last_user = body.get("prompt") or ""
            return conv
        msgs = body.get("messages") or []
        for m in msgs:
            if m.get("content"):
                conv.texts.append(m["content"])
            if m.get("role") == "user":
                conv.last_user = m.get("content") or ""
        trailing = []
        for m in reversed(msgs):
            if m.get("role") != "tool":
                break
            trailing.insert(0, m.get("content") or "")
        if trailing:
            conv.tool_result = "".join(trailing)
        tools = body.get("tools") or []
        if tools:
            conv.tool_name = (tools[0].get("function") or {}).get("name")
        return conv

    def _stats(self, ans: Answer) -> dict:
        return {"total_duration": 1000000, "load_duration": 1000, "prompt_eval_count": ans.input_tokens,
                "prompt_eval_duration": 1000, "eval_count": ans.output_tokens, "eval_duration": 1000}

    def respond(self, req: Request, ans: Answer) -> Reply:
        gen_api = req.kind == "generate"

        def line(content: str, done: bool, tool: bool = False, thinking: str | None = None) -> dict:
            obj = {"model": req.model, "created_at": _stamp()}
            if gen_api:
                obj["response"] = content
                if thinking:
                    obj["thinking"] = thinking
            else:
                obj["message"] = {"role": "assistant", "content": content}
                if thinking:
                    obj["message"]["thinking"] = thinking
                if tool:
                    obj["message"]["tool_calls"] = [{"function": {"name": ans.tool_name,
                                                                  "arguments": ans.tool_args}}]
            obj["done"] = done
            if done:
                obj["done_reason"] = "stop"
                if gen_api:
                    obj["context"] = list(range(1, ans.input_tokens + ans.output_tokens + 1))
                obj.update(self._stats(ans))
            return obj

        if not req.stream:
            return Reply.json(200, line("" if ans.tool_name else ans.text, True, bool(ans.tool_name),
                                        ans.reasoning), content_type="application/json; charset=utf-8")

        def gen():
            for p in pieces(ans.reasoning) if ans.reasoning else []:
                yield (compact(line("", False, thinking=p)) + "\n").encode()
            if ans.tool_name:
                yield (compact(line("", False, True)) + "\n").encode()
            else:
                for p in pieces(ans.text):
                    yield (compact(line(p, False)) + "\n").encode()
            yield (compact(line("", True)) + "\n").encode()

        return self.stream_reply(gen())

    def embed(self, req: Request) -> Reply:
        inputs = req.body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        return Reply.json(200, {"model": req.model, "embeddings": [embedding(t) for t in texts],
                                "total_duration": 1000000, "load_duration": 1000,
                                "prompt_eval_count": sum(words(t) for t in texts)},
                          content_type="application/json; charset=utf-8")
