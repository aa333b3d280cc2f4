//! Anthropic's Messages API as a client protocol: request bodies into IR, and IR answers and
//! errors back into the shapes the `anthropic` SDKs parse.

use crate::ir::*;
use crate::wire::json::{
    as_obj, must_be, not_supported, parse_object, required, strings, Json, JsonWriter, Obj, Path,
};
use crate::wire::{args, media, WireError};
use serde_json::json;

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
    let map = parse_object(body, "the request body")?;
    let root = Obj::root(&map);
    root.reject_unknown(TOP_FIELDS)?;
    let mut req = ChatRequest {
        model: root.req_str("model")?.to_string(),
        ..Default::default()
    };
    // Anthropic requires it; accepting its absence would make the answer's length depend on
    // whichever provider serves the request.
    req.max_tokens = Some(
        root.whole_u32("max_tokens")?
            .ok_or_else(|| required("max_tokens"))?,
    );
    if let Some(system) = root.get("system") {
        let system = decode_system(system, root.path("system"))?;
        // An empty system prompt says nothing, and some providers reject an empty one.
        if !system.joined_text().is_empty() {
            req.messages.push(system);
        }
    }
    let messages = root.arr("messages")?.ok_or_else(|| required("messages"))?;
    let path = root.path("messages");
    for (i, m) in messages.iter().enumerate() {
        decode_message(&as_obj(m, path.index(i))?, &mut req.messages)?;
    }
    if let Some(stops) = root.get("stop_sequences") {
        req.stop = strings(stops, root.path("stop_sequences"))?;
    }
    req.temperature = root.f64("temperature")?;
    req.top_p = root.f64("top_p")?;
    req.top_k = root.whole_u32("top_k")?;
    if let Some(meta) = root.obj("metadata")? {
        meta.reject_unknown(&["user_id"])?;
        req.user = meta.string("user_id")?;
    }
    req.stream = root.bool("stream")?.unwrap_or(false);
    if let Some(tools) = root.arr("tools")? {
        let path = root.path("tools");
        for (i, t) in tools.iter().enumerate() {
            req.tools.push(decode_tool(&as_obj(t, path.index(i))?)?);
        }
    }
    if let Some(choice) = root.obj("tool_choice")? {
        decode_tool_choice(&choice, &mut req)?;
    }
    if let Some(config) = root.obj("output_config")? {
        decode_output_config(&config, &mut req)?;
    }
    for key in PASSTHROUGH {
        if let Some(v) = root.get(key) {
            req.extra.insert((*key).to_string(), v.to_value());
        }
    }
    if !req.extra.is_empty() {
        req.extra_family = Some(Family::Anthropic);
    }
    Ok(req)
}

fn decode_system(v: &Json<'_>, path: Path<'_>) -> Result<Message, WireError> {
    let content = match v {
        Json::Str(s) => vec![Part::Text {
            text: s.to_string(),
        }],
        Json::Array(blocks) => {
            let mut parts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let block = as_obj(b, path.index(i))?;
                match block.req_str("type")? {
                    "text" => parts.push(decode_text(&block)?),
                    other => {
                        return Err(WireError::invalid(
                            block.path("type"),
                            format!("system blocks must be `text`, not `{other}`"),
                        ))
                    }
                }
            }
            parts
        }
        _ => return Err(must_be(path, "a string or an array of text blocks")),
    };
    Ok(Message {
        content,
        ..Message::text(Role::System, "")
    })
}

