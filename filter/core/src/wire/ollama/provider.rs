//! The `ollama` provider format: IR requests to `{base}/api/chat` (or `/api/generate`, for an
//! Ollama client's generate request with `suffix`, `raw`, `template` or `context`) and
//! `{base}/api/embed`, and Ollama's complete answers and `{"error"}` bodies back to IR.

use crate::ir::*;
use crate::wire::json::{must_be, JsonWriter, Path};
use crate::wire::{
    args, body_size_hint, reasoning, reject_foreign_extra, system_text, Outgoing, ProviderSpec,
    WireError,
};
use serde::Deserialize;
use serde_json::Value;

const TARGET: &str = "ollama";

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let (op, body) = match req {
        Request::CountTokens(_) => return Err(WireError::unsupported("count_tokens", TARGET)),
        Request::Chat(chat) if generate_only(chat) => ("generate", encode_chat(chat, true)?),
        Request::Chat(chat) => ("chat", encode_chat(chat, false)?),
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
/// `options.<name>` extras are merged into `options`.
const OWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "system",
    "images",
    "tools",
    "format",
    "options",
    "keep_alive",
    "think",
    "stream",
];

/// `/api/generate` fields with no `/api/chat` counterpart.
const GENERATE_ONLY: &[&str] = &["suffix", "raw", "template", "context"];

fn generate_only(chat: &ChatRequest) -> bool {
    chat.extra_family == Some(Family::Ollama)
        && GENERATE_ONLY.iter().any(|k| chat.extra.contains_key(*k))
}

/// `think`: off, a level for the models that take levels (gpt-oss), else on.
fn think(model: &str, r: &Reasoning) -> Value {
    if reasoning::is_off(r) {
        return Value::Bool(false);
    }
    match r.effort.filter(|_| model.contains("gpt-oss")) {
        Some(Effort::Minimal | Effort::Low) => Value::from("low"),
        Some(Effort::Medium) => Value::from("medium"),
        Some(_) => Value::from("high"),
        None => Value::Bool(true),
    }
}

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

