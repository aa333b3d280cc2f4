//! Every client protocol's request decoder (`ClientApi::decode_request`) on arbitrary bodies:
//! first byte picks the api, the rest is the body; the same bytes as a request path go through
//! `ClientApi::classify` (stored-response paths carry ids and queries a provider path is built
//! from). Must return Ok/Err, never panic, and a stored call's provider path must stay one
//! operation under the base path.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weir_core::wire::responses::StoredCall;
use weir_core::wire::ClientApi;
use weir_fuzz::{spec, Input, CLIENT_APIS};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let api = input.pick(&CLIENT_APIS);
    let _ = api.decode_request(input.data);
    if let Ok(path) = std::str::from_utf8(input.data) {
        for method in ["GET", "DELETE", "POST"] {
            let _ = ClientApi::classify(method, path);
            if let Some(call) = StoredCall::parse(method, path) {
                let sent = call.provider_path(&spec(weir_core::wire::ProviderKind::OpenAiResponses));
                let (route, _) = sent.split_once('?').unwrap_or((&sent, ""));
                assert!(
                    route.starts_with("/v1/responses/") && !route.contains("..") && !route.contains('%'),
                    "{path} -> {sent}"
                );
            }
        }
    }
});
