//! Gemini codec tests: request encoding, answer and error decoding, and recorded streams decoded
//! in every split.

use super::provider::*;
use super::stream::*;
use crate::ir::*;
use crate::stream::testutil::splits;
use crate::wire::{ProviderKind, StreamDecoder as _};
use crate::wire::{ProviderSpec, WireError};
use serde_json::{json, Value};

fn spec() -> ProviderSpec {
    ProviderSpec {
        kind: ProviderKind::Gemini,
        host: "generativelanguage.googleapis.com".into(),
        base_path: "/v1beta".into(),
        api_version: None,
        region: None,
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
        model: "gemini-2.0-flash".into(),
        messages,
        ..Default::default()
    }
}

fn encode(req: ChatRequest) -> Result<(String, Value), WireError> {
    let out = encode_request(&spec(), &Request::Chat(req))?;
    assert_eq!(
        out.headers,
        vec![("content-type".to_string(), "application/json".to_string())]
    );
    Ok((out.path, serde_json::from_slice(&out.body).unwrap()))
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: Some("Weather for a city".into()),
        parameters: json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string", "format": "uri"}},
            "required": ["city"],
            "additionalProperties": false
        }),
        strict: None,
    }
}

#[test]
fn encodes_a_full_conversation() {
    let mut assistant = Message::text(Role::Assistant, "Checking both.");
    // Gemini's own signature goes back on the first call; Anthropic's is not Gemini's to read.
    let signed = |sig: &str, origin| Part::Reasoning {
        text: "thought".into(),
        signature: Some(sig.into()),
        redacted: None,
        id: None,
        origin: Some(origin),
    };
    assistant.content.insert(0, signed("Q2lB", Origin::Gemini));
    assistant
        .content
        .insert(0, signed("EqQB", Origin::Anthropic));
    assistant.tool_calls = vec![
        call("c1", "get_weather", r#"{"city":"Paris"}"#),
        call("c2", "get_time", ""),
    ];
    let mut failed = tool_msg("c2", "clock broken");
    failed.is_error = true;
    let mut req = chat(vec![
        Message::text(Role::System, "Be brief."),
        Message {
            content: vec![
                Part::Text {
                    text: "Look:".into(),
                },
                Part::Text {
                    text: String::new(),
                },
                Part::Image {
                    source: Media::Base64 {
                        media_type: "image/png".into(),
                        data: "iVBO".into(),
                    },
                },
                Part::Document {
                    source: Media::Url {
                        url: "https://example.com/a/report.PDF?x=1".into(),
                    },
                    title: None,
                },
            ],
            ..user("")
        },
        assistant,
        tool_msg("c1", r#"{"temp":21}"#),
        failed,
        user("Thanks"),
    ]);
    req.tools = vec![
        weather_tool(),
        Tool {
            name: "get_time".into(),
            description: None,
            parameters: json!({"type": "object", "properties": {}}),
            strict: None,
        },
    ];
    req.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
    req.max_tokens = Some(256);
    req.temperature = Some(0.2);
    req.top_p = Some(0.9);
    req.top_k = Some(40);
    req.stop = vec!["END".into()];
    req.seed = Some(7);
    req.n = Some(2);
    req.presence_penalty = Some(0.1);
    req.frequency_penalty = Some(0.3);
    req.reasoning = Some(Reasoning {
        budget_tokens: Some(1024),
        ..Default::default()
    });
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        schema: json!({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false}),
        strict: Some(true),
    });
    let mut labelled = req.clone();
    labelled.user = Some("u-1".into());
    assert_eq!(
        encode(labelled),
        Err(WireError::unsupported("user", "gemini"))
    );
    let (path, body) = encode(req).unwrap();
    assert_eq!(path, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_eq!(
        body,
        json!({
            "contents": [
                {"role": "user", "parts": [
                    {"text": "Look:"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/a/report.PDF?x=1"}}
                ]},
                {"role": "model", "parts": [
                    {"text": "Checking both."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "Q2lB"},
                    {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_time", "response": {"error": "clock broken"}}},
                    {"text": "Thanks"}
                ]}
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "tools": [{"functionDeclarations": [
                {"name": "get_weather", "description": "Weather for a city", "parameters": {
                    "type": "OBJECT",
                    "properties": {"city": {"type": "STRING"}},
                    "required": ["city"]
                }},
                {"name": "get_time"}
            ]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
            "generationConfig": {
                "temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 256,
                "stopSequences": ["END"], "seed": 7, "candidateCount": 2,
                "presencePenalty": 0.1, "frequencyPenalty": 0.3,
                "responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
                "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}
            }
        })
    );
}

#[test]
fn streams_use_sse_and_model_prefixes_are_not_doubled() {
    let mut req = chat(vec![user("hi")]);
    req.stream = true;
    req.model = "models/gemini-2.5-pro".into();
    req.response_format = Some(ResponseFormat::JsonObject);
    let (path, body) = encode(req).unwrap();
    assert_eq!(
        path,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"responseMimeType": "application/json"}
        })
    );
}

#[test]
fn schemas_are_cut_to_geminis_subset() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"Unit": {"type": "string", "enum": ["C", "F"], "description": "unit"}},
        "type": "object",
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "which unit"},
            "when": {"type": ["string", "null"], "format": "date-time"},
            "count": {"anyOf": [{"type": "integer", "format": "int32", "minimum": 0}, {"type": "null"}]},
            "kind": {"const": "fixed"},
            "level": {"type": "integer", "enum": [1, 2, 3], "exclusiveMinimum": 0},
            "tags": {"type": "array", "items": {"type": "string", "format": "email"}, "uniqueItems": true, "maxItems": 3},
            "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
            "multi": {"type": ["string", "integer"]},
            "nested": {"properties": {"x": {"type": "boolean", "title": "X"}}, "additionalProperties": {"type": "string"}},
            "wrapped": {"allOf": [{"type": "string", "pattern": "^a"}]}
        },
        "required": ["unit"],
        "additionalProperties": false
    });
    assert_eq!(
        to_gemini_schema(&schema, "f").unwrap(),
        json!({
            "type": "OBJECT",
            "properties": {
                "unit": {"type": "STRING", "enum": ["C", "F"], "description": "which unit"},
                "when": {"type": "STRING", "nullable": true, "format": "date-time"},
                "count": {"type": "INTEGER", "format": "int32", "minimum": 0, "nullable": true},
                "kind": {"type": "STRING", "enum": ["fixed"]},
                "level": {"type": "INTEGER"},
                "tags": {"type": "ARRAY", "maxItems": 3, "items": {"type": "STRING"}},
                "either": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
                "multi": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
                "nested": {"type": "OBJECT", "properties": {"x": {"type": "BOOLEAN", "title": "X"}}},
                "wrapped": {"type": "STRING", "pattern": "^a"}
            },
            "required": ["unit"]
        })
    );
    let recursive = json!({
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node"
    });
    assert_eq!(
        to_gemini_schema(&recursive, "tools[0].function.parameters"),
        Err(WireError::unsupported(
            "tools[0].function.parameters",
            "gemini"
        ))
    );
    assert_eq!(
        to_gemini_schema(&json!({"$ref": "https://x/schema"}), "f"),
        Err(WireError::unsupported("f", "gemini"))
    );
    assert_eq!(
        to_gemini_schema(
            &json!({"allOf": [{"type": "string"}, {"minLength": 1}]}),
            "f"
        ),
        Err(WireError::unsupported("f", "gemini"))
    );
    // Tools without arguments declare no parameters at all.
    assert_eq!(function_parameters(&Value::Null, "f").unwrap(), None);
    assert_eq!(function_parameters(&json!({}), "f").unwrap(), None);
    assert_eq!(
        function_parameters(
            &json!({"type": "object", "additionalProperties": false}),
            "f"
        )
        .unwrap(),
        None
    );
}

