//! Every provider type's complete-response decoder (`ProviderSpec::decode_response`): bytes pick
//! the provider kind, the request variant (chat/stream/tools/n/embeddings) and the status.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weir_fuzz::{request, spec, Input, PROVIDER_KINDS};

const STATUSES: [u16; 8] = [200, 200, 201, 400, 401, 429, 500, 503];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let kind = input.pick(&PROVIDER_KINDS);
    let req = request(input.byte());
    let status = input.pick(&STATUSES);
    let _ = spec(kind).decode_response(&req, status, input.data, 1_700_000_000);
});
