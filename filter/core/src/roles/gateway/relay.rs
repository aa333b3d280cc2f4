//! Relaying the answer: the provider role's IR (a complete answer, or a stream of events) back
//! into the client's protocol with PII restored, and any answer the provider role did not make
//! (Envoy's local replies, a global rate-limit refusal) re-shaped into the client's error format.
//! A stored-response call's answer passes unchanged ([`Passed`]).

use super::{GatewayRole, Phase, Upstream, SERVED_BY_HEADER};
use crate::cache::{Lookup, CACHE_HEADER};
use crate::config::Config;
use crate::ir::{ErrorInfo, ErrorKind, Response, StreamEvent, Usage};
use crate::pii::EventRestorer;
use crate::roles::handoff;
use crate::roles::headers::{
    DROPPED_HEADER, INTERNAL_PREFIX, IR_HEADER, PROVIDER_HEADER, TOKEN_COUNT_HEADER,
};
use crate::roles::{header_value, status_of, Env, HeaderEdits};
use crate::stream::ndjson::NdjsonFramer;
use crate::wire::StreamEncoder;

/// How the response body is relayed.
pub(super) enum Relay {
    /// A complete IR answer, or a foreign (non-IR) answer to re-shape, buffered to its end.
    Buffered { status: u16, ir: bool },
    /// IR stream events, translated chunk by chunk.
    Stream(Box<StreamState>),
}

/// How a stored-response call's answer is relayed.
#[derive(Clone, Copy)]
pub(crate) enum Passed {
    /// The provider's own answer, chunk by chunk as it came (streams included).
    Raw,
    /// Anything else (the provider role's IR error, Envoy's local reply), re-shaped as an error.
    Error { status: u16, ir: bool },
}

pub(super) struct StreamState {
    framer: NdjsonFramer,
    encoder: Box<dyn StreamEncoder>,
    restorer: EventRestorer,
    /// The stream already ended with an error; ignore the rest.
    failed: bool,
}

impl GatewayRole {
    /// The response headers of a forwarded request decide how its body is relayed. Replies the
    /// gateway made itself are already in the client's shape and pass untouched.
    pub(super) fn relay_headers(
        &mut self,
        headers: &[(String, Vec<u8>)],
        env: &Env,
    ) -> HeaderEdits {
        let mut edits = HeaderEdits::default();
        let status = status_of(headers);
        let mut up = match std::mem::replace(&mut self.phase, Phase::Start) {
            Phase::Forwarded(up) => up,
            Phase::Stored { api, answer: None } => {
                self.note_response(headers);
                let passed = match header_value(headers, IR_HEADER) {
                    Some(b"raw") => Passed::Raw,
                    marker => {
                        edits
                            .set
                            .push(("content-type".into(), "application/json".into()));
                        edits.remove.push("content-length".into());
                        Passed::Error {
                            status,
                            ir: marker == Some(b"response"),
                        }
                    }
                };
                self.internal_headers(headers, &mut edits, env);
                self.phase = Phase::Stored {
                    api,
                    answer: Some(passed),
                };
                return edits;
            }
            other => {
                self.phase = other;
                return edits;
            }
        };
        self.note_response(headers);
        let api = up.api;
        let marker = header_value(headers, IR_HEADER);
        let stream_req = match up.request.as_ref() {
            crate::ir::Request::Chat(c) if c.stream => Some(c),
            _ => None,
        };
        let relay = match (marker, stream_req) {
            (Some(b"stream"), Some(chat)) if (200..300).contains(&status) => {
                edits
                    .set
                    .push(("content-type".into(), api.stream_content_type().into()));
                edits.set.push(("cache-control".into(), "no-cache".into()));
                Relay::Stream(Box::new(StreamState {
                    framer: NdjsonFramer::new(self.cfg.max_stream_frame_bytes),
                    encoder: api.stream_encoder(chat, self.cfg.max_response_bytes),
                    restorer: EventRestorer::new(),
                    failed: false,
                }))
            }
            (marker, _) => {
                edits
                    .set
                    .push(("content-type".into(), "application/json".into()));
                if status == 503 && header_value(headers, "retry-after").is_none() {
                    edits.set.push(("retry-after".into(), "1".into()));
                }
                if status == 429 && marker.is_none() {
                    // Envoy's global rate limit filter answered before any provider was asked.
                    up.global_refusal = true;
                    if header_value(headers, "retry-after").is_none() {
                        edits
                            .set
                            .push(("retry-after".into(), global_retry_after(headers)));
                    }
                }
                Relay::Buffered {
                    status,
                    ir: marker == Some(b"response"),
                }
            }
        };
        edits.remove.push("content-length".into());
        self.internal_headers(headers, &mut edits, env);
        if let crate::ir::Request::CountTokens(_) = up.request.as_ref() {
            let served = self
                .summary
                .provider
                .as_deref()
                .and_then(|p| self.cfg.providers.get(p));
            if served.is_some_and(|p| !p.spec.counts_tokens()) {
                edits
                    .set
                    .push((TOKEN_COUNT_HEADER.into(), "estimate".into()));
            }
        }
        if let Some(ticket) = &self.ticket {
            edits.set.extend(ticket.headers());
        }
        if let Some(label) = up.cache.label() {
            edits.set.push((CACHE_HEADER.into(), label.into()));
        }
        self.phase = Phase::Relaying(up, relay);
        edits
    }

