//! The provider role (an Envoy upstream filter): one [`ProviderRole`] per upstream attempt, sans-IO.
//! It turns the gateway's IR request into the wire format of the provider Envoy picked for this
//! attempt, adds that provider's credentials, and turns the answer back into IR.
//!
//! Because Envoy runs upstream filters once per attempt, a retry that Envoy sends to another
//! endpoint (another priority of the same cluster: a provider of another type) is translated and
//! signed afresh; that is what makes cross-provider failover work inside one request.
//!
//! Call order: [`ProviderRole::on_request_headers`] → [`ProviderRole::on_request_body`] with the whole IR
//! body (the target is resolved here: see `attempt_target`) → [`ProviderRole::on_response_headers`]
//! → [`ProviderRole::on_response_body`] per chunk, or once whole when [`ProviderRole::buffers_response`].
//!
//! A stored-response call (`GET`/`DELETE /v1/responses/{id}`) carries no IR: the gateway names
//! its provider in `x-weir-stored`, and [`ProviderRole::on_request_headers`] sends it on at once
//! with the provider's path and key; the answer passes back unchanged (`x-weir-ir: raw`).
//!
//! Invariants: no `x-weir-` header and no client credential leaves Envoy; of a provider's
//! response headers only pseudo-headers and
//! [`PROVIDER_RESPONSE_HEADERS`](crate::roles::headers::PROVIDER_RESPONSE_HEADERS) go on towards
//! the client; a provider's 401/403 is the gateway's problem, not the client's, so it becomes a
//! 502 naming the key id (never the key); the key is benched only when the error body says the
//! key itself was refused (see `sanitize`); a 429 cools the key down for its `Retry-After`.

use crate::config::Config;
use crate::ir::{Envelope, ErrorInfo, ErrorKind, Request, Response, StreamEvent, TokenCount};
use crate::limits::estimate_input_tokens;
use crate::providers::{keys, sigv4, Credential, Provider};
use crate::roles::handoff::{self, Refused};
use crate::roles::headers::{
    passed_client_headers, request_strip_list, response_strip_list, DROPPED_HEADER, IR_HEADER,
    PROVIDER_HEADER, STORED_HEADER,
};
use crate::roles::{
    header_value, status_of, BodyVerdict, Endpoint, Env, Filter, HeaderEdits, HeadersVerdict,
};
use crate::routing::{Route, Router, Target};
use crate::wire::responses::StoredCall;
use crate::wire::Reply;
use crate::wire::{drop, ProviderKind, StreamDecoder};
use std::rc::Rc;

enum Mode {
    None,
    Buffered,
    /// A stored-response call's answer: passed on unchanged, unless the provider refused the
    /// gateway's key (then replaced by an IR error, which needs the whole body held).
    Stored {
        rejected: bool,
    },
    Stream {
        decoder: Box<dyn StreamDecoder>,
        failed: bool,
    },
}

pub struct ProviderRole {
    cfg: Rc<Config>,
    provider: Option<String>,
    key_id: Option<String>,
    request: Option<Request>,
    status: u16,
    created: u64,
    mode: Mode,
    final_status: Option<u16>,
    /// Where a buffered answer goes back by reference (in-VM hand-off), if it does.
    slot: Option<handoff::Slot>,
    /// This attempt is a stored-response call.
    stored: bool,
    /// The fields dropped for this attempt's provider (`wire::drop`).
    dropped: Vec<String>,
}

impl ProviderRole {
    pub fn new(cfg: Rc<Config>) -> Self {
        ProviderRole {
            cfg,
            provider: None,
            key_id: None,
            request: None,
            status: 0,
            created: 0,
            mode: Mode::None,
            final_status: None,
            slot: None,
            stored: false,
            dropped: Vec::new(),
        }
    }

