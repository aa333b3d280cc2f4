//! PII scrubbing: finds personal data and secrets in every text a provider would see, applies the
//! configured action, and restores placeholders in answers (streams included).
//!
//! Invariants:
//! - All matching work that can be done once is done in [`Scrubber::compile`]: one combined regex
//!   for every active detector, one anchored regex for the allow list. A request only runs them.
//! - A detected value never leaves in clear: if its action cannot be honoured (the request's
//!   vault cap or the per-VM vault budget is spent), the value is redacted instead, never passed
//!   through.
//! - With `restore`, nothing restored stands where the client wrote placeholder-shaped text:
//!   such text is escaped into the vault (see `scrub::literal_placeholders`).
//! - No value, placeholder original or secret is ever logged or printed by a `Debug` impl.
//! - On `Err(Blocked)` the request is partly scrubbed and must be refused, not forwarded.

mod detectors;
mod fold;
mod restore;
mod scrub;
mod vault;
mod walk;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::ir::Request;

pub use restore::EventRestorer;
pub use scrub::Span;
pub use vault::Vault;

use scrub::Engine;
use vault::Budget;

/// The default per-VM vault budget: 20 MiB.
const DEFAULT_VAULT_MAX_BYTES: usize = 20 * 1024 * 1024;
/// The default per-request vault cap: 1 MiB, about 5,000 distinct values of a chat's length,
/// and a twentieth of the default VM budget.
const DEFAULT_VAULT_MAX_BYTES_PER_REQUEST: usize = 1024 * 1024;

/// The `pii` section of the plugin configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Turns scrubbing on. Off by default; when off, requests pass untouched.
    #[serde(default)]
    pub enabled: bool,
    /// Action per built-in detector, by name (`email`, `phone`, `credit_card`, `us_ssn`, `iban`,
    /// `ipv4`, `ipv6`, `aws_access_key`, `api_key`, `github_token`, `jwt`, `private_key`).
    /// Actions: `redact`, `mask`, `block`, `hash`, `placeholder`, `off`.
    #[serde(default)]
    pub detectors: BTreeMap<String, String>,
    /// Action for every built-in detector not listed in `detectors`; `off` enables only the
    /// listed ones. Defaults to `redact`, so `enabled: true` alone already protects.
    #[serde(default = "default_action")]
    pub default_action: String,
    /// User-defined detectors, matched in the same pass as the built-ins and ahead of them.
    #[serde(default)]
    pub custom: Vec<CustomDetector>,
    /// Values never scrubbed (compared ASCII-case-insensitively, e.g. the company's support
    /// address), or `re:<regex>` patterns that must match a whole detected value.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Key for the `hash` action (HMAC-SHA256). Prefer `hmac_secret_env`.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Name of an environment variable (of the VM) holding the `hash` key, read at compile time.
    #[serde(default)]
    pub hmac_secret_env: Option<String>,
    /// Bytes all live placeholder vaults of one VM may hold together. When spent, further
    /// `placeholder` values of a request are redacted instead (and counted in
    /// [`Detections::fallback_redactions`]).
    #[serde(default = "default_vault_max_bytes")]
    pub vault_max_bytes: usize,
    /// Bytes one request's vault may hold, so that one request full of distinct values cannot
    /// spend the budget of every request on its VM; past it, its further values are redacted.
    /// At most `vault_max_bytes`; by default 1 MiB, or `vault_max_bytes` if that is less.
    #[serde(default)]
    pub vault_max_bytes_per_request: Option<usize>,
    /// Work one request's scan may take: each text scanned costs its bytes, each candidate a
    /// little more (see `docs/pii.md`). Scanning is linear; this bounds its constant too.
    #[serde(default = "default_scan_budget")]
    pub scan_budget: usize,
    /// When a request's scan would exceed `scan_budget`: `block` refuses it (a 413 in the
    /// client's protocol), `forward` sends the texts not yet scanned as they are.
    #[serde(default)]
    pub on_scan_budget: BudgetOutcome,
    /// Put originals back in answers where the model repeats a placeholder (`<EMAIL_1>`).
    #[serde(default)]
    pub restore: bool,
}

