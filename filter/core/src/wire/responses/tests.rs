//! The Responses codec against the API's documented shapes: requests both ways, answers both
//! ways, and streams (a recorded provider stream decoded in every split; the encoder checked
//! against the SDK accumulator's rules and decoded back).

use super::*;
use crate::ir::*;
use crate::wire::json::parse_object;
use crate::wire::{ProviderKind, ProviderSpec, WireError};
use serde_json::{json, Value};

fn spec() -> ProviderSpec {
    ProviderSpec {
        kind: ProviderKind::OpenAiResponses,
        host: "api.openai.com".into(),
        base_path: "/v1".into(),
        api_version: None,
        region: None,
        anthropic_version: String::new(),
    }
}

fn decode(body: Value) -> Result<ChatRequest, WireError> {
    decode_request(body.to_string().as_bytes())
}

fn field_of(e: WireError) -> String {
    match e {
        WireError::Invalid { field, .. }
        | WireError::Unsupported { field, .. }
        | WireError::Declined { field, .. } => field,
        WireError::Upstream { message } => panic!("upstream error: {message}"),
    }
}

fn message_of(e: &WireError) -> String {
    e.info().message
}

fn body_of(req: &ChatRequest) -> Value {
    let out = encode_request(&spec(), &Request::Chat(req.clone())).unwrap();
    serde_json::from_slice(&out.body).unwrap()
}

mod requests {
    use super::*;

    #[test]
    fn a_string_input_and_instructions_become_a_system_and_a_user_turn() {
        let r =
            decode(json!({"model": "gpt-5", "instructions": "Be brief.", "input": "Hi"})).unwrap();
        assert_eq!(
            r.messages,
            vec![
                Message::text(Role::System, "Be brief."),
                Message::text(Role::User, "Hi")
            ]
        );
        assert!(r.extra.is_empty());
        // What the client left out stays out for a Responses provider (`store` defaults there).
        assert_eq!(r.extra_family, Some(Family::OpenAiResponses));
        assert!(body_of(&r).get("store").is_none());
        assert!(!r.stream);
    }

    /// What the Agents SDK sends on its second call of a turn: the history with the model's
    /// reasoning and function call, then the tool's output.
    #[test]
    fn items_become_turns_with_calls_merged_into_the_assistant_turn() {
        let r = decode(json!({
            "model": "gpt-5",
            "include": [],
            "input": [
                {"role": "developer", "content": "Use tools."},
                {"content": [{"type": "input_text", "text": "Weather in "},
                             {"type": "input_image", "detail": "auto", "image_url": "data:image/png;base64,iVBO"},
                             {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}],
                 "role": "user", "type": "message"},
                {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Think."}],
                 "encrypted_content": "gAAAA-sealed"},
                {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]},
                {"arguments": "{\"city\":\"Zürich\"}", "call_id": "call_1", "name": "weather",
                 "type": "function_call", "id": "fc_1", "status": "completed"},
                {"arguments": "{}", "call_id": "call_2", "name": "time", "type": "function_call"},
                {"call_id": "call_1", "output": "sunny", "type": "function_call_output"},
                {"call_id": "call_2", "output": [{"type": "input_text", "text": "noon"}], "type": "function_call_output"}
            ],
            "tools": [{"type": "function", "name": "weather", "description": "d",
                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                       "strict": true}],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "stream": true
        }))
        .unwrap();
        assert_eq!(r.messages.len(), 5);
        assert_eq!(r.messages[0], Message::text(Role::Developer, "Use tools."));
        assert_eq!(r.messages[1].role, Role::User);
        assert!(
            matches!(&r.messages[1].content[1], Part::Image { source: Media::Base64 { media_type, .. } } if media_type == "image/png")
        );
        assert!(
            matches!(&r.messages[1].content[2], Part::Document { title: Some(t), .. } if t == "a.pdf")
        );
        let turn = &r.messages[2];
        assert_eq!(turn.role, Role::Assistant);
        assert_eq!(
            turn.content,
            vec![
                Part::Reasoning {
                    text: "Think.".into(),
                    signature: None,
                    redacted: Some("gAAAA-sealed".into()),
                    id: Some("rs_1".into()),
                    origin: Some(Origin::OpenAiResponses),
                },
                Part::Text {
                    text: "Checking.".into()
                }
            ]
        );
        let calls: Vec<_> = turn.tool_calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(calls, ["call_1", "call_2"]);
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(r.messages[4].joined_text(), "noon");
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tool_choice, Some(ToolChoice::Auto));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert!(r.stream && r.stream_include_usage);
        // The client's own tool spelling (`strict`) rides along for a Responses provider.
        assert_eq!(r.extra_family, Some(Family::OpenAiResponses));
        assert_eq!(r.extra["tools"][0]["strict"], json!(true));
        assert!(
            !r.extra.contains_key("include"),
            "an empty include asks for nothing"
        );
    }

    #[test]
    fn reasoning_after_text_or_calls_opens_the_next_turn() {
        let r = decode(json!({"model": "m", "input": [
            {"type": "reasoning", "id": "rs_a", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "x"},
            {"type": "reasoning", "id": "rs_b", "summary": []},
            {"role": "assistant", "content": "done"},
            {"role": "assistant", "content": "more"}
        ]}))
        .unwrap();
        let roles: Vec<_> = r.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::Assistant,
                Role::Tool,
                Role::Assistant,
                Role::Assistant
            ]
        );
        assert_eq!(r.messages[2].joined_text(), "done");
        assert_eq!(r.messages[3].joined_text(), "more");
    }

    #[test]
    fn formats_reasoning_and_allowed_tools_map_to_the_ir() {
        let tool =
            |n: &str| json!({"type": "function", "name": n, "parameters": null, "strict": false});
        let r = decode(json!({
            "model": "m", "input": "x",
            "tools": [tool("a"), tool("b")],
            "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]},
            "text": {"format": {"type": "json_schema", "name": "Out", "schema": {"type": "object"}, "strict": true,
                                "description": "hint"}, "verbosity": "low"},
            "reasoning": {"effort": "none", "summary": "auto"},
            "max_output_tokens": 64, "temperature": 0.5, "top_p": 0.9, "user": "u1",
            "store": false, "truncation": "disabled", "metadata": {"k": "v"}, "prompt_cache_key": "p"
        }))
        .unwrap();
        let names: Vec<_> = r.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["b"]);
        assert_eq!(r.tool_choice, Some(ToolChoice::Required));
        assert_eq!(
            r.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "Out".into(),
                schema: json!({"type": "object"}),
                strict: Some(true)
            })
        );
        let reasoning = r.reasoning.clone().unwrap();
        assert_eq!(reasoning.enabled, Some(false));
        assert_eq!(reasoning.summary.as_deref(), Some("auto"));
        assert_eq!(
            (r.max_tokens, r.temperature, r.top_p, r.user.as_deref()),
            (Some(64), Some(0.5), Some(0.9), Some("u1"))
        );
        let mut keys: Vec<_> = r.extra.keys().map(String::as_str).collect();
        keys.sort_unstable();
        // `store: false` and `truncation: disabled` ask for what every target does anyway.
        assert_eq!(
            keys,
            [
                "metadata",
                "prompt_cache_key",
                "reasoning",
                "text",
                "tool_choice",
                "tools"
            ]
        );
    }

    #[test]
    fn refusals_name_the_field_and_say_why() {
        let base = || json!({"model": "m", "input": "x"});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            decode(b).unwrap_err()
        };
        assert_eq!(
            field_of(with("frequency_penalty", json!(1))),
            "frequency_penalty"
        );
        assert_eq!(field_of(with("background", json!(true))), "background");
        assert_eq!(field_of(with("top_logprobs", json!(2))), "top_logprobs");
        let e = with("include", json!(["message.output_text.logprobs"]));
        assert_eq!(field_of(e), "include[0]");
        assert_eq!(field_of(with("include", json!(["nope"]))), "include[0]");
        let e = with(
            "input",
            json!([{"role": "user", "content": [{"type": "input_image", "file_id": "file-1", "detail": "auto"}]}]),
        );
        assert_eq!(field_of(e), "input[0].content[0].file_id");
        let e = with(
            "input",
            json!([{"role": "assistant", "content": [{"type": "input_image", "image_url": "x", "detail": "auto"}]}]),
        );
        assert_eq!(field_of(e), "input[0].content[0].type");
        assert_eq!(field_of(with("input", json!([]))), "input");
        assert_eq!(
            field_of(decode(json!({"input": "x"})).unwrap_err()),
            "model"
        );
        assert_eq!(
            field_of(decode(json!({"model": "m"})).unwrap_err()),
            "input"
        );
        let e = with(
            "input",
            json!([{"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "weir:!!"}]),
        );
        assert_eq!(field_of(e), "input[0].encrypted_content");
    }

    #[test]
    fn state_and_responses_only_behaviour_are_refused_elsewhere_with_the_way_out() {
        let r =
            decode(json!({"model": "m", "input": "x", "previous_response_id": "resp_1"})).unwrap();
        for kind in [
            ProviderKind::Anthropic,
            ProviderKind::OpenAi,
            ProviderKind::Gemini,
        ] {
            let e = portable(&r, kind).unwrap_err();
            let msg = message_of(&e);
            assert!(
                msg.contains("send the whole conversation in `input`"),
                "{msg}"
            );
            assert_eq!(field_of(e), "previous_response_id");
        }
        let stored = decode(json!({"model": "m", "input": "x", "store": true})).unwrap();
        assert_eq!(
            field_of(portable(&stored, ProviderKind::Ollama).unwrap_err()),
            "store"
        );
        let auto = decode(json!({"model": "m", "input": "x", "truncation": "auto"})).unwrap();
        assert_eq!(
            field_of(portable(&auto, ProviderKind::Anthropic).unwrap_err()),
            "truncation"
        );
        let pro =
            decode(json!({"model": "m", "input": "x", "reasoning": {"mode": "pro"}})).unwrap();
        assert_eq!(
            field_of(portable(&pro, ProviderKind::Anthropic).unwrap_err()),
            "reasoning.mode"
        );
        // A Responses provider takes all of it.
        assert_eq!(body_of(&r)["previous_response_id"], json!("resp_1"));
        assert_eq!(body_of(&stored)["store"], json!(true));
    }

    #[test]
    fn hints_are_dropped_elsewhere_or_kept_where_chat_completions_has_them() {
        let r = decode(json!({
            "model": "m", "input": "x", "metadata": {"k": "v"}, "prompt_cache_key": "p",
            "include": ["reasoning.encrypted_content"], "max_tool_calls": 3,
            "text": {"verbosity": "low"}, "tools": [{"type": "function", "name": "f", "strict": true}]
        }))
        .unwrap();
        let anthropic = portable(&r, ProviderKind::Anthropic).unwrap();
        assert!(anthropic.extra.is_empty() && anthropic.extra_family.is_none());
        assert_eq!(anthropic.tools, r.tools);
        let chat = portable(&r, ProviderKind::OpenAi).unwrap();
        assert_eq!(chat.extra_family, Some(Family::OpenAi));
        let mut keys: Vec<_> = chat.extra.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["metadata", "prompt_cache_key", "verbosity"]);
    }
}

