//! What one finished request tells operators: a [`Summary`] the gateway role builds, turned into
//! metric samples (for Envoy's `/stats/prometheus`) and a JSON line (for Envoy's access log).
//!
//! Proxy-wasm metrics have flat names, so labels are embedded Istio-style as `tag=.=value;.;`
//! prefixes, which Envoy's `stats_config.stats_tags` (see `envoy/demo.yaml`) extracts into
//! Prometheus labels. Every label value comes from configuration (route names, provider names,
//! key ids, detector names) or from a fixed set (outcomes, token types), never from client
//! input, so the number of series is bounded by the configuration. Names follow the
//! OpenTelemetry GenAI conventions where one applies (`gen_ai_client_token_usage`,
//! `gen_ai_server_time_to_first_token`), with the unit in the name since Envoy histograms
//! carry none.

use crate::ir::Usage;
use serde::{Deserialize, Serialize};

/// Energy a model spends per token, in watt-hours per thousand tokens.
///
/// Defaults follow Epoch AI's 2025 estimate for GPT-4o-class models ("How much energy does
/// ChatGPT use?"): about 0.3 Wh for a typical query of some 500 output tokens, i.e. 0.6 Wh per
/// thousand output tokens; prompt (prefill) tokens cost far less per token, taken as 0.25 Wh per
/// thousand from the same study's long-input figures. Estimates, not measurements: set the
/// figures per target when the provider publishes better ones.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    pub wh_per_1k_input_tokens: f64,
    pub wh_per_1k_output_tokens: f64,
}

impl Energy {
    pub const DEFAULT: Energy = Energy {
        wh_per_1k_input_tokens: 0.25,
        wh_per_1k_output_tokens: 0.6,
    };
}

impl Default for Energy {
    fn default() -> Self {
        Energy::DEFAULT
    }
}

/// World-average carbon intensity of electricity, g CO2e per kWh (Ember, Global Electricity
/// Review 2024: about 480 g/kWh for 2023). Set `grid_g_co2e_per_kwh` per provider region.
pub const DEFAULT_GRID_G_PER_KWH: f64 = 480.0;

/// Estimated milligrams of CO2e for `usage` on a model using `energy` in a grid of `grid`.
pub fn co2e_mg(usage: &Usage, energy: &Energy, grid_g_per_kwh: f64) -> u64 {
    let wh = (usage.input_tokens as f64 * energy.wh_per_1k_input_tokens
        + usage.output_tokens as f64 * energy.wh_per_1k_output_tokens)
        / 1000.0;
    // Wh × g/kWh = mg.
    let mg = wh * grid_g_per_kwh;
    if mg.is_finite() && mg > 0.0 {
        mg.round() as u64
    } else {
        0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
}

/// Tags of one series: `(tag, value)` pairs, at most [`MAX_TAGS`].
pub type Tags<'a> = [(&'static str, &'a str)];

/// The most tags any series carries.
pub const MAX_TAGS: usize = 4;

/// One value to add to a counter or record in a histogram. The series is named by its metric
/// and tag values, borrowed from the summary: the host only formats the full name
/// ([`Sample::series`]) the first time it meets a series, never per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample<'a> {
    pub kind: Kind,
    pub metric: &'static str,
    tags: [(&'static str, &'a str); MAX_TAGS],
    tag_count: usize,
    pub value: u64,
}

impl<'a> Sample<'a> {
    /// A series of more than [`MAX_TAGS`] tags does not compile.
    fn new<const N: usize>(
        kind: Kind,
        metric: &'static str,
        tags: [(&'static str, &'a str); N],
        value: u64,
    ) -> Self {
        const { assert!(N <= MAX_TAGS) };
        let mut all = [("", ""); MAX_TAGS];
        for (slot, tag) in all.iter_mut().zip(tags) {
            *slot = tag;
        }
        Sample {
            kind,
            metric,
            tags: all,
            tag_count: N,
            value,
        }
    }

    fn counter<const N: usize>(
        metric: &'static str,
        tags: [(&'static str, &'a str); N],
        value: u64,
    ) -> Self {
        Sample::new(Kind::Counter, metric, tags, value)
    }

    fn histogram<const N: usize>(
        metric: &'static str,
        tags: [(&'static str, &'a str); N],
        value: u64,
    ) -> Self {
        Sample::new(Kind::Histogram, metric, tags, value)
    }

