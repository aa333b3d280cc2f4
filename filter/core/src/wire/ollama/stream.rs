//! Ollama's NDJSON streams in both directions: IR events to `/api/chat` or `/api/generate`
//! lines for Ollama clients, and an Ollama provider's `/api/chat` lines back to IR events.

use super::client::{done_reason, write_done, write_error, write_head};
use super::provider::{
    call_id, created_of, error_message, finish_of, thinking_of, usage_of, WireChat,
};
use crate::ir::*;
use crate::stream::ndjson::NdjsonFramer;
use crate::wire::json::JsonWriter;
use crate::wire::{args, StreamDecoder, StreamEncoder, WireError};

/// IR events to Ollama NDJSON. Ollama sends each tool call whole, with its arguments as an
/// object, so calls are buffered until the choice finishes; the `done` line waits for usage.
pub struct ChatStreamEncoder {
    generate: bool,
    model: String,
    created: u64,
    calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
    done: bool,
    /// Each line's JSON; kept to reuse its allocation.
    json: JsonWriter,
}

impl ChatStreamEncoder {
    pub fn new(req: &ChatRequest, generate: bool) -> Self {
        ChatStreamEncoder {
            generate,
            model: req.model.clone(),
            created: 0,
            calls: Vec::new(),
            finish: None,
            done: false,
            json: JsonWriter::with_capacity(256),
        }
    }

    /// Ends the line written into `self.json`.
    fn push_line(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.json.as_bytes());
        out.push(b'\n');
    }

    /// A line with the head and `done: false`.
    fn progress_line(&mut self, text: &str, thinking: &str, calls: &[ToolCall], out: &mut Vec<u8>) {
        self.json.clear();
        write_head(
            &mut self.json,
            &self.model,
            self.created,
            text,
            thinking,
            self.generate,
            calls,
        );
        self.json.key("done").bool(false).end_object();
        self.push_line(out);
    }

    fn done_line(&mut self, usage: Option<&Usage>, out: &mut Vec<u8>) {
        let reason = self.finish.unwrap_or(FinishReason::Stop);
        self.json.clear();
        write_head(
            &mut self.json,
            &self.model,
            self.created,
            "",
            "",
            self.generate,
            &[],
        );
        write_done(&mut self.json, done_reason(reason), usage);
        self.json.end_object();
        self.push_line(out);
        self.done = true;
    }

    fn error_line(&mut self, message: &str, out: &mut Vec<u8>) {
        // The ollama client raises ResponseError on any line with an `error` key.
        self.json.clear();
        write_error(&mut self.json, message);
        self.push_line(out);
        self.done = true;
    }
}

impl StreamEncoder for ChatStreamEncoder {
    fn event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        match ev {
            StreamEvent::Start { model, created, .. } => {
                if !model.is_empty() {
                    model.clone_into(&mut self.model);
                }
                self.created = *created;
            }
            // Ollama clients cannot ask for more than one choice.
            StreamEvent::TextDelta { choice, .. }
            | StreamEvent::RefusalDelta { choice, .. }
            | StreamEvent::ReasoningDelta { choice, .. }
            | StreamEvent::ReasoningEnd { choice, .. }
            | StreamEvent::ToolCallStart { choice, .. }
            | StreamEvent::ToolCallDelta { choice, .. }
            | StreamEvent::Finish { choice, .. }
                if *choice != 0 => {}
            // Ollama has no refusal field: a refusal is the answer's text.
            StreamEvent::TextDelta { text, .. } | StreamEvent::RefusalDelta { text, .. } => {
                if !text.is_empty() {
                    self.progress_line(text, "", &[], out);
                }
            }
            StreamEvent::ReasoningDelta { text, .. } => {
                if !text.is_empty() {
                    self.progress_line("", text, &[], out);
                }
            }
            // Signatures and another family's own events have no Ollama form.
            StreamEvent::ReasoningEnd { .. } | StreamEvent::Native { .. } => {}
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => {
                let slot = *index as usize;
                if self.calls.len() <= slot {
                    self.calls.resize(
                        slot + 1,
                        ToolCall {
                            id: String::new(),
                            name: String::new(),
                            arguments: String::new(),
                        },
                    );
                }
                if let Some(call) = self.calls.get_mut(slot) {
                    id.clone_into(&mut call.id);
                    name.clone_into(&mut call.name);
                }
            }
            StreamEvent::ToolCallDelta {
                index, arguments, ..
            } => {
                if let Some(call) = self.calls.get_mut(*index as usize) {
                    call.arguments.push_str(arguments);
                }
            }
            StreamEvent::Finish { reason, .. } => {
                self.finish = Some(*reason);
                // `/api/generate` has no tool calls to report.
                let calls = std::mem::take(&mut self.calls);
                if !calls.is_empty() && !self.generate {
                    self.progress_line("", "", &calls, out);
                }
            }
            StreamEvent::Usage(u) => {
                if self.finish.is_some() {
                    self.done_line(Some(u), out);
                }
            }
            StreamEvent::Error(e) => self.error_line(&e.message, out),
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if self.finish.is_some() {
            self.done_line(None, out);
        } else {
            self.error_line(
                "the provider's stream ended before the answer was complete",
                out,
            );
        }
    }
}

