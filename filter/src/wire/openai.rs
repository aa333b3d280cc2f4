//! OpenAI's Chat Completions and Embeddings formats, as a client protocol and as the provider
//! format of `openai`, `azure-openai`, `mistral` and `openai-compatible` targets.
//! STUB: to be implemented.

use super::{Outgoing, ProviderSpec, StreamDecoder, StreamEncoder, WireError};
use crate::ir::*;

pub fn decode_chat_request(_body: &[u8]) -> Result<ChatRequest, WireError> {
    Err(WireError::invalid("", "not implemented"))
}
pub fn decode_embeddings_request(_body: &[u8]) -> Result<EmbeddingsRequest, WireError> {
    Err(WireError::invalid("", "not implemented"))
}
pub fn encode_chat_response(_r: &ChatResponse) -> Vec<u8> {
    Vec::new()
}
pub fn encode_embeddings_response(_r: &EmbeddingsResponse) -> Vec<u8> {
    Vec::new()
}
pub fn encode_error(_e: &ErrorInfo) -> Vec<u8> {
    Vec::new()
}
pub fn encode_request(_spec: &ProviderSpec, _req: &Request) -> Result<Outgoing, WireError> {
    Err(WireError::unsupported("", "openai"))
}
pub fn decode_response(
    _spec: &ProviderSpec,
    _req: &Request,
    _status: u16,
    _body: &[u8],
) -> Result<Response, WireError> {
    Err(WireError::upstream("not implemented"))
}
pub struct ChatStreamEncoder;
impl ChatStreamEncoder {
    pub fn new(_req: &ChatRequest) -> Self {
        ChatStreamEncoder
    }
}
impl StreamEncoder for ChatStreamEncoder {
    fn event(&mut self, _ev: &StreamEvent, _out: &mut Vec<u8>) {}
    fn end(&mut self, _out: &mut Vec<u8>) {}
}
pub struct ChatStreamDecoder;
impl ChatStreamDecoder {
    pub fn new(_req: &ChatRequest, _max_frame: usize) -> Self {
        ChatStreamDecoder
    }
}
impl StreamDecoder for ChatStreamDecoder {
    fn feed(&mut self, _c: &[u8], _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        Err(WireError::upstream("not implemented"))
    }
    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        Ok(())
    }
}
