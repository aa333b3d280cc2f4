//! Encoders write JSON straight into the body with [`JsonWriter`]: no `Value` tree to build, sort
//! and free, and strings are scanned for escapes a word at a time, since prompt text is most of
//! every body. Escapes and number formats are serde_json's, so output is what serde would write.

use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::Value;

use super::tree::Json;

/// A JSON text being written. Callers emit tokens in document order; commas come by themselves:
/// every value or key after the first in its container gets one.
pub(crate) struct JsonWriter {
    buf: Vec<u8>,
    /// The next value or key is not the first in its container.
    comma: bool,
}

impl JsonWriter {
    pub fn with_capacity(n: usize) -> Self {
        JsonWriter {
            buf: Vec::with_capacity(n),
            comma: false,
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn into_string(self) -> String {
        String::from_utf8(self.buf).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The text so far. Only `str`s and ASCII are ever written, so it is always UTF-8.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf).unwrap_or_default()
    }

    /// Starts over, keeping the allocation (for encoders that write many small documents).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.comma = false;
    }

    fn sep(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    /// A value token: separated from the previous one, and followed by a comma if more come.
    fn token(&mut self, bytes: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(bytes);
        self.comma = true;
        self
    }

    pub fn begin_object(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'{');
        self.comma = false;
        self
    }

