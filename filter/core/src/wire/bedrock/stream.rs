//! Bedrock's ConverseStream to IR events: AWS event-stream frames (CRC-checked by the framer),
//! each a JSON event or an exception. Reasoning blocks become reasoning deltas closed at their
//! signature or block end; for structured output the forced tool's input streams as text.

use super::provider::*;
use crate::ir::*;
use crate::stream::eventstream::{EventStreamFramer, Message as Frame};
use crate::wire::WireError;
use serde_json::Value;

/// Turns ConverseStream's event-stream messages into IR events.
pub struct StreamDecoder {
    framer: EventStreamFramer,
    model: String,
    created: u64,
    started: bool,
    /// An exception ended the stream; anything after it is ignored.
    done: bool,
    /// Converse content-block index → IR tool-call index, for tool-use blocks.
    tool_blocks: Vec<(u64, u32)>,
    /// Structured output: the forced tool's input is the answer's text.
    structured: bool,
    /// The content block of the forced tool, once started.
    structured_block: Option<u64>,
    /// The open reasoning block (content-block index), closed by its signature or its end.
    reasoning_block: Option<u64>,
    origin: Option<Origin>,
}

impl StreamDecoder {
    pub fn new(req: &ChatRequest, max_frame: usize, created: u64) -> Self {
        StreamDecoder {
            framer: EventStreamFramer::new(max_frame),
            model: req.model.clone(),
            created,
            started: false,
            done: false,
            tool_blocks: Vec::new(),
            structured: structured_output(req).is_some(),
            structured_block: None,
            reasoning_block: None,
            origin: reasoning_origin(&req.model),
        }
    }

    fn end_reasoning(
        &mut self,
        signature: Option<String>,
        redacted: Option<String>,
        out: &mut Vec<StreamEvent>,
    ) {
        if self.reasoning_block.take().is_some() || signature.is_some() || redacted.is_some() {
            out.push(StreamEvent::ReasoningEnd {
                choice: 0,
                signature,
                redacted,
                id: None,
                origin: self.origin,
            });
        }
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: response_id(self.created),
                model: self.model.clone(),
                created: self.created,
            });
        }
    }

    fn message(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        if self.done {
            return Ok(());
        }
        match frame.header_str(":message-type") {
            Some("event") => self.event(frame, out),
            Some("exception") => {
                let kind = frame.header_str(":exception-type").unwrap_or_default();
                let message = serde_json::from_slice::<Value>(&frame.payload)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| format!("the provider's stream failed: {kind}"));
                out.push(StreamEvent::Error(exception_info(kind, message)));
                self.done = true;
                Ok(())
            }
            Some("error") => {
                let code = frame.header_str(":error-code").unwrap_or("error");
                let message = frame.header_str(":error-message").unwrap_or(code);
                out.push(StreamEvent::Error(ErrorInfo::new(
                    502,
                    ErrorKind::Upstream,
                    message.to_string(),
                )));
                self.done = true;
                Ok(())
            }
            // Unknown message types are for newer clients to understand, not us to fail on.
            _ => Ok(()),
        }
    }

    fn event(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let event = frame.header_str(":event-type").unwrap_or_default();
        let payload = || {
            serde_json::from_slice::<Value>(&frame.payload)
                .map_err(|e| WireError::upstream(format!("invalid {event} event: {e}")))
        };
        match event {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                let v = payload()?;
                self.start(out);
                if let Some(tu) = v.pointer("/start/toolUse") {
                    let block = v
                        .get("contentBlockIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let name = tu.get("name").and_then(Value::as_str);
                    if self.structured && name == Some(STRUCTURED_TOOL) {
                        self.structured_block = Some(block);
                        return Ok(());
                    }
                    let index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                    self.tool_blocks.push((block, index));
                    let field = |k: &str| tu.get(k).and_then(Value::as_str).unwrap_or_default();
                    out.push(StreamEvent::ToolCallStart {
                        choice: 0,
                        index,
                        id: field("toolUseId").to_string(),
                        name: field("name").to_string(),
                    });
                }
            }
            "contentBlockDelta" => {
                let v = payload()?;
                self.start(out);
                let block = v
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(r) = v.pointer("/delta/reasoningContent") {
                    let str_at = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                    if let Some(text) = str_at("text").filter(|t| !t.is_empty()) {
                        self.reasoning_block = Some(block);
                        out.push(StreamEvent::ReasoningDelta { choice: 0, text });
                    }
                    let signature = str_at("signature").filter(|s| !s.is_empty());
                    let redacted = str_at("redactedContent");
                    if signature.is_some() || redacted.is_some() {
                        self.end_reasoning(signature, redacted, out);
                    }
                    return Ok(());
                }
                if self.structured_block == Some(block) {
                    if let Some(input) = v.pointer("/delta/toolUse/input").and_then(Value::as_str) {
                        if !input.is_empty() {
                            out.push(StreamEvent::TextDelta {
                                choice: 0,
                                text: input.to_string(),
                            });
                        }
                    }
                    return Ok(());
                }
                if let Some(text) = v.pointer("/delta/text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta {
                            choice: 0,
                            text: text.to_string(),
                        });
                    }
                } else if let Some(input) =
                    v.pointer("/delta/toolUse/input").and_then(Value::as_str)
                {
                    let block = v
                        .get("contentBlockIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let index = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| *b == block)
                        .map(|(_, i)| *i)
                        .ok_or_else(|| {
                            WireError::upstream("tool input arrived for a block never started")
                        })?;
                    if !input.is_empty() {
                        out.push(StreamEvent::ToolCallDelta {
                            choice: 0,
                            index,
                            arguments: input.to_string(),
                        });
                    }
                }
            }
            "contentBlockStop" => {
                let v = payload()?;
                let block = v.get("contentBlockIndex").and_then(Value::as_u64);
                if block.is_some() && block == self.reasoning_block {
                    self.end_reasoning(None, None, out);
                }
            }
            "messageStop" => {
                let v = payload()?;
                self.start(out);
                self.end_reasoning(None, None, out);
                let stop = match v.get("stopReason").and_then(Value::as_str) {
                    Some("tool_use")
                        if self.structured_block.is_some() && self.tool_blocks.is_empty() =>
                    {
                        Some("end_turn")
                    }
                    other => other,
                };
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: finish_reason(stop, !self.tool_blocks.is_empty()),
                });
            }
            "metadata" => {
                let v = payload()?;
                if let Some(usage) = v.get("usage") {
                    let usage: TokenUsage = serde_json::from_value(usage.clone())
                        .map_err(|e| WireError::upstream(format!("invalid usage: {e}")))?;
                    out.push(StreamEvent::Usage(usage.ir()));
                }
            }
            // Event types newer than this code carry nothing to forward.
            _ => {}
        }
        Ok(())
    }
}

/// The status a client should see for a ConverseStream exception event.
fn exception_info(kind: &str, message: String) -> ErrorInfo {
    let status = match kind {
        "throttlingException" => 429,
        "serviceUnavailableException" => 503,
        "validationException" => 400,
        "modelTimeoutException" => 504,
        // internalServerException, modelStreamErrorException and anything newer.
        _ => 502,
    };
    ErrorInfo::new(status, ErrorInfo::kind_for_status(status), message)
}

impl crate::wire::StreamDecoder for StreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut frames = Vec::new();
        let framed = self.framer.push(chunk, &mut frames);
        // Messages completed before a framing error are still delivered.
        for frame in &frames {
            self.message(frame, out)?;
        }
        framed.map_err(WireError::from)
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        self.framer.finish().map_err(WireError::from)
    }
}