#[test]
fn tool_results_find_their_function_in_the_nearest_turn() {
    // The same id reused in two turns (as `call_0`-style ids may be) names two functions.
    let mut a1 = Message::text(Role::Assistant, "");
    a1.tool_calls = vec![call("call_0", "first", "{}")];
    let mut a2 = Message::text(Role::Assistant, "");
    a2.tool_calls = vec![call("call_0", "second", "{}")];
    let named = Message {
        name: Some("explicit".into()),
        tool_call_id: None,
        ..Message::text(Role::Tool, "[1,2]")
    };
    let req = chat(vec![
        user("go"),
        a1,
        tool_msg("call_0", "one"),
        a2,
        tool_msg("call_0", "two"),
        named,
    ]);
    let (_, body) = encode(req).unwrap();
    let responses: Vec<&Value> = body["contents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["parts"].as_array().unwrap())
        .filter_map(|p| p.get("functionResponse"))
        .collect();
    assert_eq!(
        responses,
        vec![
            &json!({"name": "first", "response": {"output": "one"}}),
            &json!({"name": "second", "response": {"output": "two"}}),
            &json!({"name": "explicit", "response": {"output": "[1,2]"}}),
        ]
    );
    let orphan = chat(vec![user("go"), tool_msg("nope", "x")]);
    assert!(matches!(
        encode(orphan),
        Err(WireError::Invalid { field, .. }) if field == "messages[1].tool_call_id"
    ));
    let mut a = Message::text(Role::Assistant, "");
    a.tool_calls = vec![call("c", "f", "{}")];
    let mut with_image = tool_msg("c", "see");
    with_image.content.push(Part::Image {
        source: Media::Base64 {
            media_type: "image/png".into(),
            data: "AA".into(),
        },
    });
    assert_eq!(
        encode(chat(vec![user("go"), a, with_image])),
        Err(WireError::unsupported("messages[2].content[1]", "gemini"))
    );
}

#[test]
fn inexpressible_requests_are_rejected_by_name() {
    let mut r = chat(vec![user("hi")]);
    r.extra.insert("logprobs".into(), json!(true));
    r.extra_family = Some(Family::OpenAi);
    assert_eq!(encode(r), Err(WireError::unsupported("logprobs", "gemini")));
    let mut r = chat(vec![user("hi")]);
    r.tools = vec![weather_tool()];
    r.parallel_tool_calls = Some(false);
    assert_eq!(
        encode(r),
        Err(WireError::unsupported("parallel_tool_calls", "gemini"))
    );
    let mut r = chat(vec![user("hi")]);
    r.messages[0].content.push(Part::Image {
        source: Media::Url {
            url: "https://example.com/image".into(),
        },
    });
    assert_eq!(
        encode(r),
        Err(WireError::unsupported("messages[0].content[1]", "gemini"))
    );
    let mut a = Message::text(Role::Assistant, "");
    a.tool_calls = vec![call("c", "f", "not json")];
    assert!(matches!(
        encode(chat(vec![user("hi"), a])),
        Err(WireError::Invalid { field, .. }) if field == "messages[1].tool_calls[0].function.arguments"
    ));
}

#[test]
fn tool_choice_without_tools() {
    let mut r = chat(vec![user("hi")]);
    r.tool_choice = Some(ToolChoice::None);
    assert_eq!(encode(r).unwrap().1.get("toolConfig"), None);
    let mut r = chat(vec![user("hi")]);
    r.tool_choice = Some(ToolChoice::Required);
    assert!(matches!(encode(r), Err(WireError::Invalid { .. })));
    let mut r = chat(vec![user("hi")]);
    r.tools = vec![weather_tool()];
    r.tool_choice = Some(ToolChoice::None);
    assert_eq!(
        encode(r).unwrap().1["toolConfig"],
        json!({"functionCallingConfig": {"mode": "NONE"}})
    );
}

fn emb_req() -> Request {
    Request::Embeddings(EmbeddingsRequest {
        model: "text-embedding-004".into(),
        input: vec!["a".into(), "b".into()],
        dimensions: Some(256),
        user: None,
    })
}

#[test]
fn embeddings_round_trip() {
    let out = encode_request(&spec(), &emb_req()).unwrap();
    assert_eq!(
        out.path,
        "/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    let body: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(
        body,
        json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 256}
        ]})
    );
    let answer = br#"{"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]}"#;
    assert_eq!(
        decode_response(&emb_req(), 200, answer, 1).unwrap(),
        Response::Embeddings(EmbeddingsResponse {
            model: "text-embedding-004".into(),
            data: vec![vec![0.5, -1.0], vec![0.25, 2.0]],
            usage: None,
        })
    );
    assert!(matches!(
        decode_response(
            &emb_req(),
            200,
            br#"{"embeddings": [{"values": [1.0]}]}"#,
            1
        ),
        Err(WireError::Upstream { .. })
    ));
}

