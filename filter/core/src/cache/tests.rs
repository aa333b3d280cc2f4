//! Unit tests of the response cache on [`MemStore`]: key normalisation, the slot table's bound,
//! eviction and races, the caching policy, and stream collection and replay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::table::{Entry, Geometry, Put, Table};
use super::*;
use crate::ir::{
    ChatRequest, ChatResponse, Choice, EmbeddingsRequest, ErrorInfo, FinishReason, Message, Role,
};
use crate::store::{MemStore, SharedStore};

const NOW: u64 = 1_790_000_000_000;

fn chat(text: &str, temperature: Option<f64>) -> Request {
    Request::Chat(ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, text)],
        temperature,
        ..Default::default()
    })
}

fn answer(text: &str) -> Response {
    Response::Chat(ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-4o-mini".into(),
        created: 1,
        choices: vec![Choice {
            index: 0,
            message: Message::text(Role::Assistant, text),
            finish_reason: FinishReason::Stop,
        }],
        usage: Some(Usage {
            input_tokens: 3,
            output_tokens: 4,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        }),
    })
}

fn cache(extra: serde_json::Value) -> Cache {
    let mut cfg = serde_json::json!({"enabled": true});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let cfg: CacheConfig = serde_json::from_value(cfg).unwrap();
    Cache::compile(&cfg, &|r| r == "m" || r == "n", &|k| k.starts_with("key")).unwrap()
}

const A: Who = Who {
    key_id: "key-a",
    team: Some("red"),
};
const B: Who = Who {
    key_id: "key-b",
    team: Some("red"),
};

fn miss(l: Lookup) -> Box<Pending> {
    match l {
        Lookup::Miss(p) => p,
        other => panic!("expected a miss, got {other:?}"),
    }
}

fn hit(l: Lookup) -> Hit {
    match l {
        Lookup::Hit(h) => h,
        other => panic!("expected a hit, got {other:?}"),
    }
}

#[test]
fn the_key_ignores_what_cannot_change_the_answer_and_nothing_else() {
    let base = chat("hi", Some(0.0));
    let h = |r: &Request| key::hash("m", &[], "shared", r).unwrap();
    let mut streamed = base.clone();
    if let Request::Chat(c) = &mut streamed {
        c.stream = true;
        c.stream_include_usage = true;
        c.user = Some("u1".into());
        c.extra_family = Some(crate::ir::Family::Anthropic);
    }
    assert_eq!(h(&base), h(&streamed));
    assert_ne!(h(&base), h(&chat("hi!", Some(0.0))));
    let mut longer = base.clone();
    if let Request::Chat(c) = &mut longer {
        c.max_tokens = Some(10);
    }
    assert_ne!(h(&base), h(&longer));
    assert_ne!(h(&base), key::hash("n", &[], "shared", &base).unwrap());
    assert_ne!(h(&base), key::hash("m", &[], "key:a", &base).unwrap());
    // Re-pointing the route at another model is a fresh cache.
    let target = |model: &str| crate::routing::Target {
        energy: crate::metrics::Energy::DEFAULT,
        provider: "oa".into(),
        model: Some(model.into()),
        cluster: "c".into(),
        weight: 1,
        priority: 0,
        region: None,
        price: None,
    };
    assert_ne!(
        key::hash("m", &[target("gpt-4o")], "shared", &base).unwrap(),
        key::hash("m", &[target("gpt-4.1")], "shared", &base).unwrap()
    );
}

