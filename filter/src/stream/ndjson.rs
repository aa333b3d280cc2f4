//! Newline-delimited JSON: incremental line splitting (Ollama streams, weir's internal stream).
//! STUB: to be implemented.

use super::FrameError;

pub struct NdjsonFramer {
    _max_frame: usize,
}

impl NdjsonFramer {
    pub fn new(max_frame: usize) -> Self {
        NdjsonFramer {
            _max_frame: max_frame,
        }
    }
    /// Appends each complete, non-blank line (without its `\n` / `\r\n`) to `out`.
    pub fn push(&mut self, _chunk: &[u8], _out: &mut Vec<String>) -> Result<(), FrameError> {
        Err(FrameError::Malformed("not implemented".into()))
    }
    /// A last line without a trailing newline is still a line.
    pub fn finish(&mut self, _out: &mut Vec<String>) -> Result<(), FrameError> {
        Ok(())
    }
}
