//! The client side: OpenAI request bodies into IR, and IR answers and errors back into the
//! shapes the `openai` SDKs parse.
//!
//! Strictness follows OpenAI's own: an unknown top-level parameter is a 400 naming it, as is a
//! deprecated one (`functions`, `function_call`). Inside messages, unknown keys are ignored,
//! because SDK users echo response messages back verbatim (`refusal`, `annotations`, ...).

use std::fmt;

use serde_json::{Map, Value};

use crate::ir::*;
use crate::wire::json::{
    as_obj, as_str, must_be, parameters_schema, parse_object, required, Json, JsonWriter, Obj,
    Path, R,
};
use crate::wire::WireError;

/// Known OpenAI parameters with no IR equivalent: carried in `extra` for OpenAI-family providers.
const EXTRA_FIELDS: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "service_tier",
    "store",
    "metadata",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
];

/// Parameters this module reads itself.
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "stop",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "user",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "stream",
    "stream_options",
];

fn deprecated(field: impl fmt::Display, instead: &str) -> WireError {
    let field = field.to_string();
    let message = format!("`{field}` is deprecated and not supported; use `{instead}`");
    WireError::invalid(field, message)
}

fn unsupported(field: impl fmt::Display, what: &str) -> WireError {
    let field = field.to_string();
    let message = format!("{what} (`{field}`) is not supported");
    WireError::invalid(field, message)
}

pub fn decode_chat_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let map = parse_object(body, "the body")?;
    let o = Obj::root(&map);
    let mut req = ChatRequest::default();
    for (name, value) in map.iter() {
        if value.is_null() || CHAT_FIELDS.contains(&name) {
            continue;
        }
        if EXTRA_FIELDS.contains(&name) {
            req.extra.insert(name.to_string(), value.to_value());
            continue;
        }
        return Err(match name {
            "functions" => deprecated(name, "tools"),
            "function_call" => deprecated(name, "tool_choice"),
            _ => WireError::invalid(
                name,
                format!("Unrecognized request argument supplied: {name}"),
            ),
        });
    }
    if !req.extra.is_empty() {
        req.extra_family = Some(Family::OpenAi);
    }

    req.model = o.req_str("model")?.to_string();
    if req.model.is_empty() {
        return Err(must_be("model", "a non-empty string"));
    }
    let messages = o.arr("messages")?.ok_or_else(|| required("messages"))?;
    if messages.is_empty() {
        return Err(must_be("messages", "a non-empty array"));
    }
    let path = o.path("messages");
    req.messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| decode_message(m, path.index(i)))
        .collect::<R<_>>()?;

    if let Some(tools) = o.arr("tools")? {
        let path = o.path("tools");
        req.tools = tools
            .iter()
            .enumerate()
            .map(|(i, t)| decode_tool(t, path.index(i)))
            .collect::<R<_>>()?;
    }
    req.tool_choice = o
        .get("tool_choice")
        .map(|v| decode_tool_choice(v, o.path("tool_choice")))
        .transpose()?;
    req.parallel_tool_calls = o.bool("parallel_tool_calls")?;
    req.response_format = o
        .obj("response_format")?
        .map(|f| decode_response_format(f, false))
        .transpose()?;
    req.stop = match o.get("stop") {
        None => Vec::new(),
        Some(Json::Str(s)) => vec![s.to_string()],
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| as_str(s, o.path("stop").index(i)).map(str::to_string))
            .collect::<R<_>>()?,
        Some(_) => return Err(must_be("stop", "a string or an array of strings")),
    };
    req.temperature = o.f64("temperature")?;
    req.top_p = o.f64("top_p")?;
    // `max_tokens` is the deprecated spelling; the newer one wins when both are sent.
    let legacy_max = o.u32("max_tokens")?;
    req.max_tokens = o.u32("max_completion_tokens")?.or(legacy_max);
    req.seed = o.i64("seed")?;
    req.user = o.string("user")?;
    req.n = o.u32("n")?;
    req.presence_penalty = o.f64("presence_penalty")?;
    req.frequency_penalty = o.f64("frequency_penalty")?;
    req.stream = o.bool("stream")?.unwrap_or(false);
    if let Some(opts) = o.obj("stream_options")? {
        req.stream_include_usage = opts.bool("include_usage")?.unwrap_or(false);
    }
    Ok(req)
}

