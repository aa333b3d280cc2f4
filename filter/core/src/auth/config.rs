//! The `auth` configuration users write (strict serde) and its compilation into a [`KeyRing`]:
//! every check that can be done at load is done there, so a bad key table never goes live.

use super::digest::{digest, parse_hex_digest, KeyDigest};
use crate::time::parse_rfc3339;

const EXPECTED: &str =
    "expected an RFC 3339 date-time such as 2027-01-31T00:00:00Z (or with an offset, +01:00)";
use super::models::ModelPatterns;
use super::{ClientKey, KeyRing, BUILTIN_CREDENTIAL_HEADERS, MAX_KEY_BYTES};
use crate::error::ConfigError;
use crate::limits::{KeyLimits, LimitsConfig};
use serde::Deserialize;

/// The `auth` section: which client keys exist and what each may do.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The client keys weir accepts.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Allows `keys[].key` (a plaintext key in the config). Off by default: the config then
    /// holds only digests, so reading it does not yield a usable key.
    #[serde(default)]
    pub allow_plaintext_keys: bool,
    /// Serves requests that carry no key at all (e.g. default Ollama clients) as this identity.
    /// Absent: such requests get 401. A request that carries a wrong key is never anonymous.
    #[serde(default)]
    pub anonymous: Option<AnonymousConfig>,
    /// One more request header that may carry the key verbatim (e.g. `x-goog-api-key`),
    /// besides `Authorization: Bearer`, `x-api-key` and `api-key`.
    #[serde(default)]
    pub extra_header: Option<String>,
}

/// One client key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Stable name for logs, metrics and limits; unique; letters, digits, `.`, `_`, `-`.
    pub id: String,
    /// The team the key belongs to, for reporting.
    #[serde(default)]
    pub team: Option<String>,
    /// Hex SHA-256 of the key (64 hex digits). Give this or `key`, not both.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The key itself; only with `allow_plaintext_keys: true`. Give this or `sha256`.
    #[serde(default)]
    pub key: Option<String>,
    /// Models the key may use: exact names, globs (`gpt-4o*`, `*`) or `re:` regexes, matched
    /// against the whole client-facing model name. Absent: every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Models the key may not use, same syntax; wins over `models`.
    #[serde(default)]
    pub deny_models: Vec<String>,
    /// Last valid instant, RFC 3339 (`2027-01-31T00:00:00Z`); later requests get 401.
    #[serde(default)]
    pub not_after: Option<String>,
    /// Rejects the key (401) without deleting it, e.g. while rotating.
    #[serde(default)]
    pub disabled: bool,
    /// Request, token, concurrency and money limits of this key.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// Client certificate URI SANs (SPIFFE IDs) the key is bound to: requests with it must come
    /// with a verified client certificate of one of them (Envoy's `x-forwarded-client-cert`),
    /// else 401. Empty: usable from any client.
    #[serde(default)]
    pub client_identities: Vec<String>,
}

/// The identity of requests that carry no key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymousConfig {
    /// Name for logs, metrics and limits; must differ from every key id.
    pub id: String,
    /// The team to report anonymous use under.
    #[serde(default)]
    pub team: Option<String>,
    /// Models anonymous requests may use, same syntax as `keys[].models`. Absent: every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Models anonymous requests may not use; wins over `models`.
    #[serde(default)]
    pub deny_models: Vec<String>,
    /// Limits shared by all anonymous requests together.
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
}

/// Ids end up in logs, metric labels and shared-data keys, so they are kept short and plain.
const MAX_ID_BYTES: usize = 64;

fn check_id(id: &str, field: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be 1 to {MAX_ID_BYTES} letters, digits, '.', '_' or '-'"),
        ))
    }
}

fn check_team(team: &Option<String>, field: &str) -> Result<(), ConfigError> {
    match team {
        Some(t) if t.is_empty() || t.len() > 128 || t.chars().any(char::is_control) => Err(
            ConfigError::new(field, "must be 1 to 128 bytes without control characters"),
        ),
        _ => Ok(()),
    }
}

fn compile_limits(
    cfg: &Option<LimitsConfig>,
    field: &str,
) -> Result<Option<KeyLimits>, ConfigError> {
    match cfg {
        Some(c) => Ok(Some(KeyLimits::compile(c, field)?).filter(|l| !l.is_empty())),
        None => Ok(None),
    }
}

fn compile_allow(
    models: &Option<Vec<String>>,
    field: &str,
) -> Result<Option<ModelPatterns>, ConfigError> {
    models
        .as_deref()
        .map(|list| ModelPatterns::compile(list, field))
        .transpose()
}

/// Header names that must reach the upstream intact, so they cannot double as a key header
/// (the gateway strips every credential header before forwarding).
const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
];

fn compile_extra_header(name: &str) -> Result<String, ConfigError> {
    let field = "auth.extra_header";
    let name = name.to_ascii_lowercase();
    let token = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(ConfigError::new(field, "must be a valid HTTP header name"));
    }
    if BUILTIN_CREDENTIAL_HEADERS.contains(&name.as_str()) {
        return Err(ConfigError::new(
            field,
            format!("'{name}' is always a credential header; leave extra_header out"),
        ));
    }
    if RESERVED_HEADERS.contains(&name.as_str()) {
        return Err(ConfigError::new(
            field,
            format!("'{name}' cannot carry a key: the request needs it"),
        ));
    }
    Ok(name)
}

