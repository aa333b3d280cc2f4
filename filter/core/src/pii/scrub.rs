//! The one-pass matcher: every alternative of every active detector (custom first, then built-ins
//! in priority order) is one pattern of a single multi-pattern regex compiled once; a request
//! walks each text once with it. The lazy DFA reports which pattern matched, so no capture
//! groups are ever resolved.
//!
//! Overlaps are resolved by the regex itself: the earliest start wins, and at one start the
//! pattern listed first. A candidate its validator rejects is skipped as a whole (the scan
//! resumes at its end), so a failed card number never yields a "phone" from its middle; the
//! price is that a lower-priority detector matching at exactly the same start is not retried.
//! Cost: every pattern's match length is bounded (`detectors::MAX_MATCH_BYTES`) and the scan
//! never moves back, so a text costs O(its length) whatever it holds. Each request also has a
//! scan budget (`pii.scan_budget`): every text scanned charges its length as scanned (folded,
//! `fold.rs`) and every candidate [`CANDIDATE_COST`]; past it, `pii.on_scan_budget` says whether
//! the request is refused or the rest goes unscanned.
//! Replacements are built from ASCII labels, digits and `*`, plus (for `mask`) a kept part of
//! the value; JSON texts are scrubbed through their parsed values (`walk.rs`), never raw.

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};
use sha2::{Digest, Sha256};

use super::detectors::{self, MaskKind, Validator};
use super::fold;
use super::vault::Vault;
use super::{Action, Blocked, BudgetOutcome, Detections, PiiConfig};
use crate::error::ConfigError;

/// Compile-time ceilings: generous for the built-ins plus a few dozen custom patterns, small
/// enough that a pathological custom pattern fails at config time instead of eating the VM.
const REGEX_SIZE_LIMIT: usize = 8 * 1024 * 1024;
const DFA_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// What one candidate charges against the scan budget beyond its bytes: a search restart and a
/// validator run, each bounded by the longest match.
pub(crate) const CANDIDATE_COST: usize = 64;

/// Where a detector fired: byte offsets into the scanned text (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub detector: String,
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Detector {
    pub name: String,
    /// Upper-case name, used in `[EMAIL]`, `<EMAIL_1>`, `[EMAIL:..]`.
    pub label: String,
    pub action: Action,
    pub mask: MaskKind,
    /// Finds client text shaped like this label's placeholders, not personal data: never
    /// counted or reported (see [`literal_placeholders`]).
    pub literal: bool,
}

/// One pattern of the combined regex, indexed by its pattern ID.
struct Alt {
    detector: usize,
    validate: Validator,
}

/// Values never scrubbed.
struct Allow {
    /// ASCII-lowercased exact values.
    exact: Vec<String>,
    /// All `re:` entries as one whole-value regex.
    re: Option<Regex>,
}

impl Allow {
    fn permits(&self, value: &str) -> bool {
        self.exact.iter().any(|e| e.eq_ignore_ascii_case(value))
            || self.re.as_ref().is_some_and(|re| re.is_match(value))
    }
}

pub(crate) struct Engine {
    re: Option<Regex>,
    alts: Vec<Alt>,
    detectors: Vec<Detector>,
    allow: Allow,
    hmac_key: Option<Vec<u8>>,
    scan_budget: usize,
    on_scan_budget: BudgetOutcome,
}

/// Work left for one request's scan; see the module doc.
pub(crate) struct Meter {
    left: usize,
    /// The budget ran out at least once.
    pub(crate) spent: bool,
}

impl Meter {
    pub(crate) fn new(budget: usize) -> Self {
        Meter {
            left: budget,
            spent: false,
        }
    }

    /// Takes `n` units; `false` (and marked spent) when they are not there.
    fn take(&mut self, n: usize) -> bool {
        match self.left.checked_sub(n) {
            Some(rest) => {
                self.left = rest;
                true
            }
            None => {
                self.left = 0;
                self.spent = true;
                false
            }
        }
    }
}

