//! Anthropic's Messages API as a client protocol: request bodies into IR, and IR answers and
//! errors back into the shapes the `anthropic` SDKs parse.

use crate::ir::*;
use crate::wire::json::{
    as_obj, must_be, not_supported, parse_object, required, strings, Json, JsonWriter, Obj, Path,
};
use crate::wire::{args, media, part_size, reasoning, WireError};

/// Request fields this module reads into the IR.
const IR_FIELDS: &[&str] = &[
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
    "thinking",
];

/// Anthropic request fields with no IR equivalent that Anthropic providers take verbatim
/// (`extra`); other providers drop or refuse them by name (see `wire::drop`). The beta ones
/// come with an `anthropic-beta` header, which reaches Anthropic providers too.
const PASSTHROUGH: &[&str] = &[
    "cache_control",
    "service_tier",
    "inference_geo",
    "container",
    "speed",
    "diagnostics",
    "user_profile_id",
    "workspace_id",
    "context_management",
    "mcp_servers",
    "compaction",
    "fallbacks",
    "billing_policy",
    "fallback_credit_token",
];

/// The error code Anthropic's SDK answers by sending the whole history again, unthreaded (the
/// tool runner does; `client.beta.messages.thread()` raises it).
const THREAD_UNSUPPORTED: &str = "thread_unsupported_request";

/// What `count_tokens` takes: the conversation and what shapes the prompt, no generation
/// settings.
const COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "output_config",
    "thinking",
];

/// The passthrough fields `count_tokens` takes too (the others only shape generation).
pub(super) const COUNT_PASSTHROUGH: &[&str] = &[
    "cache_control",
    "speed",
    "user_profile_id",
    "workspace_id",
    "context_management",
    "mcp_servers",
];

pub fn decode_messages_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    decode(body, false)
}

/// `POST /v1/messages/count_tokens`: the conversation, without generation settings.
pub fn decode_count_tokens_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    decode(body, true)
}

