//! The client side: OpenAI request bodies into IR, and IR answers and errors back into the
//! shapes the `openai` SDKs parse.
//!
//! Strictness follows OpenAI's own: an unknown top-level parameter is a 400 naming it, as is a
//! deprecated one (`functions`, `function_call`). Inside messages, unknown keys are ignored,
//! because SDK users echo response messages back verbatim (`annotations`, ...).
//!
//! Reasoning: `reasoning_effort` and OpenRouter's `reasoning` object are the IR's reasoning
//! controls. Answers carry reasoning as `reasoning_content` (the text, as DeepSeek and vLLM send
//! it) and OpenRouter's `reasoning_details` (text with its signature and origin `format`), which
//! is how an OpenAI-protocol client hands signed reasoning back; assistant turns are read from
//! `reasoning_details`, else `reasoning_content` or `reasoning`. A refusal stays `refusal`.

use std::fmt;

use serde_json::{Map, Value};

use crate::ir::*;
use crate::wire::json::{
    as_obj, as_str, must_be, parameters_schema, parse_object, required, Json, JsonWriter, Obj,
    Path, R,
};
use crate::wire::{reasoning, WireError};

/// Known OpenAI parameters with no IR equivalent: carried in `extra` for OpenAI-family providers.
const EXTRA_FIELDS: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "safety_identifier",
    "moderation",
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
    "reasoning_effort",
    "reasoning",
    // Not OpenAI's, but what clients of OpenAI-compatible servers (vLLM, TGI, OpenRouter) send.
    "top_k",
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
    req.top_k = o.whole_u32("top_k")?;
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
    req.reasoning = decode_reasoning(&o)?;
    Ok(req)
}

fn decode_effort(v: &str, field: Path<'_>) -> R<Option<Effort>> {
    Ok(Some(match v {
        "none" => return Ok(None),
        "minimal" => Effort::Minimal,
        "low" => Effort::Low,
        "medium" => Effort::Medium,
        "high" => Effort::High,
        "xhigh" => Effort::Xhigh,
        "max" => Effort::Max,
        _ => {
            return Err(must_be(
                field,
                "`none`, `minimal`, `low`, `medium`, `high` or `xhigh`",
            ))
        }
    }))
}

