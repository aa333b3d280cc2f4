//! The response cache on the whole request path without Envoy: a miss through both roles and a
//! simulated provider, then hits answered by the gateway role alone, across client protocols.
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
use weir_core::roles::provider::ProviderRole;
use weir_core::roles::{BodyVerdict, Env, Filter, HeadersVerdict};
use weir_core::store::MemStore;
use weir_core::wire::Reply;

mod common;
use common::{headers, parse_config, set_of};

fn config() -> Rc<Config> {
    let cfg = json!({
        "providers": {"oa": {"type": "openai", "keys": [{"id": "k1", "key": "sk-provider-one"}]}},
        "models": [{"name": "fast", "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]}],
        "auth": {"keys": [
            {"id": "a", "sha256": weir_core::auth::sha256_hex("sk-weir-a"), "limits": {"tokens_per_minute": 100000}},
            {"id": "b", "sha256": weir_core::auth::sha256_hex("sk-weir-b")}
        ]},
        "pii": {"enabled": true, "default_action": "placeholder", "restore": true},
        "cache": {"enabled": true, "scope": "key"}
    });
    parse_config(&cfg)
}

fn env(store: &MemStore) -> Env<'_> {
    common::env(store, 1)
}

/// The gateway's request half: the forwarded envelope, or the reply it gave itself.
fn send(
    ex: &mut GatewayRole,
    store: &MemStore,
    key: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: Value,
) -> Result<Vec<u8>, Reply> {
    let auth = format!("Bearer {key}");
    let mut h = headers(&[
        (":method", "POST"),
        (":path", path),
        ("authorization", &auth),
    ]);
    h.extend(headers(extra));
    if let HeadersVerdict::Reply(r) = ex.on_request_headers(&h, &env(store)) {
        return Err(r);
    }
    match ex.on_request_body(body.to_string().as_bytes(), &env(store)) {
        BodyVerdict::Reply(r) => Err(r),
        BodyVerdict::Forward { body, .. } => Ok(body),
    }
}

/// The provider role and a simulated OpenAI answer, back to the client; returns the client's
/// bytes and the gateway's response header edits.
fn answer(
    ex: &mut GatewayRole,
    store: &MemStore,
    envelope: &[u8],
    provider_body: &[u8],
    ctype: &str,
) -> (Vec<u8>, Vec<(String, String)>) {
    let cfg = config();
    let mut at = ProviderRole::new(cfg);
    let h = headers(&[]);
    let e = env(store);
    assert!(matches!(
        at.on_request_headers(&h, &e),
        HeadersVerdict::Buffer { .. }
    ));
    assert!(matches!(
        at.on_request_body(envelope, &e),
        BodyVerdict::Forward { .. }
    ));
    let edits =
        at.on_response_headers(&headers(&[(":status", "200"), ("content-type", ctype)]), &e);
    let mut back: Vec<(String, Vec<u8>)> = edits
        .set
        .iter()
        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
        .collect();
    back.push((":status".into(), b"200".to_vec()));
    let internal = at.on_response_body(provider_body, true, &e).unwrap();
    let gw = ex.on_response_headers(&back, &e);
    let client = ex.on_response_body(&internal, true, &e).unwrap();
    (client, gw.set)
}

fn openai_answer(text: &str) -> Vec<u8> {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    .to_string()
    .into_bytes()
}

fn hit(r: Result<Vec<u8>, Reply>) -> Reply {
    match r {
        Err(reply) => {
            assert_eq!(set_of(&reply.headers, "x-weir-cache"), Some("hit"));
            reply
        }
        Ok(_) => panic!("expected a cache hit, the request was forwarded"),
    }
}

#[test]
fn a_hit_serves_another_protocol_restores_its_own_pii_and_refunds_tokens() {
    let cfg = config();
    let store = MemStore::new();
    let openai = |who: &str| {
        json!({"model": "fast", "temperature": 0, "max_tokens": 20,
               "messages": [{"role": "user", "content": format!("mail {who}@example.com")}]})
    };
    let mut ex = GatewayRole::new(cfg.clone());
    let env0 = send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/chat/completions",
        &[],
        openai("alice"),
    )
    .unwrap();
    assert!(!String::from_utf8_lossy(&env0).contains("alice"));
    let (body, set) = answer(
        &mut ex,
        &store,
        &env0,
        &openai_answer("sent to <EMAIL_1>"),
        "application/json",
    );
    assert_eq!(set_of(&set, "x-weir-cache"), Some("miss"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "sent to alice@example.com"
    );
    let s = ex.on_done(&env(&store)).unwrap();
    assert_eq!(s.cache, Some("miss"));

    // The stored answer holds the placeholder only.
    for set in 0..64 {
        for way in 0..4 {
            let key = format!("weir:cache:{set}:{way}");
            if let Ok((Some(v), _)) = weir_core::store::SharedStore::get(&store, &key) {
                assert!(!String::from_utf8_lossy(&v).contains("alice"));
            }
        }
    }

    // Bob, through the Anthropic protocol, gets the cached answer with his own address.
    let anthropic = json!({"model": "fast", "temperature": 0, "max_tokens": 20,
                           "messages": [{"role": "user", "content": "mail bob@example.com"}]});
    let mut ex = GatewayRole::new(cfg.clone());
    let r = hit(send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/messages",
        &[],
        anthropic.clone(),
    ));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "sent to bob@example.com");
    let remaining = set_of(&r.headers, "x-ratelimit-remaining-tokens")
        .unwrap()
        .to_string();
    let s = ex.on_done(&env(&store)).unwrap();
    assert_eq!((s.cache, s.status, s.output_tokens), (Some("hit"), 200, 0));

    // Streamed, as Anthropic SSE; and the reserved tokens of the first hit were refunded.
    let mut streamed = anthropic.clone();
    streamed["stream"] = json!(true);
    let mut ex = GatewayRole::new(cfg.clone());
    let r = hit(send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/messages",
        &[],
        streamed,
    ));
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        text.contains("event: content_block_delta") && text.contains("sent to bob@example.com"),
        "{text}"
    );
    assert_eq!(
        set_of(&r.headers, "content-type"),
        Some("text/event-stream")
    );
    assert_eq!(
        set_of(&r.headers, "x-ratelimit-remaining-tokens"),
        Some(remaining.as_str())
    );
    ex.on_done(&env(&store));

    // Another key does not see key a's entry; no-store and no-cache go upstream.
    let mut ex = GatewayRole::new(cfg.clone());
    assert!(send(
        &mut ex,
        &store,
        "sk-weir-b",
        "/v1/messages",
        &[],
        anthropic.clone()
    )
    .is_ok());
    for directive in ["no-store", "no-cache"] {
        let mut ex = GatewayRole::new(cfg.clone());
        assert!(send(
            &mut ex,
            &store,
            "sk-weir-a",
            "/v1/messages",
            &[("cache-control", directive)],
            anthropic.clone()
        )
        .is_ok());
    }
    // A non-zero temperature bypasses.
    let mut warm = anthropic;
    warm["temperature"] = json!(0.5);
    let mut ex = GatewayRole::new(cfg.clone());
    let env1 = send(&mut ex, &store, "sk-weir-a", "/v1/messages", &[], warm).unwrap();
    let (_, set) = answer(
        &mut ex,
        &store,
        &env1,
        &openai_answer("x"),
        "application/json",
    );
    assert_eq!(set_of(&set, "x-weir-cache"), Some("bypass"));
}

