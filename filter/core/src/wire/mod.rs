//! Wire formats: one folder per vendor, each owning that vendor's JSON (and stream) shapes in both
//! directions, as a client protocol, as a provider format, or both. Everything translates
//! through [`crate::ir`], so N client protocols and M provider formats need N + M codecs, not
//! N × M translators.
//!
//! Client side (the gateway role): [`ClientApi::classify`] names the operation from method and
//! path; `decode_request` turns the client's body into IR; `encode_response`, `encode_error` and a
//! [`StreamEncoder`] turn IR back into the client's shapes.
//!
//! Provider side (the provider role, once per upstream attempt): `encode_request` builds the
//! provider's path, headers and body from IR for a [`ProviderSpec`]; `decode_response` and a
//! [`StreamDecoder`] turn the provider's answer back into IR. Credentials are not applied here
//! (see `crate::providers`), so codecs never see a secret.
//!
//! Codecs are pure and deterministic: ids and timestamps they must invent come in through the
//! arguments, never from a clock or a random source.
//!
//! Every vendor has the same layout, `<vendor>/{mod, client, provider, stream, tests}.rs`, with
//! only the parts it has: `mod.rs` (the mapping choices, and what the folder exports), `client.rs`
//! (a client protocol: request decoding, answer and error encoding), `provider.rs` (a provider
//! format: request encoding, answer and error decoding), `stream.rs` (its stream encoder and/or
//! decoder), `tests.rs`. Shared pieces: [`json`] (reading with field paths, writing without a
//! tree), [`media`] (base64, data URLs, image sniffing), [`args`] (tool-call arguments),
//! [`reasoning`] (effort ↔ budget, signature origins), [`drop`] (the `unsupported` policy).
//!
//! Adding a provider format:
//! 1. `wire/<vendor>/`: `provider.rs` (`encode_request`, `decode_response`) and `stream.rs` (a
//!    [`StreamDecoder`]), refusing by name every IR field the vendor cannot express
//!    ([`WireError::Unsupported`]; [`drop`] decides what becomes of it), mapping reasoning
//!    ([`reasoning`]: controls, reasoning parts with their signatures' origin, stream events),
//!    refusals and structured output; `tests.rs` with the vendor's documented examples and a
//!    recorded stream decoded in every split (`stream::testutil::splits`).
//! 2. Here: a [`ProviderKind`] variant (its config name, default host) and its arms in
//!    [`ProviderSpec`]'s `encode_request`, `decode_response` and `stream_decoder`.
//! 3. `providers/config.rs`: the default base path and credential header for the kind, and any
//!    required field; `filter/schema/weir-config.schema.json`: the new `type` value.
//! 4. `filter/fuzz/src/lib.rs`: the kind in the provider decoder and stream targets' lists.
//! 5. `tests/mockllm/<vendor>.py`: a mock that validates every request against the vendor's
//!    official types and answers in its format, plain and streaming; route it in
//!    `tests/mockllm/server.py`; a `mock-<vendor>` model in `envoy/demo.yaml` (then
//!    `scripts/compose-config`) and `tests/weir_clients.py`, which puts it in the live matrix.
//! 6. `docs/translation.md`: the provider table and what the vendor cannot express.

pub mod anthropic;
pub mod args;
pub mod bedrock;
pub mod drop;
pub mod gemini;
pub mod json;
pub mod media;
pub mod ollama;
pub mod openai;
pub mod reasoning;
pub mod responses;

use crate::ir::{ChatRequest, ErrorInfo, ErrorKind, Family, Request, Response, StreamEvent};

/// Why a translation failed. Converted to a client-visible [`ErrorInfo`] by [`WireError::info`].
#[derive(Debug, Clone, PartialEq)]
pub enum WireError {
    /// The client's request is malformed: bad JSON, a wrong type, a missing field.
    /// `field` uses the client's naming (`messages[1].content`), empty when the whole body is bad.
    Invalid { field: String, message: String },
    /// The request is valid but the target cannot express `field`.
    Unsupported { field: String, target: &'static str },
    /// The request is valid but asks for something weir itself does not offer; `code` tells
    /// the client's SDK what to do instead.
    Declined {
        field: String,
        message: String,
        code: &'static str,
    },
    /// The provider sent something that is not its documented format.
    Upstream { message: String },
}

impl WireError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        WireError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn unsupported(field: impl Into<String>, target: &'static str) -> Self {
        WireError::Unsupported {
            field: field.into(),
            target,
        }
    }
    /// The target needs a file's bytes and the client sent a URL to it: a 400 that says so
    /// (weir does not fetch URLs for providers that cannot).
    pub fn needs_bytes(field: impl Into<String>, target: &'static str) -> Self {
        let field = field.into();
        let message = format!(
            "`{field}` is a URL, but the {target} provider serving this model needs the file's bytes: send it inline (a data URL or base64)"
        );
        WireError::Invalid { field, message }
    }
    pub fn upstream(message: impl Into<String>) -> Self {
        WireError::Upstream {
            message: message.into(),
        }
    }

