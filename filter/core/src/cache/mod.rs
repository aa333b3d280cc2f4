//! Response cache for repeated prompts: exact-match answers kept in shared data, so every worker
//! sees them, and served without an upstream call, in whatever protocol the asking client speaks.
//!
//! # Call order (the gateway's)
//!
//! 1. At request headers: [`Directive::from_headers`] reads the client's `Cache-Control`.
//! 2. After authentication, PII scrubbing, routing and limit admission (so a hit still counts
//!    against request limits), [`Cache::lookup`] with the scrubbed IR request:
//!    - [`Lookup::Hit`]: answer with [`hit_reply`]; no upstream call. The limiter ticket is
//!      settled at once by the caller with [`Cache::hit_actual`] (tokens refunded by default).
//!    - [`Lookup::Miss`]: forward; keep the [`Pending`] and feed it the answer as it arrives:
//!      [`Pending::observe`] for each IR stream event, then [`Cache::store_stream`] at a clean
//!      end; or [`Cache::store`] with a complete IR response. Both take the answer *before*
//!      PII restoration.
//!    - [`Lookup::Bypass`]: forward; nothing is stored.
//!
//! # What is cached
//!
//! Successful answers only (never errors, never a stream that failed or was cut), to requests
//! that are deterministic: chat with `temperature: 0` exactly (unset means the provider's
//! default, which is not 0), unless the route says `any_temperature`; embeddings unless
//! `embeddings: false`. The key is a SHA-256 of the route, the reader's scope and the scrubbed
//! request ([`key`]); the stored value is the IR [`Response`], not client bytes, so an answer
//! obtained through an OpenAI client serves an Anthropic or Ollama client, plain or streamed.
//!
//! # PII
//!
//! The key and the stored answer are both in scrubbed form: placeholders (`<EMAIL_1>`) stay in
//! the cached answer, and each hit restores them with its own request's vault. Raw values the
//! scrubber caught therefore never sit in shared data, and two requests whose only difference
//! was scrubbed away share an answer, since the provider would have seen the same text.
//!
//! # Bounds
//!
//! The table is `sets × ways` fixed keys of at most `max_entry_bytes` each ([`table`]), so
//! shared memory is bounded by configuration, never by traffic; an answer larger than a slot is
//! not cached. A store failure is logged and the request proceeds uncached: the cache fails open,
//! since it only saves work.

pub mod key;
pub mod replay;
pub mod table;
#[cfg(test)]
mod tests;

use crate::error::ConfigError;
use crate::ir::{Request, Response, StreamEvent, Usage};
use crate::limits::{Actual, Price};
use crate::pii::Vault;
use crate::wire::ClientApi;
use crate::wire::Reply;
use serde::Deserialize;
use std::collections::BTreeMap;
use table::{Entry, Geometry, Put, Table};

/// Response header naming what the cache did: `hit`, `miss` or `bypass`.
pub const CACHE_HEADER: &str = "x-weir-cache";

/// The `cache` section of the plugin configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Caches every route's deterministic answers. Off by default; `routes` can turn single
    /// routes on or off either way.
    #[serde(default)]
    pub enabled: bool,
    /// How long an answer is served from the cache.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// Who shares entries: `key` (each client key its own), `team` (keys of one
    /// `auth.keys[].team`; a key without a team is its own), or `shared` (everyone).
    #[serde(default)]
    pub scope: ScopeKind,
    /// Hard bound on the shared memory the cache's values may ever occupy, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Largest stored entry (the IR answer plus about 60 bytes); larger answers are not cached.
    #[serde(default = "default_max_entry_bytes")]
    pub max_entry_bytes: u64,
    /// Slots per set: an entry can go in any of its set's `ways` slots.
    #[serde(default = "default_ways")]
    pub ways: u32,
    /// Caches chat answers whatever their temperature (default: only `temperature: 0`).
    #[serde(default)]
    pub any_temperature: bool,
    /// Caches embeddings (deterministic) too.
    #[serde(default = "yes")]
    pub embeddings: bool,
    /// Charges a hit's recorded token usage (and cost) to token limits and budgets. Off: a hit
    /// counts only against request limits.
    #[serde(default)]
    pub count_tokens_on_hit: bool,
    /// Per-route overrides, by configured model route name.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteCacheConfig>,
    /// Client key ids whose requests never use the cache (neither read nor stored).
    #[serde(default)]
    pub bypass_keys: Vec<String>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            ttl_seconds: default_ttl(),
            scope: ScopeKind::default(),
            max_bytes: default_max_bytes(),
            max_entry_bytes: default_max_entry_bytes(),
            ways: default_ways(),
            any_temperature: false,
            embeddings: true,
            count_tokens_on_hit: false,
            routes: BTreeMap::new(),
            bypass_keys: Vec::new(),
        }
    }
}