fn chat_req() -> Request {
    Request::Chat(chat(vec![user("hi")]))
}

fn decode(body: Value) -> ChatResponse {
    match decode_response(&chat_req(), 200, body.to_string().as_bytes(), 1_700_000_000).unwrap() {
        Response::Chat(c) => c,
        other => panic!("not chat: {other:?}"),
    }
}

#[test]
fn decodes_text_function_calls_and_usage() {
    let got = decode(json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "thinking...", "thought": true},
                {"text": "Sure. "},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "Q2lBc2lnbmF0dXJl"},
                {"functionCall": {"name": "get_time", "args": {}, "id": "fc-7"}}
            ]},
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": []
        }],
        "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
                          "cachedContentTokenCount": 64, "totalTokenCount": 150},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"
    }));
    assert_eq!(
        got,
        ChatResponse {
            id: "mAitaLmkHPPlz7IPvtfUqQ4".into(),
            model: "gemini-2.5-flash".into(),
            created: 1_700_000_000,
            choices: vec![Choice {
                index: 0,
                message: Message {
                    content: vec![
                        // The call's signature signs the thought before it.
                        Part::Reasoning {
                            text: "thinking...".into(),
                            signature: Some("Q2lBc2lnbmF0dXJl".into()),
                            redacted: None,
                            id: None,
                            origin: Some(Origin::Gemini),
                        },
                        Part::Text {
                            text: "Sure. ".into()
                        },
                    ],
                    tool_calls: vec![
                        call(
                            "call_mAitaLmkHPPlz7IPvtfUqQ4_0",
                            "get_weather",
                            r#"{"city":"Paris"}"#
                        ),
                        call("fc-7", "get_time", "{}"),
                    ],
                    ..Message::text(Role::Assistant, "")
                },
                finish_reason: FinishReason::ToolCalls,
            }],
            usage: Some(Usage {
                input_tokens: 100,
                output_tokens: 50,
                cached_input_tokens: 64,
                reasoning_tokens: 30
            }),
        }
    );
}

