//! The Responses API's semantic event stream: [`ResponsesStreamEncoder`] turns IR events into it
//! for Responses clients, [`ResponsesStreamDecoder`] turns an `openai-responses` provider's back
//! into IR.
//!
//! Encoder invariants (what the SDK's stream accumulator checks): `response.created` comes first
//! and exactly one terminal event (`response.completed`, `response.incomplete` or
//! `response.failed`) last; `sequence_number` counts every event from 0; an item is announced
//! (`output_item.added`) before any event names its `output_index`, and its `output_item.done`
//! carries the same id and everything its deltas said; `response.completed` lists every item.
//! Function calls stay open until the answer's finish (providers may interleave their
//! arguments); a reasoning item is written whole when it ends, because its id, which OpenAI needs
//! back, is known only then. The answer held for the closing events is bounded by the limit
//! given at construction.

use serde_json::Value;

use super::client::{
    echo, json_size, write_refusal_part, write_response, write_summary_part, write_text_part, Head,
    ItemStatus, OutItem, Outcome,
};
use super::{item_id, pack_reasoning, response_id};
use crate::ir::*;
use crate::stream::sse::{write_event, SseEvent, SseFramer};
use crate::wire::json::{as_obj, upstream, Json, JsonWriter, Obj, R};
use crate::wire::{StreamEncoder, TerminatedSse, WireError};

/// The content part of the open message item being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Refusal,
}

/// The message item being streamed.
struct OpenMessage {
    position: usize,
    part: Option<(PartKind, u32)>,
    /// Parts written so far (a text part, a refusal part, or both).
    parts: u32,
}

/// A function call being streamed.
struct OpenCall {
    /// The IR's tool-call index.
    index: u32,
    position: usize,
}

pub struct ResponsesStreamEncoder {
    /// The request's settings, as every `response` object repeats them.
    echo: String,
    id: String,
    model: String,
    created: u64,
    seq: u64,
    started: bool,
    /// A terminal event was written: nothing may follow.
    closed: bool,
    /// Every item so far, in output order; an open item holds what it has received.
    items: Vec<OutItem>,
    message: Option<OpenMessage>,
    calls: Vec<OpenCall>,
    /// Reasoning received but not yet written (see the module docs).
    reasoning: Option<String>,
    /// Built-in tools' items: the provider's `output_index` and the item's position here.
    native: Vec<(u64, usize)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// Bytes of answer held, and the most that may be.
    held: usize,
    limit: usize,
    json: JsonWriter,
}

impl ResponsesStreamEncoder {
    /// `limit`: the most answer bytes (text, arguments, reasoning) held for the closing events.
    pub fn new(req: &ChatRequest, limit: usize) -> Self {
        ResponsesStreamEncoder {
            echo: echo(req),
            id: String::new(),
            model: req.model.clone(),
            created: 0,
            seq: 0,
            started: false,
            closed: false,
            items: Vec::new(),
            message: None,
            calls: Vec::new(),
            reasoning: None,
            native: Vec::new(),
            finish: None,
            usage: None,
            held: 0,
            limit,
            json: JsonWriter::with_capacity(512),
        }
    }

    /// Writes one event: `body` writes its fields after `type` and `sequence_number`.
    fn emit(&mut self, kind: &str, out: &mut Vec<u8>, body: impl FnOnce(&mut JsonWriter)) {
        let w = &mut self.json;
        w.clear();
        w.begin_object();
        w.key("type").str(kind);
        w.key("sequence_number").u64(self.seq);
        body(w);
        w.end_object();
        self.seq += 1;
        write_event(Some(kind), w.as_str(), out);
    }

