//! The text side: the corpus (real English documentation from Debian packages, see
//! `models/corpus/README.md`), its train / held-out split, and the texts a sample shows.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::rng::{fnv1a, Rng};

/// The committed corpus, built by `tools/corpus/build_corpus.sh`.
pub const BUILTIN: &str = include_str!("../../models/corpus/corpus.txt");

/// The committed simplified-Chinese corpus, built by `tools/corpus/build_zh_corpus.py`.
pub const BUILTIN_CHINESE: &str = include_str!("../../models/corpus/zh.txt");

/// One line in `HELD_OUT_MODULUS` (by FNV-1a hash of its UTF-8 bytes) is held-out text.
pub const HELD_OUT_MODULUS: u64 = 20;

/// Whether a corpus line belongs to the held-out text (never shown by the `train` split).
pub fn is_held_out(line: &str) -> bool {
    fnv1a(line.as_bytes()).is_multiple_of(HELD_OUT_MODULUS)
}

pub struct Corpus {
    pub train: Vec<String>,
    pub held_out: Vec<String>,
}

impl Corpus {
    pub fn from_text(text: &str) -> Result<Self> {
        let mut train = Vec::new();
        let mut held_out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines() {
            let line = normalise_spaces(line);
            if line.is_empty() || !seen.insert(line.clone()) {
                continue;
            }
            if is_held_out(&line) {
                held_out.push(line);
            } else {
                train.push(line);
            }
        }
        if train.is_empty() || held_out.is_empty() {
            bail!(
                "the corpus needs lines in both the train and the held-out part (got {} and {})",
                train.len(),
                held_out.len()
            );
        }
        Ok(Corpus { train, held_out })
    }

    /// The corpus at `path`, or `builtin` when there is none.
    pub fn load(path: Option<&Path>, builtin: &str) -> Result<Self> {
        match path {
            None => Self::from_text(builtin),
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading corpus {}", p.display()))?;
                Self::from_text(&text)
            }
        }
    }
}

/// Collapses runs of whitespace into one space and trims.
pub fn normalise_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// What a sample's text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prose,
    Number,
    Date,
    Price,
    Code,
    Address,
}

/// Picks the text of one sample from `lines` (a split of the corpus).
pub(crate) fn sample_text(rng: &mut Rng, lines: &[String], max_chars: usize) -> (String, Kind) {
    let kind = match rng.weighted(&[0.80, 0.035, 0.035, 0.03, 0.06, 0.04]) {
        0 => Kind::Prose,
        1 => Kind::Number,
        2 => Kind::Date,
        3 => Kind::Price,
        4 => Kind::Code,
        _ => Kind::Address,
    };
    let mut text = match kind {
        Kind::Prose => prose(rng, lines, max_chars),
        Kind::Number => with_context(rng, lines, number),
        Kind::Date => with_context(rng, lines, date),
        Kind::Price => with_context(rng, lines, price),
        Kind::Code => code(rng, lines),
        Kind::Address => with_context(rng, lines, address),
    };
    if kind == Kind::Prose {
        match rng.below(100) {
            0..=2 => text = text.to_uppercase(),
            3..=6 => {
                let bullet = *rng.pick(&["• ", "– ", "- ", "* ", "· "]);
                text = format!("{bullet}{text}");
            }
            7..=9 => {
                let n = rng.int(1, 30);
                let label = match rng.below(5) {
                    0 => format!("{n}. "),
                    1 => format!("({}) ", (b'a' + (n % 26) as u8) as char),
                    2 => format!("[{n}] "),
                    3 => format!("{n}.{}. ", rng.int(1, 9)),
                    _ => format!("{n}) "),
                };
                text = format!("{label}{text}");
            }
            _ => {}
        }
    }
    (truncate_chars(&normalise_spaces(&text), max_chars), kind)
}

/// Keeps at most `n` characters, cutting at the last space when that keeps most of them.
pub fn truncate_chars(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let cut: String = s.chars().take(n).collect();
    match cut.rfind(' ') {
        Some(i) if cut[..i].chars().count() >= n * 2 / 3 => cut[..i].trim_end().to_string(),
        _ => cut.trim_end().to_string(),
    }
}