    pub fn info(&self) -> ErrorInfo {
        match self {
            WireError::Invalid { field, message } => ErrorInfo::invalid(field.clone(), message),
            WireError::Unsupported { field, target } => {
                // The IR's name for reasoning controls is none of the clients' own.
                let what = if field == "reasoning" {
                    "reasoning control (`thinking`, `reasoning_effort`, `reasoning`, `think`)"
                        .to_string()
                } else {
                    format!("`{field}`")
                };
                ErrorInfo::invalid(
                    field.clone(),
                    format!("{what} is not supported by the {target} provider serving this model"),
                )
            }
            WireError::Declined {
                field,
                message,
                code,
            } => ErrorInfo::invalid(field.clone(), message).with_code(code),
            WireError::Upstream { message } => ErrorInfo::new(
                502,
                ErrorKind::Upstream,
                format!("the provider sent an invalid response: {message}"),
            ),
        }
    }
}

/// Framers only ever read a provider's stream, so a framing failure is the provider's fault.
impl From<crate::stream::FrameError> for WireError {
    fn from(e: crate::stream::FrameError) -> Self {
        WireError::upstream(e.to_string())
    }
}

/// A complete answer made by weir itself rather than relayed: an error or a cache hit in the
/// client's protocol, a model list, or the provider role's own IR error.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The client protocols weir accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProtocol {
    OpenAi,
    Anthropic,
    Ollama,
}

/// What a client asked for: the protocol and the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientApi {
    /// `POST /v1/chat/completions`
    OpenAiChat,
    /// `POST /v1/embeddings`
    OpenAiEmbeddings,
    /// `GET /v1/models`
    OpenAiModels,
    /// `POST /v1/responses`
    ResponsesCreate,
    /// `GET` or `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`: a response
    /// the provider stored, passed through to an `openai-responses` provider unchanged.
    ResponsesStored(responses::StoredOp),
    /// `POST /v1/messages`
    AnthropicMessages,
    /// `POST /v1/messages/count_tokens`
    AnthropicCountTokens,
    /// `POST /api/chat`
    OllamaChat,
    /// `POST /api/generate`
    OllamaGenerate,
    /// `POST /api/embed` (and the older `/api/embeddings`)
    OllamaEmbed,
    /// `GET /api/tags`
    OllamaTags,
    /// `POST /api/show`
    OllamaShow,
    /// `GET /api/version`
    OllamaVersion,
}

impl ClientApi {
    /// The operation for a method and path (query string ignored); `None` if weir does not serve it.
    pub fn classify(method: &str, path: &str) -> Option<ClientApi> {
        if let Some(call) = responses::StoredCall::parse(method, path) {
            return Some(ClientApi::ResponsesStored(call.op));
        }
        let path = path.split('?').next().unwrap_or(path);
        let path = path.strip_suffix('/').unwrap_or(path);
        let api = match path {
            "/v1/chat/completions" | "/chat/completions" => ClientApi::OpenAiChat,
            "/v1/embeddings" | "/embeddings" => ClientApi::OpenAiEmbeddings,
            "/v1/models" | "/models" => ClientApi::OpenAiModels,
            "/v1/responses" | "/responses" => ClientApi::ResponsesCreate,
            "/v1/messages" => ClientApi::AnthropicMessages,
            "/v1/messages/count_tokens" => ClientApi::AnthropicCountTokens,
            "/api/chat" => ClientApi::OllamaChat,
            "/api/generate" => ClientApi::OllamaGenerate,
            "/api/embed" | "/api/embeddings" => ClientApi::OllamaEmbed,
            "/api/tags" => ClientApi::OllamaTags,
            "/api/show" => ClientApi::OllamaShow,
            "/api/version" => ClientApi::OllamaVersion,
            _ => return None,
        };
        let _ = method;
        Some(api)
    }

