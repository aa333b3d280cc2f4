//! Anthropic's Messages format (`POST /v1/messages`), as a client protocol (this file: request
//! decoding, response and error encoding) and as the `anthropic` provider format (`provider`).
//!
//! Streams live in `stream`; `util` holds JSON-walking helpers the Ollama codec shares.
//!
//! Mapping choices:
//! - IR `input_tokens` counts *all* prompt tokens (OpenAI's meaning); Anthropic's excludes cache
//!   reads and writes, so decoding adds them in and encoding subtracts the cached part.
//! - `cache_control` markers are accepted and dropped: they change price and latency, never the
//!   answer, and the IR has nowhere to put a per-block marker.
//! - `thinking`, `service_tier`, `inference_geo` and `output_config.effort` pass to Anthropic
//!   providers verbatim through `extra`; thinking *blocks* are not representable and get a 400.

mod provider;
mod stream;
pub(crate) mod util;

pub use provider::{decode_response, encode_request};
pub use stream::{MessagesStreamDecoder, MessagesStreamEncoder};

use super::WireError;
use crate::ir::*;
use serde_json::{json, Map, Value};
use util::{
    as_object, at, get, join, not_supported, opt_array, opt_bool, opt_f64, opt_object, opt_str,
    opt_u32, reject_unknown, req_str, required, str_of,
};

const TOP_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "stream",
    "tools",
    "tool_choice",
    "output_config",
    "cache_control",
    "thinking",
    "service_tier",
    "inference_geo",
];

/// Anthropic-only request fields with no IR equivalent that Anthropic providers take verbatim.
const PASSTHROUGH: &[&str] = &["thinking", "service_tier", "inference_geo"];

pub fn decode_messages_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let root = util::parse_object(body)?;
    reject_unknown(&root, "", TOP_FIELDS)?;
    let mut req = ChatRequest {
        model: req_str(&root, "", "model")?.to_string(),
        ..Default::default()
    };
    // Anthropic requires it; accepting its absence would make the answer's length depend on
    // whichever provider serves the request.
    req.max_tokens = Some(
        opt_u32(&root, "", "max_tokens")?
            .ok_or_else(|| WireError::invalid("max_tokens", "`max_tokens` is required"))?,
    );
    if let Some(system) = get(&root, "system") {
        let system = decode_system(system)?;
        // An empty system prompt says nothing, and some providers reject an empty one.
        if !system.joined_text().is_empty() {
            req.messages.push(system);
        }
    }
    let messages = required(&root, "", "messages")?
        .as_array()
        .ok_or_else(|| WireError::invalid("messages", "`messages` must be an array"))?;
    for (i, m) in messages.iter().enumerate() {
        decode_message(m, &at("messages", i), &mut req.messages)?;
    }
    if let Some(stops) = get(&root, "stop_sequences") {
        req.stop = util::strings(stops, "stop_sequences")?;
    }
    req.temperature = opt_f64(&root, "", "temperature")?;
    req.top_p = opt_f64(&root, "", "top_p")?;
    req.top_k = opt_u32(&root, "", "top_k")?;
    if let Some(meta) = opt_object(&root, "", "metadata")? {
        reject_unknown(meta, "metadata", &["user_id"])?;
        req.user = opt_str(meta, "metadata", "user_id")?.map(str::to_string);
    }
    req.stream = opt_bool(&root, "", "stream")?.unwrap_or(false);
    if let Some(tools) = opt_array(&root, "", "tools")? {
        for (i, t) in tools.iter().enumerate() {
            req.tools.push(decode_tool(t, &at("tools", i))?);
        }
    }
    if let Some(choice) = opt_object(&root, "", "tool_choice")? {
        decode_tool_choice(choice, &mut req)?;
    }
    if let Some(config) = opt_object(&root, "", "output_config")? {
        decode_output_config(config, &mut req)?;
    }
    for key in PASSTHROUGH {
        if let Some(v) = get(&root, key) {
            req.extra.insert((*key).to_string(), v.clone());
        }
    }
    if !req.extra.is_empty() {
        req.extra_family = Some(Family::Anthropic);
    }
    Ok(req)
}

