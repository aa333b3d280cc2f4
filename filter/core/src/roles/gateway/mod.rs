//! The gateway role (downstream filter, root id `weir-gateway`): one [`GatewayRole`] per client
//! request, sans-IO. It admits the request (key, allowlist, client protocol, target, limits, PII,
//! cache), forwards it as IR for the provider role, and turns the IR answer back into the
//! client's protocol with PII restored.
//!
//! Call order (the host pumps; every input is data, every effect is a returned value):
//! 1. [`Filter::on_request_headers`] → reply now, or buffer the body (after stripping headers);
//!    a stored-response call (`GET`/`DELETE /v1/responses/{id}`) goes on here, untranslated, to
//!    the provider that keeps the state ([`Phase::Stored`]).
//! 2. [`Filter::on_request_body`] with the whole body → reply now, or forward an IR body with
//!    `x-weir-cluster` set (it selects the Envoy cluster); the body is an
//!    [`Envelope`](crate::ir::Envelope) naming the model route, for the provider role.
//! 3. [`Filter::on_response_headers`] → headers to set/remove; then
//!    [`Filter::on_response_body`] per chunk (streams) or once with the whole body
//!    ([`Filter::buffers_response`]).
//! 4. [`Filter::on_done`] exactly once, whatever happened: settles the limit reservation and
//!    the target's health, and reports the request.
//!
//! The request moves through the [`Phase`]s in that order; `admit` holds steps 1–2 (one method
//! per stage), `relay` step 3, `settle` step 4.
//!
//! Invariants: nothing the client sent under an `x-weir-` name reaches Envoy's router, and no
//! credential header reaches the upstream; every refusal is an [`ErrorInfo`] encoded in the
//! client's own protocol; answers the provider role did not produce (Envoy's local replies such
//! as "no healthy upstream") are re-shaped into the client's error format too.

mod admit;
pub(crate) use admit::not_found;
mod relay;
mod settle;

use crate::cache::Lookup;
use crate::config::Config;
use crate::ir::{ErrorInfo, Request, Usage};
use crate::limits::{Price, Ticket};
use crate::metrics::Summary;
use crate::pii::Vault;
use crate::roles::{BodyVerdict, Env, Filter, HeaderEdits, HeadersVerdict};
use crate::wire::{ClientApi, Reply};
use relay::Relay;
use std::rc::Rc;

/// Response header for clients (debug): who served the request.
pub const SERVED_BY_HEADER: &str = "x-weir-served-by";

/// Where one request is. Each phase holds what the later ones need, so nothing is set before it
/// can be known.
enum Phase {
    /// Nothing accepted yet.
    Start,
    /// The headers were accepted: the operation is known and the body is awaited.
    Admitting {
        api: ClientApi,
        directive: crate::cache::Directive,
    },
    /// The gateway answered itself (a refusal, a model list, a cache hit): no upstream call.
    Answered,
    /// Forwarded to the provider role; no response yet.
    Forwarded(Box<Upstream>),
    /// The response headers arrived; the body is being relayed.
    Relaying(Box<Upstream>, Relay),
    /// A stored-response call sent on as it came; `answer` is set once its response headers say
    /// how its body is relayed.
    Stored {
        api: ClientApi,
        answer: Option<relay::Passed>,
    },
    /// `on_done` ran.
    Done,
}

/// A request that went upstream: what translating its answer and settling it need.
struct Upstream {
    api: ClientApi,
    request: Rc<Request>,
    /// The in-VM hand-off reference, released in `on_done`.
    handoff: Option<u64>,
    vault: Vault,
    /// The chosen target's price; `on_done` switches to the target that served.
    price: Option<Price>,
    /// What the response cache decided (a miss is stored once the answer is complete).
    cache: Lookup,
    /// Envoy's global rate limit filter refused the request (a local 429 no provider saw).
    global_refusal: bool,
    /// The last response body chunk was seen.
    ended: bool,
}

/// The token overrun published for Envoy's global rate limit filter (`global_descriptors`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overrun {
    Unpublished,
    /// Key, route and a zero overrun are out; the real overrun follows at the response's end.
    Provisional,
    Final,
}

