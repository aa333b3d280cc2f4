//! The provider side: IR requests into the paths and bodies of `openai`, `azure-openai`,
//! `mistral` and `openai-compatible` targets, and their complete answers back into IR.
//!
//! Quirks by kind (anything a kind cannot express is `Unsupported`; `wire::drop` decides):
//! - openai, azure-openai: `max_completion_tokens`, `developer` role kept; Azure puts the model
//!   id (the deployment name) in the path with `api-version`, and not in the body.
//! - Reasoning: `reasoning_effort` (a budget becomes its nearest level, "off" is `none`),
//!   except for Mistral, which has no such control. Reasoning in the history is not sent back:
//!   Chat Completions takes none. A refusal in the history is sent as `refusal` where OpenAI
//!   itself reads it, and as the turn's text elsewhere.
//! - mistral: `max_tokens`, `random_seed`, tool choice `any`, no `user`, no participant `name`,
//!   no `stream_options` (it reports usage in its last chunk unasked), `developer` sent as
//!   `system`, tool-call ids rewritten to the 9 alphanumerics it insists on, documents as
//!   `document_url`, only the `metadata` and `prediction` extras.
//! - openai-compatible (vLLM, TGI, llama.cpp, ...): `max_tokens`, `top_k` passed on, `developer`
//!   sent as `system`, since many chat templates know no other roles.
//!
//! Streams always ask for usage (`stream_options.include_usage`, except Mistral), because limits
//! and metrics need it whether or not the client asked.

use sha2::{Digest, Sha256};

use super::client::{provider_error_message, reasoning_parts, write_tool_call};
use crate::ir::*;
use crate::wire::json::{
    as_obj, must_be, parse, parse_object, required, upstream, Json, JsonWriter, Obj, Path, R,
};
use crate::wire::{
    args, body_size_hint, media, reasoning, reject_foreign_extra, Outgoing, ProviderKind,
    ProviderSpec, WireError,
};

/// Extras Mistral accepts with OpenAI's meaning.
const MISTRAL_EXTRA: &[&str] = &["metadata", "prediction"];

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let (op, body) = match req {
        Request::Chat(c) => ("chat/completions", chat_body(spec.kind, c)?),
        Request::Embeddings(e) => ("embeddings", embeddings_body(spec.kind, e)?),
        Request::CountTokens(_) => {
            return Err(WireError::unsupported("count_tokens", spec.kind.name()))
        }
    };
    let path = match spec.kind {
        ProviderKind::AzureOpenAi => {
            let mut p = format!(
                "{}/deployments/{}/{op}",
                spec.base_path,
                crate::wire::path_segment(req.model())
            );
            if let Some(v) = &spec.api_version {
                p.push_str("?api-version=");
                p.push_str(&percent_encode(v));
            }
            p
        }
        _ => format!("{}/{op}", spec.base_path),
    };
    Ok(Outgoing {
        path,
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment or
/// query value.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The top-level fields [`chat_body`] writes itself, which `extra` fields never replace.
const OWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_completion_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "random_seed",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "response_format",
    "stream",
    "stream_options",
    "reasoning_effort",
];

/// OpenAI's `reasoning_effort` for IR reasoning; `None` when the request only turns reasoning on
/// or lets the model decide, which is what OpenAI's reasoning models do by default.
fn reasoning_effort(r: &Reasoning) -> Option<&'static str> {
    if reasoning::is_off(r) {
        return Some("none");
    }
    Some(match reasoning::effort_of(r)? {
        Effort::Minimal => "minimal",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High => "high",
        Effort::Xhigh | Effort::Max => "xhigh",
    })
}

