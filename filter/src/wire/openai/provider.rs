//! The provider side: IR requests into the paths and bodies of `openai`, `azure-openai`,
//! `mistral` and `openai-compatible` targets, and their complete answers back into IR.
//!
//! Quirks by kind (anything a kind cannot express is `Unsupported`, never dropped):
//! - openai, azure-openai: `max_completion_tokens`, `developer` role kept; Azure puts the model
//!   id (the deployment name) in the path with `api-version`, and not in the body.
//! - mistral: `max_tokens`, `random_seed`, tool choice `any`, no `user`, no participant `name`,
//!   no `stream_options` (it reports usage in its last chunk unasked), `developer` sent as
//!   `system`, tool-call ids rewritten to the 9 alphanumerics it insists on, documents as
//!   `document_url`, only the `metadata` and `prediction` extras.
//! - openai-compatible (vLLM, TGI, llama.cpp, ...): `max_tokens`, `top_k` passed on, `developer`
//!   sent as `system`, since many chat templates know no other roles.
//!
//! Streams always ask for usage (`stream_options.include_usage`, except Mistral), because limits
//! and metrics need it whether or not the client asked.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::client::{provider_error_message, tool_call_json};
use crate::ir::*;
use crate::wire::args;
use crate::wire::json::{
    as_obj, index, key, must_be, parse_object, required, set, to_bytes, upstream, Obj, R,
};
use crate::wire::{reject_foreign_extra, Outgoing, ProviderKind, ProviderSpec, WireError};