/// Every pattern must have a bounded match length, so that a search ends within that many
/// bytes of its candidate's start (see the module doc).
pub(crate) fn bounded(pattern: &str) -> Result<(), String> {
    let hir = syntax::parse(pattern).map_err(|e| format!("invalid regex: {e}"))?;
    match hir.properties().maximum_len() {
        Some(n) if n <= detectors::MAX_MATCH_BYTES => Ok(()),
        _ => Err(format!(
            "must match at most {} bytes: bound every repetition (`{{1,64}}`, not `+` or `*`)",
            detectors::MAX_MATCH_BYTES
        )),
    }
}

fn field_err(field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
    ConfigError::new(field, msg)
}

fn parse_action(field: &str, s: &str) -> Result<Action, ConfigError> {
    Action::parse(s).ok_or_else(|| {
        field_err(
            field,
            format!(
                "unknown action `{s}` (expected redact, mask, block, hash, placeholder or off)"
            ),
        )
    })
}

fn valid_custom_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 32
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Engine {
    pub(crate) fn compile(cfg: &PiiConfig) -> Result<Engine, ConfigError> {
        Engine::compile_with(cfg, detectors::BUILTINS)
    }

    /// With another set of built-ins: tests compare the shipped detectors with a reference.
    pub(crate) fn compile_with(
        cfg: &PiiConfig,
        builtins: &[detectors::Builtin],
    ) -> Result<Engine, ConfigError> {
        let default = parse_action("pii.default_action", &cfg.default_action)?;
        for (name, action) in &cfg.detectors {
            let field = format!("pii.detectors.{name}");
            if detectors::builtin(name).is_none() {
                return Err(field_err(field, "unknown detector"));
            }
            parse_action(&field, action)?;
        }

        let mut dets: Vec<Detector> = Vec::new();
        // (pattern, detector index, validator), in priority order.
        let mut parts: Vec<(String, usize, Validator)> = Vec::new();
        // The field that asked for `hash`, to name it if there is no secret.
        let mut hash_field: Option<String> = None;

        for (i, c) in cfg.custom.iter().enumerate() {
            let field = format!("pii.custom[{i}]");
            if !valid_custom_name(&c.name) {
                return Err(field_err(
                    format!("{field}.name"),
                    "must be lowercase [a-z][a-z0-9_]*, at most 32 bytes",
                ));
            }
            if detectors::builtin(&c.name).is_some() || dets.iter().any(|d| d.name == c.name) {
                return Err(field_err(
                    format!("{field}.name"),
                    "duplicate detector name",
                ));
            }
            let action = parse_action(&format!("{field}.action"), &c.action)?;
            let re = build(&[&c.regex]).map_err(|e| field_err(format!("{field}.regex"), e))?;
            bounded(&c.regex).map_err(|e| field_err(format!("{field}.regex"), e))?;
            if re.is_match("") {
                return Err(field_err(
                    format!("{field}.regex"),
                    "must not match the empty string",
                ));
            }
            if action == Action::Hash && hash_field.is_none() {
                hash_field = Some(format!("{field}.action"));
            }
            if action != Action::Off {
                parts.push((
                    c.regex.clone(),
                    dets.len(),
                    Validator::Check(detectors::accept),
                ));
            }
            dets.push(Detector {
                name: c.name.clone(),
                label: c.name.to_ascii_uppercase(),
                action,
                mask: MaskKind::Generic,
                literal: false,
            });
        }

        for b in builtins {
            let (action, field) = match cfg.detectors.get(b.name) {
                Some(a) => (
                    parse_action(&format!("pii.detectors.{}", b.name), a)?,
                    format!("pii.detectors.{}", b.name),
                ),
                None => (default, "pii.default_action".to_string()),
            };
            if action == Action::Hash && hash_field.is_none() {
                hash_field = Some(field);
            }
            if action != Action::Off {
                for (pat, v) in b.alts {
                    parts.push(((*pat).to_string(), dets.len(), *v));
                }
            }
            dets.push(Detector {
                name: b.name.to_string(),
                label: b.name.to_ascii_uppercase(),
                action,
                mask: b.mask,
                literal: false,
            });
        }

        if cfg.restore {
            literal_placeholders(&mut dets, &mut parts);
        }
        let allow = compile_allow(&cfg.allow)?;
        let hmac_key = hmac_key(cfg, hash_field.as_deref())?;

        let (re, alts) = if parts.is_empty() || !cfg.enabled {
            (None, Vec::new())
        } else {
            let patterns: Vec<&str> = parts.iter().map(|(p, _, _)| p.as_str()).collect();
            let re = build(&patterns).map_err(|e| field_err("pii", e))?;
            let alts = parts
                .iter()
                .map(|(_, detector, validate)| Alt {
                    detector: *detector,
                    validate: *validate,
                })
                .collect();
            (Some(re), alts)
        };

        Ok(Engine {
            re,
            alts,
            detectors: dets,
            allow,
            hmac_key,
            scan_budget: cfg.scan_budget,
            on_scan_budget: cfg.on_scan_budget,
        })
    }

    pub(crate) fn has_placeholders(&self) -> bool {
        self.detectors
            .iter()
            .any(|d| d.action == Action::Placeholder)
    }

    /// Scrubs one text; `Ok(None)` when nothing changed (the common case allocates nothing).
    /// Validators, the allow list and every action see the folded value, so one value
    /// disguised two ways gets one placeholder and one hash.
    pub(crate) fn scrub_text(
        &self,
        text: &str,
        st: &mut State<'_>,
    ) -> Result<Option<String>, Blocked> {
        let Some(re) = &self.re else {
            return Ok(None);
        };
        // Detectors see the folded text (`fold.rs`); the original spans are what get replaced.
        let folded = fold::fold(text);
        let scan = folded.as_deref().unwrap_or(text);
        if !self.charge(&mut st.meter, scan.len())? {
            return Ok(None);
        }
        let mut map = folded.as_ref().map(|_| fold::Cursor::new(text));
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut meter = std::mem::replace(&mut st.meter, Meter::new(0));
        let done = self.for_each_hit(re, scan, &mut meter, |idx, s, e| {
            let (Some(det), Some(value)) = (self.detectors.get(idx), scan.get(s..e)) else {
                return Ok(());
            };
            let (s, e) = original_span(&mut map, s, e);
            let as_sent = text.get(s..e).unwrap_or(value);
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(text.get(copied..s).unwrap_or(""));
            self.replace(idx, det, value, as_sent, st, buf)?;
            copied = e;
            Ok(())
        });
        st.meter = meter;
        done?;
        Ok(out.map(|mut buf| {
            buf.push_str(text.get(copied..).unwrap_or(""));
            buf
        }))
    }

    /// A request's meter, full.
    pub(crate) fn meter(&self) -> Meter {
        Meter::new(self.scan_budget)
    }

    /// Charges `n` units: `Ok(true)` to scan on, `Ok(false)` to leave the rest unscanned, or
    /// the refusal, per `pii.on_scan_budget`.
    fn charge(&self, meter: &mut Meter, n: usize) -> Result<bool, Blocked> {
        if meter.take(n) {
            return Ok(true);
        }
        match self.on_scan_budget {
            BudgetOutcome::Block => Err(Blocked::Budget {
                limit: self.scan_budget,
            }),
            BudgetOutcome::Forward => Ok(false),
        }
    }

    /// Validated, non-allow-listed hits in `text`, in order and non-overlapping, as offsets into
    /// `text` itself (also when the scan ran on its folded form).
    pub(crate) fn spans(&self, text: &str, meter: &mut Meter) -> Result<Vec<Span>, Blocked> {
        let mut spans = Vec::new();
        if let Some(re) = &self.re {
            let folded = fold::fold(text);
            let scan = folded.as_deref().unwrap_or(text);
            if !self.charge(meter, scan.len())? {
                return Ok(spans);
            }
            let mut map = folded.as_ref().map(|_| fold::Cursor::new(text));
            self.for_each_hit(re, scan, meter, |idx, start, end| {
                let (start, end) = original_span(&mut map, start, end);
                if let Some(det) = self.detectors.get(idx).filter(|d| !d.literal) {
                    spans.push(Span {
                        detector: det.name.clone(),
                        start,
                        end,
                    });
                }
                Ok(())
            })?;
        }
        Ok(spans)
    }

    /// The single pass: calls `hit(detector index, start, end)` for each accepted candidate.
    fn for_each_hit(
        &self,
        re: &Regex,
        text: &str,
        meter: &mut Meter,
        mut hit: impl FnMut(usize, usize, usize) -> Result<(), Blocked>,
    ) -> Result<(), Blocked> {
        let mut input = Input::new(text);
        let mut done = 0;
        let mut pos = 0;
        while pos <= text.len() {
            input.set_start(pos);
            let Some(m) = re.search(&input) else {
                break;
            };
            let (ms, me) = (m.start(), m.end());
            if me <= ms {
                pos = next_boundary(text, me);
                continue;
            }
            pos = me;
            if !self.charge(meter, CANDIDATE_COST)? {
                break;
            }
            let Some(alt) = self.alts.get(m.pattern().as_usize()) else {
                continue;
            };
            let verdict = match alt.validate {
                Validator::Check(check) => check(text, ms, me).ok_or(me),
                Validator::Walk(walk) => walk(text, ms, me),
            };
            let (s, e) = match verdict {
                Ok(span) => span,
                Err(resume) => {
                    pos = resume.max(me);
                    continue;
                }
            };
            let Some(value) = text.get(s..e) else {
                continue;
            };
            // A validator may narrow the span (the rest is scanned again); never move back.
            if e > ms {
                pos = e;
            }
            if value.is_empty() || s < done || self.allow.permits(value) {
                continue;
            }
            hit(alt.detector, s, e)?;
            done = e;
        }
        Ok(())
    }

    /// Appends the replacement of `value` (a hit of detector `idx`, as detectors saw it; the
    /// client wrote it as `as_sent`) to `out`.
    fn replace(
        &self,
        idx: usize,
        det: &Detector,
        value: &str,
        as_sent: &str,
        st: &mut State<'_>,
        out: &mut String,
    ) -> Result<(), Blocked> {
        if !det.literal {
            st.count(idx);
        }
        match det.action {
            Action::Block => {
                return Err(Blocked::Detected {
                    detector: det.name.clone(),
                })
            }
            Action::Redact | Action::Off => redact(det, out),
            Action::Mask => mask(det, value, out),
            Action::Hash => match &self.hmac_key {
                Some(key) => {
                    let mac = hmac_sha256(key, value.as_bytes());
                    out.push('[');
                    out.push_str(&det.label);
                    out.push(':');
                    for b in mac.iter().take(4) {
                        out.push(hex_digit(b >> 4));
                        out.push(hex_digit(b & 0xf));
                    }
                    out.push(']');
                }
                // Unreachable by construction (compile requires a key); fail closed.
                None => redact(det, out),
            },
            Action::Placeholder => match st.vault.placeholder(&det.label, value, as_sent) {
                Some(p) => out.push_str(p),
                None => {
                    st.fallback = st.fallback.saturating_add(1);
                    redact(det, out);
                }
            },
        }
        Ok(())
    }
}