#[test]
fn miss_then_store_then_hit_in_the_same_scope_only() {
    let store = MemStore::new();
    let c = cache(serde_json::json!({}));
    let req = chat("hello", Some(0.0));
    let p = miss(c.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &req));
    assert_eq!(
        c.store(&store, NOW, &p, 200, &answer("hi there")),
        Some(Put::Stored)
    );
    let h = hit(c.lookup(&store, NOW + 5_000, "m", &[], &A, Directive::Normal, &req));
    assert_eq!(h.response, answer("hi there"));
    assert_eq!(h.age_s, 5);
    // Per-key scope: another key of the same team does not see it.
    miss(c.lookup(&store, NOW, "m", &[], &B, Directive::Normal, &req));
    // Team scope: it does; shared: everyone does.
    let team = cache(serde_json::json!({"scope": "team"}));
    let p = miss(team.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &req));
    team.store(&store, NOW, &p, 200, &answer("x"));
    hit(team.lookup(&store, NOW, "m", &[], &B, Directive::Normal, &req));
    let loner = Who {
        key_id: "key-c",
        team: None,
    };
    miss(team.lookup(&store, NOW, "m", &[], &loner, Directive::Normal, &req));
}

#[test]
fn entries_expire_with_the_routes_ttl() {
    let store = MemStore::new();
    let c = cache(serde_json::json!({"ttl_seconds": 60, "routes": {"n": {"ttl_seconds": 2}}}));
    let req = chat("q", Some(0.0));
    for route in ["m", "n"] {
        let p = miss(c.lookup(&store, NOW, route, &[], &A, Directive::Normal, &req));
        c.store(&store, NOW, &p, 200, &answer("a"));
    }
    hit(c.lookup(&store, NOW + 1_999, "n", &[], &A, Directive::Normal, &req));
    miss(c.lookup(&store, NOW + 2_000, "n", &[], &A, Directive::Normal, &req));
    hit(c.lookup(&store, NOW + 59_999, "m", &[], &A, Directive::Normal, &req));
    miss(c.lookup(&store, NOW + 60_000, "m", &[], &A, Directive::Normal, &req));
}

#[test]
fn only_deterministic_successful_answers_are_cached() {
    let store = MemStore::new();
    let c = cache(serde_json::json!({"routes": {"n": {"any_temperature": true}}}));
    for t in [None, Some(0.7)] {
        assert!(matches!(
            c.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &chat("q", t)),
            Lookup::Bypass
        ));
        miss(c.lookup(&store, NOW, "n", &[], &A, Directive::Normal, &chat("q", t)));
    }
    let req = chat("q", Some(0.0));
    let p = miss(c.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &req));
    let err = Response::Error(ErrorInfo::new(500, crate::ir::ErrorKind::Upstream, "boom"));
    assert_eq!(c.store(&store, NOW, &p, 500, &err), None);
    assert_eq!(c.store(&store, NOW, &p, 429, &answer("a")), None);
    // A web search's answer: its items could not be replayed as a stream.
    let mut searched = answer("a");
    if let Response::Chat(c) = &mut searched {
        c.choices[0].message.content.insert(
            0,
            crate::ir::Part::Native {
                origin: crate::ir::Origin::OpenAiResponses,
                item: serde_json::json!({"type": "web_search_call", "id": "ws_1"}),
            },
        );
    }
    assert_eq!(c.store(&store, NOW, &p, 200, &searched), None);
    miss(c.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &req));
    let emb = Request::Embeddings(EmbeddingsRequest {
        model: "m".into(),
        input: vec!["a".into()],
        ..Default::default()
    });
    miss(c.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &emb));
    let no_emb = cache(serde_json::json!({"embeddings": false}));
    assert!(matches!(
        no_emb.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &emb),
        Lookup::Bypass
    ));
    let off = cache(serde_json::json!({"routes": {"n": {"enabled": false}}}));
    assert!(matches!(
        off.lookup(&store, NOW, "n", &[], &A, Directive::Normal, &req),
        Lookup::Off
    ));
    let only_n = cache(serde_json::json!({"enabled": false, "routes": {"n": {"enabled": true}}}));
    assert!(matches!(
        only_n.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &req),
        Lookup::Off
    ));
    miss(only_n.lookup(&store, NOW, "n", &[], &A, Directive::Normal, &req));
    let none = cache(serde_json::json!({"enabled": false}));
    assert!(matches!(
        none.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &req),
        Lookup::Off
    ));
}

