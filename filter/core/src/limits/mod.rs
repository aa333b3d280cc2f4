//! Request, token, concurrency and money limits, kept in shared data so all worker VMs agree.
//! Request counts are exact under concurrency; tokens and money are reserved, then reconciled.
//!
//! # Using it (the gateway's call order)
//!
//! 1. **Compile once** at configure time: [`Limiter::compile`] for the top-level `limits`
//!    section; each key's [`KeyLimits`] is compiled by `auth` from `auth.keys[].limits`. Then,
//!    still at configure and on every VM, **seed** the shared-data values:
//!    `limiter.seed(store, ring.keys().filter_map(|k| Some((k.id.as_str(), k.limits.as_ref()?))))`
//!    (creates missing values only; see "Creating values" below).
//! 2. **Admit once per request**, after authentication and once the model (and so the price)
//!    is known:
//!    ```ignore
//!    let est = Estimate::for_request(&request, &limiter, price);
//!    let subject = Subject { key_id: &key.id, key_limits: key.limits.as_ref(), model: request.model() };
//!    match limiter.admit(store, now_ms, &subject, est) {
//!        Err(refusal) => /* reply refusal.info (429, or 503) + refusal.headers; nothing to settle */,
//!        Ok(ticket) => /* keep it in the request context; add ticket.headers() to the response */,
//!    }
//!    ```
//! 3. **Settle exactly once** when the request ends, however it ends (on_log / on_done):
//!    `limiter.settle(store, now_ms, &ticket, actual)` with [`Actual::from_usage`] when the
//!    provider reported usage, [`Actual::default()`] when no provider did any work (connection
//!    failure, refused by a later stage: everything is refunded), or
//!    [`Actual::from_estimate`]`(ticket.estimate())` when work may have been done but usage is
//!    unknown (client gone mid-stream). A second `settle` of the same ticket is a no-op.
//!
//! `now_ms` is always the host clock (unix milliseconds); this module has no clock of its own.
//!
//! # Design
//!
//! **Subjects.** A request counts against up to four subjects, each with its own limits: the
//! key on this model (`auth.keys[].limits.models`), the key, the model (`limits.models`), and
//! everything (`limits.global`). Each subject's counters live in ONE shared-data value, under
//! `weir:lim:key-model:<key id>:<model>`, `weir:lim:key:<key id>`, `weir:lim:model:<model>` or
//! `weir:lim:global`. The key id and the model name in those keys are the *configured* ones
//! (the model is looked up in the config maps and the map's own string is used), never client
//! input, so the number of shared-data values is bounded by the config; a model without
//! configured limits has no subject at all.
//!
//! **Requests per minute: an exact sliding window.** Each subject keeps per-second request
//! counts. A request arriving during second `S` is admitted iff the seconds `S-60 ..= S` (61
//! buckets) hold fewer than the limit, and is then counted in bucket `S`; the read-check-write is
//! one CAS update ([`crate::store::update`]), so racing workers serialise and none can admit on
//! a stale count. Because the window covers the current second and the 60 whole seconds before
//! it, any continuous 60-second span of real time (which touches at most 61 seconds) holds at
//! most `limit` admitted requests: e.g. with 60/min, 200 concurrent requests see exactly 60
//! admitted, and a 10/min key is refused on its 11th request within a minute. The price of
//! never over-admitting is being up to one second conservative: a slot frees 60-61 s after the
//! request that used it. (A GCRA/token bucket with burst was rejected because it re-admits as
//! time passes *during* a burst, so a 60-request window can hold more than 60.)
//!
//! **Tokens and money: reserve, then reconcile.** Usage is only known at the end, so admission
//! reserves an [`Estimate`] (prompt bytes / `chars_per_token` + `max_tokens` or
//! `default_max_tokens`; money at the target's [`Price`]) on `tokens_per_minute` (same 61-bucket
//! window), `tokens_per_day` and `budget`, admitting only if `used + estimate <= limit`.
//! [`Limiter::settle`] replaces the estimate with the actual usage: a refund comes out of the
//! bucket/period it was reserved in (if still live), an overrun is charged to the current second
//! or period. Hence the **overshoot bound**: at every admission the counted amount stays within
//! the limit, so what was really consumed in a window or period exceeds the limit by at most
//! the sum, over requests in flight (admitted, not yet settled) at the time, of
//! `max(0, actual - estimate)`. Providers cap output at `max_tokens`, so the overrun can only
//! come from an under-estimated prompt, a client that set no `max_tokens` getting more than
//! `default_max_tokens`, or a price difference; once settled, the overrun counts and blocks later
//! requests until it ages out. A request whose estimate alone exceeds a limit is refused outright
//! ("request too large", no `retry_after`), as OpenAI does.
//!
//! **Concurrency: leases.** Admission adds a lease in the current second's bucket and settle
//! removes it. A ticket never settled (its VM crashed or was reloaded) would otherwise hold its
//! slot forever, so each lease expires `concurrency_lease_seconds` (default 900) after
//! admission; set it above the longest route timeout, or long requests free their slot early.
//!
//! **Several subjects.** Admission reserves on each subject in turn, each one atomically (one
//! CAS update checks and reserves every limit of that subject). If a later subject refuses, the
//! earlier reservations are rolled back. In between, a racing request may be refused because of
//! a reservation that is then undone: the failure mode is a spurious 429, never an over-admit.
//!
//! **Creating values.** Envoy's shared data cannot compare-and-swap a key into existence (a set
//! of a missing key always writes), so two workers making the same subject's first write at
//! once could lose one reservation. [`Limiter::seed`] creates every subject's value at
//! configure, before any admission; an admission that still finds a value missing writes an
//! empty one and redoes its CAS, which shrinks but cannot close that window.
//!
//! **Store failures: fail closed.** Limits exist to protect money and upstream quotas, and a
//! broken store is a persistent condition, so failing open would silently disable every limit.
//! If shared data errors, or CAS retries are exhausted, admission refuses with a 503
//! (`retry_after` 1 s) and rolls back what it had reserved; settle cannot refuse anything, so it
//! logs a warning and leaves the reservation in place (it ages out of minute windows and leases;
//! day/budget reservations stay charged, erring on the safe side). An unreadable counter value
//! (another layout version) restarts that subject from zero.
//!
//! **Clocks.** Workers read the host clock independently. Window entries up to 60 s in the
//! future are kept and counted (another worker may be slightly ahead), and day/month counters
//! never step back one period, so a midnight straddle cannot reset a budget twice; anything
//! further off is treated as a stepped clock and discarded.

