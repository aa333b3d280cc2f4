//! Choosing a route's target for one request (strategy over the targets whose breaker admits
//! them) and reporting how the request ended, so the shared health record stays exact.
//!
//! Invariants: every [`Route::choose`] that returns a [`Choice`] acquired exactly one target
//! (in-flight + 1) and the caller must hand its [`Ticket`] to [`Route::finish`] exactly once;
//! an [`Unavailable`] acquired nothing. Shared-data failures degrade to a choice without
//! health, never to a refused request. A route whose decisions never read health (no breaker,
//! a strategy other than `least_in_flight` / `lowest_latency`) keeps no record at all: acquiring
//! and finishing are then free of shared-data round trips.

use super::affinity;
use super::health::{self, Admission, FailureClass, Health, Outcome};
use super::{Route, Strategy, Target};
use crate::ir::Request;
use crate::store::{self, SharedStore};
use std::cmp::Ordering;

/// What [`Route::finish`] needs back from [`Route::choose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub index: usize,
    /// This request is the half-open breaker's probe.
    pub probe: bool,
}

/// The target for this request.
#[derive(Debug)]
pub struct Choice<'r> {
    pub target: &'r Target,
    pub ticket: Ticket,
    /// The prefix hash for `x-weir-affinity`, when the route uses affinity.
    pub affinity: Option<String>,
    /// Breaker events for the metrics: (provider, event).
    pub events: Vec<(String, &'static str)>,
}

/// Every target's breaker refuses: answer 503 without calling upstream.
#[derive(Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// Seconds until the first target lets a probe through (at least 1).
    pub retry_after_s: u64,
    pub events: Vec<(String, &'static str)>,
}

/// How the request ended, from the gateway's point of view.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The final status (0: no response was started).
    pub status: u16,
    /// The provider that answered (`x-weir-provider`); `None` for Envoy's own replies.
    pub provider: Option<&'a str>,
    pub attempts: u32,
    /// Time to the answer (first bytes for streams).
    pub latency_ms: Option<u64>,
    /// The request went upstream (the gateway did not refuse it after the choice).
    pub forwarded: bool,
}

impl Route {
    /// The shared health record of target `index`, if this route keeps one.
    pub fn health(&self, store: &dyn SharedStore, index: usize) -> Option<Health> {
        if !self.tracks_health() {
            return None;
        }
        self.health_keys.get(index).map(|k| health::read(store, k))
    }

    /// Whether any decision of this route reads target health.
    pub fn tracks_health(&self) -> bool {
        self.breaker.is_some()
            || matches!(
                self.strategy,
                Strategy::LeastInFlight | Strategy::LowestLatency
            )
    }

