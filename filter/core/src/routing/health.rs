//! Target health: per-target counters (successes, failures by class, in-flight, latency EWMA)
//! and the circuit breaker's state machine, kept in shared data so every worker VM sees one truth.
//!
//! Call order per request: [`acquire`] when the gateway picks a target (in-flight + 1, and the
//! breaker's admission: a half-open breaker lets exactly one probe through), then exactly one
//! [`record`] for that acquisition at the request's end (in-flight − 1, outcome, breaker
//! transition). [`record`] with `release: false` adds an outcome for a target the request did
//! not acquire (a failover target that served).
//!
//! Invariants: one shared-data value per target (`weir:h:<route>:<index>`, bounded by the config),
//! a fixed little-endian layout of [`WORDS`] u64 words (a missing or short value reads as zeros),
//! every change a CAS read-modify-write (`store::update`), time always passed in (no clock here).
//! A store failure never fails a request: the caller treats the target as healthy.

use crate::store::{self, SharedStore, StoreError};
use serde::Deserialize;

/// Circuit-breaker settings of a route, as configured (`models[].breaker`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Seconds of outcomes the failure ratio looks at (sliding, two buckets).
    #[serde(default = "default_window_s")]
    pub window_s: u32,
    /// The breaker opens when failures / requests in the window exceed this.
    #[serde(default = "default_failure_ratio")]
    pub failure_ratio: f64,
    /// Fewer requests than this in the window never open the breaker.
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
    /// Seconds an open breaker refuses before letting one probe through (half-open).
    #[serde(default = "default_cooldown_s")]
    pub cooldown_s: u32,
}

fn default_window_s() -> u32 {
    60
}
fn default_failure_ratio() -> f64 {
    0.3
}
fn default_min_requests() -> u32 {
    10
}
fn default_cooldown_s() -> u32 {
    60
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window_s: default_window_s(),
            failure_ratio: default_failure_ratio(),
            min_requests: default_min_requests(),
            cooldown_s: default_cooldown_s(),
        }
    }
}

impl BreakerConfig {
    /// Checks ranges; `field` is the config path of this object.
    pub fn validate(&self, field: &str) -> Result<(), crate::error::ConfigError> {
        use crate::error::ConfigError;
        if !(1..=86_400).contains(&self.window_s) {
            return Err(ConfigError::new(
                format!("{field}.window_s"),
                "must be 1 to 86400",
            ));
        }
        if !(self.failure_ratio > 0.0 && self.failure_ratio < 1.0) {
            return Err(ConfigError::new(
                format!("{field}.failure_ratio"),
                "must be above 0 and below 1",
            ));
        }
        if self.min_requests == 0 || self.min_requests > 1_000_000 {
            return Err(ConfigError::new(
                format!("{field}.min_requests"),
                "must be 1 to 1000000",
            ));
        }
        if !(1..=86_400).contains(&self.cooldown_s) {
            return Err(ConfigError::new(
                format!("{field}.cooldown_s"),
                "must be 1 to 86400",
            ));
        }
        Ok(())
    }
    fn window_ms(&self) -> u64 {
        u64::from(self.window_s) * 1000
    }
    fn cooldown_ms(&self) -> u64 {
        u64::from(self.cooldown_s) * 1000
    }
}

/// How a finished request went for the target that handled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(FailureClass),
    /// Nothing was learned about the target (the client left, or the gateway refused after the
    /// pick): only the in-flight count and a probe slot are given back.
    Released,
}

/// Failure classes, counted apart so operators can tell an overloaded provider from a dead one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// 5xx from the provider.
    Server,
    /// 504/408, or Envoy's upstream timeout.
    Timeout,
    /// 429 from the provider.
    RateLimited,
    /// 401/403 from the provider (a bad provider key).
    Auth,
    /// No provider answered (connect failure, reset, no healthy endpoint).
    Connect,
}

impl FailureClass {
    pub const ALL: [FailureClass; 5] = [
        FailureClass::Server,
        FailureClass::Timeout,
        FailureClass::RateLimited,
        FailureClass::Auth,
        FailureClass::Connect,
    ];
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Server => "server",
            FailureClass::Timeout => "timeout",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::Auth => "auth",
            FailureClass::Connect => "connect",
        }
    }
    fn word(self) -> usize {
        match self {
            FailureClass::Server => W_FAIL_SERVER,
            FailureClass::Timeout => W_FAIL_TIMEOUT,
            FailureClass::RateLimited => W_FAIL_RATE,
            FailureClass::Auth => W_FAIL_AUTH,
            FailureClass::Connect => W_FAIL_CONNECT,
        }
    }
}

