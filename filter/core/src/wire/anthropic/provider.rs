//! The `anthropic` provider format: IR requests to `POST {base}/v1/messages`, and Anthropic's
//! complete answers and error bodies back to IR.

use super::client::{finish_reason, usage_from, COUNT_PASSTHROUGH};
use crate::ir::*;
use crate::wire::json::{must_be, required, JsonWriter, Path};
use crate::wire::{
    args, body_size_hint, media, reasoning, reject_foreign_extra, system_text, Outgoing,
    ProviderSpec, WireError,
};
use serde::Deserialize;
use serde_json::Value;

const TARGET: &str = "anthropic";

/// Anthropic requires `max_tokens`; clients of other protocols may omit it. 4096 is what every
/// current Claude model can produce and long enough not to cut ordinary answers short.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let (chat, count) = match req {
        Request::Chat(c) => (c, false),
        Request::CountTokens(c) => (c, true),
        Request::Embeddings(_) => return Err(WireError::unsupported("embeddings", TARGET)),
    };
    reject_foreign_extra(chat, Family::Anthropic, TARGET)?;
    if chat.n.is_some_and(|n| n > 1) {
        return Err(WireError::unsupported("n", TARGET));
    }
    let unsupported = [
        ("seed", chat.seed.is_some()),
        ("presence_penalty", chat.presence_penalty.is_some()),
        ("frequency_penalty", chat.frequency_penalty.is_some()),
        ("keep_alive", chat.keep_alive.is_some()),
        (
            // Anthropic's structured outputs take a schema; it has no schemaless JSON mode.
            "response_format",
            matches!(chat.response_format, Some(ResponseFormat::JsonObject)),
        ),
    ];
    if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(WireError::unsupported(*field, TARGET));
    }
    let (thinking, max_tokens) = claude_thinking(chat)?;

    let mut w = JsonWriter::with_capacity(body_size_hint(chat));
    w.begin_object();
    w.key("model").str(&chat.model);
    if !count {
        w.key("max_tokens").u64(max_tokens.into());
    }
    if let Some(system) = system_text(chat) {
        w.key("system").str(&system);
    }
    w.key("messages");
    encode_messages(chat, &mut w)?;
    if !count {
        if !chat.stop.is_empty() {
            w.key("stop_sequences").begin_array();
            for s in &chat.stop {
                w.str(s);
            }
            w.end_array();
        }
        if let Some(t) = chat.temperature {
            w.key("temperature").f64(t);
        }
        if let Some(p) = chat.top_p {
            w.key("top_p").f64(p);
        }
        if let Some(k) = chat.top_k {
            w.key("top_k").u64(k.into());
        }
        if let Some(user) = &chat.user {
            w.key("metadata").begin_object();
            w.key("user_id").str(user).end_object();
        }
    }
    if !chat.tools.is_empty() {
        w.key("tools").begin_array();
        for (i, tool) in chat.tools.iter().enumerate() {
            encode_tool(chat, i, tool, &mut w);
        }
        w.end_array();
        encode_tool_choice(chat, &mut w);
    }
    if let Some(t) = &thinking {
        w.key("thinking").value(t);
    }
    // Extras are Anthropic fields the IR has no place for, so none should be named like a
    // field written here; if one is, the field written here stands. Tools' own extras went
    // with their tools; `count_tokens` takes only some.
    for (key, value) in &chat.extra {
        let own = OWN_FIELDS.contains(&key.as_str()) || key.starts_with("tools[");
        if !own && (!count || COUNT_PASSTHROUGH.contains(&key.as_str())) {
            w.key(key).value(value);
        }
    }
    encode_output_config(chat, &mut w);
    if !count {
        w.key("stream").bool(chat.stream);
    }
    w.end_object();
    let op = if count {
        "messages/count_tokens"
    } else {
        "messages"
    };
    Ok(Outgoing {
        path: format!("{}/v1/{op}", spec.base_path),
        headers: vec![
            ("anthropic-version".into(), spec.anthropic_version.clone()),
            ("content-type".into(), "application/json".into()),
        ],
        body: w.into_bytes(),
    })
}

