//! Server-sent events (WHATWG `text/event-stream`): incremental parsing and writing.
//! Handles `\n`, `\r\n` and `\r` line ends, comments, multi-line `data`, and a BOM-free stream.
//!
//! Lines that are no SSE field at all (not `data`, `event`, `id`, `retry` or a comment) are not
//! dropped as the spec's unknown fields would be: providers write errors that way mid-stream
//! (Gemini and Vertex AI put a pretty-printed `{"error": ...}` straight into the body), so such
//! lines are handed on joined, as a [`SseEvent::raw`] event, for the decoder to judge.

use super::FrameError;

/// One dispatched event. `data` lines are joined with `\n` as the spec says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    /// Text outside SSE framing: consecutive non-field lines joined with `\n`, ended by a
    /// blank line, an SSE field or the end of the stream.
    pub raw: bool,
}

/// Splits bytes into events. Holds at most `max_frame` bytes of one unfinished event.
pub struct SseFramer {
    max_frame: usize,
    /// Bytes of the current, not yet complete line.
    line: Vec<u8>,
    /// A `\r` ended the previous chunk: a `\n` starting the next one belongs to it.
    pending_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// Non-field lines not yet handed on (see the module doc).
    stray: String,
    /// Bytes held for the current event (lines already parsed plus `line`).
    held: usize,
}

impl SseFramer {
    pub fn new(max_frame: usize) -> Self {
        SseFramer {
            max_frame,
            line: Vec::new(),
            pending_cr: false,
            event: None,
            data: String::new(),
            has_data: false,
            stray: String::new(),
            held: 0,
        }
    }

    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        let mut rest = chunk;
        if self.pending_cr {
            self.pending_cr = false;
            if let Some(after) = rest.strip_prefix(b"\n") {
                rest = after;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            self.grow(head.len())?;
            self.line.extend_from_slice(head);
            let is_cr = tail.first() == Some(&b'\r');
            rest = tail.get(1..).unwrap_or_default();
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = rest.get(1..).unwrap_or_default(),
                    None => self.pending_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
        }
        self.grow(rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// The stream ended. A final event without its blank line is dispatched (servers often
    /// omit it); a partial line is processed as a line first.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn grow(&mut self, n: usize) -> Result<(), FrameError> {
        self.held = self.held.saturating_add(n);
        if self.held > self.max_frame {
            return Err(FrameError::TooLarge {
                limit: self.max_frame,
            });
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| FrameError::Malformed("an event line is not valid UTF-8".into()))?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if !matches!(field, "data" | "event" | "id" | "retry") {
            if !self.stray.is_empty() {
                self.stray.push('\n');
            }
            self.stray.push_str(line);
            return Ok(());
        }
        self.flush_stray(out);
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            _ => {} // id and retry do not matter to a translator
        }
        Ok(())
    }

    fn flush_stray(&mut self, out: &mut Vec<SseEvent>) {
        if !self.stray.is_empty() {
            out.push(SseEvent {
                event: None,
                data: std::mem::take(&mut self.stray),
                raw: true,
            });
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        self.flush_stray(out);
        let event = self.event.take();
        if self.has_data {
            out.push(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
                raw: false,
            });
        }
        self.has_data = false;
        self.data.clear();
        self.held = self.line.len();
    }
}

/// Appends one event (`event:` line if given, one `data:` line per data line, blank line).
pub fn write_event(event: Option<&str>, data: &str, out: &mut Vec<u8>) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testutil::splits;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut f = SseFramer::new(1 << 16);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out).unwrap();
        }
        f.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn parses_events_comments_and_multiline_data() {
        let s =
            b": ping\n\nevent: a\ndata: one\ndata:two\n\ndata: {\"x\":1}\r\n\r\nid: 3\ndata\n\n";
        let got = parse_all(&[s]);
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: Some("a".into()),
                    data: "one\ntwo".into(),
                    raw: false,
                },
                SseEvent {
                    event: None,
                    data: "{\"x\":1}".into(),
                    raw: false,
                },
                SseEvent {
                    event: None,
                    data: "".into(),
                    raw: false,
                },
            ]
        );
    }

    #[test]
    fn any_split_gives_the_same_events_including_split_utf8_and_crlf() {
        let s = "event: t\r\ndata: héllo 🦀 wörld\r\n\r\ndata: [DONE]\r\r".as_bytes();
        let whole = parse_all(&[s]);
        assert_eq!(whole.len(), 2);
        for chunks in splits(s, 300) {
            let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
            assert_eq!(parse_all(&parts), whole);
        }
    }

    #[test]
    fn an_event_larger_than_the_bound_is_an_error_not_an_allocation() {
        let mut f = SseFramer::new(16);
        let mut out = Vec::new();
        let err = f.push(b"data: 0123456789abcdefghij", &mut out).unwrap_err();
        assert_eq!(err, FrameError::TooLarge { limit: 16 });
    }

    #[test]
    fn the_bound_is_per_event_not_per_stream() {
        let mut f = SseFramer::new(16);
        let mut out = Vec::new();
        for _ in 0..100 {
            f.push(b"data: 12345\n\n", &mut out).unwrap();
        }
        assert_eq!(out.len(), 100);
    }

    #[test]
    fn lines_outside_sse_framing_come_out_joined_in_every_split() {
        // Gemini's mid-stream error: a pretty-printed JSON object after two events.
        let s = b"data: {\"a\":1}\r\n\r\ndata: {\"a\":2}\r\n\r\n{\n  \"error\": {\n    \"code\": 499\n  }\n}\n";
        let want = vec![
            SseEvent {
                data: "{\"a\":1}".into(),
                ..Default::default()
            },
            SseEvent {
                data: "{\"a\":2}".into(),
                ..Default::default()
            },
            SseEvent {
                event: None,
                data: "{\n  \"error\": {\n    \"code\": 499\n  }\n}".into(),
                raw: true,
            },
        ];
        for chunks in splits(s, 300) {
            let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
            assert_eq!(parse_all(&parts), want);
        }
        // A field line ends the stray text before it; bare `data` is still a field.
        let got = parse_all(&[b"oops\ndata\n\n"]);
        assert_eq!(got.len(), 2);
        assert!(got[0].raw && got[0].data == "oops" && !got[1].raw && got[1].data.is_empty());
    }

    #[test]
    fn written_events_parse_back() {
        let mut buf = Vec::new();
        write_event(Some("message_start"), "a\nb", &mut buf);
        write_event(None, "{}", &mut buf);
        assert_eq!(
            parse_all(&[&buf]),
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "a\nb".into(),
                    raw: false,
                },
                SseEvent {
                    event: None,
                    data: "{}".into(),
                    raw: false,
                },
            ]
        );
    }
}
