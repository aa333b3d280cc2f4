//! JSON for every codec. Reading: path-aware reads over a borrowed tree of the body ([`Json`]),
//! where each failure names the field at fault in the client's spelling (`messages[2].content`)
//! rather than a serde position; the path is a chain of borrowed steps ([`Path`]) that becomes
//! text only when an error is returned. Writing: [`JsonWriter`].

mod tree;
mod write;

use std::fmt;

pub(crate) use tree::{Json, Members};
pub(crate) use write::JsonWriter;

use serde_json::Value;

use crate::wire::WireError;

pub(crate) type R<T> = Result<T, WireError>;

/// Where a value sits in a document: `messages[2].content`, built only when printed.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl<'p> Path<'p> {
    /// A top-level field.
    pub fn field(name: &'p str) -> Path<'p> {
        Path::Key(&Path::Root, name)
    }

    /// `self.name`, or `name` at the root.
    pub fn key<'q>(&'q self, name: &'q str) -> Path<'q> {
        Path::Key(self, name)
    }

    /// `self[i]`.
    pub fn index(&self, i: usize) -> Path<'_> {
        Path::Index(self, i)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, name) => f.write_str(name),
            Path::Key(base, name) => write!(f, "{base}.{name}"),
            Path::Index(base, i) => write!(f, "{base}[{i}]"),
        }
    }
}

impl From<Path<'_>> for String {
    fn from(p: Path<'_>) -> String {
        p.to_string()
    }
}

/// `field` has the wrong type or value; `what` completes "must be ...".
pub(crate) fn must_be(field: impl fmt::Display, what: &str) -> WireError {
    let field = field.to_string();
    let message = format!("`{field}` must be {what}");
    WireError::invalid(field, message)
}

pub(crate) fn required(field: impl fmt::Display) -> WireError {
    let field = field.to_string();
    let message = format!("`{field}` is required");
    WireError::invalid(field, message)
}

/// A request field the IR (and so every provider) cannot carry: a 400 naming it.
pub(crate) fn not_supported(field: impl fmt::Display) -> WireError {
    let field = field.to_string();
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

/// Parses a body into the tree. UTF-8 is checked once for the whole body rather than string by
/// string; a body that fails the check is parsed as bytes, which gives serde's exact error.
pub(crate) fn parse(body: &[u8]) -> R<Json<'_>> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(crate::wire::invalid_json)
}

/// Parses a body that must be one JSON object. `what` names the body in the error ("the body",
/// "the request body"), since provider answers are read with this too.
pub(crate) fn parse_object<'a>(body: &'a [u8], what: &str) -> R<Members<'a>> {
    match parse(body)? {
        Json::Object(map) => Ok(map),
        _ => Err(WireError::invalid(
            "",
            format!("{what} must be a JSON object"),
        )),
    }
}

pub(crate) fn as_obj<'a, 'p>(v: &'a Json<'a>, path: Path<'p>) -> R<Obj<'a, 'p>> {
    match v {
        Json::Object(map) => Ok(Obj { map, path }),
        _ => Err(must_be(path, "an object")),
    }
}

pub(crate) fn as_str<'a>(v: &'a Json<'a>, path: Path<'_>) -> R<&'a str> {
    v.as_str().ok_or_else(|| must_be(path, "a string"))
}

pub(crate) fn as_u32(v: &Json<'_>, path: Path<'_>) -> R<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| must_be(path, "a non-negative integer"))
}

/// An integer, where `3.0` counts: some clients serialise every number as a float.
pub(crate) fn as_whole(v: &Json<'_>, path: Path<'_>) -> R<i64> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(must_be(path, "an integer")),
    }
}

/// An array of strings.
pub(crate) fn strings(v: &Json<'_>, path: Path<'_>) -> R<Vec<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| must_be(path, "an array of strings"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, s)| as_str(s, path.index(i)).map(str::to_string))
        .collect()
}

/// A JSON object being read, and where it sits in the document.
pub(crate) struct Obj<'a, 'p> {
    pub map: &'a Members<'a>,
    pub path: Path<'p>,
}

impl<'a> Obj<'a, 'static> {
    pub fn root(map: &'a Members<'a>) -> Self {
        Obj {
            map,
            path: Path::Root,
        }
    }
}

