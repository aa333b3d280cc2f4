//! Ollama's native API as a client protocol: `/api/chat`, `/api/generate` and `/api/embed`
//! bodies into IR, and IR answers and errors back into the shapes the `ollama` client parses.

use crate::ir::*;
use crate::time;
use crate::wire::json::{
    as_obj, as_str, must_be, not_supported, parse_object, required, strings, Json, JsonWriter, Obj,
};
use crate::wire::{args, media, WireError};
use serde_json::{json, Value};

/// Sampling options with no IR field; they reach Ollama providers verbatim via `extra`
/// (`options.<name>`), and count as tuning elsewhere (`wire::drop`).
pub(crate) const SAMPLING_OPTIONS: &[&str] = &[
    "min_p",
    "typical_p",
    "tfs_z",
    "repeat_penalty",
    "repeat_last_n",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "penalize_newline",
];

/// Server tuning (context size, GPU layers, threads): it reaches Ollama providers verbatim via
/// `extra` (`options.<name>`), and is a label elsewhere (see the module doc).
pub(crate) const RUNTIME_HINTS: &[&str] = &[
    "numa",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mmap",
    "use_mlock",
    "embedding_only",
    "num_thread",
    "num_keep",
];

/// Fields `/api/chat` and `/api/generate` share.
const COMMON_FIELDS: &[&str] = &[
    "model",
    "format",
    "options",
    "stream",
    "keep_alive",
    "think",
    "logprobs",
    "top_logprobs",
];

pub fn decode_chat_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let map = parse_object(body, "the request body")?;
    let root = Obj::root(&map);
    let allowed: Vec<&str> = [COMMON_FIELDS, &["messages", "tools"]].concat();
    root.reject_unknown(&allowed)?;
    let mut req = decode_common(&root)?;
    let mut calls = CallIds::default();
    if let Some(messages) = root.arr("messages")? {
        let path = root.path("messages");
        for (i, m) in messages.iter().enumerate() {
            let msg = decode_message(&as_obj(m, path.index(i))?, &mut calls)?;
            req.messages.push(msg);
        }
    }
    if let Some(tools) = root.arr("tools")? {
        let path = root.path("tools");
        for (i, t) in tools.iter().enumerate() {
            req.tools.push(decode_tool(&as_obj(t, path.index(i))?)?);
        }
    }
    Ok(req)
}

pub fn decode_generate_request(body: &[u8]) -> Result<ChatRequest, WireError> {
    let map = parse_object(body, "the request body")?;
    let root = Obj::root(&map);
    let allowed: Vec<&str> = [
        COMMON_FIELDS,
        &[
            "prompt", "suffix", "system", "template", "context", "raw", "images",
        ],
    ]
    .concat();
    root.reject_unknown(&allowed)?;
    let mut req = decode_common(&root)?;
    // These steer Ollama's own prompt handling (fill-in-the-middle, templates, raw prompts,
    // the previous answer's context), which only an Ollama server has: they reach Ollama
    // providers verbatim, and are refused elsewhere.
    for field in ["suffix", "template"] {
        if let Some(v) = root.str(field)?.filter(|s| !s.is_empty()) {
            req.extra.insert(field.to_string(), Value::from(v));
        }
    }
    if let Some(c) = root.arr("context")?.filter(|c| !c.is_empty()) {
        req.extra.insert(
            "context".to_string(),
            Value::Array(c.iter().map(Json::to_value).collect()),
        );
    }
    if root.bool("raw")? == Some(true) {
        req.extra.insert("raw".to_string(), Value::Bool(true));
    }
    if !req.extra.is_empty() {
        req.extra_family = Some(Family::Ollama);
    }
    if let Some(system) = root.str("system")?.filter(|s| !s.is_empty()) {
        req.messages.push(Message::text(Role::System, system));
    }
    let mut user = Message::text(Role::User, root.str("prompt")?.unwrap_or(""));
    user.content.extend(decode_images(&root)?);
    // An empty prompt is Ollama's way to load a model; it stays an empty conversation.
    if user.content.iter().any(|p| {
        p != &Part::Text {
            text: String::new(),
        }
    }) {
        req.messages.push(user);
    }
    Ok(req)
}

