//! The borrowed JSON tree request decoders read: strings without escapes point into the body
//! instead of being copied, and objects are one sorted vector instead of a map of owned keys.
//! It reads exactly like `serde_json::Value` did: the same parser (so the same syntax errors and
//! recursion limit), the same number classes, the last of repeated keys wins, and keys iterate
//! in sorted order, which decides which of several unknown fields an error names.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Members<'a>),
}

/// An object's members, sorted by key with one entry per key.
#[derive(Default)]
pub(crate) struct Members<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Members<'a> {
    /// Sorts members as they arrived and keeps the last value of a repeated key, as a map would.
    fn new(mut members: Vec<(Cow<'a, str>, Json<'a>)>) -> Self {
        // A stable sort keeps repeated keys in arrival order, so each run's last one is the
        // value to keep; `dedup_by` keeps a run's first entry, hence the swap.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        Members(members)
    }

    pub fn get(&self, name: &str) -> Option<&Json<'a>> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v)
    }

    /// Members in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_value()))
            .collect()
    }
}

impl<'a> Json<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Members<'a>> {
        match self {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }

    /// `name` of an object; `None` for anything else, like `Value::get`.
    pub fn get(&self, name: &str) -> Option<&Json<'a>> {
        self.as_object().and_then(|m| m.get(name))
    }

    /// An owned copy, for the few places the IR keeps arbitrary JSON (schemas, `extra`).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(m) => Value::Object(m.to_map()),
        }
    }

    /// Compact JSON text, byte for byte what `Value::to_string` gave (keys sorted).
    pub fn to_text(&self) -> String {
        let mut w = super::JsonWriter::with_capacity(64);
        w.json(self);
        w.into_string()
    }
}

impl<'de> de::Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(f).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        de::Deserialize::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            members.push((key, map.next_value()?));
        }
        Ok(Json::Object(Members::new(members)))
    }
}

/// Object keys, borrowed from the body when they have no escapes (serde's own `Cow` always copies).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_string()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Json<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn reads_like_value() {
        for text in [
            r#"{"b": [1, -2, 3.5, 0.1], "a": {"z": null, "y": true}, "c": "x\ny", "a": 7}"#,
            r#"[{"k": 18446744073709551615, "j": -9223372036854775808, "i": 2.0}]"#,
            r#""\u00e9\ud83e\udd80""#,
            r#"{"a": 1e400}"#,
            r#"{"a": [1,}"#,
        ] {
            let want: Result<Value, _> = serde_json::from_str(text);
            let got: Result<Json<'_>, _> = serde_json::from_str(text);
            match (want, got) {
                (Ok(want), Ok(got)) => {
                    assert_eq!(got.to_value(), want);
                    assert_eq!(got.to_text(), want.to_string());
                }
                (Err(want), Err(got)) => assert_eq!(got.to_string(), want.to_string()),
                (want, got) => panic!("{text}: {want:?} vs {:?}", got.is_ok()),
            }
        }
    }

    #[test]
    fn the_last_repeated_key_wins_and_keys_iterate_sorted() {
        let v = parse(r#"{"b": 1, "a": 2, "b": null, "c": 3, "b": 4}"#);
        let m = v.as_object().unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(m.get("b").and_then(Json::as_u64), Some(4));
        assert!(m.get("d").is_none());
    }

    #[test]
    fn unescaped_strings_and_keys_borrow_the_body() {
        let v = parse(r#"{"plain": "text", "esc\"aped": "a\tb"}"#);
        let m = v.as_object().unwrap();
        let Some((Cow::Borrowed("plain"), Json::Str(Cow::Borrowed("text")))) = m.0.last() else {
            panic!("not borrowed")
        };
        assert!(matches!(m.get("esc\"aped"), Some(Json::Str(Cow::Owned(s))) if s == "a\tb"));
    }
}
