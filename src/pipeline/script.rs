//! Stray CJK characters on Latin pages.
//!
//! The default model reads Chinese as well as Latin, and on a Latin page it now and then reads a
//! glyph it is unsure of as a lone Han character or a full-width mark: a page number "7" as "了",
//! "," as "，". A single crop cannot tell such a misreading from real Chinese; a page can, by the
//! script of the rest of the page. [`stray_pieces`] picks the pieces whose CJK characters all stand
//! alone on a page that holds next to no other CJK; the page reader reads them again with every
//! CJK token suppressed. A Chinese word is two characters or more, and a page with more than a
//! trace of such words is not a Latin page, so real Chinese is left as read.

/// Fewest letters and digits (not CJK) a page must hold to speak for its script.
const MIN_LATIN: usize = 40;
/// Largest share of CJK in words of two or more characters among a Latin page's letters and digits
/// (per mille).
const MAX_WORD_CJK_PER_MILLE: usize = 10;
/// Largest share of lone CJK characters next to a Latin page's other letters and digits (per
/// mille): a page of little else is not a Latin page with slips.
const MAX_LONE_CJK_PER_MILLE: usize = 50;

/// Chinese, Japanese and Korean characters and marks: radicals, CJK punctuation, kana, unified and
/// compatibility ideographs, and the full-width and half-width forms.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{2E80}'..='\u{2FDF}'
        | '\u{3000}'..='\u{30FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF00}'..='\u{FFEF}')
}

/// A text's CJK characters (the ideographic space aside), and its other letters and digits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct ScriptCount {
    cjk: usize,
    other: usize,
}

impl ScriptCount {
    fn of(text: &str) -> Self {
        text.chars().fold(Self::default(), |n, c| match c {
            c if c.is_whitespace() => n,
            c if is_cjk(c) => Self { cjk: n.cjk + 1, ..n },
            c if c.is_alphanumeric() => Self { other: n.other + 1, ..n },
            _ => n,
        })
    }

    fn plus(self, o: Self) -> Self {
        Self { cjk: self.cjk + o.cjk, other: self.other + o.other }
    }
}

/// Whether `text` holds CJK characters and each of them stands alone: its nearest neighbours that
/// are not spaces, on either side, are not CJK.
fn only_lone_cjk(text: &str) -> bool {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let cjk_at = |i: usize| chars.get(i).is_some_and(|&c| is_cjk(c));
    let mut any = false;
    for i in (0..chars.len()).filter(|&i| cjk_at(i)) {
        if (i > 0 && cjk_at(i - 1)) || cjk_at(i + 1) {
            return false;
        }
        any = true;
    }
    any
}

/// Indices of the `pieces` (all of one page's readings) to read again without CJK tokens: those
/// whose CJK characters all stand alone, on a page that is Latin apart from them. O(page text).
pub fn stray_pieces(pieces: &[&str]) -> Vec<usize> {
    let counts: Vec<ScriptCount> = pieces.iter().map(|p| ScriptCount::of(p)).collect();
    let lone: Vec<usize> = (0..pieces.len()).filter(|&i| counts[i].cjk > 0 && only_lone_cjk(pieces[i])).collect();
    let page = counts.iter().fold(ScriptCount::default(), |a, &c| a.plus(c));
    let lone_cjk: usize = lone.iter().map(|&i| counts[i].cjk).sum();
    let word_cjk = page.cjk - lone_cjk;
    let latin = page.other >= MIN_LATIN
        && word_cjk * 1000 <= (page.cjk + page.other) * MAX_WORD_CJK_PER_MILLE
        && lone_cjk * 1000 <= page.other * MAX_LONE_CJK_PER_MILLE;
    if latin {
        lone
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATIN: &str = "The sha256 functions compute the digest of a message in blocks.";

    #[test]
    fn lone_cjk_on_a_latin_page_is_stray() {
        let page = [LATIN, "了", "3, Daniel Lemire，Cliff M", LATIN, "没4. Patent Claims"];
        assert_eq!(stray_pieces(&page), vec![1, 2, 4]);
    }

    #[test]
    fn chinese_words_and_chinese_pages_are_left_alone() {
        // A two-character word is Chinese, not a misread glyph.
        assert!(stray_pieces(&[LATIN, "the capital 北京 of", LATIN]).is_empty());
        // Lone characters between Latin words on a page with Chinese elsewhere.
        let zh = "使用 Linux 的 X 系统，然后安装软件包。";
        assert!(stray_pieces(&[zh, "在 Debian 下", zh, LATIN]).is_empty());
        // Too little page to tell its script.
        assert!(stray_pieces(&["了", "page 7"]).is_empty());
        // No CJK at all.
        assert!(stray_pieces(&[LATIN, LATIN]).is_empty());
    }

    #[test]
    fn cjk_ranges() {
        for c in ['了', '，', '）', '。', 'ア', 'Ａ', '　'] {
            assert!(is_cjk(c), "{c}");
        }
        for c in ['a', '7', '—', '“', '…', '·', '€', 'é'] {
            assert!(!is_cjk(c), "{c}");
        }
    }
}
