//! Google Gemini's generateContent format (`generateContent`, `streamGenerateContent?alt=sse`,
//! `batchEmbedContents`), as the `gemini` provider format, in both directions.
//!
//! Shapes follow the Gemini API v1beta reference and google-genai's types. Tool schemas are cut
//! down to Gemini's OpenAPI-3.0 subset (`Schema`), since the API rejects unknown keywords such as
//! `additionalProperties`; everything else Gemini cannot express is rejected by field name.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::json::{set, to_bytes};
use super::{args, system_text, tool_name_for, Outgoing, ProviderSpec, WireError};
use crate::ir::*;
use crate::stream::sse::{SseEvent, SseFramer};

const TARGET: &str = "gemini";

/// Nesting depth past which a schema is taken to be recursive (`$ref` cycles), which Gemini's
/// `Schema` cannot express.
const MAX_SCHEMA_DEPTH: usize = 32;

/// Gemini 3 rejects function calls in the history that lack the thought signature it issued
/// with them. The IR does not carry signatures, so every replayed call gets the placeholder
/// Google documents for histories it did not produce (the thought-signatures guide's FAQ).
const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

pub fn encode_request(spec: &ProviderSpec, req: &Request) -> Result<Outgoing, WireError> {
    let base = spec.base_path.trim_end_matches('/');
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    match req {
        Request::Embeddings(e) => {
            let model = model_name(&e.model);
            let requests: Vec<Value> = e
                .input
                .iter()
                .map(|text| {
                    let mut r = json!({
                        "model": format!("models/{model}"),
                        "content": { "parts": [{ "text": text }] },
                    });
                    if let Some(d) = e.dimensions {
                        set(&mut r, "outputDimensionality", json!(d));
                    }
                    r
                })
                .collect();
            Ok(Outgoing {
                path: format!("{base}/models/{model}:batchEmbedContents"),
                headers,
                body: to_bytes(&json!({ "requests": requests })),
            })
        }
        Request::Chat(chat) => {
            let body = encode_chat(chat)?;
            let model = model_name(&chat.model);
            let op = if chat.stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            Ok(Outgoing {
                path: format!("{base}/models/{model}:{op}"),
                headers,
                body: to_bytes(&body),
            })
        }
    }
}

/// Model ids may be configured with the API's own `models/` prefix; the path adds it once.
fn model_name(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

fn encode_chat(chat: &ChatRequest) -> Result<Value, WireError> {
    reject_unsupported(chat)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(encode_contents(chat)?));
    if let Some(system) = system_text(chat).filter(|s| !s.is_empty()) {
        body.insert(
            "systemInstruction".into(),
            json!({ "parts": [{ "text": system }] }),
        );
    }
    if !chat.tools.is_empty() {
        let mut decls = Vec::new();
        for (k, t) in chat.tools.iter().enumerate() {
            let mut d = json!({ "name": t.name });
            if let Some(desc) = t.description.as_deref().filter(|d| !d.is_empty()) {
                set(&mut d, "description", json!(desc));
            }
            let field = format!("tools[{k}].function.parameters");
            if let Some(params) = function_parameters(&t.parameters, &field)? {
                set(&mut d, "parameters", params);
            }
            decls.push(d);
        }
        body.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
    }
    if let Some(choice) = &chat.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({ "mode": "AUTO" }),
            ToolChoice::None => json!({ "mode": "NONE" }),
            ToolChoice::Required => json!({ "mode": "ANY" }),
            ToolChoice::Tool(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
        };
        let forces_a_call = matches!(choice, ToolChoice::Required | ToolChoice::Tool(_));
        if chat.tools.is_empty() && forces_a_call {
            return Err(WireError::invalid(
                "tool_choice",
                "tool_choice requires at least one tool",
            ));
        }
        if !chat.tools.is_empty() {
            body.insert(
                "toolConfig".into(),
                json!({ "functionCallingConfig": config }),
            );
        }
    }
    let generation = generation_config(chat)?;
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    Ok(Value::Object(body))
}

/// IR fields generateContent cannot express. `user`, participant names and Ollama's
/// `keep_alive` are dropped on purpose: they never change the answer.
fn reject_unsupported(chat: &ChatRequest) -> Result<(), WireError> {
    if let Some(field) = chat.extra.keys().next() {
        return Err(WireError::unsupported(field.clone(), TARGET));
    }
    // Gemini may always return several function calls in one turn; it cannot be told not to.
    if chat.parallel_tool_calls == Some(false) && !chat.tools.is_empty() {
        return Err(WireError::unsupported("parallel_tool_calls", TARGET));
    }
    Ok(())
}

fn generation_config(chat: &ChatRequest) -> Result<Map<String, Value>, WireError> {
    let mut g = Map::new();
    let mut put = |k: &str, v: Value| {
        g.insert(k.to_string(), v);
    };
    if let Some(v) = chat.temperature {
        put("temperature", json!(v));
    }
    if let Some(v) = chat.top_p {
        put("topP", json!(v));
    }
    if let Some(v) = chat.top_k {
        put("topK", json!(v));
    }
    if let Some(v) = chat.max_tokens {
        put("maxOutputTokens", json!(v));
    }
    if !chat.stop.is_empty() {
        put("stopSequences", json!(chat.stop));
    }
    if let Some(v) = chat.seed {
        put("seed", json!(v));
    }
    if let Some(n) = chat.n.filter(|n| *n != 1) {
        put("candidateCount", json!(n));
    }
    if let Some(v) = chat.presence_penalty {
        put("presencePenalty", json!(v));
    }
    if let Some(v) = chat.frequency_penalty {
        put("frequencyPenalty", json!(v));
    }
    match &chat.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => put("responseMimeType", json!("application/json")),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            // `responseSchema` (the same subset tools use) rather than the newer
            // `responseJsonSchema`, which not every model accepts. Gemini always constrains
            // output to the schema, so `strict` needs no translation.
            put("responseMimeType", json!("application/json"));
            put(
                "responseSchema",
                to_gemini_schema(schema, "response_format.json_schema.schema")?,
            );
        }
    }
    Ok(g)
}

/// A tool's parameters as a Gemini `Schema`, or `None` for a tool that takes no arguments:
/// Gemini rejects an OBJECT schema whose `properties` is empty.
fn function_parameters(parameters: &Value, field: &str) -> Result<Option<Value>, WireError> {
    if parameters.is_null() || parameters.as_object().is_some_and(Map::is_empty) {
        return Ok(None);
    }
    let schema = to_gemini_schema(parameters, field)?;
    let no_properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .map_or(true, Map::is_empty);
    if schema.get("type").and_then(Value::as_str) == Some("OBJECT") && no_properties {
        return Ok(None);
    }
    Ok(Some(schema))
}

