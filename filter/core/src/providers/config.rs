//! The `providers` section as users write it (strict serde), and its compilation into
//! [`Providers`]: a [`ProviderSpec`] for the codecs plus the keys the provider role rotates through.
//!
//! Secrets come either inline or, preferably, from the VM's environment (`{"env": "NAME"}`:
//! Envoy `vm_config.environment_variables`, Istio `vmConfig.env` fed from a Secret). A missing
//! variable is a warning, not an error, so one absent key does not take the whole gateway down;
//! that provider then answers 503 naming itself. Secrets never appear in `Debug` output.

use super::sigv4::AwsCredentials;
use super::{Credential, Provider, ProviderKey, Providers};
use crate::error::ConfigError;
use crate::wire::{ProviderKind, ProviderSpec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// Extra client headers one provider may get: enough for tenancy or tracing tags, few enough
/// that the gateway's copy of them per request stays small.
const MAX_EXTRA_REQUEST_HEADERS: usize = 16;

/// A secret value: inline, or the name of an environment variable of the VM.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    Inline(String),
    Env {
        /// Environment variable holding the value.
        env: String,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("<inline secret>"),
            Secret::Env { env } => write!(f, "env:{env}"),
        }
    }
}

/// One provider account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Wire format: `openai`, `azure-openai`, `anthropic`, `gemini`, `bedrock`, `ollama`,
    /// `mistral` or `openai-compatible`.
    #[serde(rename = "type")]
    pub kind: ProviderKind,
    /// Sent as `:authority`. Defaults to the public API host for openai, anthropic, gemini and
    /// mistral; required for the others. For bedrock, defaults to
    /// `bedrock-runtime.<region>.amazonaws.com`.
    #[serde(default)]
    pub host: Option<String>,
    /// Path prefix before the operation (`/v1` for OpenAI-style APIs, `/openai` for Azure,
    /// `/v1beta` for Gemini, empty for Ollama and Anthropic).
    #[serde(default)]
    pub base_path: Option<String>,
    /// Azure OpenAI `api-version` query value (required for azure-openai).
    #[serde(default)]
    pub api_version: Option<String>,
    /// AWS region (required for bedrock).
    #[serde(default)]
    pub region: Option<String>,
    /// `anthropic-version` header value.
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// For `openai-compatible` servers that take the key elsewhere: header name and the prefix
    /// before the key (default `authorization` and `Bearer `).
    #[serde(default)]
    pub auth_header: Option<String>,
    #[serde(default)]
    pub auth_prefix: Option<String>,
    /// Client request headers this provider gets too, beyond what weir sets itself (content
    /// type, credentials, API version, Anthropic's beta flags): every other client header is
    /// removed. Lower-case names; credentials, framing and internal names are refused.
    #[serde(default)]
    pub extra_request_headers: Vec<String>,
    /// Credentials, rotated across requests. Not needed for ollama and most self-hosted servers.
    #[serde(default)]
    pub keys: Vec<ProviderKeyConfig>,
    /// Carbon intensity of the electricity where this provider runs, g CO2e per kWh, for the
    /// carbon estimate (default: the world average, see `metrics::DEFAULT_GRID_G_PER_KWH`).
    #[serde(default)]
    pub grid_g_co2e_per_kwh: Option<f64>,
}

/// One credential of a provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderKeyConfig {
    /// Stable name used in logs and metrics instead of the key itself.
    pub id: String,
    /// The API key (all types but bedrock).
    #[serde(default)]
    pub key: Option<Secret>,
    /// Bedrock: AWS credentials for SigV4.
    #[serde(default)]
    pub access_key_id: Option<Secret>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    #[serde(default)]
    pub session_token: Option<Secret>,
}

