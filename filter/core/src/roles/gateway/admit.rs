//! Admission: the request headers and body through the gateway's stages, one method per stage,
//! cheapest first. Each returns `Err` with the reply that ends the request here: a refusal in the
//! client's protocol, or an answer the gateway gives itself (a model list, a cache hit).

use super::{error_reply, GatewayRole, Phase, Upstream};
use crate::auth::ClientKey;
use crate::cache::{self, Directive, Lookup, Who};
use crate::config::Config;
use crate::ir::{ErrorInfo, ErrorKind, Request};
use crate::limits::{descriptors, Estimate, Subject};
use crate::pii::{Blocked, Vault};

/// The `pii` entry of the access log and metrics for a request whose scan outgrew its budget.
const SCAN_BUDGET: &str = "scan_budget";
use crate::roles::handoff;
use crate::roles::headers::{passed_client_headers, CLUSTER_HEADER, STORED_HEADER};
use crate::roles::{catalog, header_value, strip_list, Env, HeadersVerdict};
use crate::routing::{Choice, Route, Target};
use crate::wire::{ClientApi, ProviderKind, Reply};
use std::rc::Rc;

/// Headers to set and the IR body to forward.
pub(super) type Forward = (Vec<(String, String)>, Vec<u8>);

impl GatewayRole {
    /// The request headers: which operation, whose key, and whether the body can be taken.
    /// Returns the headers to strip before the body is buffered, or (a stored-response call)
    /// the request as it goes on.
    pub(super) fn admit_headers(
        &mut self,
        headers: &[(String, Vec<u8>)],
        env: &Env,
    ) -> Result<HeadersVerdict, Reply> {
        let text = |name| header_value(headers, name).and_then(|v| std::str::from_utf8(v).ok());
        let (method, path) = (text(":method").unwrap_or(""), text(":path").unwrap_or(""));
        let Some(api) = ClientApi::classify(method, path) else {
            let err = ErrorInfo::new(
                404,
                ErrorKind::NotFound,
                format!("weir does not serve {method} {}", path_only(path)),
            );
            return Err(error_reply(fallback_api(path), &err));
        };
        let refuse = |err: ErrorInfo| error_reply(api, &err);
        if method != api.method() {
            return Err(refuse(ErrorInfo::new(
                405,
                ErrorKind::InvalidRequest,
                format!("{} takes {}, not {method}", path_only(path), api.method()),
            )));
        }
        let cfg = Rc::clone(&self.cfg);
        let now_s = env.now_ms() / 1000;
        let key = cfg.keys.authenticate(headers, now_s).map_err(refuse)?;
        self.summary.key = Some(key.id.clone());
        if api.method() != "POST" && carries_body(headers) {
            return Err(refuse(ErrorInfo::invalid(
                "",
                format!("{method} {} takes no request body", path_only(path)),
            )));
        }
        let credentials = cfg.keys.credential_headers().iter().map(String::as_str);
        let remove = strip_list(
            headers,
            // The client certificate's identity is for weir, not for providers.
            credentials.chain([
                "content-length",
                "accept-encoding",
                crate::auth::XFCC_HEADER,
            ]),
        );
        // Taken before the header map is edited: the provider role removes every client header
        // and puts back, per attempt, the ones its provider's allowlist names.
        self.passed_headers = passed_client_headers(headers, cfg.providers.client_headers());
        if api.is_stored() {
            let set = self.admit_stored(&cfg, api, key).map_err(refuse)?;
            return Ok(HeadersVerdict::Forward { remove, set });
        }
        if let Some(list) = catalog::list(api, key, &cfg.router, now_s) {
            return Err(list);
        }
        let content_type = header_value(headers, "content-type").unwrap_or(b"application/json");
        if !is_json(content_type) {
            return Err(refuse(ErrorInfo::new(
                415,
                ErrorKind::InvalidRequest,
                "the request body must be JSON (content-type: application/json)",
            )));
        }
        // The body is read as JSON and re-encoded plain: a compressed one would be refused as
        // invalid JSON, or forwarded under a content-encoding it no longer has.
        let encoding = header_value(headers, "content-encoding").unwrap_or(b"identity");
        if !encoding.trim_ascii().eq_ignore_ascii_case(b"identity") {
            return Err(refuse(ErrorInfo::new(
                415,
                ErrorKind::InvalidRequest,
                format!(
                    "the request body must not be compressed (content-encoding: {}): send it \
                     uncompressed",
                    String::from_utf8_lossy(encoding)
                        .chars()
                        .take(32)
                        .collect::<String>()
                ),
            )));
        }
        let declared = header_value(headers, "content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > cfg.max_request_bytes) {
            return Err(refuse(too_large(cfg.max_request_bytes)));
        }
        self.phase = Phase::Admitting {
            api,
            directive: Directive::from_headers(headers),
        };
        Ok(HeadersVerdict::Buffer { remove })
    }