    pub fn protocol(self) -> ClientProtocol {
        match self {
            // The Responses API's errors are OpenAI's.
            ClientApi::OpenAiChat
            | ClientApi::OpenAiEmbeddings
            | ClientApi::OpenAiModels
            | ClientApi::ResponsesCreate
            | ClientApi::ResponsesStored(_) => ClientProtocol::OpenAi,
            ClientApi::AnthropicMessages | ClientApi::AnthropicCountTokens => {
                ClientProtocol::Anthropic
            }
            _ => ClientProtocol::Ollama,
        }
    }

    /// The method the operation takes; another method gets a 405 in the client's shape.
    pub fn method(self) -> &'static str {
        match self {
            ClientApi::OpenAiModels | ClientApi::OllamaTags | ClientApi::OllamaVersion => "GET",
            ClientApi::ResponsesStored(responses::StoredOp::Delete) => "DELETE",
            ClientApi::ResponsesStored(_) => "GET",
            _ => "POST",
        }
    }

    /// Operations on state a provider keeps, which pass through without translation.
    pub fn is_stored(self) -> bool {
        matches!(self, ClientApi::ResponsesStored(_))
    }

    /// Turns a client body into IR. `created`/ids are not needed on the way in.
    pub fn decode_request(self, body: &[u8]) -> Result<Request, WireError> {
        match self {
            ClientApi::OpenAiChat => openai::decode_chat_request(body).map(Request::Chat),
            ClientApi::OpenAiEmbeddings => {
                openai::decode_embeddings_request(body).map(Request::Embeddings)
            }
            ClientApi::AnthropicMessages => {
                anthropic::decode_messages_request(body).map(Request::Chat)
            }
            ClientApi::AnthropicCountTokens => {
                anthropic::decode_count_tokens_request(body).map(Request::CountTokens)
            }
            ClientApi::OllamaChat => ollama::decode_chat_request(body).map(Request::Chat),
            ClientApi::OllamaGenerate => ollama::decode_generate_request(body).map(Request::Chat),
            ClientApi::OllamaEmbed => ollama::decode_embed_request(body).map(Request::Embeddings),
            ClientApi::ResponsesCreate => responses::decode_request(body).map(Request::Chat),
            ClientApi::OpenAiModels
            | ClientApi::OllamaTags
            | ClientApi::OllamaShow
            | ClientApi::OllamaVersion
            | ClientApi::ResponsesStored(_) => {
                Err(WireError::invalid("", "this endpoint has no body"))
            }
        }
    }

    /// Encodes a complete answer to `req` (an error goes out as [`ClientApi::encode_error`]).
    pub fn encode_response(self, req: &Request, resp: &Response) -> Vec<u8> {
        match (self, resp) {
            (_, Response::Error(e)) => self.encode_error(e),
            (ClientApi::OpenAiChat, Response::Chat(c)) => openai::encode_chat_response(c),
            (ClientApi::ResponsesCreate, Response::Chat(c)) => match req {
                Request::Chat(r) => responses::encode_response(r, c),
                Request::Embeddings(_) | Request::CountTokens(_) => {
                    self.encode_error(&mismatched())
                }
            },
            (ClientApi::OpenAiEmbeddings, Response::Embeddings(e)) => {
                openai::encode_embeddings_response(e)
            }
            (ClientApi::AnthropicMessages, Response::Chat(c)) => {
                anthropic::encode_messages_response(c)
            }
            (ClientApi::AnthropicCountTokens, Response::TokenCount(t)) => {
                anthropic::encode_token_count(t)
            }
            (ClientApi::OllamaChat, Response::Chat(c)) => ollama::encode_chat_response(c),
            (ClientApi::OllamaGenerate, Response::Chat(c)) => ollama::encode_generate_response(c),
            (ClientApi::OllamaEmbed, Response::Embeddings(e)) => ollama::encode_embed_response(e),
            _ => self.encode_error(&mismatched()),
        }
    }

    /// The HTTP status an error is answered with in this protocol: Anthropic's own 529
    /// (overloaded) only to Anthropic clients, whose SDKs raise `OverloadedError` on it; 503,
    /// which every client retries, to the others.
    pub fn status(self, err: &ErrorInfo) -> u16 {
        match (self.protocol(), err.status) {
            (ClientProtocol::Anthropic, s) => s,
            (_, 529) => 503,
            (_, s) => s,
        }
    }

    /// The error body in the client's own shape. The status goes on the response separately.
    pub fn encode_error(self, err: &ErrorInfo) -> Vec<u8> {
        match self.protocol() {
            ClientProtocol::OpenAi => openai::encode_error(err),
            ClientProtocol::Anthropic => anthropic::encode_error(err),
            ClientProtocol::Ollama => ollama::encode_error(err),
        }
    }

    /// The content type of a streamed answer for this operation.
    pub fn stream_content_type(self) -> &'static str {
        match self.protocol() {
            ClientProtocol::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        }
    }

    /// A stream encoder for one streamed answer to `req`; `max_answer` bounds what an encoder
    /// that must repeat the whole answer at its end (Responses) holds.
    pub fn stream_encoder(self, req: &ChatRequest, max_answer: usize) -> Box<dyn StreamEncoder> {
        match self {
            ClientApi::ResponsesCreate => {
                Box::new(responses::ResponsesStreamEncoder::new(req, max_answer))
            }
            ClientApi::AnthropicMessages => Box::new(anthropic::MessagesStreamEncoder::new(req)),
            ClientApi::OllamaChat => Box::new(ollama::ChatStreamEncoder::new(req, false)),
            ClientApi::OllamaGenerate => Box::new(ollama::ChatStreamEncoder::new(req, true)),
            _ => Box::new(openai::ChatStreamEncoder::new(req)),
        }
    }
}

