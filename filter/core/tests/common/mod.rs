//! The harness of the sans-IO integration tests: a simulated Envoy (store, virtual clock, random
//! input, upstream endpoint) that drives the gateway and provider roles of a request in its order.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::cell::Cell;
use std::rc::Rc;
use weir_core::config::Config;
use weir_core::metrics::Summary;
use weir_core::roles::gateway::GatewayRole;
use weir_core::roles::handoff::ProviderRoot;
use weir_core::roles::headers::CLUSTER_HEADER;
use weir_core::roles::provider::ProviderRole;
use weir_core::roles::{
    status_of, BodyVerdict, Clock, Endpoint, Env, Filter, HeaderEdits, HeadersVerdict, NoEndpoint,
};
use weir_core::store::MemStore;
use weir_core::wire::Reply;

/// Where the virtual clock starts, Unix milliseconds.
pub const NOW_MS: u64 = 1_790_000_000_000;

/// Envoy as the roles see it. Time and chance are plain inputs, so every run is the same; clock
/// and endpoint reads are host calls in Envoy, so they are counted.
pub struct Host {
    pub store: MemStore,
    /// Virtual time, Unix milliseconds: set it to let time pass.
    pub now_ms: u64,
    /// What every callback gets as its fresh random number.
    pub random: u64,
    /// The provider in the metadata of the endpoint Envoy picked for the current attempt.
    endpoint: Option<String>,
    clock_reads: Cell<u32>,
    endpoint_reads: Cell<u32>,
}

impl Host {
    /// What a downstream filter (the gateway role) gets: there is no upstream endpoint yet.
    pub fn env(&self) -> Env<'_> {
        Env {
            clock: self,
            store: &self.store,
            random: self.random,
            endpoint: &NoEndpoint,
        }
    }

    /// What the current upstream attempt (a provider role) gets.
    pub fn upstream_env(&self) -> Env<'_> {
        Env {
            endpoint: self,
            ..self.env()
        }
    }

    /// Clock reads by either role so far.
    pub fn clock_reads(&self) -> u32 {
        self.clock_reads.get()
    }

    /// Endpoint metadata reads by provider roles so far.
    pub fn endpoint_reads(&self) -> u32 {
        self.endpoint_reads.get()
    }
}

impl Clock for Host {
    fn now_ms(&self) -> u64 {
        self.clock_reads.set(self.clock_reads.get() + 1);
        self.now_ms
    }
}

impl Endpoint for Host {
    fn provider(&self) -> Option<String> {
        self.endpoint_reads.set(self.endpoint_reads.get() + 1);
        self.endpoint.clone()
    }
}

/// Headers as a test writes them; the host hands them to a role as raw bytes.
#[derive(Clone, Debug, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        Headers(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// Sets `name` to one value, replacing any it had (Envoy's replace).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), value.to_string()));
        self
    }

    fn raw(&self) -> Vec<(String, Vec<u8>)> {
        self.0
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
            .collect()
    }
}

/// A client's JSON POST to `path`, with `key` as its bearer token.
pub fn post(key: &str, path: &str) -> Headers {
    Headers::new(&[
        (":method", "POST"),
        (":path", path),
        ("content-type", "application/json"),
    ])
    .with("authorization", &format!("Bearer {key}"))
}

/// A client key as the config names it: the SHA-256 of its secret.
pub fn sha(secret: &str) -> String {
    weir_core::auth::sha256_hex(secret)
}

/// A header weir set, by name.
pub fn set_of<'a>(set: &'a [(String, String)], name: &str) -> Option<&'a str> {
    set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// An OpenAI chat completion saying `text` (5 prompt tokens, 2 completion tokens).
pub fn openai_answer(text: &str) -> Vec<u8> {
    serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    .to_string()
    .into_bytes()
}

/// A request a role sent on: the headers it set and its body.
#[derive(Debug)]
pub struct Forwarded {
    pub set: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Forwarded {
    pub fn header(&self, name: &str) -> Option<&str> {
        set_of(&self.set, name)
    }

    pub fn json(&self) -> Value {
        json(&self.body)
    }
}

/// What reached the client.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The gateway role's response header edits.
    pub edits: HeaderEdits,
    /// The gateway had Envoy hold the response until its end (so it could change the status).
    pub held: bool,
    /// Every response header the client got: what arrived, after both roles' edits.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        set_of(&self.edits.set, name)
    }

    pub fn json(&self) -> Value {
        json(&self.body)
    }
}

