//! The shell around the sans-IO core: the proxy-wasm entry point, the root context that compiles
//! the configuration once, and the two HTTP contexts that pump Envoy's callbacks into
//! [`crate::gateway::Exchange`] and [`crate::upstream::Attempt`] and apply what they return.
//!
//! The role comes from the plugin's `root_id` (`weir-gateway` or `weir-provider`), so one binary
//! and one configuration serve both filters. Both filters must set Envoy's
//! `allow_on_headers_stop_iteration: true`: weir pauses headers until it has read the body
//! (routing depends on the model inside it), and without that option Envoy would stop
//! delivering the body too. Every host call goes through [`abi`], which never panics.

pub mod abi;

use abi::{Buffer, Map};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::Cell;
use std::rc::Rc;
use weir_core::config::Config;
use weir_core::flow::{BodyVerdict, Clock, Endpoint, Env, HeadersVerdict, Reply, Role};
use weir_core::gateway::Exchange;
use weir_core::store::{SharedStore, StoreError};
use weir_core::upstream::Attempt;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

pub const GATEWAY_ROOT_ID: &str = "weir-gateway";
pub const PROVIDER_ROOT_ID: &str = "weir-provider";

/// Which filter this root context is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Gateway,
    Provider,
}

/// Shared data through the host, for the stages that keep cross-worker state.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        abi::shared_get(key)
            .map_err(|e| StoreError::Other(format!("shared data get: status {}", e.0)))
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        abi::shared_set(key, value, cas).map_err(|e| match e.0 {
            abi::CAS_MISMATCH => StoreError::CasMismatch,
            s => StoreError::Other(format!("shared data set: status {s}")),
        })
    }
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A fast non-cryptographic random number (xorshift), seeded from the clock: it only spreads
/// load, it protects nothing.
fn random() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = abi::now_nanos() | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

/// The host clock of one callback: read on the first ask, then the same instant for the rest of
/// the callback.
#[derive(Default)]
struct HostClock(Cell<Option<u64>>);

impl Clock for HostClock {
    fn now_ms(&self) -> u64 {
        if let Some(t) = self.0.get() {
            return t;
        }
        let t = abi::now_nanos() / 1_000_000;
        self.0.set(Some(t));
        t
    }
}

/// The endpoint of this upstream attempt, through the host's properties, read when asked.
pub struct HostEndpoint;

impl Endpoint for HostEndpoint {
    fn provider(&self) -> Option<String> {
        abi::property_str(&[
            "xds",
            "upstream_host_metadata",
            "filter_metadata",
            "weir",
            "provider",
        ])
    }
}

fn env<'a>(store: &'a HostStore, clock: &'a HostClock) -> Env<'a> {
    Env {
        clock,
        store,
        random: random(),
        endpoint: &HostEndpoint,
    }
}

