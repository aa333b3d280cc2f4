//! The provider side: IR requests into `POST {base_path}/responses` for `openai-responses`
//! targets (OpenAI, and Azure OpenAI's v1 API with `api-version` when configured), and their
//! complete answers back into IR.
//!
//! A request from a Responses client carries the client's extras, which go verbatim (its own
//! `tools`, `tool_choice`, `text` and `reasoning` spelling wins over the IR's); a Chat
//! Completions client's extras go where the Responses API has them (`verbosity` →
//! `text.verbosity`, `reasoning_effort` → `reasoning.effort`) or are refused. Anything the
//! Responses API cannot express (`stop`, `seed`, `n`, penalties, `top_k`) is refused by name.
//! Requests from other clients ask for `store: false`: Chat Completions stores nothing unless
//! asked, and neither may a translation of it.

use serde_json::Value;

use super::{effort_name, finish_of, reasoning_text, TARGET};
use crate::ir::*;
use crate::wire::json::{as_obj, parse_object, upstream, Json, JsonWriter, Obj, Path, R};
use crate::wire::{
    body_size_hint, media, openai, reject_foreign_extra, Outgoing, ProviderSpec, WireError,
};

/// Chat Completions extras the Responses API takes under the same name.
const CHAT_EXTRA: &[&str] = &[
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "store",
];

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let Request::Chat(c) = req else {
        return Err(WireError::unsupported("embeddings", TARGET));
    };
    let mut path = format!("{}/responses", spec.base_path);
    if let Some(v) = &spec.api_version {
        path.push_str("?api-version=");
        path.push_str(&openai::percent_encode(v));
    }
    Ok(Outgoing {
        path,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body(c)?,
    })
}

fn body(c: &ChatRequest) -> R<Vec<u8>> {
    let native = c.extra_family == Some(Family::OpenAiResponses);
    if !native {
        reject_foreign_extra(c, Family::OpenAi, TARGET)?;
    }
    let extra = |name: &str| c.extra.get(name).filter(|v| !v.is_null());
    let own = |name: &str| native && extra(name).is_some();
    let mut w = JsonWriter::with_capacity(body_size_hint(c));
    w.begin_object();
    w.key("model").str(&c.model);
    let mut messages = c.messages.as_slice();
    if let Some((first, rest)) = messages.split_first() {
        if first.role == Role::System {
            w.key("instructions")
                .str(&text_only(first, Path::field("instructions"))?);
            messages = rest;
        }
    }
    w.key("input").begin_array();
    let skipped = c.messages.len() - messages.len();
    let base = Path::field("messages");
    for (i, m) in messages.iter().enumerate() {
        write_message(m, base.index(i + skipped), &mut w)?;
    }
    w.end_array();
    if !c.tools.is_empty() && !own("tools") {
        w.key("tools");
        write_function_tools(&mut w, &c.tools);
    }
    if c.tool_choice.is_some() && !own("tool_choice") {
        w.key("tool_choice");
        write_tool_choice(&mut w, c.tool_choice.as_ref());
    }
    if let Some(p) = c.parallel_tool_calls {
        w.key("parallel_tool_calls").bool(p);
    }
    if !own("text") {
        let verbosity = extra("verbosity").filter(|_| !native);
        if c.response_format.is_some() || verbosity.is_some() {
            w.key("text").begin_object();
            if let Some(f) = &c.response_format {
                w.key("format");
                write_format(&mut w, f);
            }
            if let Some(v) = verbosity {
                w.key("verbosity").value(v);
            }
            w.end_object();
        }
    }
    if !own("reasoning") {
        write_reasoning(&mut w, c, extra("reasoning_effort").filter(|_| !native))?;
    }
    if let Some(n) = c.max_tokens {
        w.key("max_output_tokens").u64(n.into());
    }
    if let Some(t) = c.temperature {
        w.key("temperature").f64(t);
    }
    if let Some(p) = c.top_p {
        w.key("top_p").f64(p);
    }
    if let Some(user) = &c.user {
        w.key("user").str(user);
    }
    if c.stream {
        w.key("stream").bool(true);
        // weir writes its own events: the provider's padding would only cost bandwidth.
        w.key("stream_options").begin_object();
        w.key("include_obfuscation").bool(false).end_object();
    }
    refuse_inexpressible(c)?;
    if native {
        for (name, v) in &c.extra {
            w.key(name).value(v);
        }
    } else {
        for (name, v) in &c.extra {
            match name.as_str() {
                "verbosity" | "reasoning_effort" => {}
                n if CHAT_EXTRA.contains(&n) => {
                    w.key(n).value(v);
                }
                _ => return Err(WireError::unsupported(name.clone(), TARGET)),
            }
        }
        if extra("store").is_none() {
            w.key("store").bool(false);
        }
    }
    w.end_object();
    Ok(w.into_bytes())
}

