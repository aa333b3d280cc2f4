//! The response cache on the whole request path without Envoy: a miss through both roles and a
//! simulated provider, then hits answered by the gateway role alone, across client protocols.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use weir_core::wire::Reply;

mod common;
use common::{json, openai_answer, post, set_of, sha, Forwarded, Harness, Headers};

fn config() -> Value {
    json!({
        "providers": {"oa": {"type": "openai", "keys": [{"id": "k1", "key": "sk-provider-one"}]}},
        "models": [{"name": "fast", "targets": [{"provider": "oa", "model": "gpt-4o-mini", "cluster": "c_oa"}]}],
        "auth": {"keys": [
            {"id": "a", "sha256": sha("sk-weir-a"), "limits": {"tokens_per_minute": 100000}},
            {"id": "b", "sha256": sha("sk-weir-b")}
        ]},
        "pii": {"enabled": true, "default_action": "placeholder", "restore": true},
        "cache": {"enabled": true, "scope": "key"}
    })
}

/// The gateway's own answer, which must be a cache hit.
fn hit(sent: Result<Forwarded, Reply>) -> Reply {
    match sent {
        Err(reply) => {
            assert_eq!(set_of(&reply.headers, "x-weir-cache"), Some("hit"));
            reply
        }
        Ok(_) => panic!("expected a cache hit, the request was forwarded"),
    }
}

#[test]
fn a_hit_serves_another_protocol_restores_its_own_pii_and_refunds_tokens() {
    let mut h = Harness::new(config());
    let openai = |who: &str| {
        json!({"model": "fast", "temperature": 0, "max_tokens": 20,
               "messages": [{"role": "user", "content": format!("mail {who}@example.com")}]})
    };
    let sent = h
        .send(post("sk-weir-a", "/v1/chat/completions"), openai("alice"))
        .unwrap();
    assert!(!String::from_utf8_lossy(&sent.body).contains("alice"));
    h.attempt("oa", Headers::default(), &sent.body);
    let answer = h.answer(
        200,
        "application/json",
        &[&openai_answer("sent to <EMAIL_1>")],
    );
    assert_eq!(answer.header("x-weir-cache"), Some("miss"));
    assert_eq!(
        answer.json()["choices"][0]["message"]["content"],
        "sent to alice@example.com"
    );
    let s = h.done().unwrap();
    assert_eq!(s.cache, Some("miss"));

    // The stored answer holds the placeholder only.
    for set in 0..64 {
        for way in 0..4 {
            let key = format!("weir:cache:{set}:{way}");
            if let Ok((Some(v), _)) = weir_core::store::SharedStore::get(&h.host.store, &key) {
                assert!(!String::from_utf8_lossy(&v).contains("alice"));
            }
        }
    }

    // Bob, through the Anthropic protocol, gets the cached answer with his own address.
    let anthropic = json!({"model": "fast", "temperature": 0, "max_tokens": 20,
                           "messages": [{"role": "user", "content": "mail bob@example.com"}]});
    h.next_request();
    let r = hit(h.send(post("sk-weir-a", "/v1/messages"), anthropic.clone()));
    let v = json(&r.body);
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "sent to bob@example.com");
    let remaining = set_of(&r.headers, "x-ratelimit-remaining-tokens")
        .unwrap()
        .to_string();
    let s = h.done().unwrap();
    assert_eq!((s.cache, s.status, s.output_tokens), (Some("hit"), 200, 0));

    // Streamed, as Anthropic SSE; and the reserved tokens of the first hit were refunded.
    let mut streamed = anthropic.clone();
    streamed["stream"] = json!(true);
    h.next_request();
    let r = hit(h.send(post("sk-weir-a", "/v1/messages"), streamed));
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
    h.done();

    // Another key does not see key a's entry; no-store and no-cache go upstream.
    h.next_request();
    assert!(h
        .send(post("sk-weir-b", "/v1/messages"), anthropic.clone())
        .is_ok());
    for directive in ["no-store", "no-cache"] {
        h.next_request();
        let asked = post("sk-weir-a", "/v1/messages").with("cache-control", directive);
        assert!(h.send(asked, anthropic.clone()).is_ok());
    }
    // A non-zero temperature bypasses.
    let mut warm = anthropic;
    warm["temperature"] = json!(0.5);
    h.next_request();
    let sent = h.send(post("sk-weir-a", "/v1/messages"), warm).unwrap();
    h.attempt("oa", Headers::default(), &sent.body);
    let answer = h.answer(200, "application/json", &[&openai_answer("x")]);
    assert_eq!(answer.header("x-weir-cache"), Some("bypass"));
}

#[test]
fn a_streamed_miss_is_stored_and_replayed_to_a_plain_client() {
    let mut h = Harness::new(config());
    let req = json!({"model": "fast", "temperature": 0, "stream": true,
                     "messages": [{"role": "user", "content": "count"}]});
    let sent = h
        .send(post("sk-weir-a", "/v1/chat/completions"), req.clone())
        .unwrap();
    let sse = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"one \"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
        "data: [DONE]\n\n"
    );
    h.attempt("oa", Headers::default(), &sent.body);
    let answer = h.answer(200, "text/event-stream", &[sse.as_bytes()]);
    assert_eq!(answer.header("x-weir-cache"), Some("miss"));
    assert!(String::from_utf8_lossy(&answer.body).contains("two"));
    let mut plain = req;
    plain["stream"] = json!(false);
    h.next_request();
    let r = hit(h.send(post("sk-weir-a", "/api/chat"), {
        let mut o = plain.clone();
        o["options"] = json!({"temperature": 0});
        o.as_object_mut().unwrap().remove("temperature");
        o
    }));
    let v = json(&r.body);
    assert_eq!(v["message"]["content"], "one two", "{v}");
}
