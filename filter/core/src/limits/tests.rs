//! Limits tests against `MemStore`: exactness under racing workers, sliding, reservation and
//! reconciliation, budgets across period boundaries, leases, rollback and headers.

use super::*;
use crate::ir::{ChatRequest, EmbeddingsRequest, ErrorKind, Message, Request, Role, Usage};
use crate::store::{MemStore, SharedStore, StoreError};
use std::cell::RefCell;
use std::rc::Rc;

/// 2025-01-01T00:00:00Z, in ms: a minute, day and month boundary.
const T0: u64 = 1_735_689_600_000;

fn section(json: serde_json::Value) -> LimitsSection {
    serde_json::from_value(json).unwrap()
}

fn key_limits(json: serde_json::Value) -> KeyLimits {
    KeyLimits::compile(
        &serde_json::from_value(json).unwrap(),
        "auth.keys[0].limits",
    )
    .unwrap()
}

fn subject<'a>(kl: &'a KeyLimits, model: &'a str) -> Subject<'a> {
    Subject {
        key_id: "team-a",
        key_limits: Some(kl),
        model,
    }
}

fn est(tokens: u64) -> Estimate {
    Estimate {
        tokens,
        micro_usd: 0,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn demo_key_is_refused_on_its_11th_request_within_a_minute() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let kl = key_limits(serde_json::json!({"requests_per_minute": 10}));
    let s = subject(&kl, "gpt-4o");
    // Ten requests spread over 59.9 s, starting half-way through a second.
    for i in 0..10 {
        let t = T0 + 500 + i * 5_900;
        let ticket = limiter.admit(&store, t, &s, est(0)).unwrap();
        assert_eq!(
            header(&ticket.headers(), "x-ratelimit-remaining-requests"),
            Some((9 - i).to_string().as_str())
        );
    }
    let r = limiter.admit(&store, T0 + 60_400, &s, est(0)).unwrap_err();
    assert_eq!((r.info.status, r.info.kind), (429, ErrorKind::RateLimited));
    assert_eq!(
        r.info.message,
        "requests per minute limit of 10 reached for key 'team-a'"
    );
    // The first request (second 0) leaves the window at 61.000.
    assert_eq!(r.info.retry_after, Some(1));
    assert_eq!(
        header(&r.headers, "x-ratelimit-remaining-requests"),
        Some("0")
    );
    assert!(limiter.admit(&store, T0 + 60_999, &s, est(0)).is_err());
    assert!(limiter.admit(&store, T0 + 61_000, &s, est(0)).is_ok());
    assert!(limiter.admit(&store, T0 + 61_000, &s, est(0)).is_err());
}

#[test]
fn exactly_the_limit_of_200_racing_requests_succeed() {
    // Two limiters over one store are two worker VMs; every other request of worker A has
    // worker B's admission slipped in between A's read and its write.
    let store = MemStore::new();
    let cfg = LimitsSection::default();
    let a = Limiter::compile(&cfg).unwrap();
    let b = Rc::new(Limiter::compile(&cfg).unwrap());
    let kl = Rc::new(key_limits(serde_json::json!({"requests_per_minute": 60})));
    // Each worker seeds at configure, as the gateway does; the second seed changes nothing.
    a.seed(&store, [("team-a", &*kl)]).unwrap();
    b.seed(&store, [("team-a", &*kl)]).unwrap();
    let admitted = Rc::new(RefCell::new(0u32));
    for i in 0..100u64 {
        let now = T0 + i * 37;
        if i % 2 == 0 {
            let (b, kl, admitted) = (b.clone(), kl.clone(), admitted.clone());
            store.race_once(move |s: &MemStore| {
                if b.admit(s, now, &subject(&kl, "m"), est(0)).is_ok() {
                    *admitted.borrow_mut() += 1;
                }
            });
        } else if b.admit(&store, now, &subject(&kl, "m"), est(0)).is_ok() {
            *admitted.borrow_mut() += 1;
        }
        if a.admit(&store, now, &subject(&kl, "m"), est(0)).is_ok() {
            *admitted.borrow_mut() += 1;
        }
    }
    assert_eq!(*admitted.borrow(), 60);
}

/// A small deterministic generator, so the property test needs no crate.
struct Lcg(u64);
impl Lcg {
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn no_continuous_minute_ever_holds_more_than_the_limit() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let kl = key_limits(serde_json::json!({"requests_per_minute": 7}));
    let mut rng = Lcg(42);
    let mut now = T0 + 123;
    let mut times = Vec::new();
    for _ in 0..3_000 {
        now += rng.next_u64() % 900;
        if limiter
            .admit(&store, now, &subject(&kl, "m"), est(0))
            .is_ok()
        {
            times.push(now);
        }
    }
    for (i, &t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|&&u| u < t + 60_000).count();
        assert!(
            in_window <= 7,
            "{in_window} requests in the minute from {t}"
        );
    }
    // And the window does slide: about 7 per 61 s over the ~22 minutes simulated.
    let minutes = (now - T0) / 61_000;
    assert!(
        times.len() as u64 >= 7 * minutes,
        "{} admitted",
        times.len()
    );
}

