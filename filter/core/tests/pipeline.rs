//! The whole request path without Envoy: a client body through the gateway role, the internal
//! envelope through the provider role, a simulated provider's answer back through both.
//! Time and randomness are inputs, so every run is the same.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use std::rc::Rc;
use weir_core::config::Config;
use weir_core::roles::gateway::GatewayRole;
use weir_core::roles::headers::{CLUSTER_HEADER, IR_HEADER};
use weir_core::roles::provider::ProviderRole;
use weir_core::roles::{BodyVerdict, Env, Filter, HeaderEdits, HeadersVerdict};
use weir_core::store::MemStore;

mod common;
use common::{env, env_at, headers, parse_config, set_of, At, NOW_MS};

fn sha(s: &str) -> String {
    weir_core::auth::sha256_hex(s)
}

fn config() -> Rc<Config> {
    let cfg = json!({
        "providers": {
            "oa": {"type": "openai", "keys": [{"id": "k1", "key": "sk-provider-one"}, {"id": "k2", "key": "sk-provider-two"}]},
            "an": {"type": "anthropic", "keys": [{"id": "a1", "key": "sk-ant-provider"}]}
        },
        "models": [
            // The breaker never opens here; it makes the route keep target health records.
            {"name": "fast", "breaker": {"min_requests": 1000},
             "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]},
            {"name": "safe", "targets": [
                {"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_fo"},
                {"provider": "an", "model": "claude-x", "cluster": "c_fo"}]},
            {"name": "guarded", "breaker": {"min_requests": 1, "cooldown_s": 30},
             "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]}
        ],
        "auth": {"keys": [
            {"id": "team-a", "sha256": sha("sk-weir-a")},
            {"id": "team-b", "sha256": sha("sk-weir-b"), "models": ["fast"], "limits": {"requests_per_minute": 2}}
        ]},
        "pii": {"enabled": true, "default_action": "placeholder", "restore": true}
    });
    parse_config(&cfg)
}

struct Sent {
    cluster: String,
    envelope: Vec<u8>,
}

/// Runs the request half through the gateway role.
fn send(
    ex: &mut GatewayRole,
    store: &MemStore,
    key: &str,
    path: &str,
    body: Value,
) -> Result<Sent, (u16, Value)> {
    let env = env(store, 7);
    let auth = format!("Bearer {key}");
    let h = headers(&[
        (":method", "POST"),
        (":path", path),
        ("authorization", &auth),
        ("x-weir-cluster", "spoofed"),
        ("content-type", "application/json"),
        ("content-length", "100"),
    ]);
    match ex.on_request_headers(&h, &env) {
        HeadersVerdict::Reply(r) => {
            return Err((r.status, serde_json::from_slice(&r.body).unwrap()))
        }
        HeadersVerdict::Buffer { remove } => {
            for must in ["authorization", "x-weir-cluster", "content-length"] {
                assert!(remove.iter().any(|r| r == must), "{must} must be stripped");
            }
        }
    }
    match ex.on_request_body(body.to_string().as_bytes(), &env) {
        BodyVerdict::Reply(r) => Err((r.status, serde_json::from_slice(&r.body).unwrap())),
        BodyVerdict::Forward { set, body } => Ok(Sent {
            cluster: set_of(&set, CLUSTER_HEADER).unwrap().to_string(),
            envelope: body,
        }),
    }
}

struct Outgoing {
    set: Vec<(String, String)>,
    body: Value,
}

/// One provider-role attempt's request half, for the endpoint of `provider`.
fn attempt_request(
    at: &mut ProviderRole,
    store: &MemStore,
    provider: &str,
    envelope: &[u8],
) -> Outgoing {
    let endpoint = At(Some(provider));
    let env = env_at(store, 3, &endpoint);
    let h = headers(&[
        ("x-weir-cluster", "c"),
        ("authorization", "Bearer leftover-from-last-attempt"),
    ]);
    match at.on_request_headers(&h, &env) {
        HeadersVerdict::Buffer { remove } => {
            assert!(remove.iter().any(|r| r == "authorization"));
            assert!(remove.iter().any(|r| r == "x-weir-cluster"));
        }
        HeadersVerdict::Reply(r) => panic!("unexpected reply {}", String::from_utf8_lossy(&r.body)),
    }
    match at.on_request_body(envelope, &env) {
        BodyVerdict::Forward { set, body } => Outgoing {
            set,
            body: serde_json::from_slice(&body).unwrap(),
        },
        BodyVerdict::Reply(r) => panic!("unexpected reply {}", String::from_utf8_lossy(&r.body)),
    }
}

/// The provider's answer back through the provider role and the gateway role, in `chunks`.
fn answer(
    at: &mut ProviderRole,
    ex: &mut GatewayRole,
    store: &MemStore,
    status: u16,
    ctype: &str,
    chunks: &[&[u8]],
) -> (u16, Vec<u8>) {
    let env = env(store, 0);
    let status_text = status.to_string();
    let edits = at.on_response_headers(
        &headers(&[(":status", &status_text), ("content-type", ctype)]),
        &env,
    );
    let status = edits.status.unwrap_or(status);
    let hdrs = as_received(&edits, status);
    // The provider role's output, as the gateway receives it.
    let mut internal = Vec::new();
    if at.buffers_response() {
        internal.push(at.on_response_body(&chunks.concat(), true, &env).unwrap());
    } else {
        for (i, c) in chunks.iter().enumerate() {
            internal.push(at.on_response_body(c, i + 1 == chunks.len(), &env).unwrap());
        }
    }
    let status = at.take_status().unwrap_or(status);
    let _ = ex.on_response_headers(&hdrs, &env);
    let mut client = Vec::new();
    if ex.buffers_response() {
        client = ex.on_response_body(&internal.concat(), true, &env).unwrap();
    } else {
        for (i, c) in internal.iter().enumerate() {
            client.extend(
                ex.on_response_body(c, i + 1 == internal.len(), &env)
                    .unwrap(),
            );
        }
    }
    (ex.take_status().unwrap_or(status), client)
}

/// The response headers the gateway role receives: the provider role's, with the final status.
fn as_received(edits: &HeaderEdits, status: u16) -> Vec<(String, Vec<u8>)> {
    let mut hdrs: Vec<(String, Vec<u8>)> = edits
        .set
        .iter()
        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
        .collect();
    hdrs.push((":status".into(), status.to_string().into_bytes()));
    hdrs
}

fn openai_answer(text: &str) -> Vec<u8> {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    .to_string()
    .into_bytes()
}

#[test]
fn an_anthropic_client_reaches_an_openai_provider_with_pii_scrubbed_and_restored() {
    let cfg = config();
    let store = MemStore::new();
    let mut ex = GatewayRole::new(cfg.clone());
    let sent = send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/messages",
        json!({
            "model": "fast", "max_tokens": 50,
            "messages": [{"role": "user", "content": "mail me at jane@example.com"}]
        }),
    )
    .unwrap();
    assert_eq!(
        sent.cluster, "c_oa",
        "the client cannot pick its own cluster"
    );
    let mut at = ProviderRole::new(cfg.clone());
    let out = attempt_request(&mut at, &store, "oa", &sent.envelope);
    assert_eq!(set_of(&out.set, ":path"), Some("/v1/chat/completions"));
    assert_eq!(set_of(&out.set, ":authority"), Some("api.openai.com"));
    assert!(set_of(&out.set, "authorization")
        .unwrap()
        .starts_with("Bearer sk-provider-"));
    assert_eq!(out.body["model"], "gpt-4o-mini");
    let sent_text = out.body["messages"][0]["content"].as_str().unwrap();
    assert!(!sent_text.contains("jane@example.com"), "{sent_text}");
    assert!(sent_text.contains("<EMAIL_1>"));
    let (status, body) = answer(
        &mut at,
        &mut ex,
        &store,
        200,
        "application/json",
        &[&openai_answer("echo: mail me at <EMAIL_1>")],
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "echo: mail me at jane@example.com");
    assert_eq!(v["usage"]["output_tokens"], 2);
    let summary = ex
        .on_done(&Env {
            clock: &(NOW_MS + 40),
            ..env(&store, 0)
        })
        .unwrap();
    assert_eq!(summary.model.as_deref(), Some("fast"));
    assert_eq!(summary.key.as_deref(), Some("team-a"));
    assert_eq!(summary.provider.as_deref(), Some("oa"));
    assert_eq!(
        (summary.status, summary.output_tokens, summary.duration_ms),
        (200, 2, 40)
    );
    assert_eq!(summary.pii, vec![("email".to_string(), 1)]);
    // (5 × 0.25 + 2 × 0.6) Wh/1000 × 480 g/kWh ≈ 1.18 mg.
    assert_eq!(summary.co2e_mg, 1);
    assert!(
        !summary.to_json().contains("jane"),
        "the access log never carries prompt text"
    );
}

#[test]
fn a_streamed_answer_is_the_same_whatever_the_chunking() {
    let cfg = config();
    let mut sse = Vec::new();
    let words = ["echo:", " héllo", " 🦀", " <EMA", "IL_1>"];
    for (i, w) in words.iter().enumerate() {
        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": if i == 0 { json!({"role": "assistant", "content": w}) } else { json!({"content": w}) }, "finish_reason": null}]});
        sse.extend(format!("data: {chunk}\n\n").into_bytes());
    }
    let fin = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let usage = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
    sse.extend(format!("data: {fin}\n\ndata: {usage}\n\ndata: [DONE]\n\n").into_bytes());
    let mut outputs = Vec::new();
    // Each chunking, with the events as NDJSON between the roles and handed over in the VM.
    for (split, in_vm) in [1usize, 7, 64, sse.len()]
        .into_iter()
        .flat_map(|s| [(s, false), (s, true)])
    {
        weir_core::roles::handoff::set_provider_in_this_vm(in_vm);
        let store = MemStore::new();
        let mut ex = GatewayRole::new(cfg.clone());
        let sent = send(&mut ex, &store, "sk-weir-a", "/api/chat", json!({
            "model": "fast", "messages": [{"role": "user", "content": "héllo 🦀 jane@example.com"}]
        }))
        .unwrap();
        let mut at = ProviderRole::new(cfg.clone());
        let out = attempt_request(&mut at, &store, "oa", &sent.envelope);
        assert_eq!(out.body["stream"], true, "ollama clients stream by default");
        assert_eq!(out.body["stream_options"]["include_usage"], true);
        let chunks: Vec<&[u8]> = sse.chunks(split).collect();
        let (status, body) = answer(&mut at, &mut ex, &store, 200, "text/event-stream", &chunks);
        assert_eq!(status, 200);
        let text: String = String::from_utf8(body.clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let content: String = lines
            .iter()
            .filter_map(|l| l["message"]["content"].as_str())
            .collect();
        assert_eq!(content, "echo: héllo 🦀 jane@example.com");
        let last = lines.last().unwrap();
        assert_eq!(last["done"], true);
        assert_eq!(last["eval_count"], 4);
        assert_eq!(ex.usage().unwrap().output_tokens, 4);
        ex.on_done(&env(&store, 0));
        outputs.push(lines);
    }
    weir_core::roles::handoff::set_provider_in_this_vm(false);
    assert_eq!(weir_core::roles::handoff::in_flight(), 0);
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_retry_on_another_provider_type_is_translated_and_keyed_afresh() {
    let cfg = config();
    let store = MemStore::new();
    let mut ex = GatewayRole::new(cfg.clone());
    let sent = send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/chat/completions",
        json!({
            "model": "safe", "messages": [{"role": "user", "content": "hi"}]
        }),
    )
    .unwrap();
    assert_eq!(sent.cluster, "c_fo");
    // First attempt: the OpenAI endpoint answers 503; Envoy retries on the next priority.
    let mut first = ProviderRole::new(cfg.clone());
    let out = attempt_request(&mut first, &store, "oa", &sent.envelope);
    assert_eq!(set_of(&out.set, ":path"), Some("/v1/chat/completions"));
    // Second attempt: the Anthropic endpoint. Same envelope, new provider role context.
    let mut second = ProviderRole::new(cfg.clone());
    let out = attempt_request(&mut second, &store, "an", &sent.envelope);
    assert_eq!(set_of(&out.set, ":path"), Some("/v1/messages"));
    assert_eq!(set_of(&out.set, "x-api-key"), Some("sk-ant-provider"));
    assert_eq!(
        set_of(&out.set, "authorization"),
        None,
        "no OpenAI credential may follow"
    );
    assert_eq!(out.body["model"], "claude-x");
    let reply = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "echo: hi"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 2}});
    let (status, body) = answer(
        &mut second,
        &mut ex,
        &store,
        200,
        "application/json",
        &[reply.to_string().as_bytes()],
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
}