/// The top-level fields [`encode_request`] writes itself, which `extra` fields never replace.
const OWN_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "system",
    "messages",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "stream",
];

/// Anthropic's `thinking`, from IR reasoning (the table is in docs/translation.md).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Thinking {
    Disabled,
    BetweenTools,
    Adaptive { display: Option<bool> },
    Enabled { budget: u32, display: Option<bool> },
}

impl Thinking {
    fn to_value(&self) -> Value {
        let (kind, budget, display) = match *self {
            Thinking::Disabled => ("disabled", None, None),
            Thinking::BetweenTools => ("between_tools", None, None),
            Thinking::Adaptive { display } => ("adaptive", None, display),
            Thinking::Enabled { budget, display } => ("enabled", Some(budget), display),
        };
        let mut v = serde_json::json!({ "type": kind });
        if let Some(b) = budget {
            crate::wire::json::set(&mut v, "budget_tokens", b.into());
        }
        if let Some(visible) = display {
            let display = if visible { "summarized" } else { "omitted" };
            crate::wire::json::set(&mut v, "display", display.into());
        }
        v
    }
}

/// Anthropic's `thinking` for the request's reasoning, and the `max_tokens` it needs (see
/// [`fit_budget`]); Claude on Bedrock takes both too. No thinking when the request has no
/// reasoning or only sets an effort level.
pub(crate) fn claude_thinking(chat: &ChatRequest) -> Result<(Option<Value>, u32), WireError> {
    let mut thinking = chat.reasoning.as_ref().and_then(thinking_config);
    let max = fit_budget(chat, &mut thinking)?;
    Ok((thinking.map(|t| t.to_value()), max))
}

/// Anthropic's smallest thinking budget.
const MIN_BUDGET: u32 = 1024;

/// `None` when the request only sets an effort level, which is `output_config.effort`.
fn thinking_config(r: &Reasoning) -> Option<Thinking> {
    let display = r.visible;
    if reasoning::is_off(r) {
        return Some(Thinking::Disabled);
    }
    if r.between_tools {
        return Some(Thinking::BetweenTools);
    }
    if r.adaptive {
        return Some(Thinking::Adaptive { display });
    }
    if r.budget_tokens.is_some() || r.enabled == Some(true) {
        let budget = reasoning::budget_of(r, Effort::Medium).max(MIN_BUDGET);
        return Some(Thinking::Enabled { budget, display });
    }
    None
}

/// `max_tokens` and, with it, the thinking budget, which must fit below it. Without a client
/// limit the default grows by the budget. A budget weir derived (from an effort level, or
/// reasoning merely turned on) shrinks to fit the client's limit, and a limit too small for
/// Anthropic's smallest budget cannot think at all; a budget the client named is the client's
/// to get right, and goes as it is.
fn fit_budget(chat: &ChatRequest, thinking: &mut Option<Thinking>) -> Result<u32, WireError> {
    let derived = chat
        .reasoning
        .as_ref()
        .is_some_and(|r| r.budget_tokens.is_none());
    let Some(Thinking::Enabled { budget, .. }) = thinking else {
        return Ok(chat.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS));
    };
    match chat.max_tokens {
        None => Ok(DEFAULT_MAX_TOKENS.saturating_add(*budget)),
        Some(max) if max > *budget || !derived => Ok(max),
        Some(max) if max > MIN_BUDGET => {
            *budget = max - 1;
            Ok(max)
        }
        Some(_) => Err(WireError::unsupported("reasoning", TARGET)),
    }
}