/// Client text shaped like a placeholder this configuration hands out (`<EMAIL_1>` typed in a
/// prompt, or quoted from an earlier answer that was not restored) is escaped: put in the vault
/// like a detected value, under its own label, so the provider sees another placeholder and the
/// answer's copy of it is restored to the text the client wrote. Without this the provider would
/// see the client's `<EMAIL_1>` and weir's for a real address as one, and the answer would
/// restore the address wherever the client's text was repeated. These patterns come first, so
/// no detector matches inside such text.
fn literal_placeholders(dets: &mut Vec<Detector>, parts: &mut Vec<(String, usize, Validator)>) {
    let labels: Vec<String> = dets
        .iter()
        .filter(|d| d.action == Action::Placeholder)
        .map(|d| d.label.clone())
        .collect();
    for label in labels {
        // Labels are `[A-Z][A-Z0-9_]*` (built-in names, or checked custom names), no escaping.
        let pattern = format!("<{label}_[1-9][0-9]{{0,9}}>");
        parts.insert(
            0,
            (pattern, dets.len(), Validator::Check(detectors::accept)),
        );
        dets.push(Detector {
            name: format!("{}_literal", label.to_ascii_lowercase()),
            label,
            action: Action::Placeholder,
            mask: MaskKind::Whole,
            literal: true,
        });
    }
}

