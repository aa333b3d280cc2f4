//! Native micro-benchmarks of weir's core for scripts/bench: ns/op (median of several timed runs,
//! release build) for request translation, PII scrubbing, stream chunks and one whole request.
//!
//! Usage: `weir-bench-native [--quick] [--json] [--only NAME] [--runs N] [--iters N]`. `--json`
//! prints one JSON object per benchmark; `--only` runs a single benchmark (handy under
//! valgrind/perf); `--iters N` makes exactly N untimed calls (instruction counts: `perf stat`).
//! Everything is read from tests/bench (the plugin config, the 4 KB request, the canned answer),
//! so these numbers describe the same work the Envoy scenarios measure, minus the wasm VM.

use std::hint::black_box;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use weir_core::config::Config;
use weir_core::ir::{Request, StreamEvent};
use weir_core::pii::Scrubber;
use weir_core::roles::gateway::GatewayRole;
use weir_core::roles::headers::CLUSTER_HEADER;
use weir_core::roles::provider::ProviderRole;
use weir_core::roles::{BodyVerdict, Clock, Env, Filter, HeadersVerdict, NoEndpoint};
use weir_core::store::MemStore;
use weir_core::wire::{anthropic, openai, StreamDecoder, StreamEncoder};

const CONFIG: &str = include_str!("../../weir-config.json");
const REQUEST: &str = include_str!("../../fixtures/request.json");
const ANSWER: &str = include_str!("../../fixtures/anthropic-response.json");
const CLIENT_KEY: &str = "sk-weir-bench";
const PROVIDER: &str = "bench-anthropic";

/// The events an Anthropic stream opens with, before its text deltas.
const STREAM_PREAMBLE: &str = "event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":912,\"output_tokens\":1}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\n\
data: {\"type\": \"ping\"}\n\n";

/// One text delta, as an Anthropic provider sends it: the unit "one stream chunk" refers to.
const STREAM_CHUNK: &str = "event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"the next few words of the answer, \"}}\n\n";

struct Opts {
    quick: bool,
    json: bool,
    only: Option<String>,
    runs: usize,
    /// Exactly this many calls, untimed (for instruction counters such as `perf stat`).
    iters: u64,
}

fn parse_args() -> Opts {
    let mut opts = Opts {
        quick: false,
        json: false,
        only: None,
        runs: 0,
        iters: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--json" => opts.json = true,
            "--only" => opts.only = args.next(),
            "--runs" => opts.runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--iters" => opts.iters = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "-h" | "--help" => {
                println!(
                    "usage: weir-bench-native [--quick] [--json] [--only NAME] [--runs N] [--iters N]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("weir-bench-native: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    if opts.runs == 0 {
        opts.runs = if opts.quick { 3 } else { 9 };
    }
    opts
}

/// Times `f`: calibrates a batch size so one run lasts about `target_ms`, then returns the median
/// and minimum ns per call over `runs` runs.
fn measure(runs: usize, target_ms: u64, mut f: impl FnMut()) -> (f64, f64) {
    let start = Instant::now();
    let mut calls: u64 = 0;
    while calls < 3 || start.elapsed().as_millis() < 20 {
        f();
        calls += 1;
    }
    let per_call_ns = start.elapsed().as_nanos() as f64 / calls as f64;
    let batch = ((target_ms as f64 * 1e6) / per_call_ns).max(10.0) as u64;
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples[samples.len() / 2], samples[0])
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn config() -> Rc<Config> {
    let (cfg, _warnings) = Config::parse(CONFIG.as_bytes(), &|_: &str| None)
        .unwrap_or_else(|e| panic!("tests/bench/weir-config.json: {e}"));
    Rc::new(cfg)
}

/// The request's message texts joined, repeated and cut to exactly `len` bytes (at a char
/// boundary): a prompt with the same PII density as the 4 KB request.
fn prompt(len: usize) -> String {
    let req: serde_json::Value = serde_json::from_str(REQUEST).expect("fixtures/request.json");
    let texts: Vec<&str> = req["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    let one = texts.join("\n\n");
    let mut s = String::with_capacity(len + one.len());
    while s.len() < len {
        s.push_str(&one);
        s.push_str("\n\n");
    }
    let mut cut = len;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// One request through both roles, as Envoy would pump it: gateway headers and body, provider
/// headers and body; `answer` then brings the provider's answer back through both.
struct Flight {
    exchange: GatewayRole,
    attempt: ProviderRole,
    provider_body: Vec<u8>,
}

/// The wall clock, read whenever a role asks (as Envoy's is).
struct WallClock;

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

fn env(store: &MemStore) -> Env<'_> {
    Env {
        clock: &WallClock,
        store,
        random: now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15),
        // The bench cluster serves one provider: the provider role never asks the endpoint.
        endpoint: &NoEndpoint,
    }
}

fn send_request(cfg: &Rc<Config>, store: &MemStore, body: &[u8]) -> Flight {
    let env = env(store);
    let len = body.len().to_string();
    let auth = format!("Bearer {CLIENT_KEY}");
    let req_headers = headers(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "127.0.0.1"),
        ("content-type", "application/json"),
        ("content-length", &len),
        ("authorization", &auth),
    ]);
    let mut exchange = GatewayRole::new(Rc::clone(cfg));
    if let HeadersVerdict::Reply(r) = exchange.on_request_headers(&req_headers, &env) {
        panic!("gateway refused the headers: {}", r.status);
    }
    let (set, ir) = match exchange.on_request_body(body, &env) {
        BodyVerdict::Forward { set, body } => (set, body),
        BodyVerdict::Reply(r) => panic!(
            "gateway refused the body: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ),
    };
    assert!(
        set.iter().any(|(n, _)| n == CLUSTER_HEADER),
        "x-weir-cluster"
    );
    let mut attempt = ProviderRole::new(Rc::clone(cfg));
    let up_headers = headers(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        ("content-type", "application/json"),
    ]);
    if let HeadersVerdict::Reply(r) = attempt.on_request_headers(&up_headers, &env) {
        panic!("provider role refused the headers: {}", r.status);
    }
    let provider_body = match attempt.on_request_body(&ir, &env) {
        BodyVerdict::Forward { body, .. } => body,
        BodyVerdict::Reply(r) => panic!("provider role refused the body: {}", r.status),
    };
    Flight {
        exchange,
        attempt,
        provider_body,
    }
}

