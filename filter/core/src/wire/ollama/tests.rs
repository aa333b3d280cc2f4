//! Ollama codec tests: client decoding and encoding, provider requests and answers, and recorded
//! streams decoded in every split.

mod client {
    use super::super::client::*;
    use crate::ir::*;
    use crate::wire::WireError;
    use serde_json::{json, Value};

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk";

    fn chat(v: Value) -> Result<ChatRequest, WireError> {
        decode_chat_request(v.to_string().as_bytes())
    }

    fn field_of<T: std::fmt::Debug>(r: Result<T, WireError>) -> String {
        match r {
            Err(WireError::Invalid { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn decodes_a_chat_with_every_field() {
        let req = chat(json!({
            "model": "llama3.2",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "what is this?", "images": [PNG, "/9j/4AAQSkZJRgABAQ"]},
                {"role": "assistant", "content": "", "thinking": "hmm", "tool_calls": [
                    {"function": {"name": "weather", "arguments": {"city": "Paris"}}},
                    {"function": {"name": "time", "arguments": {}}}
                ]},
                {"role": "tool", "content": "12:00", "tool_name": "time"},
                {"role": "tool", "content": "sunny"},
                {"role": "assistant", "content": "done", "tool_calls": [{"function": {"index": 0, "name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                {"role": "tool", "content": "rainy", "tool_name": "weather"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "d", "parameters": {"type": "object"}}},
                      {"type": "function", "function": {"name": "time"}}],
            "format": {"type": "object"},
            "options": {"temperature": 0.1, "top_p": 0.2, "top_k": 3, "seed": 4, "num_predict": 5,
                        "stop": ["x"], "presence_penalty": 0.6, "frequency_penalty": 0.7,
                        "num_ctx": 8192, "num_gpu": 1, "repeat_penalty": 1.1, "min_p": null},
            "keep_alive": "5m",
            "think": false
        }))
        .unwrap();
        assert!(req.stream, "stream defaults to true");
        assert_eq!(req.messages.len(), 7);
        let user = &req.messages[1];
        assert_eq!(
            user.content[1],
            Part::Image {
                source: Media::Base64 {
                    media_type: "image/png".into(),
                    data: PNG.into()
                }
            }
        );
        assert!(
            matches!(&user.content[2], Part::Image { source: Media::Base64 { media_type, .. } } if media_type == "image/jpeg")
        );
        let asst = &req.messages[2];
        assert_eq!(
            asst.content,
            [Part::Reasoning {
                text: "hmm".into(),
                signature: None,
                redacted: None,
                id: None,
                origin: None
            }]
        );
        assert_eq!(
            asst.tool_calls[0],
            ToolCall {
                id: "call_0".into(),
                name: "weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }
        );
        assert_eq!(asst.tool_calls[1].id, "call_1");
        assert_eq!(req.messages[3].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(req.messages[3].name.as_deref(), Some("time"));
        assert_eq!(req.messages[4].tool_call_id.as_deref(), Some("call_0"));
        assert_eq!(req.messages[5].tool_calls[0].id, "call_2");
        assert_eq!(
            req.messages[5].tool_calls[0].arguments,
            r#"{"city":"Rome"}"#
        );
        assert_eq!(req.messages[6].tool_call_id.as_deref(), Some("call_2"));
        assert_eq!(
            req.tools[1].parameters,
            json!({"type": "object", "properties": {}})
        );
        assert!(
            matches!(req.response_format, Some(ResponseFormat::JsonSchema { ref name, .. }) if name == "response")
        );
        assert_eq!(
            (
                req.temperature,
                req.top_p,
                req.top_k,
                req.seed,
                req.max_tokens
            ),
            (Some(0.1), Some(0.2), Some(3), Some(4), Some(5))
        );
        assert_eq!(
            (req.presence_penalty, req.frequency_penalty),
            (Some(0.6), Some(0.7))
        );
        assert_eq!(req.stop, vec!["x"]);
        assert_eq!(req.keep_alive, Some(json!("5m")));
        assert_eq!(req.extra["options.repeat_penalty"], json!(1.1));
        assert_eq!(req.extra["options.num_ctx"], json!(8192));
        assert_eq!(req.extra["options.num_gpu"], json!(1));
        assert_eq!(req.extra.len(), 3);
        assert_eq!(req.extra_family, Some(Family::Ollama));
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                enabled: Some(false),
                ..Default::default()
            })
        );
    }

    #[test]
    fn small_variants() {
        let req = chat(json!({"model": "m", "messages": [], "stream": false, "format": "json", "options": {"num_predict": -1, "num_ctx": 4096}})).unwrap();
        assert!(!req.stream);
        assert_eq!(req.response_format, Some(ResponseFormat::JsonObject));
        assert_eq!(req.max_tokens, None);
        assert_eq!(req.extra["options.num_ctx"], json!(4096));
        assert_eq!(req.extra_family, Some(Family::Ollama));
        let req = chat(json!({"model": "m", "messages": [], "think": "high"})).unwrap();
        assert_eq!(
            req.reasoning,
            Some(Reasoning {
                enabled: Some(true),
                effort: Some(Effort::High),
                ..Default::default()
            })
        );
        let req = chat(json!({"model": "m", "format": "", "messages": [{"role": "tool", "content": "orphan", "tool_call_id": "given"}]})).unwrap();
        assert_eq!(req.response_format, None);
        assert_eq!(req.messages[0].tool_call_id.as_deref(), Some("given"));
        let req = chat(json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "x1", "type": "function", "function": {"name": "f"}}]}]})).unwrap();
        assert_eq!(
            req.messages[0].tool_calls[0],
            ToolCall {
                id: "x1".into(),
                name: "f".into(),
                arguments: "{}".into()
            }
        );
    }

    #[test]
    fn chat_errors_name_their_field() {
        let with = |k: &str, v: Value| {
            let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            b[k] = v;
            chat(b)
        };
        assert_eq!(field_of(chat(json!({"messages": []}))), "model");
        assert_eq!(field_of(with("bogus", json!(1))), "bogus");
        assert_eq!(field_of(with("think", json!("max"))), "think");
        assert_eq!(field_of(with("think", json!(1))), "think");
        assert_eq!(field_of(with("logprobs", json!(true))), "logprobs");
        assert_eq!(field_of(with("top_logprobs", json!(3))), "top_logprobs");
        assert_eq!(field_of(with("format", json!("yaml"))), "format");
        assert_eq!(field_of(with("stream", json!("yes"))), "stream");
        assert_eq!(
            field_of(with("options", json!({"warp": 9}))),
            "options.warp"
        );
        assert_eq!(
            field_of(with("options", json!({"top_k": -1}))),
            "options.top_k"
        );
        assert_eq!(
            field_of(with("options", json!({"stop": "x"}))),
            "options.stop"
        );
        assert_eq!(
            field_of(with("options", json!({"num_predict": 1e12}))),
            "options.num_predict"
        );
        assert_eq!(
            field_of(with("tools", json!([{"type": "retrieval"}]))),
            "tools[0].type"
        );
        assert_eq!(
            field_of(with("tools", json!([{"function": {"description": "d"}}]))),
            "tools[0].function.name"
        );
        assert_eq!(
            field_of(with(
                "tools",
                json!([{"function": {"name": "f", "parameters": []}}])
            )),
            "tools[0].function.parameters"
        );
        let msg = |m: Value| with("messages", json!([{"role": "user", "content": "x"}, m]));
        assert_eq!(
            field_of(msg(json!({"role": "developer", "content": "x"}))),
            "messages[1].role"
        );
        assert_eq!(
            field_of(msg(json!({"role": "user", "content": 3}))),
            "messages[1].content"
        );
        assert_eq!(
            field_of(msg(json!({"role": "user", "content": "x", "name": "n"}))),
            "messages[1].name"
        );
        assert_eq!(
            field_of(msg(json!({"role": "user", "images": ["JVBERi0xLjcK"]}))),
            "messages[1].images[0]"
        );
        assert_eq!(
            field_of(msg(json!({"role": "user", "images": [7]}))),
            "messages[1].images[0]"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "user", "tool_calls": [{"function": {"name": "f"}}]})
            )),
            "messages[1].tool_calls"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": [1]}}]})
            )),
            "messages[1].tool_calls[0].function.arguments"
        );
        assert_eq!(
            field_of(msg(
                json!({"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]})
            )),
            "messages[1].tool_calls[0].function.name"
        );
        assert_eq!(
            field_of(msg(json!({"role": "assistant", "tool_calls": [{}]}))),
            "messages[1].tool_calls[0].function"
        );
    }

    #[test]
    fn decodes_generate_and_its_errors() {
        let req = decode_generate_request(json!({"model": "m", "prompt": "why?", "system": "s", "images": [PNG], "suffix": "", "raw": false, "context": []}).to_string().as_bytes()).unwrap();
        assert_eq!(req.messages.len(), 2);
        assert_eq!(req.messages[0], Message::text(Role::System, "s"));
        assert_eq!(req.messages[1].joined_text(), "why?");
        assert_eq!(req.messages[1].content.len(), 2);
        assert!(req.stream);
        assert!(req.extra.is_empty() && req.extra_family.is_none());
        let load = decode_generate_request(br#"{"model": "m"}"#).unwrap();
        assert!(load.messages.is_empty());
        // Ollama's own prompt handling reaches Ollama providers only, as `extra`.
        for (k, v) in [
            ("suffix", json!("x")),
            ("template", json!("{{ .Prompt }}")),
            ("context", json!([1, 2])),
            ("raw", json!(true)),
        ] {
            let mut b = json!({"model": "m", "prompt": "p"});
            b[k] = v.clone();
            let req = decode_generate_request(b.to_string().as_bytes()).unwrap();
            assert_eq!(req.extra.get(k), Some(&v), "{k}");
            assert_eq!(req.extra_family, Some(Family::Ollama));
        }
        let b = json!({"model": "m", "prompt": "p", "messages": []});
        assert_eq!(
            field_of(decode_generate_request(b.to_string().as_bytes())),
            "messages"
        );
    }

    #[test]
    fn decodes_embed_in_both_shapes() {
        let e = decode_embed_request(br#"{"model": "e", "input": ["a", "b"], "truncate": true, "dimensions": 64, "keep_alive": 0, "options": {"num_ctx": 1}}"#).unwrap();
        assert_eq!((e.input.len(), e.dimensions), (2, Some(64)));
        assert_eq!(
            decode_embed_request(br#"{"model": "e", "input": "a"}"#)
                .unwrap()
                .input,
            vec!["a"]
        );
        assert_eq!(
            decode_embed_request(br#"{"model": "e", "prompt": "p"}"#)
                .unwrap()
                .input,
            vec!["p"]
        );
        assert_eq!(
            field_of(decode_embed_request(br#"{"model": "e"}"#)),
            "input"
        );
        assert_eq!(
            field_of(decode_embed_request(br#"{"model": "e", "input": 1}"#)),
            "input"
        );
        assert_eq!(
            field_of(decode_embed_request(br#"{"model": "e", "input": [1]}"#)),
            "input[0]"
        );
        assert_eq!(
            field_of(decode_embed_request(
                br#"{"model": "e", "input": "a", "truncate": false}"#
            )),
            "truncate"
        );
        assert_eq!(
            field_of(decode_embed_request(br#"{"input": "a"}"#)),
            "model"
        );
        assert_eq!(
            field_of(decode_embed_request(
                br#"{"model": "e", "input": "a", "x": 1}"#
            )),
            "x"
        );
    }

    fn response(finish: FinishReason, calls: Vec<ToolCall>) -> ChatResponse {
        ChatResponse {
            id: "id".into(),
            model: "llama3.2".into(),
            created: 1_691_164_939,
            choices: vec![Choice {
                index: 0,
                message: Message {
                    tool_calls: calls,
                    ..Message::text(Role::Assistant, "hello")
                },
                finish_reason: finish,
            }],
            usage: Some(Usage {
                input_tokens: 26,
                output_tokens: 298,
                cached_input_tokens: 0,
                reasoning_tokens: 0,
            }),
        }
    }

    #[test]
    fn encodes_complete_answers() {
        let r = response(
            FinishReason::ToolCalls,
            vec![ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: r#"{"a":1}"#.into(),
            }],
        );
        let v: Value = serde_json::from_slice(&encode_chat_response(&r)).unwrap();
        assert_eq!(
            v,
            json!({
                "model": "llama3.2", "created_at": "2023-08-04T16:02:19Z",
                "message": {"role": "assistant", "content": "hello", "tool_calls": [{"id": "c", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}]},
                "done": true, "done_reason": "stop",
                "total_duration": 0, "load_duration": 0, "prompt_eval_duration": 0, "eval_duration": 0,
                "prompt_eval_count": 26, "eval_count": 298
            })
        );
        let v: Value = serde_json::from_slice(&encode_generate_response(&response(
            FinishReason::Length,
            vec![],
        )))
        .unwrap();
        assert_eq!(v["response"], json!("hello"));
        assert_eq!(v["done_reason"], json!("length"));
        assert!(v.get("message").is_none());
        let v: Value = serde_json::from_slice(&encode_embed_response(&EmbeddingsResponse {
            model: "e".into(),
            data: vec![vec![0.5, 1.0]],
            usage: None,
        }))
        .unwrap();
        assert_eq!(v["embeddings"], json!([[0.5, 1.0]]));
        assert_eq!(v["embedding"], json!([0.5, 1.0]));
        let v: Value = serde_json::from_slice(&encode_embed_response(&EmbeddingsResponse {
            model: "e".into(),
            data: vec![vec![0.5], vec![1.0]],
            usage: None,
        }))
        .unwrap();
        assert!(v.get("embedding").is_none());
        let v: Value = serde_json::from_slice(&encode_error(&ErrorInfo::new(
            404,
            ErrorKind::NotFound,
            "model 'x' not found",
        )))
        .unwrap();
        assert_eq!(v, json!({"error": "model 'x' not found"}));
    }
}

mod provider {
    use super::super::provider::*;
    use crate::ir::*;
    use crate::wire::{ProviderKind, ProviderSpec, WireError};
    use serde_json::{json, Value};

    fn spec() -> ProviderSpec {
        ProviderSpec {
            kind: ProviderKind::Ollama,
            host: "localhost:11434".into(),
            base_path: String::new(),
            api_version: None,
            region: None,
            anthropic_version: String::new(),
        }
    }

    fn body_of(req: &Request) -> Value {
        serde_json::from_slice(&encode_request(&spec(), req).unwrap().body).unwrap()
    }

    fn err_field(req: ChatRequest) -> String {
        match encode_request(&spec(), &Request::Chat(req)) {
            Err(WireError::Unsupported { field, target }) => {
                assert_eq!(target, "ollama");
                field
            }
            Err(WireError::Invalid { field, .. }) => format!("invalid:{field}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn encodes_a_chat_with_every_field() {
        let req = ChatRequest {
            model: "llama3.2".into(),
            messages: vec![
                Message::text(Role::Developer, "dev"),
                Message {
                    content: vec![
                        Part::Text { text: "see".into() },
                        Part::Image {
                            source: Media::from_url("data:image/png;base64,iVBO"),
                        },
                    ],
                    ..Message::text(Role::User, "")
                },
                Message {
                    tool_calls: vec![ToolCall {
                        id: "call_0".into(),
                        name: "f".into(),
                        arguments: r#"{"a":1}"#.into(),
                    }],
                    ..Message::text(Role::Assistant, "")
                },
                Message {
                    tool_call_id: Some("call_0".into()),
                    is_error: true,
                    ..Message::text(Role::Tool, "r1")
                },
                Message {
                    tool_calls: vec![ToolCall {
                        id: "call_0".into(),
                        name: "g".into(),
                        arguments: String::new(),
                    }],
                    ..Message::text(Role::Assistant, "again")
                },
                Message {
                    tool_call_id: Some("call_0".into()),
                    ..Message::text(Role::Tool, "r2")
                },
            ],
            tools: vec![Tool {
                name: "f".into(),
                description: Some("d".into()),
                parameters: json!({"type": "object"}),
                strict: None,
            }],
            tool_choice: Some(ToolChoice::Auto),
            parallel_tool_calls: Some(true),
            max_tokens: Some(9),
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(7),
            stop: vec!["s".into()],
            seed: Some(3),
            presence_penalty: Some(0.1),
            frequency_penalty: Some(0.2),
            response_format: Some(ResponseFormat::JsonSchema {
                name: "x".into(),
                schema: json!({"type": "object"}),
                strict: None,
            }),
            keep_alive: Some(json!(0)),
            reasoning: Some(Reasoning {
                effort: Some(Effort::High),
                ..Default::default()
            }),
            extra: [
                ("options.repeat_penalty".to_string(), json!(1.2)),
                ("options.num_ctx".to_string(), json!(8192)),
            ]
            .into_iter()
            .collect(),
            extra_family: Some(Family::Ollama),
            ..Default::default()
        };
        let out = encode_request(&spec(), &Request::Chat(req)).unwrap();
        assert_eq!(out.path, "/api/chat");
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "dev"},
                    {"role": "user", "content": "see", "images": ["iVBO"]},
                    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
                    {"role": "tool", "content": "r1", "tool_name": "f"},
                    {"role": "assistant", "content": "again", "tool_calls": [{"function": {"name": "g", "arguments": {}}}]},
                    {"role": "tool", "content": "r2", "tool_name": "g"}
                ],
                "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
                "format": {"type": "object"},
                "think": true,
                "options": {"temperature": 0.5, "top_p": 0.9, "top_k": 7, "seed": 3, "num_predict": 9,
                            "presence_penalty": 0.1, "frequency_penalty": 0.2, "stop": ["s"],
                            "num_ctx": 8192, "repeat_penalty": 1.2},
                "keep_alive": 0,
                "stream": false
            })
        );
    }

    #[test]
    fn client_requests_round_trip_through_the_provider_encoder() {
        let original = json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
                {"role": "tool", "content": "r", "tool_name": "f"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "format": "json",
            "options": {"temperature": 0.0, "num_predict": 10, "mirostat": 2},
            "keep_alive": "10m",
            "stream": true
        });
        let ir = super::super::decode_chat_request(original.to_string().as_bytes()).unwrap();
        assert_eq!(body_of(&Request::Chat(ir)), original);
    }

    #[test]
    fn unsupported_fields_are_named() {
        let base = || ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "q")],
            ..Default::default()
        };
        assert_eq!(
            err_field(ChatRequest {
                n: Some(3),
                ..base()
            }),
            "n"
        );
        assert_eq!(
            err_field(ChatRequest {
                tool_choice: Some(ToolChoice::Required),
                ..base()
            }),
            "tool_choice"
        );
        assert_eq!(
            err_field(ChatRequest {
                tool_choice: Some(ToolChoice::Tool("f".into())),
                ..base()
            }),
            "tool_choice"
        );
        assert_eq!(
            err_field(ChatRequest {
                parallel_tool_calls: Some(false),
                ..base()
            }),
            "parallel_tool_calls"
        );
        let extra = [("thinking".to_string(), json!({}))].into_iter().collect();
        assert_eq!(
            err_field(ChatRequest {
                extra,
                extra_family: Some(Family::Anthropic),
                ..base()
            }),
            "thinking"
        );
        let url = ChatRequest {
            messages: vec![Message {
                content: vec![Part::Image {
                    source: Media::from_url("https://x/y.png"),
                }],
                ..Message::text(Role::User, "")
            }],
            ..base()
        };
        assert_eq!(err_field(url), "invalid:messages[0].content[0]");
        let doc = ChatRequest {
            messages: vec![
                Message::text(Role::User, "a"),
                Message {
                    content: vec![
                        Part::Text { text: "x".into() },
                        Part::Document {
                            source: Media::from_url("https://x/d.pdf"),
                            title: None,
                        },
                    ],
                    ..Message::text(Role::User, "")
                },
            ],
            ..base()
        };
        assert_eq!(err_field(doc), "messages[1].content[1]");
        let bad = ChatRequest {
            messages: vec![Message {
                tool_calls: vec![ToolCall {
                    id: "a".into(),
                    name: "f".into(),
                    arguments: "nope".into(),
                }],
                ..Message::text(Role::Assistant, "")
            }],
            ..base()
        };
        assert_eq!(
            err_field(bad),
            "invalid:messages[0].tool_calls[0].function.arguments"
        );
        let tools = vec![Tool {
            name: "f".into(),
            description: None,
            parameters: json!({}),
            strict: None,
        }];
        let none = body_of(&Request::Chat(ChatRequest {
            tools,
            tool_choice: Some(ToolChoice::None),
            ..base()
        }));
        assert!(none.get("tools").is_none());
    }

    #[test]
    fn encodes_embeddings() {
        let req = Request::Embeddings(EmbeddingsRequest {
            model: "e".into(),
            input: vec!["a".into()],
            dimensions: Some(8),
            user: Some("u".into()),
        });
        let out = encode_request(&spec(), &req).unwrap();
        assert_eq!(out.path, "/api/embed");
        assert_eq!(
            serde_json::from_slice::<Value>(&out.body).unwrap(),
            json!({"model": "e", "input": ["a"], "dimensions": 8})
        );
        let body = json!({"model": "e", "embeddings": [[0.1, 0.2]], "total_duration": 1, "prompt_eval_count": 4});
        let Response::Embeddings(e) =
            decode_response(&req, 200, body.to_string().as_bytes(), 5).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (
                e.model.as_str(),
                e.data.len(),
                e.usage.unwrap().input_tokens
            ),
            ("e", 1, 4)
        );
    }

    #[test]
    fn tool_schemas_are_cut_to_what_ollamas_tool_types_declare() {
        let b = body_of(&Request::Chat(ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "q")],
            tools: vec![Tool {
                name: "search".into(),
                description: None,
                // What Pydantic (the Anthropic tool runner, OpenAI's `pydantic_function_tool`) writes.
                parameters: json!({"title": "Search", "type": "object", "additionalProperties": false,
                    "properties": {"query": {"title": "Query", "type": "string", "format": "uri"},
                                   "kind": {"type": "string", "enum": ["web", "news"], "description": "d"}},
                    "required": ["query"]}),
                strict: Some(true),
            }],
            ..Default::default()
        }));
        assert_eq!(
            b["tools"],
            json!([{"type": "function", "function": {"name": "search", "parameters": {
                "type": "object", "required": ["query"],
                "properties": {"query": {"type": "string"},
                               "kind": {"type": "string", "enum": ["web", "news"], "description": "d"}}}}}])
        );
    }

    #[test]
    fn think_generate_and_reasoning_history_reach_ollama() {
        let think = |model: &str, r: Reasoning| {
            body_of(&Request::Chat(ChatRequest {
                model: model.into(),
                messages: vec![Message::text(Role::User, "q")],
                reasoning: Some(r),
                ..Default::default()
            }))["think"]
                .clone()
        };
        let high = Reasoning {
            enabled: Some(true),
            effort: Some(Effort::High),
            ..Default::default()
        };
        assert_eq!(think("gpt-oss:20b", high.clone()), json!("high"));
        assert_eq!(think("qwen3", high), json!(true));
        assert_eq!(
            think(
                "qwen3",
                Reasoning {
                    enabled: Some(false),
                    ..Default::default()
                }
            ),
            json!(false)
        );
        // Reasoning in the history is the turn's `thinking`; signatures have no Ollama form.
        let mut asst = Message::text(Role::Assistant, "a");
        asst.content.insert(
            0,
            Part::Reasoning {
                text: "hm".into(),
                signature: Some("EqQB".into()),
                redacted: None,
                id: None,
                origin: Some(Origin::Anthropic),
            },
        );
        let b = body_of(&Request::Chat(ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "q"), asst],
            ..Default::default()
        }));
        assert_eq!(
            b["messages"][1],
            json!({"role": "assistant", "content": "a", "thinking": "hm"})
        );
        // A generate request with Ollama-only fields is a generate request to Ollama.
        let generate = super::super::decode_generate_request(
            br#"{"model": "m", "prompt": "def f(", "suffix": "    return x", "system": "code", "options": {"num_ctx": 4096}}"#,
        )
        .unwrap();
        let out = encode_request(&spec(), &Request::Chat(generate)).unwrap();
        assert_eq!(out.path, "/api/generate");
        assert_eq!(
            serde_json::from_slice::<Value>(&out.body).unwrap(),
            json!({"model": "m", "system": "code", "prompt": "def f(", "suffix": "    return x",
                   "options": {"num_ctx": 4096}, "stream": true})
        );
    }

    #[test]
    fn decodes_answers_and_errors() {
        let req = Request::Chat(ChatRequest::default());
        let body = json!({
            "model": "llama3.2", "created_at": "2024-07-22T20:33:28.123648Z",
            "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "w", "arguments": {"city": "Paris"}}}]},
            "done_reason": "stop", "done": true, "total_duration": 885095291, "prompt_eval_count": 122, "eval_count": 33
        });
        let Response::Chat(c) =
            decode_response(&req, 200, body.to_string().as_bytes(), 99).unwrap()
        else {
            panic!()
        };
        assert_eq!((c.id.as_str(), c.created), ("ollama-99", 1_721_680_408));
        assert_eq!(c.choices[0].finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            c.choices[0].message.tool_calls,
            vec![ToolCall {
                id: "call_99_0".into(),
                name: "w".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }]
        );
        assert_eq!(
            c.usage,
            Some(Usage {
                input_tokens: 122,
                output_tokens: 33,
                cached_input_tokens: 0,
                reasoning_tokens: 0
            })
        );
        let body = json!({"model": "m", "message": {"role": "assistant", "content": "hi"}, "done": true, "done_reason": "length"});
        let Response::Chat(c) =
            decode_response(&req, 200, body.to_string().as_bytes(), 99).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (
                c.created,
                c.choices[0].finish_reason,
                c.choices[0].message.joined_text()
            ),
            (99, FinishReason::Length, "hi".to_string())
        );
        let Response::Error(e) = decode_response(
            &req,
            404,
            br#"{"error": "model \"x\" not found, try pulling it first"}"#,
            0,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!((e.status, e.kind), (404, ErrorKind::NotFound));
        assert!(e.message.starts_with("model"));
        let Response::Error(e) = decode_response(&req, 500, b"oops", 0).unwrap() else {
            panic!()
        };
        assert_eq!(e.kind, ErrorKind::Upstream);
        assert!(matches!(
            decode_response(&req, 200, b"[", 0),
            Err(WireError::Upstream { .. })
        ));
    }
}

