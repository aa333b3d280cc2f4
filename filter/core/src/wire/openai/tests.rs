//! OpenAI codec tests: client decoding and encoding, provider requests and answers for every
//! OpenAI-type kind, and recorded chunk streams decoded in every split.

use serde_json::{json, Value};

use super::*;
use crate::ir::*;
use crate::stream::sse::{SseEvent, SseFramer};
use crate::stream::testutil::{splits, XorShift};
use crate::wire::{Outgoing, ProviderKind, ProviderSpec, StreamDecoder, StreamEncoder, WireError};

fn chat(body: Value) -> Result<ChatRequest, WireError> {
    decode_chat_request(body.to_string().as_bytes())
}

fn invalid_field(r: Result<ChatRequest, WireError>) -> String {
    match r {
        Err(WireError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn spec(kind: ProviderKind) -> ProviderSpec {
    ProviderSpec {
        kind,
        host: "h".into(),
        base_path: if kind == ProviderKind::AzureOpenAi {
            "/openai".into()
        } else {
            "/v1".into()
        },
        api_version: Some("2024-10-21".into()),
        region: None,
        anthropic_version: String::new(),
    }
}

fn encode(kind: ProviderKind, req: &ChatRequest) -> Result<Outgoing, WireError> {
    encode_request(&spec(kind), &Request::Chat(req.clone()))
}

fn body(out: &Outgoing) -> Value {
    serde_json::from_slice(&out.body).unwrap()
}

fn user(text: &str) -> Message {
    Message::text(Role::User, text)
}

fn basic(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "gpt-4o".into(),
        messages,
        ..Default::default()
    }
}

/// Every SSE data payload in `bytes`.
fn sse_data(bytes: &[u8]) -> Vec<String> {
    let mut f = SseFramer::new(1 << 20);
    let mut out: Vec<SseEvent> = Vec::new();
    f.push(bytes, &mut out).unwrap();
    f.finish(&mut out).unwrap();
    assert!(out.iter().all(|e| e.event.is_none()));
    out.into_iter().map(|e| e.data).collect()
}

// ---------------------------------------------------------------- client requests

fn full_body() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Dev "}, {"type": "text", "text": "rules"}]},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}
            ]},
            {"role": "assistant", "name": "bot", "content": null, "refusal": null, "annotations": [],
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
            {"role": "assistant", "content": "It is sunny."}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather now", "strict": true,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
        "stop": "END",
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 10,
        "max_completion_tokens": 20,
        "seed": -7,
        "user": "u1",
        "n": 2,
        "presence_penalty": 0.1,
        "frequency_penalty": -0.2,
        "stream": true,
        "stream_options": {"include_usage": true},
        "logit_bias": {"50256": -100},
        "service_tier": "flex",
        "logprobs": null
    })
}

fn full_ir() -> ChatRequest {
    let mut extra = serde_json::Map::new();
    extra.insert("logit_bias".into(), json!({"50256": -100}));
    extra.insert("service_tier".into(), json!("flex"));
    let mut ann = Message {
        content: vec![
            Part::Text {
                text: "What is this?".into(),
            },
            Part::Image {
                source: Media::Base64 {
                    media_type: "image/png".into(),
                    data: "AAAA".into(),
                },
            },
            Part::Image {
                source: Media::Url {
                    url: "https://x/y.png".into(),
                },
            },
            Part::Document {
                source: Media::Base64 {
                    media_type: "application/pdf".into(),
                    data: "JVBE".into(),
                },
                title: Some("a.pdf".into()),
            },
        ],
        ..user("")
    };
    ann.name = Some("ann".into());
    let mut call = Message {
        content: vec![],
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into(),
        }],
        ..Message::text(Role::Assistant, "")
    };
    call.name = Some("bot".into());
    let mut result = Message::text(Role::Tool, "sunny");
    result.tool_call_id = Some("call_1".into());
    ChatRequest {
        model: "gpt-4o".into(),
        messages: vec![
            Message::text(Role::System, "Be brief."),
            Message {
                content: vec![
                    Part::Text {
                        text: "Dev ".into(),
                    },
                    Part::Text {
                        text: "rules".into(),
                    },
                ],
                ..Message::text(Role::Developer, "")
            },
            ann,
            call,
            result,
            Message::text(Role::Assistant, "It is sunny."),
        ],
        tools: vec![Tool {
            name: "get_weather".into(),
            description: Some("Weather now".into()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            strict: Some(true),
        }],
        tool_choice: Some(ToolChoice::Tool("get_weather".into())),
        parallel_tool_calls: Some(false),
        max_tokens: Some(20),
        temperature: Some(0.5),
        top_p: Some(0.9),
        top_k: None,
        stop: vec!["END".into()],
        seed: Some(-7),
        n: Some(2),
        presence_penalty: Some(0.1),
        frequency_penalty: Some(-0.2),
        user: Some("u1".into()),
        response_format: Some(ResponseFormat::JsonSchema {
            name: "w".into(),
            schema: json!({"type": "object"}),
            strict: Some(true),
        }),
        reasoning: None,
        stream: true,
        stream_include_usage: true,
        keep_alive: None,
        extra,
        extra_family: Some(Family::OpenAi),
    }
}

#[test]
fn a_full_request_decodes_every_field() {
    assert_eq!(chat(full_body()).unwrap(), full_ir());
}

#[test]
fn small_variants_decode() {
    let r = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5, "stop": ["a", "b"], "tool_choice": "required",
        "response_format": {"type": "json_object"}, "temperature": 1, "tools": null,
        "functions": null, "function_call": null, "stream": false}),
    )
    .unwrap();
    assert_eq!(r.max_tokens, Some(5));
    assert_eq!(r.stop, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(r.tool_choice, Some(ToolChoice::Required));
    assert_eq!(r.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(r.temperature, Some(1.0));
    assert!(r.extra.is_empty() && r.extra_family.is_none() && !r.stream);
    for (choice, want) in [("auto", ToolChoice::Auto), ("none", ToolChoice::None)] {
        let r = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tool_choice": choice, "response_format": {"type": "text"}}),
        )
        .unwrap();
        assert_eq!(r.tool_choice, Some(want));
        assert_eq!(r.response_format, Some(ResponseFormat::Text));
    }
    // Bare base64 file data is a PDF; a function without parameters takes none.
    let r = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "JVBE"}}]}],
        "tools": [{"type": "function", "function": {"name": "f"}}]}),
    )
    .unwrap();
    assert_eq!(
        r.messages[0].content,
        vec![Part::Document {
            source: Media::Base64 {
                media_type: "application/pdf".into(),
                data: "JVBE".into()
            },
            title: None
        }]
    );
    assert_eq!(
        r.tools[0].parameters,
        json!({"type": "object", "properties": {}})
    );
}

