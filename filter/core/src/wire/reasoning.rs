//! Reasoning across formats: the one table between effort levels and token budgets that every
//! codec uses, and how a reasoning signature's origin survives a client format that has a bare
//! signature field.
//!
//! Signatures (Anthropic `signature`, Gemini `thoughtSignature`, encrypted reasoning) go back only
//! to a provider of the same [`Origin`], unchanged, and are dropped anywhere else, never forged.
//! Formats that name the origin carry it themselves (OpenRouter-style `reasoning_details` with a
//! `format`); Anthropic's `signature` and `data` fields are bare strings, so a payload of another
//! origin travels there as `weir:<origin>:<payload>` ([`tag`]), which [`untag`] reads back, and an
//! Anthropic payload goes bare so a history stays valid for Anthropic itself.

use crate::ir::{Effort, Origin, Reasoning};

/// Token budget per effort level, for targets that only take budgets (Anthropic `budget_tokens`,
/// Gemini 2.x `thinkingBudget`, Bedrock Claude). Anthropic's minimum is 1024.
const BUDGETS: [(Effort, u32); 6] = [
    (Effort::Minimal, 1024),
    (Effort::Low, 2048),
    (Effort::Medium, 8192),
    (Effort::High, 16384),
    (Effort::Xhigh, 24576),
    (Effort::Max, 32768),
];

/// The budget an effort level stands for.
pub fn budget_for(effort: Effort) -> u32 {
    BUDGETS
        .iter()
        .find(|(e, _)| *e == effort)
        .map_or(8192, |(_, b)| *b)
}

/// The effort level nearest a token budget (on a log scale: below the geometric mean of two
/// neighbouring levels' budgets is the lower level).
pub fn effort_for(budget: u32) -> Effort {
    let b = u64::from(budget);
    BUDGETS
        .windows(2)
        .find_map(|w| match w {
            [(e, lo), (_, hi)] if b * b < u64::from(*lo) * u64::from(*hi) => Some(*e),
            _ => None,
        })
        .unwrap_or(Effort::Max)
}

/// Whether the request turns reasoning off.
pub fn is_off(r: &Reasoning) -> bool {
    r.enabled == Some(false)
}

/// The effort a request asks for: its level, else the level its budget stands for; `None` when
/// it only turns reasoning on (or lets the model decide).
pub fn effort_of(r: &Reasoning) -> Option<Effort> {
    r.effort.or_else(|| r.budget_tokens.map(effort_for))
}

/// The budget a request asks for: its budget, else its level's; `default` when it only turns
/// reasoning on.
pub fn budget_of(r: &Reasoning, default: Effort) -> u32 {
    r.budget_tokens
        .unwrap_or_else(|| budget_for(r.effort.unwrap_or(default)))
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Anthropic => "anthropic",
        Origin::Gemini => "gemini",
        Origin::OpenAiResponses => "openai-responses",
    }
}

const ORIGINS: [Origin; 3] = [Origin::Anthropic, Origin::Gemini, Origin::OpenAiResponses];

/// A payload as a client format of family `native` carries it in a bare string field.
pub fn tag(origin: Option<Origin>, native: Origin, payload: &str) -> String {
    match origin {
        Some(o) if o != native => format!("weir:{}:{payload}", origin_name(o)),
        _ => payload.to_string(),
    }
}

/// The origin and payload of a bare string field written by [`tag`]; an empty field is no
/// payload at all.
pub fn untag(native: Origin, s: &str) -> Option<(Origin, String)> {
    if s.is_empty() {
        return None;
    }
    for o in ORIGINS {
        let prefix = format!("weir:{}:", origin_name(o));
        if let Some(payload) = s.strip_prefix(&prefix) {
            return Some((o, payload.to_string()));
        }
    }
    Some((native, s.to_string()))
}

/// OpenRouter's `reasoning_details[].format` for an origin.
pub fn format_name(origin: Option<Origin>) -> &'static str {
    match origin {
        Some(Origin::Anthropic) => "anthropic-claude-v1",
        Some(Origin::Gemini) => "google-gemini-v1",
        Some(Origin::OpenAiResponses) => "openai-responses-v1",
        None => "unknown",
    }
}

/// The origin an OpenRouter `format` names; unknown formats have none (their payloads are
/// dropped rather than sent anywhere).
pub fn format_origin(name: &str) -> Option<Origin> {
    ORIGINS.into_iter().find(|o| format_name(Some(*o)) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_and_efforts_map_both_ways() {
        for (effort, budget) in BUDGETS {
            assert_eq!(effort_for(budget), effort);
            assert_eq!(budget_for(effort), budget);
        }
        assert_eq!(effort_for(0), Effort::Minimal);
        assert_eq!(effort_for(5000), Effort::Medium);
        assert_eq!(effort_for(u32::MAX), Effort::Max);
        let r = Reasoning {
            budget_tokens: Some(3000),
            ..Default::default()
        };
        assert_eq!(effort_of(&r), Some(Effort::Low));
        assert_eq!(budget_of(&r, Effort::Medium), 3000);
        assert_eq!(budget_of(&Reasoning::default(), Effort::Medium), 8192);
    }

    #[test]
    fn foreign_payloads_are_tagged_and_native_ones_stay_bare() {
        let native = Origin::Anthropic;
        assert_eq!(tag(Some(Origin::Anthropic), native, "EqQ"), "EqQ");
        let t = tag(Some(Origin::Gemini), native, "c2ln");
        assert_eq!(t, "weir:gemini:c2ln");
        assert_eq!(untag(native, &t), Some((Origin::Gemini, "c2ln".into())));
        assert_eq!(
            untag(native, "EqQ"),
            Some((Origin::Anthropic, "EqQ".into()))
        );
        assert_eq!(untag(native, ""), None);
        assert_eq!(
            format_origin(format_name(Some(Origin::OpenAiResponses))),
            Some(Origin::OpenAiResponses)
        );
        assert_eq!(format_origin("unknown"), None);
    }
}