impl Providers {
    pub fn compile(
        raw: &BTreeMap<String, ProviderConfig>,
        env: &dyn Fn(&str) -> Option<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Providers, ConfigError> {
        let mut by_name = BTreeMap::new();
        // The gateway keeps the client's values of these for the provider role.
        let mut client_headers = vec!["anthropic-beta".to_string()];
        for (name, cfg) in raw {
            let field = format!("providers.{name}");
            let provider = compile_provider(name, cfg, &field, env, warnings)?;
            client_headers.extend(provider.extra_request_headers.iter().cloned());
            by_name.insert(name.clone(), provider);
        }
        client_headers.sort_unstable();
        client_headers.dedup();
        Ok(Providers {
            by_name,
            client_headers,
        })
    }
}

fn compile_provider(
    name: &str,
    cfg: &ProviderConfig,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Provider, ConfigError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ConfigError::new(
            field,
            "provider names may only use letters, digits, '-', '_' and '.'",
        ));
    }
    let kind = cfg.kind;
    let region = cfg.region.clone();
    if kind == ProviderKind::Bedrock && region.is_none() {
        return Err(ConfigError::new(
            format!("{field}.region"),
            "required for bedrock",
        ));
    }
    if kind == ProviderKind::AzureOpenAi && cfg.api_version.is_none() {
        return Err(ConfigError::new(
            format!("{field}.api_version"),
            "required for azure-openai",
        ));
    }
    let host = match (&cfg.host, kind.default_host(), &region) {
        (Some(h), _, _) => h.clone(),
        (None, Some(h), _) => h.to_string(),
        (None, None, Some(r)) if kind == ProviderKind::Bedrock => {
            format!("bedrock-runtime.{r}.amazonaws.com")
        }
        _ => {
            return Err(ConfigError::new(
                format!("{field}.host"),
                format!("required for {}", kind.name()),
            ))
        }
    };
    let default_base = match kind {
        ProviderKind::OpenAi
        | ProviderKind::OpenAiResponses
        | ProviderKind::Mistral
        | ProviderKind::OpenAiCompatible => "/v1",
        ProviderKind::AzureOpenAi => "/openai",
        ProviderKind::Gemini => "/v1beta",
        ProviderKind::Anthropic | ProviderKind::Bedrock | ProviderKind::Ollama => "",
    };
    let base_path = cfg
        .base_path
        .as_deref()
        .unwrap_or(default_base)
        .trim_end_matches('/')
        .to_string();
    if !(base_path.is_empty() || base_path.starts_with('/')) {
        return Err(ConfigError::new(
            format!("{field}.base_path"),
            "must start with '/'",
        ));
    }
    // Azure OpenAI's v1 API speaks Responses with an `api-key` header.
    if (cfg.auth_header.is_some() || cfg.auth_prefix.is_some())
        && !matches!(
            kind,
            ProviderKind::OpenAiCompatible | ProviderKind::OpenAiResponses
        )
    {
        return Err(ConfigError::new(
            format!("{field}.auth_header"),
            "only openai-compatible and openai-responses providers take a custom auth header",
        ));
    }
    if cfg
        .grid_g_co2e_per_kwh
        .is_some_and(|g| !(0.0..=2000.0).contains(&g))
    {
        return Err(ConfigError::new(
            format!("{field}.grid_g_co2e_per_kwh"),
            "must be between 0 and 2000",
        ));
    }
    if cfg.extra_request_headers.len() > MAX_EXTRA_REQUEST_HEADERS {
        return Err(ConfigError::new(
            format!("{field}.extra_request_headers"),
            format!("at most {MAX_EXTRA_REQUEST_HEADERS} names"),
        ));
    }
    for (i, h) in cfg.extra_request_headers.iter().enumerate() {
        if let Some(why) = super::unpassable_reason(h) {
            return Err(ConfigError::new(
                format!("{field}.extra_request_headers[{i}]"),
                format!("'{h}' {why}"),
            ));
        }
    }
    let spec = ProviderSpec {
        kind,
        host,
        base_path,
        api_version: cfg.api_version.clone(),
        region,
        anthropic_version: cfg
            .anthropic_version
            .clone()
            .unwrap_or_else(|| "2023-06-01".to_string()),
    };
    let mut keys = Vec::new();
    let mut seen = Vec::new();
    for (i, k) in cfg.keys.iter().enumerate() {
        let kfield = format!("{field}.keys[{i}]");
        if seen.contains(&k.id) {
            return Err(ConfigError::new(format!("{kfield}.id"), "duplicate key id"));
        }
        seen.push(k.id.clone());
        if let Some(credential) = compile_key(cfg, k, &kfield, env, warnings)? {
            keys.push(ProviderKey {
                id: k.id.clone(),
                credential,
            });
        }
    }
    Ok(Provider {
        name: name.to_string(),
        spec,
        needs_keys: !cfg.keys.is_empty(),
        extra_request_headers: cfg.extra_request_headers.clone(),
        grid_g_co2e_per_kwh: cfg
            .grid_g_co2e_per_kwh
            .unwrap_or(crate::metrics::DEFAULT_GRID_G_PER_KWH),
        keys,
    })
}

