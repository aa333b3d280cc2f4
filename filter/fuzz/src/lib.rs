//! Helpers shared by the fuzz targets: turning the fuzzer's leading bytes into choices (which
//! api / provider / framer, where to split) and the fixed IR requests that provider decoders are
//! given as context.

use weir_core::ir::{ChatRequest, EmbeddingsRequest, Message, Request, Role, Tool};
use weir_core::wire::{ClientApi, ProviderKind, ProviderSpec};

/// Bound for one incomplete stream frame: large enough that no fuzz input (libFuzzer's default
/// -max_len is 4096) trips `TooLarge`, so split/whole runs are comparable.
pub const MAX_FRAME: usize = 1 << 20;

/// Reads choice bytes off the front of the input.
pub struct Input<'a> {
    pub data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from(self.byte()) << 8 | u16::from(self.byte())
    }
    /// Picks one of `items` with the next byte.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()]
    }
    /// The rest of the input split at a point chosen by the next two bytes.
    pub fn split_rest(&mut self) -> (&'a [u8], &'a [u8]) {
        let at = usize::from(self.u16());
        let rest = self.data;
        rest.split_at(if rest.is_empty() {
            0
        } else {
            at % (rest.len() + 1)
        })
    }
}

/// Every client operation that has a body to decode.
pub const CLIENT_APIS: [ClientApi; 8] = [
    ClientApi::OpenAiChat,
    ClientApi::OpenAiEmbeddings,
    ClientApi::AnthropicMessages,
    ClientApi::AnthropicCountTokens,
    ClientApi::OllamaChat,
    ClientApi::OllamaGenerate,
    ClientApi::OllamaEmbed,
    ClientApi::ResponsesCreate,
];

pub const PROVIDER_KINDS: [ProviderKind; 9] = [
    ProviderKind::OpenAi,
    ProviderKind::AzureOpenAi,
    ProviderKind::Anthropic,
    ProviderKind::Gemini,
    ProviderKind::Bedrock,
    ProviderKind::Ollama,
    ProviderKind::Mistral,
    ProviderKind::OpenAiCompatible,
    ProviderKind::OpenAiResponses,
];

pub fn spec(kind: ProviderKind) -> ProviderSpec {
    ProviderSpec {
        kind,
        host: "provider.test".into(),
        base_path: match kind {
            ProviderKind::AzureOpenAi => "/openai".into(),
            ProviderKind::Gemini => "/v1beta".into(),
            ProviderKind::Ollama | ProviderKind::Anthropic => String::new(),
            _ => "/v1".into(),
        },
        api_version: Some("2024-10-21".into()),
        region: Some("us-east-1".into()),
        anthropic_version: "2023-06-01".into(),
    }
}

/// A chat request as the provider role sees it; `variant` toggles streaming, tools, n and
/// structured output, which change how responses are decoded.
pub fn chat_request(variant: u8) -> ChatRequest {
    let mut req = ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, "hello")],
        stream: variant & 1 != 0,
        stream_include_usage: variant & 2 != 0,
        ..Default::default()
    };
    if variant & 4 != 0 {
        req.tools = vec![Tool {
            name: "get_weather".into(),
            description: Some("weather".into()),
            parameters: serde_json_value(),
            strict: None,
        }];
    }
    if variant & 8 != 0 {
        req.n = Some(2);
    }
    if variant & 64 != 0 {
        // Bedrock answers it as a forced tool, unwrapped into text.
        req.response_format = Some(weir_core::ir::ResponseFormat::JsonObject);
    }
    req
}

fn serde_json_value() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}})
}

pub fn request(variant: u8) -> Request {
    if variant & 16 != 0 {
        Request::Embeddings(EmbeddingsRequest {
            model: "e".into(),
            ..Default::default()
        })
    } else if variant & 32 != 0 {
        Request::CountTokens(chat_request(variant))
    } else {
        Request::Chat(chat_request(variant))
    }
}

/// Wraps fuzz bytes in valid AWS event-stream frames, Bedrock ConverseStream style: records of
/// `[event-type selector][payload length][payload]`, so CRCs never stop the fuzzer.
pub fn bedrock_frames(data: &[u8]) -> Vec<u8> {
    use weir_core::stream::eventstream::{encode, HeaderValue, Message};
    const EVENTS: [&str; 8] = [
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
        "exception",
        "other",
    ];
    let mut input = Input::new(data);
    let mut out = Vec::new();
    while !input.data.is_empty() {
        let sel = input.byte();
        let len = usize::from(input.byte()).min(input.data.len());
        let (payload, rest) = input.data.split_at(len);
        input.data = rest;
        let event = EVENTS[usize::from(sel) % EVENTS.len()];
        let headers = if event == "exception" {
            vec![
                (
                    ":message-type".to_string(),
                    HeaderValue::String("exception".into()),
                ),
                (
                    ":exception-type".to_string(),
                    HeaderValue::String("throttlingException".into()),
                ),
            ]
        } else {
            vec![
                (
                    ":message-type".to_string(),
                    HeaderValue::String("event".into()),
                ),
                (":event-type".to_string(), HeaderValue::String(event.into())),
                (
                    ":content-type".to_string(),
                    HeaderValue::String("application/json".into()),
                ),
            ]
        };
        out.extend(encode(&Message {
            headers,
            payload: payload.to_vec(),
        }));
    }
    out
}
