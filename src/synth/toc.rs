//! Table-of-contents entries: a section number, a title, a leader of dots and a page number, as
//! manuals set them ("3.4.1. BZ2_bzReadOpen . . . . . . . 19"). Leaders are spaced dots (DocBook's
//! and LaTeX's) or solid ones (word processors'). Some entries are only a leader's tail, as the
//! page reader cuts a long entry into pieces at the gaps between the dots.
//!
//! Before these, folio read every leader as noise ("· ..... · .....", "*.*.*.*"): the three
//! contents pages of the bzip2 manual made 91 % of the errors on its 38 pages.

use super::corpus::{capitalise, truncate_chars, words_from};
use super::rng::Rng;

/// One entry of at most `max_chars` characters (a leader of at least three dots when it fits).
pub(crate) fn entry(rng: &mut Rng, lines: &[String], max_chars: usize) -> String {
    let mut page = if rng.below(10) == 0 { roman(rng.int(1, 39)) } else { rng.int(1, 420).to_string() };
    if max_chars < page.len() + 5 {
        page = rng.int(1, 9).to_string(); // "... 7": the shortest entry, 5 characters
    }
    let dots_only = rng.below(4) == 0;
    let head = if dots_only { String::new() } else { heading(rng, lines) };
    // Leave room for at least three dots, the spaces around them and the page number; a spaced
    // leader (". . .") needs five characters.
    let spaced = rng.chance(0.7) && max_chars >= page.len() + 6;
    let least = if spaced { 5 } else { 3 };
    let budget = max_chars.saturating_sub(page.len() + least + 2);
    let head = truncate_chars(&head, budget);
    let used = head.chars().count() + page.len() + 2;
    let room = max_chars.saturating_sub(used).max(least);
    let width = rng.int(least, room);
    let leader = if spaced { vec!["."; width.div_ceil(2)].join(" ") } else { ".".repeat(width) };
    let line = if head.is_empty() { format!("{leader} {page}") } else { format!("{head} {leader} {page}") };
    truncate_chars(&line, max_chars)
}

/// "2.3. Title words", "Chapter 4 Title", or a bare title.
fn heading(rng: &mut Rng, lines: &[String]) -> String {
    let n = rng.int(1, 6);
    let words = words_from(rng, lines, n);
    let mut title = capitalise(words.trim_end_matches(|c: char| c.is_ascii_punctuation()));
    if rng.below(6) == 0 {
        title = title.to_uppercase();
    }
    let (a, b, c) = (rng.int(1, 12), rng.int(1, 9), rng.int(1, 9));
    if title.is_empty() {
        return format!("{a}.{b}.");
    }
    match rng.below(6) {
        0 => title,
        1 => format!("{a}. {title}"),
        2 => format!("{a}.{b}. {title}"),
        3 => format!("{a}.{b}.{c}. {title}"),
        4 => format!("{a}.{b} {title}"),
        _ => format!("Chapter {a} {title}"),
    }
}

/// Lower-case Roman numerals, as front matter is numbered (1 to 39).
fn roman(n: usize) -> String {
    let tens = ["", "x", "xx", "xxx"][(n / 10).min(3)];
    let units = ["", "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix"][n % 10];
    format!("{tens}{units}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_fit_and_end_in_a_leader_and_a_page_number() {
        let lines: Vec<String> = ["the quick brown fox jumps over the lazy dog", "error handling and recovery"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut spaced = 0;
        for i in 0..900 {
            let mut rng = Rng::for_sample(7, 0, i);
            let max = [8, 9, 10, 11, 12, 16, 20, 40, 60][i as usize % 9];
            let e = entry(&mut rng, &lines, max);
            assert!(e.chars().count() <= max && !e.contains("  "), "{e:?}");
            let (rest, page) = e.rsplit_once(' ').expect("a page number");
            assert!(!page.is_empty() && page.chars().all(|c| c.is_ascii_digit() || "ivx".contains(c)), "{e:?}");
            assert!(rest.ends_with("..") || rest.ends_with(". ."), "{e:?}");
            spaced += rest.ends_with(". .") as usize;
        }
        assert!((450..800).contains(&spaced), "{spaced} of 900 spaced");
    }

    #[test]
    fn roman_numerals() {
        let got: Vec<String> = [1, 4, 9, 14, 19, 24, 39].into_iter().map(roman).collect();
        assert_eq!(got, ["i", "iv", "ix", "xiv", "xix", "xxiv", "xxxix"]);
    }
}
