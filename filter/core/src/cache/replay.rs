//! Converting between a complete IR answer and its stream form: a finished stream is collected
//! into a [`Response`] to store, and a stored [`Response`] is replayed as stream events.
//!
//! Both directions keep what a client can see (text, tool calls, finish reasons, usage, ids), so
//! an answer cached from a stream serves a non-streaming client and the reverse, in any protocol.

use crate::ir::{
    ChatResponse, Choice, FinishReason, Message, Part, Response, Role, StreamEvent, ToolCall,
};

/// The events a provider stream of `resp` would have produced, in stream order.
pub fn events(resp: &ChatResponse) -> Vec<StreamEvent> {
    let mut out = vec![StreamEvent::Start {
        id: resp.id.clone(),
        model: resp.model.clone(),
        created: resp.created,
    }];
    for c in &resp.choices {
        let text = c.message.joined_text();
        if !text.is_empty() {
            out.push(StreamEvent::TextDelta {
                choice: c.index,
                text,
            });
        }
        for (i, call) in c.message.tool_calls.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            out.push(StreamEvent::ToolCallStart {
                choice: c.index,
                index,
                id: call.id.clone(),
                name: call.name.clone(),
            });
            if !call.arguments.is_empty() {
                out.push(StreamEvent::ToolCallDelta {
                    choice: c.index,
                    index,
                    arguments: call.arguments.clone(),
                });
            }
        }
        out.push(StreamEvent::Finish {
            choice: c.index,
            reason: c.finish_reason,
        });
    }
    if let Some(u) = resp.usage {
        out.push(StreamEvent::Usage(u));
    }
    out
}

/// Collects a stream's events into the answer it amounts to, holding at most `max_bytes` of
/// text and arguments; past that, or on an error event, it gives up (the stream is not cached).
pub struct Collector {
    resp: ChatResponse,
    texts: Vec<String>,
    finishes: Vec<Option<FinishReason>>,
    bytes: usize,
    max_bytes: usize,
    started: bool,
    broken: bool,
}

impl std::fmt::Debug for Collector {
    // Leaves the collected text out: it is an answer, not something for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("bytes", &self.bytes)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// More choices than any provider returns; a stream claiming more is not cached.
const MAX_CHOICES: u32 = 16;
const MAX_TOOL_CALLS: u32 = 128;

impl Collector {
    pub fn new(max_bytes: usize) -> Self {
        Collector {
            resp: ChatResponse::default(),
            texts: Vec::new(),
            finishes: Vec::new(),
            bytes: 0,
            max_bytes,
            started: false,
            broken: false,
        }
    }

    fn choice(&mut self, index: u32) -> Option<usize> {
        if index >= MAX_CHOICES {
            self.broken = true;
            return None;
        }
        let i = index as usize;
        while self.resp.choices.len() <= i {
            let n = self.resp.choices.len() as u32;
            self.resp.choices.push(Choice {
                index: n,
                message: Message::new(Role::Assistant),
                finish_reason: FinishReason::Stop,
            });
            self.texts.push(String::new());
            self.finishes.push(None);
        }
        Some(i)
    }

    fn charge(&mut self, n: usize) -> bool {
        self.bytes = self.bytes.saturating_add(n);
        if self.bytes > self.max_bytes {
            self.broken = true;
        }
        !self.broken
    }

    pub fn event(&mut self, ev: &StreamEvent) {
        if self.broken {
            return;
        }
        match ev {
            StreamEvent::Start { id, model, created } => {
                self.started = true;
                self.resp.id.clone_from(id);
                self.resp.model.clone_from(model);
                self.resp.created = *created;
            }
            // Reasoning, refusals and built-in tools' items are not rebuilt into a stored answer:
            // such a stream is not cached.
            StreamEvent::ReasoningDelta { .. }
            | StreamEvent::ReasoningEnd { .. }
            | StreamEvent::RefusalDelta { .. }
            | StreamEvent::Native { .. } => self.broken = true,
            StreamEvent::TextDelta { choice, text } => {
                if !self.charge(text.len()) {
                    return;
                }
                if let Some(i) = self.choice(*choice) {
                    if let Some(t) = self.texts.get_mut(i) {
                        t.push_str(text);
                    }
                }
            }
            StreamEvent::ToolCallStart {
                choice,
                index,
                id,
                name,
            } => {
                if !self.charge(id.len() + name.len()) || *index >= MAX_TOOL_CALLS {
                    self.broken = true;
                    return;
                }
                let Some(i) = self.choice(*choice) else {
                    return;
                };
                let Some(c) = self.resp.choices.get_mut(i) else {
                    return;
                };
                // Tool calls arrive in index order; anything else is not a stream we can rebuild.
                if c.message.tool_calls.len() != *index as usize {
                    self.broken = true;
                    return;
                }
                c.message.tool_calls.push(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            StreamEvent::ToolCallDelta {
                choice,
                index,
                arguments,
            } => {
                if !self.charge(arguments.len()) {
                    return;
                }
                let call = self
                    .choice(*choice)
                    .and_then(|i| self.resp.choices.get_mut(i))
                    .and_then(|c| c.message.tool_calls.get_mut(*index as usize));
                match call {
                    Some(call) => call.arguments.push_str(arguments),
                    None => self.broken = true,
                }
            }
            StreamEvent::Finish { choice, reason } => {
                if let Some(i) = self.choice(*choice) {
                    if let Some(f) = self.finishes.get_mut(i) {
                        *f = Some(*reason);
                    }
                }
            }
            StreamEvent::Usage(u) => self.resp.usage = Some(*u),
            StreamEvent::Error(_) => self.broken = true,
        }
    }

    /// The complete answer, if the stream was whole: it started, every choice finished, and
    /// nothing was dropped.
    pub fn finish(self) -> Option<Response> {
        if self.broken || !self.started || self.resp.choices.is_empty() {
            return None;
        }
        let mut resp = self.resp;
        for ((c, text), finish) in resp.choices.iter_mut().zip(self.texts).zip(self.finishes) {
            c.finish_reason = finish?;
            if !text.is_empty() {
                c.message.content.push(Part::Text { text });
            }
        }
        Some(Response::Chat(resp))
    }
}