/// Extras Mistral accepts with OpenAI's meaning.
const MISTRAL_EXTRA: &[&str] = &["metadata", "prediction"];

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let (op, body) = match req {
        Request::Chat(c) => ("chat/completions", chat_body(spec.kind, c)?),
        Request::Embeddings(e) => ("embeddings", embeddings_body(spec.kind, e)?),
    };
    let path = match spec.kind {
        ProviderKind::AzureOpenAi => {
            let mut p = format!(
                "{}/deployments/{}/{op}",
                spec.base_path,
                percent_encode(req.model())
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
        body: to_bytes(&Value::Object(body)),
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment or
/// query value.
fn percent_encode(s: &str) -> String {
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

fn put<T: serde::Serialize>(body: &mut Map<String, Value>, name: &str, v: Option<T>) {
    if let Some(v) = v {
        body.insert(name.to_string(), json!(v));
    }
}

fn chat_body(kind: ProviderKind, c: &ChatRequest) -> R<Map<String, Value>> {
    let target = kind.name();
    let mistral = kind == ProviderKind::Mistral;
    let modern = matches!(kind, ProviderKind::OpenAi | ProviderKind::AzureOpenAi);
    let mut b = Map::new();
    if kind != ProviderKind::AzureOpenAi {
        b.insert("model".into(), json!(c.model));
    }
    let messages = c
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| encode_message(kind, m, &index("messages", i)))
        .collect::<R<Vec<_>>>()?;
    b.insert("messages".into(), Value::Array(messages));
    if !c.tools.is_empty() {
        let tools: Vec<Value> = c
            .tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    set(&mut f, "description", json!(d));
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        b.insert("tools".into(), Value::Array(tools));
    }
    put(
        &mut b,
        "tool_choice",
        c.tool_choice.as_ref().map(|tc| match tc {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required if mistral => json!("any"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        }),
    );
    put(&mut b, "parallel_tool_calls", c.parallel_tool_calls);
    let max_key = if modern {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    put(&mut b, max_key, c.max_tokens);
    put(&mut b, "temperature", c.temperature);
    put(&mut b, "top_p", c.top_p);
    if c.top_k.is_some() && kind != ProviderKind::OpenAiCompatible {
        return Err(WireError::unsupported("top_k", target));
    }
    put(&mut b, "top_k", c.top_k);
    if !c.stop.is_empty() {
        b.insert("stop".into(), json!(c.stop));
    }
    put(&mut b, if mistral { "random_seed" } else { "seed" }, c.seed);
    put(&mut b, "n", c.n);
    put(&mut b, "presence_penalty", c.presence_penalty);
    put(&mut b, "frequency_penalty", c.frequency_penalty);
    if c.user.is_some() && mistral {
        return Err(WireError::unsupported("user", target));
    }
    put(&mut b, "user", c.user.as_ref());
    put(
        &mut b,
        "response_format",
        c.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => {
                let mut s = json!({"name": name, "schema": schema});
                if let Some(strict) = strict {
                    set(&mut s, "strict", json!(strict));
                }
                json!({"type": "json_schema", "json_schema": s})
            }
        }),
    );
    if c.stream {
        b.insert("stream".into(), json!(true));
        if !mistral {
            b.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    // `keep_alive` is an Ollama model-residency hint, not part of the answer: other kinds skip it.
    reject_foreign_extra(c, Family::OpenAi, target)?;
    for (name, v) in &c.extra {
        if mistral && !MISTRAL_EXTRA.contains(&name.as_str()) {
            return Err(WireError::unsupported(name.clone(), target));
        }
        b.entry(name.clone()).or_insert_with(|| v.clone());
    }
    Ok(b)
}

fn encode_message(kind: ProviderKind, m: &Message, path: &str) -> R<Value> {
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
    let mut o = json!({"role": role});
    match m.role {
        Role::User => set(&mut o, "content", user_content(kind, m, path)?),
        Role::Assistant => {
            let text = text_only(m, path, target)?;
            let content = if text.is_empty() && !m.tool_calls.is_empty() {
                Value::Null
            } else {
                json!(text)
            };
            set(&mut o, "content", content);
            if !m.tool_calls.is_empty() {
                let calls = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        tool_call_json(&ToolCall {
                            id: tool_call_id(kind, &c.id),
                            name: c.name.clone(),
                            // Some servers parse the text as JSON; an argument-less call is `{}`.
                            arguments: if c.arguments.is_empty() {
                                "{}".into()
                            } else {
                                c.arguments.clone()
                            },
                        })
                    })
                    .collect();
                set(&mut o, "tool_calls", calls);
            }
        }
        Role::Tool => {
            set(
                &mut o,
                "tool_call_id",
                json!(tool_call_id(kind, m.tool_call_id.as_deref().unwrap_or(""))),
            );
            set(&mut o, "content", json!(text_only(m, path, target)?));
        }
        Role::System | Role::Developer => {
            set(&mut o, "content", json!(text_only(m, path, target)?))
        }
    }
    // OpenAI-style tool results carry no error flag (`is_error`); the result text itself says
    // what failed, so it reaches the model either way.
    if let Some(name) = &m.name {
        match m.role {
            // OpenAI's tool messages have no `name` (the id links the call); Mistral's do.
            Role::Tool if !mistral => {}
            Role::Tool => set(&mut o, "name", json!(name)),
            _ if mistral => return Err(WireError::unsupported(key(path, "name"), target)),
            _ => set(&mut o, "name", json!(name)),
        }
    }
    Ok(o)
}

/// The text of a turn that can only hold text.
fn text_only(m: &Message, path: &str, target: &'static str) -> R<String> {
    if m.content.iter().any(|p| !matches!(p, Part::Text { .. })) {
        return Err(WireError::unsupported(key(path, "content"), target));
    }
    Ok(m.joined_text())
}

fn user_content(kind: ProviderKind, m: &Message, path: &str) -> R<Value> {
    match m.content.as_slice() {
        [] => return Ok(json!("")),
        [Part::Text { text }] => return Ok(json!(text)),
        _ => {}
    }
    let base = key(path, "content");
    let parts = m.content.iter().enumerate().map(|(j, p)| {
        Ok(match p {
            Part::Text { text } => json!({"type": "text", "text": text}),
            Part::Image { source } => {
                json!({"type": "image_url", "image_url": {"url": source.to_url()}})
            }
            Part::Document { source, title } if kind == ProviderKind::Mistral => {
                let mut d = json!({"type": "document_url", "document_url": source.to_url()});
                if let Some(t) = title {
                    set(&mut d, "document_name", json!(t));
                }
                d
            }
            // OpenAI's `file` part takes inline data only.
            Part::Document {
                source: Media::Url { .. },
                ..
            } => return Err(WireError::unsupported(index(&base, j), kind.name())),
            Part::Document { source, title } => {
                let filename = match (title, source) {
                    (Some(t), _) => t.clone(),
                    (None, Media::Base64 { media_type, .. }) if media_type == "application/pdf" => {
                        "document.pdf".into()
                    }
                    (None, _) => "document".into(),
                };
                json!({"type": "file", "file": {"file_data": source.to_url(), "filename": filename}})
            }
        })
    });
    Ok(Value::Array(parts.collect::<R<_>>()?))
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

fn embeddings_body(kind: ProviderKind, e: &EmbeddingsRequest) -> R<Map<String, Value>> {
    let mut b = Map::new();
    if kind != ProviderKind::AzureOpenAi {
        b.insert("model".into(), json!(e.model));
    }
    b.insert("input".into(), json!(e.input));
    match kind {
        ProviderKind::Mistral => {
            if e.user.is_some() {
                return Err(WireError::unsupported("user", kind.name()));
            }
            put(&mut b, "output_dimension", e.dimensions);
        }
        _ => {
            put(&mut b, "dimensions", e.dimensions);
            put(&mut b, "user", e.user.as_ref());
            if kind != ProviderKind::OpenAiCompatible {
                b.insert("encoding_format".into(), json!("float"));
            }
        }
    }
    Ok(b)
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
    }
    .map_err(upstream)
}

/// A non-2xx answer, with the provider's own message when it gave one.
pub(super) fn provider_error(status: u16, body: &[u8]) -> ErrorInfo {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| provider_error_message(&v))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("the provider answered with HTTP status {status}"));
    ErrorInfo::new(status, ErrorInfo::kind_for_status(status), message)
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

pub(super) fn decode_usage(o: &Obj<'_>) -> R<Usage> {
    let cached = match o.obj("prompt_tokens_details")? {
        Some(d) => d.u64("cached_tokens")?.unwrap_or(0),
        None => 0,
    };
    Ok(Usage {
        input_tokens: o.u64("prompt_tokens")?.unwrap_or(0),
        output_tokens: o.u64("completion_tokens")?.unwrap_or(0),
        cached_input_tokens: cached,
    })
}

/// Message text: a string, or (Mistral) an array of chunks of which only `text` ones are the
/// answer; a refusal stands in for absent content.
pub(super) fn message_text(o: &Obj<'_>) -> R<String> {
    let mut text = match o.get("content") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(chunks)) => chunks
            .iter()
            .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|c| c.get("text").and_then(Value::as_str))
            .collect(),
        Some(_) => return Err(must_be(&o.path("content"), "a string")),
    };
    if text.is_empty() {
        text = o.string("refusal")?.unwrap_or_default();
    }
    Ok(text)
}