/// One regex over `patterns` (pattern ID = index) with the `regex` crate's semantics for `&str`:
/// leftmost-first, Unicode, never an empty match inside a UTF-8 sequence.
fn build<P: AsRef<str>>(patterns: &[P]) -> Result<Regex, String> {
    let config = meta::Config::new()
        .match_kind(MatchKind::LeftmostFirst)
        .utf8_empty(true)
        .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
        .hybrid_cache_capacity(DFA_SIZE_LIMIT);
    meta::Builder::new()
        .configure(config)
        .syntax(syntax::Config::new().utf8(true))
        .build_many(patterns)
        .map_err(|e| match (e.size_limit(), e.syntax_error()) {
            (Some(n), _) => format!("regex too large (limit {n} bytes)"),
            (None, Some(s)) => format!("invalid regex: {s}"),
            (None, None) => format!("invalid regex: {e}"),
        })
}

fn compile_allow(entries: &[String]) -> Result<Allow, ConfigError> {
    let mut exact = Vec::new();
    let mut pats = Vec::new();
    for (i, a) in entries.iter().enumerate() {
        match a.strip_prefix("re:") {
            Some(p) => {
                build(&[p]).map_err(|e| field_err(format!("pii.allow[{i}]"), e))?;
                pats.push(format!("(?:{p})"));
            }
            None => exact.push(a.to_ascii_lowercase()),
        }
    }
    let re = if pats.is_empty() {
        None
    } else {
        let joined = format!("^(?:{})$", pats.join("|"));
        Some(build(&[joined]).map_err(|e| field_err("pii.allow", e))?)
    };
    Ok(Allow { exact, re })
}

