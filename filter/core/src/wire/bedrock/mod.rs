//! Amazon Bedrock's Converse and ConverseStream formats (JSON in, JSON or binary AWS event-stream
//! out), as the `bedrock` provider format. Signing is `providers::sigv4`; framing `stream::eventstream`.
//!
//! Shapes follow botocore's `bedrock-runtime/2023-09-30/service-2.json`. Converse has no
//! embeddings operation (Bedrock embeds through InvokeModel with a body that differs per model
//! family), no JSON mode, and only model-specific extras (`additionalModelRequestFields`), so
//! those IR fields are rejected rather than guessed at.
//!
//! Layout: [`provider`] builds Converse requests and decodes complete answers and errors;
//! [`stream`] decodes ConverseStream's binary event-stream; [`tests`] covers both.

mod provider;
mod stream;
#[cfg(test)]
mod tests;

pub use provider::{decode_response, encode_request};
pub use stream::StreamDecoder;