fn decode(body: &[u8], count: bool) -> Result<ChatRequest, WireError> {
    let map = parse_object(body, "the request body")?;
    let root = Obj::root(&map);
    if count {
        root.reject_unknown(&[COUNT_FIELDS, COUNT_PASSTHROUGH].concat())?;
    } else {
        let allowed: Vec<&str> = [IR_FIELDS, PASSTHROUGH, &["thread"]].concat();
        root.reject_unknown(&allowed)?;
    }
    // A conversation held by the server between requests (message threads) would keep the
    // history out of weir's reach: PII placeholders, failover to another provider and the
    // cache all need the whole history in each request.
    if root
        .get("thread")
        .is_some_and(|t| t.as_bool() != Some(false))
    {
        return Err(WireError::Declined {
            field: "thread".into(),
            message: "this gateway holds no conversation between requests (message threads): \
                      send the whole history"
                .into(),
            code: THREAD_UNSUPPORTED,
        });
    }
    let mut req = ChatRequest {
        model: root.req_str("model")?.to_string(),
        ..Default::default()
    };
    // Anthropic requires it; accepting its absence would make the answer's length depend on
    // whichever provider serves the request.
    if !count {
        req.max_tokens = Some(
            root.whole_u32("max_tokens")?
                .ok_or_else(|| required("max_tokens"))?,
        );
    }
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
            let tool = decode_tool(&as_obj(t, path.index(i))?, i, &mut req.extra)?;
            req.tools.push(tool);
        }
    }
    if let Some(choice) = root.obj("tool_choice")? {
        decode_tool_choice(&choice, &mut req)?;
    }
    if let Some(thinking) = root.obj("thinking")? {
        req.reasoning = Some(decode_thinking(&thinking)?);
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

/// `thinking` as IR reasoning (see `wire::reasoning` for the other direction's table).
fn decode_thinking(t: &Obj<'_, '_>) -> Result<Reasoning, WireError> {
    let kind = t.req_str("type")?;
    let allowed: &[&str] = match kind {
        "enabled" => &["type", "budget_tokens", "display"],
        "adaptive" => &["type", "display"],
        "disabled" | "between_tools" => &["type"],
        _ => {
            return Err(must_be(
                t.path("type"),
                "`enabled`, `adaptive`, `disabled` or `between_tools`",
            ))
        }
    };
    t.reject_unknown(allowed)?;
    let visible = match t.str("display")? {
        None => None,
        Some("summarized") => Some(true),
        Some("omitted") => Some(false),
        Some(_) => return Err(must_be(t.path("display"), "`summarized` or `omitted`")),
    };
    Ok(Reasoning {
        enabled: Some(kind != "disabled"),
        budget_tokens: match kind {
            "enabled" => Some(
                t.whole_u32("budget_tokens")?
                    .ok_or_else(|| required(t.path("budget_tokens")))?,
            ),
            _ => None,
        },
        adaptive: kind == "adaptive",
        between_tools: kind == "between_tools",
        visible,
        ..Default::default()
    })
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
            (Role::Assistant, "thinking") => msg.content.push(decode_thinking_block(&block)?),
            (Role::Assistant, "redacted_thinking") => {
                block.reject_unknown(&["type", "data"])?;
                let (origin, data) = reasoning::untag(Origin::Anthropic, block.req_str("data")?)
                    .ok_or_else(|| must_be(block.path("data"), "a non-empty string"))?;
                msg.content.push(Part::Reasoning {
                    text: String::new(),
                    signature: None,
                    redacted: Some(data),
                    id: None,
                    origin: Some(origin),
                });
            }
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

/// A thinking block of the history: its signature (and so its origin) as [`reasoning::untag`]
/// reads it; an empty signature leaves it unsigned.
fn decode_thinking_block(block: &Obj<'_, '_>) -> Result<Part, WireError> {
    block.reject_unknown(&["type", "thinking", "signature", "cache_control"])?;
    let signed = reasoning::untag(Origin::Anthropic, block.req_str("signature")?);
    let (origin, signature) = match signed {
        Some((o, s)) => (Some(o), Some(s)),
        None => (None, None),
    };
    Ok(Part::Reasoning {
        text: block.req_str("thinking")?.to_string(),
        signature,
        redacted: None,
        id: None,
        origin,
    })
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
    block.reject_unknown(&[
        "type",
        "id",
        "name",
        "input",
        "cache_control",
        "caller",
        "toolset_name",
    ])?;
    // The tool runner echoes `caller`; `direct` (the model called the tool itself) is what every
    // provider's tool calls are. Calls made from inside a server tool, or through an MCP toolset,
    // need those server features, which weir does not offer.
    if let Some(caller) = block.obj("caller")? {
        if caller.req_str("type")? != "direct" {
            return Err(not_supported(caller.path("type")));
        }
    }
    if block.get("toolset_name").is_some() {
        return Err(not_supported(block.path("toolset_name")));
    }
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

/// Tool fields only Anthropic providers take, carried as `extra` under `tools[i].<field>`.
const TOOL_PASSTHROUGH: &[&str] = &["cache_control", "eager_input_streaming", "input_examples"];

fn decode_tool(
    tool: &Obj<'_, '_>,
    i: usize,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<Tool, WireError> {
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
        "strict",
        "allowed_callers",
        "defer_loading",
        "eager_input_streaming",
        "input_examples",
    ])?;
    // Callers other than `direct` are server tools, and deferred loading needs the tool search
    // server tool: neither exists without those server features.
    if let Some(callers) = tool.get("allowed_callers") {
        let path = tool.path("allowed_callers");
        if strings(callers, path)?.iter().any(|c| c != "direct") {
            return Err(not_supported(path));
        }
    }
    if tool.bool("defer_loading")? == Some(true) {
        return Err(not_supported(tool.path("defer_loading")));
    }
    for key in TOOL_PASSTHROUGH {
        if let Some(v) = tool.get(key) {
            extra.insert(format!("tools[{i}].{key}"), v.to_value());
        }
    }
    let schema = tool.req("input_schema")?;
    as_obj(schema, tool.path("input_schema"))?;
    Ok(Tool {
        name: tool.req_str("name")?.to_string(),
        description: tool.string("description")?,
        parameters: schema.to_value(),
        strict: tool.bool("strict")?,
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
        let effort = match effort {
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::Xhigh,
            "max" => Effort::Max,
            _ => {
                return Err(must_be(
                    config.path("effort"),
                    "`low`, `medium`, `high`, `xhigh` or `max`",
                ))
            }
        };
        req.reasoning.get_or_insert_with(Reasoning::default).effort = Some(effort);
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

/// A reasoning part as the thinking block an Anthropic client reads: its payload tagged with
/// its origin when that is not Anthropic (see `wire::reasoning`); unsigned reasoning gets an
/// empty signature, which the SDK's type requires and which marks it unsigned on the way back.
pub(super) fn write_thinking_block(
    w: &mut JsonWriter,
    text: &str,
    signature: Option<&str>,
    redacted: Option<&str>,
    origin: Option<Origin>,
) {
    w.begin_object();
    match redacted {
        Some(data) => {
            w.key("type").str("redacted_thinking");
            w.key("data")
                .str(&reasoning::tag(origin, Origin::Anthropic, data));
        }
        None => {
            w.key("type").str("thinking");
            w.key("thinking").str(text);
            let sig = signature.map(|s| reasoning::tag(origin, Origin::Anthropic, s));
            w.key("signature").str(sig.as_deref().unwrap_or(""));
        }
    }
    w.end_object();
}

pub fn encode_messages_response(r: &ChatResponse) -> Vec<u8> {
    let choice = r.choices.first();
    let size: usize = choice.map_or(0, |c| {
        let calls: usize = c.message.tool_calls.iter().map(|t| t.arguments.len()).sum();
        let parts: usize = c.message.content.iter().map(part_size).sum();
        parts + calls
    });
    let mut w = JsonWriter::with_capacity(size + 512);
    w.begin_object();
    w.key("id").str(&r.id);
    w.key("type").str("message");
    w.key("role").str("assistant");
    w.key("model").str(&r.model);
    w.key("content").begin_array();
    let mut refused = false;
    if let Some(choice) = choice {
        for part in &choice.message.content {
            match part {
                // Reasoning with nothing to show or send back (an OpenAI reasoning item known
                // only by its id) is no block: streams open none for it either.
                Part::Reasoning {
                    text,
                    signature: None,
                    redacted: None,
                    ..
                } if text.is_empty() => {}
                Part::Reasoning {
                    text,
                    signature,
                    redacted,
                    origin,
                    ..
                } => write_thinking_block(
                    &mut w,
                    text,
                    signature.as_deref(),
                    redacted.as_deref(),
                    *origin,
                ),
                Part::Text { text } if !text.is_empty() => {
                    w.begin_object();
                    w.key("type").str("text");
                    w.key("text").str(text).end_object();
                }
                _ => {}
            }
        }
        // Anthropic has no refusal field: the refusal is the answer's text, and the stop
        // reason says the model declined.
        if let Some(refusal) = &choice.message.refusal {
            refused = true;
            w.begin_object();
            w.key("type").str("text");
            w.key("text").str(refusal).end_object();
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
    let finish = match choice {
        _ if refused => FinishReason::ContentFilter,
        Some(c) => c.finish_reason,
        None => FinishReason::Stop,
    };
    w.key("stop_reason").str(stop_reason(finish));
    w.key("stop_sequence").null();
    w.key("usage");
    write_usage(&mut w, &r.usage.unwrap_or_default());
    w.end_object();
    w.into_bytes()
}

/// `count_tokens`' answer.
pub fn encode_token_count(t: &TokenCount) -> Vec<u8> {
    let mut w = JsonWriter::with_capacity(32);
    w.begin_object();
    w.key("input_tokens").u64(t.input_tokens).end_object();
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
/// HTTP status (inside a stream). Overloaded is Anthropic's own 529, which clients of other
/// protocols see as 503 (`ClientApi::status`).
pub(super) fn error_status(error_type: &str) -> (u16, ErrorKind) {
    match error_type {
        "invalid_request_error" => (400, ErrorKind::InvalidRequest),
        "authentication_error" => (401, ErrorKind::Authentication),
        "billing_error" | "permission_error" => (403, ErrorKind::PermissionDenied),
        "not_found_error" => (404, ErrorKind::NotFound),
        "request_too_large" => (413, ErrorKind::PayloadTooLarge),
        "rate_limit_error" => (429, ErrorKind::RateLimited),
        "overloaded_error" => (529, ErrorKind::Unavailable),
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
    if let Some(code) = &e.code {
        w.key("details").begin_object();
        w.key("error_code").str(code);
        if let Some(field) = &e.field {
            w.key("unsupported").begin_array().str(field).end_array();
        }
        w.end_object();
    }
    w.end_object().end_object();
}

pub fn encode_error(e: &ErrorInfo) -> Vec<u8> {
    let mut w = JsonWriter::with_capacity(e.message.len() + 96);
    write_error(&mut w, e);
    w.into_bytes()
}