fn chat_body(kind: ProviderKind, c: &ChatRequest) -> R<Vec<u8>> {
    let target = kind.name();
    let mistral = kind == ProviderKind::Mistral;
    let modern = matches!(kind, ProviderKind::OpenAi | ProviderKind::AzureOpenAi);
    // Fields refused before the body is written, so that dropping them costs little.
    if c.top_k.is_some() && kind != ProviderKind::OpenAiCompatible {
        return Err(WireError::unsupported("top_k", target));
    }
    if mistral && c.user.is_some() {
        return Err(WireError::unsupported("user", target));
    }
    if mistral && c.reasoning.is_some() {
        return Err(WireError::unsupported("reasoning", target));
    }
    if c.keep_alive.is_some() {
        return Err(WireError::unsupported("keep_alive", target));
    }
    reject_foreign_extra(c, Family::OpenAi, target)?;
    if let Some(name) = c
        .extra
        .keys()
        .find(|n| mistral && !MISTRAL_EXTRA.contains(&n.as_str()))
    {
        return Err(WireError::unsupported(name.clone(), target));
    }
    let mut w = JsonWriter::with_capacity(body_size_hint(c));
    w.begin_object();
    if kind != ProviderKind::AzureOpenAi {
        w.key("model").str(&c.model);
    }
    w.key("messages").begin_array();
    let messages = Path::field("messages");
    for (i, m) in c.messages.iter().enumerate() {
        encode_message(kind, m, messages.index(i), &mut w)?;
    }
    w.end_array();
    if !c.tools.is_empty() {
        write_tools(&c.tools, &mut w, None);
    }
    if let Some(tc) = &c.tool_choice {
        w.key("tool_choice");
        match tc {
            ToolChoice::Auto => w.str("auto"),
            ToolChoice::None => w.str("none"),
            ToolChoice::Required if mistral => w.str("any"),
            ToolChoice::Required => w.str("required"),
            ToolChoice::Tool(name) => {
                w.begin_object();
                w.key("type").str("function");
                w.key("function").begin_object();
                w.key("name").str(name);
                w.end_object().end_object()
            }
        };
    }
    if let Some(p) = c.parallel_tool_calls {
        w.key("parallel_tool_calls").bool(p);
    }
    if let Some(n) = c.max_tokens {
        let max_key = if modern {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        w.key(max_key).u64(n.into());
    }
    if let Some(t) = c.temperature {
        w.key("temperature").f64(t);
    }
    if let Some(p) = c.top_p {
        w.key("top_p").f64(p);
    }
    if let Some(k) = c.top_k {
        w.key("top_k").u64(k.into());
    }
    if !c.stop.is_empty() {
        w.key("stop").begin_array();
        for s in &c.stop {
            w.str(s);
        }
        w.end_array();
    }
    if let Some(seed) = c.seed {
        w.key(if mistral { "random_seed" } else { "seed" })
            .i64(seed);
    }
    if let Some(n) = c.n {
        w.key("n").u64(n.into());
    }
    if let Some(p) = c.presence_penalty {
        w.key("presence_penalty").f64(p);
    }
    if let Some(p) = c.frequency_penalty {
        w.key("frequency_penalty").f64(p);
    }
    if let Some(user) = &c.user {
        w.key("user").str(user);
    }
    if let Some(effort) = c.reasoning.as_ref().and_then(reasoning_effort) {
        w.key("reasoning_effort").str(effort);
    }
    if let Some(f) = &c.response_format {
        w.key("response_format").begin_object();
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
                w.key("json_schema").begin_object();
                w.key("name").str(name);
                w.key("schema").value(schema);
                if let Some(strict) = strict {
                    w.key("strict").bool(*strict);
                }
                w.end_object();
            }
        }
        w.end_object();
    }
    if c.stream {
        w.key("stream").bool(true);
        if !mistral {
            w.key("stream_options").begin_object();
            w.key("include_usage").bool(true).end_object();
        }
    }
    for (name, v) in &c.extra {
        if !OWN_FIELDS.contains(&name.as_str()) {
            w.key(name).value(v);
        }
    }
    w.end_object();
    Ok(w.into_bytes())
}

/// The `tools` field in OpenAI's function shape, which Ollama's `/api/chat` takes too. A
/// `schema` function rewrites each tool's parameters for a server with narrower types (Ollama),
/// which also has no `strict`.
pub(crate) fn write_tools(
    tools: &[Tool],
    w: &mut JsonWriter,
    schema: Option<fn(&serde_json::Value) -> serde_json::Value>,
) {
    w.key("tools").begin_array();
    for t in tools {
        w.begin_object();
        w.key("type").str("function");
        w.key("function").begin_object();
        w.key("name").str(&t.name);
        if let Some(d) = &t.description {
            w.key("description").str(d);
        }
        match schema {
            Some(rewrite) => w.key("parameters").value(&rewrite(&t.parameters)),
            None => w.key("parameters").value(&t.parameters),
        };
        if let (Some(strict), None) = (t.strict, schema) {
            w.key("strict").bool(strict);
        }
        w.end_object().end_object();
    }
    w.end_array();
}