/// Which content part types a role may carry.
#[derive(Clone, Copy, PartialEq)]
enum Parts {
    TextOnly,
    Assistant,
    User,
}

fn decode_message(v: &Json<'_>, path: Path<'_>) -> R<Message> {
    let o = as_obj(v, path)?;
    let role = match o.req_str("role")? {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        "function" => return Err(deprecated(o.path("role"), "the `tool` role")),
        other => {
            return Err(WireError::invalid(
                o.path("role"),
                format!("unknown role `{other}`"),
            ))
        }
    };
    let parts = match role {
        Role::User => Parts::User,
        Role::Assistant => Parts::Assistant,
        _ => Parts::TextOnly,
    };
    let content = match o.get("content") {
        None if matches!(role, Role::Assistant) => Vec::new(),
        None => return Err(required(o.path("content"))),
        Some(c) => decode_content(c, o.path("content"), parts)?,
    };
    let mut msg = Message {
        role,
        content,
        tool_calls: Vec::new(),
        tool_call_id: None,
        name: o.string("name")?,
        is_error: false,
        refusal: None,
    };
    match role {
        Role::Assistant => {
            if o.get("function_call").is_some() {
                return Err(deprecated(o.path("function_call"), "tool_calls"));
            }
            if o.get("audio").is_some() {
                return Err(unsupported(o.path("audio"), "audio output"));
            }
            // A refusal echoed back from a response is what the model said; keep it as text.
            if let Some(refusal) = o.str("refusal")? {
                if msg.content.is_empty() && !refusal.is_empty() {
                    msg.content.push(Part::Text {
                        text: refusal.to_string(),
                    });
                }
            }
            if let Some(calls) = o.arr("tool_calls")? {
                let base = o.path("tool_calls");
                msg.tool_calls = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| decode_tool_call(c, base.index(i)))
                    .collect::<R<_>>()?;
            }
        }
        Role::Tool => msg.tool_call_id = Some(o.req_str("tool_call_id")?.to_string()),
        _ => {}
    }
    Ok(msg)
}

fn text_vec(s: &str) -> Vec<Part> {
    if s.is_empty() {
        Vec::new()
    } else {
        vec![Part::Text {
            text: s.to_string(),
        }]
    }
}

fn decode_content(v: &Json<'_>, path: Path<'_>, parts: Parts) -> R<Vec<Part>> {
    match v {
        Json::Str(s) => Ok(text_vec(s)),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, p)| decode_part(p, path.index(i), parts))
            .collect(),
        _ => Err(must_be(path, "a string or an array of content parts")),
    }
}

