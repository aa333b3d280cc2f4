//! OpenAI's Responses API through both roles without Envoy: a Responses client in front of other
//! providers (PII scrubbed in `instructions` and tool output, restored in answers and streams), a
//! Chat Completions client in front of an `openai-responses` provider, the stateless rule,
//! stored-response calls passed through unchanged, and built-in tools (served by the Responses
//! target of a mixed route, refused by name when Envoy fails over to another).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use weir_core::roles::headers::{CLUSTER_HEADER, STORED_HEADER};
use weir_core::stream::sse::SseFramer;

mod common;
use common::{json, post, sha, Harness, Headers};

fn config() -> Value {
    json!({
        "providers": {
            "oa": {"type": "openai", "keys": [{"id": "k1", "key": "sk-provider-one"}]},
            "an": {"type": "anthropic", "keys": [{"id": "a1", "key": "sk-ant-provider"}]},
            "rs": {"type": "openai-responses", "keys": [{"id": "r1", "key": "sk-responses"}]}
        },
        "models": [
            {"name": "claude", "targets": [{"provider": "an", "model": "claude-x", "cluster": "c_an"}]},
            {"name": "gpt", "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]},
            {"name": "gpt-5", "targets": [{"provider": "rs", "model": "gpt-5", "cluster": "c_rs"}]},
            {"name": "mixed", "targets": [
                {"provider": "rs", "model": "gpt-5", "cluster": "c_mix"},
                {"provider": "an", "model": "claude-x", "cluster": "c_mix"}]}
        ],
        "auth": {"keys": [
            {"id": "all", "sha256": sha("sk-weir-all")},
            {"id": "claude-only", "sha256": sha("sk-weir-claude"), "models": ["claude"]}
        ]},
        "pii": {"enabled": true, "default_action": "placeholder", "restore": true}
    })
}

fn responses(key: &str) -> Headers {
    post(key, "/v1/responses")
}

fn get(key: &str, path: &str) -> Headers {
    Headers::new(&[(":method", "GET"), (":path", path)])
        .with("authorization", &format!("Bearer {key}"))
}

/// A Responses stream's events as (type, data), in order.
fn events(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut f = SseFramer::new(1 << 20);
    let mut out = Vec::new();
    f.push(bytes, &mut out).unwrap();
    f.finish(&mut out).unwrap();
    out.into_iter()
        .map(|e| (e.event.unwrap(), serde_json::from_str(&e.data).unwrap()))
        .collect()
}

#[test]
fn instructions_and_tool_output_are_scrubbed_and_the_answer_restored() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            responses("sk-weir-all"),
            json!({
                "model": "claude",
                "instructions": "The user is jane@example.com.",
                "input": [
                    {"role": "user", "content": "Look me up."},
                    {"type": "function_call", "call_id": "toolu_1", "name": "lookup", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "toolu_1", "output": "phone +1 415 555 2671"}
                ],
                "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": false}],
                "store": false
            }),
        )
        .unwrap();
    assert_eq!(sent.header(CLUSTER_HEADER), Some("c_an"));
    let out = h.attempt("an", Headers::default(), &sent.body);
    assert_eq!(out.header(":path"), Some("/v1/messages"));
    let upstream = out.json().to_string();
    assert!(
        !upstream.contains("jane@example.com") && !upstream.contains("555 2671"),
        "{upstream}"
    );
    assert!(upstream.contains("<EMAIL_1>") && upstream.contains("<PHONE_1>"));
    let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Found <EMAIL_1> at <PHONE_1>."}],
        "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 9, "output_tokens": 4}});
    let got = h.answer(200, "application/json", &[answer.to_string().as_bytes()]);
    assert_eq!(got.status, 200);
    let v = got.json();
    assert_eq!(
        (&v["object"], &v["status"]),
        (&json!("response"), &json!("completed"))
    );
    assert_eq!(v["id"], "resp_msg_1");
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "Found jane@example.com at +1 415 555 2671."
    );
    assert_eq!(v["usage"]["total_tokens"], 13);
    let summary = h.done().unwrap();
    assert_eq!(summary.model.as_deref(), Some("claude"));
    assert_eq!((summary.input_tokens, summary.output_tokens), (9, 4));
    let mut found: Vec<_> = summary.pii.iter().map(|(d, _)| d.as_str()).collect();
    found.sort_unstable();
    assert_eq!(found, ["email", "phone"]);
}

