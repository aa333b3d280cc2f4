//! Bedrock codec tests: request encoding, answer and error decoding, and recorded streams decoded
//! in every split.

use super::provider::*;
use super::stream::*;
use crate::ir::*;
use crate::stream::eventstream::Message as Frame;
use crate::stream::eventstream::{encode, HeaderValue};
use crate::stream::testutil::splits;
use crate::wire::{drop, Outgoing, ProviderSpec, WireError};
use crate::wire::{ProviderKind, StreamDecoder as _};
use serde_json::{json, Value};

fn spec() -> ProviderSpec {
    ProviderSpec {
        kind: ProviderKind::Bedrock,
        host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
        base_path: String::new(),
        api_version: None,
        region: Some("us-east-1".into()),
        anthropic_version: String::new(),
    }
}

fn user(text: &str) -> Message {
    Message::text(Role::User, text)
}

fn call(id: &str, name: &str, args: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    }
}

fn tool_msg(id: &str, text: &str) -> Message {
    Message {
        tool_call_id: Some(id.into()),
        ..Message::text(Role::Tool, text)
    }
}

fn chat(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
        messages,
        ..Default::default()
    }
}

fn body(out: &Outgoing) -> Value {
    serde_json::from_slice(&out.body).unwrap()
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: Some("Weather for a city".into()),
        parameters: json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
        strict: None,
    }
}

#[test]
fn encodes_a_full_conversation() {
    let mut assistant = Message::text(Role::Assistant, "Let me check.");
    assistant.tool_calls = vec![
        call("tooluse_1", "get_weather", r#"{"city":"Paris"}"#),
        call("tooluse_2", "get_weather", ""),
    ];
    let mut failed = tool_msg("tooluse_2", "no city given");
    failed.is_error = true;
    let mut req = chat(vec![
        Message::text(Role::System, "Be brief."),
        Message {
            content: vec![
                Part::Text {
                    text: "Weather?".into(),
                },
                Part::Image {
                    source: Media::Base64 {
                        media_type: "image/jpeg".into(),
                        data: "AAAA".into(),
                    },
                },
                Part::Document {
                    source: Media::Base64 {
                        media_type: "application/pdf".into(),
                        data: "JVBE".into(),
                    },
                    title: Some("report_2024.pdf".into()),
                },
            ],
            ..user("")
        },
        assistant,
        tool_msg("tooluse_1", r#"{"temp":21}"#),
        failed,
        user("Thanks"),
        Message::text(Role::Developer, "Use metric."),
    ]);
    req.tools = vec![weather_tool()];
    req.tool_choice = Some(ToolChoice::Required);
    req.max_tokens = Some(100);
    req.temperature = Some(0.5);
    req.top_p = Some(0.9);
    req.stop = vec!["END".into()];
    req.top_k = Some(40);
    // `user` only labels the request: dropped, and said so, whatever the policy.
    req.user = Some("u-1".into());
    let mut ir = Request::Chat(req);
    let (out, dropped) = drop::encode(&spec(), &mut ir, drop::Policy::Refuse).unwrap();
    assert_eq!(dropped, ["user"]);
    assert_eq!(
        out.path,
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert_eq!(
        out.headers,
        vec![("content-type".to_string(), "application/json".to_string())]
    );
    assert_eq!(
        body(&out),
        json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "Weather?"},
                    {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}},
                    {"document": {"format": "pdf", "name": "report 2024 pdf", "source": {"bytes": "JVBE"}}}
                ]},
                {"role": "assistant", "content": [
                    {"text": "Let me check."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "{\"temp\":21}"}]}},
                    {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "no city given"}], "status": "error"}},
                    {"text": "Thanks"}
                ]}
            ],
            "system": [{"text": "Be brief.\n\nUse metric."}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "inputSchema": {"json": {"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}
                }}],
                "toolChoice": {"any": {}}
            },
            "additionalModelRequestFields": {"top_k": 40}
        })
    );
}

