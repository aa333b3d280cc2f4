//! Every provider type's stream decoder (`ProviderSpec::stream_decoder(..).feed/end`) with the
//! stream split at a fuzzer-chosen point, checked against the same bytes fed whole: both runs
//! must agree (same events, same success), as the framing invariant promises.
//! For Bedrock, one mode wraps the payload in valid event-stream frames so the fuzzer gets past
//! the CRCs into the JSON decoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weir_core::ir::StreamEvent;
use weir_core::wire::{ProviderKind, StreamDecoder};
use weir_fuzz::{chat_request, spec, Input, MAX_FRAME, PROVIDER_KINDS};

fn run(dec: &mut dyn StreamDecoder, chunks: &[&[u8]]) -> (Vec<StreamEvent>, bool) {
    let mut out = Vec::new();
    for c in chunks {
        if dec.feed(c, &mut out).is_err() {
            return (out, false);
        }
    }
    let ok = dec.end(&mut out).is_ok();
    (out, ok)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let kind = input.pick(&PROVIDER_KINDS);
    let req = chat_request(input.byte() | 1);
    let wrap = input.byte() & 1 == 1;
    let (a, b) = input.split_rest();
    let mut whole: Vec<u8> = [a, b].concat();
    let (a, b) = if kind == ProviderKind::Bedrock && wrap {
        whole = weir_fuzz::bedrock_frames(&whole);
        let at = a.len().min(whole.len());
        whole.split_at(at)
    } else {
        (a, b)
    };
    let spec = spec(kind);
    let (split_events, split_ok) = run(&mut *spec.stream_decoder(&req, MAX_FRAME, 1), &[a, b]);
    let (whole_events, whole_ok) = run(&mut *spec.stream_decoder(&req, MAX_FRAME, 1), &[&whole]);
    // Where a chunk boundary falls must change nothing: not the outcome (bytes after a terminal
    // event are ignored however they arrive, see README.md "Findings") and not the events.
    assert_eq!(split_ok, whole_ok, "split at {} changed success", a.len());
    if split_ok {
        assert_eq!(
            split_events,
            whole_events,
            "split at {} changed the events",
            a.len()
        );
    }
});