#[test]
fn every_invalid_request_names_its_field() {
    let m = |content: Value| json!({"model": "m", "messages": [content]});
    let with = |k: &str, v: Value| {
        let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        b[k] = v;
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!([1]), ""),
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (with("model", json!("")), "model"),
        (with("model", json!(5)), "model"),
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": []}), "messages"),
        (json!({"model": "m", "messages": "x"}), "messages"),
        (m(json!("x")), "messages[0]"),
        (m(json!({"content": "x"})), "messages[0].role"),
        (
            m(json!({"role": "function", "name": "f", "content": "x"})),
            "messages[0].role",
        ),
        (
            m(json!({"role": "robot", "content": "x"})),
            "messages[0].role",
        ),
        (m(json!({"role": "user"})), "messages[0].content"),
        (
            m(json!({"role": "user", "content": 5})),
            "messages[0].content",
        ),
        (
            m(
                json!({"role": "user", "content": [{"type": "text", "text": "a"},
            {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}),
            ),
            "messages[0].content[1]",
        ),
        (
            m(
                json!({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}),
            ),
            "messages[0].content[0].type",
        ),
        (
            m(json!({"role": "user", "content": [{"type": "image_url", "image_url": {}}]})),
            "messages[0].content[0].image_url.url",
        ),
        (
            m(
                json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "max"}}]}),
            ),
            "messages[0].content[0].image_url.detail",
        ),
        (
            m(
                json!({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}),
            ),
            "messages[0].content[0].file.file_id",
        ),
        (
            m(json!({"role": "user", "content": [{"text": "a"}]})),
            "messages[0].content[0].type",
        ),
        (
            m(json!({"role": "user", "content": [{"type": "text"}]})),
            "messages[0].content[0].text",
        ),
        (
            m(json!({"role": "user", "name": 3, "content": "x"})),
            "messages[0].name",
        ),
        (
            m(json!({"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}})),
            "messages[0].function_call",
        ),
        (
            m(json!({"role": "assistant", "audio": {"id": "a1"}})),
            "messages[0].audio",
        ),
        (
            m(
                json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}),
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            m(
                json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]}),
            ),
            "messages[0].tool_calls[0].type",
        ),
        (
            m(json!({"role": "tool", "content": "x"})),
            "messages[0].tool_call_id",
        ),
        (with("functions", json!([{"name": "f"}])), "functions"),
        (with("function_call", json!("auto")), "function_call"),
        (with("frobnicate", json!(1)), "frobnicate"),
        (with("temperature", json!("hot")), "temperature"),
        (with("top_p", json!(true)), "top_p"),
        (with("max_tokens", json!(-1)), "max_tokens"),
        (
            with("max_completion_tokens", json!(1.5)),
            "max_completion_tokens",
        ),
        (with("n", json!(1.5)), "n"),
        (with("seed", json!("x")), "seed"),
        (with("user", json!(1)), "user"),
        (with("stream", json!("yes")), "stream"),
        (
            with("stream_options", json!({"include_usage": "x"})),
            "stream_options.include_usage",
        ),
        (with("stream_options", json!(true)), "stream_options"),
        (with("parallel_tool_calls", json!(1)), "parallel_tool_calls"),
        (with("stop", json!([1])), "stop[0]"),
        (with("stop", json!(1)), "stop"),
        (with("tools", json!({})), "tools"),
        (
            with(
                "tools",
                json!([{"type": "custom", "custom": {"name": "x"}}]),
            ),
            "tools[0].type",
        ),
        (
            with("tools", json!([{"type": "function", "function": {}}])),
            "tools[0].function.name",
        ),
        (
            with(
                "tools",
                json!([{"type": "function", "function": {"name": "f", "parameters": 1}}]),
            ),
            "tools[0].function.parameters",
        ),
        (
            with(
                "tools",
                json!([{"type": "function", "function": {"name": "f", "strict": "y"}}]),
            ),
            "tools[0].function.strict",
        ),
        (with("tool_choice", json!("maybe")), "tool_choice"),
        (
            with("tool_choice", json!({"type": "allowed_tools"})),
            "tool_choice.type",
        ),
        (
            with("tool_choice", json!({"type": "function", "function": {}})),
            "tool_choice.function.name",
        ),
        (
            with("response_format", json!({"type": "xml"})),
            "response_format.type",
        ),
        (
            with(
                "response_format",
                json!({"type": "json_schema", "json_schema": {"schema": {}}}),
            ),
            "response_format.json_schema.name",
        ),
        (
            with("response_format", json!({"type": "json_schema"})),
            "response_format.json_schema",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(invalid_field(chat(body.clone())), field, "body: {body}");
    }
    assert_eq!(invalid_field(decode_chat_request(b"{\"model\":")), "");
    assert_eq!(invalid_field(decode_chat_request(b"")), "");
}

#[test]
fn the_first_bad_field_in_key_order_is_named_and_repeated_keys_keep_the_last() {
    // Keys are judged in sorted order, whatever order the client sent them in.
    let body = br#"{"zzz": 1, "model": "m", "functions": [], "aaa": 2, "messages": []}"#;
    assert_eq!(invalid_field(decode_chat_request(body)), "aaa");
    let body = br#"{"model": 5, "messages": [{"role": "user", "content": "x"}], "model": "m"}"#;
    assert_eq!(decode_chat_request(body).unwrap().model, "m");
    // Paths are spelled the same however deep they are built.
    let r = chat(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]}
    ]}));
    assert_eq!(
        invalid_field(r),
        "messages[1].tool_calls[0].function.arguments"
    );
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let deep = format!(
        "{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":{}{}}}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(invalid_field(decode_chat_request(deep.as_bytes())), "");
    let deep_meta = format!(
        "{{\"model\":\"m\",\"metadata\":{}1{}}}",
        "{\"a\":".repeat(5000),
        "}".repeat(5000)
    );
    assert!(decode_chat_request(deep_meta.as_bytes()).is_err());
    let full = full_body().to_string().into_bytes();
    let mut rng = XorShift(7);
    for cut in 0..full.len() {
        let _ = decode_chat_request(&full[..cut]);
    }
    for _ in 0..2000 {
        let mut b = full.clone();
        for _ in 0..4 {
            let i = rng.below(b.len());
            b[i] = (rng.next_u64() & 0xff) as u8;
        }
        let _ = decode_chat_request(&b);
        let _ = decode_embeddings_request(&b);
    }
}