#[test]
fn a_streamed_miss_is_stored_and_replayed_to_a_plain_client() {
    let cfg = config();
    let store = MemStore::new();
    let req = json!({"model": "fast", "temperature": 0, "stream": true,
                     "messages": [{"role": "user", "content": "count"}]});
    let mut ex = GatewayRole::new(cfg.clone());
    let envelope = send(
        &mut ex,
        &store,
        "sk-weir-a",
        "/v1/chat/completions",
        &[],
        req.clone(),
    )
    .unwrap();
    let sse = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"one \"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
        "data: [DONE]\n\n"
    );
    let (body, set) = answer(
        &mut ex,
        &store,
        &envelope,
        sse.as_bytes(),
        "text/event-stream",
    );
    assert_eq!(set_of(&set, "x-weir-cache"), Some("miss"));
    assert!(String::from_utf8_lossy(&body).contains("two"));
    let mut plain = req;
    plain["stream"] = json!(false);
    let mut ex = GatewayRole::new(cfg.clone());
    let r = hit(send(&mut ex, &store, "sk-weir-a", "/api/chat", &[], {
        let mut o = plain.clone();
        o["options"] = json!({"temperature": 0});
        o.as_object_mut().unwrap().remove("temperature");
        o
    }));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["message"]["content"], "one two", "{v}");
}