/// The response in flight, between the roles and Envoy's buffers.
#[derive(Default)]
struct Response {
    /// The provider role's headers (its edits applied), while Envoy holds them with its body.
    held_upstream: Option<Vec<(String, Vec<u8>)>>,
    upstream_buffer: Vec<u8>,
    gateway_buffer: Vec<u8>,
    edits: HeaderEdits,
    held: bool,
    status: u16,
    client: Vec<u8>,
    client_headers: Vec<(String, Vec<u8>)>,
    /// The provider role passes this answer on unchanged (`x-weir-ir: raw`), so a role leaving
    /// a body as it is (`None`) is expected.
    raw: bool,
}

/// One host and the request in flight on it: the gateway role for the client's request and the
/// provider role of its current upstream attempt.
pub struct Harness {
    pub cfg: Rc<Config>,
    pub host: Host,
    gateway: GatewayRole,
    attempt: Option<ProviderRole>,
    response: Response,
    /// Filter state the roles published (Envoy's `wasm.<name>` properties), not yet read.
    published: Vec<(&'static str, String)>,
    /// Present while a provider root context lives in the gateway's VM.
    provider_root: Option<ProviderRoot>,
}

impl Harness {
    /// A host configured as Envoy's gateway root context configures it: the config parsed, the
    /// shared limit counters and health records seeded before any traffic.
    pub fn new(config: Value) -> Self {
        let (cfg, _) = Config::parse(config.to_string().as_bytes(), &|_| None).unwrap();
        let cfg = Rc::new(cfg);
        let host = Host {
            store: MemStore::new(),
            now_ms: NOW_MS,
            random: 7,
            endpoint: None,
            clock_reads: Cell::new(0),
            endpoint_reads: Cell::new(0),
        };
        let limited = cfg
            .keys
            .keys()
            .filter_map(|k| Some((k.id.as_str(), k.limits.as_ref()?)));
        cfg.limiter.seed(&host.store, limited).unwrap();
        cfg.router.seed(&host.store).unwrap();
        Harness {
            gateway: GatewayRole::new(Rc::clone(&cfg)),
            cfg,
            host,
            attempt: None,
            response: Response::default(),
            published: Vec::new(),
            provider_root: None,
        }
    }

    /// The gateway role's host inputs now.
    pub fn env(&self) -> Env<'_> {
        self.host.env()
    }

    pub fn gateway(&self) -> &GatewayRole {
        &self.gateway
    }

    /// Whether a provider root context shares the gateway's VM, which makes the roles hand the
    /// request and its answer over by reference instead of as IR JSON.
    pub fn in_one_vm(&mut self, yes: bool) {
        if yes != self.provider_root.is_some() {
            self.provider_root = yes.then(ProviderRoot::new);
        }
    }

    /// A new client request on the same host. Envoy ends every request with its log phase, so
    /// the last one gets `on_done` if the test did not call it (the role ignores a second call).
    pub fn next_request(&mut self) {
        self.gateway.on_done(&self.host.env());
        self.gateway = GatewayRole::new(Rc::clone(&self.cfg));
        self.attempt = None;
        self.response = Response::default();
        self.published.clear();
    }

    /// The client's request through the gateway role: forwarded (as an envelope for the provider
    /// role, with the headers it set) or answered by the gateway itself.
    pub fn send(&mut self, headers: Headers, body: Value) -> Result<Forwarded, Reply> {
        self.send_headers(headers)?;
        self.send_body(&body)
    }

    /// The gateway role's request headers; the headers it strips before Envoy buffers the body.
    pub fn send_headers(&mut self, headers: Headers) -> Result<Vec<String>, Reply> {
        let raw = headers.raw();
        match self.gateway.on_request_headers(&raw, &self.host.env()) {
            HeadersVerdict::Reply(r) => Err(r),
            HeadersVerdict::Buffer { remove } => {
                assert_stripped(
                    &raw,
                    &remove,
                    &["authorization", "content-length", "x-forwarded-client-cert"],
                );
                Ok(remove)
            }
            HeadersVerdict::Forward { .. } => panic!("the gateway sent the request on unread"),
        }
    }

