//! The `ollama` provider format: IR requests to `{base}/api/chat` and `{base}/api/embed`, and
//! Ollama's complete answers and `{"error"}` bodies back to IR.

use crate::ir::*;
use crate::wire::json::{must_be, JsonWriter, Path};
use crate::wire::{args, body_size_hint, reject_foreign_extra, Outgoing, ProviderSpec, WireError};
use serde::Deserialize;
use serde_json::Value;

const TARGET: &str = "ollama";

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let (op, body) = match req {
        Request::Chat(chat) => ("chat", encode_chat(chat)?),
        Request::Embeddings(e) => {
            // `user` only labels the request for the vendor's abuse tracking; Ollama has none.
            let input: usize = e.input.iter().map(|s| s.len() + 4).sum();
            let mut w = JsonWriter::with_capacity(input + 64);
            w.begin_object();
            w.key("model").str(&e.model);
            w.key("input").begin_array();
            for s in &e.input {
                w.str(s);
            }
            w.end_array();
            if let Some(d) = e.dimensions {
                w.key("dimensions").u64(d.into());
            }
            w.end_object();
            ("embed", w.into_bytes())
        }
    };
    Ok(Outgoing {
        path: format!("{}/api/{op}", spec.base_path),
        headers: vec![("content-type".into(), "application/json".into())],
        body,
    })
}

/// The top-level fields [`encode_chat`] writes itself; `extra` fields never replace them, and
/// an `extra.options` object is merged into `options`.
const OWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "tools",
    "format",
    "options",
    "keep_alive",
    "stream",
];

/// The `options` [`encode_chat`] fills from IR fields.
const OWN_OPTIONS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "num_predict",
    "presence_penalty",
    "frequency_penalty",
    "stop",
];

fn encode_chat(chat: &ChatRequest) -> Result<Vec<u8>, WireError> {
    reject_foreign_extra(chat, Family::Ollama, TARGET)?;
    if chat.n.is_some_and(|n| n > 1) {
        return Err(WireError::unsupported("n", TARGET));
    }
    // Ollama cannot force a tool call; "none" is honoured by not offering the tools at all.
    if matches!(
        chat.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Tool(_))
    ) {
        return Err(WireError::unsupported("tool_choice", TARGET));
    }
    if chat.parallel_tool_calls == Some(false) {
        return Err(WireError::unsupported("parallel_tool_calls", TARGET));
    }
    let mut w = JsonWriter::with_capacity(body_size_hint(chat));
    w.begin_object();
    w.key("model").str(&chat.model);
    w.key("messages").begin_array();
    let messages = Path::field("messages");
    for (i, m) in chat.messages.iter().enumerate() {
        encode_message(chat, i, m, messages.index(i), &mut w)?;
    }
    w.end_array();
    if !chat.tools.is_empty() && chat.tool_choice != Some(ToolChoice::None) {
        crate::wire::openai::write_tools(&chat.tools, &mut w);
    }
    match &chat.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            w.key("format").str("json");
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            w.key("format").value(schema);
        }
    }
    for (key, value) in &chat.extra {
        if !OWN_FIELDS.contains(&key.as_str()) {
            w.key(key).value(value);
        }
    }
    encode_options(chat, &mut w);
    if let Some(keep_alive) = &chat.keep_alive {
        w.key("keep_alive").value(keep_alive);
    }
    // Ollama streams unless told otherwise, so the choice is always spelled out. `user` is not
    // sent: it only labels the request for a vendor's abuse tracking, which Ollama has not.
    w.key("stream").bool(chat.stream);
    w.end_object();
    Ok(w.into_bytes())
}

