//! The hand-off between the two roles: the IR request going to the provider role and the IR
//! answer coming back, either by reference inside this VM or as IR JSON on the wire.
//!
//! Envoy runs the gateway role (downstream filter) and the provider role (upstream filter) of one request on the same
//! worker thread, and with the same `vm_id`, code and VM config both roles live in the same wasm
//! VM. Then serialising the IR to JSON and parsing it again on the other side is pure waste: the
//! gateway keeps the request in this thread's table and forwards a short reference body instead;
//! the provider role looks it up, and hands a buffered answer back the same way. A stream's
//! events go into the entry as each provider chunk is decoded, and the chunk itself becomes a
//! blank NDJSON line that tells the gateway to take them; without a reference they travel as
//! NDJSON lines.
//!
//! Call order and invariants:
//! - Each configured provider root context holds a [`ProviderRoot`]; only while one lives in this
//!   VM does [`send`] use references. Otherwise (e.g. the provider filter runs in a VM of its
//!   own) everything travels as IR JSON, exactly as before.
//! - [`send`] (gateway, once per request) → [`receive`] (provider role, once per attempt: a
//!   retry replays the same body, so it finds the same entry) → [`answer`] (provider role, end
//!   of a buffered answer) → [`response`] (gateway) → [`release`] (gateway's `on_done`, always).
//!   Streams: [`stream`] (provider role, each chunk) → [`take_stream`] (gateway, each chunk).
//!   Only one attempt's stream ever reaches the client (Envoy does not retry once it forwarded a
//!   response's headers), so an entry keeps one queue of events, drained by every gateway chunk:
//!   at most one provider chunk's events wait in it.
//! - A reference names this VM (a random nonce) and carries no data: a reference that reaches a
//!   provider role in another VM, or one whose entry is gone, is refused with a clear error, never
//!   resolved to another request's data. The table holds at most [`MAX_IN_FLIGHT`] requests;
//!   past that requests go on the wire, so a missed release can cost speed, never memory.

use crate::ir::{Envelope, Request, Response, StreamEvent};
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;

/// Every reference body starts with this; it is not JSON, so it is never taken for IR JSON.
const PREFIX: &[u8] = b"weir-ref:";
/// Requests one worker keeps by reference at once (each is also held by its gateway context).
pub const MAX_IN_FLIGHT: usize = 4096;

/// What the gateway keeps for one request until its `on_done`.
struct Entry {
    route: String,
    cluster: String,
    request: Rc<Request>,
    headers: Vec<(String, String)>,
    /// Attempts the provider role has started (retries included).
    attempts: u32,
    /// Buffered answers by attempt, until the gateway takes the one Envoy delivered.
    answers: Vec<(u32, Response)>,
    /// Stream events decoded by the provider role, until the gateway's next chunk takes them.
    stream: Vec<StreamEvent>,
}

#[derive(Default)]
struct Table {
    /// The provider role is configured in this VM (forced by tests and benchmarks).
    provider_here: bool,
    /// Live provider root contexts in this VM ([`ProviderRoot`]).
    provider_roots: usize,
    /// Names this VM in references; never 0 once set.
    nonce: u64,
    next_id: u64,
    entries: hashbrown::HashMap<u64, Entry>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::default();
}

/// Forces references on (or back to the [`ProviderRoot`] count): benchmarks and tests, which
/// drive both roles without root contexts, compare both paths with it.
pub fn set_provider_in_this_vm(here: bool) {
    TABLE.with(|t| t.borrow_mut().provider_here = here);
}

/// Held by each configured provider root context: while one lives in this VM, the gateway hands
/// requests over by reference. Dropping the last one (the plugin was removed, e.g. moved to a
/// VM with new code) puts new requests back on the JSON wire.
pub struct ProviderRoot(());

impl ProviderRoot {
    pub fn new() -> Self {
        TABLE.with(|t| t.borrow_mut().provider_roots += 1);
        ProviderRoot(())
    }
}

impl Default for ProviderRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ProviderRoot {
    fn drop(&mut self) {
        TABLE.with(|t| {
            let mut t = t.borrow_mut();
            t.provider_roots = t.provider_roots.saturating_sub(1);
        });
    }
}

/// Where the provider role's buffered answer goes back to (for [`answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    id: u64,
    attempt: u32,
}