    /// A body-less request the gateway role sends on from its headers (a stored-response
    /// call): the headers it set, or its own answer.
    pub fn send_unread(&mut self, headers: Headers) -> Result<Forwarded, Reply> {
        let raw = headers.raw();
        match self.gateway.on_request_headers(&raw, &self.host.env()) {
            HeadersVerdict::Reply(r) => Err(r),
            HeadersVerdict::Forward { remove, set } => {
                assert_stripped(&raw, &remove, &["authorization", "x-forwarded-client-cert"]);
                Ok(Forwarded {
                    set,
                    body: Vec::new(),
                })
            }
            HeadersVerdict::Buffer { .. } => panic!("the gateway waits for a body"),
        }
    }

    /// A new attempt of a request the gateway sent on unread, at an endpoint whose metadata
    /// names `provider`: what the provider role sends, or its own answer.
    pub fn attempt_unread(&mut self, provider: &str, headers: Headers) -> Result<Forwarded, Reply> {
        self.host.endpoint = Some(provider.to_string());
        self.response = Response::default();
        let attempt = self.attempt.insert(ProviderRole::new(Rc::clone(&self.cfg)));
        let raw = headers.raw();
        match attempt.on_request_headers(&raw, &self.host.upstream_env()) {
            HeadersVerdict::Forward { remove, set } => {
                assert_stripped(&raw, &remove, &["authorization"]);
                Ok(Forwarded {
                    set,
                    body: Vec::new(),
                })
            }
            HeadersVerdict::Reply(r) => Err(r),
            HeadersVerdict::Buffer { .. } => panic!("the provider role waits for a body"),
        }
    }

    /// The gateway role's whole request body.
    pub fn send_body(&mut self, body: &Value) -> Result<Forwarded, Reply> {
        let verdict = self
            .gateway
            .on_request_body(body.to_string().as_bytes(), &self.host.env());
        match verdict {
            BodyVerdict::Reply(r) => Err(r),
            BodyVerdict::Forward { set, body } => {
                assert!(
                    set_of(&set, CLUSTER_HEADER).is_some(),
                    "Envoy's router needs the cluster: {set:?}"
                );
                self.published.extend(self.gateway.take_filter_state());
                Ok(Forwarded { set, body })
            }
        }
    }

