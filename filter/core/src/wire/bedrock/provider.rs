//! The `bedrock` provider format: IR requests to Converse / ConverseStream, and complete answers and error bodies back to IR.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::ir::*;
use crate::wire::json::{set, to_bytes};
// `path_segment` encodes a model id the way botocore does a non-greedy URI label: an ARN's `:`
// and `/` become `%3A` and `%2F`.
use crate::wire::{args, path_segment, reasoning, system_text, Outgoing, ProviderSpec, WireError};

pub(super) const TARGET: &str = "bedrock";

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let chat = match req {
        Request::Chat(c) => c,
        Request::Embeddings(_) => return Err(WireError::unsupported("embeddings", TARGET)),
        Request::CountTokens(_) => return Err(WireError::unsupported("count_tokens", TARGET)),
    };
    reject_unsupported(chat)?;
    let family = ModelFamily::of(&chat.model);
    let (additional, max_tokens) = additional_fields(chat, family)?;
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(encode_messages(chat)?));
    if let Some(system) = system_text(chat).filter(|s| !s.is_empty()) {
        body.insert("system".into(), json!([{ "text": system }]));
    }
    let mut inference = Map::new();
    if let Some(v) = max_tokens {
        inference.insert("maxTokens".into(), json!(v));
    }
    if let Some(v) = chat.temperature {
        inference.insert("temperature".into(), json!(v));
    }
    if let Some(v) = chat.top_p {
        inference.insert("topP".into(), json!(v));
    }
    if !chat.stop.is_empty() {
        inference.insert("stopSequences".into(), json!(chat.stop));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tool_config) = encode_tool_config(chat)? {
        body.insert("toolConfig".into(), tool_config);
    }
    if !additional.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    let op = if chat.stream {
        "converse-stream"
    } else {
        "converse"
    };
    let base = spec.base_path.trim_end_matches('/');
    Ok(Outgoing {
        path: format!("{base}/model/{}/{op}", path_segment(&chat.model)),
        headers: vec![("content-type".into(), "application/json".into())],
        body: to_bytes(&Value::Object(body)),
    })
}

/// The model families whose own request fields (`additionalModelRequestFields`) weir knows,
/// told by the model id (inference-profile prefixes such as `us.` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ModelFamily {
    Claude,
    Nova,
    Other,
}

impl ModelFamily {
    pub(super) fn of(model: &str) -> ModelFamily {
        if model.contains("anthropic.claude") {
            ModelFamily::Claude
        } else if model.contains("amazon.nova") {
            ModelFamily::Nova
        } else {
            ModelFamily::Other
        }
    }
}

/// `additionalModelRequestFields`: `top_k` and reasoning, spelled per family (Claude takes
/// Anthropic's own `top_k` and `thinking`; Nova `inferenceConfig.topK` and `reasoningConfig`);
/// other families have neither. Also the `maxTokens` to send: Claude's thinking budget must fit
/// below it, as on Anthropic's own API.
fn additional_fields(
    chat: &ChatRequest,
    family: ModelFamily,
) -> Result<(Map<String, Value>, Option<u32>), WireError> {
    let mut out = Map::new();
    let mut max_tokens = chat.max_tokens;
    if let Some(k) = chat.top_k {
        match family {
            ModelFamily::Claude => {
                out.insert("top_k".into(), json!(k));
            }
            ModelFamily::Nova => {
                out.insert("inferenceConfig".into(), json!({ "topK": k }));
            }
            ModelFamily::Other => return Err(WireError::unsupported("top_k", TARGET)),
        }
    }
    if let Some(r) = &chat.reasoning {
        // A forced tool (structured output) cannot be combined with thinking.
        let forced = structured_output(chat).is_some();
        match family {
            ModelFamily::Claude if !forced => {
                if let (Some(t), max) = crate::wire::anthropic::claude_thinking(chat)? {
                    out.insert("thinking".into(), t);
                    max_tokens = Some(max);
                }
            }
            ModelFamily::Nova if !forced => {
                let config = if reasoning::is_off(r) {
                    json!({ "type": "disabled" })
                } else {
                    let effort = match reasoning::effort_of(r).unwrap_or(Effort::Medium) {
                        Effort::Minimal | Effort::Low => "low",
                        Effort::Medium => "medium",
                        Effort::High | Effort::Xhigh | Effort::Max => "high",
                    };
                    json!({ "type": "enabled", "maxReasoningEffort": effort })
                };
                out.insert("reasoningConfig".into(), config);
            }
            _ => return Err(WireError::unsupported("reasoning", TARGET)),
        }
    }
    Ok((out, max_tokens))
}

