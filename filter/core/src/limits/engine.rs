//! Admission and settlement: which subjects a request counts against, the CAS update that checks
//! and reserves on each in turn (rolled back on refusal), and the headers clients see.

use super::config::{BudgetPeriod, LimitSet};
use super::state::{SubjectState, SCALE_DAY, SCALE_MONTH};
use super::{Actual, Estimate, KeyLimits, Limiter, Refusal, Subject, Ticket};
use crate::ir::{ErrorInfo, ErrorKind};
use crate::store::{self, SharedStore, StoreError};
use crate::time::{month_index, next_month_start, SECS_PER_DAY};

/// Seconds before the current one that a minute window still covers: 60 + the current second,
/// so no continuous 60-second span can hold more than the limit (see the module docs).
const WINDOW_SPAN_S: u64 = 60;

/// What one subject reserved for one request, enough to undo or reconcile it later.
#[derive(Debug, Clone)]
pub(crate) struct Reservation {
    store_key: String,
    /// The unix second the request was counted in.
    sec: u64,
    request: bool,
    tokens: bool,
    lease: bool,
    /// The day (period index) tokens were reserved in.
    day: Option<u64>,
    /// The budget scale and period money was reserved in.
    spend: Option<(u8, u64)>,
}

/// A limit's standing, for `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy)]
struct Gauge {
    limit: u64,
    remaining: u64,
    reset_ms: u64,
}

impl Gauge {
    fn tighter(a: Option<Gauge>, b: Option<Gauge>) -> Option<Gauge> {
        match (a, b) {
            (Some(a), Some(b)) if b.remaining < a.remaining => Some(b),
            (Some(a), _) => Some(a),
            (None, b) => b,
        }
    }
}

struct Granted {
    reservation: Reservation,
    requests: Option<Gauge>,
    tokens: Option<Gauge>,
}

#[derive(Debug, Clone, Copy)]
enum Limit {
    Concurrency,
    Requests,
    TokensPerMinute,
    TokensPerDay,
    Budget(BudgetPeriod),
}

struct Denied {
    limit: Limit,
    value: u64,
    /// How long until waiting could help; `None` when it never will.
    wait_ms: Option<u64>,
    /// The request's own estimate exceeds the limit.
    needed: Option<u64>,
    requests: Option<Gauge>,
    tokens: Option<Gauge>,
}

impl Denied {
    fn new(limit: Limit, value: u64, wait_ms: Option<u64>) -> Self {
        Denied {
            limit,
            value,
            wait_ms,
            needed: None,
            requests: None,
            tokens: None,
        }
    }
}

/// One subject a request counts against.
struct Scope<'a> {
    store_key: String,
    set: &'a LimitSet,
    /// Which subject, for messages: "for key 'a'", "globally".
    label: String,
}

/// Key ids are config ids, but a `:` in one would make `key-model` store keys ambiguous.
fn escape_id(id: &str) -> String {
    id.replace('%', "%25").replace(':', "%3A")
}

fn period_of(scale: u8, now_s: u64) -> u64 {
    if scale == SCALE_MONTH {
        month_index(now_s)
    } else {
        now_s / SECS_PER_DAY
    }
}

impl Limiter {
    fn scopes<'a>(&'a self, subject: &Subject<'a>) -> Vec<Scope<'a>> {
        let mut out = Vec::with_capacity(4);
        let id = subject.key_id;
        if let Some(kl) = subject.key_limits {
            if let Some((model, set)) = kl.models.get_key_value(subject.model) {
                out.push(Scope {
                    store_key: format!("weir:lim:key-model:{}:{model}", escape_id(id)),
                    set,
                    label: format!("for key '{id}' on model '{model}'"),
                });
            }
            if !kl.base.is_empty() {
                out.push(Scope {
                    store_key: format!("weir:lim:key:{}", escape_id(id)),
                    set: &kl.base,
                    label: format!("for key '{id}'"),
                });
            }
        }
        if let Some((model, set)) = self.models.get_key_value(subject.model) {
            out.push(Scope {
                store_key: format!("weir:lim:model:{model}"),
                set,
                label: format!("for model '{model}'"),
            });
        }
        if let Some(set) = &self.global {
            out.push(Scope {
                store_key: "weir:lim:global".to_string(),
                set,
                label: "globally".to_string(),
            });
        }
        out
    }