/// One client request through the gateway role.
pub struct GatewayRole {
    cfg: Rc<Config>,
    phase: Phase,
    /// What the metrics and the access log will say about this request; also the one record of
    /// the authenticated key (`key`) and the matched route (`model`).
    summary: Summary,
    started_ms: u64,
    /// The limit reservation, settled exactly once (at a cache hit, or in `on_done`).
    ticket: Option<Ticket>,
    /// The target this request acquired (health: finished exactly once in `on_done`).
    routing: Option<crate::routing::Ticket>,
    /// Usage reported by the provider, once known.
    usage: Option<Usage>,
    /// The status a buffered answer must end with, when it differs from what arrived.
    final_status: Option<u16>,
    overrun: Overrun,
    /// The client's values of the request headers some provider's allowlist passes, handed to
    /// the provider role in the envelope.
    passed_headers: Vec<(String, String)>,
}

impl GatewayRole {
    pub fn new(cfg: Rc<Config>) -> Self {
        GatewayRole {
            cfg,
            phase: Phase::Start,
            summary: Summary::default(),
            started_ms: 0,
            ticket: None,
            routing: None,
            usage: None,
            final_status: None,
            overrun: Overrun::Unpublished,
            passed_headers: Vec::new(),
        }
    }

    /// Usage reported by the provider, once known.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The request went upstream (whether or not a response has started).
    fn upstream(&self) -> Option<&Upstream> {
        match &self.phase {
            Phase::Forwarded(up) | Phase::Relaying(up, _) => Some(up),
            _ => None,
        }
    }
}

impl Filter for GatewayRole {
    /// `headers`: every request header, lower-case names, raw values, repeats kept.
    fn on_request_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeadersVerdict {
        self.started_ms = env.now_ms();
        match self.admit_headers(headers, env) {
            Ok(verdict) => verdict,
            Err(reply) => HeadersVerdict::Reply(self.answered(reply)),
        }
    }

    /// The whole request body (the host buffers it).
    fn on_request_body(&mut self, body: &[u8], env: &Env) -> BodyVerdict {
        match self.admit_body(body, env) {
            Ok((set, body)) => BodyVerdict::Forward { set, body },
            Err(reply) => BodyVerdict::Reply(self.answered(reply)),
        }
    }

    /// The upstream answer's headers (after Envoy's router: the provider role's, or Envoy's own
    /// local reply).
    fn on_response_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeaderEdits {
        self.relay_headers(headers, env)
    }

    /// Whether the host must hold the response body until its end and pass it whole.
    fn buffers_response(&self) -> bool {
        matches!(
            self.phase,
            Phase::Relaying(_, Relay::Buffered { .. })
                | Phase::Stored {
                    answer: Some(relay::Passed::Error { .. }),
                    ..
                }
        )
    }

    /// A response body chunk (or the whole body when buffering); returns its replacement.
    fn on_response_body(&mut self, chunk: &[u8], end: bool, env: &Env) -> Option<Vec<u8>> {
        self.relay_body(chunk, end, env)
    }

    /// The request is over (Envoy's log phase). Settles the limit reservation and the target's
    /// health exactly once and returns what the metrics and the access log report.
    fn on_done(&mut self, env: &Env) -> Option<Summary> {
        self.settle(env)
    }

    /// The status a buffered answer must carry instead of the one that arrived (the host holds
    /// the response headers until the body is complete, so it can still change).
    fn take_status(&mut self) -> Option<u16> {
        self.final_status.take()
    }

    /// With `limits.global_descriptors`: the key id, route and a `0` overrun once the request is
    /// forwarded, then the token overrun when the answer ends (for `apply_on_stream_done`).
    fn take_filter_state(&mut self) -> Vec<(&'static str, String)> {
        self.publish_overrun()
    }
}

impl GatewayRole {
    /// The gateway answers the request itself: the phase says so and the summary has the status.
    fn answered(&mut self, reply: Reply) -> Reply {
        self.summary.status = reply.status;
        self.phase = Phase::Answered;
        reply
    }
}

/// An error in the client's protocol shape, with `retry-after` when the error carries one.
pub fn error_reply(api: ClientApi, err: &ErrorInfo) -> Reply {
    let mut reply = json_reply(api.status(err), api.encode_error(err));
    if let Some(s) = err.retry_after {
        reply.headers.push(("retry-after".into(), s.to_string()));
    }
    reply
}

/// A 200 with a JSON body the gateway made itself.
pub(crate) fn ok_json(body: Vec<u8>) -> Reply {
    json_reply(200, body)
}

fn json_reply(status: u16, body: Vec<u8>) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
}
