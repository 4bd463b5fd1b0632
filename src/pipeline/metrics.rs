//! Accuracy arithmetic: edit distance over Unicode characters, character error rate (CER), and an
//! order-free word F1 that tells reading-order errors apart from reading errors.
//!
//! CER = total edit distance / total reference characters, summed over lines (or pages) — not the
//! mean of per-line rates, so long lines weigh what their characters weigh.

use serde::Serialize;

/// Levenshtein distance (insertions, deletions, substitutions, each cost 1) between the Unicode
/// scalar values of `a` and `b`. O(|a|·|b|) time, O(min) memory: fine for pages of a few thousand
/// characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (long, short) = if a.len() >= b.len() { (&a, &b) } else { (&b, &a) };
    // Strip a common prefix and suffix: cheap, and most OCR lines share long runs.
    let pre = long.iter().zip(short.iter()).take_while(|(x, y)| x == y).count();
    let (long, short) = (&long[pre..], &short[pre..]);
    let suf = long.iter().rev().zip(short.iter().rev()).take_while(|(x, y)| x == y).count();
    let (long, short) = (&long[..long.len() - suf], &short[..short.len() - suf]);
    if short.is_empty() {
        return long.len();
    }
    let mut row: Vec<usize> = (0..=short.len()).collect();
    for (i, &lc) in long.iter().enumerate() {
        let mut diag = row[0]; // row[i][0]
        row[0] = i + 1;
        for (j, &sc) in short.iter().enumerate() {
            let up = row[j + 1];
            let cost = usize::from(lc != sc);
            row[j + 1] = (diag + cost).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[short.len()]
}

/// Collapses every run of whitespace (spaces, tabs, newlines, form feeds, …) to one space and
/// trims both ends: the page-level comparison ignores layout.
pub fn normalize_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes all whitespace: the comparison for Chinese and Japanese, which do not separate words
/// with spaces (tesseract and `pdftotext -layout` put spaces between some of their characters).
pub fn remove_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Number of Unicode scalar values: the unit of CER.
pub fn char_count(s: &str) -> usize {
    s.chars().count()
}

/// Running totals over many (reference, hypothesis) pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CerTally {
    /// Total edit distance.
    pub edits: usize,
    /// Total reference characters.
    pub chars: usize,
    /// Pairs added.
    pub items: usize,
    /// Pairs whose hypothesis equals the reference exactly.
    pub exact: usize,
}

impl CerTally {
    /// Adds one pair and returns its edit distance.
    pub fn add(&mut self, reference: &str, hypothesis: &str) -> usize {
        let d = levenshtein(reference, hypothesis);
        self.add_counts(d, char_count(reference));
        d
    }

    /// Adds a pair already measured.
    pub fn add_counts(&mut self, edits: usize, chars: usize) {
        self.edits += edits;
        self.chars += chars;
        self.items += 1;
        self.exact += usize::from(edits == 0);
    }

    /// Total edits / total reference characters (an empty reference total divides by one, so text
    /// read from a blank page still shows as errors).
    pub fn cer(&self) -> f64 {
        self.edits as f64 / self.chars.max(1) as f64
    }

    /// Share of pairs read exactly.
    pub fn exact_rate(&self) -> f64 {
        if self.items == 0 {
            0.0
        } else {
            self.exact as f64 / self.items as f64
        }
    }
}

/// Order-free agreement of two texts: the F1 of their multisets of words (a CJK character counts
/// as a word; see [`words`]). Reading-order mistakes leave it alone; misread words lower it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct WordF1 {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Words of `s` for [`word_f1`]: whitespace-separated runs, each CJK character its own word
/// (Chinese puts no spaces between words), punctuation kept with its word.
pub fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for token in s.split_whitespace() {
        let mut run = String::new();
        for c in token.chars() {
            if crate::pipeline::script::is_cjk(c) {
                if !run.is_empty() {
                    out.push(std::mem::take(&mut run));
                }
                out.push(c.to_string());
            } else {
                run.push(c);
            }
        }
        if !run.is_empty() {
            out.push(run);
        }
    }
    out
}

/// [`WordF1`] of `hypothesis` against `reference`. Two empty texts agree fully.
pub fn word_f1(reference: &str, hypothesis: &str) -> WordF1 {
    let (r, h) = (words(reference), words(hypothesis));
    if r.is_empty() && h.is_empty() {
        return WordF1 { precision: 1.0, recall: 1.0, f1: 1.0 };
    }
    let mut counts: std::collections::HashMap<&str, isize> = std::collections::HashMap::new();
    for w in &r {
        *counts.entry(w).or_default() += 1;
    }
    let mut matched = 0usize;
    for w in &h {
        if let Some(n) = counts.get_mut(w.as_str()).filter(|n| **n > 0) {
            *n -= 1;
            matched += 1;
        }
    }
    let precision = matched as f64 / h.len().max(1) as f64;
    let recall = matched as f64 / r.len().max(1) as f64;
    let f1 = if matched == 0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    WordF1 { precision, recall, f1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("sitting", "kitten"), 3);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(levenshtein("intention", "execution"), 5);
        // Characters, not bytes: one substitution each.
        assert_eq!(levenshtein("café", "cafe"), 1);
        assert_eq!(levenshtein("日本語", "日本人"), 1);
        assert_eq!(levenshtein("naïve ﬁle", "naive file"), 3);
    }

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        assert_eq!(normalize_whitespace("  a\t b\n\n c \u{c}"), "a b c");
        assert_eq!(normalize_whitespace(" \n "), "");
    }

    #[test]
    fn whitespace_can_be_removed_entirely() {
        // Ideographic space (U+3000) is whitespace too.
        assert_eq!(remove_whitespace("第一 步\n参\u{3000}见 git log"), "第一步参见gitlog");
    }

    #[test]
    fn tally_sums_before_dividing() {
        let mut t = CerTally::default();
        assert_eq!(t.add("abcd", "abcd"), 0);
        assert_eq!(t.add("ab", "xy"), 2);
        assert_eq!((t.edits, t.chars, t.items, t.exact), (2, 6, 2, 1));
        assert!((t.cer() - 2.0 / 6.0).abs() < 1e-12);
        assert!((t.exact_rate() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn word_f1_ignores_order_and_counts_repeats_once_each() {
        let f = word_f1("the left column the right column", "the right column the left column");
        assert_eq!(f.f1, 1.0);
        let f = word_f1("a b c d", "a b x");
        assert!((f.precision - 2.0 / 3.0).abs() < 1e-12 && (f.recall - 0.5).abs() < 1e-12);
        assert_eq!(word_f1("a a", "a a a").recall, 1.0);
        assert!((word_f1("a a", "a a a").precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(words("用 Debian 打包。ok"), ["用", "Debian", "打", "包", "。", "ok"]);
        assert_eq!(word_f1("", "").f1, 1.0);
        assert_eq!(word_f1("word", "").f1, 0.0);
    }
}
