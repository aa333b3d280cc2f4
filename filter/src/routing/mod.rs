//! Routing: which configured model a client's model name means, and which target (provider +
//! provider model id + Envoy cluster) serves this request. Envoy does the rest: the chosen
//! cluster's endpoints, priorities, outlier detection and retries.
//!
//! Invariants: routes are matched in configuration order, first match wins (exact names and
//! `*` globs); a route's targets all name configured providers; the only per-request state is
//! the round-robin counter, kept in shared data under a key built from the route's configured
//! name, so every worker VM shares one rotation and the key set is bounded by the config.

pub mod keys;

use crate::config::providers::Providers;
use crate::config::ConfigError;
use crate::limits::Price;
use crate::store::{self, SharedStore};
use serde::Deserialize;

/// One client-facing model (or glob of models) and its targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The name clients send as `model`; `*` matches any run of characters (`gpt-4o*`).
    pub name: String,
    /// How to choose among `targets`: `priority` (default: the first; later ones are for
    /// failover inside the cluster), `round_robin`, `weighted` or `random`.
    #[serde(default)]
    pub strategy: Strategy,
    pub targets: Vec<TargetConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Priority,
    RoundRobin,
    Weighted,
    Random,
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
    /// Relative weight for `weighted` (default 1).
    #[serde(default = "one")]
    pub weight: u32,
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

#[derive(Debug, Clone)]
pub struct Target {
    pub energy: crate::metrics::Energy,
    pub provider: String,
    pub model: Option<String>,
    pub cluster: String,
    pub weight: u32,
    pub price: Option<Price>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub strategy: Strategy,
    pub targets: Vec<Target>,
    total_weight: u64,
}

impl Route {
    /// Whether `model` is this route's name or matches its glob.
    pub fn matches(&self, model: &str) -> bool {
        glob_match(&self.name, model)
    }

    pub fn is_glob(&self) -> bool {
        self.name.contains('*')
    }

    /// The target for this request. `random` is a fresh random number from the host.
    pub fn pick(&self, store: &dyn SharedStore, random: u64) -> &Target {
        let n = self.targets.len().max(1) as u64;
        let index = match self.strategy {
            Strategy::Priority => 0,
            Strategy::Random => random % n,
            Strategy::Weighted => {
                let mut point = random % self.total_weight.max(1);
                let mut chosen = 0;
                for (i, t) in self.targets.iter().enumerate() {
                    if point < u64::from(t.weight) {
                        chosen = i as u64;
                        break;
                    }
                    point -= u64::from(t.weight);
                }
                chosen
            }
            Strategy::RoundRobin => {
                let key = format!("weir:rr:{}", self.name);
                // A store failure degrades to random choice rather than failing the request:
                // balance matters less than answering.
                store::update(store, &key, |cur| {
                    let count = cur
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_le_bytes)
                        .unwrap_or(0);
                    (Some(count.wrapping_add(1).to_le_bytes().to_vec()), count)
                })
                .unwrap_or(random)
                    % n
            }
        };
        // `targets` is never empty (checked at compile), so the fallback is unreachable.
        let index = usize::try_from(index).unwrap_or(0);
        self.targets
            .get(index)
            .or_else(|| self.targets.first())
            .unwrap_or(&FALLBACK)
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

static FALLBACK: Target = Target {
    energy: crate::metrics::Energy::DEFAULT,
    provider: String::new(),
    model: None,
    cluster: String::new(),
    weight: 0,
    price: None,
};

#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
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
                if t.weight == 0 && m.strategy == Strategy::Weighted {
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
                    price: t.price,
                    energy: t.energy.unwrap_or_default(),
                });
            }
            let total_weight = targets.iter().map(|t| u64::from(t.weight)).sum();
            routes.push(Route {
                name: m.name.clone(),
                strategy: m.strategy,
                targets,
                total_weight,
            });
        }
        Ok(Router { routes })
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
    use crate::store::MemStore;
    use std::collections::BTreeMap;

    fn router(models: &str) -> Router {
        let providers: BTreeMap<String, crate::config::providers::ProviderConfig> = serde_json::from_str(
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
    fn round_robin_is_exact_across_workers_sharing_a_store() {
        let r = router(
            r#"[{"name": "m", "strategy": "round_robin", "targets": [{"provider": "a"}, {"provider": "b"}, {"provider": "c"}]}]"#,
        );
        let store = MemStore::new();
        let route = r.find("m").unwrap();
        let picks: Vec<&str> = (0..9)
            .map(|i| route.pick(&store, i * 7).provider.as_str())
            .collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn weighted_follows_the_weights() {
        let r = router(
            r#"[{"name": "m", "strategy": "weighted", "targets": [{"provider": "a", "weight": 3}, {"provider": "b", "weight": 1}]}]"#,
        );
        let store = MemStore::new();
        let route = r.find("m").unwrap();
        let a = (0..4000u64)
            .filter(|i| route.pick(&store, *i).provider == "a")
            .count();
        assert_eq!(a, 3000);
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
