//! Google Gemini's generateContent format (`generateContent`, `streamGenerateContent?alt=sse`, `embedContent`), as the `gemini` provider format.
//! STUB: to be implemented.

use super::{Outgoing, ProviderSpec, WireError};
use crate::ir::*;

pub fn encode_request(_spec: &ProviderSpec, _req: &Request) -> Result<Outgoing, WireError> {
    Err(WireError::unsupported("", "gemini"))
}
pub fn decode_response(
    _req: &Request,
    _status: u16,
    _body: &[u8],
    _created: u64,
) -> Result<Response, WireError> {
    Err(WireError::upstream("not implemented"))
}

pub struct StreamDecoder;
impl StreamDecoder {
    pub fn new(_req: &ChatRequest, _max_frame: usize, _created: u64) -> Self {
        StreamDecoder
    }
}
impl super::StreamDecoder for StreamDecoder {
    fn feed(&mut self, _c: &[u8], _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        Err(WireError::upstream("not implemented"))
    }
    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        Ok(())
    }
}