#[test]
fn client_directives_and_key_opt_out_are_honoured() {
    let store = MemStore::new();
    let c = cache(serde_json::json!({"bypass_keys": ["key-b"]}));
    let req = chat("q", Some(0.0));
    assert!(matches!(
        c.lookup(&store, NOW, "m", &[], &A, Directive::NoStore, &req),
        Lookup::Bypass
    ));
    assert!(matches!(
        c.lookup(&store, NOW, "m", &[], &B, Directive::Normal, &req),
        Lookup::Bypass
    ));
    let p = miss(c.lookup(&store, NOW, "m", &[], &A, Directive::Normal, &req));
    c.store(&store, NOW, &p, 200, &answer("old"));
    // no-cache skips the lookup but stores the fresh answer over the old one's slot set.
    let p = miss(c.lookup(&store, NOW, "m", &[], &A, Directive::NoCache, &req));
    assert_eq!(
        c.store(&store, NOW, &p, 200, &answer("new")),
        Some(Put::Present)
    );
    let h = |v: &[&str]| {
        let hs: Vec<(String, Vec<u8>)> = v
            .iter()
            .map(|s| {
                let (n, v) = s.split_once(':').unwrap();
                (n.to_string(), v.trim().as_bytes().to_vec())
            })
            .collect();
        Directive::from_headers(&hs)
    };
    assert_eq!(
        h(&["cache-control: max-age=0, No-Cache"]),
        Directive::NoCache
    );
    assert_eq!(h(&["pragma: no-cache"]), Directive::NoCache);
    assert_eq!(
        h(&["cache-control: no-cache", "cache-control: no-store"]),
        Directive::NoStore
    );
    assert_eq!(h(&["cache-control: max-age=10"]), Directive::Normal);
    assert_eq!(h(&["pragma: no-store"]), Directive::Normal);
}

fn entry(n: u8, set_of: impl Fn(&[u8; 32]) -> bool, stored: u64, bytes: usize) -> Entry {
    // Finds a hash in the wanted set by varying the first bytes.
    for i in 0..=u16::MAX {
        let mut hash = [n; 32];
        hash[0..2].copy_from_slice(&i.to_le_bytes());
        if set_of(&hash) {
            return Entry {
                hash,
                expires_ms: stored + 60_000,
                stored_ms: stored,
                scope: "shared".into(),
                payload: vec![b'x'; bytes],
            };
        }
    }
    panic!("no hash found");
}

fn set0(hash: &[u8; 32]) -> bool {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first) % 4 == 0
}

#[test]
fn the_table_never_exceeds_its_key_set_or_byte_bound_and_evicts_the_oldest() {
    let store = MemStore::new();
    let g = Geometry {
        sets: 4,
        ways: 2,
        max_entry_bytes: 1024,
    };
    let t = Table::new(g);
    // Many distinct entries: the key set stays at sets × ways, every value within a slot.
    for i in 0..200u64 {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        let e = Entry {
            hash,
            expires_ms: NOW + 60_000,
            stored_ms: NOW + i,
            scope: "shared".into(),
            payload: vec![b'x'; 500],
        };
        t.put(&store, NOW + i, &e).unwrap();
    }
    assert_eq!(store.len(), 8);
    let mut total = 0;
    for set in 0..4 {
        for way in 0..2 {
            let v = store.get(&Table::slot_key(set, way)).unwrap().0.unwrap();
            assert!(v.len() <= 1024);
            total += v.len();
        }
    }
    assert!(total as u64 <= g.bound_bytes());
    // Oversized entries are refused outright.
    let big = entry(9, set0, NOW, 2000);
    assert_eq!(t.put(&store, NOW, &big).unwrap(), Put::TooLarge);

    // Eviction order inside one set: free, then expired, then oldest stored.
    let store = MemStore::new();
    let e1 = entry(1, set0, NOW, 10);
    let e2 = entry(2, set0, NOW + 1, 10);
    let mut e3 = entry(3, set0, NOW + 2, 10);
    e3.expires_ms = NOW + 120_000;
    assert_eq!(t.put(&store, NOW, &e1).unwrap(), Put::Stored);
    assert_eq!(t.put(&store, NOW, &e2).unwrap(), Put::Stored);
    assert_eq!(t.put(&store, NOW + 2, &e3).unwrap(), Put::Evicted);
    assert!(t
        .get(&store, NOW + 3, &e1.hash, "shared")
        .unwrap()
        .is_none());
    assert!(t
        .get(&store, NOW + 3, &e2.hash, "shared")
        .unwrap()
        .is_some());
    assert!(t
        .get(&store, NOW + 3, &e3.hash, "shared")
        .unwrap()
        .is_some());
    // Once e2 expired, a new entry takes its slot rather than the newer live e3.
    let e4 = entry(4, set0, NOW + 70_000, 10);
    assert_eq!(t.put(&store, NOW + 61_500, &e4).unwrap(), Put::Stored);
    assert!(t
        .get(&store, NOW + 61_500, &e3.hash, "shared")
        .unwrap()
        .is_some());
    // A scope mismatch is never a hit, even on the same hash.
    assert!(t.get(&store, NOW + 3, &e3.hash, "key:x").unwrap().is_none());
}

