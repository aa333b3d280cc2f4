//! Tool-call arguments between the IR's JSON text (OpenAI's shape) and the JSON objects that
//! Anthropic, Ollama, Gemini and Bedrock carry instead.

use serde_json::Value;

use crate::wire::json::{Json, JsonWriter, Members};
use crate::wire::WireError;

/// Arguments text as an object. Empty text is a call without arguments; anything but a JSON
/// object is `None`.
pub(crate) fn object(text: &str) -> Option<Json<'_>> {
    if text.trim().is_empty() {
        return Some(Json::Object(Members::default()));
    }
    match serde_json::from_str::<Json<'_>>(text) {
        Ok(v @ Json::Object(_)) => Some(v),
        _ => None,
    }
}

/// [`object`] for provider encoders, whose callers learn which call's arguments were bad.
pub(crate) fn object_at(text: &str, field: &str) -> Result<Value, WireError> {
    object(text)
        .map(|o| o.to_value())
        .ok_or_else(|| WireError::invalid(field, "tool call arguments must be a JSON object"))
}

/// For client encoders, which cannot fail: arguments that are not an object (a provider's model
/// produced broken JSON) go out as the raw string, so the client fails loudly instead of running
/// the tool with made-up arguments.
pub(crate) fn write(w: &mut JsonWriter, text: &str) {
    match object(text) {
        Some(o) => w.json(&o),
        None => w.str(text),
    };
}

/// Arguments a format sent as a value (an object, or text from lenient servers), as IR text.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => "{}".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// [`text`] for arguments read from a parsed body.
pub(crate) fn json_text(v: &Json<'_>) -> String {
    match v {
        Json::Null => "{}".to_string(),
        Json::Str(s) => s.to_string(),
        other => other.to_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_no_arguments_and_broken_text_stays_raw() {
        assert_eq!(
            object(" ").map(|o| o.to_value()),
            Some(Value::Object(serde_json::Map::new()))
        );
        assert!(object("[1]").is_none());
        let mut w = JsonWriter::with_capacity(0);
        w.begin_array();
        write(&mut w, "{oops");
        write(&mut w, r#"{"b": 1, "a": [true]}"#);
        w.end_array();
        assert_eq!(w.into_string(), r#"["{oops",{"a":[true],"b":1}]"#);
    }
}
