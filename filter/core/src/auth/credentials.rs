//! Finding the one key a request presents among every header that may carry one, and refusing
//! requests that present several or malformed ones.

use super::{unauthorized, MAX_KEY_BYTES};
use crate::ir::ErrorInfo;

/// Where a credential was found; one slot per source so a repeated header is noticed.
const SOURCES: usize = 4;

/// The key presented in `headers`, `None` when there is none (empty values count as absent,
/// since some clients send `Authorization: Bearer ` when no key is set).
///
/// Every problem is a 401 (`ErrorKind::Authentication`): the request is rejected because of its
/// credentials, whichever way they are wrong, and clients treat 401 as "fix your key" rather
/// than retrying. Messages name header names from the fixed list, never a value.
pub(crate) fn presented_key<'h>(
    headers: &'h [(String, Vec<u8>)],
    extra_header: Option<&str>,
) -> Result<Option<&'h str>, ErrorInfo> {
    let mut seen = [false; SOURCES];
    let mut found: Option<&'h str> = None;
    for (name, value) in headers {
        let source = if name.eq_ignore_ascii_case("authorization") {
            0
        } else if name.eq_ignore_ascii_case("x-api-key") {
            1
        } else if name.eq_ignore_ascii_case("api-key") {
            2
        } else if extra_header.is_some_and(|h| name.eq_ignore_ascii_case(h)) {
            3
        } else {
            continue;
        };
        if let Some(slot) = seen.get_mut(source) {
            if *slot {
                // Proxies disagree on which copy of a repeated header wins; don't pick one.
                return Err(conflict(&format!(
                    "header '{}' appears more than once",
                    name.to_ascii_lowercase()
                )));
            }
            *slot = true;
        }
        let value = value.trim_ascii();
        let token = if source == 0 {
            if value.is_empty() {
                continue;
            }
            let split = value
                .iter()
                .position(|b| *b == b' ' || *b == b'\t')
                .unwrap_or(value.len());
            let (scheme, rest) = value.split_at_checked(split).unwrap_or((value, &[]));
            if !scheme.eq_ignore_ascii_case(b"bearer") {
                // Basic or another scheme alongside (or instead of) a key is ambiguous.
                return Err(conflict(
                    "the Authorization header must use the Bearer scheme",
                ));
            }
            rest.trim_ascii()
        } else {
            value
        };
        if token.is_empty() {
            continue;
        }
        if token.len() > MAX_KEY_BYTES {
            return Err(unauthorized("malformed API key: too long"));
        }
        let Ok(token) = std::str::from_utf8(token) else {
            return Err(unauthorized("malformed API key: not UTF-8"));
        };
        match found {
            // Comparing two presented values leaks nothing about configured keys.
            Some(prev) if prev != token => {
                return Err(conflict("the request carries more than one different key"));
            }
            _ => found = Some(token),
        }
    }
    Ok(found)
}

fn conflict(why: &str) -> ErrorInfo {
    unauthorized(format!("conflicting credentials: {why}"))
}