#[test]
fn unseeded_subjects_are_created_empty_and_seeding_keeps_live_counts() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&section(serde_json::json!({
        "models": {"m": {"requests_per_minute": 5}},
        "global": {"concurrent_requests": 5},
    })))
    .unwrap();
    let kl = key_limits(serde_json::json!({"requests_per_minute": 2,
        "models": {"m": {"tokens_per_day": 9}}}));
    limiter
        .admit(&store, T0, &subject(&kl, "m"), est(1))
        .unwrap();
    assert_eq!(store.len(), 4);
    limiter.seed(&store, [("team-a", &kl)]).unwrap();
    limiter
        .admit(&store, T0, &subject(&kl, "m"), est(1))
        .unwrap();
    assert!(
        limiter
            .admit(&store, T0, &subject(&kl, "m"), est(1))
            .is_err(),
        "seeding did not reset the key's count"
    );
    let fresh = MemStore::new();
    limiter.seed(&fresh, [("team-a", &kl)]).unwrap();
    let mut keys: Vec<String> = [
        "weir:lim:global",
        "weir:lim:model:m",
        "weir:lim:key:team-a",
        "weir:lim:key-model:team-a:m",
    ]
    .into_iter()
    .filter(|k| fresh.get(k).unwrap().0.is_some())
    .map(String::from)
    .collect();
    keys.dedup();
    assert_eq!((keys.len(), fresh.len()), (4, 4));
}

#[test]
fn window_slides_second_by_second() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let kl = key_limits(serde_json::json!({"requests_per_minute": 10}));
    let s = subject(&kl, "m");
    for _ in 0..5 {
        limiter.admit(&store, T0, &s, est(0)).unwrap();
    }
    for _ in 0..5 {
        limiter.admit(&store, T0 + 30_000, &s, est(0)).unwrap();
    }
    let r = limiter.admit(&store, T0 + 45_250, &s, est(0)).unwrap_err();
    assert_eq!(r.info.retry_after, Some(16), "second 0 leaves at 61.000");
    assert_eq!(
        header(&r.headers, "x-ratelimit-reset-requests"),
        Some("46s")
    );
    // At 61 s the first five have left; the next five from second 30 are still in.
    for _ in 0..5 {
        limiter.admit(&store, T0 + 61_000, &s, est(0)).unwrap();
    }
    let r = limiter.admit(&store, T0 + 61_000, &s, est(0)).unwrap_err();
    assert_eq!(r.info.retry_after, Some(30));
    assert!(limiter.admit(&store, T0 + 91_000, &s, est(0)).is_ok());
}