    /// Chooses and acquires a target (see the module doc). `random` is a fresh host random.
    pub fn choose(
        &self,
        store: &dyn SharedStore,
        now_ms: u64,
        random: u64,
        request: &Request,
    ) -> Result<Choice<'_>, Unavailable> {
        let tracked = self.tracks_health();
        let healths: Vec<Health> = if tracked {
            self.health_keys
                .iter()
                .map(|k| health::read(store, k))
                .collect()
        } else {
            vec![Health::default(); self.targets.len()]
        };
        let mut events = Vec::new();
        let mut earliest = u64::MAX;
        let mut available = Vec::with_capacity(self.targets.len());
        for (i, h) in healths.iter().enumerate() {
            match (self.breaker.is_some(), h.available(now_ms)) {
                (true, Err(until)) => {
                    earliest = earliest.min(until);
                    events.push((self.provider_of(i), "skipped"));
                }
                _ => available.push(i),
            }
        }
        let affinity = self
            .affinity
            .as_ref()
            .and_then(|c| affinity::prefix_hash(request, c));
        let order = self.order(&available, &healths, store, random, affinity.as_deref());
        for index in order {
            let Some(key) = self.health_keys.get(index) else {
                continue;
            };
            let acquired = if tracked {
                health::acquire(store, key, now_ms, self.breaker.as_ref())
            } else {
                Ok(Admission::Admitted {
                    probe: false,
                    transition: None,
                })
            };
            let probe = match acquired {
                Ok(Admission::Admitted { probe, transition }) => {
                    if let Some(t) = transition {
                        events.push((self.provider_of(index), t.name()));
                    }
                    probe
                }
                Ok(Admission::Refused { until_ms }) => {
                    // Another worker took the probe slot between our read and now.
                    earliest = earliest.min(until_ms);
                    continue;
                }
                Err(e) => {
                    log::warn!("route '{}': health record unavailable: {e:?}", self.name);
                    false
                }
            };
            if let Some(target) = self.targets.get(index) {
                return Ok(Choice {
                    target,
                    ticket: Ticket { index, probe },
                    affinity,
                    events,
                });
            }
        }
        events.push(("-".to_string(), "refused"));
        let wait_ms = earliest.saturating_sub(now_ms);
        Err(Unavailable {
            retry_after_s: wait_ms.div_ceil(1000).max(1),
            events,
        })
    }

    /// Records how the request of `ticket` ended; returns breaker events for the metrics.
    pub fn finish(
        &self,
        store: &dyn SharedStore,
        now_ms: u64,
        ticket: Ticket,
        f: &Finished,
    ) -> Vec<(String, &'static str)> {
        let mut events = Vec::new();
        if !self.tracks_health() {
            return events;
        }
        let mut rec = |index: usize, outcome: Outcome, latency, release: bool, probe: bool| {
            let Some(key) = self.health_keys.get(index) else {
                return;
            };
            let cfg = self.breaker.as_ref();
            match health::record(store, key, outcome, latency, now_ms, release, probe, cfg) {
                Ok(Some(t)) => events.push((self.provider_of(index), t.name())),
                Ok(None) => {}
                Err(e) => log::warn!("route '{}': could not record health: {e:?}", self.name),
            }
        };
        if !f.forwarded {
            rec(ticket.index, Outcome::Released, None, true, ticket.probe);
            return events;
        }
        // The target that answered: the chosen one when its provider matches, else the first
        // target of that provider (a failover endpoint in the same cluster, or a replica).
        let served = f
            .provider
            .and_then(|p| match self.targets.get(ticket.index) {
                Some(t) if t.provider == p => Some(ticket.index),
                _ => self.targets.iter().position(|t| t.provider == p),
            });
        let outcome = Outcome::from_status(f.status, f.provider.is_some());
        match served {
            Some(s) if s != ticket.index => {
                // Envoy retried away from the chosen target: its attempt failed. With a single
                // attempt another endpoint of the same cluster simply served it.
                let mine = if f.attempts > 1 {
                    Outcome::Failure(FailureClass::Server)
                } else {
                    Outcome::Released
                };
                rec(ticket.index, mine, None, true, ticket.probe);
                rec(s, outcome, f.latency_ms, false, false);
            }
            _ => rec(ticket.index, outcome, f.latency_ms, true, ticket.probe),
        }
        events
    }

    pub(super) fn rotation_key(&self) -> String {
        format!("weir:rr:{}", self.name)
    }

    fn provider_of(&self, index: usize) -> String {
        self.targets
            .get(index)
            .map(|t| t.provider.clone())
            .unwrap_or_default()
    }

    /// Preference order for ties and failover: priority, then preferred region, then config order.
    fn rank(&self, i: usize) -> (u32, bool, usize) {
        let t = self.targets.get(i);
        let away = match (&self.prefer_region, t.and_then(|t| t.region.as_ref())) {
            (Some(want), Some(r)) => want != r,
            (Some(_), None) => true,
            (None, _) => false,
        };
        (t.map(|t| t.priority).unwrap_or(u32::MAX), away, i)
    }

    /// The available targets, preferred first; the rest are fallbacks when a breaker's probe
    /// slot was taken by another worker meanwhile.
    fn order(
        &self,
        available: &[usize],
        healths: &[Health],
        store: &dyn SharedStore,
        random: u64,
        affinity: Option<&str>,
    ) -> Vec<usize> {
        let mut ranked = available.to_vec();
        ranked.sort_by_key(|&i| self.rank(i));
        let n = ranked.len();
        if n <= 1 {
            return ranked;
        }
        let weight = |i: usize| u64::from(self.targets.get(i).map(|t| t.weight).unwrap_or(0));
        let first = match self.strategy {
            Strategy::Priority => return ranked,
            Strategy::Cheapest => {
                let price = |i: usize| {
                    self.targets
                        .get(i)
                        .and_then(|t| t.price)
                        .map(|p| p.input + p.output)
                        .unwrap_or(f64::INFINITY)
                };
                ranked.sort_by(|&a, &b| price(a).total_cmp(&price(b)));
                return ranked;
            }
            Strategy::LeastInFlight => {
                let load = |i: usize| healths.get(i).map(Health::in_flight).unwrap_or(0);
                // Ties go round at random rather than all to the first.
                ranked.rotate_left(usize::try_from(random % n as u64).unwrap_or(0));
                ranked.sort_by_key(|&i| load(i));
                return ranked;
            }
            Strategy::LowestLatency => {
                // No sample yet sorts first (-1): every target gets measured.
                let lat = |i: usize| healths.get(i).and_then(Health::latency_ms).unwrap_or(-1.0);
                ranked.sort_by(|&a, &b| lat(a).partial_cmp(&lat(b)).unwrap_or(Ordering::Equal));
                return ranked;
            }
            Strategy::Random => ranked.get(position(random, n)).copied(),
            Strategy::RoundRobin => {
                let c = self.next_count(store).unwrap_or(random);
                // Rotate, so the fallbacks continue the rotation.
                ranked.rotate_left(position(c, n));
                return ranked;
            }
            Strategy::Weighted | Strategy::WeightedRoundRobin => {
                let total: u64 = ranked.iter().map(|&i| weight(i)).sum();
                let slot = if self.strategy == Strategy::Weighted {
                    random % total.max(1)
                } else {
                    let c = self.next_count(store).unwrap_or(random);
                    spread(c % total.max(1), total)
                };
                let mut point = slot;
                let mut chosen = None;
                for &i in &ranked {
                    if point < weight(i) {
                        chosen = Some(i);
                        break;
                    }
                    point -= weight(i);
                }
                chosen
            }
            Strategy::PrefixAffinity => match affinity {
                Some(key) => affinity::rendezvous(key, &ranked),
                None => ranked.get(position(random, n)).copied(),
            },
        };
        if let Some(f) = first {
            if let Some(pos) = ranked.iter().position(|&i| i == f) {
                let chosen = ranked.remove(pos);
                ranked.insert(0, chosen);
            }
        }
        ranked
    }

    /// The shared rotation counter, then + 1 (all workers rotate together).
    fn next_count(&self, store: &dyn SharedStore) -> Option<u64> {
        store::update(store, &self.rotation_key(), |cur| {
            let count = cur
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0);
            (Some(count.wrapping_add(1).to_le_bytes().to_vec()), count)
        })
        .ok()
    }
}

