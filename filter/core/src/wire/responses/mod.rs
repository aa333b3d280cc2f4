//! OpenAI's Responses API (`POST /v1/responses`), as a client protocol and as the provider format
//! of `openai-responses` targets; distinct from Chat Completions (`wire::openai`).
//!
//! Mapping choices:
//! - `instructions` is the conversation's first system turn; encoding for a Responses provider
//!   puts a leading system turn back there. `input` items become turns: `message` items by role,
//!   `function_call` items the assistant's tool calls (merged into the assistant turn they
//!   follow), `function_call_output` items tool turns, `reasoning` items reasoning parts.
//! - The answer's items are minted from the IR in its order (reasoning, built-in tools' items and
//!   a message per run of text as they came, then function calls), with ids derived from the
//!   response id; reasoning ids, call ids, built-in tools' items and an annotated message's id
//!   survive the IR, other `msg_`/`fc_` ids of a Responses provider are not the ones a client sees.
//! - Reasoning payloads go back only where they came from (`ir::Origin`): OpenAI's
//!   `encrypted_content` passes verbatim; another provider's signature travels inside
//!   `encrypted_content` as `weir:` + base64 of `{"o","s","r"}` (see [`pack_reasoning`]), which
//!   clients treat as opaque and send back, so a stateless client keeps Claude's or Gemini's
//!   signed reasoning across turns.
//! - Fields with no IR form ride in `ChatRequest::extra` under `Family::OpenAiResponses`, each
//!   with a policy for other targets (`client::portable`): verbatim copies of what the IR also
//!   carries (`tools`, `tool_choice`, `text`, `reasoning`: a Responses provider gets the client's
//!   exact spelling) are dropped; hints (`prompt_cache_key`, `metadata`, ...) are dropped or, for
//!   OpenAI Chat Completions targets, kept under the same name; server-side state
//!   (`previous_response_id`, `store: true`, `conversation`, `prompt`) and Responses-only
//!   behaviours (`truncation: auto`, ...) are refused with a 400 naming them. weir is stateless:
//!   state is served only by an `openai-responses` provider, and so are `GET`/`DELETE
//!   /v1/responses/{id}` ([`StoredCall`]), which pass through unchanged.
//! - Built-in tools (every tool whose type is not `function`: `web_search`, `file_search`,
//!   `code_interpreter`, `computer_use_preview`, `mcp`, ...) run at OpenAI: the client's `tools`
//!   and `tool_choice` reach a Responses provider verbatim (the IR holds the function tools only),
//!   and `portable` refuses them by name for any other target. What the IR has no form for travels
//!   as `Part::Native` / `StreamEvent::Native` with `Origin::OpenAiResponses`, like reasoning
//!   payloads: input items of those tools and `item_reference` (in place, in an assistant turn),
//!   the answer's items of those tools, and a message's `output_text` annotations (a
//!   `{"type": "message", "id", "annotations"}` part before the message's text, indices counted
//!   from the start of its joined text). Only this codec writes them back; every other drops them.
//! - In streams, the provider's events for built-in tools' items and
//!   `response.output_text.annotation.added` pass as `StreamEvent::Native`; the encoder gives
//!   each such item the next output position, maps the provider's `output_index` to it, renumbers
//!   `sequence_number`, and adds annotations to the open text part (and so to its `done` events
//!   and `response.completed`).
//! - Streams are the semantic event stream: every event numbered by `sequence_number`, items by
//!   `output_index`, parts by `content_index`, exactly as the SDK's stream accumulator checks.
//!
//! Layout: [`client`] decodes client requests (and the stored-response paths) and encodes
//! answers; [`provider`] builds provider requests and decodes answers; [`stream`] holds the
//! semantic-event encoder and decoder; `tests` covers all three.
//!
//! Invariants: errors name fields in the client's spelling (`input[2].content[0].type`); nothing
//! here panics on any input; a stream that ends without `response.completed` (or
//! `response.incomplete`) never reaches a client as a complete answer.

mod client;
mod provider;
mod stream;
#[cfg(test)]
mod tests;

pub use client::{decode_request, encode_response, holds_native, portable, StoredCall, StoredOp};
pub use provider::{decode_response, encode_request};
pub use stream::{ResponsesStreamDecoder, ResponsesStreamEncoder};

use crate::ir::{FinishReason, Origin, Usage};
use crate::wire::json::{Json, JsonWriter, Obj, R};
use crate::wire::media;

/// The target name in errors about what a Responses provider cannot express.
const TARGET: &str = "openai-responses";

/// `incomplete_details.reason` for a finish reason that cut the answer short.
fn incomplete_reason(reason: FinishReason) -> Option<&'static str> {
    match reason {
        FinishReason::Length => Some("max_output_tokens"),
        FinishReason::ContentFilter => Some("content_filter"),
        FinishReason::Stop | FinishReason::ToolCalls => None,
    }
}

/// The finish reason of a response's `status` and `incomplete_details.reason`.
fn finish_of(incomplete: Option<&str>, has_calls: bool) -> FinishReason {
    match incomplete {
        Some("content_filter") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Length,
        None if has_calls => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    }
}

