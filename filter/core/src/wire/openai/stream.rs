//! Chat Completions streams: IR events → `chat.completion.chunk` SSE for clients, and a
//! provider's chunk SSE → IR events.
//!
//! Invariants:
//! - Encoder: every chunk carries the id, created and model of `Start`; each choice opens with
//!   a `role: assistant` delta; the stream closes with `[DONE]` only after a finish reason. An
//!   error is written as a `{"error": {...}}` data payload, which is what the `openai` SDK's
//!   stream reader raises `APIError` on, and nothing follows it.
//! - Encoder: reasoning goes out as `reasoning_content` and, for a client to hand signed reasoning
//!   back, as OpenRouter-style `reasoning_details` fragments of one entry per block (its text,
//!   then its signature or encrypted data and `format`), which the SDKs' delta accumulation
//!   merges by `index`; a refusal as `delta.refusal`.
//! - Decoder: usage is held back and emitted once, just before the end, because servers send it
//!   alone after the last choice (OpenAI), next to it (Mistral, vLLM) or on every chunk; an
//!   `error` payload, a JSON error outside SSE framing or a Mistral `error` finish ends the
//!   stream as `StreamEvent::Error`. A reasoning block ends at its signature or when anything
//!   else of its choice comes.

use super::client::{finish_reason_str, write_error, write_reasoning_detail, write_usage};
use super::provider::{
    decode_usage, finish_reason, generation_failed, message_reasoning, message_text,
};
use crate::ir::*;
use crate::stream::sse::{write_event, SseEvent, SseFramer};
use crate::wire::json::{as_obj, upstream, Json, JsonWriter, Obj, Path, R};
use crate::wire::{StreamEncoder, TerminatedSse, WireError};

pub struct ChatStreamEncoder {
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    /// Choices whose opening `role` delta has been written.
    opened: Vec<u32>,
    /// Reasoning blocks begun so far per choice (the `reasoning_details` index of the next).
    reasoning_blocks: Vec<(u32, usize)>,
    finished: bool,
    /// An error was written or the stream ended: nothing more may follow.
    closed: bool,
    /// Each chunk's JSON, before it is framed; kept to reuse its allocation.
    json: JsonWriter,
}

/// What one chunk's choice says.
enum Delta<'a> {
    /// The choice's opening: the assistant role and empty content.
    Open,
    Text(&'a str),
    Refusal(&'a str),
    /// A fragment of reasoning block `index`'s text.
    Reasoning {
        index: usize,
        text: &'a str,
    },
    /// The end of reasoning block `index`: its signature or encrypted data.
    ReasoningEnd {
        index: usize,
        signature: Option<&'a str>,
        redacted: Option<&'a str>,
        id: Option<&'a str>,
        origin: Option<Origin>,
    },
    ToolCallStart {
        index: u32,
        id: &'a str,
        name: &'a str,
    },
    ToolCallArguments {
        index: u32,
        arguments: &'a str,
    },
    /// Nothing new: the chunk carries the finish reason.
    Empty,
}

impl Delta<'_> {
    fn write(&self, w: &mut JsonWriter) {
        w.begin_object();
        match *self {
            Delta::Open => {
                w.key("role").str("assistant");
                w.key("content").str("");
            }
            Delta::Text(text) => {
                w.key("content").str(text);
            }
            Delta::Refusal(text) => {
                w.key("refusal").str(text);
            }
            Delta::Reasoning { index, text } => {
                w.key("reasoning_content").str(text);
                w.key("reasoning_details").begin_array();
                w.begin_object();
                w.key("type").str("reasoning.text");
                w.key("text").str(text);
                w.key("index").u64(index as u64);
                w.end_object().end_array();
            }
            Delta::ReasoningEnd {
                index,
                signature,
                redacted,
                id,
                origin,
            } => {
                w.key("reasoning_details").begin_array();
                write_reasoning_detail(w, index, None, signature, redacted, id, origin);
                w.end_array();
            }
            Delta::ToolCallStart { index, id, name } => {
                w.key("tool_calls").begin_array().begin_object();
                w.key("index").u64(index.into());
                w.key("id").str(id);
                w.key("type").str("function");
                w.key("function").begin_object();
                w.key("name").str(name);
                w.key("arguments").str("");
                w.end_object().end_object().end_array();
            }
            Delta::ToolCallArguments { index, arguments } => {
                w.key("tool_calls").begin_array().begin_object();
                w.key("index").u64(index.into());
                w.key("function").begin_object();
                w.key("arguments").str(arguments);
                w.end_object().end_object().end_array();
            }
            Delta::Empty => {}
        }
        w.end_object();
    }
}