fn mismatched() -> ErrorInfo {
    ErrorInfo::new(
        502,
        ErrorKind::Upstream,
        "the provider answered with a different kind of response than was asked for",
    )
}

/// Turns IR stream events into a client protocol's stream bytes, one event at a time.
pub trait StreamEncoder {
    /// Appends the bytes for `ev` (possibly none) to `out`. Called in stream order.
    fn event(&mut self, ev: &StreamEvent, out: &mut Vec<u8>);
    /// The upstream stream ended. Appends the protocol's closing bytes; if the stream ended
    /// without `Finish` or `Error`, appends the protocol's error event instead, so a truncated
    /// answer never looks complete.
    fn end(&mut self, out: &mut Vec<u8>);
}

/// Turns a provider's stream bytes into IR events, across arbitrary chunk boundaries.
pub trait StreamDecoder {
    /// Feeds the next chunk; appends complete events to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError>;
    /// The provider's stream ended; flushes what is left. An incomplete frame is an error.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), WireError>;
}

/// A [`StreamDecoder`] of SSE that a terminal event ends (Chat Completions' `[DONE]`, the
/// Responses API's terminal events), with the framing and the ending written once: frames
/// completed before a framing error still count, and nothing after the terminal event is part of
/// the answer, so the outcome never depends on how the provider's bytes happen to be chunked
/// (found by the provider_stream fuzz target).
pub(crate) trait TerminatedSse {
    fn framer(&mut self) -> &mut crate::stream::sse::SseFramer;
    /// The terminal event was seen.
    fn done(&self) -> bool;
    /// Decodes complete frames into `out`, none after the terminal event.
    fn frames(
        &mut self,
        frames: Vec<crate::stream::sse::SseEvent>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), WireError>;
    /// The provider's stream ended: what the decoder still owes (usage it held back).
    fn ended(&mut self, _out: &mut Vec<StreamEvent>) {}
}

impl<T: TerminatedSse> StreamDecoder for T {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        if self.done() {
            return Ok(());
        }
        let mut frames = Vec::new();
        let pushed = self.framer().push(chunk, &mut frames);
        self.frames(frames, out)?;
        if self.done() {
            return Ok(());
        }
        pushed.map_err(Into::into)
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), WireError> {
        if !self.done() {
            let mut frames = Vec::new();
            self.framer().finish(&mut frames)?;
            self.frames(frames, out)?;
        }
        self.ended(out);
        Ok(())
    }
}

/// The provider types weir speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "azure-openai")]
    AzureOpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    Ollama,
    Mistral,
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    /// OpenAI's Responses API (OpenAI, Azure OpenAI's v1 API): chat goes to `/responses`,
    /// embeddings to `/embeddings` as for `openai`.
    #[serde(rename = "openai-responses")]
    OpenAiResponses,
}

