//! Gemini's `streamGenerateContent?alt=sse` stream to IR events: every SSE `data` is a whole
//! GenerateContentResponse, decoded with the provider's response types. Thought summaries are
//! reasoning deltas; a reasoning block ends at a thought signature or when the answer proper
//! starts. An `{"error": ...}` written outside SSE framing ends the stream with that error.

use std::collections::BTreeMap;

use super::provider::*;
use crate::ir::*;
use crate::stream::sse::{SseEvent, SseFramer};
use crate::wire::WireError;

/// Turns `streamGenerateContent?alt=sse` into IR events. Every SSE `data` is a whole
/// GenerateContentResponse; Gemini sends each function call whole, in one chunk.
pub struct StreamDecoder {
    framer: SseFramer,
    model: String,
    created: u64,
    /// The answer id, once the first chunk has named it.
    id: Option<String>,
    /// An error ended the stream; anything after it is ignored.
    done: bool,
    /// Per candidate index.
    choices: BTreeMap<u32, ChoiceState>,
    calls_made: u32,
    /// The latest `usageMetadata`: Gemini's counts are cumulative, so the last one is the total.
    usage: Option<Usage>,
}

struct ChoiceState {
    tool_calls: u32,
    finished: bool,
    /// A reasoning block is open (thought text went out, no signature yet).
    reasoning: bool,
}

impl StreamDecoder {
    pub fn new(req: &ChatRequest, max_frame: usize, created: u64) -> Self {
        StreamDecoder {
            framer: SseFramer::new(max_frame),
            model: req.model.clone(),
            created,
            id: None,
            done: false,
            choices: BTreeMap::new(),
            calls_made: 0,
            usage: None,
        }
    }

    fn choice(&mut self, index: u32) -> &mut ChoiceState {
        self.choices.entry(index).or_insert(ChoiceState {
            tool_calls: 0,
            finished: false,
            reasoning: false,
        })
    }

    /// Closes choice `index`'s reasoning block, with `signature` if the part that ends it has one.
    fn end_reasoning(&mut self, index: u32, signature: Option<String>, out: &mut Vec<StreamEvent>) {
        let c = self.choice(index);
        if c.reasoning || signature.is_some() {
            c.reasoning = false;
            out.push(StreamEvent::ReasoningEnd {
                choice: index,
                signature,
                redacted: None,
                id: None,
                origin: Some(Origin::Gemini),
            });
        }
    }

    fn event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
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
        let chunk: GenerateContentResponse = serde_json::from_str(&ev.data)
            .map_err(|e| WireError::upstream(format!("invalid stream chunk: {e}")))?;
        if let Some(err) = &chunk.error {
            out.push(StreamEvent::Error(err.info(200)));
            self.done = true;
            return Ok(());
        }
        let id = match &self.id {
            Some(id) => id.clone(),
            None => {
                let id = response_id(&chunk, self.created);
                self.id = Some(id.clone());
                out.push(StreamEvent::Start {
                    id: id.clone(),
                    model: chunk
                        .model_version
                        .clone()
                        .unwrap_or_else(|| self.model.clone()),
                    created: self.created,
                });
                id
            }
        };
        let blocked = chunk
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some());
        if blocked && chunk.candidates.is_empty() {
            let c = self.choice(0);
            if !c.finished {
                c.finished = true;
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ContentFilter,
                });
            }
        }
        for (pos, cand) in chunk.candidates.iter().enumerate() {
            let index = cand
                .index
                .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
            for part in cand.content.iter().flat_map(|c| c.parts.iter()) {
                let signature = part.thought_signature.clone().filter(|s| !s.is_empty());
                if part.thought {
                    if let Some(t) = part.text.as_deref().filter(|t| !t.is_empty()) {
                        self.choice(index).reasoning = true;
                        out.push(StreamEvent::ReasoningDelta {
                            choice: index,
                            text: t.to_string(),
                        });
                    }
                    if signature.is_some() {
                        self.end_reasoning(index, signature, out);
                    }
                    continue;
                }
                self.end_reasoning(index, signature, out);
                if let Some(call) = &part.function_call {
                    let call_id = tool_call_id(call, &id, self.calls_made);
                    self.calls_made = self.calls_made.saturating_add(1);
                    let c = self.choice(index);
                    let n = c.tool_calls;
                    c.tool_calls = n.saturating_add(1);
                    out.push(StreamEvent::ToolCallStart {
                        choice: index,
                        index: n,
                        id: call_id,
                        name: call.name.clone(),
                    });
                    out.push(StreamEvent::ToolCallDelta {
                        choice: index,
                        index: n,
                        arguments: arguments_text(call),
                    });
                } else if let Some(t) = part.text.as_deref() {
                    if !t.is_empty() {
                        out.push(StreamEvent::TextDelta {
                            choice: index,
                            text: t.to_string(),
                        });
                    }
                }
            }
            if let Some(reason) = cand.finish_reason.as_deref() {
                self.end_reasoning(index, None, out);
                let c = self.choice(index);
                if !c.finished {
                    c.finished = true;
                    let reason = finish_reason(Some(reason), c.tool_calls > 0);
                    out.push(StreamEvent::Finish {
                        choice: index,
                        reason,
                    });
                }
            }
        }
        if let Some(u) = chunk.usage_metadata {
            self.usage = Some(u.ir());
        }
        Ok(())
    }
}

impl crate::wire::StreamDecoder for StreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut events = Vec::new();
        let framed = self.framer.push(chunk, &mut events);
        for ev in &events {
            self.event(ev, out)?;
        }
        framed.map_err(WireError::from)
    }

    /// Usage goes out last, after every Finish, as the IR's stream order requires; a stream
    /// that never finished gets none, and the client encoder reports it as cut short.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut events = Vec::new();
        let framed = self.framer.finish(&mut events);
        for ev in &events {
            self.event(ev, out)?;
        }
        framed?;
        if !self.done && self.choices.values().any(|c| c.finished) {
            if let Some(u) = self.usage.take() {
                out.push(StreamEvent::Usage(u));
            }
        }
        Ok(())
    }
}