#[test]
fn tokens_are_reserved_then_reconciled() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let kl = key_limits(serde_json::json!({"tokens_per_minute": 1000}));
    let s = subject(&kl, "m");
    let t1 = limiter.admit(&store, T0, &s, est(400)).unwrap();
    assert_eq!(
        header(&t1.headers(), "x-ratelimit-remaining-tokens"),
        Some("600")
    );
    let t2 = limiter.admit(&store, T0, &s, est(400)).unwrap();
    let r = limiter.admit(&store, T0 + 1_000, &s, est(400)).unwrap_err();
    assert_eq!(
        r.info.message,
        "tokens per minute limit of 1000 reached for key 'team-a'"
    );
    assert_eq!(r.info.retry_after, Some(60));
    assert_eq!(
        header(&r.headers, "x-ratelimit-remaining-tokens"),
        Some("200")
    );
    // A request that used 100 of its 400 gives 300 back.
    limiter.settle(
        &store,
        T0 + 2_000,
        &t1,
        Actual {
            tokens: 100,
            micro_usd: 0,
        },
    );
    let t3 = limiter.admit(&store, T0 + 2_000, &s, est(400)).unwrap();
    assert_eq!(
        header(&t3.headers(), "x-ratelimit-remaining-tokens"),
        Some("100")
    );
    // Settling twice must not refund twice.
    limiter.settle(&store, T0 + 2_000, &t1, Actual::default());
    assert!(limiter.admit(&store, T0 + 2_000, &s, est(101)).is_err());
    // An overrun is charged: 400 reserved, 700 used.
    limiter.settle(
        &store,
        T0 + 3_000,
        &t2,
        Actual {
            tokens: 700,
            micro_usd: 0,
        },
    );
    let r = limiter.admit(&store, T0 + 3_000, &s, est(1)).unwrap_err();
    assert_eq!(
        header(&r.headers, "x-ratelimit-remaining-tokens"),
        Some("0")
    );
    // Everything ages out a minute after it was charged.
    limiter.settle(
        &store,
        T0 + 4_000,
        &t3,
        Actual {
            tokens: 400,
            micro_usd: 0,
        },
    );
    // At 63 s only the 300-token overrun (charged in second 3) is left in the window.
    assert!(limiter.admit(&store, T0 + 63_000, &s, est(701)).is_err());
    assert!(limiter.admit(&store, T0 + 64_000, &s, est(1000)).is_ok());
}

#[test]
fn overshoot_is_bounded_by_the_underestimates_in_flight() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let kl = key_limits(serde_json::json!({"tokens_per_day": 10_000}));
    let s = subject(&kl, "m");
    let mut rng = Lcg(7);
    let mut now = T0;
    let mut in_flight: Vec<(Ticket, u64)> = Vec::new();
    let (mut consumed, mut bound) = (0u64, 10_000u64);
    for _ in 0..500 {
        now += 1_000;
        let e = 100 + rng.next_u64() % 400;
        if let Ok(t) = limiter.admit(&store, now, &s, est(e)) {
            let actual = rng.next_u64() % (2 * e);
            bound += actual.saturating_sub(e);
            in_flight.push((t, actual));
        }
        if rng.next_u64() % 2 == 0 && !in_flight.is_empty() {
            let (t, actual) = in_flight.remove(0);
            consumed += actual;
            limiter.settle(
                &store,
                now,
                &t,
                Actual {
                    tokens: actual,
                    micro_usd: 0,
                },
            );
        }
    }
    for (t, actual) in in_flight.drain(..) {
        consumed += actual;
        limiter.settle(
            &store,
            now,
            &t,
            Actual {
                tokens: actual,
                micro_usd: 0,
            },
        );
    }
    assert!(now < T0 + 86_400_000, "stayed within one day");
    assert!(consumed <= bound, "consumed {consumed} > bound {bound}");
    assert!(
        consumed > 9_000,
        "the day's tokens were actually usable: {consumed}"
    );
}

#[test]
fn too_large_requests_are_refused_without_retry_after() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let kl = key_limits(serde_json::json!({"tokens_per_minute": 1000, "tokens_per_day": 5000}));
    let r = limiter
        .admit(&store, T0, &subject(&kl, "m"), est(1001))
        .unwrap_err();
    assert_eq!(r.info.retry_after, None);
    assert!(
        r.info.message.starts_with("request too large"),
        "{}",
        r.info.message
    );
    let stored = store.get("weir:lim:key:team-a").unwrap().0;
    assert_eq!(
        super::state::SubjectState::decode(stored.as_deref()),
        super::state::SubjectState::default(),
        "nothing reserved"
    );
}