/// `options`: the sampling fields, then the sampling options an Ollama client passed through;
/// left out when there are none.
fn encode_options(chat: &ChatRequest, w: &mut JsonWriter) {
    let mut opened = false;
    let mut key = |w: &mut JsonWriter, name: &str| {
        if !opened {
            w.key("options").begin_object();
            opened = true;
        }
        w.key(name);
    };
    for (name, v) in [("temperature", chat.temperature), ("top_p", chat.top_p)] {
        if let Some(v) = v {
            key(w, name);
            w.f64(v);
        }
    }
    if let Some(k) = chat.top_k {
        key(w, "top_k");
        w.u64(k.into());
    }
    if let Some(seed) = chat.seed {
        key(w, "seed");
        w.i64(seed);
    }
    if let Some(n) = chat.max_tokens {
        key(w, "num_predict");
        w.u64(n.into());
    }
    for (name, v) in [
        ("presence_penalty", chat.presence_penalty),
        ("frequency_penalty", chat.frequency_penalty),
    ] {
        if let Some(v) = v {
            key(w, name);
            w.f64(v);
        }
    }
    if !chat.stop.is_empty() {
        key(w, "stop");
        w.begin_array();
        for s in &chat.stop {
            w.str(s);
        }
        w.end_array();
    }
    if let Some(Value::Object(extra)) = chat.extra.get("options") {
        for (name, v) in extra {
            if !OWN_OPTIONS.contains(&name.as_str()) {
                key(w, name);
                w.value(v);
            }
        }
    }
    if opened {
        w.end_object();
    }
}

fn encode_message(
    chat: &ChatRequest,
    i: usize,
    m: &Message,
    path: Path<'_>,
    w: &mut JsonWriter,
) -> Result<(), WireError> {
    let role = match m.role {
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    w.begin_object();
    w.key("role").str(role);
    w.key("content").str(&m.joined_text());
    let mut images = false;
    for (k, part) in m.content.iter().enumerate() {
        match part {
            Part::Reasoning { .. } => {}
            Part::Text { .. } => {}
            // Ollama takes bare base64 and sniffs the type itself.
            Part::Image {
                source: Media::Base64 { data, .. },
            } => {
                if !images {
                    w.key("images").begin_array();
                    images = true;
                }
                w.str(data);
            }
            Part::Image { .. } | Part::Document { .. } => {
                return Err(WireError::unsupported(path.key("content").index(k), TARGET))
            }
        }
    }
    if images {
        w.end_array();
    }
    if !m.tool_calls.is_empty() {
        w.key("tool_calls").begin_array();
        for (j, c) in m.tool_calls.iter().enumerate() {
            let arguments = args::object(&c.arguments).ok_or_else(|| {
                let calls = path.key("tool_calls");
                let call = calls.index(j);
                must_be(call.key("function").key("arguments"), "a JSON object")
            })?;
            // No `id`: Ollama's own request types (the `ollama` client's `Message.ToolCall`) have
            // none, results are matched by `tool_name`.
            w.begin_object();
            w.key("function").begin_object();
            w.key("name").str(&c.name);
            w.key("arguments").json(&arguments);
            w.end_object().end_object();
        }
        w.end_array();
    }
    if m.role == Role::Tool {
        // Ollama matches results to calls by function name; `is_error` has no Ollama form, and
        // the result text is what tells the model what went wrong.
        let name = m.name.as_deref().or_else(|| {
            m.tool_call_id
                .as_deref()
                .and_then(|id| call_name(chat, i, id))
        });
        if let Some(name) = name {
            w.key("tool_name").str(name);
        }
    }
    w.end_object();
    Ok(())
}

/// The name of call `id` in the nearest assistant turn before message `i`. Searching backwards
/// (unlike `wire::tool_name_for`) picks the right call when ids repeat across turns, as
/// id-less formats' generated ids do.
fn call_name<'c>(chat: &'c ChatRequest, i: usize, id: &str) -> Option<&'c str> {
    chat.messages
        .get(..i)?
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls.iter())
        .find(|c| c.id == id)
        .map(|c| c.name.as_str())
}

#[derive(Deserialize, Default)]
pub(super) struct WireMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
pub(super) struct WireToolCall {
    #[serde(default)]
    pub id: Option<String>,
    pub function: WireFunction,
}

