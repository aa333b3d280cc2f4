//! The whole request path without Envoy: a client's body through the gateway role, the envelope
//! through provider-role attempts (retries too), a simulated provider's answer back through both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use weir_core::roles::handoff;
use weir_core::roles::headers::{CLUSTER_HEADER, IR_HEADER};

mod common;
use common::{json, openai_answer, post, sha, Harness, Headers};

fn config() -> Value {
    json!({
        "providers": {
            "oa": {"type": "openai", "keys": [{"id": "k1", "key": "sk-provider-one"}, {"id": "k2", "key": "sk-provider-two"}]},
            "an": {"type": "anthropic", "keys": [{"id": "a1", "key": "sk-ant-provider"}]},
            "ge": {"type": "gemini", "keys": [{"id": "g1", "key": "AIza-provider-one"}, {"id": "g2", "key": "AIza-provider-two"}]}
        },
        "models": [
            // The breaker never opens here; it makes the route keep target health records.
            {"name": "fast", "breaker": {"min_requests": 1000},
             "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]},
            {"name": "safe", "targets": [
                {"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_fo"},
                {"provider": "an", "model": "claude-x", "cluster": "c_fo"}]},
            {"name": "guarded", "breaker": {"min_requests": 1, "cooldown_s": 30},
             "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]},
            {"name": "gem", "targets": [{"provider": "ge", "model": "gemini-2.5-flash", "cluster": "c_ge"}]},
            {"name": "claude", "unsupported": "drop",
             "targets": [{"provider": "an", "model": "claude-x", "cluster": "c_an"}]}
        ],
        "auth": {"keys": [
            {"id": "team-a", "sha256": sha("sk-weir-a")},
            {"id": "team-b", "sha256": sha("sk-weir-b"), "models": ["fast"], "limits": {"requests_per_minute": 2}}
        ]},
        "pii": {"enabled": true, "default_action": "placeholder", "restore": true}
    })
}

/// A client that also tries to pick its own cluster, with a length the gateway's rewrite of the
/// body makes wrong, behind an Envoy that reported its client certificate: the harness checks
/// the gateway strips all three (no provider learns the client's identity), and the credential.
fn client(key: &str, path: &str) -> Headers {
    post(key, path)
        .with("x-weir-cluster", "spoofed")
        .with("content-length", "100")
        .with(
            "x-forwarded-client-cert",
            "Hash=ab12;URI=spiffe://example.org/app",
        )
}

/// What an attempt can find in Envoy's header map: the gateway's cluster and, on a retry, the
/// previous attempt's credential. The harness checks the provider role strips both.
fn leftovers() -> Headers {
    Headers::new(&[
        ("x-weir-cluster", "c"),
        ("authorization", "Bearer leftover-from-last-attempt"),
    ])
}

fn anthropic_answer(text: &str) -> Vec<u8> {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 1, "output_tokens": 2}})
    .to_string()
    .into_bytes()
}