    pub fn tags(&self) -> &Tags<'a> {
        self.tags.get(..self.tag_count).unwrap_or_default()
    }

    /// The full metric name with embedded labels.
    pub fn series(&self) -> String {
        series(self.metric, self.tags())
    }
}

/// Everything worth knowing about one finished request. Never holds prompt text or keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// The configured model route; `None` when no route matched.
    pub model: Option<String>,
    /// The provider that answered (last attempt).
    pub provider: Option<String>,
    /// The client key's configured id.
    pub key: Option<String>,
    pub status: u16,
    pub stream: bool,
    /// Upstream attempts Envoy made (more than one means a retry or failover happened).
    pub attempts: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub cost_micro_usd: u64,
    /// Estimated grams of CO2e × 1000 (see [`co2e_mg`]).
    pub co2e_mg: u64,
    pub duration_ms: u64,
    /// Streams only: from the request's arrival to the first answer bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u64>,
    /// PII detections by detector name (counts only).
    pub pii: Vec<(String, u32)>,
    /// Circuit-breaker events of this request: (target's provider, `open` / `half_open` /
    /// `closed` / `skipped` / `refused`), see `routing::health`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breaker: Vec<(String, &'static str)>,
    /// What the response cache did: `hit`, `miss` or `bypass`; absent when no route caches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// Request fields dropped because the provider that answered could not express them
    /// (`wire::drop`), in IR spelling.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// `estimate` when the request was charged its reservation because no usage came back (the
    /// client went away, or the stream was cut); `estimated_tokens` is that charge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charged: Option<&'static str>,
    #[serde(skip_serializing_if = "is_zero")]
    pub estimated_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Charged by estimate: the tokens and money reserved at admission.
    pub fn charge_estimate(&mut self, tokens: u64, micro_usd: u64) {
        self.charged = Some("estimate");
        self.estimated_tokens = tokens;
        self.cost_micro_usd = micro_usd;
    }

    pub fn set_usage(&mut self, usage: &Usage) {
        self.input_tokens = usage.input_tokens;
        self.output_tokens = usage.output_tokens;
        self.cached_input_tokens = usage.cached_input_tokens;
    }

    /// What happened, in one word: a bounded label value.
    pub fn outcome(&self) -> &'static str {
        match self.status {
            200..=299 => "success",
            401 | 403 => "denied",
            429 => "rate_limited",
            499 => "client_closed",
            400..=499 => "client_error",
            503 => "unavailable",
            504 => "timeout",
            _ => "upstream_error",
        }
    }

    /// The access-log line: this summary as JSON, plus the outcome.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            #[serde(flatten)]
            summary: &'a Summary,
            outcome: &'static str,
        }
        let line = Line {
            summary: self,
            outcome: self.outcome(),
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    pub fn samples<'s>(&'s self) -> Vec<Sample<'s>> {
        let model = self.model.as_deref().unwrap_or("-");
        let provider = self.provider.as_deref().unwrap_or("-");
        let key = self.key.as_deref().unwrap_or("-");
        let base = [("model", model), ("provider", provider), ("key", key)];
        let mut out = Vec::new();
        out.push(Sample::counter(
            "weir_requests_total",
            [base[0], base[1], base[2], ("outcome", self.outcome())],
            1,
        ));
        if self.input_tokens + self.output_tokens > 0 {
            for (kind, n) in [("input", self.input_tokens), ("output", self.output_tokens)] {
                out.push(Sample::counter(
                    "weir_tokens_total",
                    [base[0], base[1], base[2], ("token_type", kind)],
                    n,
                ));
            }
        }
        if self.estimated_tokens > 0 {
            out.push(Sample::counter(
                "weir_tokens_total",
                [base[0], base[1], base[2], ("token_type", "estimated")],
                self.estimated_tokens,
            ));
        }
        if self.cost_micro_usd > 0 {
            out.push(Sample::counter(
                "weir_cost_micro_usd_total",
                base,
                self.cost_micro_usd,
            ));
        }
        if self.co2e_mg > 0 {
            out.push(Sample::counter("weir_co2e_mg_total", base, self.co2e_mg));
        }
        if self.attempts > 1 {
            out.push(Sample::counter(
                "weir_failovers_total",
                [base[0], base[1]],
                1,
            ));
        }
        if let Some(result) = self.cache {
            out.push(Sample::counter(
                "weir_cache_requests_total",
                [base[0], ("cache", result)],
                1,
            ));
        }
        if self.status == 429 {
            out.push(Sample::counter(
                "weir_ratelimit_refusals_total",
                [base[0], base[2]],
                1,
            ));
        }
        for (target, event) in &self.breaker {
            out.push(Sample::counter(
                "weir_breaker_events_total",
                [base[0], ("provider", target.as_str()), ("event", event)],
                1,
            ));
        }
        for (detector, n) in &self.pii {
            out.push(Sample::counter(
                "weir_pii_detections_total",
                [("detector", detector.as_str())],
                u64::from(*n),
            ));
        }
        out.push(Sample::histogram(
            "weir_request_duration_ms",
            [base[0], base[1]],
            self.duration_ms,
        ));
        if let Some(t) = self.ttft_ms {
            out.push(Sample::histogram(
                "gen_ai_server_time_to_first_token_ms",
                [base[0], base[1]],
                t,
            ));
        }
        if self.input_tokens + self.output_tokens > 0 {
            for (kind, n) in [("input", self.input_tokens), ("output", self.output_tokens)] {
                out.push(Sample::histogram(
                    "gen_ai_client_token_usage",
                    [base[0], base[1], ("token_type", kind)],
                    n,
                ));
            }
        }
        out
    }
}