    /// What the summary says about who answered.
    fn note_response(&mut self, headers: &[(String, Vec<u8>)]) {
        let text = |name| header_value(headers, name).and_then(|v| std::str::from_utf8(v).ok());
        self.summary.status = status_of(headers);
        self.summary.provider = text(PROVIDER_HEADER).map(str::to_string);
        self.summary.attempts = text("x-envoy-attempt-count")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
    }

    /// Internal headers leave with the answer; with `debug_headers`, who served it says so.
    fn internal_headers(
        &mut self,
        headers: &[(String, Vec<u8>)],
        edits: &mut HeaderEdits,
        env: &Env,
    ) {
        let text = |name| header_value(headers, name).and_then(|v| std::str::from_utf8(v).ok());
        for (name, _) in headers {
            if name.starts_with(INTERNAL_PREFIX) || name == "x-envoy-attempt-count" {
                edits.remove.push(name.clone());
            }
        }
        // What was dropped is always the client's to know (removals come before sets).
        self.summary.dropped = dropped_fields(text(DROPPED_HEADER).unwrap_or_default());
        if !self.summary.dropped.is_empty() {
            edits
                .set
                .push((DROPPED_HEADER.into(), self.summary.dropped.join(", ")));
        }
        if self.cfg.debug_headers {
            if let Some(p) = text(PROVIDER_HEADER) {
                edits.set.push((SERVED_BY_HEADER.into(), p.to_string()));
            }
            if let Some(n) = text("x-envoy-attempt-count") {
                edits.set.push(("x-weir-attempts".into(), n.to_string()));
            }
            if let Some(h) = self.health_header(env) {
                edits.set.push((crate::routing::HEALTH_HEADER.into(), h));
            }
        }
    }

    /// A response body chunk (or the whole body when buffering); returns its replacement.
    pub(super) fn relay_body(&mut self, chunk: &[u8], end: bool, env: &Env) -> Option<Vec<u8>> {
        if let Phase::Stored {
            api,
            answer: Some(passed),
        } = self.phase
        {
            let Passed::Error { status, ir } = passed else {
                return None;
            };
            if !end {
                return None;
            }
            let parsed = if ir { handoff::response(chunk) } else { None };
            let err = match parsed {
                Some(Response::Error(e)) => e,
                _ => foreign_error(status, chunk),
            };
            self.final_status = Some(err.status);
            self.summary.status = err.status;
            return Some(api.encode_error(&err));
        }
        let GatewayRole {
            cfg,
            phase,
            summary,
            usage,
            final_status,
            started_ms,
            ..
        } = self;
        let Phase::Relaying(up, relay) = phase else {
            return None;
        };
        up.ended |= end;
        match relay {
            Relay::Buffered { status, ir } => {
                if !end {
                    return None;
                }
                let (status, ir) = (*status, *ir);
                let answer = finish_buffered(cfg, up, status, ir, chunk, env);
                if let Some(s) = answer.status {
                    *final_status = Some(s);
                    summary.status = s;
                }
                *usage = answer.usage;
                Some(answer.body)
            }
            Relay::Stream(st) => {
                let out = relay_stream(cfg, up, st, usage, chunk, end, env);
                if !out.is_empty() && summary.ttft_ms.is_none() {
                    summary.ttft_ms = Some(env.now_ms().saturating_sub(*started_ms));
                }
                Some(out)
            }
        }
    }

    /// Debug: the shared health record of the target this request acquired.
    fn health_header(&self, env: &Env) -> Option<String> {
        let ticket = self.routing?;
        let route = self.cfg.router.by_name(self.summary.model.as_deref()?)?;
        Some(route.health(env.store, ticket.index)?.describe())
    }
}

/// What a complete answer turned into.
struct Buffered {
    body: Vec<u8>,
    /// The status the answer must carry, when it is an error that differs from what arrived.
    status: Option<u16>,
    usage: Option<Usage>,
}