fn decode_chat(req: &ChatRequest, o: &Obj<'_>) -> R<Response> {
    let choices = o.arr("choices")?.ok_or_else(|| required("choices"))?;
    let mut out = Vec::with_capacity(choices.len());
    for (i, c) in choices.iter().enumerate() {
        let c = as_obj(c, &index("choices", i))?;
        let msg = c.req_obj("message")?;
        let reason = match c.str("finish_reason")? {
            Some(r) => match finish_reason(r) {
                Some(r) => r,
                None => return Ok(Response::Error(generation_failed())),
            },
            None => FinishReason::Stop,
        };
        let mut tool_calls = Vec::new();
        for (j, t) in msg
            .arr("tool_calls")?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let t = as_obj(t, &index(&msg.path("tool_calls"), j))?;
            let f = t.req_obj("function")?;
            // Some compatible servers send the object itself rather than its text.
            let arguments = args::text(f.get("arguments").unwrap_or(&Value::Null));
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
        message.tool_calls = tool_calls;
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

fn decode_embeddings(req: &EmbeddingsRequest, o: &Obj<'_>) -> R<Response> {
    let data = o.arr("data")?.ok_or_else(|| required("data"))?;
    let mut rows = Vec::with_capacity(data.len());
    for (i, d) in data.iter().enumerate() {
        let d = as_obj(d, &index("data", i))?;
        let path = d.path("embedding");
        let vector = d
            .arr("embedding")?
            .ok_or_else(|| required(&path))?
            .iter()
            .map(|x| {
                // Embeddings are f32 on every provider; the narrowing is the format's own.
                #[allow(clippy::cast_possible_truncation)]
                x.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| must_be(&path, "an array of numbers"))
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
