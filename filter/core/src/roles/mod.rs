//! The two filter roles and what they share with the host. One binary is loaded twice:
//! - the **gateway role** ([`gateway::GatewayRole`], root id `weir-gateway`), a downstream filter:
//!   one instance per client request;
//! - the **provider role** ([`provider::ProviderRole`], root id `weir-provider`), an upstream
//!   filter: one instance per upstream attempt, so a retry is translated and keyed afresh.
//!
//! Both are sans-IO state machines behind one trait, [`Filter`], which the host pumps: what comes
//! in ([`Env`], headers as bytes, bodies) and the effects that go out (replies, header edits,
//! forwarded bodies) are plain values. Their contract with each other is [`handoff`] (the IR
//! request out, the IR answer back) and [`headers`] (the internal header names).

pub mod catalog;
pub mod gateway;
pub mod handoff;
pub mod headers;
pub mod provider;

use crate::store::SharedStore;
use crate::wire::Reply;
use headers::INTERNAL_PREFIX;

/// What the host knows at the time of a call.
pub struct Env<'a> {
    /// The host clock, read through [`Env::now_ms`].
    pub clock: &'a dyn Clock,
    pub store: &'a dyn SharedStore,
    /// A fresh random number from the host.
    pub random: u64,
    /// Upstream filters: the endpoint Envoy picked for this attempt, read on demand.
    pub endpoint: &'a dyn Endpoint,
}

impl Env<'_> {
    /// Host time, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// The host's clock. Reading it is a host call, so the roles ask only where a decision needs
/// the time: a stream's chunks after the first, header callbacks of the provider role and most
/// answers never do. The host reads it at most once per callback.
pub trait Clock {
    /// Unix milliseconds.
    fn now_ms(&self) -> u64;
}

/// A `u64` is a clock stopped at that instant (tests, virtual time).
impl Clock for u64 {
    fn now_ms(&self) -> u64 {
        *self
    }
}

/// What an upstream filter can learn about the endpoint Envoy picked for this attempt. Each
/// answer is a property lookup in Envoy, so the provider role asks only when its configuration
/// leaves the provider open (a cluster several providers share).
pub trait Endpoint {
    /// The endpoint's `filter_metadata.weir.provider`.
    fn provider(&self) -> Option<String>;
}

/// No endpoint (downstream filters, tests that need none).
pub struct NoEndpoint;

impl Endpoint for NoEndpoint {
    fn provider(&self) -> Option<String> {
        None
    }
}

#[derive(Debug, PartialEq)]
pub enum HeadersVerdict {
    Reply(Reply),
    /// Remove these headers, then buffer the body and pass all of it to `on_request_body`.
    Buffer {
        remove: Vec<String>,
    },
    /// Remove and set these headers and send the request on as it is: the role is done with
    /// it, and any body passes untouched (`on_request_body` is not called).
    Forward {
        remove: Vec<String>,
        set: Vec<(String, String)>,
    },
}

#[derive(Debug, PartialEq)]
pub enum BodyVerdict {
    Reply(Reply),
    /// Set these request headers and send this body on.
    Forward {
        set: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

/// Response header changes, and the status to send instead of the one that arrived.
#[derive(Debug, Default, PartialEq)]
pub struct HeaderEdits {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
    pub status: Option<u16>,
}

/// One request (downstream) or one attempt (upstream), driven by the host in this order:
/// `on_request_headers` → `on_request_body` (whole body; not after a `Forward` verdict) →
/// `on_response_headers` →
/// `on_response_body` per chunk, or once whole when `buffers_response` → `take_status` after
/// the last body call → `on_done`.
pub trait Filter {
    /// Every request header: lower-case names, raw values, repeats kept.
    fn on_request_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeadersVerdict;
    fn on_request_body(&mut self, body: &[u8], env: &Env) -> BodyVerdict;
    fn on_response_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeaderEdits;
    /// Whether the host must hold the response (headers included) until its end.
    fn buffers_response(&self) -> bool;
    /// A response chunk, or the whole body when buffering; returns its replacement.
    fn on_response_body(&mut self, chunk: &[u8], end: bool, env: &Env) -> Option<Vec<u8>>;
    /// The status a buffered answer must end with, if it differs from what was sent on.
    fn take_status(&mut self) -> Option<u16>;
    /// The stream is over; the gateway role reports what happened.
    fn on_done(&mut self, _env: &Env) -> Option<crate::metrics::Summary> {
        None
    }
    /// Filter state to publish now (property name, value), asked after each request and
    /// response body call; Envoy keeps each as `wasm.<name>`.
    fn take_filter_state(&mut self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// The first value of a header, by lower-case name.
pub fn header_value<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// The response status from the `:status` pseudo-header (502 if unreadable).
pub fn status_of(headers: &[(String, Vec<u8>)]) -> u16 {
    header_value(headers, ":status")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(502)
}

/// The headers a request must lose on its way on: every `x-weir-` name it carries (whoever set
/// it), plus those of `always` it actually carries (each removal is a host call). Sorted,
/// without repeats.
pub fn strip_list<'a>(
    headers: &[(String, Vec<u8>)],
    always: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let always: Vec<&str> = always.into_iter().collect();
    let mut remove: Vec<String> = headers
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with(INTERNAL_PREFIX) || always.contains(&n.as_str()))
        .cloned()
        .collect();
    remove.sort_unstable();
    remove.dedup();
    remove
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_internal_names_and_only_the_listed_headers_present() {
        let h: Vec<(String, Vec<u8>)> =
            ["x-weir-cluster", "authorization", "authorization", "accept"]
                .iter()
                .map(|n| (n.to_string(), Vec::new()))
                .collect();
        assert_eq!(
            strip_list(&h, ["authorization", "x-api-key"]),
            ["authorization", "x-weir-cluster"]
        );
    }
}