fn decode_system(v: &Value) -> Result<Message, WireError> {
    let content = match v {
        Value::String(s) => vec![Part::Text { text: s.clone() }],
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let path = at("system", i);
                let block = as_object(b, &path)?;
                match req_str(block, &path, "type")? {
                    "text" => parts.push(decode_text(block, &path)?),
                    other => {
                        return Err(WireError::invalid(
                            join(&path, "type"),
                            format!("system blocks must be `text`, not `{other}`"),
                        ))
                    }
                }
            }
            parts
        }
        _ => {
            return Err(WireError::invalid(
                "system",
                "`system` must be a string or an array of text blocks",
            ))
        }
    };
    Ok(Message {
        content,
        ..Message::text(Role::System, "")
    })
}

fn decode_message(v: &Value, path: &str, out: &mut Vec<Message>) -> Result<(), WireError> {
    let obj = as_object(v, path)?;
    reject_unknown(obj, path, &["role", "content"])?;
    let role = match req_str(obj, path, "role")? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => {
            return Err(WireError::invalid(
                join(path, "role"),
                format!("`{}` must be `user` or `assistant`", join(path, "role")),
            ))
        }
    };
    let content_path = join(path, "content");
    let blocks = match required(obj, path, "content")? {
        Value::String(s) => {
            out.push(Message::text(role, s.clone()));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(WireError::invalid(
                content_path.clone(),
                format!("`{content_path}` must be a string or an array of content blocks"),
            ))
        }
    };
    let mut msg = Message {
        content: Vec::new(),
        ..Message::text(role, "")
    };
    let mut emitted = false;
    for (j, b) in blocks.iter().enumerate() {
        let bp = at(&content_path, j);
        let block = as_object(b, &bp)?;
        match (role, req_str(block, &bp, "type")?) {
            (_, "text") => msg.content.push(decode_text(block, &bp)?),
            (_, "image") => msg.content.push(decode_image(block, &bp)?),
            (_, "document") => msg.content.push(decode_document(block, &bp)?),
            (Role::Assistant, "tool_use") => msg.tool_calls.push(decode_tool_use(block, &bp)?),
            (Role::User, "tool_result") => {
                // Tool results become IR tool turns in place, so text around them keeps its order.
                if !msg.content.is_empty() {
                    out.push(std::mem::replace(
                        &mut msg,
                        Message {
                            content: Vec::new(),
                            ..Message::text(role, "")
                        },
                    ));
                }
                out.push(decode_tool_result(block, &bp)?);
                emitted = true;
            }
            (_, "thinking" | "redacted_thinking") => return Err(not_supported(bp)),
            (_, other) => {
                return Err(WireError::invalid(
                    join(&bp, "type"),
                    format!("content block type `{other}` is not supported in a {role:?} turn"),
                ))
            }
        }
    }
    if !msg.content.is_empty() || !msg.tool_calls.is_empty() || !emitted {
        out.push(msg);
    }
    Ok(())
}

fn decode_text(block: &Map<String, Value>, path: &str) -> Result<Part, WireError> {
    reject_unknown(block, path, &["type", "text", "cache_control", "citations"])?;
    let cited = match get(block, "citations") {
        None => false,
        Some(Value::Array(list)) => !list.is_empty(),
        Some(_) => true,
    };
    if cited {
        return Err(not_supported(join(path, "citations")));
    }
    Ok(Part::Text {
        text: req_str(block, path, "text")?.to_string(),
    })
}

fn decode_image(block: &Map<String, Value>, path: &str) -> Result<Part, WireError> {
    reject_unknown(block, path, &["type", "source", "cache_control"])?;
    let source = decode_source(block, path, &["base64", "url"])?;
    Ok(Part::Image { source })
}

fn decode_document(block: &Map<String, Value>, path: &str) -> Result<Part, WireError> {
    reject_unknown(
        block,
        path,
        &[
            "type",
            "source",
            "title",
            "context",
            "citations",
            "cache_control",
        ],
    )?;
    if get(block, "context").is_some() {
        return Err(not_supported(join(path, "context")));
    }
    if let Some(c) = opt_object(block, path, "citations")? {
        if opt_bool(c, &join(path, "citations"), "enabled")? == Some(true) {
            return Err(not_supported(join(path, "citations")));
        }
    }
    let source = decode_source(block, path, &["base64", "url", "text"])?;
    Ok(Part::Document {
        source,
        title: opt_str(block, path, "title")?.map(str::to_string),
    })
}

