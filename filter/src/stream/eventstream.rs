//! AWS event-stream (`application/vnd.amazon.eventstream`): binary frames with a prelude CRC
//! and a message CRC, as Bedrock's ConverseStream sends them.
//! STUB: to be implemented.

use super::FrameError;

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header such as `:event-type` or `:message-type`.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

pub struct EventStreamFramer {
    _max_frame: usize,
}

impl EventStreamFramer {
    pub fn new(max_frame: usize) -> Self {
        EventStreamFramer {
            _max_frame: max_frame,
        }
    }
    pub fn push(&mut self, _chunk: &[u8], _out: &mut Vec<Message>) -> Result<(), FrameError> {
        Err(FrameError::Malformed("not implemented".into()))
    }
    pub fn finish(&mut self) -> Result<(), FrameError> {
        Ok(())
    }
}

/// Encodes one message with correct CRCs (used by tests and by anyone replaying a stream).
pub fn encode(_msg: &Message) -> Vec<u8> {
    Vec::new()
}