/// One route's overrides; absent fields take the section's value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCacheConfig {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    #[serde(default)]
    pub any_temperature: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    #[default]
    Key,
    Team,
    Shared,
}

fn default_ttl() -> u64 {
    300
}
fn default_max_bytes() -> u64 {
    16 << 20
}
fn default_max_entry_bytes() -> u64 {
    64 << 10
}
fn default_ways() -> u32 {
    4
}
fn yes() -> bool {
    true
}

/// A day: an exact-match answer older than that is more likely stale than useful.
const MAX_TTL_SECONDS: u64 = 86_400;
/// The slot table's key count is bounded by this too, whatever the byte figures say.
const MAX_SLOTS: u64 = 1 << 20;
const MAX_WAYS: u32 = 64;
/// Room for the header and scope: an entry smaller than this cannot hold an answer.
const MIN_ENTRY_BYTES: u64 = 1024;
/// Envoy's shared data holds values in host memory; a single value above this is unreasonable.
const MAX_ENTRY_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Copy)]
struct Policy {
    enabled: bool,
    ttl_ms: u64,
    any_temperature: bool,
}

/// The compiled `cache` section.
pub struct Cache {
    table: Option<Table>,
    default: Policy,
    routes: BTreeMap<String, Policy>,
    scope: ScopeKind,
    embeddings: bool,
    count_tokens_on_hit: bool,
    bypass_keys: Vec<String>,
}

