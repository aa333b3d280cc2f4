//! The canonical request, response and stream-event types every wire format translates to and from.
//! It is also the internal wire between weir's two filter roles, so it must stay lossless.
//!
//! Invariants:
//! - Every client protocol decodes *into* these types and every provider format encodes *from* them
//!   (and the reverse for responses). No codec talks to another codec directly: 3 client protocols
//!   and 8 provider formats need 11 codecs, not 24 translators.
//! - The gateway role serialises [`Request`] as JSON into the request body it hands to Envoy's
//!   router; the provider role (an upstream filter, once per attempt) parses it back. Responses flow
//!   the other way as [`Response`] JSON, or as NDJSON lines of [`StreamEvent`] for streams. When
//!   both roles share a VM, all of it is handed over by reference instead (`handoff`).
//! - A field a target cannot express is never dropped by an encoder: encoders return
//!   `wire::WireError::Unsupported` naming it. The provider role then refuses the request (a 400
//!   naming the field), or, when the route's `unsupported` policy allows it and the field only
//!   tunes the answer (`wire::drop`), removes it and encodes again, reporting what it removed.
//! - Tool-call arguments are kept as JSON *text*, because OpenAI-style clients send and expect
//!   text and may stream it in fragments; object-shaped formats parse it at encode time.
//! - Enums use serde's default, externally tagged form (`{"text_delta": {...}}`), not an inner
//!   `type` field: both ends are this crate, and an internally tagged enum's deserializer buffers
//!   every field through a generic tree, which cost ~67 KB of the wasm module.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A request, of either kind weir serves. One lives per request, so the size gap between the
/// variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Chat(ChatRequest),
    Embeddings(EmbeddingsRequest),
    /// How many input tokens a chat request would take (Anthropic `count_tokens`): the request
    /// is the conversation to count; nothing is generated.
    CountTokens(ChatRequest),
}

impl Request {
    pub fn model(&self) -> &str {
        match self {
            Request::Chat(c) | Request::CountTokens(c) => &c.model,
            Request::Embeddings(e) => &e.model,
        }
    }
    pub fn set_model(&mut self, model: &str) {
        match self {
            Request::Chat(c) | Request::CountTokens(c) => model.clone_into(&mut c.model),
            Request::Embeddings(e) => model.clone_into(&mut e.model),
        }
    }
    pub fn is_stream(&self) -> bool {
        matches!(self, Request::Chat(c) if c.stream)
    }
}

/// What the gateway role hands the provider role: the request and the model route it matched.
/// It travels in the body because Envoy replays the body untouched on each retry, whereas the
/// header map is shared by attempts and already rewritten by the first one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub route: String,
    /// The cluster the gateway sent the request to (`x-weir-cluster`): Envoy's retries stay in
    /// it, so it narrows which of the route's targets an attempt can be.
    pub cluster: String,
    pub request: Request,
    /// The client's values of the request headers some provider's allowlist passes
    /// (`Providers::client_headers`): kept here because the first attempt removes them from the
    /// header map every later attempt shares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

/// A chat completion request, in the union of what the supported client protocols can say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The client-facing model name until routing; the provider's model id once the provider
    /// role has resolved the target.
    pub model: String,
    /// The conversation in order. System and developer turns stay in place; formats with a
    /// separate system field hoist them (see `wire::system_text`).
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Number of choices; `None` means one. Only OpenAI-type providers accept more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// End-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// How much the model should reason before answering; `None` leaves it to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    #[serde(default)]
    pub stream: bool,
    /// The client asked for usage on its stream (OpenAI `stream_options.include_usage`). Provider
    /// encoders ask for usage regardless, because limits and metrics need it; the client encoder
    /// hides it when this is false.
    #[serde(default)]
    pub stream_include_usage: bool,
    /// Ollama's `keep_alive`, passed to Ollama providers only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    /// Fields of the client's protocol that have no IR equivalent but that a provider of the
    /// *same family* accepts verbatim (e.g. OpenAI `logit_bias`, `logprobs`, `service_tier`).
    /// Key: the field's path in the client's spelling (`logit_bias`, and for fields below the
    /// top level `tools[1].input_examples` or `options.num_ctx`, which the same-family encoder
    /// puts back in place); the family is named by `extra_family`. An encoder of another
    /// family must refuse the request naming the first such field (`wire::drop` decides).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_family: Option<Family>,
}

/// How much the model should reason before it answers: the union of Anthropic `thinking` and
/// `output_config.effort`, OpenAI `reasoning_effort` and Responses `reasoning`, OpenRouter-style
/// `reasoning`, Gemini `thinkingConfig` and Ollama `think`. Each encoder maps it to its target's
/// nearest control (the table is in docs/translation.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    /// `Some(false)`: no reasoning (Anthropic `disabled`, OpenAI effort `none`, Gemini budget 0,
    /// Ollama `think: false`). `Some(true)`: reasoning on, at the provider's default depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<Effort>,
    /// A token budget for reasoning (Anthropic `budget_tokens`, Gemini `thinkingBudget`,
    /// OpenRouter `reasoning.max_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// The model decides whether and how much to reason (Anthropic `adaptive`, Gemini budget -1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adaptive: bool,
    /// Whether the answer should carry the reasoning text (Gemini `includeThoughts`, Anthropic
    /// `display`, OpenRouter `exclude`); `None` is the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    /// The Responses API's `reasoning.summary` (`auto`, `concise`, `detailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Reasoning only between tool calls (Anthropic `between_tools`); targets without that
    /// control reason as with `enabled`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub between_tools: bool,
}

