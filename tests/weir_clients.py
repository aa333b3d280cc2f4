"""The four client protocols weir serves, driven only by their official SDKs: one call to chat
(plain or streamed) and a tool round trip, the same way for each, so tests can loop over them.
`responses` is OpenAI's Responses API, through the same `openai` SDK."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import anthropic
import ollama
import openai

DEMO_KEY = "sk-weir-demo"
LIMITED_KEY = "sk-weir-limited"
# Keys with limits, one test each (see envoy/demo.yaml): a limit's window outlives the test.
BURST_KEY = "sk-weir-burst"                # mock-ollama, 60 requests/min
TOKENS_KEY = "sk-weir-tokens"              # mock-openai, 200 tokens/min
TOKENS_FLOOD_KEY = "sk-weir-tokens-flood"  # mock-openai, 500 tokens/min
HEADERS_KEY = "sk-weir-headers"            # mock-openai, 20 requests/min
ONCE_KEY = "sk-weir-once"                  # mock-openai, 1 request/min
ABANDON_KEY = "sk-weir-abandon"            # mock-openai, 120 tokens/min
CLIENT_KEYS = [DEMO_KEY, LIMITED_KEY, BURST_KEY, TOKENS_KEY, TOKENS_FLOOD_KEY, HEADERS_KEY, ONCE_KEY,
               ABANDON_KEY]
PROTOCOLS = ("openai", "anthropic", "ollama", "responses")

# mock-openai's keys in envoy/demo.yaml, in order; weir rotates over them.
OPENAI_KEYS = ("sk-mock-openai-1", "sk-mock-openai-2", "sk-mock-openai-3")
# Demo model -> (what the mock calls that provider, the model weir must send, the provider key
# in envoy/demo.yaml, or a tuple of keys any of which may be used). The mock records sha12(key);
# Ollama has no key; Bedrock's is the access key id.
DEMO_MODELS = {
    "mock-openai": ("openai", "gpt-4o-mini", OPENAI_KEYS),
    "mock-azure": ("azure-openai", "gpt-4o-deployment", "mock-azure-key"),
    "mock-anthropic": ("anthropic", "claude-sonnet-4-5", "sk-ant-mock"),
    "mock-gemini": ("gemini", "gemini-2.5-flash", "mock-gemini-key"),
    "mock-bedrock": ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "AKIAWEIRMOCKDEMO0000"),
    "mock-ollama": ("ollama", "llama3.2", None),
    "mock-mistral": ("mistral", "mistral-small-latest", "mock-mistral-key"),
    "mock-vllm": ("openai-compatible", "meta-llama/Llama-3.1-8B-Instruct", "mock-vllm-key"),
    "mock-responses": ("openai-responses", "gpt-5", "sk-mock-responses"),
}
# Demo models that show routing strategies and target health (tests/test_routing.py).
ROUTING_MODELS = ["mock-rr", "mock-weighted", "mock-wrr", "mock-least-busy", "mock-fastest", "mock-cheapest", "mock-affinity",
                  "mock-breaker", "mock-breaker-solo", "mock-vllm-guarded"]
ALL_DEMO_MODELS = sorted([*DEMO_MODELS, "mock-failover", *ROUTING_MODELS])
PROVIDER_KEYS = [*OPENAI_KEYS, "mock-azure-key", "sk-ant-mock", "mock-gemini-key",
                 "weir-mock-secret-access-key", "mock-mistral-key", "mock-vllm-key", "sk-mock-failing",
                 "sk-mock-breaker", "sk-mock-responses"]

TIMEOUT = 30
SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
OPENAI_TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the web",
                                                  "parameters": SCHEMA}}]
ANTHROPIC_TOOLS = [{"name": "search", "description": "Search the web", "input_schema": SCHEMA}]
RESPONSES_TOOLS = [{"type": "function", "name": "search", "description": "Search the web", "parameters": SCHEMA,
                    "strict": False}]


def sha12(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def openai_client(url: str, key: str | None = DEMO_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key if key is not None else "", max_retries=0,
                         timeout=TIMEOUT)


def anthropic_client(url: str, key: str | None = DEMO_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=TIMEOUT)


def ollama_client(url: str, key: str | None = DEMO_KEY) -> ollama.Client:
    return ollama.Client(host=url, headers={"Authorization": f"Bearer {key}"} if key else None, timeout=TIMEOUT)


def chat(url: str, protocol: str, model: str, text: str, stream: bool, key: str | None = DEMO_KEY) -> str:
    """Sends one user message; returns the answer's text (a stream's pieces joined)."""
    msgs = [{"role": "user", "content": text}]
    if protocol == "openai":
        c = openai_client(url, key)
        if not stream:
            return c.chat.completions.create(model=model, messages=msgs).choices[0].message.content
        chunks = c.chat.completions.create(model=model, messages=msgs, stream=True)
        return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    if protocol == "anthropic":
        c = anthropic_client(url, key)
        if not stream:
            m = c.messages.create(model=model, max_tokens=256, messages=msgs)
            return "".join(b.text for b in m.content if b.type == "text")
        with c.messages.stream(model=model, max_tokens=256, messages=msgs) as s:
            return "".join(s.text_stream)
    if protocol == "ollama":
        c = ollama_client(url, key)
        if not stream:
            return c.chat(model=model, messages=msgs, stream=False).message.content
        return "".join(p.message.content or "" for p in c.chat(model=model, messages=msgs, stream=True))
    if protocol == "responses":
        c = openai_client(url, key)
        if not stream:
            return c.responses.create(model=model, input=text).output_text
        # The SDK's stream helper checks every event's numbering and items as it accumulates.
        with c.responses.stream(model=model, input=text) as s:
            deltas = "".join(e.delta for e in s if e.type == "response.output_text.delta")
            final = s.get_final_response()
        assert final.output_text == deltas, (final.output_text, deltas)
        return deltas
    raise ValueError(protocol)


def tool_call(url: str, protocol: str, model: str, text: str, stream: bool) -> tuple[str, dict, list]:
    """Offers the `search` tool with `text`; returns (tool name, arguments, the conversation so
    far, ready for tool_result)."""
    user = {"role": "user", "content": text}
    if protocol == "openai":
        c = openai_client(url)
        if not stream:
            call = c.chat.completions.create(model=model, messages=[user], tools=OPENAI_TOOLS).choices[0] \
                .message.tool_calls[0]
            cid, name, args = call.id, call.function.name, call.function.arguments
        else:
            cid, name, args = None, None, ""
            for ch in c.chat.completions.create(model=model, messages=[user], tools=OPENAI_TOOLS, stream=True):
                for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
                    cid = tc.id or cid
                    name = (tc.function.name if tc.function else None) or name
                    args += (tc.function.arguments if tc.function else None) or ""
        turn = {"role": "assistant", "content": None,
                "tool_calls": [{"id": cid, "type": "function", "function": {"name": name, "arguments": args}}]}
        return name, json.loads(args), [user, turn]
    if protocol == "anthropic":
        c = anthropic_client(url)
        if not stream:
            m = c.messages.create(model=model, max_tokens=256, messages=[user], tools=ANTHROPIC_TOOLS)
        else:
            with c.messages.stream(model=model, max_tokens=256, messages=[user], tools=ANTHROPIC_TOOLS) as s:
                m = s.get_final_message()
        use = next(b for b in m.content if b.type == "tool_use")
        turn = {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name,
                                                  "input": use.input}]}
        return use.name, dict(use.input), [user, turn]
    if protocol == "ollama":
        c = ollama_client(url)
        if not stream:
            calls = c.chat(model=model, messages=[user], tools=OPENAI_TOOLS, stream=False).message.tool_calls
        else:
            calls = [tc for p in c.chat(model=model, messages=[user], tools=OPENAI_TOOLS, stream=True)
                     for tc in (p.message.tool_calls or [])]
        fn = calls[0].function
        turn = {"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": fn.name, "arguments": dict(fn.arguments)}}]}
        return fn.name, dict(fn.arguments), [user, turn]
    if protocol == "responses":
        c = openai_client(url)
        if not stream:
            r = c.responses.create(model=model, input=[user], tools=RESPONSES_TOOLS)
        else:
            with c.responses.stream(model=model, input=[user], tools=RESPONSES_TOOLS) as s:
                r = s.get_final_response()
        call = next(o for o in r.output if o.type == "function_call")
        # A stateless client sends every output item back, as the Agents SDK does.
        items = [o.model_dump(mode="json", exclude_none=True, by_alias=True) for o in r.output]
        return call.name, json.loads(call.arguments), [user, *items]
    raise ValueError(protocol)


def tool_result(url: str, protocol: str, model: str, convo: list, result: str) -> str:
    """Sends the tool's result after tool_call's conversation; returns the answer's text."""
    if protocol == "openai":
        cid = convo[-1]["tool_calls"][0]["id"]
        msgs = convo + [{"role": "tool", "tool_call_id": cid, "content": result}]
        return openai_client(url).chat.completions.create(model=model, messages=msgs, tools=OPENAI_TOOLS) \
            .choices[0].message.content
    if protocol == "anthropic":
        uid = convo[-1]["content"][0]["id"]
        msgs = convo + [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": uid, "content": result}]}]
        m = anthropic_client(url).messages.create(model=model, max_tokens=256, messages=msgs, tools=ANTHROPIC_TOOLS)
        return "".join(b.text for b in m.content if b.type == "text")
    if protocol == "ollama":
        name = convo[-1]["tool_calls"][0]["function"]["name"]
        msgs = convo + [{"role": "tool", "content": result, "tool_name": name}]
        return ollama_client(url).chat(model=model, messages=msgs, tools=OPENAI_TOOLS, stream=False).message.content
    if protocol == "responses":
        cid = next(i["call_id"] for i in convo if i.get("type") == "function_call")
        items = convo + [{"type": "function_call_output", "call_id": cid, "output": result}]
        return openai_client(url).responses.create(model=model, input=items, tools=RESPONSES_TOOLS).output_text
    raise ValueError(protocol)


def dumps(obj: Any) -> str:
    """JSON text as a provider received it would be searched: no ASCII escaping."""
    return json.dumps(obj, ensure_ascii=False)
