//! The gateway role (downstream filter): one [`GatewayRole`] per client request, sans-IO. It
//! authenticates, decodes the client protocol, scrubs PII, applies limits, picks the target, and
//! turns the provider role's IR answer back into the client's protocol, restoring PII.
//!
//! Call order (the host pumps; every input is data, every effect is a returned value):
//! 1. [`GatewayRole::on_request_headers`] → reply now, or buffer the body (after stripping headers).
//! 2. [`GatewayRole::on_request_body`] with the whole body → reply now, or forward an IR body with
//!    `x-weir-cluster` set (it selects the Envoy cluster); the body is an [`Envelope`](crate::ir::Envelope) naming
//!    the model route, for the provider role.
//! 3. [`GatewayRole::on_response_headers`] → headers to set/remove; then
//!    [`GatewayRole::on_response_body`] per chunk (streams) or once with the whole body
//!    ([`GatewayRole::buffers_response`]).
//! 4. [`GatewayRole::on_done`] exactly once, whatever happened: settles the limit reservation.
//!
//! Invariants: nothing the client sent under an `x-weir-` name reaches Envoy's router, and no
//! credential header reaches the upstream; every refusal is an [`ErrorInfo`] encoded in the
//! client's own protocol; answers the provider role did not produce (Envoy's local replies such
//! as "no healthy upstream") are re-shaped into the client's error format too.

use crate::cache::{self, Directive, Lookup, Who};
use crate::config::Config;
use crate::ir::{ErrorInfo, ErrorKind, Request, Response, StreamEvent, Usage};
use crate::limits::{descriptors, Actual, Estimate, Subject, Ticket};
use crate::metrics::Summary;
use crate::pii::{EventRestorer, Vault};
use crate::roles::headers::{CLUSTER_HEADER, INTERNAL_PREFIX, IR_HEADER, PROVIDER_HEADER};
use crate::roles::{
    header_value, status_of, strip_list, BodyVerdict, Env, Filter, HeaderEdits, HeadersVerdict,
};
use crate::stream::ndjson::NdjsonFramer;
use crate::wire::Reply;
use crate::wire::{ClientApi, StreamEncoder};
use std::rc::Rc;

/// Response header for clients (debug): who served the request.
pub const SERVED_BY_HEADER: &str = "x-weir-served-by";
enum Mode {
    /// Before the response, or a passthrough we do not touch.
    None,
    /// A complete IR answer or a foreign (non-IR) answer to re-shape, buffered to its end.
    Buffered {
        status: u16,
        ir: bool,
    },
    Stream(Box<StreamState>),
}

struct StreamState {
    framer: NdjsonFramer,
    encoder: Box<dyn StreamEncoder>,
    restorer: EventRestorer,
    /// The stream already ended with an error; ignore the rest.
    failed: bool,
}

/// One client request through the gateway role.
pub struct GatewayRole {
    cfg: Rc<Config>,
    api: Option<ClientApi>,
    request: Option<Rc<Request>>,
    /// The in-VM hand-off reference to release in `on_done`.
    handoff: Option<u64>,
    vault: Option<Vault>,
    ticket: Option<Ticket>,
    price: Option<crate::limits::Price>,
    usage: Option<Usage>,
    mode: Mode,
    response_started: bool,
    /// The status a buffered answer must end with, when it differs from what arrived.
    final_status: Option<u16>,
    /// What the metrics and the access log will say about this request; also the one record of
    /// the authenticated key (`key`) and the matched route (`model`).
    summary: Summary,
    started_ms: u64,
    done: bool,
    /// The target this request acquired (health: finished exactly once in `on_done`).
    routing: Option<crate::routing::Ticket>,
    /// The client's `Cache-Control` wishes, and what the response cache decided.
    cache_directive: Directive,
    cache: Lookup,
    /// Envoy's global rate limit filter refused the request (a local 429 no provider saw).
    global_refusal: bool,
    /// Global descriptors: the response has ended, and whether its overrun was published.
    response_ended: bool,
    overrun_published: Option<bool>,
}

impl GatewayRole {
    pub fn new(cfg: Rc<Config>) -> Self {
        GatewayRole {
            cfg,
            api: None,
            request: None,
            handoff: None,
            vault: None,
            ticket: None,
            price: None,
            usage: None,
            mode: Mode::None,
            response_started: false,
            final_status: None,
            summary: Summary::default(),
            started_ms: 0,
            done: false,
            routing: None,
            cache_directive: Directive::Normal,
            cache: Lookup::Off,
            global_refusal: false,
            response_ended: false,
            overrun_published: None,
        }
    }

