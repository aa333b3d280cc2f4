//! Built-in detectors: regex alternatives for the one combined matcher, in priority order, each
//! with a validator that runs only on its candidates (checksums, ranges, surrounding context).
//!
//! Patterns run on the normalised text (`fold.rs`: full-width ASCII folded, invisible characters
//! dropped). They are ASCII but for the internationalised email alternative's code-point class
//! and the accented phone words (`tél`), and use `(?-u:\b)`: a Unicode `\b` makes the lazy DFA
//! give up on non-ASCII text, and Unicode classes (`\p{L}`) bloat compile time and wasm size for
//! nothing here.
//! Validators get the whole text and the candidate span and return the (possibly narrowed) span
//! to act on, or `None` to drop the candidate. They only slice through `str::get`, and allocate
//! nothing: they run on every candidate, and most candidates are dropped.
//!
//! Linear time: every pattern has a bounded match length (at most [`MAX_MATCH_BYTES`], checked
//! when the matcher is built), so a search never runs on past a candidate by more than that,
//! however the text repeats. Values that can be longer (PEM blocks, JWTs, API keys) are matched
//! by their head only; their validator walks the rest in plain code, up to a cap.

/// The longest match any pattern (built-in or custom) may have.
pub(crate) const MAX_MATCH_BYTES: usize = 1024;

/// How far a validator walks past its head: beyond any real PEM key, token or JWT.
const PEM_MAX_BYTES: usize = 64 * 1024;
const TOKEN_MAX_BYTES: usize = 1024;
const JWT_MAX_BYTES: usize = 16 * 1024;

/// A span to scrub, or (`Err`) where the scan resumes.
pub(crate) type Walked = Result<(usize, usize), usize>;

/// Judges a candidate `text[start..end]`.
#[derive(Clone, Copy)]
pub(crate) enum Validator {
    /// Returns the span to scrub, or `None` (the scan resumes at the candidate's end).
    Check(fn(&str, usize, usize) -> Option<(usize, usize)>),
    /// For a head that the validator extends in plain code: the span to scrub, or where the
    /// scan resumes (past what the walk showed holds no other value), so that no stretch of
    /// text is walked again for every head in it.
    Walk(fn(&str, usize, usize) -> Walked),
}
use Validator::{Check, Walk};

/// How `mask` shows a value of this detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskKind {
    Email,
    Card,
    Phone,
    Ssn,
    Iban,
    Ip,
    /// Keep a short prefix (`AKIA****`), which names the key type but not the key.
    Secret,
    /// Nothing is worth keeping: same as redact.
    Whole,
    /// Custom detectors: keep the last quarter (at most 4 chars).
    Generic,
}

pub(crate) struct Builtin {
    pub name: &'static str,
    pub mask: MaskKind,
    /// One or more alternatives; each is its own group in the combined regex so its validator
    /// knows which shape matched.
    pub alts: &'static [(&'static str, Validator)],
}

