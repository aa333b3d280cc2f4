//! Server-sent events (WHATWG `text/event-stream`): incremental parsing and writing.
//! STUB: to be implemented.

use super::FrameError;

/// One dispatched event. `data` lines are joined with `\n` as the spec says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

pub struct SseFramer {
    _max_frame: usize,
}

impl SseFramer {
    pub fn new(max_frame: usize) -> Self {
        SseFramer {
            _max_frame: max_frame,
        }
    }
    pub fn push(&mut self, _chunk: &[u8], _out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        Err(FrameError::Malformed("not implemented".into()))
    }
    pub fn finish(&mut self, _out: &mut Vec<SseEvent>) -> Result<(), FrameError> {
        Ok(())
    }
}

/// Appends one event (`event:` line if given, `data:` lines, blank line) to `out`.
pub fn write_event(_event: Option<&str>, _data: &str, _out: &mut Vec<u8>) {}