#[test]
fn budgets_cut_off_and_reset_at_the_period_boundary() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let price = Price {
        per_request: 0.3,
        ..Price::default()
    };
    let e = Estimate::from_tokens(0, 0, Some(&price));
    assert_eq!(e.micro_usd, 300_000);
    let kl = key_limits(serde_json::json!({"budget": {"usd": 1.0, "period": "day"}}));
    let s = subject(&kl, "m");
    let day_end = T0 + 86_400_000;
    for _ in 0..3 {
        let t = limiter.admit(&store, day_end - 10_000, &s, e).unwrap();
        limiter.settle(&store, day_end - 9_000, &t, Actual::from_estimate(e));
    }
    let r = limiter.admit(&store, day_end - 1_500, &s, e).unwrap_err();
    assert_eq!(
        r.info.message,
        "daily budget of $1.00 reached for key 'team-a'"
    );
    assert_eq!(r.info.retry_after, Some(2));
    assert!(limiter.admit(&store, day_end, &s, e).is_ok(), "a new day");

    // Monthly: 2025-01-31T23:59:59Z, then February.
    let kl = key_limits(serde_json::json!({"budget": {"usd": 0.5, "period": "month"}}));
    let s = subject(&kl, "other");
    let jan_end = 1_738_367_999_000;
    let t = limiter.admit(&store, jan_end, &s, e).unwrap();
    // It really cost 0.45: only 0.05 left this month.
    limiter.settle(
        &store,
        jan_end,
        &t,
        Actual {
            tokens: 0,
            micro_usd: 450_000,
        },
    );
    let r = limiter.admit(
        &store,
        jan_end,
        &s,
        Estimate {
            tokens: 0,
            micro_usd: 60_000,
        },
    );
    assert_eq!(r.unwrap_err().info.retry_after, Some(1));
    assert!(limiter
        .admit(
            &store,
            jan_end,
            &s,
            Estimate {
                tokens: 0,
                micro_usd: 50_000
            }
        )
        .is_ok());
    assert!(
        limiter.admit(&store, jan_end + 1_000, &s, e).is_ok(),
        "February"
    );
}

#[test]
fn concurrency_is_released_at_settle_and_leases_expire() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&section(
        serde_json::json!({"concurrency_lease_seconds": 600}),
    ))
    .unwrap();
    let kl = key_limits(serde_json::json!({"concurrent_requests": 2}));
    let s = subject(&kl, "m");
    let t1 = limiter.admit(&store, T0, &s, est(0)).unwrap();
    let _t2 = limiter.admit(&store, T0, &s, est(0)).unwrap();
    let r = limiter.admit(&store, T0 + 5, &s, est(0)).unwrap_err();
    assert_eq!(
        r.info.message,
        "concurrent requests limit of 2 reached for key 'team-a'"
    );
    assert_eq!(r.info.retry_after, Some(1));
    limiter.settle(&store, T0 + 10, &t1, Actual::default());
    let t3 = limiter.admit(&store, T0 + 20, &s, est(0)).unwrap();
    assert!(limiter.admit(&store, T0 + 30, &s, est(0)).is_err());
    // t2 and t3 are never settled (their VM died): their leases run out.
    assert!(limiter.admit(&store, T0 + 600_000, &s, est(0)).is_err());
    assert!(limiter.admit(&store, T0 + 601_000, &s, est(0)).is_ok());
    assert!(limiter.admit(&store, T0 + 601_000, &s, est(0)).is_ok());
    // A late settle of an expired lease takes nothing from the live ones.
    limiter.settle(&store, T0 + 601_000, &t3, Actual::default());
    assert!(limiter.admit(&store, T0 + 601_000, &s, est(0)).is_err());
}

#[test]
fn a_refusal_by_a_later_subject_rolls_back_the_earlier_ones() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&section(serde_json::json!({
        "models": {"gpt-4o": {"requests_per_minute": 1, "tokens_per_minute": 100_000}},
        "global": {"concurrent_requests": 100},
    })))
    .unwrap();
    let kl = key_limits(serde_json::json!({
        "requests_per_minute": 3, "tokens_per_minute": 1000, "concurrent_requests": 3,
        "models": {"gpt-4o": {"tokens_per_day": 800}},
    }));
    let _ok = limiter
        .admit(&store, T0, &subject(&kl, "gpt-4o"), est(100))
        .unwrap();
    for _ in 0..5 {
        let r = limiter
            .admit(&store, T0, &subject(&kl, "gpt-4o"), est(100))
            .unwrap_err();
        assert_eq!(
            r.info.message,
            "requests per minute limit of 1 reached for model 'gpt-4o'"
        );
    }
    // Were the refusals not rolled back, the key would be out of requests, tokens and slots.
    let t = limiter
        .admit(&store, T0, &subject(&kl, "gpt-4o-mini"), est(800))
        .unwrap();
    assert_eq!(
        header(&t.headers(), "x-ratelimit-remaining-tokens"),
        Some("100")
    );
    assert_eq!(
        header(&t.headers(), "x-ratelimit-remaining-requests"),
        Some("1")
    );
    let _t4 = limiter
        .admit(&store, T0, &subject(&kl, "gpt-4o-mini"), est(0))
        .unwrap();
    let r = limiter
        .admit(&store, T0, &subject(&kl, "gpt-4o-mini"), est(0))
        .unwrap_err();
    assert_eq!(
        r.info.message,
        "concurrent requests limit of 3 reached for key 'team-a'"
    );
    // The key-on-model subject was rolled back too: its day still has 700 tokens left.
    limiter.settle(&store, T0, &t, Actual::default());
    let t = limiter
        .admit(&store, T0 + 61_000, &subject(&kl, "gpt-4o"), est(700))
        .unwrap();
    assert_eq!(
        header(&t.headers(), "x-ratelimit-remaining-tokens"),
        Some("0")
    );
    assert_eq!(
        header(&t.headers(), "x-ratelimit-limit-tokens"),
        Some("800")
    );
}