#[derive(Deserialize)]
pub(super) struct WireFunction {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// One chat line or complete chat answer; `response` is `/api/generate`'s text field.
#[derive(Deserialize, Default)]
pub(super) struct WireChat {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub message: Option<WireMessage>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub done_reason: Option<String>,
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    #[serde(default)]
    pub eval_count: Option<u64>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Deserialize)]
struct WireEmbed {
    #[serde(default)]
    model: String,
    #[serde(default)]
    embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
}

/// Ollama's creation time, else the host clock's.
pub(super) fn created_of(line: &WireChat, created: u64) -> u64 {
    line.created_at
        .as_deref()
        .and_then(crate::time::parse_rfc3339)
        .unwrap_or(created)
}

/// Ollama gives tool calls no id; these are unique per answer and deterministic.
pub(super) fn call_id(call: &WireToolCall, created: u64, i: u32) -> String {
    call.id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("call_{created}_{i}"))
}

pub(super) fn finish_of(done_reason: Option<&str>, called_tools: bool) -> FinishReason {
    match done_reason {
        // Ollama says "stop" after tool calls too.
        _ if called_tools => FinishReason::ToolCalls,
        Some("length") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

pub(super) fn usage_of(line: &WireChat) -> Usage {
    Usage {
        input_tokens: line.prompt_eval_count.unwrap_or(0),
        output_tokens: line.eval_count.unwrap_or(0),
        cached_input_tokens: 0,
        reasoning_tokens: 0,
    }
}

pub(super) fn error_message(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn decode_response(
    req: &Request,
    status: u16,
    body: &[u8],
    created: u64,
) -> Result<Response, WireError> {
    if !(200..300).contains(&status) {
        let message = serde_json::from_slice::<WireChat>(body)
            .ok()
            .and_then(|b| b.error.as_ref().map(error_message))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("the Ollama provider answered with status {status}"));
        return Ok(Response::Error(ErrorInfo::new(
            status,
            ErrorInfo::kind_for_status(status),
            message,
        )));
    }
    let unreadable =
        |e: serde_json::Error| WireError::upstream(format!("unreadable Ollama answer: {e}"));
    if let Request::Embeddings(_) = req {
        let e: WireEmbed = serde_json::from_slice(body).map_err(unreadable)?;
        return Ok(Response::Embeddings(EmbeddingsResponse {
            model: e.model,
            data: e.embeddings,
            usage: Some(Usage {
                input_tokens: e.prompt_eval_count.unwrap_or(0),
                ..Usage::default()
            }),
        }));
    }
    let line: WireChat = serde_json::from_slice(body).map_err(unreadable)?;
    if let Some(error) = &line.error {
        return Ok(Response::Error(ErrorInfo::new(
            502,
            ErrorKind::Upstream,
            error_message(error),
        )));
    }
    let created_at = created_of(&line, created);
    let message = line.message.as_ref();
    let text = message
        .and_then(|m| m.content.clone())
        .or_else(|| line.response.clone())
        .unwrap_or_default();
    let tool_calls: Vec<ToolCall> = message
        .map(|m| m.tool_calls.as_slice())
        .unwrap_or_default()
        .iter()
        .zip(0u32..)
        .map(|(c, i)| ToolCall {
            id: call_id(c, created, i),
            name: c.function.name.clone(),
            arguments: args::text(&c.function.arguments),
        })
        .collect();
    let finish_reason = finish_of(line.done_reason.as_deref(), !tool_calls.is_empty());
    Ok(Response::Chat(ChatResponse {
        id: format!("ollama-{created}"),
        model: line.model.clone(),
        created: created_at,
        choices: vec![Choice {
            index: 0,
            message: Message {
                tool_calls,
                ..Message::text(Role::Assistant, text)
            },
            finish_reason,
        }],
        usage: Some(usage_of(&line)),
    }))
}