/// IR fields the Responses API has no parameter for.
fn refuse_inexpressible(c: &ChatRequest) -> R<()> {
    let refused = if c.top_k.is_some() {
        "top_k"
    } else if !c.stop.is_empty() {
        "stop"
    } else if c.seed.is_some() {
        "seed"
    } else if c.n.is_some_and(|n| n != 1) {
        "n"
    } else if c.presence_penalty.is_some() {
        "presence_penalty"
    } else if c.frequency_penalty.is_some() {
        "frequency_penalty"
    } else {
        return Ok(());
    };
    Err(WireError::unsupported(refused, TARGET))
}

/// `reasoning` from the IR settings; a Chat Completions `reasoning_effort` stands in when the IR
/// has none.
fn write_reasoning(w: &mut JsonWriter, c: &ChatRequest, chat_effort: Option<&Value>) -> R<()> {
    let Some(r) = &c.reasoning else {
        if let Some(effort) = chat_effort {
            w.key("reasoning").begin_object();
            w.key("effort").value(effort).end_object();
        }
        return Ok(());
    };
    // A token budget goes as the level it stands for, as to OpenAI's Chat Completions.
    let effort = effort_name(r);
    // Visible reasoning is a summary here; the provider chooses its length.
    let summary = match (&r.summary, r.visible) {
        (Some(s), _) => Some(s.as_str()),
        (None, Some(true)) => Some("auto"),
        (None, _) => None,
    };
    if effort.is_none() && summary.is_none() {
        return Ok(());
    }
    w.key("reasoning").begin_object();
    if let Some(e) = effort {
        w.key("effort").str(e);
    }
    if let Some(s) = summary {
        w.key("summary").str(s);
    }
    w.end_object();
    Ok(())
}

/// Function tools in the Responses shape. `strict` is the client's where it said one, else
/// `false`: it defaults to true here, which would reject the loose schemas other protocols'
/// clients send.
pub(super) fn write_function_tools(w: &mut JsonWriter, tools: &[Tool]) {
    w.begin_array();
    for t in tools {
        w.begin_object();
        w.key("type").str("function");
        w.key("name").str(&t.name);
        if let Some(d) = &t.description {
            w.key("description").str(d);
        }
        w.key("parameters").value(&t.parameters);
        w.key("strict").bool(t.strict.unwrap_or(false));
        w.end_object();
    }
    w.end_array();
}

pub(super) fn write_tool_choice(w: &mut JsonWriter, choice: Option<&ToolChoice>) {
    match choice {
        None | Some(ToolChoice::Auto) => w.str("auto"),
        Some(ToolChoice::None) => w.str("none"),
        Some(ToolChoice::Required) => w.str("required"),
        Some(ToolChoice::Tool(name)) => {
            w.begin_object();
            w.key("type").str("function");
            w.key("name").str(name).end_object()
        }
    };
}

