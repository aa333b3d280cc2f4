//! Newline-delimited JSON: incremental line splitting (Ollama streams, weir's internal stream).
//! Lines are returned as text, so a UTF-8 character split between chunks arrives whole.

use super::FrameError;

pub struct NdjsonFramer {
    max_frame: usize,
    line: Vec<u8>,
}

impl NdjsonFramer {
    pub fn new(max_frame: usize) -> Self {
        NdjsonFramer {
            max_frame,
            line: Vec::new(),
        }
    }

    /// Appends each complete, non-blank line (without its `\n` / `\r\n`) to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<String>) -> Result<(), FrameError> {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            self.append(head)?;
            rest = tail.get(1..).unwrap_or_default();
            let line = std::mem::take(&mut self.line);
            Self::emit(line, out)?;
        }
        self.append(rest)
    }

    /// A last line without a trailing newline is still a line.
    pub fn finish(&mut self, out: &mut Vec<String>) -> Result<(), FrameError> {
        let line = std::mem::take(&mut self.line);
        Self::emit(line, out)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.line.len().saturating_add(bytes.len()) > self.max_frame {
            return Err(FrameError::TooLarge {
                limit: self.max_frame,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn emit(mut line: Vec<u8>, out: &mut Vec<String>) -> Result<(), FrameError> {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(());
        }
        let text = String::from_utf8(line)
            .map_err(|_| FrameError::Malformed("a line is not valid UTF-8".into()))?;
        out.push(text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testutil::splits;

    fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let mut f = NdjsonFramer::new(1024);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out).unwrap();
        }
        f.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn splits_lines_skips_blanks_and_keeps_an_unterminated_last_line() {
        let got = lines(&[b"{\"a\":1}\r\n\n  \n{\"b\":\"\xc3\xa9\"}\n{\"c\":3}"]);
        assert_eq!(got, vec!["{\"a\":1}", "{\"b\":\"é\"}", "{\"c\":3}"]);
    }

    #[test]
    fn any_split_gives_the_same_lines() {
        let s = "{\"m\":\"🦀 ünï\"}\n{\"done\":true}\r\n".as_bytes();
        let whole = lines(&[s]);
        for chunks in splits(s, 200) {
            let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
            assert_eq!(lines(&parts), whole);
        }
    }

    #[test]
    fn a_line_over_the_bound_is_an_error() {
        let mut f = NdjsonFramer::new(4);
        assert_eq!(
            f.push(b"123456", &mut Vec::new()),
            Err(FrameError::TooLarge { limit: 4 })
        );
    }

    #[test]
    fn invalid_utf8_is_malformed_not_a_panic() {
        let mut f = NdjsonFramer::new(64);
        assert!(matches!(
            f.push(b"\xff\xfe\n", &mut Vec::new()),
            Err(FrameError::Malformed(_))
        ));
    }
}