impl Cache {
    /// `route_exists` and `key_exists` check names against the compiled router and key ring.
    pub fn compile(
        cfg: &CacheConfig,
        route_exists: &dyn Fn(&str) -> bool,
        key_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Cache, ConfigError> {
        let ttl = |v: u64, field: &str| {
            if v == 0 || v > MAX_TTL_SECONDS {
                Err(ConfigError::new(
                    field,
                    format!("must be between 1 and {MAX_TTL_SECONDS}"),
                ))
            } else {
                Ok(v * 1000)
            }
        };
        let default = Policy {
            enabled: cfg.enabled,
            ttl_ms: ttl(cfg.ttl_seconds, "cache.ttl_seconds")?,
            any_temperature: cfg.any_temperature,
        };
        let mut routes = BTreeMap::new();
        for (name, r) in &cfg.routes {
            let field = format!("cache.routes.{name}");
            if !route_exists(name) {
                return Err(ConfigError::new(field, "no model route has this name"));
            }
            let ttl_ms = match r.ttl_seconds {
                Some(v) => ttl(v, &format!("{field}.ttl_seconds"))?,
                None => default.ttl_ms,
            };
            routes.insert(
                name.clone(),
                Policy {
                    enabled: r.enabled.unwrap_or(default.enabled),
                    ttl_ms,
                    any_temperature: r.any_temperature.unwrap_or(default.any_temperature),
                },
            );
        }
        for (i, id) in cfg.bypass_keys.iter().enumerate() {
            if !key_exists(id) {
                return Err(ConfigError::new(
                    format!("cache.bypass_keys[{i}]"),
                    "no client key has this id",
                ));
            }
        }
        if cfg.ways == 0 || cfg.ways > MAX_WAYS {
            return Err(ConfigError::new(
                "cache.ways",
                format!("must be between 1 and {MAX_WAYS}"),
            ));
        }
        if !(MIN_ENTRY_BYTES..=MAX_ENTRY_BYTES).contains(&cfg.max_entry_bytes) {
            return Err(ConfigError::new(
                "cache.max_entry_bytes",
                format!("must be between {MIN_ENTRY_BYTES} and {MAX_ENTRY_BYTES}"),
            ));
        }
        let slots = cfg.max_bytes / cfg.max_entry_bytes;
        let sets = slots / u64::from(cfg.ways);
        if sets == 0 {
            return Err(ConfigError::new(
                "cache.max_bytes",
                "must hold at least one set: ways × max_entry_bytes",
            ));
        }
        if slots > MAX_SLOTS {
            return Err(ConfigError::new(
                "cache.max_bytes",
                format!("makes more than {MAX_SLOTS} slots; raise max_entry_bytes"),
            ));
        }
        let used = default.enabled || routes.values().any(|p| p.enabled);
        let table = used.then(|| {
            Table::new(Geometry {
                sets: u32::try_from(sets).unwrap_or(u32::MAX),
                ways: cfg.ways,
                max_entry_bytes: usize::try_from(cfg.max_entry_bytes).unwrap_or(usize::MAX),
            })
        });
        Ok(Cache {
            table,
            default,
            routes,
            scope: cfg.scope,
            embeddings: cfg.embeddings,
            count_tokens_on_hit: cfg.count_tokens_on_hit,
            bypass_keys: cfg.bypass_keys.clone(),
        })
    }

    /// The slot table's geometry, when any route uses the cache.
    pub fn geometry(&self) -> Option<Geometry> {
        self.table.as_ref().map(|t| t.geometry)
    }

    fn policy(&self, route: &str) -> Policy {
        self.routes.get(route).copied().unwrap_or(self.default)
    }

    /// Whether `req` on `route` may use the cache at all, before looking at the client's wishes.
    fn cacheable(&self, route: &str, req: &Request) -> Option<Policy> {
        let p = self.policy(route);
        if !p.enabled || self.table.is_none() {
            return None;
        }
        let ok = match req {
            Request::Chat(c) => p.any_temperature || c.temperature == Some(0.0),
            Request::Embeddings(_) => self.embeddings,
            // Counting is free and instant where it is not estimated: nothing to save.
            Request::CountTokens(_) => false,
        };
        ok.then_some(p)
    }

    fn scope_of(&self, who: &Who) -> String {
        match (self.scope, who.team) {
            (ScopeKind::Shared, _) => "shared".to_string(),
            (ScopeKind::Team, Some(team)) => format!("team:{team}"),
            _ => format!("key:{}", who.key_id),
        }
    }

    /// Looks `req` (scrubbed IR) up for the client `who` on the configured route `route`,
    /// whose targets are `targets`.
    #[allow(clippy::too_many_arguments)]
    pub fn lookup(
        &self,
        store: &dyn crate::store::SharedStore,
        now_ms: u64,
        route: &str,
        targets: &[crate::routing::Target],
        who: &Who,
        directive: Directive,
        req: &Request,
    ) -> Lookup {
        let Some(table) = &self.table else {
            return Lookup::Off;
        };
        // A route that does not cache says nothing about the cache (no header, no metric).
        if !self.policy(route).enabled {
            return Lookup::Off;
        }
        let Some(policy) = self.cacheable(route, req) else {
            return Lookup::Bypass;
        };
        if directive == Directive::NoStore || self.bypass_keys.iter().any(|k| k == who.key_id) {
            return Lookup::Bypass;
        }
        let scope = self.scope_of(who);
        let Some(hash) = key::hash(route, targets, &scope, req) else {
            return Lookup::Bypass;
        };
        if directive == Directive::Normal {
            match table.get(store, now_ms, &hash, &scope) {
                Ok(Some((payload, stored_ms))) => {
                    if let Ok(response) = serde_json::from_slice::<Response>(&payload) {
                        if response_fits(req, &response) {
                            return Lookup::Hit(Hit {
                                response,
                                age_s: now_ms.saturating_sub(stored_ms) / 1000,
                            });
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => log::warn!("weir cache: lookup failed ({e:?}); answering uncached"),
            }
        }
        let collector = req
            .is_stream()
            .then(|| replay::Collector::new(table.geometry.max_entry_bytes));
        Lookup::Miss(Box::new(Pending {
            hash,
            scope,
            ttl_ms: policy.ttl_ms,
            collector,
        }))
    }

    /// Stores a complete answer (before PII restoration) for a missed lookup; `status` is the
    /// HTTP status it came with. Errors and non-2xx answers are never stored.
    pub fn store(
        &self,
        store: &dyn crate::store::SharedStore,
        now_ms: u64,
        pending: &Pending,
        status: u16,
        resp: &Response,
    ) -> Option<Put> {
        let table = self.table.as_ref()?;
        if !(200..300).contains(&status) || matches!(resp, Response::Error(_)) {
            return None;
        }
        // Built-in tools' items (a web search and its citations) cannot be replayed as the
        // stream they came in, and go stale: such an answer is not cached, as such a stream is not.
        if let Response::Chat(c) = resp {
            let native = |m: &crate::ir::Message| {
                m.content
                    .iter()
                    .any(|p| matches!(p, crate::ir::Part::Native { .. }))
            };
            if c.choices.iter().any(|ch| native(&ch.message)) {
                return None;
            }
        }
        let payload = serde_json::to_vec(resp).ok()?;
        let entry = Entry {
            hash: pending.hash,
            expires_ms: now_ms.saturating_add(pending.ttl_ms),
            stored_ms: now_ms,
            scope: pending.scope.clone(),
            payload,
        };
        match table.put(store, now_ms, &entry) {
            Ok(put) => Some(put),
            Err(e) => {
                log::warn!("weir cache: store failed ({e:?}); the answer is not cached");
                None
            }
        }
    }

    /// Stores the answer a streamed miss collected, if the stream ended whole.
    pub fn store_stream(
        &self,
        store: &dyn crate::store::SharedStore,
        now_ms: u64,
        pending: &mut Pending,
    ) -> Option<Put> {
        let resp = pending.collector.take()?.finish()?;
        self.store(store, now_ms, pending, 200, &resp)
    }

    /// What a hit consumed, for settling its limiter ticket: nothing (the reserved tokens are
    /// refunded; the request itself stays counted), or the recorded usage when
    /// `count_tokens_on_hit`.
    pub fn hit_actual(&self, hit: &Hit, price: Option<&Price>) -> Actual {
        match (self.count_tokens_on_hit, hit.usage()) {
            (true, Some(u)) => Actual::from_usage(&u, price),
            _ => Actual::default(),
        }
    }
}

/// A cached answer must be the kind the request asks for (a chat answer for chat).
fn response_fits(req: &Request, resp: &Response) -> bool {
    matches!(
        (req, resp),
        (Request::Chat(_), Response::Chat(_)) | (Request::Embeddings(_), Response::Embeddings(_))
    )
}

/// The reader of an entry, for scoping.
pub struct Who<'a> {
    pub key_id: &'a str,
    pub team: Option<&'a str>,
}

/// The client's `Cache-Control` request directives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Directive {
    #[default]
    Normal,
    /// `no-cache`: do not answer from the cache, but store the fresh answer.
    NoCache,
    /// `no-store`: neither read nor store.
    NoStore,
}

impl Directive {
    /// From every `cache-control` (and `pragma: no-cache`) header value, case-insensitively;
    /// `no-store` wins over `no-cache`.
    pub fn from_headers(headers: &[(String, Vec<u8>)]) -> Directive {
        let mut d = Directive::Normal;
        for (name, value) in headers {
            if name != "cache-control" && name != "pragma" {
                continue;
            }
            for token in value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                let token = token
                    .split(|b| *b == b'=')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii();
                if token.eq_ignore_ascii_case(b"no-store") && name == "cache-control" {
                    d = Directive::NoStore;
                } else if token.eq_ignore_ascii_case(b"no-cache") && d == Directive::Normal {
                    d = Directive::NoCache;
                }
            }
        }
        d
    }
}

/// A found answer.
#[derive(Debug, Clone)]
pub struct Hit {
    /// PII in placeholder form: restore with the asking request's vault.
    pub response: Response,
    /// Seconds since it was stored (the `age` header).
    pub age_s: u64,
}

impl Hit {
    pub fn usage(&self) -> Option<Usage> {
        match &self.response {
            Response::Chat(c) => c.usage,
            Response::Embeddings(e) => e.usage,
            Response::TokenCount(_) | Response::Error(_) => None,
        }
    }
}

/// What the lookup decided.
#[derive(Debug)]
pub enum Lookup {
    /// This route does not cache: no header, nothing to do.
    Off,
    /// This request does not use the cache.
    Bypass,
    Hit(Hit),
    Miss(Box<Pending>),
}

impl Lookup {
    /// The `x-weir-cache` value.
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Lookup::Off => None,
            Lookup::Bypass => Some("bypass"),
            Lookup::Hit(_) => Some("hit"),
            Lookup::Miss(_) => Some("miss"),
        }
    }
}