/// One user-defined detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetector {
    /// Lowercase `[a-z][a-z0-9_]*`, at most 32 bytes, distinct from the built-ins; its
    /// uppercase form labels replacements (`employee_id` → `[EMPLOYEE_ID]`, `<EMPLOYEE_ID_1>`).
    pub name: String,
    /// A `regex` crate pattern, run on the normalised text (full-width ASCII folded to ASCII,
    /// invisible characters dropped); it must not match the empty string. Prefer `(?-u:\b)`
    /// over `\b`: a Unicode word boundary slows the shared pass down on non-ASCII text.
    pub regex: String,
    /// One of the actions; `off` disables it.
    pub action: String,
}

/// What a request whose scan outgrows `pii.scan_budget` gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetOutcome {
    /// Refused: nothing unscanned ever leaves.
    #[default]
    Block,
    /// The texts (or rest of a text) past the budget go unscanned; the request says so in its
    /// detections (`scan_budget_spent`).
    Forward,
}

/// Enough for a request of the default `max_request_bytes` (4 MiB) full of text and dense
/// with candidates.
const DEFAULT_SCAN_BUDGET: usize = 16 * 1024 * 1024;

fn default_scan_budget() -> usize {
    DEFAULT_SCAN_BUDGET
}

fn default_action() -> String {
    "redact".to_string()
}

fn default_vault_max_bytes() -> usize {
    DEFAULT_VAULT_MAX_BYTES
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            enabled: false,
            detectors: BTreeMap::new(),
            default_action: default_action(),
            custom: Vec::new(),
            allow: Vec::new(),
            hmac_secret: None,
            hmac_secret_env: None,
            vault_max_bytes: DEFAULT_VAULT_MAX_BYTES,
            vault_max_bytes_per_request: None,
            scan_budget: DEFAULT_SCAN_BUDGET,
            on_scan_budget: BudgetOutcome::Block,
            restore: false,
        }
    }
}

// Hand-written so the HMAC secret and allow-listed values never reach a log.
impl fmt::Debug for PiiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PiiConfig")
            .field("enabled", &self.enabled)
            .field("detectors", &self.detectors)
            .field("default_action", &self.default_action)
            .field("custom", &self.custom)
            .field("allow", &format_args!("[{} entries]", self.allow.len()))
            .field(
                "hmac_secret",
                &self.hmac_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("hmac_secret_env", &self.hmac_secret_env)
            .field("vault_max_bytes", &self.vault_max_bytes)
            .field(
                "vault_max_bytes_per_request",
                &self.vault_max_bytes_per_request,
            )
            .field("scan_budget", &self.scan_budget)
            .field("on_scan_budget", &self.on_scan_budget)
            .field("restore", &self.restore)
            .finish()
    }
}

/// What to do with a detected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `[EMAIL]`.
    Redact,
    /// Partial: `j***@example.com`, `************1111`.
    Mask,
    /// Refuse the whole request.
    Block,
    /// `[EMAIL:3f9a1c2b]`: the first 4 bytes of HMAC-SHA256(secret, value), in hex.
    Hash,
    /// `<EMAIL_1>`, the same for equal values within one request; restorable.
    Placeholder,
    /// Not detected at all.
    Off,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "redact" => Action::Redact,
            "mask" => Action::Mask,
            "block" => Action::Block,
            "hash" => Action::Hash,
            "placeholder" => Action::Placeholder,
            "off" => Action::Off,
            _ => return None,
        })
    }
}

/// What was found in one request: counts by detector name, never values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detections {
    /// Per detector name, sorted by name; only detectors that fired.
    pub counts: Vec<(String, u32)>,
    /// `placeholder` values redacted instead because the VM's vault budget was spent (also
    /// included in `counts`).
    pub fallback_redactions: u32,
    /// The scan budget ran out and (`on_scan_budget: forward`) some text went unscanned.
    pub scan_budget_spent: bool,
}

