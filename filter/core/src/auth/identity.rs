//! Keys bound to client certificate identities: the URI SANs (SPIFFE IDs) Envoy reports for the
//! verified client certificate in `x-forwarded-client-cert`, and the check that a bound key is
//! used only from one of its identities, so a stolen key is useless from another workload.
//!
//! Trust: weir reads the header as Envoy's connection manager left it. It is only as good as
//! `forward_client_cert_details`: the Envoy that terminates the client's mTLS must use
//! `SANITIZE_SET` (the client's own header replaced by what its certificate says), and an Envoy
//! behind it must keep the header only from that one (`FORWARD_ONLY`, which drops it on any
//! connection without a client certificate, with the listener accepting only that Envoy's
//! certificate). The identity used is the URI entries of the header's last element: the one the
//! nearest such Envoy set. The gateway strips the header before any provider sees it.

use super::unauthorized;
use crate::error::ConfigError;
use crate::ir::ErrorInfo;

/// The header Envoy fills with the client certificate's details.
pub const XFCC_HEADER: &str = "x-forwarded-client-cert";
/// Longest identity configured; a URI SAN is far shorter in practice.
const MAX_IDENTITY_BYTES: usize = 512;
/// Identities one key may be bound to.
const MAX_IDENTITIES: usize = 64;
/// Longest header read: a few elements with hashes and URIs (never `Cert=`, which would be
/// configured deliberately and is not needed here).
const MAX_XFCC_BYTES: usize = 16 * 1024;

/// Validates `auth.keys[].client_identities`: exact URIs (e.g. `spiffe://domain/ns/x/sa/y`).
pub(crate) fn compile(list: &[String], field: &str) -> Result<Vec<String>, ConfigError> {
    if list.len() > MAX_IDENTITIES {
        return Err(ConfigError::new(
            field,
            format!("at most {MAX_IDENTITIES} identities per key"),
        ));
    }
    for (i, id) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let plain = id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'));
        if id.is_empty() || id.len() > MAX_IDENTITY_BYTES || !plain || !id.contains(':') {
            return Err(ConfigError::new(
                at,
                format!(
                    "must be a URI SAN such as spiffe://example.org/ns/apps/sa/billing: 1 to \
                     {MAX_IDENTITY_BYTES} printable ASCII bytes with a scheme, without '\"', ',', \
                     ';' or '\\'"
                ),
            ));
        }
        if let Some(j) = list.iter().take(i).position(|o| o == id) {
            return Err(ConfigError::new(
                at,
                format!("same identity as {field}[{j}]"),
            ));
        }
    }
    Ok(list.to_vec())
}

/// Ok when `bound` is empty (the key is not bound), or when the request's client certificate
/// identity is one of `bound`. Every refusal is a 401 naming the reason, never an identity.
pub(crate) fn check(bound: &[String], headers: &[(String, Vec<u8>)]) -> Result<(), ErrorInfo> {
    if bound.is_empty() {
        return Ok(());
    }
    let mut values = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(XFCC_HEADER));
    let Some((_, value)) = values.next() else {
        return Err(unauthorized(
            "this API key is bound to a client certificate identity, and the request came \
             without a verified client certificate",
        ));
    };
    if values.next().is_some() {
        return Err(unauthorized(format!(
            "header '{XFCC_HEADER}' appears more than once"
        )));
    }
    let uris = last_element_uris(value).ok_or_else(|| {
        unauthorized(format!(
            "header '{XFCC_HEADER}' is malformed or longer than {MAX_XFCC_BYTES} bytes"
        ))
    })?;
    if uris.iter().any(|u| bound.iter().any(|b| b == u)) {
        Ok(())
    } else {
        Err(unauthorized(
            "this API key is bound to other client certificate identities than the one this \
             request came with",
        ))
    }
}

/// The `URI=` values of the last element of an XFCC header value (elements separated by `,`,
/// pairs by `;`, values optionally double-quoted with `\` escapes). None when malformed.
pub(crate) fn last_element_uris(value: &[u8]) -> Option<Vec<String>> {
    if value.len() > MAX_XFCC_BYTES {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let elements = split_unquoted(text, ',')?;
    let last = elements.last()?;
    let mut uris = Vec::new();
    for pair in split_unquoted(last, ';')? {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, raw) = pair.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("uri") {
            uris.push(unquote(raw.trim())?);
        }
    }
    Some(uris)
}

/// Splits on `sep` outside double quotes; None on an unterminated quote.
fn split_unquoted(text: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(text.get(start..i)?);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    parts.push(text.get(start..)?);
    Some(parts)
}

fn unquote(raw: &str) -> Option<String> {
    let Some(inner) = raw.strip_prefix('"') else {
        return (!raw.contains('"')).then(|| raw.to_string());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}