    /// An upstream attempt's request half at an endpoint whose metadata names `provider`: what
    /// the provider role sends the provider. Each attempt is a fresh provider role, as Envoy runs
    /// upstream filters once per attempt, retries included.
    pub fn attempt(&mut self, provider: &str, headers: Headers, envelope: &[u8]) -> Forwarded {
        self.attempt_headers(provider, headers);
        self.attempt_body(envelope).unwrap_or_else(|r| {
            panic!(
                "the provider role refused the attempt: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )
        })
    }

    /// A new attempt's request headers; the headers it strips.
    pub fn attempt_headers(&mut self, provider: &str, headers: Headers) -> Vec<String> {
        self.host.endpoint = Some(provider.to_string());
        self.response = Response::default();
        let attempt = self.attempt.insert(ProviderRole::new(Rc::clone(&self.cfg)));
        let raw = headers.raw();
        match attempt.on_request_headers(&raw, &self.host.upstream_env()) {
            HeadersVerdict::Buffer { remove } => {
                assert_stripped(&raw, &remove, &["authorization"]);
                remove
            }
            HeadersVerdict::Reply(r) => panic!("the provider role answered headers: {r:?}"),
            HeadersVerdict::Forward { .. } => {
                panic!("the provider role sent the request on unread")
            }
        }
    }

    /// The current attempt's request body, the gateway's envelope: sent to the provider, or
    /// answered by the provider role itself.
    pub fn attempt_body(&mut self, envelope: &[u8]) -> Result<Forwarded, Reply> {
        let attempt = self.attempt.as_mut().expect("no attempt started");
        match attempt.on_request_body(envelope, &self.host.upstream_env()) {
            BodyVerdict::Forward { set, body } => {
                self.published.extend(attempt.take_filter_state());
                Ok(Forwarded { set, body })
            }
            BodyVerdict::Reply(r) => Err(r),
        }
    }

    /// The provider answers the current attempt with `chunks`, through both roles in Envoy's
    /// order; returns what the client got.
    pub fn answer(&mut self, status: u16, content_type: &str, chunks: &[&[u8]]) -> Answer {
        self.answer_with(status, content_type, &[], chunks)
    }

    /// [`Harness::answer`] with more provider response headers.
    pub fn answer_with(
        &mut self,
        status: u16,
        content_type: &str,
        extra: &[(&str, &str)],
        chunks: &[&[u8]],
    ) -> Answer {
        self.respond_with(status, content_type, extra);
        match chunks.split_last() {
            Some((last, rest)) => {
                for c in rest {
                    self.chunk(c, false);
                }
                self.chunk(last, true);
            }
            None => {
                self.chunk(b"", true);
            }
        }
        self.client_answer()
    }

    /// The provider's response headers reach the current attempt. Envoy passes the provider
    /// role's headers on to the gateway role at once, unless the provider role buffers: then it
    /// holds them with the body, whose end can still change the status.
    pub fn respond(&mut self, status: u16, content_type: &str) {
        self.respond_with(status, content_type, &[]);
    }

    /// [`Harness::respond`] with more provider response headers (repeats kept).
    pub fn respond_with(&mut self, status: u16, content_type: &str, extra: &[(&str, &str)]) {
        let attempt = self.attempt.as_mut().expect("no attempt to answer");
        let status_text = status.to_string();
        let mut incoming =
            Headers::new(&[(":status", &status_text), ("content-type", content_type)]).raw();
        incoming.extend(
            extra
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        let edits = attempt.on_response_headers(&incoming, &self.host.upstream_env());
        let passed = edited(incoming, &edits);
        self.response = Response::default();
        self.response.raw = set_of(&edits.set, "x-weir-ir") == Some("raw");
        if attempt.buffers_response() {
            self.response.held_upstream = Some(passed);
        } else {
            self.gateway_headers(&passed);
        }
    }

    /// One chunk of the provider's body through both roles; returns the bytes the client gets
    /// now (none while a role has Envoy buffer).
    pub fn chunk(&mut self, bytes: &[u8], end: bool) -> Vec<u8> {
        let Some(out) = self.upstream_body(bytes, end) else {
            return Vec::new();
        };
        if let Some(held) = self.response.held_upstream.take() {
            self.gateway_headers(&held);
        }
        self.gateway_body(out, end)
    }

    /// The current attempt's answer through the provider role only: Envoy's retry policy takes
    /// it and starts the next attempt, so the gateway never sees it. Returns what the provider
    /// role made of it.
    pub fn retried(&mut self, status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
        self.respond(status, content_type);
        assert!(
            self.response.held_upstream.is_some(),
            "Envoy cannot retry an answer whose headers went downstream"
        );
        let out = self.upstream_body(body, true).expect("the whole body");
        let held = self.response.held_upstream.take().unwrap_or_default();
        let seen = status_of(&held);
        assert!(
            seen >= 500 || seen == 429,
            "the shipped retry policy (5xx, 429) does not retry a {seen}"
        );
        self.response = Response::default();
        out
    }

    /// A reply Envoy made itself (no healthy upstream, the global rate limit filter's 429...):
    /// the gateway role gets it without any provider role having seen it.
    pub fn local_reply(&mut self, headers: Headers, body: &[u8]) -> Answer {
        self.response = Response::default();
        self.gateway_headers(&headers.raw());
        self.gateway_body(body.to_vec(), true);
        self.client_answer()
    }

    /// An attempt on `provider` that the provider role refuses with a local reply (a field that
    /// provider cannot take): what the client gets from it.
    pub fn refused_attempt(&mut self, provider: &str, envelope: &[u8]) -> Answer {
        self.attempt_headers(provider, Headers::default());
        let refusal = self
            .attempt_body(envelope)
            .expect_err("the provider role forwarded the attempt");
        let mut headers = Headers::new(&[(":status", &refusal.status.to_string())]);
        for (n, v) in &refusal.headers {
            headers = headers.with(n, v);
        }
        self.local_reply(headers, &refusal.body)
    }

    /// Envoy's log phase for the request in flight: what the gateway role reports, if it had not
    /// already.
    pub fn done(&mut self) -> Option<Summary> {
        self.gateway.on_done(&self.host.env())
    }

    /// The filter state published since the last call; the roles are asked once more, as the
    /// host does after every body callback, so a value published twice would show.
    pub fn published(&mut self) -> Vec<(&'static str, String)> {
        self.published.extend(self.gateway.take_filter_state());
        if let Some(a) = self.attempt.as_mut() {
            self.published.extend(a.take_filter_state());
        }
        std::mem::take(&mut self.published)
    }

    /// A provider body chunk through the provider role, or `None` while Envoy buffers it.
    fn upstream_body(&mut self, bytes: &[u8], end: bool) -> Option<Vec<u8>> {
        let attempt = self.attempt.as_mut().expect("no attempt to answer");
        let r = &mut self.response;
        r.upstream_buffer.extend_from_slice(bytes);
        if attempt.buffers_response() && !end {
            return None;
        }
        let chunk = std::mem::take(&mut r.upstream_buffer);
        let raw = r.raw;
        let out = match attempt.on_response_body(&chunk, end, &self.host.upstream_env()) {
            Some(out) => out,
            None if raw => chunk,
            None => panic!("the provider role rewrites every body it relays"),
        };
        if let (Some(s), Some(held)) = (attempt.take_status(), r.held_upstream.as_mut()) {
            set_status(held, s);
        }
        self.published.extend(attempt.take_filter_state());
        Some(out)
    }

    fn gateway_headers(&mut self, headers: &[(String, Vec<u8>)]) {
        let edits = self.gateway.on_response_headers(headers, &self.host.env());
        let r = &mut self.response;
        r.status = edits.status.unwrap_or_else(|| status_of(headers));
        r.held = self.gateway.buffers_response();
        r.client_headers = edited(headers.to_vec(), &edits);
        r.edits = edits;
    }

    fn gateway_body(&mut self, bytes: Vec<u8>, end: bool) -> Vec<u8> {
        let r = &mut self.response;
        r.gateway_buffer.extend(bytes);
        if self.gateway.buffers_response() && !end {
            return Vec::new();
        }
        let chunk = std::mem::take(&mut r.gateway_buffer);
        let raw = r.raw;
        let out = match self.gateway.on_response_body(&chunk, end, &self.host.env()) {
            Some(out) => out,
            None if raw => chunk,
            None => panic!("the gateway role rewrites every body it relays"),
        };
        // Envoy can change the status only of headers it still holds.
        if let Some(s) = self.gateway.take_status().filter(|_| r.held) {
            r.status = s;
        }
        self.published.extend(self.gateway.take_filter_state());
        r.client.extend_from_slice(&out);
        out
    }

    fn client_answer(&mut self) -> Answer {
        let r = std::mem::take(&mut self.response);
        Answer {
            status: r.status,
            body: r.client,
            edits: r.edits,
            held: r.held,
            headers: r.client_headers,
        }
    }
}

/// Every internal header and every header of `also` in `sent` is in `remove`.
fn assert_stripped(sent: &[(String, Vec<u8>)], remove: &[String], also: &[&str]) {
    for (name, _) in sent {
        if name.starts_with("x-weir-") || also.contains(&name.as_str()) {
            assert!(remove.contains(name), "{name} must be stripped");
        }
    }
}

/// Headers after a role's edits, as the next filter receives them.
fn edited(mut headers: Vec<(String, Vec<u8>)>, edits: &HeaderEdits) -> Vec<(String, Vec<u8>)> {
    headers.retain(|(n, _)| !edits.remove.contains(n) && !edits.set.iter().any(|(s, _)| s == n));
    headers.extend(
        edits
            .set
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec())),
    );
    if let Some(s) = edits.status {
        set_status(&mut headers, s);
    }
    headers
}

fn set_status(headers: &mut Vec<(String, Vec<u8>)>, status: u16) {
    headers.retain(|(n, _)| n != ":status");
    headers.push((":status".into(), status.to_string().into_bytes()));
}
