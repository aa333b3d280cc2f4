//! Amazon Bedrock's Converse and ConverseStream formats (JSON in, JSON or binary AWS event-stream
//! out), as the `bedrock` provider format. Signing is `providers::sigv4`; framing `stream::eventstream`.
//!
//! Shapes follow botocore's `bedrock-runtime/2023-09-30/service-2.json`. Converse has no
//! embeddings operation (Bedrock embeds through InvokeModel with a body that differs per model
//! family), no JSON mode, and only model-specific extras (`additionalModelRequestFields`), so
//! those IR fields are rejected rather than guessed at.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::json::{set, to_bytes};
use super::{args, system_text, Outgoing, ProviderSpec, WireError};
use crate::ir::*;
use crate::stream::eventstream::{EventStreamFramer, Message as Frame};

const TARGET: &str = "bedrock";

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let chat = match req {
        Request::Chat(c) => c,
        Request::Embeddings(_) => return Err(WireError::unsupported("embeddings", TARGET)),
    };
    reject_unsupported(chat)?;
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(encode_messages(chat)?));
    if let Some(system) = system_text(chat).filter(|s| !s.is_empty()) {
        body.insert("system".into(), json!([{ "text": system }]));
    }
    let mut inference = Map::new();
    if let Some(v) = chat.max_tokens {
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
    let op = if chat.stream {
        "converse-stream"
    } else {
        "converse"
    };
    let base = spec.base_path.trim_end_matches('/');
    Ok(Outgoing {
        path: format!("{base}/model/{}/{op}", encode_label(&chat.model)),
        headers: vec![("content-type".into(), "application/json".into())],
        body: to_bytes(&Value::Object(body)),
    })
}