/// IR fields Converse cannot express. Participant names are left out: Converse turns have none,
/// and they never change the answer.
pub(super) fn reject_unsupported(chat: &ChatRequest) -> Result<(), WireError> {
    if let Some(field) = chat.extra.keys().next() {
        return Err(WireError::unsupported(field.clone(), TARGET));
    }
    let fields = [
        ("user", chat.user.is_some()),
        ("keep_alive", chat.keep_alive.is_some()),
        ("seed", chat.seed.is_some()),
        ("n", chat.n.is_some_and(|n| n != 1)),
        ("presence_penalty", chat.presence_penalty.is_some()),
        ("frequency_penalty", chat.frequency_penalty.is_some()),
        // Structured output is a forced tool, which leaves no room for the client's own.
        (
            "response_format",
            structured_output(chat).is_some() && !chat.tools.is_empty(),
        ),
        // Converse may always call tools in parallel; it cannot be told not to.
        (
            "parallel_tool_calls",
            chat.parallel_tool_calls == Some(false) && !chat.tools.is_empty(),
        ),
    ];
    match fields.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(WireError::unsupported(*field, TARGET)),
        None => Ok(()),
    }
}

/// The tool Converse is forced to call for structured output; its input is the answer.
pub(super) const STRUCTURED_TOOL: &str = "json_response";

/// The schema a structured-output request wants (`{"type": "object"}` for plain JSON mode).
pub(super) fn structured_output(chat: &ChatRequest) -> Option<Value> {
    match &chat.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(tool_schema(schema)),
        Some(ResponseFormat::JsonObject) => Some(json!({ "type": "object" })),
        Some(ResponseFormat::Text) | None => None,
    }
}

pub(super) fn encode_messages(chat: &ChatRequest) -> Result<Vec<Value>, WireError> {
    // Converse requires user and assistant turns to alternate, so consecutive turns of one
    // role (including tool results, which are user content) are merged.
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in chat.messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => ("user", content_blocks(&m.content, i)?),
            Role::Assistant => {
                let mut blocks = content_blocks(&m.content, i)?;
                if let Some(r) = m.refusal.as_deref().filter(|r| !r.is_empty()) {
                    blocks.push(json!({ "text": r }));
                }
                for (k, call) in m.tool_calls.iter().enumerate() {
                    let field = format!("messages[{i}].tool_calls[{k}].function.arguments");
                    blocks.push(json!({ "toolUse": {
                        "toolUseId": call.id,
                        "name": call.name,
                        "input": args::object_at(&call.arguments, &field)?,
                    }}));
                }
                ("assistant", blocks)
            }
            Role::Tool => ("user", vec![tool_result(m, i)?]),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect())
}

pub(super) fn tool_result(m: &Message, i: usize) -> Result<Value, WireError> {
    let id = m.tool_call_id.as_deref().ok_or_else(|| {
        WireError::invalid(
            format!("messages[{i}].tool_call_id"),
            "a tool message must name the tool call it answers",
        )
    })?;
    // Text stays text (never re-serialised JSON), so the model sees exactly what the tool said.
    let content = content_blocks(&m.content, i)?;
    let mut block = json!({ "toolUseId": id, "content": content });
    // `status` is accepted only by some model families, so it is sent only when it matters.
    if m.is_error {
        set(&mut block, "status", json!("error"));
    }
    Ok(json!({ "toolResult": block }))
}

/// Text, image and document blocks. Converse rejects blank text blocks, so those are skipped.
pub(super) fn content_blocks(parts: &[Part], i: usize) -> Result<Vec<Value>, WireError> {
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let field = || format!("messages[{i}].content[{j}]");
        match part {
            // Claude on Bedrock verifies Anthropic's signatures (they hold across Anthropic's
            // platforms); other reasoning cannot go back.
            Part::Reasoning {
                text,
                signature: Some(sig),
                redacted: None,
                origin: Some(Origin::Anthropic),
                ..
            } => out.push(json!({ "reasoningContent": {
                "reasoningText": { "text": text, "signature": sig }
            }})),
            Part::Reasoning {
                redacted: Some(data),
                origin: Some(Origin::Anthropic),
                ..
            } => out.push(json!({ "reasoningContent": { "redactedContent": data } })),
            Part::Reasoning { .. } | Part::Native { .. } => {}
            Part::Text { text } if text.is_empty() => {}
            Part::Text { text } => out.push(json!({ "text": text })),
            Part::Image { source } => {
                let Media::Base64 { media_type, data } = source else {
                    return Err(WireError::needs_bytes(field(), TARGET));
                };
                let format = image_format(media_type)
                    .ok_or_else(|| WireError::unsupported(field(), TARGET))?;
                out.push(json!({ "image": { "format": format, "source": { "bytes": data } } }));
            }
            Part::Document { source, title } => {
                let Media::Base64 { media_type, data } = source else {
                    return Err(WireError::needs_bytes(field(), TARGET));
                };
                let format = document_format(media_type)
                    .ok_or_else(|| WireError::unsupported(field(), TARGET))?;
                out.push(json!({ "document": {
                    "format": format,
                    "name": document_name(title.as_deref(), i, j),
                    "source": { "bytes": data },
                }}));
            }
        }
    }
    Ok(out)
}