#[test]
fn a_stream_is_restored_across_a_placeholder_split_between_chunks() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            responses("sk-weir-all"),
            json!({"model": "gpt", "input": "I am jane@example.com", "stream": true}),
        )
        .unwrap();
    let out = h.attempt("oa", Headers::default(), &sent.body);
    assert_eq!(out.json()["messages"][0]["content"], "I am <EMAIL_1>");
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 3, "model": "gpt-4o-mini",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let usage = format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 3, "model": "gpt-4o-mini",
               "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}})
    );
    let parts = [
        chunk(
            json!({"role": "assistant", "content": "echo: I am <EMA"}),
            Value::Null,
        ),
        chunk(json!({"content": "IL_1>"}), Value::Null),
        chunk(json!({}), json!("stop")),
        usage,
    ];
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    let got = h.answer(200, "text/event-stream", &parts);
    assert_eq!(got.header("content-type"), Some("text/event-stream"));
    let evs = events(&got.body);
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "echo: I am jane@example.com");
    let (last, done) = evs.last().unwrap();
    assert_eq!(last, "response.completed");
    assert_eq!(
        done["response"]["output"][0]["content"][0]["text"],
        "echo: I am jane@example.com"
    );
    assert_eq!(done["response"]["usage"]["output_tokens"], 3);
    assert_eq!(h.done().unwrap().output_tokens, 3);
}