#[test]
fn embeddings_requests_decode_and_reject_what_the_ir_cannot_carry() {
    let e = |b: Value| decode_embeddings_request(b.to_string().as_bytes());
    let r = e(
        json!({"model": "te3", "input": "hi", "dimensions": 256, "user": "u",
        "encoding_format": "float"}),
    )
    .unwrap();
    assert_eq!(
        r,
        EmbeddingsRequest {
            model: "te3".into(),
            input: vec!["hi".into()],
            dimensions: Some(256),
            user: Some("u".into())
        }
    );
    // What the official SDK sends when the caller names no format.
    let r = e(json!({"model": "te3", "input": ["a", "b"], "encoding_format": "base64"})).unwrap();
    assert_eq!(r.input, vec!["a".to_string(), "b".to_string()]);
    let field = |b: Value| match e(b) {
        Err(WireError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(json!({"model": "te3", "input": [1, 2]})), "input[0]");
    assert_eq!(
        field(json!({"model": "te3", "input": [[1, 2]]})),
        "input[0]"
    );
    assert_eq!(
        field(json!({"model": "te3", "input": ["a", {}]})),
        "input[1]"
    );
    assert_eq!(field(json!({"model": "te3", "input": []})), "input");
    assert_eq!(field(json!({"model": "te3"})), "input");
    assert_eq!(field(json!({"input": "x"})), "model");
    assert_eq!(
        field(json!({"model": "te3", "input": "x", "encoding_format": "hex"})),
        "encoding_format"
    );
    assert_eq!(
        field(json!({"model": "te3", "input": "x", "dimensions": -3})),
        "dimensions"
    );
    assert_eq!(field(json!({"model": "te3", "input": "x", "x": 1})), "x");
}

// ---------------------------------------------------------------- client answers

#[test]
fn chat_responses_encode_as_chat_completion_objects() {
    let mut calls = Message::text(Role::Assistant, "");
    calls.content.clear();
    calls.tool_calls = vec![ToolCall {
        id: "call_1".into(),
        name: "f".into(),
        arguments: "{}".into(),
    }];
    let r = ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-4o".into(),
        created: 1700000000,
        choices: vec![
            Choice {
                index: 0,
                message: Message::text(Role::Assistant, "hello"),
                finish_reason: FinishReason::Stop,
            },
            Choice {
                index: 1,
                message: calls,
                finish_reason: FinishReason::ToolCalls,
            },
        ],
        usage: Some(Usage {
            input_tokens: 10,
            output_tokens: 5,
            cached_input_tokens: 4,
            reasoning_tokens: 0,
        }),
    };
    let v: Value = serde_json::from_slice(&encode_chat_response(&r)).unwrap();
    assert_eq!(
        v,
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hello", "refusal": null},
                 "logprobs": null, "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                 "logprobs": null, "finish_reason": "tool_calls"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 4}}
        })
    );
    let r = ChatResponse {
        usage: Some(Usage {
            input_tokens: 1,
            output_tokens: 1,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        }),
        choices: vec![Choice {
            index: 0,
            message: Message::text(Role::Assistant, "x"),
            finish_reason: FinishReason::ContentFilter,
        }],
        ..r
    };
    let v: Value = serde_json::from_slice(&encode_chat_response(&r)).unwrap();
    assert!(v["usage"].get("prompt_tokens_details").is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn embeddings_responses_and_errors_encode_as_openai_does() {
    let v: Value = serde_json::from_slice(&encode_embeddings_response(&EmbeddingsResponse {
        model: "te3".into(),
        data: vec![vec![0.5, -1.0], vec![0.25]],
        usage: Some(Usage {
            input_tokens: 3,
            ..Default::default()
        }),
    }))
    .unwrap();
    assert_eq!(
        v,
        json!({"object": "list", "model": "te3",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
                     {"object": "embedding", "index": 1, "embedding": [0.25]}],
            "usage": {"prompt_tokens": 3, "total_tokens": 3}})
    );
    let err = |e: &ErrorInfo| serde_json::from_slice::<Value>(&encode_error(e)).unwrap();
    assert_eq!(
        err(&ErrorInfo::invalid("messages[2].content", "bad")),
        json!({"error": {"message": "bad", "type": "invalid_request_error",
            "param": "messages[2].content", "code": null}})
    );
    let e = err(&ErrorInfo::new(401, ErrorKind::Authentication, "no key"));
    assert_eq!(
        (
            &e["error"]["type"],
            &e["error"]["code"],
            &e["error"]["param"]
        ),
        (
            &json!("invalid_request_error"),
            &json!("invalid_api_key"),
            &Value::Null
        )
    );
    let e = err(&ErrorInfo::new(429, ErrorKind::RateLimited, "slow down"));
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    for kind in [
        ErrorKind::Upstream,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
    ] {
        assert_eq!(
            err(&ErrorInfo::new(502, kind, "x"))["error"]["type"],
            "server_error"
        );
    }
}

// ---------------------------------------------------------------- provider requests

#[test]
fn openai_requests_carry_every_field_and_round_trip_through_the_client_decoder() {
    let ir = full_ir();
    let out = encode(ProviderKind::OpenAi, &ir).unwrap();
    assert_eq!(out.path, "/v1/chat/completions");
    assert_eq!(
        out.headers,
        vec![("content-type".to_string(), "application/json".to_string())]
    );
    let b = body(&out);
    assert_eq!(b["max_completion_tokens"], 20);
    assert!(b.get("max_tokens").is_none());
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["messages"][1]["role"], "developer");
    assert_eq!(b["logit_bias"], json!({"50256": -100}));
    assert_eq!(
        b["messages"][2]["content"][3],
        json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}})
    );
    assert_eq!(b["messages"][3]["content"], Value::Null);
    assert!(b["messages"][4].get("name").is_none());
    // The provider body is itself a valid OpenAI client body meaning the same request; text-only
    // turns travel as one string.
    let mut joined = ir.clone();
    joined.messages[1] = Message::text(Role::Developer, "Dev rules");
    assert_eq!(b["messages"][1]["content"], "Dev rules");
    assert_eq!(decode_chat_request(&out.body).unwrap(), joined);

    // Without the client asking, the provider is still asked for usage.
    let mut quiet = basic(vec![user("hi")]);
    quiet.stream = true;
    let b = body(&encode(ProviderKind::OpenAi, &quiet).unwrap());
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[test]
fn client_bodies_survive_decode_then_encode() {
    let original = full_body();
    let ir = chat(original.clone()).unwrap();
    let b = body(&encode(ProviderKind::OpenAi, &ir).unwrap());
    for k in [
        "model",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "temperature",
        "top_p",
        "seed",
        "user",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "stream",
        "stream_options",
        "logit_bias",
        "service_tier",
    ] {
        assert_eq!(b[k], original[k], "{k}");
    }
    assert_eq!(b["stop"], json!(["END"]));
    assert_eq!(b["max_completion_tokens"], 20);
    assert_eq!(b["messages"][0], original["messages"][0]);
    assert_eq!(b["messages"][5], original["messages"][5]);
    assert_eq!(b["messages"][4]["content"], "sunny");
}

#[test]
fn azure_puts_the_deployment_in_the_path_and_not_in_the_body() {
    let mut ir = basic(vec![user("hi")]);
    ir.model = "my dep/1".into();
    ir.max_tokens = Some(5);
    let out = encode(ProviderKind::AzureOpenAi, &ir).unwrap();
    assert_eq!(
        out.path,
        "/openai/deployments/my%20dep%2F1/chat/completions?api-version=2024-10-21"
    );
    let b = body(&out);
    assert!(b.get("model").is_none());
    assert_eq!(b["max_completion_tokens"], 5);
    let e = EmbeddingsRequest {
        model: "emb".into(),
        input: vec!["a".into()],
        dimensions: Some(8),
        user: Some("u".into()),
    };
    let out = encode_request(
        &spec(ProviderKind::AzureOpenAi),
        &Request::Embeddings(e.clone()),
    )
    .unwrap();
    assert_eq!(
        out.path,
        "/openai/deployments/emb/embeddings?api-version=2024-10-21"
    );
    assert_eq!(
        body(&out),
        json!({"input": ["a"], "dimensions": 8, "user": "u", "encoding_format": "float"})
    );
    let out = encode_request(&spec(ProviderKind::OpenAi), &Request::Embeddings(e)).unwrap();
    assert_eq!(out.path, "/v1/embeddings");
    assert_eq!(body(&out)["model"], "emb");
}