fn encode_chat(chat: &ChatRequest, generate: bool) -> Result<Vec<u8>, WireError> {
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
    if chat.user.is_some() {
        return Err(WireError::unsupported("user", TARGET));
    }
    let mut w = JsonWriter::with_capacity(body_size_hint(chat));
    w.begin_object();
    w.key("model").str(&chat.model);
    if generate {
        encode_prompt(chat, &mut w)?;
    } else {
        w.key("messages").begin_array();
        let messages = Path::field("messages");
        for (i, m) in chat.messages.iter().enumerate() {
            encode_message(chat, i, m, messages.index(i), &mut w)?;
        }
        w.end_array();
        if !chat.tools.is_empty() && chat.tool_choice != Some(ToolChoice::None) {
            crate::wire::openai::write_tools(&chat.tools, &mut w, Some(parameters));
        }
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
    if let Some(r) = &chat.reasoning {
        w.key("think").value(&think(&chat.model, r));
    }
    for (key, value) in &chat.extra {
        if !OWN_FIELDS.contains(&key.as_str()) && !key.starts_with("options.") {
            w.key(key).value(value);
        }
    }
    encode_options(chat, &mut w);
    if let Some(keep_alive) = &chat.keep_alive {
        w.key("keep_alive").value(keep_alive);
    }
    // Ollama streams unless told otherwise, so the choice is always spelled out.
    w.key("stream").bool(chat.stream);
    w.end_object();
    Ok(w.into_bytes())
}

/// A tool's JSON Schema as Ollama's `Tool.Function.Parameters`: `type`, `$defs`, `items`,
/// `required`, and `properties` each with `type`, `items`, `description` and `enum` (the server
/// ignores the rest of a JSON Schema: `title`, `additionalProperties`, `format`, ...).
fn parameters(schema: &Value) -> Value {
    let pick = |from: &serde_json::Map<String, Value>, keys: &[&str]| -> Value {
        Value::Object(
            keys.iter()
                .filter_map(|k| Some(((*k).to_string(), from.get(*k)?.clone())))
                .collect(),
        )
    };
    let Some(obj) = schema.as_object() else {
        return serde_json::json!({"type": "object", "properties": {}});
    };
    let mut out = pick(obj, &["type", "$defs", "items", "required"]);
    if let (Value::Object(out), Some(Value::Object(props))) = (&mut out, obj.get("properties")) {
        let props: serde_json::Map<String, Value> = props
            .iter()
            .map(|(name, p)| {
                let p = match p.as_object() {
                    Some(p) => pick(p, &["type", "items", "description", "enum"]),
                    None => Value::Object(serde_json::Map::new()),
                };
                (name.clone(), p)
            })
            .collect();
        out.insert("properties".into(), Value::Object(props));
    }
    out
}

/// `/api/generate`'s `system`, `prompt` and `images`, from the request an Ollama client's
/// generate call decoded to (a system turn and one user turn).
fn encode_prompt(chat: &ChatRequest, w: &mut JsonWriter) -> Result<(), WireError> {
    if let Some(system) = system_text(chat) {
        w.key("system").str(&system);
    }
    let mut prompt = String::new();
    let mut images = Vec::new();
    for (i, m) in chat.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => {}
            Role::User => {
                for (k, p) in m.content.iter().enumerate() {
                    match p {
                        Part::Text { text } => prompt.push_str(text),
                        Part::Image {
                            source: Media::Base64 { data, .. },
                        } => images.push(data.as_str()),
                        _ => {
                            let field = format!("messages[{i}].content[{k}]");
                            return Err(WireError::unsupported(field, TARGET));
                        }
                    }
                }
            }
            // A conversation is not a generate prompt.
            _ => return Err(WireError::unsupported(format!("messages[{i}]"), TARGET)),
        }
    }
    w.key("prompt").str(&prompt);
    if !images.is_empty() {
        w.key("images").begin_array();
        for data in images {
            w.str(data);
        }
        w.end_array();
    }
    Ok(())
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
    for (name, v) in &chat.extra {
        if let Some(name) = name.strip_prefix("options.") {
            if !OWN_OPTIONS.contains(&name) {
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
    let mut content = m.joined_text();
    // Ollama has no refusal field: a refusal in the history is what the model said.
    if let Some(r) = &m.refusal {
        content.push_str(r);
    }
    w.key("content").str(&content);
    let thinking: String = m
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Reasoning { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if !thinking.is_empty() {
        w.key("thinking").str(&thinking);
    }
    let mut images = false;
    for (k, part) in m.content.iter().enumerate() {
        match part {
            Part::Reasoning { .. } | Part::Native { .. } => {}
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
            Part::Image { .. } => {
                return Err(WireError::needs_bytes(
                    path.key("content").index(k).to_string(),
                    TARGET,
                ))
            }
            Part::Document { .. } => {
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
    pub thinking: Option<String>,
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
    /// `/api/generate`'s reasoning (chat puts it in `message`).
    #[serde(default)]
    pub thinking: Option<String>,
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

/// A line's reasoning text, from `/api/chat`'s message or `/api/generate`'s top level.
pub(super) fn thinking_of(line: &WireChat) -> Option<&str> {
    line.message
        .as_ref()
        .and_then(|m| m.thinking.as_deref())
        .or(line.thinking.as_deref())
        .filter(|t| !t.is_empty())
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
    let mut message = Message {
        tool_calls,
        ..Message::text(Role::Assistant, text)
    };
    if let Some(thinking) = thinking_of(&line) {
        message.content.insert(
            0,
            Part::Reasoning {
                text: thinking.to_string(),
                signature: None,
                redacted: None,
                id: None,
                origin: None,
            },
        );
    }
    Ok(Response::Chat(ChatResponse {
        id: format!("ollama-{created}"),
        model: line.model.clone(),
        created: created_at,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason,
        }],
        usage: Some(usage_of(&line)),
    }))
}