#[test]
fn a_provider_credential_failure_is_a_gateway_error_that_never_echoes_the_key() {
    let cfg = config();
    let store = MemStore::new();
    let mut ex = GatewayRole::new(cfg.clone());
    let sent = send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/chat/completions",
        json!({
            "model": "fast", "messages": [{"role": "user", "content": "hi"}]
        }),
    )
    .unwrap();
    let mut at = ProviderRole::new(cfg.clone());
    let out = attempt_request(&mut at, &store, "oa", &sent.envelope);
    let used = set_of(&out.set, "authorization").unwrap().to_string();
    let err = json!({"error": {"message": format!("Incorrect API key provided: {}", &used[7..]), "type": "invalid_request_error", "code": "invalid_api_key"}});
    let (status, body) = answer(
        &mut at,
        &mut ex,
        &store,
        401,
        "application/json",
        &[err.to_string().as_bytes()],
    );
    assert_eq!(status, 502);
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("sk-provider"), "{text}");
    assert!(
        text.contains("rejected the gateway's credentials"),
        "{text}"
    );
    // The rejected key is benched: the next attempts use the other one.
    for _ in 0..3 {
        let mut next = ProviderRole::new(cfg.clone());
        let out = attempt_request(&mut next, &store, "oa", &sent.envelope);
        assert_ne!(set_of(&out.set, "authorization").unwrap(), used);
    }
}