fn write_format(w: &mut JsonWriter, f: &ResponseFormat) {
    w.begin_object();
    match f {
        ResponseFormat::Text => {
            w.key("type").str("text");
        }
        ResponseFormat::JsonObject => {
            w.key("type").str("json_object");
        }
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            w.key("type").str("json_schema");
            w.key("name").str(name);
            w.key("schema").value(schema);
            if let Some(s) = strict {
                w.key("strict").bool(*s);
            }
        }
    }
    w.end_object();
}

/// The text of a turn that can only hold text.
fn text_only(m: &Message, path: Path<'_>) -> R<String> {
    if m.content.iter().any(|p| !matches!(p, Part::Text { .. })) {
        return Err(WireError::unsupported(path.to_string(), TARGET));
    }
    Ok(m.joined_text())
}

/// One IR turn as input items.
fn write_message(m: &Message, path: Path<'_>, w: &mut JsonWriter) -> R<()> {
    match m.role {
        Role::System | Role::Developer | Role::User => {
            w.begin_object();
            w.key("type").str("message");
            let role = match m.role {
                Role::System => "system",
                Role::Developer => "developer",
                _ => "user",
            };
            w.key("role").str(role);
            w.key("content");
            match m.content.as_slice() {
                [Part::Text { text }] => {
                    w.str(text);
                }
                parts => write_parts(parts, w),
            }
            w.end_object();
        }
        Role::Assistant => {
            // In order: reasoning and built-in tools' items between runs of text.
            let mut text = String::new();
            for p in &m.content {
                match p {
                    Part::Text { text: t } => text.push_str(t),
                    Part::Native {
                        origin: Origin::OpenAiResponses,
                        item,
                    } if super::message_meta(item).is_none() => {
                        flush_text(w, &mut text);
                        w.value(item);
                    }
                    p => {
                        if matches!(p, Part::Reasoning { .. }) {
                            flush_text(w, &mut text);
                        }
                        write_reasoning_item(p, w);
                    }
                }
            }
            flush_text(w, &mut text);
            if let Some(r) = m.refusal.as_deref().filter(|r| !r.is_empty()) {
                write_assistant_text(w, r);
            }
            for (j, call) in m.tool_calls.iter().enumerate() {
                if call.id.is_empty() {
                    let at = path.key("tool_calls");
                    let at = at.index(j);
                    return Err(WireError::invalid(
                        at.key("id"),
                        format!("`{}` is required", at.key("id")),
                    ));
                }
                w.begin_object();
                w.key("type").str("function_call");
                w.key("call_id").str(&call.id);
                w.key("name").str(&call.name);
                let args = if call.arguments.is_empty() {
                    "{}"
                } else {
                    &call.arguments
                };
                w.key("arguments").str(args);
                w.end_object();
            }
        }
        Role::Tool => {
            w.begin_object();
            w.key("type").str("function_call_output");
            w.key("call_id")
                .str(m.tool_call_id.as_deref().unwrap_or(""));
            w.key("output");
            match m.content.as_slice() {
                [] => {
                    w.str("");
                }
                [Part::Text { text }] => {
                    w.str(text);
                }
                parts => write_parts(parts, w),
            }
            w.end_object();
        }
    }
    Ok(())
}

/// The text gathered so far as one assistant message item.
fn flush_text(w: &mut JsonWriter, text: &mut String) {
    if !text.is_empty() {
        write_assistant_text(w, text);
        text.clear();
    }
}

fn write_assistant_text(w: &mut JsonWriter, text: &str) {
    w.begin_object();
    w.key("type").str("message");
    w.key("role").str("assistant");
    w.key("content").str(text);
    w.end_object();
}

