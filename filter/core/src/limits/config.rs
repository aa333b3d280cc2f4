//! The `limits` configuration users write (strict serde) and its validated, compiled form.
//! Omitting a field is how to say "no limit": zero, negative and absurd values are rejected.

use crate::error::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Limits of one client key (`auth.keys[].limits`, `auth.anonymous.limits`). Every field is
/// optional; each one given is enforced independently, and all of them must admit a request.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests admitted in any 60-second span, counted at admission; exact across workers.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) in any 60-second span. An estimate is reserved at admission and
    /// corrected to the provider's reported usage when the request ends.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub concurrent_requests: Option<u32>,
    /// Tokens (input + output) per UTC calendar day, reserved and corrected like
    /// `tokens_per_minute`.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    /// A spending cap per UTC calendar period, priced with the routed target's `Price`.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
    /// Further limits for this key on one model, keyed by the client-facing model name (exact
    /// match), enforced in addition to the key's own limits.
    #[serde(default)]
    pub models: BTreeMap<String, LimitSetConfig>,
}

/// The same limits as [`LimitsConfig`] without a per-model breakdown: used for one key on one
/// model, for one model across all keys, and for the global limits.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitSetConfig {
    /// Requests admitted in any 60-second span; exact across workers.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Tokens (input + output) in any 60-second span, reserved then corrected.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub concurrent_requests: Option<u32>,
    /// Tokens (input + output) per UTC calendar day, reserved then corrected.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
    /// A spending cap per UTC calendar period.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

/// A money cap: at most `usd` per `period`, counted from the start of the current UTC period.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// US dollars per period; must be positive. Granularity is one micro-dollar.
    pub usd: f64,
    /// `day` (resets at 00:00 UTC) or `month` (resets at 00:00 UTC on the 1st).
    pub period: BudgetPeriod,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Day,
    Month,
}

/// The top-level `limits` section: limits shared by every key, and how admission estimates a
/// request's tokens before the provider has counted them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Limits on all requests together, whatever key or model.
    #[serde(default)]
    pub global: Option<LimitSetConfig>,
    /// Limits on one model across all keys, keyed by client-facing model name (exact match).
    #[serde(default)]
    pub models: BTreeMap<String, LimitSetConfig>,
    /// How token reservations are estimated at admission.
    #[serde(default)]
    pub estimate: EstimateConfig,
    /// Seconds after which an admitted request that was never settled (its VM died or was
    /// reloaded) stops counting against `concurrent_requests`. Set it above the longest route
    /// timeout, or long requests free their slot early. Default 900.
    #[serde(default = "default_lease_seconds")]
    pub concurrency_lease_seconds: u64,
    /// Set `x-weir-rl-*` request headers (key id, route, token estimate) for Envoy's global rate
    /// limit filter, and publish the token overrun at the end (see `limits::descriptors`).
    #[serde(default)]
    pub global_descriptors: bool,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            global: None,
            models: BTreeMap::new(),
            estimate: EstimateConfig::default(),
            concurrency_lease_seconds: default_lease_seconds(),
            global_descriptors: false,
        }
    }
}

/// Token estimation for admission. Estimates only size reservations: every request is corrected
/// to the provider's reported usage at its end.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EstimateConfig {
    /// Output tokens reserved for a request that sets no `max_tokens`. Default 1024.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
    /// Prompt characters per token, counted as UTF-8 bytes so non-Latin text is over- rather
    /// than under-estimated. Default 4.
    #[serde(default = "default_chars_per_token")]
    pub chars_per_token: u32,
}

impl Default for EstimateConfig {
    fn default() -> Self {
        EstimateConfig {
            default_max_tokens: default_max_tokens(),
            chars_per_token: default_chars_per_token(),
        }
    }
}

fn default_max_tokens() -> u32 {
    1024
}
fn default_chars_per_token() -> u32 {
    4
}
fn default_lease_seconds() -> u64 {
    900
}

/// Per-million-token prices of one model at one target, in USD.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    /// For the part of `input` served from the provider's prompt cache.
    #[serde(default)]
    pub cached_input: f64,
    /// A flat fee per request, in USD (not per million).
    #[serde(default)]
    pub per_request: f64,
}

/// Largest budget accepted; far above any real one, it keeps micro-dollar sums inside `u64`.
const MAX_BUDGET_USD: f64 = 1e12;