/// Reasoning effort levels, lowest first (OpenAI's names; Anthropic's `max` is the top).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
    Max,
}

/// Which provider family made a reasoning signature or encrypted reasoning: only a provider of
/// the same family can verify it, so it goes back only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Claude, through Anthropic's API or Bedrock.
    Anthropic,
    Gemini,
    /// OpenAI's Responses API (reasoning items with `encrypted_content`).
    OpenAiResponses,
}

/// Wire-format families, for deciding whether `extra` fields may pass through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    OpenAi,
    Anthropic,
    Ollama,
    /// OpenAI's Responses API (`/v1/responses`): its extras reach `openai-responses` providers
    /// verbatim, and other targets as `wire::responses::portable` says.
    OpenAiResponses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    /// OpenAI's `developer` role; formats without it treat it as system.
    Developer,
    User,
    Assistant,
    /// A tool result; `tool_call_id` names the call it answers.
    Tool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Part>,
    /// Assistant turns only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Tool turns only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Tool turns: the function's name when the client gave it (Ollama `tool_name`); Gemini
    /// needs it, and encoders otherwise recover it from the matching assistant tool call.
    /// Other roles: OpenAI's participant `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool turns: the result reported an error (Anthropic `is_error`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// Assistant turns: the model declined to answer (OpenAI `refusal`), instead of content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl Message {
    /// A turn with nothing in it yet.
    pub fn new(role: Role) -> Self {
        Message {
            role,
            content: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
            is_error: false,
            refusal: None,
        }
    }

    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message {
            content: vec![Part::Text { text: text.into() }],
            ..Message::new(role)
        }
    }

    /// All text parts joined, the way single-string formats (Ollama, OpenAI system turns) carry it.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let Part::Text { text } = part {
                out.push_str(text);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    Image {
        source: Media,
    },
    /// A document such as a PDF (Anthropic `document`, OpenAI `file`, Gemini inline data).
    Document {
        source: Media,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// The model's reasoning, in an answer or in an assistant turn of the history. A
    /// `signature` or `redacted` payload lets the provider that made it verify it when the
    /// history comes back, so it is sent back only to a provider of the same `origin` and
    /// dropped (never forged) anywhere else.
    Reasoning {
        #[serde(default)]
        text: String,
        /// Anthropic `signature`, Gemini `thoughtSignature`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        /// Opaque encrypted reasoning (Anthropic `redacted_thinking.data`, Responses
        /// `encrypted_content`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redacted: Option<String>,
        /// The provider's id for it (Responses reasoning items).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// Something of the `origin` family's own that the IR has no form for, kept verbatim and in
    /// place: an item of a provider-run tool (Responses `web_search_call`, `item_reference`, ...)
    /// or a message's own id and text annotations (`{"type": "message", "id", "annotations"}`,
    /// before the text it belongs to). Like reasoning payloads, it goes back only to that
    /// family's client protocol and provider format; every other codec drops it, and requests
    /// that hold one are refused for other targets before any encoder sees them.
    Native {
        origin: Origin,
        item: Value,
    },
}

/// Where binary content lives: inline base64, or a URL the provider fetches itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

impl Media {
    /// Parses a `data:<media type>;base64,<data>` URL into inline data; other URLs stay URLs.
    pub fn from_url(url: &str) -> Media {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((meta, data)) = rest.split_once(',') {
                if let Some(media_type) = meta.strip_suffix(";base64") {
                    return Media::Base64 {
                        media_type: media_type.to_string(),
                        data: data.to_string(),
                    };
                }
            }
        }
        Media::Url {
            url: url.to_string(),
        }
    }

    /// The inverse of [`Media::from_url`]: a URL for formats that only take URLs.
    pub fn to_url(&self) -> String {
        match self {
            Media::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            Media::Url { url } => url.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of the arguments object.
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
    /// The arguments must match `parameters` exactly (OpenAI and Anthropic `strict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    /// The model must call some tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// The model must call this tool.
    Tool(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A complete (non-streamed) answer, or an error, from the provider role to the gateway role.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Chat(ChatResponse),
    Embeddings(EmbeddingsResponse),
    /// The answer to [`Request::CountTokens`].
    TokenCount(TokenCount),
    Error(ErrorInfo),
}

/// How many input tokens a request takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    pub input_tokens: u64,
    /// Counted by weir's own estimate (the provider has no counting operation), not the
    /// provider's tokenizer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Unix seconds, as the provider reported or the host clock said.
    #[serde(default)]
    pub created: u64,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: u32,
    /// Always an assistant message.
    pub message: Message,
    pub finish_reason: FinishReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end, or a stop sequence was hit.
    Stop,
    /// `max_tokens` reached.
    Length,
    ToolCalls,
    ContentFilter,
}

/// Token counts, in OpenAI's convention whatever the provider: `input_tokens` is the whole
/// prompt, and `cached_input_tokens` is the part of it served from the provider's prompt cache
/// (a subset, priced differently). Decoders of formats that report cache reads separately
/// (Anthropic, Bedrock) add them in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Part of `input_tokens` served from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_input_tokens: u64,
    /// Part of `output_tokens` the model spent reasoning.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reasoning_tokens: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    pub model: String,
    pub data: Vec<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One step of a streamed chat answer, in the order a client must see them.
///
/// A well-formed stream is: `Start`, then any mix of deltas (reasoning, each reasoning block
/// closed by `ReasoningEnd`, text, refusal, tool calls) for choice 0 (and more choices only
/// for OpenAI-type providers with `n > 1`), then `Finish` per choice, then at most one `Usage`,
/// then the end of the stream. `Error` may come at any point and ends the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEvent {
    Start {
        id: String,
        model: String,
        #[serde(default)]
        created: u64,
    },
    TextDelta {
        #[serde(default)]
        choice: u32,
        text: String,
    },
    /// A tool call begins; `index` counts tool calls within the choice from 0.
    ToolCallStart {
        #[serde(default)]
        choice: u32,
        index: u32,
        id: String,
        name: String,
    },
    /// A fragment of the model's reasoning text.
    ReasoningDelta {
        #[serde(default)]
        choice: u32,
        text: String,
    },
    /// The current reasoning block is complete: its signature or encrypted payload, if any,
    /// as for [`Part::Reasoning`].
    ReasoningEnd {
        #[serde(default)]
        choice: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redacted: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    /// A fragment of a refusal (OpenAI `delta.refusal`).
    RefusalDelta {
        #[serde(default)]
        choice: u32,
        text: String,
    },
    /// A fragment of the JSON arguments text of tool call `index`.
    ToolCallDelta {
        #[serde(default)]
        choice: u32,
        index: u32,
        arguments: String,
    },
    Finish {
        #[serde(default)]
        choice: u32,
        reason: FinishReason,
    },
    /// A provider event of the `origin` family's own that the IR has no form for (a
    /// provider-run tool's progress, a text annotation), verbatim with the provider's numbering;
    /// the same family's client encoder renumbers it into its stream, every other encoder
    /// drops it (see [`Part::Native`]).
    Native {
        #[serde(default)]
        choice: u32,
        origin: Origin,
        event: Value,
    },
    Usage(Usage),
    Error(ErrorInfo),
}

/// What went wrong, independent of any protocol's error shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The HTTP status the client should see.
    pub status: u16,
    pub kind: ErrorKind,
    /// Safe to show the client: never contains a credential or a scrubbed value.
    pub message: String,
    /// The request field at fault, in the client's own naming (e.g. `messages[2].content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds, for 429 and 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// A machine-readable reason a client SDK acts on (Anthropic's `error.details.error_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    /// The provider failed or could not be reached (5xx).
    Upstream,
    /// The provider is overloaded or every target is down (503/529).
    Unavailable,
    Timeout,
    Internal,
}

impl ErrorInfo {
    pub fn new(status: u16, kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorInfo {
            status,
            kind,
            message: message.into(),
            field: None,
            retry_after: None,
            code: None,
        }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ErrorInfo {
            status: 400,
            kind: ErrorKind::InvalidRequest,
            message: message.into(),
            field: if field.is_empty() { None } else { Some(field) },
            retry_after: None,
            code: None,
        }
    }
    pub fn with_retry_after(mut self, seconds: Option<u32>) -> Self {
        self.retry_after = seconds;
        self
    }
    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// The kind an HTTP status stands for, for provider errors and Envoy's own local replies.
    pub fn kind_for_status(status: u16) -> ErrorKind {
        match status {
            400 | 405 | 409 | 415 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited,
            408 | 504 => ErrorKind::Timeout,
            503 | 529 => ErrorKind::Unavailable,
            s if s >= 500 => ErrorKind::Upstream,
            _ => ErrorKind::InvalidRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_round_trip_and_plain_urls_stay_urls() {
        let m = Media::from_url("data:image/png;base64,AAAA");
        assert_eq!(
            m,
            Media::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            }
        );
        assert_eq!(m.to_url(), "data:image/png;base64,AAAA");
        assert_eq!(
            Media::from_url("https://x/y.png"),
            Media::Url {
                url: "https://x/y.png".into()
            }
        );
    }

    #[test]
    fn the_internal_wire_round_trips() {
        let req = Request::Chat(ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, "hi")],
            tool_choice: Some(ToolChoice::Tool("f".into())),
            stream: true,
            ..Default::default()
        });
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
        let ev = StreamEvent::Error(ErrorInfo::invalid("x", "bad"));
        let text = serde_json::to_string(&ev).unwrap();
        assert_eq!(serde_json::from_str::<StreamEvent>(&text).unwrap(), ev);
    }
}
