//! Inline media bytes: the base64 codec the formats share, the magic-byte sniffing that names an
//! image's type when a format sends bare base64 without one, and data URLs.

use crate::ir::Media;
use crate::wire::json::JsonWriter;

/// [`Media::to_url`] written straight into a body: base64 payloads can be megabytes, and the
/// URL would be one more copy of them.
pub(crate) fn write_url(w: &mut JsonWriter, media: &Media) {
    match media {
        Media::Base64 { media_type, data } => {
            w.str_concat(&["data:", media_type, ";base64,", data])
        }
        Media::Url { url } => w.str(url),
    };
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
}