#[test]
fn mistral_gets_its_own_spellings_and_refuses_what_it_cannot_express() {
    let mut call = Message::text(Role::Assistant, "");
    call.content.clear();
    call.tool_calls = vec![ToolCall {
        id: "toolu_01ABC".into(),
        name: "f".into(),
        arguments: String::new(),
    }];
    let mut result = Message::text(Role::Tool, "42");
    result.tool_call_id = Some("toolu_01ABC".into());
    result.name = Some("f".into());
    let mut ir = basic(vec![
        Message::text(Role::Developer, "rules"),
        Message {
            content: vec![
                Part::Text { text: "see".into() },
                Part::Document {
                    source: Media::Url {
                        url: "https://x/a.pdf".into(),
                    },
                    title: Some("a.pdf".into()),
                },
            ],
            ..user("")
        },
        call,
        result,
    ]);
    ir.seed = Some(3);
    ir.tool_choice = Some(ToolChoice::Required);
    ir.max_tokens = Some(9);
    ir.stream = true;
    ir.extra.insert(
        "prediction".into(),
        json!({"type": "content", "content": "x"}),
    );
    ir.extra_family = Some(Family::OpenAi);
    let out = encode(ProviderKind::Mistral, &ir).unwrap();
    assert_eq!(out.path, "/v1/chat/completions");
    let b = body(&out);
    assert_eq!(b["random_seed"], 3);
    assert!(b.get("seed").is_none());
    assert_eq!(b["tool_choice"], "any");
    assert_eq!(b["max_tokens"], 9);
    assert!(b.get("stream_options").is_none());
    assert_eq!(b["stream"], true);
    assert_eq!(b["prediction"]["content"], "x");
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(
        b["messages"][1]["content"][1],
        json!({"type": "document_url", "document_url": "https://x/a.pdf", "document_name": "a.pdf"})
    );
    let id = b["messages"][2]["tool_calls"][0]["id"].as_str().unwrap();
    assert!(id.len() == 9 && id.bytes().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(b["messages"][3]["tool_call_id"], id);
    assert_eq!(b["messages"][3]["name"], "f");
    assert_eq!(
        b["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
    // Valid Mistral ids stay as they are.
    let mut ok = ir.clone();
    ok.messages[2].tool_calls[0].id = "abcDEF123".into();
    let b = body(&encode(ProviderKind::Mistral, &ok).unwrap());
    assert_eq!(b["messages"][2]["tool_calls"][0]["id"], "abcDEF123");

    let unsupported = |r: Result<Outgoing, WireError>| match r {
        Err(WireError::Unsupported { field, target }) => (field, target),
        other => panic!("{other:?}"),
    };
    let mut u = ir.clone();
    u.user = Some("u".into());
    assert_eq!(
        unsupported(encode(ProviderKind::Mistral, &u)),
        ("user".to_string(), "mistral")
    );
    let mut u = ir.clone();
    u.messages[1].name = Some("ann".into());
    assert_eq!(
        unsupported(encode(ProviderKind::Mistral, &u)).0,
        "messages[1].name"
    );
    let mut u = ir.clone();
    u.extra.insert("logit_bias".into(), json!({}));
    assert_eq!(
        unsupported(encode(ProviderKind::Mistral, &u)).0,
        "logit_bias"
    );
    let e = EmbeddingsRequest {
        model: "mistral-embed".into(),
        input: vec!["a".into()],
        dimensions: Some(8),
        user: None,
    };
    let out = encode_request(
        &spec(ProviderKind::Mistral),
        &Request::Embeddings(e.clone()),
    )
    .unwrap();
    assert_eq!(
        body(&out),
        json!({"model": "mistral-embed", "input": ["a"], "output_dimension": 8})
    );
    let with_user = EmbeddingsRequest {
        user: Some("u".into()),
        ..e
    };
    assert_eq!(
        unsupported(encode_request(
            &spec(ProviderKind::Mistral),
            &Request::Embeddings(with_user)
        ))
        .0,
        "user"
    );
}

#[test]
fn compatible_servers_get_max_tokens_top_k_and_system_for_developer() {
    let mut ir = basic(vec![Message::text(Role::Developer, "d"), user("hi")]);
    ir.top_k = Some(40);
    ir.max_tokens = Some(7);
    ir.stream = true;
    ir.extra.insert("logprobs".into(), json!(true));
    ir.extra_family = Some(Family::OpenAi);
    let b = body(&encode(ProviderKind::OpenAiCompatible, &ir).unwrap());
    assert_eq!(b["top_k"], 40);
    assert_eq!(b["max_tokens"], 7);
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["logprobs"], true);
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::AzureOpenAi,
        ProviderKind::Mistral,
    ] {
        assert_eq!(
            encode(kind, &ir).unwrap_err(),
            WireError::unsupported("top_k", kind.name())
        );
    }
}

#[test]
fn what_openai_cannot_express_is_refused_by_name() {
    let mut foreign = basic(vec![user("hi")]);
    foreign.extra.insert("thinking".into(), json!({}));
    foreign.extra_family = Some(Family::Anthropic);
    assert_eq!(
        encode(ProviderKind::OpenAi, &foreign).unwrap_err(),
        WireError::unsupported("thinking", "openai")
    );
    let image = Part::Image {
        source: Media::Url { url: "u".into() },
    };
    let mut sys = basic(vec![Message {
        content: vec![image.clone()],
        ..Message::text(Role::System, "")
    }]);
    assert_eq!(
        encode(ProviderKind::OpenAi, &sys).unwrap_err(),
        WireError::unsupported("messages[0].content", "openai")
    );
    sys.messages = vec![
        user("a"),
        Message {
            content: vec![
                Part::Text { text: "x".into() },
                Part::Document {
                    source: Media::Url { url: "u".into() },
                    title: None,
                },
            ],
            ..user("")
        },
    ];
    assert_eq!(
        encode(ProviderKind::AzureOpenAi, &sys).unwrap_err(),
        WireError::needs_bytes("messages[1].content[1]", "azure-openai")
    );
}

// ---------------------------------------------------------------- provider answers

fn decode(kind: ProviderKind, status: u16, b: &Value) -> Result<Response, WireError> {
    decode_response(
        &spec(kind),
        &Request::Chat(basic(vec![user("q")])),
        status,
        b.to_string().as_bytes(),
    )
}

#[test]
fn chat_answers_decode_with_tool_calls_usage_and_every_finish_reason() {
    let b = json!({
        "id": "chatcmpl-9", "object": "chat.completion", "created": 1741570283, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking.", "refusal": null,
            "tool_calls": [{"id": "call_a", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            "logprobs": null, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
            "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0}},
        "system_fingerprint": "fp_x"
    });
    let Response::Chat(r) = decode(ProviderKind::OpenAi, 200, &b).unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.id.as_str(), r.model.as_str(), r.created),
        ("chatcmpl-9", "gpt-4o-2024-08-06", 1741570283)
    );
    assert_eq!(r.choices[0].message.joined_text(), "Checking.");
    assert_eq!(
        r.choices[0].message.tool_calls,
        vec![ToolCall {
            id: "call_a".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into()
        }]
    );
    assert_eq!(r.choices[0].finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        r.usage,
        Some(Usage {
            input_tokens: 82,
            output_tokens: 17,
            cached_input_tokens: 64,
            reasoning_tokens: 0
        })
    );
    // Re-encoding for an OpenAI client gives back the same essentials.
    let v: Value = serde_json::from_slice(&encode_chat_response(&r)).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"],
        b["choices"][0]["message"]["tool_calls"]
    );
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 64);

    for (wire, want) in [
        ("stop", FinishReason::Stop),
        ("length", FinishReason::Length),
        ("model_length", FinishReason::Length),
        ("tool_calls", FinishReason::ToolCalls),
        ("function_call", FinishReason::ToolCalls),
        ("content_filter", FinishReason::ContentFilter),
    ] {
        let b = json!({"id": "x", "model": "m", "choices": [{"index": 0,
            "message": {"role": "assistant", "content": "a"}, "finish_reason": wire}]});
        let Response::Chat(r) = decode(ProviderKind::OpenAi, 200, &b).unwrap() else {
            panic!()
        };
        assert_eq!(r.choices[0].finish_reason, want, "{wire}");
    }
    // Mistral: chunked content with thinking, an `error` finish, no id/model.
    let b = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
        {"type": "text", "text": "Answer"}]}, "finish_reason": "stop"}]});
    let Response::Chat(r) = decode(ProviderKind::Mistral, 200, &b).unwrap() else {
        panic!()
    };
    assert_eq!(r.choices[0].message.joined_text(), "Answer");
    assert_eq!(r.model, "gpt-4o");
    let b = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": ""},
        "finish_reason": "error"}]});
    assert!(matches!(
        decode(ProviderKind::Mistral, 200, &b).unwrap(),
        Response::Error(ErrorInfo { status: 502, .. })
    ));
    // A refusal stays a refusal, not content.
    let b = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null,
        "refusal": "I can't help with that."}, "finish_reason": "stop"}]});
    let Response::Chat(r) = decode(ProviderKind::OpenAi, 200, &b).unwrap() else {
        panic!()
    };
    let m = &r.choices[0].message;
    assert_eq!(m.refusal.as_deref(), Some("I can't help with that."));
    assert!(m.content.is_empty(), "{m:?}");
}