#[test]
fn headers_report_the_tightest_limit_and_count_down() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&section(serde_json::json!({
        "global": {"requests_per_minute": 1000, "tokens_per_minute": 1_000_000},
    })))
    .unwrap();
    let kl = key_limits(serde_json::json!({"requests_per_minute": 3, "tokens_per_day": 500}));
    let mut seen = Vec::new();
    for i in 0..3u64 {
        let t = limiter
            .admit(&store, T0 + i * 2_000, &subject(&kl, "m"), est(100))
            .unwrap();
        let h = t.headers();
        seen.push(
            header(&h, "x-ratelimit-remaining-requests")
                .unwrap()
                .to_string(),
        );
        assert_eq!(header(&h, "x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(header(&h, "x-ratelimit-limit-tokens"), Some("500"));
        assert_eq!(
            header(&h, "x-ratelimit-remaining-tokens"),
            Some((400 - i * 100).to_string().as_str())
        );
        // Tokens: the key's day (reset at midnight UTC) is tighter than the global minute.
        let to_midnight = ["24h0m0s", "23h59m58s", "23h59m56s"][i as usize];
        assert_eq!(header(&h, "x-ratelimit-reset-tokens"), Some(to_midnight));
        // Requests: the window is empty again 61 s after its newest request.
        assert_eq!(header(&h, "x-ratelimit-reset-requests"), Some("1m1s"));
    }
    assert_eq!(seen, ["2", "1", "0"]);
}

#[test]
fn durations_use_openai_format() {
    use super::engine::format_duration as f;
    assert_eq!(f(0), "0ms");
    assert_eq!(f(250), "250ms");
    assert_eq!(f(1_000), "1s");
    assert_eq!(f(5_001), "6s");
    assert_eq!(f(60_000), "1m0s");
    assert_eq!(f(86_400_000), "24h0m0s");
}

#[test]
fn store_keys_come_from_config_only() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&section(serde_json::json!({
        "models": {"llama3:8b": {"requests_per_minute": 1000}},
    })))
    .unwrap();
    let kl = key_limits(serde_json::json!({"models": {"gpt-4o": {"requests_per_minute": 9}}}));
    for i in 0..50 {
        let model = format!("client-model-{i}");
        limiter
            .admit(&store, T0, &subject(&kl, &model), est(1))
            .unwrap();
    }
    assert!(store.is_empty(), "unconfigured models have no subject");
    limiter
        .admit(&store, T0, &subject(&kl, "gpt-4o"), est(1))
        .unwrap();
    limiter
        .admit(&store, T0, &subject(&kl, "llama3:8b"), est(1))
        .unwrap();
    assert_eq!(store.len(), 2);
    assert!(store
        .get("weir:lim:key-model:team-a:gpt-4o")
        .unwrap()
        .0
        .is_some());
    assert!(store.get("weir:lim:model:llama3:8b").unwrap().0.is_some());
}

struct BrokenStore;
impl SharedStore for BrokenStore {
    fn get(&self, _key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        Err(StoreError::Other("host said no".into()))
    }
    fn set(&self, _key: &str, _value: &[u8], _cas: u32) -> Result<(), StoreError> {
        Err(StoreError::Other("host said no".into()))
    }
}

/// Loses every CAS race, as if other workers always wrote in between.
struct ContendedStore(MemStore);
impl SharedStore for ContendedStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        self.0.get(key)
    }
    fn set(&self, _key: &str, _value: &[u8], _cas: u32) -> Result<(), StoreError> {
        Err(StoreError::CasMismatch)
    }
}