pub(super) fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

pub(super) fn document_format(media_type: &str) -> Option<&'static str> {
    let base = media_type.split(';').next().unwrap_or_default().trim();
    Some(match base.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

/// A document name Converse accepts: alphanumerics, single spaces, hyphens, parentheses and
/// square brackets, at most 200 characters. Unusable titles fall back to a positional name.
pub(super) fn document_name(title: Option<&str>, i: usize, j: usize) -> String {
    let cleaned: String = title
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
                c
            } else {
                ' '
            }
        })
        .collect();
    let name: String = cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    let name = name.trim().to_string();
    if name.is_empty() {
        format!("document-{i}-{j}")
    } else {
        name
    }
}

pub(super) fn encode_tool_config(chat: &ChatRequest) -> Result<Option<Value>, WireError> {
    if let Some(schema) = structured_output(chat) {
        return Ok(Some(json!({
            "tools": [{ "toolSpec": {
                "name": STRUCTURED_TOOL,
                "description": "Answer with the response, as this tool's input.",
                "inputSchema": { "json": schema },
            }}],
            "toolChoice": { "tool": { "name": STRUCTURED_TOOL } },
        })));
    }
    let choice = match &chat.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::Required) => Some(json!({ "any": {} })),
        Some(ToolChoice::Tool(name)) => Some(json!({ "tool": { "name": name } })),
        Some(ToolChoice::None) => {
            // Converse has no "none" choice. Leaving the tools out means the same thing, but
            // Converse demands toolConfig whenever the history holds tool calls or results.
            let tool_history = chat
                .messages
                .iter()
                .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty());
            if tool_history && !chat.tools.is_empty() {
                return Err(WireError::unsupported("tool_choice", TARGET));
            }
            return Ok(None);
        }
    };
    if chat.tools.is_empty() {
        if choice.is_some() {
            return Err(WireError::invalid(
                "tool_choice",
                "tool_choice requires at least one tool",
            ));
        }
        return Ok(None);
    }
    let tools: Vec<Value> = chat
        .tools
        .iter()
        .map(|t| {
            let mut spec = json!({
                "name": t.name,
                "inputSchema": { "json": tool_schema(&t.parameters) },
            });
            if let Some(d) = t.description.as_deref().filter(|d| !d.is_empty()) {
                set(&mut spec, "description", json!(d));
            }
            json!({ "toolSpec": spec })
        })
        .collect();
    let mut config = json!({ "tools": tools });
    if let Some(choice) = choice {
        set(&mut config, "toolChoice", choice);
    }
    Ok(Some(config))
}