/// `invalid_api_key` marks a refused key under any status (compatible servers send it with a
/// 403); a 403 without it is a permission the request needed, not a bad key.
#[test]
fn a_refused_key_is_an_authentication_error_whatever_the_status() {
    let bad_key = json!({"error": {"message": "Incorrect API key provided: sk-***x", "type": "invalid_request_error", "code": "invalid_api_key"}});
    for status in [400, 401, 403] {
        let Response::Error(e) = decode(ProviderKind::OpenAi, status, &bad_key).unwrap() else {
            panic!("not an error")
        };
        assert_eq!(e.kind, ErrorKind::Authentication, "{status}");
    }
    let denied = json!({"error": {"message": "You are not allowed to sample from this model", "type": "invalid_request_error", "code": null}});
    let Response::Error(e) = decode(ProviderKind::OpenAi, 403, &denied).unwrap() else {
        panic!("not an error")
    };
    assert_eq!(e.kind, ErrorKind::PermissionDenied);
}

#[test]
fn provider_errors_keep_the_providers_message_and_status() {
    let cases = [
        (
            429,
            json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
            "Rate limit reached",
            ErrorKind::RateLimited,
        ),
        (
            400,
            json!({"object": "error", "message": "Tool call id was abc but must be a-z", "type": "invalid_request_error"}),
            "Tool call id was abc but must be a-z",
            ErrorKind::InvalidRequest,
        ),
        (
            422,
            json!({"detail": [{"loc": ["body", "x"], "msg": "Extra inputs are not permitted"}]}),
            "Extra inputs are not permitted",
            ErrorKind::InvalidRequest,
        ),
        (
            404,
            json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment does not exist"}}),
            "The API deployment does not exist",
            ErrorKind::NotFound,
        ),
        (
            503,
            json!("<html>"),
            "the provider answered with HTTP status 503",
            ErrorKind::Unavailable,
        ),
    ];
    for (status, b, message, kind) in cases {
        assert_eq!(
            decode(ProviderKind::OpenAi, status, &b).unwrap(),
            Response::Error(ErrorInfo::new(status, kind, message))
        );
    }
    let raw = decode_response(
        &spec(ProviderKind::OpenAi),
        &Request::Chat(basic(vec![])),
        500,
        b"not json",
    )
    .unwrap();
    assert!(matches!(
        raw,
        Response::Error(ErrorInfo {
            status: 500,
            kind: ErrorKind::Upstream,
            ..
        })
    ));
}

#[test]
fn malformed_success_bodies_are_upstream_errors() {
    for b in [
        json!([]),
        json!({"id": "x"}),
        json!({"choices": [1]}),
        json!({"choices": [{"index": 0}]}),
        json!({"choices": [{"message": {"content": 5}}]}),
        json!({"choices": [{"message": {"tool_calls": [{"function": {}}]}}]}),
        json!({"choices": [], "usage": {"prompt_tokens": -1}}),
    ] {
        assert!(
            matches!(
                decode(ProviderKind::OpenAi, 200, &b),
                Err(WireError::Upstream { .. })
            ),
            "{b}"
        );
    }
    let r = decode_response(
        &spec(ProviderKind::OpenAi),
        &Request::Chat(basic(vec![])),
        200,
        b"{\"choices\":",
    );
    assert!(matches!(r, Err(WireError::Upstream { .. })));
}

#[test]
fn embeddings_answers_decode_in_index_order() {
    let req = Request::Embeddings(EmbeddingsRequest {
        model: "te3".into(),
        input: vec!["a".into(), "b".into()],
        ..Default::default()
    });
    let b = json!({"object": "list", "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 1, "embedding": [0.5]},
                 {"object": "embedding", "index": 0, "embedding": [1, -0.25]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4}});
    let r = decode_response(
        &spec(ProviderKind::OpenAi),
        &req,
        200,
        b.to_string().as_bytes(),
    );
    assert_eq!(
        r.unwrap(),
        Response::Embeddings(EmbeddingsResponse {
            model: "text-embedding-3-small".into(),
            data: vec![vec![1.0, -0.25], vec![0.5]],
            usage: Some(Usage {
                input_tokens: 4,
                ..Default::default()
            })
        })
    );
    let b = json!({"data": [{"index": 0, "embedding": "AAAA"}]});
    let r = decode_response(
        &spec(ProviderKind::OpenAi),
        &req,
        200,
        b.to_string().as_bytes(),
    );
    assert!(matches!(r, Err(WireError::Upstream { .. })));
}

// ---------------------------------------------------------------- streams

fn stream_req(include_usage: bool) -> ChatRequest {
    ChatRequest {
        stream: true,
        stream_include_usage: include_usage,
        ..basic(vec![user("q")])
    }
}

fn encode_events(req: &ChatRequest, events: &[StreamEvent], end: bool) -> Vec<Value> {
    let mut enc = ChatStreamEncoder::new(req);
    let mut out = Vec::new();
    for ev in events {
        enc.event(ev, &mut out);
    }
    if end {
        enc.end(&mut out);
    }
    sse_data(&out)
        .into_iter()
        .map(|d| {
            if d == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(&d).unwrap()
            }
        })
        .collect()
}

fn sample_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "chatcmpl-1".into(),
            model: "gpt-4o".into(),
            created: 1700000000,
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "Hi".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
        },
        StreamEvent::ToolCallDelta {
            choice: 0,
            index: 0,
            arguments: "{\"a\":1}".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 5,
            output_tokens: 3,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        }),
    ]
}

