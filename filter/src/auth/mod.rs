//! Client authentication: which weir key a request carries, whether it is valid now, and which
//! models it may use. Keys are configured as SHA-256 digests and compared in constant time.
//! STUB: to be implemented.

use crate::config::ConfigError;
use crate::ir::{ErrorInfo, ErrorKind};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub id: String,
    #[serde(default)]
    pub limits: Option<crate::limits::LimitsConfig>,
}

/// One authenticated caller, compiled from a [`KeyConfig`].
pub struct ClientKey {
    pub id: String,
    pub team: Option<String>,
    pub limits: Option<crate::limits::KeyLimits>,
}

impl ClientKey {
    /// Whether this key may call `model` (the client-facing name).
    pub fn may_use(&self, _model: &str) -> bool {
        false
    }
}

pub struct KeyRing;

impl KeyRing {
    /// Compiles the key table; the `Vec<String>` holds warnings to log at load.
    pub fn compile(_cfg: &AuthConfig) -> Result<(KeyRing, Vec<String>), ConfigError> {
        Ok((KeyRing, Vec::new()))
    }
    /// `headers`: every request header, lower-case names, raw bytes values, repeats kept.
    pub fn authenticate(
        &self,
        _headers: &[(String, Vec<u8>)],
        _now_unix: u64,
    ) -> Result<&ClientKey, ErrorInfo> {
        Err(ErrorInfo::new(
            401,
            ErrorKind::Authentication,
            "not implemented",
        ))
    }
    /// Header names that may carry a client credential; the gateway strips them all before
    /// forwarding.
    pub fn credential_headers(&self) -> &[String] {
        &[]
    }
}