#[test]
fn finish_reasons_map_and_missing_ids_come_from_the_clock() {
    for (reason, want) in [
        ("STOP", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("OTHER", FinishReason::Stop),
        ("MALFORMED_FUNCTION_CALL", FinishReason::Stop),
    ] {
        let got = decode(
            json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}),
        );
        assert_eq!(got.choices[0].finish_reason, want, "{reason}");
        assert_eq!(got.id, "gemini-1700000000");
        assert_eq!(got.model, "gemini-2.0-flash");
    }
}

#[test]
fn a_blocked_prompt_is_a_content_filter_finish() {
    let got = decode(json!({
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}
    }));
    assert_eq!(
        got.choices,
        vec![Choice {
            index: 0,
            message: Message::text(Role::Assistant, ""),
            finish_reason: FinishReason::ContentFilter,
        }]
    );
    assert!(matches!(
        decode_response(&chat_req(), 200, b"{}", 1),
        Err(WireError::Upstream { .. })
    ));
}

#[test]
fn errors_carry_message_status_and_retry_delay() {
    let body = json!({"error": {
        "code": 429,
        "message": "You exceeded your current quota.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.5s"}
        ]
    }});
    assert_eq!(
        decode_response(&chat_req(), 429, body.to_string().as_bytes(), 1).unwrap(),
        Response::Error(
            ErrorInfo::new(
                429,
                ErrorKind::RateLimited,
                "You exceeded your current quota."
            )
            .with_retry_after(Some(37))
        )
    );
    // A key Google refuses is named by the ErrorInfo reason, under a 400 or a 403.
    for (status, reason) in [
        (400, "API_KEY_INVALID"),
        (403, "API_KEY_SERVICE_BLOCKED"),
        (403, "CONSUMER_SUSPENDED"),
    ] {
        let body = json!({"error": {"code": status, "message": "no", "status": "PERMISSION_DENIED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}]}});
        let Response::Error(e) =
            decode_response(&chat_req(), status, body.to_string().as_bytes(), 1).unwrap()
        else {
            panic!("not an error")
        };
        assert_eq!(
            (e.status, e.kind),
            (status, ErrorKind::Authentication),
            "{reason}"
        );
    }
    let body = br#"{"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified", "status": "INVALID_ARGUMENT"}}"#;
    let Response::Error(e) = decode_response(&chat_req(), 400, body, 1).unwrap() else {
        panic!("not an error")
    };
    assert_eq!(
        (e.status, e.kind, e.retry_after),
        (400, ErrorKind::InvalidRequest, None)
    );
    let Response::Error(e) =
        decode_response(&chat_req(), 503, b"upstream connect error", 1).unwrap()
    else {
        panic!("not an error")
    };
    assert_eq!((e.status, e.kind), (503, ErrorKind::Unavailable));
    assert!(matches!(
        decode_response(&chat_req(), 200, b"[]", 1),
        Err(WireError::Upstream { .. })
    ));
}

/// A `streamGenerateContent?alt=sse` answer shaped like a recorded one: CRLF-separated
/// events, cumulative usage on every chunk, a function call whole in the last one.
fn recorded_stream() -> Vec<u8> {
    let chunks = [
        json!({"candidates": [{"content": {"parts": [{"text": "The weather"}], "role": "model"}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 31, "totalTokenCount": 31},
               "modelVersion": "gemini-2.0-flash", "responseId": "Xj5kZ9-aBcD"}),
        json!({"candidates": [{"content": {"parts": [{"text": " in Paris — ☀️"}], "role": "model"}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 6, "totalTokenCount": 37},
               "modelVersion": "gemini-2.0-flash", "responseId": "Xj5kZ9-aBcD"}),
        json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "C"}}}], "role": "model"},
                               "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 14, "totalTokenCount": 45, "cachedContentTokenCount": 16},
               "modelVersion": "gemini-2.0-flash", "responseId": "Xj5kZ9-aBcD"}),
    ];
    let mut s = Vec::new();
    for c in chunks {
        s.extend_from_slice(format!("data: {c}\r\n\r\n").as_bytes());
    }
    s
}

