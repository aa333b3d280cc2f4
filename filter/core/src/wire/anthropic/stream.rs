//! Anthropic's Messages SSE stream in both directions: IR events to `event:`-named SSE for
//! Anthropic clients, and an Anthropic provider's SSE back to IR events.

use super::provider::{WireBlock, WireErrorObject, WireUsage};
use super::{error_status, finish_reason, stop_reason, usage_from, write_error};
use crate::ir::*;
use crate::stream::sse::{write_event, SseEvent, SseFramer};
use crate::wire::json::JsonWriter;
use crate::wire::{StreamDecoder, StreamEncoder, WireError};
use serde::Deserialize;
use serde_json::Value;

/// The block the encoder has open: text, or the tool call with this IR index.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text,
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

    fn finish_message(&mut self, out: &mut Vec<u8>) {
        let Some(reason) = self.finish else { return };
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
                Some(u) => super::write_usage(w, u),
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
        if self.done {
            return;
        }
        if !matches!(ev, StreamEvent::Start { .. } | StreamEvent::Error(_)) {
            // A stream that skipped Start still needs message_start before anything else.
            self.start("msg_unknown", "", out);
        }
        match ev {
            StreamEvent::Start { id, model, .. } => self.start(id, model, out),
            // Anthropic clients cannot ask for more than one choice.
            StreamEvent::TextDelta { choice, .. }
            | StreamEvent::ToolCallStart { choice, .. }
            | StreamEvent::ToolCallDelta { choice, .. }
            | StreamEvent::Finish { choice, .. }
                if *choice != 0 => {}
            StreamEvent::TextDelta { text, .. } => {
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
                    // Thinking and server-tool blocks have no IR form.
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
                    // thinking_delta, signature_delta, citations_delta: no IR form.
                    _ => {}
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
            // ping, content_block_stop, and event types Anthropic may add later.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testutil::splits;
    use serde_json::json;

    /// A real-shaped Anthropic stream: text, a tool call with split JSON, thinking noise, pings.
    const RECORDED: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":0,\"output_tokens\":2}}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check, Zürich 🦀\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Zür\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ich\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn decode_chunks(chunks: &[Vec<u8>]) -> Vec<StreamEvent> {
        let mut d = MessagesStreamDecoder::new(1 << 16);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        d.end(&mut out).unwrap();
        out
    }

    fn expected() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "msg_01".into(),
                model: "claude-sonnet-4-5".into(),
                created: 0,
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "Let me check, Zürich 🦀".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "toolu_01".into(),
                name: "get_weather".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "{\"city\": \"Zür".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "ich\"}".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 572,
                output_tokens: 89,
                cached_input_tokens: 100,
            }),
        ]
    }

    #[test]
    fn decodes_a_recorded_stream_identically_in_every_split() {
        let whole = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        assert_eq!(whole, expected());
        for chunks in splits(RECORDED.as_bytes(), 200) {
            assert_eq!(decode_chunks(&chunks), whole);
        }
    }

    #[test]
    fn stream_errors_and_truncation() {
        let s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\nevent: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let got = decode_chunks(&[s.as_bytes().to_vec()]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            StreamEvent::Error(ErrorInfo::new(503, ErrorKind::Unavailable, "Overloaded"))
        );

        // Finished but cut before message_stop: usage is still reported.
        let cut = RECORDED.split("event: message_stop").next().unwrap();
        let got = decode_chunks(&[cut.as_bytes().to_vec()]);
        assert_eq!(got, expected());

        let mut d = MessagesStreamDecoder::new(1 << 16);
        assert!(matches!(
            d.feed(b"data: {not json\n\n", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
        let mut d = MessagesStreamDecoder::new(8);
        assert!(matches!(
            d.feed(b"data: 0123456789", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
    }

    /// Parses SSE bytes into (event name, JSON data) pairs.
    fn parse_sse(bytes: &[u8]) -> Vec<(String, Value)> {
        let mut f = SseFramer::new(1 << 20);
        let mut evs = Vec::new();
        f.push(bytes, &mut evs).unwrap();
        f.finish(&mut evs).unwrap();
        evs.into_iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                let name = e.event.unwrap();
                assert_eq!(v["type"], json!(name), "event name and data type agree");
                (name, v)
            })
            .collect()
    }

    fn encode_all(events: &[StreamEvent]) -> Vec<u8> {
        let mut enc = MessagesStreamEncoder::new(&ChatRequest {
            model: "client-model".into(),
            ..Default::default()
        });
        let mut out = Vec::new();
        for ev in events {
            enc.event(ev, &mut out);
        }
        enc.end(&mut out);
        out
    }

    #[test]
    fn decoder_to_encoder_reproduces_the_sdk_event_order() {
        let events = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        let got = parse_sse(&encode_all(&events));
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(got[0].1["message"]["id"], json!("msg_01"));
        assert_eq!(got[0].1["message"]["model"], json!("claude-sonnet-4-5"));
        assert_eq!(
            got[0].1["message"]["usage"],
            json!({"input_tokens": 0, "output_tokens": 0})
        );
        assert_eq!(got[2].1["index"], json!(0));
        assert_eq!(
            got[2].1["content_block"],
            json!({"type": "text", "text": ""})
        );
        assert_eq!(
            got[3].1["delta"],
            json!({"type": "text_delta", "text": "Let me check, Zürich 🦀"})
        );
        assert_eq!(got[5].1["index"], json!(1));
        assert_eq!(
            got[5].1["content_block"],
            json!({"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}})
        );
        let args: String = got[6..8]
            .iter()
            .map(|(_, v)| v["delta"]["partial_json"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"city": "Zürich"})
        );
        assert_eq!(got[8].1["index"], json!(1));
        assert_eq!(
            got[9].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"input_tokens": 472, "output_tokens": 89, "cache_read_input_tokens": 100}})
        );
    }

    #[test]
    fn encoder_handles_missing_usage_errors_and_truncation() {
        // Finish without Usage: message_delta is emitted at end() with zero output tokens.
        let got = parse_sse(&encode_all(&[
            StreamEvent::Start {
                id: "m".into(),
                model: String::new(),
                created: 0,
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "a".into(),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "b".into(),
            },
            StreamEvent::TextDelta {
                choice: 1,
                text: "ignored".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Length,
            },
        ]));
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(got[0].1["message"]["model"], json!("client-model"));
        assert_eq!(got[6].1["delta"]["stop_reason"], json!("max_tokens"));
        assert_eq!(got[6].1["usage"], json!({"output_tokens": 0}));

        // Truncated: an error event, never a clean message_stop.
        let got = parse_sse(&encode_all(&[
            StreamEvent::Start {
                id: "m".into(),
                model: "x".into(),
                created: 0,
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "a".into(),
            },
        ]));
        assert_eq!(got.last().unwrap().0, "error");
        assert_eq!(got.last().unwrap().1["error"]["type"], json!("api_error"));

        // An error mid-stream ends it; later events are dropped.
        let got = parse_sse(&encode_all(&[
            StreamEvent::Start {
                id: "m".into(),
                model: "x".into(),
                created: 0,
            },
            StreamEvent::Error(ErrorInfo::new(429, ErrorKind::RateLimited, "slow down")),
            StreamEvent::TextDelta {
                choice: 0,
                text: "a".into(),
            },
        ]));
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[2].1,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        );

        // Interleaved tool-call deltas go to their own block.
        let got = parse_sse(&encode_all(&[
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "a".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 1,
                id: "b".into(),
                name: "g".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "{}".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4,
                cached_input_tokens: 0,
            }),
        ]));
        assert_eq!(got[0].1["message"]["id"], json!("msg_unknown"));
        let delta = got
            .iter()
            .find(|(n, _)| n == "content_block_delta")
            .unwrap();
        assert_eq!(delta.1["index"], json!(0));
        assert_eq!(got.last().unwrap().0, "message_stop");
    }
}