#[test]
fn streams_use_converse_stream_and_arns_are_label_encoded_like_botocore() {
    let mut req = chat(vec![user("hi")]);
    req.stream = true;
    req.model =
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
            .into();
    let out = encode_request(&spec(), &Request::Chat(req)).unwrap();
    // botocore's rest-json serializer renders exactly this path for the same model id.
    assert_eq!(
        out.path,
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    );
    assert_eq!(
        body(&out),
        json!({"messages":[{"role":"user","content":[{"text":"hi"}]}]})
    );
}

#[test]
fn tool_choices_map_and_none_drops_the_tools_when_it_can() {
    let encode = |choice: ToolChoice, history: bool| {
        let mut req = chat(vec![user("hi")]);
        if history {
            let mut a = Message::text(Role::Assistant, "");
            a.tool_calls = vec![call("t1", "get_weather", "{}")];
            req.messages.push(a);
            req.messages.push(tool_msg("t1", "sunny"));
        }
        req.tools = vec![weather_tool()];
        req.tool_choice = Some(choice);
        encode_request(&spec(), &Request::Chat(req)).map(|o| body(&o))
    };
    assert_eq!(
        encode(ToolChoice::Auto, false).unwrap()["toolConfig"].get("toolChoice"),
        None
    );
    assert_eq!(
        encode(ToolChoice::Tool("get_weather".into()), false).unwrap()["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "get_weather"}})
    );
    assert_eq!(
        encode(ToolChoice::None, false).unwrap().get("toolConfig"),
        None
    );
    assert_eq!(
        encode(ToolChoice::None, true),
        Err(WireError::unsupported("tool_choice", "bedrock"))
    );
    let mut req = chat(vec![user("hi")]);
    req.tool_choice = Some(ToolChoice::Required);
    assert!(matches!(
        encode_request(&spec(), &Request::Chat(req)),
        Err(WireError::Invalid { .. })
    ));
}

#[test]
fn inexpressible_fields_are_rejected_by_name() {
    type Setter = Box<dyn Fn(&mut ChatRequest)>;
    let cases: Vec<(&str, Setter)> = vec![
        (
            "top_k",
            Box::new(|r| {
                r.model = "meta.llama3-70b-instruct-v1:0".into();
                r.top_k = Some(5);
            }),
        ),
        (
            "reasoning",
            Box::new(|r| {
                r.model = "meta.llama3-70b-instruct-v1:0".into();
                r.reasoning = Some(Reasoning::default());
            }),
        ),
        (
            "response_format",
            Box::new(|r| {
                r.tools = vec![weather_tool()];
                r.response_format = Some(ResponseFormat::JsonObject);
            }),
        ),
        ("user", Box::new(|r| r.user = Some("u".into()))),
        ("seed", Box::new(|r| r.seed = Some(1))),
        ("n", Box::new(|r| r.n = Some(2))),
        (
            "presence_penalty",
            Box::new(|r| r.presence_penalty = Some(0.1)),
        ),
        (
            "frequency_penalty",
            Box::new(|r| r.frequency_penalty = Some(0.1)),
        ),
        (
            "logit_bias",
            Box::new(|r| {
                r.extra.insert("logit_bias".into(), json!({}));
                r.extra_family = Some(Family::OpenAi);
            }),
        ),
        (
            "parallel_tool_calls",
            Box::new(|r| {
                r.tools = vec![weather_tool()];
                r.parallel_tool_calls = Some(false);
            }),
        ),
        (
            "messages[0].content[1]",
            Box::new(|r| {
                r.messages[0].content.push(Part::Image {
                    source: Media::Base64 {
                        media_type: "image/bmp".into(),
                        data: "AA".into(),
                    },
                });
            }),
        ),
        (
            "messages[0].content[1]",
            Box::new(|r| {
                r.messages[0].content.push(Part::Document {
                    source: Media::Base64 {
                        media_type: "application/zip".into(),
                        data: "AA".into(),
                    },
                    title: None,
                });
            }),
        ),
    ];
    for (field, set) in cases {
        let mut req = chat(vec![user("hi")]);
        set(&mut req);
        assert_eq!(
            encode_request(&spec(), &Request::Chat(req)),
            Err(WireError::unsupported(field, "bedrock")),
            "{field}"
        );
    }
    // A URL where Converse needs bytes says so.
    let mut url = chat(vec![user("hi")]);
    url.messages[0].content = vec![Part::Image {
        source: Media::Url {
            url: "https://x/y.png".into(),
        },
    }];
    assert_eq!(
        encode_request(&spec(), &Request::Chat(url)),
        Err(WireError::needs_bytes("messages[0].content[0]", "bedrock"))
    );
    let mut ok = chat(vec![user("hi")]);
    ok.n = Some(1);
    ok.parallel_tool_calls = Some(true);
    ok.response_format = Some(ResponseFormat::Text);
    assert!(encode_request(&spec(), &Request::Chat(ok)).is_ok());
    let emb = Request::Embeddings(EmbeddingsRequest {
        model: "amazon.titan-embed-text-v2:0".into(),
        input: vec!["x".into()],
        ..Default::default()
    });
    assert_eq!(
        encode_request(&spec(), &emb),
        Err(WireError::unsupported("embeddings", "bedrock"))
    );
}

#[test]
fn bad_tool_arguments_and_missing_ids_are_invalid() {
    let mut a = Message::text(Role::Assistant, "");
    a.tool_calls = vec![call("t1", "f", "[1,2]")];
    let req = chat(vec![user("hi"), a]);
    assert_eq!(
        encode_request(&spec(), &Request::Chat(req)),
        Err(WireError::invalid(
            "messages[1].tool_calls[0].function.arguments",
            "tool call arguments must be a JSON object"
        ))
    );
    let req = chat(vec![user("hi"), Message::text(Role::Tool, "x")]);
    assert!(matches!(
        encode_request(&spec(), &Request::Chat(req)),
        Err(WireError::Invalid { field, .. }) if field == "messages[1].tool_call_id"
    ));
}

fn req_ir() -> Request {
    Request::Chat(chat(vec![user("hi")]))
}

#[test]
fn decodes_text_tool_use_and_usage() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "EqQBsig"}}},
            {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}},
            {"text": "Checking. "},
            {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
        "metrics": {"latencyMs": 100}
    });
    let got = decode_response(&req_ir(), 200, body.to_string().as_bytes(), 1_700_000_000).unwrap();
    assert_eq!(
        got,
        Response::Chat(ChatResponse {
            id: "bedrock-1700000000".into(),
            model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            created: 1_700_000_000,
            choices: vec![Choice {
                index: 0,
                message: Message {
                    content: vec![
                        Part::Reasoning {
                            text: "hmm".into(),
                            signature: Some("EqQBsig".into()),
                            redacted: None,
                            id: None,
                            origin: Some(Origin::Anthropic),
                        },
                        Part::Reasoning {
                            text: String::new(),
                            signature: None,
                            redacted: Some("cmVkYWN0ZWQ=".into()),
                            id: None,
                            origin: Some(Origin::Anthropic),
                        },
                        Part::Text {
                            text: "Checking. ".into()
                        },
                    ],
                    tool_calls: vec![call("tooluse_abc", "get_weather", r#"{"city":"Paris"}"#)],
                    ..Message::text(Role::Assistant, "")
                },
                finish_reason: FinishReason::ToolCalls,
            }],
            usage: Some(Usage {
                input_tokens: 40,
                output_tokens: 5,
                cached_input_tokens: 20,
                reasoning_tokens: 0
            }),
        })
    );
}

#[test]
fn stop_reasons_map() {
    for (stop, want) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("content_filtered", FinishReason::ContentFilter),
        ("guardrail_intervened", FinishReason::ContentFilter),
        ("something_new", FinishReason::Stop),
    ] {
        let body = json!({"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":stop});
        let Response::Chat(c) =
            decode_response(&req_ir(), 200, body.to_string().as_bytes(), 1).unwrap()
        else {
            panic!("not chat")
        };
        assert_eq!(c.choices[0].finish_reason, want, "{stop}");
        assert_eq!(c.usage, None);
    }
}

