//! Ollama's native API (`/api/chat`, `/api/generate`, `/api/embed`, NDJSON streams), as a
//! client protocol and as the `ollama` provider format.
//!
//! Mapping choices:
//! - Ollama has no tool-call ids. Decoded calls get `call_{n}`, counted across the conversation,
//!   and each `tool` turn answers the earliest unanswered call of the preceding assistant turn
//!   with its `tool_name` (or the earliest at all without one).
//! - `options` with no IR field pass to Ollama providers through `extra` (`options.<name>`):
//!   sampling ones (`min_p`, `repeat_penalty`, ...) are tuning elsewhere, and load-time and
//!   runtime hints (`num_ctx`, `num_gpu`, `num_thread`, ...) labels, dropped for other providers
//!   whatever the policy: they tune the server, not the answer (`wire::drop`).
//! - `think` (a boolean or a level) is the IR's reasoning; answers carry `thinking`.
//! - `/api/generate`'s `suffix`, `raw`, `template` and `context` pass to Ollama providers, which
//!   then get `/api/generate` itself; no other provider can honour them.
//! - `stream` defaults to true, as in Ollama.
//!
//! Layout: [`client`] decodes client requests and encodes answers and errors for Ollama clients;
//! [`provider`] builds `/api/chat` and `/api/embed` requests and decodes answers; [`stream`] holds
//! the NDJSON encoder and decoder; `tests` covers all three.

mod client;
mod provider;
mod stream;
#[cfg(test)]
mod tests;

pub use client::{
    decode_chat_request, decode_embed_request, decode_generate_request, encode_chat_response,
    encode_embed_response, encode_error, encode_generate_response,
};
pub(crate) use client::{RUNTIME_HINTS, SAMPLING_OPTIONS};
pub use provider::{decode_response, encode_request};
pub use stream::{ChatStreamDecoder, ChatStreamEncoder};