impl ProviderKind {
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::AzureOpenAi => "azure-openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Mistral => "mistral",
            ProviderKind::OpenAiCompatible => "openai-compatible",
            ProviderKind::OpenAiResponses => "openai-responses",
        }
    }

    /// The host real providers of this type answer on, when the config names none.
    pub fn default_host(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi | ProviderKind::OpenAiResponses => Some("api.openai.com"),
            ProviderKind::Anthropic => Some("api.anthropic.com"),
            ProviderKind::Gemini => Some("generativelanguage.googleapis.com"),
            ProviderKind::Mistral => Some("api.mistral.ai"),
            _ => None,
        }
    }
}

/// Everything about a provider that shapes its requests, compiled from configuration.
/// Holds no credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSpec {
    pub kind: ProviderKind,
    /// Sent as `:authority`.
    pub host: String,
    /// Path prefix before the operation, without a trailing slash: `/v1` for OpenAI-type
    /// providers, `` for Ollama, `/openai` for Azure, `/v1beta` for Gemini.
    pub base_path: String,
    /// Azure `api-version` query value.
    pub api_version: Option<String>,
    /// Bedrock: AWS region, for the SigV4 scope.
    pub region: Option<String>,
    /// Anthropic `anthropic-version` header value.
    pub anthropic_version: String,
}

/// A request ready for the provider, less its credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Path and query.
    pub path: String,
    /// Extra headers the format needs (e.g. `anthropic-version`), lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ProviderSpec {
    /// Whether the provider counts tokens itself ([`Request::CountTokens`]); for others the
    /// provider role answers with weir's own estimate.
    pub fn counts_tokens(&self) -> bool {
        self.kind == ProviderKind::Anthropic
    }

    /// Builds the provider request. `req.model()` is already the provider's model id.
    pub fn encode_request(&self, req: &Request) -> Result<Outgoing, WireError> {
        if matches!(req, Request::CountTokens(_)) && !self.counts_tokens() {
            return Err(WireError::unsupported("count_tokens", self.kind.name()));
        }
        if let Request::Chat(c) = req {
            if c.extra_family == Some(Family::OpenAiResponses)
                && (!c.extra.is_empty() || responses::holds_native(c))
                && self.kind != ProviderKind::OpenAiResponses
            {
                let portable = responses::portable(c, self.kind)?;
                return self.encode_request(&Request::Chat(portable));
            }
        }
        match self.kind {
            ProviderKind::OpenAi
            | ProviderKind::AzureOpenAi
            | ProviderKind::Mistral
            | ProviderKind::OpenAiCompatible => openai::encode_request(self, req),
            ProviderKind::Anthropic => anthropic::encode_request(self, req),
            ProviderKind::Gemini => gemini::encode_request(self, req),
            ProviderKind::Bedrock => bedrock::encode_request(self, req),
            ProviderKind::Ollama => ollama::encode_request(self, req),
            ProviderKind::OpenAiResponses => match req {
                Request::Chat(_) => responses::encode_request(self, req),
                Request::Embeddings(_) | Request::CountTokens(_) => {
                    openai::encode_request(self, req)
                }
            },
        }
    }

    /// Turns a complete provider answer into IR. Non-2xx statuses become [`Response::Error`]
    /// with the provider's message (credentials-related messages are replaced by the caller).
    /// `created` is the host clock's Unix seconds, for formats that do not report it.
    pub fn decode_response(
        &self,
        req: &Request,
        status: u16,
        body: &[u8],
        created: u64,
    ) -> Result<Response, WireError> {
        match self.kind {
            ProviderKind::OpenAi
            | ProviderKind::AzureOpenAi
            | ProviderKind::Mistral
            | ProviderKind::OpenAiCompatible => openai::decode_response(self, req, status, body),
            ProviderKind::Anthropic => anthropic::decode_response(req, status, body),
            ProviderKind::Gemini => gemini::decode_response(req, status, body, created),
            ProviderKind::Bedrock => bedrock::decode_response(req, status, body, created),
            ProviderKind::Ollama => ollama::decode_response(req, status, body, created),
            ProviderKind::OpenAiResponses => match req {
                Request::Chat(_) => responses::decode_response(req, status, body),
                Request::Embeddings(_) | Request::CountTokens(_) => {
                    openai::decode_response(self, req, status, body)
                }
            },
        }
    }

    /// A decoder for this provider's streamed answer to `req`. `max_frame` bounds the bytes
    /// held for one incomplete frame; `created` is as for [`ProviderSpec::decode_response`].
    pub fn stream_decoder(
        &self,
        req: &ChatRequest,
        max_frame: usize,
        created: u64,
    ) -> Box<dyn StreamDecoder> {
        match self.kind {
            ProviderKind::OpenAi
            | ProviderKind::AzureOpenAi
            | ProviderKind::Mistral
            | ProviderKind::OpenAiCompatible => {
                Box::new(openai::ChatStreamDecoder::new(req, max_frame))
            }
            ProviderKind::Anthropic => Box::new(anthropic::MessagesStreamDecoder::new(max_frame)),
            ProviderKind::Gemini => Box::new(gemini::StreamDecoder::new(req, max_frame, created)),
            ProviderKind::Bedrock => Box::new(bedrock::StreamDecoder::new(req, max_frame, created)),
            ProviderKind::Ollama => Box::new(ollama::ChatStreamDecoder::new(max_frame, created)),
            ProviderKind::OpenAiResponses => {
                Box::new(responses::ResponsesStreamDecoder::new(req, max_frame))
            }
        }
    }
}

