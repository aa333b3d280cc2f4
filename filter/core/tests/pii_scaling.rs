//! Scan cost per byte stays bounded on adversarial texts: for each shape, times at 10 KB, 100 KB
//! and 1 MB are compared (ratios, so the machine's speed cancels out).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

use weir_core::pii::{PiiConfig, Scrubber};

/// Units repeated to fill a text: the shapes that made the old combined matcher rescan, and
/// those aimed at the paths added since (normalisation, phone words, IDN addresses).
const SHAPES: &[(&str, &str)] = &[
    ("dotted digits", "1.1.1."),
    ("jwt-like", "eyJaaaaaaaaa."),
    ("digit run", "1234567890"),
    ("dots", "."),
    ("colons", ":"),
    ("hex colons", "a1:"),
    ("at signs", "@"),
    ("local parts", "a.b-c+d"),
    ("email-ish", "a@b."),
    ("base64-ish", "QUJDRGVmZ2hpams0NTY3ODkwKy8="),
    ("dashes", "-"),
    ("spaced digits", "12 "),
    ("plus digits", "+1 "),
    ("ibans", "GB29 "),
    ("pem", "-----BEGIN PRIVATE KEY-----"),
    ("sk keys", "sk-"),
    ("separators", " -./"),
    // Normalisation (`fold.rs`): texts that are all disguise.
    ("zero-width", "\u{200b}"),
    ("zw-split digits", "4\u{200b}"),
    ("full-width digits", "１"),
    ("full-width at", "＠"),
    ("full-width mail", "ａ＠ｂ．"),
    // Phone words before digit runs, extensions, dashed IBAN groups.
    ("tel digit runs", "tel 1234567890 "),
    ("tel long runs", "tel 12345678901234567 "),
    ("phone words", "Tel.: "),
    ("extensions", "415-555-2671 ext "),
    ("dashed groups", "DE89-3704-"),
    // Internationalised addresses: non-ASCII local parts, labels and at signs.
    ("idn email-ish", "ü@ü."),
    ("cjk at signs", "用户@例子."),
    ("cjk text", "日本語のテキスト"),
    ("arabic digits", "٤١ "),
    ("devanagari text", "हिंदी पाठ ४१ "),
    ("math digits", "𝟒𝟏 "),
    // Placeholder-shaped client text: each one is escaped into the vault (`restore` is on).
    ("typed placeholders", "<EMAIL_7> "),
    ("placeholder-ish", "<EMAIL_"),
];

/// Every detector, with placeholders restored: the demo's policy, and the one that also runs
/// the escapes of placeholder-shaped text and fills the vault.
fn all_on() -> Scrubber {
    let cfg: PiiConfig =
        serde_json::from_str(r#"{"enabled":true,"default_action":"placeholder","restore":true}"#)
            .unwrap();
    Scrubber::compile(&cfg).unwrap()
}

fn fill(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len() + 1)
}

/// The fastest of a few scans: the least disturbed by other work on the machine.
fn scan_time(s: &Scrubber, text: &str, runs: usize) -> Duration {
    (0..runs)
        .map(|_| {
            let mut vault = s.new_vault();
            let t = Instant::now();
            let _ = s.scrub_text(text, &mut vault);
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn scan_time_grows_linearly_on_adversarial_texts() {
    let s = all_on();
    let mut failures = Vec::new();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-6);
    for (name, unit) in SHAPES {
        // Linear is x10 per step and quadratic x100. 10 KB times are too small to judge alone.
        // Other work on the machine can skew one measurement, never three in a row the same way.
        let steep = |(small, medium): (Duration, Duration)| {
            ratio(medium, small) > 30.0 && medium > Duration::from_millis(1)
        };
        let measure = || {
            (
                scan_time(&s, &fill(unit, 10_000), 9),
                scan_time(&s, &fill(unit, 100_000), 5),
            )
        };
        let (small, medium) = (0..3)
            .map(|_| measure())
            .find(|m| !steep(*m))
            .unwrap_or_else(measure);
        let r1 = ratio(medium, small);
        // A quadratic scan is not timed at 1 MB: it would take minutes.
        if steep((small, medium)) {
            println!("{name:>14}: 10 KB {small:?}, 100 KB {medium:?}; x{r1:.1}");
            failures.push(*name);
            continue;
        }
        let large = scan_time(&s, &fill(unit, 1_000_000), 3);
        let r2 = ratio(large, medium);
        println!(
            "{name:>14}: 10 KB {small:?}, 100 KB {medium:?}, 1 MB {large:?}; x{r1:.1}, x{r2:.1}"
        );
        // From 100 KB to 1 MB the text and the matcher's state leave the CPU caches, which alone
        // costs up to another x10 on a busy machine, so this step only catches worse than
        // quadratic; instruction counts (`scan_once` under callgrind) show x9.4-9.7 here.
        if r2 > 200.0 {
            failures.push(*name);
        }
    }
    assert!(failures.is_empty(), "super-linear scans: {failures:?}");
}

/// One scan of `WEIR_SCAN_UNIT` repeated to `WEIR_SCAN_BYTES`, for instruction counts under
/// `valgrind --tool=callgrind` (two sizes: the difference over the size difference is the
/// cost per byte, free of cache effects): `cargo test --release --test pii_scaling -- --ignored`.
#[test]
#[ignore]
fn scan_once() {
    let unit = std::env::var("WEIR_SCAN_UNIT").unwrap_or_else(|_| "1.1.1.".into());
    let bytes = std::env::var("WEIR_SCAN_BYTES").map_or(100_000, |v| v.parse().unwrap());
    let s = all_on();
    let text = fill(&unit, bytes);
    let mut vault = s.new_vault();
    let _ = s.scrub_text(&text, &mut vault);
}