/// `output_config`: a JSON schema's `format` and the effort level, left out when there is
/// neither. An effort level that only stood for the thinking budget is not repeated here.
fn encode_output_config(chat: &ChatRequest, w: &mut JsonWriter) {
    let schema = match &chat.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(schema),
        _ => None,
    };
    let derived = chat.reasoning.as_ref().is_some_and(|r| {
        matches!(thinking_config(r), Some(Thinking::Enabled { .. })) && r.budget_tokens.is_none()
    });
    let effort = chat
        .reasoning
        .as_ref()
        .and_then(|r| r.effort)
        .filter(|_| !derived);
    if schema.is_none() && effort.is_none() {
        return;
    }
    w.key("output_config").begin_object();
    if let Some(schema) = schema {
        w.key("format").begin_object();
        w.key("type").str("json_schema");
        w.key("schema").value(schema).end_object();
    }
    if let Some(effort) = effort {
        w.key("effort").str(match effort {
            Effort::Minimal | Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::Xhigh => "xhigh",
            Effort::Max => "max",
        });
    }
    w.end_object();
}

fn encode_tool(chat: &ChatRequest, i: usize, tool: &Tool, w: &mut JsonWriter) {
    w.begin_object();
    w.key("name").str(&tool.name);
    if let Some(d) = &tool.description {
        w.key("description").str(d);
    }
    w.key("input_schema");
    if tool.parameters.is_object() {
        w.value(&tool.parameters);
    } else {
        // OpenAI lets a function omit its parameters; Anthropic requires a schema.
        w.begin_object();
        w.key("type").str("object");
        w.key("properties").begin_object().end_object();
        w.end_object();
    }
    if let Some(strict) = tool.strict {
        w.key("strict").bool(strict);
    }
    let prefix = format!("tools[{i}].");
    for (key, value) in &chat.extra {
        if let Some(name) = key.strip_prefix(&prefix) {
            w.key(name).value(value);
        }
    }
    w.end_object();
}

fn encode_tool_choice(chat: &ChatRequest, w: &mut JsonWriter) {
    let (kind, name) = match &chat.tool_choice {
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::None) => ("none", None),
        Some(ToolChoice::Tool(name)) => ("tool", Some(name)),
    };
    // `none` has no parallelism switch; an unset choice is worth sending only to turn it off.
    let serial = chat.parallel_tool_calls == Some(false) && kind != "none";
    if chat.tool_choice.is_none() && !serial {
        return;
    }
    w.key("tool_choice").begin_object();
    w.key("type").str(kind);
    if let Some(name) = name {
        w.key("name").str(name);
    }
    if serial {
        w.key("disable_parallel_tool_use").bool(true);
    }
    w.end_object();
}

fn encode_messages(chat: &ChatRequest, w: &mut JsonWriter) -> Result<(), WireError> {
    let messages = Path::field("messages");
    w.begin_array();
    // Whether the turn written last is a user turn of tool results still open for more:
    // Anthropic wants all results for one assistant turn in one user turn.
    let mut open_results = false;
    for (i, m) in chat.messages.iter().enumerate() {
        let path = messages.index(i);
        if matches!(m.role, Role::User | Role::Assistant) && open_results {
            w.end_array().end_object();
            open_results = false;
        }
        match m.role {
            Role::System | Role::Developer => continue,
            Role::User => {
                w.begin_object();
                w.key("role").str("user");
                w.key("content");
                encode_content(&m.content, path, w)?;
                w.end_object();
            }
            Role::Assistant => {
                w.begin_object();
                w.key("role").str("assistant");
                w.key("content").begin_array();
                encode_blocks(&m.content, path, w)?;
                // A refusal in the history is what the model said.
                if let Some(refusal) = m.refusal.as_deref().filter(|r| !r.is_empty()) {
                    w.begin_object();
                    w.key("type").str("text");
                    w.key("text").str(refusal).end_object();
                }
                for (j, call) in m.tool_calls.iter().enumerate() {
                    let input = args::object(&call.arguments).ok_or_else(|| {
                        let calls = path.key("tool_calls");
                        let function = calls.index(j);
                        must_be(function.key("function").key("arguments"), "a JSON object")
                    })?;
                    w.begin_object();
                    w.key("type").str("tool_use");
                    w.key("id").str(&call.id);
                    w.key("name").str(&call.name);
                    w.key("input").json(&input).end_object();
                }
                w.end_array().end_object();
            }
            Role::Tool => {
                let id = m
                    .tool_call_id
                    .as_deref()
                    .ok_or_else(|| required(path.key("tool_call_id")))?;
                if !open_results {
                    w.begin_object();
                    w.key("role").str("user");
                    w.key("content").begin_array();
                    open_results = true;
                }
                w.begin_object();
                w.key("type").str("tool_result");
                w.key("tool_use_id").str(id);
                if !m.content.is_empty() {
                    w.key("content");
                    encode_content(&m.content, path, w)?;
                }
                if m.is_error {
                    w.key("is_error").bool(true);
                }
                w.end_object();
            }
        }
    }
    if open_results {
        w.end_array().end_object();
    }
    w.end_array();
    Ok(())
}