#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    role: Option<Which>,
    /// Announces the provider role in this VM to the gateway role (in-VM hand-off).
    provider_root: Option<weir_core::handoff::ProviderRoot>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let root_id = abi::property_str(&["plugin_root_id"]).unwrap_or_default();
        let role = match root_id.as_str() {
            GATEWAY_ROOT_ID => Which::Gateway,
            PROVIDER_ROOT_ID => Which::Provider,
            other => {
                log::error!(
                    "weir: unknown root_id {other:?}; use {GATEWAY_ROOT_ID:?} (downstream filter) \
                     or {PROVIDER_ROOT_ID:?} (upstream filter)"
                );
                return false;
            }
        };
        let bytes = match abi::buffer(Buffer::PluginConfiguration, size) {
            Ok(b) => b,
            Err(e) => {
                log::error!(
                    "weir: cannot read the plugin configuration (status {})",
                    e.0
                );
                return false;
            }
        };
        let read_env = |name: &str| std::env::var(name).ok();
        match Config::parse(&bytes, &read_env) {
            Ok((config, warnings)) => {
                for w in warnings {
                    log::warn!("weir: {w}");
                }
                if role == Which::Gateway {
                    let keys = config
                        .keys
                        .keys()
                        .filter_map(|k| Some((k.id.as_str(), k.limits.as_ref()?)));
                    if let Err(e) = config.limiter.seed(&HostStore, keys) {
                        log::warn!("weir: could not seed limit counters: {e:?}");
                    }
                    if let Err(e) = config.router.seed(&HostStore) {
                        log::warn!("weir: could not seed routing health records: {e:?}");
                    }
                }
                if role == Which::Provider && self.provider_root.is_none() {
                    self.provider_root = Some(weir_core::handoff::ProviderRoot::new());
                }
                log::info!("weir: {root_id} configured");
                self.config = Some(Rc::new(config));
                self.role = Some(role);
                true
            }
            Err(e) => {
                log::error!("weir: invalid configuration: {e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = Rc::clone(self.config.as_ref()?);
        Some(match self.role? {
            Which::Gateway => Box::new(Shell::new(Exchange::new(config))),
            Which::Provider => Box::new(Shell::new(Attempt::new(config))),
        })
    }
}

fn send(reply: &Reply) -> Action {
    if let Err(e) = abi::send_response(reply.status, &reply.headers, &reply.body) {
        log::error!("weir: could not send a local reply (status {})", e.0);
    }
    // Envoy sends local replies after the callback returns; iteration must stop.
    Action::Pause
}

/// A header map as this filter last saw it, kept in step with the edits it applies, so an edit
/// that would change nothing (a header set to the value it has, a removal of an absent one) is
/// never sent to the host: each edit is a host call and a header-map rewrite in Envoy.
#[derive(Default)]
struct KnownHeaders {
    map: Option<Map>,
    pairs: Vec<(String, Vec<u8>)>,
}

enum Edit<'a> {
    Remove(&'a str),
    Set(&'a str, &'a str),
}

impl KnownHeaders {
    fn read(map: Map) -> Self {
        KnownHeaders {
            map: Some(map),
            pairs: abi::headers(map).unwrap_or_default(),
        }
    }

    /// Applies header changes; the host refusing one is logged, never a trap.
    fn edit(&mut self, remove: &[String], set: &[(String, String)]) {
        let Some(map) = self.map else { return };
        self.apply(remove, set, |edit| match edit {
            Edit::Remove(name) => abi::remove_header(map, name).map_err(|e| {
                log::debug!("weir: could not remove header {name} (status {})", e.0);
            }),
            Edit::Set(name, value) => abi::set_header(map, name, value).map_err(|e| {
                log::warn!("weir: could not set header {name} (status {})", e.0);
            }),
        });
    }

    /// The edits that change something go to `host`, and those it accepts into `pairs`.
    fn apply(
        &mut self,
        remove: &[String],
        set: &[(String, String)],
        mut host: impl FnMut(Edit) -> Result<(), ()>,
    ) {
        for name in remove {
            if self.pairs.iter().any(|(n, _)| n == name) && host(Edit::Remove(name)).is_ok() {
                self.pairs.retain(|(n, _)| n != name);
            }
        }
        for (name, value) in set {
            let mut same = self.pairs.iter().filter(|(n, _)| n == name);
            let unchanged = matches!((same.next(), same.next()),
                (Some((_, v)), None) if v == value.as_bytes());
            if !unchanged && host(Edit::Set(name, value)).is_ok() {
                self.pairs.retain(|(n, _)| n != name);
                self.pairs.push((name.clone(), value.as_bytes().to_vec()));
            }
        }
    }

    fn set_status(&mut self, status: Option<u16>) {
        if let Some(s) = status {
            self.edit(&[], &[(":status".into(), s.to_string())]);
        }
    }
}

/// Replaces the current body chunk, logging (not trapping) if the host refuses.
fn replace_body(buf: Buffer, size: usize, bytes: &[u8]) {
    if let Err(e) = abi::replace_buffer(buf, size, bytes) {
        log::error!("weir: could not replace a body (status {})", e.0);
    }
}

/// A metric series as the id cache keeps it: the metric and its tag values (tag names are fixed
/// by the metric). Looked up with a borrowed [`SeriesRef`], so a request that only meets known
/// series allocates nothing and formats no name.
#[derive(PartialEq, Eq)]
struct SeriesKey {
    metric: &'static str,
    values: Vec<String>,
}

struct SeriesRef<'s, 'a> {
    metric: &'static str,
    tags: &'s weir_core::metrics::Tags<'a>,
}

impl std::hash::Hash for SeriesKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.metric.hash(h);
        for v in &self.values {
            v.as_str().hash(h);
        }
    }
}

