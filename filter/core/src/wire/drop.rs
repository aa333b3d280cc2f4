//! What becomes of a request field the target cannot express: refused (a 400 naming it and the
//! provider) or dropped, by the route's `unsupported` policy and by what the field does.
//!
//! Encoders never decide: they return [`WireError::Unsupported`] naming the first field they
//! cannot express, in IR spelling (`top_k`, `reasoning`, `messages[2].name`, an `extra` key such
//! as `logit_bias` or `tools[1].input_examples`). [`encode`] asks [`class`], removes the field
//! from the IR ([`remove`]) when the policy allows, and encodes again; each round removes one
//! field, so it ends. The fields it removed are reported (`x-weir-dropped`, the access log).
//!
//! Classes:
//! - [`Class::Label`]: labels and hints that never change the answer (`user`, `keep_alive`,
//!   `cache_control`, `service_tier`, ...): dropped under either policy, and still reported.
//! - [`Class::Tuning`]: sampling and reasoning controls (`temperature`, `top_k`, `seed`,
//!   penalties, `logprobs`, `reasoning`, `parallel_tool_calls`, Ollama's sampling `options`,
//!   ...): the answer is still an answer to the same request without them; dropped only under
//!   `drop`. (Ollama's runtime options, such as `options.num_ctx`, are labels.)
//! - Everything else changes what the answer is (tools, tool choice, response format, images,
//!   documents, message content, `n`, `stop`, audio, data-residency fields such as
//!   `inference_geo`): never dropped, always refused.

use serde::{Deserialize, Serialize};

use crate::ir::{ChatRequest, Request};
use crate::wire::ollama::{RUNTIME_HINTS, SAMPLING_OPTIONS};
use crate::wire::{Outgoing, ProviderSpec, WireError};

/// The `unsupported` setting of a model route (or the global default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// A field the target cannot express is a 400 naming it (labels are still dropped).
    #[default]
    Refuse,
    /// Sampling and reasoning controls the target cannot express are dropped too.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Label,
    Tuning,
}

/// Fields that only label the request or hint at price, latency or caching.
const LABELS: &[&str] = &[
    "user",
    "name",
    "keep_alive",
    "cache_control",
    "service_tier",
    "speed",
    "store",
    "metadata",
    "prompt_cache_key",
    "safety_identifier",
    "diagnostics",
    "user_profile_id",
    "workspace_id",
    "eager_input_streaming",
    "prompt_cache_options",
    "prompt_cache_retention",
    "billing_policy",
    "fallback_credit_token",
];

/// Fields that tune how the answer is sampled or how much the model reasons.
const TUNING: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "verbosity",
    "prediction",
    "reasoning",
    "parallel_tool_calls",
    "input_examples",
];

/// The last step of a field path: `tools[1].input_examples` → `input_examples`.
fn leaf(field: &str) -> &str {
    field.rsplit('.').next().unwrap_or(field)
}

/// How `field` may be dropped; `None`: never.
pub fn class(field: &str) -> Option<Class> {
    // Only messages' participant names and tools' own fields are droppable below the top level.
    let nested_ok = !field.contains('.')
        || message_index(field).is_some()
        || field.starts_with("tools[")
        || field.starts_with("options.");
    if !nested_ok {
        return None;
    }
    let name = leaf(field);
    if LABELS.contains(&name) || RUNTIME_HINTS.contains(&name) {
        Some(Class::Label)
    } else if TUNING.contains(&name) || SAMPLING_OPTIONS.contains(&name) {
        Some(Class::Tuning)
    } else {
        None
    }
}

/// `messages[i].name` → `i`.
fn message_index(field: &str) -> Option<usize> {
    field
        .strip_prefix("messages[")?
        .strip_suffix("].name")?
        .parse()
        .ok()
}

