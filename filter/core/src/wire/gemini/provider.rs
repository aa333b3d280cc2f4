//! The `gemini` provider format: IR requests to generateContent / batchEmbedContents, and complete answers and error bodies back to IR.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::ir::*;
use crate::wire::json::{set, to_bytes};
use crate::wire::{
    args, path_segment, reasoning, system_text, tool_name_for, Outgoing, ProviderSpec, WireError,
};

pub(super) const TARGET: &str = "gemini";

/// Nesting depth past which a schema is taken to be recursive (`$ref` cycles), which Gemini's
/// `Schema` cannot express.
pub(super) const MAX_SCHEMA_DEPTH: usize = 32;

/// Gemini 3 rejects function calls in the history that lack the thought signature it issued
/// with them. A turn Gemini answered carries its signature back (a Gemini-origin reasoning
/// part, put on the turn's first call, where Gemini puts it); calls with none get the
/// placeholder Google documents for histories it did not produce (the thought-signatures
/// guide's FAQ).
pub(super) const SKIP_THOUGHT_SIGNATURE: &str = "skip_thought_signature_validator";

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
                path: format!("{base}/models/{}:batchEmbedContents", path_segment(model)),
                headers,
                body: to_bytes(&json!({ "requests": requests })),
            })
        }
        Request::CountTokens(_) => Err(WireError::unsupported("count_tokens", TARGET)),
        Request::Chat(chat) => {
            let body = encode_chat(chat)?;
            let model = model_name(&chat.model);
            let op = if chat.stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            Ok(Outgoing {
                path: format!("{base}/models/{}:{op}", path_segment(model)),
                headers,
                body: to_bytes(&body),
            })
        }
    }
}

