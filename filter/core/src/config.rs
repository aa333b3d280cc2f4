//! Plugin configuration: the JSON users write (parsed strictly, unknown fields rejected) and its
//! compiled, immutable runtime form [`Config`], built once in `on_configure` and shared (`Rc`) by
//! every request context of a VM. Nothing here is re-parsed or re-compiled per request.
//!
//! Each stage owns its own section's types and compiler (`auth`, `pii`, `limits`, `routing`,
//! `providers`); this module only assembles them and reports the first error with the
//! path of the offending field, which the host logs and uses to refuse the plugin.

use crate::auth::{AuthConfig, KeyRing};
use crate::cache::{Cache, CacheConfig};
use crate::limits::{Limiter, LimitsSection};
use crate::pii::{PiiConfig, Scrubber};
use crate::providers::config::ProviderConfig;
use crate::providers::Providers;
use crate::routing::{ModelConfig, Router};
use crate::wire::drop::Policy;
use serde::Deserialize;

use crate::error::ConfigError;
use std::collections::BTreeMap;

mod locate;

/// The plugin configuration as users write it. See docs/configuration.md.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Provider accounts by name: wire format, host, credentials.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Client-facing models and the targets that serve them, first match wins.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Client keys.
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub pii: PiiConfig,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Largest request body accepted, in bytes (413 above it). Envoy's own buffer limit must be
    /// at least this large.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Largest single stream frame (SSE event, NDJSON line, event-stream message) held while
    /// it is incomplete; a larger one ends the stream with an error.
    #[serde(default = "default_max_frame_bytes")]
    pub max_stream_frame_bytes: usize,
    /// Largest complete (non-streamed) provider answer translated, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Adds `x-weir-served-by` (provider name) and `x-weir-attempts` to answers.
    #[serde(default)]
    pub debug_headers: bool,
    /// Response cache for repeated deterministic prompts.
    #[serde(default)]
    pub cache: CacheConfig,
    /// What happens to a request field a target cannot express: `refuse` (a 400 naming it) or
    /// `drop` (sampling and reasoning controls are dropped and reported); routes may override.
    #[serde(default)]
    pub unsupported: Policy,
}

fn default_max_request_bytes() -> usize {
    4 << 20
}
fn default_max_frame_bytes() -> usize {
    1 << 20
}
fn default_max_response_bytes() -> usize {
    8 << 20
}

/// The compiled configuration.
pub struct Config {
    pub providers: Providers,
    pub router: Router,
    pub keys: KeyRing,
    pub pii: Scrubber,
    pub limiter: Limiter,
    pub max_request_bytes: usize,
    pub max_stream_frame_bytes: usize,
    pub max_response_bytes: usize,
    pub debug_headers: bool,
    pub cache: Cache,
    pub unsupported: Policy,
}

impl Config {
    /// Parses and compiles the plugin configuration. `env` reads the VM's environment (provider
    /// keys given as `{"env": NAME}`). Returns the config and warnings to log.
    pub fn parse(
        json: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        // Plain serde_json, and the field found from the error's position afterwards: a
        // path-tracking deserializer would compile the whole config type graph a second time
        // (~73 KB of wasm).
        let raw: RawConfig = serde_json::from_slice(json)
            .map_err(|e| ConfigError::new(locate::field(json, &e), e.to_string()))?;
        Self::compile(&raw, env)
    }

    pub fn compile(
        raw: &RawConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let providers = Providers::compile(&raw.providers, env, &mut warnings)?;
        let router = Router::compile(&raw.models, &providers)?;
        let (keys, key_warnings) = KeyRing::compile(&raw.auth)?;
        warnings.extend(key_warnings);
        let pii = Scrubber::compile(&raw.pii)?;
        let limiter = Limiter::compile(&raw.limits)?;
        let cache = Cache::compile(&raw.cache, &|name| router.by_name(name).is_some(), &|id| {
            keys.key(id).is_some()
        })?;
        for (field, value) in [
            ("max_request_bytes", raw.max_request_bytes),
            ("max_stream_frame_bytes", raw.max_stream_frame_bytes),
            ("max_response_bytes", raw.max_response_bytes),
        ] {
            if value < 1024 {
                return Err(ConfigError::new(field, "must be at least 1024"));
            }
        }
        Ok((
            Config {
                providers,
                router,
                keys,
                pii,
                limiter,
                max_request_bytes: raw.max_request_bytes,
                max_stream_frame_bytes: raw.max_stream_frame_bytes,
                max_response_bytes: raw.max_response_bytes,
                debug_headers: raw.debug_headers,
                cache,
                unsupported: raw.unsupported,
            },
            warnings,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn inline_provider_secrets_are_warned_about_without_being_shown() {
        let json = br#"{"providers": {
            "o": {"type": "openai", "keys": [{"id": "k1", "key": "sk-inline-secret"},
                                             {"id": "k2", "key": {"env": "OPENAI_KEY"}}]},
            "b": {"type": "bedrock", "region": "us-east-1", "keys": [{"id": "aws",
                  "access_key_id": "AKIAEXAMPLE", "secret_access_key": "aws-inline-secret"}]}}}"#;
        let env = |_: &str| Some("from-env".to_string());
        let (_, warnings) = Config::parse(json, &env).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .any(|w| w.starts_with("providers.o.keys[0].key")));
        assert!(warnings.iter().any(|w| w.contains("secret_access_key")));
        for w in &warnings {
            assert!(
                w.contains("/config_dump") && !w.contains("inline-secret"),
                "{w}"
            );
        }
    }

    #[test]
    fn an_empty_config_compiles() {
        assert!(Config::parse(b"{}", &no_env).is_ok());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let err = Config::parse(
            br#"{"providers": {"p": {"type": "openai", "hots": "x"}}}"#,
            &no_env,
        )
        .err()
        .unwrap();
        assert_eq!(err.field, "providers.p.hots");
        assert!(err.message.contains("hots"), "{err}");
        let err = Config::parse(br#"{"debug": true}"#, &no_env).err().unwrap();
        assert!(err.message.contains("debug"), "{err}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = Config::parse(br#"{"max_request_bytes": "big"}"#, &no_env)
            .err()
            .unwrap();
        assert_eq!(err.field, "max_request_bytes");
        let err = Config::parse(br#"{"max_request_bytes": 10}"#, &no_env)
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "max_request_bytes: must be at least 1024");
    }
}