/// The provider's answer back through both roles; returns what the client gets.
fn answer(
    flight: &mut Flight,
    store: &MemStore,
    content_type: &str,
    body: &[u8],
    end: bool,
) -> Vec<u8> {
    let env = env(store);
    let provider_headers = headers(&[(":status", "200"), ("content-type", content_type)]);
    let edits = flight.attempt.on_response_headers(&provider_headers, &env);
    let ir = flight
        .attempt
        .on_response_body(body, end, &env)
        .unwrap_or_default();
    let mut gw_headers = headers(&[(":status", "200")]);
    gw_headers.extend(
        edits
            .set
            .iter()
            .map(|(n, v)| (n.clone(), v.as_bytes().to_vec())),
    );
    flight.exchange.on_response_headers(&gw_headers, &env);
    flight
        .exchange
        .on_response_body(&ir, end, &env)
        .unwrap_or_default()
}

fn whole_request(cfg: &Rc<Config>, store: &MemStore, body: &[u8]) -> Vec<u8> {
    let mut flight = send_request(cfg, store, body);
    black_box(&flight.provider_body);
    let out = answer(
        &mut flight,
        store,
        "application/json",
        ANSWER.as_bytes(),
        true,
    );
    black_box(flight.exchange.on_done(&env(store)));
    out
}

struct Bench {
    name: &'static str,
    what: &'static str,
    run: Box<dyn FnMut()>,
}