/// An image or document `source`. Plain-text documents are carried as base64 `text/plain` so
/// every provider sees a document, not loose prompt text.
fn decode_source(
    block: &Map<String, Value>,
    path: &str,
    kinds: &[&str],
) -> Result<Media, WireError> {
    let sp = join(path, "source");
    let source = as_object(required(block, path, "source")?, &sp)?;
    let kind = req_str(source, &sp, "type")?;
    if !kinds.contains(&kind) {
        return Err(not_supported(join(&sp, "type")));
    }
    if kind == "url" {
        reject_unknown(source, &sp, &["type", "url"])?;
        return Ok(Media::Url {
            url: req_str(source, &sp, "url")?.to_string(),
        });
    }
    reject_unknown(source, &sp, &["type", "media_type", "data"])?;
    let media_type = req_str(source, &sp, "media_type")?.to_string();
    let data = req_str(source, &sp, "data")?;
    let data = if kind == "text" {
        util::base64_encode(data.as_bytes())
    } else {
        data.to_string()
    };
    Ok(Media::Base64 { media_type, data })
}

fn decode_tool_use(block: &Map<String, Value>, path: &str) -> Result<ToolCall, WireError> {
    reject_unknown(
        block,
        path,
        &["type", "id", "name", "input", "cache_control"],
    )?;
    let input = required(block, path, "input")?;
    if !input.is_object() {
        let field = join(path, "input");
        return Err(WireError::invalid(
            field.clone(),
            format!("`{field}` must be an object"),
        ));
    }
    Ok(ToolCall {
        id: req_str(block, path, "id")?.to_string(),
        name: req_str(block, path, "name")?.to_string(),
        arguments: input.to_string(),
    })
}

fn decode_tool_result(block: &Map<String, Value>, path: &str) -> Result<Message, WireError> {
    reject_unknown(
        block,
        path,
        &[
            "type",
            "tool_use_id",
            "content",
            "is_error",
            "cache_control",
        ],
    )?;
    let mut content = Vec::new();
    match get(block, "content") {
        None => {}
        Some(Value::String(s)) => content.push(Part::Text { text: s.clone() }),
        Some(Value::Array(blocks)) => {
            let cp = join(path, "content");
            for (k, b) in blocks.iter().enumerate() {
                let bp = at(&cp, k);
                let inner = as_object(b, &bp)?;
                content.push(match req_str(inner, &bp, "type")? {
                    "text" => decode_text(inner, &bp)?,
                    "image" => decode_image(inner, &bp)?,
                    "document" => decode_document(inner, &bp)?,
                    _ => return Err(not_supported(join(&bp, "type"))),
                });
            }
        }
        Some(_) => {
            let field = join(path, "content");
            return Err(WireError::invalid(
                field.clone(),
                format!("`{field}` must be a string or an array of content blocks"),
            ));
        }
    }
    Ok(Message {
        role: Role::Tool,
        content,
        tool_calls: Vec::new(),
        tool_call_id: Some(req_str(block, path, "tool_use_id")?.to_string()),
        name: None,
        is_error: opt_bool(block, path, "is_error")?.unwrap_or(false),
    })
}

fn decode_tool(v: &Value, path: &str) -> Result<Tool, WireError> {
    let tool = as_object(v, path)?;
    // Server tools (web search, code execution, ...) run inside Anthropic; no other provider
    // can honour them, so they are refused before their own fields are judged unknown.
    if let Some(kind) = opt_str(tool, path, "type")? {
        if kind != "custom" {
            return Err(not_supported(join(path, "type")));
        }
    }
    reject_unknown(
        tool,
        path,
        &[
            "type",
            "name",
            "description",
            "input_schema",
            "cache_control",
        ],
    )?;
    let schema = required(tool, path, "input_schema")?;
    as_object(schema, &join(path, "input_schema"))?;
    Ok(Tool {
        name: req_str(tool, path, "name")?.to_string(),
        description: opt_str(tool, path, "description")?.map(str::to_string),
        parameters: schema.clone(),
    })
}

fn decode_tool_choice(choice: &Map<String, Value>, req: &mut ChatRequest) -> Result<(), WireError> {
    let path = "tool_choice";
    reject_unknown(choice, path, &["type", "name", "disable_parallel_tool_use"])?;
    req.tool_choice = Some(match req_str(choice, path, "type")? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(req_str(choice, path, "name")?.to_string()),
        _ => {
            return Err(WireError::invalid(
                "tool_choice.type",
                "`tool_choice.type` must be `auto`, `any`, `tool` or `none`",
            ))
        }
    });
    if opt_bool(choice, path, "disable_parallel_tool_use")? == Some(true) {
        req.parallel_tool_calls = Some(false);
    }
    Ok(())
}

