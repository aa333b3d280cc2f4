//! One HTTP stream of either role: pumps Envoy's callbacks into the role's state machine and
//! applies the effects it returns (local replies, header edits, body replacements, filter state).

use crate::abi::{self, Buffer, Map};
use crate::env::{env, HostClock, HostStore};
use crate::metrics::report;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use weir_core::roles::{BodyVerdict, Filter, HeadersVerdict};
use weir_core::wire::Reply;

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
pub struct Shell<R: Filter> {
    role: R,
    request_headers: KnownHeaders,
    response_headers: KnownHeaders,
    /// The role sent the request on from its headers: a body passes untouched.
    forwarded: bool,
}

impl<R: Filter> Shell<R> {
    pub fn new(role: R) -> Self {
        Shell {
            role,
            request_headers: KnownHeaders::default(),
            response_headers: KnownHeaders::default(),
            forwarded: false,
        }
    }
}

impl<R: Filter> Context for Shell<R> {}

impl<R: Filter> HttpContext for Shell<R> {
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
            HeadersVerdict::Forward { remove, set } => {
                self.request_headers.edit(&remove, &set);
                self.forwarded = true;
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if self.forwarded {
            return Action::Continue;
        }
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
}
