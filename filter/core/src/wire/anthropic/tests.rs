//! Anthropic codec tests: client decoding and encoding, provider requests and answers, and recorded
//! streams decoded in every split.

mod client {
    use super::super::client::*;
    use crate::ir::*;
    use crate::wire::WireError;
    use serde_json::{json, Value};

    fn decode(v: Value) -> Result<ChatRequest, WireError> {
        decode_messages_request(v.to_string().as_bytes())
    }

    fn field_of(r: Result<ChatRequest, WireError>) -> String {
        match r {
            Err(WireError::Invalid { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn decodes_every_field() {
        let req = decode(json!({
            "model": "claude-x",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "be ", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "brief"}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}},
                    {"type": "document", "title": "T", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}, "citations": {"enabled": false}},
                    {"type": "document", "source": {"type": "url", "url": "https://x/d.pdf"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "tu1", "name": "f", "input": {"a": 1}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "tu1", "content": "42", "is_error": true},
                    {"type": "text", "text": "and?"}
                ]},
                {"role": "assistant", "content": "ok"}
            ],
            "stop_sequences": ["END"],
            "temperature": 0.5, "top_p": 0.9, "top_k": 40,
            "metadata": {"user_id": "u1"},
            "stream": true,
            "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}, "type": "custom"}],
            "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"},
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "service_tier": "auto",
            "cache_control": {"type": "ephemeral"}
        }))
        .unwrap();
        assert_eq!(req.model, "claude-x");
        assert_eq!(req.max_tokens, Some(100));
        assert_eq!(req.messages.len(), 6);
        assert_eq!(req.messages[0].role, Role::System);
        assert_eq!(req.messages[0].joined_text(), "be brief");
        let user = &req.messages[1];
        assert_eq!(user.content.len(), 6);
        assert_eq!(
            user.content[4],
            Part::Document {
                source: Media::Base64 {
                    media_type: "text/plain".into(),
                    data: "aGVsbG8=".into()
                },
                title: None
            }
        );
        assert_eq!(
            user.content[3],
            Part::Document {
                source: Media::Base64 {
                    media_type: "application/pdf".into(),
                    data: "JVBE".into()
                },
                title: Some("T".into())
            }
        );
        let asst = &req.messages[2];
        assert_eq!(asst.tool_calls[0].arguments, r#"{"a":1}"#);
        let tool = &req.messages[3];
        assert_eq!(tool.role, Role::Tool);
        assert_eq!(tool.tool_call_id.as_deref(), Some("tu1"));
        assert!(tool.is_error);
        assert_eq!(req.messages[4].joined_text(), "and?");
        assert_eq!(req.messages[5].role, Role::Assistant);
        assert_eq!(req.stop, vec!["END"]);
        assert_eq!(
            (req.temperature, req.top_p, req.top_k),
            (Some(0.5), Some(0.9), Some(40))
        );
        assert_eq!(req.user.as_deref(), Some("u1"));
        assert!(req.stream);
        assert_eq!(req.tools[0].description.as_deref(), Some("d"));
        assert_eq!(req.tool_choice, Some(ToolChoice::Tool("f".into())));
        assert_eq!(req.parallel_tool_calls, Some(false));
        assert!(matches!(
            req.response_format,
            Some(ResponseFormat::JsonSchema { .. })
        ));
        assert_eq!(req.extra_family, Some(Family::Anthropic));
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                enabled: Some(true),
                budget_tokens: Some(2000),
                effort: Some(Effort::Low),
                ..Default::default()
            })
        );
        assert_eq!(req.extra["service_tier"], json!("auto"));
        assert_eq!(req.extra["cache_control"], json!({"type": "ephemeral"}));
        assert!(!req.extra.contains_key("thinking"));
    }

    #[test]
    fn tool_choice_variants_and_plain_requests() {
        for (ty, want) in [
            ("auto", ToolChoice::Auto),
            ("any", ToolChoice::Required),
            ("none", ToolChoice::None),
        ] {
            let req = decode(
                json!({"model": "m", "max_tokens": 1, "messages": [], "tool_choice": {"type": ty}}),
            )
            .unwrap();
            assert_eq!(req.tool_choice, Some(want));
            assert_eq!(req.parallel_tool_calls, None);
        }
        let req = decode(json!({"model": "m", "max_tokens": 1, "system": "s", "messages": [{"role": "user", "content": "hi"}], "temperature": null})).unwrap();
        assert_eq!(req.messages[0], Message::text(Role::System, "s"));
        let req = decode(json!({"model": "m", "max_tokens": 1, "system": "", "messages": [{"role": "user", "content": "hi"}]})).unwrap();
        assert_eq!(req.messages.len(), 1);
        assert!(!req.stream && req.extra.is_empty() && req.extra_family.is_none());
    }

    #[test]
    fn every_error_names_its_field() {
        let base = || json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            decode(b)
        };
        let mut no_max = base();
        no_max.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(field_of(decode(no_max)), "max_tokens");
        let mut no_model = base();
        no_model.as_object_mut().unwrap().remove("model");
        assert_eq!(field_of(decode(no_model)), "model");
        assert_eq!(field_of(with("bogus", json!(1))), "bogus");
        assert_eq!(field_of(with("max_tokens", json!(-1))), "max_tokens");
        assert_eq!(field_of(with("messages", json!({}))), "messages");
        assert_eq!(field_of(with("system", json!(3))), "system");
        assert_eq!(
            field_of(with("system", json!([{"type": "image"}]))),
            "system[0].type"
        );
        assert_eq!(field_of(with("metadata", json!({"x": 1}))), "metadata.x");
        assert_eq!(
            field_of(with("stop_sequences", json!([1]))),
            "stop_sequences[0]"
        );
        assert_eq!(
            field_of(with(
                "tools",
                json!([{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}])
            )),
            "tools[0].type"
        );
        assert_eq!(
            field_of(with("tools", json!([{"name": "f"}]))),
            "tools[0].input_schema"
        );
        assert_eq!(
            field_of(with("tool_choice", json!({"type": "tool"}))),
            "tool_choice.name"
        );
        assert_eq!(
            field_of(with("tool_choice", json!({"type": "maybe"}))),
            "tool_choice.type"
        );
        assert_eq!(
            field_of(with(
                "output_config",
                json!({"format": {"type": "regex", "schema": {}}})
            )),
            "output_config.format.type"
        );
        let msg = |m: Value| with("messages", json!([{"role": "user", "content": "x"}, m]));
        assert_eq!(
            field_of(msg(json!({"role": "system", "content": "x"}))),
            "messages[1].role"
        );
        assert_eq!(
            field_of(msg(json!({"role": "user", "content": 5}))),
            "messages[1].content"
        );
        assert_eq!(
            field_of(msg(json!({"role": "user", "content": "x", "name": "n"}))),
            "messages[1].name"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]})
            )),
            "messages[1].content[0].source.type"
        );
        assert_eq!(
            field_of(msg(json!({"role": "user", "content": [{"type": "image"}]}))),
            "messages[1].content[0].source"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]})
            )),
            "messages[1].content[0].source.media_type"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]})
            )),
            "messages[1].content[0].type"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": "[]"}]})
            )),
            "messages[1].content[0].input"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "a"}]})
            )),
            "messages[1].content[0].type"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "tool_result"}]})
            )),
            "messages[1].content[0].tool_use_id"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": [{"type": "search_result"}]}]})
            )),
            "messages[1].content[0].content[0].type"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "text", "text": "x", "citations": [{"type": "char_location"}]}]})
            )),
            "messages[1].content[0].citations"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "u"}, "citations": {"enabled": true}}]})
            )),
            "messages[1].content[0].citations"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "u"}, "context": "c"}]})
            )),
            "messages[1].content[0].context"
        );
        assert_eq!(field_of(decode_messages_request(b"[1]")), "");
        assert_eq!(field_of(decode_messages_request(b"{nope")), "");
    }

    #[test]
    fn text_before_a_tool_result_keeps_its_order() {
        let req = decode(json!({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "r"}]}]}
        ]}))
        .unwrap();
        assert_eq!(req.messages.len(), 2);
        assert_eq!(req.messages[0].joined_text(), "a");
        assert_eq!(req.messages[1].role, Role::Tool);
        assert_eq!(req.messages[1].joined_text(), "r");
    }

    #[test]
    fn encodes_a_message_with_text_tool_use_and_usage() {
        let r = ChatResponse {
            id: "msg_1".into(),
            model: "claude-x".into(),
            created: 7,
            choices: vec![Choice {
                index: 0,
                message: Message {
                    tool_calls: vec![
                        ToolCall {
                            id: "tu1".into(),
                            name: "f".into(),
                            arguments: r#"{"a":1}"#.into(),
                        },
                        ToolCall {
                            id: "tu2".into(),
                            name: "g".into(),
                            arguments: String::new(),
                        },
                    ],
                    ..Message::text(Role::Assistant, "hi")
                },
                finish_reason: FinishReason::ToolCalls,
            }],
            usage: Some(Usage {
                input_tokens: 10,
                output_tokens: 3,
                cached_input_tokens: 4,
                reasoning_tokens: 0,
            }),
        };
        let v: Value = serde_json::from_slice(&encode_messages_response(&r)).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "tool_use", "id": "tu1", "name": "f", "input": {"a": 1}},
                    {"type": "tool_use", "id": "tu2", "name": "g", "input": {}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 6, "output_tokens": 3, "cache_read_input_tokens": 4}
            })
        );
        for (reason, want) in [
            (FinishReason::Stop, "end_turn"),
            (FinishReason::Length, "max_tokens"),
            (FinishReason::ContentFilter, "refusal"),
        ] {
            assert_eq!(stop_reason(reason), want);
            assert_eq!(finish_reason(want), reason);
        }
    }

    #[test]
    fn thinking_configs_and_blocks_decode_with_their_origin() {
        let with_thinking = |t: Value| {
            decode(json!({"model": "m", "max_tokens": 9000, "messages": [], "thinking": t}))
                .unwrap()
                .reasoning
                .unwrap()
        };
        assert_eq!(
            with_thinking(json!({"type": "adaptive", "display": "omitted"})),
            Reasoning {
                enabled: Some(true),
                adaptive: true,
                visible: Some(false),
                ..Default::default()
            }
        );
        assert_eq!(
            with_thinking(json!({"type": "between_tools"})),
            Reasoning {
                enabled: Some(true),
                between_tools: true,
                ..Default::default()
            }
        );
        assert_eq!(
            with_thinking(json!({"type": "disabled"})).enabled,
            Some(false)
        );
        let req = decode(json!({"model": "m", "max_tokens": 9, "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "mine", "signature": "EqQB"},
                {"type": "thinking", "thinking": "gemini's", "signature": "weir:gemini:Q2lB"},
                {"type": "thinking", "thinking": "nobody's", "signature": ""},
                {"type": "redacted_thinking", "data": "ZW5j"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {}, "caller": {"type": "direct"}}
            ]}
        ]}))
        .unwrap();
        let r = |text: &str, sig: Option<&str>, redacted: Option<&str>, origin| Part::Reasoning {
            text: text.into(),
            signature: sig.map(Into::into),
            redacted: redacted.map(Into::into),
            id: None,
            origin,
        };
        assert_eq!(
            req.messages[1].content,
            [
                r("mine", Some("EqQB"), None, Some(Origin::Anthropic)),
                r("gemini's", Some("Q2lB"), None, Some(Origin::Gemini)),
                r("nobody's", None, None, None),
                r("", None, Some("ZW5j"), Some(Origin::Anthropic)),
            ]
        );
        assert_eq!(req.messages[1].tool_calls.len(), 1);
    }

    #[test]
    fn the_newest_sdks_fields_are_read_or_refused_by_name() {
        let req = decode(json!({"model": "m", "max_tokens": 9, "messages": [],
            "container": "cntr_1", "speed": "fast", "inference_geo": "eu", "diagnostics": {"previous_message_id": null},
            "user_profile_id": "up", "workspace_id": "ws", "context_management": {"edits": []},
            "tools": [{"name": "f", "input_schema": {"type": "object"}, "strict": true,
                       "allowed_callers": ["direct"], "defer_loading": false, "eager_input_streaming": true,
                       "input_examples": [{"a": 1}], "cache_control": {"type": "ephemeral"}}]}))
        .unwrap();
        for key in [
            "container",
            "speed",
            "inference_geo",
            "diagnostics",
            "user_profile_id",
            "workspace_id",
            "context_management",
            "tools[0].eager_input_streaming",
            "tools[0].input_examples",
            "tools[0].cache_control",
        ] {
            assert!(req.extra.contains_key(key), "{key}");
        }
        assert_eq!(req.tools[0].strict, Some(true));
        let tool = |extra: Value| {
            let mut t = json!({"name": "f", "input_schema": {"type": "object"}});
            for (k, v) in extra.as_object().unwrap() {
                t[k] = v.clone();
            }
            decode(json!({"model": "m", "max_tokens": 9, "messages": [], "tools": [t]}))
        };
        assert_eq!(
            field_of(tool(
                json!({"allowed_callers": ["direct", "code_execution_20250825"]})
            )),
            "tools[0].allowed_callers"
        );
        assert_eq!(
            field_of(tool(json!({"defer_loading": true}))),
            "tools[0].defer_loading"
        );
        let call = |caller: Value| {
            decode(
                json!({"model": "m", "max_tokens": 9, "messages": [{"role": "assistant", "content": [
                {"type": "tool_use", "id": "t", "name": "f", "input": {}, "caller": caller}]}]}),
            )
        };
        assert_eq!(
            field_of(call(
                json!({"type": "code_execution_20250825", "tool_id": "srvtoolu_1"})
            )),
            "messages[0].content[0].caller.type"
        );
        assert_eq!(
            field_of(decode(
                json!({"model": "m", "max_tokens": 9, "messages": [], "thinking": {"type": "enabled"}})
            )),
            "thinking.budget_tokens"
        );
    }

    #[test]
    fn message_threads_are_declined_with_the_code_the_sdk_falls_back_on() {
        let thread =
            |t: Value| decode(json!({"model": "m", "max_tokens": 9, "messages": [], "thread": t}));
        assert!(thread(json!(false)).is_ok());
        let err = thread(json!({"type": "create"})).unwrap_err();
        assert!(
            matches!(&err, WireError::Declined { field, code: "thread_unsupported_request", .. } if field == "thread")
        );
        let v: Value = serde_json::from_slice(&encode_error(&err.info())).unwrap();
        assert_eq!(
            v["error"]["details"],
            json!({"error_code": "thread_unsupported_request", "unsupported": ["thread"]})
        );
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(thread(json!({"type": "continue", "previous_message_id": "msg_1"})).is_err());
    }

    #[test]
    fn count_tokens_needs_no_max_tokens_and_takes_no_generation_settings() {
        let req = decode_count_tokens_request(
            br#"{"model": "m", "system": "s", "messages": [{"role": "user", "content": "q"}]}"#,
        )
        .unwrap();
        assert_eq!(req.max_tokens, None);
        assert_eq!(req.messages.len(), 2);
        let bad =
            decode_count_tokens_request(br#"{"model": "m", "max_tokens": 5, "messages": []}"#);
        assert_eq!(field_of(bad), "max_tokens");
        let v: Value = serde_json::from_slice(&encode_token_count(&TokenCount {
            input_tokens: 14,
            estimated: true,
        }))
        .unwrap();
        assert_eq!(v, json!({"input_tokens": 14}));
    }

    #[test]
    fn answers_carry_thinking_with_foreign_signatures_tagged_and_refusals_as_text() {
        let mut message = Message::text(Role::Assistant, "");
        message.content = vec![
            Part::Reasoning {
                text: "mine".into(),
                signature: Some("EqQB".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Anthropic),
            },
            Part::Reasoning {
                text: "gemini's".into(),
                signature: Some("Q2lB".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Gemini),
            },
            Part::Reasoning {
                text: "unsigned".into(),
                signature: None,
                redacted: None,
                id: None,
                origin: None,
            },
            Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("ZW5j".into()),
                id: None,
                origin: Some(Origin::OpenAiResponses),
            },
            // Known only by its id: nothing to show, nothing to send back, so no block.
            Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: None,
                id: Some("rs_1".into()),
                origin: Some(Origin::OpenAiResponses),
            },
        ];
        message.refusal = Some("I can't.".into());
        let r = ChatResponse {
            id: "m1".into(),
            model: "x".into(),
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: FinishReason::Stop,
            }],
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&encode_messages_response(&r)).unwrap();
        assert_eq!(
            v["content"],
            json!([
                {"type": "thinking", "thinking": "mine", "signature": "EqQB"},
                {"type": "thinking", "thinking": "gemini's", "signature": "weir:gemini:Q2lB"},
                {"type": "thinking", "thinking": "unsigned", "signature": ""},
                {"type": "redacted_thinking", "data": "weir:openai-responses:ZW5j"},
                {"type": "text", "text": "I can't."}
            ])
        );
        assert_eq!(v["stop_reason"], "refusal");
        // The client sends the blocks back as they came: each origin survives the trip.
        let back = decode(json!({"model": "m", "max_tokens": 9, "messages": [
            {"role": "user", "content": "q"}, {"role": "assistant", "content": v["content"].clone()}]}))
        .unwrap();
        let parts = &back.messages[1].content;
        assert_eq!(parts[..2], r.choices[0].message.content[..2]);
        assert_eq!(parts[3], r.choices[0].message.content[3]);
    }

    #[test]
    fn errors_use_anthropics_types() {
        for (kind, status, ty) in [
            (ErrorKind::InvalidRequest, 400, "invalid_request_error"),
            (ErrorKind::Authentication, 401, "authentication_error"),
            (ErrorKind::PermissionDenied, 403, "permission_error"),
            (ErrorKind::NotFound, 404, "not_found_error"),
            (ErrorKind::PayloadTooLarge, 413, "request_too_large"),
            (ErrorKind::RateLimited, 429, "rate_limit_error"),
            (ErrorKind::Upstream, 500, "api_error"),
            (ErrorKind::Unavailable, 529, "overloaded_error"),
            (ErrorKind::Timeout, 504, "timeout_error"),
        ] {
            let body = encode_error(&ErrorInfo::new(status, kind, "boom"));
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                v,
                json!({"type": "error", "error": {"type": ty, "message": "boom"}})
            );
            if kind != ErrorKind::Upstream {
                assert_eq!(error_status(ty), (status, kind));
            }
        }
    }
}

