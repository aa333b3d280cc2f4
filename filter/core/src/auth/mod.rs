//! Client authentication: which weir key a request carries, whether it is valid now, and which
//! models it may use. Keys are configured as SHA-256 digests and compared in constant time.
//!
//! Use: [`KeyRing::compile`] once at configure (log the returned warnings), then per request
//! [`KeyRing::authenticate`] on all request headers, [`ClientKey::may_use`] on the requested
//! model (a refusal there is the gateway's 403), and strip every [`KeyRing::credential_headers`]
//! name before forwarding.
//!
//! Credentials: `Authorization: Bearer <key>` (scheme case-insensitive), `x-api-key`, `api-key`
//! and the optional `extra_header`. The same key in several of them is fine (some SDKs send two);
//! different keys, a repeated credential header, or a non-Bearer `Authorization` are refused as
//! "conflicting credentials" (401) rather than guessing which one counts. No key at all is the
//! anonymous identity if configured, else 401 "missing API key"; a wrong key is never anonymous.
//!
//! Binding: a key with `client_identities` is accepted only from a request whose verified client
//! certificate (Envoy's `x-forwarded-client-cert`) carries one of them ([`identity`]), checked
//! after the key itself, so a stolen key is useless from another workload.
//!
//! Lookup: the presented key is hashed with SHA-256, and the digest is compared against every
//! configured digest with [`constant_time_eq`], with no early exit and a branch-free pick of the
//! match, so timing reveals neither how much of a digest matched nor (beyond the table size)
//! anything else. A hash map on the digest was not used: its probe sequence and bucket compares
//! depend on the digest, and key tables are small enough for a full scan. Errors never echo a
//! presented key.

mod config;
mod credentials;
mod digest;
mod identity;
mod models;
#[cfg(test)]
mod tests;

pub use config::{AnonymousConfig, AuthConfig, KeyConfig};
pub use digest::{constant_time_eq, sha256_hex};
pub use identity::XFCC_HEADER;

use crate::ir::{ErrorInfo, ErrorKind};
use crate::limits::KeyLimits;
use digest::KeyDigest;
use models::ModelPatterns;
use std::fmt;

/// Longest key accepted; longer values are refused before hashing.
pub const MAX_KEY_BYTES: usize = 512;

/// Headers that always may carry a key (`extra_header` adds one).
const BUILTIN_CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];

fn unauthorized(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(401, ErrorKind::Authentication, message)
}

/// One authenticated caller, compiled from a [`KeyConfig`] (or [`AnonymousConfig`]).
pub struct ClientKey {
    pub id: String,
    pub team: Option<String>,
    /// `None` when the key has no limits of its own.
    pub limits: Option<KeyLimits>,
    /// The identity of requests that presented no key.
    pub anonymous: bool,
    /// Unix seconds of the last valid instant.
    pub not_after: Option<u64>,
    pub disabled: bool,
    allow: Option<ModelPatterns>,
    deny: ModelPatterns,
    digest: KeyDigest,
    /// Client certificate URI SANs the key is bound to; empty: usable from anywhere.
    identities: Vec<String>,
}

impl fmt::Debug for ClientKey {
    // Leaves the digest out: logging it would hand out an offline guessing target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("id", &self.id)
            .field("team", &self.team)
            .field("anonymous", &self.anonymous)
            .field("not_after", &self.not_after)
            .field("disabled", &self.disabled)
            .field("identities", &self.identities)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Whether this key may call `model` (the client-facing name): `deny_models` wins, then
    /// `models` (absent: every model).
    pub fn may_use(&self, model: &str) -> bool {
        !self.deny.matches(model) && self.allow.as_ref().map_or(true, |a| a.matches(model))
    }
}

pub struct KeyRing {
    keys: Vec<ClientKey>,
    anonymous: Option<ClientKey>,
    extra_header: Option<String>,
    credential_headers: Vec<String>,
}

impl KeyRing {
    /// `headers`: every request header, lower-case names, raw bytes values, repeats kept
    /// (`x-forwarded-client-cert` included, for keys bound to client identities).
    /// Every failure is a 401; see the module docs for which.
    pub fn authenticate(
        &self,
        headers: &[(String, Vec<u8>)],
        now_unix: u64,
    ) -> Result<&ClientKey, ErrorInfo> {
        let Some(presented) = credentials::presented_key(headers, self.extra_header.as_deref())?
        else {
            return self
                .anonymous
                .as_ref()
                .ok_or_else(|| unauthorized("missing API key"));
        };
        let digest = digest::digest(presented);
        let mut found = usize::MAX;
        for (i, key) in self.keys.iter().enumerate() {
            // All-ones when equal, zero otherwise: selects without a data-dependent branch.
            let mask = usize::from(constant_time_eq(&digest, &key.digest)).wrapping_neg();
            found = (i & mask) | (found & !mask);
        }
        let key = self
            .keys
            .get(found)
            .ok_or_else(|| unauthorized("invalid API key"))?;
        if key.disabled {
            return Err(unauthorized("API key disabled"));
        }
        if key.not_after.is_some_and(|t| now_unix > t) {
            return Err(unauthorized("API key expired"));
        }
        identity::check(&key.identities, headers)?;
        Ok(key)
    }

    /// Header names that may carry a client credential; the gateway strips them all before
    /// forwarding.
    pub fn credential_headers(&self) -> &[String] {
        &self.credential_headers
    }

    /// Every configured identity, the anonymous one included: e.g. for `limits::Limiter::seed`.
    pub fn keys(&self) -> impl Iterator<Item = &ClientKey> {
        self.keys.iter().chain(self.anonymous.as_ref())
    }

    /// A configured key by id (for tools and tests).
    pub fn key(&self, id: &str) -> Option<&ClientKey> {
        self.keys().find(|k| k.id == id)
    }
}
