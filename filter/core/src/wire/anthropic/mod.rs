//! Anthropic's Messages format (`POST /v1/messages`), as a client protocol and as the
//! `anthropic` provider format.
//!
//! Mapping choices:
//! - IR `input_tokens` counts *all* prompt tokens (OpenAI's meaning); Anthropic's excludes cache
//!   reads and writes, so decoding adds them in and encoding subtracts the cached part.
//! - `cache_control` markers on content blocks are accepted and dropped: they change price and
//!   latency, never the answer, and the IR has nowhere to put a per-block marker. The top-level
//!   `cache_control` and the markers on tools reach Anthropic providers through `extra`.
//! - `thinking` and `output_config.effort` are the IR's reasoning controls; thinking blocks are
//!   reasoning parts, their signatures going back only to Anthropic-origin providers (a
//!   signature of another origin travels tagged, see `wire::reasoning`).
//! - Fields with no IR equivalent (`service_tier`, `inference_geo`, `container`, `speed`, the
//!   beta fields, ...) pass to Anthropic providers verbatim through `extra`, and are dropped or
//!   refused by name elsewhere (`wire::drop`).
//! - A refusal becomes the answer's text with stop reason `refusal`; Anthropic's overloaded
//!   error keeps its 529 for Anthropic clients.
//!
//! Layout: [`client`] decodes client requests and encodes answers and errors for Anthropic
//! clients; [`provider`] builds `POST /v1/messages` requests and decodes answers; [`stream`] holds
//! the SSE encoder and decoder; `tests` covers all three.

mod client;
mod provider;
mod stream;
#[cfg(test)]
mod tests;

pub use client::{
    decode_count_tokens_request, decode_messages_request, encode_error, encode_messages_response,
    encode_token_count,
};
pub(crate) use provider::claude_thinking;
pub use provider::{decode_response, encode_request};
pub use stream::{MessagesStreamDecoder, MessagesStreamEncoder};