/// The request body the gateway forwards, and the reference id to [`release`] in `on_done`.
pub struct Outbound {
    pub body: Vec<u8>,
    pub id: Option<u64>,
}

/// The same JSON as [`Envelope`], serialised from borrowed parts.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    route: &'a str,
    cluster: &'a str,
    request: &'a Request,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    headers: &'a [(String, String)],
}

/// Gateway: hands the request, bound for `cluster`, to the provider role. `random` seeds this
/// VM's nonce.
pub fn send(
    route: &str,
    cluster: &str,
    request: &Rc<Request>,
    headers: &[(String, String)],
    random: u64,
) -> serde_json::Result<Outbound> {
    let by_ref = TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if !(t.provider_here || t.provider_roots > 0) || t.entries.len() >= MAX_IN_FLIGHT {
            return None;
        }
        if t.nonce == 0 {
            t.nonce = random | 1;
            log::info!(
                "weir: the provider role runs in this VM; requests are handed over by reference"
            );
        }
        t.next_id = t.next_id.wrapping_add(1);
        let id = t.next_id;
        t.entries.insert(
            id,
            Entry {
                route: route.to_string(),
                cluster: cluster.to_string(),
                request: Rc::clone(request),
                headers: headers.to_vec(),
                attempts: 0,
                answers: Vec::new(),
                stream: Vec::new(),
            },
        );
        Some((t.nonce, id))
    });
    Ok(match by_ref {
        Some((nonce, id)) => Outbound {
            body: reference(nonce, id, None),
            id: Some(id),
        },
        None => Outbound {
            body: serde_json::to_vec(&EnvelopeRef {
                route,
                cluster,
                request,
                headers,
            })?,
            id: None,
        },
    })
}

/// Why the provider role cannot use the body it got.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Neither IR JSON nor a reference: the gateway role did not prepare this request.
    NotIr,
    /// A reference this VM cannot resolve.
    Unresolved,
}

/// Provider role: the gateway's request, and where a buffered answer goes back by reference
/// (`None`: answer on the wire). The request is this attempt's own copy.
pub fn receive(body: &[u8]) -> Result<(Envelope, Option<Slot>), Refused> {
    let Some(rest) = body.strip_prefix(PREFIX) else {
        return serde_json::from_slice::<Envelope>(body)
            .map(|e| (e, None))
            .map_err(|_| Refused::NotIr);
    };
    let (nonce, id, _) = parse(rest).ok_or(Refused::Unresolved)?;
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if t.nonce != nonce {
            return Err(Refused::Unresolved);
        }
        let entry = t.entries.get_mut(&id).ok_or(Refused::Unresolved)?;
        entry.attempts = entry.attempts.saturating_add(1);
        let envelope = Envelope {
            route: entry.route.clone(),
            cluster: entry.cluster.clone(),
            request: Request::clone(&entry.request),
            headers: entry.headers.clone(),
        };
        Ok((
            envelope,
            Some(Slot {
                id,
                attempt: entry.attempts,
            }),
        ))
    })
}

/// Provider role: the body that carries a buffered answer back to the gateway.
pub fn answer(slot: Option<Slot>, resp: Response) -> Vec<u8> {
    let Some(slot) = slot else {
        return serde_json::to_vec(&resp).unwrap_or_default();
    };
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let nonce = t.nonce;
        match t.entries.get_mut(&slot.id) {
            Some(entry) => {
                entry.answers.retain(|(a, _)| *a != slot.attempt);
                entry.answers.push((slot.attempt, resp));
                reference(nonce, slot.id, Some(slot.attempt))
            }
            // The gateway already let go of the request: nobody will read this answer.
            None => serde_json::to_vec(&resp).unwrap_or_default(),
        }
    })
}

/// Gateway: the provider role's buffered answer, by reference or from IR JSON; `None` if the
/// body is neither (not the provider role's, or an answer no longer held).
pub fn response(body: &[u8]) -> Option<Response> {
    let Some(rest) = body.strip_prefix(PREFIX) else {
        return serde_json::from_slice::<Response>(body).ok();
    };
    let (nonce, id, attempt) = parse(rest)?;
    let attempt = attempt?;
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        if t.nonce != nonce {
            return None;
        }
        let answers = &mut t.entries.get_mut(&id)?.answers;
        let at = answers.iter().position(|(a, _)| *a == attempt)?;
        Some(answers.swap_remove(at).1)
    })
}