fn decode_message(obj: &Obj<'_, '_>, out: &mut Vec<Message>) -> Result<(), WireError> {
    obj.reject_unknown(&["role", "content"])?;
    let role = match obj.req_str("role")? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return Err(must_be(obj.path("role"), "`user` or `assistant`")),
    };
    let content_path = obj.path("content");
    let blocks = match obj.req("content")? {
        Json::Str(s) => {
            out.push(Message::text(role, s.as_ref()));
            return Ok(());
        }
        Json::Array(blocks) => blocks,
        _ => {
            return Err(must_be(
                content_path,
                "a string or an array of content blocks",
            ))
        }
    };
    let mut msg = Message {
        content: Vec::new(),
        ..Message::text(role, "")
    };
    let mut emitted = false;
    for (j, b) in blocks.iter().enumerate() {
        let block = as_obj(b, content_path.index(j))?;
        match (role, block.req_str("type")?) {
            (_, "text") => msg.content.push(decode_text(&block)?),
            (_, "image") => msg.content.push(decode_image(&block)?),
            (_, "document") => msg.content.push(decode_document(&block)?),
            (Role::Assistant, "tool_use") => msg.tool_calls.push(decode_tool_use(&block)?),
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
                out.push(decode_tool_result(&block)?);
                emitted = true;
            }
            (_, "thinking" | "redacted_thinking") => return Err(not_supported(block.path)),
            (_, other) => {
                return Err(WireError::invalid(
                    block.path("type"),
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

fn decode_text(block: &Obj<'_, '_>) -> Result<Part, WireError> {
    block.reject_unknown(&["type", "text", "cache_control", "citations"])?;
    let cited = match block.get("citations") {
        None => false,
        Some(Json::Array(list)) => !list.is_empty(),
        Some(_) => true,
    };
    if cited {
        return Err(not_supported(block.path("citations")));
    }
    Ok(Part::Text {
        text: block.req_str("text")?.to_string(),
    })
}

fn decode_image(block: &Obj<'_, '_>) -> Result<Part, WireError> {
    block.reject_unknown(&["type", "source", "cache_control"])?;
    let source = decode_source(block, &["base64", "url"])?;
    Ok(Part::Image { source })
}

fn decode_document(block: &Obj<'_, '_>) -> Result<Part, WireError> {
    block.reject_unknown(&[
        "type",
        "source",
        "title",
        "context",
        "citations",
        "cache_control",
    ])?;
    if block.get("context").is_some() {
        return Err(not_supported(block.path("context")));
    }
    if let Some(c) = block.obj("citations")? {
        if c.bool("enabled")? == Some(true) {
            return Err(not_supported(block.path("citations")));
        }
    }
    let source = decode_source(block, &["base64", "url", "text"])?;
    Ok(Part::Document {
        source,
        title: block.string("title")?,
    })
}

/// An image or document `source`. Plain-text documents are carried as base64 `text/plain` so
/// every provider sees a document, not loose prompt text.
fn decode_source(block: &Obj<'_, '_>, kinds: &[&str]) -> Result<Media, WireError> {
    let source = block.req_obj("source")?;
    let kind = source.req_str("type")?;
    if !kinds.contains(&kind) {
        return Err(not_supported(source.path("type")));
    }
    if kind == "url" {
        source.reject_unknown(&["type", "url"])?;
        return Ok(Media::Url {
            url: source.req_str("url")?.to_string(),
        });
    }
    source.reject_unknown(&["type", "media_type", "data"])?;
    let media_type = source.req_str("media_type")?.to_string();
    let data = source.req_str("data")?;
    let data = if kind == "text" {
        media::base64_encode(data.as_bytes())
    } else {
        data.to_string()
    };
    Ok(Media::Base64 { media_type, data })
}

fn decode_tool_use(block: &Obj<'_, '_>) -> Result<ToolCall, WireError> {
    block.reject_unknown(&["type", "id", "name", "input", "cache_control"])?;
    let input = block.req("input")?;
    if !input.is_object() {
        return Err(must_be(block.path("input"), "an object"));
    }
    Ok(ToolCall {
        id: block.req_str("id")?.to_string(),
        name: block.req_str("name")?.to_string(),
        arguments: input.to_text(),
    })
}

fn decode_tool_result(block: &Obj<'_, '_>) -> Result<Message, WireError> {
    block.reject_unknown(&[
        "type",
        "tool_use_id",
        "content",
        "is_error",
        "cache_control",
    ])?;
    let mut content = Vec::new();
    match block.get("content") {
        None => {}
        Some(Json::Str(s)) => content.push(Part::Text {
            text: s.to_string(),
        }),
        Some(Json::Array(blocks)) => {
            let cp = block.path("content");
            for (k, b) in blocks.iter().enumerate() {
                let inner = as_obj(b, cp.index(k))?;
                content.push(match inner.req_str("type")? {
                    "text" => decode_text(&inner)?,
                    "image" => decode_image(&inner)?,
                    "document" => decode_document(&inner)?,
                    _ => return Err(not_supported(inner.path("type"))),
                });
            }
        }
        Some(_) => {
            return Err(must_be(
                block.path("content"),
                "a string or an array of content blocks",
            ))
        }
    }
    Ok(Message {
        role: Role::Tool,
        content,
        tool_calls: Vec::new(),
        tool_call_id: Some(block.req_str("tool_use_id")?.to_string()),
        name: None,
        is_error: block.bool("is_error")?.unwrap_or(false),
        refusal: None,
    })
}

fn decode_tool(tool: &Obj<'_, '_>) -> Result<Tool, WireError> {
    // Server tools (web search, code execution, ...) run inside Anthropic; no other provider
    // can honour them, so they are refused before their own fields are judged unknown.
    if let Some(kind) = tool.str("type")? {
        if kind != "custom" {
            return Err(not_supported(tool.path("type")));
        }
    }
    tool.reject_unknown(&[
        "type",
        "name",
        "description",
        "input_schema",
        "cache_control",
    ])?;
    let schema = tool.req("input_schema")?;
    as_obj(schema, tool.path("input_schema"))?;
    Ok(Tool {
        name: tool.req_str("name")?.to_string(),
        description: tool.string("description")?,
        parameters: schema.to_value(),
    })
}

fn decode_tool_choice(choice: &Obj<'_, '_>, req: &mut ChatRequest) -> Result<(), WireError> {
    choice.reject_unknown(&["type", "name", "disable_parallel_tool_use"])?;
    req.tool_choice = Some(match choice.req_str("type")? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(choice.req_str("name")?.to_string()),
        _ => {
            return Err(must_be(
                choice.path("type"),
                "`auto`, `any`, `tool` or `none`",
            ))
        }
    });
    if choice.bool("disable_parallel_tool_use")? == Some(true) {
        req.parallel_tool_calls = Some(false);
    }
    Ok(())
}

fn decode_output_config(config: &Obj<'_, '_>, req: &mut ChatRequest) -> Result<(), WireError> {
    config.reject_unknown(&["format", "effort"])?;
    if let Some(format) = config.obj("format")? {
        format.reject_unknown(&["type", "schema"])?;
        if format.req_str("type")? != "json_schema" {
            return Err(not_supported(format.path("type")));
        }
        let schema = format.req("schema")?;
        as_obj(schema, format.path("schema"))?;
        req.response_format = Some(ResponseFormat::JsonSchema {
            name: "response".to_string(),
            schema: schema.to_value(),
            strict: None,
        });
    }
    if let Some(effort) = config.str("effort")? {
        req.extra
            .insert("output_config".to_string(), json!({ "effort": effort }));
    }
    Ok(())
}

pub(super) fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

pub(super) fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and whatever comes later.
        _ => FinishReason::Stop,
    }
}

/// IR usage in Anthropic's shape (see the module doc for the input-token convention).
pub(super) fn write_usage(w: &mut JsonWriter, u: &Usage) {
    w.begin_object();
    w.key("input_tokens")
        .u64(u.input_tokens.saturating_sub(u.cached_input_tokens));
    w.key("output_tokens").u64(u.output_tokens);
    w.key("cache_read_input_tokens")
        .u64(u.cached_input_tokens)
        .end_object();
}

/// Anthropic's usage counters as IR usage.
pub(super) fn usage_from(input: u64, cache_read: u64, cache_write: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input.saturating_add(cache_read).saturating_add(cache_write),
        output_tokens: output,
        cached_input_tokens: cache_read,
        reasoning_tokens: 0,
    }
}