#[test]
fn refusals_come_in_the_clients_shape_before_any_upstream_call() {
    let cfg = config();
    let store = MemStore::new();
    let chat = json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = send(
        &mut GatewayRole::new(cfg.clone()),
        &store,
        "sk-wrong",
        "/v1/chat/completions",
        chat.clone(),
    )
    .err()
    .unwrap();
    assert_eq!(status, 401);
    assert!(body["error"]["message"].is_string());
    let (status, body) = send(
        &mut GatewayRole::new(cfg.clone()),
        &store,
        "sk-weir-b",
        "/v1/messages",
        json!({
        "model": "safe", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .err()
    .unwrap();
    assert_eq!(status, 403);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error");
    let (status, body) = send(
        &mut GatewayRole::new(cfg.clone()),
        &store,
        "sk-weir-a",
        "/api/chat",
        json!({"model": "nope", "messages": []}),
    )
    .err()
    .unwrap();
    assert_eq!(status, 404);
    assert!(body["error"].is_string(), "ollama errors are plain strings");
    let mut codes = Vec::new();
    for _ in 0..3 {
        let mut ex = GatewayRole::new(cfg.clone());
        codes.push(
            match send(
                &mut ex,
                &store,
                "sk-weir-b",
                "/v1/chat/completions",
                chat.clone(),
            ) {
                Ok(_) => 200,
                Err((s, _)) => s,
            },
        );
        ex.on_done(&env(&store, 0));
    }
    assert_eq!(codes, [200, 200, 429]);
}

#[test]
fn a_body_that_is_not_json_is_refused_by_its_content_type() {
    let cfg = config();
    let store = MemStore::new();
    let env = env(&store, 0);
    let verdict = |ctype: &str| {
        let h = headers(&[
            (":method", "POST"),
            (":path", "/v1/messages"),
            ("authorization", "Bearer sk-weir-a"),
            ("content-type", ctype),
        ]);
        GatewayRole::new(cfg.clone()).on_request_headers(&h, &env)
    };
    match verdict("text/plain") {
        HeadersVerdict::Reply(r) => {
            assert_eq!(r.status, 415);
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["type"], "error", "in the Anthropic client's shape");
        }
        other => panic!("expected a 415, got {other:?}"),
    }
    assert!(matches!(
        verdict("Application/JSON; charset=utf-8"),
        HeadersVerdict::Buffer { .. }
    ));
}

#[test]
fn envoys_own_local_replies_are_reshaped_for_the_client() {
    let cfg = config();
    let store = MemStore::new();
    let mut ex = GatewayRole::new(cfg.clone());
    send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/messages",
        json!({
        "model": "fast", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    let env = env(&store, 0);
    let edits = ex.on_response_headers(
        &headers(&[(":status", "503"), ("content-type", "text/plain")]),
        &env,
    );
    assert!(edits
        .set
        .iter()
        .any(|(n, v)| n == "retry-after" && v == "1"));
    assert!(ex.buffers_response());
    let body = ex
        .on_response_body(b"no healthy upstream", true, &env)
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert!(!edits.set.iter().any(|(n, _)| n == IR_HEADER));
}

/// The in-VM hand-off, as Envoy runs it (both roles in one VM): a retry replays the same short
/// reference, the first attempt's discarded 503 answer does not reach the client, and the
/// gateway lets go of everything when the request ends.
#[test]
fn in_one_vm_the_roles_hand_over_by_reference_across_a_retry() {
    weir_core::roles::handoff::set_provider_in_this_vm(true);
    let cfg = config();
    let store = MemStore::new();
    let mut ex = GatewayRole::new(cfg.clone());
    let sent = send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/chat/completions",
        json!({"model": "safe", "messages": [{"role": "user", "content": "mail jane@example.com"}]}),
    )
    .unwrap();
    assert!(sent.envelope.starts_with(b"weir-ref:") && sent.envelope.len() < 64);
    assert_eq!(weir_core::roles::handoff::in_flight(), 1);
    // First attempt: OpenAI answers 503; its IR answer is left behind when Envoy retries.
    let mut first = ProviderRole::new(cfg.clone());
    let out = attempt_request(&mut first, &store, "oa", &sent.envelope);
    assert!(!out.body.to_string().contains("jane@example.com"));
    let env = env(&store, 0);
    first.on_response_headers(&headers(&[(":status", "503")]), &env);
    let discarded = first.on_response_body(b"{}", true, &env).unwrap();
    assert!(discarded.starts_with(b"weir-ref:"));
    // Second attempt: Anthropic, from the same reference.
    let mut second = ProviderRole::new(cfg.clone());
    let out = attempt_request(&mut second, &store, "an", &sent.envelope);
    assert_eq!(out.body["model"], "claude-x");
    let reply = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "echo: <EMAIL_1>"}], "stop_reason": "end_turn",
        "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 2}});
    let (status, body) = answer(
        &mut second,
        &mut ex,
        &store,
        200,
        "application/json",
        &[reply.to_string().as_bytes()],
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "echo: jane@example.com"
    );
    ex.on_done(&env);
    assert_eq!(weir_core::roles::handoff::in_flight(), 0);
}

#[test]
fn the_chosen_target_is_released_exactly_once_whatever_ends_the_request() {
    let cfg = config();
    let store = MemStore::new();
    cfg.router.seed(&store).unwrap();
    let chat = json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]});
    // team-b may send 2 a minute: the third is refused by the limits after the choice.
    for _ in 0..3 {
        let mut ex = GatewayRole::new(cfg.clone());
        let _ = send(
            &mut ex,
            &store,
            "sk-weir-b",
            "/v1/chat/completions",
            chat.clone(),
        );
        ex.on_done(&env(&store, 0));
        ex.on_done(&env(&store, 0));
    }
    let h = cfg
        .router
        .by_name("fast")
        .unwrap()
        .health(&store, 0)
        .unwrap();
    // Nobody answered (no response started): nothing learned, nothing left in flight.
    assert_eq!(
        (h.in_flight(), h.successes(), h.total_failures()),
        (0, 0, 0)
    );
}