/// Provider role: the body that carries one chunk's stream events to the gateway. By reference
/// they wait in the entry and the body is a blank line (empty when there were none); otherwise
/// they are NDJSON lines. `failed` is set when an error event ends the stream (events after it
/// are dropped).
pub fn stream(slot: Option<Slot>, events: Vec<StreamEvent>, failed: &mut bool) -> Vec<u8> {
    let mut kept = Vec::with_capacity(events.len());
    for ev in events {
        let error = matches!(ev, StreamEvent::Error(_));
        kept.push(ev);
        if error {
            *failed = true;
            break;
        }
    }
    if kept.is_empty() {
        return Vec::new();
    }
    let queued = slot.is_some_and(|slot| {
        TABLE.with(|t| match t.borrow_mut().entries.get_mut(&slot.id) {
            Some(entry) => {
                entry.stream.append(&mut kept);
                true
            }
            None => false,
        })
    });
    if queued {
        return b"\n".to_vec();
    }
    let mut out = Vec::new();
    for ev in &kept {
        if let Ok(line) = serde_json::to_vec(ev) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    out
}

/// Gateway: the stream events the provider role queued for this request since the last call.
pub fn take_stream(id: Option<u64>) -> Vec<StreamEvent> {
    let Some(id) = id else {
        return Vec::new();
    };
    TABLE.with(|t| {
        t.borrow_mut()
            .entries
            .get_mut(&id)
            .map(|e| std::mem::take(&mut e.stream))
            .unwrap_or_default()
    })
}

/// Gateway `on_done`: forgets the request and any answer still held for it.
pub fn release(id: Option<u64>) {
    if let Some(id) = id {
        TABLE.with(|t| t.borrow_mut().entries.remove(&id));
    }
}

/// Requests held by reference on this thread (tests and benchmarks watch it return to 0).
pub fn in_flight() -> usize {
    TABLE.with(|t| t.borrow().entries.len())
}

/// `weir-ref:<nonce hex>:<id hex>[:<attempt hex>]`, written by hand: `format!` cost more than
/// the rest of the hand-off.
fn reference(nonce: u64, id: u64, attempt: Option<u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX.len() + 42);
    out.extend_from_slice(PREFIX);
    push_hex(&mut out, nonce);
    out.push(b':');
    push_hex(&mut out, id);
    if let Some(a) = attempt {
        out.push(b':');
        push_hex(&mut out, u64::from(a));
    }
    out
}

fn push_hex(out: &mut Vec<u8>, v: u64) {
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        let nibble = ((v >> (i * 4)) & 0xf) as u32;
        out.push(char::from_digit(nibble, 16).map_or(b'0', |c| c as u8));
    }
}

