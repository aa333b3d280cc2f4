//! Names the configuration field a serde_json error is about (`providers.p.keys[0].key`) from the
//! error's line and column alone, by re-reading the JSON up to that point with a small scanner.
//!
//! The scanner keeps a stack of object-key / array-index frames and skips strings (escapes
//! included), numbers and literals. It never panics, reads each byte at most once, and holds at
//! most [`MAX_DEPTH`] frames. The notation is the one users saw before: keys joined by `.`,
//! indexes as `[i]`, `?` for a key that could not be read, the empty string for the top level.
//!
//! Where serde_json puts an error decides which path is right:
//! - syntax and end-of-input errors: at (or just past) the offending byte, which the scanner
//!   stops on. An error between values belongs to the container (a key was expected: `.?`),
//!   one inside a value to that value.
//! - unknown field (and duplicate field): just after the key, so the path ends with that key.
//! - invalid type or value of a scalar: just after the value; of an object or array given where
//!   something else was expected: just before its `{` or `[`.
//! - missing field (and invalid length): just after the `}` (`]`) of the incomplete container.
//! - custom errors (`deserialize_with`, `try_from`, untagged enums) carry no position of their
//!   own: serde_json gives them that of the end of the enclosing object or array (after its
//!   `}` or `]`, or at the `,` after the failing value), so the path names that container's last
//!   member, or the member before the `,`. One case is ambiguous: an object member whose value
//!   closes right before a `,`. It failed as a whole (an untagged enum: weir's `Secret`) or its
//!   own last member did; the scanner names the member, never reaching below it.
//! - an enum written `{"variant": ...}` fails where a struct would (`{}`, an unknown variant,
//!   a malformed key): the first two name the enum, as serde_path_to_error did; a malformed key
//!   is named `enum.?` (serde_path_to_error said `enum`).

use serde_json::error::Category;

/// More nesting than serde_json accepts (128): deeper input has already failed there.
const MAX_DEPTH: usize = 160;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    /// An object member whose key was not (completely) read.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// The document itself: one value, and no segment of its own.
    Root,
    Object,
    Array,
}

/// Where the scanner is inside one container.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Just after `{` or `[` (the root: before its value).
    Start,
    /// Just after `,`.
    Comma,
    /// Inside an object key's string.
    Key,
    /// After an object key, before its `:`.
    KeyDone,
    /// After `:`, before the value.
    Colon,
    /// Inside a member's value (a scalar, or a nested container still open).
    Value,
    /// After a complete member value.
    Done,
}

struct Frame {
    kind: Kind,
    phase: Phase,
    /// Object: the last key read completely.
    key: Option<String>,
    /// Array: how many elements have begun (the current one is `count - 1`).
    count: usize,
}

impl Frame {
    fn new(kind: Kind) -> Self {
        Frame {
            kind,
            phase: Phase::Start,
            key: None,
            count: 0,
        }
    }

    /// The member being read, or last read.
    fn member(&self) -> Option<Seg> {
        match self.kind {
            Kind::Root => None,
            Kind::Object => self.key.clone().map(Seg::Key),
            Kind::Array => self.count.checked_sub(1).map(Seg::Index),
        }
    }
}

/// JSON number grammar, one state per position that needs a different next byte.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    Exp,
    ExpSign,
    ExpDigits,
}

impl Num {
    /// Whether the number may end here.
    fn complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::ExpDigits)
    }

    /// The next state, `Ok(None)` if `b` ends a complete number, `Err(())` if `b` is invalid.
    fn next(self, b: u8) -> Result<Option<Num>, ()> {
        let digit = b.is_ascii_digit();
        let exp = b == b'e' || b == b'E';
        Ok(Some(match self {
            Num::Minus if b == b'0' => Num::Zero,
            Num::Minus if digit => Num::Int,
            Num::Zero | Num::Int | Num::Frac if exp => Num::Exp,
            Num::Zero | Num::Int if b == b'.' => Num::Dot,
            Num::Int if digit => Num::Int,
            Num::Dot | Num::Frac if digit => Num::Frac,
            Num::Exp if b == b'+' || b == b'-' => Num::ExpSign,
            Num::Exp | Num::ExpSign | Num::ExpDigits if digit => Num::ExpDigits,
            // A leading zero takes no more digits (serde_json refuses `01`).
            Num::Zero if digit => return Err(()),
            s if s.complete() => return Ok(None),
            _ => return Err(()),
        }))
    }
}