#[test]
fn an_open_breaker_on_every_target_is_a_503_before_any_upstream_call() {
    let cfg = config();
    let store = MemStore::new();
    cfg.router.seed(&store).unwrap();
    let msg = json!({"model": "guarded", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let mut ex = GatewayRole::new(cfg.clone());
    send(&mut ex, &store, "sk-weir-a", "/v1/messages", msg.clone()).unwrap();
    // Envoy's own reply: the provider could not be reached.
    let env = env(&store, 0);
    ex.on_response_headers(&headers(&[(":status", "503")]), &env);
    ex.on_response_body(b"upstream connect error", true, &env);
    let summary = ex.on_done(&env).unwrap();
    assert_eq!(summary.breaker, [("oa".to_string(), "open")]);
    let mut ex = GatewayRole::new(cfg.clone());
    let (status, body) = send(&mut ex, &store, "sk-weir-a", "/v1/messages", msg)
        .err()
        .unwrap();
    assert_eq!(status, 503);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
    let summary = ex.on_done(&env).unwrap();
    assert_eq!(
        summary.breaker,
        [("oa".to_string(), "skipped"), ("-".to_string(), "refused")]
    );
    let h = cfg
        .router
        .by_name("guarded")
        .unwrap()
        .health(&store, 0)
        .unwrap();
    assert_eq!(
        h.failures(weir_core::routing::health::FailureClass::Connect),
        1
    );
    assert_eq!(h.in_flight(), 0);
}

/// Counts the host property reads an attempt makes about its endpoint.
struct Asked<'a> {
    provider: Option<&'a str>,
    reads: std::cell::Cell<u32>,
}

impl weir_core::roles::Endpoint for Asked<'_> {
    fn provider(&self) -> Option<String> {
        self.reads.set(self.reads.get() + 1);
        self.provider.map(str::to_string)
    }
}

