//! Routing: which configured model a client's model name means, and which target (provider +
//! provider model id + Envoy cluster) serves this request. Envoy does the rest: the chosen
//! cluster's endpoints, priorities, outlier detection and retries.
//!
//! Invariants: routes are matched in configuration order, first match wins (exact names and
//! `*` globs); a route's targets all name configured providers. Per-request state lives in
//! shared data under keys built from the route's configured name (and target index), so every
//! worker VM shares one rotation and one health record and the key set is bounded by the config.
//!
//! Call order: [`Route::choose`] once per request (strategy + breaker admission, in-flight + 1),
//! then [`Route::finish`] exactly once with how the request ended (see [`health`]).

pub mod affinity;
pub mod health;
mod strategy;

pub use strategy::{Choice, Finished, Ticket, Unavailable};

use crate::error::ConfigError;
use crate::limits::Price;
use crate::providers::Providers;
use serde::Deserialize;

/// One client-facing model (or glob of models) and its targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients send as `model`; `*` matches any run of characters (`gpt-4o*`).
    pub name: String,
    /// How to choose among `targets` (see [`Strategy`]); default `priority`.
    #[serde(default)]
    pub strategy: Strategy,
    pub targets: Vec<TargetConfig>,
    /// A circuit breaker per target; absent: targets are never refused.
    #[serde(default)]
    pub breaker: Option<health::BreakerConfig>,
    /// Sends the prefix hash in `x-weir-affinity` (for an Envoy ring-hash/Maglev hash policy).
    /// Implied, with defaults, by the `prefix_affinity` strategy.
    #[serde(default)]
    pub affinity: Option<affinity::AffinityConfig>,
    /// Targets in this region come before others of the same priority.
    #[serde(default)]
    pub prefer_region: Option<String>,
    /// What happens to a request field a target cannot express (`refuse` or `drop`); default:
    /// the global `unsupported`.
    #[serde(default)]
    pub unsupported: Option<crate::wire::drop::Policy>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The available target of the lowest `priority` (then region, then config order); later
    /// ones take over when its breaker opens.
    #[default]
    Priority,
    /// Rotation over the available targets, shared by every worker.
    RoundRobin,
    /// Deterministic rotation in proportion to `weight`, interleaved.
    WeightedRoundRobin,
    /// Random in proportion to `weight`.
    Weighted,
    Random,
    /// The target with the fewest requests in flight (all workers), ties rotate.
    LeastInFlight,
    /// The target with the lowest latency EWMA; a target without samples is tried first.
    LowestLatency,
    /// The available target with the lowest price (input + output per million tokens).
    Cheapest,
    /// Rendezvous hash of the prompt prefix over the available targets.
    PrefixAffinity,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// A key of `providers`.
    pub provider: String,
    /// The provider's model id (Azure: the deployment name). Defaults to the client's model.
    #[serde(default)]
    pub model: Option<String>,
    /// The Envoy cluster weir routes to (via the `x-weir-cluster` header). Defaults to the
    /// provider's name.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Relative weight for `weighted` and `weighted_round_robin` (default 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Lower is preferred by `priority` (and breaks ties elsewhere); default 0, then config order.
    #[serde(default)]
    pub priority: u32,
    /// Where the target runs (`eu-west`), matched against the route's `prefer_region`.
    #[serde(default)]
    pub region: Option<String>,
    /// USD per million tokens, for budgets and cost metrics.
    #[serde(default)]
    pub price: Option<Price>,
    /// Energy per token of this model, for the carbon estimate (defaults in
    /// [`crate::metrics::Energy`]).
    #[serde(default)]
    pub energy: Option<crate::metrics::Energy>,
}

fn one() -> u32 {
    1
}

/// Response header (with `debug_headers`): the shared health record of the chosen target.
pub const HEALTH_HEADER: &str = "x-weir-health";

/// The refusal when every target's breaker is open: 503 with `Retry-After`, no upstream call.
pub fn unavailable(model: &str, retry_after_s: u64) -> crate::ir::ErrorInfo {
    let mut e = crate::ir::ErrorInfo::new(
        503,
        crate::ir::ErrorKind::Unavailable,
        format!("every provider of model '{model}' is failing; retry in {retry_after_s} s"),
    );
    e.retry_after = Some(u32::try_from(retry_after_s).unwrap_or(u32::MAX));
    e
}

/// Targets per route: bounds the health keys and the work of one choice.
pub const MAX_TARGETS: usize = 64;