/// Where the scanner is inside a string: an escape's bytes must be read as serde_json reads
/// them, since it reads the four hex digits of `\u` (or the `\u` a high surrogate needs)
/// without looking for the closing quote first.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Str {
    Plain,
    /// After `\`.
    Escape,
    /// After `\u` and this many hex digits of a unit (`low`: the second of a surrogate pair).
    Hex {
        digits: u8,
        unit: u16,
        low: bool,
    },
    /// After a high surrogate: `\` must follow.
    PairBackslash,
    /// After a high surrogate and `\`: `u` must follow.
    PairU,
}

impl Str {
    /// The next state, or None if `b` cannot come here.
    fn next(self, b: u8) -> Option<Str> {
        Some(match self {
            Str::Plain if b == b'\\' => Str::Escape,
            Str::Plain => Str::Plain,
            Str::Escape if b == b'u' => Str::Hex {
                digits: 0,
                unit: 0,
                low: false,
            },
            Str::Escape if b"\"\\/bfnrt".contains(&b) => Str::Plain,
            Str::Escape => return None,
            Str::Hex { digits, unit, low } => {
                let unit = unit << 4 | u16::from(char::from(b).to_digit(16)? as u8);
                match (digits, low) {
                    (0..=2, _) => Str::Hex {
                        digits: digits + 1,
                        unit,
                        low,
                    },
                    (_, false) if (0xD800..0xDC00).contains(&unit) => Str::PairBackslash,
                    _ => Str::Plain,
                }
            }
            Str::PairBackslash if b == b'\\' => Str::PairU,
            Str::PairU if b == b'u' => Str::Hex {
                digits: 0,
                unit: 0,
                low: true,
            },
            Str::PairBackslash | Str::PairU => return None,
        })
    }
}

/// The token being read, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    None,
    Str(Str),
    Num(Num),
    /// The rest of `true`, `false` or `null`.
    Lit(&'static [u8]),
}

