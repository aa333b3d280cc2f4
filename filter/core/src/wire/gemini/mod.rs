//! Google Gemini's generateContent format (`generateContent`, `streamGenerateContent?alt=sse`,
//! `batchEmbedContents`), as the `gemini` provider format, in both directions.
//!
//! Shapes follow the Gemini API v1beta reference and google-genai's types. Tool schemas are cut
//! down to Gemini's OpenAPI-3.0 subset (`Schema`), since the API rejects unknown keywords such as
//! `additionalProperties`; everything else Gemini cannot express is rejected by field name.
//!
//! Layout: [`provider`] builds requests (schemas cut to Gemini's subset) and decodes complete
//! answers and errors; [`stream`] decodes `streamGenerateContent` SSE; [`tests`] covers both.

mod provider;
mod stream;
#[cfg(test)]
mod tests;

pub use provider::{decode_response, encode_request};
pub use stream::StreamDecoder;