mod provider {
    use super::super::provider::*;
    use crate::ir::*;
    use crate::wire::{ProviderKind, ProviderSpec, WireError};
    use serde_json::{json, Value};

    fn spec() -> ProviderSpec {
        ProviderSpec {
            kind: ProviderKind::Anthropic,
            host: "api.anthropic.com".into(),
            base_path: String::new(),
            api_version: None,
            region: None,
            anthropic_version: "2023-06-01".into(),
        }
    }

    fn body_of(req: ChatRequest) -> Value {
        let out = encode_request(&spec(), &Request::Chat(req)).unwrap();
        serde_json::from_slice(&out.body).unwrap()
    }

    fn unsupported_field(req: ChatRequest) -> String {
        match encode_request(&spec(), &Request::Chat(req)) {
            Err(WireError::Unsupported { field, target }) => {
                assert_eq!(target, "anthropic");
                field
            }
            Err(WireError::Invalid { field, .. }) => format!("invalid:{field}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn tool_msg(id: &str, text: &str) -> Message {
        Message {
            tool_call_id: Some(id.into()),
            ..Message::text(Role::Tool, text)
        }
    }

    #[test]
    fn encodes_path_headers_and_every_field() {
        let req = ChatRequest {
            model: "claude-x".into(),
            messages: vec![
                Message::text(Role::System, "sys"),
                Message::text(Role::Developer, "dev"),
                Message {
                    content: vec![
                        Part::Text {
                            text: "look".into(),
                        },
                        Part::Image {
                            source: Media::from_url("data:image/png;base64,iVBO"),
                        },
                        Part::Image {
                            source: Media::from_url("https://x/i.png"),
                        },
                        Part::Document {
                            source: Media::Base64 {
                                media_type: "text/plain".into(),
                                data: "aGk=".into(),
                            },
                            title: Some("T".into()),
                        },
                        Part::Document {
                            source: Media::Base64 {
                                media_type: "application/pdf".into(),
                                data: "JVBE".into(),
                            },
                            title: None,
                        },
                    ],
                    ..Message::text(Role::User, "")
                },
                Message {
                    tool_calls: vec![
                        ToolCall {
                            id: "a".into(),
                            name: "f".into(),
                            arguments: r#"{"x":1}"#.into(),
                        },
                        ToolCall {
                            id: "b".into(),
                            name: "g".into(),
                            arguments: String::new(),
                        },
                    ],
                    ..Message::text(Role::Assistant, "")
                },
                tool_msg("a", "1"),
                Message {
                    is_error: true,
                    ..tool_msg("b", "bad")
                },
                Message::text(Role::User, "thanks"),
            ],
            tools: vec![
                Tool {
                    name: "f".into(),
                    description: Some("d".into()),
                    parameters: json!({"type": "object"}),
                    strict: None,
                },
                Tool {
                    name: "g".into(),
                    description: None,
                    parameters: Value::Null,
                    strict: None,
                },
            ],
            tool_choice: Some(ToolChoice::Required),
            parallel_tool_calls: Some(false),
            temperature: Some(0.2),
            top_p: Some(0.8),
            top_k: Some(5),
            stop: vec!["X".into()],
            user: Some("u".into()),
            response_format: Some(ResponseFormat::JsonSchema {
                name: "r".into(),
                schema: json!({"type": "object"}),
                strict: Some(true),
            }),
            stream: true,
            reasoning: Some(Reasoning {
                effort: Some(Effort::Low),
                ..Default::default()
            }),
            extra: [("service_tier".to_string(), json!("auto"))]
                .into_iter()
                .collect(),
            extra_family: Some(Family::Anthropic),
            ..Default::default()
        };
        let out = encode_request(&spec(), &Request::Chat(req.clone())).unwrap();
        assert_eq!(out.path, "/v1/messages");
        assert_eq!(
            out.headers,
            vec![
                ("anthropic-version".to_string(), "2023-06-01".to_string()),
                ("content-type".to_string(), "application/json".to_string())
            ]
        );
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "claude-x",
                "max_tokens": 4096,
                "system": "sys\n\ndev",
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                        {"type": "image", "source": {"type": "url", "url": "https://x/i.png"}},
                        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi"}, "title": "T"},
                        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
                    ]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "a", "name": "f", "input": {"x": 1}},
                        {"type": "tool_use", "id": "b", "name": "g", "input": {}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "a", "content": "1"},
                        {"type": "tool_result", "tool_use_id": "b", "content": "bad", "is_error": true}
                    ]},
                    {"role": "user", "content": "thanks"}
                ],
                "stop_sequences": ["X"],
                "temperature": 0.2, "top_p": 0.8, "top_k": 5,
                "metadata": {"user_id": "u"},
                "tools": [
                    {"name": "f", "description": "d", "input_schema": {"type": "object"}},
                    {"name": "g", "input_schema": {"type": "object", "properties": {}}}
                ],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}, "effort": "low"},
                "service_tier": "auto",
                "stream": true
            })
        );
    }

    #[test]
    fn decoded_client_requests_encode_back_to_the_same_shape() {
        let original = json!({
            "model": "m", "max_tokens": 10, "system": "s",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "text", "text": "t"}, {"type": "tool_use", "id": "x", "name": "f", "input": {"k": "v"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "r"}]}
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "f"},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "stream": false
        });
        let ir = super::super::decode_messages_request(original.to_string().as_bytes()).unwrap();
        assert_eq!(body_of(ir), original);
    }

    #[test]
    fn tool_results_share_one_user_turn_across_system_turns() {
        let req = ChatRequest {
            model: "m".into(),
            messages: vec![
                tool_msg("a", "1"),
                Message::text(Role::System, "s"),
                tool_msg("b", ""),
                Message::text(Role::Assistant, "ok"),
                tool_msg("c", "3"),
            ],
            reasoning: Some(Reasoning {
                effort: Some(Effort::High),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut empty = req.clone();
        if let Some(m) = empty.messages.get_mut(2) {
            m.content.clear();
        }
        assert_eq!(
            body_of(empty)["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": "1"},
                    {"type": "tool_result", "tool_use_id": "b"}
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c", "content": "3"}]}
            ])
        );
        assert_eq!(body_of(req)["output_config"], json!({"effort": "high"}));
    }

    #[test]
    fn unsupported_fields_are_named_with_openai_names() {
        let base = || ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "q")],
            ..Default::default()
        };
        assert_eq!(
            unsupported_field(ChatRequest {
                n: Some(2),
                ..base()
            }),
            "n"
        );
        assert_eq!(
            unsupported_field(ChatRequest {
                seed: Some(1),
                ..base()
            }),
            "seed"
        );
        assert_eq!(
            unsupported_field(ChatRequest {
                presence_penalty: Some(1.0),
                ..base()
            }),
            "presence_penalty"
        );
        assert_eq!(
            unsupported_field(ChatRequest {
                frequency_penalty: Some(1.0),
                ..base()
            }),
            "frequency_penalty"
        );
        assert_eq!(
            unsupported_field(ChatRequest {
                response_format: Some(ResponseFormat::JsonObject),
                ..base()
            }),
            "response_format"
        );
        let extra = [("logit_bias".to_string(), json!({"1": 2}))]
            .into_iter()
            .collect();
        assert_eq!(
            unsupported_field(ChatRequest {
                extra,
                extra_family: Some(Family::OpenAi),
                ..base()
            }),
            "logit_bias"
        );
        let bad_args = ChatRequest {
            messages: vec![Message {
                tool_calls: vec![ToolCall {
                    id: "a".into(),
                    name: "f".into(),
                    arguments: "[1]".into(),
                }],
                ..Message::text(Role::Assistant, "")
            }],
            ..base()
        };
        assert_eq!(
            unsupported_field(bad_args),
            "invalid:messages[0].tool_calls[0].function.arguments"
        );
        let no_id = ChatRequest {
            messages: vec![Message::text(Role::Tool, "r")],
            ..base()
        };
        assert_eq!(unsupported_field(no_id), "invalid:messages[0].tool_call_id");
        let docx = ChatRequest {
            messages: vec![Message {
                content: vec![Part::Document {
                    source: Media::Base64 {
                        media_type: "application/msword".into(),
                        data: "AA".into(),
                    },
                    title: None,
                }],
                ..Message::text(Role::User, "")
            }],
            ..base()
        };
        assert_eq!(unsupported_field(docx), "messages[0].content[0]");
        let bad_text = ChatRequest {
            messages: vec![Message {
                content: vec![Part::Document {
                    source: Media::Base64 {
                        media_type: "text/plain".into(),
                        data: "*".into(),
                    },
                    title: None,
                }],
                ..Message::text(Role::User, "")
            }],
            ..base()
        };
        assert_eq!(
            unsupported_field(bad_text),
            "invalid:messages[0].content[0]"
        );
        let emb = Request::Embeddings(EmbeddingsRequest {
            model: "m".into(),
            input: vec!["x".into()],
            ..Default::default()
        });
        assert!(matches!(
            encode_request(&spec(), &emb),
            Err(WireError::Unsupported { .. })
        ));
    }

    #[test]
    fn tool_choice_is_sent_only_when_it_says_something() {
        let tools = vec![Tool {
            name: "f".into(),
            description: None,
            parameters: json!({"type": "object"}),
            strict: None,
        }];
        let base = || ChatRequest {
            model: "m".into(),
            tools: tools.clone(),
            ..Default::default()
        };
        assert!(body_of(base()).get("tool_choice").is_none());
        assert_eq!(
            body_of(ChatRequest {
                tool_choice: Some(ToolChoice::None),
                ..base()
            })["tool_choice"],
            json!({"type": "none"})
        );
        assert_eq!(
            body_of(ChatRequest {
                tool_choice: Some(ToolChoice::Auto),
                ..base()
            })["tool_choice"],
            json!({"type": "auto"})
        );
        assert_eq!(
            body_of(ChatRequest {
                parallel_tool_calls: Some(false),
                ..base()
            })["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        let no_tools = ChatRequest {
            model: "m".into(),
            tool_choice: Some(ToolChoice::Required),
            ..Default::default()
        };
        assert!(body_of(no_tools).get("tool_choice").is_none());
    }

    fn thinking_of(r: Reasoning, max_tokens: Option<u32>) -> (Value, Value, Value) {
        let b = body_of(ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "q")],
            max_tokens,
            reasoning: Some(r),
            ..Default::default()
        });
        (
            b["thinking"].clone(),
            b["max_tokens"].clone(),
            b["output_config"].clone(),
        )
    }

    #[test]
    fn reasoning_maps_to_thinking_and_effort_as_the_table_says() {
        let effort = |e| Reasoning {
            effort: Some(e),
            ..Default::default()
        };
        // An OpenAI client's effort: thinking at that level's budget, max_tokens grown for it.
        assert_eq!(
            thinking_of(
                Reasoning {
                    enabled: Some(true),
                    ..effort(Effort::High)
                },
                None
            ),
            (
                json!({"type": "enabled", "budget_tokens": 16384}),
                json!(4096 + 16384),
                Value::Null
            )
        );
        // ... shrunk to fit a client's max_tokens, or refused when even 1024 does not fit.
        assert_eq!(
            thinking_of(
                Reasoning {
                    enabled: Some(true),
                    ..effort(Effort::High)
                },
                Some(3000)
            )
            .0,
            json!({"type": "enabled", "budget_tokens": 2999})
        );
        assert_eq!(
            unsupported_field(ChatRequest {
                max_tokens: Some(1000),
                reasoning: Some(Reasoning {
                    enabled: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            "reasoning"
        );
        // An Anthropic client's own settings go back as they were.
        assert_eq!(
            thinking_of(effort(Effort::Low), Some(100)),
            (Value::Null, json!(100), json!({"effort": "low"}))
        );
        assert_eq!(
            thinking_of(
                Reasoning {
                    adaptive: true,
                    visible: Some(true),
                    ..effort(Effort::Max)
                },
                Some(100)
            ),
            (
                json!({"type": "adaptive", "display": "summarized"}),
                json!(100),
                json!({"effort": "max"})
            )
        );
        assert_eq!(
            thinking_of(
                Reasoning {
                    enabled: Some(true),
                    budget_tokens: Some(50_000),
                    ..Default::default()
                },
                Some(100)
            )
            .0,
            json!({"type": "enabled", "budget_tokens": 50000}),
            "a budget the client named is the client's to get right"
        );
        assert_eq!(
            thinking_of(
                Reasoning {
                    enabled: Some(false),
                    ..Default::default()
                },
                None
            )
            .0,
            json!({"type": "disabled"})
        );
    }

    #[test]
    fn only_anthropic_signed_reasoning_goes_back_and_tools_keep_their_own_fields() {
        let r = |text: &str, sig: Option<&str>, redacted: Option<&str>, origin| Part::Reasoning {
            text: text.into(),
            signature: sig.map(Into::into),
            redacted: redacted.map(Into::into),
            id: None,
            origin,
        };
        let mut asst = Message::text(Role::Assistant, "a");
        asst.content.splice(
            0..0,
            [
                r("mine", Some("EqQB"), None, Some(Origin::Anthropic)),
                r("gemini's", Some("Q2lB"), None, Some(Origin::Gemini)),
                r("unsigned", None, None, None),
                r("", None, Some("ZW5j"), Some(Origin::Anthropic)),
                r("", None, Some("cmVz"), Some(Origin::OpenAiResponses)),
            ],
        );
        asst.refusal = Some("no.".into());
        let mut req = ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "q"), asst],
            tools: vec![Tool {
                name: "f".into(),
                description: None,
                parameters: json!({"type": "object"}),
                strict: Some(true),
            }],
            extra_family: Some(Family::Anthropic),
            ..Default::default()
        };
        req.extra
            .insert("tools[0].input_examples".into(), json!([{"a": 1}]));
        req.extra
            .insert("cache_control".into(), json!({"type": "ephemeral"}));
        let b = body_of(req);
        assert_eq!(
            b["messages"][1]["content"],
            json!([
                {"type": "thinking", "thinking": "mine", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "ZW5j"},
                {"type": "text", "text": "a"},
                {"type": "text", "text": "no."}
            ])
        );
        assert_eq!(
            b["tools"][0],
            json!({"name": "f", "input_schema": {"type": "object"}, "strict": true, "input_examples": [{"a": 1}]})
        );
        assert_eq!(b["cache_control"], json!({"type": "ephemeral"}));
        assert!(b.get("tools[0].input_examples").is_none());
    }

    #[test]
    fn count_tokens_goes_to_its_own_path_without_generation_settings() {
        let req = Request::CountTokens(ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "q")],
            temperature: Some(0.5),
            stop: vec!["x".into()],
            ..Default::default()
        });
        let out = encode_request(&spec(), &req).unwrap();
        assert_eq!(out.path, "/v1/messages/count_tokens");
        let b: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            b,
            json!({"model": "m", "messages": [{"role": "user", "content": "q"}]})
        );
        assert_eq!(
            decode_response(&req, 200, br#"{"input_tokens": 12}"#).unwrap(),
            Response::TokenCount(TokenCount {
                input_tokens: 12,
                estimated: false
            })
        );
    }

    #[test]
    fn decodes_a_message_and_errors() {
        let req = Request::Chat(ChatRequest::default());
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "hm", "signature": "s"},
                {"type": "text", "text": "hi"},
                {"type": "tool_use", "id": "tu", "name": "f", "input": {"a": [1]}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 7, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}
        });
        let Response::Chat(c) = decode_response(&req, 200, body.to_string().as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (c.id.as_str(), c.model.as_str(), c.created),
            ("msg_1", "claude-x", 0)
        );
        let choice = &c.choices[0];
        assert_eq!(choice.finish_reason, FinishReason::ToolCalls);
        assert_eq!(choice.message.joined_text(), "hi");
        assert_eq!(
            choice.message.tool_calls,
            vec![ToolCall {
                id: "tu".into(),
                name: "f".into(),
                arguments: r#"{"a":[1]}"#.into()
            }]
        );
        assert_eq!(
            c.usage,
            Some(Usage {
                input_tokens: 10,
                output_tokens: 7,
                cached_input_tokens: 3,
                reasoning_tokens: 0
            })
        );

        let err = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let Response::Error(e) = decode_response(&req, 529, err.to_string().as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (e.status, e.kind, e.message.as_str()),
            (529, ErrorKind::Unavailable, "Overloaded")
        );
        // `authentication_error` is a refused key; `permission_error` is what this request
        // asked for (a model, a beta) that the key may not use.
        for (status, kind, want) in [
            (401, "authentication_error", ErrorKind::Authentication),
            (403, "permission_error", ErrorKind::PermissionDenied),
        ] {
            let err = json!({"type": "error", "error": {"type": kind, "message": "no"}});
            let Response::Error(e) =
                decode_response(&req, status, err.to_string().as_bytes()).unwrap()
            else {
                panic!()
            };
            assert_eq!(e.kind, want);
        }
        let Response::Error(e) = decode_response(&req, 429, b"<html>").unwrap() else {
            panic!()
        };
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert!(e.message.contains("429"));
        assert!(matches!(
            decode_response(&req, 200, b"{\"content\": 3}"),
            Err(WireError::Upstream { .. })
        ));
    }
}

