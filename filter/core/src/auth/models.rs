//! Model allow/deny lists: exact names, globs (`gpt-4o*`, `*`, `?`) and `re:` regexes, compiled
//! once at load and always matched against the whole model name.

use crate::error::ConfigError;
use regex::{Regex, RegexBuilder};

/// Keeps a hostile or mistaken pattern from costing unbounded memory at load.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Any,
    Regex(Regex),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ModelPatterns(Vec<Pattern>);

impl ModelPatterns {
    /// `field` names the list (`auth.keys[0].models`); errors name the entry.
    pub fn compile(list: &[String], field: &str) -> Result<ModelPatterns, ConfigError> {
        let mut out = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            let at = || format!("{field}[{i}]");
            let pattern = if let Some(re) = p.strip_prefix("re:") {
                Pattern::Regex(anchored(re).map_err(|e| {
                    ConfigError::new(at(), format!("invalid regular expression: {e}"))
                })?)
            } else if p.is_empty() {
                return Err(ConfigError::new(at(), "empty model pattern"));
            } else if p == "*" {
                Pattern::Any
            } else if p.contains(['*', '?']) {
                // `(?s)`: a `*` must span any character, or a model name with a newline in it
                // would slip past a deny glob.
                Pattern::Regex(
                    anchored(&format!("(?s){}", glob_to_regex(p)))
                        .map_err(|e| ConfigError::new(at(), format!("invalid glob: {e}")))?,
                )
            } else {
                Pattern::Exact(p.clone())
            };
            out.push(pattern);
        }
        Ok(ModelPatterns(out))
    }

    pub fn matches(&self, model: &str) -> bool {
        self.0.iter().any(|p| match p {
            Pattern::Exact(name) => name == model,
            Pattern::Any => true,
            Pattern::Regex(re) => re.is_match(model),
        })
    }
}

/// A user's regex must match the whole name: `re:gpt-4` must not allow `gpt-4o-mini`.
fn anchored(re: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn glob_to_regex(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    let mut literal = String::new();
    for c in glob.chars() {
        if c == '*' || c == '?' {
            out.push_str(&regex::escape(&literal));
            literal.clear();
            out.push_str(if c == '*' { ".*" } else { "." });
        } else {
            literal.push(c);
        }
    }
    out.push_str(&regex::escape(&literal));
    out
}
