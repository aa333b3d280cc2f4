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
    /// Client request headers this provider gets (`extra_request_headers`).
    pub extra_request_headers: Vec<String>,
}

impl Provider {
    /// `text` with every secret of this provider's keys replaced by `<key 'id'>`: provider error
    /// messages may quote the key they were sent, and they go to the log.
    pub fn redact_keys(&self, text: &str) -> String {
        let mut out = text.to_string();
        for k in &self.keys {
            let secrets: Vec<&str> = match &k.credential {
                Credential::ApiKey { key, .. } => vec![key],
                Credential::Aws(a) => {
                    let mut v = vec![a.access_key_id.as_str(), a.secret_access_key.as_str()];
                    v.extend(a.session_token.as_deref());
                    v
                }
            };
            for s in secrets.into_iter().filter(|s| !s.is_empty()) {
                if out.contains(s) {
                    out = out.replace(s, &format!("<key '{}'>", k.id));
                }
            }
        }
        out
    }
}

#[derive(Debug, Default)]
pub struct Providers {
    pub(crate) by_name: BTreeMap<String, Provider>,
    /// Every client request header some provider may get: `anthropic-beta` and each provider's
    /// `extra_request_headers`. Sorted, without repeats.
    client_headers: Vec<String>,
}

impl Providers {
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.by_name.get(name)
    }

    /// The client request headers the gateway keeps for the provider role.
    pub fn client_headers(&self) -> &[String] {
        &self.client_headers
    }
}

/// Request headers of Envoy's own tracing (and the request id Envoy logs), left in place by the
/// provider role: they link a provider call to the client's trace and say nothing else.
pub const TRACING_REQUEST_HEADERS: &[&str] = &[
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "x-cloud-trace-context",
];

/// Why a client header may not be put on a provider's allowlist (`extra_request_headers`):
/// credentials, weir's and Envoy's internal names, connection and framing headers, and the
/// headers weir writes itself. `None`: it may.
pub fn unpassable_reason(name: &str) -> Option<&'static str> {
    const CREDENTIALS: &[&str] = &[
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "cookie",
    ];
    const FRAMING: &[&str] = &[
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "accept-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ];
    const CLIENT_IDENTITY: &[&str] = &["forwarded", "x-real-ip", "x-forwarded-client-cert"];
    const WRITTEN_BY_WEIR: &[&str] = &["anthropic-version", "anthropic-beta"];
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("must be a lower-case header name (letters, digits, '-'), at most 64 bytes");
    }
    if CREDENTIALS.contains(&name) || name.starts_with("x-amz-") {
        return Some("carries credentials");
    }
    if name.starts_with("x-weir-") || name.starts_with("x-envoy-") {
        return Some("is internal to weir or Envoy");
    }
    if FRAMING.contains(&name) {
        return Some("is a connection or framing header Envoy and weir set");
    }
    if CLIENT_IDENTITY.contains(&name) || name.starts_with("x-forwarded-") {
        return Some("tells the provider who the client is");
    }
    if WRITTEN_BY_WEIR.contains(&name) || TRACING_REQUEST_HEADERS.contains(&name) {
        return Some("is already set by weir or Envoy");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_keys_cuts_every_secret_out() {
        let key = |id: &str, credential| ProviderKey {
            id: id.into(),
            credential,
        };
        let provider = Provider {
            name: "p".into(),
            spec: crate::wire::ProviderSpec {
                kind: crate::wire::ProviderKind::OpenAi,
                host: "h".into(),
                base_path: String::new(),
                api_version: None,
                region: None,
                anthropic_version: String::new(),
            },
            keys: vec![
                key(
                    "a",
                    Credential::ApiKey {
                        header: "authorization".into(),
                        prefix: "Bearer ".into(),
                        key: "sk-one".into(),
                    },
                ),
                key(
                    "b",
                    Credential::Aws(AwsCredentials {
                        access_key_id: "AKIAX".into(),
                        secret_access_key: "s3cr3t".into(),
                        session_token: None,
                    }),
                ),
            ],
            needs_keys: true,
            grid_g_co2e_per_kwh: 0.0,
            extra_request_headers: Vec::new(),
        };
        assert_eq!(
            provider.redact_keys("Consumer 'api_key:sk-one' or AKIAX/s3cr3t, sk-one"),
            "Consumer 'api_key:<key 'a'>' or <key 'b'>/<key 'b'>, <key 'a'>"
        );
    }
}
