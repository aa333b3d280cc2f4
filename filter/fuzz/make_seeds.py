#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into seeds/<target>/ (checked in; scripts/fuzz copies
them into the working corpus). Each seed starts with the target's selector bytes (see src/lib.rs).
Run from anywhere: python3 filter/fuzz/make_seeds.py"""
import json, os, re, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEEDS = os.path.join(HERE, "seeds")


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


J = lambda v: json.dumps(v).encode()
tools = [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}]
msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
client = [
    J({"model": "m", "messages": msgs, "tools": tools, "stream": True, "stream_options": {"include_usage": True}, "n": 2}),
    J({"model": "e", "input": ["a", "b"], "dimensions": 8}),
    J({"model": "m", "max_tokens": 10, "system": "s", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}], "tools": [{"name": "w", "input_schema": {"type": "object"}}]}),
    J({"model": "m", "messages": [{"role": "user", "content": "hi", "images": ["AA=="]}], "options": {"temperature": 0.1, "num_predict": 5}, "format": "json"}),
    J({"model": "m", "prompt": "hi", "system": "s", "stream": False}),
    J({"model": "e", "input": "x"}),
    J({"model": "m", "instructions": "be brief", "stream": True, "store": False, "include": ["reasoning.encrypted_content"],
       "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "detail": "auto", "image_url": "data:image/png;base64,AA=="}]},
                 {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "weir:e30="},
                 {"type": "function_call", "call_id": "c", "name": "w", "arguments": "{}"},
                 {"type": "function_call_output", "call_id": "c", "output": "ok"}],
       "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}, "strict": True}],
       "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "w"}]},
       "text": {"format": {"type": "json_schema", "name": "o", "schema": {"type": "object"}}}, "reasoning": {"effort": "low", "summary": "auto"}}),
]
for i, body in enumerate(client):
    put("client_decode", f"api{i}", bytes([i]) + body)
put("client_decode", "stored", bytes([6]) + b"/v1/responses/resp_1/input_items?limit=2&include[]=x&key=s")

openai_resp = J({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})
anth_resp = J({"id": "m", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "t", "name": "w", "input": {}}], "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2}})
gem_resp = J({"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}, {"functionCall": {"name": "w", "args": {}}}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2}})
bed_resp = J({"output": {"message": {"role": "assistant", "content": [{"text": "hi"}, {"toolUse": {"toolUseId": "t", "name": "w", "input": {}}}]}}, "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}})
oll_resp = J({"model": "m", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": "hi"}, "done": True, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 2})
emb = J({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}], "model": "e", "usage": {"prompt_tokens": 1, "total_tokens": 1}})
err = J({"error": {"message": "nope", "type": "invalid_request_error"}})
resp_resp = J({"id": "resp_1", "object": "response", "created_at": 1.5, "status": "incomplete", "model": "m",
               "incomplete_details": {"reason": "max_output_tokens"},
               "output": [{"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "gA"},
                          {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                           "content": [{"type": "output_text", "text": "hi", "annotations": []}, {"type": "refusal", "refusal": "no"}]},
                          {"id": "fc_1", "type": "function_call", "call_id": "c", "name": "w", "arguments": "{}"}],
               "usage": {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 2,
                         "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 3}})
# kinds: 0 openai 1 azure 2 anthropic 3 gemini 4 bedrock 5 ollama 6 mistral 7 compat 8 responses
for kind, body in [(0, openai_resp), (2, anth_resp), (3, gem_resp), (4, bed_resp), (5, oll_resp), (8, resp_resp)]:
    put("provider_decode", f"k{kind}", bytes([kind, 4, 0]) + body)
    put("provider_decode", f"k{kind}err", bytes([kind, 0, 5]) + err)
put("provider_decode", "emb", bytes([0, 16, 0]) + emb)

sse = lambda evs: "".join((f"event: {e}\n" if e else "") + f"data: {json.dumps(d) if not isinstance(d, str) else d}\n\n" for e, d in evs).encode()
oa_stream = sse([(None, {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hé"}}]}),
                 (None, {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t", "type": "function", "function": {"name": "w", "arguments": "{"}}]}}]}),
                 (None, {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
                 (None, "[DONE]")])
an_stream = sse([("message_start", {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "m", "content": [], "usage": {"input_tokens": 1, "output_tokens": 0}}}),
                 ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                 ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
                 ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "w", "input": {}}}),
                 ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
                 ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                 ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
                 ("message_stop", {"type": "message_stop"})])
ge_stream = sse([(None, json.loads(gem_resp))])
rs = lambda kind, **f: (kind, {"type": kind, "sequence_number": 0, **f})
re_stream = sse([rs("response.created", response={"id": "resp_1", "created_at": 1, "model": "m", "status": "in_progress", "output": []}),
                 rs("response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []}),
                 rs("response.reasoning_summary_text.delta", item_id="rs_1", output_index=0, summary_index=0, delta="t"),
                 rs("response.reasoning_summary_part.added", item_id="rs_1", output_index=0, summary_index=1, part={"type": "summary_text", "text": ""}),
                 rs("response.output_item.done", output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gA"}),
                 rs("response.output_text.delta", item_id="m", output_index=1, content_index=0, delta="hé", obfuscation="x"),
                 rs("response.refusal.delta", item_id="m", output_index=1, content_index=1, delta="no"),
                 rs("response.output_item.added", output_index=2, item={"id": "f", "type": "function_call", "call_id": "c", "name": "w", "arguments": "{"}),
                 rs("response.function_call_arguments.delta", item_id="f", output_index=2, delta="\"a\""),
                 rs("response.function_call_arguments.done", item_id="f", output_index=2, arguments="{\"a\":1}"),
                 rs("response.completed", response={"id": "resp_1", "status": "completed", "usage": {"input_tokens": 1, "output_tokens": 2}}),
                 rs("error", message="late", code="server_error")])
ol_stream = b"".join(J(x) + b"\n" for x in [{"model": "m", "created_at": "2024-01-01T00:00:00Z", "message": {"role": "assistant", "content": "h"}, "done": False}, json.loads(oll_resp)])
for kind, body in [(0, oa_stream), (2, an_stream), (3, ge_stream), (5, ol_stream), (8, re_stream)]:
    put("provider_stream", f"k{kind}", bytes([kind, 7, 0, 0, 37]) + body)
bed_records = b"".join(bytes([sel, len(p)]) + p for sel, p in [
    (0, J({"role": "assistant"})), (1, J({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "w"}}})),
    (2, J({"contentBlockIndex": 0, "delta": {"text": "hi"}})), (2, J({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}})),
    (3, J({"contentBlockIndex": 0})), (4, J({"stopReason": "end_turn"})), (5, J({"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}}))])
put("provider_stream", "k4wrapped", bytes([4, 7, 1, 0, 60]) + bed_records)
put("framers", "sse", bytes([0, 0, 64, 0, 20]) + an_stream)
put("framers", "ndjson", bytes([1, 0, 64, 0, 20]) + ol_stream)
put("framers", "eventstream", bytes([3, 0, 64, 0, 20]) + bed_records)

put("pii_scrub", "mix", b"\x00\x10jane@example.com call +1 415-555-0100, card 4111 1111 1111 1111, ssn 123-45-6789, "
    b"iban GB82WEST12345698765432, ip 10.0.0.1 and ::1, AKIAIOSFODNN7EXAMPLE, ghp_abcdefghijklmnopqrstuvwxyz0123456789, "
    b"sk-abcdefghijklmnopqrstuvwxyz, eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc, <EMAIL_1> \xc3\xa9")

demo = open(os.path.join(ROOT, "envoy", "demo.yaml"), encoding="utf-8").read()
import yaml  # noqa: E402  (only for the config seed)
def find_configs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "configuration" and isinstance(v, dict) and "value" in v:
                yield v["value"]
            else:
                yield from find_configs(v)
    elif isinstance(node, list):
        for v in node:
            yield from find_configs(v)
for i, cfg in enumerate(dict.fromkeys(find_configs(yaml.safe_load(demo)))):
    put("config_parse", f"demo{i}", cfg)