    /// Creates the shared-data value of every subject this config can use, where missing, so
    /// that no admission has to create one (see [`crate::store`]: creating a key cannot be
    /// compare-and-swapped, so two workers creating the same value at once can lose a write).
    /// Call it at configure time, on every VM, before serving, with every key that has limits
    /// (`auth::KeyRing::keys`). Existing values are left alone, so live counts survive reloads.
    pub fn seed<'a>(
        &self,
        store: &dyn SharedStore,
        keys: impl IntoIterator<Item = (&'a str, &'a KeyLimits)>,
    ) -> Result<(), StoreError> {
        let mut store_keys: Vec<String> = Vec::new();
        let mut add_subjects = |id: &str, kl: Option<&KeyLimits>, model: &str| {
            let subject = Subject {
                key_id: id,
                key_limits: kl,
                model,
            };
            for scope in self.scopes(&subject) {
                if !store_keys.contains(&scope.store_key) {
                    store_keys.push(scope.store_key);
                }
            }
        };
        for model in self.models.keys() {
            add_subjects("", None, model);
        }
        add_subjects("", None, "");
        for (id, kl) in keys {
            add_subjects(id, Some(kl), "");
            for model in kl.models.keys() {
                add_subjects(id, Some(kl), model);
            }
        }
        let empty = SubjectState::default().encode();
        for key in &store_keys {
            if store.get(key)?.0.is_none() {
                store.set(key, &empty, 0)?;
            }
        }
        Ok(())
    }

    /// Checks every applicable limit and reserves `estimate` on all of them, or on none.
    pub fn admit(
        &self,
        store: &dyn SharedStore,
        now_ms: u64,
        subject: &Subject,
        estimate: Estimate,
    ) -> Result<Ticket, Refusal> {
        let mut ticket = Ticket {
            estimate,
            ..Ticket::default()
        };
        let mut requests = None;
        let mut tokens = None;
        for scope in self.scopes(subject) {
            let outcome = reserve_on(store, &scope, now_ms, &estimate, self.lease_s);
            match outcome {
                Ok(Ok(mut granted)) => {
                    granted.reservation.store_key = scope.store_key;
                    ticket.reservations.push(granted.reservation);
                    requests = Gauge::tighter(requests, granted.requests);
                    tokens = Gauge::tighter(tokens, granted.tokens);
                }
                Ok(Err(denied)) => {
                    self.roll_back(store, now_ms, &ticket);
                    return Err(refusal(&denied, &scope.label));
                }
                Err(e) => {
                    log::warn!(
                        "weir limits: shared data failed on {} ({e:?}); refusing the request",
                        scope.store_key
                    );
                    self.roll_back(store, now_ms, &ticket);
                    return Err(Refusal {
                        info: ErrorInfo::new(
                            503,
                            ErrorKind::Unavailable,
                            "rate limit state is unavailable; try again shortly",
                        )
                        .with_retry_after(Some(1)),
                        headers: Vec::new(),
                    });
                }
            }
        }
        ticket.headers = gauge_headers(requests, tokens);
        Ok(ticket)
    }

    /// Ends a request: frees its concurrency slot and replaces its token and money reservations
    /// with `actual`. Settling a ticket twice does nothing the second time.
    pub fn settle(&self, store: &dyn SharedStore, now_ms: u64, ticket: &Ticket, actual: Actual) {
        if ticket.settled.replace(true) {
            return;
        }
        for r in &ticket.reservations {
            self.release(store, now_ms, r, &ticket.estimate, &actual, false);
        }
    }

    fn roll_back(&self, store: &dyn SharedStore, now_ms: u64, ticket: &Ticket) {
        ticket.settled.set(true);
        for r in &ticket.reservations {
            self.release(store, now_ms, r, &ticket.estimate, &Actual::default(), true);
        }
    }

    fn release(
        &self,
        store: &dyn SharedStore,
        now_ms: u64,
        r: &Reservation,
        est: &Estimate,
        actual: &Actual,
        undo_request: bool,
    ) {
        let counts_usage = r.tokens || r.lease || r.day.is_some() || r.spend.is_some();
        let undoes_count = undo_request && r.request;
        if !counts_usage && !undoes_count {
            // A request count is final once admitted: nothing to settle, no shared-data round trip.
            return;
        }
        let now_s = now_ms / 1000;
        let result = store::update(store, &r.store_key, |current| {
            let mut st = SubjectState::decode(current);
            st.requests.retain_live(now_s, WINDOW_SPAN_S);
            st.tokens.retain_live(now_s, WINDOW_SPAN_S);
            st.leases.retain_live(now_s, self.lease_s);
            if undo_request && r.request {
                st.requests.sub(r.sec, 1);
            }
            if r.lease {
                st.leases.sub(r.sec, 1);
            }
            if r.tokens {
                if actual.tokens < est.tokens {
                    st.tokens.sub(r.sec, est.tokens - actual.tokens);
                } else {
                    st.tokens.add(now_s, actual.tokens - est.tokens);
                }
            }
            if let Some(day) = r.day {
                let today = now_s / SECS_PER_DAY;
                st.day_tokens
                    .settle(SCALE_DAY, day, today, est.tokens, actual.tokens);
            }
            if let Some((scale, period)) = r.spend {
                let current = period_of(scale, now_s);
                st.spend
                    .settle(scale, period, current, est.micro_usd, actual.micro_usd);
            }
            (Some(st.encode()), ())
        });
        if let Err(e) = result {
            // Nothing to refuse any more: the reservation stays and ages out (see module docs).
            log::warn!(
                "weir limits: could not settle {} ({e:?}); its reservation stays",
                r.store_key
            );
        }
    }
}