    pub fn end_object(&mut self) -> &mut Self {
        self.buf.push(b'}');
        self.comma = true;
        self
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'[');
        self.comma = false;
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.buf.push(b']');
        self.comma = true;
        self
    }

    /// An object key; its value must follow.
    pub fn key(&mut self, name: &str) -> &mut Self {
        self.sep();
        push_escaped(&mut self.buf, name);
        self.buf.push(b':');
        self.comma = false;
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        push_escaped(&mut self.buf, s);
        self.comma = true;
        self
    }

    /// One string made of `parts`, without concatenating them first.
    pub fn str_concat(&mut self, parts: &[&str]) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        for part in parts {
            push_escaped_contents(&mut self.buf, part);
        }
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    /// Object members rendered earlier (`"a":1,"b":2`, as [`JsonWriter::members_of`] returns
    /// them), spliced into the object being written: for parts of a document that repeat
    /// unchanged, such as a stream's echo of its request.
    pub fn members(&mut self, rendered: &str) -> &mut Self {
        if !rendered.is_empty() {
            self.sep();
            self.buf.extend_from_slice(rendered.as_bytes());
            self.comma = true;
        }
        self
    }

    /// The members of the one object this writer holds, without its braces.
    pub fn members_of(&self) -> &str {
        let text = self.as_str();
        text.strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or_default()
    }

    /// A string, or `null` for `None`.
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    pub fn null(&mut self) -> &mut Self {
        self.token(b"null")
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.token(if b { b"true" } else { b"false" })
    }

    // Writing into a `Vec` cannot fail, so the formatters' `io::Result`s are always `Ok`.

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.sep();
        let _ = CompactFormatter.write_u64(&mut self.buf, n);
        self.comma = true;
        self
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        self.sep();
        let _ = CompactFormatter.write_i64(&mut self.buf, n);
        self.comma = true;
        self
    }

    /// A float as serde_json writes one: shortest round-trip form, `null` if not finite.
    pub fn f64(&mut self, x: f64) -> &mut Self {
        if !x.is_finite() {
            return self.null();
        }
        self.sep();
        let _ = CompactFormatter.write_f64(&mut self.buf, x);
        self.comma = true;
        self
    }

    fn number(&mut self, n: &serde_json::Number) -> &mut Self {
        match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => self.u64(u),
            (None, Some(i), _) => self.i64(i),
            (None, None, Some(f)) => self.f64(f),
            (None, None, None) => self.null(),
        }
    }

    /// A `serde_json::Value` (schemas, `extra` fields), keys in the map's own (sorted) order.
    pub fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Null => self.null(),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => self.number(n),
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.begin_array();
                for item in items {
                    self.value(item);
                }
                self.end_array()
            }
            Value::Object(map) => {
                self.begin_object();
                for (k, item) in map {
                    self.key(k).value(item);
                }
                self.end_object()
            }
        }
    }

    /// A parsed request subtree, as [`JsonWriter::value`] would write its `Value`.
    pub fn json(&mut self, v: &Json<'_>) -> &mut Self {
        match v {
            Json::Null => self.null(),
            Json::Bool(b) => self.bool(*b),
            Json::Number(n) => self.number(n),
            Json::Str(s) => self.str(s),
            Json::Array(items) => {
                self.begin_array();
                for item in items {
                    self.json(item);
                }
                self.end_array()
            }
            Json::Object(members) => {
                self.begin_object();
                for (k, item) in members.iter() {
                    self.key(k).json(item);
                }
                self.end_object()
            }
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes in `w` is a control character, `"` or `\`. A byte below `n` is
/// found by the borrow it causes when `n` is subtracted from every byte at once; bytes of 0x80
/// and up (UTF-8) never count.
fn needs_escape(w: u64) -> bool {
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    (below(w, 0x20) | below(w ^ (ONES * 0x22), 1) | below(w ^ (ONES * 0x5C), 1)) != 0
}

/// The letter after `\` that escapes `b`, `u` for the `\u00xx` form; `None` if `b` stands as is.
fn escape_of(b: u8) -> Option<u8> {
    Some(match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0A => b'n',
        0x0C => b'f',
        0x0D => b'r',
        0x00..=0x1F => b'u',
        _ => return None,
    })
}

/// How many leading bytes need no escape: whole words at a time, then byte by byte.
fn clean_prefix(bytes: &[u8]) -> usize {
    let mut n = 0;
    for word in bytes.chunks_exact(8) {
        // A failed conversion (never: the chunks are exact) reads as a word to escape.
        if needs_escape(u64::from_le_bytes(
            <[u8; 8]>::try_from(word).unwrap_or([0; 8]),
        )) {
            break;
        }
        n += 8;
    }
    let tail = bytes.get(n..).unwrap_or_default();
    n + tail.iter().take_while(|&&b| escape_of(b).is_none()).count()
}

/// `s` as a JSON string, escaped exactly as serde_json does (short forms where JSON has them,
/// `\u00xx` for other control characters, nothing else).
fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    push_escaped_contents(buf, s);
    buf.push(b'"');
}

fn push_escaped_contents(buf: &mut Vec<u8>, s: &str) {
    let mut rest = s.as_bytes();
    loop {
        // (The split cannot fail; if it did, the bytes would still go out one by one, escaped.)
        let (run, tail) = rest
            .split_at_checked(clean_prefix(rest))
            .unwrap_or((&[], rest));
        buf.extend_from_slice(run);
        let Some((&b, tail)) = tail.split_first() else {
            return;
        };
        match escape_of(b) {
            Some(b'u') => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hex = |n: u8| HEX.get(usize::from(n & 0xF)).copied().unwrap_or(b'0');
                buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b)]);
            }
            Some(letter) => buf.extend_from_slice(&[b'\\', letter]),
            None => buf.push(b),
        }
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_escape_exactly_as_serde_json_does() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é🦀\u{2028}");
        let mut cases = vec![all.clone(), String::new(), "plain text, long enough".into()];
        // Every escape at every offset of a word, and across word boundaries.
        for offset in 0..17 {
            for c in ['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é'] {
                let mut s = "x".repeat(offset);
                s.push(c);
                s.push_str("tail of the string");
                cases.push(s);
            }
        }
        for s in cases {
            let mut w = JsonWriter::with_capacity(0);
            w.str(&s);
            assert_eq!(w.as_str(), serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn values_and_numbers_match_serde_json() {
        let v = json!({
            "b": [1, -2, 0.1, 1e21, 2.0, u64::MAX, i64::MIN, f32::MAX as f64, null, true, false],
            "a": {"": "", "k\"": {"z": []}},
        });
        let mut w = JsonWriter::with_capacity(0);
        w.value(&v);
        assert_eq!(w.as_str(), v.to_string());
        let mut w = JsonWriter::with_capacity(0);
        w.begin_array()
            .f64(f64::NAN)
            .f64(1.5)
            .u64(3)
            .i64(-4)
            .opt_str(None);
        w.begin_object().key("k").str("v").end_object().end_array();
        assert_eq!(w.as_str(), r#"[null,1.5,3,-4,null,{"k":"v"}]"#);
        w.clear();
        w.begin_array().str_concat(&["a\"", "", "b"]).end_array();
        assert_eq!(w.as_str(), r#"["a\"b"]"#);
        w.clear();
        w.begin_object()
            .key("a")
            .u64(1)
            .key("b")
            .null()
            .end_object();
        let members = w.members_of().to_string();
        assert_eq!(members, r#""a":1,"b":null"#);
        w.clear();
        w.begin_object()
            .key("x")
            .bool(true)
            .members(&members)
            .members("");
        w.key("y").u64(2).end_object();
        assert_eq!(w.as_str(), r#"{"x":true,"a":1,"b":null,"y":2}"#);
        w.clear();
        w.begin_object().members(&members).end_object();
        assert_eq!(w.as_str(), r#"{"a":1,"b":null}"#);
        w.clear();
        w.begin_object().end_object();
        assert_eq!(w.into_string(), "{}");
    }
}