    /// An event that carries the whole `response` object.
    fn emit_response(&mut self, kind: &str, outcome: Outcome<'_>, out: &mut Vec<u8>) {
        let echo = std::mem::take(&mut self.echo);
        let items = std::mem::take(&mut self.items);
        let usage = self.usage;
        let id = std::mem::take(&mut self.id);
        let model = std::mem::take(&mut self.model);
        let created = self.created;
        let output: &[OutItem] = match outcome {
            Outcome::InProgress => &[],
            _ => &items,
        };
        self.emit(kind, out, |w| {
            let head = Head {
                id: &id,
                created,
                model: &model,
            };
            w.key("response");
            write_response(w, &echo, &head, outcome, output, usage.as_ref());
        });
        self.echo = echo;
        self.items = items;
        self.id = id;
        self.model = model;
    }

    fn start(&mut self, id: &str, model: &str, created: u64, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = response_id(id);
        if !model.is_empty() {
            model.clone_into(&mut self.model);
        }
        self.created = created;
        self.emit_response("response.created", Outcome::InProgress, out);
        self.emit_response("response.in_progress", Outcome::InProgress, out);
    }

    /// Counts answer bytes against the limit; past it the stream fails.
    fn hold(&mut self, n: usize, out: &mut Vec<u8>) -> bool {
        self.held = self.held.saturating_add(n);
        if self.held <= self.limit {
            return true;
        }
        let e = ErrorInfo::new(
            502,
            ErrorKind::Upstream,
            "the answer exceeded max_response_bytes, the most a Responses stream holds",
        );
        self.fail(&e, out);
        false
    }

    fn item_id(&self, prefix: &str) -> String {
        item_id(prefix, &self.id, self.items.len())
    }

    // --- reasoning ---

    /// Writes the held reasoning as one complete item.
    fn flush_reasoning(
        &mut self,
        payload: Option<(Option<String>, Option<String>)>,
        out: &mut Vec<u8>,
    ) {
        let Some(text) = self.reasoning.take() else {
            return;
        };
        let (own_id, encrypted) = payload.unwrap_or_default();
        let position = self.items.len();
        let id = own_id.unwrap_or_else(|| self.item_id("rs"));
        let item = OutItem::Reasoning {
            id: id.clone(),
            text: String::new(),
            encrypted: None,
        };
        self.items.push(item);
        self.emit("response.output_item.added", out, |w| {
            w.key("output_index").u64(position as u64);
            w.key("item").begin_object();
            w.key("id").str(&id);
            w.key("type").str("reasoning");
            w.key("summary").begin_array().end_array();
            w.end_object();
        });
        if !text.is_empty() {
            let part = |w: &mut JsonWriter, text: &str| {
                w.key("item_id").str(&id);
                w.key("output_index").u64(position as u64);
                w.key("summary_index").u64(0);
                w.key("part");
                write_summary_part(w, text);
            };
            self.emit("response.reasoning_summary_part.added", out, |w| {
                part(w, "")
            });
            self.emit("response.reasoning_summary_text.delta", out, |w| {
                w.key("item_id").str(&id);
                w.key("output_index").u64(position as u64);
                w.key("summary_index").u64(0);
                w.key("delta").str(&text);
            });
            self.emit("response.reasoning_summary_text.done", out, |w| {
                w.key("item_id").str(&id);
                w.key("output_index").u64(position as u64);
                w.key("summary_index").u64(0);
                w.key("text").str(&text);
            });
            self.emit("response.reasoning_summary_part.done", out, |w| {
                part(w, &text)
            });
        }
        let item = OutItem::Reasoning {
            id,
            text,
            encrypted,
        };
        self.item_done(position, item, out);
    }

    /// Replaces the item at `position` with its final form and says so.
    fn item_done(&mut self, position: usize, item: OutItem, out: &mut Vec<u8>) {
        // Items still open at a finish that cut the answer short end incomplete.
        let status = match self.finish.and_then(super::incomplete_reason) {
            Some(_) => ItemStatus::Incomplete,
            None => ItemStatus::Completed,
        };
        self.emit("response.output_item.done", out, |w| {
            w.key("output_index").u64(position as u64);
            w.key("item");
            item.write(w, status);
        });
        if let Some(slot) = self.items.get_mut(position) {
            *slot = item;
        }
    }