/// Removes `field` from `req`; whether there was anything to remove (a field that is not
/// there cannot be the one an encoder refused, and must not loop [`encode`]).
pub fn remove(req: &mut ChatRequest, field: &str) -> bool {
    fn take<T>(slot: &mut Option<T>) -> bool {
        slot.take().is_some()
    }
    if let Some(i) = message_index(field) {
        return req.messages.get_mut(i).is_some_and(|m| take(&mut m.name));
    }
    let removed = match field {
        "temperature" => take(&mut req.temperature),
        "top_p" => take(&mut req.top_p),
        "top_k" => take(&mut req.top_k),
        "seed" => take(&mut req.seed),
        "presence_penalty" => take(&mut req.presence_penalty),
        "frequency_penalty" => take(&mut req.frequency_penalty),
        "user" => take(&mut req.user),
        "parallel_tool_calls" => take(&mut req.parallel_tool_calls),
        "reasoning" => take(&mut req.reasoning),
        "keep_alive" => take(&mut req.keep_alive),
        _ => false,
    };
    removed || req.extra.remove(field).is_some()
}

/// The most fields one request can lose: far more than any encoder can refuse in turn, and a
/// bound on the re-encoding whatever happens.
const MAX_DROPPED: usize = 32;

/// Encodes `req` for `spec`, dropping what `policy` allows; returns the request and the fields
/// dropped, in order. A refused field comes back as the encoder's error.
pub fn encode(
    spec: &ProviderSpec,
    req: &mut Request,
    policy: Policy,
) -> Result<(Outgoing, Vec<String>), WireError> {
    let mut dropped = Vec::new();
    loop {
        let err = match spec.encode_request(req) {
            Ok(out) => return Ok((out, dropped)),
            Err(e) => e,
        };
        let WireError::Unsupported { field, .. } = &err else {
            return Err(err);
        };
        let allowed = match class(field) {
            Some(Class::Label) => true,
            Some(Class::Tuning) => policy == Policy::Drop,
            None => false,
        };
        let chat = match req {
            Request::Chat(c) | Request::CountTokens(c) => c,
            Request::Embeddings(_) => return Err(err),
        };
        if !allowed || dropped.len() >= MAX_DROPPED || !remove(chat, field) {
            return Err(err);
        }
        dropped.push(field.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Message, Reasoning, Role};
    use serde_json::json;

    #[test]
    fn classes_follow_what_a_field_does() {
        assert_eq!(class("user"), Some(Class::Label));
        assert_eq!(class("messages[3].name"), Some(Class::Label));
        assert_eq!(class("tools[0].cache_control"), Some(Class::Label));
        assert_eq!(class("top_k"), Some(Class::Tuning));
        assert_eq!(class("tools[2].input_examples"), Some(Class::Tuning));
        assert_eq!(class("options.num_ctx"), Some(Class::Label));
        assert_eq!(class("options.min_p"), Some(Class::Tuning));
        assert_eq!(class("options.bogus"), None);
        for never in [
            "tools",
            "tool_choice",
            "response_format",
            "n",
            "stop",
            "inference_geo",
            "messages[1].content[0]",
            "messages[1].content[0].name",
            "web_search_options",
        ] {
            assert_eq!(class(never), None, "{never}");
        }
    }

    #[test]
    fn removal_reports_only_what_was_there() {
        let mut req = ChatRequest {
            messages: vec![Message {
                name: Some("ann".into()),
                ..Message::text(Role::User, "hi")
            }],
            top_k: Some(3),
            reasoning: Some(Reasoning::default()),
            ..Default::default()
        };
        req.extra.insert("logit_bias".into(), json!({}));
        assert!(remove(&mut req, "top_k") && req.top_k.is_none());
        assert!(!remove(&mut req, "top_k"));
        assert!(remove(&mut req, "reasoning") && req.reasoning.is_none());
        assert!(remove(&mut req, "logit_bias") && req.extra.is_empty());
        assert!(remove(&mut req, "messages[0].name"));
        assert!(!remove(&mut req, "messages[0].name") && !remove(&mut req, "messages[9].name"));
    }
}