/// A lone text part goes as a plain string, the shape Anthropic documents first.
fn encode_content(parts: &[Part], path: Path<'_>, w: &mut JsonWriter) -> Result<(), WireError> {
    if let [Part::Text { text }] = parts {
        w.str(text);
        return Ok(());
    }
    w.begin_array();
    encode_blocks(parts, path, w)?;
    w.end_array();
    Ok(())
}

/// The content blocks of `parts`, into an array the caller opened.
fn encode_blocks(parts: &[Part], path: Path<'_>, w: &mut JsonWriter) -> Result<(), WireError> {
    let content = path.key("content");
    for (k, part) in parts.iter().enumerate() {
        match part {
            // Only Anthropic can verify its own signed or encrypted reasoning; anything else
            // (unsigned reasoning, another provider's) cannot be sent as a thinking block.
            Part::Reasoning {
                text,
                signature: Some(sig),
                redacted: None,
                origin: Some(Origin::Anthropic),
                ..
            } => {
                w.begin_object();
                w.key("type").str("thinking");
                w.key("thinking").str(text);
                w.key("signature").str(sig).end_object();
            }
            Part::Reasoning {
                redacted: Some(data),
                origin: Some(Origin::Anthropic),
                ..
            } => {
                w.begin_object();
                w.key("type").str("redacted_thinking");
                w.key("data").str(data).end_object();
            }
            Part::Reasoning { .. } | Part::Native { .. } => continue,
            // Anthropic rejects empty text blocks; an empty part says nothing anyway.
            Part::Text { text } if text.is_empty() => continue,
            Part::Text { text } => {
                w.begin_object();
                w.key("type").str("text");
                w.key("text").str(text).end_object();
            }
            Part::Image { source } => {
                w.begin_object();
                w.key("type").str("image");
                w.key("source");
                encode_source(source, w);
                w.end_object();
            }
            Part::Document { source, title } => {
                let field = content.index(k);
                let text = match source {
                    Media::Base64 { media_type, data } if media_type == "text/plain" => Some(
                        media::base64_decode(data.as_bytes())
                            .and_then(|b| String::from_utf8(b).ok())
                            .ok_or_else(|| {
                                let message = format!("`{field}` is not valid base64 UTF-8 text");
                                WireError::invalid(field, message)
                            })?,
                    ),
                    Media::Base64 { media_type, .. } if media_type != "application/pdf" => {
                        return Err(WireError::unsupported(field, TARGET));
                    }
                    _ => None,
                };
                w.begin_object();
                w.key("type").str("document");
                w.key("source");
                match text {
                    Some(text) => {
                        w.begin_object();
                        w.key("type").str("text");
                        w.key("media_type").str("text/plain");
                        w.key("data").str(&text).end_object();
                    }
                    None => encode_source(source, w),
                }
                if let Some(t) = title {
                    w.key("title").str(t);
                }
                w.end_object();
            }
        }
    }
    Ok(())
}