/// In priority order: at one start position the first alternative that matches wins, so the
/// more specific shapes come first.
pub(crate) const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "private_key",
        mask: MaskKind::Whole,
        alts: &[(
            // Only the header: the block itself is found by `private_key`, which walks to the
            // END line in plain code (a PEM body is longer than any candidate may be).
            r"-----BEGIN (?:[A-Z0-9]{1,16} ){0,3}PRIVATE KEY(?: BLOCK)?-----",
            Walk(private_key),
        )],
    },
    Builtin {
        name: "jwt",
        mask: MaskKind::Secret,
        alts: &[(
            // Header start only; `jwt` walks the three segments.
            r"(?-u:\b)eyJ[A-Za-z0-9_-]{8}",
            Walk(jwt),
        )],
    },
    Builtin {
        name: "github_token",
        mask: MaskKind::Secret,
        alts: &[(
            r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?-u:\b)",
            Check(accept),
        )],
    },
    Builtin {
        name: "api_key",
        mask: MaskKind::Secret,
        // OpenAI (`sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`) and Anthropic (`sk-ant-api03-`)
        // keys all share the `sk-` prefix and a long random tail.
        alts: &[(r"(?-u:\b)sk-[A-Za-z0-9_-]{20}", Walk(api_key))],
    },
    Builtin {
        name: "aws_access_key",
        mask: MaskKind::Secret,
        alts: &[(
            r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?-u:\b)",
            Check(accept),
        )],
    },
    Builtin {
        name: "email",
        mask: MaskKind::Email,
        // ASCII and internationalised (RFC 6531) addresses; see `EMAIL`.
        alts: &[(EMAIL, Check(email))],
    },
    Builtin {
        name: "iban",
        mask: MaskKind::Iban,
        alts: &[(
            // Grouped by spaces, by dashes (`DE89-3704-...`, as some banking apps copy it) or not.
            r"(?-u:\b)[A-Za-z]{2}[0-9]{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}(?:[ -]?[A-Za-z0-9]{1,3})?(?-u:\b)",
            Check(iban),
        )],
    },
    Builtin {
        name: "credit_card",
        mask: MaskKind::Card,
        alts: &[(
            // 4-4-4-4(-3) and friends, Amex/Diners 4-6-5/4-6-4, or 13-19 contiguous digits.
            r"(?-u:\b)(?:[0-9]{4}(?:[ -][0-9]{4}){2}[ -][0-9]{1,4}(?:[ -][0-9]{1,3})?|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}|[0-9]{13,19})(?-u:\b)",
            Check(credit_card),
        )],
    },
    Builtin {
        name: "us_ssn",
        mask: MaskKind::Ssn,
        alts: &[(
            r"(?-u:\b)[0-9]{3}[ -][0-9]{2}[ -][0-9]{4}(?-u:\b)",
            Check(us_ssn),
        )],
    },
    Builtin {
        name: "phone",
        mask: MaskKind::Phone,
        alts: &[
            // International: +44 20 7946 0958, +1 (415) 555-2671, +44 (0)20 ..., 0044 20 ...
            (
                r"(?:\+|(?-u:\b)00)[1-9][0-9]{0,2}(?:[ .-]?\(0\))?(?:[ .-]?\(?[0-9]{1,5}\)?){1,6}(?-u:\b)",
                Check(phone_intl),
            ),
            // North American: (415) 555-2671, 415.555.2671, 1-800-555-0199.
            (
                r"(?:(?-u:\b)1[ .-])?(?:\([2-9][0-9]{2}\) ?|(?-u:\b)[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}(?-u:\b)",
                Check(phone_nanp),
            ),
            // National trunk-prefixed: 020 7946 0958, 06 12 34 56 78, 030/12345678.
            (
                r"(?-u:\b)0[1-9][0-9]{0,3}(?:[ ./-][0-9]{2,8}){1,4}(?-u:\b)",
                Check(phone_national),
            ),
            // No separators: only a phone word a few words before says these digits are a
            // number (`Tel.: 03012345678`, `call me on 4155552671`). The match starts at the
            // word, ahead of the card pattern that would otherwise claim a 13-digit run.
            (
                r"(?i:(?-u:\b)(?:phone|telephone|t[ée]l[ée]phone|t[ée]l|mobile?|cell(?:phone)?|call|telefon(?:nummer)?|handy(?:nummer)?|portable))(?-u:\b)[^0-9@+\n]{0,24}\+?[0-9]{10,13}(?:[^0-9A-Za-z_@]|$)",
                Check(phone_keyword),
            ),
        ],
    },
    Builtin {
        name: "ipv6",
        mask: MaskKind::Ip,
        alts: &[(
            r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{0,37}[0-9A-Fa-f]",
            Check(ipv6),
        )],
    },
    Builtin {
        name: "ipv4",
        mask: MaskKind::Ip,
        alts: &[(
            r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)",
            Check(ipv4),
        )],
    },
];

/// Email addresses, ASCII or internationalised (RFC 6531: `jörg@müller.de`, `用户@例子.广告`).
///
/// `N` below (written out, the regex has no macros) is any non-ASCII character but Latin-1
/// punctuation (no-break space, `«`, `»`, `¿`), general punctuation (quotes, dashes, `…`) and
/// CJK punctuation (`、`, `。`, `「`), which end a value rather than belong to it: a code-point
/// class, not `\p{L}`, whose Unicode tables would cost wasm size.
/// - Local part: `(?:[A-Za-z0-9._%+-]|N){1,64}`. One pattern with one local part, so that on
///   ASCII text the matcher tracks one run, as it did before `N` (two alternatives made a
///   realistic prompt's scan a third slower).
/// - Domain: the ASCII form first (up to 9 labels of up to 63 characters, a TLD of letters),
///   else the internationalised one, with non-ASCII letters in any label: shorter labels and
///   fewer (up to 5 of up to 32 characters, then a TLD of ASCII letters or of `N` only, `广告`),
///   since `N` takes up to 4 bytes and the whole must stay within MAX_MATCH_BYTES (998 bytes).
const EMAIL: &str = concat!(
    r"(?:[A-Za-z0-9._%+-]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]){1,64}@",
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){0,8}\.[A-Za-z]{2,24}(?-u:\b)",
    r"|(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}])",
    r"(?:(?:[A-Za-z0-9-]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]){0,30}(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]))?",
    r"(?:\.(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}])(?:(?:[A-Za-z0-9-]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]){0,30}(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]))?){0,4}",
    r"\.(?:[A-Za-z]{2,24}(?-u:\b)|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]{2,24}))",
);