/// A compiled set of limits on one subject.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LimitSet {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub concurrent: Option<u64>,
    pub tpd: Option<u64>,
    pub budget: Option<Budget>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub micro_usd: u64,
    pub period: BudgetPeriod,
}

impl LimitSet {
    pub fn is_empty(&self) -> bool {
        *self == LimitSet::default()
    }

    #[allow(clippy::too_many_arguments)]
    fn compile(
        rpm: Option<u32>,
        tpm: Option<u64>,
        concurrent: Option<u32>,
        tpd: Option<u64>,
        budget: Option<BudgetConfig>,
        field: &str,
    ) -> Result<LimitSet, ConfigError> {
        Ok(LimitSet {
            rpm: positive(rpm.map(u64::from), field, "requests_per_minute")?,
            tpm: positive(tpm, field, "tokens_per_minute")?,
            concurrent: positive(concurrent.map(u64::from), field, "concurrent_requests")?,
            tpd: positive(tpd, field, "tokens_per_day")?,
            budget: budget
                .map(|b| compile_budget(&b, &join(field, "budget.usd")))
                .transpose()?,
        })
    }

    pub(crate) fn from_set_config(c: &LimitSetConfig, field: &str) -> Result<Self, ConfigError> {
        Self::compile(
            c.requests_per_minute,
            c.tokens_per_minute,
            c.concurrent_requests,
            c.tokens_per_day,
            c.budget,
            field,
        )
    }
}

fn join(field: &str, name: &str) -> String {
    if field.is_empty() {
        name.to_string()
    } else {
        format!("{field}.{name}")
    }
}

fn positive(v: Option<u64>, field: &str, name: &str) -> Result<Option<u64>, ConfigError> {
    match v {
        Some(0) => Err(ConfigError::new(
            join(field, name),
            "must be at least 1; omit the field for no limit",
        )),
        other => Ok(other),
    }
}

fn compile_budget(b: &BudgetConfig, field: &str) -> Result<Budget, ConfigError> {
    if !b.usd.is_finite() || b.usd <= 0.0 || b.usd > MAX_BUDGET_USD {
        return Err(ConfigError::new(
            field,
            format!("must be a positive amount of at most {MAX_BUDGET_USD} USD"),
        ));
    }
    // Saturating float-to-int cast; the range check above keeps it exact enough.
    let micro_usd = (b.usd * 1e6).round() as u64;
    if micro_usd == 0 {
        return Err(ConfigError::new(field, "must be at least 0.000001 USD"));
    }
    Ok(Budget {
        micro_usd,
        period: b.period,
    })
}

/// Model names become part of shared-data keys, so they are bounded like any config id.
fn check_model_name(name: &str, field: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > 256 {
        return Err(ConfigError::new(
            format!("{field}[\"{name}\"]"),
            "model names must be 1 to 256 bytes",
        ));
    }
    Ok(())
}

pub(crate) fn compile_model_map(
    map: &BTreeMap<String, LimitSetConfig>,
    field: &str,
) -> Result<BTreeMap<String, LimitSet>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, cfg) in map {
        check_model_name(name, field)?;
        let set = LimitSet::from_set_config(cfg, &format!("{field}[\"{name}\"]"))?;
        if !set.is_empty() {
            out.insert(name.clone(), set);
        }
    }
    Ok(out)
}

/// A key's limits, compiled.
#[derive(Debug, Clone, Default)]
pub struct KeyLimits {
    pub(crate) base: LimitSet,
    pub(crate) models: BTreeMap<String, LimitSet>,
}

impl KeyLimits {
    /// `field` names the config location for errors, e.g. `auth.keys[2].limits`.
    pub fn compile(cfg: &LimitsConfig, field: &str) -> Result<KeyLimits, ConfigError> {
        Ok(KeyLimits {
            base: LimitSet::compile(
                cfg.requests_per_minute,
                cfg.tokens_per_minute,
                cfg.concurrent_requests,
                cfg.tokens_per_day,
                cfg.budget,
                field,
            )?,
            models: compile_model_map(&cfg.models, &join(field, "models"))?,
        })
    }

    /// Whether no limit at all applies to the key, on any model.
    pub fn is_empty(&self) -> bool {
        self.base.is_empty() && self.models.is_empty()
    }
}