/// Converse requires an object schema; a tool declared without parameters takes none.
pub(super) fn tool_schema(parameters: &Value) -> Value {
    match parameters {
        Value::Null => json!({ "type": "object", "properties": {} }),
        Value::Object(m) if m.is_empty() => json!({ "type": "object", "properties": {} }),
        v => v.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConverseResponse {
    #[serde(default)]
    pub(super) output: Option<ConverseOutput>,
    #[serde(default)]
    pub(super) stop_reason: Option<String>,
    #[serde(default)]
    pub(super) usage: Option<TokenUsage>,
}

#[derive(Deserialize, Default)]
pub(super) struct ConverseOutput {
    #[serde(default)]
    pub(super) message: Option<ConverseMessage>,
}

#[derive(Deserialize, Default)]
pub(super) struct ConverseMessage {
    #[serde(default)]
    pub(super) content: Vec<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenUsage {
    #[serde(default)]
    pub(super) input_tokens: u64,
    #[serde(default)]
    pub(super) output_tokens: u64,
    #[serde(default)]
    pub(super) cache_read_input_tokens: u64,
    #[serde(default)]
    pub(super) cache_write_input_tokens: u64,
}

impl TokenUsage {
    /// Bedrock counts cache reads and writes apart from `inputTokens`; the IR's input count is
    /// the whole prompt (as OpenAI's and Gemini's are), with the cached part named separately.
    pub(super) fn ir(self) -> Usage {
        Usage {
            input_tokens: self
                .input_tokens
                .saturating_add(self.cache_read_input_tokens)
                .saturating_add(self.cache_write_input_tokens),
            output_tokens: self.output_tokens,
            cached_input_tokens: self.cache_read_input_tokens,
            reasoning_tokens: 0,
        }
    }
}

pub(super) fn finish_reason(stop: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match stop {
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") => FinishReason::Length,
        Some("content_filtered" | "guardrail_intervened") => FinishReason::ContentFilter,
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// Who can verify the reasoning a model on Bedrock writes: Claude's signatures are Anthropic's
/// (valid on every platform Anthropic serves from); other families' reasoning is unsigned.
pub(super) fn reasoning_origin(model: &str) -> Option<Origin> {
    (ModelFamily::of(model) == ModelFamily::Claude).then_some(Origin::Anthropic)
}

/// Bedrock returns no response id; one is derived from the clock so it is stable per answer.
pub(super) fn response_id(created: u64) -> String {
    format!("bedrock-{created}")
}

pub fn decode_response(
    req: &Request,
    status: u16,
    body: &[u8],
    created: u64,
) -> Result<Response, WireError> {
    if !(200..300).contains(&status) {
        return Ok(Response::Error(error_info(status, body)));
    }
    let Request::Chat(chat) = req else {
        return Err(WireError::upstream(
            "bedrock answered a request it cannot serve",
        ));
    };
    let resp: ConverseResponse = serde_json::from_slice(body)
        .map_err(|e| WireError::upstream(format!("invalid Converse response: {e}")))?;
    let blocks = resp
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default();
    let structured = structured_output(chat).is_some();
    let origin = reasoning_origin(&chat.model);
    let mut text = String::new();
    let mut reasoning = Vec::new();
    let mut tool_calls = Vec::new();
    for block in &blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(r) = block.get("reasoningContent") {
            let str_at = |p: &str| r.pointer(p).and_then(Value::as_str).map(str::to_string);
            reasoning.push(Part::Reasoning {
                text: str_at("/reasoningText/text").unwrap_or_default(),
                signature: str_at("/reasoningText/signature").filter(|s| !s.is_empty()),
                redacted: str_at("/redactedContent"),
                id: None,
                origin,
            });
        } else if let Some(tu) = block.get("toolUse") {
            let field = |k: &str| tu.get(k).and_then(Value::as_str).unwrap_or_default();
            let arguments = tu
                .get("input")
                .map(Value::to_string)
                .unwrap_or_else(|| "{}".into());
            // Structured output arrives as the forced tool's input: it is the answer's text.
            if structured && field("name") == STRUCTURED_TOOL {
                text.push_str(&arguments);
                continue;
            }
            tool_calls.push(ToolCall {
                id: field("toolUseId").to_string(),
                name: field("name").to_string(),
                arguments,
            });
        }
        // Other blocks (citations, ...) have no IR equivalent in an answer.
    }
    let stop = match resp.stop_reason.as_deref() {
        Some("tool_use") if structured && tool_calls.is_empty() => Some("end_turn"),
        other => other,
    };
    let finish = finish_reason(stop, !tool_calls.is_empty());
    let mut content = reasoning;
    if !text.is_empty() || tool_calls.is_empty() {
        content.push(Part::Text { text });
    }
    Ok(Response::Chat(ChatResponse {
        id: response_id(created),
        model: chat.model.clone(),
        created,
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                content,
                tool_calls,
                tool_call_id: None,
                name: None,
                is_error: false,
                refusal: None,
            },
            finish_reason: finish,
        }],
        usage: resp.usage.map(TokenUsage::ir),
    }))
}

/// Bedrock errors are `{"message": "..."}` (the exception name is in a header we do not see).
pub(super) fn error_info(status: u16, body: &[u8]) -> ErrorInfo {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("the provider answered HTTP {status}"));
    // 424 is ModelErrorException: the model failed, which a client knows as a bad gateway.
    let status = if status == 424 { 502 } else { status };
    let kind = if credential_refused(&message) {
        ErrorKind::Authentication
    } else {
        ErrorInfo::kind_for_status(status)
    };
    ErrorInfo::new(status, kind, message)
}

/// AWS names the exception only in a header, so the credential failures are known by their
/// messages: UnrecognizedClientException and ExpiredTokenException ("The security token included
/// in the request is invalid/expired"), InvalidSignatureException (a wrong secret key: weir's
/// signing is checked against botocore's) and a missing or incomplete signature. Not
/// AccessDeniedException: a key without access to one model still serves the others.
fn credential_refused(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("security token included in the request")
        || m.contains("signature we calculated does not match")
        || m.contains("missing authentication token")
        || m.contains("incomplete signature")
}
