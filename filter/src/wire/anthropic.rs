//! Anthropic's Messages format, as a client protocol and as the `anthropic` provider format.
//! STUB: to be implemented.

use super::{Outgoing, ProviderSpec, StreamDecoder, StreamEncoder, WireError};
use crate::ir::*;

pub fn decode_messages_request(_body: &[u8]) -> Result<ChatRequest, WireError> {
    Err(WireError::invalid("", "not implemented"))
}
pub fn encode_messages_response(_r: &ChatResponse) -> Vec<u8> {
    Vec::new()
}
pub fn encode_error(_e: &ErrorInfo) -> Vec<u8> {
    Vec::new()
}
pub fn encode_request(_spec: &ProviderSpec, _req: &Request) -> Result<Outgoing, WireError> {
    Err(WireError::unsupported("", "anthropic"))
}
pub fn decode_response(_req: &Request, _status: u16, _body: &[u8]) -> Result<Response, WireError> {
    Err(WireError::upstream("not implemented"))
}
pub struct MessagesStreamEncoder;
impl MessagesStreamEncoder {
    pub fn new(_req: &ChatRequest) -> Self {
        MessagesStreamEncoder
    }
}
impl StreamEncoder for MessagesStreamEncoder {
    fn event(&mut self, _ev: &StreamEvent, _out: &mut Vec<u8>) {}
    fn end(&mut self, _out: &mut Vec<u8>) {}
}
pub struct MessagesStreamDecoder;
impl MessagesStreamDecoder {
    pub fn new(_max_frame: usize) -> Self {
        MessagesStreamDecoder
    }
}
impl StreamDecoder for MessagesStreamDecoder {
    fn feed(&mut self, _c: &[u8], _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        Err(WireError::upstream("not implemented"))
    }
    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        Ok(())
    }
}