pub fn encode_messages_response(r: &ChatResponse) -> Vec<u8> {
    let choice = r.choices.first();
    let size: usize = choice.map_or(0, |c| {
        let calls: usize = c.message.tool_calls.iter().map(|t| t.arguments.len()).sum();
        c.message.joined_text().len() + calls
    });
    let mut w = JsonWriter::with_capacity(size + 512);
    w.begin_object();
    w.key("id").str(&r.id);
    w.key("type").str("message");
    w.key("role").str("assistant");
    w.key("model").str(&r.model);
    w.key("content").begin_array();
    if let Some(choice) = choice {
        for part in &choice.message.content {
            if let Part::Text { text } = part {
                if !text.is_empty() {
                    w.begin_object();
                    w.key("type").str("text");
                    w.key("text").str(text).end_object();
                }
            }
        }
        for call in &choice.message.tool_calls {
            w.begin_object();
            w.key("type").str("tool_use");
            w.key("id").str(&call.id);
            w.key("name").str(&call.name);
            w.key("input");
            args::write(&mut w, &call.arguments);
            w.end_object();
        }
    }
    w.end_array();
    let finish = choice.map_or(FinishReason::Stop, |c| c.finish_reason);
    w.key("stop_reason").str(stop_reason(finish));
    w.key("stop_sequence").null();
    w.key("usage");
    write_usage(&mut w, &r.usage.unwrap_or_default());
    w.end_object();
    w.into_bytes()
}

/// Anthropic's error type for an IR error.
pub(super) fn error_type(e: &ErrorInfo) -> &'static str {
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
pub(super) fn error_status(error_type: &str) -> (u16, ErrorKind) {
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

pub(super) fn write_error(w: &mut JsonWriter, e: &ErrorInfo) {
    w.begin_object();
    w.key("type").str("error");
    w.key("error").begin_object();
    w.key("type").str(error_type(e));
    w.key("message").str(&e.message);
    w.end_object().end_object();
}

pub fn encode_error(e: &ErrorInfo) -> Vec<u8> {
    let mut w = JsonWriter::with_capacity(e.message.len() + 96);
    write_error(&mut w, e);
    w.into_bytes()
}