struct Scanner {
    frames: Vec<Frame>,
    token: Token,
    /// The raw bytes (escapes undone at the closing quote) of the key being read.
    key: Vec<u8>,
    /// Set when a `}` or `]` closes a container: the offset just past it and that container's
    /// last member.
    closed: Option<(usize, Option<Seg>)>,
    /// The byte the scanner refused (the input is not JSON there), if it stopped on one.
    refused: Option<u8>,
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            frames: vec![Frame::new(Kind::Root)],
            token: Token::None,
            key: Vec::new(),
            closed: None,
            refused: None,
        }
    }

    /// Reads `json[..end]`, stopping early at the first byte that is not JSON.
    fn run(&mut self, json: &[u8], end: usize) {
        for (at, &b) in json.iter().enumerate().take(end) {
            if !self.step(at, b) {
                self.refused = Some(b);
                return;
            }
        }
        // A number is only known to end at the byte after it: at the end of the input it has.
        if let Token::Num(n) = self.token {
            if end >= json.len() && n.complete() {
                self.token = Token::None;
                self.value_done();
            }
        }
    }

    fn top(&mut self) -> Option<&mut Frame> {
        self.frames.last_mut()
    }

    /// Consumes one byte; false if it cannot come here in JSON.
    fn step(&mut self, at: usize, b: u8) -> bool {
        match self.token {
            Token::None => {}
            Token::Str(state) => {
                let in_key = self.top().is_some_and(|f| f.phase == Phase::Key);
                if state == Str::Plain && b == b'"' {
                    self.token = Token::None;
                    self.string_done(in_key);
                    return true;
                }
                let Some(state) = state.next(b) else {
                    return false;
                };
                self.token = Token::Str(state);
                if in_key {
                    self.key.push(b);
                }
                return true;
            }
            Token::Num(n) => match n.next(b) {
                Ok(Some(n)) => {
                    self.token = Token::Num(n);
                    return true;
                }
                Err(()) => return false,
                // `b` ends the number and is read as what follows it.
                Ok(None) => {
                    self.token = Token::None;
                    self.value_done();
                }
            },
            Token::Lit(rest) => {
                return match rest.split_first() {
                    Some((&want, rest)) if want == b => {
                        self.token = Token::Lit(rest);
                        if rest.is_empty() {
                            self.token = Token::None;
                            self.value_done();
                        }
                        true
                    }
                    _ => false,
                };
            }
        }
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            return true;
        }
        let Some(top) = self.frames.last_mut() else {
            return false;
        };
        match (top.kind, top.phase, b) {
            (Kind::Object, Phase::Start | Phase::Done, b'}')
            | (Kind::Array, Phase::Start | Phase::Done, b']') => {
                self.close(at);
                true
            }
            (Kind::Object | Kind::Array, Phase::Done, b',') => {
                top.phase = Phase::Comma;
                true
            }
            (Kind::Object, Phase::Start | Phase::Comma, b'"') => {
                top.phase = Phase::Key;
                self.key.clear();
                self.token = Token::Str(Str::Plain);
                true
            }
            (Kind::Object, Phase::KeyDone, b':') => {
                top.phase = Phase::Colon;
                true
            }
            (Kind::Root, Phase::Start, _)
            | (Kind::Object, Phase::Colon, _)
            | (Kind::Array, Phase::Start | Phase::Comma, _) => self.begin_value(b),
            _ => false,
        }
    }

    /// The first byte of a value in the top container.
    fn begin_value(&mut self, b: u8) -> bool {
        let token = match b {
            b'"' => Token::Str(Str::Plain),
            b'-' => Token::Num(Num::Minus),
            b'0' => Token::Num(Num::Zero),
            b'1'..=b'9' => Token::Num(Num::Int),
            b't' => Token::Lit(b"rue"),
            b'f' => Token::Lit(b"alse"),
            b'n' => Token::Lit(b"ull"),
            b'{' | b'[' => Token::None,
            _ => return false,
        };
        if token == Token::None && self.frames.len() > MAX_DEPTH {
            return false;
        }
        let Some(top) = self.top() else {
            return false;
        };
        top.phase = Phase::Value;
        if top.kind == Kind::Array {
            top.count = top.count.saturating_add(1);
        }
        self.token = token;
        match b {
            b'{' => self.frames.push(Frame::new(Kind::Object)),
            b'[' => self.frames.push(Frame::new(Kind::Array)),
            _ => {}
        }
        true
    }

    fn string_done(&mut self, key: bool) {
        if key {
            let key = unescape(&self.key);
            if let Some(top) = self.top() {
                top.key = Some(key);
                top.phase = Phase::KeyDone;
            }
        } else {
            self.value_done();
        }
    }

    fn value_done(&mut self) {
        if let Some(top) = self.top() {
            top.phase = Phase::Done;
        }
    }

    /// `}` or `]` at `at` closes the top container, a value of the one below it.
    fn close(&mut self, at: usize) {
        if let Some(frame) = self.frames.pop() {
            self.closed = Some((at.saturating_add(1), frame.member()));
        }
        self.value_done();
    }
}

/// The text of a key from its raw bytes, escapes undone as serde_json undid them (its string
/// reader is in the binary anyway). serde_json read past this key, so it did parse.
fn unescape(raw: &[u8]) -> String {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned())
}

/// The byte offset serde_json's 1-based line and byte column stand for: the number of bytes it
/// had read. None for an error without a position.
fn offset(json: &[u8], line: usize, column: usize) -> Option<usize> {
    let start = match line {
        0 => return None,
        1 => 0,
        _ => json
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .nth(line - 2)
            .map_or(json.len(), |(i, _)| i + 1),
    };
    Some(start.saturating_add(column).min(json.len()))
}

/// The path of the field `err`, returned by a serde_json parse of `json`, is about.
pub(super) fn field(json: &[u8], err: &serde_json::Error) -> String {
    match offset(json, err.line(), err.column()) {
        Some(end) => path_at(json, end, err.classify(), &err.to_string()),
        None => String::new(),
    }
}