impl<'a> Obj<'a, '_> {
    pub fn path<'s>(&'s self, name: &'s str) -> Path<'s> {
        self.path.key(name)
    }

    /// The value of `name`, treating `null` as absent: clients serialise unset options either way.
    pub fn get(&self, name: &str) -> Option<&'a Json<'a>> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn req(&self, name: &str) -> R<&'a Json<'a>> {
        self.get(name).ok_or_else(|| required(self.path(name)))
    }

    /// Rejects the first field not in `allowed`, for strict formats: a typo or an unsupported
    /// feature must not be silently ignored.
    pub fn reject_unknown(&self, allowed: &[&str]) -> R<()> {
        match self.map.keys().find(|k| !allowed.contains(k)) {
            Some(name) => {
                let field = self.path(name).to_string();
                let message = format!("unknown field `{field}`");
                Err(WireError::invalid(field, message))
            }
            None => Ok(()),
        }
    }

    pub fn str(&self, name: &str) -> R<Option<&'a str>> {
        self.get(name)
            .map(|v| as_str(v, self.path(name)))
            .transpose()
    }

    pub fn string(&self, name: &str) -> R<Option<String>> {
        Ok(self.str(name)?.map(str::to_string))
    }

    pub fn req_str(&self, name: &str) -> R<&'a str> {
        self.str(name)?.ok_or_else(|| required(self.path(name)))
    }

    pub fn bool(&self, name: &str) -> R<Option<bool>> {
        self.get(name)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| must_be(self.path(name), "a boolean"))
            })
            .transpose()
    }

    pub fn f64(&self, name: &str) -> R<Option<f64>> {
        self.get(name)
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| must_be(self.path(name), "a number"))
            })
            .transpose()
    }

    /// A JSON integer literal; `3.0` is refused (see [`Obj::whole_u32`] for the lenient read).
    pub fn u32(&self, name: &str) -> R<Option<u32>> {
        self.get(name)
            .map(|v| as_u32(v, self.path(name)))
            .transpose()
    }

    pub fn u64(&self, name: &str) -> R<Option<u64>> {
        self.get(name)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| must_be(self.path(name), "a non-negative integer"))
            })
            .transpose()
    }

    /// A JSON integer literal; `3.0` is refused (see [`Obj::whole_i64`] for the lenient read).
    pub fn i64(&self, name: &str) -> R<Option<i64>> {
        self.get(name)
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| must_be(self.path(name), "an integer"))
            })
            .transpose()
    }

    /// Like [`Obj::i64`], but a float with no fraction counts (see [`as_whole`]).
    pub fn whole_i64(&self, name: &str) -> R<Option<i64>> {
        self.get(name)
            .map(|v| as_whole(v, self.path(name)))
            .transpose()
    }

    /// Like [`Obj::u32`], but a float with no fraction counts (see [`as_whole`]).
    pub fn whole_u32(&self, name: &str) -> R<Option<u32>> {
        let field = self.path(name);
        self.get(name)
            .map(|v| {
                u32::try_from(as_whole(v, field)?)
                    .map_err(|_| must_be(field, "a non-negative integer below 2^32"))
            })
            .transpose()
    }

    pub fn obj<'s>(&'s self, name: &'s str) -> R<Option<Obj<'a, 's>>> {
        self.get(name)
            .map(|v| as_obj(v, self.path(name)))
            .transpose()
    }

    pub fn req_obj<'s>(&'s self, name: &'s str) -> R<Obj<'a, 's>> {
        self.obj(name)?.ok_or_else(|| required(self.path(name)))
    }

    pub fn arr(&self, name: &str) -> R<Option<&'a [Json<'a>]>> {
        self.get(name)
            .map(|v| {
                v.as_array()
                    .ok_or_else(|| must_be(self.path(name), "an array"))
            })
            .transpose()
    }
}

/// A function tool's `parameters`: a JSON Schema object, or (OpenAI's rule, where omitting them
/// defines a function that takes none) the empty parameter list.
pub(crate) fn parameters_schema(o: &Obj<'_, '_>) -> R<Value> {
    match o.get("parameters") {
        Some(p @ Json::Object(_)) => Ok(p.to_value()),
        Some(_) => Err(must_be(o.path("parameters"), "a JSON Schema object")),
        None => Ok(serde_json::json!({"type": "object", "properties": {}})),
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
        let body = br#"{"a": 1.5, "b": "x", "c": null, "d": -1}"#;
        let map = parse_object(body, "the body").unwrap();
        let p = Obj {
            map: &map,
            path: Path::field("p"),
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
            path: Path::field("q"),
        };
        assert!(
            matches!(q.reject_unknown(&["a", "b", "c"]), Err(WireError::Invalid { field, .. }) if field == "q.d")
        );
    }

    #[test]
    fn paths_print_in_the_clients_spelling() {
        let messages = Path::field("messages");
        let m2 = messages.index(2);
        let content = m2.key("content");
        assert_eq!(
            content.index(0).key("type").to_string(),
            "messages[2].content[0].type"
        );
        assert_eq!(Path::Root.index(1).to_string(), "[1]");
        assert_eq!(Path::Root.to_string(), "");
        assert_eq!(
            must_be(content, "a string"),
            WireError::invalid(
                "messages[2].content",
                "`messages[2].content` must be a string"
            )
        );
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused_in_the_callers_words() {
        assert_eq!(
            parse_object(b"[1]", "the body").err(),
            Some(WireError::invalid("", "the body must be a JSON object"))
        );
        let Err(WireError::Invalid { field, message }) = parse_object(b"{nope", "the body") else {
            panic!("accepted broken JSON")
        };
        assert!(field.is_empty() && message.starts_with("invalid JSON body: "));
        let bad = b"{\"a\": \"\xff\"}";
        let Err(WireError::Invalid { message, .. }) = parse(bad) else {
            panic!("accepted invalid UTF-8")
        };
        let serde = serde_json::from_slice::<Value>(bad).unwrap_err();
        assert_eq!(message, format!("invalid JSON body: {serde}"));
    }
}