    /// Usage reported by the provider, once known.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn finish_buffered(
        &mut self,
        api: ClientApi,
        status: u16,
        ir: bool,
        body: &[u8],
        env: &Env,
    ) -> Vec<u8> {
        if body.len() > self.cfg.max_response_bytes {
            return api.encode_error(&ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                "the provider's answer exceeded max_response_bytes",
            ));
        }
        let parsed = if ir {
            crate::roles::handoff::response(body)
        } else {
            None
        };
        match parsed {
            Some(mut resp) => {
                // Stored before restoration: the cache holds placeholders, never the originals.
                if let Lookup::Miss(p) = &self.cache {
                    self.cfg
                        .cache
                        .store(env.store, env.now_ms(), p, status, &resp);
                }
                if let Some(v) = &self.vault {
                    if !v.is_empty() {
                        v.restore_response(&mut resp);
                    }
                }
                self.usage = match &resp {
                    Response::Chat(c) => c.usage,
                    Response::Embeddings(e) => e.usage,
                    Response::Error(e) => {
                        self.final_status = Some(e.status);
                        self.summary.status = e.status;
                        None
                    }
                };
                api.encode_response(&resp)
            }
            None => {
                let err = foreign_error(status, body);
                self.final_status = Some(err.status);
                self.summary.status = err.status;
                api.encode_error(&err)
            }
        }
    }

    /// Debug: the shared health record of the target this request acquired.
    fn health_header(&self, env: &Env) -> Option<String> {
        let ticket = self.routing?;
        let route = self.cfg.router.by_name(self.summary.model.as_deref()?)?;
        Some(route.health(env.store, ticket.index)?.describe())
    }

    /// Consults the response cache with the scrubbed request; a hit is answered here, without
    /// an upstream call, and its limiter ticket settled at once (tokens refunded unless
    /// configured otherwise). A miss is remembered so the answer can be stored.
    #[allow(clippy::too_many_arguments)]
    fn cache_lookup(
        &mut self,
        api: ClientApi,
        req: &Request,
        route: &crate::routing::Route,
        key: &crate::auth::ClientKey,
        vault: &Vault,
        target: &crate::routing::Target,
        env: &Env,
    ) -> Option<Reply> {
        let cfg = Rc::clone(&self.cfg);
        let who = Who {
            key_id: &key.id,
            team: key.team.as_deref(),
        };
        let lookup = cfg.cache.lookup(
            env.store,
            env.now_ms(),
            &route.name,
            &route.targets,
            &who,
            self.cache_directive,
            req,
        );
        self.summary.cache = lookup.label();
        let Lookup::Hit(hit) = lookup else {
            self.cache = lookup;
            return None;
        };
        let mut headers = Vec::new();
        if let Some(ticket) = self.ticket.take() {
            headers = ticket.headers();
            let actual = cfg.cache.hit_actual(&hit, target.price.as_ref());
            cfg.limiter.settle(env.store, env.now_ms(), &ticket, actual);
        }
        Some(cache::hit_reply(api, req, &hit, Some(vault), headers))
    }

    fn visible_models(&self) -> Vec<String> {
        let key = self
            .summary
            .key
            .as_deref()
            .and_then(|id| self.cfg.keys.key(id));
        self.cfg
            .router
            .routes()
            .iter()
            .filter(|r| !r.is_glob())
            .filter(|r| key.is_some_and(|k| k.may_use(&r.name)))
            .map(|r| r.name.clone())
            .collect()
    }

    fn ollama_show(&mut self, body: &[u8]) -> BodyVerdict {
        let model = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("model")
                    .or_else(|| v.get("name"))
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        let Some(model) = model else {
            return self.reply_body(ErrorInfo::invalid("model", "`model` is required"));
        };
        let allowed = self
            .summary
            .key
            .as_deref()
            .and_then(|id| self.cfg.keys.key(id))
            .is_some_and(|k| k.may_use(&model));
        if self.cfg.router.find(&model).is_none() || !allowed {
            return self.reply_body(not_found(&model));
        }
        BodyVerdict::Reply(json_reply(200, crate::roles::catalog::ollama_show(&model)))
    }

    fn reply(&mut self, err: ErrorInfo) -> HeadersVerdict {
        self.summary.status = err.status;
        HeadersVerdict::Reply(error_reply(self.api.unwrap_or(ClientApi::OpenAiChat), &err))
    }

    fn reply_body(&mut self, err: ErrorInfo) -> BodyVerdict {
        self.summary.status = err.status;
        BodyVerdict::Reply(error_reply(self.api.unwrap_or(ClientApi::OpenAiChat), &err))
    }

    fn request_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeadersVerdict {
        let text = |name| header_value(headers, name).and_then(|v| std::str::from_utf8(v).ok());
        let (method, path) = (text(":method").unwrap_or(""), text(":path").unwrap_or(""));
        let Some(api) = ClientApi::classify(method, path) else {
            let api = fallback_api(path);
            return HeadersVerdict::Reply(error_reply(
                api,
                &ErrorInfo::new(
                    404,
                    ErrorKind::NotFound,
                    format!("weir does not serve {method} {}", path_only(path)),
                ),
            ));
        };
        self.api = Some(api);
        if method != api.method() {
            return self.reply(ErrorInfo::new(
                405,
                ErrorKind::InvalidRequest,
                format!("{} takes {}, not {method}", path_only(path), api.method()),
            ));
        }
        let now_s = env.now_ms() / 1000;
        let key = match self.cfg.keys.authenticate(headers, now_s) {
            Ok(k) => k,
            Err(e) => return self.reply(e),
        };
        self.summary.key = Some(key.id.clone());
        self.cache_directive = Directive::from_headers(headers);
        if api.method() == "GET" && carries_body(headers) {
            return self.reply(ErrorInfo::invalid(
                "",
                format!("GET {} takes no request body", path_only(path)),
            ));
        }
        match api {
            ClientApi::OpenAiModels | ClientApi::OllamaTags => {
                let names = self.visible_models();
                let body = match api {
                    ClientApi::OllamaTags => crate::roles::catalog::ollama_tags(&names, now_s),
                    _ => crate::roles::catalog::openai_models(&names, now_s),
                };
                return HeadersVerdict::Reply(json_reply(200, body));
            }
            ClientApi::OllamaVersion => {
                return HeadersVerdict::Reply(json_reply(200, br#"{"version":"0.6.0"}"#.to_vec()))
            }
            _ => {}
        }
        let content_type = header_value(headers, "content-type").unwrap_or(b"application/json");
        if !is_json(content_type) {
            return self.reply(ErrorInfo::new(
                415,
                ErrorKind::InvalidRequest,
                "the request body must be JSON (content-type: application/json)",
            ));
        }
        let declared = header_value(headers, "content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.cfg.max_request_bytes) {
            return self.reply(too_large(self.cfg.max_request_bytes));
        }
        let credentials = self
            .cfg
            .keys
            .credential_headers()
            .iter()
            .map(String::as_str);
        let remove = strip_list(
            headers,
            credentials.chain(["content-length", "accept-encoding"]),
        );
        HeadersVerdict::Buffer { remove }
    }

    fn request_body(&mut self, body: &[u8], env: &Env) -> BodyVerdict {
        let Some(api) = self.api else {
            return BodyVerdict::Reply(error_reply(
                ClientApi::OpenAiChat,
                &ErrorInfo::new(500, ErrorKind::Internal, "request body before headers"),
            ));
        };
        if body.len() > self.cfg.max_request_bytes {
            return self.reply_body(too_large(self.cfg.max_request_bytes));
        }
        if api == ClientApi::OllamaShow {
            return self.ollama_show(body);
        }
        let mut req = match api.decode_request(body) {
            Ok(r) => r,
            Err(e) => return self.reply_body(e.info()),
        };
        let cfg = Rc::clone(&self.cfg);
        let model = req.model().to_string();
        let Some(route) = cfg.router.find(&model) else {
            return self.reply_body(not_found(&model));
        };
        self.summary.model = Some(route.name.clone());
        self.summary.stream = req.is_stream();
        let Some(key) = self.summary.key.as_deref().and_then(|id| cfg.keys.key(id)) else {
            return self.reply_body(ErrorInfo::new(
                401,
                ErrorKind::Authentication,
                "missing API key",
            ));
        };
        if !key.may_use(&model) {
            return self.reply_body(ErrorInfo::new(
                403,
                ErrorKind::PermissionDenied,
                format!("this API key may not use model '{model}'"),
            ));
        }
        let mut vault = cfg.pii.new_vault();
        match cfg.pii.scrub_request(&mut req, &mut vault) {
            Ok(found) => self.summary.pii = found.counts,
            Err(blocked) => {
                self.summary.pii = vec![(blocked.detector.clone(), 1)];
                return self.reply_body(ErrorInfo::invalid(
                    "messages",
                    format!(
                        "the request was blocked because it contains {} data",
                        blocked.detector
                    ),
                ));
            }
        }
        let choice = match route.choose(env.store, env.now_ms(), env.random, &req) {
            Ok(c) => c,
            Err(down) => {
                self.summary.breaker = down.events;
                return self.reply_body(crate::routing::unavailable(&model, down.retry_after_s));
            }
        };
        self.summary.breaker = choice.events;
        self.routing = Some(choice.ticket);
        let target = choice.target;
        let estimate = Estimate::for_request(&req, &cfg.limiter, target.price.as_ref());
        let subject = Subject {
            key_id: &key.id,
            key_limits: key.limits.as_ref(),
            model: &route.name,
        };
        match cfg
            .limiter
            .admit(env.store, env.now_ms(), &subject, estimate)
        {
            Ok(ticket) => self.ticket = Some(ticket),
            Err(refusal) => {
                self.summary.status = refusal.info.status;
                let mut reply = error_reply(api, &refusal.info);
                reply.headers.extend(refusal.headers);
                return BodyVerdict::Reply(reply);
            }
        }
        if let Some(reply) = self.cache_lookup(api, &req, route, key, &vault, target, env) {
            return BodyVerdict::Reply(reply);
        }
        let req = Rc::new(req);
        let ir = match crate::roles::handoff::send(&route.name, &target.cluster, &req, env.random) {
            Ok(out) => {
                self.handoff = out.id;
                out.body
            }
            Err(_) => {
                return self.reply_body(ErrorInfo::new(
                    500,
                    ErrorKind::Internal,
                    "could not serialise the request",
                ))
            }
        };
        self.price = target.price;
        self.vault = Some(vault);
        let mut set = vec![
            (CLUSTER_HEADER.to_string(), target.cluster.clone()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        if let Some(hash) = choice.affinity {
            set.push((crate::routing::affinity::AFFINITY_HEADER.to_string(), hash));
        }
        if cfg.limiter.global_descriptors() {
            set.extend(descriptors::request_headers(
                &key.id,
                &route.name,
                &estimate,
            ));
        }
        self.request = Some(req);
        BodyVerdict::Forward { set, body: ir }
    }
}

impl Filter for GatewayRole {
    /// `headers`: every request header, lower-case names, raw values, repeats kept.
    fn on_request_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeadersVerdict {
        self.started_ms = env.now_ms();
        let verdict = self.request_headers(headers, env);
        if let HeadersVerdict::Reply(r) = &verdict {
            self.summary.status = r.status;
        }
        verdict
    }

    /// The whole request body (the host buffers it).
    fn on_request_body(&mut self, body: &[u8], env: &Env) -> BodyVerdict {
        let verdict = self.request_body(body, env);
        if let BodyVerdict::Reply(r) = &verdict {
            self.summary.status = r.status;
        }
        verdict
    }

    /// The upstream answer's headers (after Envoy's router: the provider role's, or Envoy's own
    /// local reply).
    fn on_response_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeaderEdits {
        let status = status_of(headers);
        self.response_started = true;
        let mut edits = HeaderEdits::default();
        if self.request.is_some() {
            let text = |name| header_value(headers, name).and_then(|v| std::str::from_utf8(v).ok());
            self.summary.status = status;
            self.summary.provider = text(PROVIDER_HEADER).map(str::to_string);
            self.summary.attempts = text("x-envoy-attempt-count")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
        }
        let Some(api) = self.api else {
            return edits;
        };
        if self.request.is_none() {
            // A reply this gateway made itself; it is already in the client's shape.
            return edits;
        }
        let marker = header_value(headers, IR_HEADER).map(|v| v.to_vec());
        let stream_req = self.request.as_deref().and_then(|r| match r {
            Request::Chat(c) if c.stream => Some(c.clone()),
            _ => None,
        });
        match (marker.as_deref(), stream_req) {
            (Some(b"stream"), Some(chat)) if (200..300).contains(&status) => {
                self.mode = Mode::Stream(Box::new(StreamState {
                    framer: NdjsonFramer::new(self.cfg.max_stream_frame_bytes),
                    encoder: api.stream_encoder(&chat),
                    restorer: EventRestorer::new(),
                    failed: false,
                }));
                edits
                    .set
                    .push(("content-type".into(), api.stream_content_type().into()));
                edits.set.push(("cache-control".into(), "no-cache".into()));
            }
            (marker, _) => {
                self.mode = Mode::Buffered {
                    status,
                    ir: marker == Some(b"response"),
                };
                edits
                    .set
                    .push(("content-type".into(), "application/json".into()));
                if status == 503 && header_value(headers, "retry-after").is_none() {
                    edits.set.push(("retry-after".into(), "1".into()));
                }
                if status == 429 && marker.is_none() {
                    // Envoy's global rate limit filter answered before any provider was asked.
                    self.global_refusal = true;
                    if header_value(headers, "retry-after").is_none() {
                        edits
                            .set
                            .push(("retry-after".into(), global_retry_after(headers)));
                    }
                }
            }
        }
        edits.remove.push("content-length".into());
        for (name, _) in headers {
            if name.starts_with(INTERNAL_PREFIX) || name == "x-envoy-attempt-count" {
                edits.remove.push(name.clone());
            }
        }
        if self.cfg.debug_headers {
            if let Some(p) =
                header_value(headers, PROVIDER_HEADER).and_then(|v| std::str::from_utf8(v).ok())
            {
                edits.set.push((SERVED_BY_HEADER.into(), p.to_string()));
            }
            if let Some(n) = header_value(headers, "x-envoy-attempt-count")
                .and_then(|v| std::str::from_utf8(v).ok())
            {
                edits.set.push(("x-weir-attempts".into(), n.to_string()));
            }
            if let Some(h) = self.health_header(env) {
                edits.set.push((crate::routing::HEALTH_HEADER.into(), h));
            }
        }
        if let Some(ticket) = &self.ticket {
            edits.set.extend(ticket.headers());
        }
        if let Some(label) = self.cache.label() {
            edits.set.push((cache::CACHE_HEADER.into(), label.into()));
        }
        edits
    }

    /// Whether the host must hold the response body until its end and pass it whole.
    fn buffers_response(&self) -> bool {
        matches!(self.mode, Mode::Buffered { .. })
    }

    /// A response body chunk (or the whole body when buffering); returns its replacement.
    fn on_response_body(&mut self, chunk: &[u8], end: bool, env: &Env) -> Option<Vec<u8>> {
        self.response_ended |= end;
        let api = self.api?;
        match &mut self.mode {
            Mode::None => None,
            Mode::Buffered { status, ir } => {
                if !end {
                    return None;
                }
                let (status, ir) = (*status, *ir);
                Some(self.finish_buffered(api, status, ir, chunk, env))
            }
            Mode::Stream(st) => {
                let mut lines = Vec::new();
                // Taken even after a failure, so the queue never outgrows one chunk's events.
                let queued = crate::roles::handoff::take_stream(self.handoff);
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
                let vault = self.vault.as_ref();
                let mut restored = Vec::new();
                for ev in events {
                    if let Lookup::Miss(p) = &mut self.cache {
                        p.observe(&ev);
                    }
                    if let StreamEvent::Usage(u) = &ev {
                        self.usage = Some(*u);
                    }
                    match vault {
                        Some(v) if !v.is_empty() => st.restorer.event(v, ev, &mut restored),
                        _ => restored.push(ev),
                    }
                }
                if end {
                    if let Some(v) = vault {
                        st.restorer.flush(v, &mut restored);
                    }
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
                    if let Lookup::Miss(p) = &mut self.cache {
                        self.cfg.cache.store_stream(env.store, env.now_ms(), p);
                    }
                }
                if !out.is_empty() && self.summary.ttft_ms.is_none() {
                    self.summary.ttft_ms = Some(env.now_ms().saturating_sub(self.started_ms));
                }
                Some(out)
            }
        }
    }

    /// The request is over (Envoy's log phase). Settles the limit reservation exactly once and
    /// returns what the metrics and the access log report.
    fn on_done(&mut self, env: &Env) -> Option<Summary> {
        if self.done {
            return None;
        }
        self.done = true;
        crate::roles::handoff::release(self.handoff.take());
        // Cost and carbon belong to the target that served, which after a failover is not the
        // one first picked.
        let cfg = Rc::clone(&self.cfg);
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
        if let Some(t) = route
            .zip(provider)
            .and_then(|(r, p)| r.target_for_provider(&p.name))
        {
            self.price = t.price;
        }
        if let Some(u) = &self.usage {
            self.summary.set_usage(u);
            if let Some(price) = &self.price {
                self.summary.cost_micro_usd = crate::limits::cost_micro_usd(price, u);
            }
            if let Some((r, p)) = route.zip(provider) {
                let energy = r
                    .target_for_provider(&p.name)
                    .map(|t| t.energy)
                    .unwrap_or_default();
                self.summary.co2e_mg = crate::metrics::co2e_mg(u, &energy, p.grid_g_co2e_per_kwh);
            }
        }
        self.summary.duration_ms = env.now_ms().saturating_sub(self.started_ms);
        if let (Some(r), Some(ticket)) = (route, self.routing.take()) {
            let finished = crate::routing::Finished {
                status: if self.response_started {
                    self.summary.status
                } else {
                    0
                },
                provider: self.summary.provider.as_deref(),
                attempts: self.summary.attempts,
                latency_ms: Some(self.summary.ttft_ms.unwrap_or(self.summary.duration_ms)),
                // A global-limit refusal never reached the target: not its failure.
                forwarded: self.request.is_some() && !self.global_refusal,
            };
            let events = r.finish(env.store, env.now_ms(), ticket, &finished);
            self.summary.breaker.extend(events);
        }
        if let Some(ticket) = self.ticket.take() {
            let actual = match (&self.usage, self.response_started) {
                _ if self.global_refusal => Actual::default(),
                (Some(u), _) => Actual::from_usage(u, self.price.as_ref()),
                (None, false) => Actual::default(),
                (None, true) => Actual::from_estimate(ticket.estimate()),
            };
            self.cfg
                .limiter
                .settle(env.store, env.now_ms(), &ticket, actual);
        }
        Some(self.summary.clone())
    }

    /// The status a buffered answer must carry instead of the one that arrived (the host holds
    /// the response headers until the body is complete, so it can still change).
    fn take_status(&mut self) -> Option<u16> {
        self.final_status.take()
    }

    /// With `limits.global_descriptors`: the key id, route and a `0` overrun once the request is
    /// forwarded, then the token overrun when the answer ends (for `apply_on_stream_done`).
    fn take_filter_state(&mut self) -> Vec<(&'static str, String)> {
        if !self.cfg.limiter.global_descriptors() || self.request.is_none() {
            return Vec::new();
        }
        let Some(estimate) = self.ticket.as_ref().map(Ticket::estimate) else {
            return Vec::new();
        };
        match (self.overrun_published, self.response_ended) {
            (None, _) => {
                self.overrun_published = Some(false);
                let (key, model) = (self.summary.key.clone(), self.summary.model.clone());
                vec![
                    (descriptors::KEY_STATE, key.unwrap_or_default()),
                    (descriptors::MODEL_STATE, model.unwrap_or_default()),
                    (descriptors::OVERRUN_STATE, "0".to_string()),
                ]
            }
            (Some(false), true) => {
                self.overrun_published = Some(true);
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

fn json_reply(status: u16, body: Vec<u8>) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    }
}

/// An error in the client's protocol shape, with `retry-after` when the error carries one.
pub fn error_reply(api: ClientApi, err: &ErrorInfo) -> Reply {
    let mut reply = json_reply(err.status, api.encode_error(err));
    if let Some(s) = err.retry_after {
        reply.headers.push(("retry-after".into(), s.to_string()));
    }
    reply
}

/// The protocol to answer in when the path is not one weir serves.
fn fallback_api(path: &str) -> ClientApi {
    if path.starts_with("/api/") {
        ClientApi::OllamaChat
    } else if path.starts_with("/v1/messages") {
        ClientApi::AnthropicMessages
    } else {
        ClientApi::OpenAiChat
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`), in any case.
fn is_json(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
}

fn carries_body(headers: &[(String, Vec<u8>)]) -> bool {
    header_value(headers, "transfer-encoding").is_some()
        || header_value(headers, "content-length").is_some_and(|v| v != b"0")
}

fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn not_found(model: &str) -> ErrorInfo {
    let mut e = ErrorInfo::new(
        404,
        ErrorKind::NotFound,
        format!("The model `{model}` does not exist or is not served by this gateway"),
    );
    e.field = Some("model".into());
    e
}

fn too_large(limit: usize) -> ErrorInfo {
    ErrorInfo::new(
        413,
        ErrorKind::PayloadTooLarge,
        format!("the request body exceeds the gateway's limit of {limit} bytes"),
    )
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
