//! Puts originals back where an answer repeats a placeholder: whole responses, and streams whose
//! deltas may split a placeholder anywhere (`<EMA` + `IL_1>`). Answer text, refusals and
//! tool-call arguments are restored; reasoning is not: it reaches the client as the provider
//! wrote it, so that a signed block can go back byte for byte (see `walk` and docs/pii.md).
//!
//! Invariants: a stream restorer holds back, per text stream (choice) and per tool-call argument
//! stream, only a tail that could still become a placeholder, so strictly less than the
//! vault's longest placeholder; everything else goes out at once. Held text is released before
//! any later event of the same choice, before `Usage`/`Error`, and at `flush`, so no text is
//! lost or reordered within a choice. Placeholders the vault does not know (the model invented
//! `<EMAIL_9>`) pass through unchanged. Originals inserted into tool-call arguments are
//! JSON-string-escaped, since placeholders only ever sit inside JSON strings there.

use crate::ir::{Response, StreamEvent};

use super::vault::Vault;

impl Vault {
    /// Replaces known placeholders in every choice's text and tool-call arguments.
    pub fn restore_response(&self, resp: &mut Response) {
        if self.is_empty() {
            return;
        }
        let Response::Chat(chat) = resp else {
            return;
        };
        for choice in &mut chat.choices {
            for part in &mut choice.message.content {
                if let crate::ir::Part::Text { text } = part {
                    if let Some(new) = restore_str(self, text, false) {
                        *text = new;
                    }
                }
            }
            if let Some(refusal) = &mut choice.message.refusal {
                if let Some(new) = restore_str(self, refusal, false) {
                    *refusal = new;
                }
            }
            for call in &mut choice.message.tool_calls {
                if let Some(new) = restore_str(self, &call.arguments, true) {
                    call.arguments = new;
                }
            }
        }
    }
}

/// `Some(restored)` when `text` held at least one known placeholder.
fn restore_str(vault: &Vault, text: &str, json: bool) -> Option<String> {
    if !text.contains('<') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let changed = restore_into(vault, text, json, &mut out);
    changed.then_some(out)
}

/// Appends `text` to `out` with known placeholders replaced; returns whether any was.
fn restore_into(vault: &Vault, text: &str, json: bool, out: &mut String) -> bool {
    let max = vault.longest_placeholder();
    let mut changed = false;
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let tail = rest.get(i..).unwrap_or("");
        let close = tail.bytes().take(max).position(|b| b == b'>');
        let hit = close
            .and_then(|j| tail.get(..=j))
            .and_then(|p| vault.lookup(p).map(|orig| (p.len(), orig)));
        match hit {
            Some((len, orig)) => {
                if json {
                    push_json_escaped(out, orig);
                } else {
                    out.push_str(orig);
                }
                changed = true;
                rest = tail.get(len..).unwrap_or("");
            }
            None => {
                out.push('<');
                rest = tail.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    changed
}

/// The contents of a JSON string literal for `s`, without the quotes.
fn push_json_escaped(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => {
            let inner = quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .unwrap_or("");
            out.push_str(inner);
        }
        // Serialising a str cannot fail; keep the placeholder-free redaction if it ever did.
        Err(_) => out.push_str("[REDACTED]"),
    }
}

/// Where the tail that might still grow into a placeholder starts (`text.len()` if none): the
/// last `<` followed only by placeholder characters, closer to the end than `max` bytes.
fn hold_from(text: &str, max: usize) -> usize {
    let Some(i) = text.rfind('<') else {
        return text.len();
    };
    let tail = text.get(i + 1..).unwrap_or("");
    let shaped = tail
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if shaped && text.len() - i < max {
        i
    } else {
        text.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Text { choice: u32 },
    Refusal { choice: u32 },
    Args { choice: u32, index: u32 },
}

impl Key {
    fn choice(self) -> u32 {
        match self {
            Key::Text { choice } | Key::Refusal { choice } | Key::Args { choice, .. } => choice,
        }
    }
    fn event(self, text: String) -> StreamEvent {
        match self {
            Key::Text { choice } => StreamEvent::TextDelta { choice, text },
            Key::Refusal { choice } => StreamEvent::RefusalDelta { choice, text },
            Key::Args { choice, index } => StreamEvent::ToolCallDelta {
                choice,
                index,
                arguments: text,
            },
        }
    }
}

/// Streaming restore over IR events. One per streamed response; feed every event in order,
/// then call [`EventRestorer::flush`] at the end of the stream.
#[derive(Default)]
pub struct EventRestorer {
    /// Held tails, at most one per stream key; a handful of entries, so a Vec.
    held: Vec<(Key, String)>,
}

impl std::fmt::Debug for EventRestorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventRestorer")
            .field("held_streams", &self.held.len())
            .finish()
    }
}