fn expected_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "Xj5kZ9-aBcD".into(),
            model: "gemini-2.0-flash".into(),
            created: 1_700_000_000,
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: "The weather".into(),
        },
        StreamEvent::TextDelta {
            choice: 0,
            text: " in Paris — ☀️".into(),
        },
        StreamEvent::ToolCallStart {
            choice: 0,
            index: 0,
            id: "call_Xj5kZ9-aBcD_0".into(),
            name: "get_weather".into(),
        },
        StreamEvent::ToolCallDelta {
            choice: 0,
            index: 0,
            arguments: r#"{"city":"Paris","unit":"C"}"#.into(),
        },
        StreamEvent::Finish {
            choice: 0,
            reason: FinishReason::ToolCalls,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 31,
            output_tokens: 14,
            cached_input_tokens: 16,
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
fn stream_errors_blocks_and_truncation() {
    let err = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\n\ndata: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"late\"}]}}]}\n\n";
    let got = decode_stream(&[err]).unwrap();
    assert_eq!(
        got[1..],
        [
            StreamEvent::TextDelta {
                choice: 0,
                text: "Hi".into()
            },
            StreamEvent::Error(ErrorInfo::new(
                503,
                ErrorKind::Unavailable,
                "The model is overloaded."
            )),
        ]
    );
    let blocked = b"data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, \"usageMetadata\": {\"promptTokenCount\": 5}}\n\n";
    assert_eq!(
        decode_stream(&[blocked]).unwrap(),
        vec![
            StreamEvent::Start {
                id: "gemini-1700000000".into(),
                model: "gemini-2.0-flash".into(),
                created: 1_700_000_000
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ContentFilter
            },
            StreamEvent::Usage(Usage {
                input_tokens: 5,
                output_tokens: 0,
                cached_input_tokens: 0,
                reasoning_tokens: 0
            }),
        ]
    );
    // No finishReason: no Finish and no Usage, so the client sees a cut-short answer.
    let s = recorded_stream();
    let first = s.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let got = decode_stream(&[&s[..first]]).unwrap();
    assert_eq!(got, expected_events()[..2].to_vec());
    assert!(matches!(
        decode_stream(&[b"data: {oops\n\n"]),
        Err(WireError::Upstream { .. })
    ));
}

#[test]
fn several_candidates_stream_as_several_choices() {
    let s = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"A\"}]}, \"index\": 0, \"finishReason\": \"STOP\"}, {\"content\": {\"parts\": [{\"text\": \"B\"}]}, \"index\": 1, \"finishReason\": \"MAX_TOKENS\"}]}\n\n";
    let got = decode_stream(&[s]).unwrap();
    assert_eq!(
        got[1..],
        [
            StreamEvent::TextDelta {
                choice: 0,
                text: "A".into()
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop
            },
            StreamEvent::TextDelta {
                choice: 1,
                text: "B".into()
            },
            StreamEvent::Finish {
                choice: 1,
                reason: FinishReason::Length
            },
        ]
    );
}

/// What a Gemini mock would answer for an IR response: the inverse of `decode_response`.
fn mock_generate(resp: &ChatResponse) -> Value {
    let candidates: Vec<Value> = resp
        .choices
        .iter()
        .map(|c| {
            let mut parts = vec![json!({"text": c.message.joined_text()})];
            for t in &c.message.tool_calls {
                let args: Value = serde_json::from_str(&t.arguments).unwrap();
                parts.push(json!({"functionCall": {"id": t.id, "name": t.name, "args": args}}));
            }
            let reason = match c.finish_reason {
                FinishReason::Stop | FinishReason::ToolCalls => "STOP",
                FinishReason::Length => "MAX_TOKENS",
                FinishReason::ContentFilter => "SAFETY",
            };
            json!({"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": c.index})
        })
        .collect();
    let u = resp.usage.unwrap();
    json!({
        "candidates": candidates,
        "usageMetadata": {"promptTokenCount": u.input_tokens, "candidatesTokenCount": u.output_tokens,
                          "cachedContentTokenCount": u.cached_input_tokens},
        "modelVersion": resp.model, "responseId": resp.id
    })
}

#[test]
fn responses_round_trip_through_a_mock() {
    let want = ChatResponse {
        id: "resp-1".into(),
        model: "gemini-2.0-flash-001".into(),
        created: 1_700_000_000,
        choices: vec![
            Choice {
                index: 0,
                message: Message {
                    tool_calls: vec![call("fc_1", "f", r#"{"a":[1,{"b":null}]}"#)],
                    ..Message::text(Role::Assistant, "Calling f.")
                },
                finish_reason: FinishReason::ToolCalls,
            },
            Choice {
                index: 1,
                message: Message::text(Role::Assistant, "cut"),
                finish_reason: FinishReason::Length,
            },
        ],
        usage: Some(Usage {
            input_tokens: 12,
            output_tokens: 7,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        }),
    };
    assert_eq!(decode(mock_generate(&want)), want);
}

#[test]
fn a_request_round_trips_through_the_gemini_shape() {
    // Reading our own encoding back with Gemini's meaning recovers the conversation.
    let mut a = Message::text(Role::Assistant, "ok");
    a.tool_calls = vec![call("c9", "lookup", r#"{"q":"x"}"#)];
    let req = chat(vec![
        Message::text(Role::System, "sys"),
        user("one"),
        a,
        tool_msg("c9", "found"),
    ]);
    let (_, body) = encode(req.clone()).unwrap();
    let mut back = vec![Message::text(
        Role::System,
        body["systemInstruction"]["parts"][0]["text"]
            .as_str()
            .unwrap(),
    )];
    for turn in body["contents"].as_array().unwrap() {
        for p in turn["parts"].as_array().unwrap() {
            if let Some(t) = p.get("text") {
                let role = if turn["role"] == "model" {
                    Role::Assistant
                } else {
                    Role::User
                };
                back.push(Message::text(role, t.as_str().unwrap()));
            } else if let Some(fc) = p.get("functionCall") {
                let last = back.last_mut().unwrap();
                last.tool_calls.push(call(
                    "c9",
                    fc["name"].as_str().unwrap(),
                    &fc["args"].to_string(),
                ));
            } else if let Some(fr) = p.get("functionResponse") {
                back.push(tool_msg("c9", fr["response"]["output"].as_str().unwrap()));
            }
        }
    }
    assert_eq!(back, req.messages);
}

// ---------------------------------------------------------------- reasoning, and the abort

#[test]
fn reasoning_becomes_thinking_config_by_model_generation() {
    let config = |model: &str, r: Reasoning| {
        let mut req = chat(vec![user("hi")]);
        req.model = model.into();
        req.reasoning = Some(r);
        encode(req).unwrap().1["generationConfig"]["thinkingConfig"].clone()
    };
    let effort = |e| Reasoning {
        enabled: Some(true),
        effort: Some(e),
        ..Default::default()
    };
    // Gemini 2.x takes budgets only; Gemini 3 takes levels.
    assert_eq!(
        config("gemini-2.5-pro", effort(Effort::Low)),
        json!({"thinkingBudget": 2048, "includeThoughts": true})
    );
    assert_eq!(
        config("models/gemini-3-pro-preview", effort(Effort::Max)),
        json!({"thinkingLevel": "XHIGH", "includeThoughts": true})
    );
    assert_eq!(
        config(
            "gemini-3-flash",
            Reasoning {
                enabled: Some(false),
                ..Default::default()
            }
        ),
        json!({"thinkingBudget": 0})
    );
    assert_eq!(
        config(
            "gemini-3-flash",
            Reasoning {
                adaptive: true,
                visible: Some(false),
                ..Default::default()
            }
        ),
        json!({"thinkingBudget": -1, "includeThoughts": false})
    );
    assert_eq!(
        config(
            "gemini-2.5-flash",
            Reasoning {
                budget_tokens: Some(777),
                effort: Some(Effort::High),
                ..Default::default()
            }
        ),
        json!({"thinkingBudget": 777, "includeThoughts": true}),
        "a budget is more precise than a level"
    );
}

/// Vertex AI / Gemini aborting a stream: two events, then a pretty-printed JSON error written
/// straight into the body, outside SSE framing.
const ABORTED: &str = concat!(
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The first\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 2,\"totalTokenCount\": 11},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"aBcD\"}\r\n\r\n",
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" words\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 4,\"totalTokenCount\": 13},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"aBcD\"}\r\n\r\n",
    "{\n  \"error\": {\n    \"code\": 499,\n    \"message\": \"The operation was cancelled.\",\n    \"status\": \"CANCELLED\"\n  }\n}\n",
);

#[test]
fn a_recorded_mid_stream_abort_outside_sse_framing_ends_the_stream_with_its_error() {
    let whole = decode_stream(&[ABORTED.as_bytes()]).unwrap();
    assert_eq!(whole.len(), 4, "{whole:?}");
    assert!(matches!(&whole[1], StreamEvent::TextDelta { text, .. } if text == "The first"));
    assert_eq!(
        whole[3],
        StreamEvent::Error(ErrorInfo::new(
            502,
            ErrorKind::Upstream,
            "The operation was cancelled."
        ))
    );
    for chunks in splits(ABORTED.as_bytes(), 300) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_stream(&parts).unwrap(), whole);
    }
}

#[test]
fn thoughts_stream_as_reasoning_closed_by_the_calls_signature() {
    let s = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Checking the weather.\", \"thought\": true}],\"role\": \"model\"},\"index\": 0}],\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\", \"args\": {\"city\": \"Bern\"}}, \"thoughtSignature\": \"Q2lBc2ln\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 4,\"thoughtsTokenCount\": 12,\"totalTokenCount\": 25},\"responseId\": \"r1\"}\r\n\r\n",
    );
    let whole = decode_stream(&[s.as_bytes()]).unwrap();
    assert_eq!(
        whole[1..3],
        [
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "Checking the weather.".into()
            },
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: Some("Q2lBc2ln".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Gemini)
            },
        ]
    );
    assert!(matches!(&whole[3], StreamEvent::ToolCallStart { name, .. } if name == "get_weather"));
    assert!(matches!(whole.last(), Some(StreamEvent::Usage(u)) if u.reasoning_tokens == 12));
    for chunks in splits(s.as_bytes(), 100) {
        let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
        assert_eq!(decode_stream(&parts).unwrap(), whole);
    }
}

#[test]
fn a_client_model_name_stays_one_path_segment() {
    let path = |model: &str, stream: bool| {
        let mut c = chat(vec![user("hi")]);
        c.model = model.into();
        c.stream = stream;
        encode_request(&spec(), &Request::Chat(c)).unwrap().path
    };
    // Neither another method nor an added query parameter.
    assert_eq!(
        path("x:countTokens?key=k&", false),
        "/v1beta/models/x%3AcountTokens%3Fkey%3Dk%26:generateContent"
    );
    assert_eq!(
        path("../../v1/files", true),
        "/v1beta/models/..%2F..%2Fv1%2Ffiles:streamGenerateContent?alt=sse"
    );
    assert_eq!(path("..", false), "/v1beta/models/%2E%2E:generateContent");
    let emb = Request::Embeddings(EmbeddingsRequest {
        model: "m#x".into(),
        input: vec!["a".into()],
        ..Default::default()
    });
    assert_eq!(
        encode_request(&spec(), &emb).unwrap().path,
        "/v1beta/models/m%23x:batchEmbedContents"
    );
}