fn decode_part(v: &Json<'_>, path: Path<'_>, parts: Parts) -> R<Part> {
    let o = as_obj(v, path)?;
    match (o.req_str("type")?, parts) {
        ("text", _) => Ok(Part::Text {
            text: o.req_str("text")?.to_string(),
        }),
        ("refusal", Parts::Assistant) => Ok(Part::Text {
            text: o.req_str("refusal")?.to_string(),
        }),
        ("image_url", Parts::User) => {
            // Mistral and vLLM clients send the URL bare; OpenAI nests it with `detail`.
            let url = match o.get("image_url") {
                Some(Json::Str(url)) => url.as_ref(),
                Some(img) => {
                    let img = as_obj(img, o.path("image_url"))?;
                    if let Some(detail) = img.str("detail")? {
                        if !matches!(detail, "auto" | "low" | "high") {
                            return Err(must_be(img.path("detail"), "`auto`, `low` or `high`"));
                        }
                    }
                    img.req_str("url")?
                }
                None => return Err(required(o.path("image_url"))),
            };
            Ok(Part::Image {
                source: Media::from_url(url),
            })
        }
        ("file", Parts::User) => {
            let file = o.req_obj("file")?;
            if file.get("file_id").is_some() {
                return Err(unsupported(
                    file.path("file_id"),
                    "a reference to an uploaded file",
                ));
            }
            let data = file.req_str("file_data")?;
            // OpenAI documents a data URL; bare base64 is what older examples send, and chat
            // file inputs are PDFs.
            let source = if data.starts_with("data:") {
                Media::from_url(data)
            } else {
                Media::Base64 {
                    media_type: "application/pdf".into(),
                    data: data.to_string(),
                }
            };
            Ok(Part::Document {
                source,
                title: file.string("filename")?,
            })
        }
        ("input_audio", _) => Err(unsupported(path, "audio input")),
        (other, _) => Err(WireError::invalid(
            o.path("type"),
            format!("content part type `{other}` is not allowed here"),
        )),
    }
}

fn decode_tool_call(v: &Json<'_>, path: Path<'_>) -> R<ToolCall> {
    let o = as_obj(v, path)?;
    if let Some(ty) = o.str("type")? {
        if ty != "function" {
            return Err(unsupported(o.path("type"), "a non-function tool call"));
        }
    }
    let f = o.req_obj("function")?;
    Ok(ToolCall {
        id: o.req_str("id")?.to_string(),
        name: f.req_str("name")?.to_string(),
        arguments: f.req_str("arguments")?.to_string(),
    })
}

fn decode_tool(v: &Json<'_>, path: Path<'_>) -> R<Tool> {
    let o = as_obj(v, path)?;
    let ty = o.req_str("type")?;
    if ty != "function" {
        return Err(unsupported(o.path("type"), "a non-function tool"));
    }
    let f = o.req_obj("function")?;
    // `strict`, like image `detail` and schema `description`, is a hint with no IR field: it is
    // type-checked and dropped, since refusing it would turn away ordinary SDK requests.
    f.bool("strict")?;
    Ok(Tool {
        name: f.req_str("name")?.to_string(),
        description: f.string("description")?,
        parameters: parameters_schema(&f)?,
    })
}

fn decode_tool_choice(v: &Json<'_>, path: Path<'_>) -> R<ToolChoice> {
    match v {
        Json::Str(s) => match s.as_ref() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err(must_be(
                path,
                "`auto`, `none`, `required` or a function choice",
            )),
        },
        _ => {
            let o = as_obj(v, path)?;
            match o.req_str("type")? {
                "function" => Ok(ToolChoice::Tool(
                    o.req_obj("function")?.req_str("name")?.to_string(),
                )),
                other => Err(unsupported(
                    o.path("type"),
                    &format!("tool choice type `{other}`"),
                )),
            }
        }
    }
}

/// `response_format` (Chat Completions: the schema nested under `json_schema`, and optional),
/// or with `flat` the Responses API's `text.format` (the schema's fields beside `type`, and the
/// schema required).
pub(crate) fn decode_response_format(o: Obj<'_, '_>, flat: bool) -> R<ResponseFormat> {
    match o.req_str("type")? {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let nested;
            let s = if flat {
                &o
            } else {
                nested = o.req_obj("json_schema")?;
                &nested
            };
            s.str("description")?; // a hint with no IR field, like `strict` on tools
            let schema = match s.get("schema") {
                Some(v @ Json::Object(_)) => v.to_value(),
                Some(_) => return Err(must_be(s.path("schema"), "a JSON Schema object")),
                None if flat => return Err(required(s.path("schema"))),
                None => Value::Object(Map::new()),
            };
            Ok(ResponseFormat::JsonSchema {
                name: s.req_str("name")?.to_string(),
                schema,
                strict: s.bool("strict")?,
            })
        }
        _ => Err(must_be(
            o.path("type"),
            "`text`, `json_object` or `json_schema`",
        )),
    }
}