pub(crate) fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

pub(crate) fn accept(_text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    Some((s, e))
}

fn prev_chars(text: &str, s: usize) -> (Option<char>, Option<char>) {
    let mut it = text.get(..s).unwrap_or("").chars().rev();
    (it.next(), it.next())
}

fn next_chars(text: &str, e: usize) -> (Option<char>, Option<char>) {
    let mut it = text.get(e..).unwrap_or("").chars();
    (it.next(), it.next())
}

fn is_alnum(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// The candidate is one piece of a longer token: `ORD-4155552671`, `v1.2.3.4.5`, `x/123-45-6789`.
fn glued_left(text: &str, s: usize) -> bool {
    let (p1, p2) = prev_chars(text, s);
    match p1 {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => true,
        Some('.' | '-' | '/' | '_' | '#') => is_alnum(p2),
        _ => false,
    }
}

/// Like [`glued_left`], on the right: `2671-12`, `1.2.3.4.5`, `123-45-6789/2`.
fn glued_right(text: &str, e: usize) -> bool {
    let (n1, n2) = next_chars(text, e);
    match n1 {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => true,
        Some('.' | '-' | '/' | ':' | '_') => is_alnum(n2),
        // `1234,5678` continues a number; `4111...,Amex` is a list.
        Some(',') => n2.is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    }
}

fn digits(s: &str) -> impl DoubleEndedIterator<Item = u32> + '_ {
    s.chars().filter_map(|c| c.to_digit(10))
}

/// Separators between digit groups, in order (parentheses excluded).
fn separators(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().filter(|c| matches!(c, ' ' | '.' | '-' | '/'))
}

fn uniform_separators(s: &str) -> bool {
    let mut seps = separators(s);
    match seps.next() {
        None => true,
        Some(first) => seps.all(|c| c == first),
    }
}

/// Over the digits in order (the check runs from the last one).
pub(crate) fn luhn(digits: impl DoubleEndedIterator<Item = u32>) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.rev().enumerate() {
        let v = if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
        sum = sum.wrapping_add(v);
    }
    sum % 10 == 0
}

fn credit_card(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    if !uniform_separators(cand) || glued_left(text, s) || glued_right(text, e) {
        return None;
    }
    // Issuer ranges all start with 2-6; this drops millisecond timestamps and most ids.
    let first = digits(cand).next()?;
    let n = digits(cand).count();
    if !(13..=19).contains(&n) || !(2..=6).contains(&first) || !luhn(digits(cand)) {
        return None;
    }
    // A run of one repeated digit passes Luhn for some lengths and is never a real card.
    if digits(cand).all(|d| d == first) {
        return None;
    }
    Some((s, e))
}

fn us_ssn(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    if !uniform_separators(cand) || glued_left(text, s) || glued_right(text, e) {
        return None;
    }
    let mut ds = digits(cand);
    let mut num = |n: usize| ds.by_ref().take(n).fold(0u32, |a, d| a * 10 + d);
    let (area, group, serial) = (num(3), num(2), num(4));
    // SSA rules: area 000, 666 and 900-999 are never issued; group 00 and serial 0000 neither.
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return None;
    }
    Some((s, e))
}

/// ISO 13616 IBAN lengths per country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