/// Converts a JSON Schema into Gemini's `Schema` subset: `$ref`s into `$defs`/`definitions`
/// are inlined, `type: [T, "null"]` and `anyOf: [.., {type: null}]` become `nullable`, types are
/// upper-cased, and keywords `Schema` lacks are dropped (they only narrow what is valid, and
/// Gemini rejects the request rather than ignore them).
fn to_gemini_schema(schema: &Value, field: &str) -> Result<Value, WireError> {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    convert_schema(schema, defs, 0, field)
}

/// `Schema` keywords (google-genai `types.Schema`) copied as they are.
const KEPT_KEYWORDS: [&str; 14] = [
    "description",
    "title",
    "nullable",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "pattern",
    "default",
    "example",
];

fn convert_schema(
    schema: &Value,
    defs: &Map<String, Value>,
    depth: usize,
    field: &str,
) -> Result<Value, WireError> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(WireError::unsupported(field, TARGET));
    }
    let Some(obj) = schema.as_object() else {
        // `true` or an absent schema: anything goes, which an empty Schema also says.
        return Ok(json!({}));
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"));
        let target = name
            .and_then(|n| defs.get(n))
            .ok_or_else(|| WireError::unsupported(field, TARGET))?;
        let mut resolved = convert_schema(target, defs, depth + 1, field)?;
        // Keywords beside a `$ref` (typically a description) refine the referenced schema.
        let mut siblings = obj.clone();
        siblings.remove("$ref");
        if let (Value::Object(r), Value::Object(s)) = (
            &mut resolved,
            convert_schema(&Value::Object(siblings), defs, depth + 1, field)?,
        ) {
            r.extend(s);
        }
        return Ok(resolved);
    }

    let mut out = Map::new();
    for k in KEPT_KEYWORDS {
        if let Some(v) = obj.get(k) {
            out.insert(k.to_string(), v.clone());
        }
    }
    match obj.get("type") {
        Some(Value::String(t)) => {
            out.insert("type".into(), json!(t.to_ascii_uppercase()));
        }
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            let non_null: Vec<&str> = names.iter().copied().filter(|t| *t != "null").collect();
            if non_null.len() < names.len() {
                out.insert("nullable".into(), json!(true));
            }
            match non_null.as_slice() {
                [] => {}
                [one] => {
                    out.insert("type".into(), json!(one.to_ascii_uppercase()));
                }
                many => {
                    let alts: Vec<Value> = many
                        .iter()
                        .map(|t| json!({ "type": t.to_ascii_uppercase() }))
                        .collect();
                    out.insert("anyOf".into(), Value::Array(alts));
                }
            }
        }
        _ => {}
    }
    // anyOf / oneOf: Gemini has only anyOf; a `null` alternative is `nullable`.
    let alternatives = obj
        .get("anyOf")
        .or_else(|| obj.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(alts) = alternatives {
        let mut kept = Vec::new();
        for a in alts {
            if a.get("type").and_then(Value::as_str) == Some("null") {
                out.insert("nullable".into(), json!(true));
            } else {
                kept.push(convert_schema(a, defs, depth + 1, field)?);
            }
        }
        match kept.len() {
            0 => {}
            1 => {
                if let Some(Value::Object(only)) = kept.pop() {
                    for (k, v) in only {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            _ => {
                out.insert("anyOf".into(), Value::Array(kept));
            }
        }
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        match all.as_slice() {
            [only] => {
                if let Value::Object(m) = convert_schema(only, defs, depth + 1, field)? {
                    for (k, v) in m {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            [] => {}
            _ => return Err(WireError::unsupported(field, TARGET)),
        }
    }
    // Gemini enums are strings only; `const` is a one-value enum.
    let values: Option<Vec<Value>> = match (obj.get("enum"), obj.get("const")) {
        (Some(Value::Array(e)), _) => Some(e.clone()),
        (None, Some(c)) => Some(vec![c.clone()]),
        _ => None,
    };
    if let Some(values) = values {
        if values.iter().any(Value::is_null) {
            out.insert("nullable".into(), json!(true));
        }
        let strings: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
        if !strings.is_empty() && strings.iter().all(|v| v.is_string()) {
            out.insert("enum".into(), json!(strings));
            out.entry("type").or_insert(json!("STRING"));
        }
    }
    if let Some(format) = obj.get("format").and_then(Value::as_str) {
        // Gemini accepts only these formats and rejects the request for any other.
        let ok = match out.get("type").and_then(Value::as_str) {
            Some("STRING") => matches!(format, "enum" | "date-time"),
            Some("INTEGER") => matches!(format, "int32" | "int64"),
            Some("NUMBER") => matches!(format, "float" | "double"),
            _ => false,
        };
        if ok {
            out.insert("format".into(), json!(format));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        let mut converted = Map::new();
        for (name, p) in props {
            converted.insert(name.clone(), convert_schema(p, defs, depth + 1, field)?);
        }
        out.insert("properties".into(), Value::Object(converted));
        out.entry("type").or_insert(json!("OBJECT"));
    }
    if let Some(required) = obj.get("required").and_then(Value::as_array) {
        out.insert("required".into(), Value::Array(required.clone()));
    }
    if let Some(items) = obj.get("items").filter(|i| i.is_object()) {
        out.insert(
            "items".into(),
            convert_schema(items, defs, depth + 1, field)?,
        );
        out.entry("type").or_insert(json!("ARRAY"));
    }
    Ok(Value::Object(out))
}

fn encode_contents(chat: &ChatRequest) -> Result<Vec<Value>, WireError> {
    // Consecutive turns of one role are merged: Gemini wants the responses to one turn's
    // parallel function calls together in a single user turn.
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in chat.messages.iter().enumerate() {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => ("user", content_parts(&m.content, i)?),
            Role::Assistant => {
                let mut parts = content_parts(&m.content, i)?;
                for (k, call) in m.tool_calls.iter().enumerate() {
                    let field = format!("messages[{i}].tool_calls[{k}].function.arguments");
                    parts.push(json!({
                        "functionCall": {
                            "name": call.name,
                            "args": args::object_at(&call.arguments, &field)?,
                        },
                        "thoughtSignature": SKIP_THOUGHT_SIGNATURE,
                    }));
                }
                ("model", parts)
            }
            Role::Tool => ("user", vec![function_response(chat, i, m)?]),
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    Ok(turns
        .into_iter()
        .map(|(role, parts)| json!({ "role": role, "parts": parts }))
        .collect())
}

/// A tool result as a `functionResponse`. Gemini needs the function's name, found in the
/// nearest earlier assistant turn (so ids reused across turns resolve to the right call).
fn function_response(chat: &ChatRequest, i: usize, m: &Message) -> Result<Value, WireError> {
    if let Some(j) = m
        .content
        .iter()
        .position(|p| !matches!(p, Part::Text { .. }))
    {
        return Err(WireError::unsupported(
            format!("messages[{i}].content[{j}]"),
            TARGET,
        ));
    }
    let name = m.name.clone().or_else(|| {
        let id = m.tool_call_id.as_deref()?;
        chat.messages
            .get(..i)
            .unwrap_or_default()
            .iter()
            .rev()
            .flat_map(|prev| prev.tool_calls.iter())
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .or_else(|| tool_name_for(chat, id))
    });
    let name = name.ok_or_else(|| {
        WireError::invalid(
            format!("messages[{i}].tool_call_id"),
            "no earlier assistant tool call has this id, and Gemini needs the function's name",
        )
    })?;
    let text = m.joined_text();
    // Google documents `output` and `error` as the keys a model reads a result by.
    let response = match (serde_json::from_str::<Value>(&text), m.is_error) {
        (Ok(obj @ Value::Object(_)), false) => obj,
        (Ok(obj @ Value::Object(_)), true) => json!({ "error": obj }),
        (_, false) => json!({ "output": text }),
        (_, true) => json!({ "error": text }),
    };
    Ok(json!({ "functionResponse": { "name": name, "response": response } }))
}

/// Text and media parts. Gemini rejects empty text parts, so those are skipped.
fn content_parts(parts: &[Part], i: usize) -> Result<Vec<Value>, WireError> {
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        match part {
            Part::Text { text } if text.is_empty() => {}
            Part::Text { text } => out.push(json!({ "text": text })),
            Part::Image { source } | Part::Document { source, .. } => match source {
                Media::Base64 { media_type, data } => out.push(json!({
                    "inlineData": { "mimeType": media_type, "data": data }
                })),
                Media::Url { url } => {
                    let mime = mime_from_url(url).ok_or_else(|| {
                        WireError::unsupported(format!("messages[{i}].content[{j}]"), TARGET)
                    })?;
                    out.push(json!({ "fileData": { "mimeType": mime, "fileUri": url } }));
                }
            },
        }
    }
    Ok(out)
}

/// `fileData` needs a MIME type, which for a bare URL only its extension can tell.
fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    let (_, ext) = last.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Responses

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Deserialize, Default)]
struct Content {
    #[serde(default)]
    parts: Vec<GeminiPart>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GeminiPart {
    #[serde(default)]
    text: Option<String>,
    /// Thought summaries are reasoning, not answer text.
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    function_call: Option<FunctionCall>,
    #[serde(default)]
    inline_data: Option<Blob>,
}

#[derive(Deserialize, Default)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Blob {
    #[serde(default)]
    mime_type: String,
    #[serde(default)]
    data: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    /// Thinking tokens are billed as output, as OpenAI's reasoning tokens are; the prompt count
    /// already includes the cached part.
    fn ir(self) -> Usage {
        Usage {
            input_tokens: self
                .prompt_token_count
                .saturating_add(self.tool_use_prompt_token_count),
            output_tokens: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            cached_input_tokens: self.cached_content_token_count,
        }
    }
}

#[derive(Deserialize, Default)]
struct ApiError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<Value>,
}

impl ApiError {
    fn info(&self, http_status: u16) -> ErrorInfo {
        // Inside a 200 stream the HTTP status says nothing; the error's own code does.
        let status = if (400..600).contains(&http_status) {
            http_status
        } else {
            self.code
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| (400..600).contains(c))
                .unwrap_or(502)
        };
        let message = if self.message.is_empty() {
            format!("the provider answered HTTP {status}")
        } else {
            self.message.clone()
        };
        ErrorInfo::new(status, ErrorInfo::kind_for_status(status), message)
            .with_retry_after(self.retry_after())
    }

    /// `google.rpc.RetryInfo.retryDelay`, a duration such as `"37s"` or `"0.5s"`, rounded up.
    fn retry_after(&self) -> Option<u32> {
        self.details.iter().find_map(|d| {
            let delay = d.get("retryDelay")?.as_str()?.strip_suffix('s')?;
            let secs: f64 = delay.parse().ok()?;
            if !(0.0..=f64::from(u32::MAX)).contains(&secs) {
                return None;
            }
            // In range and rounded up, so the conversion cannot truncate.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(secs.ceil() as u32)
        })
    }
}

fn error_info(status: u16, body: &[u8]) -> ErrorInfo {
    #[derive(Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) => e.error.info(status),
        Err(_) => ErrorInfo::new(
            status,
            ErrorInfo::kind_for_status(status),
            format!("the provider answered HTTP {status}"),
        ),
    }
}

const FILTERED: [&str; 9] = [
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
];

fn finish_reason(reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match reason {
        Some("MAX_TOKENS") => FinishReason::Length,
        Some(r) if FILTERED.contains(&r) => FinishReason::ContentFilter,
        // STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL and newer reasons.
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// The id of the answer: Gemini's `responseId`, else one derived from the clock.
fn response_id(resp: &GenerateContentResponse, created: u64) -> String {
    match resp.response_id.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => format!("gemini-{created}"),
    }
}

/// Gemini's function calls usually carry no id. Invented ids embed the answer's id so they
/// stay unique across a conversation (Anthropic and Bedrock reject repeated tool-use ids),
/// restricted to the characters every provider's id pattern allows.
fn tool_call_id(call: &FunctionCall, answer_id: &str, n: u32) -> String {
    if let Some(id) = call.id.as_deref().filter(|s| !s.is_empty()) {
        return id.to_string();
    }
    let tag: String = answer_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(24)
        .collect();
    format!("call_{tag}_{n}")
}

fn arguments_text(call: &FunctionCall) -> String {
    match &call.args {
        Some(v @ Value::Object(_)) => v.to_string(),
        _ => "{}".to_string(),
    }
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
    match req {
        Request::Embeddings(e) => decode_embeddings(e, body),
        Request::Chat(chat) => decode_chat(chat, body, created),
    }
}

fn decode_embeddings(req: &EmbeddingsRequest, body: &[u8]) -> Result<Response, WireError> {
    #[derive(Deserialize)]
    struct Batch {
        #[serde(default)]
        embeddings: Vec<Embedding>,
    }
    #[derive(Deserialize)]
    struct Embedding {
        #[serde(default)]
        values: Vec<f32>,
    }
    let batch: Batch = serde_json::from_slice(body)
        .map_err(|e| WireError::upstream(format!("invalid embeddings response: {e}")))?;
    if batch.embeddings.len() != req.input.len() {
        return Err(WireError::upstream(format!(
            "{} embeddings for {} inputs",
            batch.embeddings.len(),
            req.input.len()
        )));
    }
    Ok(Response::Embeddings(EmbeddingsResponse {
        model: req.model.clone(),
        data: batch.embeddings.into_iter().map(|e| e.values).collect(),
        // batchEmbedContents reports no token counts.
        usage: None,
    }))
}

fn decode_chat(chat: &ChatRequest, body: &[u8], created: u64) -> Result<Response, WireError> {
    let resp: GenerateContentResponse = serde_json::from_slice(body)
        .map_err(|e| WireError::upstream(format!("invalid generateContent response: {e}")))?;
    if let Some(err) = &resp.error {
        return Ok(Response::Error(err.info(200)));
    }
    let id = response_id(&resp, created);
    let mut choices = Vec::new();
    let mut calls_made = 0u32;
    for (pos, cand) in resp.candidates.iter().enumerate() {
        let index = cand
            .index
            .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
        let mut text = String::new();
        let mut content = Vec::new();
        let mut tool_calls = Vec::new();
        for part in cand.content.iter().flat_map(|c| c.parts.iter()) {
            if let Some(call) = &part.function_call {
                tool_calls.push(ToolCall {
                    id: tool_call_id(call, &id, calls_made),
                    name: call.name.clone(),
                    arguments: arguments_text(call),
                });
                calls_made = calls_made.saturating_add(1);
            } else if let Some(t) = part.text.as_deref().filter(|_| !part.thought) {
                text.push_str(t);
            } else if let Some(blob) = &part.inline_data {
                content.push(Part::Image {
                    source: Media::Base64 {
                        media_type: blob.mime_type.clone(),
                        data: blob.data.clone(),
                    },
                });
            }
        }
        if !text.is_empty() || (content.is_empty() && tool_calls.is_empty()) {
            content.insert(0, Part::Text { text });
        }
        let finish = finish_reason(cand.finish_reason.as_deref(), !tool_calls.is_empty());
        choices.push(Choice {
            index,
            message: Message {
                role: Role::Assistant,
                content,
                tool_calls,
                tool_call_id: None,
                name: None,
                is_error: false,
            },
            finish_reason: finish,
        });
    }
    choices.sort_by_key(|c| c.index);
    if choices.is_empty() {
        // A prompt blocked by safety filters gets no candidates. It is answered the way OpenAI
        // answers filtered output (finish_reason `content_filter`, no text), which clients
        // already handle, rather than as an error a client might retry verbatim.
        if resp
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.as_ref())
            .is_none()
        {
            return Err(WireError::upstream("the answer has no candidates"));
        }
        choices.push(Choice {
            index: 0,
            message: Message::text(Role::Assistant, ""),
            finish_reason: FinishReason::ContentFilter,
        });
    }
    Ok(Response::Chat(ChatResponse {
        id,
        model: resp
            .model_version
            .clone()
            .unwrap_or_else(|| chat.model.clone()),
        created,
        choices,
        usage: resp.usage_metadata.map(UsageMetadata::ir),
    }))
}

// ---------------------------------------------------------------------------------------------
// Streams

/// Turns `streamGenerateContent?alt=sse` into IR events. Every SSE `data` is a whole
/// GenerateContentResponse; Gemini sends each function call whole, in one chunk.
pub struct StreamDecoder {
    framer: SseFramer,
    model: String,
    created: u64,
    /// The answer id, once the first chunk has named it.
    id: Option<String>,
    /// An error ended the stream; anything after it is ignored.
    done: bool,
    /// Per candidate index.
    choices: BTreeMap<u32, ChoiceState>,
    calls_made: u32,
    /// The latest `usageMetadata`: Gemini's counts are cumulative, so the last one is the total.
    usage: Option<Usage>,
}

struct ChoiceState {
    tool_calls: u32,
    finished: bool,
}

impl StreamDecoder {
    pub fn new(req: &ChatRequest, max_frame: usize, created: u64) -> Self {
        StreamDecoder {
            framer: SseFramer::new(max_frame),
            model: req.model.clone(),
            created,
            id: None,
            done: false,
            choices: BTreeMap::new(),
            calls_made: 0,
            usage: None,
        }
    }

    fn choice(&mut self, index: u32) -> &mut ChoiceState {
        self.choices.entry(index).or_insert(ChoiceState {
            tool_calls: 0,
            finished: false,
        })
    }

    fn event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        if self.done || ev.data.trim().is_empty() {
            return Ok(());
        }
        let chunk: GenerateContentResponse = serde_json::from_str(&ev.data)
            .map_err(|e| WireError::upstream(format!("invalid stream chunk: {e}")))?;
        if let Some(err) = &chunk.error {
            out.push(StreamEvent::Error(err.info(200)));
            self.done = true;
            return Ok(());
        }
        let id = match &self.id {
            Some(id) => id.clone(),
            None => {
                let id = response_id(&chunk, self.created);
                self.id = Some(id.clone());
                out.push(StreamEvent::Start {
                    id: id.clone(),
                    model: chunk
                        .model_version
                        .clone()
                        .unwrap_or_else(|| self.model.clone()),
                    created: self.created,
                });
                id
            }
        };
        let blocked = chunk
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some());
        if blocked && chunk.candidates.is_empty() {
            let c = self.choice(0);
            if !c.finished {
                c.finished = true;
                out.push(StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ContentFilter,
                });
            }
        }
        for (pos, cand) in chunk.candidates.iter().enumerate() {
            let index = cand
                .index
                .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
            for part in cand.content.iter().flat_map(|c| c.parts.iter()) {
                if let Some(call) = &part.function_call {
                    let call_id = tool_call_id(call, &id, self.calls_made);
                    self.calls_made = self.calls_made.saturating_add(1);
                    let c = self.choice(index);
                    let n = c.tool_calls;
                    c.tool_calls = n.saturating_add(1);
                    out.push(StreamEvent::ToolCallStart {
                        choice: index,
                        index: n,
                        id: call_id,
                        name: call.name.clone(),
                    });
                    out.push(StreamEvent::ToolCallDelta {
                        choice: index,
                        index: n,
                        arguments: arguments_text(call),
                    });
                } else if let Some(t) = part.text.as_deref().filter(|_| !part.thought) {
                    if !t.is_empty() {
                        out.push(StreamEvent::TextDelta {
                            choice: index,
                            text: t.to_string(),
                        });
                    }
                }
            }
            if let Some(reason) = cand.finish_reason.as_deref() {
                let c = self.choice(index);
                if !c.finished {
                    c.finished = true;
                    let reason = finish_reason(Some(reason), c.tool_calls > 0);
                    out.push(StreamEvent::Finish {
                        choice: index,
                        reason,
                    });
                }
            }
        }
        if let Some(u) = chunk.usage_metadata {
            self.usage = Some(u.ir());
        }
        Ok(())
    }
}