fn parse(rest: &[u8]) -> Option<(u64, u64, Option<u32>)> {
    let text = std::str::from_utf8(rest).ok()?;
    let mut parts = text.split(':');
    let nonce = u64::from_str_radix(parts.next()?, 16).ok()?;
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let attempt = match parts.next() {
        Some(a) => Some(u32::from_str_radix(a, 16).ok()?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((nonce, id, attempt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{ChatRequest, ErrorInfo, ErrorKind};

    /// Tests share one thread under wasm32 (no threads there), so each starts from a clean table.
    fn fresh() {
        TABLE.with(|t| *t.borrow_mut() = Table::default());
    }

    fn request() -> Rc<Request> {
        Rc::new(Request::Chat(ChatRequest {
            model: "m".into(),
            ..ChatRequest::default()
        }))
    }

    fn error(status: u16) -> Response {
        Response::Error(ErrorInfo::new(status, ErrorKind::Upstream, "x"))
    }

    #[test]
    fn without_a_provider_role_here_everything_goes_on_the_wire() {
        fresh();
        let out = send("r", "c", &request(), &[], 7).unwrap();
        assert_eq!(out.id, None);
        let (env, slot) = receive(&out.body).unwrap();
        assert_eq!(
            (env.route.as_str(), env.cluster.as_str(), slot),
            ("r", "c", None)
        );
        assert_eq!(env.request, *request());
        let body = answer(None, error(503));
        assert_eq!(response(&body), Some(error(503)));
        assert_eq!(in_flight(), 0);
    }

    #[test]
    fn by_reference_each_attempt_answers_in_its_own_slot() {
        fresh();
        set_provider_in_this_vm(true);
        let out = send("r", "c", &request(), &[], 7).unwrap();
        assert!(out.body.starts_with(PREFIX) && out.body.len() < 40);
        let (first, s1) = receive(&out.body).unwrap();
        assert_eq!(first.request, *request());
        // A retry replays the same body and gets the same request, as a new attempt.
        let (_, s2) = receive(&out.body).unwrap();
        assert_ne!(s1, s2);
        let late = answer(s1, error(503));
        let last = answer(s2, error(418));
        assert_eq!(response(&last), Some(error(418)));
        assert_eq!(response(&last), None, "an answer is taken once");
        assert_eq!(response(&late), Some(error(503)));
        release(out.id);
        assert_eq!(in_flight(), 0);
        assert_eq!(receive(&out.body).unwrap_err(), Refused::Unresolved);
    }

    #[test]
    fn references_only_while_a_provider_root_lives_here() {
        fresh();
        let root = ProviderRoot::new();
        let out = send("r", "c", &request(), &[], 7).unwrap();
        assert!(out.id.is_some());
        release(out.id);
        drop(root);
        assert_eq!(send("r", "c", &request(), &[], 7).unwrap().id, None);
    }

    #[test]
    fn foreign_and_malformed_references_are_refused() {
        fresh();
        set_provider_in_this_vm(true);
        let out = send("r", "c", &request(), &[], 7).unwrap();
        let other_vm = b"weir-ref:1234:1";
        assert_eq!(receive(other_vm).unwrap_err(), Refused::Unresolved);
        assert_eq!(receive(b"weir-ref:zz").unwrap_err(), Refused::Unresolved);
        assert_eq!(receive(b"{\"model\":1}").unwrap_err(), Refused::NotIr);
        assert_eq!(response(b"weir-ref:1234:1:1"), None);
        release(out.id);
    }

    #[test]
    fn stream_events_wait_in_the_entry_or_travel_as_ndjson() {
        fresh();
        let text = |t: &str| StreamEvent::TextDelta {
            choice: 0,
            text: t.into(),
        };
        let err = StreamEvent::Error(ErrorInfo::new(502, ErrorKind::Upstream, "cut"));
        // On the wire: one NDJSON line per event, nothing after an error.
        let mut failed = false;
        let body = stream(None, vec![text("a"), err.clone(), text("b")], &mut failed);
        let lines: Vec<StreamEvent> = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!((lines, failed), (vec![text("a"), err.clone()], true));
        // By reference: a blank line, and the events wait for the gateway, in order.
        set_provider_in_this_vm(true);
        let out = send("r", "c", &request(), &[], 7).unwrap();
        let (_, slot) = receive(&out.body).unwrap();
        let mut failed = false;
        assert_eq!(stream(slot, vec![text("a")], &mut failed), b"\n");
        assert_eq!(stream(slot, vec![], &mut failed), b"");
        assert_eq!(stream(slot, vec![text("b")], &mut failed), b"\n");
        assert_eq!(take_stream(out.id), vec![text("a"), text("b")]);
        assert_eq!(take_stream(out.id), vec![]);
        release(out.id);
        // The gateway let go: the events go on the wire, where nobody reads them.
        assert!(stream(slot, vec![text("c")], &mut failed).starts_with(b"{"));
        assert!(!failed);
    }

    #[test]
    fn references_round_trip() {
        fresh();
        for (nonce, id, attempt) in [
            (1, 1, None),
            (u64::MAX, 0x10, Some(u32::MAX)),
            (0xabc, 0, Some(0)),
        ] {
            let r = reference(nonce, id, attempt);
            let rest = r.strip_prefix(PREFIX).unwrap();
            assert_eq!(
                parse(rest),
                Some((nonce, id, attempt)),
                "{}",
                String::from_utf8_lossy(&r)
            );
        }
        assert_eq!(
            reference(0xabc, 0x1f, Some(2)),
            b"weir-ref:abc:1f:2".to_vec()
        );
    }

    #[test]
    fn the_table_is_bounded() {
        fresh();
        set_provider_in_this_vm(true);
        let ids: Vec<_> = (0..MAX_IN_FLIGHT)
            .map(|_| send("r", "c", &request(), &[], 7).unwrap().id)
            .collect();
        assert!(ids.iter().all(Option::is_some));
        assert_eq!(send("r", "c", &request(), &[], 7).unwrap().id, None);
        for id in ids {
            release(id);
        }
        assert_eq!(in_flight(), 0);
    }
}