#[test]
fn store_failures_fail_closed() {
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let kl = key_limits(serde_json::json!({"requests_per_minute": 5}));
    for store in [
        &BrokenStore as &dyn SharedStore,
        &ContendedStore(MemStore::new()),
    ] {
        let r = limiter
            .admit(store, T0, &subject(&kl, "m"), est(1))
            .unwrap_err();
        assert_eq!((r.info.status, r.info.kind), (503, ErrorKind::Unavailable));
        assert_eq!(r.info.retry_after, Some(1));
    }
    // Settling against a broken store only logs.
    let ticket = limiter
        .admit(&MemStore::new(), T0, &subject(&kl, "m"), est(1))
        .unwrap();
    limiter.settle(&BrokenStore, T0, &ticket, Actual::default());
    assert!(ticket.is_settled());
    // Without limits nothing touches the store, broken or not.
    assert!(limiter
        .admit(
            &BrokenStore,
            T0,
            &Subject {
                key_id: "x",
                key_limits: None,
                model: "m"
            },
            est(1)
        )
        .is_ok());
}

#[test]
fn a_later_subjects_store_failure_rolls_back_the_earlier_ones() {
    // Fails only on the global subject.
    struct GlobalBroken(MemStore);
    impl SharedStore for GlobalBroken {
        fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
            if key == "weir:lim:global" {
                Err(StoreError::Other("no".into()))
            } else {
                self.0.get(key)
            }
        }
        fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
            self.0.set(key, value, cas)
        }
    }
    let store = GlobalBroken(MemStore::new());
    let limiter = Limiter::compile(&section(serde_json::json!({
        "global": {"requests_per_minute": 5},
    })))
    .unwrap();
    let kl = key_limits(serde_json::json!({"requests_per_minute": 1}));
    for _ in 0..3 {
        let r = limiter
            .admit(&store, T0, &subject(&kl, "m"), est(0))
            .unwrap_err();
        assert_eq!(r.info.status, 503);
    }
    let ok = limiter.admit(&store.0, T0, &subject(&kl, "m"), est(0));
    assert!(ok.is_ok(), "the key's slot was given back each time");
}

#[test]
fn estimates_and_costs() {
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let chat = Request::Chat(ChatRequest {
        model: "m".into(),
        messages: vec![
            Message::text(Role::System, "x".repeat(40)),
            Message::text(Role::User, "y".repeat(41)),
        ],
        ..Default::default()
    });
    // ceil(81 / 4) = 21 input, 1024 default output.
    assert_eq!(
        Estimate::for_request(&chat, &limiter, None).tokens,
        21 + 1024
    );
    let Request::Chat(mut c) = chat else {
        unreachable!()
    };
    c.max_tokens = Some(100);
    c.n = Some(2);
    let price = Price {
        input: 2.5,
        output: 10.0,
        cached_input: 1.25,
        per_request: 0.0,
    };
    let e = Estimate::for_request(&Request::Chat(c), &limiter, Some(&price));
    assert_eq!(e.tokens, 21 + 200);
    // 21 * 2.5 + 200 * 10 = 2052.5 micro-USD, rounded up.
    assert_eq!(e.micro_usd, 2053);
    let emb = Request::Embeddings(EmbeddingsRequest {
        model: "e".into(),
        input: vec!["abcd".into(), "é".into()],
        ..Default::default()
    });
    assert_eq!(Estimate::for_request(&emb, &limiter, None).tokens, 2);

    let usage = Usage {
        input_tokens: 1_000_000,
        output_tokens: 100_000,
        cached_input_tokens: 400_000,
        reasoning_tokens: 0,
    };
    // 600k * 2.5 + 400k * 1.25 + 100k * 10 (micro-USD) = $3.00.
    assert_eq!(cost_micro_usd(&price, &usage), 3_000_000);
    let a = Actual::from_usage(&usage, Some(&price));
    assert_eq!((a.tokens, a.micro_usd), (1_100_000, 3_000_000));
    let weird = Price {
        input: -1.0,
        output: f64::NAN,
        cached_input: f64::INFINITY,
        per_request: 0.0,
    };
    assert_eq!(cost_micro_usd(&weird, &usage), 0);
    let huge = Usage {
        input_tokens: u64::MAX,
        output_tokens: u64::MAX,
        cached_input_tokens: u64::MAX,
        reasoning_tokens: 0,
    };
    assert_eq!(
        cost_micro_usd(
            &Price {
                cached_input: 1e300,
                ..price
            },
            &huge
        ),
        u64::MAX
    );
}