/// System and developer turns joined for formats with one system field (Anthropic, Gemini,
/// Bedrock), in order, separated by a blank line; `None` if there are none.
pub fn system_text(req: &ChatRequest) -> Option<String> {
    use crate::ir::Role;
    let parts: Vec<String> = req
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .map(|m| m.joined_text())
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n\n"))
    }
}

/// About how many bytes a content part takes in a body: its text, media or reasoning payloads.
pub(crate) fn part_size(p: &crate::ir::Part) -> usize {
    use crate::ir::{Media, Part};
    match p {
        Part::Text { text } => text.len(),
        Part::Reasoning {
            text,
            signature,
            redacted,
            ..
        } => {
            text.len()
                + signature.as_ref().map_or(0, String::len)
                + redacted.as_ref().map_or(0, String::len)
        }
        Part::Image { source } | Part::Document { source, .. } => match source {
            Media::Base64 { data, .. } => data.len(),
            Media::Url { url } => url.len(),
        },
        // Items of a provider-run tool are mostly ids, queries and URLs.
        Part::Native { .. } => 256,
    }
}

/// About how many bytes a provider body for `req` takes, to size the buffer it is written into
/// once: the text and media that make up most of it, plus room for the JSON around them.
pub(crate) fn body_size_hint(req: &ChatRequest) -> usize {
    let messages: usize = req
        .messages
        .iter()
        .map(|m| {
            let calls: usize = m.tool_calls.iter().map(|c| c.arguments.len() + 64).sum();
            m.content.iter().map(part_size).sum::<usize>() + calls + 64
        })
        .sum();
    // Tool schemas are serialised from values: a guess per tool is as good as measuring.
    messages + req.tools.len() * 512 + 256
}

/// The name of the tool call `id` answers, searched in earlier assistant turns (Gemini's
/// `functionResponse` and Ollama's `tool_name` need names, not ids).
pub fn tool_name_for(req: &ChatRequest, id: &str) -> Option<String> {
    req.messages
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .find(|c| c.id == id)
        .map(|c| c.name.clone())
}

/// Rejects `extra` fields for providers of another family (see [`ChatRequest::extra`]).
pub fn reject_foreign_extra(
    req: &ChatRequest,
    family: crate::ir::Family,
    target: &'static str,
) -> Result<(), WireError> {
    if req.extra_family == Some(family) {
        return Ok(());
    }
    match req.extra.keys().next() {
        Some(field) => Err(WireError::unsupported(field.clone(), target)),
        None => Ok(()),
    }
}