fn encode_message(kind: ProviderKind, m: &Message, path: Path<'_>, w: &mut JsonWriter) -> R<()> {
    let target = kind.name();
    let mistral = kind == ProviderKind::Mistral;
    let role = match m.role {
        Role::System => "system",
        Role::Developer if matches!(kind, ProviderKind::OpenAi | ProviderKind::AzureOpenAi) => {
            "developer"
        }
        Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    w.begin_object();
    w.key("role").str(role);
    match m.role {
        Role::User => {
            w.key("content");
            user_content(kind, m, path, w)?;
        }
        Role::Assistant => {
            let mut text = text_only(m, path, target)?;
            let refusal = m.refusal.as_deref().filter(|r| !r.is_empty());
            // Only OpenAI's own API reads `refusal` in the history; elsewhere it is the text.
            let refusal_field = matches!(kind, ProviderKind::OpenAi | ProviderKind::AzureOpenAi);
            if let (Some(r), false) = (refusal, refusal_field) {
                text.push_str(r);
            }
            w.key("content");
            if text.is_empty() && (!m.tool_calls.is_empty() || refusal.is_some()) {
                w.null();
            } else {
                w.str(&text);
            }
            if let (Some(r), true) = (refusal, refusal_field) {
                w.key("refusal").str(r);
            }
            if !m.tool_calls.is_empty() {
                w.key("tool_calls").begin_array();
                for c in &m.tool_calls {
                    // Some servers parse the text as JSON; an argument-less call is `{}`.
                    let arguments = if c.arguments.is_empty() {
                        "{}"
                    } else {
                        &c.arguments
                    };
                    write_tool_call(w, &tool_call_id(kind, &c.id), &c.name, arguments);
                }
                w.end_array();
            }
        }
        Role::Tool => {
            let id = tool_call_id(kind, m.tool_call_id.as_deref().unwrap_or(""));
            w.key("tool_call_id").str(&id);
            w.key("content").str(&text_only(m, path, target)?);
        }
        Role::System | Role::Developer => {
            w.key("content").str(&text_only(m, path, target)?);
        }
    }
    // OpenAI-style tool results carry no error flag (`is_error`); the result text itself says
    // what failed, so it reaches the model either way.
    if let Some(name) = &m.name {
        match m.role {
            // OpenAI's tool messages have no `name` (the id links the call); Mistral's do.
            Role::Tool if !mistral => {}
            Role::Tool => {
                w.key("name").str(name);
            }
            _ if mistral => return Err(WireError::unsupported(path.key("name"), target)),
            _ => {
                w.key("name").str(name);
            }
        }
    }
    w.end_object();
    Ok(())
}

/// The text of a turn that can only hold text. Reasoning has no place in a Chat Completions
/// request and is left out.
fn text_only(m: &Message, path: Path<'_>, target: &'static str) -> R<String> {
    let other = |p: &Part| !matches!(p, Part::Text { .. } | Part::Reasoning { .. });
    if m.content.iter().any(other) {
        return Err(WireError::unsupported(path.key("content"), target));
    }
    Ok(m.joined_text())
}

fn user_content(kind: ProviderKind, m: &Message, path: Path<'_>, w: &mut JsonWriter) -> R<()> {
    match m.content.as_slice() {
        [] => {
            w.str("");
            return Ok(());
        }
        [Part::Text { text }] => {
            w.str(text);
            return Ok(());
        }
        _ => {}
    }
    let base = path.key("content");
    w.begin_array();
    for (j, p) in m.content.iter().enumerate() {
        if let Part::Reasoning { .. } | Part::Native { .. } = p {
            continue;
        }
        w.begin_object();
        match p {
            Part::Reasoning { .. } | Part::Native { .. } => {}
            Part::Text { text } => {
                w.key("type").str("text");
                w.key("text").str(text);
            }
            Part::Image { source } => {
                w.key("type").str("image_url");
                w.key("image_url").begin_object().key("url");
                media::write_url(w, source);
                w.end_object();
            }
            Part::Document { source, title } if kind == ProviderKind::Mistral => {
                w.key("type").str("document_url");
                w.key("document_url");
                media::write_url(w, source);
                if let Some(t) = title {
                    w.key("document_name").str(t);
                }
            }
            // OpenAI's `file` part takes inline data only.
            Part::Document {
                source: Media::Url { .. },
                ..
            } => {
                return Err(WireError::needs_bytes(
                    base.index(j).to_string(),
                    kind.name(),
                ))
            }
            Part::Document { source, title } => {
                let filename = match (title, source) {
                    (Some(t), _) => t.as_str(),
                    (None, Media::Base64 { media_type, .. }) if media_type == "application/pdf" => {
                        "document.pdf"
                    }
                    (None, _) => "document",
                };
                w.key("type").str("file");
                w.key("file").begin_object().key("file_data");
                media::write_url(w, source);
                w.key("filename").str(filename).end_object();
            }
        }
        w.end_object();
    }
    w.end_array();
    Ok(())
}

/// Mistral rejects tool-call ids that are not exactly 9 ASCII alphanumerics, which ids minted by
/// other providers never are. The rewrite is a pure function of the id, so a call and the result
/// answering it still match.
fn tool_call_id(kind: ProviderKind, id: &str) -> String {
    if kind != ProviderKind::Mistral
        || (id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return id.to_string();
    }
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    Sha256::digest(id.as_bytes())
        .iter()
        .take(9)
        .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
        .map(|b| char::from(*b))
        .collect()
}

fn embeddings_body(kind: ProviderKind, e: &EmbeddingsRequest) -> R<Vec<u8>> {
    let input: usize = e.input.iter().map(|s| s.len() + 4).sum();
    let mut w = JsonWriter::with_capacity(input + 128);
    w.begin_object();
    if kind != ProviderKind::AzureOpenAi {
        w.key("model").str(&e.model);
    }
    w.key("input").begin_array();
    for s in &e.input {
        w.str(s);
    }
    w.end_array();
    match kind {
        ProviderKind::Mistral => {
            if e.user.is_some() {
                return Err(WireError::unsupported("user", kind.name()));
            }
            if let Some(d) = e.dimensions {
                w.key("output_dimension").u64(d.into());
            }
        }
        _ => {
            if let Some(d) = e.dimensions {
                w.key("dimensions").u64(d.into());
            }
            if let Some(user) = &e.user {
                w.key("user").str(user);
            }
            if kind != ProviderKind::OpenAiCompatible {
                w.key("encoding_format").str("float");
            }
        }
    }
    w.end_object();
    Ok(w.into_bytes())
}

pub fn decode_response(
    spec: &ProviderSpec,
    req: &Request,
    status: u16,
    body: &[u8],
) -> Result<Response, WireError> {
    // Every kind answers in the same shape; only requests differ.
    let _ = spec;
    if !(200..300).contains(&status) {
        return Ok(Response::Error(provider_error(status, body)));
    }
    let map = parse_object(body, "the body").map_err(upstream)?;
    let o = Obj::root(&map);
    match req {
        Request::Chat(c) => decode_chat(c, &o),
        Request::Embeddings(e) => decode_embeddings(e, &o),
        Request::CountTokens(_) => Err(WireError::upstream("no token counting here")),
    }
    .map_err(upstream)
}

/// A non-2xx answer, with the provider's own message when it gave one. OpenAI names a refused
/// key `invalid_api_key` (with a 401, which says so already, but some compatible servers send it
/// with a 400 or 403), so that code marks an authentication failure whatever the status.
pub(crate) fn provider_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed = parse(body).ok();
    let message = parsed
        .as_ref()
        .and_then(provider_error_message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("the provider answered with HTTP status {status}"));
    let key_refused = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("code"))
        .and_then(Json::as_str)
        .is_some_and(|c| c == "invalid_api_key");
    let kind = if key_refused {
        ErrorKind::Authentication
    } else {
        ErrorInfo::kind_for_status(status)
    };
    ErrorInfo::new(status, kind, message)
}