mod stream {
    use super::super::stream::*;
    use crate::ir::*;
    use crate::stream::testutil::splits;
    use crate::wire::{StreamDecoder as _, StreamEncoder as _, WireError};
    use serde_json::{json, Value};

    /// Real-shaped `/api/chat` stream lines: text, a whole tool call, then the done line.
    const RECORDED: &str = concat!(
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.1Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Checking Zürich\"},\"done\":false}\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.2Z\",\"message\":{\"role\":\"assistant\",\"content\":\" 🦀\"},\"done\":false}\r\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.3Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"index\":0,\"name\":\"get_weather\",\"arguments\":{\"city\":\"Zürich\"}}}]},\"done\":false}\n",
        "{\"model\":\"llama3.2\",\"created_at\":\"2024-07-22T20:33:28.4Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":885095291,\"load_duration\":3753500,\"prompt_eval_count\":122,\"prompt_eval_duration\":328493000,\"eval_count\":33,\"eval_duration\":552222000}\n",
    );

    fn decode_chunks(chunks: &[Vec<u8>]) -> Vec<StreamEvent> {
        let mut d = ChatStreamDecoder::new(1 << 16, 77);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        d.end(&mut out).unwrap();
        out
    }

    #[test]
    fn decodes_a_recorded_stream_identically_in_every_split() {
        let whole = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        assert_eq!(
            whole,
            vec![
                StreamEvent::Start {
                    id: "ollama-77".into(),
                    model: "llama3.2".into(),
                    created: 1_721_680_408
                },
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "Checking Zürich".into()
                },
                StreamEvent::TextDelta {
                    choice: 0,
                    text: " 🦀".into()
                },
                StreamEvent::ToolCallStart {
                    choice: 0,
                    index: 0,
                    id: "call_77_0".into(),
                    name: "get_weather".into()
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: "{\"city\":\"Zürich\"}".into()
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ToolCalls
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 122,
                    output_tokens: 33,
                    cached_input_tokens: 0,
                    reasoning_tokens: 0
                }),
            ]
        );
        for chunks in splits(RECORDED.as_bytes(), 200) {
            assert_eq!(decode_chunks(&chunks), whole);
        }
    }

    #[test]
    fn decoder_errors() {
        let got = decode_chunks(&[b"{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"out of memory\"}\n{\"done\":true}".to_vec()]);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[2],
            StreamEvent::Error(ErrorInfo::new(502, ErrorKind::Upstream, "out of memory"))
        );
        let mut d = ChatStreamDecoder::new(1 << 10, 0);
        assert!(matches!(
            d.feed(b"not json\n", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
        let mut d = ChatStreamDecoder::new(4, 0);
        assert!(matches!(
            d.feed(b"{\"model\":1}", &mut Vec::new()),
            Err(WireError::Upstream { .. })
        ));
        // A truncated stream yields no Finish; the client encoder reports it.
        let got = decode_chunks(&[RECORDED.lines().next().unwrap().as_bytes().to_vec()]);
        assert_eq!(got.len(), 2);
    }

    fn encode_all(events: &[StreamEvent], generate: bool) -> Vec<Value> {
        let mut enc = ChatStreamEncoder::new(
            &ChatRequest {
                model: "client".into(),
                ..Default::default()
            },
            generate,
        );
        let mut out = Vec::new();
        for ev in events {
            enc.event(ev, &mut out);
        }
        enc.end(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn decoder_to_encoder_reproduces_an_ollama_stream() {
        let events = decode_chunks(&[RECORDED.as_bytes().to_vec()]);
        let lines = encode_all(&events, false);
        let original: Vec<Value> = RECORDED
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), original.len());
        for (got, want) in lines.iter().zip(&original) {
            assert_eq!(got["model"], want["model"]);
            assert_eq!(got["done"], want["done"]);
            assert_eq!(got["message"]["content"], want["message"]["content"]);
            assert_eq!(got["created_at"], json!("2024-07-22T20:33:28Z"));
        }
        assert_eq!(
            lines[2]["message"]["tool_calls"][0]["function"]["arguments"],
            json!({"city": "Zürich"})
        );
        assert_eq!(
            lines[2]["message"]["tool_calls"][0]["function"]["name"],
            json!("get_weather")
        );
        let last = &lines[3];
        assert_eq!(
            (
                last["done_reason"].clone(),
                last["prompt_eval_count"].clone(),
                last["eval_count"].clone()
            ),
            (json!("stop"), json!(122), json!(33))
        );
    }

    #[test]
    fn encoder_generate_errors_and_truncation() {
        let lines = encode_all(
            &[
                StreamEvent::Start {
                    id: "x".into(),
                    model: String::new(),
                    created: 0,
                },
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "hi".into(),
                },
                StreamEvent::TextDelta {
                    choice: 2,
                    text: "other choice".into(),
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Length,
                },
            ],
            true,
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            json!({"model": "client", "created_at": "1970-01-01T00:00:00Z", "response": "hi", "done": false})
        );
        assert_eq!(lines[1]["done"], json!(true));
        assert_eq!(lines[1]["done_reason"], json!("length"));
        assert_eq!(lines[1]["response"], json!(""));
        assert_eq!(lines[1]["eval_count"], json!(0));

        let lines = encode_all(
            &[StreamEvent::TextDelta {
                choice: 0,
                text: "partial".into(),
            }],
            false,
        );
        assert_eq!(
            lines
                .last()
                .unwrap()
                .get("error")
                .and_then(Value::as_str)
                .map(|s| s.contains("ended")),
            Some(true)
        );

        let lines = encode_all(
            &[
                StreamEvent::Error(ErrorInfo::new(429, ErrorKind::RateLimited, "slow down")),
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "late".into(),
                },
            ],
            false,
        );
        assert_eq!(lines, vec![json!({"error": "slow down"})]);

        // Tool-call fragments are joined and sent whole when the choice finishes.
        let lines = encode_all(
            &[
                StreamEvent::ToolCallStart {
                    choice: 0,
                    index: 0,
                    id: "a".into(),
                    name: "f".into(),
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: "{\"x\":".into(),
                },
                StreamEvent::ToolCallDelta {
                    choice: 0,
                    index: 0,
                    arguments: "[1]}".into(),
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ToolCalls,
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 1,
                    output_tokens: 2,
                    cached_input_tokens: 0,
                    reasoning_tokens: 0,
                }),
            ],
            false,
        );
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["message"]["tool_calls"],
            json!([{"id": "a", "function": {"index": 0, "name": "f", "arguments": {"x": [1]}}}])
        );
        assert_eq!(lines[1]["done_reason"], json!("stop"));
    }

    #[test]
    fn thinking_streams_in_both_directions() {
        let s = concat!(
            "{\"model\":\"qwen3\",\"created_at\":\"2025-06-01T10:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Okay, \"},\"done\":false}\n",
            "{\"model\":\"qwen3\",\"created_at\":\"2025-06-01T10:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"hi.\"},\"done\":false}\n",
            "{\"model\":\"qwen3\",\"created_at\":\"2025-06-01T10:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"done\":false}\n",
            "{\"model\":\"qwen3\",\"created_at\":\"2025-06-01T10:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":5,\"eval_count\":9}\n",
        );
        let whole = decode_chunks(&[s.as_bytes().to_vec()]);
        assert_eq!(
            whole[1..5],
            [
                StreamEvent::ReasoningDelta {
                    choice: 0,
                    text: "Okay, ".into()
                },
                StreamEvent::ReasoningDelta {
                    choice: 0,
                    text: "hi.".into()
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
                    text: "Hello".into()
                },
            ]
        );
        for chunks in splits(s.as_bytes(), 100) {
            assert_eq!(decode_chunks(&chunks), whole);
        }
        let lines = encode_all(&whole, false);
        let thinking: String = lines
            .iter()
            .filter_map(|l| l["message"]["thinking"].as_str())
            .collect();
        assert_eq!(thinking, "Okay, hi.");
        let content: String = lines
            .iter()
            .filter_map(|l| l["message"]["content"].as_str())
            .collect();
        assert_eq!(content, "Hello");
    }
}