impl Outcome {
    /// The outcome a final status means. `answered`: a provider produced the answer (the
    /// provider role named itself); otherwise it is Envoy's own reply about the upstream.
    pub fn from_status(status: u16, answered: bool) -> Outcome {
        let class = match status {
            0 => return Outcome::Released,
            408 | 504 => FailureClass::Timeout,
            429 => FailureClass::RateLimited,
            401 | 403 if answered => FailureClass::Auth,
            500..=599 if !answered => FailureClass::Connect,
            500..=599 => FailureClass::Server,
            // A client error is the client's: the target answered properly.
            _ => return Outcome::Success,
        };
        Outcome::Failure(class)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

const W_SUCCESS: usize = 0;
const W_FAIL_SERVER: usize = 1;
const W_FAIL_TIMEOUT: usize = 2;
const W_FAIL_RATE: usize = 3;
const W_FAIL_AUTH: usize = 4;
const W_FAIL_CONNECT: usize = 5;
const W_IN_FLIGHT: usize = 6;
const W_EWMA: usize = 7;
const W_STATE: usize = 8;
/// Open: when the cooldown ends. Half-open: until when the probe slot is taken.
const W_UNTIL: usize = 9;
const W_WINDOW_START: usize = 10;
const W_WIN_REQ: usize = 11;
const W_WIN_FAIL: usize = 12;
const W_PREV_REQ: usize = 13;
const W_PREV_FAIL: usize = 14;
/// Words in one target's value.
pub const WORDS: usize = 15;

/// Weight of the newest latency sample in the EWMA.
const EWMA_ALPHA: f64 = 0.2;

/// One target's health, decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    w: [u64; WORDS],
}

impl Default for Health {
    fn default() -> Self {
        Health { w: [0; WORDS] }
    }
}

/// What the breaker did, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Opened,
    HalfOpened,
    Closed,
}

impl Transition {
    pub fn name(self) -> &'static str {
        match self {
            Transition::Opened => "open",
            Transition::HalfOpened => "half_open",
            Transition::Closed => "closed",
        }
    }
}

/// The result of [`acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; `probe` when this request is the half-open breaker's one probe.
    Admitted {
        probe: bool,
        transition: Option<Transition>,
    },
    /// The breaker refuses until `until_ms`.
    Refused { until_ms: u64 },
}

impl Health {
    pub fn decode(bytes: Option<&[u8]>) -> Health {
        let mut h = Health::default();
        for (slot, chunk) in
            h.w.iter_mut()
                .zip(bytes.unwrap_or_default().chunks_exact(8))
        {
            *slot = <[u8; 8]>::try_from(chunk)
                .map(u64::from_le_bytes)
                .unwrap_or(0);
        }
        h
    }