#[derive(Debug, Clone)]
pub struct Target {
    pub energy: crate::metrics::Energy,
    pub provider: String,
    pub model: Option<String>,
    pub cluster: String,
    pub weight: u32,
    pub priority: u32,
    pub region: Option<String>,
    pub price: Option<Price>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub strategy: Strategy,
    pub targets: Vec<Target>,
    pub breaker: Option<health::BreakerConfig>,
    pub affinity: Option<affinity::AffinityConfig>,
    pub prefer_region: Option<String>,
    /// This route's `unsupported` setting, when it has one.
    pub unsupported: Option<crate::wire::drop::Policy>,
    /// Shared-data health key of each target, in target order.
    health_keys: Vec<String>,
}

impl Route {
    /// Whether `model` is this route's name or matches its glob.
    pub fn matches(&self, model: &str) -> bool {
        glob_match(&self.name, model)
    }

    pub fn is_glob(&self) -> bool {
        self.name.contains('*')
    }

    /// The target of this route served by `provider` (the provider role learns the provider
    /// from the endpoint Envoy picked, which may be a failover endpoint).
    pub fn target_for_provider(&self, provider: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.provider == provider)
    }

    /// The only target of this route in `cluster`, when endpoints carry no provider metadata.
    pub fn sole_target_in_cluster(&self, cluster: &str) -> Option<&Target> {
        let mut it = self.targets.iter().filter(|t| t.cluster == cluster);
        match (it.next(), it.next()) {
            (Some(t), None) => Some(t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Clusters that targets of more than one provider name (cross-provider failover inside a
    /// cluster): only there must an attempt ask the endpoint which provider it is.
    shared_clusters: Vec<String>,
}

impl Router {
    pub fn compile(models: &[ModelConfig], providers: &Providers) -> Result<Router, ConfigError> {
        let mut routes: Vec<Route> = Vec::new();
        for (i, m) in models.iter().enumerate() {
            let field = format!("models[{i}]");
            if m.name.is_empty() || m.name.len() > 256 {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    "must be 1 to 256 bytes",
                ));
            }
            if routes.iter().any(|r| r.name == m.name) {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    "duplicate model name",
                ));
            }
            if m.targets.is_empty() {
                return Err(ConfigError::new(
                    format!("{field}.targets"),
                    "needs at least one target",
                ));
            }
            let mut targets = Vec::new();
            for (j, t) in m.targets.iter().enumerate() {
                let tfield = format!("{field}.targets[{j}]");
                if providers.get(&t.provider).is_none() {
                    return Err(ConfigError::new(
                        format!("{tfield}.provider"),
                        format!("no provider named '{}'", t.provider),
                    ));
                }
                if t.weight == 0
                    && matches!(
                        m.strategy,
                        Strategy::Weighted | Strategy::WeightedRoundRobin
                    )
                {
                    return Err(ConfigError::new(
                        format!("{tfield}.weight"),
                        "must be at least 1",
                    ));
                }
                targets.push(Target {
                    provider: t.provider.clone(),
                    model: t.model.clone(),
                    cluster: t.cluster.clone().unwrap_or_else(|| t.provider.clone()),
                    weight: t.weight,
                    priority: t.priority,
                    region: t.region.clone(),
                    price: t.price,
                    energy: t.energy.unwrap_or_default(),
                });
            }
            if targets.len() > MAX_TARGETS {
                return Err(ConfigError::new(
                    format!("{field}.targets"),
                    format!("at most {MAX_TARGETS} targets"),
                ));
            }
            if let Some(b) = &m.breaker {
                b.validate(&format!("{field}.breaker"))?;
            }
            if let Some(a) = &m.affinity {
                a.validate(&format!("{field}.affinity"))?;
            }
            let affinity = m.affinity.or(match m.strategy {
                Strategy::PrefixAffinity => Some(affinity::AffinityConfig::default()),
                _ => None,
            });
            routes.push(Route {
                health_keys: (0..targets.len())
                    .map(|i| health::key(&m.name, i))
                    .collect(),
                name: m.name.clone(),
                strategy: m.strategy,
                targets,
                breaker: m.breaker,
                affinity,
                prefer_region: m.prefer_region.clone(),
                unsupported: m.unsupported,
            });
        }
        let mut providers_of: Vec<(&str, &str)> = Vec::new();
        let mut shared_clusters: Vec<String> = Vec::new();
        for t in routes.iter().flat_map(|r| &r.targets) {
            match providers_of.iter().find(|(c, _)| *c == t.cluster) {
                Some((_, p)) if *p != t.provider => {
                    if !shared_clusters.contains(&t.cluster) {
                        shared_clusters.push(t.cluster.clone());
                    }
                }
                Some(_) => {}
                None => providers_of.push((&t.cluster, &t.provider)),
            }
        }
        Ok(Router {
            routes,
            shared_clusters,
        })
    }

    /// Whether targets of several providers name `cluster`.
    pub fn is_shared(&self, cluster: &str) -> bool {
        self.shared_clusters.iter().any(|c| c == cluster)
    }

    /// Creates every route's shared keys (health records, rotation counters) that do not exist
    /// yet. Called at configure time, before traffic: a CAS update cannot create a key safely
    /// (creation is a blind write), so the keys must exist before two workers race on them.
    pub fn seed(
        &self,
        store: &dyn crate::store::SharedStore,
    ) -> Result<(), crate::store::StoreError> {
        let empty = health::Health::default().encode();
        for r in &self.routes {
            let health_keys = if r.tracks_health() {
                r.health_keys.as_slice()
            } else {
                &[]
            };
            for key in health_keys {
                if store.get(key)?.0.is_none() {
                    store.set(key, &empty, 0)?;
                }
            }
            let rr = r.rotation_key();
            if store.get(&rr)?.0.is_none() {
                store.set(&rr, &0u64.to_le_bytes(), 0)?;
            }
        }
        Ok(())
    }

    /// The route for a client's model name.
    pub fn find(&self, model: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(model))
    }

    /// The route with this configured name (the provider role gets it from the gateway).
    pub fn by_name(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

/// `*` matches any run of characters; everything else literally. Linear-time greedy matcher.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn router(models: &str) -> Router {
        let providers: BTreeMap<String, crate::providers::config::ProviderConfig> = serde_json::from_str(
            r#"{"a": {"type": "ollama", "host": "a"}, "b": {"type": "ollama", "host": "b"}, "c": {"type": "ollama", "host": "c"}}"#,
        )
        .unwrap();
        let providers = Providers::compile(&providers, &|_| None, &mut Vec::new()).unwrap();
        let models: Vec<ModelConfig> = serde_json::from_str(models).unwrap();
        Router::compile(&models, &providers).unwrap()
    }

    #[test]
    fn globs_match_like_shell_stars() {
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "a-x-b-y-c"));
        assert!(!glob_match("a*b*c", "a-x-c"));
        assert!(!glob_match("gpt-4o", "gpt-4o-mini"));
        assert!(glob_match("*-mini", "gpt-4o-mini"));
    }

    #[test]
    fn first_matching_route_wins() {
        let r = router(
            r#"[{"name": "gpt-4o", "targets": [{"provider": "a"}]},
                {"name": "gpt-*", "targets": [{"provider": "b"}]}]"#,
        );
        assert_eq!(r.find("gpt-4o").unwrap().targets[0].provider, "a");
        assert_eq!(r.find("gpt-3.5").unwrap().targets[0].provider, "b");
        assert!(r.find("claude").is_none());
    }

    #[test]
    fn a_cluster_is_shared_when_targets_of_two_providers_name_it() {
        let r = router(
            r#"[{"name": "m", "targets": [{"provider": "a", "cluster": "x"}, {"provider": "b", "cluster": "y"}]},
                {"name": "n", "targets": [{"provider": "a", "cluster": "x"}, {"provider": "c", "cluster": "y"}]},
                {"name": "o", "targets": [{"provider": "c"}]}]"#,
        );
        assert!(!r.is_shared("x"));
        assert!(r.is_shared("y"));
        assert!(!r.is_shared("c"));
    }

    #[test]
    fn unknown_providers_and_empty_targets_are_config_errors() {
        let providers = Providers::default();
        let models: Vec<ModelConfig> =
            serde_json::from_str(r#"[{"name": "m", "targets": [{"provider": "x"}]}]"#).unwrap();
        assert_eq!(
            Router::compile(&models, &providers).unwrap_err().field,
            "models[0].targets[0].provider"
        );
        let models: Vec<ModelConfig> =
            serde_json::from_str(r#"[{"name": "m", "targets": []}]"#).unwrap();
        assert_eq!(
            Router::compile(&models, &providers).unwrap_err().field,
            "models[0].targets"
        );
    }
}
