//! OpenAI's Chat Completions and Embeddings formats, as a client protocol and as the provider
//! format of `openai`, `azure-openai`, `mistral` and `openai-compatible` targets.
//!
//! Layout: [`client`] decodes client requests and encodes answers and errors for OpenAI clients;
//! [`provider`] builds provider requests (with each kind's quirks) and decodes their answers;
//! [`stream`] holds the SSE encoder (IR → `chat.completion.chunk`) and decoder (the reverse).
//! All three read JSON through [`crate::wire::json`].
//!
//! Invariants:
//! - Client errors name the field in the client's own spelling (`messages[2].content[0].type`);
//!   provider-answer errors are always [`WireError::Upstream`](super::WireError).
//! - JSON `null` means "absent" for every optional field, in requests and answers alike.
//! - Nothing here panics on any input: all reads are `.get()`-based and bodies are parsed by
//!   `serde_json`, whose recursion limit (128) stays on.
//! - A stream that ends without a finish reason or an error is surfaced to the client as an
//!   error, never as a complete answer.

mod client;
mod provider;
mod stream;
#[cfg(test)]
mod tests;

pub(crate) use client::decode_response_format;
pub use client::{
    decode_chat_request, decode_embeddings_request, encode_chat_response,
    encode_embeddings_response, encode_error,
};
pub use provider::{decode_response, encode_request};
pub(crate) use provider::{percent_encode, provider_error, write_tools};
pub use stream::{ChatStreamDecoder, ChatStreamEncoder};
