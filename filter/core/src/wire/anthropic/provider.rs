//! The `anthropic` provider format: IR requests to `POST {base}/v1/messages`, and Anthropic's
//! complete answers and error bodies back to IR.

use super::{finish_reason, usage_from};
use crate::ir::*;
use crate::wire::json::{must_be, required, JsonWriter, Path};
use crate::wire::{
    args, body_size_hint, media, reject_foreign_extra, system_text, Outgoing, ProviderSpec,
    WireError,
};
use serde::Deserialize;
use serde_json::Value;

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

    let mut w = JsonWriter::with_capacity(body_size_hint(chat));
    w.begin_object();
    w.key("model").str(&chat.model);
    w.key("max_tokens")
        .u64(chat.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).into());
    if let Some(system) = system_text(chat) {
        w.key("system").str(&system);
    }
    w.key("messages");
    encode_messages(chat, &mut w)?;
    if !chat.stop.is_empty() {
        w.key("stop_sequences").begin_array();
        for s in &chat.stop {
            w.str(s);
        }
        w.end_array();
    }
    if let Some(t) = chat.temperature {
        w.key("temperature").f64(t);
    }
    if let Some(p) = chat.top_p {
        w.key("top_p").f64(p);
    }
    if let Some(k) = chat.top_k {
        w.key("top_k").u64(k.into());
    }
    if let Some(user) = &chat.user {
        w.key("metadata").begin_object();
        w.key("user_id").str(user).end_object();
    }
    if !chat.tools.is_empty() {
        w.key("tools").begin_array();
        for tool in &chat.tools {
            encode_tool(tool, &mut w);
        }
        w.end_array();
        encode_tool_choice(chat, &mut w);
    }
    // Extras are Anthropic fields the IR has no place for, so none should be named like a
    // field written here; if one is, the field written here stands. `output_config` is the one
    // both fill, and is merged below.
    for (key, value) in &chat.extra {
        if !OWN_FIELDS.contains(&key.as_str()) {
            w.key(key).value(value);
        }
    }
    encode_output_config(chat, &mut w);
    w.key("stream").bool(chat.stream);
    w.end_object();
    Ok(Outgoing {
        path: format!("{}/v1/messages", spec.base_path),
        headers: vec![
            ("anthropic-version".into(), spec.anthropic_version.clone()),
            ("content-type".into(), "application/json".into()),
        ],
        body: w.into_bytes(),
    })
}

/// The top-level fields [`encode_request`] writes itself, which `extra` fields never replace.
const OWN_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "system",
    "messages",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "tools",
    "tool_choice",
    "output_config",
    "stream",
];

/// `output_config`: a JSON schema's `format`, and what an Anthropic client sent in it
/// (`effort`), the schema winning a clash; left out when there is neither.
fn encode_output_config(chat: &ChatRequest, w: &mut JsonWriter) {
    let schema = match &chat.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(schema),
        _ => None,
    };
    let extra = match chat.extra.get("output_config") {
        Some(Value::Object(m)) if !m.is_empty() => Some(m),
        _ => None,
    };
    if schema.is_none() && extra.is_none() {
        return;
    }
    w.key("output_config").begin_object();
    if let Some(schema) = schema {
        w.key("format").begin_object();
        w.key("type").str("json_schema");
        w.key("schema").value(schema).end_object();
    }
    for (k, v) in extra.into_iter().flatten() {
        if !(schema.is_some() && k == "format") {
            w.key(k).value(v);
        }
    }
    w.end_object();
}

fn encode_tool(tool: &Tool, w: &mut JsonWriter) {
    w.begin_object();
    w.key("name").str(&tool.name);
    if let Some(d) = &tool.description {
        w.key("description").str(d);
    }
    w.key("input_schema");
    if tool.parameters.is_object() {
        w.value(&tool.parameters);
    } else {
        // OpenAI lets a function omit its parameters; Anthropic requires a schema.
        w.begin_object();
        w.key("type").str("object");
        w.key("properties").begin_object().end_object();
        w.end_object();
    }
    w.end_object();
}

fn encode_tool_choice(chat: &ChatRequest, w: &mut JsonWriter) {
    let (kind, name) = match &chat.tool_choice {
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::None) => ("none", None),
        Some(ToolChoice::Tool(name)) => ("tool", Some(name)),
    };
    // `none` has no parallelism switch; an unset choice is worth sending only to turn it off.
    let serial = chat.parallel_tool_calls == Some(false) && kind != "none";
    if chat.tool_choice.is_none() && !serial {
        return;
    }
    w.key("tool_choice").begin_object();
    w.key("type").str(kind);
    if let Some(name) = name {
        w.key("name").str(name);
    }
    if serial {
        w.key("disable_parallel_tool_use").bool(true);
    }
    w.end_object();
}