#[test]
fn only_an_attempt_in_a_cluster_several_providers_share_asks_the_endpoint() {
    let cfg = config();
    let store = MemStore::new();
    cfg.router.seed(&store).unwrap();
    let reads = |model: &str, provider: &str| {
        let mut ex = GatewayRole::new(cfg.clone());
        let sent = send(
            &mut ex,
            &store,
            "sk-weir-a",
            "/v1/chat/completions",
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        let endpoint = Asked {
            provider: Some(provider),
            reads: Default::default(),
        };
        let env = Env {
            endpoint: &endpoint,
            ..env(&store, 1)
        };
        let mut at = ProviderRole::new(cfg.clone());
        at.on_request_headers(&headers(&[]), &env);
        let BodyVerdict::Forward { set, .. } = at.on_request_body(&sent.envelope, &env) else {
            panic!("the attempt was refused");
        };
        ex.on_done(&env);
        (
            endpoint.reads.get(),
            set_of(&set, ":path").unwrap().to_string(),
        )
    };
    // c_oa only ever serves `oa`: its target is known without asking.
    assert_eq!(reads("fast", "oa"), (0, "/v1/chat/completions".into()));
    // c_fo has targets of `oa` and `an`: the endpoint's metadata decides, once.
    assert_eq!(reads("safe", "an"), (1, "/v1/messages".into()));
    assert_eq!(reads("safe", "oa"), (1, "/v1/chat/completions".into()));
}

/// A clock that counts its reads: each is a host call in Envoy.
#[derive(Default)]
struct CountingClock(std::cell::Cell<u32>);

impl weir_core::roles::Clock for CountingClock {
    fn now_ms(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        NOW_MS
    }
}

#[test]
fn a_streamed_answer_reads_the_clock_once_not_per_chunk() {
    let cfg = config();
    let store = MemStore::new();
    let mut ex = GatewayRole::new(cfg.clone());
    let sent = send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/api/chat",
        json!({
            "model": "fast", "messages": [{"role": "user", "content": "count to ten"}]
        }),
    )
    .unwrap();
    let clock = CountingClock::default();
    let endpoint = At(Some("oa"));
    let env = Env {
        clock: &clock,
        ..env_at(&store, 3, &endpoint)
    };
    let mut at = ProviderRole::new(cfg.clone());
    at.on_request_headers(&headers(&[]), &env);
    assert_eq!(clock.0.get(), 0, "stripping headers needs no time");
    assert!(matches!(
        at.on_request_body(&sent.envelope, &env),
        BodyVerdict::Forward { .. }
    ));
    let before_answer = clock.0.get();
    let edits = at.on_response_headers(
        &headers(&[(":status", "200"), ("content-type", "text/event-stream")]),
        &env,
    );
    let _ = ex.on_response_headers(&as_received(&edits, 200), &env);
    assert_eq!(clock.0.get(), before_answer, "a 200's headers need no time");
    let words = 10;
    for i in 0..words {
        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": format!("{i} ")}, "finish_reason": null}]});
        let internal = at
            .on_response_body(format!("data: {chunk}\n\n").as_bytes(), false, &env)
            .unwrap();
        let out = ex.on_response_body(&internal, false, &env).unwrap();
        assert!(!out.is_empty(), "chunk {i} reaches the client");
    }
    // The first chunk the client sees sets the time to first token; no other chunk asks.
    assert_eq!(clock.0.get(), before_answer + 1);
}