impl ChatStreamEncoder {
    pub fn new(req: &ChatRequest) -> Self {
        ChatStreamEncoder {
            include_usage: req.stream_include_usage,
            id: String::new(),
            model: req.model.clone(),
            created: 0,
            opened: Vec::new(),
            reasoning_blocks: Vec::new(),
            finished: false,
            closed: false,
            json: JsonWriter::with_capacity(256),
        }
    }

    /// Writes one chunk: `choice` is the choice's delta (none for the usage chunk).
    fn chunk(
        &mut self,
        choice: Option<(u32, Delta<'_>, Option<FinishReason>)>,
        usage: Option<&Usage>,
        out: &mut Vec<u8>,
    ) {
        let w = &mut self.json;
        w.clear();
        w.begin_object();
        w.key("id").str(&self.id);
        w.key("object").str("chat.completion.chunk");
        w.key("created").u64(self.created);
        w.key("model").str(&self.model);
        w.key("choices").begin_array();
        if let Some((index, delta, finish)) = choice {
            w.begin_object();
            w.key("index").u64(index.into());
            w.key("delta");
            delta.write(w);
            w.key("logprobs").null();
            w.key("finish_reason")
                .opt_str(finish.map(finish_reason_str))
                .end_object();
        }
        w.end_array();
        if let Some(u) = usage {
            w.key("usage");
            write_usage(w, u);
        }
        w.end_object();
        write_event(None, w.as_str(), out);
    }

    fn open(&mut self, choice: u32, out: &mut Vec<u8>) {
        if !self.opened.contains(&choice) {
            self.opened.push(choice);
            self.chunk(Some((choice, Delta::Open, None)), None, out);
        }
    }

    fn delta(
        &mut self,
        choice: u32,
        delta: Delta<'_>,
        finish: Option<FinishReason>,
        out: &mut Vec<u8>,
    ) {
        self.open(choice, out);
        self.chunk(Some((choice, delta, finish)), None, out);
    }

    /// The `reasoning_details` index of `choice`'s current reasoning block; `end` moves on to
    /// the next block.
    fn reasoning_block(&mut self, choice: u32, end: bool) -> usize {
        let slot = match self.reasoning_blocks.iter().position(|(c, _)| *c == choice) {
            Some(i) => i,
            None => {
                self.reasoning_blocks.push((choice, 0));
                self.reasoning_blocks.len() - 1
            }
        };
        let Some((_, next)) = self.reasoning_blocks.get_mut(slot) else {
            return 0;
        };
        let index = *next;
        if end {
            *next += 1;
        }
        index
    }

    fn error(&mut self, e: &ErrorInfo, out: &mut Vec<u8>) {
        self.closed = true;
        self.json.clear();
        write_error(&mut self.json, e);
        write_event(None, self.json.as_str(), out);
    }
}

impl StreamEncoder for ChatStreamEncoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match ev {
            // Another family's own events have no Chat Completions form.
            StreamEvent::Native { .. } => {}
            StreamEvent::RefusalDelta { choice, text } => {
                self.delta(*choice, Delta::Refusal(text), None, out)
            }
            StreamEvent::ReasoningDelta { choice, text } => {
                let index = self.reasoning_block(*choice, false);
                self.delta(*choice, Delta::Reasoning { index, text }, None, out)
            }
            StreamEvent::ReasoningEnd {
                choice,
                signature,
                redacted,
                id,
                origin,
            } => {
                let index = self.reasoning_block(*choice, true);
                if signature.is_some() || redacted.is_some() {
                    let delta = Delta::ReasoningEnd {
                        index,
                        signature: signature.as_deref(),
                        redacted: redacted.as_deref(),
                        id: id.as_deref(),
                        origin: *origin,
                    };
                    self.delta(*choice, delta, None, out)
                }
            }
            StreamEvent::Start { id, model, created } => {
                id.clone_into(&mut self.id);
                if !model.is_empty() {
                    model.clone_into(&mut self.model);
                }
                self.created = *created;
                self.open(0, out);
            }
            StreamEvent::TextDelta { choice, text } => {
                self.delta(*choice, Delta::Text(text), None, out)
            }
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => {
                let delta = Delta::ToolCallStart {
                    index: *index,
                    id,
                    name,
                };
                self.delta(*choice, delta, None, out)
            }
            StreamEvent::ToolCallDelta {
                choice,
                index,
                arguments,
            } => {
                let delta = Delta::ToolCallArguments {
                    index: *index,
                    arguments,
                };
                self.delta(*choice, delta, None, out)
            }
            StreamEvent::Finish { choice, reason } => {
                self.finished = true;
                self.delta(*choice, Delta::Empty, Some(*reason), out)
            }
            StreamEvent::Usage(u) => {
                if self.include_usage {
                    self.chunk(None, Some(u), out);
                }
            }
            StreamEvent::Error(e) => self.error(e, out),
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        if self.finished {
            self.closed = true;
            write_event(None, "[DONE]", out);
        } else {
            self.error(
                &ErrorInfo::new(
                    502,
                    ErrorKind::Upstream,
                    "the provider's stream ended before the answer was complete",
                ),
                out,
            );
        }
    }
}