#[test]
fn an_anthropic_client_reaches_an_openai_provider_with_pii_scrubbed_and_restored() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            client("sk-weir-a", "/v1/messages"),
            json!({
                "model": "fast", "max_tokens": 50,
                "messages": [{"role": "user", "content": "mail me at jane@example.com"}]
            }),
        )
        .unwrap();
    assert_eq!(
        sent.header(CLUSTER_HEADER),
        Some("c_oa"),
        "the client cannot pick its own cluster"
    );
    let out = h.attempt("oa", leftovers(), &sent.body);
    assert_eq!(out.header(":path"), Some("/v1/chat/completions"));
    assert_eq!(out.header(":authority"), Some("api.openai.com"));
    assert!(out
        .header("authorization")
        .unwrap()
        .starts_with("Bearer sk-provider-"));
    let upstream = out.json();
    assert_eq!(upstream["model"], "gpt-4o-mini");
    let sent_text = upstream["messages"][0]["content"].as_str().unwrap();
    assert!(!sent_text.contains("jane@example.com"), "{sent_text}");
    assert!(sent_text.contains("<EMAIL_1>"));
    let answer = h.answer(
        200,
        "application/json",
        &[&openai_answer("echo: mail me at <EMAIL_1>")],
    );
    assert_eq!(answer.status, 200);
    let v = answer.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "echo: mail me at jane@example.com");
    assert_eq!(v["usage"]["output_tokens"], 2);
    h.host.now_ms += 40;
    let summary = h.done().unwrap();
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
    let mut h = Harness::new(config());
    let mut outputs = Vec::new();
    // Each chunking, with the events as NDJSON between the roles and handed over in the VM.
    for (split, in_vm) in [1usize, 7, 64, sse.len()]
        .into_iter()
        .flat_map(|s| [(s, false), (s, true)])
    {
        h.in_one_vm(in_vm);
        let sent = h
            .send(
                client("sk-weir-a", "/api/chat"),
                json!({
                    "model": "fast", "messages": [{"role": "user", "content": "héllo 🦀 jane@example.com"}]
                }),
            )
            .unwrap();
        let upstream = h.attempt("oa", leftovers(), &sent.body).json();
        assert_eq!(upstream["stream"], true, "ollama clients stream by default");
        assert_eq!(upstream["stream_options"]["include_usage"], true);
        let chunks: Vec<&[u8]> = sse.chunks(split).collect();
        let answer = h.answer(200, "text/event-stream", &chunks);
        assert_eq!(answer.status, 200);
        let text: String = String::from_utf8(answer.body).unwrap();
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
        assert_eq!(h.gateway().usage().unwrap().output_tokens, 4);
        h.done();
        outputs.push(lines);
        h.next_request();
    }
    h.in_one_vm(false);
    assert_eq!(handoff::in_flight(), 0);
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_retry_on_another_provider_type_is_translated_and_keyed_afresh() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            client("sk-weir-a", "/v1/chat/completions"),
            json!({
                "model": "safe", "messages": [{"role": "user", "content": "hi"}]
            }),
        )
        .unwrap();
    assert_eq!(sent.header(CLUSTER_HEADER), Some("c_fo"));
    // First attempt: the OpenAI endpoint answers 503; Envoy retries on the next priority.
    let out = h.attempt("oa", leftovers(), &sent.body);
    assert_eq!(out.header(":path"), Some("/v1/chat/completions"));
    h.retried(503, "application/json", b"{}");
    // Second attempt: the Anthropic endpoint. Same envelope, new provider role context.
    let out = h.attempt("an", leftovers(), &sent.body);
    assert_eq!(out.header(":path"), Some("/v1/messages"));
    assert_eq!(out.header("x-api-key"), Some("sk-ant-provider"));
    assert_eq!(
        out.header("authorization"),
        None,
        "no OpenAI credential may follow"
    );
    assert_eq!(out.json()["model"], "claude-x");
    let answer = h.answer(200, "application/json", &[&anthropic_answer("echo: hi")]);
    assert_eq!(answer.status, 200);
    let v = answer.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
}

#[test]
fn a_provider_credential_failure_is_a_gateway_error_that_never_echoes_the_key() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            client("sk-weir-a", "/v1/chat/completions"),
            json!({
                "model": "fast", "messages": [{"role": "user", "content": "hi"}]
            }),
        )
        .unwrap();
    let out = h.attempt("oa", leftovers(), &sent.body);
    let used = out.header("authorization").unwrap().to_string();
    let err = json!({"error": {"message": format!("Incorrect API key provided: {}", &used[7..]), "type": "invalid_request_error", "code": "invalid_api_key"}});
    let answer = h.answer(401, "application/json", &[err.to_string().as_bytes()]);
    assert_eq!(answer.status, 502);
    let text = String::from_utf8(answer.body).unwrap();
    assert!(!text.contains("sk-provider"), "{text}");
    assert!(
        text.contains("rejected the gateway's credentials"),
        "{text}"
    );
    // The rejected key is benched: the next attempts use the other one.
    for _ in 0..3 {
        let out = h.attempt("oa", leftovers(), &sent.body);
        assert_ne!(out.header("authorization").unwrap(), used);
    }
}

/// Which of a provider's keys the next `n` attempts of `envelope` use, by `header`.
fn keys_used(
    h: &mut Harness,
    provider: &str,
    header: &str,
    envelope: &[u8],
    n: usize,
) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = h.attempt(provider, leftovers(), envelope);
            out.header(header).unwrap_or_default().to_string()
        })
        .collect()
}