fn hmac_key(cfg: &PiiConfig, hash_field: Option<&str>) -> Result<Option<Vec<u8>>, ConfigError> {
    let key = match (&cfg.hmac_secret, &cfg.hmac_secret_env) {
        (Some(_), Some(_)) => {
            return Err(field_err(
                "pii.hmac_secret",
                "set either hmac_secret or hmac_secret_env, not both",
            ))
        }
        (Some(s), None) => {
            if s.is_empty() {
                return Err(field_err("pii.hmac_secret", "must not be empty"));
            }
            Some(s.as_bytes().to_vec())
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v.into_bytes()),
            _ => {
                return Err(field_err(
                    "pii.hmac_secret_env",
                    format!("environment variable `{var}` is not set or empty"),
                ))
            }
        },
        (None, None) => None,
    };
    if key.is_none() {
        if let Some(field) = hash_field {
            return Err(field_err(
                field,
                "the hash action needs pii.hmac_secret or pii.hmac_secret_env",
            ));
        }
    }
    Ok(key)
}

/// Per-request scrubbing state: the vault and counts per detector (allocated at the first hit).
pub(crate) struct State<'a> {
    detectors: &'a [Detector],
    vault: &'a mut Vault,
    counts: Vec<u32>,
    fallback: u32,
    pub(crate) meter: Meter,
}

impl<'a> State<'a> {
    pub(crate) fn new(engine: &'a Engine, vault: &'a mut Vault) -> Self {
        State {
            detectors: &engine.detectors,
            vault,
            counts: Vec::new(),
            fallback: 0,
            meter: engine.meter(),
        }
    }

    fn count(&mut self, idx: usize) {
        if self.counts.is_empty() {
            self.counts = vec![0; self.detectors.len()];
        }
        if let Some(c) = self.counts.get_mut(idx) {
            *c = c.saturating_add(1);
        }
    }