/// `usage` as the Responses API reports it (every detail field present, as the SDK's types
/// require).
fn write_usage(w: &mut JsonWriter, u: &Usage) {
    w.begin_object();
    w.key("input_tokens").u64(u.input_tokens);
    w.key("input_tokens_details").begin_object();
    w.key("cache_write_tokens").u64(0);
    w.key("cached_tokens").u64(u.cached_input_tokens);
    w.end_object();
    w.key("output_tokens").u64(u.output_tokens);
    w.key("output_tokens_details").begin_object();
    w.key("reasoning_tokens").u64(u.reasoning_tokens);
    w.end_object();
    w.key("total_tokens")
        .u64(u.input_tokens.saturating_add(u.output_tokens));
    w.end_object();
}

fn read_usage(o: &Obj<'_, '_>) -> R<Usage> {
    let cached = match o.obj("input_tokens_details")? {
        Some(d) => d.u64("cached_tokens")?.unwrap_or(0),
        None => 0,
    };
    let reasoning = match o.obj("output_tokens_details")? {
        Some(d) => d.u64("reasoning_tokens")?.unwrap_or(0),
        None => 0,
    };
    Ok(Usage {
        input_tokens: o.u64("input_tokens")?.unwrap_or(0),
        output_tokens: o.u64("output_tokens")?.unwrap_or(0),
        cached_input_tokens: cached,
        reasoning_tokens: reasoning,
    })
}

/// The response id a client sees: the provider's when it is a Responses id, else `resp_` and the
/// provider's answer id, so ids stay unique per answer and recognisable in logs.
fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_string()
    } else if id.is_empty() {
        "resp_weir".to_string()
    } else {
        format!("resp_{id}")
    }
}

/// An output item's id: its kind's prefix, the response id's own part, and its position.
fn item_id(prefix: &str, response_id: &str, output_index: usize) -> String {
    let base = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{base}_{output_index}")
}

/// The [`crate::ir::Part::Native`] that stands for a provider's message item before its text:
/// its id, and its text parts' annotations in order (indices already counted from the start of
/// the message's whole text). `None` without annotations: then minted ids serve as well.
fn message_meta_item(
    id: Option<&str>,
    annotations: Vec<serde_json::Value>,
) -> Option<serde_json::Value> {
    if annotations.is_empty() {
        return None;
    }
    Some(serde_json::json!({"type": "message", "id": id.unwrap_or(""), "annotations": annotations}))
}

/// The inverse of [`message_meta_item`]: the message's id and annotations; `None` for any other
/// item.
fn message_meta(item: &serde_json::Value) -> Option<(String, Vec<serde_json::Value>)> {
    if item.get("type")?.as_str()? != "message" {
        return None;
    }
    let id = item
        .get("id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let annotations = item
        .get("annotations")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    Some((id.to_string(), annotations))
}

/// What a reasoning item's `encrypted_content` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReasoningPayload {
    origin: Origin,
    signature: Option<String>,
    redacted: Option<String>,
}

/// Marks `encrypted_content` that weir packed itself.
const PACKED: &str = "weir:";

/// `encrypted_content` for a reasoning part: OpenAI's own payload verbatim; another origin's
/// signature and redacted data packed so that [`unpack_reasoning`] recovers them; `None` when
/// there is nothing to carry.
fn pack_reasoning(
    origin: Option<Origin>,
    signature: Option<&str>,
    redacted: Option<&str>,
) -> Option<String> {
    match origin {
        Some(Origin::OpenAiResponses) => redacted.map(str::to_string),
        Some(origin) if signature.is_some() || redacted.is_some() => {
            let packed = serde_json::json!({"o": origin, "s": signature, "r": redacted});
            let text = serde_json::to_vec(&packed).unwrap_or_default();
            Some(format!("{PACKED}{}", media::base64_encode(&text)))
        }
        _ => None,
    }
}

/// The inverse of [`pack_reasoning`]; `None` for a packed payload that does not parse (the
/// client changed it), which callers refuse.
fn unpack_reasoning(encrypted: &str) -> Option<ReasoningPayload> {
    let Some(packed) = encrypted.strip_prefix(PACKED) else {
        return Some(ReasoningPayload {
            origin: Origin::OpenAiResponses,
            signature: None,
            redacted: Some(encrypted.to_string()),
        });
    };
    #[derive(serde::Deserialize)]
    struct Packed {
        o: Origin,
        #[serde(default)]
        s: Option<String>,
        #[serde(default)]
        r: Option<String>,
    }
    let bytes = media::base64_decode(packed.as_bytes())?;
    let p: Packed = serde_json::from_slice(&bytes).ok()?;
    (p.o != Origin::OpenAiResponses && (p.s.is_some() || p.r.is_some())).then_some(
        ReasoningPayload {
            origin: p.o,
            signature: p.s,
            redacted: p.r,
        },
    )
}

/// The text of a reasoning item: its summary parts, else its raw `reasoning_text` content,
/// joined by blank lines.
fn reasoning_text(o: &Obj<'_, '_>) -> R<String> {
    let mut texts: Vec<&str> = Vec::new();
    for key in ["summary", "content"] {
        if let Some(parts) = o.arr(key)? {
            texts.extend(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Json::as_str)),
            );
        }
        if !texts.is_empty() {
            break;
        }
    }
    Ok(texts.join("\n\n"))
}

/// The Responses API's `reasoning.effort` for IR reasoning settings: `none` when reasoning is
/// off.
fn effort_name(r: &crate::ir::Reasoning) -> Option<&'static str> {
    use crate::ir::Effort;
    if crate::wire::reasoning::is_off(r) {
        return Some("none");
    }
    Some(match crate::wire::reasoning::effort_of(r)? {
        Effort::Minimal => "minimal",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High => "high",
        Effort::Xhigh => "xhigh",
        Effort::Max => "max",
    })
}