#[test]
fn config_is_strict() {
    for (json, field) in [
        (
            serde_json::json!({"global": {"requests_per_minute": 0}}),
            "limits.global.requests_per_minute",
        ),
        (
            serde_json::json!({"models": {"m": {"budget": {"usd": -1.0, "period": "day"}}}}),
            "limits.models[\"m\"].budget.usd",
        ),
        (
            serde_json::json!({"estimate": {"chars_per_token": 0}}),
            "limits.estimate.chars_per_token",
        ),
        (
            serde_json::json!({"concurrency_lease_seconds": 0}),
            "limits.concurrency_lease_seconds",
        ),
        (
            serde_json::json!({"models": {"": {}}}),
            "limits.models[\"\"]",
        ),
    ] {
        let e = Limiter::compile(&section(json.clone())).unwrap_err();
        assert_eq!(e.field, field, "{json}");
    }
    for bad in [
        serde_json::json!({"global": {"models": {}}}),
        serde_json::json!({"estimate": {"chars": 3}}),
        serde_json::json!({"models": {"m": {"budget": {"usd": 1.0, "period": "week"}}}}),
    ] {
        assert!(serde_json::from_value::<LimitsSection>(bad).is_err());
    }
    let e = KeyLimits::compile(
        &serde_json::from_value(serde_json::json!({"models": {"m": {"tokens_per_day": 0}}}))
            .unwrap(),
        "auth.keys[3].limits",
    )
    .unwrap_err();
    assert_eq!(e.field, "auth.keys[3].limits.models[\"m\"].tokens_per_day");
    let s = section(serde_json::json!({}));
    assert_eq!(s.estimate.default_max_tokens, 1024);
    assert_eq!(s.concurrency_lease_seconds, 900);
}

#[test]
fn extreme_clocks_and_amounts_do_not_panic() {
    let store = MemStore::new();
    let limiter = Limiter::compile(&section(serde_json::json!({
        "global": {"requests_per_minute": 3, "tokens_per_minute": 10, "tokens_per_day": 10,
                   "concurrent_requests": 2, "budget": {"usd": 1.0, "period": "month"}},
    })))
    .unwrap();
    let s = Subject {
        key_id: "k:%",
        key_limits: None,
        model: "m",
    };
    for now in [0, 999, T0, u64::MAX / 2, u64::MAX - 1, u64::MAX, 5] {
        for e in [
            est(0),
            est(u64::MAX),
            Estimate {
                tokens: 1,
                micro_usd: u64::MAX,
            },
        ] {
            if let Ok(t) = limiter.admit(&store, now, &s, e) {
                limiter.settle(
                    &store,
                    now,
                    &t,
                    Actual {
                        tokens: u64::MAX,
                        micro_usd: u64::MAX,
                    },
                );
            }
        }
    }
}

/// Counts the store's writes, to see which steps touch shared data.
#[derive(Default)]
struct CountingStore {
    inner: MemStore,
    sets: std::cell::Cell<usize>,
}
impl SharedStore for CountingStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        self.sets.set(self.sets.get() + 1);
        self.inner.set(key, value, cas)
    }
}

#[test]
fn settling_a_request_count_only_writes_nothing() {
    let store = CountingStore::default();
    let limiter = Limiter::compile(&LimitsSection::default()).unwrap();
    let requests = key_limits(serde_json::json!({"requests_per_minute": 10}));
    let tokens =
        key_limits(serde_json::json!({"requests_per_minute": 10, "tokens_per_minute": 1000}));
    let writes = |kl: &KeyLimits| {
        limiter.seed(&store, [("team-a", kl)]).unwrap();
        let before = store.sets.get();
        let ticket = limiter
            .admit(&store, T0, &subject(kl, "m"), est(50))
            .unwrap();
        let admitted = store.sets.get() - before;
        limiter.settle(&store, T0 + 10, &ticket, Actual::default());
        (admitted, store.sets.get() - before - admitted)
    };
    assert_eq!(
        writes(&requests),
        (1, 0),
        "a request count is final when admitted"
    );
    assert_eq!(
        writes(&tokens),
        (1, 1),
        "the actual usage replaces the token estimate"
    );
}
