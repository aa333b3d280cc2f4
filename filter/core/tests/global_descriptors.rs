//! The gateway role's side of global rate limits (`limits.global_descriptors`), without Envoy:
//! the descriptor headers and filter state it hands to Envoy's ratelimit filter, and how it
//! answers that filter's 429.
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
use weir_core::roles::{BodyVerdict, Env, Filter, HeadersVerdict};
use weir_core::store::MemStore;

mod common;
use common::{headers, parse_config, set_of};

fn config(global: bool) -> Rc<Config> {
    let cfg = json!({
        "providers": {"oa": {"type": "openai", "keys": [{"id": "k1", "key": "sk-provider-one"}]}},
        "models": [{"name": "fast", "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]}],
        "auth": {"keys": [{"id": "team-b", "sha256": weir_core::auth::sha256_hex("sk-weir-b"),
                           "limits": {"tokens_per_minute": 30}}]},
        "limits": {"global_descriptors": global}
    });
    parse_config(&cfg)
}

fn env(store: &MemStore) -> Env<'_> {
    common::env(store, 1)
}

/// Sends one OpenAI chat request (35 bytes of prompt, max_tokens 10: an estimate of 19 tokens)
/// with a client trying to pick its own descriptor; returns the headers weir forwards.
fn forward(ex: &mut GatewayRole, store: &MemStore) -> Vec<(String, String)> {
    let h = headers(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        ("authorization", "Bearer sk-weir-b"),
        ("x-weir-rl-key", "someone-else"),
        ("content-type", "application/json"),
    ]);
    match ex.on_request_headers(&h, &env(store)) {
        HeadersVerdict::Buffer { remove } => assert!(remove.iter().any(|r| r == "x-weir-rl-key")),
        HeadersVerdict::Reply(r) => panic!("refused: {}", r.status),
    }
    let body = json!({"model": "fast", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "one two six ten red big cat dog sun"}]});
    match ex.on_request_body(body.to_string().as_bytes(), &env(store)) {
        BodyVerdict::Forward { set, .. } => set,
        BodyVerdict::Reply(r) => panic!("refused: {}", r.status),
    }
}

#[test]
fn admitted_requests_carry_configured_descriptors_and_publish_the_overrun_slot() {
    let store = MemStore::new();
    let mut ex = GatewayRole::new(config(true));
    let set = forward(&mut ex, &store);
    assert_eq!(set_of(&set, "x-weir-rl-key"), Some("team-b"));
    assert_eq!(set_of(&set, "x-weir-rl-model"), Some("fast"));
    assert_eq!(set_of(&set, "x-weir-rl-tokens"), Some("19"));
    assert_eq!(
        ex.take_filter_state(),
        [
            ("weir_rl_key", "team-b".to_string()),
            ("weir_rl_model", "fast".to_string()),
            ("weir_tokens_overrun", "0".to_string())
        ]
    );
    assert!(ex.take_filter_state().is_empty(), "published once");
}

#[test]
fn without_the_switch_nothing_is_described() {
    let store = MemStore::new();
    let mut ex = GatewayRole::new(config(false));
    let set = forward(&mut ex, &store);
    assert!(
        !set.iter().any(|(n, _)| n.starts_with("x-weir-rl-")),
        "{set:?}"
    );
    assert!(ex.take_filter_state().is_empty());
}

#[test]
fn the_global_limits_429_is_a_rate_limit_error_with_retry_after_and_refunds_the_replica() {
    let store = MemStore::new();
    let cfg = config(true);
    let mut ex = GatewayRole::new(cfg.clone());
    forward(&mut ex, &store);
    // Envoy's ratelimit filter refused: a local reply, no x-weir-ir marker.
    let edits = ex.on_response_headers(
        &headers(&[
            (":status", "429"),
            ("x-ratelimit-reset", "37"),
            ("x-envoy-ratelimited", "true"),
        ]),
        &env(&store),
    );
    assert_eq!(set_of(&edits.set, "retry-after"), Some("37"));
    assert!(ex.buffers_response());
    let body = ex
        .on_response_body(b"global rate limit reached", true, &env(&store))
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rate limit reached"));
    ex.on_done(&env(&store));
    // The key's per-replica limit is 30 tokens per minute and a request reserves 19: only
    // because the globally refused request gave its reservation back is this one admitted.
    let mut again = GatewayRole::new(cfg);
    forward(&mut again, &store);
}