impl std::hash::Hash for SeriesRef<'_, '_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.metric.hash(h);
        for (_, v) in self.tags {
            v.hash(h);
        }
    }
}

impl hashbrown::Equivalent<SeriesKey> for SeriesRef<'_, '_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        self.metric == key.metric
            && self.tags.len() == key.values.len()
            && self.tags.iter().zip(&key.values).all(|((_, v), k)| v == k)
    }
}

thread_local! {
    /// Metric ids by series, per VM. Tag values come only from configuration and fixed sets, so
    /// this is bounded by the configuration; `MAX_SERIES` guards against a configuration that is
    /// simply huge.
    static METRICS: std::cell::RefCell<hashbrown::HashMap<SeriesKey, u32>> = Default::default();
}

const MAX_SERIES: usize = 20_000;

/// The host's id for a sample's series, defining the metric the first time it is met.
fn metric_id(sample: &weir_core::metrics::Sample) -> Option<u32> {
    use weir_core::metrics::Kind;
    METRICS.with(|m| {
        let mut m = m.borrow_mut();
        let query = SeriesRef {
            metric: sample.metric,
            tags: sample.tags(),
        };
        if let Some(id) = m.get(&query) {
            return Some(*id);
        }
        if m.len() >= MAX_SERIES {
            return None;
        }
        let kind = match sample.kind {
            Kind::Counter => abi::COUNTER,
            Kind::Histogram => abi::HISTOGRAM,
        };
        let id = abi::define_metric(kind, &sample.series()).ok()?;
        let key = SeriesKey {
            metric: sample.metric,
            values: sample.tags().iter().map(|(_, v)| v.to_string()).collect(),
        };
        m.insert(key, id);
        Some(id)
    })
}

/// Records a finished request's metrics and leaves its summary for the access log
/// (`%FILTER_STATE(wasm.weir:PLAIN)%`).
fn report(summary: &weir_core::metrics::Summary) {
    use weir_core::metrics::Kind;
    for sample in summary.samples() {
        let Some(id) = metric_id(&sample) else {
            continue;
        };
        let _ = match sample.kind {
            Kind::Counter => {
                abi::increment_metric(id, i64::try_from(sample.value).unwrap_or(i64::MAX))
            }
            Kind::Histogram => abi::record_metric(id, sample.value),
        };
    }
    if let Err(e) = abi::set_property("weir", summary.to_json().as_bytes()) {
        log::debug!(
            "weir: could not publish the request summary (status {})",
            e.0
        );
    }
}