/// The path of an error of class `class` saying `message` that serde_json found after reading
/// `json[..end]`.
fn path_at(json: &[u8], end: usize, class: Category, message: &str) -> String {
    let mut scan = Scanner::new();
    scan.run(json, end);
    let data = class == Category::Data;
    let mut path: Vec<Seg> = scan
        .frames
        .iter()
        .take(scan.frames.len().saturating_sub(1))
        .filter_map(Frame::member)
        .collect();
    let Some(top) = scan.frames.last() else {
        return render(&path);
    };
    let member = top.member();
    let just_closed = scan.closed.as_ref().is_some_and(|(at, _)| *at == end);
    let tail: [Option<Seg>; 2] = match (top.kind, top.phase) {
        _ if data && just_closed => {
            // Just past a `}` or `]`: a missing field is the closed container's own fault. Any
            // other error there came without a position, from the container's last member (its
            // deserializer read the closing byte), or, in an object, from the container itself,
            // with the position of the `,` after it: a `,` (or a stray byte) is read as that.
            let own = message.starts_with("missing field") || message.starts_with("invalid length");
            let member_of_object = top.kind == Kind::Object
                && !matches!(
                    json.get(end),
                    None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'}')
                );
            let last = scan
                .closed
                .and_then(|(_, last)| last)
                .filter(|_| !own && !member_of_object);
            [member, last]
        }
        // A closing byte serde_json refused while the scanner took it: `{}` for an enum.
        _ if just_closed && class == Category::Syntax => [member, None],
        (Kind::Root, _) => [None, None],
        (Kind::Array, Phase::Start | Phase::Comma) if data => {
            // Before an element: an object or array given where a scalar was expected, or an
            // error without a position from the element before the `,` (serde_json read past it).
            let container = matches!(json.get(end), Some(b'{' | b'['));
            if container && message.starts_with("invalid type") {
                [Some(Seg::Index(top.count)), None]
            } else {
                [member, None]
            }
        }
        (Kind::Array, Phase::Start | Phase::Comma) => match scan.refused {
            // Not the end of the input nor a `]`: serde_json was reading an element.
            Some(b) if b != b']' => [Some(Seg::Index(top.count)), None],
            _ => [None, None],
        },
        (Kind::Array, Phase::Value) => [member, None],
        (Kind::Array, _) => [if data { member } else { None }, None],
        // An unknown field is named, but an enum written `{"variant": ...}` with an unknown
        // variant is the enum's fault: serde_path_to_error named the enum.
        (Kind::Object, Phase::KeyDone) if data && !message.starts_with("unknown variant") => {
            [member, None]
        }
        (Kind::Object, Phase::KeyDone) => [None, None],
        (Kind::Object, Phase::Colon | Phase::Value) => [member, None],
        (Kind::Object, Phase::Done) if data => [member, None],
        (Kind::Object, _) => [Some(Seg::Unknown), None],
    };
    path.extend(tail.into_iter().flatten());
    render(&path)
}