/// A reasoning part goes back only to where it came from, with the id the provider gave it;
/// any other is dropped, never forged.
fn write_reasoning_item(p: &Part, w: &mut JsonWriter) {
    let Part::Reasoning {
        text,
        redacted,
        id: Some(id),
        origin: Some(Origin::OpenAiResponses),
        ..
    } = p
    else {
        return;
    };
    w.begin_object();
    w.key("type").str("reasoning");
    w.key("id").str(id);
    w.key("summary").begin_array();
    if !text.is_empty() {
        super::client::write_summary_part(w, text);
    }
    w.end_array();
    if let Some(e) = redacted {
        w.key("encrypted_content").str(e);
    }
    w.end_object();
}

/// Content parts as `input_text`, `input_image` and `input_file`.
fn write_parts(parts: &[Part], w: &mut JsonWriter) {
    w.begin_array();
    for p in parts {
        match p {
            Part::Reasoning { .. } | Part::Native { .. } => continue,
            Part::Text { text } => {
                w.begin_object();
                w.key("type").str("input_text");
                w.key("text").str(text);
            }
            Part::Image { source } => {
                w.begin_object();
                w.key("type").str("input_image");
                w.key("detail").str("auto");
                w.key("image_url");
                media::write_url(w, source);
            }
            Part::Document {
                source: Media::Url { url },
                title,
            } => {
                w.begin_object();
                w.key("type").str("input_file");
                w.key("file_url").str(url);
                if let Some(t) = title {
                    w.key("filename").str(t);
                }
            }
            Part::Document { source, title } => {
                let filename = match (title, source) {
                    (Some(t), _) => t.as_str(),
                    (None, Media::Base64 { media_type, .. }) if media_type == "application/pdf" => {
                        "document.pdf"
                    }
                    (None, _) => "document",
                };
                w.begin_object();
                w.key("type").str("input_file");
                w.key("filename").str(filename);
                w.key("file_data");
                media::write_url(w, source);
            }
        }
        w.end_object();
    }
    w.end_array();
}

// --- answers --------------------------------------------------------------------------------

pub fn decode_response(req: &Request, status: u16, body: &[u8]) -> Result<Response, WireError> {
    if !(200..300).contains(&status) {
        return Ok(Response::Error(openai::provider_error(status, body)));
    }
    let Request::Chat(c) = req else {
        return Err(WireError::upstream(
            "a Responses provider answered an embeddings request",
        ));
    };
    let map = parse_object(body, "the body").map_err(upstream)?;
    decode_chat(c, &Obj::root(&map)).map_err(upstream)
}

fn decode_chat(req: &ChatRequest, o: &Obj<'_, '_>) -> R<Response> {
    match o.str("status")? {
        Some("failed") => return Ok(Response::Error(failed(o)?)),
        Some("queued" | "in_progress") => {
            return Err(WireError::upstream(
                "the provider answered with a response that is still in progress",
            ))
        }
        _ => {}
    }
    let mut message = Message::new(Role::Assistant);
    let output = o.arr("output")?.unwrap_or_default();
    let path = Path::field("output");
    for (i, item) in output.iter().enumerate() {
        read_output_item(&as_obj(item, path.index(i))?, item, &mut message)?;
    }
    let incomplete = match o.obj("incomplete_details")? {
        Some(d) => Some(d.str("reason")?.unwrap_or("max_output_tokens")),
        None => None,
    };
    let finish_reason = finish_of(incomplete, !message.tool_calls.is_empty());
    Ok(Response::Chat(ChatResponse {
        id: o.string("id")?.unwrap_or_default(),
        model: o
            .string("model")?
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| req.model.clone()),
        created: created_at(o)?,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason,
        }],
        usage: o.obj("usage")?.map(|u| super::read_usage(&u)).transpose()?,
    }))
}

/// `created_at`, which the API writes as a number of seconds (sometimes with a fraction).
pub(super) fn created_at(o: &Obj<'_, '_>) -> R<u64> {
    Ok(o.f64("created_at")?
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map_or(0, |t| t as u64))
}