impl EventRestorer {
    pub fn new() -> Self {
        EventRestorer { held: Vec::new() }
    }

    /// Bytes currently held back over all streams.
    pub fn held_bytes(&self) -> usize {
        self.held.iter().map(|(_, s)| s.len()).sum()
    }

    pub fn event(&mut self, vault: &Vault, ev: StreamEvent, out: &mut Vec<StreamEvent>) {
        if vault.is_empty() && self.held.is_empty() {
            out.push(ev);
            return;
        }
        match ev {
            StreamEvent::TextDelta { choice, text } => {
                self.delta(vault, Key::Text { choice }, &text, out)
            }
            StreamEvent::ToolCallDelta {
                choice,
                index,
                arguments,
            } => self.delta(vault, Key::Args { choice, index }, &arguments, out),
            StreamEvent::RefusalDelta { choice, text } => {
                self.delta(vault, Key::Refusal { choice }, &text, out)
            }
            StreamEvent::ReasoningDelta { choice, .. }
            | StreamEvent::ReasoningEnd { choice, .. } => {
                self.release(|k| k.choice() == choice, out);
                out.push(ev);
            }
            StreamEvent::ToolCallStart { choice, .. }
            | StreamEvent::Native { choice, .. }
            | StreamEvent::Finish { choice, .. } => {
                self.release(|k| k.choice() == choice, out);
                out.push(ev);
            }
            StreamEvent::Start { .. } | StreamEvent::Usage(_) | StreamEvent::Error(_) => {
                self.release(|_| true, out);
                out.push(ev);
            }
        }
    }

    /// Emits everything still held (as-is: a held tail is never a complete placeholder).
    pub fn flush(&mut self, _vault: &Vault, out: &mut Vec<StreamEvent>) {
        self.release(|_| true, out);
    }

    fn delta(&mut self, vault: &Vault, key: Key, text: &str, out: &mut Vec<StreamEvent>) {
        // Another stream of this choice moving on ends whatever it held: release it first so
        // the client sees the choice's output in the original order.
        self.release(|k| k.choice() == key.choice() && k != key, out);
        let mut buf = match self.held.iter().position(|(k, _)| *k == key) {
            Some(i) => self.held.swap_remove(i).1,
            None => String::new(),
        };
        buf.push_str(text);
        let json = matches!(key, Key::Args { .. });
        let cut = hold_from(&buf, vault.longest_placeholder());
        let (ready, rest) = (buf.get(..cut).unwrap_or(""), buf.get(cut..).unwrap_or(""));
        if !ready.is_empty() {
            let mut emitted = String::with_capacity(ready.len());
            restore_into(vault, ready, json, &mut emitted);
            out.push(key.event(emitted));
        }
        if !rest.is_empty() {
            self.held.push((key, rest.to_string()));
        }
    }

    fn release(&mut self, which: impl Fn(Key) -> bool, out: &mut Vec<StreamEvent>) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held.get(i).is_some_and(|(k, _)| which(*k)) {
                let (k, text) = self.held.remove(i);
                out.push(k.event(text));
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::vault::Budget;
    use std::sync::Arc;

    fn vault() -> Vault {
        let mut v = Vault::new(Arc::new(Budget::new(1 << 20)), usize::MAX);
        v.placeholder("EMAIL", "jo\"e@x.com", "jo\"e@x.com")
            .unwrap();
        v.placeholder("PHONE", "+1 415 555 2671", "+1 415 555 2671")
            .unwrap();
        v
    }

    #[test]
    fn hold_only_possible_prefixes() {
        assert_eq!(hold_from("abc <EMA", 10), 4);
        assert_eq!(hold_from("abc <ema", 10), 8);
        assert_eq!(hold_from("abc <EMAIL_1> x", 10), 15);
        assert_eq!(hold_from("<", 10), 0);
        assert_eq!(hold_from("abc <EMAIL_12345", 10), 16);
    }

    #[test]
    fn restores_whole_strings_and_json_escapes() {
        let v = vault();
        assert_eq!(
            restore_str(&v, "to <EMAIL_1> or <EMAIL_9>", false).unwrap(),
            "to jo\"e@x.com or <EMAIL_9>"
        );
        assert_eq!(
            restore_str(&v, r#"{"to":"<EMAIL_1>"}"#, true).unwrap(),
            r#"{"to":"jo\"e@x.com"}"#
        );
        assert!(restore_str(&v, "nothing < here >", false).is_none());
    }
}