#[test]
fn the_stream_encoder_writes_chunks_the_sdk_accepts() {
    let got = encode_events(&stream_req(true), &sample_events(), true);
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let wants = [
        choice(json!({"role": "assistant", "content": ""}), Value::Null),
        choice(json!({"content": "Hi"}), Value::Null),
        choice(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "f", "arguments": ""}}]}),
            Value::Null,
        ),
        choice(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}),
            Value::Null,
        ),
        choice(json!({}), json!("tool_calls")),
        json!([]),
    ];
    assert_eq!(got.len(), wants.len() + 1);
    for (chunk, want) in got.iter().zip(wants.iter()) {
        assert_eq!(chunk["id"], "chatcmpl-1");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["created"], 1700000000);
        assert_eq!(chunk["model"], "gpt-4o");
        assert_eq!(&chunk["choices"], want);
    }
    assert_eq!(
        got[5]["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    );
    assert_eq!(got.last(), Some(&json!("[DONE]")));

    // Usage the client did not ask for is swallowed.
    let got = encode_events(&stream_req(false), &sample_events(), true);
    assert_eq!(got.len(), 6);
    assert!(got.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn stream_errors_are_what_the_sdk_raises_on_and_nothing_follows() {
    let mut events = sample_events();
    events.truncate(2);
    events.push(StreamEvent::Error(ErrorInfo::new(
        529,
        ErrorKind::Unavailable,
        "Overloaded",
    )));
    events.push(StreamEvent::TextDelta {
        choice: 0,
        text: "late".into(),
    });
    let got = encode_events(&stream_req(true), &events, true);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2]["error"]["message"], "Overloaded");
    assert_eq!(got[2]["error"]["type"], "server_error");

    // Truncated: no finish, no error.
    let mut events = sample_events();
    events.truncate(3);
    let got = encode_events(&stream_req(true), &events, true);
    let last = got.last().unwrap();
    assert_eq!(
        last["error"]["message"],
        "the provider's stream ended before the answer was complete"
    );
    assert!(!got.contains(&json!("[DONE]")));
}

/// A recorded-style OpenAI stream: text, two parallel tool calls, then usage.
const OPENAI_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_f9f4fb6dbf\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"x\"}\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me check, h\u{e9}llo \u{1f980}.\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"loc\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ation\\\":\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_def\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":82,\"completion_tokens\":40,\"total_tokens\":122,\"prompt_tokens_details\":{\"cached_tokens\":64,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
    "data: [DONE]\n\n",
);

fn openai_stream_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "chatcmpl-B9".into(),
            model: "gpt-4o-2024-08-06".into(),
            created: 1741570283,
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "Let me check, h\u{e9}llo \u{1f980}.".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "call_abc".into(),
            name: "get_weather".into(),
        },
        StreamEvent::ToolCallDelta {
            choice: 0,
            index: 0,
            arguments: "{\"loc".into(),
        },
        StreamEvent::ToolCallDelta {
            choice: 0,
            index: 0,
            arguments: "ation\":\"Paris\"}".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 1,
            id: "call_def".into(),
            name: "get_time".into(),
        },
        StreamEvent::ToolCallDelta {
            choice: 0,
            index: 1,
            arguments: "{}".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 82,
            output_tokens: 40,
            cached_input_tokens: 64,
            reasoning_tokens: 0,
        }),
    ]
}

fn decode_chunks(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, WireError> {
    let mut dec = ChatStreamDecoder::new(&stream_req(false), 1 << 16);
    let mut out = Vec::new();
    for c in chunks {
        dec.feed(c, &mut out)?;
    }
    dec.end(&mut out)?;
    Ok(out)
}

#[test]
fn bytes_after_done_in_the_same_chunk_are_ignored_like_in_a_later_chunk() {
    // Regression for a fuzz finding: garbage after `[DONE]` in the same chunk used to discard
    // the whole chunk, final text and finish included.
    let body: &[u8] = b"data: {\"id\":\"c\",\"model\":\"m\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n\xff\n";
    let split = decode_chunks(&[&body[..body.len() - 2], &body[body.len() - 2..]]).unwrap();
    assert!(split
        .iter()
        .any(|e| matches!(e, StreamEvent::TextDelta { text, .. } if text == "hi")));
    assert!(split
        .iter()
        .any(|e| matches!(e, StreamEvent::Finish { .. })));
    assert_eq!(decode_chunks(&[body]).unwrap(), split);
}

#[test]
fn a_recorded_openai_stream_decodes_the_same_in_every_split() {
    let whole = decode_chunks(&[OPENAI_STREAM.as_bytes()]).unwrap();
    assert_eq!(whole, openai_stream_events());
    for chunks in splits(OPENAI_STREAM.as_bytes(), 300) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_chunks(&parts).unwrap(), whole);
    }
}

#[test]
fn decoder_then_encoder_reproduces_a_valid_openai_stream() {
    let events = decode_chunks(&[OPENAI_STREAM.as_bytes()]).unwrap();
    let mut enc = ChatStreamEncoder::new(&stream_req(true));
    let mut out = Vec::new();
    for ev in &events {
        enc.event(ev, &mut out);
    }
    enc.end(&mut out);
    // The re-encoded stream is itself a provider stream that decodes to the same events.
    assert_eq!(decode_chunks(&[&out]).unwrap(), events);
    let data = sse_data(&out);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let original: Vec<Value> = sse_data(OPENAI_STREAM.as_bytes())
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let again: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(again.len(), original.len());
    for (a, o) in again.iter().zip(&original) {
        for k in ["id", "created", "model", "object"] {
            assert_eq!(a[k], o[k], "{k}");
        }
        for (ac, oc) in a["choices"]
            .as_array()
            .unwrap()
            .iter()
            .zip(o["choices"].as_array().unwrap())
        {
            assert_eq!(ac["finish_reason"], oc["finish_reason"]);
            assert_eq!(ac["delta"]["content"], oc["delta"]["content"]);
            assert_eq!(ac["delta"]["tool_calls"], oc["delta"]["tool_calls"]);
        }
    }
    assert_eq!(
        again.last().unwrap()["usage"],
        json!({"prompt_tokens": 82, "completion_tokens": 40, "total_tokens": 122,
            "prompt_tokens_details": {"cached_tokens": 64}})
    );
}

#[test]
fn mistral_and_vllm_streams_with_usage_beside_choices_and_whole_tool_calls() {
    let s = concat!(
        "data: {\"id\":\"m1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"mistral-large\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"m1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"mistral-large\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"tool_calls\":[{\"id\":\"abcDEF123\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\": 1}\"},\"index\":0},{\"id\":\"ghiJKL456\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"},\"index\":0}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":10,\"total_tokens\":15,\"completion_tokens\":5}}\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(
        decode_chunks(&[s.as_bytes()]).unwrap(),
        vec![
            StreamEvent::Start {
                id: "m1".into(),
                model: "mistral-large".into(),
                created: 5
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "abcDEF123".into(),
                name: "f".into()
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "{\"a\": 1}".into()
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 1,
                id: "ghiJKL456".into(),
                name: "g".into()
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 1,
                arguments: "{}".into()
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls
            },
            StreamEvent::Usage(Usage {
                input_tokens: 10,
                output_tokens: 5,
                cached_input_tokens: 0,
                reasoning_tokens: 0
            }),
        ]
    );
}