pub fn decode_embed_request(body: &[u8]) -> Result<EmbeddingsRequest, WireError> {
    let map = parse_object(body, "the request body")?;
    let root = Obj::root(&map);
    root.reject_unknown(&[
        "model",
        "input",
        "prompt",
        "truncate",
        "options",
        "keep_alive",
        "dimensions",
    ])?;
    let input = match (root.get("input"), root.get("prompt")) {
        (Some(Json::Str(s)), _) => vec![s.to_string()],
        (Some(v @ Json::Array(_)), _) => strings(v, root.path("input"))?,
        (Some(_), _) => return Err(must_be("input", "a string or an array of strings")),
        // The older `/api/embeddings` takes one `prompt`.
        (None, Some(p)) => vec![as_str(p, root.path("prompt"))?.to_string()],
        (None, None) => return Err(required("input")),
    };
    // Without truncation an over-long input must fail, which no other provider promises.
    if root.bool("truncate")? == Some(false) {
        return Err(not_supported("truncate"));
    }
    // `options` and `keep_alive` only tune the server for embeddings.
    root.obj("options")?;
    Ok(EmbeddingsRequest {
        model: root.req_str("model")?.to_string(),
        input,
        dimensions: root.whole_u32("dimensions")?,
        user: None,
    })
}

fn decode_common(root: &Obj<'_, '_>) -> Result<ChatRequest, WireError> {
    let mut req = ChatRequest {
        model: root.req_str("model")?.to_string(),
        stream: root.bool("stream")?.unwrap_or(true),
        keep_alive: root.get("keep_alive").map(Json::to_value),
        ..Default::default()
    };
    match root.get("format") {
        None => {}
        Some(Json::Str(s)) if s.is_empty() => {}
        Some(Json::Str(s)) if s == "json" => req.response_format = Some(ResponseFormat::JsonObject),
        Some(schema @ Json::Object(_)) => {
            req.response_format = Some(ResponseFormat::JsonSchema {
                name: "response".to_string(),
                schema: schema.to_value(),
                strict: None,
            })
        }
        Some(_) => return Err(must_be("format", "\"json\" or a JSON schema object")),
    }
    req.reasoning = match root.get("think") {
        None => None,
        Some(Json::Bool(on)) => Some(Reasoning {
            enabled: Some(*on),
            ..Default::default()
        }),
        Some(Json::Str(level)) => {
            let effort = match level.as_ref() {
                "low" => Effort::Low,
                "medium" => Effort::Medium,
                "high" => Effort::High,
                _ => return Err(must_be("think", "a boolean, `low`, `medium` or `high`")),
            };
            Some(Reasoning {
                enabled: Some(true),
                effort: Some(effort),
                ..Default::default()
            })
        }
        Some(_) => return Err(must_be("think", "a boolean, `low`, `medium` or `high`")),
    };
    if root.bool("logprobs")? == Some(true) {
        return Err(not_supported("logprobs"));
    }
    if root
        .get("top_logprobs")
        .is_some_and(|v| v.as_u64() != Some(0))
    {
        return Err(not_supported("top_logprobs"));
    }
    if let Some(options) = root.obj("options")? {
        decode_options(&options, &mut req)?;
    }
    Ok(req)
}