/// Bedrock's bad-credential 403s are told from a model the key may not use by their messages
/// (the exception name is only in a header).
#[test]
fn credential_failures_are_told_from_access_to_one_model() {
    let kind = |status: u16, message: &str| {
        let body = json!({ "message": message }).to_string();
        match decode_response(&req_ir(), status, body.as_bytes(), 1).unwrap() {
            Response::Error(e) => e.kind,
            other => panic!("not an error: {other:?}"),
        }
    };
    for m in [
        "The security token included in the request is invalid.",
        "The security token included in the request is expired",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    ] {
        assert_eq!(kind(403, m), ErrorKind::Authentication, "{m}");
    }
    assert_eq!(
        kind(
            403,
            "You don't have access to the model with the specified model ID."
        ),
        ErrorKind::PermissionDenied
    );
}

#[test]
fn errors_carry_the_message_and_a_fitting_status() {
    let got = decode_response(
        &req_ir(),
        429,
        br#"{"message":"Too many requests, please wait before trying again."}"#,
        1,
    )
    .unwrap();
    assert_eq!(
        got,
        Response::Error(ErrorInfo::new(
            429,
            ErrorKind::RateLimited,
            "Too many requests, please wait before trying again."
        ))
    );
    let Response::Error(e) =
        decode_response(&req_ir(), 424, br#"{"Message":"model failed"}"#, 1).unwrap()
    else {
        panic!("not an error")
    };
    assert_eq!(
        (e.status, e.kind, e.message.as_str()),
        (502, ErrorKind::Upstream, "model failed")
    );
    let Response::Error(e) = decode_response(&req_ir(), 400, b"<html>", 1).unwrap() else {
        panic!("not an error")
    };
    assert_eq!((e.status, e.kind), (400, ErrorKind::InvalidRequest));
    assert!(matches!(
        decode_response(&req_ir(), 200, b"{not json", 1),
        Err(WireError::Upstream { .. })
    ));
}

fn frame(event: &str, payload: Value) -> Vec<u8> {
    encode(&Frame {
        headers: vec![
            (":event-type".into(), HeaderValue::String(event.into())),
            (
                ":content-type".into(),
                HeaderValue::String("application/json".into()),
            ),
            (":message-type".into(), HeaderValue::String("event".into())),
        ],
        payload: payload.to_string().into_bytes(),
    })
}

/// A ConverseStream answer shaped like a recorded one (including the `p` padding field
/// Bedrock adds to events): text, then a tool call in two input fragments, then usage.
fn recorded_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(frame(
        "messageStart",
        json!({"p":"abcdefgh","role":"assistant"}),
    ));
    s.extend(frame(
        "contentBlockDelta",
        json!({"contentBlockIndex":0,"delta":{"text":"Let me "},"p":"abcd"}),
    ));
    s.extend(frame(
        "contentBlockDelta",
        json!({"contentBlockIndex":0,"delta":{"text":"check 🌦."},"p":"ab"}),
    ));
    s.extend(frame(
        "contentBlockStop",
        json!({"contentBlockIndex":0,"p":"abcdefghij"}),
    ));
    s.extend(frame("contentBlockStart", json!({"contentBlockIndex":1,"p":"abc","start":{"toolUse":{"name":"get_weather","toolUseId":"tooluse_Qx1"}}})));
    s.extend(frame(
        "contentBlockDelta",
        json!({"contentBlockIndex":1,"delta":{"toolUse":{"input":""}},"p":"a"}),
    ));
    s.extend(frame(
        "contentBlockDelta",
        json!({"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\": \"Pa"}},"p":"abcdef"}),
    ));
    s.extend(frame(
        "contentBlockDelta",
        json!({"contentBlockIndex":1,"delta":{"toolUse":{"input":"ris\"}"}},"p":"abcdefg"}),
    ));
    s.extend(frame(
        "contentBlockStop",
        json!({"contentBlockIndex":1,"p":"abc"}),
    ));
    s.extend(frame(
        "messageStop",
        json!({"p":"abcdefghijklmn","stopReason":"tool_use"}),
    ));
    s.extend(frame("metadata", json!({"metrics":{"latencyMs":1204},"p":"abc","usage":{"inputTokens":390,"outputTokens":74,"totalTokens":464}})));
    s
}