/// A provider's finish reason; `None` for Mistral's `error`, which is a failure, not an end.
pub(super) fn finish_reason(s: &str) -> Option<FinishReason> {
    Some(match s {
        "error" => return None,
        "length" | "model_length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    })
}

pub(super) fn generation_failed() -> ErrorInfo {
    ErrorInfo::new(
        502,
        ErrorKind::Upstream,
        "the provider reported an error while generating the answer",
    )
}

pub(super) fn decode_usage(o: &Obj<'_, '_>) -> R<Usage> {
    let cached = match o.obj("prompt_tokens_details")? {
        Some(d) => d.u64("cached_tokens")?.unwrap_or(0),
        None => 0,
    };
    let reasoning = match o.obj("completion_tokens_details")? {
        Some(d) => d.u64("reasoning_tokens")?.unwrap_or(0),
        None => 0,
    };
    Ok(Usage {
        input_tokens: o.u64("prompt_tokens")?.unwrap_or(0),
        output_tokens: o.u64("completion_tokens")?.unwrap_or(0),
        cached_input_tokens: cached,
        reasoning_tokens: reasoning,
    })
}

/// Message text: a string, or (Mistral) an array of chunks of which only `text` ones are the
/// answer.
pub(super) fn message_text(o: &Obj<'_, '_>) -> R<String> {
    Ok(match o.get("content") {
        None => String::new(),
        Some(Json::Str(s)) => s.to_string(),
        Some(Json::Array(chunks)) => chunks
            .iter()
            .filter(|c| c.get("type").and_then(Json::as_str) == Some("text"))
            .filter_map(|c| c.get("text").and_then(Json::as_str))
            .collect(),
        Some(_) => return Err(must_be(o.path("content"), "a string")),
    })
}

/// The reasoning of a message or delta: `reasoning_details`, `reasoning_content` or `reasoning`
/// (the same shapes clients send back, see `client`), or Mistral's `thinking` chunks.
pub(super) fn message_reasoning(o: &Obj<'_, '_>) -> R<Vec<Part>> {
    let mut parts = reasoning_parts(o)?;
    if let Some(Json::Array(chunks)) = o.get("content") {
        for c in chunks {
            if c.get("type").and_then(Json::as_str) != Some("thinking") {
                continue;
            }
            let text: String = match c.get("thinking") {
                Some(Json::Array(inner)) => inner
                    .iter()
                    .filter_map(|t| t.get("text").and_then(Json::as_str))
                    .collect(),
                Some(Json::Str(s)) => s.to_string(),
                _ => String::new(),
            };
            if !text.is_empty() {
                parts.push(Part::Reasoning {
                    text,
                    signature: None,
                    redacted: None,
                    id: None,
                    origin: None,
                });
            }
        }
    }
    Ok(parts)
}

fn decode_chat(req: &ChatRequest, o: &Obj<'_, '_>) -> R<Response> {
    let choices = o.arr("choices")?.ok_or_else(|| required("choices"))?;
    let mut out = Vec::with_capacity(choices.len());
    let path = o.path("choices");
    for (i, c) in choices.iter().enumerate() {
        let c = as_obj(c, path.index(i))?;
        let msg = c.req_obj("message")?;
        let reason = match c.str("finish_reason")? {
            Some(r) => match finish_reason(r) {
                Some(r) => r,
                None => return Ok(Response::Error(generation_failed())),
            },
            None => FinishReason::Stop,
        };
        let mut tool_calls = Vec::new();
        let calls_path = msg.path("tool_calls");
        for (j, t) in msg
            .arr("tool_calls")?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let t = as_obj(t, calls_path.index(j))?;
            let f = t.req_obj("function")?;
            // Some compatible servers send the object itself rather than its text.
            let arguments = args::json_text(f.get("arguments").unwrap_or(&Json::Null));
            tool_calls.push(ToolCall {
                id: t.string("id")?.unwrap_or_default(),
                name: f.req_str("name")?.to_string(),
                arguments,
            });
        }
        let text = message_text(&msg)?;
        let mut message = Message::text(Role::Assistant, text);
        message
            .content
            .retain(|p| !matches!(p, Part::Text { text } if text.is_empty()));
        message.content.splice(0..0, message_reasoning(&msg)?);
        message.tool_calls = tool_calls;
        message.refusal = msg.string("refusal")?.filter(|r| !r.is_empty());
        out.push(Choice {
            index: c
                .u32("index")?
                .unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)),
            message,
            finish_reason: reason,
        });
    }
    Ok(Response::Chat(ChatResponse {
        id: o.string("id")?.unwrap_or_default(),
        model: o
            .string("model")?
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| req.model.clone()),
        created: o.u64("created")?.unwrap_or(0),
        choices: out,
        usage: o.obj("usage")?.map(|u| decode_usage(&u)).transpose()?,
    }))
}

fn decode_embeddings(req: &EmbeddingsRequest, o: &Obj<'_, '_>) -> R<Response> {
    let data = o.arr("data")?.ok_or_else(|| required("data"))?;
    let mut rows = Vec::with_capacity(data.len());
    let data_path = o.path("data");
    for (i, d) in data.iter().enumerate() {
        let d = as_obj(d, data_path.index(i))?;
        let path = d.path("embedding");
        let vector = d
            .arr("embedding")?
            .ok_or_else(|| required(path))?
            .iter()
            .map(|x| {
                // Embeddings are f32 on every provider; the narrowing is the format's own.
                #[allow(clippy::cast_possible_truncation)]
                x.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| must_be(path, "an array of numbers"))
            })
            .collect::<R<Vec<f32>>>()?;
        rows.push((d.u64("index")?.unwrap_or(i as u64), vector));
    }
    rows.sort_by_key(|(i, _)| *i);
    Ok(Response::Embeddings(EmbeddingsResponse {
        model: o
            .string("model")?
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| req.model.clone()),
        data: rows.into_iter().map(|(_, v)| v).collect(),
        usage: o.obj("usage")?.map(|u| decode_usage(&u)).transpose()?,
    }))
}