#[test]
fn azure_filter_chunks_errors_and_broken_streams() {
    // Azure opens with an id-less, choice-less chunk of prompt filter results.
    let s = concat!(
        "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n",
        "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null,\"index\":0}],\"created\":9,\"id\":\"chatcmpl-az\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}],\"created\":9,\"id\":\"chatcmpl-az\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n\n",
        "data: [DONE]\n\n",
        "data: {\"ignored\": true\n\n",
    );
    let got = decode_chunks(&[s.as_bytes()]).unwrap();
    assert_eq!(
        got[0],
        StreamEvent::Start {
            id: "chatcmpl-az".into(),
            model: "gpt-4o".into(),
            created: 9
        }
    );
    assert_eq!(got.len(), 3);

    // An error payload ends the stream, dropping pending usage and later chunks.
    let s = concat!(
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":1}}\n\n",
        "event: error\ndata: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"code\":null}}\n\n",
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n",
    );
    let got = decode_chunks(&[s.as_bytes()]).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2],
        StreamEvent::Error(ErrorInfo::new(
            502,
            ErrorKind::Upstream,
            "The server had an error"
        ))
    );
    // Mistral's `error` finish reason is a failure too.
    let s = "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"error\"}]}\n\n";
    let got = decode_chunks(&[s.as_bytes()]).unwrap();
    assert!(matches!(got.last(), Some(StreamEvent::Error(_))));

    // A cut-off final line, a non-JSON chunk and an oversized frame are upstream errors.
    for bad in [
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"".to_string(),
        "data: hello\n\n".to_string(),
        "data: [1]\n\n".to_string(),
        format!("data: \"{}\"\n\n", "x".repeat(1 << 17)),
    ] {
        assert!(
            matches!(
                decode_chunks(&[bad.as_bytes()]),
                Err(WireError::Upstream { .. })
            ),
            "{bad}"
        );
    }
    // No finish reason: the decoder reports what it saw; the encoder turns the end into an error.
    let s = "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n";
    let events = decode_chunks(&[s.as_bytes()]).unwrap();
    let out = encode_events(&stream_req(false), &events, true);
    assert!(out.last().unwrap().get("error").is_some());
}

// ---------------------------------------------------------------- reasoning and refusals

#[test]
fn reasoning_controls_decode_from_openai_and_openrouter_spellings() {
    let with = |extra: Value| {
        let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "q"}]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        chat(b).unwrap().reasoning
    };
    assert_eq!(
        with(json!({"reasoning_effort": "high"})),
        Some(Reasoning {
            enabled: Some(true),
            effort: Some(Effort::High),
            ..Default::default()
        })
    );
    assert_eq!(
        with(json!({"reasoning_effort": "none"})),
        Some(Reasoning {
            enabled: Some(false),
            ..Default::default()
        })
    );
    assert_eq!(
        with(json!({"reasoning": {"max_tokens": 3000, "exclude": true}})),
        Some(Reasoning {
            budget_tokens: Some(3000),
            visible: Some(false),
            ..Default::default()
        })
    );
    assert_eq!(with(json!({})), None);
    let bad = |extra: Value| {
        let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "q"}]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        invalid_field(chat(b))
    };
    assert_eq!(bad(json!({"reasoning_effort": "huge"})), "reasoning_effort");
    assert_eq!(bad(json!({"reasoning": {"depth": 1}})), "reasoning.depth");
}

#[test]
fn assistant_turns_bring_their_reasoning_and_refusal_back() {
    let req = chat(json!({"model": "m", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning_details": [
            {"type": "reasoning.text", "text": "t1", "signature": "EqQB", "format": "anthropic-claude-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "ZW5j", "format": "openai-responses-v1", "index": 1},
            {"type": "reasoning.text", "text": "t2", "signature": "forged?", "format": "unknown", "index": 2}
        ], "reasoning_content": "ignored when details come"},
        {"role": "assistant", "content": null, "reasoning_content": "plain thoughts", "refusal": "no."},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "not "}, {"type": "refusal", "refusal": "this"}]}
    ]}))
    .unwrap();
    let reasoning =
        |text: &str, signature: Option<&str>, redacted: Option<&str>, origin| Part::Reasoning {
            text: text.into(),
            signature: signature.map(Into::into),
            redacted: redacted.map(Into::into),
            id: None,
            origin,
        };
    assert_eq!(
        req.messages[1].content,
        [
            reasoning("t1", Some("EqQB"), None, Some(Origin::Anthropic)),
            reasoning("", None, Some("ZW5j"), Some(Origin::OpenAiResponses)),
            // A payload of no known origin is not kept: it could only be sent somewhere blind.
            reasoning("t2", None, None, None),
            Part::Text { text: "a".into() },
        ]
    );
    assert_eq!(
        req.messages[2].content,
        [reasoning("plain thoughts", None, None, None)]
    );
    assert_eq!(req.messages[2].refusal.as_deref(), Some("no."));
    assert_eq!(req.messages[3].refusal.as_deref(), Some("not this"));
    assert!(req.messages[3].content.is_empty());
}

#[test]
fn reasoning_effort_is_sent_at_the_nearest_level_and_history_reasoning_is_not() {
    let mut req = basic(vec![
        user("q"),
        Message {
            content: vec![
                Part::Reasoning {
                    text: "secret thoughts".into(),
                    signature: Some("sig".into()),
                    redacted: None,
                    id: None,
                    origin: Some(Origin::Anthropic),
                },
                Part::Text { text: "a".into() },
            ],
            refusal: Some("no.".into()),
            ..Message::text(Role::Assistant, "")
        },
    ]);
    for (r, want) in [
        (
            Reasoning {
                budget_tokens: Some(20000),
                ..Default::default()
            },
            Some("high"),
        ),
        (
            Reasoning {
                effort: Some(Effort::Max),
                ..Default::default()
            },
            Some("xhigh"),
        ),
        (
            Reasoning {
                enabled: Some(false),
                ..Default::default()
            },
            Some("none"),
        ),
        (
            Reasoning {
                enabled: Some(true),
                adaptive: true,
                ..Default::default()
            },
            None,
        ),
    ] {
        req.reasoning = Some(r);
        let b = body(&encode(ProviderKind::OpenAi, &req).unwrap());
        assert_eq!(b.get("reasoning_effort").and_then(Value::as_str), want);
        assert_eq!(b["messages"][1]["content"], "a");
        // OpenAI reads a refusal in the history as `refusal`; other servers get it as text.
        assert_eq!(b["messages"][1]["refusal"], "no.");
        assert!(!b.to_string().contains("secret thoughts"));
    }
    let b = body(&encode(ProviderKind::OpenAiCompatible, &req).unwrap());
    assert_eq!(b["messages"][1]["content"], "ano.");
    assert!(b["messages"][1].get("refusal").is_none());
    assert_eq!(
        encode(ProviderKind::Mistral, &req),
        Err(WireError::unsupported("reasoning", "mistral"))
    );
}