pub(crate) fn iban_mod97(compact: &[u8]) -> bool {
    let (head, tail) = (compact.get(..4), compact.get(4..));
    let (Some(head), Some(tail)) = (head, tail) else {
        return false;
    };
    let mut rem = 0u32;
    for &b in tail.iter().chain(head.iter()) {
        rem = match b {
            b'0'..=b'9' => (rem * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

/// Longer than any length in [`IBAN_LENGTHS`].
const IBAN_MAX: usize = 34;

fn iban(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    let country = cand.get(..2)?;
    let want = IBAN_LENGTHS
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(country))?
        .1;
    // The greedy pattern may run into a following word ("... 19 AND"): keep exactly the
    // country's length and require that cut to fall at a token end.
    // One kind of separator: `DE89 3704-0044` is no way anyone writes an IBAN.
    if cand.contains(' ') && cand.contains('-') {
        return None;
    }
    let mut compact = [0u8; IBAN_MAX];
    let mut len = 0;
    let mut end = s;
    for (i, b) in cand.bytes().enumerate() {
        if len == want {
            break;
        }
        if b != b' ' && b != b'-' {
            *compact.get_mut(len)? = b.to_ascii_uppercase();
            len += 1;
        }
        end = s + i + 1;
    }
    if len != want || glued_left(text, s) {
        return None;
    }
    // `-` and one more alphanumeric continue the token (`DE89-...-00-7`), as they do on the left.
    let (n1, n2) = next_chars(text, end);
    if is_alnum(n1) || (n1 == Some('-') && is_alnum(n2)) || !iban_mod97(compact.get(..len)?) {
        return None;
    }
    Some((s, end))
}

fn email(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    let (local, domain) = cand.split_once('@')?;
    // CJK text runs into an ASCII address without a space (`連絡先はjohn@example.com`): the
    // address starts after the last CJK character. A CJK local part with an ASCII tail and a
    // non-ASCII domain (`用户abc@例子.广告`) is kept whole.
    let cut = if domain.is_ascii() {
        local
            .char_indices()
            .rfind(|(_, c)| is_cjk(*c))
            .map_or(0, |(i, c)| i + c.len_utf8())
    } else {
        0
    };
    let cand = text.get(s + cut..e)?;
    // Local parts do not start with punctuation; markdown and prose often glue some on.
    let trim = cand.len() - cand.trim_start_matches(['.', '-', '+', '%']).len();
    let s = s + cut + trim;
    let cand = text.get(s..e)?;
    let (local, domain) = cand.split_once('@')?;
    if local.is_empty()
        || local.chars().count() > 64
        || local.ends_with('.')
        || local.contains("..")
    {
        return None;
    }
    let tld = domain.rsplit('.').next()?;
    // Retina assets (`icon@2x.png`) and similar file names look like addresses.
    const FILE_EXTS: &[&str] = &[
        "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tiff", "avif", "js", "css",
    ];
    if FILE_EXTS.iter().any(|x| x.eq_ignore_ascii_case(tld)) {
        return None;
    }
    Some((s, e))
}

/// Han, kana, Hangul and CJK compatibility ideographs: scripts written without spaces.
fn is_cjk(c: char) -> bool {
    matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}')
}

/// The end of the run of bytes in `class` starting at `from`, walking at most to `limit`.
fn run_end(text: &str, from: usize, limit: usize, class: impl Fn(u8) -> bool) -> usize {
    let bytes = text.as_bytes();
    let limit = limit.min(bytes.len());
    let mut i = from;
    while i < limit && bytes.get(i).is_some_and(|b| class(*b)) {
        i += 1;
    }
    i
}

fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `eyJ` + 8 matched: header, payload and (possibly empty) signature segments, dot-separated.
/// On a miss the scan resumes after the header run only: a JWT may start in the payload run.
fn jwt(text: &str, s: usize, _e: usize) -> Walked {
    let limit = s.saturating_add(JWT_MAX_BYTES);
    let head = run_end(text, s, limit, token_byte);
    if text.as_bytes().get(head) != Some(&b'.') {
        return Err(head);
    }
    let payload = head + 1;
    let payload_end = run_end(text, payload, limit, token_byte);
    if payload_end - payload < 8 || text.as_bytes().get(payload_end) != Some(&b'.') {
        return Err(head);
    }
    let end = run_end(text, payload_end + 1, limit, token_byte);
    if end == limit {
        return Err(head);
    }
    Ok((s, end))
}

/// A PEM header matched: up to the first END line that closes it, or, for a truncated paste,
/// as far as base64 goes. `\\` covers keys pasted JSON-escaped (`\n` as two chars). The walk
/// stops at the next BEGIN line, which starts another block (and so is not walked twice).
fn private_key(text: &str, s: usize, e: usize) -> Walked {
    let mut limit = e.saturating_add(PEM_MAX_BYTES).min(text.len());
    if let Some(next) = text.get(e..limit).and_then(|t| t.find("-----BEGIN ")) {
        limit = e + next;
    }
    let body = |b: u8| b.is_ascii_alphanumeric() || b"+/=\t\r\n :,.()\\-".contains(&b);
    let body_end = run_end(text, e, limit, body);
    let mut from = e;
    while let Some(at) = text.get(from..body_end).and_then(|t| t.find("-----END ")) {
        let marker = from + at;
        if let Some(end) = pem_end_line(text, marker + "-----END ".len()) {
            return Ok((s, end));
        }
        from = marker + 1;
    }
    let base64 = |b: u8| b.is_ascii_alphanumeric() || b"+/=\t\r\n\\".contains(&b);
    Ok((s, run_end(text, e, limit, base64)))
}

/// After `-----END `: `(?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----`; returns its end.
fn pem_end_line(text: &str, mut at: usize) -> Option<usize> {
    for _ in 0..=3 {
        let rest = text.get(at..)?;
        if let Some(after) = rest.strip_prefix("PRIVATE KEY") {
            let tail = if after.starts_with(" BLOCK-----") {
                " BLOCK-----".len()
            } else if after.starts_with("-----") {
                "-----".len()
            } else {
                0
            };
            if tail > 0 {
                return Some(at + "PRIVATE KEY".len() + tail);
            }
        }
        let word = run_end(text, at, at + 16, |b| {
            b.is_ascii_uppercase() || b.is_ascii_digit()
        });
        if word == at || text.as_bytes().get(word) != Some(&b' ') {
            return None;
        }
        at = word + 1;
    }
    None
}

/// The whole token run is one candidate: on a miss the scan resumes after it.
fn api_key(text: &str, s: usize, e: usize) -> Walked {
    let e = run_end(text, e, s.saturating_add(TOKEN_MAX_BYTES), token_byte);
    let body = text.get(s..e).and_then(|v| v.get(3..)).ok_or(e)?;
    // Random keys mix letters and digits; `sk-some-long-hyphenated-name` does not.
    let has_digit = body.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = body.bytes().any(|b| b.is_ascii_alphabetic());
    let longest_word = body.split(['-', '_']).map(str::len).max().unwrap_or(0);
    if has_digit && has_alpha && longest_word >= 16 {
        Ok((s, e))
    } else {
        Err(e)
    }
}

fn ipv4(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    for part in cand.split('.') {
        let v: u32 = part.parse().ok()?;
        if v > 255 || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
    }
    // Only a neighbouring dotted number makes this part of something longer (`1.2.3.4.5`);
    // `/8` (CIDR), `:8080` (port) and `-10.0.0.9` (range) are how addresses are written.
    let (p1, p2) = prev_chars(text, s);
    let (n1, n2) = next_chars(text, e);
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let letter = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphabetic());
    if (p1 == Some('.') && digit(p2))
        || (n1 == Some('.') && digit(n2))
        || (matches!(n1, Some('-' | '_')) && letter(n2))
    {
        return None;
    }
    if looks_like_version(text, s) {
        return None;
    }
    Some((s, e))
}

/// `version 1.2.3.4`, `v1.2.3.4`, `pkg==1.2.3.4`, `AssemblyVersion("1.0.0.0")`.
fn looks_like_version(text: &str, s: usize) -> bool {
    let (p1, p2) = prev_chars(text, s);
    // `==`, `>=`, `~=` are version pins; a lone `=` is an ordinary assignment.
    let pinned = p1 == Some('=') && matches!(p2, Some('=' | '>' | '<' | '~' | '!'));
    if pinned || matches!(p1, Some('v' | 'V' | '@' | '~' | '^')) {
        return true;
    }
    const SPAN: usize = 24;
    let mut before = [0u8; SPAN];
    let src = text
        .as_bytes()
        .get(s.saturating_sub(SPAN)..s)
        .unwrap_or(&[]);
    for (dst, b) in before.iter_mut().zip(src) {
        *dst = b.to_ascii_lowercase();
    }
    let before = before.get(..src.len()).unwrap_or(&[]);
    const WORDS: &[&[u8]] = &[
        b"version",
        b"ver.",
        b"release",
        b"build",
        b"firmware",
        b"v.",
        b"rev ",
        b"revision",
    ];
    WORDS
        .iter()
        .any(|w| before.windows(w.len()).any(|win| win == *w))
}

fn ipv6(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    let (p1, _) = prev_chars(text, s);
    if matches!(p1, Some(c) if c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '_')) {
        return None;
    }
    let (n1, n2) = next_chars(text, e);
    if is_alnum(n1) || n1 == Some('_') || (n1 == Some(':') && is_alnum(n2)) {
        return None;
    }
    // Scoped names (`E::A`, `dead::beef`) parse as addresses; real ones almost always hold a
    // digit.
    if !cand.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    cand.parse::<std::net::Ipv6Addr>().ok()?;
    Some((s, e))
}