    // --- messages ---

    fn open_message(&mut self, out: &mut Vec<u8>) -> usize {
        if let Some(m) = &self.message {
            return m.position;
        }
        let position = self.items.len();
        let id = self.item_id("msg");
        self.items.push(OutItem::Message {
            id: id.clone(),
            text: String::new(),
            refusal: None,
            annotations: Vec::new(),
        });
        self.emit("response.output_item.added", out, |w| {
            w.key("output_index").u64(position as u64);
            w.key("item").begin_object();
            w.key("id").str(&id);
            w.key("type").str("message");
            w.key("status").str("in_progress");
            w.key("role").str("assistant");
            w.key("content").begin_array().end_array();
            w.end_object();
        });
        self.message = Some(OpenMessage {
            position,
            part: None,
            parts: 0,
        });
        position
    }

    /// The message's id and what it holds so far.
    fn message_state(&self, position: usize) -> (String, String, Option<String>, Vec<Value>) {
        match self.items.get(position) {
            Some(OutItem::Message {
                id,
                text,
                refusal,
                annotations,
            }) => (
                id.clone(),
                text.clone(),
                refusal.clone(),
                annotations.clone(),
            ),
            _ => (String::new(), String::new(), None, Vec::new()),
        }
    }

    /// Makes a part of `kind` the open one, closing another first.
    fn open_part(&mut self, kind: PartKind, out: &mut Vec<u8>) -> (usize, u32) {
        let position = self.open_message(out);
        if let Some((k, index)) = self.message.as_ref().and_then(|m| m.part) {
            if k == kind {
                return (position, index);
            }
            self.close_part(out);
        }
        let index = self.message.as_ref().map_or(0, |m| m.parts);
        let (id, ..) = self.message_state(position);
        self.emit("response.content_part.added", out, |w| {
            w.key("item_id").str(&id);
            w.key("output_index").u64(position as u64);
            w.key("content_index").u64(index.into());
            w.key("part");
            match kind {
                PartKind::Text => write_text_part(w, "", &[]),
                PartKind::Refusal => write_refusal_part(w, ""),
            }
        });
        if let Some(m) = &mut self.message {
            m.part = Some((kind, index));
            m.parts += 1;
        }
        (position, index)
    }

    fn close_part(&mut self, out: &mut Vec<u8>) {
        let Some(m) = &mut self.message else {
            return;
        };
        let Some((kind, index)) = m.part.take() else {
            return;
        };
        let position = m.position;
        let (id, text, refusal, annotations) = self.message_state(position);
        let refusal = refusal.unwrap_or_default();
        let at = |w: &mut JsonWriter| {
            w.key("item_id").str(&id);
            w.key("output_index").u64(position as u64);
            w.key("content_index").u64(index.into());
        };
        match kind {
            PartKind::Text => self.emit("response.output_text.done", out, |w| {
                at(w);
                w.key("text").str(&text);
                w.key("logprobs").begin_array().end_array();
            }),
            PartKind::Refusal => self.emit("response.refusal.done", out, |w| {
                at(w);
                w.key("refusal").str(&refusal);
            }),
        }
        self.emit("response.content_part.done", out, |w| {
            at(w);
            w.key("part");
            match kind {
                PartKind::Text => write_text_part(w, &text, &annotations),
                PartKind::Refusal => write_refusal_part(w, &refusal),
            }
        });
    }

    fn close_message(&mut self, out: &mut Vec<u8>) {
        self.close_part(out);
        let Some(m) = self.message.take() else {
            return;
        };
        if let Some(item) = self.items.get(m.position).cloned() {
            self.item_done(m.position, item, out);
        }
    }