/// An error a provider wrote into its stream outside the stream's framing (`SseEvent::raw`, as
/// Gemini and Vertex AI do mid-stream): a JSON object with an `error` member (an object with
/// `code`/`status`/`message`, or a string), or a one-element array of one. `None` for anything
/// else, which decoders ignore as before.
pub(crate) fn stray_error(text: &str) -> Option<ErrorInfo> {
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let v = match v {
        serde_json::Value::Array(mut items) if items.len() == 1 => items.pop()?,
        other => other,
    };
    let err = v.get("error")?;
    let text_of = |k: &str| err.get(k).and_then(serde_json::Value::as_str);
    let status = err
        .get("code")
        .and_then(serde_json::Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .or_else(|| text_of("status").and_then(google_status))
        .map_or(502, upstream_status);
    let message = match err {
        serde_json::Value::String(s) => s.clone(),
        _ => text_of("message")
            .unwrap_or("the provider reported an error mid-stream")
            .to_string(),
    };
    Some(ErrorInfo::new(
        status,
        ErrorInfo::kind_for_status(status),
        message,
    ))
}

/// The HTTP status of a `google.rpc.Code` name.
fn google_status(name: &str) -> Option<u16> {
    Some(match name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        "CANCELLED" | "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "ABORTED" => 502,
        _ => return None,
    })
}

/// A status a provider reported for a failed answer, as a client should see it: real HTTP
/// error statuses stay, anything else (Google's 499 for a cancelled operation, nonsense codes)
/// is the provider failing, a 502.
pub(crate) fn upstream_status(code: u16) -> u16 {
    match code {
        499 => 502,
        400..=599 => code,
        _ => 502,
    }
}

/// A body that is not JSON at all: a 400 quoting serde's account of where it breaks.
/// A client-derived value (a model name, a deployment, a stored response id) as one URL path
/// segment: every byte but RFC 3986's unreserved ones is percent-encoded, so `/`, `?`, `#`, `:`
/// and `%` cannot add a segment, a query or another method (`x:countTokens?key=`), and a segment
/// of dots alone is encoded too, so `..` never climbs out of the provider's path.
pub(crate) fn path_segment(s: &str) -> String {
    let dots_only = s.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || b == b'.';
        if keep && !(dots_only && b == b'.') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_upper(b >> 4));
            out.push(hex_upper(b & 0xf));
        }
    }
    out
}

fn hex_upper(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16)
        .unwrap_or('0')
        .to_ascii_uppercase()
}

pub(crate) fn invalid_json(e: serde_json::Error) -> WireError {
    WireError::invalid("", format!("invalid JSON body: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_cannot_change_the_path() {
        use super::path_segment;
        assert_eq!(path_segment("gemini-2.0-flash"), "gemini-2.0-flash");
        assert_eq!(
            path_segment("x:countTokens?key=k&"),
            "x%3AcountTokens%3Fkey%3Dk%26"
        );
        assert_eq!(path_segment("../../v1/files"), "..%2F..%2Fv1%2Ffiles");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("."), "%2E");
        assert_eq!(path_segment(""), "");
        assert_eq!(path_segment("a b#%é"), "a%20b%23%25%C3%A9");
    }

    use super::*;

    #[test]
    fn stray_errors_are_read_in_googles_and_openais_shapes() {
        let e = stray_error("{\n  \"error\": {\n    \"code\": 499,\n    \"message\": \"The operation was cancelled.\",\n    \"status\": \"CANCELLED\"\n  }\n}").unwrap();
        assert_eq!((e.status, e.kind), (502, ErrorKind::Upstream));
        assert_eq!(e.message, "The operation was cancelled.");
        let e = stray_error(
            r#"[{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}]"#,
        )
        .unwrap();
        assert_eq!((e.status, e.kind), (429, ErrorKind::RateLimited));
        let e = stray_error(r#"{"error": {"message": "m", "status": "UNAVAILABLE"}}"#).unwrap();
        assert_eq!(e.status, 503);
        assert_eq!(stray_error(r#"{"error": "boom"}"#).unwrap().message, "boom");
        assert!(stray_error("not json").is_none() && stray_error(r#"{"ok": 1}"#).is_none());
    }

    #[test]
    fn classifies_every_served_path_and_ignores_query_and_trailing_slash() {
        assert_eq!(
            ClientApi::classify("POST", "/v1/chat/completions?x=1"),
            Some(ClientApi::OpenAiChat)
        );
        assert_eq!(
            ClientApi::classify("POST", "/v1/messages/"),
            Some(ClientApi::AnthropicMessages)
        );
        assert_eq!(
            ClientApi::classify("GET", "/api/tags"),
            Some(ClientApi::OllamaTags)
        );
        assert_eq!(ClientApi::classify("POST", "/v2/other"), None);
    }
}