/// Whether the number at `text[s..e]` stands alone on its left.
fn phone_left_ok(text: &str, s: usize) -> bool {
    let (p1, p2) = prev_chars(text, s);
    match p1 {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '+' => false,
        Some('.' | '-' | '/' | '#' | '=') => !is_alnum(p2),
        _ => true,
    }
}

/// The end of the number at `text[s..e]` with its extension, if it stands alone on its right.
/// `dash_ext`: a `-` and a short digit group after it is a German extension (Durchwahl,
/// `030/1234567-89`); only where the number itself has no dash.
fn phone_right_end(text: &str, s: usize, e: usize, dash_ext: bool) -> Option<usize> {
    let e = extension_end(text, e, dash_ext);
    // One more digit group after a space means a longer run (lottery draws, numeric tables)
    // of which a phone-shaped prefix is only a coincidence.
    let (n1, n2) = next_chars(text, e);
    let continues = n1 == Some(' ') && n2.is_some_and(|c| c.is_ascii_digit());
    (!continues && !glued_right(text, e) && !id_context(text, s)).then_some(e)
}

/// Words that introduce an extension, lower-case, longest first where one starts another.
const EXTENSION_WORDS: &[&str] = &["extension", "extn", "ext", "poste", "durchwahl", "dw", "x"];