fn expected_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "bedrock-1700000000".into(),
            model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            created: 1_700_000_000,
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "Let me ".into(),
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "check 🌦.".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "tooluse_Qx1".into(),
            name: "get_weather".into(),
        },
        StreamEvent::ToolCallDelta {
            choice: 0,
            index: 0,
            arguments: "{\"city\": \"Pa".into(),
        },
        StreamEvent::ToolCallDelta {
            choice: 0,
            index: 0,
            arguments: "ris\"}".into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 390,
            output_tokens: 74,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        }),
    ]
}

fn decode_stream(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, WireError> {
    let mut d = StreamDecoder::new(&chat(vec![]), 4096, 1_700_000_000);
    let mut out = Vec::new();
    for c in chunks {
        d.feed(c, &mut out)?;
    }
    d.end(&mut out)?;
    Ok(out)
}

#[test]
fn decodes_a_recorded_stream_in_any_split() {
    let s = recorded_stream();
    assert_eq!(decode_stream(&[&s]).unwrap(), expected_events());
    for chunks in splits(&s, 200) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_stream(&parts).unwrap(), expected_events());
    }
}

#[test]
fn exceptions_become_errors_with_fitting_statuses() {
    for (kind, status, err_kind) in [
        ("throttlingException", 429, ErrorKind::RateLimited),
        ("serviceUnavailableException", 503, ErrorKind::Unavailable),
        ("modelStreamErrorException", 502, ErrorKind::Upstream),
        ("internalServerException", 502, ErrorKind::Upstream),
        ("validationException", 400, ErrorKind::InvalidRequest),
        ("modelTimeoutException", 504, ErrorKind::Timeout),
    ] {
        let mut s = frame("messageStart", json!({"role":"assistant"}));
        s.extend(encode(&Frame {
            headers: vec![
                (":exception-type".into(), HeaderValue::String(kind.into())),
                (
                    ":content-type".into(),
                    HeaderValue::String("application/json".into()),
                ),
                (
                    ":message-type".into(),
                    HeaderValue::String("exception".into()),
                ),
            ],
            payload: br#"{"message":"slow down"}"#.to_vec(),
        }));
        // Anything after the exception is ignored.
        s.extend(frame(
            "contentBlockDelta",
            json!({"contentBlockIndex":0,"delta":{"text":"late"}}),
        ));
        let got = decode_stream(&[&s]).unwrap();
        assert_eq!(got.len(), 2, "{kind}");
        assert_eq!(
            got[1],
            StreamEvent::Error(ErrorInfo::new(status, err_kind, "slow down")),
            "{kind}"
        );
    }
}

