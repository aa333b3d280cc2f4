//! The gateway role's side of Envoy's global rate limits (`limits.global_descriptors`): the
//! descriptor headers and filter state it hands Envoy's ratelimit filter, and that filter's 429.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};

mod common;
use common::{post, set_of, sha, Harness, Headers};

fn config(global: bool) -> Value {
    json!({
        "providers": {"oa": {"type": "openai", "keys": [{"id": "k1", "key": "sk-provider-one"}]}},
        "models": [{"name": "fast", "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]}],
        "auth": {"keys": [{"id": "team-b", "sha256": sha("sk-weir-b"),
                           "limits": {"tokens_per_minute": 30}}]},
        "limits": {"global_descriptors": global}
    })
}

/// Sends one OpenAI chat request (35 bytes of prompt, max_tokens 10: an estimate of 19 tokens)
/// with a client trying to pick its own descriptor (the harness checks it is stripped); returns
/// the headers weir forwards.
fn forward(h: &mut Harness) -> Vec<(String, String)> {
    let spoofed = post("sk-weir-b", "/v1/chat/completions").with("x-weir-rl-key", "someone-else");
    let body = json!({"model": "fast", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "one two six ten red big cat dog sun"}]});
    match h.send(spoofed, body) {
        Ok(sent) => sent.set,
        Err(r) => panic!("refused: {}", r.status),
    }
}

#[test]
fn admitted_requests_carry_configured_descriptors_and_publish_the_overrun_slot() {
    let mut h = Harness::new(config(true));
    let set = forward(&mut h);
    assert_eq!(set_of(&set, "x-weir-rl-key"), Some("team-b"));
    assert_eq!(set_of(&set, "x-weir-rl-model"), Some("fast"));
    assert_eq!(set_of(&set, "x-weir-rl-tokens"), Some("19"));
    assert_eq!(
        h.published(),
        [
            ("weir_rl_key", "team-b".to_string()),
            ("weir_rl_model", "fast".to_string()),
            ("weir_tokens_overrun", "0".to_string())
        ]
    );
    assert!(h.published().is_empty(), "published once");
}

#[test]
fn without_the_switch_nothing_is_described() {
    let mut h = Harness::new(config(false));
    let set = forward(&mut h);
    assert!(
        !set.iter().any(|(n, _)| n.starts_with("x-weir-rl-")),
        "{set:?}"
    );
    assert!(h.published().is_empty());
}

#[test]
fn the_global_limits_429_is_a_rate_limit_error_with_retry_after_and_refunds_the_replica() {
    let mut h = Harness::new(config(true));
    forward(&mut h);
    // Envoy's ratelimit filter refused: a local reply, no x-weir-ir marker.
    let answer = h.local_reply(
        Headers::new(&[
            (":status", "429"),
            ("x-ratelimit-reset", "37"),
            ("x-envoy-ratelimited", "true"),
        ]),
        b"global rate limit reached",
    );
    assert_eq!(answer.header("retry-after"), Some("37"));
    assert!(answer.held);
    let v = answer.json();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("rate limit reached"));
    h.done();
    // The key's per-replica limit is 30 tokens per minute and a request reserves 19: only
    // because the globally refused request gave its reservation back is this one admitted.
    h.next_request();
    forward(&mut h);
}