#[test]
fn a_racing_worker_filling_the_chosen_slot_is_not_overwritten() {
    let store = MemStore::new();
    let t = Table::new(Geometry {
        sets: 4,
        ways: 2,
        max_entry_bytes: 1024,
    });
    let mine = entry(1, set0, NOW, 10);
    let theirs = entry(2, set0, NOW, 10);
    let old = entry(3, set0, NOW - 10, 10);
    // Both ways hold something so the write carries a CAS token.
    t.put(&store, NOW - 10, &old).unwrap();
    t.put(&store, NOW - 10, &entry(5, set0, NOW - 5, 10))
        .unwrap();
    // The other worker overwrites way 0 (the oldest, my victim) between my reads and my write.
    let theirs_c = theirs.clone();
    store.race_once(move |s| {
        let t = Table::new(Geometry {
            sets: 4,
            ways: 2,
            max_entry_bytes: 1024,
        });
        t.put(s, NOW, &theirs_c).unwrap();
    });
    t.put(&store, NOW, &mine).unwrap();
    assert!(t.get(&store, NOW, &mine.hash, "shared").unwrap().is_some());
    assert!(
        t.get(&store, NOW, &theirs.hash, "shared")
            .unwrap()
            .is_some(),
        "the CAS retry must pick another slot, not clobber the racing write"
    );
}

#[test]
fn a_stream_is_collected_into_the_answer_it_replays_as() {
    let full = Response::Chat(ChatResponse {
        id: "id1".into(),
        model: "mm".into(),
        created: 7,
        choices: vec![Choice {
            index: 0,
            message: Message {
                tool_calls: vec![crate::ir::ToolCall {
                    id: "call_1".into(),
                    name: "search".into(),
                    arguments: "{\"q\":\"x\"}".into(),
                }],
                ..Message::text(Role::Assistant, "Looking.")
            },
            finish_reason: FinishReason::ToolCalls,
        }],
        usage: Some(Usage {
            input_tokens: 1,
            output_tokens: 2,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        }),
    });
    let Response::Chat(c) = &full else {
        unreachable!()
    };
    let evs = replay::events(c);
    // Split the text and arguments the way a provider would.
    let mut col = replay::Collector::new(10_000);
    for ev in &evs {
        match ev {
            StreamEvent::TextDelta { choice, text } => {
                for ch in text.chars() {
                    col.event(&StreamEvent::TextDelta {
                        choice: *choice,
                        text: ch.to_string(),
                    });
                }
            }
            other => col.event(other),
        }
    }
    assert_eq!(col.finish(), Some(full.clone()));

    // Cut before Finish, failed, or too large: nothing to store.
    let mut cut = replay::Collector::new(10_000);
    for ev in evs.iter().take(2) {
        cut.event(ev);
    }
    assert_eq!(cut.finish(), None);
    let mut failed = replay::Collector::new(10_000);
    for ev in &evs {
        failed.event(ev);
    }
    failed.event(&StreamEvent::Error(ErrorInfo::new(
        502,
        crate::ir::ErrorKind::Upstream,
        "x",
    )));
    assert_eq!(failed.finish(), None);
    let mut small = replay::Collector::new(4);
    for ev in &evs {
        small.event(ev);
    }
    assert_eq!(small.finish(), None);
}