/// One tool call seen on the provider's stream.
struct Slot {
    choice: u32,
    provider_index: u64,
    id: String,
    /// The id was made up here because the provider sent none.
    synthetic: bool,
    index: u32,
}

pub struct ChatStreamDecoder {
    framer: SseFramer,
    /// For `Start` when the provider's chunks leave `model` empty.
    model: String,
    started: bool,
    /// `[DONE]` or an error was seen: later bytes are ignored.
    done: bool,
    usage: Option<Usage>,
    calls: Vec<Slot>,
    /// Choices with a reasoning block still open (closed by its signature or by anything else).
    reasoning_open: Vec<u32>,
}

impl ChatStreamDecoder {
    pub fn new(req: &ChatRequest, max_frame: usize) -> Self {
        ChatStreamDecoder {
            framer: SseFramer::new(max_frame),
            model: req.model.clone(),
            started: false,
            done: false,
            usage: None,
            calls: Vec::new(),
            reasoning_open: Vec::new(),
        }
    }

    /// Closes `choice`'s open reasoning block, unsigned: something else of the choice follows.
    fn end_reasoning(&mut self, choice: u32, out: &mut Vec<StreamEvent>) {
        if let Some(i) = self.reasoning_open.iter().position(|c| *c == choice) {
            self.reasoning_open.swap_remove(i);
            out.push(StreamEvent::ReasoningEnd {
                choice,
                signature: None,
                redacted: None,
                id: None,
                origin: None,
            });
        }
    }

    fn flush_usage(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(u) = self.usage.take() {
            out.push(StreamEvent::Usage(u));
        }
    }

    fn fail(&mut self, e: ErrorInfo, out: &mut Vec<StreamEvent>) {
        self.done = true;
        self.usage = None;
        out.push(StreamEvent::Error(e));
    }