pub fn decode_embeddings_request(body: &[u8]) -> Result<EmbeddingsRequest, WireError> {
    let map = parse_object(body, "the body")?;
    let o = Obj::root(&map);
    if let Some(name) = map.keys().find(|k| {
        !matches!(
            *k,
            "model" | "input" | "dimensions" | "user" | "encoding_format"
        )
    }) {
        return Err(WireError::invalid(
            name,
            format!("Unrecognized request argument supplied: {name}"),
        ));
    }
    let model = o.req_str("model")?.to_string();
    if model.is_empty() {
        return Err(must_be("model", "a non-empty string"));
    }
    let input = match o.get("input") {
        None => return Err(required("input")),
        Some(Json::Str(s)) => vec![s.to_string()],
        Some(Json::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::Str(s) => Ok(s.to_string()),
                Json::Number(_) | Json::Array(_) => {
                    Err(unsupported(o.path("input").index(i), "token-array input"))
                }
                _ => Err(must_be(o.path("input").index(i), "a string")),
            })
            .collect::<R<_>>()?,
        Some(_) => return Err(must_be("input", "a string or a non-empty array of strings")),
    };
    // The official SDK asks for `base64` whenever the caller names no format, and passes float
    // arrays through untouched; the IR has no place for the format, so both get floats.
    match o.str("encoding_format")? {
        None | Some("float") | Some("base64") => {}
        Some(_) => return Err(must_be("encoding_format", "`float` or `base64`")),
    }
    Ok(EmbeddingsRequest {
        model,
        input,
        dimensions: o.u32("dimensions")?,
        user: o.string("user")?,
    })
}