    fn finish_buffered(&mut self, body: &[u8], env: &Env) -> Vec<u8> {
        let (Some(req), Some(provider)) = (
            self.request.as_ref(),
            self.provider
                .as_deref()
                .and_then(|p| self.cfg.providers.get(p)),
        ) else {
            return Vec::new();
        };
        let resp = if body.len() > self.cfg.max_response_bytes {
            Response::Error(ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                "the provider's answer exceeded max_response_bytes",
            ))
        } else {
            match provider
                .spec
                .decode_response(req, self.status, body, self.created)
            {
                Ok(Response::Error(e)) => Response::Error(self.sanitize(provider, e, env)),
                Ok(r) => r,
                Err(e) => Response::Error(e.info()),
            }
        };
        if let Response::Error(e) = &resp {
            if e.status != self.status {
                self.final_status = Some(e.status);
            }
        }
        handoff::answer(self.slot, resp)
    }

    /// One of the provider's keys on the request: a header, or a SigV4 signature over `set`
    /// (which must then be complete). Fails when the provider needs a key and none is usable.
    fn authorize(
        &mut self,
        provider: &Provider,
        method: &str,
        path: &str,
        body: &[u8],
        set: &mut Vec<(String, String)>,
        env: &Env,
    ) -> Result<(), Reply> {
        let key = keys::pick(provider, env.store, env.now_ms(), env.random);
        if provider.needs_keys && key.is_none() {
            return Err(ir_error(
                ErrorInfo::new(
                    503,
                    ErrorKind::Unavailable,
                    format!("provider '{}' has no usable credentials", provider.name),
                )
                .with_retry_after(Some(30)),
            ));
        }
        let Some(key) = key else {
            return Ok(());
        };
        self.key_id = Some(key.id.clone());
        match &key.credential {
            Credential::ApiKey {
                header,
                prefix,
                key,
            } => {
                set_header(set, header, &format!("{prefix}{key}"));
            }
            Credential::Aws(creds) => {
                let signed: Vec<(String, String)> = set
                    .iter()
                    .filter(|(n, _)| !n.starts_with(':') && n != "accept-encoding")
                    .cloned()
                    .collect();
                let region = provider.spec.region.as_deref().unwrap_or("us-east-1");
                set.extend(sigv4::sign(
                    creds,
                    region,
                    "bedrock",
                    method,
                    &provider.spec.host,
                    path,
                    &signed,
                    body,
                    env.now_ms() / 1000,
                ));
            }
        }
        Ok(())
    }

    /// A stored-response call for provider `name` (the gateway's `x-weir-stored`): the
    /// provider's path for it, and its key. The call is the client's own method and path.
    fn stored_call(
        &mut self,
        headers: &[(String, Vec<u8>)],
        name: &[u8],
        env: &Env,
    ) -> Result<Vec<(String, String)>, Reply> {
        let cfg = Rc::clone(&self.cfg);
        let internal =
            |message: String| ir_error(ErrorInfo::new(500, ErrorKind::Internal, message));
        let name = String::from_utf8_lossy(name);
        let provider = cfg
            .providers
            .get(&name)
            .filter(|p| p.spec.kind == ProviderKind::OpenAiResponses)
            .ok_or_else(|| internal(format!("'{name}' is not an openai-responses provider")))?;
        // Envoy may pick another endpoint of a cluster several providers share: the call is
        // meant for this provider's host and key only.
        if let Some(picked) = env.endpoint.provider().filter(|p| *p != provider.name) {
            return Err(internal(format!(
                "the endpoint Envoy chose serves provider '{picked}', not '{}'",
                provider.name
            )));
        }
        let text = |n| header_value(headers, n).and_then(|v| std::str::from_utf8(v).ok());
        let (method, path) = (text(":method").unwrap_or(""), text(":path").unwrap_or(""));
        let call = StoredCall::parse(method, path)
            .ok_or_else(|| internal(format!("{method} {path} is not a stored-response call")))?;
        let path = call.provider_path(&provider.spec);
        let mut set = vec![
            (":path".to_string(), path.clone()),
            (":authority".to_string(), provider.spec.host.clone()),
            ("accept-encoding".to_string(), "identity".to_string()),
        ];
        for (name, value) in passed_client_headers(headers, &provider.extra_request_headers) {
            set_header(&mut set, &name, &value);
        }
        self.authorize(provider, method, &path, &[], &mut set, env)?;
        self.provider = Some(provider.name.clone());
        self.stored = true;
        Ok(set)
    }

    /// A provider's error as the client may see it, decided on the whole body. A refused key
    /// (any 401, or a body that names the key: Gemini's `API_KEY_INVALID` comes with a 400) is
    /// benched and becomes a 502 naming the key id, which Envoy retries with another key. Any
    /// other 403 is this request's doing (a model or feature this key may not use): a 502 too,
    /// for the same retry, but the key stays in rotation, so one such request cannot bench
    /// every key of the provider. Both messages are weir's: the provider's may quote the key or
    /// account ids (OpenAI echoes part of a bad key), so only the log gets a 403's reason, with
    /// the provider's keys cut out.
    fn sanitize(&self, provider: &Provider, mut e: ErrorInfo, env: &Env) -> ErrorInfo {
        let key = self.key_id.as_deref().unwrap_or("-");
        if self.status == 401 || e.kind == ErrorKind::Authentication {
            log::warn!(
                "provider '{}' rejected key '{key}' (HTTP {}); benched for {} s",
                provider.name,
                self.status,
                keys::REJECTED_KEY_BENCH_MS / 1000
            );
            if let Some(id) = &self.key_id {
                let until = env.now_ms().saturating_add(keys::REJECTED_KEY_BENCH_MS);
                keys::cool_down(provider, id, env.store, until);
            }
            return ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                format!(
                    "provider '{}' rejected the gateway's credentials (key '{key}')",
                    provider.name
                ),
            );
        }
        if self.status == 403 {
            log::warn!(
                "provider '{}' refused a request made with key '{key}' (HTTP 403; the key stays \
                 in rotation): {}",
                provider.name,
                provider.redact_keys(&e.message)
            );
            return ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                format!(
                    "provider '{}' refused this request (HTTP 403: the gateway's key '{key}' may \
                     not use what it asks for); the gateway's log has the provider's reason",
                    provider.name
                ),
            );
        }
        if provider.spec.kind == ProviderKind::Bedrock && e.message.contains("Signature") {
            e.message = format!(
                "provider '{}' rejected the request signature",
                provider.name
            );
        }
        e
    }
}

