//! Normalisation before scanning: invisible characters are dropped, and full-width ASCII,
//! mathematical letters and digits, superscript and subscript digits and the decimal digits of
//! other scripts fold to ASCII, so a value disguised or written with them is found; spans found
//! in the folded text map back to the original. Invariant: a text holding none of these characters is never copied (the scan
//! runs on it in place), and mapping is one forward walk, so folding adds O(text) time and at
//! most one text-sized buffer, never a per-byte offset table.
//!
//! Hand-written on purpose: a Unicode normalisation crate (NFKC tables) would cost more wasm than
//! all of weir's detectors, and these characters, which NFKC folds to ASCII too (apart from other
//! scripts' digits, which are digits all the same), are the ones that disguise ASCII values.

/// What one character becomes in the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// Invisible: zero-width space, non-joiner and joiner, word joiner, BOM, soft hyphen,
    /// Mongolian vowel separator.
    Drop,
    /// Full-width ASCII (U+FF01-U+FF5E), the ideographic space (U+3000), mathematical
    /// alphanumerics (U+1D400-U+1D7FF), super- and subscript digits, other scripts' digits.
    Ascii(u8),
    Keep,
}

/// The zero of each block of ten decimal digits (Unicode `Nd`) that weir reads as `0`-`9`:
/// Arabic-Indic, Extended Arabic-Indic (Persian, Urdu), Devanagari, Bengali, Gurmukhi, Gujarati,
/// Oriya, Tamil, Telugu, Kannada, Malayalam, Thai, Lao, Tibetan, Myanmar, Khmer, Mongolian.
const DIGIT_ZEROS: [u32; 17] = [
    0x0660, 0x06F0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0E50,
    0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810,
];

fn digit(n: u32) -> Fold {
    u8::try_from(n % 10).map_or(Fold::Keep, |d| Fold::Ascii(b'0' + d))
}

fn fold_char(c: char) -> Fold {
    let u = u32::from(c);
    match c {
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}' => Fold::Drop,
        '\u{3000}' => Fold::Ascii(b' '),
        // U+FF01..U+FF5E mirror U+0021..U+007E at a fixed distance.
        '\u{FF01}'..='\u{FF5E}' => u8::try_from(u - 0xFEE0).map_or(Fold::Keep, Fold::Ascii),
        // Thirteen alphabets (bold, italic, script, fraktur, double-struck, sans-serif, ...) of
        // 26 capitals then 26 small letters each; the code points left unassigned in them (their
        // letters live in Letterlike Symbols) never occur, so no exception is needed.
        '\u{1D400}'..='\u{1D6A3}' => {
            let i = (u - 0x1D400) % 52;
            let (base, i) = if i < 26 { (b'A', i) } else { (b'a', i - 26) };
            u8::try_from(i).map_or(Fold::Keep, |i| Fold::Ascii(base + i))
        }
        // Five styles of ten digits.
        '\u{1D7CE}'..='\u{1D7FF}' => digit(u - 0x1D7CE),
        '\u{00B9}' => Fold::Ascii(b'1'),
        '\u{00B2}' | '\u{00B3}' => digit(u - 0xB0),
        '\u{2070}' | '\u{2074}'..='\u{2079}' => digit(u - 0x2070),
        '\u{2080}'..='\u{2089}' => digit(u - 0x2080),
        _ => match DIGIT_ZEROS
            .iter()
            .find(|&&zero| (zero..zero + 10).contains(&u))
        {
            Some(zero) => digit(u - zero),
            None => Fold::Keep,
        },
    }
}

/// Bytes `c` takes in the folded text.
fn folded_len(c: char) -> usize {
    match fold_char(c) {
        Fold::Drop => 0,
        Fold::Ascii(_) => 1,
        Fold::Keep => c.len_utf8(),
    }
}

/// Where the first character to fold starts, if any. ASCII text is answered by `is_ascii`
/// alone; otherwise only the lead bytes of the characters above are decoded (U+00AD and the
/// Latin-1 superscripts: C2; Arabic digits: D9, DB; Indic, Thai, Lao and Tibetan digits: E0;
/// U+180E, Myanmar, Khmer and Mongolian digits: E1; U+200B-U+2089: E2; U+3000: E3; U+FEFF and
/// U+FF01-U+FF5E: EF; mathematical alphanumerics: F0).
fn first_foldable(text: &str) -> Option<usize> {
    if text.is_ascii() {
        return None;
    }
    text.bytes()
        .enumerate()
        .filter(|(_, b)| matches!(b, 0xC2 | 0xD9 | 0xDB | 0xE0..=0xE3 | 0xEF | 0xF0))
        .find(|(i, _)| {
            text.get(*i..)
                .and_then(|t| t.chars().next())
                .is_some_and(|c| fold_char(c) != Fold::Keep)
        })
        .map(|(i, _)| i)
}

