//! SHA-256 digests of client keys and the constant-time comparison used to look them up, so
//! neither the config nor the response timing gives a key away.

use sha2::{Digest, Sha256};

pub(crate) type KeyDigest = [u8; 32];

pub(crate) fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// Lower-case hex SHA-256 of `s`: the value to put in `auth.keys[].sha256` for key `s`.
/// (Same as `printf %s "$KEY" | sha256sum`.)
pub fn sha256_hex(s: &str) -> String {
    let mut out = String::with_capacity(64);
    for b in digest(s) {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0x0f));
    }
    out
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

/// Parses 64 hex digits (either case) into a digest.
pub(crate) fn parse_hex_digest(s: &str) -> Option<KeyDigest> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = char::from(*pair.first()?).to_digit(16)?;
        let lo = char::from(*pair.get(1)?).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Whether `a == b`, taking the same time wherever they differ: every byte is compared, with no
/// early exit. Only the lengths (public: every digest is 32 bytes) may short-cut.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keeps the optimiser from turning the fold back into an early-exit comparison.
    std::hint::black_box(diff) == 0
}