/// One subject's CAS update. A missing value is first created empty and the update redone:
/// Envoy cannot compare-and-swap a key into existence, so writing the reservation itself into a
/// missing key could silently replace a racing worker's. The empty write can still replace one
/// (both saw the key missing), which is why [`Limiter::seed`] creates every value at configure.
fn reserve_on(
    store: &dyn SharedStore,
    scope: &Scope,
    now_ms: u64,
    est: &Estimate,
    lease_s: u64,
) -> Result<Result<Granted, Denied>, StoreError> {
    let mut outcome = Err(StoreError::CasMismatch);
    for _ in 0..2 {
        outcome = store::update(store, &scope.store_key, |current| match current {
            None => (Some(SubjectState::default().encode()), None),
            Some(_) => {
                let mut state = SubjectState::decode(current);
                match reserve(&mut state, scope.set, now_ms, est, lease_s) {
                    Ok(granted) => (Some(state.encode()), Some(Ok(granted))),
                    Err(denied) => (None, Some(Err(denied))),
                }
            }
        })
        .map(|step| step.ok_or(StoreError::CasMismatch));
        match outcome {
            Ok(Err(StoreError::CasMismatch)) => continue,
            _ => break,
        }
    }
    outcome.and_then(|inner| inner)
}

/// The whole admission decision for one subject: check every limit, then reserve on all.
fn reserve(
    st: &mut SubjectState,
    set: &LimitSet,
    now_ms: u64,
    est: &Estimate,
    lease_s: u64,
) -> Result<Granted, Denied> {
    let now_s = now_ms / 1000;
    st.requests.retain_live(now_s, WINDOW_SPAN_S);
    st.tokens.retain_live(now_s, WINDOW_SPAN_S);
    st.leases.retain_live(now_s, lease_s);

    if let Some(limit) = set.concurrent {
        if st.leases.sum() >= limit {
            // Slots free when requests finish, which nothing here can predict.
            return Err(Denied::new(Limit::Concurrency, limit, Some(1000)));
        }
    }
    if let Some(limit) = set.rpm {
        let wait = st.requests.wait_ms(limit, 1, WINDOW_SPAN_S, now_ms);
        if wait != Some(0) {
            let mut d = Denied::new(Limit::Requests, limit, wait);
            d.requests = Some(Gauge {
                limit,
                remaining: limit.saturating_sub(st.requests.sum()),
                reset_ms: st.requests.reset_ms(WINDOW_SPAN_S, now_ms),
            });
            return Err(d);
        }
    }
    if let Some(limit) = set.tpm {
        let wait = st.tokens.wait_ms(limit, est.tokens, WINDOW_SPAN_S, now_ms);
        if wait != Some(0) {
            let mut d = Denied::new(Limit::TokensPerMinute, limit, wait);
            d.needed = wait.is_none().then_some(est.tokens);
            d.tokens = Some(Gauge {
                limit,
                remaining: limit.saturating_sub(st.tokens.sum()),
                reset_ms: st.tokens.reset_ms(WINDOW_SPAN_S, now_ms),
            });
            return Err(d);
        }
    }
    let day_reset_ms = (now_s / SECS_PER_DAY + 1)
        .saturating_mul(SECS_PER_DAY)
        .saturating_mul(1000)
        .saturating_sub(now_ms);
    if let Some(limit) = set.tpd {
        st.day_tokens.roll(SCALE_DAY, now_s / SECS_PER_DAY);
        if st.day_tokens.used.saturating_add(est.tokens) > limit {
            let too_large = est.tokens > limit;
            let mut d = Denied::new(
                Limit::TokensPerDay,
                limit,
                (!too_large).then_some(day_reset_ms),
            );
            d.needed = too_large.then_some(est.tokens);
            d.tokens = Some(Gauge {
                limit,
                remaining: limit.saturating_sub(st.day_tokens.used),
                reset_ms: day_reset_ms,
            });
            return Err(d);
        }
    }
    if let Some(budget) = set.budget {
        let (scale, next_start_s) = match budget.period {
            BudgetPeriod::Day => (SCALE_DAY, (now_s / SECS_PER_DAY + 1) * SECS_PER_DAY),
            BudgetPeriod::Month => (SCALE_MONTH, next_month_start(now_s)),
        };
        st.spend.roll(scale, period_of(scale, now_s));
        if st.spend.used.saturating_add(est.micro_usd) > budget.micro_usd {
            let too_large = est.micro_usd > budget.micro_usd;
            let wait = next_start_s.saturating_mul(1000).saturating_sub(now_ms);
            let mut d = Denied::new(
                Limit::Budget(budget.period),
                budget.micro_usd,
                (!too_large).then_some(wait),
            );
            d.needed = too_large.then_some(est.micro_usd);
            return Err(d);
        }
    }

    let mut r = Reservation {
        store_key: String::new(),
        sec: now_s,
        request: false,
        tokens: false,
        lease: false,
        day: None,
        spend: None,
    };
    let mut requests = None;
    let mut tokens = None;
    if set.concurrent.is_some() {
        st.leases.add(now_s, 1);
        r.lease = true;
    }
    if let Some(limit) = set.rpm {
        st.requests.add(now_s, 1);
        r.request = true;
        requests = Some(Gauge {
            limit,
            remaining: limit.saturating_sub(st.requests.sum()),
            reset_ms: st.requests.reset_ms(WINDOW_SPAN_S, now_ms),
        });
    }
    if let Some(limit) = set.tpm {
        st.tokens.add(now_s, est.tokens);
        r.tokens = true;
        tokens = Some(Gauge {
            limit,
            remaining: limit.saturating_sub(st.tokens.sum()),
            reset_ms: st.tokens.reset_ms(WINDOW_SPAN_S, now_ms),
        });
    }
    if let Some(limit) = set.tpd {
        st.day_tokens.used = st.day_tokens.used.saturating_add(est.tokens);
        r.day = Some(st.day_tokens.period);
        let day = Gauge {
            limit,
            remaining: limit.saturating_sub(st.day_tokens.used),
            reset_ms: day_reset_ms,
        };
        tokens = Gauge::tighter(tokens, Some(day));
    }
    if set.budget.is_some() {
        st.spend.used = st.spend.used.saturating_add(est.micro_usd);
        r.spend = Some((st.spend.scale, st.spend.period));
    }
    Ok(Granted {
        reservation: r,
        requests,
        tokens,
    })
}