/// Gemini says "invalid key" with a 400 and a reason in its details: that is the gateway's key,
/// not the client's request, so it is benched and the client gets the gateway's 502.
#[test]
fn geminis_api_key_invalid_400_is_a_credential_failure() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            client("sk-weir-a", "/v1/chat/completions"),
            json!({"model": "gem", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    let out = h.attempt("ge", leftovers(), &sent.body);
    let used = out.header("x-goog-api-key").unwrap().to_string();
    let err = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": "API key not valid. Please pass a valid API key."}]}});
    let answer = h.answer(400, "application/json", &[err.to_string().as_bytes()]);
    assert_eq!(answer.status, 502);
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    let id = if used.ends_with("one") { "g1" } else { "g2" };
    assert_eq!(
        message,
        format!("provider 'ge' rejected the gateway's credentials (key '{id}')")
    );
    assert!(keys_used(&mut h, "ge", "x-goog-api-key", &sent.body, 3)
        .iter()
        .all(|k| *k != used));
}

/// A refusal the request caused is the client's (a 400 stays a 400) or the route's (a 403 for
/// a model this key may not use), and neither benches the key: one request must not be able
/// to take every key of a provider out of rotation, one attempt per key.
#[test]
fn refusals_the_request_caused_keep_every_key_in_rotation() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            client("sk-weir-a", "/v1/chat/completions"),
            json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    // Every attempt gets a 403 the request caused; Envoy retries the 502, with the other key.
    let forbidden = json!({"error": {"message": "Project `proj_Secret9` does not have access to model `gpt-4o-mini`",
        "type": "invalid_request_error", "param": null, "code": "model_not_found"}});
    for _ in 0..2 {
        h.attempt("oa", leftovers(), &sent.body);
        let body = h.retried(403, "application/json", forbidden.to_string().as_bytes());
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("refused this request"), "{text}");
        assert!(
            !text.contains("proj_Secret9"),
            "an account id reached the client: {text}"
        );
    }
    let used = keys_used(&mut h, "oa", "authorization", &sent.body, 4);
    assert!(
        used.iter().any(|k| k.ends_with("one")) && used.iter().any(|k| k.ends_with("two")),
        "{used:?}"
    );

    // Gemini's plain INVALID_ARGUMENT is the client's mistake: its 400, and no bench.
    h.next_request();
    let sent = h
        .send(
            client("sk-weir-a", "/v1/chat/completions"),
            json!({"model": "gem", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    h.attempt("ge", leftovers(), &sent.body);
    let err = json!({"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified",
        "status": "INVALID_ARGUMENT"}});
    let answer = h.answer(400, "application/json", &[err.to_string().as_bytes()]);
    assert_eq!(answer.status, 400);
    let used = keys_used(&mut h, "ge", "x-goog-api-key", &sent.body, 4);
    assert!(
        used.iter().any(|k| k.ends_with("one")) && used.iter().any(|k| k.ends_with("two")),
        "{used:?}"
    );
}

/// What a provider says about its account, its cookies and its site never reaches a client;
/// its request id does, and the rate-limit headers a client sees are its own key's.
#[test]
fn only_allowlisted_provider_response_headers_reach_the_client() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            client("sk-weir-b", "/v1/chat/completions"),
            json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    h.attempt("oa", leftovers(), &sent.body);
    let answer = h.answer_with(
        200,
        "application/json",
        &[
            ("x-request-id", "req_123"),
            ("openai-processing-ms", "7"),
            ("openai-organization", "acme-corp"),
            ("openai-project", "proj_secret"),
            ("anthropic-organization-id", "org-1"),
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-tokens", "149990"),
            ("anthropic-ratelimit-requests-remaining", "3999"),
            ("set-cookie", "__cf_bm=a; path=/"),
            ("set-cookie", "_cfuvid=b; path=/"),
            ("access-control-allow-origin", "*"),
            ("strict-transport-security", "max-age=31536000"),
            ("location", "https://evil.example/"),
            ("x-weir-ir", "raw"),
            ("server", "cloudflare"),
        ],
        &[&openai_answer("hello")],
    );
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["choices"][0]["message"]["content"], "hello");
    let got = |name: &str| -> Vec<String> {
        answer
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    };
    assert_eq!(got("x-request-id"), ["req_123"]);
    assert_eq!(got("openai-processing-ms"), ["7"]);
    assert_eq!(got("content-type"), ["application/json"]);
    // The key's own limit (2 a minute), not the provider account's.
    assert_eq!(got("x-ratelimit-limit-requests"), ["2"]);
    assert_eq!(got("x-ratelimit-remaining-requests"), ["1"]);
    for name in [
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
        "x-ratelimit-remaining-tokens",
        "anthropic-ratelimit-requests-remaining",
        "set-cookie",
        "access-control-allow-origin",
        "strict-transport-security",
        "location",
        "x-weir-ir",
        "server",
    ] {
        assert!(
            got(name).is_empty(),
            "{name} reached the client: {:?}",
            answer.headers
        );
    }
}