    fn chunk(&mut self, v: &Json<'_>, out: &mut Vec<StreamEvent>) -> R<()> {
        let Json::Object(map) = v else {
            return Err(WireError::upstream("a stream chunk is not a JSON object"));
        };
        if let Some(err) = map.get("error").filter(|e| !e.is_null()) {
            let status = err
                .get("code")
                .and_then(Json::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..=599).contains(c))
                .unwrap_or(502);
            let message = super::client::provider_error_message(v)
                .unwrap_or_else(|| "the provider reported an error mid-stream".into());
            self.fail(
                ErrorInfo::new(status, ErrorInfo::kind_for_status(status), message),
                out,
            );
            return Ok(());
        }
        let o = Obj::root(map);
        let choices = o.arr("choices")?.unwrap_or_default();
        let usage = o.obj("usage")?;
        // Azure opens with a choice-less, id-less chunk of prompt filter results: not a start.
        if !self.started && (!choices.is_empty() || usage.is_some()) {
            self.started = true;
            out.push(StreamEvent::Start {
                id: o.string("id")?.unwrap_or_default(),
                model: o
                    .string("model")?
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| self.model.clone()),
                created: o.u64("created")?.unwrap_or(0),
            });
        }
        let path = Path::field("choices");
        for (i, c) in choices.iter().enumerate() {
            self.choice(&as_obj(c, path.index(i))?, out)?;
            if self.done {
                return Ok(());
            }
        }
        if let Some(u) = usage {
            self.usage = Some(decode_usage(&u)?);
        }
        Ok(())
    }

    fn choice(&mut self, c: &Obj<'_, '_>, out: &mut Vec<StreamEvent>) -> R<()> {
        let choice = c.u32("index")?.unwrap_or(0);
        if let Some(delta) = c.obj("delta")? {
            for part in message_reasoning(&delta)? {
                let Part::Reasoning {
                    text,
                    signature,
                    redacted,
                    id,
                    origin,
                } = part
                else {
                    continue;
                };
                if !text.is_empty() {
                    if !self.reasoning_open.contains(&choice) {
                        self.reasoning_open.push(choice);
                    }
                    out.push(StreamEvent::ReasoningDelta { choice, text });
                }
                if signature.is_some() || redacted.is_some() {
                    self.reasoning_open.retain(|c| *c != choice);
                    out.push(StreamEvent::ReasoningEnd {
                        choice,
                        signature,
                        redacted,
                        id,
                        origin,
                    });
                }
            }
            let text = message_text(&delta)?;
            if !text.is_empty() {
                self.end_reasoning(choice, out);
                out.push(StreamEvent::TextDelta { choice, text });
            }
            if let Some(refusal) = delta.str("refusal")?.filter(|r| !r.is_empty()) {
                self.end_reasoning(choice, out);
                out.push(StreamEvent::RefusalDelta {
                    choice,
                    text: refusal.to_string(),
                });
            }
            let calls_path = delta.path("tool_calls");
            for (j, t) in delta
                .arr("tool_calls")?
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                self.end_reasoning(choice, out);
                self.tool_call(choice, &as_obj(t, calls_path.index(j))?, j, out)?;
            }
        }
        if c.get("finish_reason").is_some() {
            self.end_reasoning(choice, out);
        }
        match c.str("finish_reason")?.map(finish_reason) {
            None => {}
            Some(Some(reason)) => out.push(StreamEvent::Finish { choice, reason }),
            Some(None) => self.fail(generation_failed(), out),
        }
        Ok(())
    }

    fn tool_call(
        &mut self,
        choice: u32,
        t: &Obj<'_, '_>,
        position: usize,
        out: &mut Vec<StreamEvent>,
    ) -> R<()> {
        let provider_index = t.u64("index")?.unwrap_or(position as u64);
        let id = t.str("id")?.filter(|s| !s.is_empty());
        let f = t.obj("function")?;
        let name = match &f {
            Some(f) => f.str("name")?.filter(|s| !s.is_empty()),
            None => None,
        };
        let arguments = match &f {
            Some(f) => f.str("arguments")?.filter(|s| !s.is_empty()),
            None => None,
        };
        // A new id at a known index is a new call: Mistral sends whole calls, all at index 0.
        let known = self
            .calls
            .iter()
            .rev()
            .find(|s| s.choice == choice && s.provider_index == provider_index)
            .filter(|s| match id {
                Some(id) => s.synthetic || s.id == id,
                None => true,
            });
        let index = match known {
            Some(slot) => slot.index,
            None => {
                let count = self.calls.iter().filter(|s| s.choice == choice).count();
                let index = u32::try_from(count).unwrap_or(u32::MAX);
                let call_id = id
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("call_{choice}_{index}"));
                out.push(StreamEvent::ToolCallStart {
                    choice,
                    index,
                    id: call_id.clone(),
                    name: name.unwrap_or_default().to_string(),
                });
                self.calls.push(Slot {
                    choice,
                    provider_index,
                    id: call_id,
                    synthetic: id.is_none(),
                    index,
                });
                index
            }
        };
        if let Some(arguments) = arguments {
            out.push(StreamEvent::ToolCallDelta {
                choice,
                index,
                arguments: arguments.to_string(),
            });
        }
        Ok(())
    }
}

impl TerminatedSse for ChatStreamDecoder {
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
                if let Some(e) = crate::wire::stray_error(&f.data) {
                    self.fail(e, out);
                }
                continue;
            }
            let data = f.data.trim();
            if data == "[DONE]" {
                self.done = true;
                self.flush_usage(out);
            } else if !data.is_empty() {
                let v: Json<'_> = serde_json::from_str(data).map_err(|e| {
                    WireError::upstream(format!("a stream chunk is not valid JSON: {e}"))
                })?;
                self.chunk(&v, out).map_err(upstream)?;
            }
        }
        Ok(())
    }

    fn ended(&mut self, out: &mut Vec<StreamEvent>) {
        self.flush_usage(out);
    }
}