impl Filter for ProviderRole {
    /// Removes every header but the pseudo-headers and Envoy's tracing ones: what the provider
    /// gets is what this role then sets (from the envelope, once the body names the route and
    /// so the provider). An allowlist, so no client header (cookies, client addresses, custom
    /// names) reaches a provider unless that provider's configuration names it.
    ///
    /// On a retry Envoy hands this attempt the header map the previous attempt rewrote, so
    /// everything a previous attempt set (credentials of another provider included) is removed.
    fn on_request_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeadersVerdict {
        let remove = request_strip_list(headers);
        let Some(name) = header_value(headers, STORED_HEADER) else {
            return HeadersVerdict::Buffer { remove };
        };
        match self.stored_call(headers, name, env) {
            Ok(set) => HeadersVerdict::Forward { remove, set },
            Err(reply) => HeadersVerdict::Reply(reply),
        }
    }

    fn on_request_body(&mut self, body: &[u8], env: &Env) -> BodyVerdict {
        let cfg = Rc::clone(&self.cfg);
        let (
            Envelope {
                route,
                cluster,
                request: mut req,
                headers: client_headers,
            },
            slot,
        ) = match handoff::receive(body) {
            Ok(r) => r,
            Err(why) => return BodyVerdict::Reply(ir_error(refused(why))),
        };
        self.slot = slot;
        let Some(route) = cfg.router.by_name(&route) else {
            return BodyVerdict::Reply(ir_error(ErrorInfo::new(
                500,
                ErrorKind::Internal,
                format!("model route '{route}' is not in this filter's configuration"),
            )));
        };
        let target = attempt_target(&cfg.router, route, &cluster, env.endpoint);
        let Some((target, provider)) =
            target.and_then(|t| Some((t, cfg.providers.get(&t.provider)?)))
        else {
            return BodyVerdict::Reply(ir_error(ErrorInfo::new(
                500,
                ErrorKind::Internal,
                format!(
                    "the endpoint Envoy chose (provider {:?}, cluster {:?}) is not a target of model '{}'",
                    env.endpoint.provider().as_deref().unwrap_or("-"),
                    cluster,
                    route.name
                ),
            )));
        };
        self.provider = Some(provider.name.clone());
        if let Some(model) = target.model.as_deref() {
            req.set_model(model);
        }
        if let Request::CountTokens(chat) = &req {
            if !provider.spec.counts_tokens() {
                let count = TokenCount {
                    input_tokens: estimate_input_tokens(chat, &cfg.limiter),
                    estimated: true,
                };
                let mut reply = ir_reply(200, &Response::TokenCount(count), None);
                // The gateway tells the client whose count this is (an estimate) by the provider.
                reply
                    .headers
                    .push((PROVIDER_HEADER.into(), provider.name.clone()));
                return BodyVerdict::Reply(reply);
            }
        }
        let policy = route.unsupported.unwrap_or(cfg.unsupported);
        let out = match drop::encode(&provider.spec, &mut req, policy) {
            Ok((o, dropped)) => {
                self.dropped = dropped;
                o
            }
            Err(e) => return BodyVerdict::Reply(ir_error(e.info())),
        };
        let mut set = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), out.path.clone()),
            (":authority".to_string(), provider.spec.host.clone()),
            ("content-type".to_string(), "application/json".to_string()),
            ("accept-encoding".to_string(), "identity".to_string()),
        ];
        for (name, value) in &out.headers {
            set_header(&mut set, name, value);
        }
        for (name, value) in &client_headers {
            if name == "anthropic-beta" {
                if let (ProviderKind::Anthropic, Some(beta)) =
                    (provider.spec.kind, anthropic_beta(value))
                {
                    set_header(&mut set, name, &beta);
                }
            } else if provider.extra_request_headers.contains(name) {
                set_header(&mut set, name, value);
            }
        }
        if let Err(reply) = self.authorize(provider, "POST", &out.path, &out.body, &mut set, env) {
            return BodyVerdict::Reply(reply);
        }
        self.created = env.now_ms() / 1000;
        self.request = Some(req);
        BodyVerdict::Forward {
            set,
            body: out.body,
        }
    }

    /// The provider's status and headers. Returns header edits and, for credential failures,
    /// the status the gateway should see instead.
    fn on_response_headers(&mut self, headers: &[(String, Vec<u8>)], env: &Env) -> HeaderEdits {
        let status = status_of(headers);
        self.status = status;
        // Removals come before sets, so what this role sets below survives the allowlist.
        let mut edits = HeaderEdits {
            remove: response_strip_list(headers),
            ..HeaderEdits::default()
        };
        let cfg = Rc::clone(&self.cfg);
        let Some(provider) = self.provider.as_deref().and_then(|p| cfg.providers.get(p)) else {
            return edits;
        };
        // Refused keys are judged on the whole body (`sanitize`); a 429 needs only its headers.
        if let (429, Some(key_id)) = (status, &self.key_id) {
            let wait_ms = retry_after_seconds(headers)
                .map(|s| u64::from(s) * 1000)
                .unwrap_or(keys::DEFAULT_COOLDOWN_MS);
            keys::cool_down(
                provider,
                key_id,
                env.store,
                env.now_ms().saturating_add(wait_ms),
            );
        }
        if self.stored {
            let rejected = matches!(status, 401 | 403);
            self.mode = Mode::Stored { rejected };
            let marker = if rejected { "response" } else { "raw" };
            edits.set.push((IR_HEADER.into(), marker.into()));
            edits
                .set
                .push((PROVIDER_HEADER.into(), provider.name.clone()));
            return edits;
        }
        let stream = self.request.as_ref().and_then(|r| match r {
            Request::Chat(c) if c.stream && (200..300).contains(&status) => Some(c),
            _ => None,
        });
        match stream {
            Some(chat) => {
                self.mode = Mode::Stream {
                    decoder: provider.spec.stream_decoder(
                        chat,
                        cfg.max_stream_frame_bytes,
                        self.created,
                    ),
                    failed: false,
                };
                edits.set.push((IR_HEADER.into(), "stream".into()));
                edits
                    .set
                    .push(("content-type".into(), "application/x-ndjson".into()));
            }
            None => {
                self.mode = Mode::Buffered;
                edits.set.push((IR_HEADER.into(), "response".into()));
                edits
                    .set
                    .push(("content-type".into(), "application/json".into()));
            }
        }
        edits
            .set
            .push((PROVIDER_HEADER.into(), provider.name.clone()));
        if !self.dropped.is_empty() {
            edits
                .set
                .push((DROPPED_HEADER.into(), self.dropped.join(", ")));
        }
        edits
    }

    fn buffers_response(&self) -> bool {
        matches!(self.mode, Mode::Buffered | Mode::Stored { rejected: true })
    }

    /// A response chunk (or the whole body when buffering); returns its replacement.
    fn on_response_body(&mut self, chunk: &[u8], end: bool, env: &Env) -> Option<Vec<u8>> {
        match &mut self.mode {
            Mode::None | Mode::Stored { rejected: false } => None,
            Mode::Buffered => end.then(|| self.finish_buffered(chunk, env)),
            Mode::Stored { rejected: true } => end.then(|| {
                let cfg = Rc::clone(&self.cfg);
                let provider = self.provider.as_deref().and_then(|p| cfg.providers.get(p));
                // Only openai-responses providers serve stored calls (`stored_call`).
                let e = crate::wire::openai::provider_error(self.status, chunk);
                let e = match provider {
                    Some(p) => self.sanitize(p, e, env),
                    None => e,
                };
                self.final_status = Some(e.status);
                handoff::answer(None, Response::Error(e))
            }),
            Mode::Stream { decoder, failed } => {
                if *failed {
                    return Some(Vec::new());
                }
                let mut events = Vec::new();
                let mut result = decoder.feed(chunk, &mut events);
                if end && result.is_ok() {
                    result = decoder.end(&mut events);
                }
                if let Err(e) = result {
                    events.push(StreamEvent::Error(e.info()));
                }
                Some(handoff::stream(self.slot, events, failed))
            }
        }
    }

    /// The status the answer must carry instead of the provider's (a 200 whose body could not
    /// be translated becomes a 502, which Envoy's retry policy can act on).
    fn take_status(&mut self) -> Option<u16> {
        self.final_status.take()
    }
}