impl Detections {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
    /// Total detections over all detectors.
    pub fn total(&self) -> u32 {
        self.counts
            .iter()
            .fold(0u32, |acc, (_, n)| acc.saturating_add(*n))
    }
}

/// Why a request must be refused; names the data type only, never a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocked {
    /// A `block` detector fired.
    Detected { detector: String },
    /// The scan would exceed `pii.scan_budget` (with `on_scan_budget: block`).
    Budget { limit: usize },
}

/// The compiled `pii` configuration of one VM; immutable, shared by all its requests.
pub struct Scrubber {
    enabled: bool,
    restore: bool,
    engine: Option<Engine>,
    budget: Arc<Budget>,
    /// Each request vault's cap.
    vault_cap: usize,
}

// Hand-written: the engine holds the HMAC key.
impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrubber")
            .field("enabled", &self.enabled)
            .field("restore", &self.restore)
            .field("vault_bytes_in_use", &self.budget.used())
            .field("vault_max_bytes", &self.budget.max())
            .finish_non_exhaustive()
    }
}

impl Scrubber {
    /// Validates the whole section (even when disabled, so mistakes surface early) and builds
    /// the combined matcher when enabled. Errors name the field: `pii.custom[1].regex`.
    pub fn compile(cfg: &PiiConfig) -> Result<Scrubber, ConfigError> {
        let engine = Engine::compile(cfg)?;
        let restore = cfg.restore && engine.has_placeholders();
        let vault_cap = match cfg.vault_max_bytes_per_request {
            Some(n) if n > cfg.vault_max_bytes => {
                return Err(ConfigError::new(
                    "pii.vault_max_bytes_per_request",
                    format!(
                        "must be at most pii.vault_max_bytes ({})",
                        cfg.vault_max_bytes
                    ),
                ))
            }
            Some(n) => n,
            None => DEFAULT_VAULT_MAX_BYTES_PER_REQUEST.min(cfg.vault_max_bytes),
        };
        Ok(Scrubber {
            enabled: cfg.enabled,
            restore: cfg.enabled && restore,
            engine: if cfg.enabled { Some(engine) } else { None },
            budget: Arc::new(Budget::new(cfg.vault_max_bytes)),
            vault_cap,
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether answers need [`Vault::restore_response`] / [`EventRestorer`]: scrubbing is on,
    /// `restore` is set and some detector uses `placeholder`.
    pub fn restores(&self) -> bool {
        self.restore
    }

    /// A vault for one request, up to its cap, charged against this VM's budget until dropped.
    pub fn new_vault(&self) -> Vault {
        Vault::new(self.budget.clone(), self.vault_cap)
    }

    /// Bytes currently held by this VM's live vaults.
    pub fn vault_bytes_in_use(&self) -> usize {
        self.budget.used()
    }

    /// Scrubs every text of `req` a provider would see (see `walk.rs` for the list) in place.
    pub fn scrub_request(
        &self,
        req: &mut Request,
        vault: &mut Vault,
    ) -> Result<Detections, Blocked> {
        match &self.engine {
            Some(engine) if self.enabled => walk::scrub_request(engine, req, vault),
            _ => Ok(Detections::default()),
        }
    }

    /// Where detectors fire in `text`, without changing it or touching a vault (audit, tests).
    /// Same matching and allow list as scrubbing; `off` detectors are not reported.
    pub fn detect(&self, text: &str) -> Vec<Span> {
        match &self.engine {
            Some(engine) if self.enabled => engine
                .spans(text, &mut scrub::Meter::new(usize::MAX))
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Scrubs one text outside a request (e.g. for tests or other stages); same rules.
    pub fn scrub_text(
        &self,
        text: &str,
        vault: &mut Vault,
    ) -> Result<(String, Detections), Blocked> {
        match &self.engine {
            Some(engine) if self.enabled => {
                let mut st = scrub::State::new(engine, vault);
                let out = engine.scrub_text(text, &mut st)?;
                let det = st.finish();
                Ok((out.unwrap_or_else(|| text.to_string()), det))
            }
            _ => Ok((text.to_string(), Detections::default())),
        }
    }
}

#[cfg(test)]
mod tests;