impl super::StreamDecoder for StreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut events = Vec::new();
        let framed = self.framer.push(chunk, &mut events);
        for ev in &events {
            self.event(ev, out)?;
        }
        framed.map_err(WireError::from)
    }

    /// Usage goes out last, after every Finish, as the IR's stream order requires; a stream
    /// that never finished gets none, and the client encoder reports it as cut short.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        let mut events = Vec::new();
        let framed = self.framer.finish(&mut events);
        for ev in &events {
            self.event(ev, out)?;
        }
        framed?;
        if !self.done && self.choices.values().any(|c| c.finished) {
            if let Some(u) = self.usage.take() {
                out.push(StreamEvent::Usage(u));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::testutil::splits;
    use crate::wire::{ProviderKind, StreamDecoder as _};

    fn spec() -> ProviderSpec {
        ProviderSpec {
            kind: ProviderKind::Gemini,
            host: "generativelanguage.googleapis.com".into(),
            base_path: "/v1beta".into(),
            api_version: None,
            region: None,
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
            model: "gemini-2.0-flash".into(),
            messages,
            ..Default::default()
        }
    }

    fn encode(req: ChatRequest) -> Result<(String, Value), WireError> {
        let out = encode_request(&spec(), &Request::Chat(req))?;
        assert_eq!(
            out.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        Ok((out.path, serde_json::from_slice(&out.body).unwrap()))
    }

    fn weather_tool() -> Tool {
        Tool {
            name: "get_weather".into(),
            description: Some("Weather for a city".into()),
            parameters: json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"city": {"type": "string", "format": "uri"}},
                "required": ["city"],
                "additionalProperties": false
            }),
        }
    }

    #[test]
    fn encodes_a_full_conversation() {
        let mut assistant = Message::text(Role::Assistant, "Checking both.");
        assistant.tool_calls = vec![
            call("c1", "get_weather", r#"{"city":"Paris"}"#),
            call("c2", "get_time", ""),
        ];
        let mut failed = tool_msg("c2", "clock broken");
        failed.is_error = true;
        let mut req = chat(vec![
            Message::text(Role::System, "Be brief."),
            Message {
                content: vec![
                    Part::Text {
                        text: "Look:".into(),
                    },
                    Part::Text {
                        text: String::new(),
                    },
                    Part::Image {
                        source: Media::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBO".into(),
                        },
                    },
                    Part::Document {
                        source: Media::Url {
                            url: "https://example.com/a/report.PDF?x=1".into(),
                        },
                        title: None,
                    },
                ],
                ..user("")
            },
            assistant,
            tool_msg("c1", r#"{"temp":21}"#),
            failed,
            user("Thanks"),
        ]);
        req.tools = vec![
            weather_tool(),
            Tool {
                name: "get_time".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
            },
        ];
        req.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
        req.max_tokens = Some(256);
        req.temperature = Some(0.2);
        req.top_p = Some(0.9);
        req.top_k = Some(40);
        req.stop = vec!["END".into()];
        req.seed = Some(7);
        req.n = Some(2);
        req.presence_penalty = Some(0.1);
        req.frequency_penalty = Some(0.3);
        req.user = Some("u-1".into());
        req.response_format = Some(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false}),
            strict: Some(true),
        });
        let (path, body) = encode(req).unwrap();
        assert_eq!(path, "/v1beta/models/gemini-2.0-flash:generateContent");
        assert_eq!(
            body,
            json!({
                "contents": [
                    {"role": "user", "parts": [
                        {"text": "Look:"},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/a/report.PDF?x=1"}}
                    ]},
                    {"role": "model", "parts": [
                        {"text": "Checking both."},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "skip_thought_signature_validator"},
                        {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"}
                    ]},
                    {"role": "user", "parts": [
                        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                        {"functionResponse": {"name": "get_time", "response": {"error": "clock broken"}}},
                        {"text": "Thanks"}
                    ]}
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "tools": [{"functionDeclarations": [
                    {"name": "get_weather", "description": "Weather for a city", "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"]
                    }},
                    {"name": "get_time"}
                ]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
                "generationConfig": {
                    "temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 256,
                    "stopSequences": ["END"], "seed": 7, "candidateCount": 2,
                    "presencePenalty": 0.1, "frequencyPenalty": 0.3,
                    "responseMimeType": "application/json",
                    "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}
                }
            })
        );
    }

    #[test]
    fn streams_use_sse_and_model_prefixes_are_not_doubled() {
        let mut req = chat(vec![user("hi")]);
        req.stream = true;
        req.model = "models/gemini-2.5-pro".into();
        req.response_format = Some(ResponseFormat::JsonObject);
        let (path, body) = encode(req).unwrap();
        assert_eq!(
            path,
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            body,
            json!({
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generationConfig": {"responseMimeType": "application/json"}
            })
        );
    }

    #[test]
    fn schemas_are_cut_to_geminis_subset() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": {"Unit": {"type": "string", "enum": ["C", "F"], "description": "unit"}},
            "type": "object",
            "properties": {
                "unit": {"$ref": "#/$defs/Unit", "description": "which unit"},
                "when": {"type": ["string", "null"], "format": "date-time"},
                "count": {"anyOf": [{"type": "integer", "format": "int32", "minimum": 0}, {"type": "null"}]},
                "kind": {"const": "fixed"},
                "level": {"type": "integer", "enum": [1, 2, 3], "exclusiveMinimum": 0},
                "tags": {"type": "array", "items": {"type": "string", "format": "email"}, "uniqueItems": true, "maxItems": 3},
                "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "multi": {"type": ["string", "integer"]},
                "nested": {"properties": {"x": {"type": "boolean", "title": "X"}}, "additionalProperties": {"type": "string"}},
                "wrapped": {"allOf": [{"type": "string", "pattern": "^a"}]}
            },
            "required": ["unit"],
            "additionalProperties": false
        });
        assert_eq!(
            to_gemini_schema(&schema, "f").unwrap(),
            json!({
                "type": "OBJECT",
                "properties": {
                    "unit": {"type": "STRING", "enum": ["C", "F"], "description": "which unit"},
                    "when": {"type": "STRING", "nullable": true, "format": "date-time"},
                    "count": {"type": "INTEGER", "format": "int32", "minimum": 0, "nullable": true},
                    "kind": {"type": "STRING", "enum": ["fixed"]},
                    "level": {"type": "INTEGER"},
                    "tags": {"type": "ARRAY", "maxItems": 3, "items": {"type": "STRING"}},
                    "either": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
                    "multi": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
                    "nested": {"type": "OBJECT", "properties": {"x": {"type": "BOOLEAN", "title": "X"}}},
                    "wrapped": {"type": "STRING", "pattern": "^a"}
                },
                "required": ["unit"]
            })
        );
        let recursive = json!({
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            "$ref": "#/$defs/Node"
        });
        assert_eq!(
            to_gemini_schema(&recursive, "tools[0].function.parameters"),
            Err(WireError::unsupported(
                "tools[0].function.parameters",
                "gemini"
            ))
        );
        assert_eq!(
            to_gemini_schema(&json!({"$ref": "https://x/schema"}), "f"),
            Err(WireError::unsupported("f", "gemini"))
        );
        assert_eq!(
            to_gemini_schema(
                &json!({"allOf": [{"type": "string"}, {"minLength": 1}]}),
                "f"
            ),
            Err(WireError::unsupported("f", "gemini"))
        );
        // Tools without arguments declare no parameters at all.
        assert_eq!(function_parameters(&Value::Null, "f").unwrap(), None);
        assert_eq!(function_parameters(&json!({}), "f").unwrap(), None);
        assert_eq!(
            function_parameters(
                &json!({"type": "object", "additionalProperties": false}),
                "f"
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn tool_results_find_their_function_in_the_nearest_turn() {
        // The same id reused in two turns (as `call_0`-style ids may be) names two functions.
        let mut a1 = Message::text(Role::Assistant, "");
        a1.tool_calls = vec![call("call_0", "first", "{}")];
        let mut a2 = Message::text(Role::Assistant, "");
        a2.tool_calls = vec![call("call_0", "second", "{}")];
        let named = Message {
            name: Some("explicit".into()),
            tool_call_id: None,
            ..Message::text(Role::Tool, "[1,2]")
        };
        let req = chat(vec![
            user("go"),
            a1,
            tool_msg("call_0", "one"),
            a2,
            tool_msg("call_0", "two"),
            named,
        ]);
        let (_, body) = encode(req).unwrap();
        let responses: Vec<&Value> = body["contents"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["parts"].as_array().unwrap())
            .filter_map(|p| p.get("functionResponse"))
            .collect();
        assert_eq!(
            responses,
            vec![
                &json!({"name": "first", "response": {"output": "one"}}),
                &json!({"name": "second", "response": {"output": "two"}}),
                &json!({"name": "explicit", "response": {"output": "[1,2]"}}),
            ]
        );
        let orphan = chat(vec![user("go"), tool_msg("nope", "x")]);
        assert!(matches!(
            encode(orphan),
            Err(WireError::Invalid { field, .. }) if field == "messages[1].tool_call_id"
        ));
        let mut a = Message::text(Role::Assistant, "");
        a.tool_calls = vec![call("c", "f", "{}")];
        let mut with_image = tool_msg("c", "see");
        with_image.content.push(Part::Image {
            source: Media::Base64 {
                media_type: "image/png".into(),
                data: "AA".into(),
            },
        });
        assert_eq!(
            encode(chat(vec![user("go"), a, with_image])),
            Err(WireError::unsupported("messages[2].content[1]", "gemini"))
        );
    }

    #[test]
    fn inexpressible_requests_are_rejected_by_name() {
        let mut r = chat(vec![user("hi")]);
        r.extra.insert("logprobs".into(), json!(true));
        r.extra_family = Some(Family::OpenAi);
        assert_eq!(encode(r), Err(WireError::unsupported("logprobs", "gemini")));
        let mut r = chat(vec![user("hi")]);
        r.tools = vec![weather_tool()];
        r.parallel_tool_calls = Some(false);
        assert_eq!(
            encode(r),
            Err(WireError::unsupported("parallel_tool_calls", "gemini"))
        );
        let mut r = chat(vec![user("hi")]);
        r.messages[0].content.push(Part::Image {
            source: Media::Url {
                url: "https://example.com/image".into(),
            },
        });
        assert_eq!(
            encode(r),
            Err(WireError::unsupported("messages[0].content[1]", "gemini"))
        );
        let mut a = Message::text(Role::Assistant, "");
        a.tool_calls = vec![call("c", "f", "not json")];
        assert!(matches!(
            encode(chat(vec![user("hi"), a])),
            Err(WireError::Invalid { field, .. }) if field == "messages[1].tool_calls[0].function.arguments"
        ));
    }

    #[test]
    fn tool_choice_without_tools() {
        let mut r = chat(vec![user("hi")]);
        r.tool_choice = Some(ToolChoice::None);
        assert_eq!(encode(r).unwrap().1.get("toolConfig"), None);
        let mut r = chat(vec![user("hi")]);
        r.tool_choice = Some(ToolChoice::Required);
        assert!(matches!(encode(r), Err(WireError::Invalid { .. })));
        let mut r = chat(vec![user("hi")]);
        r.tools = vec![weather_tool()];
        r.tool_choice = Some(ToolChoice::None);
        assert_eq!(
            encode(r).unwrap().1["toolConfig"],
            json!({"functionCallingConfig": {"mode": "NONE"}})
        );
    }

    fn emb_req() -> Request {
        Request::Embeddings(EmbeddingsRequest {
            model: "text-embedding-004".into(),
            input: vec!["a".into(), "b".into()],
            dimensions: Some(256),
            user: None,
        })
    }

    #[test]
    fn embeddings_round_trip() {
        let out = encode_request(&spec(), &emb_req()).unwrap();
        assert_eq!(
            out.path,
            "/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        let body: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            json!({"requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 256}
            ]})
        );
        let answer = br#"{"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]}"#;
        assert_eq!(
            decode_response(&emb_req(), 200, answer, 1).unwrap(),
            Response::Embeddings(EmbeddingsResponse {
                model: "text-embedding-004".into(),
                data: vec![vec![0.5, -1.0], vec![0.25, 2.0]],
                usage: None,
            })
        );
        assert!(matches!(
            decode_response(
                &emb_req(),
                200,
                br#"{"embeddings": [{"values": [1.0]}]}"#,
                1
            ),
            Err(WireError::Upstream { .. })
        ));
    }

    fn chat_req() -> Request {
        Request::Chat(chat(vec![user("hi")]))
    }

    fn decode(body: Value) -> ChatResponse {
        match decode_response(&chat_req(), 200, body.to_string().as_bytes(), 1_700_000_000).unwrap()
        {
            Response::Chat(c) => c,
            other => panic!("not chat: {other:?}"),
        }
    }

    #[test]
    fn decodes_text_function_calls_and_usage() {
        let got = decode(json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "thinking...", "thought": true},
                    {"text": "Sure. "},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_time", "args": {}, "id": "fc-7"}}
                ]},
                "finishReason": "STOP",
                "index": 0,
                "safetyRatings": []
            }],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
                              "cachedContentTokenCount": 64, "totalTokenCount": 150},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"
        }));
        assert_eq!(
            got,
            ChatResponse {
                id: "mAitaLmkHPPlz7IPvtfUqQ4".into(),
                model: "gemini-2.5-flash".into(),
                created: 1_700_000_000,
                choices: vec![Choice {
                    index: 0,
                    message: Message {
                        tool_calls: vec![
                            call(
                                "call_mAitaLmkHPPlz7IPvtfUqQ4_0",
                                "get_weather",
                                r#"{"city":"Paris"}"#
                            ),
                            call("fc-7", "get_time", "{}"),
                        ],
                        ..Message::text(Role::Assistant, "Sure. ")
                    },
                    finish_reason: FinishReason::ToolCalls,
                }],
                usage: Some(Usage {
                    input_tokens: 100,
                    output_tokens: 50,
                    cached_input_tokens: 64
                }),
            }
        );
    }

    #[test]
    fn finish_reasons_map_and_missing_ids_come_from_the_clock() {
        for (reason, want) in [
            ("STOP", FinishReason::Stop),
            ("MAX_TOKENS", FinishReason::Length),
            ("SAFETY", FinishReason::ContentFilter),
            ("RECITATION", FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("OTHER", FinishReason::Stop),
            ("MALFORMED_FUNCTION_CALL", FinishReason::Stop),
        ] {
            let got = decode(
                json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}),
            );
            assert_eq!(got.choices[0].finish_reason, want, "{reason}");
            assert_eq!(got.id, "gemini-1700000000");
            assert_eq!(got.model, "gemini-2.0-flash");
        }
    }

    #[test]
    fn a_blocked_prompt_is_a_content_filter_finish() {
        let got = decode(json!({
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}
        }));
        assert_eq!(
            got.choices,
            vec![Choice {
                index: 0,
                message: Message::text(Role::Assistant, ""),
                finish_reason: FinishReason::ContentFilter,
            }]
        );
        assert!(matches!(
            decode_response(&chat_req(), 200, b"{}", 1),
            Err(WireError::Upstream { .. })
        ));
    }

    #[test]
    fn errors_carry_message_status_and_retry_delay() {
        let body = json!({"error": {
            "code": 429,
            "message": "You exceeded your current quota.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.5s"}
            ]
        }});
        assert_eq!(
            decode_response(&chat_req(), 429, body.to_string().as_bytes(), 1).unwrap(),
            Response::Error(
                ErrorInfo::new(
                    429,
                    ErrorKind::RateLimited,
                    "You exceeded your current quota."
                )
                .with_retry_after(Some(37))
            )
        );
        let body = br#"{"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified", "status": "INVALID_ARGUMENT"}}"#;
        let Response::Error(e) = decode_response(&chat_req(), 400, body, 1).unwrap() else {
            panic!("not an error")
        };
        assert_eq!(
            (e.status, e.kind, e.retry_after),
            (400, ErrorKind::InvalidRequest, None)
        );
        let Response::Error(e) =
            decode_response(&chat_req(), 503, b"upstream connect error", 1).unwrap()
        else {
            panic!("not an error")
        };
        assert_eq!((e.status, e.kind), (503, ErrorKind::Unavailable));
        assert!(matches!(
            decode_response(&chat_req(), 200, b"[]", 1),
            Err(WireError::Upstream { .. })
        ));
    }

    /// A `streamGenerateContent?alt=sse` answer shaped like a recorded one: CRLF-separated
    /// events, cumulative usage on every chunk, a function call whole in the last one.
    fn recorded_stream() -> Vec<u8> {
        let chunks = [
            json!({"candidates": [{"content": {"parts": [{"text": "The weather"}], "role": "model"}, "index": 0}],
                   "usageMetadata": {"promptTokenCount": 31, "totalTokenCount": 31},
                   "modelVersion": "gemini-2.0-flash", "responseId": "Xj5kZ9-aBcD"}),
            json!({"candidates": [{"content": {"parts": [{"text": " in Paris — ☀️"}], "role": "model"}, "index": 0}],
                   "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 6, "totalTokenCount": 37},
                   "modelVersion": "gemini-2.0-flash", "responseId": "Xj5kZ9-aBcD"}),
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "C"}}}], "role": "model"},
                                   "finishReason": "STOP", "index": 0}],
                   "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 14, "totalTokenCount": 45, "cachedContentTokenCount": 16},
                   "modelVersion": "gemini-2.0-flash", "responseId": "Xj5kZ9-aBcD"}),
        ];
        let mut s = Vec::new();
        for c in chunks {
            s.extend_from_slice(format!("data: {c}\r\n\r\n").as_bytes());
        }
        s
    }

    fn expected_events() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "Xj5kZ9-aBcD".into(),
                model: "gemini-2.0-flash".into(),
                created: 1_700_000_000,
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: "The weather".into(),
            },
            StreamEvent::TextDelta {
                choice: 0,
                text: " in Paris — ☀️".into(),
            },
            StreamEvent::ToolCallStart {
                choice: 0,
                index: 0,
                id: "call_Xj5kZ9-aBcD_0".into(),
                name: "get_weather".into(),
            },
            StreamEvent::ToolCallDelta {
                choice: 0,
                index: 0,
                arguments: r#"{"city":"Paris","unit":"C"}"#.into(),
            },
            StreamEvent::Finish {
                choice: 0,
                reason: FinishReason::ToolCalls,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 31,
                output_tokens: 14,
                cached_input_tokens: 16,
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
    fn stream_errors_blocks_and_truncation() {
        let err = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}]}}]}\n\ndata: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"late\"}]}}]}\n\n";
        let got = decode_stream(&[err]).unwrap();
        assert_eq!(
            got[1..],
            [
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "Hi".into()
                },
                StreamEvent::Error(ErrorInfo::new(
                    503,
                    ErrorKind::Unavailable,
                    "The model is overloaded."
                )),
            ]
        );
        let blocked = b"data: {\"promptFeedback\": {\"blockReason\": \"PROHIBITED_CONTENT\"}, \"usageMetadata\": {\"promptTokenCount\": 5}}\n\n";
        assert_eq!(
            decode_stream(&[blocked]).unwrap(),
            vec![
                StreamEvent::Start {
                    id: "gemini-1700000000".into(),
                    model: "gemini-2.0-flash".into(),
                    created: 1_700_000_000
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::ContentFilter
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 5,
                    output_tokens: 0,
                    cached_input_tokens: 0
                }),
            ]
        );
        // No finishReason: no Finish and no Usage, so the client sees a cut-short answer.
        let s = recorded_stream();
        let first = s.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let got = decode_stream(&[&s[..first]]).unwrap();
        assert_eq!(got, expected_events()[..2].to_vec());
        assert!(matches!(
            decode_stream(&[b"data: {oops\n\n"]),
            Err(WireError::Upstream { .. })
        ));
    }

    #[test]
    fn several_candidates_stream_as_several_choices() {
        let s = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"A\"}]}, \"index\": 0, \"finishReason\": \"STOP\"}, {\"content\": {\"parts\": [{\"text\": \"B\"}]}, \"index\": 1, \"finishReason\": \"MAX_TOKENS\"}]}\n\n";
        let got = decode_stream(&[s]).unwrap();
        assert_eq!(
            got[1..],
            [
                StreamEvent::TextDelta {
                    choice: 0,
                    text: "A".into()
                },
                StreamEvent::Finish {
                    choice: 0,
                    reason: FinishReason::Stop
                },
                StreamEvent::TextDelta {
                    choice: 1,
                    text: "B".into()
                },
                StreamEvent::Finish {
                    choice: 1,
                    reason: FinishReason::Length
                },
            ]
        );
    }

    /// What a Gemini mock would answer for an IR response: the inverse of `decode_response`.
    fn mock_generate(resp: &ChatResponse) -> Value {
        let candidates: Vec<Value> = resp
            .choices
            .iter()
            .map(|c| {
                let mut parts = vec![json!({"text": c.message.joined_text()})];
                for t in &c.message.tool_calls {
                    let args: Value = serde_json::from_str(&t.arguments).unwrap();
                    parts.push(json!({"functionCall": {"id": t.id, "name": t.name, "args": args}}));
                }
                let reason = match c.finish_reason {
                    FinishReason::Stop | FinishReason::ToolCalls => "STOP",
                    FinishReason::Length => "MAX_TOKENS",
                    FinishReason::ContentFilter => "SAFETY",
                };
                json!({"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": c.index})
            })
            .collect();
        let u = resp.usage.unwrap();
        json!({
            "candidates": candidates,
            "usageMetadata": {"promptTokenCount": u.input_tokens, "candidatesTokenCount": u.output_tokens,
                              "cachedContentTokenCount": u.cached_input_tokens},
            "modelVersion": resp.model, "responseId": resp.id
        })
    }

    #[test]
    fn responses_round_trip_through_a_mock() {
        let want = ChatResponse {
            id: "resp-1".into(),
            model: "gemini-2.0-flash-001".into(),
            created: 1_700_000_000,
            choices: vec![
                Choice {
                    index: 0,
                    message: Message {
                        tool_calls: vec![call("fc_1", "f", r#"{"a":[1,{"b":null}]}"#)],
                        ..Message::text(Role::Assistant, "Calling f.")
                    },
                    finish_reason: FinishReason::ToolCalls,
                },
                Choice {
                    index: 1,
                    message: Message::text(Role::Assistant, "cut"),
                    finish_reason: FinishReason::Length,
                },
            ],
            usage: Some(Usage {
                input_tokens: 12,
                output_tokens: 7,
                cached_input_tokens: 0,
            }),
        };
        assert_eq!(decode(mock_generate(&want)), want);
    }

    #[test]
    fn a_request_round_trips_through_the_gemini_shape() {
        // Reading our own encoding back with Gemini's meaning recovers the conversation.
        let mut a = Message::text(Role::Assistant, "ok");
        a.tool_calls = vec![call("c9", "lookup", r#"{"q":"x"}"#)];
        let req = chat(vec![
            Message::text(Role::System, "sys"),
            user("one"),
            a,
            tool_msg("c9", "found"),
        ]);
        let (_, body) = encode(req.clone()).unwrap();
        let mut back = vec![Message::text(
            Role::System,
            body["systemInstruction"]["parts"][0]["text"]
                .as_str()
                .unwrap(),
        )];
        for turn in body["contents"].as_array().unwrap() {
            for p in turn["parts"].as_array().unwrap() {
                if let Some(t) = p.get("text") {
                    let role = if turn["role"] == "model" {
                        Role::Assistant
                    } else {
                        Role::User
                    };
                    back.push(Message::text(role, t.as_str().unwrap()));
                } else if let Some(fc) = p.get("functionCall") {
                    let last = back.last_mut().unwrap();
                    last.tool_calls.push(call(
                        "c9",
                        fc["name"].as_str().unwrap(),
                        &fc["args"].to_string(),
                    ));
                } else if let Some(fr) = p.get("functionResponse") {
                    back.push(tool_msg("c9", fr["response"]["output"].as_str().unwrap()));
                }
            }
        }
        assert_eq!(back, req.messages);
    }
}