/// `reasoning_effort` (OpenAI) and `reasoning` (OpenRouter: `effort`, `max_tokens`, `enabled`,
/// `exclude`); the object's settings win where both say something.
fn decode_reasoning(o: &Obj<'_, '_>) -> R<Option<Reasoning>> {
    let mut r = Reasoning::default();
    let mut any = false;
    // An OpenAI effort level asks for reasoning at that depth (`none`: no reasoning), unlike
    // Anthropic's `output_config.effort`, which leaves thinking to its own switch.
    if let Some(effort) = o.str("reasoning_effort")? {
        any = true;
        r.effort = decode_effort(effort, o.path("reasoning_effort"))?;
        r.enabled = Some(effort != "none");
    }
    if let Some(obj) = o.obj("reasoning")? {
        any = true;
        obj.reject_unknown(&["effort", "max_tokens", "enabled", "exclude", "summary"])?;
        if let Some(effort) = obj.str("effort")? {
            r.effort = decode_effort(effort, obj.path("effort"))?;
            r.enabled = Some(effort != "none");
        }
        r.budget_tokens = obj.whole_u32("max_tokens")?.or(r.budget_tokens);
        if let Some(enabled) = obj.bool("enabled")? {
            r.enabled = Some(enabled);
        }
        if let Some(exclude) = obj.bool("exclude")? {
            r.visible = Some(!exclude);
        }
        r.summary = obj.string("summary")?;
    }
    Ok(any.then_some(r))
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
    let mut refusal_parts = String::new();
    let content = match o.get("content") {
        None if matches!(role, Role::Assistant) => Vec::new(),
        None => return Err(required(o.path("content"))),
        Some(c) => decode_content(c, o.path("content"), parts, &mut refusal_parts)?,
    };
    let mut msg = Message {
        role,
        content,
        tool_calls: Vec::new(),
        tool_call_id: None,
        name: o.string("name")?,
        is_error: false,
        refusal: (!refusal_parts.is_empty()).then_some(refusal_parts),
    };
    match role {
        Role::Assistant => {
            if o.get("function_call").is_some() {
                return Err(deprecated(o.path("function_call"), "tool_calls"));
            }
            if o.get("audio").is_some() {
                return Err(unsupported(o.path("audio"), "audio output"));
            }
            let refusal = o.str("refusal")?.filter(|r| !r.is_empty());
            if let Some(refusal) = refusal {
                msg.refusal = Some(refusal.to_string());
            }
            msg.content.splice(0..0, reasoning_parts(&o)?);
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

/// Content parts; an assistant turn's `refusal` parts are appended to `refusal` instead.
fn decode_content(
    v: &Json<'_>,
    path: Path<'_>,
    parts: Parts,
    refusal: &mut String,
) -> R<Vec<Part>> {
    match v {
        Json::Str(s) => Ok(text_vec(s)),
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, p) in items.iter().enumerate() {
                let at = path.index(i);
                if parts == Parts::Assistant
                    && p.get("type").and_then(Json::as_str) == Some("refusal")
                {
                    refusal.push_str(as_obj(p, at)?.req_str("refusal")?);
                } else {
                    out.push(decode_part(p, at, parts)?);
                }
            }
            Ok(out)
        }
        _ => Err(must_be(path, "a string or an array of content parts")),
    }
}

/// The reasoning an assistant turn carries: OpenRouter's `reasoning_details` (each entry with its
/// signature or encrypted data and origin), else the plain text of `reasoning_content` or
/// `reasoning`. Entries of an unknown format keep their text but lose their payload.
pub(super) fn reasoning_parts(o: &Obj<'_, '_>) -> R<Vec<Part>> {
    if let Some(details) = o.arr("reasoning_details")? {
        let path = o.path("reasoning_details");
        let mut out = Vec::with_capacity(details.len());
        for (i, d) in details.iter().enumerate() {
            let d = as_obj(d, path.index(i))?;
            let origin = d.str("format")?.and_then(reasoning::format_origin);
            let payload = |v: Option<&str>| {
                v.filter(|s| !s.is_empty() && origin.is_some())
                    .map(str::to_string)
            };
            let part = match d.req_str("type")? {
                "reasoning.text" => Part::Reasoning {
                    text: d.string("text")?.unwrap_or_default(),
                    signature: payload(d.str("signature")?),
                    redacted: None,
                    id: d.string("id")?,
                    origin,
                },
                "reasoning.summary" => Part::Reasoning {
                    text: d.string("summary")?.unwrap_or_default(),
                    signature: None,
                    redacted: None,
                    id: d.string("id")?,
                    origin,
                },
                "reasoning.encrypted" => Part::Reasoning {
                    text: String::new(),
                    signature: None,
                    redacted: payload(d.str("data")?),
                    id: d.string("id")?,
                    origin,
                },
                _ => {
                    return Err(must_be(
                        d.path("type"),
                        "`reasoning.text`, `reasoning.summary` or `reasoning.encrypted`",
                    ))
                }
            };
            out.push(part);
        }
        return Ok(out);
    }
    let text = match o.str("reasoning_content")? {
        Some(t) => Some(t),
        None => o.str("reasoning")?,
    };
    Ok(text
        .filter(|t| !t.is_empty())
        .map(|t| Part::Reasoning {
            text: t.to_string(),
            signature: None,
            redacted: None,
            id: None,
            origin: None,
        })
        .into_iter()
        .collect())
}

fn decode_part(v: &Json<'_>, path: Path<'_>, parts: Parts) -> R<Part> {
    let o = as_obj(v, path)?;
    match (o.req_str("type")?, parts) {
        ("text", _) => Ok(Part::Text {
            text: o.req_str("text")?.to_string(),
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
    Ok(Tool {
        name: f.req_str("name")?.to_string(),
        description: f.string("description")?,
        parameters: parameters_schema(&f)?,
        strict: f.bool("strict")?,
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
    if u.reasoning_tokens != 0 {
        w.key("completion_tokens_details").begin_object();
        w.key("reasoning_tokens")
            .u64(u.reasoning_tokens)
            .end_object();
    }
    w.end_object();
}

/// One `reasoning_details` entry (OpenRouter's shape): text with its signature, or encrypted
/// data, with the origin as `format`. `text` is `None` for an entry that only closes a streamed
/// block (its text went out in earlier deltas).
pub(super) fn write_reasoning_detail(
    w: &mut JsonWriter,
    index: usize,
    text: Option<&str>,
    signature: Option<&str>,
    redacted: Option<&str>,
    id: Option<&str>,
    origin: Option<Origin>,
) {
    w.begin_object();
    match redacted {
        Some(data) => {
            w.key("type").str("reasoning.encrypted");
            w.key("data").str(data);
        }
        None => {
            w.key("type").str("reasoning.text");
            if let Some(text) = text {
                w.key("text").str(text);
            }
            if let Some(sig) = signature {
                w.key("signature").str(sig);
            }
        }
    }
    if let Some(id) = id {
        w.key("id").str(id);
    }
    w.key("format").str(reasoning::format_name(origin));
    w.key("index").u64(index as u64);
    w.end_object();
}

/// `reasoning_content` and `reasoning_details` of an answer's message, when it reasoned.
fn write_reasoning(w: &mut JsonWriter, m: &Message) {
    let parts: Vec<&Part> = m
        .content
        .iter()
        .filter(|p| matches!(p, Part::Reasoning { .. }))
        .collect();
    if parts.is_empty() {
        return;
    }
    let mut text = String::new();
    for p in &parts {
        if let Part::Reasoning { text: t, .. } = p {
            text.push_str(t);
        }
    }
    w.key("reasoning_content").str(&text);
    w.key("reasoning_details").begin_array();
    for (i, p) in parts.iter().enumerate() {
        if let Part::Reasoning {
            text,
            signature,
            redacted,
            id,
            origin,
        } = p
        {
            write_reasoning_detail(
                w,
                i,
                Some(text),
                signature.as_deref(),
                redacted.as_deref(),
                id.as_deref(),
                *origin,
            );
        }
    }
    w.end_array();
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
        let no_text =
            text.is_empty() && (!c.message.tool_calls.is_empty() || c.message.refusal.is_some());
        if no_text {
            w.null();
        } else {
            w.str(&text);
        }
        w.key("refusal").opt_str(c.message.refusal.as_deref());
        write_reasoning(&mut w, &c.message);
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