/// Model ids may be configured with the API's own `models/` prefix; the path adds it once.
pub(super) fn model_name(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

pub(super) fn encode_chat(chat: &ChatRequest) -> Result<Value, WireError> {
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

/// IR fields generateContent cannot express. Participant names are left out: Gemini's turns
/// have none, and they never change the answer.
pub(super) fn reject_unsupported(chat: &ChatRequest) -> Result<(), WireError> {
    if let Some(field) = chat.extra.keys().next() {
        return Err(WireError::unsupported(field.clone(), TARGET));
    }
    if chat.user.is_some() {
        return Err(WireError::unsupported("user", TARGET));
    }
    if chat.keep_alive.is_some() {
        return Err(WireError::unsupported("keep_alive", TARGET));
    }
    // Gemini may always return several function calls in one turn; it cannot be told not to.
    if chat.parallel_tool_calls == Some(false) && !chat.tools.is_empty() {
        return Err(WireError::unsupported("parallel_tool_calls", TARGET));
    }
    Ok(())
}

pub(super) fn generation_config(chat: &ChatRequest) -> Result<Map<String, Value>, WireError> {
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
    if let Some(r) = &chat.reasoning {
        put("thinkingConfig", thinking_config(&chat.model, r));
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

/// `thinkingConfig` for IR reasoning: a budget where one is given (0 off, -1 the model decides),
/// else a level for Gemini 3 and later (`thinkingLevel`), or the level's budget for the Gemini 1
/// and 2 models, which take only budgets. Thoughts are included unless the client said not to.
pub(super) fn thinking_config(model: &str, r: &Reasoning) -> Value {
    let mut c = Map::new();
    let budget_only = {
        let m = model_name(model);
        m.starts_with("gemini-1") || m.starts_with("gemini-2")
    };
    if reasoning::is_off(r) {
        c.insert("thinkingBudget".into(), json!(0));
    } else if let Some(b) = r.budget_tokens {
        c.insert("thinkingBudget".into(), json!(b));
    } else if let Some(effort) = r.effort {
        if budget_only {
            c.insert(
                "thinkingBudget".into(),
                json!(reasoning::budget_for(effort)),
            );
        } else {
            let level = match effort {
                Effort::Minimal => "MINIMAL",
                Effort::Low => "LOW",
                Effort::Medium => "MEDIUM",
                Effort::High => "HIGH",
                Effort::Xhigh | Effort::Max => "XHIGH",
            };
            c.insert("thinkingLevel".into(), json!(level));
        }
    } else {
        c.insert("thinkingBudget".into(), json!(-1));
    }
    if !reasoning::is_off(r) {
        c.insert("includeThoughts".into(), json!(r.visible.unwrap_or(true)));
    }
    Value::Object(c)
}

/// A tool's parameters as a Gemini `Schema`, or `None` for a tool that takes no arguments:
/// Gemini rejects an OBJECT schema whose `properties` is empty.
pub(super) fn function_parameters(
    parameters: &Value,
    field: &str,
) -> Result<Option<Value>, WireError> {
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
pub(super) fn to_gemini_schema(schema: &Value, field: &str) -> Result<Value, WireError> {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    convert_schema(schema, defs, 0, field)
}

/// `Schema` keywords (google-genai `types.Schema`) copied as they are.
pub(super) const KEPT_KEYWORDS: [&str; 14] = [
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

pub(super) fn convert_schema(
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

pub(super) fn encode_contents(chat: &ChatRequest) -> Result<Vec<Value>, WireError> {
    // Consecutive turns of one role are merged: Gemini wants the responses to one turn's
    // parallel function calls together in a single user turn.
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in chat.messages.iter().enumerate() {
        let (role, parts) = match m.role {
            Role::System | Role::Developer => continue,
            Role::User => ("user", content_parts(&m.content, i)?),
            Role::Assistant => {
                let mut parts = content_parts(&m.content, i)?;
                if let Some(r) = m.refusal.as_deref().filter(|r| !r.is_empty()) {
                    parts.push(json!({ "text": r }));
                }
                // Gemini's own signature goes back where Gemini put it: on the turn's first
                // function call, else on its first part.
                let mut signature = gemini_signature(m);
                for (k, call) in m.tool_calls.iter().enumerate() {
                    let field = format!("messages[{i}].tool_calls[{k}].function.arguments");
                    let sig = signature.take().unwrap_or(SKIP_THOUGHT_SIGNATURE);
                    parts.push(json!({
                        "functionCall": {
                            "name": call.name,
                            "args": args::object_at(&call.arguments, &field)?,
                        },
                        "thoughtSignature": sig,
                    }));
                }
                if let (Some(sig), Some(first)) = (signature, parts.first_mut()) {
                    set(first, "thoughtSignature", json!(sig));
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
pub(super) fn function_response(
    chat: &ChatRequest,
    i: usize,
    m: &Message,
) -> Result<Value, WireError> {
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

/// The first Gemini-origin reasoning signature of an assistant turn. Other origins' signatures,
/// and reasoning text (Gemini's thought summaries are not read back), are not sent.
fn gemini_signature(m: &Message) -> Option<&str> {
    m.content.iter().find_map(|p| match p {
        Part::Reasoning {
            signature: Some(sig),
            origin: Some(Origin::Gemini),
            ..
        } => Some(sig.as_str()),
        _ => None,
    })
}

/// Text and media parts. Gemini rejects empty text parts, so those are skipped.
pub(super) fn content_parts(parts: &[Part], i: usize) -> Result<Vec<Value>, WireError> {
    let mut out = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        match part {
            Part::Reasoning { .. } | Part::Native { .. } => {}
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
pub(super) fn mime_from_url(url: &str) -> Option<&'static str> {
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
pub(super) struct GenerateContentResponse {
    #[serde(default)]
    pub(super) candidates: Vec<Candidate>,
    #[serde(default)]
    pub(super) prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub(super) usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub(super) model_version: Option<String>,
    #[serde(default)]
    pub(super) response_id: Option<String>,
    #[serde(default)]
    pub(super) error: Option<ApiError>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    #[serde(default)]
    pub(super) content: Option<Content>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
    #[serde(default)]
    pub(super) index: Option<u32>,
}

#[derive(Deserialize, Default)]
pub(super) struct Content {
    #[serde(default)]
    pub(super) parts: Vec<GeminiPart>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct GeminiPart {
    #[serde(default)]
    pub(super) text: Option<String>,
    /// Thought summaries are reasoning, not answer text.
    #[serde(default)]
    pub(super) thought: bool,
    /// Base64 bytes Gemini needs back with the part it came on.
    #[serde(default)]
    pub(super) thought_signature: Option<String>,
    #[serde(default)]
    pub(super) function_call: Option<FunctionCall>,
    #[serde(default)]
    pub(super) inline_data: Option<Blob>,
}

#[derive(Deserialize, Default)]
pub(super) struct FunctionCall {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) args: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct Blob {
    #[serde(default)]
    pub(super) mime_type: String,
    #[serde(default)]
    pub(super) data: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    #[serde(default)]
    pub(super) block_reason: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default)]
    pub(super) prompt_token_count: u64,
    #[serde(default)]
    pub(super) candidates_token_count: u64,
    #[serde(default)]
    pub(super) cached_content_token_count: u64,
    #[serde(default)]
    pub(super) thoughts_token_count: u64,
    #[serde(default)]
    pub(super) tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    /// Thinking tokens are billed as output, as OpenAI's reasoning tokens are; the prompt count
    /// already includes the cached part.
    pub(super) fn ir(self) -> Usage {
        Usage {
            input_tokens: self
                .prompt_token_count
                .saturating_add(self.tool_use_prompt_token_count),
            output_tokens: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            cached_input_tokens: self.cached_content_token_count,
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

#[derive(Deserialize, Default)]
pub(super) struct ApiError {
    #[serde(default)]
    pub(super) code: Option<i64>,
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) details: Vec<Value>,
}

impl ApiError {
    pub(super) fn info(&self, http_status: u16) -> ErrorInfo {
        // Inside a 200 stream the HTTP status says nothing; the error's own code does.
        let status = if (400..600).contains(&http_status) {
            http_status
        } else {
            self.code
                .and_then(|c| u16::try_from(c).ok())
                .map_or(502, crate::wire::upstream_status)
        };
        let message = if self.message.is_empty() {
            format!("the provider answered HTTP {status}")
        } else {
            self.message.clone()
        };
        let kind = if self.credential_refused() {
            ErrorKind::Authentication
        } else {
            ErrorInfo::kind_for_status(status)
        };
        ErrorInfo::new(status, kind, message).with_retry_after(self.retry_after())
    }

    /// Google says a key is bad with a `google.rpc.ErrorInfo` reason, under whatever status
    /// (`API_KEY_INVALID` comes with a 400 INVALID_ARGUMENT): keys that are invalid, expired,
    /// restricted to other callers or APIs, or whose project is suspended or lacks the API.
    fn credential_refused(&self) -> bool {
        self.details.iter().any(|d| {
            d.get("reason").and_then(Value::as_str).is_some_and(|r| {
                r.starts_with("API_KEY_")
                    || r.starts_with("ACCESS_TOKEN_")
                    || matches!(
                        r,
                        "CONSUMER_SUSPENDED" | "SERVICE_DISABLED" | "CREDENTIALS_MISSING"
                    )
            })
        })
    }

    /// `google.rpc.RetryInfo.retryDelay`, a duration such as `"37s"` or `"0.5s"`, rounded up.
    pub(super) fn retry_after(&self) -> Option<u32> {
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

pub(super) fn error_info(status: u16, body: &[u8]) -> ErrorInfo {
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

pub(super) const FILTERED: [&str; 9] = [
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

pub(super) fn finish_reason(reason: Option<&str>, has_tool_calls: bool) -> FinishReason {
    match reason {
        Some("MAX_TOKENS") => FinishReason::Length,
        Some(r) if FILTERED.contains(&r) => FinishReason::ContentFilter,
        // STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL and newer reasons.
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// The id of the answer: Gemini's `responseId`, else one derived from the clock.
pub(super) fn response_id(resp: &GenerateContentResponse, created: u64) -> String {
    match resp.response_id.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => format!("gemini-{created}"),
    }
}

/// Gemini's function calls usually carry no id. Invented ids embed the answer's id so they
/// stay unique across a conversation (Anthropic and Bedrock reject repeated tool-use ids),
/// restricted to the characters every provider's id pattern allows.
pub(super) fn tool_call_id(call: &FunctionCall, answer_id: &str, n: u32) -> String {
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

/// The reasoning a part carries: a thought summary's text, and a signature on any part.
pub(super) fn reasoning_part(part: &GeminiPart) -> Option<Part> {
    let text = match (&part.text, part.thought) {
        (Some(t), true) => t.clone(),
        _ => String::new(),
    };
    let signature = part.thought_signature.clone().filter(|s| !s.is_empty());
    if text.is_empty() && signature.is_none() {
        return None;
    }
    Some(Part::Reasoning {
        text,
        signature,
        redacted: None,
        id: None,
        origin: Some(Origin::Gemini),
    })
}

pub(super) fn arguments_text(call: &FunctionCall) -> String {
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
        Request::CountTokens(_) => Err(WireError::upstream("no token counting here")),
    }
}

pub(super) fn decode_embeddings(
    req: &EmbeddingsRequest,
    body: &[u8],
) -> Result<Response, WireError> {
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

pub(super) fn decode_chat(
    chat: &ChatRequest,
    body: &[u8],
    created: u64,
) -> Result<Response, WireError> {
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
            match (reasoning_part(part), content.last_mut()) {
                // A signature on the part after a thought summary signs that thought (as one
                // stream's reasoning block would end): one reasoning part, not two.
                (
                    Some(Part::Reasoning {
                        text,
                        signature: Some(sig),
                        ..
                    }),
                    Some(Part::Reasoning {
                        signature: open @ None,
                        ..
                    }),
                ) if text.is_empty() => *open = Some(sig),
                (Some(r), _) => content.push(r),
                (None, _) => {}
            }
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
        let answer_at = content
            .iter()
            .position(|p| !matches!(p, Part::Reasoning { .. }))
            .unwrap_or(content.len());
        if !text.is_empty() || (answer_at == content.len() && tool_calls.is_empty()) {
            content.insert(answer_at, Part::Text { text });
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
                refusal: None,
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