fn decode_options(options: &Obj<'_, '_>, req: &mut ChatRequest) -> Result<(), WireError> {
    req.temperature = options.f64("temperature")?;
    req.top_p = options.f64("top_p")?;
    req.top_k = options.whole_u32("top_k")?;
    req.seed = options.whole_i64("seed")?;
    req.presence_penalty = options.f64("presence_penalty")?;
    req.frequency_penalty = options.f64("frequency_penalty")?;
    // -1 (no limit) and -2 (fill the context) both mean "no max_tokens".
    if let Some(n) = options.whole_i64("num_predict")? {
        req.max_tokens = match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) if n < 0 => None,
            Err(_) => {
                return Err(WireError::invalid(
                    "options.num_predict",
                    "`options.num_predict` is too large",
                ))
            }
        };
    }
    if let Some(stop) = options.get("stop") {
        req.stop = strings(stop, options.path("stop"))?;
    }
    for (key, value) in options.map.iter() {
        let known = [
            "temperature",
            "top_p",
            "top_k",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "num_predict",
            "stop",
        ];
        if known.contains(&key) || value.is_null() {
            continue;
        }
        if !SAMPLING_OPTIONS.contains(&key) && !RUNTIME_HINTS.contains(&key) {
            let field = options.path(key).to_string();
            let message = format!("unknown option `{field}`");
            return Err(WireError::invalid(field, message));
        }
        req.extra.insert(format!("options.{key}"), value.to_value());
        req.extra_family = Some(Family::Ollama);
    }
    Ok(())
}

/// Assigns ids to Ollama's id-less tool calls and links tool turns to them (see the module doc).
#[derive(Default)]
struct CallIds {
    next: usize,
    /// Unanswered calls of the latest assistant turn: (id, name).
    pending: Vec<(String, String)>,
}

impl CallIds {
    fn call(&mut self, given: Option<&str>, name: &str) -> String {
        let id = match given {
            Some(id) => id.to_string(),
            None => format!("call_{}", self.next),
        };
        self.next += 1;
        self.pending.push((id.clone(), name.to_string()));
        id
    }

    fn answer(&mut self, given: Option<&str>, name: Option<&str>) -> Option<String> {
        let pos = match (given, name) {
            (Some(id), _) => self.pending.iter().position(|(p, _)| p == id),
            (None, Some(name)) => self.pending.iter().position(|(_, n)| n == name),
            (None, None) => (!self.pending.is_empty()).then_some(0),
        };
        let matched = pos.map(|i| self.pending.remove(i).0);
        given.map(str::to_string).or(matched)
    }
}

fn decode_message(obj: &Obj<'_, '_>, calls: &mut CallIds) -> Result<Message, WireError> {
    obj.reject_unknown(&[
        "role",
        "content",
        "images",
        "tool_calls",
        "tool_name",
        "tool_call_id",
        "thinking",
    ])?;
    let role = match obj.req_str("role")? {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => {
            return Err(must_be(
                obj.path("role"),
                "`system`, `user`, `assistant` or `tool`",
            ))
        }
    };
    let mut msg = Message {
        content: Vec::new(),
        ..Message::text(role, "")
    };
    // An earlier turn's reasoning (Ollama's own templates decide whether the model sees it).
    if let Some(thinking) = obj.str("thinking")?.filter(|t| !t.is_empty()) {
        msg.content.push(Part::Reasoning {
            text: thinking.to_string(),
            signature: None,
            redacted: None,
            id: None,
            origin: None,
        });
    }
    if let Some(text) = obj.str("content")?.filter(|t| !t.is_empty()) {
        msg.content.push(Part::Text {
            text: text.to_string(),
        });
    }
    msg.content.extend(decode_images(obj)?);
    if let Some(list) = obj.arr("tool_calls")? {
        let list_path = obj.path("tool_calls");
        if role != Role::Assistant && !list.is_empty() {
            let field = list_path.to_string();
            let message = format!("`{field}` is only allowed on assistant messages");
            return Err(WireError::invalid(field, message));
        }
        calls.pending.clear();
        for (j, c) in list.iter().enumerate() {
            let call = as_obj(c, list_path.index(j))?;
            msg.tool_calls.push(decode_tool_call(&call, calls)?);
        }
    }
    let tool_name = obj.str("tool_name")?;
    let tool_call_id = obj.str("tool_call_id")?;
    if role == Role::Tool {
        msg.name = tool_name.map(str::to_string);
        msg.tool_call_id = calls.answer(tool_call_id, tool_name);
    }
    Ok(msg)
}