/// `Ok(None)`: the key is configured from the environment but the variable is not set.
fn compile_key(
    cfg: &ProviderConfig,
    k: &ProviderKeyConfig,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<Credential>, ConfigError> {
    let mut resolve = |secret: &Secret, name: &str| -> Option<String> {
        match secret {
            Secret::Inline(v) => {
                // An access key id names a key; the others are the secret itself.
                if name != "access_key_id" {
                    warnings.push(format!(
                        "{field}.{name}: key '{}' is written inline, so Envoy's /config_dump shows \
                         it to anyone with admin access; give it as {{\"env\": NAME}}",
                        k.id
                    ));
                }
                Some(v.clone())
            }
            Secret::Env { env: var } => match env(var).filter(|v| !v.is_empty()) {
                Some(v) => Some(v),
                None => {
                    warnings.push(format!(
                        "{field}.{name}: environment variable {var} is not set; key '{}' is unavailable",
                        k.id
                    ));
                    None
                }
            },
        }
    };
    if cfg.kind == ProviderKind::Bedrock {
        if k.key.is_some() {
            return Err(ConfigError::new(
                format!("{field}.key"),
                "bedrock takes access_key_id and secret_access_key",
            ));
        }
        let (Some(id), Some(secret)) = (&k.access_key_id, &k.secret_access_key) else {
            return Err(ConfigError::new(
                field,
                "bedrock keys need access_key_id and secret_access_key",
            ));
        };
        let id = resolve(id, "access_key_id");
        let secret = resolve(secret, "secret_access_key");
        let token = match &k.session_token {
            Some(t) => resolve(t, "session_token").map(Some),
            None => Some(None),
        };
        return Ok(match (id, secret, token) {
            (Some(access_key_id), Some(secret_access_key), Some(session_token)) => {
                Some(Credential::Aws(AwsCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token,
                }))
            }
            _ => None,
        });
    }
    if k.access_key_id.is_some() || k.secret_access_key.is_some() || k.session_token.is_some() {
        return Err(ConfigError::new(
            format!("{field}.access_key_id"),
            "AWS credentials are only for bedrock; use `key`",
        ));
    }
    let Some(secret) = &k.key else {
        return Err(ConfigError::new(format!("{field}.key"), "missing"));
    };
    let Some(key) = resolve(secret, "key") else {
        return Ok(None);
    };
    let (header, prefix) = match cfg.kind {
        ProviderKind::AzureOpenAi => ("api-key".to_string(), String::new()),
        ProviderKind::Anthropic => ("x-api-key".to_string(), String::new()),
        ProviderKind::Gemini => ("x-goog-api-key".to_string(), String::new()),
        _ => (
            cfg.auth_header
                .clone()
                .unwrap_or_else(|| "authorization".to_string())
                .to_ascii_lowercase(),
            cfg.auth_prefix
                .clone()
                .unwrap_or_else(|| "Bearer ".to_string()),
        ),
    };
    Ok(Some(Credential::ApiKey {
        header,
        prefix,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(
        json: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Providers, Vec<String>), ConfigError> {
        let raw: BTreeMap<String, ProviderConfig> = serde_json::from_str(json).unwrap();
        let mut w = Vec::new();
        Providers::compile(&raw, env, &mut w).map(|p| (p, w))
    }

    #[test]
    fn defaults_follow_the_provider_type() {
        let (p, _) = compile(
            r#"{"oa": {"type": "openai", "keys": [{"id": "a", "key": "k"}]},
                "an": {"type": "anthropic", "keys": [{"id": "a", "key": "k"}]},
                "br": {"type": "bedrock", "region": "eu-west-1",
                       "keys": [{"id": "a", "access_key_id": "A", "secret_access_key": "S"}]}}"#,
            &|_| None,
        )
        .unwrap();
        let oa = p.get("oa").unwrap();
        assert_eq!(
            (oa.spec.host.as_str(), oa.spec.base_path.as_str()),
            ("api.openai.com", "/v1")
        );
        assert!(
            matches!(&oa.keys[0].credential, Credential::ApiKey { header, prefix, .. } if header == "authorization" && prefix == "Bearer ")
        );
        let an = p.get("an").unwrap();
        assert!(
            matches!(&an.keys[0].credential, Credential::ApiKey { header, .. } if header == "x-api-key")
        );
        assert_eq!(
            p.get("br").unwrap().spec.host,
            "bedrock-runtime.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn env_keys_load_and_a_missing_variable_is_a_warning_that_names_no_value() {
        let env = |name: &str| (name == "SET").then(|| "sk-secret".to_string());
        let (p, w) = compile(
            r#"{"oa": {"type": "openai", "keys": [{"id": "a", "key": {"env": "SET"}},
                                                   {"id": "b", "key": {"env": "UNSET"}}]}}"#,
            &env,
        )
        .unwrap();
        let oa = p.get("oa").unwrap();
        assert_eq!(oa.keys.len(), 1);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("UNSET") && !w[0].contains("sk-secret"));
        assert!(!format!("{:?}", oa).contains("sk-secret"));
    }

    #[test]
    fn missing_required_fields_are_named() {
        let err = compile(r#"{"az": {"type": "azure-openai", "host": "x"}}"#, &|_| {
            None
        })
        .unwrap_err();
        assert_eq!(err.field, "providers.az.api_version");
        let err = compile(r#"{"o": {"type": "ollama"}}"#, &|_| None).unwrap_err();
        assert_eq!(err.field, "providers.o.host");
        let err = compile(
            r#"{"o": {"type": "openai", "keys": [{"id": "a"}]}}"#,
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(err.field, "providers.o.keys[0].key");
    }

    #[test]
    fn extra_request_headers_take_no_credential_internal_or_framing_name() {
        let extra = |names: &str| {
            compile(
                &format!(
                    r#"{{"v": {{"type": "ollama", "host": "h", "extra_request_headers": {names}}}}}"#
                ),
                &|_| None,
            )
        };
        let (p, _) = extra(r#"["x-tenant", "openai-beta"]"#).unwrap();
        assert_eq!(
            p.get("v").unwrap().extra_request_headers,
            ["x-tenant", "openai-beta"]
        );
        assert_eq!(
            p.client_headers(),
            ["anthropic-beta", "openai-beta", "x-tenant"]
        );
        for bad in [
            "cookie",
            "authorization",
            "proxy-authorization",
            "x-amz-security-token",
            "x-weir-cluster",
            "x-envoy-original-path",
            "content-length",
            "forwarded",
            "x-forwarded-for",
            "x-real-ip",
            "anthropic-version",
            "X-Tenant",
            "",
        ] {
            let err = extra(&format!(r#"["ok", "{bad}"]"#)).unwrap_err();
            assert_eq!(err.field, "providers.v.extra_request_headers[1]", "{bad}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("\"x-h{i}\"")).collect();
        assert!(extra(&format!("[{}]", many.join(","))).is_err());
    }
}