/// `a.b[0].c`: a `.` before every key but the first segment, none before an index.
fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        let dot = if i == 0 { "" } else { "." };
        match seg {
            Seg::Index(n) => out.push_str(&format!("[{n}]")),
            Seg::Key(k) => out.push_str(&format!("{dot}{k}")),
            Seg::Unknown => out.push_str(&format!("{dot}?")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};
    use std::collections::BTreeMap;

    /// A small type graph with one of each thing serde_json reports differently.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        map: BTreeMap<String, Item>,
        #[serde(default)]
        grid: Vec<Vec<Item>>,
        #[serde(default)]
        n: u32,
        #[serde(default)]
        kind: Option<Kind>,
        #[serde(default, deserialize_with = "even")]
        even: u32,
        #[serde(default)]
        port: Option<Port>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: String,
        #[serde(default)]
        secret: Option<Secret>,
        #[serde(default)]
        tags: Vec<String>,
    }

    /// Like the providers' `Secret`: its errors carry no position.
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Secret {
        Inline(String),
        Env { env: String },
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        A,
    }

    #[derive(Debug, Deserialize)]
    #[serde(try_from = "u32")]
    #[allow(dead_code)]
    struct Port(u16);

    impl TryFrom<u32> for Port {
        type Error = String;
        fn try_from(n: u32) -> Result<Self, String> {
            u16::try_from(n).map(Port).map_err(|_| "not a port".into())
        }
    }

    fn even<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = u32::deserialize(d)?;
        if n % 2 == 0 {
            Ok(n)
        } else {
            Err(D::Error::custom("must be even"))
        }
    }

    /// The path named for `json`, and serde_json's message (to check the error class).
    fn locate(json: &str) -> (String, String) {
        let err = serde_json::from_str::<Doc>(json).unwrap_err();
        (field(json.as_bytes(), &err), err.to_string())
    }

    fn check(cases: &[(&str, &str, &str)]) {
        for (json, path, message) in cases {
            let (got, said) = locate(json);
            assert_eq!(&got, path, "{json}: {said}");
            assert!(said.starts_with(message), "{json}: {said}");
        }
    }

    #[test]
    fn unknown_fields_end_with_the_key() {
        check(&[
            (r#"{"nn": 1}"#, "nn", "unknown field `nn`"),
            (
                r#"{"map": {"p": {"id": "a", "hots": 1}}}"#,
                "map.p.hots",
                "unknown field",
            ),
            (
                r#"{"items": [{"id": "a"}, {"hots" : 1}]}"#,
                "items[1].hots",
                "unknown field",
            ),
            (
                r#"{"map": {"a\"b\u00e9]}": {"x": 1}}}"#,
                "map.a\"bé]}.x",
                "unknown field",
            ),
            (r#"{"kind": {"b": 1}}"#, "kind", "unknown variant `b`"),
            // The duplicated key is named (serde_path_to_error named only its object).
            (r#"{"n": 1, "n": 2}"#, "n", "duplicate field `n`"),
        ]);
    }

    #[test]
    fn wrong_types_and_values_name_the_value() {
        check(&[
            (r#"{"n": "big"}"#, "n", "invalid type: string"),
            (
                r#"{"n": -1, "kind": "a"}"#,
                "n",
                "invalid value: integer `-1`",
            ),
            (r#"{"n": 1.5}"#, "n", "invalid type: floating point"),
            (r#"{"n": {"x": 1}}"#, "n", "invalid type: map"),
            (r#"{"kind": "b"}"#, "kind", "unknown variant `b`"),
            (r#"{"items": {}}"#, "items", "invalid type: map"),
            (
                r#"{"items": [{"id": "a", "tags": ["x", {}]}]}"#,
                "items[0].tags[1]",
                "invalid type: map",
            ),
            (
                r#"{"items": [{"id": "a", "tags": [[], "x"]}]}"#,
                "items[0].tags[0]",
                "invalid type: sequence",
            ),
            (
                r#"{"items": [{"id": "a"}, {"id": null}]}"#,
                "items[1].id",
                "invalid type: null",
            ),
            (
                r#"{"grid": [[{"id": "a"}], [{"id": "b"}, true]]}"#,
                "grid[1][1]",
                "invalid type: boolean",
            ),
            (
                "{\n  \"items\": [\n    {\"id\": \"a\"},\n    {\"id\": 7}\n  ]\n}",
                "items[1].id",
                "invalid type: integer",
            ),
        ]);
    }

    #[test]
    fn missing_fields_name_the_object() {
        check(&[
            (
                r#"{"items": [{"id": "a"}, {}]}"#,
                "items[1]",
                "missing field `id`",
            ),
            (
                r#"{"items": [{"tags": []}, {"id": "b"}]}"#,
                "items[0]",
                "missing field",
            ),
            (
                r#"{"map": {"p": {"tags": ["x"]} }}"#,
                "map.p",
                "missing field",
            ),
            (
                r#"{"grid": [[{"id": "a"}, {"tags": []}], []]}"#,
                "grid[0][1]",
                "missing field",
            ),
        ]);
    }

    #[test]
    fn custom_errors_name_the_member_that_failed() {
        check(&[
            (r#"{"even": 3}"#, "even", "must be even"),
            (r#"{"even": 3, "n": 1}"#, "even", "must be even"),
            (r#"{"port": 70000}"#, "port", "not a port"),
            (r#"{"port": 70000 , "n": 1}"#, "port", "not a port"),
            (
                r#"{"items": [{"id": "a", "secret": 5}]}"#,
                "items[0].secret",
                "data did not match",
            ),
            (
                r#"{"items": [{"id": "a", "secret": 5}, {"id": "b"}]}"#,
                "items[0].secret",
                "data did not match",
            ),
            (
                r#"{"items": [{"id": "a", "secret": {"evn": "X"}, "tags": []}]}"#,
                "items[0].secret",
                "data did not match",
            ),
            (
                r#"{"items": [{"id": "a", "secret": {"evn": "X"}}], "n": 1}"#,
                "items[0].secret",
                "data did not match",
            ),
            (
                r#"{"map": {"p": {"id": "a", "secret": [1]} }}"#,
                "map.p.secret",
                "data did not match",
            ),
        ]);
    }

    #[test]
    fn syntax_errors_name_where_the_parser_stopped() {
        check(&[
            ("", "", "EOF while parsing a value"),
            ("x", "", "expected value"),
            ("{} x", "", "trailing characters"),
            (r#"{"n": "#, "n", "EOF while parsing a value"),
            (r#"{"n": tru}"#, "n", "expected ident"),
            (r#"{"n": 1"#, "?", "EOF while parsing an object"),
            (r#"{"n": 1,}"#, "?", "trailing comma"),
            (r#"{"n": 1 "kind": "a"}"#, "?", "expected `,` or `}`"),
            (r#"{"map": {"p""#, "map", "EOF while parsing an object"),
            (r#"{"map": {"p" 1}}"#, "map", "expected `:`"),
            (
                r#"{"map": {"p": {"id": "a",}}}"#,
                "map.p.?",
                "trailing comma",
            ),
            (r#"{"map": {"p\x": 1}}"#, "map.?", "invalid escape"),
            (r#"{"map": {"p\uzz": 1}}"#, "map.?", "invalid escape"),
            (r#"{"items": ["#, "items", "EOF while parsing a list"),
            (r#"{"items": [{"id": "a"},]}"#, "items", "trailing comma"),
            (
                r#"{"items": [{"id": "a"} {"id": "b"}]}"#,
                "items",
                "expected `,` or `]`",
            ),
            (r#"{"items": [{"id": "a"}, }"#, "items[1]", "expected value"),
            (
                r#"{"items": [{"id": "a"}, {"id": "b"#,
                "items[1].id",
                "EOF while parsing a string",
            ),
            (
                r#"{"grid": [[{"id": "a"}], [{"id": "b", "tags": [1.]}]]}"#,
                "grid[1][0].tags[0]",
                "invalid number",
            ),
            (r#"{"kind": {}}"#, "kind", "expected value"),
        ]);
    }

    /// envoy/demo.yaml's weir configuration: a real config, for the property test.
    fn demo_config() -> Vec<u8> {
        let yaml = include_str!("../../../../envoy/demo.yaml");
        let mut lines = yaml
            .lines()
            .skip_while(|l| !l.contains("value: &weir_config |"));
        let head = lines.next().unwrap();
        let indent = head.len() - head.trim_start().len() + 2;
        let mut json = String::new();
        for line in lines.take_while(|l| l.trim().is_empty() || l.starts_with(&" ".repeat(indent)))
        {
            json.push_str(line.get(indent..).unwrap_or(""));
            json.push('\n');
        }
        json.into_bytes()
    }

    /// Deterministic xorshift, so failures are reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 as usize
        }
    }

    fn parse(json: &[u8]) -> Option<String> {
        let err = serde_json::from_slice::<crate::config::RawConfig>(json).err()?;
        let path = field(json, &err);
        // Bounded: keys come from the input, indexes from its commas.
        assert!(path.len() <= 4 * json.len() + 8, "{path}");
        Some(path)
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations_of_a_real_config() {
        let config = demo_config();
        assert!(config.len() > 5000, "the demo config was not found");
        assert_eq!(parse(&config), None, "the demo config must parse");
        for end in 0..config.len() {
            parse(&config[..end]);
        }
        let bytes = "{}[],:\"\\ 0123456789-.eEtrfalsnu\n\t\u{1}é".as_bytes();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut mutants = Vec::new();
        for _ in 0..2000 {
            let mut m = config.clone();
            for _ in 0..1 + rng.next() % 3 {
                let at = rng.next() % m.len();
                let b = bytes[rng.next() % bytes.len()];
                match rng.next() % 4 {
                    0 => m[at] = b,
                    1 => m[at] = rng.next() as u8,
                    2 => drop(m.remove(at)),
                    _ => m.insert(at, b),
                }
            }
            parse(&m);
            mutants.push(m);
        }
        // Any position, any class and message, even ones serde_json would not give.
        for json in std::iter::once(&config).chain(mutants.iter().take(2)) {
            for end in (0..json.len() + 2).step_by(13) {
                for class in [Category::Data, Category::Syntax, Category::Eof] {
                    for message in ["missing field `x`", "invalid type: map", "custom"] {
                        path_at(json, end, class, message);
                        // The same position as the end of the input.
                        path_at(json.get(..end).unwrap_or(json), end, class, message);
                    }
                }
            }
        }
        for (line, column) in [(0, 0), (1, 0), (1, usize::MAX), (usize::MAX, 3), (400, 1)] {
            offset(&config, line, column);
        }
    }
}
