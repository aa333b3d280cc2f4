//! Anthropic's Messages SSE stream in both directions: IR events to `event:`-named SSE for
//! Anthropic clients, and an Anthropic provider's SSE back to IR events.

use super::client::{
    error_status, finish_reason, stop_reason, usage_from, write_error, write_usage,
};
use super::provider::{WireBlock, WireErrorObject, WireUsage};
use crate::ir::*;
use crate::stream::sse::{write_event, SseEvent, SseFramer};
use crate::wire::json::JsonWriter;
use crate::wire::{reasoning, StreamDecoder, StreamEncoder, WireError};
use serde::Deserialize;
use serde_json::Value;

/// The block the encoder has open: text, thinking, or the tool call with this IR index.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking,
    Tool(u32),
}

/// IR events to Anthropic SSE. The IR sends `Finish` before `Usage`, but Anthropic's
/// `message_delta` carries both, so the finish waits for the usage (or the end of the stream).
pub struct MessagesStreamEncoder {
    model: String,
    started: bool,
    open: Option<(Open, u32)>,
    next_block: u32,
    /// Tool-call index to content-block index, for deltas of a call that is no longer open.
    tool_blocks: Vec<(u32, u32)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// The model refused: the stop reason is `refusal` whatever the finish says.
    refused: bool,
    done: bool,
    /// Each event's JSON, before it is framed; kept to reuse its allocation.
    json: JsonWriter,
}

/// Writes one event whose data `write` produces.
fn emit(json: &mut JsonWriter, name: &str, out: &mut Vec<u8>, write: impl FnOnce(&mut JsonWriter)) {
    json.clear();
    write(json);
    write_event(Some(name), json.as_str(), out);
}