fn encode_messages(chat: &ChatRequest, w: &mut JsonWriter) -> Result<(), WireError> {
    let messages = Path::field("messages");
    w.begin_array();
    // Whether the turn written last is a user turn of tool results still open for more:
    // Anthropic wants all results for one assistant turn in one user turn.
    let mut open_results = false;
    for (i, m) in chat.messages.iter().enumerate() {
        let path = messages.index(i);
        if matches!(m.role, Role::User | Role::Assistant) && open_results {
            w.end_array().end_object();
            open_results = false;
        }
        match m.role {
            Role::System | Role::Developer => continue,
            Role::User => {
                w.begin_object();
                w.key("role").str("user");
                w.key("content");
                encode_content(&m.content, path, w)?;
                w.end_object();
            }
            Role::Assistant => {
                w.begin_object();
                w.key("role").str("assistant");
                w.key("content").begin_array();
                encode_blocks(&m.content, path, w)?;
                for (j, call) in m.tool_calls.iter().enumerate() {
                    let input = args::object(&call.arguments).ok_or_else(|| {
                        let calls = path.key("tool_calls");
                        let function = calls.index(j);
                        must_be(function.key("function").key("arguments"), "a JSON object")
                    })?;
                    w.begin_object();
                    w.key("type").str("tool_use");
                    w.key("id").str(&call.id);
                    w.key("name").str(&call.name);
                    w.key("input").json(&input).end_object();
                }
                w.end_array().end_object();
            }
            Role::Tool => {
                let id = m
                    .tool_call_id
                    .as_deref()
                    .ok_or_else(|| required(path.key("tool_call_id")))?;
                if !open_results {
                    w.begin_object();
                    w.key("role").str("user");
                    w.key("content").begin_array();
                    open_results = true;
                }
                w.begin_object();
                w.key("type").str("tool_result");
                w.key("tool_use_id").str(id);
                if !m.content.is_empty() {
                    w.key("content");
                    encode_content(&m.content, path, w)?;
                }
                if m.is_error {
                    w.key("is_error").bool(true);
                }
                w.end_object();
            }
        }
    }
    if open_results {
        w.end_array().end_object();
    }
    w.end_array();
    Ok(())
}

/// A lone text part goes as a plain string, the shape Anthropic documents first.
fn encode_content(parts: &[Part], path: Path<'_>, w: &mut JsonWriter) -> Result<(), WireError> {
    if let [Part::Text { text }] = parts {
        w.str(text);
        return Ok(());
    }
    w.begin_array();
    encode_blocks(parts, path, w)?;
    w.end_array();
    Ok(())
}

/// The content blocks of `parts`, into an array the caller opened.
fn encode_blocks(parts: &[Part], path: Path<'_>, w: &mut JsonWriter) -> Result<(), WireError> {
    let content = path.key("content");
    for (k, part) in parts.iter().enumerate() {
        match part {
            // Anthropic rejects empty text blocks; an empty part says nothing anyway.
            Part::Text { text } if text.is_empty() => continue,
            Part::Text { text } => {
                w.begin_object();
                w.key("type").str("text");
                w.key("text").str(text).end_object();
            }
            Part::Image { source } => {
                w.begin_object();
                w.key("type").str("image");
                w.key("source");
                encode_source(source, w);
                w.end_object();
            }
            Part::Document { source, title } => {
                let field = content.index(k);
                let text = match source {
                    Media::Base64 { media_type, data } if media_type == "text/plain" => Some(
                        media::base64_decode(data.as_bytes())
                            .and_then(|b| String::from_utf8(b).ok())
                            .ok_or_else(|| {
                                let message = format!("`{field}` is not valid base64 UTF-8 text");
                                WireError::invalid(field, message)
                            })?,
                    ),
                    Media::Base64 { media_type, .. } if media_type != "application/pdf" => {
                        return Err(WireError::unsupported(field, TARGET));
                    }
                    _ => None,
                };
                w.begin_object();
                w.key("type").str("document");
                w.key("source");
                match text {
                    Some(text) => {
                        w.begin_object();
                        w.key("type").str("text");
                        w.key("media_type").str("text/plain");
                        w.key("data").str(&text).end_object();
                    }
                    None => encode_source(source, w),
                }
                if let Some(t) = title {
                    w.key("title").str(t);
                }
                w.end_object();
            }
        }
    }
    Ok(())
}

fn encode_source(media: &Media, w: &mut JsonWriter) {
    w.begin_object();
    match media {
        Media::Base64 { media_type, data } => {
            w.key("type").str("base64");
            w.key("media_type").str(media_type);
            w.key("data").str(data);
        }
        Media::Url { url } => {
            w.key("type").str("url");
            w.key("url").str(url);
        }
    }
    w.end_object();
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
    use serde_json::json;

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
            extra: [("output_config".to_string(), json!({"effort": "high"}))]
                .into_iter()
                .collect(),
            extra_family: Some(Family::Anthropic),
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