    fn text(&mut self, kind: PartKind, delta: &str, out: &mut Vec<u8>) {
        self.flush_reasoning(None, out);
        if !self.hold(delta.len(), out) {
            return;
        }
        let (position, index) = self.open_part(kind, out);
        let mut id = String::new();
        if let Some(OutItem::Message {
            id: own,
            text,
            refusal,
            ..
        }) = self.items.get_mut(position)
        {
            match kind {
                PartKind::Text => text.push_str(delta),
                PartKind::Refusal => refusal.get_or_insert_with(String::new).push_str(delta),
            }
            own.clone_into(&mut id);
        }
        let event = match kind {
            PartKind::Text => "response.output_text.delta",
            PartKind::Refusal => "response.refusal.delta",
        };
        self.emit(event, out, |w| {
            w.key("item_id").str(&id);
            w.key("output_index").u64(position as u64);
            w.key("content_index").u64(index.into());
            w.key("delta").str(delta);
            if kind == PartKind::Text {
                w.key("logprobs").begin_array().end_array();
            }
        });
    }

    // --- function calls ---

    fn call_start(&mut self, index: u32, call_id: &str, name: &str, out: &mut Vec<u8>) {
        self.flush_reasoning(None, out);
        self.close_message(out);
        if !self.hold(call_id.len() + name.len(), out) {
            return;
        }
        let position = self.items.len();
        let item = OutItem::Call {
            id: self.item_id("fc"),
            call_id: call_id.to_string(),
            name: name.to_string(),
            arguments: String::new(),
        };
        self.emit("response.output_item.added", out, |w| {
            w.key("output_index").u64(position as u64);
            w.key("item");
            item.write(w, ItemStatus::InProgress);
        });
        self.items.push(item);
        self.calls.push(OpenCall { index, position });
    }

    fn call_delta(&mut self, index: u32, delta: &str, out: &mut Vec<u8>) {
        let Some(position) = self
            .calls
            .iter()
            .find(|c| c.index == index)
            .map(|c| c.position)
        else {
            return;
        };
        if !self.hold(delta.len(), out) {
            return;
        }
        let Some(OutItem::Call { id, arguments, .. }) = self.items.get_mut(position) else {
            return;
        };
        arguments.push_str(delta);
        let id = id.clone();
        self.emit("response.function_call_arguments.delta", out, |w| {
            w.key("item_id").str(&id);
            w.key("output_index").u64(position as u64);
            w.key("delta").str(delta);
        });
    }

    fn close_calls(&mut self, out: &mut Vec<u8>) {
        for call in std::mem::take(&mut self.calls) {
            let Some(item) = self.items.get(call.position).cloned() else {
                continue;
            };
            if let OutItem::Call { id, arguments, .. } = &item {
                self.emit("response.function_call_arguments.done", out, |w| {
                    w.key("item_id").str(id);
                    w.key("output_index").u64(call.position as u64);
                    w.key("arguments").str(arguments);
                });
            }
            self.item_done(call.position, item, out);
        }
    }

    // --- built-in tools ---

    /// A Responses provider's own event (see the module docs): a built-in tool's item opens at
    /// the next position, its events follow it there, and an annotation joins the open text.
    fn native(&mut self, event: &Value, out: &mut Vec<u8>) {
        let Some(kind) = event.get("type").and_then(Value::as_str) else {
            return;
        };
        if !self.hold(json_size(event), out) {
            return;
        }
        let theirs = event.get("output_index").and_then(Value::as_u64);
        match kind {
            "response.output_item.added" => {
                let Some(item) = event.get("item") else {
                    return;
                };
                self.flush_reasoning(None, out);
                self.close_message(out);
                let position = self.items.len();
                if let Some(theirs) = theirs {
                    self.native.push((theirs, position));
                }
                self.items.push(OutItem::Native(item.clone()));
                self.emit_native(kind, event, position, out);
            }
            "response.output_text.annotation.added" => {
                let Some(annotation) = event.get("annotation") else {
                    return;
                };
                let (position, index) = self.open_part(PartKind::Text, out);
                let Some(OutItem::Message {
                    id, annotations, ..
                }) = self.items.get_mut(position)
                else {
                    return;
                };
                annotations.push(annotation.clone());
                let (id, count) = (id.clone(), annotations.len());
                self.emit(kind, out, |w| {
                    w.key("item_id").str(&id);
                    w.key("output_index").u64(position as u64);
                    w.key("content_index").u64(index.into());
                    w.key("annotation_index")
                        .u64(count.saturating_sub(1) as u64);
                    w.key("annotation").value(annotation);
                });
            }
            _ => {
                // The item's progress and its `output_item.done`; an event about an item never
                // announced has nowhere to go.
                let Some(position) = self
                    .native
                    .iter()
                    .find(|(t, _)| Some(*t) == theirs)
                    .map(|(_, p)| *p)
                else {
                    return;
                };
                if kind == "response.output_item.done" {
                    if let (Some(item), Some(slot)) =
                        (event.get("item"), self.items.get_mut(position))
                    {
                        *slot = OutItem::Native(item.clone());
                    }
                }
                self.emit_native(kind, event, position, out);
            }
        }
    }