    /// A stored-response call goes to an `openai-responses` provider: the first target of that
    /// type on the first route (in configuration order) the key may use. weir keeps no state of
    /// its own, so without such a target there is nobody to ask. Returns the headers to set.
    fn admit_stored(
        &mut self,
        cfg: &Config,
        api: ClientApi,
        key: &ClientKey,
    ) -> Result<Vec<(String, String)>, ErrorInfo> {
        let responses = |t: &&Target| {
            cfg.providers
                .get(&t.provider)
                .is_some_and(|p| p.spec.kind == ProviderKind::OpenAiResponses)
        };
        let found = cfg
            .router
            .routes()
            .iter()
            .filter(|r| key.may_use(&r.name))
            .find_map(|r| Some((r, r.targets.iter().find(responses)?)));
        let Some((route, target)) = found else {
            return Err(ErrorInfo::invalid(
                "",
                "weir is stateless and none of the models this key may use is served by a \
                 provider that stores responses (an openai-responses provider): send the whole \
                 conversation in `input` instead of referring to a stored response",
            ));
        };
        self.summary.model = Some(route.name.clone());
        self.phase = Phase::Stored { api, answer: None };
        Ok(vec![
            (CLUSTER_HEADER.to_string(), target.cluster.clone()),
            (STORED_HEADER.to_string(), target.provider.clone()),
            // The call is not translated, so another provider cannot take it over.
            ("x-envoy-max-retries".to_string(), "0".to_string()),
        ])
    }

    /// The whole request body through every stage; on success, the IR request to forward.
    pub(super) fn admit_body(&mut self, body: &[u8], env: &Env) -> Result<Forward, Reply> {
        let Phase::Admitting { api, directive } = self.phase else {
            let err = ErrorInfo::new(500, ErrorKind::Internal, "request body before headers");
            return Err(error_reply(ClientApi::OpenAiChat, &err));
        };
        let cfg = Rc::clone(&self.cfg);
        let refuse = |err: ErrorInfo| error_reply(api, &err);
        if body.len() > cfg.max_request_bytes {
            return Err(refuse(too_large(cfg.max_request_bytes)));
        }
        if api == ClientApi::OllamaShow {
            let key = self.key(&cfg).map_err(refuse)?;
            return Err(catalog::show(body, key, &cfg.router).unwrap_or_else(refuse));
        }
        let mut req = api.decode_request(body).map_err(|e| refuse(e.info()))?;
        let (route, key) = self.route(&cfg, &req).map_err(refuse)?;
        // The scan is the one stage whose cost grows with the body, so everything that can
        // refuse for less (key, model allowlist, target health, limits) comes first; a refusal
        // after the reservation releases it (`settle`: nothing went upstream).
        let choice = self.choose(route, &req, env).map_err(refuse)?;
        let estimate = self.reserve(&cfg, api, route, key, choice.target, &req, env)?;
        let vault = self.scrub(&cfg, &mut req).map_err(refuse)?;
        let who = Who {
            key_id: &key.id,
            team: key.team.as_deref(),
        };
        let cache = self.cached(
            &cfg, api, directive, &who, route, &choice, &req, &vault, env,
        )?;
        let upstream = Upstream {
            api,
            request: Rc::new(req),
            handoff: None,
            vault,
            price: choice.target.price,
            cache,
            global_refusal: false,
            ended: false,
        };
        self.forward(&cfg, upstream, route, key, choice, &estimate, env)
            .map_err(refuse)
    }