/// The route's target this attempt serves. Envoy's retries stay in the cluster the gateway chose,
/// so in a cluster that one provider serves, that cluster's target is the answer with no question
/// to the host; where several providers share the cluster (failover across provider types), the
/// endpoint Envoy picked names its provider in its metadata. Without metadata (Istio endpoints),
/// the cluster's only target of this route.
fn attempt_target<'r>(
    router: &Router,
    route: &'r Route,
    cluster: &str,
    endpoint: &dyn Endpoint,
) -> Option<&'r Target> {
    let sole = route.sole_target_in_cluster(cluster);
    if sole.is_some() && !router.is_shared(cluster) {
        return sole;
    }
    match endpoint.provider() {
        Some(p) => route.target_for_provider(&p),
        None => sole,
    }
}

/// Sets a header in an edit list, replacing an earlier value: what is signed (SigV4) must be
/// exactly what Envoy sends, and Envoy's replace keeps one value per name.
fn set_header(set: &mut Vec<(String, String)>, name: &str, value: &str) {
    match set.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value.to_string(),
        None => set.push((name.to_string(), value.to_string())),
    }
}

/// An IR error answer from the provider role itself.
fn ir_error(err: ErrorInfo) -> Reply {
    let (status, retry_after) = (err.status, err.retry_after);
    ir_reply(status, &Response::Error(err), retry_after)
}