mod provider_requests {
    use super::*;

    fn chat() -> ChatRequest {
        ChatRequest {
            model: "gpt-5".into(),
            messages: vec![
                Message::text(Role::System, "Be brief."),
                Message::text(Role::User, "Weather?"),
                Message {
                    role: Role::Assistant,
                    content: vec![
                        Part::Reasoning {
                            text: "sig".into(),
                            signature: Some("claude-sig".into()),
                            redacted: None,
                            id: None,
                            origin: Some(Origin::Anthropic),
                        },
                        Part::Reasoning {
                            text: "Think.".into(),
                            signature: None,
                            redacted: Some("gAAAA".into()),
                            id: Some("rs_1".into()),
                            origin: Some(Origin::OpenAiResponses),
                        },
                    ],
                    tool_calls: vec![ToolCall {
                        id: "call_1".into(),
                        name: "weather".into(),
                        arguments: String::new(),
                    }],
                    tool_call_id: None,
                    name: None,
                    is_error: false,
                    refusal: None,
                },
                Message {
                    role: Role::Tool,
                    content: vec![Part::Text {
                        text: "sunny".into(),
                    }],
                    tool_calls: Vec::new(),
                    tool_call_id: Some("call_1".into()),
                    name: None,
                    is_error: false,
                    refusal: None,
                },
                Message {
                    role: Role::User,
                    content: vec![
                        Part::Text {
                            text: "And this?".into(),
                        },
                        Part::Image {
                            source: Media::Url {
                                url: "https://x/y.png".into(),
                            },
                        },
                    ],
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                    name: None,
                    is_error: false,
                    refusal: None,
                },
            ],
            tools: vec![Tool {
                name: "weather".into(),
                description: None,
                parameters: json!({"type": "object"}),
                strict: None,
            }],
            tool_choice: Some(ToolChoice::Tool("weather".into())),
            max_tokens: Some(100),
            response_format: Some(ResponseFormat::JsonObject),
            reasoning: Some(Reasoning {
                effort: Some(Effort::High),
                ..Default::default()
            }),
            stream: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_chat_completions_request_becomes_a_stateless_responses_call() {
        let out = encode_request(&spec(), &Request::Chat(chat())).unwrap();
        assert_eq!(out.path, "/v1/responses");
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt-5",
                "instructions": "Be brief.",
                "input": [
                    {"type": "message", "role": "user", "content": "Weather?"},
                    // Claude's signed reasoning is dropped; OpenAI's goes back with its id.
                    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Think."}],
                     "encrypted_content": "gAAAA"},
                    {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "And this?"},
                        {"type": "input_image", "detail": "auto", "image_url": "https://x/y.png"}]}
                ],
                "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": false}],
                "tool_choice": {"type": "function", "name": "weather"},
                "text": {"format": {"type": "json_object"}},
                "reasoning": {"effort": "high"},
                "max_output_tokens": 100,
                "stream": true,
                "stream_options": {"include_obfuscation": false},
                "store": false
            })
        );
    }

    #[test]
    fn a_responses_clients_own_spelling_and_state_go_verbatim() {
        let r = decode(json!({
            "model": "gpt-5", "input": "x", "previous_response_id": "resp_0", "store": true,
            "tools": [{"type": "function", "name": "f", "parameters": null, "strict": true}],
            "text": {"format": {"type": "json_schema", "name": "O", "schema": {"type": "object"}, "description": "d"}},
            "reasoning": {"effort": "low", "generate_summary": "concise"},
            "include": ["reasoning.encrypted_content"]
        }))
        .unwrap();
        let body = body_of(&r);
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "name": "f", "parameters": null, "strict": true}])
        );
        assert_eq!(body["text"]["format"]["description"], json!("d"));
        assert_eq!(
            body["reasoning"],
            json!({"effort": "low", "generate_summary": "concise"})
        );
        assert_eq!(body["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(body["previous_response_id"], json!("resp_0"));
        assert_eq!(body["store"], json!(true));
        // Written once each, whatever the order in the body.
        let text =
            String::from_utf8(encode_request(&spec(), &Request::Chat(r)).unwrap().body).unwrap();
        assert_eq!(text.matches("\"tools\"").count(), 1);
        assert_eq!(text.matches("\"reasoning\"").count(), 1);
    }

    #[test]
    fn chat_extras_go_where_the_responses_api_has_them() {
        let mut c = chat();
        c.stream = false;
        c.reasoning = None;
        c.extra_family = Some(Family::OpenAi);
        c.extra.insert("verbosity".into(), json!("high"));
        c.extra.insert("reasoning_effort".into(), json!("minimal"));
        c.extra.insert("metadata".into(), json!({"a": "b"}));
        c.extra.insert("store".into(), json!(true));
        let body = body_of(&c);
        assert_eq!(
            body["text"],
            json!({"format": {"type": "json_object"}, "verbosity": "high"})
        );
        assert_eq!(body["reasoning"], json!({"effort": "minimal"}));
        assert_eq!(
            (&body["metadata"], &body["store"]),
            (&json!({"a": "b"}), &json!(true))
        );
        c.extra.insert("logit_bias".into(), json!({}));
        let e = encode_request(&spec(), &Request::Chat(c)).unwrap_err();
        assert_eq!(field_of(e), "logit_bias");
    }

    #[test]
    fn what_the_responses_api_cannot_express_is_refused_by_name() {
        type Set = fn(&mut ChatRequest);
        let cases: [(&str, Set); 5] = [
            ("stop", |c| c.stop = vec!["x".into()]),
            ("seed", |c| c.seed = Some(1)),
            ("n", |c| c.n = Some(2)),
            ("presence_penalty", |c| c.presence_penalty = Some(0.1)),
            ("top_k", |c| c.top_k = Some(4)),
        ];
        for (field, set) in cases {
            let mut c = chat();
            set(&mut c);
            let e = encode_request(&spec(), &Request::Chat(c)).unwrap_err();
            assert_eq!(e, WireError::unsupported(field, "openai-responses"));
        }
        // A token budget goes as the level it stands for.
        let mut c = chat();
        c.reasoning = Some(Reasoning {
            budget_tokens: Some(2048),
            ..Default::default()
        });
        assert_eq!(body_of(&c)["reasoning"], json!({"effort": "low"}));
    }

    #[test]
    fn azure_takes_the_api_version_and_embeddings_go_to_the_embeddings_endpoint() {
        let mut s = spec();
        s.base_path = "/openai/v1".into();
        s.api_version = Some("preview".into());
        let out = s.encode_request(&Request::Chat(chat())).unwrap();
        assert_eq!(out.path, "/openai/v1/responses?api-version=preview");
        let e = Request::Embeddings(EmbeddingsRequest {
            model: "text-embedding-3-small".into(),
            input: vec!["a".into()],
            ..Default::default()
        });
        assert_eq!(spec().encode_request(&e).unwrap().path, "/v1/embeddings");
    }
}