    pub fn encode(&self) -> Vec<u8> {
        self.w.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn get(&self, i: usize) -> u64 {
        self.w.get(i).copied().unwrap_or(0)
    }
    fn set(&mut self, i: usize, v: u64) {
        if let Some(slot) = self.w.get_mut(i) {
            *slot = v;
        }
    }
    fn add(&mut self, i: usize, d: u64) {
        self.set(i, self.get(i).saturating_add(d));
    }

    pub fn successes(&self) -> u64 {
        self.get(W_SUCCESS)
    }
    pub fn failures(&self, class: FailureClass) -> u64 {
        self.get(class.word())
    }
    pub fn total_failures(&self) -> u64 {
        FailureClass::ALL.iter().map(|c| self.failures(*c)).sum()
    }
    pub fn in_flight(&self) -> u64 {
        self.get(W_IN_FLIGHT)
    }
    /// Latency EWMA in milliseconds; `None` before the first success.
    pub fn latency_ms(&self) -> Option<f64> {
        let v = f64::from_bits(self.get(W_EWMA));
        (self.successes() > 0 && v.is_finite()).then_some(v)
    }
    pub fn state(&self) -> BreakerState {
        match self.get(W_STATE) {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
    fn set_state(&mut self, s: BreakerState) {
        let v = match s {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.set(W_STATE, v);
    }

    /// `successes=3; failures=1; server=1; ...; in_flight=0; latency_ms=12; breaker=closed`.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "successes={}; failures={}",
            self.successes(),
            self.total_failures()
        );
        for c in FailureClass::ALL {
            out.push_str(&format!("; {}={}", c.name(), self.failures(c)));
        }
        out.push_str(&format!("; in_flight={}", self.in_flight()));
        if let Some(l) = self.latency_ms() {
            out.push_str(&format!("; latency_ms={}", l.round()));
        }
        out.push_str(&format!("; breaker={}", self.state().name()));
        out
    }

    /// Whether a request may go to this target at `now_ms`, and if not, from when it may.
    pub fn available(&self, now_ms: u64) -> Result<(), u64> {
        let until = self.get(W_UNTIL);
        match self.state() {
            BreakerState::Closed => Ok(()),
            BreakerState::Open | BreakerState::HalfOpen if now_ms >= until => Ok(()),
            BreakerState::Open | BreakerState::HalfOpen => Err(until),
        }
    }

    /// Takes a request: in-flight + 1, and the breaker's admission. Without a breaker config the
    /// breaker never leaves `Closed`.
    fn admit(&mut self, now_ms: u64, cfg: Option<&BreakerConfig>) -> Admission {
        let mut admission = Admission::Admitted {
            probe: false,
            transition: None,
        };
        if let Some(cfg) = cfg {
            match self.available(now_ms) {
                Err(until_ms) => return Admission::Refused { until_ms },
                Ok(()) if self.state() != BreakerState::Closed => {
                    // The cooldown is over (Open), or the last probe never reported back
                    // (HalfOpen): this request is the probe; the slot is held for one cooldown.
                    let transition =
                        (self.state() == BreakerState::Open).then_some(Transition::HalfOpened);
                    self.set_state(BreakerState::HalfOpen);
                    self.set(W_UNTIL, now_ms.saturating_add(cfg.cooldown_ms()));
                    admission = Admission::Admitted {
                        probe: true,
                        transition,
                    };
                }
                Ok(()) => {}
            }
        }
        self.add(W_IN_FLIGHT, 1);
        admission
    }

    /// Rolls the two-bucket window forward to `now_ms`.
    fn roll(&mut self, now_ms: u64, window_ms: u64) {
        let start = self.get(W_WINDOW_START);
        if now_ms < start.saturating_add(window_ms) && start != 0 {
            return;
        }
        let skipped_more_than_one = start == 0 || now_ms >= start.saturating_add(2 * window_ms);
        let (req, fail) = if skipped_more_than_one {
            (0, 0)
        } else {
            (self.get(W_WIN_REQ), self.get(W_WIN_FAIL))
        };
        self.set(W_PREV_REQ, req);
        self.set(W_PREV_FAIL, fail);
        self.set(W_WIN_REQ, 0);
        self.set(W_WIN_FAIL, 0);
        // Windows are aligned to the first one, so every worker agrees where they start.
        let aligned = if start == 0 {
            now_ms
        } else {
            start + (now_ms - start) / window_ms * window_ms
        };
        self.set(W_WINDOW_START, aligned.max(1));
    }

    /// Requests and failures over the last window: the current bucket plus the previous one
    /// weighted by how much of it still overlaps the window.
    pub fn window(&self, now_ms: u64, cfg: &BreakerConfig) -> (f64, f64) {
        let window_ms = cfg.window_ms().max(1);
        let elapsed = now_ms
            .saturating_sub(self.get(W_WINDOW_START))
            .min(window_ms);
        let keep = 1.0 - elapsed as f64 / window_ms as f64;
        (
            self.get(W_WIN_REQ) as f64 + self.get(W_PREV_REQ) as f64 * keep,
            self.get(W_WIN_FAIL) as f64 + self.get(W_PREV_FAIL) as f64 * keep,
        )
    }

    /// Adds one finished request. `release`: it was acquired (in-flight − 1, probe result).
    fn finish(
        &mut self,
        outcome: Outcome,
        latency_ms: Option<u64>,
        now_ms: u64,
        release: bool,
        probe: bool,
        cfg: Option<&BreakerConfig>,
    ) -> Option<Transition> {
        if release {
            self.set(W_IN_FLIGHT, self.in_flight().saturating_sub(1));
        }
        let failed = match outcome {
            Outcome::Released => {
                if probe && self.state() == BreakerState::HalfOpen {
                    // Give the probe slot back: the next request may probe.
                    self.set(W_UNTIL, now_ms);
                }
                return None;
            }
            Outcome::Success => {
                self.add(W_SUCCESS, 1);
                if let Some(ms) = latency_ms {
                    let sample = ms as f64;
                    let next = match self.latency_ms() {
                        Some(old) if self.successes() > 1 => old + EWMA_ALPHA * (sample - old),
                        _ => sample,
                    };
                    self.set(W_EWMA, next.to_bits());
                }
                false
            }
            Outcome::Failure(class) => {
                self.add(class.word(), 1);
                true
            }
        };
        let cfg = cfg?;
        self.roll(now_ms, cfg.window_ms());
        self.add(W_WIN_REQ, 1);
        if failed {
            self.add(W_WIN_FAIL, 1);
        }
        match self.state() {
            BreakerState::HalfOpen if probe => {
                if failed {
                    self.open(now_ms, cfg);
                    Some(Transition::Opened)
                } else {
                    self.set_state(BreakerState::Closed);
                    self.set(W_UNTIL, 0);
                    // A fresh start: the failures that opened it are history.
                    for w in [W_WIN_REQ, W_WIN_FAIL, W_PREV_REQ, W_PREV_FAIL] {
                        self.set(w, 0);
                    }
                    Some(Transition::Closed)
                }
            }
            BreakerState::Closed if failed => {
                let (req, fail) = self.window(now_ms, cfg);
                if req >= f64::from(cfg.min_requests) && fail / req > cfg.failure_ratio {
                    self.open(now_ms, cfg);
                    Some(Transition::Opened)
                } else {
                    None
                }
            }
            // Late answers of requests sent before the breaker opened change nothing.
            _ => None,
        }
    }

    fn open(&mut self, now_ms: u64, cfg: &BreakerConfig) {
        self.set_state(BreakerState::Open);
        self.set(W_UNTIL, now_ms.saturating_add(cfg.cooldown_ms()));
    }
}

/// The shared-data key of a route's target.
pub fn key(route: &str, index: usize) -> String {
    format!("weir:h:{route}:{index}")
}

/// Reads a target's health (zeros when absent or unreadable).
pub fn read(store: &dyn SharedStore, key: &str) -> Health {
    store
        .get(key)
        .map(|(v, _)| Health::decode(v.as_deref()))
        .unwrap_or_default()
}

/// Takes a request for a target (see the module doc). A refusal changes nothing.
pub fn acquire(
    store: &dyn SharedStore,
    key: &str,
    now_ms: u64,
    cfg: Option<&BreakerConfig>,
) -> Result<Admission, StoreError> {
    store::update(store, key, |cur| {
        let mut h = Health::decode(cur);
        match h.admit(now_ms, cfg) {
            refused @ Admission::Refused { .. } => (None, refused),
            admitted => (Some(h.encode()), admitted),
        }
    })
}

/// Records a finished request for a target; returns the breaker's transition, if any.
#[allow(clippy::too_many_arguments)]
pub fn record(
    store: &dyn SharedStore,
    key: &str,
    outcome: Outcome,
    latency_ms: Option<u64>,
    now_ms: u64,
    release: bool,
    probe: bool,
    cfg: Option<&BreakerConfig>,
) -> Result<Option<Transition>, StoreError> {
    store::update(store, key, |cur| {
        let mut h = Health::decode(cur);
        let t = h.finish(outcome, latency_ms, now_ms, release, probe, cfg);
        (Some(h.encode()), t)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    const K: &str = "weir:h:m:0";

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            window_s: 10,
            failure_ratio: 0.3,
            min_requests: 5,
            cooldown_s: 2,
        }
    }

    fn run(store: &MemStore, now: u64, outcome: Outcome) -> Option<Transition> {
        let c = cfg();
        match acquire(store, K, now, Some(&c)).unwrap() {
            Admission::Admitted { probe, .. } => {
                record(store, K, outcome, Some(10), now, true, probe, Some(&c)).unwrap()
            }
            Admission::Refused { .. } => panic!("refused at {now}"),
        }
    }

    #[test]
    fn counters_by_class_and_in_flight_return_to_zero() {
        let store = MemStore::new();
        let a = acquire(&store, K, 1, None).unwrap();
        assert_eq!(
            a,
            Admission::Admitted {
                probe: false,
                transition: None
            }
        );
        acquire(&store, K, 1, None).unwrap();
        assert_eq!(read(&store, K).in_flight(), 2);
        record(&store, K, Outcome::Success, Some(100), 2, true, false, None).unwrap();
        let fail = Outcome::from_status(429, true);
        record(&store, K, fail, None, 3, true, false, None).unwrap();
        let h = read(&store, K);
        assert_eq!(h.in_flight(), 0);
        assert_eq!(h.successes(), 1);
        assert_eq!(h.failures(FailureClass::RateLimited), 1);
        assert_eq!(h.total_failures(), 1);
        assert_eq!(h.latency_ms(), Some(100.0));
        // Releasing more than was acquired never wraps.
        record(&store, K, Outcome::Released, None, 4, true, false, None).unwrap();
        assert_eq!(read(&store, K).in_flight(), 0);
    }

    #[test]
    fn status_classes() {
        assert_eq!(Outcome::from_status(200, true), Outcome::Success);
        assert_eq!(Outcome::from_status(400, true), Outcome::Success);
        assert_eq!(
            Outcome::from_status(503, false),
            Outcome::Failure(FailureClass::Connect)
        );
        assert_eq!(
            Outcome::from_status(503, true),
            Outcome::Failure(FailureClass::Server)
        );
        assert_eq!(
            Outcome::from_status(504, false),
            Outcome::Failure(FailureClass::Timeout)
        );
        assert_eq!(
            Outcome::from_status(401, true),
            Outcome::Failure(FailureClass::Auth)
        );
        assert_eq!(Outcome::from_status(0, false), Outcome::Released);
    }

    #[test]
    fn ewma_moves_a_fifth_of_the_way() {
        let store = MemStore::new();
        for ms in [100, 200] {
            acquire(&store, K, 1, None).unwrap();
            record(&store, K, Outcome::Success, Some(ms), 1, true, false, None).unwrap();
        }
        assert_eq!(read(&store, K).latency_ms(), Some(120.0));
    }

    #[test]
    fn breaker_opens_refuses_probes_once_and_closes_on_success() {
        let store = MemStore::new();
        let c = cfg();
        // Four failures: below min_requests, stays closed.
        for t in 0..4 {
            assert_eq!(
                run(&store, 1000 + t, Outcome::Failure(FailureClass::Server)),
                None
            );
        }
        assert_eq!(read(&store, K).state(), BreakerState::Closed);
        // The fifth: 5/5 > 0.3 with 5 requests: opens.
        assert_eq!(
            run(&store, 1004, Outcome::Failure(FailureClass::Server)),
            Some(Transition::Opened)
        );
        assert_eq!(read(&store, K).available(1005), Err(3004));
        assert_eq!(
            acquire(&store, K, 3003, Some(&c)).unwrap(),
            Admission::Refused { until_ms: 3004 }
        );
        // After the cooldown exactly one probe goes through.
        assert_eq!(
            acquire(&store, K, 3004, Some(&c)).unwrap(),
            Admission::Admitted {
                probe: true,
                transition: Some(Transition::HalfOpened)
            }
        );
        assert!(matches!(
            acquire(&store, K, 3005, Some(&c)).unwrap(),
            Admission::Refused { .. }
        ));
        // The probe fails: open again for a full cooldown.
        let t = record(
            &store,
            K,
            Outcome::Failure(FailureClass::Timeout),
            None,
            3100,
            true,
            true,
            Some(&c),
        )
        .unwrap();
        assert_eq!(t, Some(Transition::Opened));
        assert_eq!(read(&store, K).available(3101), Err(5100));
        // Next probe succeeds: closed, with a clean window (one failure does not reopen).
        assert!(matches!(
            acquire(&store, K, 5100, Some(&c)).unwrap(),
            Admission::Admitted { probe: true, .. }
        ));
        let t = record(
            &store,
            K,
            Outcome::Success,
            Some(5),
            5200,
            true,
            true,
            Some(&c),
        )
        .unwrap();
        assert_eq!(t, Some(Transition::Closed));
        assert_eq!(
            run(&store, 5300, Outcome::Failure(FailureClass::Server)),
            None
        );
        assert_eq!(read(&store, K).state(), BreakerState::Closed);
        assert_eq!(read(&store, K).in_flight(), 0);
    }

    #[test]
    fn a_lost_probe_frees_its_slot_after_a_cooldown_and_a_released_one_at_once() {
        let store = MemStore::new();
        let c = cfg();
        for t in 0..5 {
            run(&store, t, Outcome::Failure(FailureClass::Server));
        }
        assert!(matches!(
            acquire(&store, K, 2004, Some(&c)).unwrap(),
            Admission::Admitted { probe: true, .. }
        ));
        // Released (the gateway refused after the pick): the slot is free again now.
        record(
            &store,
            K,
            Outcome::Released,
            None,
            2010,
            true,
            true,
            Some(&c),
        )
        .unwrap();
        assert!(matches!(
            acquire(&store, K, 2011, Some(&c)).unwrap(),
            Admission::Admitted { probe: true, .. }
        ));
        // This probe never reports: refused until its slot times out, then another probe.
        assert!(matches!(
            acquire(&store, K, 3000, Some(&c)).unwrap(),
            Admission::Refused { until_ms: 4011 }
        ));
        assert!(matches!(
            acquire(&store, K, 4011, Some(&c)).unwrap(),
            Admission::Admitted {
                probe: true,
                transition: None
            }
        ));
    }

    #[test]
    fn a_low_failure_ratio_keeps_it_closed_and_old_windows_age_out() {
        let store = MemStore::new();
        // 2 failures in 10 requests = 0.2 <= 0.3.
        for t in 0..10u64 {
            let o = if t < 2 {
                Outcome::Failure(FailureClass::Server)
            } else {
                Outcome::Success
            };
            assert_eq!(run(&store, 100 + t, o), None);
        }
        assert_eq!(read(&store, K).state(), BreakerState::Closed);
        // Two windows later the old requests are gone: 4 failures alone stay below min_requests.
        for t in 0..4 {
            assert_eq!(
                run(&store, 30_000 + t, Outcome::Failure(FailureClass::Server)),
                None
            );
        }
        let (req, _) = read(&store, K).window(30_004, &cfg());
        assert_eq!(req, 4.0);
    }

    #[test]
    fn racing_workers_lose_no_update() {
        let store = MemStore::new();
        // Keys are seeded at configure time (creating one is a blind write).
        store.set(K, &Health::default().encode(), 0).unwrap();
        for round in 0..50u64 {
            // Between this worker's read and write, another worker finishes a request.
            store.race_once(move |s| {
                acquire(s, K, round, None).unwrap();
                record(s, K, Outcome::Success, Some(1), round, true, false, None).unwrap();
            });
            acquire(&store, K, round, None).unwrap();
            store.race_once(move |s| {
                acquire(s, K, round, None).unwrap();
            });
            record(
                &store,
                K,
                Outcome::Failure(FailureClass::Server),
                None,
                round,
                true,
                false,
                None,
            )
            .unwrap();
        }
        let h = read(&store, K);
        assert_eq!(h.successes(), 50);
        assert_eq!(h.failures(FailureClass::Server), 50);
        // 50 racing acquisitions were never released.
        assert_eq!(h.in_flight(), 50);
    }

    #[test]
    fn garbage_in_the_store_reads_as_something_harmless() {
        let h = Health::decode(Some(&[0xff; 13]));
        assert_eq!(h.successes(), u64::MAX);
        assert_eq!(h.in_flight(), 0);
        assert!(Health::decode(Some(b"")).available(0).is_ok());
        let mut bad = Health::default();
        bad.set(W_EWMA, f64::NAN.to_bits());
        bad.set(W_SUCCESS, 3);
        assert_eq!(bad.latency_ms(), None);
    }

    #[test]
    fn config_is_validated() {
        let mut c = cfg();
        c.failure_ratio = 1.5;
        assert_eq!(c.validate("b").unwrap_err().field, "b.failure_ratio");
        let mut c = cfg();
        c.cooldown_s = 0;
        assert_eq!(c.validate("b").unwrap_err().field, "b.cooldown_s");
        assert!(cfg().validate("b").is_ok());
    }
}
