//! The `anthropic` provider format: IR requests to `POST {base}/v1/messages`, and Anthropic's
//! complete answers and error bodies back to IR.

use super::{finish_reason, usage_from};
use crate::ir::*;
use crate::wire::json::{must_be, required, set, to_bytes};
use crate::wire::{
    args, media, reject_foreign_extra, system_text, Outgoing, ProviderSpec, WireError,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

const TARGET: &str = "anthropic";

/// Anthropic requires `max_tokens`; clients of other protocols may omit it. 4096 is what every
/// current Claude model can produce and long enough not to cut ordinary answers short.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let chat = match req {
        Request::Chat(c) => c,
        Request::Embeddings(_) => return Err(WireError::unsupported("embeddings", TARGET)),
    };
    reject_foreign_extra(chat, Family::Anthropic, TARGET)?;
    if chat.n.is_some_and(|n| n > 1) {
        return Err(WireError::unsupported("n", TARGET));
    }
    let unsupported = [
        ("seed", chat.seed.is_some()),
        ("presence_penalty", chat.presence_penalty.is_some()),
        ("frequency_penalty", chat.frequency_penalty.is_some()),
        (
            // Anthropic's structured outputs take a schema; it has no schemaless JSON mode.
            "response_format",
            matches!(chat.response_format, Some(ResponseFormat::JsonObject)),
        ),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(WireError::unsupported(*field, TARGET));
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(chat.model));
    body.insert(
        "max_tokens".into(),
        json!(chat.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    if let Some(system) = system_text(chat) {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(encode_messages(chat)?));
    if !chat.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(chat.stop));
    }
    if let Some(t) = chat.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = chat.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(k) = chat.top_k {
        body.insert("top_k".into(), json!(k));
    }
    if let Some(user) = &chat.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    if !chat.tools.is_empty() {
        let tools: Vec<Value> = chat.tools.iter().map(encode_tool).collect();
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = encode_tool_choice(chat) {
            body.insert("tool_choice".into(), choice);
        }
    }
    let mut output_config = Map::new();
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &chat.response_format {
        output_config.insert(
            "format".into(),
            json!({"type": "json_schema", "schema": schema}),
        );
    }
    for (key, value) in &chat.extra {
        match (key.as_str(), value) {
            ("output_config", Value::Object(extra)) => {
                for (k, v) in extra {
                    output_config.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            _ => {
                body.insert(key.clone(), value.clone());
            }
        }
    }
    if !output_config.is_empty() {
        body.insert("output_config".into(), Value::Object(output_config));
    }
    body.insert("stream".into(), json!(chat.stream));
    Ok(Outgoing {
        path: format!("{}/v1/messages", spec.base_path),
        headers: vec![
            ("anthropic-version".into(), spec.anthropic_version.clone()),
            ("content-type".into(), "application/json".into()),
        ],
        body: to_bytes(&Value::Object(body)),
    })
}

fn encode_tool(tool: &Tool) -> Value {
    let schema = if tool.parameters.is_object() {
        tool.parameters.clone()
    } else {
        // OpenAI lets a function omit its parameters; Anthropic requires a schema.
        json!({"type": "object", "properties": {}})
    };
    let mut t = json!({"name": tool.name, "input_schema": schema});
    if let Some(d) = &tool.description {
        set(&mut t, "description", json!(d));
    }
    t
}

fn encode_tool_choice(chat: &ChatRequest) -> Option<Value> {
    let mut choice = match &chat.tool_choice {
        None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        // `none` has no parallelism switch.
        Some(ToolChoice::None) => return Some(json!({"type": "none"})),
        Some(ToolChoice::Tool(name)) => json!({"type": "tool", "name": name}),
    };
    if chat.parallel_tool_calls == Some(false) {
        set(&mut choice, "disable_parallel_tool_use", json!(true));
    } else if chat.tool_choice.is_none() {
        return None;
    }
    Some(choice)
}

fn encode_messages(chat: &ChatRequest) -> Result<Vec<Value>, WireError> {
    let mut out: Vec<Value> = Vec::new();
    // Whether the last message pushed is a user turn holding only tool results, which the next
    // tool turn joins: Anthropic wants all results for one assistant turn in one user turn.
    let mut open_results = false;
    for (i, m) in chat.messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        match m.role {
            Role::System | Role::Developer => continue,
            Role::User => {
                out.push(json!({"role": "user", "content": encode_content(&m.content, &path)?}));
                open_results = false;
            }
            Role::Assistant => {
                let mut blocks = encode_blocks(&m.content, &path)?;
                for (j, call) in m.tool_calls.iter().enumerate() {
                    let input = args::object(&call.arguments).ok_or_else(|| {
                        must_be(
                            &format!("{path}.tool_calls[{j}].function.arguments"),
                            "a JSON object",
                        )
                    })?;
                    blocks.push(json!({
                        "type": "tool_use", "id": call.id, "name": call.name, "input": input,
                    }));
                }
                out.push(json!({"role": "assistant", "content": blocks}));
                open_results = false;
            }
            Role::Tool => {
                let id = m
                    .tool_call_id
                    .as_deref()
                    .ok_or_else(|| required(&format!("{path}.tool_call_id")))?;
                let mut result = json!({"type": "tool_result", "tool_use_id": id});
                if !m.content.is_empty() {
                    set(&mut result, "content", encode_content(&m.content, &path)?);
                }
                if m.is_error {
                    set(&mut result, "is_error", json!(true));
                }
                let joined = open_results
                    && out
                        .last_mut()
                        .and_then(|last| last.get_mut("content"))
                        .and_then(Value::as_array_mut)
                        .map(|blocks| blocks.push(result.clone()))
                        .is_some();
                if !joined {
                    out.push(json!({"role": "user", "content": [result]}));
                }
                open_results = true;
            }
        }
    }
    Ok(out)
}