fn decode_output_config(
    config: &Map<String, Value>,
    req: &mut ChatRequest,
) -> Result<(), WireError> {
    let path = "output_config";
    reject_unknown(config, path, &["format", "effort"])?;
    if let Some(format) = opt_object(config, path, "format")? {
        let fp = join(path, "format");
        reject_unknown(format, &fp, &["type", "schema"])?;
        if req_str(format, &fp, "type")? != "json_schema" {
            return Err(not_supported(join(&fp, "type")));
        }
        let schema = required(format, &fp, "schema")?;
        as_object(schema, &join(&fp, "schema"))?;
        req.response_format = Some(ResponseFormat::JsonSchema {
            name: "response".to_string(),
            schema: schema.clone(),
            strict: None,
        });
    }
    if let Some(effort) = get(config, "effort") {
        str_of(effort, "output_config.effort")?;
        req.extra.insert(
            "output_config".to_string(),
            json!({ "effort": effort.clone() }),
        );
    }
    Ok(())
}

pub(crate) fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

pub(crate) fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and whatever comes later.
        _ => FinishReason::Stop,
    }
}

/// IR usage in Anthropic's shape (see the module doc for the input-token convention).
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens.saturating_sub(u.cached_input_tokens),
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cached_input_tokens,
    })
}

/// Anthropic's usage counters as IR usage.
pub(crate) fn usage_from(input: u64, cache_read: u64, cache_write: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input.saturating_add(cache_read).saturating_add(cache_write),
        output_tokens: output,
        cached_input_tokens: cache_read,
    }
}

pub fn encode_messages_response(r: &ChatResponse) -> Vec<u8> {
    let mut content = Vec::new();
    let mut finish = FinishReason::Stop;
    if let Some(choice) = r.choices.first() {
        finish = choice.finish_reason;
        for part in &choice.message.content {
            if let Part::Text { text } = part {
                if !text.is_empty() {
                    content.push(json!({"type": "text", "text": text}));
                }
            }
        }
        for call in &choice.message.tool_calls {
            content.push(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": util::arguments_value(&call.arguments),
            }));
        }
    }
    let body = json!({
        "id": r.id,
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": null,
        "usage": usage_json(&r.usage.unwrap_or_default()),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Anthropic's error type for an IR error.
pub(crate) fn error_type(e: &ErrorInfo) -> &'static str {
    match e.kind {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::Timeout => "timeout_error",
        ErrorKind::Upstream | ErrorKind::Internal => "api_error",
    }
}

/// The status and kind an Anthropic error type stands for, for errors that arrive without an
/// HTTP status (inside a stream). 529 becomes 503, which every client knows to retry.
pub(crate) fn error_status(error_type: &str) -> (u16, ErrorKind) {
    match error_type {
        "invalid_request_error" => (400, ErrorKind::InvalidRequest),
        "authentication_error" => (401, ErrorKind::Authentication),
        "billing_error" | "permission_error" => (403, ErrorKind::PermissionDenied),
        "not_found_error" => (404, ErrorKind::NotFound),
        "request_too_large" => (413, ErrorKind::PayloadTooLarge),
        "rate_limit_error" => (429, ErrorKind::RateLimited),
        "overloaded_error" => (503, ErrorKind::Unavailable),
        "timeout_error" => (504, ErrorKind::Timeout),
        _ => (502, ErrorKind::Upstream),
    }
}

pub(crate) fn error_json(e: &ErrorInfo) -> Value {
    json!({"type": "error", "error": {"type": error_type(e), "message": e.message}})
}

pub fn encode_error(e: &ErrorInfo) -> Vec<u8> {
    serde_json::to_vec(&error_json(e)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(req.extra["output_config"], json!({"effort": "low"}));
        assert_eq!(req.extra["service_tier"], json!("auto"));
        assert!(req.extra.contains_key("thinking"));
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
                json!({"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]})
            )),
            "messages[1].content[0]"
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
    fn errors_use_anthropics_types() {
        for (kind, status, ty) in [
            (ErrorKind::InvalidRequest, 400, "invalid_request_error"),
            (ErrorKind::Authentication, 401, "authentication_error"),
            (ErrorKind::PermissionDenied, 403, "permission_error"),
            (ErrorKind::NotFound, 404, "not_found_error"),
            (ErrorKind::PayloadTooLarge, 413, "request_too_large"),
            (ErrorKind::RateLimited, 429, "rate_limit_error"),
            (ErrorKind::Upstream, 500, "api_error"),
            (ErrorKind::Unavailable, 503, "overloaded_error"),
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