/// An IR answer from the provider role itself.
fn ir_reply(status: u16, resp: &Response, retry_after: Option<u32>) -> Reply {
    let mut headers = vec![
        (IR_HEADER.to_string(), "response".to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    if let Some(s) = retry_after {
        headers.push(("retry-after".into(), s.to_string()));
    }
    Reply {
        status,
        headers,
        body: serde_json::to_vec(resp).unwrap_or_default(),
    }
}

/// The client's `anthropic-beta` flags (repeated headers already joined); only well-formed flag
/// names (letters, digits, `-`, `_`, `.`) are kept, so nothing else can ride along to the provider.
fn anthropic_beta(value: &str) -> Option<String> {
    let flags: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|f| {
            !f.is_empty()
                && f.len() <= 128
                && f.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .collect();
    (!flags.is_empty()).then(|| flags.join(","))
}

fn refused(why: Refused) -> ErrorInfo {
    let message = match why {
        Refused::NotIr => {
            "the provider role got a request the gateway role did not prepare; check that the \
             weir-gateway filter runs on this route"
        }
        Refused::Unresolved => {
            "the provider role got a request the gateway role handed over by reference, but it \
             is not in this VM: give the weir-gateway and weir-provider filters the same vm_id, \
             code and vm configuration"
        }
    };
    ErrorInfo::new(500, ErrorKind::Internal, message)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by LLM providers).
fn retry_after_seconds(headers: &[(String, Vec<u8>)]) -> Option<u32> {
    header_value(headers, "retry-after")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| s.ceil().min(86_400.0) as u32)
}