fn position(x: u64, n: usize) -> usize {
    usize::try_from(x % (n.max(1) as u64)).unwrap_or(0)
}

/// A permutation of `0..total` that spreads consecutive slots (stride coprime to `total`, near
/// the golden ratio), so weighted rotation interleaves targets instead of sending runs.
fn spread(slot: u64, total: u64) -> u64 {
    if total <= 2 {
        return slot;
    }
    let mut stride = (total * 618 / 1000).max(1);
    while gcd(stride, total) != 1 {
        stride += 1;
    }
    slot * stride % total
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::{ModelConfig, Router};
    use super::*;
    use crate::providers::Providers;
    use crate::store::MemStore;
    use std::collections::BTreeMap;

    fn router(models: &str) -> Router {
        let providers: BTreeMap<String, crate::providers::config::ProviderConfig> =
            serde_json::from_str(
                r#"{"a": {"type": "ollama", "host": "a"}, "b": {"type": "ollama", "host": "b"},
                    "c": {"type": "ollama", "host": "c"}}"#,
            )
            .unwrap();
        let providers = Providers::compile(&providers, &|_| None, &mut Vec::new()).unwrap();
        let models: Vec<ModelConfig> = serde_json::from_str(models).unwrap();
        Router::compile(&models, &providers).unwrap()
    }

    fn chat(system: &str) -> Request {
        let body = serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": system}, {"role": "user", "content": "hi"}]});
        crate::wire::ClientApi::OpenAiChat
            .decode_request(body.to_string().as_bytes())
            .unwrap()
    }

    fn ok(provider: &str) -> Finished<'_> {
        Finished {
            status: 200,
            provider: Some(provider),
            attempts: 1,
            latency_ms: Some(5),
            forwarded: true,
        }
    }

    /// Chooses and finishes `n` requests, all answered by the chosen target; returns providers.
    fn run(route: &Route, store: &MemStore, n: u64) -> Vec<String> {
        (0..n)
            .map(|i| {
                let c = route.choose(store, 1000, i * 7919, &chat("s")).unwrap();
                let p = c.target.provider.clone();
                route.finish(store, 1000, c.ticket, &ok(&p));
                p
            })
            .collect()
    }

    fn count(picks: &[String], p: &str) -> usize {
        picks.iter().filter(|x| *x == p).count()
    }

    #[test]
    fn round_robin_is_exact_across_workers_sharing_a_store() {
        let r = router(
            r#"[{"name": "m", "strategy": "round_robin", "targets": [{"provider": "a"}, {"provider": "b"}, {"provider": "c"}]}]"#,
        );
        let picks = run(r.find("m").unwrap(), &MemStore::new(), 9);
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn weighted_round_robin_is_exact_and_interleaved() {
        let r = router(
            r#"[{"name": "m", "strategy": "weighted_round_robin", "targets": [{"provider": "a", "weight": 3}, {"provider": "b", "weight": 1}]}]"#,
        );
        let picks = run(r.find("m").unwrap(), &MemStore::new(), 400);
        assert_eq!(count(&picks, "a"), 300);
        // No run of more than three a's: b comes once per cycle of four.
        assert!(!picks.windows(4).any(|w| w.iter().all(|p| p == "a")));
    }

    #[test]
    fn weighted_random_follows_the_weights() {
        let r = router(
            r#"[{"name": "m", "strategy": "weighted", "targets": [{"provider": "a", "weight": 3}, {"provider": "b", "weight": 1}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        let a = (0..4000u64)
            .filter(|i| {
                let c = route.choose(&store, 0, *i, &chat("s")).unwrap();
                c.target.provider == "a"
            })
            .count();
        assert_eq!(a, 3000);
    }

    #[test]
    fn least_in_flight_avoids_the_busy_target() {
        let r = router(
            r#"[{"name": "m", "strategy": "least_in_flight", "targets": [{"provider": "a"}, {"provider": "b"}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        // Three requests stay open: they alternate (a, b, then the tie goes either way).
        let open: Vec<_> = (0..2)
            .map(|i| route.choose(&store, 0, i, &chat("s")).unwrap())
            .collect();
        let ps: Vec<&str> = open.iter().map(|c| c.target.provider.as_str()).collect();
        assert!(ps.contains(&"a") && ps.contains(&"b"));
        // Finish b's: the next goes to b.
        let b = open.iter().find(|c| c.target.provider == "b").unwrap();
        route.finish(&store, 1, b.ticket, &ok("b"));
        for r in 0..5 {
            let c = route.choose(&store, 2, r, &chat("s")).unwrap();
            assert_eq!(c.target.provider, "b");
            route.finish(&store, 3, c.ticket, &ok("b"));
        }
        assert_eq!(route.health(&store, 1).unwrap().in_flight(), 0);
        assert_eq!(route.health(&store, 0).unwrap().in_flight(), 1);
    }

    #[test]
    fn lowest_latency_measures_everyone_then_prefers_the_fastest() {
        let r = router(
            r#"[{"name": "m", "strategy": "lowest_latency", "targets": [{"provider": "a"}, {"provider": "b"}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        let lat = |p: &str| if p == "a" { 300 } else { 40 };
        let mut seen = Vec::new();
        for i in 0..6 {
            let c = route.choose(&store, 0, i, &chat("s")).unwrap();
            let p = c.target.provider.clone();
            let mut f = ok(&p);
            f.latency_ms = Some(lat(&p));
            route.finish(&store, 0, c.ticket, &f);
            seen.push(p);
        }
        assert_eq!(seen[..2], ["a", "b"]);
        assert!(seen[2..].iter().all(|p| p == "b"));
    }

    #[test]
    fn cheapest_takes_the_lowest_price_and_fails_over_when_its_breaker_opens() {
        let r = router(
            r#"[{"name": "m", "strategy": "cheapest",
                 "breaker": {"min_requests": 2, "cooldown_s": 5},
                 "targets": [{"provider": "a", "price": {"input": 5, "output": 15}},
                             {"provider": "b", "price": {"input": 0.1, "output": 0.4}},
                             {"provider": "c"}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        let fail = |c: &Choice, now| {
            let f = Finished {
                status: 502,
                provider: Some("b"),
                attempts: 1,
                latency_ms: None,
                forwarded: true,
            };
            route.finish(&store, now, c.ticket, &f)
        };
        let c = route.choose(&store, 0, 0, &chat("s")).unwrap();
        assert_eq!(c.target.provider, "b");
        assert!(fail(&c, 1).is_empty());
        let c = route.choose(&store, 2, 0, &chat("s")).unwrap();
        assert_eq!(fail(&c, 3), [("b".to_string(), "open")]);
        let c = route.choose(&store, 4, 0, &chat("s")).unwrap();
        assert_eq!(c.target.provider, "a");
        assert_eq!(c.events, [("b".to_string(), "skipped")]);
    }

    #[test]
    fn priority_fails_over_by_health_and_all_open_is_unavailable_with_retry_after() {
        let r = router(
            r#"[{"name": "m", "breaker": {"min_requests": 1, "cooldown_s": 3},
                 "targets": [{"provider": "a", "priority": 1}, {"provider": "b", "priority": 0}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        let down = |p: &str, now| {
            let c = route.choose(&store, now, 0, &chat("s")).unwrap();
            assert_eq!(c.target.provider, p);
            let f = Finished {
                status: 503,
                provider: None,
                attempts: 1,
                latency_ms: None,
                forwarded: true,
            };
            route.finish(&store, now, c.ticket, &f);
        };
        down("b", 1000);
        down("a", 1500);
        let err = route.choose(&store, 2000, 0, &chat("s")).unwrap_err();
        // b half-opens at 4000: 2 s from now.
        assert_eq!(err.retry_after_s, 2);
        assert!(err.events.contains(&("-".to_string(), "refused")));
        // Nothing was acquired by the refusal.
        assert_eq!(route.health(&store, 0).unwrap().in_flight(), 0);
        let c = route.choose(&store, 4000, 0, &chat("s")).unwrap();
        assert_eq!(c.target.provider, "b");
        assert!(c.ticket.probe);
        assert_eq!(
            c.events,
            [("a".to_string(), "skipped"), ("b".to_string(), "half_open")]
        );
        assert_eq!(
            route.finish(&store, 4001, c.ticket, &ok("b")),
            [("b".to_string(), "closed")]
        );
    }

    #[test]
    fn prefer_region_orders_equal_priorities() {
        let r = router(
            r#"[{"name": "m", "prefer_region": "eu",
                 "targets": [{"provider": "a", "region": "us"}, {"provider": "b", "region": "eu"}]}]"#,
        );
        let c = r
            .find("m")
            .unwrap()
            .choose(&MemStore::new(), 0, 0, &chat("s"))
            .unwrap();
        assert_eq!(c.target.provider, "b");
    }

    #[test]
    fn prefix_affinity_sticks_per_prefix_and_spreads_prefixes() {
        let r = router(
            r#"[{"name": "m", "strategy": "prefix_affinity", "targets": [{"provider": "a"}, {"provider": "b"}, {"provider": "c"}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        let pick = |s: &str, rnd| {
            let c = route.choose(&store, 0, rnd, &chat(s)).unwrap();
            assert_eq!(c.affinity.as_ref().map(String::len), Some(32));
            route.finish(&store, 0, c.ticket, &ok(&c.target.provider.clone()));
            c.target.provider.clone()
        };
        let first = pick("sys-1", 0);
        assert!((1..20).all(|i| pick("sys-1", i) == first));
        let spread: std::collections::BTreeSet<String> =
            (0..30).map(|i| pick(&format!("sys-{i}"), 0)).collect();
        assert_eq!(spread.len(), 3);
    }

    #[test]
    fn failover_inside_the_cluster_blames_the_chosen_target_and_credits_the_server() {
        // A breaker that never opens here: it makes the route keep health records.
        let r = router(
            r#"[{"name": "m", "breaker": {"min_requests": 1000}, "targets": [{"provider": "a"}, {"provider": "b"}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        let c = route.choose(&store, 0, 0, &chat("s")).unwrap();
        let f = Finished {
            attempts: 2,
            ..ok("b")
        };
        route.finish(&store, 0, c.ticket, &f);
        let (a, b) = (
            route.health(&store, 0).unwrap(),
            route.health(&store, 1).unwrap(),
        );
        assert_eq!((a.failures(FailureClass::Server), a.in_flight()), (1, 0));
        assert_eq!((b.successes(), b.in_flight()), (1, 0));
        // A request refused after the choice gives its slot back and counts nothing.
        let c = route.choose(&store, 0, 0, &chat("s")).unwrap();
        let f = Finished {
            forwarded: false,
            status: 429,
            ..ok("a")
        };
        route.finish(&store, 0, c.ticket, &f);
        let a = route.health(&store, 0).unwrap();
        assert_eq!(
            (a.total_failures(), a.successes(), a.in_flight()),
            (1, 0, 0)
        );
    }

    #[test]
    fn racing_workers_keep_exact_counts() {
        let r = router(
            r#"[{"name": "m", "strategy": "round_robin", "breaker": {"min_requests": 1000}, "targets": [{"provider": "a"}, {"provider": "b"}]}]"#,
        );
        let route = r.find("m").unwrap().clone();
        let store = MemStore::new();
        r.seed(&store).unwrap();
        for i in 0..20u64 {
            let other = route.clone();
            // Another worker completes a whole request between this one's read and write.
            store.race_once(move |s| {
                let c = other.choose(s, 0, i, &chat("s")).unwrap();
                let p = c.target.provider.clone();
                other.finish(s, 0, c.ticket, &ok(&p));
            });
            let c = route.choose(&store, 0, i, &chat("s")).unwrap();
            let p = c.target.provider.clone();
            route.finish(&store, 0, c.ticket, &ok(&p));
        }
        let (a, b) = (
            route.health(&store, 0).unwrap(),
            route.health(&store, 1).unwrap(),
        );
        assert_eq!(a.successes() + b.successes(), 40);
        assert_eq!(a.successes(), 20);
        assert_eq!(a.in_flight() + b.in_flight(), 0);
    }

    #[test]
    fn a_route_no_decision_reads_health_of_keeps_no_record() {
        let r = router(
            r#"[{"name": "m", "strategy": "round_robin", "targets": [{"provider": "a"}, {"provider": "b"}]}]"#,
        );
        let route = r.find("m").unwrap();
        let store = MemStore::new();
        r.seed(&store).unwrap();
        let seeded = store.len();
        for i in 0..4u64 {
            let c = route.choose(&store, 0, i, &chat("s")).unwrap();
            let p = c.target.provider.clone();
            assert!(route.finish(&store, 0, c.ticket, &ok(&p)).is_empty());
        }
        assert_eq!(
            store.len(),
            seeded,
            "only the rotation counter lives in shared data"
        );
        assert!(route.health(&store, 0).is_none());
    }

    #[test]
    fn spread_is_a_permutation() {
        for total in 1..40u64 {
            let mut seen: Vec<u64> = (0..total).map(|s| spread(s, total)).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..total).collect::<Vec<_>>());
        }
    }
}