pub(super) fn finish_reason_str(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

pub(super) fn write_usage(w: &mut JsonWriter, u: &Usage) {
    w.begin_object();
    w.key("prompt_tokens").u64(u.input_tokens);
    w.key("completion_tokens").u64(u.output_tokens);
    w.key("total_tokens")
        .u64(u.input_tokens.saturating_add(u.output_tokens));
    if u.cached_input_tokens != 0 {
        w.key("prompt_tokens_details").begin_object();
        w.key("cached_tokens")
            .u64(u.cached_input_tokens)
            .end_object();
    }
    w.end_object();
}

pub(super) fn write_tool_call(w: &mut JsonWriter, id: &str, name: &str, arguments: &str) {
    w.begin_object();
    w.key("id").str(id);
    w.key("type").str("function");
    w.key("function").begin_object();
    w.key("name").str(name);
    w.key("arguments").str(arguments);
    w.end_object().end_object();
}

pub fn encode_chat_response(r: &ChatResponse) -> Vec<u8> {
    let text_len: usize = r
        .choices
        .iter()
        .flat_map(|c| &c.message.content)
        .map(|p| match p {
            Part::Text { text } => text.len(),
            _ => 0,
        })
        .sum();
    let mut w = JsonWriter::with_capacity(text_len + 256 * (r.choices.len() + 1));
    w.begin_object();
    w.key("id").str(&r.id);
    w.key("object").str("chat.completion");
    w.key("created").u64(r.created);
    w.key("model").str(&r.model);
    w.key("choices").begin_array();
    for c in &r.choices {
        let text = c.message.joined_text();
        w.begin_object();
        w.key("index").u64(c.index.into());
        w.key("message").begin_object();
        w.key("role").str("assistant");
        w.key("content");
        if text.is_empty() && !c.message.tool_calls.is_empty() {
            w.null();
        } else {
            w.str(&text);
        }
        if !c.message.tool_calls.is_empty() {
            w.key("tool_calls").begin_array();
            for call in &c.message.tool_calls {
                write_tool_call(&mut w, &call.id, &call.name, &call.arguments);
            }
            w.end_array();
        }
        w.end_object();
        w.key("logprobs").null();
        w.key("finish_reason")
            .str(finish_reason_str(c.finish_reason))
            .end_object();
    }
    w.end_array();
    if let Some(u) = &r.usage {
        w.key("usage");
        write_usage(&mut w, u);
    }
    w.end_object();
    w.into_bytes()
}

pub fn encode_embeddings_response(r: &EmbeddingsResponse) -> Vec<u8> {
    let floats: usize = r.data.iter().map(Vec::len).sum();
    let mut w = JsonWriter::with_capacity(floats * 20 + 128 * (r.data.len() + 1));
    w.begin_object();
    w.key("object").str("list");
    w.key("data").begin_array();
    for (i, e) in r.data.iter().enumerate() {
        w.begin_object();
        w.key("object").str("embedding");
        w.key("index").u64(i as u64);
        w.key("embedding").begin_array();
        for x in e {
            w.f64(f64::from(*x));
        }
        w.end_array().end_object();
    }
    w.end_array();
    w.key("model").str(&r.model);
    // The SDK's response type requires `usage`; embeddings have no output tokens.
    let u = r.usage.unwrap_or_default();
    w.key("usage").begin_object();
    w.key("prompt_tokens").u64(u.input_tokens);
    w.key("total_tokens").u64(u.input_tokens);
    w.end_object().end_object();
    w.into_bytes()
}

/// `{"error": {...}}` as OpenAI sends it. `type` and `code` follow what the API really returns
/// per status (`invalid_request_error` for 4xx with `invalid_api_key` on 401, `requests` +
/// `rate_limit_exceeded` on 429, `server_error` for 5xx); the SDK picks its exception class
/// from the HTTP status, and mid-stream from the mere presence of `error`.
pub(super) fn write_error(w: &mut JsonWriter, e: &ErrorInfo) {
    let (ty, code) = match e.kind {
        ErrorKind::Authentication => ("invalid_request_error", Some("invalid_api_key")),
        ErrorKind::RateLimited => ("requests", Some("rate_limit_exceeded")),
        ErrorKind::InvalidRequest
        | ErrorKind::PermissionDenied
        | ErrorKind::NotFound
        | ErrorKind::PayloadTooLarge => ("invalid_request_error", None),
        ErrorKind::Upstream | ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Internal => {
            ("server_error", None)
        }
    };
    w.begin_object();
    w.key("error").begin_object();
    w.key("message").str(&e.message);
    w.key("type").str(ty);
    w.key("param").opt_str(e.field.as_deref());
    w.key("code").opt_str(code);
    w.end_object().end_object();
}

pub fn encode_error(e: &ErrorInfo) -> Vec<u8> {
    let mut w = JsonWriter::with_capacity(e.message.len() + 128);
    write_error(&mut w, e);
    w.into_bytes()
}

/// The text a provider put in its error body, in any of the shapes OpenAI-style servers use:
/// `{"error": {"message"}}` (OpenAI, Azure), `{"error": "..."}`, `{"message"}` (Mistral,
/// older vLLM) or FastAPI's `{"detail"}`.
pub(super) fn provider_error_message(v: &Json<'_>) -> Option<String> {
    let text = |v: Option<&Json<'_>>| v.and_then(Json::as_str).map(str::to_string);
    match v.get("error") {
        Some(Json::Str(s)) => return Some(s.to_string()),
        Some(e @ Json::Object(_)) => return text(e.get("message")),
        _ => {}
    }
    if let Some(m) = text(v.get("message")) {
        return Some(m);
    }
    match v.get("detail") {
        Some(Json::Str(s)) => Some(s.to_string()),
        Some(Json::Array(items)) => {
            let msgs: Vec<&str> = items
                .iter()
                .filter_map(|i| i.get("msg").and_then(Json::as_str))
                .collect();
            (!msgs.is_empty()).then(|| msgs.join("; "))
        }
        _ => None,
    }
}