#[test]
fn broken_streams_are_upstream_errors() {
    let s = recorded_stream();
    assert!(matches!(
        decode_stream(&[&s[..s.len() - 3]]),
        Err(WireError::Upstream { .. })
    ));
    let mut bad = s.clone();
    bad[40] ^= 0x55;
    assert!(matches!(
        decode_stream(&[&bad]),
        Err(WireError::Upstream { .. })
    ));
    assert!(matches!(
        decode_stream(&[br#"{"message":"not a stream"}"#]),
        Err(WireError::Upstream { .. })
    ));
    let orphan = frame(
        "contentBlockDelta",
        json!({"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}),
    );
    assert!(matches!(
        decode_stream(&[&orphan]),
        Err(WireError::Upstream { .. })
    ));
}

/// What a Bedrock mock would answer for an IR response: the inverse of `decode_response`.
fn mock_converse(resp: &ChatResponse) -> Value {
    let choice = &resp.choices[0];
    let mut content: Vec<Value> = choice
        .message
        .content
        .iter()
        .map(|p| match p {
            Part::Text { text } => json!({"text": text}),
            _ => unreachable!(),
        })
        .collect();
    for c in &choice.message.tool_calls {
        let input: Value = serde_json::from_str(&c.arguments).unwrap();
        content.push(json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": input}}));
    }
    let stop = match choice.finish_reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "content_filtered",
    };
    let u = resp.usage.unwrap();
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": u.input_tokens - u.cached_input_tokens, "outputTokens": u.output_tokens,
                  "totalTokens": u.input_tokens + u.output_tokens, "cacheReadInputTokens": u.cached_input_tokens},
        "metrics": {"latencyMs": 1}
    })
}

#[test]
fn responses_round_trip_through_a_mock() {
    for (text, calls, finish) in [
        ("Bonjour", vec![], FinishReason::Stop),
        (
            "",
            vec![
                call("tooluse_1", "f", r#"{"a":[1,2],"b":"x"}"#),
                call("tooluse_2", "g", "{}"),
            ],
            FinishReason::ToolCalls,
        ),
        ("cut", vec![], FinishReason::Length),
    ] {
        let want = ChatResponse {
            id: "bedrock-7".into(),
            model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            created: 7,
            choices: vec![Choice {
                index: 0,
                message: Message {
                    tool_calls: calls.clone(),
                    content: if calls.is_empty() {
                        vec![Part::Text { text: text.into() }]
                    } else {
                        vec![]
                    },
                    ..Message::text(Role::Assistant, "")
                },
                finish_reason: finish,
            }],
            usage: Some(Usage {
                input_tokens: 30,
                output_tokens: 4,
                cached_input_tokens: 10,
                reasoning_tokens: 0,
            }),
        };
        let body = mock_converse(&want).to_string();
        assert_eq!(
            decode_response(&req_ir(), 200, body.as_bytes(), 7).unwrap(),
            Response::Chat(want)
        );
    }
}

#[test]
fn a_request_round_trips_through_the_converse_shape() {
    // Decoding our own encoding with the Converse shapes recovers the conversation.
    let mut a = Message::text(Role::Assistant, "ok");
    a.tool_calls = vec![call("t1", "f", r#"{"x":1}"#)];
    let req = chat(vec![user("one"), a, tool_msg("t1", "done")]);
    let out = body(&encode_request(&spec(), &Request::Chat(req)).unwrap());
    let turns = out["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    let round: Vec<(String, String)> = turns
        .iter()
        .flat_map(|t| {
            let role = t["role"].as_str().unwrap().to_string();
            t["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |b| (role.clone(), b.to_string()))
        })
        .collect();
    assert_eq!(
        round,
        vec![
            ("user".into(), r#"{"text":"one"}"#.into()),
            ("assistant".into(), r#"{"text":"ok"}"#.into()),
            (
                "assistant".into(),
                r#"{"toolUse":{"input":{"x":1},"name":"f","toolUseId":"t1"}}"#.into()
            ),
            (
                "user".into(),
                r#"{"toolResult":{"content":[{"text":"done"}],"toolUseId":"t1"}}"#.into()
            ),
        ]
    );
}

// ---------------------------------------------------------------- structured output, reasoning

fn structured() -> ChatRequest {
    let mut req = chat(vec![user("bern")]);
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "City".into(),
        schema: json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
        strict: Some(true),
    });
    req
}

#[test]
fn structured_output_is_a_forced_tool_whose_input_is_the_answer() {
    let b = body(&encode_request(&spec(), &Request::Chat(structured())).unwrap());
    assert_eq!(
        b["toolConfig"],
        json!({
            "tools": [{"toolSpec": {"name": "json_response",
                "description": "Answer with the response, as this tool's input.",
                "inputSchema": {"json": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}}],
            "toolChoice": {"tool": {"name": "json_response"}}
        })
    );
    let answer = json!({"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "tooluse_1", "name": "json_response", "input": {"name": "Bern"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8}});
    let Response::Chat(r) = decode_response(
        &Request::Chat(structured()),
        200,
        answer.to_string().as_bytes(),
        1,
    )
    .unwrap() else {
        panic!()
    };
    let c = &r.choices[0];
    assert_eq!(c.message.joined_text(), r#"{"name":"Bern"}"#);
    assert!(c.message.tool_calls.is_empty());
    assert_eq!(c.finish_reason, FinishReason::Stop);
    // Streamed, the tool's input deltas are the answer's text deltas.
    let stream = [
        frame("messageStart", json!({"role": "assistant"})),
        frame("contentBlockStart", json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "json_response"}}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"name\":"}}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "\"Bern\"}"}}})),
        frame("contentBlockStop", json!({"contentBlockIndex": 0})),
        frame("messageStop", json!({"stopReason": "tool_use"})),
    ]
    .concat();
    let mut d = StreamDecoder::new(&structured(), 4096, 1);
    let mut out = Vec::new();
    d.feed(&stream, &mut out).unwrap();
    d.end(&mut out).unwrap();
    let text: String = out
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, r#"{"name":"Bern"}"#);
    assert!(!out
        .iter()
        .any(|e| matches!(e, StreamEvent::ToolCallStart { .. })));
    assert!(out.contains(&StreamEvent::Finish {
        choice: 0,
        reason: FinishReason::Stop
    }));
}

#[test]
fn reasoning_goes_per_family_and_anthropic_signatures_go_back_to_claude_only() {
    let mut req = chat(vec![user("q")]);
    req.reasoning = Some(Reasoning {
        enabled: Some(true),
        effort: Some(Effort::Medium),
        ..Default::default()
    });
    let b = body(&encode_request(&spec(), &Request::Chat(req.clone())).unwrap());
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 8192}})
    );
    assert_eq!(b["inferenceConfig"]["maxTokens"], 4096 + 8192);
    req.model = "us.amazon.nova-2-lite-v1:0".into();
    req.top_k = Some(20);
    let b = body(&encode_request(&spec(), &Request::Chat(req.clone())).unwrap());
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"inferenceConfig": {"topK": 20},
               "reasoningConfig": {"type": "enabled", "maxReasoningEffort": "medium"}})
    );
    // Thinking cannot be combined with the forced tool of structured output.
    let mut both = structured();
    both.reasoning = req.reasoning.clone();
    assert_eq!(
        encode_request(&spec(), &Request::Chat(both)),
        Err(WireError::unsupported("reasoning", "bedrock"))
    );
    let r = |sig: &str, origin| Part::Reasoning {
        text: "t".into(),
        signature: Some(sig.into()),
        redacted: None,
        id: None,
        origin: Some(origin),
    };
    let mut asst = Message::text(Role::Assistant, "a");
    asst.content.splice(
        0..0,
        [r("EqQB", Origin::Anthropic), r("Q2lB", Origin::Gemini)],
    );
    let b = body(&encode_request(&spec(), &Request::Chat(chat(vec![user("q"), asst]))).unwrap());
    assert_eq!(
        b["messages"][1]["content"],
        json!([{"reasoningContent": {"reasoningText": {"text": "t", "signature": "EqQB"}}}, {"text": "a"}])
    );
}