#[test]
fn a_hit_replays_in_the_clients_protocol_and_stream_form() {
    let h = Hit {
        response: answer("cached words"),
        age_s: 3,
    };
    let mut req = chat("q", Some(0.0));
    let plain = hit_reply(ClientApi::AnthropicMessages, &req, &h, None, Vec::new());
    let v: serde_json::Value = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "cached words");
    assert!(plain
        .headers
        .contains(&(CACHE_HEADER.to_string(), "hit".to_string())));
    assert!(plain
        .headers
        .contains(&("age".to_string(), "3".to_string())));
    if let Request::Chat(c) = &mut req {
        c.stream = true;
    }
    let sse = hit_reply(ClientApi::AnthropicMessages, &req, &h, None, Vec::new());
    let text = String::from_utf8(sse.body).unwrap();
    assert!(text.contains("event: message_start"), "{text}");
    assert!(text.contains("cached words"));
    assert!(text.contains("event: message_stop"));
    let oai = hit_reply(ClientApi::OpenAiChat, &req, &h, None, Vec::new());
    let text = String::from_utf8(oai.body).unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
}

#[test]
fn configuration_errors_name_the_field() {
    let bad = |v: serde_json::Value| {
        let cfg: CacheConfig = serde_json::from_value(v).unwrap();
        Cache::compile(&cfg, &|r| r == "m", &|k| k == "a")
            .err()
            .unwrap()
            .field
    };
    assert_eq!(
        bad(serde_json::json!({"ttl_seconds": 0})),
        "cache.ttl_seconds"
    );
    assert_eq!(
        bad(serde_json::json!({"routes": {"zz": {}}})),
        "cache.routes.zz"
    );
    assert_eq!(
        bad(serde_json::json!({"routes": {"m": {"ttl_seconds": 100000}}})),
        "cache.routes.m.ttl_seconds"
    );
    assert_eq!(
        bad(serde_json::json!({"bypass_keys": ["a", "b"]})),
        "cache.bypass_keys[1]"
    );
    assert_eq!(bad(serde_json::json!({"ways": 0})), "cache.ways");
    assert_eq!(
        bad(serde_json::json!({"max_bytes": 2048, "max_entry_bytes": 1024, "ways": 4})),
        "cache.max_bytes"
    );
    assert_eq!(
        bad(serde_json::json!({"max_entry_bytes": 10})),
        "cache.max_entry_bytes"
    );
    let ok: CacheConfig = serde_json::from_value(
        serde_json::json!({"enabled": true, "max_bytes": 65536, "max_entry_bytes": 4096, "ways": 4}),
    )
    .unwrap();
    let c = Cache::compile(&ok, &|_| true, &|_| true).unwrap();
    let g = c.geometry().unwrap();
    assert_eq!((g.sets, g.ways), (4, 4));
    assert_eq!(g.bound_bytes(), 65536);
}

#[test]
fn a_hit_refunds_tokens_unless_configured_to_charge_them() {
    let h = Hit {
        response: answer("a"),
        age_s: 0,
    };
    assert_eq!(
        cache(serde_json::json!({})).hit_actual(&h, None),
        Actual::default()
    );
    let charged = cache(serde_json::json!({"count_tokens_on_hit": true})).hit_actual(&h, None);
    assert_eq!(charged.tokens, 7);
}
