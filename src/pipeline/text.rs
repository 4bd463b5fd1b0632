//! A line's text from the texts of its pieces: joining at cuts, and the punctuation of lines
//! without any CJK writing.

use super::pieces::Piece;

/// Joins piece texts: trimmed, with a space where the cut was a word space, except between two
/// CJK characters (Chinese and Japanese put no spaces between words; a wide gap there is a
/// glyph's side bearing or full-width punctuation). Then [`latin_punctuation`].
pub fn join_pieces(pieces: &[Piece], texts: &[String]) -> String {
    let mut out = String::new();
    for (p, t) in pieces.iter().zip(texts) {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        let cjk_both_sides = out.chars().next_back().is_some_and(is_cjk) && t.chars().next().is_some_and(is_cjk);
        if !out.is_empty() && p.space_before && !cjk_both_sides {
            out.push(' ');
        }
        out.push_str(t);
    }
    latin_punctuation(out)
}

/// Settles the space at each cut a seam was read across (`seams[k]`: the reading of the window
/// across the cut before piece `k`; see [`LineProfile::seams`](super::pieces::LineProfile::seams))
/// where [`seam_space`] can tell; elsewhere the gap's width stands.
pub fn settle_spaces(pieces: &mut [Piece], texts: &[String], seams: &[Option<String>]) {
    for k in 1..pieces.len().min(texts.len()).min(seams.len()) {
        if let Some(space) = seams[k].as_deref().and_then(|seam| seam_space(&texts[k - 1], &texts[k], seam)) {
            pieces[k].space_before = space;
        }
    }
}

/// Whether the reading `seam` of a window across a cut puts a space between the end of `left`
/// (the text before the cut) and the start of `right`: it must hold the last characters of
/// `left`'s last word and the first of `right`'s first word either joined or with one space
/// between, not both. Three characters a side are tried first, then two (a shorter word whole);
/// `None` when neither settles it.
pub fn seam_space(left: &str, right: &str, seam: &str) -> Option<bool> {
    let tail: Vec<char> = left.split_whitespace().next_back()?.chars().collect();
    let head: Vec<char> = right.split_whitespace().next()?.chars().collect();
    for n in [3, 2] {
        let a: String = tail[tail.len().saturating_sub(n)..].iter().collect();
        let b: String = head[..head.len().min(n)].iter().collect();
        let joined = seam.contains(&format!("{a}{b}"));
        let spaced = seam.contains(&format!("{a} {b}"));
        if joined != spaced {
            return Some(spaced);
        }
    }
    None
}

/// Full-width punctuation and forms (`，。（）：；`…) in a line that holds no CJK ideograph, kana
/// or hangul become their ASCII counterparts. A model that also reads Chinese sometimes writes
/// Chinese punctuation after Latin words ("size_t length，"); on a line with no CJK writing at
/// all that is a misreading, and the same characters under Unicode NFKC. Lines with any CJK
/// writing are left as read: there full-width punctuation is the norm.
pub fn latin_punctuation(line: String) -> String {
    if line.chars().any(is_cjk_letter) {
        return line;
    }
    line.chars()
        .map(|c| match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            0x3001 => ',',
            0x3002 => '.',
            _ => c,
        })
        .collect()
}

/// Whether `c` belongs to a script written without spaces between words: CJK ideographs (with
/// extension A and the compatibility block), kana, CJK symbols and punctuation, full-width forms.
fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFF60)
}

/// CJK writing proper: ideographs, kana and hangul syllables (not punctuation or forms).
fn is_cjk_letter(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(spaces: &[bool], texts: &[&str]) -> String {
        let pieces: Vec<Piece> = spaces.iter().map(|&s| Piece { x0: 0, x1: 1, space_before: s }).collect();
        join_pieces(&pieces, &texts.iter().map(|t| t.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn pieces_join_with_spaces_only_at_word_cuts() {
        assert_eq!(join(&[false, true, false, true], &["Hello ", " world", "wide", ""]), "Hello worldwide");
        assert_eq!(join(&[false, true, true, true], &["使用", "命令，", "git", "。"]), "使用命令， git 。");
        assert_eq!(join(&[false, true], &["包", "（构建"]), "包（构建");
    }

    #[test]
    fn a_seam_reading_settles_the_space_at_a_cut() {
        // A typewriter ".bz2" after a Times word: the gap looked like a space, the seam says not.
        assert_eq!(seam_space("• filename", ".bz2 becomes", "ilename.bz2 be"), Some(false));
        // Two faces meeting at a narrow gap that was a space.
        assert_eq!(seam_space("• anyothername becomes", "anyothername.out", "ecomes anyoth"), Some(true));
        // A seam that misread a letter at the cut settles nothing; the gap's width stands.
        assert_eq!(seam_space("conventional LZ77", "/LZ78-based", "Z7l/LZ"), None);
        assert_eq!(seam_space("the filename", ".tar", "xmame.tar"), Some(false));
        // Nothing to compare, or a reading that matches both ways or neither.
        assert_eq!(seam_space("", "word", "x word"), None);
        assert_eq!(seam_space("ab", "cd", "ab cd abcd"), None);
        assert_eq!(seam_space("ab", "cd", "zzz"), None);
        let mut pieces = vec![Piece { x0: 0, x1: 1, space_before: false }; 3];
        pieces[1].space_before = true;
        let texts = ["filename".to_string(), ".bz2".to_string(), "becomes".to_string()];
        settle_spaces(&mut pieces, &texts, &[None, Some("ename.bz2".into()), Some("bz2 becom".into())]);
        assert_eq!(join_pieces(&pieces, &texts), "filename.bz2 becomes");
    }

    #[test]
    fn full_width_punctuation_becomes_ascii_only_on_lines_without_cjk_writing() {
        let latin = |s: &str| latin_punctuation(s.to_string());
        assert_eq!(latin("(struct sm3_ctx *ctx， size_t length）。"), "(struct sm3_ctx *ctx, size_t length).");
        assert_eq!(latin("ＡＢＣ：１２３"), "ABC:123");
        assert_eq!(latin("使用命令（git）。"), "使用命令（git）。");
        assert_eq!(latin("カタカナ，"), "カタカナ，");
        assert_eq!(latin("“quoted” — fine"), "“quoted” — fine");
        assert_eq!(join(&[false, true], &["uint8_t *digest", "）"]), "uint8_t *digest )");
    }
}