/// An Ollama provider's NDJSON stream to IR events. Ollama gives no response id and gives the
/// time per line; the id and tool-call ids derive from `created` so they are deterministic.
pub struct ChatStreamDecoder {
    framer: NdjsonFramer,
    created: u64,
    started: bool,
    tools: u32,
    /// Thinking went out and nothing else has yet: the reasoning block is open.
    thinking: bool,
    done: bool,
}

impl ChatStreamDecoder {
    pub fn new(max_frame: usize, created: u64) -> Self {
        ChatStreamDecoder {
            framer: NdjsonFramer::new(max_frame),
            created,
            started: false,
            tools: 0,
            thinking: false,
            done: false,
        }
    }

    /// The reasoning block ends when anything else comes.
    fn end_thinking(&mut self, out: &mut Vec<StreamEvent>) {
        if std::mem::take(&mut self.thinking) {
            out.push(StreamEvent::ReasoningEnd {
                choice: 0,
                signature: None,
                redacted: None,
                id: None,
                origin: None,
            });
        }
    }

    fn handle(&mut self, line: &str, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        if self.done {
            return Ok(());
        }
        let wire: WireChat = serde_json::from_str(line)
            .map_err(|e| WireError::upstream(format!("unreadable Ollama stream line: {e}")))?;
        if let Some(error) = &wire.error {
            out.push(StreamEvent::Error(ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                error_message(error),
            )));
            self.done = true;
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: format!("ollama-{}", self.created),
                model: wire.model.clone(),
                created: created_of(&wire, self.created),
            });
        }
        if let Some(thinking) = thinking_of(&wire) {
            self.thinking = true;
            out.push(StreamEvent::ReasoningDelta {
                choice: 0,
                text: thinking.to_string(),
            });
        }
        let message = wire.message.as_ref();
        let text = message
            .and_then(|m| m.content.as_deref())
            .or(wire.response.as_deref())
            .unwrap_or_default();
        let calls = message.map(|m| m.tool_calls.as_slice()).unwrap_or_default();
        if !text.is_empty() || !calls.is_empty() || wire.done {
            self.end_thinking(out);
        }
        if !text.is_empty() {
            out.push(StreamEvent::TextDelta {
                choice: 0,
                text: text.to_string(),
            });
        }
        for call in calls {
            let index = self.tools;
            self.tools += 1;
            out.push(StreamEvent::ToolCallStart {
                choice: 0,
                index,
                id: call_id(call, self.created, index),
                name: call.function.name.clone(),
            });
            out.push(StreamEvent::ToolCallDelta {
                choice: 0,
                index,
                arguments: args::text(&call.function.arguments),
            });
        }
        if wire.done {
            out.push(StreamEvent::Finish {
                choice: 0,
                reason: finish_of(wire.done_reason.as_deref(), self.tools > 0),
            });
            out.push(StreamEvent::Usage(usage_of(&wire)));
            self.done = true;
        }
        Ok(())
    }
}

impl StreamDecoder for ChatStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut lines = Vec::new();
        self.framer.push(chunk, &mut lines)?;
        for line in &lines {
            self.handle(line, out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut lines = Vec::new();
        self.framer.finish(&mut lines)?;
        for line in &lines {
            self.handle(line, out)?;
        }
        Ok(())
    }
}