fn decode_tool_call(obj: &Obj<'_, '_>, calls: &mut CallIds) -> Result<ToolCall, WireError> {
    obj.reject_unknown(&["id", "type", "function"])?;
    let function = obj.req_obj("function")?;
    function.reject_unknown(&["name", "arguments", "index"])?;
    let name = function.req_str("name")?;
    let arguments = match function.get("arguments") {
        None => "{}".to_string(),
        Some(v @ Json::Object(_)) => v.to_text(),
        // Some clients send OpenAI-style JSON text; it must still be an object.
        Some(Json::Str(s)) if args::object(s).is_some() => s.to_string(),
        Some(_) => return Err(must_be(function.path("arguments"), "an object")),
    };
    let id = calls.call(obj.str("id")?, name);
    Ok(ToolCall {
        id,
        name: name.to_string(),
        arguments,
    })
}

fn decode_images(obj: &Obj<'_, '_>) -> Result<Vec<Part>, WireError> {
    let Some(images) = obj.arr("images")? else {
        return Ok(Vec::new());
    };
    let list_path = obj.path("images");
    let mut parts = Vec::new();
    for (k, img) in images.iter().enumerate() {
        let ip = list_path.index(k);
        let data = as_str(img, ip)?;
        let source = if data.starts_with("data:") {
            Media::from_url(data)
        } else {
            let media_type = media::sniff_image(data).ok_or_else(|| {
                let field = ip.to_string();
                let message = format!("`{field}` is not a base64 PNG, JPEG, GIF or WebP image");
                WireError::invalid(field, message)
            })?;
            Media::Base64 {
                media_type: media_type.to_string(),
                data: data.to_string(),
            }
        };
        parts.push(Part::Image { source });
    }
    Ok(parts)
}

fn decode_tool(tool: &Obj<'_, '_>) -> Result<Tool, WireError> {
    tool.reject_unknown(&["type", "function"])?;
    if let Some(kind) = tool.str("type")? {
        if kind != "function" {
            return Err(not_supported(tool.path("type")));
        }
    }
    let function = tool.req_obj("function")?;
    function.reject_unknown(&["name", "description", "parameters"])?;
    let parameters = match function.get("parameters") {
        Some(p) => {
            as_obj(p, function.path("parameters"))?;
            p.to_value()
        }
        None => json!({"type": "object", "properties": {}}),
    };
    Ok(Tool {
        name: function.req_str("name")?.to_string(),
        description: function.string("description")?,
        parameters,
        strict: None,
    })
}

pub(super) fn done_reason(reason: FinishReason) -> &'static str {
    match reason {
        // Ollama itself reports "stop" when the model called tools.
        FinishReason::Stop | FinishReason::ToolCalls => "stop",
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Tool calls in Ollama's shape: arguments as objects.
pub(super) fn write_tool_calls(w: &mut JsonWriter, calls: &[ToolCall]) {
    w.begin_array();
    for (i, c) in calls.iter().enumerate() {
        w.begin_object();
        w.key("id").str(&c.id);
        w.key("function").begin_object();
        w.key("index").u64(i as u64);
        w.key("name").str(&c.name);
        w.key("arguments");
        args::write(w, &c.arguments);
        w.end_object().end_object();
    }
    w.end_array();
}

/// The final line / complete answer fields. Ollama's timings are unknown here and reported as 0.
pub(super) fn write_done(w: &mut JsonWriter, reason: &str, usage: Option<&Usage>) {
    let u = usage.copied().unwrap_or_default();
    w.key("done").bool(true);
    w.key("done_reason").str(reason);
    for key in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        w.key(key).u64(0);
    }
    w.key("prompt_eval_count").u64(u.input_tokens);
    w.key("eval_count").u64(u.output_tokens);
}

