//! Settling a finished request, exactly once: the limit reservation (what it really cost), the
//! target's health (how it ended), the in-VM hand-off, and the summary the metrics and the access
//! log report; plus the token overrun published for Envoy's global rate limit filter.

use super::{GatewayRole, Overrun, Phase};
use crate::limits::{descriptors, Actual, Ticket};
use crate::metrics::Summary;
use crate::roles::{handoff, Env};

/// The status logged for a request whose client went away before any answer (nginx's 499).
const CLIENT_CLOSED: u16 = 499;

impl GatewayRole {
    /// The request is over (Envoy's log phase); `None` if it was already settled.
    pub(super) fn settle(&mut self, env: &Env) -> Option<Summary> {
        let (upstream, responded) = match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Done => return None,
            Phase::Forwarded(up) => (Some(up), false),
            Phase::Relaying(up, _) => (Some(up), true),
            _ => (None, false),
        };
        handoff::release(upstream.as_ref().and_then(|u| u.handoff));
        let global_refusal = upstream.as_ref().is_some_and(|u| u.global_refusal);
        let cfg = std::rc::Rc::clone(&self.cfg);
        let route = self
            .summary
            .model
            .as_deref()
            .and_then(|r| cfg.router.by_name(r));
        let provider = self
            .summary
            .provider
            .as_deref()
            .and_then(|p| cfg.providers.get(p));
        // Cost and carbon belong to the target that served, which after a failover is not the
        // one first picked.
        let served = route
            .zip(provider)
            .and_then(|(r, p)| r.target_for_provider(&p.name));
        let price = match served {
            Some(t) => t.price,
            None => upstream.as_ref().and_then(|u| u.price),
        };
        if let Some(u) = &self.usage {
            self.summary.set_usage(u);
            if let Some(price) = &price {
                self.summary.cost_micro_usd = crate::limits::cost_micro_usd(price, u);
            }
            if let Some(p) = provider.filter(|_| route.is_some()) {
                let energy = served.map(|t| t.energy).unwrap_or_default();
                self.summary.co2e_mg = crate::metrics::co2e_mg(u, &energy, p.grid_g_co2e_per_kwh);
            }
        }
        self.summary.duration_ms = env.now_ms().saturating_sub(self.started_ms);
        if let (Some(r), Some(ticket)) = (route, self.routing.take()) {
            let finished = crate::routing::Finished {
                status: if responded { self.summary.status } else { 0 },
                provider: self.summary.provider.as_deref(),
                attempts: self.summary.attempts,
                latency_ms: Some(self.summary.ttft_ms.unwrap_or(self.summary.duration_ms)),
                // A global-limit refusal never reached the target: not its failure.
                forwarded: upstream.is_some() && !global_refusal,
            };
            let events = r.finish(env.store, env.now_ms(), ticket, &finished);
            self.summary.breaker.extend(events);
        }
        if let Some(ticket) = self.ticket.take() {
            // Once a request went upstream the provider may have done the work, answer or not:
            // without usage (a cut stream, or a client that gave up before the answer) it costs
            // its estimate, so disconnecting early never dodges a limit.
            let went_upstream = upstream.is_some() && !global_refusal;
            let actual = match &self.usage {
                _ if !went_upstream => Actual::default(),
                Some(u) => Actual::from_usage(u, price.as_ref()),
                None => {
                    let estimate = ticket.estimate();
                    self.summary
                        .charge_estimate(estimate.tokens, estimate.micro_usd);
                    if !responded && self.summary.status == 0 {
                        self.summary.status = CLIENT_CLOSED;
                    }
                    Actual::from_estimate(estimate)
                }
            };
            self.cfg
                .limiter
                .settle(env.store, env.now_ms(), &ticket, actual);
        }
        Some(self.summary.clone())
    }

    /// With `limits.global_descriptors`: the key id, route and a `0` overrun once the request is
    /// forwarded, then the token overrun when the answer ends (for `apply_on_stream_done`).
    pub(super) fn publish_overrun(&mut self) -> Vec<(&'static str, String)> {
        if !self.cfg.limiter.global_descriptors() {
            return Vec::new();
        }
        let Some(ended) = self.upstream().map(|u| u.ended) else {
            return Vec::new();
        };
        let Some(estimate) = self.ticket.as_ref().map(Ticket::estimate) else {
            return Vec::new();
        };
        match (self.overrun, ended) {
            (Overrun::Unpublished, _) => {
                self.overrun = Overrun::Provisional;
                let (key, model) = (self.summary.key.clone(), self.summary.model.clone());
                vec![
                    (descriptors::KEY_STATE, key.unwrap_or_default()),
                    (descriptors::MODEL_STATE, model.unwrap_or_default()),
                    (descriptors::OVERRUN_STATE, "0".to_string()),
                ]
            }
            (Overrun::Provisional, true) => {
                self.overrun = Overrun::Final;
                let used = self
                    .usage
                    .map_or(0, |u| u.input_tokens.saturating_add(u.output_tokens));
                match descriptors::overrun(&estimate, used) {
                    0 => Vec::new(),
                    n => vec![(descriptors::OVERRUN_STATE, n.to_string())],
                }
            }
            _ => Vec::new(),
        }
    }
}