fn encode_source(media: &Media, w: &mut JsonWriter) {
    w.begin_object();
    match media {
        Media::Base64 { media_type, data } => {
            w.key("type").str("base64");
            w.key("media_type").str(media_type);
            w.key("data").str(data);
        }
        Media::Url { url } => {
            w.key("type").str("url");
            w.key("url").str(url);
        }
    }
    w.end_object();
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// One content block of any type; flat so that block types added later do not fail parsing.
#[derive(Deserialize)]
pub(super) struct WireBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
pub(super) struct WireErrorObject {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct WireErrorBody {
    error: WireErrorObject,
}

/// Anthropic's answer as IR. Anthropic reports no creation time: `created` stays 0 for the
/// caller to stamp.
pub fn decode_response(req: &Request, status: u16, body: &[u8]) -> Result<Response, WireError> {
    if !(200..300).contains(&status) {
        return Ok(Response::Error(error_from_body(status, body)));
    }
    if let Request::Embeddings(_) = req {
        return Err(WireError::upstream("anthropic has no embeddings endpoint"));
    }
    if let Request::CountTokens(_) = req {
        #[derive(Deserialize)]
        struct Count {
            input_tokens: u64,
        }
        let c: Count = serde_json::from_slice(body)
            .map_err(|e| WireError::upstream(format!("unreadable token count: {e}")))?;
        return Ok(Response::TokenCount(TokenCount {
            input_tokens: c.input_tokens,
            estimated: false,
        }));
    }
    let msg: WireMessage = serde_json::from_slice(body)
        .map_err(|e| WireError::upstream(format!("unreadable Anthropic message: {e}")))?;
    let mut message = Message {
        content: Vec::new(),
        ..Message::text(Role::Assistant, "")
    };
    for block in msg.content {
        match block.kind.as_str() {
            "text" => message.content.push(Part::Text {
                text: block.text.unwrap_or_default(),
            }),
            "tool_use" => message.tool_calls.push(ToolCall {
                id: block.id.unwrap_or_default(),
                name: block.name.unwrap_or_default(),
                arguments: args::text(&block.input.unwrap_or(Value::Null)),
            }),
            "thinking" => message.content.push(Part::Reasoning {
                text: block.thinking.unwrap_or_default(),
                signature: block.signature.filter(|s| !s.is_empty()),
                redacted: None,
                id: None,
                origin: Some(Origin::Anthropic),
            }),
            "redacted_thinking" => message.content.push(Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: block.data,
                id: None,
                origin: Some(Origin::Anthropic),
            }),
            // Server-tool blocks have no IR form; the answer is the text, reasoning and calls.
            _ => {}
        }
    }
    let usage = msg.usage.unwrap_or_default();
    Ok(Response::Chat(ChatResponse {
        id: msg.id,
        model: msg.model,
        created: 0,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: finish_reason(msg.stop_reason.as_deref().unwrap_or("end_turn")),
        }],
        usage: Some(usage_from(
            usage.input_tokens.unwrap_or(0),
            usage.cache_read_input_tokens.unwrap_or(0),
            usage.cache_creation_input_tokens.unwrap_or(0),
            usage.output_tokens.unwrap_or(0),
        )),
    }))
}

fn error_from_body(status: u16, body: &[u8]) -> ErrorInfo {
    // 529 (overloaded) stays 529: Anthropic clients raise `OverloadedError` on it, and
    // `ClientApi::status` shows it as 503 to the others.
    let error = serde_json::from_slice::<WireErrorBody>(body)
        .map(|b| b.error)
        .ok();
    let kind = match error.as_ref() {
        Some(e) if e.kind == "authentication_error" => ErrorKind::Authentication,
        _ => ErrorInfo::kind_for_status(status),
    };
    let message = error
        .map(|e| e.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("the Anthropic provider answered with status {status}"));
    ErrorInfo::new(status, kind, message)
}