mod config;
mod cost;
pub mod descriptors;
mod engine;
mod state;
#[cfg(test)]
mod tests;

pub use config::{
    BudgetConfig, BudgetPeriod, EstimateConfig, KeyLimits, LimitSetConfig, LimitsConfig,
    LimitsSection, Price,
};
pub use cost::{cost_micro_usd, estimate_input_tokens};

use crate::error::ConfigError;
use crate::ir::ErrorInfo;
use config::{compile_model_map, LimitSet};
use std::cell::Cell;
use std::collections::BTreeMap;

/// Who a request is, for limits.
pub struct Subject<'a> {
    /// The authenticated key's configured id.
    pub key_id: &'a str,
    pub key_limits: Option<&'a KeyLimits>,
    /// The client-facing model (route) name.
    pub model: &'a str,
}

/// What a request is expected to consume, reserved up front. Build it with
/// [`Estimate::for_request`] (or [`Estimate::from_tokens`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Input plus output tokens.
    pub tokens: u64,
    pub micro_usd: u64,
}

/// What a request consumed, known at its end: see [`Actual::from_usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actual {
    /// Input plus output tokens.
    pub tokens: u64,
    pub micro_usd: u64,
}

/// An admitted request's reservation; hand it back to [`Limiter::settle`] exactly once.
#[derive(Debug, Clone, Default)]
pub struct Ticket {
    reservations: Vec<engine::Reservation>,
    estimate: Estimate,
    headers: Vec<(String, String)>,
    /// Makes a second settle of the same ticket harmless instead of a double refund.
    settled: Cell<bool>,
}

impl Ticket {
    /// `x-ratelimit-*` headers for the response: OpenAI's `limit`/`remaining`/`reset` for
    /// requests and for tokens, each from the applicable limit with the least remaining.
    /// `reset` is the time until that window is empty again, e.g. `6s` or `1m0s`.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }
    /// What was reserved at admission.
    pub fn estimate(&self) -> Estimate {
        self.estimate
    }
    pub fn is_settled(&self) -> bool {
        self.settled.get()
    }
}

/// Why a request was not admitted.
#[derive(Debug)]
pub struct Refusal {
    /// A 429 naming which limit, with `retry_after` when waiting can help; or a 503 when the
    /// limit state could not be read (see the module docs: limits fail closed).
    pub info: ErrorInfo,
    /// `x-ratelimit-*` headers of the refusing limit, when it is a requests or tokens limit.
    /// `retry-after` is not included: it is `info.retry_after`.
    pub headers: Vec<(String, String)>,
}

/// The compiled top-level `limits` section; immutable, shared by every request of a VM.
#[derive(Debug, Clone)]
pub struct Limiter {
    global: Option<LimitSet>,
    models: BTreeMap<String, LimitSet>,
    estimate: EstimateConfig,
    lease_s: u64,
    global_descriptors: bool,
}

/// A week: longer leases would let a crashed VM's requests block a key for longer than anyone
/// would wait to notice.
const MAX_LEASE_SECONDS: u64 = 7 * 24 * 3600;

impl Limiter {
    pub fn compile(cfg: &LimitsSection) -> Result<Limiter, ConfigError> {
        let global = match &cfg.global {
            Some(g) => Some(LimitSet::from_set_config(g, "limits.global")?),
            None => None,
        }
        .filter(|g| !g.is_empty());
        if cfg.estimate.chars_per_token == 0 {
            return Err(ConfigError::new(
                "limits.estimate.chars_per_token",
                "must be at least 1",
            ));
        }
        if cfg.estimate.default_max_tokens == 0 {
            return Err(ConfigError::new(
                "limits.estimate.default_max_tokens",
                "must be at least 1",
            ));
        }
        if cfg.concurrency_lease_seconds == 0 || cfg.concurrency_lease_seconds > MAX_LEASE_SECONDS {
            return Err(ConfigError::new(
                "limits.concurrency_lease_seconds",
                format!("must be between 1 and {MAX_LEASE_SECONDS}"),
            ));
        }
        Ok(Limiter {
            global,
            models: compile_model_map(&cfg.models, "limits.models")?,
            estimate: cfg.estimate,
            lease_s: cfg.concurrency_lease_seconds,
            global_descriptors: cfg.global_descriptors,
        })
    }

    /// Whether requests carry descriptors for Envoy's global rate limit filter
    /// (`limits.global_descriptors`; see [`descriptors`]).
    pub fn global_descriptors(&self) -> bool {
        self.global_descriptors
    }
}
