//! Stream framers: split a byte stream that arrives in arbitrary chunks into whole frames
//! (SSE events, NDJSON lines, AWS event-stream messages), and write frames back out.
//!
//! Invariants: a framer never holds more than its `max_frame` bytes of an incomplete frame
//! (exceeding it is an error, not a reallocation); feeding a stream in any split yields the same
//! frames as feeding it whole; text is decoded only at frame boundaries, so a UTF-8 character
//! split between two chunks is never mangled.

pub mod eventstream;
pub mod ndjson;
pub mod sse;
#[cfg(test)]
pub mod testutil;

/// Why a stream could not be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// One frame grew past the configured bound.
    TooLarge { limit: usize },
    /// The bytes are not valid for the framing (bad UTF-8, bad prelude, CRC mismatch, ...).
    Malformed(String),
    /// The stream ended inside a frame.
    Truncated,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { limit } => write!(f, "a stream frame exceeded {limit} bytes"),
            FrameError::Malformed(m) => write!(f, "malformed stream frame: {m}"),
            FrameError::Truncated => write!(f, "the stream ended in the middle of a frame"),
        }
    }
}