#[test]
fn a_chat_client_reaches_a_responses_provider_statelessly() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            post("sk-weir-all", "/v1/chat/completions"),
            json!({"model": "gpt-5", "messages": [{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    let out = h.attempt("rs", Headers::default(), &sent.body);
    assert_eq!(out.header(":path"), Some("/v1/responses"));
    assert_eq!(out.header("authorization"), Some("Bearer sk-responses"));
    let body = out.json();
    assert_eq!(
        (&body["instructions"], &body["store"], &body["model"]),
        (&json!("Be brief."), &json!(false), &json!("gpt-5"))
    );
    let answer = json!({"id": "resp_1", "object": "response", "created_at": 7, "status": "completed",
        "model": "gpt-5-2025-08-07", "output": [{"id": "msg_1", "type": "message", "status": "completed",
        "role": "assistant", "content": [{"type": "output_text", "text": "hello", "annotations": []}]}],
        "usage": {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 4}});
    let got = h.answer(200, "application/json", &[answer.to_string().as_bytes()]);
    let v = got.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "hello");
    assert_eq!(v["usage"]["completion_tokens"], 1);
}

#[test]
fn state_is_refused_in_the_responses_shape_unless_a_responses_provider_keeps_it() {
    let mut h = Harness::new(config());
    let body = json!({"model": "claude", "input": "next", "previous_response_id": "resp_0"});
    let sent = h.send(responses("sk-weir-all"), body.clone()).unwrap();
    let got = h.refused_attempt("an", &sent.body);
    assert_eq!(got.status, 400);
    let e = got.json()["error"].clone();
    assert_eq!(e["param"], "previous_response_id");
    assert_eq!(e["type"], "invalid_request_error");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("send the whole conversation in `input`"));

    // A Responses provider takes it as it came.
    h.next_request();
    let mut body = body;
    body["model"] = json!("gpt-5");
    let sent = h.send(responses("sk-weir-all"), body).unwrap();
    let out = h.attempt("rs", Headers::default(), &sent.body);
    assert_eq!(out.json()["previous_response_id"], "resp_0");
}

#[test]
fn stored_response_calls_pass_through_to_the_responses_provider_unchanged() {
    let mut h = Harness::new(config());
    let sent = h
        .send_unread(get(
            "sk-weir-all",
            "/v1/responses/resp_42?include[]=reasoning.encrypted_content&api_key=leak",
        ))
        .unwrap();
    assert_eq!(sent.header(CLUSTER_HEADER), Some("c_rs"));
    assert_eq!(sent.header(STORED_HEADER), Some("rs"));
    assert_eq!(sent.header("x-envoy-max-retries"), Some("0"));
    // The attempt sees the client's method and path, and the gateway's headers.
    let attempt = get(
        "sk-weir-all",
        "/v1/responses/resp_42?include[]=reasoning.encrypted_content&api_key=leak",
    )
    .with(STORED_HEADER, "rs")
    .with("x-envoy-max-retries", "0");
    let out = h.attempt_unread("rs", attempt.clone()).unwrap();
    assert_eq!(
        out.header(":path"),
        Some("/v1/responses/resp_42?include[]=reasoning.encrypted_content")
    );
    assert_eq!(out.header("authorization"), Some("Bearer sk-responses"));
    let stored = br#"{"id":"resp_42","object":"response","status":"completed","output":[],"weird_new_field":1}"#;
    let got = h.answer(200, "application/json", &[stored]);
    assert_eq!((got.status, got.body.as_slice()), (200, stored.as_slice()));
    assert!(!got.held, "a stored answer streams through");
    let summary = h.done().unwrap();
    assert_eq!(
        (summary.model.as_deref(), summary.provider.as_deref()),
        (Some("gpt-5"), Some("rs"))
    );

    // The provider refusing the gateway's key is the gateway's problem, in the client's shape.
    h.next_request();
    h.send_unread(get("sk-weir-all", "/v1/responses/resp_42"))
        .unwrap();
    h.attempt_unread("rs", attempt.clone()).unwrap();
    let got = h.answer(
        401,
        "application/json",
        &[br#"{"error":{"message":"Incorrect API key provided: sk-respo*****"}}"#],
    );
    assert_eq!(got.status, 502);
    let text = String::from_utf8(got.body.clone()).unwrap();
    assert!(!text.contains("sk-respo") && text.contains("rejected the gateway's credentials"));

    // Envoy's own reply (no healthy upstream) is re-shaped too.
    h.next_request();
    h.send_unread(get("sk-weir-all", "/v1/responses/resp_42"))
        .unwrap();
    let got = h.local_reply(
        Headers::new(&[(":status", "503"), ("content-type", "text/plain")]),
        b"no healthy upstream",
    );
    assert_eq!(got.status, 503);
    assert!(got.json()["error"]["message"].is_string());

    // An endpoint of another provider in the cluster is not sent the call.
    h.next_request();
    h.send_unread(get("sk-weir-all", "/v1/responses/resp_42"))
        .unwrap();
    let refused = h.attempt_unread("oa", attempt).unwrap_err();
    assert_eq!(refused.status, 500);
}

#[test]
fn stored_response_calls_need_a_provider_that_keeps_state() {
    let mut h = Harness::new(config());
    let refused = h
        .send_unread(
            Headers::new(&[(":method", "DELETE"), (":path", "/v1/responses/resp_1")])
                .with("authorization", "Bearer sk-weir-claude"),
        )
        .unwrap_err();
    assert_eq!(refused.status, 400);
    let v = json(&refused.body);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("weir is stateless"));
    h.next_request();
    let refused = h
        .send_unread(get("sk-weir-all", "/v1/responses/resp_1").with("content-length", "2"))
        .unwrap_err();
    assert_eq!(refused.status, 400, "a GET with a body");
    h.next_request();
    let refused = h
        .send_unread(get("nope", "/v1/responses/resp_1"))
        .unwrap_err();
    assert_eq!(refused.status, 401);
}

/// A web search: its call item, then the answer citing it, with the placeholder the provider saw.
fn searched_stream() -> Vec<String> {
    let ev = |v: Value| format!("event: {}\ndata: {}\n\n", v["type"].as_str().unwrap(), v);
    let cite = json!({"type": "url_citation", "start_index": 0, "end_index": 4,
                      "url": "https://w.example/", "title": "W"});
    vec![
        ev(json!({"type": "response.created", "sequence_number": 0,
                  "response": {"id": "resp_9", "created_at": 5, "model": "gpt-5", "status": "in_progress", "output": []}})),
        ev(
            json!({"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
                  "item": {"id": "ws_9", "type": "web_search_call", "status": "in_progress"}}),
        ),
        ev(
            json!({"type": "response.web_search_call.searching", "sequence_number": 2, "output_index": 0, "item_id": "ws_9"}),
        ),
        ev(
            json!({"type": "response.output_item.done", "sequence_number": 3, "output_index": 0,
                  "item": {"id": "ws_9", "type": "web_search_call", "status": "completed",
                           "action": {"type": "search", "query": "<EMAIL_1>"}}}),
        ),
        ev(
            json!({"type": "response.output_item.added", "sequence_number": 4, "output_index": 1,
                  "item": {"id": "msg_9", "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        ev(
            json!({"type": "response.output_text.delta", "sequence_number": 5, "output_index": 1, "item_id": "msg_9",
                  "content_index": 0, "delta": "News <EMA"}),
        ),
        ev(
            json!({"type": "response.output_text.delta", "sequence_number": 6, "output_index": 1, "item_id": "msg_9",
                  "content_index": 0, "delta": "IL_1> <"}),
        ),
        ev(
            json!({"type": "response.output_text.annotation.added", "sequence_number": 7, "output_index": 1,
                  "item_id": "msg_9", "content_index": 0, "annotation_index": 0, "annotation": cite}),
        ),
        ev(json!({"type": "response.completed", "sequence_number": 8,
                  "response": {"id": "resp_9", "created_at": 5, "model": "gpt-5", "status": "completed", "output": [],
                               "usage": {"input_tokens": 5, "output_tokens": 4, "total_tokens": 9}}})),
    ]
}

#[test]
fn built_in_tools_are_served_by_the_responses_target_and_refused_on_failover_to_another() {
    let mut h = Harness::new(config());
    let search = json!({"type": "web_search_call", "id": "ws_1", "status": "completed",
                        "action": {"type": "search", "query": "q"}});
    let body = json!({"model": "mixed", "input": [search, {"role": "user", "content": "news on jane@example.com"}],
                      "tools": [{"type": "web_search"}], "stream": true});
    let sent = h.send(responses("sk-weir-all"), body.clone()).unwrap();
    assert_eq!(sent.header(CLUSTER_HEADER), Some("c_mix"));
    // First attempt: the Responses endpoint takes the tool and the item as they came.
    let out = h.attempt("rs", Headers::default(), &sent.body);
    let upstream = out.json();
    assert_eq!(upstream["tools"], body["tools"]);
    assert_eq!(upstream["input"][0], search);
    assert_eq!(upstream["input"][1]["content"], "news on <EMAIL_1>");
    h.retried(503, "application/json", b"{}");
    // Envoy retries on the Anthropic endpoint: a 400 naming the tool, in the Responses shape.
    let got = h.refused_attempt("an", &sent.body);
    assert_eq!(got.status, 400);
    let e = got.json()["error"].clone();
    assert_eq!(e["param"], "tools[0].type");
    assert!(
        e["message"].as_str().unwrap().contains("`web_search`"),
        "{e}"
    );

    // A stream served by the Responses target: the search's events and the citation come
    // through in order, renumbered, with the text restored around them.
    h.next_request();
    let sent = h.send(responses("sk-weir-all"), body).unwrap();
    h.attempt("rs", Headers::default(), &sent.body);
    let parts = searched_stream();
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    let got = h.answer(200, "text/event-stream", &parts);
    let evs = events(&got.body);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.web_search_call.searching",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            // The restorer held back `<` (a placeholder could start there): it is released
            // before the citation, so the text stays in order.
            "response.output_text.delta",
            "response.output_text.annotation.added",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (n, (_, v)) in evs.iter().enumerate() {
        assert_eq!(v["sequence_number"], n);
    }
    let (_, done) = evs.last().unwrap();
    let output = &done["response"]["output"];
    assert_eq!(output[0]["id"], "ws_9");
    assert_eq!(
        output[0]["action"]["query"], "<EMAIL_1>",
        "built-in items pass unchanged"
    );
    assert_eq!(output[1]["content"][0]["text"], "News jane@example.com <");
    assert_eq!(
        output[1]["content"][0]["annotations"][0]["url"],
        "https://w.example/"
    );
}