    /// A provider event as it came, numbered into this stream and moved to `position`.
    fn emit_native(&mut self, kind: &str, event: &Value, position: usize, out: &mut Vec<u8>) {
        self.emit(kind, out, |w| {
            if let Some(fields) = event.as_object() {
                for (k, v) in fields {
                    if !matches!(k.as_str(), "type" | "sequence_number" | "output_index") {
                        w.key(k).value(v);
                    }
                }
            }
            w.key("output_index").u64(position as u64);
        });
    }

    // --- the end ---

    fn fail(&mut self, e: &ErrorInfo, out: &mut Vec<u8>) {
        self.start("", "", 0, out);
        self.closed = true;
        self.emit_response("response.failed", Outcome::Failed(e), out);
    }
}

impl StreamEncoder for ResponsesStreamEncoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match ev {
            StreamEvent::Start { id, model, created } => self.start(id, model, *created, out),
            // The Responses API has one answer per response.
            StreamEvent::TextDelta { choice, .. }
            | StreamEvent::RefusalDelta { choice, .. }
            | StreamEvent::ReasoningDelta { choice, .. }
            | StreamEvent::ReasoningEnd { choice, .. }
            | StreamEvent::ToolCallStart { choice, .. }
            | StreamEvent::ToolCallDelta { choice, .. }
            | StreamEvent::Finish { choice, .. }
            | StreamEvent::Native { choice, .. }
                if *choice != 0 => {}
            StreamEvent::TextDelta { text, .. } => self.text(PartKind::Text, text, out),
            StreamEvent::RefusalDelta { text, .. } => self.text(PartKind::Refusal, text, out),
            StreamEvent::ReasoningDelta { text, .. } => {
                self.close_message(out);
                if self.hold(text.len(), out) {
                    self.reasoning
                        .get_or_insert_with(String::new)
                        .push_str(text);
                }
            }
            StreamEvent::ReasoningEnd {
                signature,
                redacted,
                id,
                origin,
                ..
            } => {
                self.close_message(out);
                self.reasoning.get_or_insert_with(String::new);
                let encrypted = pack_reasoning(*origin, signature.as_deref(), redacted.as_deref());
                let own = id
                    .clone()
                    .filter(|_| *origin == Some(Origin::OpenAiResponses));
                self.flush_reasoning(Some((own, encrypted)), out);
            }
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => self.call_start(*index, id, name, out),
            StreamEvent::ToolCallDelta {
                index, arguments, ..
            } => self.call_delta(*index, arguments, out),
            StreamEvent::Finish { reason, .. } => {
                self.finish = Some(*reason);
                self.flush_reasoning(None, out);
                self.close_message(out);
                self.close_calls(out);
            }
            StreamEvent::Native {
                origin: Origin::OpenAiResponses,
                event,
                ..
            } => self.native(event, out),
            StreamEvent::Native { .. } => {}
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Error(e) => self.fail(e, out),
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        let Some(reason) = self.finish else {
            let e = ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                "the provider's stream ended before the answer was complete",
            );
            self.fail(&e, out);
            return;
        };
        self.closed = true;
        let kind = match super::incomplete_reason(reason) {
            Some(_) => "response.incomplete",
            None => "response.completed",
        };
        self.emit_response(kind, Outcome::Done(reason), out);
    }
}