#[test]
fn a_reasoning_stream_decodes_to_a_signed_block_in_any_split() {
    let s = [
        frame("messageStart", json!({"role": "assistant"})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Let me "}}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "think."}}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "EqQBsig"}}})),
        frame("contentBlockStop", json!({"contentBlockIndex": 0})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "Hi"}})),
        frame("contentBlockStop", json!({"contentBlockIndex": 1})),
        frame("messageStop", json!({"stopReason": "end_turn"})),
    ]
    .concat();
    let whole = decode_stream(&[&s]).unwrap();
    assert_eq!(
        whole[1..5],
        [
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "Let me ".into()
            },
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "think.".into()
            },
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: Some("EqQBsig".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Anthropic)
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "Hi".into()
            },
        ]
    );
    for chunks in splits(&s, 100) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_stream(&parts).unwrap(), whole);
    }
}

#[test]
fn a_client_model_name_stays_one_path_segment() {
    for (model, path) in [
        ("..", "/model/%2E%2E/converse"),
        ("../x?y#z", "/model/..%2Fx%3Fy%23z/converse"),
    ] {
        let mut c = chat(vec![Message::text(Role::User, "hi")]);
        c.model = model.into();
        let out = encode_request(&spec(), &Request::Chat(c)).unwrap();
        assert_eq!(out.path, path);
    }
}