/// IR fields Converse cannot express. `user` and participant names are dropped on purpose:
/// they label the request for the client's bookkeeping and never change the answer.
fn reject_unsupported(chat: &ChatRequest) -> Result<(), WireError> {
    if let Some(field) = chat.extra.keys().next() {
        return Err(WireError::unsupported(field.clone(), TARGET));
    }
    // top_k exists only as a model-specific `additionalModelRequestFields` key, spelled
    // differently per family (Anthropic `top_k`, Nova `inferenceConfig.topK`, ...).
    let fields = [
        ("top_k", chat.top_k.is_some()),
        ("seed", chat.seed.is_some()),
        ("n", chat.n.is_some_and(|n| n != 1)),
        ("presence_penalty", chat.presence_penalty.is_some()),
        ("frequency_penalty", chat.frequency_penalty.is_some()),
        (
            "response_format",
            matches!(
                chat.response_format,
                Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
            ),
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

/// Percent-encodes a URI label the way botocore does for non-greedy labels: everything but
/// unreserved characters, so an ARN's `:` and `/` become `%3A` and `%2F`.
fn encode_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_messages(chat: &ChatRequest) -> Result<Vec<Value>, WireError> {
    // Converse requires user and assistant turns to alternate, so consecutive turns of one
    // role (including tool results, which are user content) are merged.
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in chat.messages.iter().enumerate() {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => ("user", content_blocks(&m.content, i)?),
            Role::Assistant => {
                let mut blocks = content_blocks(&m.content, i)?;
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

fn tool_result(m: &Message, i: usize) -> Result<Value, WireError> {
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
fn content_blocks(parts: &[Part], i: usize) -> Result<Vec<Value>, WireError> {
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let field = || format!("messages[{i}].content[{j}]");
        match part {
            Part::Text { text } if text.is_empty() => {}
            Part::Text { text } => out.push(json!({ "text": text })),
            Part::Image { source } => {
                let Media::Base64 { media_type, data } = source else {
                    return Err(WireError::unsupported(field(), TARGET));
                };
                let format = image_format(media_type)
                    .ok_or_else(|| WireError::unsupported(field(), TARGET))?;
                out.push(json!({ "image": { "format": format, "source": { "bytes": data } } }));
            }
            Part::Document { source, title } => {
                let Media::Base64 { media_type, data } = source else {
                    return Err(WireError::unsupported(field(), TARGET));
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

fn image_format(media_type: &str) -> Option<&'static str> {
    Some(match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn document_format(media_type: &str) -> Option<&'static str> {
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
fn document_name(title: Option<&str>, i: usize, j: usize) -> String {
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

fn encode_tool_config(chat: &ChatRequest) -> Result<Option<Value>, WireError> {
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
fn tool_schema(parameters: &Value) -> Value {
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
struct ConverseResponse {
    #[serde(default)]
    output: Option<ConverseOutput>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize, Default)]
struct ConverseOutput {
    #[serde(default)]
    message: Option<ConverseMessage>,
}

#[derive(Deserialize, Default)]
struct ConverseMessage {
    #[serde(default)]
    content: Vec<Value>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl TokenUsage {
    /// Bedrock counts cache reads and writes apart from `inputTokens`; the IR's input count is
    /// the whole prompt (as OpenAI's and Gemini's are), with the cached part named separately.
    fn ir(self) -> Usage {
        Usage {
            input_tokens: self
                .input_tokens
                .saturating_add(self.cache_read_input_tokens)
                .saturating_add(self.cache_write_input_tokens),
            output_tokens: self.output_tokens,
            cached_input_tokens: self.cache_read_input_tokens,
        }
    }
}

fn finish_reason(stop: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match stop {
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") => FinishReason::Length,
        Some("content_filtered" | "guardrail_intervened") => FinishReason::ContentFilter,
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// Bedrock returns no response id; one is derived from the clock so it is stable per answer.
fn response_id(created: u64) -> String {
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
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in &blocks {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = block.get("toolUse") {
            let field = |k: &str| tu.get(k).and_then(Value::as_str).unwrap_or_default();
            tool_calls.push(ToolCall {
                id: field("toolUseId").to_string(),
                name: field("name").to_string(),
                arguments: tu
                    .get("input")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".into()),
            });
        }
        // Other blocks (reasoningContent, citations, ...) have no IR equivalent in an answer.
    }
    let finish = finish_reason(resp.stop_reason.as_deref(), !tool_calls.is_empty());
    let content = if text.is_empty() && !tool_calls.is_empty() {
        Vec::new()
    } else {
        vec![Part::Text { text }]
    };
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
            },
            finish_reason: finish,
        }],
        usage: resp.usage.map(TokenUsage::ir),
    }))
}

/// Bedrock errors are `{"message": "..."}` (the exception name is in a header we do not see).
fn error_info(status: u16, body: &[u8]) -> ErrorInfo {
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
    ErrorInfo::new(status, ErrorInfo::kind_for_status(status), message)
}

// ---------------------------------------------------------------------------------------------
// Streams

/// Turns ConverseStream's event-stream messages into IR events.
pub struct StreamDecoder {
    framer: EventStreamFramer,
    model: String,
    created: u64,
    started: bool,
    /// An exception ended the stream; anything after it is ignored.
    done: bool,
    /// Converse content-block index → IR tool-call index, for tool-use blocks.
    tool_blocks: Vec<(u64, u32)>,
}

impl StreamDecoder {
    pub fn new(req: &ChatRequest, max_frame: usize, created: u64) -> Self {
        StreamDecoder {
            framer: EventStreamFramer::new(max_frame),
            model: req.model.clone(),
            created,
            started: false,
            done: false,
            tool_blocks: Vec::new(),
        }
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: response_id(self.created),
                model: self.model.clone(),
                created: self.created,
            });
        }
    }

    fn message(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        if self.done {
            return Ok(());
        }
        match frame.header_str(":message-type") {
            Some("event") => self.event(frame, out),
            Some("exception") => {
                let kind = frame.header_str(":exception-type").unwrap_or_default();
                let message = serde_json::from_slice::<Value>(&frame.payload)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| format!("the provider's stream failed: {kind}"));
                out.push(StreamEvent::Error(exception_info(kind, message)));
                self.done = true;
                Ok(())
            }
            Some("error") => {
                let code = frame.header_str(":error-code").unwrap_or("error");
                let message = frame.header_str(":error-message").unwrap_or(code);
                out.push(StreamEvent::Error(ErrorInfo::new(
                    502,
                    ErrorKind::Upstream,
                    message.to_string(),
                )));
                self.done = true;
                Ok(())
            }
            // Unknown message types are for newer clients to understand, not us to fail on.
            _ => Ok(()),
        }
    }

    fn event(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let event = frame.header_str(":event-type").unwrap_or_default();
        let payload = || {
            serde_json::from_slice::<Value>(&frame.payload)
                .map_err(|e| WireError::upstream(format!("invalid {event} event: {e}")))
        };
        match event {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                let v = payload()?;
                self.start(out);
                if let Some(tu) = v.pointer("/start/toolUse") {
                    let block = v
                        .get("contentBlockIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                    self.tool_blocks.push((block, index));
                    let field = |k: &str| tu.get(k).and_then(Value::as_str).unwrap_or_default();
                    out.push(StreamEvent::ToolCallStart {
                        choice: 0,
                        index,
                        id: field("toolUseId").to_string(),
                        name: field("name").to_string(),
                    });
                }
            }
            "contentBlockDelta" => {
                let v = payload()?;
                self.start(out);
                if let Some(text) = v.pointer("/delta/text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta {
                            choice: 0,
                            text: text.to_string(),
                        });
                    }
                } else if let Some(input) =
                    v.pointer("/delta/toolUse/input").and_then(Value::as_str)
                {
                    let block = v
                        .get("contentBlockIndex")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let index = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| *b == block)
                        .map(|(_, i)| *i)
                        .ok_or_else(|| {
                            WireError::upstream("tool input arrived for a block never started")
                        })?;
                    if !input.is_empty() {
                        out.push(StreamEvent::ToolCallDelta {
                            choice: 0,
                            index,
                            arguments: input.to_string(),
                        });
                    }
                }
            }
            "messageStop" => {
                let v = payload()?;
                self.start(out);
                let stop = v.get("stopReason").and_then(Value::as_str);
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: finish_reason(stop, !self.tool_blocks.is_empty()),
                });
            }
            "metadata" => {
                let v = payload()?;
                if let Some(usage) = v.get("usage") {
                    let usage: TokenUsage = serde_json::from_value(usage.clone())
                        .map_err(|e| WireError::upstream(format!("invalid usage: {e}")))?;
                    out.push(StreamEvent::Usage(usage.ir()));
                }
            }
            // contentBlockStop, and event types newer than this code, carry nothing to forward.
            _ => {}
        }
        Ok(())
    }
}

/// The status a client should see for a ConverseStream exception event.
fn exception_info(kind: &str, message: String) -> ErrorInfo {
    let status = match kind {
        "throttlingException" => 429,
        "serviceUnavailableException" => 503,
        "validationException" => 400,
        "modelTimeoutException" => 504,
        // internalServerException, modelStreamErrorException and anything newer.
        _ => 502,
    };
    ErrorInfo::new(status, ErrorInfo::kind_for_status(status), message)
}

impl super::StreamDecoder for StreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut frames = Vec::new();
        let framed = self.framer.push(chunk, &mut frames);
        // Messages completed before a framing error are still delivered.
        for frame in &frames {
            self.message(frame, out)?;
        }
        framed.map_err(WireError::from)
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        self.framer.finish().map_err(WireError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::eventstream::{encode, HeaderValue};
    use crate::stream::testutil::splits;
    use crate::wire::{ProviderKind, StreamDecoder as _};

    fn spec() -> ProviderSpec {
        ProviderSpec {
            kind: ProviderKind::Bedrock,
            host: "bedrock-runtime.us-east-1.amazonaws.com".into(),
            base_path: String::new(),
            api_version: None,
            region: Some("us-east-1".into()),
            anthropic_version: String::new(),
        }
    }

    fn user(text: &str) -> Message {
        Message::text(Role::User, text)
    }

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    fn tool_msg(id: &str, text: &str) -> Message {
        Message {
            tool_call_id: Some(id.into()),
            ..Message::text(Role::Tool, text)
        }
    }

    fn chat(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
            messages,
            ..Default::default()
        }
    }

    fn body(out: &Outgoing) -> Value {
        serde_json::from_slice(&out.body).unwrap()
    }

    fn weather_tool() -> Tool {
        Tool {
            name: "get_weather".into(),
            description: Some("Weather for a city".into()),
            parameters: json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
        }
    }

    #[test]
    fn encodes_a_full_conversation() {
        let mut assistant = Message::text(Role::Assistant, "Let me check.");
        assistant.tool_calls = vec![
            call("tooluse_1", "get_weather", r#"{"city":"Paris"}"#),
            call("tooluse_2", "get_weather", ""),
        ];
        let mut failed = tool_msg("tooluse_2", "no city given");
        failed.is_error = true;
        let mut req = chat(vec![
            Message::text(Role::System, "Be brief."),
            Message {
                content: vec![
                    Part::Text {
                        text: "Weather?".into(),
                    },
                    Part::Image {
                        source: Media::Base64 {
                            media_type: "image/jpeg".into(),
                            data: "AAAA".into(),
                        },
                    },
                    Part::Document {
                        source: Media::Base64 {
                            media_type: "application/pdf".into(),
                            data: "JVBE".into(),
                        },
                        title: Some("report_2024.pdf".into()),
                    },
                ],
                ..user("")
            },
            assistant,
            tool_msg("tooluse_1", r#"{"temp":21}"#),
            failed,
            user("Thanks"),
            Message::text(Role::Developer, "Use metric."),
        ]);
        req.tools = vec![weather_tool()];
        req.tool_choice = Some(ToolChoice::Required);
        req.max_tokens = Some(100);
        req.temperature = Some(0.5);
        req.top_p = Some(0.9);
        req.stop = vec!["END".into()];
        req.user = Some("u-1".into());
        let out = encode_request(&spec(), &Request::Chat(req)).unwrap();
        assert_eq!(
            out.path,
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        );
        assert_eq!(
            out.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(
            body(&out),
            json!({
                "messages": [
                    {"role": "user", "content": [
                        {"text": "Weather?"},
                        {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}},
                        {"document": {"format": "pdf", "name": "report 2024 pdf", "source": {"bytes": "JVBE"}}}
                    ]},
                    {"role": "assistant", "content": [
                        {"text": "Let me check."},
                        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
                        {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather", "input": {}}}
                    ]},
                    {"role": "user", "content": [
                        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "{\"temp\":21}"}]}},
                        {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "no city given"}], "status": "error"}},
                        {"text": "Thanks"}
                    ]}
                ],
                "system": [{"text": "Be brief.\n\nUse metric."}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
                "toolConfig": {
                    "tools": [{"toolSpec": {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "inputSchema": {"json": {"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}
                    }}],
                    "toolChoice": {"any": {}}
                }
            })
        );
    }

    #[test]
    fn streams_use_converse_stream_and_arns_are_label_encoded_like_botocore() {
        let mut req = chat(vec![user("hi")]);
        req.stream = true;
        req.model =
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
                .into();
        let out = encode_request(&spec(), &Request::Chat(req)).unwrap();
        // botocore's rest-json serializer renders exactly this path for the same model id.
        assert_eq!(
            out.path,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
        );
        assert_eq!(
            body(&out),
            json!({"messages":[{"role":"user","content":[{"text":"hi"}]}]})
        );
    }

    #[test]
    fn tool_choices_map_and_none_drops_the_tools_when_it_can() {
        let encode = |choice: ToolChoice, history: bool| {
            let mut req = chat(vec![user("hi")]);
            if history {
                let mut a = Message::text(Role::Assistant, "");
                a.tool_calls = vec![call("t1", "get_weather", "{}")];
                req.messages.push(a);
                req.messages.push(tool_msg("t1", "sunny"));
            }
            req.tools = vec![weather_tool()];
            req.tool_choice = Some(choice);
            encode_request(&spec(), &Request::Chat(req)).map(|o| body(&o))
        };
        assert_eq!(
            encode(ToolChoice::Auto, false).unwrap()["toolConfig"].get("toolChoice"),
            None
        );
        assert_eq!(
            encode(ToolChoice::Tool("get_weather".into()), false).unwrap()["toolConfig"]
                ["toolChoice"],
            json!({"tool": {"name": "get_weather"}})
        );
        assert_eq!(
            encode(ToolChoice::None, false).unwrap().get("toolConfig"),
            None
        );
        assert_eq!(
            encode(ToolChoice::None, true),
            Err(WireError::unsupported("tool_choice", "bedrock"))
        );
        let mut req = chat(vec![user("hi")]);
        req.tool_choice = Some(ToolChoice::Required);
        assert!(matches!(
            encode_request(&spec(), &Request::Chat(req)),
            Err(WireError::Invalid { .. })
        ));
    }

    #[test]
    fn inexpressible_fields_are_rejected_by_name() {
        type Setter = Box<dyn Fn(&mut ChatRequest)>;
        let cases: Vec<(&str, Setter)> = vec![
            ("top_k", Box::new(|r| r.top_k = Some(5))),
            ("seed", Box::new(|r| r.seed = Some(1))),
            ("n", Box::new(|r| r.n = Some(2))),
            (
                "presence_penalty",
                Box::new(|r| r.presence_penalty = Some(0.1)),
            ),
            (
                "frequency_penalty",
                Box::new(|r| r.frequency_penalty = Some(0.1)),
            ),
            (
                "response_format",
                Box::new(|r| r.response_format = Some(ResponseFormat::JsonObject)),
            ),
            (
                "logit_bias",
                Box::new(|r| {
                    r.extra.insert("logit_bias".into(), json!({}));
                    r.extra_family = Some(Family::OpenAi);
                }),
            ),
            (
                "parallel_tool_calls",
                Box::new(|r| {
                    r.tools = vec![weather_tool()];
                    r.parallel_tool_calls = Some(false);
                }),
            ),
            (
                "messages[0].content[0]",
                Box::new(|r| {
                    r.messages[0].content = vec![Part::Image {
                        source: Media::Url {
                            url: "https://x/y.png".into(),
                        },
                    }];
                }),
            ),
            (
                "messages[0].content[1]",
                Box::new(|r| {
                    r.messages[0].content.push(Part::Image {
                        source: Media::Base64 {
                            media_type: "image/bmp".into(),
                            data: "AA".into(),
                        },
                    });
                }),
            ),
            (
                "messages[0].content[1]",
                Box::new(|r| {
                    r.messages[0].content.push(Part::Document {
                        source: Media::Base64 {
                            media_type: "application/zip".into(),
                            data: "AA".into(),
                        },
                        title: None,
                    });
                }),
            ),
        ];
        for (field, set) in cases {
            let mut req = chat(vec![user("hi")]);
            set(&mut req);
            assert_eq!(
                encode_request(&spec(), &Request::Chat(req)),
                Err(WireError::unsupported(field, "bedrock")),
                "{field}"
            );
        }
        let mut ok = chat(vec![user("hi")]);
        ok.n = Some(1);
        ok.parallel_tool_calls = Some(true);
        ok.response_format = Some(ResponseFormat::Text);
        assert!(encode_request(&spec(), &Request::Chat(ok)).is_ok());
        let emb = Request::Embeddings(EmbeddingsRequest {
            model: "amazon.titan-embed-text-v2:0".into(),
            input: vec!["x".into()],
            ..Default::default()
        });
        assert_eq!(
            encode_request(&spec(), &emb),
            Err(WireError::unsupported("embeddings", "bedrock"))
        );
    }

    #[test]
    fn bad_tool_arguments_and_missing_ids_are_invalid() {
        let mut a = Message::text(Role::Assistant, "");
        a.tool_calls = vec![call("t1", "f", "[1,2]")];
        let req = chat(vec![user("hi"), a]);
        assert_eq!(
            encode_request(&spec(), &Request::Chat(req)),
            Err(WireError::invalid(
                "messages[1].tool_calls[0].function.arguments",
                "tool call arguments must be a JSON object"
            ))
        );
        let req = chat(vec![user("hi"), Message::text(Role::Tool, "x")]);
        assert!(matches!(
            encode_request(&spec(), &Request::Chat(req)),
            Err(WireError::Invalid { field, .. }) if field == "messages[1].tool_call_id"
        ));
    }

    fn req_ir() -> Request {
        Request::Chat(chat(vec![user("hi")]))
    }

    #[test]
    fn decodes_text_tool_use_and_usage() {
        let body = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"text": "Checking. "},
                {"reasoningContent": {"reasoningText": {"text": "hmm"}}},
                {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
            "metrics": {"latencyMs": 100}
        });
        let got =
            decode_response(&req_ir(), 200, body.to_string().as_bytes(), 1_700_000_000).unwrap();
        assert_eq!(
            got,
            Response::Chat(ChatResponse {
                id: "bedrock-1700000000".into(),
                model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
                created: 1_700_000_000,
                choices: vec![Choice {
                    index: 0,
                    message: Message {
                        tool_calls: vec![call("tooluse_abc", "get_weather", r#"{"city":"Paris"}"#)],
                        ..Message::text(Role::Assistant, "Checking. ")
                    },
                    finish_reason: FinishReason::ToolCalls,
                }],
                usage: Some(Usage {
                    input_tokens: 40,
                    output_tokens: 5,
                    cached_input_tokens: 20
                }),
            })
        );
    }

    #[test]
    fn stop_reasons_map() {
        for (stop, want) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("content_filtered", FinishReason::ContentFilter),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("something_new", FinishReason::Stop),
        ] {
            let body = json!({"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":stop});
            let Response::Chat(c) =
                decode_response(&req_ir(), 200, body.to_string().as_bytes(), 1).unwrap()
            else {
                panic!("not chat")
            };
            assert_eq!(c.choices[0].finish_reason, want, "{stop}");
            assert_eq!(c.usage, None);
        }
    }

    #[test]
    fn errors_carry_the_message_and_a_fitting_status() {
        let got = decode_response(
            &req_ir(),
            429,
            br#"{"message":"Too many requests, please wait before trying again."}"#,
            1,
        )
        .unwrap();
        assert_eq!(
            got,
            Response::Error(ErrorInfo::new(
                429,
                ErrorKind::RateLimited,
                "Too many requests, please wait before trying again."
            ))
        );
        let Response::Error(e) =
            decode_response(&req_ir(), 424, br#"{"Message":"model failed"}"#, 1).unwrap()
        else {
            panic!("not an error")
        };
        assert_eq!(
            (e.status, e.kind, e.message.as_str()),
            (502, ErrorKind::Upstream, "model failed")
        );
        let Response::Error(e) = decode_response(&req_ir(), 400, b"<html>", 1).unwrap() else {
            panic!("not an error")
        };
        assert_eq!((e.status, e.kind), (400, ErrorKind::InvalidRequest));
        assert!(matches!(
            decode_response(&req_ir(), 200, b"{not json", 1),
            Err(WireError::Upstream { .. })
        ));
    }

    fn frame(event: &str, payload: Value) -> Vec<u8> {
        encode(&Frame {
            headers: vec![
                (":event-type".into(), HeaderValue::String(event.into())),
                (
                    ":content-type".into(),
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type".into(), HeaderValue::String("event".into())),
            ],
            payload: payload.to_string().into_bytes(),
        })
    }

    /// A ConverseStream answer shaped like a recorded one (including the `p` padding field
    /// Bedrock adds to events): text, then a tool call in two input fragments, then usage.
    fn recorded_stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend(frame(
            "messageStart",
            json!({"p":"abcdefgh","role":"assistant"}),
        ));
        s.extend(frame(
            "contentBlockDelta",
            json!({"contentBlockIndex":0,"delta":{"text":"Let me "},"p":"abcd"}),
        ));
        s.extend(frame(
            "contentBlockDelta",
            json!({"contentBlockIndex":0,"delta":{"text":"check 🌦."},"p":"ab"}),
        ));
        s.extend(frame(
            "contentBlockStop",
            json!({"contentBlockIndex":0,"p":"abcdefghij"}),
        ));
        s.extend(frame("contentBlockStart", json!({"contentBlockIndex":1,"p":"abc","start":{"toolUse":{"name":"get_weather","toolUseId":"tooluse_Qx1"}}})));
        s.extend(frame(
            "contentBlockDelta",
            json!({"contentBlockIndex":1,"delta":{"toolUse":{"input":""}},"p":"a"}),
        ));
        s.extend(frame("contentBlockDelta", json!({"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\": \"Pa"}},"p":"abcdef"})));
        s.extend(frame(
            "contentBlockDelta",
            json!({"contentBlockIndex":1,"delta":{"toolUse":{"input":"ris\"}"}},"p":"abcdefg"}),
        ));
        s.extend(frame(
            "contentBlockStop",
            json!({"contentBlockIndex":1,"p":"abc"}),
        ));
        s.extend(frame(
            "messageStop",
            json!({"p":"abcdefghijklmn","stopReason":"tool_use"}),
        ));
        s.extend(frame("metadata", json!({"metrics":{"latencyMs":1204},"p":"abc","usage":{"inputTokens":390,"outputTokens":74,"totalTokens":464}})));
        s
    }

    fn expected_events() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "bedrock-1700000000".into(),
                model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
                created: 1_700_000_000,
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "Let me ".into(),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "check 🌦.".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "tooluse_Qx1".into(),
                name: "get_weather".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "{\"city\": \"Pa".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: "ris\"}".into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 390,
                output_tokens: 74,
                cached_input_tokens: 0,
            }),
        ]
    }

    fn decode_stream(chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, WireError> {
        let mut d = StreamDecoder::new(&chat(vec![]), 4096, 1_700_000_000);
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out)?;
        }
        d.end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn decodes_a_recorded_stream_in_any_split() {
        let s = recorded_stream();
        assert_eq!(decode_stream(&[&s]).unwrap(), expected_events());
        for chunks in splits(&s, 200) {
            let parts: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
            assert_eq!(decode_stream(&parts).unwrap(), expected_events());
        }
    }

    #[test]
    fn exceptions_become_errors_with_fitting_statuses() {
        for (kind, status, err_kind) in [
            ("throttlingException", 429, ErrorKind::RateLimited),
            ("serviceUnavailableException", 503, ErrorKind::Unavailable),
            ("modelStreamErrorException", 502, ErrorKind::Upstream),
            ("internalServerException", 502, ErrorKind::Upstream),
            ("validationException", 400, ErrorKind::InvalidRequest),
            ("modelTimeoutException", 504, ErrorKind::Timeout),
        ] {
            let mut s = frame("messageStart", json!({"role":"assistant"}));
            s.extend(encode(&Frame {
                headers: vec![
                    (":exception-type".into(), HeaderValue::String(kind.into())),
                    (
                        ":content-type".into(),
                        HeaderValue::String("application/json".into()),
                    ),
                    (
                        ":message-type".into(),
                        HeaderValue::String("exception".into()),
                    ),
                ],
                payload: br#"{"message":"slow down"}"#.to_vec(),
            }));
            // Anything after the exception is ignored.
            s.extend(frame(
                "contentBlockDelta",
                json!({"contentBlockIndex":0,"delta":{"text":"late"}}),
            ));
            let got = decode_stream(&[&s]).unwrap();
            assert_eq!(got.len(), 2, "{kind}");
            assert_eq!(
                got[1],
                StreamEvent::Error(ErrorInfo::new(status, err_kind, "slow down")),
                "{kind}"
            );
        }
    }

    #[test]
    fn broken_streams_are_upstream_errors() {
        let s = recorded_stream();
        assert!(matches!(
            decode_stream(&[&s[..s.len() - 3]]),
            Err(WireError::Upstream { .. })
        ));
        let mut bad = s.clone();
        bad[40] ^= 0x55;
        assert!(matches!(
            decode_stream(&[&bad]),
            Err(WireError::Upstream { .. })
        ));
        assert!(matches!(
            decode_stream(&[br#"{"message":"not a stream"}"#]),
            Err(WireError::Upstream { .. })
        ));
        let orphan = frame(
            "contentBlockDelta",
            json!({"contentBlockIndex":3,"delta":{"toolUse":{"input":"{}"}}}),
        );
        assert!(matches!(
            decode_stream(&[&orphan]),
            Err(WireError::Upstream { .. })
        ));
    }

    /// What a Bedrock mock would answer for an IR response: the inverse of `decode_response`.
    fn mock_converse(resp: &ChatResponse) -> Value {
        let choice = &resp.choices[0];
        let mut content: Vec<Value> = choice
            .message
            .content
            .iter()
            .map(|p| match p {
                Part::Text { text } => json!({"text": text}),
                _ => unreachable!(),
            })
            .collect();
        for c in &choice.message.tool_calls {
            let input: Value = serde_json::from_str(&c.arguments).unwrap();
            content.push(json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": input}}));
        }
        let stop = match choice.finish_reason {
            FinishReason::Stop => "end_turn",
            FinishReason::Length => "max_tokens",
            FinishReason::ToolCalls => "tool_use",
            FinishReason::ContentFilter => "content_filtered",
        };
        let u = resp.usage.unwrap();
        json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": u.input_tokens - u.cached_input_tokens, "outputTokens": u.output_tokens,
                      "totalTokens": u.input_tokens + u.output_tokens, "cacheReadInputTokens": u.cached_input_tokens},
            "metrics": {"latencyMs": 1}
        })
    }

    #[test]
    fn responses_round_trip_through_a_mock() {
        for (text, calls, finish) in [
            ("Bonjour", vec![], FinishReason::Stop),
            (
                "",
                vec![
                    call("tooluse_1", "f", r#"{"a":[1,2],"b":"x"}"#),
                    call("tooluse_2", "g", "{}"),
                ],
                FinishReason::ToolCalls,
            ),
            ("cut", vec![], FinishReason::Length),
        ] {
            let want = ChatResponse {
                id: "bedrock-7".into(),
                model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
                created: 7,
                choices: vec![Choice {
                    index: 0,
                    message: Message {
                        tool_calls: calls.clone(),
                        content: if calls.is_empty() {
                            vec![Part::Text { text: text.into() }]
                        } else {
                            vec![]
                        },
                        ..Message::text(Role::Assistant, "")
                    },
                    finish_reason: finish,
                }],
                usage: Some(Usage {
                    input_tokens: 30,
                    output_tokens: 4,
                    cached_input_tokens: 10,
                }),
            };
            let body = mock_converse(&want).to_string();
            assert_eq!(
                decode_response(&req_ir(), 200, body.as_bytes(), 7).unwrap(),
                Response::Chat(want)
            );
        }
    }

    #[test]
    fn a_request_round_trips_through_the_converse_shape() {
        // Decoding our own encoding with the Converse shapes recovers the conversation.
        let mut a = Message::text(Role::Assistant, "ok");
        a.tool_calls = vec![call("t1", "f", r#"{"x":1}"#)];
        let req = chat(vec![user("one"), a, tool_msg("t1", "done")]);
        let out = body(&encode_request(&spec(), &Request::Chat(req)).unwrap());
        let turns = out["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 3);
        let round: Vec<(String, String)> = turns
            .iter()
            .flat_map(|t| {
                let role = t["role"].as_str().unwrap().to_string();
                t["content"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |b| (role.clone(), b.to_string()))
            })
            .collect();
        assert_eq!(
            round,
            vec![
                ("user".into(), r#"{"text":"one"}"#.into()),
                ("assistant".into(), r#"{"text":"ok"}"#.into()),
                (
                    "assistant".into(),
                    r#"{"toolUse":{"input":{"x":1},"name":"f","toolUseId":"t1"}}"#.into()
                ),
                (
                    "user".into(),
                    r#"{"toolResult":{"content":[{"text":"done"}],"toolUseId":"t1"}}"#.into()
                ),
            ]
        );
    }
}