/// Past an extension after a number ending at `e` (`ext. 204`, `x12`, `, poste 12`,
/// `Durchwahl 35`, `-89` when `dash_ext`), or `e` itself. Walks at most ~30 bytes.
fn extension_end(text: &str, e: usize, dash_ext: bool) -> usize {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let skip_spaces = |mut i: usize| {
        for _ in 0..2 {
            if at(i) == b' ' {
                i += 1;
            }
        }
        i
    };
    let digits_end =
        |from: usize, max: usize| run_end(text, from, from + max, |b| b.is_ascii_digit());
    // The extension's digits end the value only where a word ends.
    let word_end = |i: usize| !at(i).is_ascii_alphanumeric() && at(i) != b'_';
    if dash_ext && at(e) == b'-' {
        let end = digits_end(e + 1, 5);
        return if end > e + 1 && word_end(end) { end } else { e };
    }
    let mut i = skip_spaces(e);
    if matches!(at(i), b',' | b';') {
        i = skip_spaces(i + 1);
    }
    let open = at(i) == b'(';
    if open {
        i += 1;
    }
    let Some(word) = EXTENSION_WORDS.iter().find(|w| {
        bytes
            .get(i..i + w.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(w.as_bytes()))
    }) else {
        return e;
    };
    i += word.len();
    if matches!(at(i), b'.' | b':') {
        i += 1;
    }
    i = skip_spaces(i);
    let end = digits_end(i, 6);
    if end == i {
        return e;
    }
    let end = if open && at(end) == b')' {
        end + 1
    } else {
        end
    };
    if word_end(end) {
        end
    } else {
        e
    }
}