#[test]
fn refusals_come_in_the_clients_shape_before_any_upstream_call() {
    let mut h = Harness::new(config());
    let chat = json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]});
    let reply = h
        .send(client("sk-wrong", "/v1/chat/completions"), chat.clone())
        .unwrap_err();
    assert_eq!(reply.status, 401);
    assert!(json(&reply.body)["error"]["message"].is_string());
    h.next_request();
    let reply = h
        .send(
            client("sk-weir-b", "/v1/messages"),
            json!({
            "model": "safe", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap_err();
    // Like a model that does not exist, so a key cannot probe what others may use.
    assert_eq!(reply.status, 404);
    let body = json(&reply.body);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    h.next_request();
    let reply = h
        .send(
            client("sk-weir-a", "/api/chat"),
            json!({"model": "nope", "messages": []}),
        )
        .unwrap_err();
    assert_eq!(reply.status, 404);
    assert!(
        json(&reply.body)["error"].is_string(),
        "ollama errors are plain strings"
    );
    let mut codes = Vec::new();
    for _ in 0..3 {
        h.next_request();
        codes.push(
            match h.send(client("sk-weir-b", "/v1/chat/completions"), chat.clone()) {
                Ok(_) => 200,
                Err(reply) => reply.status,
            },
        );
        h.done();
    }
    assert_eq!(codes, [200, 200, 429]);
}

#[test]
fn a_body_that_is_not_json_is_refused_by_its_content_type() {
    let mut h = Harness::new(config());
    let typed = |ctype: &str| post("sk-weir-a", "/v1/messages").with("content-type", ctype);
    let reply = h.send_headers(typed("text/plain")).unwrap_err();
    assert_eq!(reply.status, 415);
    assert_eq!(
        json(&reply.body)["type"],
        "error",
        "in the Anthropic client's shape"
    );
    h.next_request();
    assert!(h
        .send_headers(typed("Application/JSON; charset=utf-8"))
        .is_ok());
}

#[test]
fn envoys_own_local_replies_are_reshaped_for_the_client() {
    let mut h = Harness::new(config());
    h.send(
        client("sk-weir-a", "/v1/messages"),
        json!({
        "model": "fast", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    let answer = h.local_reply(
        Headers::new(&[(":status", "503"), ("content-type", "text/plain")]),
        b"no healthy upstream",
    );
    assert!(answer
        .edits
        .set
        .iter()
        .any(|(n, v)| n == "retry-after" && v == "1"));
    assert!(answer.held);
    let v = answer.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert!(!answer.edits.set.iter().any(|(n, _)| n == IR_HEADER));
}

/// The in-VM hand-off, as Envoy runs it (both roles in one VM): a retry replays the same short
/// reference, the first attempt's discarded 503 answer does not reach the client, and the
/// gateway lets go of everything when the request ends.
#[test]
fn in_one_vm_the_roles_hand_over_by_reference_across_a_retry() {
    let mut h = Harness::new(config());
    h.in_one_vm(true);
    let sent = h
        .send(
            client("sk-weir-a", "/v1/chat/completions"),
            json!({"model": "safe", "messages": [{"role": "user", "content": "mail jane@example.com"}]}),
        )
        .unwrap();
    assert!(sent.body.starts_with(b"weir-ref:") && sent.body.len() < 64);
    assert_eq!(handoff::in_flight(), 1);
    // First attempt: OpenAI answers 503; its IR answer is left behind when Envoy retries.
    let out = h.attempt("oa", leftovers(), &sent.body);
    assert!(!out.json().to_string().contains("jane@example.com"));
    let discarded = h.retried(503, "application/json", b"{}");
    assert!(discarded.starts_with(b"weir-ref:"));
    // Second attempt: Anthropic, from the same reference.
    let out = h.attempt("an", leftovers(), &sent.body);
    assert_eq!(out.json()["model"], "claude-x");
    let answer = h.answer(
        200,
        "application/json",
        &[&anthropic_answer("echo: <EMAIL_1>")],
    );
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "echo: jane@example.com"
    );
    h.done();
    assert_eq!(handoff::in_flight(), 0);
}

#[test]
fn the_chosen_target_is_released_exactly_once_whatever_ends_the_request() {
    let mut h = Harness::new(config());
    let chat = json!({"model": "fast", "messages": [{"role": "user", "content": "hi"}]});
    // team-b may send 2 a minute: the third is refused by the limits after the choice.
    for _ in 0..3 {
        let _ = h.send(client("sk-weir-b", "/v1/chat/completions"), chat.clone());
        h.done();
        h.done();
        h.next_request();
    }
    let health = h
        .cfg
        .router
        .by_name("fast")
        .unwrap()
        .health(&h.host.store, 0)
        .unwrap();
    // Nobody answered (no response started): nothing learned, nothing left in flight.
    assert_eq!(
        (
            health.in_flight(),
            health.successes(),
            health.total_failures()
        ),
        (0, 0, 0)
    );
}

#[test]
fn an_open_breaker_on_every_target_is_a_503_before_any_upstream_call() {
    let mut h = Harness::new(config());
    let msg = json!({"model": "guarded", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    h.send(client("sk-weir-a", "/v1/messages"), msg.clone())
        .unwrap();
    // Envoy's own reply: the provider could not be reached.
    h.local_reply(
        Headers::new(&[(":status", "503")]),
        b"upstream connect error",
    );
    let summary = h.done().unwrap();
    assert_eq!(summary.breaker, [("oa".to_string(), "open")]);
    h.next_request();
    let reply = h
        .send(client("sk-weir-a", "/v1/messages"), msg)
        .unwrap_err();
    assert_eq!(reply.status, 503);
    let body = json(&reply.body);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
    let summary = h.done().unwrap();
    assert_eq!(
        summary.breaker,
        [("oa".to_string(), "skipped"), ("-".to_string(), "refused")]
    );
    let health = h
        .cfg
        .router
        .by_name("guarded")
        .unwrap()
        .health(&h.host.store, 0)
        .unwrap();
    assert_eq!(
        health.failures(weir_core::routing::health::FailureClass::Connect),
        1
    );
    assert_eq!(health.in_flight(), 0);
}

#[test]
fn only_an_attempt_in_a_cluster_several_providers_share_asks_the_endpoint() {
    let mut h = Harness::new(config());
    // Endpoint reads and the path of one request's attempt at an endpoint of `provider`.
    let mut reads = |model: &str, provider: &str| {
        let sent = h
            .send(
                client("sk-weir-a", "/v1/chat/completions"),
                json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .unwrap();
        let before = h.host.endpoint_reads();
        let out = h.attempt(provider, Headers::default(), &sent.body);
        h.done();
        h.next_request();
        (
            h.host.endpoint_reads() - before,
            out.header(":path").unwrap().to_string(),
        )
    };
    // c_oa only ever serves `oa`: its target is known without asking.
    assert_eq!(reads("fast", "oa"), (0, "/v1/chat/completions".into()));
    // c_fo has targets of `oa` and `an`: the endpoint's metadata decides, once.
    assert_eq!(reads("safe", "an"), (1, "/v1/messages".into()));
    assert_eq!(reads("safe", "oa"), (1, "/v1/chat/completions".into()));
}

#[test]
fn a_streamed_answer_reads_the_clock_once_not_per_chunk() {
    let mut h = Harness::new(config());
    let sent = h
        .send(
            client("sk-weir-a", "/api/chat"),
            json!({
                "model": "fast", "messages": [{"role": "user", "content": "count to ten"}]
            }),
        )
        .unwrap();
    let admitted = h.host.clock_reads();
    h.attempt_headers("oa", Headers::default());
    assert_eq!(
        h.host.clock_reads(),
        admitted,
        "stripping headers needs no time"
    );
    assert!(h.attempt_body(&sent.body).is_ok());
    let before_answer = h.host.clock_reads();
    h.respond(200, "text/event-stream");
    assert_eq!(
        h.host.clock_reads(),
        before_answer,
        "a 200's headers need no time"
    );
    let words = 10;
    for i in 0..words {
        let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": format!("{i} ")}, "finish_reason": null}]});
        let out = h.chunk(format!("data: {chunk}\n\n").as_bytes(), false);
        assert!(!out.is_empty(), "chunk {i} reaches the client");
    }
    // The first chunk the client sees sets the time to first token; no other chunk asks.
    assert_eq!(h.host.clock_reads(), before_answer + 1);
}

#[test]
fn unsupported_tuning_is_dropped_where_the_route_says_and_reported_to_client_and_log() {
    let mut h = Harness::new(config());
    let body = json!({"model": "claude", "seed": 7, "user": "u", "top_p": 0.5,
        "messages": [{"role": "user", "content": "hi"}]});
    let sent = h
        .send(client("sk-weir-a", "/v1/chat/completions"), body)
        .unwrap();
    let upstream = h.attempt("an", leftovers(), &sent.body).json();
    assert!(upstream.get("seed").is_none(), "{upstream}");
    assert_eq!(upstream["top_p"], 0.5);
    assert_eq!(upstream["metadata"], json!({"user_id": "u"}));
    let answer = h.answer(200, "application/json", &[&anthropic_answer("ok")]);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-weir-dropped"), Some("seed"));
    let summary = h.done().unwrap();
    assert_eq!(summary.dropped, ["seed"]);
    assert!(summary.to_json().contains(r#""dropped":["seed"]"#));

    // The same field on a route that refuses: a 400 in the client's shape, naming it.
    h.next_request();
    let body = json!({"model": "fast", "max_tokens": 5, "top_k": 3, "metadata": {"user_id": "u"},
        "messages": [{"role": "user", "content": "hi"}]});
    let sent = h.send(client("sk-weir-a", "/v1/messages"), body).unwrap();
    h.attempt_headers("oa", Headers::default());
    let refused = h.attempt_body(&sent.body).unwrap_err();
    assert_eq!(refused.status, 400);
    let answer = h.local_reply(
        Headers::new(&[(":status", "400"), (IR_HEADER, "response")]),
        &refused.body,
    );
    let v = answer.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`top_k` is not supported by the openai provider"));
}

#[test]
fn count_tokens_goes_to_anthropic_and_is_estimated_for_the_others() {
    let mut h = Harness::new(config());
    let count = json!({"model": "claude", "system": "be brief",
        "messages": [{"role": "user", "content": "count these words please"}]});
    let sent = h
        .send(
            client("sk-weir-a", "/v1/messages/count_tokens"),
            count.clone(),
        )
        .unwrap();
    let out = h.attempt("an", leftovers(), &sent.body);
    assert_eq!(out.header(":path"), Some("/v1/messages/count_tokens"));
    let upstream = out.json();
    assert!(upstream.get("max_tokens").is_none() && upstream.get("stream").is_none());
    assert_eq!(upstream["system"], "be brief");
    let answer = h.answer(200, "application/json", &[br#"{"input_tokens": 14}"#]);
    assert_eq!(answer.json(), json!({"input_tokens": 14}));
    assert_eq!(answer.header("x-weir-token-count"), None);
    h.done();

    // An OpenAI-type provider cannot count: the provider role answers with weir's estimate.
    h.next_request();
    let sent = h
        .send(
            client("sk-weir-a", "/v1/messages/count_tokens"),
            json!({"model": "fast", "messages": [{"role": "user", "content": "count these words please"}]}),
        )
        .unwrap();
    h.attempt_headers("oa", Headers::default());
    let reply = h.attempt_body(&sent.body).unwrap_err();
    assert_eq!(reply.status, 200);
    let mut headers = vec![(":status".to_string(), "200".to_string())];
    headers.extend(reply.headers.iter().cloned());
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let answer = h.local_reply(Headers::new(&pairs), &reply.body);
    assert_eq!(answer.status, 200);
    // 24 bytes of text at the default 4 characters per token.
    assert_eq!(answer.json(), json!({"input_tokens": 6}));
    assert_eq!(answer.header("x-weir-token-count"), Some("estimate"));
}

#[test]
fn anthropic_beta_reaches_anthropic_providers_only() {
    let mut h = Harness::new(config());
    // Repeated headers, one value not a flag name (dropped), and a client's version.
    let sent = h
        .send(
            Headers::new(&[
                (":method", "POST"),
                (":path", "/v1/chat/completions"),
                ("content-type", "application/json"),
                ("authorization", "Bearer sk-weir-a"),
                ("anthropic-beta", "context-1m-2025-08-07, bad value!"),
                ("anthropic-beta", "interleaved-thinking-2025-05-14"),
                ("anthropic-version", "2099-01-01"),
            ]),
            json!({"model": "safe", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    let client_map = || {
        Headers::new(&[
            ("x-weir-cluster", "c"),
            ("anthropic-beta", "context-1m-2025-08-07, bad value!"),
            ("anthropic-version", "2099-01-01"),
        ])
    };
    let removed = h.attempt_headers("oa", client_map());
    assert!(removed.iter().any(|n| n == "anthropic-beta"));
    let out = h.attempt_body(&sent.body).unwrap();
    assert_eq!(out.header("anthropic-beta"), None);
    h.retried(503, "application/json", b"{}");
    // The retry finds the map the first attempt rewrote: the flags come from the envelope.
    let removed = h.attempt_headers("an", Headers::new(&[("x-weir-cluster", "c")]));
    assert!(removed.iter().any(|n| n == "x-weir-cluster"));
    let out = h.attempt_body(&sent.body).unwrap();
    assert_eq!(
        out.header("anthropic-beta"),
        Some("context-1m-2025-08-07,interleaved-thinking-2025-05-14")
    );
    // weir writes the body for the version the provider is configured with, not the client's.
    assert_eq!(out.header("anthropic-version"), Some("2023-06-01"));
}

/// Client headers reach a provider only by its allowlist: weir's own, Envoy's tracing, and the
/// provider's `extra_request_headers`; a retry on another provider gets that one's, not these.
#[test]
fn client_request_headers_reach_providers_only_by_their_allowlist() {
    let mut cfg = config();
    cfg["providers"]["oa"]["extra_request_headers"] = json!(["x-tenant"]);
    let mut h = Harness::new(cfg);
    let sent = h
        .send(
            client("sk-weir-a", "/v1/chat/completions")
                .with("x-tenant", "blue")
                .with("cookie", "session=secret")
                .with("x-custom", "anything")
                .with(
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            json!({"model": "safe", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
    let map = || {
        Headers::new(&[
            ("x-tenant", "blue"),
            ("cookie", "session=secret"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("forwarded", "for=10.0.0.7"),
            ("x-real-ip", "10.0.0.7"),
            ("x-custom", "anything"),
            ("user-agent", "OpenAI/Python 2.0"),
            ("x-envoy-expected-rq-timeout-ms", "15000"),
            ("x-request-id", "3c7b-envoy"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ])
    };
    let removed = h.attempt_headers("oa", map());
    for name in [
        "x-tenant",
        "cookie",
        "proxy-authorization",
        "forwarded",
        "x-real-ip",
        "x-custom",
        "user-agent",
        "x-envoy-expected-rq-timeout-ms",
    ] {
        assert!(removed.iter().any(|n| n == name), "{name} must be removed");
    }
    assert!(!removed
        .iter()
        .any(|n| n == "x-request-id" || n == "traceparent"));
    let out = h.attempt_body(&sent.body).unwrap();
    assert_eq!(
        out.header("x-tenant"),
        Some("blue"),
        "oa's allowlist names it"
    );
    assert_eq!(out.header("cookie"), None);
    h.retried(503, "application/json", b"{}");
    // The map as the first attempt left it.
    let removed = h.attempt_headers("an", Headers::new(&[("x-tenant", "blue")]));
    assert_eq!(removed, ["x-tenant"]);
    let out = h.attempt_body(&sent.body).unwrap();
    assert_eq!(out.header("x-tenant"), None, "an's allowlist does not");
}

#[test]
fn anthropics_overloaded_529_is_529_for_anthropic_clients_and_503_for_the_others() {
    let overloaded =
        br#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#;
    let hi = json!([{"role": "user", "content": "hi"}]);
    for (path, body, want) in [
        (
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 5, "messages": hi}),
            529,
        ),
        (
            "/v1/chat/completions",
            json!({"model": "claude", "messages": hi}),
            503,
        ),
        (
            "/api/chat",
            json!({"model": "claude", "stream": false, "messages": hi}),
            503,
        ),
    ] {
        let mut h = Harness::new(config());
        let sent = h.send(client("sk-weir-a", path), body).unwrap();
        h.attempt("an", leftovers(), &sent.body);
        let answer = h.answer(529, "application/json", &[overloaded]);
        assert_eq!(answer.status, want, "{path}");
        assert!(
            answer.body.windows(10).any(|w| w == b"Overloaded"),
            "{path}"
        );
    }
}

#[test]
fn a_key_over_its_limit_is_refused_before_its_text_is_scanned() {
    let mut cfg = config();
    cfg["pii"]["scan_budget"] = json!(4096);
    let mut h = Harness::new(cfg);
    let chat =
        |text: &str| json!({"model": "fast", "messages": [{"role": "user", "content": text}]});
    let long = "1.1.1.".repeat(2000);
    // Within its limits, a text past the scan budget is refused, in the client's shape.
    let reply = h
        .send(client("sk-weir-a", "/v1/chat/completions"), chat(&long))
        .unwrap_err();
    assert_eq!(reply.status, 413);
    let message = json(&reply.body)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("PII scan budget"), "{message}");
    assert_eq!(h.done().unwrap().pii, vec![("scan_budget".to_string(), 1)]);
    // team-b may send 2 a minute: the third, however long, gets its 429 without a scan.
    let mut codes = Vec::new();
    for text in ["hi", "hi", long.as_str()] {
        h.next_request();
        codes.push(
            match h.send(client("sk-weir-b", "/v1/chat/completions"), chat(text)) {
                Ok(_) => 200,
                Err(reply) => reply.status,
            },
        );
        h.done();
    }
    assert_eq!(codes, [200, 200, 429]);
}

#[test]
fn a_client_that_gives_up_after_the_request_went_upstream_is_charged_its_estimate() {
    let mut cfg = config();
    cfg["auth"]["keys"][0]["limits"] = json!({"tokens_per_minute": 100});
    let mut h = Harness::new(cfg);
    // About 40 tokens reserved each: "hi" and max_tokens 40.
    let chat = json!({"model": "fast", "max_tokens": 40,
                      "messages": [{"role": "user", "content": "hi"}]});
    let mut codes = Vec::new();
    for _ in 0..3 {
        let sent = h.send(client("sk-weir-a", "/v1/chat/completions"), chat.clone());
        codes.push(match sent {
            Ok(_) => {
                // The client disconnects before any answer: Envoy ends the stream, no response.
                let summary = h.done().unwrap();
                assert_eq!(summary.charged, Some("estimate"));
                assert!(summary.estimated_tokens >= 40, "{summary:?}");
                assert_eq!((summary.status, summary.outcome()), (499, "client_closed"));
                assert!(summary.to_json().contains(r#""charged":"estimate""#));
                assert!(summary
                    .samples()
                    .iter()
                    .any(|s| s.metric == "weir_tokens_total"));
                200
            }
            Err(reply) => {
                h.done();
                reply.status
            }
        });
        h.next_request();
    }
    assert_eq!(
        codes,
        [200, 200, 429],
        "the abandoned requests used the window"
    );
}

#[test]
fn a_compressed_request_body_is_refused_with_415() {
    let mut h = Harness::new(config());
    for encoding in ["gzip", "br", "deflate, gzip"] {
        let headers = post("sk-weir-a", "/v1/messages").with("content-encoding", encoding);
        let reply = h.send_headers(headers).unwrap_err();
        assert_eq!(reply.status, 415);
        let body = json(&reply.body);
        assert_eq!(body["type"], "error", "in the Anthropic client's shape");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(encoding));
        h.next_request();
    }
    let plain = post("sk-weir-a", "/v1/chat/completions").with("content-encoding", "identity");
    assert!(h.send_headers(plain).is_ok());
}