/// A missed lookup waiting for the answer to store.
#[derive(Debug)]
pub struct Pending {
    hash: [u8; 32],
    scope: String,
    ttl_ms: u64,
    collector: Option<replay::Collector>,
}

impl Pending {
    /// Feeds one IR stream event (before PII restoration) of a streamed answer.
    pub fn observe(&mut self, ev: &StreamEvent) {
        if let Some(c) = &mut self.collector {
            c.event(ev);
        }
    }
}

/// The complete answer to a hit in the client's protocol: a JSON body, or for a streaming
/// request the answer replayed as the client's stream. PII placeholders are restored with the
/// asking request's `vault`.
pub fn hit_reply(
    api: ClientApi,
    req: &Request,
    hit: &Hit,
    vault: Option<&Vault>,
    extra_headers: Vec<(String, String)>,
) -> Reply {
    let mut resp = hit.response.clone();
    if let Some(v) = vault {
        v.restore_response(&mut resp);
    }
    let mut headers = Vec::new();
    let body = match (req, &resp) {
        (Request::Chat(chat), Response::Chat(answer)) if chat.stream => {
            // The answer is already whole in memory, within the cache's entry bound.
            let mut enc = api.stream_encoder(chat, usize::MAX);
            let mut out = Vec::new();
            for ev in replay::events(answer) {
                enc.event(&ev, &mut out);
            }
            enc.end(&mut out);
            headers.push(("content-type".into(), api.stream_content_type().into()));
            headers.push(("cache-control".into(), "no-cache".into()));
            out
        }
        _ => {
            headers.push(("content-type".into(), "application/json".into()));
            api.encode_response(req, &resp)
        }
    };
    headers.push((CACHE_HEADER.into(), "hit".into()));
    headers.push(("age".into(), hit.age_s.to_string()));
    headers.extend(extra_headers);
    Reply {
        status: 200,
        headers,
        body,
    }
}