/// Sets filter state the role asked for (`wasm.<name>`, for Envoy's other filters).
fn publish(state: Vec<(&'static str, String)>) {
    for (name, value) in state {
        if let Err(e) = abi::set_property(name, value.as_bytes()) {
            log::debug!("weir: could not set filter state {name} (status {})", e.0);
        }
    }
}

/// One HTTP stream of either role: pumps Envoy's callbacks into the role's state machine and
/// applies its effects.
struct Shell<R: Role> {
    role: R,
    request_headers: KnownHeaders,
    response_headers: KnownHeaders,
}

impl<R: Role> Shell<R> {
    fn new(role: R) -> Self {
        Shell {
            role,
            request_headers: KnownHeaders::default(),
            response_headers: KnownHeaders::default(),
        }
    }
}

impl<R: Role> Context for Shell<R> {}

impl<R: Role> HttpContext for Shell<R> {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.request_headers = KnownHeaders::read(Map::RequestHeaders);
        let (store, clock) = (HostStore, HostClock::default());
        let env = env(&store, &clock);
        match self
            .role
            .on_request_headers(&self.request_headers.pairs, &env)
        {
            HeadersVerdict::Reply(r) => send(&r),
            HeadersVerdict::Buffer { remove } => {
                self.request_headers.edit(&remove, &[]);
                if end_of_stream {
                    // No body will come: decide now (an empty body is a 400 in every protocol).
                    if let BodyVerdict::Reply(r) = self.role.on_request_body(&[], &env) {
                        return send(&r);
                    }
                }
                Action::Pause
            }
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let (store, clock) = (HostStore, HostClock::default());
        let body = abi::buffer(Buffer::RequestBody, size).unwrap_or_default();
        match self.role.on_request_body(&body, &env(&store, &clock)) {
            BodyVerdict::Reply(r) => send(&r),
            BodyVerdict::Forward { set, body: out } => {
                self.request_headers.edit(&[], &set);
                replace_body(Buffer::RequestBody, size, &out);
                publish(self.role.take_filter_state());
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.response_headers = KnownHeaders::read(Map::ResponseHeaders);
        let (store, clock) = (HostStore, HostClock::default());
        let edits = self
            .role
            .on_response_headers(&self.response_headers.pairs, &env(&store, &clock));
        self.response_headers.edit(&edits.remove, &edits.set);
        self.response_headers.set_status(edits.status);
        // A headers-only answer (another filter's local reply without a body) has no body to
        // wait for: holding it would hang the stream, so it goes on with its headers edited.
        if self.role.buffers_response() && !end_of_stream {
            // Held until the body is complete, so the final status can still change.
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if self.role.buffers_response() && !end_of_stream {
            return Action::Pause;
        }
        let chunk = abi::buffer(Buffer::ResponseBody, size).unwrap_or_default();
        let (store, clock) = (HostStore, HostClock::default());
        if let Some(out) = self
            .role
            .on_response_body(&chunk, end_of_stream, &env(&store, &clock))
        {
            replace_body(Buffer::ResponseBody, size, &out);
        }
        self.response_headers.set_status(self.role.take_status());
        publish(self.role.take_filter_state());
        Action::Continue
    }

    fn on_log(&mut self) {
        let (store, clock) = (HostStore, HostClock::default());
        if let Some(summary) = self.role.on_done(&env(&store, &clock)) {
            report(&summary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_that_change_nothing_never_reach_the_host() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
            list.iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        let mut known = KnownHeaders {
            map: None,
            pairs: pairs(&[
                ("content-type", "application/json"),
                ("accept", "a"),
                ("accept", "b"),
                ("x-weir-ir", "response"),
            ]),
        };
        let mut sent = Vec::new();
        let remove = ["content-length".to_string(), "x-weir-ir".to_string()];
        let set = [
            ("content-type", "application/json"),
            ("accept", "a"),
            ("x-new", "1"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        known.apply(&remove, &set, |e| {
            sent.push(match e {
                Edit::Remove(n) => format!("-{n}"),
                Edit::Set(n, v) => format!("{n}={v}"),
            });
            Ok(())
        });
        // Absent and unchanged headers are skipped; a repeated header is always replaced.
        assert_eq!(sent, ["-x-weir-ir", "accept=a", "x-new=1"]);
        assert_eq!(
            known.pairs,
            pairs(&[
                ("content-type", "application/json"),
                ("accept", "a"),
                ("x-new", "1")
            ])
        );
        // A refused edit leaves the known map as the host has it.
        known.apply(&[], &[("x-new".into(), "2".into())], |_| Err(()));
        assert!(known.pairs.contains(&("x-new".to_string(), b"1".to_vec())));
    }

    #[test]
    fn a_borrowed_series_finds_the_key_it_was_stored_under() {
        let mut ids: hashbrown::HashMap<SeriesKey, u32> = hashbrown::HashMap::new();
        let tags = [("model", "gpt"), ("outcome", "success")];
        let key = SeriesKey {
            metric: "weir_requests_total",
            values: vec!["gpt".into(), "success".into()],
        };
        ids.insert(key, 7);
        let found = |metric, tags| ids.get(&SeriesRef { metric, tags }).copied();
        assert_eq!(found("weir_requests_total", &tags), Some(7));
        assert_eq!(found("weir_tokens_total", &tags), None);
        assert_eq!(found("weir_requests_total", &tags[..1]), None);
        assert_eq!(
            found(
                "weir_requests_total",
                &[("model", "gpt"), ("outcome", "denied")]
            ),
            None
        );
    }
}
