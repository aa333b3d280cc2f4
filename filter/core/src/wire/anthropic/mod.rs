//! Anthropic's Messages format (`POST /v1/messages`), as a client protocol and as the
//! `anthropic` provider format.
//!
//! Mapping choices:
//! - IR `input_tokens` counts *all* prompt tokens (OpenAI's meaning); Anthropic's excludes cache
//!   reads and writes, so decoding adds them in and encoding subtracts the cached part.
//! - `cache_control` markers are accepted and dropped: they change price and latency, never the
//!   answer, and the IR has nowhere to put a per-block marker.
//! - `thinking`, `service_tier`, `inference_geo` and `output_config.effort` pass to Anthropic
//!   providers verbatim through `extra`; thinking *blocks* are not representable and get a 400.
//!
//! Layout: [`client`] decodes client requests and encodes answers and errors for Anthropic
//! clients; [`provider`] builds `POST /v1/messages` requests and decodes answers; [`stream`] holds
//! the SSE encoder and decoder; `tests` covers all three.

mod client;
mod provider;
mod stream;
#[cfg(test)]
mod tests;

pub use client::{decode_messages_request, encode_error, encode_messages_response};
pub use provider::{decode_response, encode_request};
pub use stream::{MessagesStreamDecoder, MessagesStreamEncoder};
