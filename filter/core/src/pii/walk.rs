//! Which request fields are scrubbed: every text a provider reads as content. Message text
//! parts of every role (system, developer, user, assistant history, tool results), refusals,
//! unsigned reasoning, document titles, tool-call arguments (keys and values), stop sequences,
//! the end-user id (`user`, Anthropic's `metadata.user_id`), embeddings inputs.
//!
//! Signed reasoning (a `Part::Reasoning` with a signature or encrypted payload) is never
//! rewritten: the provider that signed it rejects a modified block. Its text is what that
//! provider wrote (placeholders included, since answers' reasoning is not restored), so it holds
//! nothing new to the provider; if it does hold something a detector finds (the client edited
//! it, or the model wrote such a value itself), the block is removed from the request instead,
//! so nothing detected leaves and nothing signed is altered.
//!
//! Not scrubbed: model names, ids, tool names, descriptions and schemas, structured-output
//! schemas, image and document data. Tool-call arguments are JSON text: string values (and numbers, which can carry card
//! numbers) are scrubbed inside the parsed value and the text re-serialised only if something
//! changed, so it stays valid JSON; text that does not parse is scrubbed as plain text.

use serde_json::Value;

use super::scrub::{Engine, Meter, State};
use super::vault::Vault;
use super::{Blocked, Detections};
use crate::ir::{Part, Request};

pub(crate) fn scrub_request(
    engine: &Engine,
    req: &mut Request,
    vault: &mut Vault,
) -> Result<Detections, Blocked> {
    let mut st = State::new(engine, vault);
    match req {
        Request::Chat(chat) | Request::CountTokens(chat) => {
            if let Some(user) = &mut chat.user {
                scrub_in_place(engine, user, &mut st)?;
            }
            for stop in &mut chat.stop {
                scrub_in_place(engine, stop, &mut st)?;
            }
            for msg in &mut chat.messages {
                let mut refused = None;
                msg.content
                    .retain(|p| match signed_with_findings(engine, p, &mut st.meter) {
                        Ok(found) => !found,
                        Err(blocked) => {
                            refused.get_or_insert(blocked);
                            true
                        }
                    });
                if let Some(blocked) = refused {
                    return Err(blocked);
                }
                for part in &mut msg.content {
                    match part {
                        Part::Text { text } => scrub_in_place(engine, text, &mut st)?,
                        Part::Document {
                            title: Some(title), ..
                        } => scrub_in_place(engine, title, &mut st)?,
                        Part::Reasoning {
                            text,
                            signature: None,
                            redacted: None,
                            ..
                        } => scrub_in_place(engine, text, &mut st)?,
                        // Provider-run tools' items pass unchanged: they are the provider's
                        // own output, sent back to it verbatim.
                        Part::Reasoning { .. }
                        | Part::Native { .. }
                        | Part::Document { title: None, .. }
                        | Part::Image { .. } => {}
                    }
                }
                if let Some(refusal) = &mut msg.refusal {
                    scrub_in_place(engine, refusal, &mut st)?;
                }
                for call in &mut msg.tool_calls {
                    scrub_json_text(engine, &mut call.arguments, &mut st)?;
                }
            }
        }
        Request::Embeddings(emb) => {
            if let Some(user) = &mut emb.user {
                scrub_in_place(engine, user, &mut st)?;
            }
            for input in &mut emb.input {
                scrub_in_place(engine, input, &mut st)?;
            }
        }
    }
    Ok(st.finish())
}

/// A signed reasoning part whose text a detector finds something in (see the module doc).
fn signed_with_findings(engine: &Engine, part: &Part, meter: &mut Meter) -> Result<bool, Blocked> {
    Ok(match part {
        Part::Reasoning {
            text,
            signature,
            redacted,
            ..
        } if signature.is_some() || redacted.is_some() => !engine.spans(text, meter)?.is_empty(),
        _ => false,
    })
}

fn scrub_in_place(engine: &Engine, text: &mut String, st: &mut State<'_>) -> Result<(), Blocked> {
    if let Some(new) = engine.scrub_text(text, st)? {
        *text = new;
    }
    Ok(())
}

/// Scrubs the string values of a JSON document given as text, keeping it valid JSON.
pub(crate) fn scrub_json_text(
    engine: &Engine,
    json: &mut String,
    st: &mut State<'_>,
) -> Result<(), Blocked> {
    match serde_json::from_str::<Value>(json) {
        Ok(mut value) => {
            if scrub_value(engine, &mut value, st)? {
                match serde_json::to_string(&value) {
                    Ok(text) => *json = text,
                    // Cannot happen for a Value; never fall back to the unscrubbed text.
                    Err(_) => scrub_in_place(engine, json, st)?,
                }
            }
            Ok(())
        }
        Err(_) => scrub_in_place(engine, json, st),
    }
}

/// Returns whether anything changed. Recursion depth is bounded by serde_json's parse limit.
fn scrub_value(engine: &Engine, v: &mut Value, st: &mut State<'_>) -> Result<bool, Blocked> {
    Ok(match v {
        Value::String(s) => match engine.scrub_text(s, st)? {
            Some(new) => {
                *s = new;
                true
            }
            None => false,
        },
        Value::Number(n) => match engine.scrub_text(&n.to_string(), st)? {
            // A detected number becomes its (string) replacement: the type changes, the value
            // does not leak.
            Some(new) => {
                *v = Value::String(new);
                true
            }
            None => false,
        },
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= scrub_value(engine, item, st)?;
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            let mut renamed = Vec::new();
            for (key, item) in map.iter_mut() {
                changed |= scrub_value(engine, item, st)?;
                if let Some(new) = engine.scrub_text(key, st)? {
                    renamed.push((key.clone(), new));
                }
            }
            for (old, new) in renamed {
                if let Some(item) = map.remove(&old) {
                    // Two keys redacted alike must not overwrite each other.
                    let mut key = new.clone();
                    let mut n = 2;
                    while map.contains_key(&key) {
                        key = format!("{new}_{n}");
                        n += 1;
                    }
                    map.insert(key, item);
                    changed = true;
                }
            }
            changed
        }
        Value::Null | Value::Bool(_) => false,
    })
}