/// A length for a piece of text: 8 % very short (1–6 characters: words, numbers), otherwise
/// skewed long.
fn target_len(rng: &mut Rng, max_chars: usize) -> usize {
    let max_chars = max_chars.max(1);
    if rng.chance(0.08) {
        rng.int(1, 6.min(max_chars))
    } else {
        let lo = 6.min(max_chars) as f64;
        (lo + (max_chars as f64 - lo) * rng.f64().powf(0.6)).round() as usize
    }
}

/// A piece of a corpus line: usually whole words, sometimes a raw character window.
fn prose(rng: &mut Rng, lines: &[String], max_chars: usize) -> String {
    let at = rng.below(lines.len());
    let target = target_len(rng, max_chars);
    // Corpus lines are in document order within a split: a short line continues with the next.
    let mut text = lines[at].clone();
    let mut next = at + 1;
    while text.chars().count() < target + 20 && next < lines.len() && next < at + 4 {
        text.push(' ');
        text.push_str(&lines[next]);
        next += 1;
    }
    let chars: Vec<char> = text.chars().collect();
    if rng.chance(0.1) {
        // A raw window (may start or end inside a word, like a hyphenated or clipped line).
        let len = target.min(chars.len());
        let start = rng.int(0, chars.len() - len);
        return chars[start..start + len].iter().collect::<String>().trim().to_string();
    }
    let words: Vec<&str> = text.split(' ').collect();
    // Start at a word that leaves room for the target length when there is one.
    let mut room = vec![0usize; words.len() + 1];
    for i in (0..words.len()).rev() {
        room[i] = room[i + 1] + words[i].chars().count() + usize::from(i + 1 < words.len());
    }
    let fits = words.iter().enumerate().filter(|(i, _)| room[*i] >= target).count();
    let start = if fits > 0 { rng.below(fits) } else { 0 };
    let mut out = String::new();
    for w in &words[start..] {
        let extra = if out.is_empty() { w.chars().count() } else { w.chars().count() + 1 };
        if !out.is_empty() && out.chars().count() + extra > target {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Whether a Chinese text may be cut between `a` and `b`: anywhere but between two ASCII letters
/// or digits (a number may still be cut at its point or comma).
fn cuttable(a: char, b: char) -> bool {
    !(a.is_ascii_alphanumeric() && b.is_ascii_alphanumeric())
}

/// A piece of a Chinese corpus line (continued into the next lines when short) of at most
/// `max_chars` characters. Chinese has no spaces between words, so a piece starts and ends at any
/// character but never inside a Latin word or number of a mixed line; half start at the line's
/// beginning, as text in a paragraph's first line does.
pub(crate) fn chinese_text(rng: &mut Rng, lines: &[String], max_chars: usize) -> String {
    let max_chars = max_chars.max(1);
    let at = rng.below(lines.len());
    let target = target_len(rng, max_chars);
    let mut chars: Vec<char> = lines[at].chars().collect();
    let mut next = at + 1;
    while chars.len() < target + 10 && next < lines.len() && next < at + 4 {
        let line = &lines[next];
        if let (Some(&a), Some(b)) = (chars.last(), line.chars().next()) {
            if a.is_ascii() && b.is_ascii() {
                chars.push(' ');
            }
        }
        chars.extend(line.chars());
        next += 1;
    }
    let cuts: Vec<usize> =
        (0..=chars.len()).filter(|&i| i == 0 || i == chars.len() || cuttable(chars[i - 1], chars[i])).collect();
    let fits: Vec<usize> = cuts.iter().copied().filter(|&c| c + target <= chars.len() && chars[c] != ' ').collect();
    let start = if fits.is_empty() || rng.chance(0.5) { 0 } else { *rng.pick(&fits) };
    // The last cut within the target; else the first within `max_chars` (a Latin word longer than
    // the target stays whole); else a hard cut (a "word" longer than a line).
    let end = cuts.iter().copied().filter(|&c| c > start && c <= start + target).max();
    let end = end
        .or_else(|| cuts.iter().copied().find(|&c| c > start && c <= start + max_chars))
        .unwrap_or_else(|| (start + max_chars).min(chars.len()));
    normalise_spaces(&chars[start..end].iter().collect::<String>())
}

/// A few words from the corpus around a generated token, or the token alone.
fn with_context(rng: &mut Rng, lines: &[String], f: fn(&mut Rng, &[String]) -> String) -> String {
    let token = f(rng, lines);
    let n = rng.int(1, 4);
    match rng.below(4) {
        0 | 1 => token,
        2 => format!("{} {token}", words_from(rng, lines, n)),
        _ => format!("{token} {}", words_from(rng, lines, n)),
    }
}

/// `n` consecutive words of a random corpus line.
pub(crate) fn words_from(rng: &mut Rng, lines: &[String], n: usize) -> String {
    let line = rng.pick(lines);
    let words: Vec<&str> = line.split(' ').collect();
    let start = rng.below(words.len());
    words[start..(start + n).min(words.len())].join(" ")
}

/// A lower-case identifier-like word from the corpus (letters and digits only), or a fallback.
fn ident(rng: &mut Rng, lines: &[String]) -> String {
    for _ in 0..8 {
        let line = rng.pick(lines);
        let words: Vec<&str> = line.split(' ').collect();
        let w: String =
            rng.pick(&words).chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
        if w.len() >= 2 && w.len() <= 12 && w.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return w;
        }
    }
    rng.pick(&["data", "value", "item", "node", "buf", "count", "name", "path"]).to_string()
}

pub(crate) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn group_thousands(n: u64, sep: char) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

fn number(rng: &mut Rng, _lines: &[String]) -> String {
    let big = rng.log_uniform(1.0, 1e7) as u64;
    match rng.below(14) {
        0 => big.to_string(),
        1 => group_thousands(big, ','),
        2 => format!("{:.*}", rng.int(1, 4), rng.log_uniform(0.001, 1e5)),
        3 => format!("-{}", rng.int(1, 9999)),
        4 => format!("{:.1}%", rng.uniform(0.0, 100.0)),
        5 => format!("+{} {} {}", rng.int(1, 99), rng.int(10, 999), rng.int(100_000, 9_999_999)),
        6 => format!("({}) {}-{:04}", rng.int(200, 999), rng.int(200, 999), rng.int(0, 9999)),
        7 => format!("{}.{}.{}", rng.int(0, 12), rng.int(0, 40), rng.int(0, 200)),
        8 => format!("0x{:0w$x}", rng.u64() >> rng.int(16, 56), w = rng.int(2, 8)),
        9 => format!("{}e-{}", rng.int(1, 9), rng.int(1, 12)),
        10 => format!("{}–{}", rng.int(1, 500), rng.int(501, 1200)),
        11 => format!("No. {}", rng.int(1, 9999)),
        12 => format!("{} × {} = {}", rng.int(2, 99), rng.int(2, 99), rng.int(4, 9801)),
        _ => format!("§ {}.{}", rng.int(1, 20), rng.int(1, 20)),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn date(rng: &mut Rng, _lines: &[String]) -> String {
    let (y, m, d) = (rng.int(1970, 2035), rng.int(1, 12), rng.int(1, 28));
    let month = MONTHS[m - 1];
    match rng.below(9) {
        0 => format!("{y}-{m:02}-{d:02}"),
        1 => format!("{d:02}/{m:02}/{y}"),
        2 => format!("{m}/{d}/{y}"),
        3 => format!("{d} {month} {y}"),
        4 => format!("{month} {d}, {y}"),
        5 => format!(
            "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0{}00",
            rng.pick(&DAYS),
            &month[..3],
            rng.int(0, 23),
            rng.int(0, 59),
            rng.int(0, 59),
            rng.int(0, 9)
        ),
        6 => format!("{:02}:{:02}", rng.int(0, 23), rng.int(0, 59)),
        7 => format!("{d}.{m}.{y}"),
        _ => format!("{y}–{}", y + rng.int(1, 20)),
    }
}

fn price(rng: &mut Rng, _lines: &[String]) -> String {
    let v = rng.log_uniform(0.5, 50_000.0);
    let whole = v as u64;
    let cents = rng.int(0, 99);
    match rng.below(8) {
        0 => format!("${}.{cents:02}", group_thousands(whole, ',')),
        1 => format!("€{whole}.{cents:02}"),
        2 => format!("{},{cents:02} €", group_thousands(whole, '.')),
        3 => format!("£{whole}.{cents:02}"),
        4 => format!("¥{}", group_thousands(whole * 10, ',')),
        5 => format!("USD {}.{cents:02}", group_thousands(whole, ',')),
        6 => format!("{whole}.{cents:02} EUR"),
        _ => format!("${whole}"),
    }
}

fn code(rng: &mut Rng, lines: &[String]) -> String {
    let a = ident(rng, lines);
    let b = ident(rng, lines);
    let c = ident(rng, lines);
    let n = rng.int(0, 512);
    let m = rng.int(1, 64);
    match rng.below(20) {
        0 => format!("fn {a}({b}: &str) -> Result<{}> {{", capitalise(&c)),
        1 => format!("let {a} = {b}.{c}({n});"),
        2 => format!("if ({a} != NULL && {a}->{b} > {n}) {{"),
        3 => format!("for i in range({n}):"),
        4 => format!("def {a}(self, {b}={m}):"),
        5 => format!("#include <{a}/{b}.h>"),
        6 => format!("return {a}[{m}] * {b} + {n};"),
        7 => format!("{a}_{b} = os.path.join({c}, \"{a}.txt\")"),
        8 => format!("$ sudo apt-get install {a}-{b}"),
        9 => format!("x = [{n}, {m}, {}]", rng.int(0, 99)),
        10 => format!("SELECT {a}, {b} FROM {c} WHERE id = {n};"),
        11 => format!("<div class=\"{a}\">{}</div>", capitalise(&b)),
        12 => format!("export {}=/usr/lib/{b}", a.to_uppercase()),
        13 => format!("{a}: {n} # {b} {c}"),
        14 => format!("}} else if ({a} == '{}') {{", (b'a' + (m % 26) as u8) as char),
        15 => format!("while (*{a}++ = *{b}++);"),
        16 => format!("{a} |= 1 << {m}; // {b}"),
        17 => format!("const {}: u32 = {n};", a.to_uppercase()),
        18 => format!("{a}.{b}(&mut {c})?;"),
        _ => format!("{{ \"{a}\": {n}, \"{b}\": \"{c}\" }}"),
    }
}

fn address(rng: &mut Rng, lines: &[String]) -> String {
    let a = ident(rng, lines);
    let b = ident(rng, lines);
    let c = ident(rng, lines);
    let tld = *rng.pick(&["org", "com", "net", "de", "fr", "io", "edu", "cn"]);
    match rng.below(9) {
        0 => format!("https://www.{a}.{tld}/{b}/{c}.html"),
        1 => format!("http://{a}.{tld}/?q={b}&n={}", rng.int(1, 999)),
        2 => format!("https://{a}.{tld}/{b}"),
        3 => format!("ftp://ftp.{a}.{tld}/pub/{b}/"),
        4 => format!("www.{a}.{tld}"),
        5 => format!("{a}.{b}@{c}.{tld}"),
        6 => format!("<{a}@debian.org>"),
        7 => format!("/usr/share/doc/{a}/{b}.gz"),
        _ => format!("~/.config/{a}/{b}.toml"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_words() {
        assert_eq!(truncate_chars("hello brave new world", 14), "hello brave");
        assert_eq!(truncate_chars("abc", 10), "abc");
        assert_eq!(truncate_chars("abcdefgh", 3), "abc");
    }

    #[test]
    fn chinese_pieces_are_bounded_and_keep_latin_words_whole() {
        let lines: Vec<String> = [
            "使用 PostgreSQL 数据库集群，当你以后再运行 initdb 时。",
            "选项 --verbose 显示更多信息",
            "第三行文字没有拉丁字母",
        ]
        .map(String::from)
        .to_vec();
        let words = ["PostgreSQL", "initdb", "--verbose"];
        let mut rng = Rng::for_sample(0, 0, 0);
        for _ in 0..2000 {
            let text = chinese_text(&mut rng, &lines, 12);
            assert!(!text.is_empty() && text.chars().count() <= 12, "{text:?}");
            assert_eq!(text, normalise_spaces(&text));
            for token in text.split(|c: char| !c.is_ascii_alphanumeric() && c != '-') {
                let token = token.trim_matches('-');
                assert!(
                    token.is_empty() || words.iter().any(|w| w.trim_matches('-') == token),
                    "a Latin word was cut: {token:?} in {text:?}"
                );
            }
        }
    }

    #[test]
    fn grouping() {
        assert_eq!(group_thousands(1234567, ','), "1,234,567");
        assert_eq!(group_thousands(123, ','), "123");
    }
}