// --- decoding a provider's stream -------------------------------------------------------------

/// A function call item seen on the provider's stream.
struct SeenCall {
    item_id: String,
    output_index: u64,
    index: u32,
    /// Argument bytes passed on so far.
    sent: usize,
}

pub struct ResponsesStreamDecoder {
    framer: SseFramer,
    model: String,
    started: bool,
    /// A terminal event was seen: later bytes are not part of the answer.
    done: bool,
    calls: Vec<SeenCall>,
    /// Reasoning items whose text arrived as deltas (their `done` need not repeat it).
    reasoned: Vec<String>,
    /// Message items whose text arrived as deltas.
    texted: Vec<String>,
    /// `output_index` of each built-in tool's item, whose events pass on verbatim.
    hosted: Vec<u64>,
}

/// The most built-in tools' items one answer may hold: a bound on the decoder's memory far above
/// what an agent turn runs.
const MAX_HOSTED: usize = 1024;

impl ResponsesStreamDecoder {
    pub fn new(req: &ChatRequest, max_frame: usize) -> Self {
        ResponsesStreamDecoder {
            framer: SseFramer::new(max_frame),
            model: req.model.clone(),
            started: false,
            done: false,
            calls: Vec::new(),
            reasoned: Vec::new(),
            texted: Vec::new(),
            hosted: Vec::new(),
        }
    }