#[test]
fn answers_keep_refusal_reasoning_and_reasoning_tokens_apart_from_the_text() {
    // vLLM / DeepSeek: `reasoning_content`; OpenRouter: `reasoning_details` with signatures.
    let b = json!({"id": "x", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2"},
         "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "5", "reasoning": "ignored",
          "reasoning_details": [{"type": "reasoning.text", "text": "hm", "signature": "EqQB",
                                 "format": "anthropic-claude-v1", "index": 0}]},
         "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12,
                  "completion_tokens_details": {"reasoning_tokens": 7}}});
    let Response::Chat(r) = decode(ProviderKind::OpenAiCompatible, 200, &b).unwrap() else {
        panic!()
    };
    assert_eq!(r.usage.unwrap().reasoning_tokens, 7);
    assert_eq!(r.choices[0].message.joined_text(), "4");
    assert!(matches!(&r.choices[0].message.content[0],
        Part::Reasoning { text, origin: None, .. } if text == "2+2"));
    assert!(matches!(&r.choices[1].message.content[0],
        Part::Reasoning { text, signature: Some(s), origin: Some(Origin::Anthropic), .. } if text == "hm" && s == "EqQB"));
    // Back to an OpenAI client: the text, and the reasoning beside it in both spellings.
    let v: Value = serde_json::from_slice(&encode_chat_response(&r)).unwrap();
    let m = &v["choices"][1]["message"];
    assert_eq!(m["content"], "5");
    assert_eq!(m["refusal"], Value::Null);
    assert_eq!(m["reasoning_content"], "hm");
    assert_eq!(
        m["reasoning_details"],
        json!([{"type": "reasoning.text", "text": "hm", "signature": "EqQB",
                "format": "anthropic-claude-v1", "index": 0}])
    );
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        7
    );
    // What the client sends back is what came: the signature round-trips.
    let back =
        chat(json!({"model": "m", "messages": [{"role": "user", "content": "q"}, m]})).unwrap();
    assert_eq!(back.messages[1].content, r.choices[1].message.content);
}

/// OpenAI's structured-output refusal, streamed (the shape of the API reference's example:
/// `content` null, the refusal in `delta.refusal` fragments).
const REFUSAL_STREAM: &str = concat!(
    "data: {\"id\":\"chatcmpl-R1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_f9f4fb6dbf\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":\"\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-R1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_f9f4fb6dbf\",\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I'm sorry, \"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-R1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_f9f4fb6dbf\",\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I cannot assist with that request.\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-R1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_f9f4fb6dbf\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-R1\",\"object\":\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":9,\"total_tokens\":39}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn a_recorded_refusal_stream_stays_a_refusal_in_every_split() {
    let whole = decode_chunks(&[REFUSAL_STREAM.as_bytes()]).unwrap();
    let refusal: String = whole
        .iter()
        .filter_map(|e| match e {
            StreamEvent::RefusalDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(refusal, "I'm sorry, I cannot assist with that request.");
    assert!(!whole
        .iter()
        .any(|e| matches!(e, StreamEvent::TextDelta { .. })));
    for chunks in splits(REFUSAL_STREAM.as_bytes(), 300) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_chunks(&parts).unwrap(), whole);
    }
    // Re-encoded for an OpenAI client: `delta.refusal`, never `content`.
    let chunks = encode_events(&stream_req(false), &whole, true);
    let refused: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["refusal"].as_str())
        .collect();
    assert_eq!(refused, refusal);
    assert!(chunks.iter().all(|c| c["choices"][0]["delta"]["content"]
        .as_str()
        .unwrap_or("")
        .is_empty()));
}

/// DeepSeek's reasoner (and vLLM's reasoning parsers): `reasoning_content` deltas before the
/// answer's `content`.
const REASONING_STREAM: &str = concat!(
    "data: {\"id\":\"d1\",\"object\":\"chat.completion.chunk\",\"created\":1737000000,\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"d1\",\"object\":\"chat.completion.chunk\",\"created\":1737000000,\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\"reasoning_content\":\"Two plus \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"d1\",\"object\":\"chat.completion.chunk\",\"created\":1737000000,\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\"reasoning_content\":\"two.\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"d1\",\"object\":\"chat.completion.chunk\",\"created\":1737000000,\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"4\",\"reasoning_content\":null},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"d1\",\"object\":\"chat.completion.chunk\",\"created\":1737000000,\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\",\"reasoning_content\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":13,\"completion_tokens\":20,\"total_tokens\":33,\"completion_tokens_details\":{\"reasoning_tokens\":15}}}\n\n",
    "data: [DONE]\n\n",
);

#[test]
fn a_recorded_reasoning_stream_decodes_in_every_split_and_reaches_openai_clients() {
    let whole = decode_chunks(&[REASONING_STREAM.as_bytes()]).unwrap();
    assert_eq!(
        whole[1..5],
        [
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "Two plus ".into()
            },
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "two.".into()
            },
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: None,
                redacted: None,
                id: None,
                origin: None
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "4".into()
            },
        ]
    );
    assert!(matches!(whole.last(), Some(StreamEvent::Usage(u)) if u.reasoning_tokens == 15));
    for chunks in splits(REASONING_STREAM.as_bytes(), 300) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_chunks(&parts).unwrap(), whole);
    }
    // A signed block (say, from Anthropic) closes with its signature in `reasoning_details`,
    // which the SDK's accumulator merges with the text fragments by `index`.
    let mut events = whole.clone();
    events[3] = StreamEvent::ReasoningEnd {
        choice: 0,
        signature: Some("EqQB".into()),
        redacted: None,
        id: None,
        origin: Some(Origin::Anthropic),
    };
    let chunks = encode_events(&stream_req(false), &events, true);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Two plus two.");
    let details: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("reasoning_details"))
        .collect();
    assert_eq!(
        details,
        [
            &json!([{"type": "reasoning.text", "text": "Two plus ", "index": 0}]),
            &json!([{"type": "reasoning.text", "text": "two.", "index": 0}]),
            &json!([{"type": "reasoning.text", "signature": "EqQB", "format": "anthropic-claude-v1", "index": 0}]),
        ]
    );
}

#[test]
fn an_error_written_outside_sse_framing_ends_a_compatible_servers_stream() {
    let s = concat!(
        "data: {\"id\":\"c\",\"model\":\"m\",\"created\":1,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"},\"finish_reason\":null}]}\n\n",
        "{\"error\": {\"message\": \"CUDA out of memory\", \"type\": \"InternalServerError\", \"code\": 500}}\n"
    );
    let whole = decode_chunks(&[s.as_bytes()]).unwrap();
    assert!(matches!(whole.last(),
        Some(StreamEvent::Error(e)) if e.status == 500 && e.message == "CUDA out of memory"));
    for chunks in splits(s.as_bytes(), 100) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_chunks(&parts).unwrap(), whole);
    }
}

#[test]
fn top_k_from_clients_of_compatible_servers_is_a_sampling_field() {
    let req =
        chat(json!({"model": "m", "top_k": 20, "messages": [{"role": "user", "content": "q"}]}))
            .unwrap();
    assert_eq!(req.top_k, Some(20));
    assert_eq!(
        invalid_field(chat(
            json!({"model": "m", "top_k": -1, "messages": [{"role": "user", "content": "q"}]})
        )),
        "top_k"
    );
}

#[test]
fn an_azure_deployment_stays_one_path_segment() {
    let mut ir = basic(vec![user("hi")]);
    ir.model = "..".into();
    let out = encode(ProviderKind::AzureOpenAi, &ir).unwrap();
    assert_eq!(
        out.path,
        "/openai/deployments/%2E%2E/chat/completions?api-version=2024-10-21"
    );
    ir.model = "../../x?api-version=1".into();
    let out = encode(ProviderKind::AzureOpenAi, &ir).unwrap();
    assert_eq!(
        out.path,
        "/openai/deployments/..%2F..%2Fx%3Fapi-version%3D1/chat/completions?api-version=2024-10-21"
    );
}