fn benches() -> Vec<Bench> {
    let cfg = config();
    let spec = cfg
        .providers
        .get(PROVIDER)
        .expect("provider bench-anthropic")
        .spec
        .clone();
    let mut out = Vec::new();

    // Sanity: the pipeline answers in OpenAI shape with the placeholders restored, both ways, and
    // the in-VM hand-off lets go of every request.
    for in_vm in [false, true] {
        weir_core::roles::handoff::set_provider_in_this_vm(in_vm);
        let check = whole_request(&cfg, &MemStore::new(), REQUEST.as_bytes());
        let check = String::from_utf8_lossy(&check);
        assert!(
            check.contains("chat.completion") && check.contains("jane.doe@example.com"),
            "unexpected pipeline answer: {check}"
        );
        assert_eq!(weir_core::roles::handoff::in_flight(), 0);
    }

    out.push(Bench {
        name: "translate_request_4k",
        what: "OpenAI request (4 KB) decode -> IR -> Anthropic encode",
        run: Box::new(move || {
            let mut req = openai::decode_chat_request(REQUEST.as_bytes()).expect("decode");
            req.model = "claude-sonnet-4-5".into();
            let outgoing = spec.encode_request(&Request::Chat(req)).expect("encode");
            black_box(outgoing);
        }),
    });

    for (name, what, len) in [
        (
            "scrub_4k",
            "PII scrub of a 4 KB prompt (3 values, placeholders)",
            4096,
        ),
        (
            "scrub_32k",
            "PII scrub of a 32 KB prompt (24 values, placeholders)",
            32768,
        ),
    ] {
        let text = prompt(len);
        let scrubber = Scrubber::compile(&config_pii()).expect("pii config");
        out.push(Bench {
            name,
            what,
            run: Box::new(move || {
                let mut vault = scrubber.new_vault();
                let r = scrubber.scrub_text(&text, &mut vault).expect("not blocked");
                black_box((r, vault));
            }),
        });
    }

    {
        let req = openai::decode_chat_request(REQUEST.as_bytes()).expect("decode");
        let mut decoder = anthropic::MessagesStreamDecoder::new(1 << 20);
        let mut encoder = openai::ChatStreamEncoder::new(&req);
        let mut events: Vec<StreamEvent> = Vec::new();
        let mut bytes = Vec::new();
        decoder
            .feed(STREAM_PREAMBLE.as_bytes(), &mut events)
            .expect("preamble");
        for ev in events.drain(..) {
            encoder.event(&ev, &mut bytes);
        }
        out.push(Bench {
            name: "stream_chunk",
            what: "one Anthropic SSE text delta -> IR -> OpenAI chunk",
            run: Box::new(move || {
                events.clear();
                bytes.clear();
                decoder
                    .feed(STREAM_CHUNK.as_bytes(), &mut events)
                    .expect("chunk");
                for ev in &events {
                    encoder.event(ev, &mut bytes);
                }
                black_box(&bytes);
            }),
        });
    }

    // The same chunk along weir's real path: provider role (decode) then gateway role
    // (placeholder restorer, OpenAI encode), the events handed over in the VM as Envoy runs them,
    // or as IR NDJSON when the roles are in different VMs.
    for (name, what, in_vm) in [
        (
            "stream_chunk_pipeline",
            "the same chunk through both roles (in-VM hand-off, restorer on)",
            true,
        ),
        (
            "stream_chunk_pipeline_wire",
            "the same with IR NDJSON between the roles (provider role in another VM)",
            false,
        ),
    ] {
        let stream_req = REQUEST.replacen(
            "\"model\": \"bench-claude\"",
            "\"model\": \"bench-claude-stream\", \"stream\": true",
            1,
        );
        assert!(stream_req.contains("\"stream\": true"));
        let st = MemStore::new();
        weir_core::roles::handoff::set_provider_in_this_vm(in_vm);
        let mut flight = send_request(&cfg, &st, stream_req.as_bytes());
        let first = answer(
            &mut flight,
            &st,
            "text/event-stream",
            STREAM_PREAMBLE.as_bytes(),
            false,
        );
        assert!(
            String::from_utf8_lossy(&first).contains("chat.completion.chunk"),
            "the stream pipeline did not start"
        );
        out.push(Bench {
            name,
            what,
            run: Box::new(move || {
                let env = env(&st);
                let ir = flight
                    .attempt
                    .on_response_body(STREAM_CHUNK.as_bytes(), false, &env)
                    .unwrap_or_default();
                let client = flight.exchange.on_response_body(&ir, false, &env);
                black_box(client);
            }),
        });
    }
    weir_core::roles::handoff::set_provider_in_this_vm(false);

    // Both hand-offs between the roles: by reference (both roles in one VM, as Envoy runs them
    // with one vm_id) and as IR JSON on the wire (the fallback when they are in different VMs).
    for (name, what, in_vm) in [
        (
            "whole_request",
            "one 4 KB request and its answer through both roles (auth, PII, limits, routing, both translations; in-VM hand-off)",
            true,
        ),
        (
            "whole_request_wire",
            "the same with the IR JSON hand-off between the roles (provider role in another VM)",
            false,
        ),
    ] {
        let cfg = Rc::clone(&cfg);
        let st = MemStore::new();
        out.push(Bench {
            name,
            what,
            run: Box::new(move || {
                weir_core::roles::handoff::set_provider_in_this_vm(in_vm);
                black_box(whole_request(&cfg, &st, REQUEST.as_bytes()));
            }),
        });
    }
    out
}

fn config_pii() -> weir_core::pii::PiiConfig {
    let raw: serde_json::Value = serde_json::from_str(CONFIG).expect("weir-config.json");
    serde_json::from_value(raw["pii"].clone()).expect("pii section")
}

fn main() {
    let opts = parse_args();
    let target_ms = if opts.quick { 20 } else { 100 };
    let mut ran = 0;
    if !opts.json {
        println!(
            "{:<24} {:>12} {:>12}  what (median of {} runs, ns per operation)",
            "benchmark", "median ns", "min ns", opts.runs
        );
    }
    for mut b in benches() {
        if opts.only.as_deref().is_some_and(|o| o != b.name) {
            continue;
        }
        if opts.iters > 0 {
            for _ in 0..opts.iters {
                (b.run)();
            }
            ran += 1;
            continue;
        }
        let (median, min) = measure(opts.runs, target_ms, &mut b.run);
        ran += 1;
        if opts.json {
            println!(
                "{}",
                serde_json::json!({"name": b.name, "what": b.what, "median_ns": median.round(),
                                   "min_ns": min.round(), "runs": opts.runs})
            );
        } else {
            println!("{:<24} {:>12.0} {:>12.0}  {}", b.name, median, min, b.what);
        }
    }
    if ran == 0 {
        eprintln!("weir-bench-native: no benchmark named {:?}", opts.only);
        std::process::exit(2);
    }
}
