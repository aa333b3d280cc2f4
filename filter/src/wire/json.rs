//! Path-aware reads over `serde_json::Value` for every codec: each failure names the field at
//! fault in the client's spelling (`messages[2].content`) rather than a serde position.

use serde_json::{Map, Value};

use crate::wire::WireError;

pub(crate) type R<T> = Result<T, WireError>;

/// `base.name`, or `name` at the root.
pub(crate) fn key(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `field` has the wrong type or value; `what` completes "must be ...".
pub(crate) fn must_be(field: &str, what: &str) -> WireError {
    WireError::invalid(field, format!("`{field}` must be {what}"))
}

pub(crate) fn required(field: &str) -> WireError {
    WireError::invalid(field, format!("`{field}` is required"))
}

/// A request field the IR (and so every provider) cannot carry: a 400 naming it.
pub(crate) fn not_supported(field: impl Into<String>) -> WireError {
    let field = field.into();
    let message = format!("`{field}` is not supported by this gateway");
    WireError::invalid(field, message)
}

/// Re-labels a reading error as the provider's fault, for reading provider answers.
pub(crate) fn upstream(e: WireError) -> WireError {
    match e {
        WireError::Invalid { message, .. } => WireError::upstream(message),
        other => other,
    }
}

/// Parses a body that must be one JSON object. `what` names the body in the error ("the body",
/// "the request body"), since provider answers are read with this too.
pub(crate) fn parse_object(body: &[u8], what: &str) -> R<Map<String, Value>> {
    match crate::wire::parse_json::<Value>(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(WireError::invalid(
            "",
            format!("{what} must be a JSON object"),
        )),
    }
}

pub(crate) fn as_obj<'a>(v: &'a Value, path: &str) -> R<Obj<'a>> {
    match v {
        Value::Object(map) => Ok(Obj {
            map,
            path: path.to_string(),
        }),
        _ => Err(must_be(path, "an object")),
    }
}

pub(crate) fn as_str<'a>(v: &'a Value, path: &str) -> R<&'a str> {
    v.as_str().ok_or_else(|| must_be(path, "a string"))
}

pub(crate) fn as_u32(v: &Value, path: &str) -> R<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| must_be(path, "a non-negative integer"))
}

/// An integer, where `3.0` counts: some clients serialise every number as a float.
pub(crate) fn as_whole(v: &Value, path: &str) -> R<i64> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(must_be(path, "an integer")),
    }
}

/// An array of strings.
pub(crate) fn strings(v: &Value, path: &str) -> R<Vec<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| must_be(path, "an array of strings"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, s)| as_str(s, &index(path, i)).map(str::to_string))
        .collect()
}

/// A JSON object being read, and where it sits in the document.
pub(crate) struct Obj<'a> {
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

    /// The value of `name`, treating `null` as absent: clients serialise unset options either way.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn req(&self, name: &str) -> R<&'a Value> {
        self.get(name).ok_or_else(|| required(&self.path(name)))
    }

    /// Rejects the first field not in `allowed`, for strict formats: a typo or an unsupported
    /// feature must not be silently ignored.
    pub fn reject_unknown(&self, allowed: &[&str]) -> R<()> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(name) => {
                let field = self.path(name);
                Err(WireError::invalid(
                    field.clone(),
                    format!("unknown field `{field}`"),
                ))
            }
            None => Ok(()),
        }
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

    /// A JSON integer literal; `3.0` is refused (see [`Obj::whole_u32`] for the lenient read).
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

    /// A JSON integer literal; `3.0` is refused (see [`Obj::whole_i64`] for the lenient read).
    pub fn i64(&self, name: &str) -> R<Option<i64>> {
        self.get(name)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| must_be(&self.path(name), "an integer"))
            })
            .transpose()
    }

    /// Like [`Obj::i64`], but a float with no fraction counts (see [`as_whole`]).
    pub fn whole_i64(&self, name: &str) -> R<Option<i64>> {
        self.get(name)
            .map(|v| as_whole(v, &self.path(name)))
            .transpose()
    }

    /// Like [`Obj::u32`], but a float with no fraction counts (see [`as_whole`]).
    pub fn whole_u32(&self, name: &str) -> R<Option<u32>> {
        let field = self.path(name);
        self.get(name)
            .map(|v| {
                u32::try_from(as_whole(v, &field)?)
                    .map_err(|_| must_be(&field, "a non-negative integer below 2^32"))
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
pub(crate) fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Sets `name` on an object built here (a no-op on anything else, which never happens), since
/// serde_json's `IndexMut` could panic.
pub(crate) fn set(v: &mut Value, name: &str, x: Value) {
    if let Value::Object(map) = v {
        map.insert(name.to_string(), x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walkers_name_the_field_at_fault() {
        let map = serde_json::json!({"a": 1.5, "b": "x", "c": null, "d": -1})
            .as_object()
            .cloned()
            .unwrap();
        let p = Obj {
            map: &map,
            path: "p".into(),
        };
        let root = Obj::root(&map);
        assert_eq!(p.whole_u32("c").unwrap(), None);
        assert!(
            matches!(p.whole_u32("a"), Err(WireError::Invalid { field, .. }) if field == "p.a")
        );
        assert!(
            matches!(root.whole_u32("d"), Err(WireError::Invalid { field, .. }) if field == "d")
        );
        assert!(matches!(root.req_str("z"), Err(WireError::Invalid { field, .. }) if field == "z"));
        let q = Obj {
            map: &map,
            path: "q".into(),
        };
        assert!(
            matches!(q.reject_unknown(&["a", "b", "c"]), Err(WireError::Invalid { field, .. }) if field == "q.d")
        );
    }
}