/// The text to scan instead of `text`, or `None` when `text` itself is to be scanned.
pub(crate) fn fold(text: &str) -> Option<String> {
    let first = first_foldable(text)?;
    let (head, rest) = (text.get(..first)?, text.get(first..)?);
    let mut out = String::with_capacity(text.len());
    out.push_str(head);
    for c in rest.chars() {
        match fold_char(c) {
            Fold::Drop => {}
            Fold::Ascii(b) => out.push(char::from(b)),
            Fold::Keep => out.push(c),
        }
    }
    Some(out)
}

/// Maps offsets of the folded text back to the original, for offsets that only grow (the
/// scan's hits come in order): one walk over the original in all.
pub(crate) struct Cursor<'a> {
    original: &'a str,
    /// A position in the original and the folded offset it corresponds to.
    orig: usize,
    folded: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(original: &'a str) -> Self {
        Cursor {
            original,
            orig: 0,
            folded: 0,
        }
    }

    /// Moves to the first original position whose folded offset is `at`.
    fn advance(&mut self, at: usize) {
        while self.folded < at {
            let Some(c) = self
                .original
                .get(self.orig..)
                .and_then(|t| t.chars().next())
            else {
                return;
            };
            self.orig += c.len_utf8();
            self.folded += folded_len(c);
        }
    }

    /// The original offset where a span starting at folded `at` starts: past the invisible
    /// characters before it, which stay in the text around the span.
    pub(crate) fn start(&mut self, at: usize) -> usize {
        self.advance(at);
        while let Some(c) = self
            .original
            .get(self.orig..)
            .and_then(|t| t.chars().next())
        {
            if fold_char(c) != Fold::Drop {
                break;
            }
            self.orig += c.len_utf8();
        }
        self.orig
    }

    /// The original offset where a span ending at folded `at` ends: invisible characters after
    /// it stay outside (those inside it are replaced with it).
    pub(crate) fn end(&mut self, at: usize) -> usize {
        self.advance(at);
        self.orig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_unaffected_text_are_not_copied() {
        assert_eq!(fold("john@example.com"), None);
        assert_eq!(fold("Grüße, 東京 — «ok» ½ ① हिंदी عربي ไทย 𝄞"), None);
        assert_eq!(fold(""), None);
    }

    #[test]
    fn full_width_folds_and_invisibles_drop() {
        assert_eq!(
            fold("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ").as_deref(),
            Some("john@example.com")
        );
        assert_eq!(
            fold("j\u{200b}ohn@exa\u{200b}mple.com").as_deref(),
            Some("john@example.com")
        );
        assert_eq!(
            fold("a\u{200c}\u{200d}\u{2060}\u{feff}\u{ad}\u{180e}b\u{3000}！～").as_deref(),
            Some("ab !~")
        );
        // Neighbours of the folded range stay: U+FF00 and U+FF5F are not ASCII mirrors.
        assert_eq!(fold("\u{ff00}\u{ff5f}"), None);
        assert_eq!(fold("é\u{200b}").as_deref(), Some("é"));
    }

    #[test]
    fn mathematical_letters_and_every_scripts_digits_fold() {
        assert_eq!(
            fold("𝐣𝐨𝐡𝐧@𝐞𝐱𝐚𝐦𝐩𝐥𝐞.𝐜𝐨𝐦 𝟒𝟏𝟏𝟏 𝟘𝟡 𝙕𝚣").as_deref(),
            Some("john@example.com 4111 09 Zz")
        );
        assert_eq!(fold("x² ³ ¹ ⁰⁴⁹ ₀₉").as_deref(), Some("x2 3 1 049 09"));
        for zero in DIGIT_ZEROS {
            let digits: String = (zero..zero + 10).filter_map(char::from_u32).collect();
            assert_eq!(fold(&digits).as_deref(), Some("0123456789"), "{zero:X}");
            // The code points around a block are not digits.
            for not in [zero - 1, zero + 10] {
                let c = char::from_u32(not).unwrap().to_string();
                assert_eq!(fold(&c), None, "{not:X}");
            }
        }
        assert_eq!(fold("٠٥٥٥ ١٢٣ ४५६").as_deref(), Some("0555 123 456"));
    }

    /// Spans of the folded text cover the same characters of the original: the disguise inside
    /// a span goes with it, invisible characters at its edges stay outside.
    #[test]
    fn cursor_maps_spans_back() {
        let orig = "x \u{200b}ｊ\u{200b}ｏ é\u{200b} y";
        let folded = fold(orig).unwrap();
        assert_eq!(folded, "x jo é y");
        let mut c = Cursor::new(orig);
        let (s, e) = (c.start(2), c.end(4));
        assert_eq!(&orig[s..e], "ｊ\u{200b}ｏ");
        let (s, e) = (c.start(5), c.end(7));
        assert_eq!(&orig[s..e], "é");
        let (s, e) = (c.start(8), c.end(9));
        assert_eq!(&orig[s..e], "y");
        // Past the end it stops at the end.
        assert_eq!(c.end(100), orig.len());
    }
}
