//! Words set in a second face inside a line. Technical documentation does this on every page:
//! DocBook and Texinfo set commands, file names and identifiers in a typewriter face (`bzip2
//! -d filename.bz2`, `xml:lang`, `sha256_ctx`), and prose stresses words in bold or italic. A
//! reader trained only on single-face lines splits or merges words where the face changes
//! ("filename .bz2", "becomesanyothername.out"), so some prose lines get such spans.

use std::ops::Range;

use super::fonts::{Class, Face, Style};
use super::render::Inline;
use super::rng::Rng;

/// Up to three spans of one or two words each, in a typewriter face of `pool` (two times in three)
/// or in another style of the line's own family; `None` when the line or the pool offers neither.
/// Punctuation around a word stays in the line's face, as typesetting leaves it.
pub(crate) fn choose(rng: &mut Rng, text: &str, faces: &[Face], pool: &[usize], main: usize) -> Option<Inline> {
    let words = word_ranges(text);
    if words.len() < 3 {
        return None;
    }
    let face = if rng.chance(2.0 / 3.0) { typewriter(rng, faces, pool) } else { other_style(rng, faces, pool, main) }?;
    let mut spans: Vec<Range<usize>> = Vec::new();
    for _ in 0..rng.int(1, 3) {
        let first = rng.below(words.len());
        let last = if rng.chance(0.3) { (first + 1).min(words.len() - 1) } else { first };
        let Some(span) = trim_punctuation(text, words[first].start..words[last].end) else { continue };
        if spans.iter().all(|s| s.end < span.start || span.end < s.start) {
            spans.push(span);
        }
    }
    spans.sort_by_key(|s| s.start);
    (!spans.is_empty()).then_some(Inline { face, spans })
}

/// Byte ranges of the whitespace-separated words.
fn word_ranges(text: &str) -> Vec<Range<usize>> {
    text.split_whitespace()
        .map(|w| {
            let start = w.as_ptr() as usize - text.as_ptr() as usize;
            start..start + w.len()
        })
        .collect()
}

/// `span` without the brackets, quotes and sentence punctuation at its ends; `None` if nothing is
/// left.
fn trim_punctuation(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    const OPEN: &[char] = &['(', '[', '"', '\'', '`', '‘', '“'];
    const CLOSE: &[char] = &[')', ']', '"', '\'', '`', ',', '.', ';', ':', '!', '?', '’', '”'];
    let word = &text[span.clone()];
    let trimmed = word.trim_start_matches(OPEN);
    let start = span.start + (word.len() - trimmed.len());
    let trimmed = trimmed.trim_end_matches(CLOSE);
    (!trimmed.is_empty()).then(|| start..start + trimmed.len())
}

/// A monospaced face of the pool, regular or bold.
fn typewriter(rng: &mut Rng, faces: &[Face], pool: &[usize]) -> Option<usize> {
    let mono: Vec<usize> = pool.iter().copied().filter(|&i| faces[i].class == Class::Mono).collect();
    if mono.is_empty() {
        return None;
    }
    let family = faces[*rng.pick(&mono)].family;
    let style = if rng.chance(0.45) { Style::Bold } else { Style::Regular };
    mono.iter()
        .copied()
        .find(|&i| faces[i].family == family && faces[i].style == style)
        .or_else(|| mono.iter().copied().find(|&i| faces[i].family == family))
}

/// The line's family in another style: bold or italic for a regular line, regular otherwise.
fn other_style(rng: &mut Rng, faces: &[Face], pool: &[usize], main: usize) -> Option<usize> {
    let family = faces[main].family;
    let style = match faces[main].style {
        Style::Regular if rng.chance(0.5) => Style::Bold,
        Style::Regular => Style::Italic,
        _ => Style::Regular,
    };
    pool.iter().copied().find(|&i| faces[i].family == family && faces[i].style == style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_their_punctuation() {
        let text = "use (filename.bz2), then  `xml:lang`.";
        let words: Vec<&str> = word_ranges(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(words, ["use", "(filename.bz2),", "then", "`xml:lang`."]);
        let trimmed: Vec<Option<&str>> =
            word_ranges(text).into_iter().map(|r| trim_punctuation(text, r).map(|t| &text[t])).collect();
        assert_eq!(trimmed, [Some("use"), Some("filename.bz2"), Some("then"), Some("xml:lang")]);
        assert_eq!(trim_punctuation("a ...", 2..5), None);
    }
}