/// A label just before the digits says they are a reference, not a phone number.
fn id_context(text: &str, s: usize) -> bool {
    let mut from = s.saturating_sub(20);
    while !text.is_char_boundary(from) {
        from = from.saturating_sub(1);
    }
    let before = text.get(from..s).unwrap_or("");
    // Only the last word or two count: "ref. ", "order #", "invoice no ".
    let tail = before
        .trim_end_matches([' ', ':', '#', '.', '='])
        .as_bytes();
    const WORDS: &[&str] = &[
        // Not "no"/"nr": "phone no. 020 ..." is the commonest way to introduce a number.
        "ref",
        "reference",
        "order",
        "invoice",
        "id",
        "account",
        "acct",
        "ticket",
        "case",
        "tracking",
        "serial",
        "sku",
        "batch",
        "lot",
        "seed",
        "iban",
    ];
    WORDS.iter().any(|w| {
        let Some(cut) = tail.len().checked_sub(w.len()) else {
            return false;
        };
        tail.get(cut..)
            .is_some_and(|end| end.eq_ignore_ascii_case(w.as_bytes()))
            && !tail
                .get(..cut)
                .and_then(|p| p.last())
                .is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

fn phone_intl(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    let n = digits(cand).count();
    let double_zero = cand.starts_with("00");
    // E.164: at most 15 digits with the country code; "00" adds two.
    let (min, max) = if double_zero { (10, 17) } else { (8, 15) };
    if !(min..=max).contains(&n) || !phone_left_ok(text, s) {
        return None;
    }
    // `0044...` without any grouping is as likely an id as a number.
    if double_zero && separators(cand).count() < 2 {
        return None;
    }
    // `+1 2 3 4 5 6 7 8`: real numbers are not split into single digits.
    let singles = cand
        .split([' ', '.', '-'])
        .filter(|g| digits(g).count() == 1)
        .count();
    if singles > 2 {
        return None;
    }
    Some((s, phone_right_end(text, s, e, !cand.contains('-'))?))
}

fn phone_nanp(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    if !phone_left_ok(text, s) {
        return None;
    }
    // `12.345.678.9012`-like dotted runs are versions or ids, and mixing dots with other
    // separators never happens in a written number.
    if separators(cand).any(|c| c == '.') && !separators(cand).all(|c| c == '.') {
        return None;
    }
    Some((s, phone_right_end(text, s, e, !cand.contains('-'))?))
}

fn phone_national(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let mut cand = text.get(s..e)?;
    // `030/1234567-89`: a last group after a dash, where the rest has other separators, is an
    // extension (Durchwahl); `phone_right_end` takes it back once the rest is judged.
    if !uniform_separators(cand) {
        cand = cand.get(..cand.rfind('-')?)?;
    }
    let e = s + cand.len();
    let n = digits(cand).count();
    if !(9..=12).contains(&n) || !uniform_separators(cand) || !phone_left_ok(text, s) {
        return None;
    }
    // Dotted forms are numbers only in the French/Belgian pair style (06.12.34.56.78); other
    // dotted digit runs are dates and versions.
    if cand.contains('.') && cand.split('.').any(|g| g.len() != 2) {
        return None;
    }
    Some((s, phone_right_end(text, s, e, !cand.contains('-'))?))
}

/// `Tel.: 03012345678`: a keyword, a few words, and 10-13 digits with no separator (and the one
/// character after them, which is not `@`: the regex cannot look ahead, and a candidate that
/// swallowed an email's local part would hide the email). Narrowed to the digits.
fn phone_keyword(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let cand = text.get(s..e)?;
    let digits_end = cand.trim_end_matches(|c: char| !c.is_ascii_digit()).len();
    let head = cand
        .get(..digits_end)?
        .trim_end_matches(|c: char| c.is_ascii_digit());
    let head = head.strip_suffix('+').unwrap_or(head);
    let (ds, de) = (s + head.len(), s + digits_end);
    if looks_like_version(text, ds) {
        return None;
    }
    Some((ds, phone_right_end(text, ds, de, true)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_mod97() {
        assert!(luhn(digits("4111111111111111")));
        assert!(!luhn(digits("4111111111111112")));
        assert!(iban_mod97(b"GB29NWBK60161331926819"));
        assert!(!iban_mod97(b"GB28NWBK60161331926819"));
        assert!(!iban_mod97(b"GB2"));
    }

    #[test]
    fn ssn_rules() {
        assert!(us_ssn("123-45-6789", 0, 11).is_some());
        assert!(us_ssn("666-45-6789", 0, 11).is_none());
        assert!(us_ssn("923-45-6789", 0, 11).is_none());
        assert!(us_ssn("123-00-6789", 0, 11).is_none());
        assert!(us_ssn("123-45-0000", 0, 11).is_none());
        assert!(us_ssn("123-45 6789", 0, 11).is_none());
    }

    #[test]
    fn every_builtin_pattern_has_a_bounded_match_length() {
        for b in BUILTINS {
            for (pat, _) in b.alts {
                assert_eq!(super::super::scrub::bounded(pat), Ok(()), "{}", b.name);
            }
        }
        // And the check itself refuses what made scans quadratic.
        assert!(super::super::scrub::bounded("[a-z.]+@x").is_err());
        assert!(super::super::scrub::bounded("a{0,2000}").is_err());
    }

    /// The detectors as they were before every pattern got a bounded length: unbounded runs,
    /// whole PEM blocks and JWTs in the regex. The shipped set must find the same spans.
    fn api_key_unbounded(text: &str, s: usize, e: usize) -> Option<(usize, usize)> {
        let body = text.get(s..e)?.get(3..)?;
        let has_digit = body.bytes().any(|b| b.is_ascii_digit());
        let has_alpha = body.bytes().any(|b| b.is_ascii_alphabetic());
        let longest_word = body.split(['-', '_']).map(str::len).max().unwrap_or(0);
        (has_digit && has_alpha && longest_word >= 16).then_some((s, e))
    }

    const UNBOUNDED: &[(&str, &str, Validator)] = &[
        (
            "private_key",
            r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\t\r\n :,.()\\-]*?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\t\r\n\\]*)",
            Check(accept),
        ),
        (
            "jwt",
            r"(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
            Check(accept),
        ),
        (
            "github_token",
            r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36}[A-Za-z0-9]*|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?-u:\b)",
            Check(accept),
        ),
        (
            "api_key",
            r"(?-u:\b)sk-[A-Za-z0-9_-]{20}[A-Za-z0-9_-]*",
            Check(api_key_unbounded),
        ),
        (
            "email",
            concat!(
                r"(?:[A-Za-z0-9._%+-]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}])+@",
                r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?-u:\b)",
                r"|(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}])(?:(?:[A-Za-z0-9-]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}])*(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]))?",
                r"(?:\.(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}])(?:(?:[A-Za-z0-9-]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}])*(?:[A-Za-z0-9]|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]))?)*",
                r"\.(?:[A-Za-z]{2,24}(?-u:\b)|[^\x00-\xBF\x{2000}-\x{206F}\x{3000}-\x{303F}\x{FF5F}-\x{FF65}]{2,24}))",
            ),
            Check(email),
        ),
    ];

    #[test]
    fn bounded_detectors_find_what_the_unbounded_ones_did() {
        // A detector may have several reference alternatives.
        let reference: Vec<Builtin> = BUILTINS
            .iter()
            .map(|b| {
                let alts: Vec<(&'static str, Validator)> = UNBOUNDED
                    .iter()
                    .filter(|(n, _, _)| *n == b.name)
                    .map(|(_, p, v)| (*p, *v))
                    .collect();
                Builtin {
                    name: b.name,
                    mask: b.mask,
                    alts: if alts.is_empty() {
                        b.alts
                    } else {
                        Box::leak(alts.into_boxed_slice())
                    },
                }
            })
            .collect();
        let cfg: super::super::PiiConfig = serde_json::from_str(r#"{"enabled":true}"#).unwrap();
        let old = super::super::scrub::Engine::compile_with(&cfg, &reference).unwrap();
        let new = super::super::scrub::Engine::compile(&cfg).unwrap();
        let pem_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        let mut texts: Vec<String> = include_str!("../../tests/pii_corpus.jsonl")
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        texts.extend([
            format!("key:\n-----BEGIN PRIVATE KEY-----\n{pem_body}\n{pem_body}\n-----END PRIVATE KEY-----\nbye"),
            format!("-----BEGIN RSA PRIVATE KEY-----\\n{pem_body}\\n-----END RSA PRIVATE KEY-----\\n"),
            format!("-----BEGIN ENCRYPTED PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n{pem_body}\n-----END ENCRYPTED PRIVATE KEY----- x"),
            format!("half a key -----BEGIN OPENSSH PRIVATE KEY-----\n{pem_body}\n{pem_body}"),
            format!("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{pem_body}\n-----END PGP PRIVATE KEY BLOCK-----"),
            format!("-----BEGIN PRIVATE KEY-----\n{pem_body} -----END CERTIFICATE----- {pem_body}-----END PRIVATE KEY-----"),
            "-----BEGIN PRIVATE KEY----- -----END PRIVATE KEY".into(),
            "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end".into(),
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4eHh4eHgifQ. and eyJhbGciOiJub25lIn0.short.x and eyJhbGciOiJub25lIn0".into(),
            "eyJaaaaaaaaa.eyJaaaaaaaaa.eyJaaaaaaaaa.eyJaaaaaaaaa.".into(),
            "ghp_0123456789abcdefghijABCDEFGHIJ012345 and ghp_0123456789abcdefghijABCDEFGHIJ012345678_x".into(),
            "sk-proj-abcDEF0123456789ghijKLMNopqr_stuvWXYZ-0123456789 sk-not-a-real-key-at-all-here".into(),
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AA".into(),
            "mail a.b.c@mail.example.co.uk, x@y.z, .lead@example.com and icon@2x.png or first.last+tag@sub-domain.example-corp.io".into(),
            "1.1.1.1 1.1.1.1.1 10.0.0.1/8 and a@b.c.d.e.f.g.h.com".into(),
            "jörg@müller.de, 用户@例子.广告，x@a.b.c.d.müller.de; 連絡先はjohn@example.com".into(),
        ]);
        for text in &texts {
            let mut m1 = super::super::scrub::Meter::new(usize::MAX);
            let mut m2 = super::super::scrub::Meter::new(usize::MAX);
            assert_eq!(
                new.spans(text, &mut m1).unwrap(),
                old.spans(text, &mut m2).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn every_builtin_has_a_unique_name() {
        for (i, b) in BUILTINS.iter().enumerate() {
            assert!(BUILTINS.iter().skip(i + 1).all(|o| o.name != b.name));
        }
    }
}