/// A `failed` response's error, as the client's error.
pub(super) fn failed(o: &Obj<'_, '_>) -> R<ErrorInfo> {
    let (code, message) = match o.obj("error")? {
        Some(e) => (e.string("code")?, e.string("message")?),
        None => (None, None),
    };
    let status = match code.as_deref() {
        Some("rate_limit_exceeded") => 429,
        _ => 502,
    };
    let message = message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "the provider failed to generate the answer".to_string());
    Ok(ErrorInfo::new(
        status,
        ErrorInfo::kind_for_status(status),
        message,
    ))
}

/// One output item into the answer's message.
fn read_output_item(o: &Obj<'_, '_>, item: &Json<'_>, message: &mut Message) -> R<()> {
    match o.req_str("type")? {
        "message" => {
            let parts = o.arr("content")?.unwrap_or_default();
            let base = o.path("content");
            let meta_at = message.content.len();
            let mut annotations = Vec::new();
            // Annotation indices count characters of their own part; the IR joins the parts.
            let mut offset = 0;
            for (j, p) in parts.iter().enumerate() {
                let p = as_obj(p, base.index(j))?;
                match p.req_str("type")? {
                    "output_text" => {
                        let text = p.req_str("text")?;
                        for a in p.arr("annotations")?.unwrap_or_default() {
                            annotations.push(shifted(a.to_value(), offset));
                        }
                        offset += text.chars().count();
                        message.content.push(Part::Text {
                            text: text.to_string(),
                        });
                    }
                    "refusal" => message
                        .refusal
                        .get_or_insert_with(String::new)
                        .push_str(p.req_str("refusal")?),
                    other => {
                        return Err(WireError::upstream(format!(
                            "an unknown message content type `{other}`"
                        )))
                    }
                }
            }
            if let Some(meta) = super::message_meta_item(o.str("id")?, annotations) {
                message.content.insert(
                    meta_at,
                    Part::Native {
                        origin: Origin::OpenAiResponses,
                        item: meta,
                    },
                );
            }
        }
        "function_call" => message.tool_calls.push(ToolCall {
            id: o.req_str("call_id")?.to_string(),
            name: o.req_str("name")?.to_string(),
            arguments: o.str("arguments")?.unwrap_or_default().to_string(),
        }),
        "reasoning" => message.content.push(Part::Reasoning {
            text: reasoning_text(o)?,
            signature: None,
            redacted: o.string("encrypted_content")?,
            id: o.string("id")?,
            origin: Some(Origin::OpenAiResponses),
        }),
        // A built-in tool's call (`web_search_call`, `mcp_call`, ...): verbatim, in place, for
        // the Responses client that asked for the tool.
        _ => message.content.push(Part::Native {
            origin: Origin::OpenAiResponses,
            item: item.to_value(),
        }),
    }
    Ok(())
}

/// An annotation with its character indices moved `by` characters on.
pub(super) fn shifted(mut a: Value, by: usize) -> Value {
    if by > 0 {
        for key in ["start_index", "end_index", "index"] {
            if let Some(slot) = a.get_mut(key).filter(|v| v.is_u64()) {
                let n = slot.as_u64().unwrap_or(0);
                *slot = Value::from(n.saturating_add(by as u64));
            }
        }
    }
    a
}

// --- stored responses -------------------------------------------------------------------------

impl super::StoredCall {
    /// The provider's path for the call: the operation under its base path, with the call's
    /// documented parameters and the configured `api-version`.
    pub fn provider_path(&self, spec: &ProviderSpec) -> String {
        let mut path = format!("{}/responses/{}", spec.base_path, self.id);
        if self.op == super::StoredOp::InputItems {
            path.push_str("/input_items");
        }
        let mut query: Vec<String> = Vec::new();
        if !self.query.is_empty() {
            query.push(self.query.clone());
        }
        if let Some(v) = &spec.api_version {
            query.push(format!("api-version={}", openai::percent_encode(v)));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        path
    }
}