/// A complete answer: IR from the provider role (stored in the cache before PII is restored,
/// so the cache never holds an original), or anything else re-shaped as an error.
fn finish_buffered(
    cfg: &Config,
    up: &Upstream,
    status: u16,
    ir: bool,
    body: &[u8],
    env: &Env,
) -> Buffered {
    let api = up.api;
    if body.len() > cfg.max_response_bytes {
        let err = ErrorInfo::new(
            502,
            ErrorKind::Upstream,
            "the provider's answer exceeded max_response_bytes",
        );
        return Buffered {
            body: api.encode_error(&err),
            status: None,
            usage: None,
        };
    }
    let parsed = if ir { handoff::response(body) } else { None };
    let Some(mut resp) = parsed else {
        let err = foreign_error(status, body);
        return Buffered {
            body: api.encode_error(&err),
            status: Some(api.status(&err)),
            usage: None,
        };
    };
    if let Lookup::Miss(p) = &up.cache {
        cfg.cache.store(env.store, env.now_ms(), p, status, &resp);
    }
    if !up.vault.is_empty() {
        up.vault.restore_response(&mut resp);
    }
    let (usage, status) = match &resp {
        Response::Chat(c) => (c.usage, None),
        Response::Embeddings(e) => (e.usage, None),
        Response::TokenCount(_) => (None, None),
        Response::Error(e) => (None, Some(api.status(e))),
    };
    Buffered {
        body: api.encode_response(&up.request, &resp),
        status,
        usage,
    }
}

/// One chunk of the provider role's event stream: framed, restored, re-encoded for the client.
fn relay_stream(
    cfg: &Config,
    up: &mut Upstream,
    st: &mut StreamState,
    usage: &mut Option<Usage>,
    chunk: &[u8],
    end: bool,
    env: &Env,
) -> Vec<u8> {
    let mut lines = Vec::new();
    // Taken even after a failure, so the queue never outgrows one chunk's events.
    let queued = handoff::take_stream(up.handoff);
    let mut events = Vec::new();
    if !st.failed {
        let framed = st.framer.push(chunk, &mut lines).and_then(|()| {
            if end {
                st.framer.finish(&mut lines)
            } else {
                Ok(())
            }
        });
        for line in &lines {
            match serde_json::from_str::<StreamEvent>(line) {
                Ok(ev) => events.push(ev),
                Err(_) => {
                    events.push(StreamEvent::Error(internal_stream_error()));
                    break;
                }
            }
        }
        if framed.is_err() {
            events.push(StreamEvent::Error(internal_stream_error()));
        }
        events.extend(queued);
    }
    let vault = &up.vault;
    let mut restored = Vec::new();
    for ev in events {
        if let Lookup::Miss(p) = &mut up.cache {
            p.observe(&ev);
        }
        if let StreamEvent::Usage(u) = &ev {
            *usage = Some(*u);
        }
        if vault.is_empty() {
            restored.push(ev);
        } else {
            st.restorer.event(vault, ev, &mut restored);
        }
    }
    if end {
        st.restorer.flush(vault, &mut restored);
    }
    let mut out = Vec::new();
    for ev in &restored {
        if st.failed {
            break;
        }
        st.encoder.event(ev, &mut out);
        if matches!(ev, StreamEvent::Error(_)) {
            st.failed = true;
        }
    }
    if end && !st.failed {
        st.encoder.end(&mut out);
        if let Lookup::Miss(p) = &mut up.cache {
            cfg.cache.store_stream(env.store, env.now_ms(), p);
        }
    }
    out
}

/// The fields the provider role reported dropping: at most 32, each a short field path (the
/// header is the provider role's, but the list is bounded whoever wrote it).
fn dropped_fields(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty() && f.len() <= 64)
        .take(32)
        .map(str::to_string)
        .collect()
}

/// `Retry-After` for a global-limit refusal: the seconds until the refusing window resets, from
/// the ratelimit filter's `x-ratelimit-reset` (`enable_x_ratelimit_headers`), else 1.
fn global_retry_after(headers: &[(String, Vec<u8>)]) -> String {
    header_value(headers, "x-ratelimit-reset")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .max(1)
        .to_string()
}

fn internal_stream_error() -> ErrorInfo {
    ErrorInfo::new(
        502,
        ErrorKind::Upstream,
        "the provider's stream could not be translated",
    )
}

/// An answer that did not come from the provider role (Envoy's own local reply, or a provider
/// reached without it): keep the status, take a short plain-text reason if there is one.
fn foreign_error(status: u16, body: &[u8]) -> ErrorInfo {
    let status = if (200..300).contains(&status) {
        502
    } else {
        status
    };
    let kind = ErrorInfo::kind_for_status(status);
    let text = std::str::from_utf8(body).unwrap_or("").trim();
    // A 429 that is not the provider role's comes from Envoy's global rate limit filter.
    let reason = if kind == ErrorKind::RateLimited
        || text.is_empty()
        || text.len() > 200
        || text.starts_with('{')
    {
        match kind {
            ErrorKind::RateLimited => {
                "rate limit reached: this key's limit across all gateway replicas is spent; \
                 retry after the time in Retry-After"
            }
            ErrorKind::Unavailable => "no provider is available for this model right now",
            ErrorKind::Timeout => "the provider did not answer in time",
            _ => "the gateway could not reach the provider",
        }
        .to_string()
    } else {
        format!("upstream error: {text}")
    };
    let mut e = ErrorInfo::new(status, kind, reason);
    if kind == ErrorKind::Unavailable {
        e.retry_after = Some(1);
    }
    e
}
