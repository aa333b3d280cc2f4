//! Token and money arithmetic: what a request is expected to consume before it runs (sizing its
//! reservation), and what reported usage costs.

use super::{Actual, Estimate, Limiter, Price};
use crate::ir::{ChatRequest, Part, Request, ResponseFormat, Usage};

/// Rough input-token charge for an image; providers bill ~85-1,600 tokens depending on size and
/// detail, and the reservation is corrected at settle anyway.
const IMAGE_TOKENS: u64 = 1_000;
/// Rough input-token charge for a document (a PDF costs 1,500-3,000 tokens per page).
const DOCUMENT_TOKENS: u64 = 3_000;

/// Cost of `usage` at `price`, in micro-USD, rounded up so fractions are never free.
/// `cached_input_tokens` is taken as the part of `input_tokens` served from the prompt cache
/// (OpenAI's convention) and priced at `cached_input` instead of `input`.
pub fn cost_micro_usd(price: &Price, usage: &Usage) -> u64 {
    let cached = usage.cached_input_tokens.min(usage.input_tokens);
    let fresh = usage.input_tokens - cached;
    // USD per million tokens times tokens is micro-USD: the two millions cancel.
    let micro = fresh as f64 * rate(price.input)
        + cached as f64 * rate(price.cached_input)
        + usage.output_tokens as f64 * rate(price.output)
        + rate(price.per_request) * 1e6;
    // `as` saturates (and maps NaN to 0), so no input can wrap.
    micro.ceil() as u64
}

/// A misconfigured negative or non-finite price must not turn a charge into a refund.
fn rate(usd: f64) -> f64 {
    if usd.is_finite() && usd > 0.0 {
        usd
    } else {
        0.0
    }
}

impl Estimate {
    /// Sizes the reservation for `req`: prompt UTF-8 bytes / `chars_per_token` (plus a flat
    /// charge per image or document) as input, and `max_tokens` (or `default_max_tokens`) times
    /// the number of choices as output. `price` is the price of the target the request is routed
    /// to (or the dearest it may fall back to); `None` reserves no money.
    pub fn for_request(req: &Request, limiter: &Limiter, price: Option<&Price>) -> Estimate {
        let cfg = limiter.estimate;
        let cpt = u64::from(cfg.chars_per_token.max(1));
        let (bytes, flat, output) = match req {
            Request::Chat(c) => {
                let (bytes, flat) = prompt_size(c);
                let max = c.max_tokens.unwrap_or(cfg.default_max_tokens);
                let choices = c.n.unwrap_or(1).max(1);
                (
                    bytes,
                    flat,
                    u64::from(max).saturating_mul(u64::from(choices)),
                )
            }
            // Counting generates nothing and costs no tokens; the request itself still counts.
            Request::CountTokens(_) => (0, 0, 0),
            Request::Embeddings(e) => {
                let bytes = e
                    .input
                    .iter()
                    .fold(0u64, |acc, s| acc.saturating_add(len(s)));
                (bytes, 0, 0)
            }
        };
        Estimate::from_tokens(bytes.div_ceil(cpt).saturating_add(flat), output, price)
    }

    /// An estimate from token counts already known.
    pub fn from_tokens(input_tokens: u64, output_tokens: u64, price: Option<&Price>) -> Estimate {
        let usage = Usage {
            input_tokens,
            output_tokens,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        };
        Estimate {
            tokens: input_tokens.saturating_add(output_tokens),
            micro_usd: price.map_or(0, |p| cost_micro_usd(p, &usage)),
        }
    }
}

/// weir's own count of the input tokens of `chat`, as the reservation sizes it: the answer to
/// `count_tokens` for providers that cannot count.
pub fn estimate_input_tokens(chat: &ChatRequest, limiter: &Limiter) -> u64 {
    let cpt = u64::from(limiter.estimate.chars_per_token.max(1));
    let (bytes, flat) = prompt_size(chat);
    bytes.div_ceil(cpt).saturating_add(flat)
}

/// The prompt's UTF-8 bytes (text, reasoning, tool calls and schemas, names) and its flat token
/// charge for images and documents.
fn prompt_size(c: &ChatRequest) -> (u64, u64) {
    let mut bytes = 0u64;
    let mut flat = 0u64;
    for m in &c.messages {
        for part in &m.content {
            match part {
                Part::Text { text } => bytes = bytes.saturating_add(len(text)),
                Part::Reasoning { text, .. } => bytes = bytes.saturating_add(len(text)),
                Part::Image { .. } => flat = flat.saturating_add(IMAGE_TOKENS),
                Part::Document { .. } => flat = flat.saturating_add(DOCUMENT_TOKENS),
                // A provider-run tool's item (a search call, a file reference): its JSON text.
                Part::Native { item, .. } => {
                    bytes = bytes.saturating_add(len(&item.to_string()));
                }
            }
        }
        for call in &m.tool_calls {
            bytes = bytes
                .saturating_add(len(&call.name))
                .saturating_add(len(&call.arguments));
        }
        bytes = bytes
            .saturating_add(m.name.as_deref().map_or(0, len))
            .saturating_add(m.tool_call_id.as_deref().map_or(0, len))
            .saturating_add(m.refusal.as_deref().map_or(0, len));
    }
    for t in &c.tools {
        bytes = bytes
            .saturating_add(len(&t.name))
            .saturating_add(t.description.as_deref().map_or(0, len))
            .saturating_add(json_len(&t.parameters));
    }
    if let Some(ResponseFormat::JsonSchema { schema, .. }) = &c.response_format {
        bytes = bytes.saturating_add(json_len(schema));
    }
    (bytes, flat)
}

impl Actual {
    /// What a finished request consumed, from the provider's usage report. `price` should be
    /// the price of the target that actually served it.
    pub fn from_usage(usage: &Usage, price: Option<&Price>) -> Actual {
        Actual {
            tokens: usage.input_tokens.saturating_add(usage.output_tokens),
            micro_usd: price.map_or(0, |p| cost_micro_usd(p, usage)),
        }
    }

    /// For a request whose usage is unknown although a provider may have done the work (the
    /// client went away mid-stream, a stream ended without usage): keeps the reservation.
    pub fn from_estimate(estimate: Estimate) -> Actual {
        Actual {
            tokens: estimate.tokens,
            micro_usd: estimate.micro_usd,
        }
    }
}

fn len(s: &str) -> u64 {
    s.len() as u64
}

/// Serialised size of a JSON value without building the string.
fn json_len(v: &serde_json::Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len() as u64);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing to a counter cannot fail; a value serde cannot write just counts as short.
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}