fn refusal(d: &Denied, label: &str) -> Refusal {
    let usd = |micro: u64| format!("${:.2}", micro as f64 / 1e6);
    let (what, limit, needed) = match d.limit {
        Limit::Concurrency => ("concurrent requests limit", d.value.to_string(), None),
        Limit::Requests => ("requests per minute limit", d.value.to_string(), None),
        Limit::TokensPerMinute => (
            "tokens per minute limit",
            d.value.to_string(),
            d.needed.map(|n| format!("{n} tokens")),
        ),
        Limit::TokensPerDay => (
            "tokens per day limit",
            d.value.to_string(),
            d.needed.map(|n| format!("{n} tokens")),
        ),
        Limit::Budget(BudgetPeriod::Day) => ("daily budget", usd(d.value), d.needed.map(usd)),
        Limit::Budget(BudgetPeriod::Month) => ("monthly budget", usd(d.value), d.needed.map(usd)),
    };
    let message = match needed {
        Some(needed) => format!(
            "request too large: estimated at {needed}, more than the {what} of {limit} {label}; \
             lower max_tokens or shorten the prompt"
        ),
        None => format!("{what} of {limit} reached {label}"),
    };
    let retry_after = d
        .wait_ms
        .map(|ms| u32::try_from(ms.div_ceil(1000).max(1)).unwrap_or(u32::MAX));
    Refusal {
        info: ErrorInfo::new(429, ErrorKind::RateLimited, message).with_retry_after(retry_after),
        headers: gauge_headers(d.requests, d.tokens),
    }
}

fn gauge_headers(requests: Option<Gauge>, tokens: Option<Gauge>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (suffix, gauge) in [("requests", requests), ("tokens", tokens)] {
        if let Some(g) = gauge {
            out.push((format!("x-ratelimit-limit-{suffix}"), g.limit.to_string()));
            out.push((
                format!("x-ratelimit-remaining-{suffix}"),
                g.remaining.to_string(),
            ));
            out.push((
                format!("x-ratelimit-reset-{suffix}"),
                format_duration(g.reset_ms),
            ));
        }
    }
    out
}

/// OpenAI's reset format (Go durations): `250ms`, `6s`, `1m0s`, `3h2m1s`; whole seconds are
/// rounded up so a client waiting that long is never early.
pub(crate) fn format_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = ms.div_ceil(1000);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}
