//! Ollama's NDJSON streams in both directions: IR events to `/api/chat` or `/api/generate`
//! lines for Ollama clients, and an Ollama provider's `/api/chat` lines back to IR events.

use super::provider::{call_id, created_of, error_message, finish_of, usage_of, WireChat};
use super::{done_reason, write_done, write_error, write_head};
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
    fn progress_line(&mut self, text: &str, calls: &[ToolCall], out: &mut Vec<u8>) {
        self.json.clear();
        write_head(
            &mut self.json,
            &self.model,
            self.created,
            text,
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
            | StreamEvent::ToolCallStart { choice, .. }
            | StreamEvent::ToolCallDelta { choice, .. }
            | StreamEvent::Finish { choice, .. }
                if *choice != 0 => {}
            StreamEvent::TextDelta { text, .. } => {
                if !text.is_empty() {
                    self.progress_line(text, &[], out);
                }
            }
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
                    self.progress_line("", &calls, out);
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
    done: bool,
}

impl ChatStreamDecoder {
    pub fn new(max_frame: usize, created: u64) -> Self {
        ChatStreamDecoder {
            framer: NdjsonFramer::new(max_frame),
            created,
            started: false,
            tools: 0,
            done: false,
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
        let message = wire.message.as_ref();
        let text = message
            .and_then(|m| m.content.as_deref())
            .or(wire.response.as_deref())
            .unwrap_or_default();
        if !text.is_empty() {
            out.push(StreamEvent::TextDelta {
                choice: 0,
                text: text.to_string(),
            });
        }
        for call in message.map(|m| m.tool_calls.as_slice()).unwrap_or_default() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testutil::splits;
    use serde_json::{json, Value};

    /// Real-shaped `/api/chat` stream lines: text, a whole tool call, then the done line.
    const RECORDED: &str = concat!(
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.1Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Checking Zürich\"},\"done\":false}\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.2Z\",\"message\":{\"role\":\"assistant\",\"content\":\" 🦀\"},\"done\":false}\r\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.3Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"index\":0,\"name\":\"get_weather\",\"arguments\":{\"city\":\"Zürich\"}}}]},\"done\":false}\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.4Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":885095291,\"load_duration\":3753500,\"prompt_eval_count\":122,\"prompt_eval_duration\":328493000,\"eval_count\":33,\"eval_duration\":552222000}\n",
    );

    fn decode_chunks(chunks: &[Vec<u8>]) -> Vec<StreamEvent> {
        let mut d = ChatStreamDecoder::new(1 << 16, 77);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        d.end(&mut out).unwrap();
        out
    }

    #[test]
    fn decodes_a_recorded_stream_identically_in_every_split() {
        let whole = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        assert_eq!(
            whole,
            vec![
                StreamEvent::Start {
                    id: "ollama-77".into(),
                    model: "llama3.2".into(),
                    created: 1_721_680_408
                },
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "Checking Zürich".into()
                },
                StreamEvent::TextDelta {
                    choice: 0,
                    text: " 🦀".into()
                },
                StreamEvent::ToolCallStart {
                    choice: 0,
                    index: 0,
                    id: "call_77_0".into(),
                    name: "get_weather".into()
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: "{\"city\":\"Zürich\"}".into()
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ToolCalls
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 122,
                    output_tokens: 33,
                    cached_input_tokens: 0
                }),
            ]
        );
        for chunks in splits(RECORDED.as_bytes(), 200) {
            assert_eq!(decode_chunks(&chunks), whole);
        }
    }

    #[test]
    fn decoder_errors() {
        let got = decode_chunks(&[b"{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"out of memory\"}\n{\"done\":true}".to_vec()]);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[2],
            StreamEvent::Error(ErrorInfo::new(502, ErrorKind::Upstream, "out of memory"))
        );
        let mut d = ChatStreamDecoder::new(1 << 10, 0);
        assert!(matches!(
            d.feed(b"not json\n", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
        let mut d = ChatStreamDecoder::new(4, 0);
        assert!(matches!(
            d.feed(b"{\"model\":1}", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
        // A truncated stream yields no Finish; the client encoder reports it.
        let got = decode_chunks(&[RECORDED.lines().next().unwrap().as_bytes().to_vec()]);
        assert_eq!(got.len(), 2);
    }

    fn encode_all(events: &[StreamEvent], generate: bool) -> Vec<Value> {
        let mut enc = ChatStreamEncoder::new(
            &ChatRequest {
                model: "client".into(),
                ..Default::default()
            },
            generate,
        );
        let mut out = Vec::new();
        for ev in events {
            enc.event(ev, &mut out);
        }
        enc.end(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn decoder_to_encoder_reproduces_an_ollama_stream() {
        let events = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        let lines = encode_all(&events, false);
        let original: Vec<Value> = RECORDED
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), original.len());
        for (got, want) in lines.iter().zip(&original) {
            assert_eq!(got["model"], want["model"]);
            assert_eq!(got["done"], want["done"]);
            assert_eq!(got["message"]["content"], want["message"]["content"]);
            assert_eq!(got["created_at"], json!("2024-07-22T20:33:28Z"));
        }
        assert_eq!(
            lines[2]["message"]["tool_calls"][0]["function"]["arguments"],
            json!({"city": "Zürich"})
        );
        assert_eq!(
            lines[2]["message"]["tool_calls"][0]["function"]["name"],
            json!("get_weather")
        );
        let last = &lines[3];
        assert_eq!(
            (
                last["done_reason"].clone(),
                last["prompt_eval_count"].clone(),
                last["eval_count"].clone()
            ),
            (json!("stop"), json!(122), json!(33))
        );
    }

    #[test]
    fn encoder_generate_errors_and_truncation() {
        let lines = encode_all(
            &[
                StreamEvent::Start {
                    id: "x".into(),
                    model: String::new(),
                    created: 0,
                },
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "hi".into(),
                },
                StreamEvent::TextDelta {
                    choice: 2,
                    text: "other choice".into(),
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Length,
                },
            ],
            true,
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            json!({"model": "client", "created_at": "1970-01-01T00:00:00Z", "response": "hi", "done": false})
        );
        assert_eq!(lines[1]["done"], json!(true));
        assert_eq!(lines[1]["done_reason"], json!("length"));
        assert_eq!(lines[1]["response"], json!(""));
        assert_eq!(lines[1]["eval_count"], json!(0));

        let lines = encode_all(
            &[StreamEvent::TextDelta {
                choice: 0,
                text: "partial".into(),
            }],
            false,
        );
        assert_eq!(
            lines
                .last()
                .unwrap()
                .get("error")
                .and_then(Value::as_str)
                .map(|s| s.contains("ended")),
            Some(true)
        );

        let lines = encode_all(
            &[
                StreamEvent::Error(ErrorInfo::new(429, ErrorKind::RateLimited, "slow down")),
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "late".into(),
                },
            ],
            false,
        );
        assert_eq!(lines, vec![json!({"error": "slow down"})]);

        // Tool-call fragments are joined and sent whole when the choice finishes.
        let lines = encode_all(
            &[
                StreamEvent::ToolCallStart {
                    choice: 0,
                    index: 0,
                    id: "a".into(),
                    name: "f".into(),
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: "{\"x\":".into(),
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: "[1]}".into(),
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ToolCalls,
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 1,
                    output_tokens: 2,
                    cached_input_tokens: 0,
                }),
            ],
            false,
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["message"]["tool_calls"],
            json!([{"id": "a", "function": {"index": 0, "name": "f", "arguments": {"x": [1]}}}])
        );
        assert_eq!(lines[1]["done_reason"], json!("stop"));
    }
}
