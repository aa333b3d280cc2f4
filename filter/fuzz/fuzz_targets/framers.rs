//! The SSE, NDJSON and AWS event-stream framers (`filter/core/src/stream/`): the input is split at a
//! fuzzer-chosen point; split and whole feeds must yield the same frames and the same outcome.
//! A second pass with a small fuzzer-chosen `max_frame` only checks nothing panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use weir_core::stream::{eventstream::EventStreamFramer, ndjson::NdjsonFramer, sse::SseFramer};
use weir_fuzz::{Input, MAX_FRAME};

fn sse(max: usize, chunks: &[&[u8]]) -> (Vec<weir_core::stream::sse::SseEvent>, bool) {
    let mut f = SseFramer::new(max);
    let mut out = Vec::new();
    for c in chunks {
        if f.push(c, &mut out).is_err() {
            return (out, false);
        }
    }
    let ok = f.finish(&mut out).is_ok();
    (out, ok)
}

fn ndjson(max: usize, chunks: &[&[u8]]) -> (Vec<String>, bool) {
    let mut f = NdjsonFramer::new(max);
    let mut out = Vec::new();
    for c in chunks {
        if f.push(c, &mut out).is_err() {
            return (out, false);
        }
    }
    let ok = f.finish(&mut out).is_ok();
    (out, ok)
}

fn events(max: usize, chunks: &[&[u8]]) -> (Vec<weir_core::stream::eventstream::Message>, bool) {
    let mut f = EventStreamFramer::new(max);
    let mut out = Vec::new();
    for c in chunks {
        if f.push(c, &mut out).is_err() {
            return (out, false);
        }
    }
    let ok = f.finish().is_ok();
    (out, ok)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let which = input.byte() % 4;
    let small = 16 + usize::from(input.u16() % 4096);
    let (a, b) = input.split_rest();
    let wrapped;
    let (a, b) = if which == 3 {
        // Valid frames around fuzz payloads, then split: exercises reassembly past the CRCs.
        wrapped = weir_fuzz::bedrock_frames(&[a, b].concat());
        wrapped.split_at(a.len().min(wrapped.len()))
    } else {
        (a, b)
    };
    let whole = [a, b].concat();
    match which {
        0 => {
            let (s, sok) = sse(MAX_FRAME, &[a, b]);
            let (w, wok) = sse(MAX_FRAME, &[&whole]);
            assert_eq!((sok, &s), (wok, &w), "sse: split at {} differs", a.len());
            let _ = sse(small, &[a, b]);
        }
        1 => {
            let (s, sok) = ndjson(MAX_FRAME, &[a, b]);
            let (w, wok) = ndjson(MAX_FRAME, &[&whole]);
            assert_eq!((sok, &s), (wok, &w), "ndjson: split at {} differs", a.len());
            let _ = ndjson(small, &[a, b]);
        }
        _ => {
            let (s, sok) = events(MAX_FRAME, &[a, b]);
            let (w, wok) = events(MAX_FRAME, &[&whole]);
            assert_eq!(
                (sok, &s),
                (wok, &w),
                "eventstream: split at {} differs",
                a.len()
            );
            if which == 3 {
                assert!(wok, "valid frames were rejected");
            }
            let _ = events(small, &[a, b]);
        }
    }
});