    /// The authenticated key of this request (set by [`GatewayRole::admit_headers`]).
    fn key<'c>(&self, cfg: &'c Config) -> Result<&'c ClientKey, ErrorInfo> {
        let key = self.summary.key.as_deref().and_then(|id| cfg.keys.key(id));
        key.ok_or_else(|| ErrorInfo::new(401, ErrorKind::Authentication, "missing API key"))
    }

    /// The model route the client's model names, and the key's permission to use it.
    fn route<'c>(
        &mut self,
        cfg: &'c Config,
        req: &Request,
    ) -> Result<(&'c Route, &'c ClientKey), ErrorInfo> {
        let model = req.model();
        let route = cfg.router.find(model).ok_or_else(|| not_found(model))?;
        self.summary.model = Some(route.name.clone());
        self.summary.stream = req.is_stream();
        let key = self.key(cfg)?;
        // A model the key may not use is answered like one that does not exist (as
        // `/api/show` and the model lists do), so a key cannot probe which models others have.
        if !key.may_use(model) {
            return Err(not_found(model));
        }
        Ok((route, key))
    }

    /// PII: every text a provider would read is scrubbed in place; the vault keeps what the
    /// answer's placeholders restore to.
    fn scrub(&mut self, cfg: &Config, req: &mut Request) -> Result<Vault, ErrorInfo> {
        let mut vault = cfg.pii.new_vault();
        match cfg.pii.scrub_request(req, &mut vault) {
            Ok(found) => {
                self.summary.pii = found.counts;
                if found.scan_budget_spent {
                    self.summary.pii.push((SCAN_BUDGET.to_string(), 1));
                }
                Ok(vault)
            }
            Err(Blocked::Detected { detector }) => {
                let message =
                    format!("the request was blocked because it contains {detector} data");
                self.summary.pii = vec![(detector, 1)];
                Err(ErrorInfo::invalid("messages", message))
            }
            Err(Blocked::Budget { limit }) => {
                self.summary.pii = vec![(SCAN_BUDGET.to_string(), 1)];
                Err(ErrorInfo::new(
                    413,
                    ErrorKind::PayloadTooLarge,
                    format!(
                        "the request holds more text than the gateway's PII scan budget \
                         ({limit} units) allows: send less text per request"
                    ),
                ))
            }
        }
    }

    /// The route's strategy picks a target among those whose breaker admits a request.
    fn choose<'r>(
        &mut self,
        route: &'r Route,
        req: &Request,
        env: &Env,
    ) -> Result<Choice<'r>, ErrorInfo> {
        match route.choose(env.store, env.now_ms(), env.random, req) {
            Ok(mut choice) => {
                self.summary.breaker = std::mem::take(&mut choice.events);
                self.routing = Some(choice.ticket);
                Ok(choice)
            }
            Err(down) => {
                self.summary.breaker = down.events;
                Err(crate::routing::unavailable(req.model(), down.retry_after_s))
            }
        }
    }

    /// Limits: the request's estimate is reserved against every subject it counts for.
    #[allow(clippy::too_many_arguments)]
    fn reserve(
        &mut self,
        cfg: &Config,
        api: ClientApi,
        route: &Route,
        key: &ClientKey,
        target: &Target,
        req: &Request,
        env: &Env,
    ) -> Result<Estimate, Reply> {
        let estimate = Estimate::for_request(req, &cfg.limiter, target.price.as_ref());
        let subject = Subject {
            key_id: &key.id,
            key_limits: key.limits.as_ref(),
            model: &route.name,
        };
        match cfg
            .limiter
            .admit(env.store, env.now_ms(), &subject, estimate)
        {
            Ok(ticket) => {
                self.ticket = Some(ticket);
                Ok(estimate)
            }
            Err(refusal) => {
                let mut reply = error_reply(api, &refusal.info);
                reply.headers.extend(refusal.headers);
                Err(reply)
            }
        }
    }

    /// The response cache, consulted with the scrubbed request: a hit is answered here, without
    /// an upstream call, and its limit reservation settled at once (tokens refunded unless
    /// configured otherwise). Otherwise returns what the cache decided, for the answer.
    #[allow(clippy::too_many_arguments)]
    fn cached(
        &mut self,
        cfg: &Config,
        api: ClientApi,
        directive: Directive,
        who: &Who,
        route: &Route,
        choice: &Choice,
        req: &Request,
        vault: &Vault,
        env: &Env,
    ) -> Result<Lookup, Reply> {
        let lookup = cfg.cache.lookup(
            env.store,
            env.now_ms(),
            &route.name,
            &route.targets,
            who,
            directive,
            req,
        );
        self.summary.cache = lookup.label();
        let Lookup::Hit(hit) = lookup else {
            return Ok(lookup);
        };
        let mut headers = Vec::new();
        if let Some(ticket) = self.ticket.take() {
            headers = ticket.headers();
            let actual = cfg.cache.hit_actual(&hit, choice.target.price.as_ref());
            cfg.limiter.settle(env.store, env.now_ms(), &ticket, actual);
        }
        Err(cache::hit_reply(api, req, &hit, Some(vault), headers))
    }

    /// Hands the IR request to the provider role and names the cluster for Envoy's router.
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        cfg: &Config,
        mut upstream: Upstream,
        route: &Route,
        key: &ClientKey,
        choice: Choice,
        estimate: &Estimate,
        env: &Env,
    ) -> Result<Forward, ErrorInfo> {
        let target = choice.target;
        let out = handoff::send(
            &route.name,
            &target.cluster,
            &upstream.request,
            &self.passed_headers,
            env.random,
        )
        .map_err(|_| ErrorInfo::new(500, ErrorKind::Internal, "could not serialise the request"))?;
        upstream.handoff = out.id;
        let mut set = vec![
            (CLUSTER_HEADER.to_string(), target.cluster.clone()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        if let Some(hash) = choice.affinity {
            set.push((crate::routing::affinity::AFFINITY_HEADER.to_string(), hash));
        }
        if cfg.limiter.global_descriptors() {
            set.extend(descriptors::request_headers(&key.id, &route.name, estimate));
        }
        self.phase = Phase::Forwarded(Box::new(upstream));
        Ok((set, out.body))
    }
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

/// A model the gateway does not serve.
pub(crate) fn not_found(model: &str) -> ErrorInfo {
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