    fn start(&mut self, o: &Obj<'_, '_>, out: &mut Vec<StreamEvent>) -> R<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let (id, model, created) = match o.obj("response")? {
            Some(r) => (
                r.string("id")?.unwrap_or_default(),
                r.string("model")?.filter(|m| !m.is_empty()),
                super::provider::created_at(&r)?,
            ),
            None => (String::new(), None, 0),
        };
        out.push(StreamEvent::Start {
            id,
            model: model.unwrap_or_else(|| self.model.clone()),
            created,
        });
        Ok(())
    }

    fn call(&mut self, o: &Obj<'_, '_>) -> Option<&mut SeenCall> {
        let item = o.str("item_id").ok().flatten();
        let index = o.u64("output_index").ok().flatten();
        self.calls
            .iter_mut()
            .find(|c| Some(c.item_id.as_str()) == item || Some(c.output_index) == index)
    }

    /// Passes on the part of a call's full `arguments` its deltas did not carry.
    fn rest_of_arguments(&mut self, o: &Obj<'_, '_>, full: &str, out: &mut Vec<StreamEvent>) {
        let Some(call) = self.call(o) else {
            return;
        };
        if let Some(rest) = full.get(call.sent..).filter(|r| !r.is_empty()) {
            out.push(StreamEvent::ToolCallDelta {
                choice: 0,
                index: call.index,
                arguments: rest.to_string(),
            });
            call.sent = full.len();
        }
    }

    /// The provider's event, verbatim, for a Responses client (see [`StreamEvent::Native`]).
    fn native(raw: &Json<'_>, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Native {
            choice: 0,
            origin: Origin::OpenAiResponses,
            event: raw.to_value(),
        });
    }

    fn event(
        &mut self,
        kind: &str,
        o: &Obj<'_, '_>,
        raw: &Json<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> R<()> {
        match kind {
            "response.created" | "response.in_progress" | "response.queued" => {
                self.start(o, out)?
            }
            "response.output_item.added" => {
                self.start(o, out)?;
                let item = o.req_obj("item")?;
                match item.req_str("type")? {
                    "function_call" => {
                        let index = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
                        out.push(StreamEvent::ToolCallStart {
                            choice: 0,
                            index,
                            id: item.req_str("call_id")?.to_string(),
                            name: item.req_str("name")?.to_string(),
                        });
                        self.calls.push(SeenCall {
                            item_id: item.string("id")?.unwrap_or_default(),
                            output_index: o.u64("output_index")?.unwrap_or(u64::MAX),
                            index,
                            sent: 0,
                        });
                        if let Some(args) = item.str("arguments")?.filter(|a| !a.is_empty()) {
                            self.rest_of_arguments(o, args, out);
                        }
                    }
                    "message" | "reasoning" => {}
                    _ => {
                        if self.hosted.len() >= MAX_HOSTED {
                            return Err(WireError::upstream(
                                "the answer holds more built-in tool calls than weir relays",
                            ));
                        }
                        self.hosted.push(o.u64("output_index")?.unwrap_or(u64::MAX));
                        Self::native(raw, out);
                    }
                }
            }
            "response.output_text.annotation.added" => Self::native(raw, out),
            "response.output_text.delta" | "response.refusal.delta" => {
                let delta = o.req_str("delta")?;
                if let Some(id) = o.str("item_id")? {
                    if !self.texted.iter().any(|t| t == id) {
                        self.texted.push(id.to_string());
                    }
                }
                if !delta.is_empty() {
                    out.push(if kind == "response.output_text.delta" {
                        StreamEvent::TextDelta {
                            choice: 0,
                            text: delta.to_string(),
                        }
                    } else {
                        StreamEvent::RefusalDelta {
                            choice: 0,
                            text: delta.to_string(),
                        }
                    });
                }
            }
            "response.function_call_arguments.delta" => {
                let delta = o.req_str("delta")?;
                if let Some(call) = self.call(o) {
                    call.sent += delta.len();
                    let index = call.index;
                    if !delta.is_empty() {
                        out.push(StreamEvent::ToolCallDelta {
                            choice: 0,
                            index,
                            arguments: delta.to_string(),
                        });
                    }
                }
            }
            "response.function_call_arguments.done" => {
                if let Some(args) = o.str("arguments")? {
                    self.rest_of_arguments(o, args, out);
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                let delta = o.req_str("delta")?;
                let id = o.str("item_id")?.unwrap_or_default();
                if !self.reasoned.iter().any(|r| r == id) {
                    self.reasoned.push(id.to_string());
                }
                if !delta.is_empty() {
                    out.push(StreamEvent::ReasoningDelta {
                        choice: 0,
                        text: delta.to_string(),
                    });
                }
            }
            // Summary parts after the first are separated as the whole item's text is.
            "response.reasoning_summary_part.added" => {
                let id = o.str("item_id")?.unwrap_or_default();
                if o.u64("summary_index")?.unwrap_or(0) > 0 && self.reasoned.iter().any(|r| r == id)
                {
                    out.push(StreamEvent::ReasoningDelta {
                        choice: 0,
                        text: "\n\n".to_string(),
                    });
                }
            }
            "response.output_item.done" => self.item_done(o, raw, out)?,
            "response.completed" | "response.incomplete" => {
                self.start(o, out)?;
                let r = o.req_obj("response")?;
                let incomplete = match r.obj("incomplete_details")? {
                    Some(d) => Some(d.str("reason")?.unwrap_or("max_output_tokens")),
                    None if kind == "response.incomplete" => Some("max_output_tokens"),
                    None => None,
                };
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: super::finish_of(incomplete, !self.calls.is_empty()),
                });
                if let Some(u) = r.obj("usage")? {
                    out.push(StreamEvent::Usage(super::read_usage(&u)?));
                }
                self.done = true;
            }
            "response.failed" => {
                let e = match o.obj("response")? {
                    Some(r) => super::provider::failed(&r)?,
                    None => super::provider::failed(o)?,
                };
                out.push(StreamEvent::Error(e));
                self.done = true;
            }
            "error" => {
                let status = match o.str("code")? {
                    Some("rate_limit_exceeded") => 429,
                    _ => 502,
                };
                let message = o
                    .string("message")?
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "the provider reported an error mid-stream".into());
                out.push(StreamEvent::Error(ErrorInfo::new(
                    status,
                    ErrorInfo::kind_for_status(status),
                    message,
                )));
                self.done = true;
            }
            // A built-in tool's progress (`response.web_search_call.searching`, ...).
            _ if o
                .u64("output_index")?
                .is_some_and(|i| self.hosted.contains(&i)) =>
            {
                Self::native(raw, out)
            }
            // Part boundaries, `*.done` events that repeat their deltas, and event types the API
            // may add later.
            _ => {}
        }
        Ok(())
    }

    /// A finished item: a reasoning item's payload, and whatever its deltas did not carry.
    fn item_done(&mut self, o: &Obj<'_, '_>, raw: &Json<'_>, out: &mut Vec<StreamEvent>) -> R<()> {
        let item = o.req_obj("item")?;
        let id = item.string("id")?;
        let streamed = |list: &[String]| id.as_ref().is_some_and(|id| list.contains(id));
        match item.req_str("type")? {
            "reasoning" => {
                if !streamed(&self.reasoned) {
                    let text = super::reasoning_text(&item)?;
                    if !text.is_empty() {
                        out.push(StreamEvent::ReasoningDelta { choice: 0, text });
                    }
                }
                out.push(StreamEvent::ReasoningEnd {
                    choice: 0,
                    signature: None,
                    redacted: item.string("encrypted_content")?,
                    id,
                    origin: Some(Origin::OpenAiResponses),
                });
            }
            "message" if !streamed(&self.texted) => {
                let parts = item.arr("content")?.unwrap_or_default();
                let base = item.path("content");
                for (j, p) in parts.iter().enumerate() {
                    let p = as_obj(p, base.index(j))?;
                    let (text, refusal) = (p.str("text")?, p.str("refusal")?);
                    if let Some(text) = text.filter(|t| !t.is_empty()) {
                        out.push(StreamEvent::TextDelta {
                            choice: 0,
                            text: text.to_string(),
                        });
                    } else if let Some(text) = refusal.filter(|t| !t.is_empty()) {
                        out.push(StreamEvent::RefusalDelta {
                            choice: 0,
                            text: text.to_string(),
                        });
                    }
                }
            }
            "function_call" => {
                if let Some(args) = item.str("arguments")? {
                    self.rest_of_arguments(o, args, out);
                }
            }
            "message" => {}
            _ => Self::native(raw, out),
        }
        Ok(())
    }
}

impl TerminatedSse for ResponsesStreamDecoder {
    fn framer(&mut self) -> &mut SseFramer {
        &mut self.framer
    }

    fn done(&self) -> bool {
        self.done
    }

    fn frames(&mut self, frames: Vec<SseEvent>, out: &mut Vec<StreamEvent>) -> R<()> {
        for f in frames {
            if self.done {
                break;
            }
            if f.raw {
                // A line outside SSE framing is noise, unless it is the provider's error.
                if let Some(e) = crate::wire::stray_error(&f.data) {
                    self.done = true;
                    out.push(StreamEvent::Error(e));
                }
                continue;
            }
            let data = f.data.trim();
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            let v: Json<'_> = serde_json::from_str(data).map_err(|e| {
                WireError::upstream(format!("a stream event is not valid JSON: {e}"))
            })?;
            let Json::Object(map) = &v else {
                return Err(WireError::upstream("a stream event is not a JSON object"));
            };
            let o = Obj::root(map);
            let kind = match o.str("type").map_err(upstream)? {
                Some(k) => k.to_string(),
                None => f.event.unwrap_or_default(),
            };
            self.event(&kind, &o, &v, out).map_err(upstream)?;
        }
        Ok(())
    }
}
