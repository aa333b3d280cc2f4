//! Helpers shared by the Anthropic and Ollama codecs: strict JSON walking that names fields the
//! client's way, tool-argument conversion, a small base64 codec and RFC 3339 time conversion.
//!
//! They sit here only because the codecs' owner may not add a module to `wire/`; `ollama` reaches
//! them as `super::anthropic::util`. They would belong in a shared `wire::json` module.

use crate::wire::WireError;
use serde_json::{Map, Value};

/// `path.key`, or `key` at the top level.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn at(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A request field the IR (and so every provider) cannot carry: a 400 naming it.
pub(crate) fn not_supported(field: impl Into<String>) -> WireError {
    let field = field.into();
    let message = format!("`{field}` is not supported by this gateway");
    WireError::invalid(field, message)
}

/// The body as a JSON object.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, WireError> {
    match crate::wire::parse_json::<Value>(body)? {
        Value::Object(map) => Ok(map),
        _ => Err(WireError::invalid(
            "",
            "the request body must be a JSON object",
        )),
    }
}

pub(crate) fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, WireError> {
    v.as_object()
        .ok_or_else(|| WireError::invalid(path, format!("`{path}` must be an object")))
}

/// Rejects the first field not in `allowed`: a typo or an unsupported feature must not be
/// silently ignored.
pub(crate) fn reject_unknown(
    map: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), WireError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => {
            let field = join(path, key);
            Err(WireError::invalid(
                field.clone(),
                format!("unknown field `{field}`"),
            ))
        }
        None => Ok(()),
    }
}

/// A field's value; `null` counts as absent, because clients serialise unset options either way.
pub(crate) fn get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

pub(crate) fn required<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a Value, WireError> {
    get(map, key).ok_or_else(|| {
        let field = join(path, key);
        WireError::invalid(field.clone(), format!("`{field}` is required"))
    })
}

pub(crate) fn str_of<'a>(v: &'a Value, path: &str) -> Result<&'a str, WireError> {
    v.as_str()
        .ok_or_else(|| WireError::invalid(path, format!("`{path}` must be a string")))
}

pub(crate) fn req_str<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a str, WireError> {
    str_of(required(map, path, key)?, &join(path, key))
}

pub(crate) fn opt_str<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a str>, WireError> {
    get(map, key)
        .map(|v| str_of(v, &join(path, key)))
        .transpose()
}

pub(crate) fn opt_f64(
    map: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<f64>, WireError> {
    get(map, key)
        .map(|v| {
            v.as_f64().ok_or_else(|| {
                let field = join(path, key);
                WireError::invalid(field.clone(), format!("`{field}` must be a number"))
            })
        })
        .transpose()
}

/// An integer; `3.0` is accepted because some clients serialise every number as a float.
pub(crate) fn int_of(v: &Value, path: &str) -> Result<i64, WireError> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(WireError::invalid(
            path,
            format!("`{path}` must be an integer"),
        )),
    }
}