/// `tag=.=value;.;` for each tag, then the name. Values lose the characters that would break
/// extraction (`;`, `=`) and Envoy's name separator (`.`).
fn series(name: &str, tags: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (tag, value) in tags {
        s.push_str(tag);
        s.push_str("=.=");
        s.extend(value.chars().map(|c| match c {
            ';' | '=' | '.' => '_',
            c => c,
        }));
        s.push_str(";.;");
    }
    s.push_str(name);
    s
}

/// The tags [`Summary::samples`] uses, for Envoy's `stats_config.stats_tags`.
pub const TAGS: &[&str] = &[
    "model",
    "provider",
    "key",
    "outcome",
    "token_type",
    "detector",
    "event",
    "cache",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_embedded_the_way_stats_tags_extract_them() {
        let s = Summary {
            model: Some("gpt-4.1".into()),
            provider: Some("openai".into()),
            key: Some("team;a".into()),
            status: 200,
            attempts: 2,
            input_tokens: 5,
            output_tokens: 7,
            duration_ms: 12,
            ttft_ms: Some(3),
            pii: vec![("email".into(), 2)],
            ..Default::default()
        };
        let samples = s.samples();
        let names: Vec<String> = samples.iter().map(Sample::series).collect();
        assert!(names.iter().any(|n| n
            == "model=.=gpt-4_1;.;provider=.=openai;.;key=.=team_a;.;outcome=.=success;.;weir_requests_total"));
        let tokens: u64 = samples
            .iter()
            .filter(|s| s.kind == Kind::Counter && s.metric == "weir_tokens_total")
            .map(|s| s.value)
            .sum();
        assert_eq!(tokens, 12);
        assert!(names.iter().any(|n| n.ends_with("weir_failovers_total")));
        assert!(names
            .iter()
            .any(|n| n == "detector=.=email;.;weir_pii_detections_total"));
        assert!(names
            .iter()
            .any(|n| n.ends_with("gen_ai_server_time_to_first_token_ms")));
        for tag in [
            "model",
            "provider",
            "key",
            "outcome",
            "token_type",
            "detector",
        ] {
            assert!(TAGS.contains(&tag));
        }
    }

    #[test]
    fn carbon_is_tokens_times_energy_times_grid() {
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 1000,
            cached_input_tokens: 0,
            reasoning_tokens: 0,
        };
        // (0.25 + 0.6) Wh × 480 g/kWh = 408 mg.
        assert_eq!(
            co2e_mg(&usage, &Energy::DEFAULT, DEFAULT_GRID_G_PER_KWH),
            408
        );
        assert_eq!(co2e_mg(&usage, &Energy::DEFAULT, 0.0), 0);
    }

    #[test]
    fn outcomes_are_a_fixed_set_and_the_log_line_has_no_text() {
        let s = Summary {
            status: 429,
            ..Default::default()
        };
        assert_eq!(s.outcome(), "rate_limited");
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["outcome"], "rate_limited");
        assert!(s
            .samples()
            .iter()
            .any(|x| x.metric == "weir_ratelimit_refusals_total"));
    }
}