impl KeyRing {
    /// Compiles the key table; the `Vec<String>` holds warnings to log at load.
    pub fn compile(cfg: &AuthConfig) -> Result<(KeyRing, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let mut keys: Vec<ClientKey> = Vec::with_capacity(cfg.keys.len());
        for (i, k) in cfg.keys.iter().enumerate() {
            let at = format!("auth.keys[{i}]");
            check_id(&k.id, &format!("{at}.id"))?;
            if let Some(j) = cfg.keys.iter().take(i).position(|o| o.id == k.id) {
                return Err(ConfigError::new(
                    format!("{at}.id"),
                    format!("duplicate key id '{}' (also auth.keys[{j}].id)", k.id),
                ));
            }
            check_team(&k.team, &format!("{at}.team"))?;
            let digest = key_digest(k, cfg.allow_plaintext_keys, &at, &mut warnings)?;
            if let Some(j) = keys.iter().position(|o| o.digest == digest) {
                // Which id would a shared key authenticate as? Refuse to guess.
                return Err(ConfigError::new(
                    at,
                    format!("same key as auth.keys[{j}]; every key must be distinct"),
                ));
            }
            let not_after = match &k.not_after {
                Some(s) => Some(
                    parse_rfc3339(s)
                        .ok_or_else(|| ConfigError::new(format!("{at}.not_after"), EXPECTED))?,
                ),
                None => None,
            };
            keys.push(ClientKey {
                id: k.id.clone(),
                team: k.team.clone(),
                limits: compile_limits(&k.limits, &format!("{at}.limits"))?,
                anonymous: false,
                not_after,
                disabled: k.disabled,
                allow: compile_allow(&k.models, &format!("{at}.models"))?,
                deny: ModelPatterns::compile(&k.deny_models, &format!("{at}.deny_models"))?,
                digest,
                identities: super::identity::compile(
                    &k.client_identities,
                    &format!("{at}.client_identities"),
                )?,
            });
        }

        let anonymous = match &cfg.anonymous {
            Some(a) => {
                check_id(&a.id, "auth.anonymous.id")?;
                if let Some(j) = cfg.keys.iter().position(|k| k.id == a.id) {
                    return Err(ConfigError::new(
                        "auth.anonymous.id",
                        format!("'{}' is also the id of auth.keys[{j}]", a.id),
                    ));
                }
                check_team(&a.team, "auth.anonymous.team")?;
                let limits = compile_limits(&a.limits, "auth.anonymous.limits")?;
                if limits.is_none() {
                    warnings.push(
                        "auth.anonymous: no limits, so anyone who can reach the gateway may use \
                         it without bound"
                            .to_string(),
                    );
                }
                Some(ClientKey {
                    id: a.id.clone(),
                    team: a.team.clone(),
                    limits,
                    anonymous: true,
                    not_after: None,
                    disabled: false,
                    allow: compile_allow(&a.models, "auth.anonymous.models")?,
                    deny: ModelPatterns::compile(&a.deny_models, "auth.anonymous.deny_models")?,
                    // Never compared: anonymous is chosen only when no key was presented.
                    digest: [0; 32],
                    identities: Vec::new(),
                })
            }
            None => None,
        };

        let extra_header = cfg
            .extra_header
            .as_deref()
            .map(compile_extra_header)
            .transpose()?;
        let mut credential_headers: Vec<String> = BUILTIN_CREDENTIAL_HEADERS
            .iter()
            .map(|h| (*h).to_string())
            .collect();
        credential_headers.extend(extra_header.iter().cloned());

        Ok((
            KeyRing {
                keys,
                anonymous,
                extra_header,
                credential_headers,
            },
            warnings,
        ))
    }
}

fn key_digest(
    k: &KeyConfig,
    allow_plaintext: bool,
    at: &str,
    warnings: &mut Vec<String>,
) -> Result<KeyDigest, ConfigError> {
    match (&k.sha256, &k.key) {
        (Some(_), Some(_)) => Err(ConfigError::new(at, "give either sha256 or key, not both")),
        (None, None) => Err(ConfigError::new(at, "needs sha256 (or key)")),
        (Some(hex), None) => parse_hex_digest(hex.trim()).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.sha256"),
                "must be 64 hex digits (the SHA-256 of the key)",
            )
        }),
        (None, Some(key)) => {
            // Never echo the key in a message: config errors end up in logs.
            let field = format!("{at}.key");
            if !allow_plaintext {
                return Err(ConfigError::new(
                    field,
                    "plaintext keys need auth.allow_plaintext_keys: true; configure sha256 (the \
                     hex SHA-256 of the key) instead",
                ));
            }
            if key.is_empty() || key.len() > MAX_KEY_BYTES {
                return Err(ConfigError::new(
                    field,
                    format!("must be 1 to {MAX_KEY_BYTES} bytes"),
                ));
            }
            if key.trim() != key {
                return Err(ConfigError::new(
                    field,
                    "has leading or trailing whitespace, which no client can send",
                ));
            }
            warnings.push(format!(
                "{field}: plaintext key in the config; prefer sha256 (the hex SHA-256 of the key)"
            ));
            Ok(digest(key))
        }
    }
}
