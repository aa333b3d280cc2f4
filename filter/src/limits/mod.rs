//! Request, token, concurrency and money limits, kept in shared data so all worker VMs agree.
//! STUB: to be implemented.

use crate::config::ConfigError;
use crate::ir::ErrorInfo;
use crate::store::SharedStore;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {}

/// Top-level `limits` section: global and per-model limits.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {}

/// Per-million-token prices of one model at one target, in USD.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    #[serde(default)]
    pub cached_input: f64,
}

/// A key's limits, compiled.
#[derive(Debug, Clone)]
pub struct KeyLimits;

impl KeyLimits {
    pub fn compile(_cfg: &LimitsConfig, _field: &str) -> Result<KeyLimits, ConfigError> {
        Ok(KeyLimits)
    }
}

pub struct Subject<'a> {
    pub key_id: &'a str,
    pub key_limits: Option<&'a KeyLimits>,
    /// The client-facing model (route) name.
    pub model: &'a str,
}

/// What a request is expected to consume, reserved up front.
#[derive(Debug, Clone, Copy, Default)]
pub struct Estimate {
    pub tokens: u64,
    pub micro_usd: u64,
}

/// What a request consumed, known at its end.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actual {
    pub tokens: u64,
    pub micro_usd: u64,
}

/// An admitted request's reservation; hand it back to [`Limiter::settle`] exactly once.
#[derive(Debug, Clone, Default)]
pub struct Ticket;

impl Ticket {
    /// `x-ratelimit-*` headers for the response.
    pub fn headers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

pub struct Refusal {
    /// A 429 with `retry_after`, naming which limit.
    pub info: ErrorInfo,
    pub headers: Vec<(String, String)>,
}

pub struct Limiter;

impl Limiter {
    pub fn compile(_cfg: &LimitsSection) -> Result<Limiter, ConfigError> {
        Ok(Limiter)
    }
    pub fn admit(
        &self,
        _store: &dyn SharedStore,
        _now_ms: u64,
        _subject: &Subject,
        _estimate: Estimate,
    ) -> Result<Ticket, Refusal> {
        Ok(Ticket)
    }
    pub fn settle(
        &self,
        _store: &dyn SharedStore,
        _now_ms: u64,
        _ticket: &Ticket,
        _actual: Actual,
    ) {
    }
}

/// Cost of `usage` at `price`, in micro-USD.
pub fn cost_micro_usd(_price: &Price, _usage: &crate::ir::Usage) -> u64 {
    0
}
