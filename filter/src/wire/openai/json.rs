//! Path-aware reads over `serde_json::Value`: every failure names the field at fault, so the
//! client sees `messages[2].content` rather than a serde position.

use serde_json::{Map, Value};

use crate::wire::WireError;

pub(super) type R<T> = Result<T, WireError>;

/// `base.name`, or `name` at the root.
pub(super) fn key(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

pub(super) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `field` has the wrong type or value; `what` completes "must be ...".
pub(super) fn must_be(field: &str, what: &str) -> WireError {
    WireError::invalid(field, format!("`{field}` must be {what}"))
}

pub(super) fn required(field: &str) -> WireError {
    WireError::invalid(field, format!("`{field}` is required"))
}

/// Re-labels a reading error as the provider's fault, for reading provider answers.
pub(super) fn upstream(e: WireError) -> WireError {
    match e {
        WireError::Invalid { message, .. } => WireError::upstream(message),
        other => other,
    }
}

/// Parses a body that must be one JSON object.
pub(super) fn parse_object(body: &[u8]) -> R<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(WireError::invalid("", "the body must be a JSON object")),
        Err(e) => Err(WireError::invalid("", format!("invalid JSON body: {e}"))),
    }
}

pub(super) fn as_obj<'a>(v: &'a Value, path: &str) -> R<Obj<'a>> {
    match v {
        Value::Object(map) => Ok(Obj {
            map,
            path: path.to_string(),
        }),
        _ => Err(must_be(path, "an object")),
    }
}

pub(super) fn as_str<'a>(v: &'a Value, path: &str) -> R<&'a str> {
    v.as_str().ok_or_else(|| must_be(path, "a string"))
}

pub(super) fn as_u32(v: &Value, path: &str) -> R<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| must_be(path, "a non-negative integer"))
}

/// A JSON object being read, and where it sits in the document.
pub(super) struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

impl<'a> Obj<'a> {
    pub fn root(map: &'a Map<String, Value>) -> Self {
        Obj {
            map,
            path: String::new(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        key(&self.path, name)
    }

    /// The value of `name`, treating `null` as absent.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn str(&self, name: &str) -> R<Option<&'a str>> {
        self.get(name)
            .map(|v| as_str(v, &self.path(name)))
            .transpose()
    }

    pub fn string(&self, name: &str) -> R<Option<String>> {
        Ok(self.str(name)?.map(str::to_string))
    }

    pub fn req_str(&self, name: &str) -> R<&'a str> {
        self.str(name)?.ok_or_else(|| required(&self.path(name)))
    }

    pub fn bool(&self, name: &str) -> R<Option<bool>> {
        self.get(name)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| must_be(&self.path(name), "a boolean"))
            })
            .transpose()
    }

    pub fn f64(&self, name: &str) -> R<Option<f64>> {
        self.get(name)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| must_be(&self.path(name), "a number"))
            })
            .transpose()
    }

    pub fn u32(&self, name: &str) -> R<Option<u32>> {
        self.get(name)
            .map(|v| as_u32(v, &self.path(name)))
            .transpose()
    }

    pub fn u64(&self, name: &str) -> R<Option<u64>> {
        self.get(name)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| must_be(&self.path(name), "a non-negative integer"))
            })
            .transpose()
    }

    pub fn i64(&self, name: &str) -> R<Option<i64>> {
        self.get(name)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| must_be(&self.path(name), "an integer"))
            })
            .transpose()
    }

    pub fn obj(&self, name: &str) -> R<Option<Obj<'a>>> {
        self.get(name)
            .map(|v| as_obj(v, &self.path(name)))
            .transpose()
    }

    pub fn req_obj(&self, name: &str) -> R<Obj<'a>> {
        self.obj(name)?.ok_or_else(|| required(&self.path(name)))
    }

    pub fn arr(&self, name: &str) -> R<Option<&'a [Value]>> {
        self.get(name)
            .map(|v| match v {
                Value::Array(items) => Ok(items.as_slice()),
                _ => Err(must_be(&self.path(name), "an array")),
            })
            .transpose()
    }
}

/// Serialises a value built here; `Value` serialisation cannot fail, so the fallback is moot.
pub(super) fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Sets `name` on an object built here (a no-op on anything else, which never happens).
pub(super) fn set(v: &mut Value, name: &str, x: Value) {
    if let Value::Object(map) = v {
        map.insert(name.to_string(), x);
    }
}