mod stream {
    use super::super::stream::*;
    use crate::ir::*;
    use crate::stream::sse::SseFramer;
    use crate::stream::testutil::splits;
    use crate::wire::{StreamDecoder as _, StreamEncoder as _, WireError};
    use serde_json::{json, Value};

    /// A real-shaped Anthropic stream (the extended-thinking streaming example's shapes): a
    /// signed thinking block, text, a tool call with split JSON, pings.
    const RECORDED: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":0,\"output_tokens\":2}}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\r\n\r\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me check, Zürich 🦀\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Zür\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ich\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn decode_chunks(chunks: &[Vec<u8>]) -> Vec<StreamEvent> {
        let mut d = MessagesStreamDecoder::new(1 << 16);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        d.end(&mut out).unwrap();
        out
    }

    fn expected() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "msg_01".into(),
                model: "claude-sonnet-4-5".into(),
                created: 0,
            },
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "hmm".into(),
            },
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Anthropic),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "Let me check, Zürich 🦀".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "toolu_01".into(),
                name: "get_weather".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "{\"city\": \"Zür".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "ich\"}".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 572,
                output_tokens: 89,
                cached_input_tokens: 100,
                reasoning_tokens: 0,
            }),
        ]
    }

    #[test]
    fn decodes_a_recorded_stream_identically_in_every_split() {
        let whole = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        assert_eq!(whole, expected());
        for chunks in splits(RECORDED.as_bytes(), 200) {
            assert_eq!(decode_chunks(&chunks), whole);
        }
    }

    #[test]
    fn stream_errors_and_truncation() {
        let s = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\nevent: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let got = decode_chunks(&[s.as_bytes().to_vec()]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            StreamEvent::Error(ErrorInfo::new(529, ErrorKind::Unavailable, "Overloaded"))
        );

        // Finished but cut before message_stop: usage is still reported.
        let cut = RECORDED.split("event: message_stop").next().unwrap();
        let got = decode_chunks(&[cut.as_bytes().to_vec()]);
        assert_eq!(got, expected());

        let mut d = MessagesStreamDecoder::new(1 << 16);
        assert!(matches!(
            d.feed(b"data: {not json\n\n", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
        let mut d = MessagesStreamDecoder::new(8);
        assert!(matches!(
            d.feed(b"data: 0123456789", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
    }

    /// Parses SSE bytes into (event name, JSON data) pairs.
    fn parse_sse(bytes: &[u8]) -> Vec<(String, Value)> {
        let mut f = SseFramer::new(1 << 20);
        let mut evs = Vec::new();
        f.push(bytes, &mut evs).unwrap();
        f.finish(&mut evs).unwrap();
        evs.into_iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                let name = e.event.unwrap();
                assert_eq!(v["type"], json!(name), "event name and data type agree");
                (name, v)
            })
            .collect()
    }

    fn encode_all(events: &[StreamEvent]) -> Vec<u8> {
        let mut enc = MessagesStreamEncoder::new(&ChatRequest {
            model: "client-model".into(),
            ..Default::default()
        });
        let mut out = Vec::new();
        for ev in events {
            enc.event(ev, &mut out);
        }
        enc.end(&mut out);
        out
    }

    #[test]
    fn decoder_to_encoder_reproduces_the_sdk_event_order() {
        let events = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        let got = parse_sse(&encode_all(&events));
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        // The thinking block comes back as the SDK's ThinkingBlock, signature included.
        assert_eq!(
            got[2].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(
            got[3].1["delta"],
            json!({"type": "thinking_delta", "thinking": "hmm"})
        );
        assert_eq!(
            got[4].1["delta"],
            json!({"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"})
        );
        // The rest as before the thinking block.
        let mut got = got;
        got.drain(2..6);
        assert_eq!(got[0].1["message"]["id"], json!("msg_01"));
        assert_eq!(got[0].1["message"]["model"], json!("claude-sonnet-4-5"));
        assert_eq!(
            got[0].1["message"]["usage"],
            json!({"input_tokens": 0, "output_tokens": 0})
        );
        // Content blocks count from the thinking block (index 0).
        assert_eq!(got[2].1["index"], json!(1));
        assert_eq!(
            got[2].1["content_block"],
            json!({"type": "text", "text": ""})
        );
        assert_eq!(
            got[3].1["delta"],
            json!({"type": "text_delta", "text": "Let me check, Zürich 🦀"})
        );
        assert_eq!(got[5].1["index"], json!(2));
        assert_eq!(
            got[5].1["content_block"],
            json!({"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}})
        );
        let args: String = got[6..8]
            .iter()
            .map(|(_, v)| v["delta"]["partial_json"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            json!({"city": "Zürich"})
        );
        assert_eq!(got[8].1["index"], json!(2));
        assert_eq!(
            got[9].1,
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"input_tokens": 472, "output_tokens": 89, "cache_read_input_tokens": 100}})
        );
    }

    #[test]
    fn encoder_handles_missing_usage_errors_and_truncation() {
        // Finish without Usage: message_delta is emitted at end() with zero output tokens.
        let got = parse_sse(&encode_all(&[
            StreamEvent::Start {
                id: "m".into(),
                model: String::new(),
                created: 0,
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "a".into(),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "b".into(),
            },
            StreamEvent::TextDelta {
                choice: 1,
                text: "ignored".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Length,
            },
        ]));
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(got[0].1["message"]["model"], json!("client-model"));
        assert_eq!(got[6].1["delta"]["stop_reason"], json!("max_tokens"));
        assert_eq!(got[6].1["usage"], json!({"output_tokens": 0}));

        // Truncated: an error event, never a clean message_stop.
        let got = parse_sse(&encode_all(&[
            StreamEvent::Start {
                id: "m".into(),
                model: "x".into(),
                created: 0,
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "a".into(),
            },
        ]));
        assert_eq!(got.last().unwrap().0, "error");
        assert_eq!(got.last().unwrap().1["error"]["type"], json!("api_error"));

        // An error mid-stream ends it; later events are dropped.
        let got = parse_sse(&encode_all(&[
            StreamEvent::Start {
                id: "m".into(),
                model: "x".into(),
                created: 0,
            },
            StreamEvent::Error(ErrorInfo::new(429, ErrorKind::RateLimited, "slow down")),
            StreamEvent::TextDelta {
                choice: 0,
                text: "a".into(),
            },
        ]));
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[2].1,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        );

        // Interleaved tool-call deltas go to their own block.
        let got = parse_sse(&encode_all(&[
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "a".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 1,
                id: "b".into(),
                name: "g".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "{}".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 4,
                cached_input_tokens: 0,
                reasoning_tokens: 0,
            }),
        ]));
        assert_eq!(got[0].1["message"]["id"], json!("msg_unknown"));
        let delta = got
            .iter()
            .find(|(n, _)| n == "content_block_delta")
            .unwrap();
        assert_eq!(delta.1["index"], json!(0));
        assert_eq!(got.last().unwrap().0, "message_stop");
    }

    /// Anthropic's redacted thinking, streamed: the block arrives whole at its start.
    const REDACTED: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Done.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":7}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn redacted_thinking_streams_through_both_directions_in_every_split() {
        let whole = decode_chunks(&[REDACTED.as_bytes().to_vec()]);
        assert_eq!(
            whole[1],
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: None,
                redacted: Some(
                    "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP".into()
                ),
                id: None,
                origin: Some(Origin::Anthropic),
            }
        );
        for chunks in splits(REDACTED.as_bytes(), 100) {
            assert_eq!(decode_chunks(&chunks), whole);
        }
        let got = parse_sse(&encode_all(&whole));
        assert_eq!(
            got[2].1["content_block"],
            json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"})
        );
        assert_eq!(got[3].0, "content_block_stop");
        assert_eq!(got[4].1["index"], json!(1));
    }

    #[test]
    fn reasoning_of_other_origins_and_refusals_reach_anthropic_clients_in_their_shapes() {
        let got = parse_sse(&encode_all(&[
            StreamEvent::Start {
                id: "m".into(),
                model: "x".into(),
                created: 0,
            },
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "hm".into(),
            },
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: Some("Q2lB".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Gemini),
            },
            // Unsigned reasoning (a DeepSeek-style server) still opens and closes its block.
            StreamEvent::ReasoningDelta {
                choice: 0,
                text: "more".into(),
            },
            StreamEvent::ReasoningEnd {
                choice: 0,
                signature: None,
                redacted: None,
                id: None,
                origin: None,
            },
            StreamEvent::RefusalDelta {
                choice: 0,
                text: "I can't.".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::Stop,
            },
        ]));
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(
            got[4].1["delta"],
            json!({"type": "signature_delta", "signature": "weir:gemini:Q2lB"})
        );
        assert_eq!(got[6].1["index"], json!(1));
        assert_eq!(
            got[10].1["delta"],
            json!({"type": "text_delta", "text": "I can't."})
        );
        assert_eq!(got[12].1["delta"]["stop_reason"], json!("refusal"));
    }
}
