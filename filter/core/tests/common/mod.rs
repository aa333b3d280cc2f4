//! Host inputs shared by the sans-IO integration tests (pipeline, cache, global descriptors):
//! a parsed config, the host's `Env` at a fixed time, and header lists in the host's shapes.
#![allow(dead_code, clippy::unwrap_used)]

use std::rc::Rc;
use weir_core::config::Config;
use weir_core::roles::{Endpoint, Env, NoEndpoint};
use weir_core::store::MemStore;

pub const NOW_MS: u64 = 1_790_000_000_000;

/// A configuration the test knows to be valid.
pub fn parse_config(cfg: &serde_json::Value) -> Rc<Config> {
    let (cfg, _) = Config::parse(cfg.to_string().as_bytes(), &|_| None).unwrap();
    Rc::new(cfg)
}

/// The host's inputs at the tests' fixed time.
pub fn env(store: &MemStore, random: u64) -> Env<'_> {
    Env {
        clock: &NOW_MS,
        store,
        random,
        endpoint: &NoEndpoint,
    }
}

/// An upstream endpoint whose metadata names a provider (or nothing).
pub struct At<'a>(pub Option<&'a str>);

impl Endpoint for At<'_> {
    fn provider(&self) -> Option<String> {
        self.0.map(str::to_string)
    }
}

/// The host's inputs of an upstream attempt whose endpoint is `at`.
pub fn env_at<'a>(store: &'a MemStore, random: u64, at: &'a At<'a>) -> Env<'a> {
    Env {
        endpoint: at,
        ..env(store, random)
    }
}

/// Header pairs as the host hands them in (raw byte values).
pub fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// A header weir set, by name.
pub fn set_of<'a>(set: &'a [(String, String)], name: &str) -> Option<&'a str> {
    set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}