pub(crate) fn opt_i64(
    map: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<i64>, WireError> {
    get(map, key)
        .map(|v| int_of(v, &join(path, key)))
        .transpose()
}

pub(crate) fn opt_u32(
    map: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<u32>, WireError> {
    let field = join(path, key);
    get(map, key)
        .map(|v| {
            u32::try_from(int_of(v, &field)?).map_err(|_| {
                WireError::invalid(
                    field.clone(),
                    format!("`{field}` must be a non-negative integer below 2^32"),
                )
            })
        })
        .transpose()
}

pub(crate) fn opt_bool(
    map: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<bool>, WireError> {
    get(map, key)
        .map(|v| {
            v.as_bool().ok_or_else(|| {
                let field = join(path, key);
                WireError::invalid(field.clone(), format!("`{field}` must be a boolean"))
            })
        })
        .transpose()
}

pub(crate) fn opt_array<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a Vec<Value>>, WireError> {
    get(map, key)
        .map(|v| {
            v.as_array().ok_or_else(|| {
                let field = join(path, key);
                WireError::invalid(field.clone(), format!("`{field}` must be an array"))
            })
        })
        .transpose()
}

pub(crate) fn opt_object<'a>(
    map: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, WireError> {
    get(map, key)
        .map(|v| as_object(v, &join(path, key)))
        .transpose()
}

/// An array of strings.
pub(crate) fn strings(v: &Value, path: &str) -> Result<Vec<String>, WireError> {
    let items = v
        .as_array()
        .ok_or_else(|| WireError::invalid(path, format!("`{path}` must be an array of strings")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, s)| str_of(s, &at(path, i)).map(str::to_string))
        .collect()
}

/// Tool-call arguments text as the object that object-shaped formats carry. Empty text is a call
/// without arguments; anything but a JSON object is `None`.
pub(crate) fn arguments_object(text: &str) -> Option<Map<String, Value>> {
    if text.trim().is_empty() {
        return Some(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// For client encoders, which cannot fail: arguments that are not an object (a provider's model
/// produced broken JSON) go out as the raw string, so the client fails loudly instead of running
/// the tool with made-up arguments.
pub(crate) fn arguments_value(text: &str) -> Value {
    match arguments_object(text) {
        Some(map) => Value::Object(map),
        None => Value::String(text.to_string()),
    }
}

/// Arguments an object-shaped format sent, as the IR's JSON text.
pub(crate) fn arguments_text(v: &Value) -> String {
    match v {
        Value::Null => "{}".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for k in 0..4usize {
            if k <= chunk.len() {
                let idx = ((n >> (18 - 6 * k)) & 63) as usize;
                out.push(char::from(B64.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes standard or URL-safe base64, padded or not, ignoring whitespace; `None` if invalid.
pub(crate) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in text {
        if c == b'=' {
            break;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        acc = (acc << 6) | base64_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The image media type of base64 data, from its magic bytes. Only the first 16 characters are
/// decoded: images can be megabytes and the signature needs 12 bytes.
pub(crate) fn sniff_image(data: &str) -> Option<&'static str> {
    let head = base64_decode(data.as_bytes().get(..16).unwrap_or(data.as_bytes()))?;
    if head.starts_with(&[0x89, b'P', b'N', b'G']) {
        Some("image/png")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF8") {
        Some("image/gif")
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP".as_slice()) {
        Some("image/webp")
    } else {
        None
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into Unix seconds; `None` if malformed or
/// before 1970.
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = s.get(from..to)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let b = s.as_bytes();
    let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b.get(i) != Some(&c)) {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    let total = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(total).ok()
}

// Howard Hinnant's civil-calendar algorithms (public domain), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        for s in ["", "a", "ab", "abc", "abcd", "héllo wörld 🦀"] {
            let enc = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(enc.as_bytes()).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode(b"aGVs\nbG8").unwrap(), b"hello");
        assert_eq!(base64_decode(b"a*b"), None);
    }

    #[test]
    fn sniffs_the_four_image_types_from_a_prefix() {
        let png = base64_encode(&[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0, 0, 13, 1, 2]);
        assert_eq!(sniff_image(&png), Some("image/png"));
        assert_eq!(
            sniff_image(&base64_encode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16])),
            Some("image/jpeg")
        );
        assert_eq!(
            sniff_image(&base64_encode(b"GIF89a....")),
            Some("image/gif")
        );
        assert_eq!(
            sniff_image(&base64_encode(b"RIFF\x00\x00\x00\x00WEBPVP8 ")),
            Some("image/webp")
        );
        assert_eq!(sniff_image(&base64_encode(b"%PDF-1.7")), None);
        assert_eq!(sniff_image("é!"), None);
    }

    #[test]
    fn rfc3339_formats_and_parses_with_offsets_and_fractions() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_691_164_939), "2023-08-04T16:02:19Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_rfc3339("2023-08-04T16:02:19Z"), Some(1_691_164_939));
        assert_eq!(
            parse_rfc3339("2023-08-04T09:02:19.385406455-07:00"),
            Some(1_691_164_939)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00+00:00"),
            Some(951_782_400)
        );
        for bad in [
            "",
            "2023-08-04",
            "2023-13-04T00:00:00Z",
            "2023-08-04T00:00:00",
            "1969-12-31T23:59:59Z",
            "2023-08-04T00:00:00+0700",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for secs in [0u64, 86_399, 1_700_000_000, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        }
    }

    #[test]
    fn walkers_name_the_field_at_fault() {
        let map = serde_json::json!({"a": 1.5, "b": "x", "c": null, "d": -1})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(opt_u32(&map, "p", "c").unwrap(), None);
        assert!(
            matches!(opt_u32(&map, "p", "a"), Err(WireError::Invalid { field, .. }) if field == "p.a")
        );
        assert!(
            matches!(opt_u32(&map, "", "d"), Err(WireError::Invalid { field, .. }) if field == "d")
        );
        assert!(
            matches!(req_str(&map, "", "z"), Err(WireError::Invalid { field, .. }) if field == "z")
        );
        assert!(
            matches!(reject_unknown(&map, "q", &["a", "b", "c"]), Err(WireError::Invalid { field, .. }) if field == "q.d")
        );
        assert_eq!(arguments_object(" "), Some(Map::new()));
        assert_eq!(arguments_object("[1]"), None);
        assert_eq!(arguments_value("{oops"), Value::String("{oops".into()));
    }
}