    pub(crate) fn finish(self) -> Detections {
        let mut counts: Vec<(String, u32)> = self
            .detectors
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| (d.name.clone(), n))
            .collect();
        counts.sort();
        Detections {
            counts,
            fallback_redactions: self.fallback,
            scan_budget_spent: self.meter.spent,
        }
    }
}

/// A span of the scanned text as a span of the original (the same when nothing was folded).
fn original_span(map: &mut Option<fold::Cursor<'_>>, s: usize, e: usize) -> (usize, usize) {
    match map {
        Some(m) => (m.start(s), m.end(e)),
        None => (s, e),
    }
}

fn next_boundary(text: &str, at: usize) -> usize {
    let mut i = at.saturating_add(1);
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn redact(det: &Detector, out: &mut String) {
    out.push('[');
    out.push_str(&det.label);
    out.push(']');
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

/// Partial display per kind. Every kind hides at least all but the last 4 significant chars.
fn mask(det: &Detector, value: &str, out: &mut String) {
    match det.mask {
        MaskKind::Email => match value.split_once('@') {
            Some((local, domain)) => {
                out.extend(local.chars().take(1));
                out.push_str("***@");
                out.push_str(domain);
            }
            None => redact(det, out),
        },
        MaskKind::Card => {
            let n = value.chars().filter(char::is_ascii_digit).count();
            let keep = n.saturating_sub(4);
            out.extend(
                value
                    .chars()
                    .filter(char::is_ascii_digit)
                    .enumerate()
                    .map(|(i, c)| if i < keep { '*' } else { c }),
            );
        }
        MaskKind::Phone => mask_digits_keep_last(value, 2, out),
        MaskKind::Ssn => mask_digits_keep_last(value, 4, out),
        MaskKind::Iban => {
            let n = value.chars().filter(|c| !matches!(c, ' ' | '-')).count();
            out.extend(
                value
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-'))
                    .enumerate()
                    .map(|(i, c)| if i < 2 || i + 4 >= n { c } else { '*' }),
            );
        }
        MaskKind::Ip => {
            let sep = if value.contains(':') { ':' } else { '.' };
            match value.split(sep).find(|g| !g.is_empty()) {
                Some(first) if value.starts_with(first) => out.push_str(first),
                _ => out.push(sep),
            }
            out.push(sep);
            out.push('*');
        }
        MaskKind::Secret => {
            let keep = (value.chars().count() / 4).min(4);
            out.extend(value.chars().take(keep));
            out.push_str("****");
        }
        MaskKind::Whole => redact(det, out),
        MaskKind::Generic => {
            let n = value.chars().count();
            let keep = (n / 4).min(4);
            out.extend(
                value
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i + keep < n { '*' } else { c }),
            );
        }
    }
}

fn mask_digits_keep_last(value: &str, keep: usize, out: &mut String) {
    let total = value.chars().filter(char::is_ascii_digit).count();
    let hide = total.saturating_sub(keep);
    let mut seen = 0;
    out.extend(value.chars().map(|c| {
        if c.is_ascii_digit() {
            seen += 1;
            if seen <= hide {
                return '*';
            }
        }
        c
    }));
}

/// RFC 2104 HMAC over SHA-256, from `sha2` alone (no other crate is available).
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        let d = Sha256::digest(key);
        for (dst, src) in k.iter_mut().zip(d.iter()) {
            *dst = *src;
        }
    } else {
        for (dst, src) in k.iter_mut().zip(key.iter()) {
            *dst = *src;
        }
    }
    let mut ipad = [0u8; BLOCK];
    let mut opad = [0u8; BLOCK];
    for ((i, o), kb) in ipad.iter_mut().zip(opad.iter_mut()).zip(k.iter()) {
        *i = kb ^ 0x36;
        *o = kb ^ 0x5c;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize();
    outer.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn digit_masks_keep_the_tail_only() {
        let masked = |v: &str, keep: usize| {
            let mut out = String::new();
            mask_digits_keep_last(v, keep, &mut out);
            out
        };
        assert_eq!(masked("123-45-6789", 4), "***-**-6789");
        assert_eq!(masked("+1 415", 2), "+* *15");
    }
}
