//! Every client protocol's request decoder (`ClientApi::decode_request`) on arbitrary bodies:
//! first byte picks the api, the rest is the body. Must return Ok/Err, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weir_fuzz::{Input, CLIENT_APIS};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let api = input.pick(&CLIENT_APIS);
    let _ = api.decode_request(input.data);
});