/// Opens a response object and writes its head: model, created_at, and the text as `message`
/// (with its `thinking` and `calls`, if any) or `response` (and `thinking`). The caller adds
/// `done` and closes the object.
pub(super) fn write_head(
    w: &mut JsonWriter,
    model: &str,
    created: u64,
    text: &str,
    thinking: &str,
    generate: bool,
    calls: &[ToolCall],
) {
    w.begin_object();
    w.key("model").str(model);
    w.key("created_at").str(&time::rfc3339(created));
    if generate {
        w.key("response").str(text);
        if !thinking.is_empty() {
            w.key("thinking").str(thinking);
        }
    } else {
        w.key("message").begin_object();
        w.key("role").str("assistant");
        w.key("content").str(text);
        if !thinking.is_empty() {
            w.key("thinking").str(thinking);
        }
        if !calls.is_empty() {
            w.key("tool_calls");
            write_tool_calls(w, calls);
        }
        w.end_object();
    }
}

fn encode_complete(r: &ChatResponse, generate: bool) -> Vec<u8> {
    let choice = r.choices.first();
    // Ollama has no refusal field: a refusal is the answer's text.
    let mut text = choice.map(|c| c.message.joined_text()).unwrap_or_default();
    if let Some(refusal) = choice.and_then(|c| c.message.refusal.as_deref()) {
        text.push_str(refusal);
    }
    let thinking: String = choice
        .into_iter()
        .flat_map(|c| &c.message.content)
        .filter_map(|p| match p {
            Part::Reasoning { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    // `/api/generate` has no tool calls to report.
    let calls = match choice {
        Some(c) if !generate => c.message.tool_calls.as_slice(),
        _ => &[],
    };
    let mut w = JsonWriter::with_capacity(text.len() + thinking.len() + 512);
    write_head(
        &mut w, &r.model, r.created, &text, &thinking, generate, calls,
    );
    let reason = choice.map_or(FinishReason::Stop, |c| c.finish_reason);
    write_done(&mut w, done_reason(reason), r.usage.as_ref());
    w.end_object();
    w.into_bytes()
}

pub fn encode_chat_response(r: &ChatResponse) -> Vec<u8> {
    encode_complete(r, false)
}

pub fn encode_generate_response(r: &ChatResponse) -> Vec<u8> {
    encode_complete(r, true)
}

/// Serves both `/api/embed` (`embeddings`) and the older `/api/embeddings` (`embedding`, one
/// vector), which share an operation: the codec cannot tell them apart, and each client ignores
/// the other's field.
pub fn encode_embed_response(r: &EmbeddingsResponse) -> Vec<u8> {
    let vector = |w: &mut JsonWriter, v: &[f32]| {
        w.begin_array();
        for x in v {
            w.f64(f64::from(*x));
        }
        w.end_array();
    };
    let floats: usize = r.data.iter().map(Vec::len).sum();
    let mut w = JsonWriter::with_capacity(floats * 40 + 256);
    w.begin_object();
    w.key("model").str(&r.model);
    w.key("embeddings").begin_array();
    for v in &r.data {
        vector(&mut w, v);
    }
    w.end_array();
    w.key("total_duration").u64(0);
    w.key("load_duration").u64(0);
    w.key("prompt_eval_count")
        .u64(r.usage.map_or(0, |u| u.input_tokens));
    if let [only] = r.data.as_slice() {
        w.key("embedding");
        vector(&mut w, only);
    }
    w.end_object();
    w.into_bytes()
}

/// `{"error": message}`, the shape every Ollama error body and stream error line has.
pub(super) fn write_error(w: &mut JsonWriter, message: &str) {
    w.begin_object().key("error").str(message).end_object();
}

pub fn encode_error(e: &ErrorInfo) -> Vec<u8> {
    let mut w = JsonWriter::with_capacity(e.message.len() + 16);
    write_error(&mut w, &e.message);
    w.into_bytes()
}
