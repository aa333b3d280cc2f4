//! Descriptors for Envoy's global rate limit filter (`limits.global_descriptors`): the request
//! headers weir sets once a request is admitted, and the token overrun it publishes at its end.
//!
//! weir's own limits live in shared data, which is per Envoy process. For limits that must hold
//! across replicas, weir only *describes* the request and Envoy's `envoy.filters.http.ratelimit`
//! (placed after weir in the chain) asks a rate limit service backed by Redis. Call order:
//!
//! 1. At body time, after authentication, routing and weir's own admission,
//!    [`request_headers`] gives `x-weir-rl-key` (the configured key id), `x-weir-rl-model` (the
//!    configured route name) and `x-weir-rl-tokens` (the admission estimate). weir pauses the
//!    request headers until then, so the ratelimit filter's `decodeHeaders` sees them; the
//!    route's `rate_limits` turn them into descriptors, the tokens header into the `hits_addend`
//!    of the token descriptors. Clients cannot send these names: every `x-weir-` request header
//!    is stripped on arrival; the route's `request_headers_to_remove` keeps them from providers.
//! 2. Also once forwarded, the key id and route are published as filter state
//!    ([`KEY_STATE`], [`MODEL_STATE`]), and at the end of the answer [`overrun`] as
//!    [`OVERRUN_STATE`] (`wasm.weir_tokens_overrun`), which `apply_on_stream_done` rate limits
//!    read as their `hits_addend`. Before the answer ends it holds `0`, so an abandoned request
//!    adds nothing beyond its estimate. Stream-done descriptors cannot use the headers: by then
//!    the router and weir-provider have removed them from the same header map (checked in
//!    Envoy 1.40), so they read the filter state (`FilterStateInput` actions) instead.
//!
//! Accounting: a rate limit service cannot refund (hits are unsigned), so a request is charged
//! `estimate` at admission and `max(0, actual - estimate)` at its end: `max(estimate, actual)`
//! in total, never less than it used. As with weir's own limits, admission only checks the
//! estimate, so a window can be exceeded by at most the sum of the overruns of the requests in
//! flight when it filled.

use super::Estimate;

/// Request header: the authenticated key's configured id.
pub const KEY_HEADER: &str = "x-weir-rl-key";
/// Request header: the configured route (model) name the request matched.
pub const MODEL_HEADER: &str = "x-weir-rl-model";
/// Request header: tokens reserved at admission (prompt estimate plus `max_tokens`).
pub const TOKENS_HEADER: &str = "x-weir-rl-tokens";
/// Property name; Envoy keeps it as filter state `wasm.weir_tokens_overrun`.
pub const OVERRUN_STATE: &str = "weir_tokens_overrun";
/// Filter state `wasm.weir_rl_key`: the key id, for stream-done descriptors.
pub const KEY_STATE: &str = "weir_rl_key";
/// Filter state `wasm.weir_rl_model`: the route name, for stream-done descriptors.
pub const MODEL_STATE: &str = "weir_rl_model";

/// The headers that carry a request's descriptors to Envoy's ratelimit filter. Both names come
/// from configuration, never from the client, so the RLS sees a bounded set of values.
pub fn request_headers(key_id: &str, route: &str, estimate: &Estimate) -> Vec<(String, String)> {
    vec![
        (KEY_HEADER.to_string(), key_id.to_string()),
        (MODEL_HEADER.to_string(), route.to_string()),
        // The ratelimit filter refuses a hits_addend above 10^9; a larger estimate is absurd
        // anyway, and clamping keeps the descriptor (it would otherwise be dropped).
        (
            TOKENS_HEADER.to_string(),
            estimate.tokens.min(MAX_HITS).to_string(),
        ),
    ]
}

/// Envoy's largest accepted `hits_addend`.
const MAX_HITS: u64 = 1_000_000_000;

/// Tokens to add when the request ends: what it used beyond what admission charged.
pub fn overrun(estimate: &Estimate, actual_tokens: u64) -> u64 {
    actual_tokens.saturating_sub(estimate.tokens).min(MAX_HITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_configured_key_route_and_estimate() {
        let est = Estimate {
            tokens: 19,
            micro_usd: 0,
        };
        assert_eq!(
            request_headers("team-a", "gpt", &est),
            [
                ("x-weir-rl-key".to_string(), "team-a".to_string()),
                ("x-weir-rl-model".to_string(), "gpt".to_string()),
                ("x-weir-rl-tokens".to_string(), "19".to_string()),
            ]
        );
        let huge = Estimate {
            tokens: u64::MAX,
            micro_usd: 0,
        };
        assert_eq!(request_headers("k", "m", &huge)[2].1, "1000000000");
    }

    #[test]
    fn overrun_is_only_what_the_estimate_did_not_cover() {
        let est = Estimate {
            tokens: 100,
            micro_usd: 0,
        };
        assert_eq!(overrun(&est, 40), 0);
        assert_eq!(overrun(&est, 100), 0);
        assert_eq!(overrun(&est, 130), 30);
        assert_eq!(overrun(&est, u64::MAX), MAX_HITS);
    }
}