/// A lone text part goes as a plain string, the shape Anthropic documents first.
fn encode_content(parts: &[Part], path: &str) -> Result<Value, WireError> {
    if let [Part::Text { text }] = parts {
        return Ok(json!(text));
    }
    Ok(Value::Array(encode_blocks(parts, path)?))
}

fn encode_blocks(parts: &[Part], path: &str) -> Result<Vec<Value>, WireError> {
    let mut blocks = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let field = format!("{path}.content[{k}]");
        blocks.push(match part {
            // Anthropic rejects empty text blocks; an empty part says nothing anyway.
            Part::Text { text } if text.is_empty() => continue,
            Part::Text { text } => json!({"type": "text", "text": text}),
            Part::Image { source } => json!({"type": "image", "source": encode_source(source)}),
            Part::Document { source, title } => {
                let source = match source {
                    Media::Base64 { media_type, data } if media_type == "text/plain" => {
                        let text = media::base64_decode(data.as_bytes())
                            .and_then(|b| String::from_utf8(b).ok())
                            .ok_or_else(|| {
                                WireError::invalid(
                                    field.clone(),
                                    format!("`{field}` is not valid base64 UTF-8 text"),
                                )
                            })?;
                        json!({"type": "text", "media_type": "text/plain", "data": text})
                    }
                    Media::Base64 { media_type, .. } if media_type != "application/pdf" => {
                        return Err(WireError::unsupported(field, TARGET));
                    }
                    other => encode_source(other),
                };
                let mut doc = json!({"type": "document", "source": source});
                if let Some(t) = title {
                    set(&mut doc, "title", json!(t));
                }
                doc
            }
        });
    }
    Ok(blocks)
}

fn encode_source(media: &Media) -> Value {
    match media {
        Media::Base64 { media_type, data } => {
            json!({"type": "base64", "media_type": media_type, "data": data})
        }
        Media::Url { url } => json!({"type": "url", "url": url}),
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// One content block of any type; flat so that block types added later do not fail parsing.
#[derive(Deserialize)]
pub(super) struct WireBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input: Option<Value>,
}

#[derive(Deserialize, Default)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
pub(super) struct WireErrorObject {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct WireErrorBody {
    error: WireErrorObject,
}

/// Anthropic's answer as IR. Anthropic reports no creation time: `created` stays 0 for the
/// caller to stamp.
pub fn decode_response(req: &Request, status: u16, body: &[u8]) -> Result<Response, WireError> {
    if !(200..300).contains(&status) {
        return Ok(Response::Error(error_from_body(status, body)));
    }
    if let Request::Embeddings(_) = req {
        return Err(WireError::upstream("anthropic has no embeddings endpoint"));
    }
    let msg: WireMessage = serde_json::from_slice(body)
        .map_err(|e| WireError::upstream(format!("unreadable Anthropic message: {e}")))?;
    let mut message = Message {
        content: Vec::new(),
        ..Message::text(Role::Assistant, "")
    };
    for block in msg.content {
        match block.kind.as_str() {
            "text" => message.content.push(Part::Text {
                text: block.text.unwrap_or_default(),
            }),
            "tool_use" => message.tool_calls.push(ToolCall {
                id: block.id.unwrap_or_default(),
                name: block.name.unwrap_or_default(),
                arguments: args::text(&block.input.unwrap_or(Value::Null)),
            }),
            // Thinking and server-tool blocks have no IR form; the answer is the text and calls.
            _ => {}
        }
    }
    let usage = msg.usage.unwrap_or_default();
    Ok(Response::Chat(ChatResponse {
        id: msg.id,
        model: msg.model,
        created: 0,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: finish_reason(msg.stop_reason.as_deref().unwrap_or("end_turn")),
        }],
        usage: Some(usage_from(
            usage.input_tokens.unwrap_or(0),
            usage.cache_read_input_tokens.unwrap_or(0),
            usage.cache_creation_input_tokens.unwrap_or(0),
            usage.output_tokens.unwrap_or(0),
        )),
    }))
}

fn error_from_body(status: u16, body: &[u8]) -> ErrorInfo {
    // 529 (overloaded) is Anthropic's own; clients of other protocols know 503.
    let shown = if status == 529 { 503 } else { status };
    let message = serde_json::from_slice::<WireErrorBody>(body)
        .map(|b| b.error.message)
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("the Anthropic provider answered with status {status}"));
    ErrorInfo::new(shown, ErrorInfo::kind_for_status(status), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ProviderKind;

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
                },
                Tool {
                    name: "g".into(),
                    description: None,
                    parameters: Value::Null,
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
            extra: [
                ("output_config".to_string(), json!({"effort": "low"})),
                ("service_tier".to_string(), json!("auto")),
            ]
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
                cached_input_tokens: 3
            })
        );

        let err = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let Response::Error(e) = decode_response(&req, 529, err.to_string().as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (e.status, e.kind, e.message.as_str()),
            (503, ErrorKind::Unavailable, "Overloaded")
        );
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
