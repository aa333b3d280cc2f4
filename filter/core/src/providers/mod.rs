//! Provider accounts at run time: each one's wire format ([`ProviderSpec`]) and credentials,
//! compiled once from the `providers` section ([`config`]), rotated across attempts ([`keys`]) and
//! applied by the provider role (API-key headers, or AWS SigV4 through [`sigv4`]).
//!
//! Credentials live only here and in the provider role: codecs never see a secret, and no
//! `Debug` output shows one.

pub mod config;
pub mod keys;
pub mod sigv4;

use crate::wire::ProviderSpec;
use sigv4::AwsCredentials;
use std::collections::BTreeMap;
use std::fmt;

/// A usable credential.
#[derive(Clone)]
pub enum Credential {
    /// Sent in `header` as `prefix` + key.
    ApiKey {
        header: String,
        prefix: String,
        key: String,
    },
    Aws(AwsCredentials),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ApiKey { header, .. } => write!(f, "ApiKey({header}: <redacted>)"),
            Credential::Aws(_) => f.write_str("Aws(<redacted>)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProviderKey {
    pub id: String,
    pub credential: Credential,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub spec: ProviderSpec,
    pub keys: Vec<ProviderKey>,
    /// Keys were configured but none could be loaded: requests must not go out unauthenticated.
    pub needs_keys: bool,
    pub grid_g_co2e_per_kwh: f64,
}

#[derive(Debug, Default)]
pub struct Providers {
    pub(crate) by_name: BTreeMap<String, Provider>,
}

impl Providers {
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.by_name.get(name)
    }
}