mod answers {
    use super::*;

    /// A complete answer as the API documents it: reasoning, a message, a function call.
    const ANSWER: &str = r#"{
      "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
      "object": "response", "created_at": 1741476777, "status": "completed", "background": false,
      "error": null, "incomplete_details": null, "instructions": null, "max_output_tokens": null,
      "model": "gpt-5-2025-08-07",
      "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "**Plan**"},
                                                         {"type": "summary_text", "text": "Call it."}],
         "encrypted_content": "gAAAAABo"},
        {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}]},
        {"id": "fc_1", "type": "function_call", "status": "completed", "arguments": "{\"city\":\"Paris\"}",
         "call_id": "call_abc", "name": "get_weather"}
      ],
      "parallel_tool_calls": true, "previous_response_id": null,
      "reasoning": {"effort": "medium", "summary": "auto"}, "service_tier": "default", "store": false,
      "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
      "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
      "usage": {"input_tokens": 328, "input_tokens_details": {"cached_tokens": 128},
                "output_tokens": 52, "output_tokens_details": {"reasoning_tokens": 30}, "total_tokens": 380},
      "user": null, "metadata": {}
    }"#;

    fn chat_req() -> Request {
        Request::Chat(ChatRequest {
            model: "gpt-5".into(),
            ..Default::default()
        })
    }

    #[test]
    fn a_documented_answer_decodes_into_one_choice() {
        let Response::Chat(c) = decode_response(&chat_req(), 200, ANSWER.as_bytes()).unwrap()
        else {
            panic!("not a chat answer")
        };
        assert_eq!(
            c.id,
            "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41"
        );
        assert_eq!(
            (c.model.as_str(), c.created),
            ("gpt-5-2025-08-07", 1741476777)
        );
        let choice = &c.choices[0];
        assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            choice.message.content,
            vec![
                Part::Reasoning {
                    text: "**Plan**\n\nCall it.".into(),
                    signature: None,
                    redacted: Some("gAAAAABo".into()),
                    id: Some("rs_1".into()),
                    origin: Some(Origin::OpenAiResponses)
                },
                Part::Text {
                    text: "Let me check.".into()
                }
            ]
        );
        assert_eq!(choice.message.tool_calls[0].id, "call_abc");
        assert_eq!(
            c.usage,
            Some(Usage {
                input_tokens: 328,
                output_tokens: 52,
                cached_input_tokens: 128,
                reasoning_tokens: 30
            })
        );
    }

    #[test]
    fn incomplete_failed_and_error_answers() {
        let mut v: Value = serde_json::from_str(ANSWER).unwrap();
        v["status"] = json!("incomplete");
        v["incomplete_details"] = json!({"reason": "max_output_tokens"});
        v["output"] = json!([v["output"][1].clone()]);
        let Response::Chat(c) =
            decode_response(&chat_req(), 200, v.to_string().as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.choices[0].finish_reason, FinishReason::Length);
        v["incomplete_details"] = json!({"reason": "content_filter"});
        let Response::Chat(c) =
            decode_response(&chat_req(), 200, v.to_string().as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.choices[0].finish_reason, FinishReason::ContentFilter);

        v["status"] = json!("failed");
        v["error"] = json!({"code": "server_error", "message": "The model failed."});
        let r = decode_response(&chat_req(), 200, v.to_string().as_bytes()).unwrap();
        assert_eq!(
            r,
            Response::Error(ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                "The model failed."
            ))
        );

        let body = br#"{"error": {"message": "Invalid 'input[0]'.", "type": "invalid_request_error", "param": "input", "code": null}}"#;
        let Response::Error(e) = decode_response(&chat_req(), 400, body).unwrap() else {
            panic!()
        };
        assert_eq!((e.status, e.message.as_str()), (400, "Invalid 'input[0]'."));
    }

    fn answer(content: Vec<Part>, calls: Vec<ToolCall>, finish: FinishReason) -> ChatResponse {
        ChatResponse {
            id: "msg_01XYZ".into(),
            model: "claude-sonnet-4-5".into(),
            created: 1700000000,
            choices: vec![Choice {
                index: 0,
                message: Message {
                    role: Role::Assistant,
                    content,
                    tool_calls: calls,
                    tool_call_id: None,
                    name: None,
                    is_error: false,
                    refusal: None,
                },
                finish_reason: finish,
            }],
            usage: Some(Usage {
                input_tokens: 10,
                output_tokens: 5,
                cached_input_tokens: 2,
                reasoning_tokens: 1,
            }),
        }
    }

    #[test]
    fn an_ir_answer_encodes_as_a_response_object_with_the_request_echoed() {
        let req = decode(
            json!({"model": "mock", "input": "x", "metadata": {"a": "1"},
                                "tools": [{"type": "function", "name": "f", "strict": true}],
                                "max_output_tokens": 9}),
        )
        .unwrap();
        let a = answer(
            vec![
                Part::Reasoning {
                    text: "hmm".into(),
                    signature: Some("sig==".into()),
                    redacted: None,
                    id: None,
                    origin: Some(Origin::Anthropic),
                },
                Part::Text { text: "Hi".into() },
            ],
            vec![ToolCall {
                id: "toolu_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            FinishReason::ToolCalls,
        );
        let v: Value = serde_json::from_slice(&encode_response(&req, &a)).unwrap();
        assert_eq!(v["id"], json!("resp_msg_01XYZ"));
        assert_eq!(
            (&v["status"], &v["object"]),
            (&json!("completed"), &json!("response"))
        );
        assert_eq!(v["incomplete_details"], Value::Null);
        let types: Vec<_> = v["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].clone())
            .collect();
        assert_eq!(
            types,
            [json!("reasoning"), json!("message"), json!("function_call")]
        );
        assert_eq!(v["output"][0]["id"], json!("rs_msg_01XYZ_0"));
        assert_eq!(
            v["output"][0]["summary"],
            json!([{"type": "summary_text", "text": "hmm"}])
        );
        assert_eq!(
            v["output"][1]["content"],
            json!([{"type": "output_text", "text": "Hi", "annotations": [], "logprobs": []}])
        );
        assert_eq!(v["output"][2]["call_id"], json!("toolu_1"));
        assert_eq!(
            v["usage"]["input_tokens_details"],
            json!({"cache_write_tokens": 0, "cached_tokens": 2})
        );
        assert_eq!(v["usage"]["total_tokens"], json!(15));
        assert_eq!(v["metadata"], json!({"a": "1"}));
        assert_eq!(v["tools"][0]["strict"], json!(true));
        assert_eq!(v["max_output_tokens"], json!(9));
        assert!(
            v.get("store").is_none(),
            "the SDK's `Response` has no `store`"
        );

        // The client sends the reasoning back: Claude's signature comes back out of it.
        let enc = v["output"][0]["encrypted_content"].as_str().unwrap();
        assert!(enc.starts_with("weir:"));
        let back = decode(json!({"model": "m", "input": [v["output"][0].clone()]})).unwrap();
        assert_eq!(
            back.messages[0].content,
            vec![Part::Reasoning {
                text: "hmm".into(),
                signature: Some("sig==".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Anthropic)
            }]
        );
    }

    #[test]
    fn cut_answers_are_incomplete_and_refusals_are_refusal_parts() {
        let req = decode(json!({"model": "m", "input": "x"})).unwrap();
        let mut a = answer(
            vec![Part::Text { text: "Hal".into() }],
            vec![],
            FinishReason::Length,
        );
        let v: Value = serde_json::from_slice(&encode_response(&req, &a)).unwrap();
        assert_eq!(v["status"], json!("incomplete"));
        assert_eq!(
            v["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(v["output"][0]["status"], json!("incomplete"));
        a.choices[0].finish_reason = FinishReason::Stop;
        a.choices[0].message.content.clear();
        a.choices[0].message.refusal = Some("No.".into());
        let v: Value = serde_json::from_slice(&encode_response(&req, &a)).unwrap();
        assert_eq!(
            v["output"][0]["content"],
            json!([{"type": "refusal", "refusal": "No."}])
        );
    }
}

mod stored {
    use super::*;

    #[test]
    fn stored_calls_parse_only_safe_ids_and_documented_parameters() {
        let c = StoredCall::parse(
            "GET",
            "/v1/responses/resp_123?include[]=x&api_key=s&stream=true",
        )
        .unwrap();
        assert_eq!((c.op, c.id.as_str()), (StoredOp::Get, "resp_123"));
        assert_eq!(c.query, "include[]=x&stream=true");
        let c = StoredCall::parse("DELETE", "/v1/responses/resp_1/").unwrap();
        assert_eq!((c.op, c.method()), (StoredOp::Delete, "DELETE"));
        let c =
            StoredCall::parse("GET", "/v1/responses/resp_1/input_items?limit=2&order=asc").unwrap();
        assert_eq!(
            (c.op, c.query.as_str()),
            (StoredOp::InputItems, "limit=2&order=asc")
        );
        for bad in [
            "/v1/responses/",
            "/v1/responses/../x",
            "/v1/responses/a%2Fb",
            "/v1/responses/a/b",
            "/v1/responses/a/cancel",
            "/v1/responsesx/a",
        ] {
            assert_eq!(StoredCall::parse("GET", bad), None, "{bad}");
        }
        assert_eq!(StoredCall::parse("POST", "/v1/responses"), None);
    }

    #[test]
    fn the_provider_path_keeps_the_operation_and_adds_the_api_version() {
        let c = StoredCall::parse("GET", "/responses/resp_9/input_items?after=x").unwrap();
        assert_eq!(
            c.provider_path(&spec()),
            "/v1/responses/resp_9/input_items?after=x"
        );
        let mut azure = spec();
        azure.base_path = "/openai/v1".into();
        azure.api_version = Some("2025-04-01 preview".into());
        let c = StoredCall::parse("DELETE", "/v1/responses/resp_9").unwrap();
        assert_eq!(
            c.provider_path(&azure),
            "/openai/v1/responses/resp_9?api-version=2025-04-01%20preview"
        );
    }
}

mod streams {
    use super::*;
    use crate::stream::sse::SseFramer;
    use crate::stream::testutil::splits;
    use crate::wire::{StreamDecoder as _, StreamEncoder as _};

    /// A stream as OpenAI sends it for a reasoning model that thinks (with a summary), says a
    /// few words and calls a function: obfuscation padding on deltas, the whole response on the
    /// lifecycle events, a CRLF event, a keep-alive comment.
    const RECORDED: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_68b\",\"object\":\"response\",\"created_at\":1756315696,\"status\":\"in_progress\",\"background\":false,\"error\":null,\"incomplete_details\":null,\"instructions\":null,\"max_output_tokens\":null,\"model\":\"gpt-5-2025-08-07\",\"output\":[],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":{\"effort\":\"medium\",\"summary\":\"auto\"},\"store\":false,\"temperature\":1.0,\"text\":{\"format\":{\"type\":\"text\"},\"verbosity\":\"medium\"},\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":null,\"user\":null,\"metadata\":{}}}\n\n",
        "event: response.in_progress\n",
        "data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_68b\",\"object\":\"response\",\"created_at\":1756315696,\"status\":\"in_progress\",\"model\":\"gpt-5-2025-08-07\",\"output\":[],\"usage\":null}}\n\n",
        ": keep-alive\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"rs_68b1\",\"type\":\"reasoning\",\"summary\":[]}}\n\n",
        "event: response.reasoning_summary_part.added\n",
        "data: {\"type\":\"response.reasoning_summary_part.added\",\"sequence_number\":3,\"item_id\":\"rs_68b1\",\"output_index\":0,\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}}\n\n",
        "event: response.reasoning_summary_text.delta\n",
        "data: {\"type\":\"response.reasoning_summary_text.delta\",\"sequence_number\":4,\"item_id\":\"rs_68b1\",\"output_index\":0,\"summary_index\":0,\"delta\":\"**Checking Zürich**\",\"obfuscation\":\"Qx3\"}\n\n",
        "event: response.reasoning_summary_text.done\n",
        "data: {\"type\":\"response.reasoning_summary_text.done\",\"sequence_number\":5,\"item_id\":\"rs_68b1\",\"output_index\":0,\"summary_index\":0,\"text\":\"**Checking Zürich**\"}\n\n",
        "event: response.reasoning_summary_part.added\n",
        "data: {\"type\":\"response.reasoning_summary_part.added\",\"sequence_number\":6,\"item_id\":\"rs_68b1\",\"output_index\":0,\"summary_index\":1,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}}\n\n",
        "event: response.reasoning_summary_text.delta\n",
        "data: {\"type\":\"response.reasoning_summary_text.delta\",\"sequence_number\":7,\"item_id\":\"rs_68b1\",\"output_index\":0,\"summary_index\":1,\"delta\":\"Use the tool.\",\"obfuscation\":\"a\"}\n\n",
        "event: response.output_item.done\n",
        "data: {\"type\":\"response.output_item.done\",\"sequence_number\":8,\"output_index\":0,\"item\":{\"id\":\"rs_68b1\",\"type\":\"reasoning\",\"encrypted_content\":\"gAAAAABorv\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"**Checking Zürich**\"},{\"type\":\"summary_text\",\"text\":\"Use the tool.\"}]}}\n\n",
        "event: response.output_item.added\r\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":9,\"output_index\":1,\"item\":{\"id\":\"msg_68b2\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}}\r\n\r\n",
        "event: response.content_part.added\n",
        "data: {\"type\":\"response.content_part.added\",\"sequence_number\":10,\"item_id\":\"msg_68b2\",\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":11,\"item_id\":\"msg_68b2\",\"output_index\":1,\"content_index\":0,\"delta\":\"One moment \",\"logprobs\":[],\"obfuscation\":\"kP\"}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":12,\"item_id\":\"msg_68b2\",\"output_index\":1,\"content_index\":0,\"delta\":\"🦀.\",\"logprobs\":[],\"obfuscation\":\"zzzzzz\"}\n\n",
        "event: response.output_text.done\n",
        "data: {\"type\":\"response.output_text.done\",\"sequence_number\":13,\"item_id\":\"msg_68b2\",\"output_index\":1,\"content_index\":0,\"text\":\"One moment 🦀.\",\"logprobs\":[]}\n\n",
        "event: response.content_part.done\n",
        "data: {\"type\":\"response.content_part.done\",\"sequence_number\":14,\"item_id\":\"msg_68b2\",\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"One moment 🦀.\"}}\n\n",
        "event: response.output_item.done\n",
        "data: {\"type\":\"response.output_item.done\",\"sequence_number\":15,\"output_index\":1,\"item\":{\"id\":\"msg_68b2\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"One moment 🦀.\"}],\"role\":\"assistant\"}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":16,\"output_index\":2,\"item\":{\"id\":\"fc_68b3\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":\"call_Vx9\",\"name\":\"get_weather\"}}\n\n",
        "event: response.function_call_arguments.delta\n",
        "data: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":17,\"item_id\":\"fc_68b3\",\"output_index\":2,\"delta\":\"{\\\"city\\\":\\\"Zü\",\"obfuscation\":\"Yy\"}\n\n",
        "event: response.function_call_arguments.delta\n",
        "data: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":18,\"item_id\":\"fc_68b3\",\"output_index\":2,\"delta\":\"rich\\\"}\",\"obfuscation\":\"q\"}\n\n",
        "event: response.function_call_arguments.done\n",
        "data: {\"type\":\"response.function_call_arguments.done\",\"sequence_number\":19,\"item_id\":\"fc_68b3\",\"output_index\":2,\"arguments\":\"{\\\"city\\\":\\\"Zürich\\\"}\"}\n\n",
        "event: response.output_item.done\n",
        "data: {\"type\":\"response.output_item.done\",\"sequence_number\":20,\"output_index\":2,\"item\":{\"id\":\"fc_68b3\",\"type\":\"function_call\",\"status\":\"completed\",\"arguments\":\"{\\\"city\\\":\\\"Zürich\\\"}\",\"call_id\":\"call_Vx9\",\"name\":\"get_weather\"}}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"sequence_number\":21,\"response\":{\"id\":\"resp_68b\",\"object\":\"response\",\"created_at\":1756315696,\"status\":\"completed\",\"error\":null,\"incomplete_details\":null,\"model\":\"gpt-5-2025-08-07\",\"output\":[],\"usage\":{\"input_tokens\":81,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":420,\"output_tokens_details\":{\"reasoning_tokens\":384},\"total_tokens\":501}}}\n\n",
    );

    fn expected() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "resp_68b".into(),
                model: "gpt-5-2025-08-07".into(),
                created: 1756315696,
            },
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "**Checking Zürich**".into(),
            },
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "\n\n".into(),
            },
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "Use the tool.".into(),
            },
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: None,
                redacted: Some("gAAAAABorv".into()),
                id: Some("rs_68b1".into()),
                origin: Some(Origin::OpenAiResponses),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "One moment ".into(),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "🦀.".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "call_Vx9".into(),
                name: "get_weather".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "{\"city\":\"Zü".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "rich\"}".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 81,
                output_tokens: 420,
                cached_input_tokens: 0,
                reasoning_tokens: 384,
            }),
        ]
    }

    pub(super) fn decode_chunks(chunks: &[Vec<u8>]) -> Result<Vec<StreamEvent>, WireError> {
        let req = ChatRequest {
            model: "gpt-5".into(),
            ..Default::default()
        };
        let mut d = ResponsesStreamDecoder::new(&req, 1 << 16);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out)?;
        }
        d.end(&mut out)?;
        Ok(out)
    }

    fn decode_str(s: &str) -> Vec<StreamEvent> {
        decode_chunks(&[s.as_bytes().to_vec()]).unwrap()
    }

    #[test]
    fn decodes_a_recorded_stream_identically_in_every_split() {
        let whole = decode_str(RECORDED);
        assert_eq!(whole, expected());
        for chunks in splits(RECORDED.as_bytes(), 200) {
            assert_eq!(decode_chunks(&chunks).unwrap(), whole);
        }
    }

    #[test]
    fn failures_end_the_stream_and_done_events_fill_in_what_deltas_did_not_say() {
        let head = RECORDED
            .split("event: response.output_item.added")
            .next()
            .unwrap();
        let failed = format!(
            "{head}event: response.failed\ndata: {}\n\n",
            json!({"type": "response.failed", "sequence_number": 2, "response": {"id": "resp_68b",
                   "status": "failed", "error": {"code": "server_error", "message": "The server had an error."}}})
        );
        let got = decode_str(&failed);
        assert_eq!(
            got[1..],
            [StreamEvent::Error(ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                "The server had an error."
            ))]
        );
        let error = format!(
            "{head}event: error\ndata: {}\n\nevent: response.completed\ndata: {{}}\n\n",
            json!({"type": "error", "sequence_number": 2, "code": "rate_limit_exceeded", "message": "Slow down.", "param": null})
        );
        assert_eq!(
            decode_str(&error)[1..],
            [StreamEvent::Error(ErrorInfo::new(
                429,
                ErrorKind::RateLimited,
                "Slow down."
            ))]
        );
        // Items whose content came only with `output_item.done` (no deltas).
        let quiet = format!(
            "{head}{}{}{}",
            "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"whole\",\"annotations\":[]}]}}\n\n",
            "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":3,\"output_index\":1,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"{\\\"a\\\"\",\"call_id\":\"c\",\"name\":\"f\"}}\n\nevent: response.function_call_arguments.done\ndata: {\"type\":\"response.function_call_arguments.done\",\"sequence_number\":4,\"item_id\":\"fc_1\",\"output_index\":1,\"arguments\":\"{\\\"a\\\":1}\"}\n\n",
            "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"sequence_number\":5,\"response\":{\"id\":\"resp_68b\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"usage\":{\"input_tokens\":1,\"output_tokens\":2,\"total_tokens\":3}}}\n\n",
        );
        let got = decode_str(&quiet);
        assert_eq!(
            got[1..],
            [
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "whole".into()
                },
                StreamEvent::ToolCallStart {
                    choice: 0,
                    index: 0,
                    id: "c".into(),
                    name: "f".into()
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: "{\"a\"".into()
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: ":1}".into()
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Length
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 1,
                    output_tokens: 2,
                    ..Default::default()
                }),
            ]
        );
        // Cut before the end: no Finish, which the client's encoder turns into an error.
        let cut = RECORDED.split("event: response.completed").next().unwrap();
        assert!(!decode_str(cut)
            .iter()
            .any(|e| matches!(e, StreamEvent::Finish { .. })));
    }

    /// Parses SSE bytes into (event name, data) pairs, checking what the SDK's accumulator
    /// checks: names match types, numbering is contiguous from 0, `response.created` first, one
    /// terminal event last, every item announced before use and finished under the same id, and
    /// the terminal response listing exactly the finished items.
    pub(super) fn parse_checked(bytes: &[u8]) -> Vec<(String, Value)> {
        let mut f = SseFramer::new(1 << 20);
        let mut frames = Vec::new();
        f.push(bytes, &mut frames).unwrap();
        f.finish(&mut frames).unwrap();
        let events: Vec<(String, Value)> = frames
            .into_iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                let name = e.event.unwrap();
                assert_eq!(v["type"], json!(name));
                (name, v)
            })
            .collect();
        let mut added: Vec<Value> = Vec::new();
        let mut done: Vec<Option<Value>> = Vec::new();
        for (i, (name, v)) in events.iter().enumerate() {
            assert_eq!(v["sequence_number"], json!(i), "{name}");
            if i == 0 {
                assert_eq!(name, "response.created");
            }
            let terminal = matches!(
                name.as_str(),
                "response.completed" | "response.incomplete" | "response.failed"
            );
            assert_eq!(terminal, i == events.len() - 1, "{name} at {i}");
            if let Some(index) = v["output_index"].as_u64() {
                let index = index as usize;
                if name == "response.output_item.added" {
                    assert_eq!(index, added.len(), "items are announced in order");
                    added.push(v["item"].clone());
                    done.push(None);
                    continue;
                }
                let item = &added[index];
                if let Some(id) = v["item_id"].as_str() {
                    assert_eq!(item["id"], json!(id));
                }
                if name == "response.output_item.done" {
                    assert_eq!(v["item"]["id"], item["id"]);
                    assert_eq!(v["item"]["type"], item["type"]);
                    assert!(done[index].is_none(), "an item is finished once");
                    done[index] = Some(v["item"].clone());
                }
            }
            if terminal && name != "response.failed" {
                let finished: Vec<Value> = done
                    .iter()
                    .map(|d| d.clone().expect("every item finished"))
                    .collect();
                assert_eq!(v["response"]["output"], json!(finished));
            }
        }
        events
    }

    pub(super) fn encode_events(
        req: &ChatRequest,
        events: &[StreamEvent],
        limit: usize,
    ) -> Vec<u8> {
        let mut enc = ResponsesStreamEncoder::new(req, limit);
        let mut out = Vec::new();
        for ev in events {
            enc.event(ev, &mut out);
        }
        enc.end(&mut out);
        out
    }

    fn request() -> ChatRequest {
        decode(json!({"model": "mock", "input": "x", "stream": true,
                      "include": ["reasoning.encrypted_content"]}))
        .unwrap()
    }

    #[test]
    fn the_encoder_writes_what_the_sdk_accumulator_accepts_and_decodes_back() {
        let bytes = encode_events(&request(), &expected(), 1 << 20);
        let events = parse_checked(&bytes);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let (_, completed) = events.last().unwrap();
        let r = &completed["response"];
        assert_eq!(
            (&r["id"], &r["status"]),
            (&json!("resp_68b"), &json!("completed"))
        );
        // OpenAI's reasoning keeps its id and payload; items are numbered from the response.
        assert_eq!(r["output"][0]["id"], json!("rs_68b1"));
        assert_eq!(r["output"][0]["encrypted_content"], json!("gAAAAABorv"));
        assert_eq!(r["output"][1]["id"], json!("msg_68b_1"));
        assert_eq!(r["output"][2]["arguments"], json!("{\"city\":\"Zürich\"}"));
        assert_eq!(
            r["usage"]["output_tokens_details"]["reasoning_tokens"],
            json!(384)
        );
        // The reasoning streams whole, so its deltas arrive as one.
        let mut back = decode_chunks(&[bytes]).unwrap();
        let mut want = expected();
        back.retain(|e| !matches!(e, StreamEvent::ReasoningDelta { .. }));
        want.retain(|e| !matches!(e, StreamEvent::ReasoningDelta { .. }));
        assert_eq!(back, want);
    }

    #[test]
    fn refusals_cut_answers_errors_and_truncation_end_the_stream_properly() {
        let start = StreamEvent::Start {
            id: "chatcmpl-1".into(),
            model: "m".into(),
            created: 5,
        };
        let text = |t: &str| StreamEvent::TextDelta {
            choice: 0,
            text: t.into(),
        };
        let refusal = StreamEvent::RefusalDelta {
            choice: 0,
            text: "No.".into(),
        };
        let finish = |reason| StreamEvent::Finish { choice: 0, reason };
        let events = parse_checked(&encode_events(
            &request(),
            &[
                start.clone(),
                text("a"),
                refusal,
                finish(FinishReason::Length),
            ],
            1 << 20,
        ));
        let (name, last) = events.last().unwrap();
        assert_eq!(name, "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(
            last["response"]["output"][0]["content"],
            json!([{"type": "output_text", "text": "a", "annotations": [], "logprobs": []},
                   {"type": "refusal", "refusal": "No."}])
        );
        assert!(events
            .iter()
            .any(|(n, v)| n == "response.refusal.delta" && v["content_index"] == json!(1)));

        let err = StreamEvent::Error(ErrorInfo::new(429, ErrorKind::RateLimited, "slow"));
        let events = parse_checked(&encode_events(
            &request(),
            &[start.clone(), text("a"), err.clone(), text("b")],
            1 << 20,
        ));
        let (name, last) = events.last().unwrap();
        assert_eq!(name, "response.failed");
        assert_eq!(
            last["response"]["error"],
            json!({"code": "rate_limit_exceeded", "message": "slow"})
        );
        // An error before anything else still opens the stream first.
        let events = parse_checked(&encode_events(&request(), &[err], 1 << 20));
        assert_eq!(events.len(), 3);

        let events = parse_checked(&encode_events(
            &request(),
            &[start.clone(), text("a")],
            1 << 20,
        ));
        assert_eq!(events.last().unwrap().0, "response.failed");
        let events = parse_checked(&encode_events(
            &request(),
            &[
                start,
                text("0123456789"),
                text("more"),
                finish(FinishReason::Stop),
            ],
            12,
        ));
        let (name, last) = events.last().unwrap();
        assert_eq!(name, "response.failed");
        assert!(last["response"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_response_bytes"));
    }

    #[test]
    fn interleaved_calls_and_signed_reasoning_from_other_providers() {
        // Written as `{"type": variant, fields...}` for reading; the IR's own JSON is externally
        // tagged (`{variant: {fields...}}`).
        let ev = |mut e: Value| {
            let variant = e["type"].take();
            e.as_object_mut().unwrap().remove("type");
            let tagged = json!({ variant.as_str().unwrap(): e });
            serde_json::from_value::<StreamEvent>(tagged).unwrap()
        };
        let events = vec![
            ev(json!({"type": "start", "id": "msg_01", "model": "claude", "created": 1})),
            ev(json!({"type": "reasoning_delta", "text": "think"})),
            ev(json!({"type": "reasoning_end", "signature": "sig", "origin": "anthropic"})),
            ev(json!({"type": "tool_call_start", "index": 0, "id": "t0", "name": "a"})),
            ev(json!({"type": "tool_call_start", "index": 1, "id": "t1", "name": "b"})),
            ev(json!({"type": "tool_call_delta", "index": 0, "arguments": "{}"})),
            ev(json!({"type": "tool_call_delta", "index": 1, "arguments": "{\"x\":1}"})),
            ev(json!({"type": "text_delta", "choice": 1, "text": "another choice"})),
            ev(json!({"type": "finish", "reason": "tool_calls"})),
        ];
        let events = parse_checked(&encode_events(&request(), &events, 1 << 20));
        let (_, last) = events.last().unwrap();
        let out = &last["response"]["output"];
        assert_eq!(out[0]["id"], json!("rs_msg_01_0"));
        assert!(out[0]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("weir:"));
        assert_eq!(
            (&out[1]["arguments"], &out[2]["arguments"]),
            (&json!("{}"), &json!("{\"x\":1}"))
        );
        assert_eq!(
            out.as_array().unwrap().len(),
            3,
            "choices other than 0 are not the answer"
        );
        assert_eq!(last["response"]["usage"], Value::Null);
    }

    #[test]
    fn reasoning_payloads_pack_and_unpack() {
        assert_eq!(pack_reasoning(None, Some("s"), None), None);
        assert_eq!(
            pack_reasoning(Some(Origin::OpenAiResponses), None, Some("gAAA")),
            Some("gAAA".into())
        );
        for origin in [Origin::Anthropic, Origin::Gemini] {
            let packed = pack_reasoning(Some(origin), Some("sig"), Some("red")).unwrap();
            assert_eq!(
                unpack_reasoning(&packed),
                Some(ReasoningPayload {
                    origin,
                    signature: Some("sig".into()),
                    redacted: Some("red".into())
                })
            );
        }
        assert_eq!(pack_reasoning(Some(Origin::Gemini), None, None), None);
        assert_eq!(
            unpack_reasoning("weir:e30="),
            None,
            "an empty packed payload"
        );
        assert_eq!(
            unpack_reasoning("opaque").map(|p| p.origin),
            Some(Origin::OpenAiResponses)
        );
    }

    #[test]
    fn usage_reads_back_what_it_writes() {
        let u = Usage {
            input_tokens: 9,
            output_tokens: 8,
            cached_input_tokens: 7,
            reasoning_tokens: 6,
        };
        let mut w = crate::wire::json::JsonWriter::with_capacity(0);
        write_usage(&mut w, &u);
        let text = w.into_string();
        let map = parse_object(text.as_bytes(), "usage").unwrap();
        assert_eq!(read_usage(&crate::wire::json::Obj::root(&map)).unwrap(), u);
    }
}

/// Built-in tools (`web_search`, ...): verbatim to and from a Responses provider, refused by name
/// for every other target, their items and annotations relayed in order and in every split.
mod hosted {
    use super::streams::{decode_chunks, encode_events, parse_checked};
    use super::*;
    use crate::stream::testutil::splits;
    use crate::wire::ClientApi;

    const OTHERS: [ProviderKind; 8] = [
        ProviderKind::OpenAi,
        ProviderKind::AzureOpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Bedrock,
        ProviderKind::Ollama,
        ProviderKind::Mistral,
        ProviderKind::OpenAiCompatible,
    ];

    fn other(kind: ProviderKind) -> ProviderSpec {
        ProviderSpec { kind, ..spec() }
    }

    fn with_tools() -> Value {
        json!({"model": "gpt-5", "input": "Weather in Paris?", "include": ["web_search_call.action.sources"],
               "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}},
                         {"type": "web_search", "search_context_size": "low"}],
               "tool_choice": "auto"})
    }

    #[test]
    fn built_in_tools_reach_a_responses_provider_verbatim_and_are_refused_by_name_elsewhere() {
        let body = with_tools();
        let r = decode(body.clone()).unwrap();
        // The IR holds the function tool only; the Responses provider gets the client's list.
        assert_eq!(r.tools.len(), 1);
        let sent = body_of(&r);
        assert_eq!(sent["tools"], body["tools"]);
        assert_eq!(sent["include"], body["include"]);
        for kind in OTHERS {
            let e = other(kind)
                .encode_request(&Request::Chat(r.clone()))
                .unwrap_err();
            let message = message_of(&e);
            assert!(message.contains("built-in tool `web_search`"), "{message}");
            assert!(message.contains(kind.name()), "{message}");
            assert_eq!(field_of(e), "tools[1].type");
        }

        let mut forced = body.clone();
        forced["tools"] = json!([{"type": "web_search_preview"}]);
        forced["tool_choice"] = json!({"type": "web_search_preview"});
        let r = decode(forced.clone()).unwrap();
        assert_eq!(body_of(&r)["tool_choice"], forced["tool_choice"]);
        let e = portable(&r, ProviderKind::Anthropic).unwrap_err();
        assert!(message_of(&e).contains("`web_search_preview`"));
        assert_eq!(field_of(e), "tool_choice.type");

        let mut allowed = body.clone();
        allowed["tools"] = json!([{"type": "function", "name": "f", "parameters": {}}]);
        allowed["tool_choice"] = json!({"type": "allowed_tools", "mode": "auto",
            "tools": [{"type": "function", "name": "f"}, {"type": "file_search"}]});
        let r = decode(allowed).unwrap();
        assert_eq!(r.tools.len(), 1);
        let e = portable(&r, ProviderKind::Gemini).unwrap_err();
        assert_eq!(field_of(e), "tool_choice.tools[1].type");
    }

    #[test]
    fn built_in_tools_items_in_input_keep_their_place_for_a_responses_provider_only() {
        let ws = json!({"type": "web_search_call", "id": "ws_1", "status": "completed",
                        "action": {"type": "search", "query": "paris weather"}});
        let input = json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
            ws,
            {"type": "message", "role": "assistant", "id": "msg_1",
             "content": [{"type": "output_text", "text": "Sunny.", "annotations": [
                 {"type": "url_citation", "start_index": 0, "end_index": 6, "url": "https://w.example", "title": "W"}]}]},
            {"type": "item_reference", "id": "ws_0"},
            {"role": "user", "content": "And tomorrow?"}
        ]);
        let r = decode(json!({"model": "gpt-5", "input": input})).unwrap();
        let sent = body_of(&r)["input"].clone();
        let kinds: Vec<&str> = sent
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap_or("message"))
            .collect();
        assert_eq!(
            kinds,
            [
                "message",
                "reasoning",
                "web_search_call",
                "message",
                "item_reference",
                "message"
            ]
        );
        assert_eq!(sent[2], ws);
        assert_eq!(sent[3]["content"], json!("Sunny."));

        // No extras at all: the items alone make the request Responses-only.
        let r = decode(json!({"model": "gpt-5", "input": [ws, {"role": "user", "content": "x"}]}))
            .unwrap();
        assert!(r.extra.is_empty());
        for kind in OTHERS {
            let e = other(kind)
                .encode_request(&Request::Chat(r.clone()))
                .unwrap_err();
            assert!(message_of(&e).contains("`web_search_call` item"), "{e:?}");
            assert_eq!(field_of(e), "input");
        }
        let r =
            decode(json!({"model": "gpt-5", "input": [{"type": "item_reference", "id": "msg_1"}]}))
                .unwrap();
        let e = portable(&r, ProviderKind::Anthropic).unwrap_err();
        assert!(message_of(&e).contains("item_reference"));
        assert!(message_of(&e).contains("stateless"));
    }

    /// A web-search answer as the API reference shows it: the search call, then a message whose
    /// two text parts cite their sources.
    const SEARCHED: &str = r#"{
      "id": "resp_ws", "object": "response", "created_at": 1741476777, "status": "completed",
      "model": "gpt-5", "incomplete_details": null,
      "output": [
        {"id": "ws_67c9", "type": "web_search_call", "status": "completed",
         "action": {"type": "search", "query": "positive news today",
                    "sources": [{"type": "url", "url": "https://news.example/a"}]}},
        {"id": "msg_67c9", "type": "message", "status": "completed", "role": "assistant",
         "content": [
           {"type": "output_text", "text": "Good news: ",
            "annotations": [{"type": "url_citation", "start_index": 0, "end_index": 4,
                             "url": "https://news.example/a", "title": "A"}], "logprobs": []},
           {"type": "output_text", "text": "rivers are cleaner.",
            "annotations": [{"type": "url_citation", "start_index": 0, "end_index": 6,
                             "url": "https://news.example/b", "title": "B"}], "logprobs": []}]}
      ],
      "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
    }"#;

    #[test]
    fn an_answer_keeps_built_in_items_annotations_and_ids_for_responses_clients_only() {
        let req = Request::Chat(ChatRequest {
            model: "gpt-5".into(),
            ..Default::default()
        });
        let Response::Chat(c) = decode_response(&req, 200, SEARCHED.as_bytes()).unwrap() else {
            panic!("not a chat answer")
        };
        let choice = &c.choices[0];
        assert_eq!(choice.finish_reason, FinishReason::Stop);
        assert_eq!(
            choice.message.joined_text(),
            "Good news: rivers are cleaner."
        );

        let client = decode(with_tools()).unwrap();
        let out: Value = serde_json::from_slice(&encode_response(&client, &c)).unwrap();
        let source: Value = serde_json::from_str(SEARCHED).unwrap();
        let output = out["output"].as_array().unwrap();
        assert_eq!(output.len(), 2);
        assert_eq!(
            output[0], source["output"][0],
            "the search call goes back verbatim"
        );
        assert_eq!(output[1]["id"], json!("msg_67c9"));
        let part = &output[1]["content"][0];
        assert_eq!(part["text"], json!("Good news: rivers are cleaner."));
        // The second part's citation now counts from the start of the joined text.
        assert_eq!(
            part["annotations"],
            json!([
                {"type": "url_citation", "start_index": 0, "end_index": 4,
                 "url": "https://news.example/a", "title": "A"},
                {"type": "url_citation", "start_index": 11, "end_index": 17,
                 "url": "https://news.example/b", "title": "B"}
            ])
        );
        assert_eq!(out["status"], json!("completed"));

        // Other client protocols see the text and nothing of the rest.
        for api in [
            ClientApi::OpenAiChat,
            ClientApi::AnthropicMessages,
            ClientApi::OllamaChat,
        ] {
            let body = api.encode_response(&req, &Response::Chat(c.clone()));
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains("rivers are cleaner."), "{text}");
            assert!(
                !text.contains("ws_67c9") && !text.contains("url_citation"),
                "{text}"
            );
        }
    }

    /// A web-search stream in the API reference's event order: the call's lifecycle events, then
    /// the message with a citation added after its text.
    const RECORDED: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_ws\",\"object\":\"response\",\"created_at\":1756315696,\"status\":\"in_progress\",\"model\":\"gpt-5\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.in_progress\n",
        "data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_ws\",\"object\":\"response\",\"created_at\":1756315696,\"status\":\"in_progress\",\"model\":\"gpt-5\",\"output\":[],\"usage\":null}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"ws_68\",\"type\":\"web_search_call\",\"status\":\"in_progress\",\"action\":{\"type\":\"search\"}}}\n\n",
        "event: response.web_search_call.in_progress\n",
        "data: {\"type\":\"response.web_search_call.in_progress\",\"sequence_number\":3,\"output_index\":0,\"item_id\":\"ws_68\"}\n\n",
        "event: response.web_search_call.searching\n",
        "data: {\"type\":\"response.web_search_call.searching\",\"sequence_number\":4,\"output_index\":0,\"item_id\":\"ws_68\"}\n\n",
        "event: response.web_search_call.completed\n",
        "data: {\"type\":\"response.web_search_call.completed\",\"sequence_number\":5,\"output_index\":0,\"item_id\":\"ws_68\"}\n\n",
        "event: response.output_item.done\n",
        "data: {\"type\":\"response.output_item.done\",\"sequence_number\":6,\"output_index\":0,\"item\":{\"id\":\"ws_68\",\"type\":\"web_search_call\",\"status\":\"completed\",\"action\":{\"type\":\"search\",\"query\":\"z\u{fc}rich weather\"}}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":7,\"output_index\":1,\"item\":{\"id\":\"msg_68\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}}\n\n",
        "event: response.content_part.added\n",
        "data: {\"type\":\"response.content_part.added\",\"sequence_number\":8,\"item_id\":\"msg_68\",\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":9,\"item_id\":\"msg_68\",\"output_index\":1,\"content_index\":0,\"delta\":\"Z\u{fc}rich: sunny \",\"logprobs\":[]}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":10,\"item_id\":\"msg_68\",\"output_index\":1,\"content_index\":0,\"delta\":\"(meteo).\",\"logprobs\":[]}\n\n",
        "event: response.output_text.annotation.added\n",
        "data: {\"type\":\"response.output_text.annotation.added\",\"sequence_number\":11,\"item_id\":\"msg_68\",\"output_index\":1,\"content_index\":0,\"annotation_index\":0,\"annotation\":{\"type\":\"url_citation\",\"start_index\":14,\"end_index\":21,\"url\":\"https://meteo.example/zh\",\"title\":\"Meteo\"}}\n\n",
        "event: response.output_text.done\n",
        "data: {\"type\":\"response.output_text.done\",\"sequence_number\":12,\"item_id\":\"msg_68\",\"output_index\":1,\"content_index\":0,\"text\":\"Z\u{fc}rich: sunny (meteo).\",\"logprobs\":[]}\n\n",
        "event: response.content_part.done\n",
        "data: {\"type\":\"response.content_part.done\",\"sequence_number\":13,\"item_id\":\"msg_68\",\"output_index\":1,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[{\"type\":\"url_citation\",\"start_index\":14,\"end_index\":21,\"url\":\"https://meteo.example/zh\",\"title\":\"Meteo\"}],\"logprobs\":[],\"text\":\"Z\u{fc}rich: sunny (meteo).\"}}\n\n",
        "event: response.output_item.done\n",
        "data: {\"type\":\"response.output_item.done\",\"sequence_number\":14,\"output_index\":1,\"item\":{\"id\":\"msg_68\",\"type\":\"message\",\"status\":\"completed\",\"content\":[{\"type\":\"output_text\",\"annotations\":[{\"type\":\"url_citation\",\"start_index\":14,\"end_index\":21,\"url\":\"https://meteo.example/zh\",\"title\":\"Meteo\"}],\"logprobs\":[],\"text\":\"Z\u{fc}rich: sunny (meteo).\"}],\"role\":\"assistant\"}}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"sequence_number\":15,\"response\":{\"id\":\"resp_ws\",\"object\":\"response\",\"created_at\":1756315696,\"status\":\"completed\",\"model\":\"gpt-5\",\"output\":[],\"usage\":{\"input_tokens\":9,\"output_tokens\":12,\"total_tokens\":21}}}\n\n",
    );

    fn event_of(recorded: &str, seq: u64) -> Value {
        recorded
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .find(|v| v["sequence_number"] == json!(seq))
            .unwrap()
    }

    fn native(event: Value) -> StreamEvent {
        StreamEvent::Native {
            choice: 0,
            origin: Origin::OpenAiResponses,
            event,
        }
    }

    fn expected() -> Vec<StreamEvent> {
        let ev = |seq| native(event_of(RECORDED, seq));
        vec![
            StreamEvent::Start {
                id: "resp_ws".into(),
                model: "gpt-5".into(),
                created: 1756315696,
            },
            ev(2),
            ev(3),
            ev(4),
            ev(5),
            ev(6),
            StreamEvent::TextDelta {
                choice: 0,
                text: "Zürich: sunny ".into(),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "(meteo).".into(),
            },
            ev(11),
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 9,
                output_tokens: 12,
                ..Default::default()
            }),
        ]
    }

    #[test]
    fn a_recorded_web_search_stream_decodes_identically_in_every_split() {
        let whole = decode_chunks(&[RECORDED.as_bytes().to_vec()]).unwrap();
        assert_eq!(whole, expected());
        for chunks in splits(RECORDED.as_bytes(), 200) {
            assert_eq!(decode_chunks(&chunks).unwrap(), whole);
        }
    }

    #[test]
    fn the_encoder_renumbers_built_in_items_and_annotations_into_its_own_stream() {
        // Text before the search: the provider's item 0 is this stream's item 1.
        let mut events = expected();
        events.insert(
            1,
            StreamEvent::TextDelta {
                choice: 0,
                text: "Let me look. ".into(),
            },
        );
        let client = decode(with_tools()).unwrap();
        let bytes = encode_events(&client, &events, 1 << 20);
        let got = parse_checked(&bytes);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.web_search_call.in_progress",
                "response.web_search_call.searching",
                "response.web_search_call.completed",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.annotation.added",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let (_, searching) = &got[10];
        assert_eq!(
            (
                searching["output_index"].clone(),
                searching["item_id"].clone()
            ),
            (json!(1), json!("ws_68"))
        );
        let (_, added) = &got[17];
        assert_eq!(added["output_index"], json!(2));
        assert_eq!(added["content_index"], json!(0));
        assert_eq!(added["annotation_index"], json!(0));
        let annotation = event_of(RECORDED, 11)["annotation"].clone();
        assert_eq!(added["annotation"], annotation);
        let (_, done) = &got[19];
        assert_eq!(done["part"]["annotations"], json!([annotation]));
        let (_, completed) = got.last().unwrap();
        let output = &completed["response"]["output"];
        assert_eq!(output[1], event_of(RECORDED, 6)["item"]);
        assert_eq!(output[2]["content"][0]["annotations"], json!([annotation]));

        // Other clients' streams carry the text and none of it.
        for api in [
            ClientApi::OpenAiChat,
            ClientApi::AnthropicMessages,
            ClientApi::OllamaChat,
        ] {
            let mut enc = api.stream_encoder(&client, 1 << 20);
            let mut out = Vec::new();
            for ev in &events {
                enc.event(ev, &mut out);
            }
            enc.end(&mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("(meteo)"), "{text}");
            assert!(
                !text.contains("ws_68") && !text.contains("url_citation"),
                "{text}"
            );
        }
    }

    #[test]
    fn built_in_items_count_against_the_held_answer_limit() {
        let client = decode(with_tools()).unwrap();
        let bytes = encode_events(&client, &expected(), 300);
        let got = parse_checked(&bytes);
        let (name, last) = got.last().unwrap();
        assert_eq!(name, "response.failed");
        assert!(last["response"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_response_bytes"));
    }
}