/// An event whose data is only its type.
fn emit_bare(name: &str, out: &mut Vec<u8>) {
    write_event(Some(name), &format!(r#"{{"type":"{name}"}}"#), out);
}

impl MessagesStreamEncoder {
    pub fn new(req: &ChatRequest) -> Self {
        MessagesStreamEncoder {
            model: req.model.clone(),
            started: false,
            open: None,
            next_block: 0,
            tool_blocks: Vec::new(),
            finish: None,
            usage: None,
            refused: false,
            done: false,
            json: JsonWriter::with_capacity(256),
        }
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let model = if model.is_empty() { &self.model } else { model };
        emit(&mut self.json, "message_start", out, |w| {
            w.begin_object();
            w.key("type").str("message_start");
            w.key("message").begin_object();
            w.key("id").str(id);
            w.key("type").str("message");
            w.key("role").str("assistant");
            w.key("model").str(model);
            w.key("content").begin_array().end_array();
            w.key("stop_reason").null();
            w.key("stop_sequence").null();
            // The IR's Start carries no usage; the real counts follow in message_delta.
            w.key("usage").begin_object();
            w.key("input_tokens").u64(0);
            w.key("output_tokens").u64(0);
            w.end_object().end_object().end_object();
        });
        emit_bare("ping", out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            emit(&mut self.json, "content_block_stop", out, |w| {
                w.begin_object();
                w.key("type").str("content_block_stop");
                w.key("index").u64(index.into()).end_object();
            });
        }
    }

    /// Opens a block of `kind` unless it is the open one; returns its index. `block` writes the
    /// block's opening shape.
    fn open(&mut self, kind: Open, out: &mut Vec<u8>, block: impl FnOnce(&mut JsonWriter)) -> u32 {
        if let Some((open, index)) = self.open {
            if open == kind {
                return index;
            }
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((kind, index));
        if let Open::Tool(tool) = kind {
            self.tool_blocks.push((tool, index));
        }
        emit(&mut self.json, "content_block_start", out, |w| {
            w.begin_object();
            w.key("type").str("content_block_start");
            w.key("index").u64(index.into());
            w.key("content_block");
            block(w);
            w.end_object();
        });
        index
    }

    /// A `content_block_delta` of `kind` whose one payload field is `field`.
    fn delta(&mut self, index: u32, kind: &str, field: &str, value: &str, out: &mut Vec<u8>) {
        emit(&mut self.json, "content_block_delta", out, |w| {
            w.begin_object();
            w.key("type").str("content_block_delta");
            w.key("index").u64(index.into());
            w.key("delta").begin_object();
            w.key("type").str(kind);
            w.key(field).str(value);
            w.end_object().end_object();
        });
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let index = self.open(Open::Text, out, |w| {
            w.begin_object();
            w.key("type").str("text");
            w.key("text").str("").end_object();
        });
        self.delta(index, "text_delta", "text", text, out);
    }

    fn open_thinking(&mut self, out: &mut Vec<u8>) -> u32 {
        self.open(Open::Thinking, out, |w| {
            w.begin_object();
            w.key("type").str("thinking");
            w.key("thinking").str("");
            w.key("signature").str("").end_object();
        })
    }

    /// The end of a reasoning block: its signature closes the open thinking block (one is
    /// opened for a signature with no text, as Anthropic sends with `display: omitted`);
    /// encrypted reasoning is a `redacted_thinking` block of its own.
    fn end_reasoning(
        &mut self,
        signature: Option<&str>,
        redacted: Option<&str>,
        origin: Option<Origin>,
        out: &mut Vec<u8>,
    ) {
        if let Some(data) = redacted {
            self.close(out);
            let data = reasoning::tag(origin, Origin::Anthropic, data);
            self.open(Open::Thinking, out, |w| {
                w.begin_object();
                w.key("type").str("redacted_thinking");
                w.key("data").str(&data).end_object();
            });
        } else if let Some(sig) = signature {
            let index = self.open_thinking(out);
            let sig = reasoning::tag(origin, Origin::Anthropic, sig);
            self.delta(index, "signature_delta", "signature", &sig, out);
        }
        if matches!(self.open, Some((Open::Thinking, _))) {
            self.close(out);
        }
    }

    fn finish_message(&mut self, out: &mut Vec<u8>) {
        let Some(reason) = self.finish else { return };
        let reason = if self.refused {
            FinishReason::ContentFilter
        } else {
            reason
        };
        let usage = self.usage;
        emit(&mut self.json, "message_delta", out, |w| {
            w.begin_object();
            w.key("type").str("message_delta");
            w.key("delta").begin_object();
            w.key("stop_reason").str(stop_reason(reason));
            w.key("stop_sequence").null();
            w.end_object();
            w.key("usage");
            match &usage {
                // The SDK takes input and cache counts from message_delta when present.
                Some(u) => write_usage(w, u),
                None => {
                    w.begin_object().key("output_tokens").u64(0).end_object();
                }
            }
            w.end_object();
        });
        emit_bare("message_stop", out);
        self.done = true;
    }

    fn error(&mut self, e: &ErrorInfo, out: &mut Vec<u8>) {
        emit(&mut self.json, "error", out, |w| write_error(w, e));
        self.done = true;
    }
}

impl StreamEncoder for MessagesStreamEncoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        // Another family's own events have no Anthropic form.
        if self.done || matches!(ev, StreamEvent::Native { .. }) {
            return;
        }
        if !matches!(ev, StreamEvent::Start { .. } | StreamEvent::Error(_)) {
            // A stream that skipped Start still needs message_start before anything else.
            self.start("msg_unknown", "", out);
        }
        match ev {
            StreamEvent::Start { id, model, .. } => self.start(id, model, out),
            StreamEvent::Native { .. } => {}
            // Anthropic clients cannot ask for more than one choice.
            StreamEvent::TextDelta { choice, .. }
            | StreamEvent::ReasoningDelta { choice, .. }
            | StreamEvent::ReasoningEnd { choice, .. }
            | StreamEvent::RefusalDelta { choice, .. }
            | StreamEvent::ToolCallStart { choice, .. }
            | StreamEvent::ToolCallDelta { choice, .. }
            | StreamEvent::Finish { choice, .. }
                if *choice != 0 => {}
            StreamEvent::TextDelta { text, .. } => self.text(text, out),
            StreamEvent::RefusalDelta { text, .. } => {
                self.refused = true;
                self.text(text, out);
            }
            StreamEvent::ReasoningDelta { text, .. } => {
                let index = self.open_thinking(out);
                if !text.is_empty() {
                    self.delta(index, "thinking_delta", "thinking", text, out);
                }
            }
            StreamEvent::ReasoningEnd {
                signature,
                redacted,
                origin,
                ..
            } => self.end_reasoning(signature.as_deref(), redacted.as_deref(), *origin, out),
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => {
                self.open(Open::Tool(*index), out, |w| {
                    w.begin_object();
                    w.key("type").str("tool_use");
                    w.key("id").str(id);
                    w.key("name").str(name);
                    w.key("input").begin_object().end_object().end_object();
                });
            }
            StreamEvent::ToolCallDelta {
                index, arguments, ..
            } => {
                let block = match self.open {
                    Some((Open::Tool(open), block)) if open == *index => Some(block),
                    _ => self
                        .tool_blocks
                        .iter()
                        .find(|(tool, _)| tool == index)
                        .map(|(_, block)| *block),
                };
                if let Some(block) = block {
                    self.delta(block, "input_json_delta", "partial_json", arguments, out);
                }
            }
            StreamEvent::Finish { reason, .. } => {
                self.close(out);
                self.finish = Some(*reason);
                if self.usage.is_some() {
                    self.finish_message(out);
                }
            }
            StreamEvent::Usage(u) => {
                self.usage = Some(*u);
                self.finish_message(out);
            }
            StreamEvent::Error(e) => self.error(e, out),
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if self.finish.is_some() {
            self.finish_message(out);
        } else {
            let e = ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                "the provider's stream ended before the answer was complete",
            );
            self.error(&e, out);
        }
    }
}

#[derive(Deserialize)]
struct WireStart {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Every Anthropic stream event in one flat shape; fields an event lacks stay empty.
#[derive(Deserialize)]
struct WireEvent {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: Option<WireStart>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    content_block: Option<WireBlock>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireErrorObject>,
}

/// An Anthropic provider's SSE stream to IR events. Anthropic reports no creation time, so
/// `Start.created` is 0 for the caller to stamp.
pub struct MessagesStreamDecoder {
    framer: SseFramer,
    /// Content-block index to IR tool-call index, for tool_use blocks.
    tool_blocks: Vec<(u64, u32)>,
    tools: u32,
    /// The open thinking block's content-block index and the signature it got so far.
    thinking: Option<(u64, String)>,
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
    finished: bool,
    done: bool,
}

impl MessagesStreamDecoder {
    pub fn new(max_frame: usize) -> Self {
        MessagesStreamDecoder {
            framer: SseFramer::new(max_frame),
            tool_blocks: Vec::new(),
            tools: 0,
            thinking: None,
            input: 0,
            cache_read: 0,
            cache_write: 0,
            output: 0,
            finished: false,
            done: false,
        }
    }

    fn take_usage(&mut self, u: &WireUsage) {
        self.input = u.input_tokens.unwrap_or(self.input);
        self.cache_read = u.cache_read_input_tokens.unwrap_or(self.cache_read);
        self.cache_write = u.cache_creation_input_tokens.unwrap_or(self.cache_write);
        self.output = u.output_tokens.unwrap_or(self.output);
    }

    fn usage(&self) -> StreamEvent {
        StreamEvent::Usage(usage_from(
            self.input,
            self.cache_read,
            self.cache_write,
            self.output,
        ))
    }

    fn handle(&mut self, ev: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        if self.done || ev.data.trim().is_empty() {
            return Ok(());
        }
        if ev.raw {
            if let Some(e) = crate::wire::stray_error(&ev.data) {
                out.push(StreamEvent::Error(e));
                self.done = true;
            }
            return Ok(());
        }
        let name = ev.event.unwrap_or_default();
        let wire: WireEvent = serde_json::from_str(&ev.data)
            .map_err(|e| WireError::upstream(format!("unreadable Anthropic stream event: {e}")))?;
        let kind = if wire.kind.is_empty() {
            name
        } else {
            wire.kind
        };
        match kind.as_str() {
            "error" => {
                let error = wire.error.unwrap_or_default();
                let (status, kind) = error_status(&error.kind);
                let message = if error.message.is_empty() {
                    format!("the Anthropic provider reported {}", error.kind)
                } else {
                    error.message
                };
                out.push(StreamEvent::Error(ErrorInfo::new(status, kind, message)));
                self.done = true;
            }
            "message_start" => {
                let msg = wire.message.ok_or_else(|| {
                    WireError::upstream("an Anthropic message_start without a message")
                })?;
                if let Some(u) = &msg.usage {
                    self.take_usage(u);
                }
                out.push(StreamEvent::Start {
                    id: msg.id,
                    model: msg.model,
                    created: 0,
                });
            }
            "content_block_start" => {
                let (Some(index), Some(block)) = (wire.index, wire.content_block) else {
                    return Err(WireError::upstream(
                        "an Anthropic content_block_start without index or block",
                    ));
                };
                match block.kind.as_str() {
                    "text" => {
                        if let Some(text) = block.text.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta { choice: 0, text });
                        }
                    }
                    "tool_use" => {
                        let tool = self.tools;
                        self.tools += 1;
                        self.tool_blocks.push((index, tool));
                        out.push(StreamEvent::ToolCallStart {
                            choice: 0,
                            index: tool,
                            id: block.id.unwrap_or_default(),
                            name: block.name.unwrap_or_default(),
                        });
                        // The input normally streams as deltas after an empty `{}`.
                        if let Some(Value::Object(input)) = &block.input {
                            if !input.is_empty() {
                                out.push(StreamEvent::ToolCallDelta {
                                    choice: 0,
                                    index: tool,
                                    arguments: Value::Object(input.clone()).to_string(),
                                });
                            }
                        }
                    }
                    "thinking" => {
                        if let Some(text) = block.thinking.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::ReasoningDelta { choice: 0, text });
                        }
                        self.thinking = Some((index, block.signature.unwrap_or_default()));
                    }
                    "redacted_thinking" => out.push(StreamEvent::ReasoningEnd {
                        choice: 0,
                        signature: None,
                        redacted: block.data,
                        id: None,
                        origin: Some(Origin::Anthropic),
                    }),
                    // Server-tool blocks have no IR form.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let Some(delta) = wire.delta else {
                    return Err(WireError::upstream(
                        "an Anthropic content_block_delta without a delta",
                    ));
                };
                match delta.kind.as_str() {
                    "text_delta" => {
                        if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta { choice: 0, text });
                        }
                    }
                    "input_json_delta" => {
                        let tool = self
                            .tool_blocks
                            .iter()
                            .find(|(block, _)| Some(*block) == wire.index)
                            .map(|(_, tool)| *tool);
                        if let (Some(index), Some(arguments)) =
                            (tool, delta.partial_json.filter(|j| !j.is_empty()))
                        {
                            out.push(StreamEvent::ToolCallDelta {
                                choice: 0,
                                index,
                                arguments,
                            });
                        }
                    }
                    "thinking_delta" => {
                        if let Some(text) = delta.thinking.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::ReasoningDelta { choice: 0, text });
                        }
                    }
                    "signature_delta" => {
                        if let (Some((_, sig)), Some(part)) = (&mut self.thinking, delta.signature)
                        {
                            sig.push_str(&part);
                        }
                    }
                    // citations_delta and later kinds: no IR form.
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some((index, sig)) = self.thinking.take() {
                    if Some(index) == wire.index {
                        out.push(StreamEvent::ReasoningEnd {
                            choice: 0,
                            signature: (!sig.is_empty()).then_some(sig),
                            redacted: None,
                            id: None,
                            origin: Some(Origin::Anthropic),
                        });
                    } else {
                        self.thinking = Some((index, sig));
                    }
                }
            }
            "message_delta" => {
                if let Some(u) = &wire.usage {
                    self.take_usage(u);
                }
                if let Some(reason) = wire.delta.and_then(|d| d.stop_reason) {
                    if !self.finished {
                        self.finished = true;
                        out.push(StreamEvent::Finish {
                            choice: 0,
                            reason: finish_reason(&reason),
                        });
                    }
                }
            }
            "message_stop" => {
                out.push(self.usage());
                self.done = true;
            }
            // ping, and event types Anthropic may add later.
            _ => {}
        }
        Ok(())
    }
}

impl StreamDecoder for MessagesStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut events = Vec::new();
        self.framer.push(chunk, &mut events)?;
        for ev in events {
            self.handle(ev, out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut events = Vec::new();
        self.framer.finish(&mut events)?;
        for ev in events {
            self.handle(ev, out)?;
        }
        // Finished but cut before message_stop: the usage is known, so still report it. A
        // stream without Finish is left for the client encoder to turn into an error.
        if !self.done && self.finished {
            out.push(self.usage());
            self.done = true;
        }
        Ok(())
    }
}
