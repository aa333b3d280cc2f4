//! Prefix affinity: a stable hash of a chat's leading messages (system prompt and first turns),
//! so requests sharing that prefix reach the same replica and reuse its KV cache.
//!
//! The hash goes out as the `x-weir-affinity` request header; Envoy's ring-hash or Maglev load
//! balancer hashes it (route `hash_policy: header`), which keeps the mapping stable while
//! replicas come and go. The `prefix_affinity` strategy also uses it to choose among a route's
//! targets by rendezvous hashing. Invariants: only the first `messages` non-system turns and at
//! most `max_bytes` of serialised prefix are hashed (bounded work); no text leaves in clear.

use crate::ir::{Message, Request, Role};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Request header carrying the prefix hash (stripped by the provider role like every `x-weir-`).
pub const AFFINITY_HEADER: &str = "x-weir-affinity";

/// Which part of a chat forms the prefix (`models[].affinity`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffinityConfig {
    /// Non-system messages after the system prompt that belong to the prefix.
    #[serde(default = "default_messages")]
    pub messages: u32,
    /// At most this many bytes of the serialised prefix are hashed.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

fn default_messages() -> u32 {
    1
}
fn default_max_bytes() -> usize {
    64 * 1024
}

impl Default for AffinityConfig {
    fn default() -> Self {
        AffinityConfig {
            messages: default_messages(),
            max_bytes: default_max_bytes(),
        }
    }
}

impl AffinityConfig {
    pub fn validate(&self, field: &str) -> Result<(), crate::error::ConfigError> {
        use crate::error::ConfigError;
        if self.messages > 64 {
            return Err(ConfigError::new(
                format!("{field}.messages"),
                "must be 0 to 64",
            ));
        }
        if !(64..=1 << 20).contains(&self.max_bytes) {
            return Err(ConfigError::new(
                format!("{field}.max_bytes"),
                "must be 64 to 1048576",
            ));
        }
        Ok(())
    }
}

/// The prefix hash of `request` (32 hex characters, 128 bits of SHA-256), or `None` when it has
/// no prefix to share (embeddings, an empty chat).
pub fn prefix_hash(request: &Request, cfg: &AffinityConfig) -> Option<String> {
    let Request::Chat(chat) = request else {
        return None;
    };
    let is_system = |m: &&Message| matches!(m.role, Role::System | Role::Developer);
    let system = chat.messages.iter().take_while(is_system);
    let turns = chat
        .messages
        .iter()
        .skip_while(is_system)
        .take(usize::try_from(cfg.messages).unwrap_or(usize::MAX));
    let mut hasher = Sha256::new();
    let mut budget = cfg.max_bytes;
    let mut any = false;
    for m in system.chain(turns) {
        let bytes = serde_json::to_vec(m).unwrap_or_default();
        let take = bytes.len().min(budget);
        hasher.update(bytes.get(..take).unwrap_or_default());
        // A separator no JSON contains, so message boundaries are part of the hash.
        hasher.update([0u8]);
        budget -= take;
        any = true;
        if budget == 0 {
            break;
        }
    }
    if !any {
        return None;
    }
    // The model is part of the prefix: the same prompt on another model shares no cache.
    hasher.update(chat.model.as_bytes());
    let digest = hasher.finalize();
    Some(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// Rendezvous (highest random weight) choice: the candidate with the highest hash of
/// (`key`, its index). Removing a candidate moves only the keys that were on it.
pub fn rendezvous(key: &str, candidates: &[usize]) -> Option<usize> {
    candidates.iter().copied().max_by_key(|i| {
        let d = Sha256::new()
            .chain_update(key.as_bytes())
            .chain_update((*i as u64).to_le_bytes())
            .finalize();
        d.get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(model: &str, msgs: &[(&str, &str)]) -> Request {
        let body = serde_json::json!({
            "model": model,
            "messages": msgs.iter().map(|(r, c)| serde_json::json!({"role": r, "content": c})).collect::<Vec<_>>(),
        });
        crate::wire::ClientApi::OpenAiChat
            .decode_request(body.to_string().as_bytes())
            .unwrap()
    }

    #[test]
    fn shared_prefix_same_hash_different_tail_ignored() {
        let cfg = AffinityConfig::default();
        let a = chat(
            "m",
            &[
                ("system", "You are terse."),
                ("user", "Q1"),
                ("assistant", "A1"),
                ("user", "x"),
            ],
        );
        let b = chat(
            "m",
            &[
                ("system", "You are terse."),
                ("user", "Q1"),
                ("assistant", "other"),
            ],
        );
        let c = chat("m", &[("system", "You are verbose."), ("user", "Q1")]);
        let ha = prefix_hash(&a, &cfg).unwrap();
        assert_eq!(ha.len(), 32);
        assert_eq!(Some(&ha), prefix_hash(&b, &cfg).as_ref());
        assert_ne!(Some(&ha), prefix_hash(&c, &cfg).as_ref());
        // With two turns in the prefix, the differing assistant turn matters.
        let two = AffinityConfig { messages: 2, ..cfg };
        assert_ne!(prefix_hash(&a, &two), prefix_hash(&b, &two));
        // Another model: another cache.
        let d = chat("n", &[("system", "You are terse."), ("user", "Q1")]);
        assert_ne!(Some(ha), prefix_hash(&d, &cfg));
    }

    #[test]
    fn hashing_is_bounded() {
        let long = "x".repeat(200_000);
        let cfg = AffinityConfig {
            messages: 1,
            max_bytes: 64,
        };
        let a = chat("m", &[("system", &long), ("user", "a")]);
        let b = chat("m", &[("system", &long), ("user", "b")]);
        // Only the first 64 bytes count: both share them.
        assert_eq!(prefix_hash(&a, &cfg), prefix_hash(&b, &cfg));
    }

    #[test]
    fn rendezvous_moves_only_the_removed_candidates_keys() {
        let all = [0, 1, 2];
        let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let before: Vec<usize> = keys.iter().map(|k| rendezvous(k, &all).unwrap()).collect();
        for n in 0..3 {
            let share = before.iter().filter(|&&c| c == n).count();
            assert!(share > 60, "candidate {n} got {share} of 300");
        }
        let after: Vec<usize> = keys
            .iter()
            .map(|k| rendezvous(k, &[0, 2]).unwrap())
            .collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != 1 {
                assert_eq!(a, b);
            }
        }
        assert_eq!(rendezvous("k", &[]), None);
    }
}
