//! Provider key rotation: which of a provider's keys the next attempt uses, and which keys are
//! cooling down after a 429 (for `Retry-After`) or are benched after a 401/403.
//!
//! State lives in one shared-data value per provider (`weir:pk:<provider>`, a bounded key set:
//! provider names come from the config), updated with CAS so all worker VMs rotate together:
//! 8 bytes of rotation counter, then 8 bytes of "unusable until" (Unix ms) per key, in config
//! order. A store failure degrades to a local choice: a request must not fail because
//! bookkeeping did.

use crate::providers::{Provider, ProviderKey};
use crate::store::{self, SharedStore};

/// How long a key that the provider rejected (401/403) is benched.
pub const REJECTED_KEY_BENCH_MS: u64 = 300_000;
/// Cooldown after a 429 that carried no `Retry-After`.
pub const DEFAULT_COOLDOWN_MS: u64 = 10_000;

fn state_key(provider: &Provider) -> String {
    format!("weir:pk:{}", provider.name)
}

fn decode(bytes: Option<&[u8]>, keys: usize) -> (u64, Vec<u64>) {
    let mut words = bytes
        .unwrap_or_default()
        .chunks_exact(8)
        .map(|c| <[u8; 8]>::try_from(c).map(u64::from_le_bytes).unwrap_or(0));
    let counter = words.next().unwrap_or(0);
    let mut until: Vec<u64> = words.take(keys).collect();
    until.resize(keys, 0);
    (counter, until)
}

fn encode(counter: u64, until: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * (until.len() + 1));
    out.extend_from_slice(&counter.to_le_bytes());
    for u in until {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

/// The key for the next attempt: round-robin over keys not cooling down; if all are, the one
/// that recovers first (better a likely 429 than no attempt). `None` only for a provider with
/// no loaded keys.
pub fn pick<'p>(
    provider: &'p Provider,
    store: &dyn SharedStore,
    now_ms: u64,
    random: u64,
) -> Option<&'p ProviderKey> {
    let n = provider.keys.len();
    if n <= 1 {
        return provider.keys.first();
    }
    let chosen = store::update(store, &state_key(provider), |cur| {
        let (counter, until) = decode(cur, n);
        let start = usize::try_from(counter % n as u64).unwrap_or(0);
        let ready = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| until.get(i).is_some_and(|&u| u <= now_ms));
        let index = ready.unwrap_or_else(|| {
            (0..n)
                .min_by_key(|&i| until.get(i).copied().unwrap_or(0))
                .unwrap_or(0)
        });
        let next = (index as u64).wrapping_add(1);
        (Some(encode(next, &until)), index)
    })
    .unwrap_or_else(|_| usize::try_from(random % n as u64).unwrap_or(0));
    provider.keys.get(chosen)
}

/// Marks `key_id` unusable until `until_ms`.
pub fn cool_down(provider: &Provider, key_id: &str, store: &dyn SharedStore, until_ms: u64) {
    let n = provider.keys.len();
    let Some(index) = provider.keys.iter().position(|k| k.id == key_id) else {
        return;
    };
    if n <= 1 {
        return;
    }
    let result = store::update(store, &state_key(provider), |cur| {
        let (counter, mut until) = decode(cur, n);
        match until.get_mut(index) {
            Some(u) if *u < until_ms => {
                *u = until_ms;
                (Some(encode(counter, &until)), ())
            }
            _ => (None, ()),
        }
    });
    if result.is_err() {
        log::warn!(
            "provider '{}': could not record cooldown of key '{key_id}'",
            provider.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Providers;
    use crate::store::MemStore;
    use std::collections::BTreeMap;

    fn provider() -> Provider {
        let raw: BTreeMap<String, crate::providers::config::ProviderConfig> = serde_json::from_str(
            r#"{"p": {"type": "openai", "keys": [{"id": "a", "key": "1"}, {"id": "b", "key": "2"}, {"id": "c", "key": "3"}]}}"#,
        )
        .unwrap();
        Providers::compile(&raw, &|_| None, &mut Vec::new())
            .unwrap()
            .get("p")
            .unwrap()
            .clone()
    }

    #[test]
    fn rotates_skips_cooling_keys_and_takes_them_back_after_the_cooldown() {
        let p = provider();
        let store = MemStore::new();
        let ids = |now| {
            (0..6)
                .map(|_| pick(&p, &store, now, 0).unwrap().id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(0), ["a", "b", "c", "a", "b", "c"]);
        cool_down(&p, "b", &store, 1_000);
        assert!(!ids(500).contains(&"b".to_string()));
        assert!(ids(1_000).contains(&"b".to_string()));
    }

    #[test]
    fn when_every_key_cools_the_first_to_recover_is_used() {
        let p = provider();
        let store = MemStore::new();
        cool_down(&p, "a", &store, 300);
        cool_down(&p, "b", &store, 100);
        cool_down(&p, "c", &store, 200);
        assert_eq!(pick(&p, &store, 0, 0).unwrap().id, "b");
    }
}
