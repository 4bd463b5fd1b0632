//! The synthetic line generator: determinism, label/pixel agreement, held-out fonts and text.
//! Needs the Debian font packages that `scripts/setup.sh` installs (scripts/test.sh runs it first).

use std::collections::HashSet;
use std::sync::OnceLock;

use folio::synth::corpus::{is_held_out, Corpus};
use folio::synth::{Generator, Inline, LineStyle, Split, Style, SynthConfig};
use image::RgbImage;

fn gen() -> &'static Generator {
    static GEN: OnceLock<Generator> = OnceLock::new();
    GEN.get_or_init(|| match Generator::new(SynthConfig::default()) {
        Ok(g) => g,
        Err(e) => panic!("cannot build the synthetic-data generator: {e:#}"),
    })
}

/// Columns holding any pixel that differs from the top-left (background) pixel by > 40 levels.
fn ink_columns(img: &RgbImage) -> Option<(u32, u32)> {
    let bg = img.get_pixel(0, 0).0;
    let mut cols = (0..img.width()).filter(|&x| {
        (0..img.height()).any(|y| {
            let p = img.get_pixel(x, y).0;
            (0..3).any(|c| (p[c] as i32 - bg[c] as i32).abs() > 40)
        })
    });
    let first = cols.next()?;
    Some((first, cols.next_back().unwrap_or(first)))
}

#[test]
fn samples_are_pure_functions_of_seed_split_index() {
    let g = gen();
    let other = Generator::new(SynthConfig::default()).expect("second generator");
    for split in [Split::Train, Split::EvalText, Split::EvalFont] {
        // Out of order, and on another generator instance: same bytes.
        for i in [17u64, 3, 1_000_000, 3] {
            let a = g.sample(split, i).expect("sample");
            let b = other.sample(split, i).expect("sample");
            assert_eq!(a.text, b.text);
            assert_eq!(a.font, b.font);
            assert_eq!(a.image.dimensions(), b.image.dimensions());
            assert!(a.image.as_raw() == b.image.as_raw(), "{split} {i}: images differ");
        }
    }
    // Different indices, splits and seeds give different samples.
    let a = g.sample(Split::Train, 1).expect("sample");
    let b = g.sample(Split::Train, 2).expect("sample");
    let c = g.sample(Split::EvalText, 1).expect("sample");
    let d = Generator::new(SynthConfig { seed: 99, ..SynthConfig::default() })
        .expect("gen")
        .sample(Split::Train, 1)
        .expect("sample");
    assert!(
        a.image.as_raw() != b.image.as_raw()
            && a.image.as_raw() != c.image.as_raw()
            && a.image.as_raw() != d.image.as_raw()
    );
}

#[test]
fn parallel_generation_matches_sequential() {
    let g = gen();
    let seq: Vec<_> = (0..16).map(|i| g.sample(Split::Train, i).expect("sample")).collect();
    let par: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> =
            (0..16u64).rev().map(|i| s.spawn(move || g.sample(Split::Train, i).expect("sample"))).collect();
        let mut v: Vec<_> = hs.into_iter().map(|h| h.join().expect("thread")).collect();
        v.reverse();
        v
    });
    for (a, b) in seq.iter().zip(&par) {
        assert_eq!(a.text, b.text);
        assert!(a.image.as_raw() == b.image.as_raw());
    }
}

#[test]
fn empty_and_space_labels_give_blank_images() {
    let g = gen();
    let face = g.face_index("DejaVu Serif", Style::Regular).expect("DejaVu Serif");
    for text in ["", " ", "   \t "] {
        let s = g.draw(text, &LineStyle::clean(face, 24.0)).expect("draw");
        assert_eq!(s.text, "");
        assert!(s.image.pixels().all(|p| p.0 == [255, 255, 255]), "{text:?} left ink");
    }
}

#[test]
fn longer_text_inks_wider() {
    let g = gen();
    for (family, style) in
        [("Liberation Sans", Style::Regular), ("Nimbus Roman", Style::Italic), ("Latin Modern Mono", Style::Bold)]
    {
        let face = g.face_index(family, style).expect(family);
        let st = LineStyle::clean(face, 28.0);
        let mut last = 0;
        for text in ["a", "ab", "abc def", "abc def ghij", "abc def ghij klmnop qrs"] {
            let s = g.draw(text, &st).expect("draw");
            assert_eq!(s.text, text);
            let (x0, x1) = ink_columns(&s.image).expect("ink");
            assert!(x1 - x0 > last, "{family}: {text:?} not wider ({} <= {last})", x1 - x0);
            last = x1 - x0;
        }
    }
}

#[test]
fn labels_are_exactly_what_is_drawn() {
    let g = gen();
    let face = g.face_index("DejaVu Sans", Style::Regular).expect("DejaVu Sans");
    let st = LineStyle::clean(face, 24.0);
    // Whitespace is normalised; characters without a glyph are dropped (CJK is not in DejaVu).
    let s = g.draw("  a   b\u{4e2d}c\u{200b} ", &st).expect("draw");
    assert_eq!(s.text, "a bc");
    // The same label, drawn again, gives the same pixels as the normalised text.
    let t = g.draw("a bc", &st).expect("draw");
    assert!(s.image.as_raw() == t.image.as_raw());
    // A font lacking a typographic character gets its ASCII stand-in, and the label says so.
    let nimbus = g.face_index("Nimbus Roman", Style::Regular).expect("Nimbus Roman");
    let s = g.draw("x\u{2192}y", &LineStyle::clean(nimbus, 24.0)).expect("draw");
    assert!(s.text == "x\u{2192}y" || s.text == "x->y", "{:?}", s.text);
}

#[test]
fn words_in_a_second_face_keep_the_label() {
    let g = gen();
    let serif = g.face_index("Nimbus Roman", Style::Regular).expect("Nimbus Roman");
    let mono = g.face_index("Nimbus Mono PS", Style::Bold).expect("Nimbus Mono PS Bold");
    let text = "use iiii and ii.bz2 here";
    let plain = LineStyle::clean(serif, 28.0);
    let mixed = LineStyle { inline: Some(Inline { face: mono, spans: vec![4..8, 13..19] }), ..plain.clone() };
    let (a, b) = (g.draw(text, &plain).expect("draw"), g.draw(text, &mixed).expect("draw"));
    assert_eq!((a.text.as_str(), b.text.as_str()), (text, text));
    // A typewriter 'i' or '.' is as wide as an 'm': the spans ink far wider than in Times.
    let width = |img: &RgbImage| ink_columns(img).map(|(x0, x1)| x1 - x0).expect("ink");
    let (wa, wb) = (width(&a.image), width(&b.image));
    assert!(wb > wa + 40, "plain {wa} px, mixed {wb} px");
    // Only the spans change: the first word is drawn the same.
    let head = |img: &RgbImage| -> Vec<u8> {
        (0..img.height().min(30)).flat_map(|y| (0..40).map(move |x| img.get_pixel(x, y).0[0])).collect()
    };
    assert!(head(&a.image) == head(&b.image));
    let bad = LineStyle { inline: Some(Inline { face: usize::MAX, spans: vec![0..1, 2..3] }), ..plain };
    assert!(g.draw(text, &bad).is_err(), "a face out of range is an error, not a panic");
}

#[test]
fn stroke_weight_changes_the_ink_not_the_label() {
    let g = gen();
    let face = g.face_index("Nimbus Roman", Style::Regular).expect("Nimbus Roman");
    let text = "Stroke weight of 1984";
    let ink = |stroke: f32| -> f64 {
        let s = g.draw(text, &LineStyle { stroke, ..LineStyle::clean(face, 28.0) }).expect("draw");
        assert_eq!(s.text, text);
        s.image.pixels().map(|p| 255.0 - p.0[0] as f64).sum()
    };
    let (regular, bold, light) = (ink(0.0), ink(1.0), ink(-0.6));
    assert!(bold > 1.3 * regular, "bolder by a pixel: ink {bold} against {regular}");
    // Lighter, but the hairlines fade rather than vanish.
    assert!(light < 0.85 * regular && light > 0.3 * regular, "lighter: ink {light} against {regular}");
}

#[test]
fn labels_are_clean_and_bounded() {
    let g = gen();
    let max = g.config().max_chars;
    for split in [Split::Train, Split::EvalText, Split::EvalFont] {
        for i in 0..300 {
            let s = g.sample(split, i).expect("sample");
            assert!(!s.text.is_empty(), "{split} {i}: empty label");
            assert_eq!(s.text.trim(), s.text, "{split} {i}");
            assert!(!s.text.contains("  "), "{split} {i}: {:?}", s.text);
            assert!(s.text.chars().count() <= max, "{split} {i}: {:?}", s.text);
            assert!(s.image.width() >= 4 && s.image.height() >= 8, "{split} {i}: {:?}", s.image.dimensions());
            assert!(s.image.height() <= 400 && s.image.width() <= 4000, "{split} {i}: {:?}", s.image.dimensions());
        }
    }
}

#[test]
fn held_out_family_never_in_training() {
    let g = gen();
    let held = &g.config().eval_families;
    assert_eq!(held, &["Latin Modern Roman".to_string()]);
    let train_fonts: HashSet<String> = g.split_fonts(Split::Train).into_iter().collect();
    let eval_fonts: HashSet<String> = g.split_fonts(Split::EvalFont).into_iter().collect();
    assert!(train_fonts.len() >= 60, "{} train faces", train_fonts.len());
    assert!(train_fonts.is_disjoint(&eval_fonts));
    assert!(train_fonts.iter().all(|f| !f.starts_with("Latin Modern Roman")));
    let mut families = HashSet::new();
    for i in 0..400 {
        let s = g.sample(Split::Train, i).expect("sample");
        assert!(!s.font.starts_with("Latin Modern Roman"), "train sample {i} in {}", s.font);
        families.insert(s.font.clone());
        let e = g.sample(Split::EvalFont, i).expect("sample");
        assert!(e.font.starts_with("Latin Modern Roman"), "eval-font sample {i} in {}", e.font);
    }
    assert!(families.len() > 30, "train draws from many faces: {}", families.len());
    // A family cannot be both.
    let cfg = SynthConfig { train_families: Some(vec!["Latin Modern Roman".into()]), ..SynthConfig::default() };
    assert!(Generator::new(cfg).is_err());
}

#[test]
fn corpus_split_is_disjoint_and_stable() {
    let c = Corpus::load(None, folio::synth::corpus::BUILTIN).expect("corpus");
    let train: HashSet<&str> = c.train.iter().map(String::as_str).collect();
    assert!(c.held_out.iter().all(|l| !train.contains(l.as_str()) && is_held_out(l)));
    assert!(c.train.iter().all(|l| !is_held_out(l)));
    let n = (c.train.len() + c.held_out.len()) as f64;
    let frac = c.held_out.len() as f64 / n;
    assert!(n > 30_000.0 && (0.04..0.06).contains(&frac), "{n} lines, held-out fraction {frac}");
    // eval-text prose comes from held-out lines: most of its words are in them.
    let g = gen();
    let held_words: HashSet<&str> = c.held_out.iter().flat_map(|l| l.split(' ')).collect();
    let mut words = 0;
    let mut found = 0;
    for i in 0..200 {
        let s = g.sample(Split::EvalText, i).expect("sample");
        for w in s.text.split(' ') {
            words += 1;
            found += usize::from(held_words.contains(w));
        }
    }
    assert!(found as f64 > 0.6 * words as f64, "{found}/{words} words from held-out text");
}

#[test]
fn config_round_trips_through_json() {
    let cfg = SynthConfig::default();
    let json = serde_json::to_string(&cfg).expect("json");
    let back: SynthConfig = serde_json::from_str(&json).expect("parse");
    assert_eq!(back.eval_families, cfg.eval_families);
    let partial: SynthConfig = serde_json::from_str(r#"{"max_px": 32, "augment": 0.5}"#).expect("partial");
    assert_eq!(partial.max_px, 32.0);
    assert_eq!(partial.min_px, 14.0);
    assert!(serde_json::from_str::<SynthConfig>(r#"{"max_pxx": 32}"#).is_err());
}

#[test]
fn kerning_is_applied_for_truetype_and_opentype_cff_faces() {
    use ab_glyph::Font;
    let g = gen();
    for family in ["DejaVu Serif", "Liberation Serif", "Nimbus Roman", "C059", "Latin Modern Roman"] {
        let face = &g.faces()[g.face_index(family, Style::Regular).expect(family)];
        let (a, v) = (face.font.glyph_id('A'), face.font.glyph_id('V'));
        let k = face.kerning().kern_unscaled(a, v);
        assert!(k < 0.0, "{family}: kern(A, V) = {k}");
    }
}

/// Every face of the catalogue draws every printable ASCII character: a face that lacked some
/// would silently drop them from its labels, and the model would never see them in that face.
#[test]
fn every_face_draws_printable_ascii() {
    let g = gen();
    let mut gaps = Vec::new();
    for face in g.faces() {
        let missing: String = ('!'..='~').filter(|&c| face.visible_glyph(c).is_none()).collect();
        if !missing.is_empty() {
            gaps.push(format!("{}: {missing:?}", face.display_name()));
        }
    }
    assert!(gaps.is_empty(), "faces without glyphs: {gaps:?}");
    assert!(g.faces().len() >= 100, "{} faces loaded", g.faces().len());
}

fn has_han(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// With `chinese` set, that share of the train lines are Chinese, drawn in the Chinese faces;
/// `eval-zh` reads only held-out Chinese text; the vocabulary gains the Chinese characters.
#[test]
fn chinese_lines_come_in_chinese_fonts_from_their_own_split() {
    let g = Generator::new(SynthConfig { chinese: 0.4, ..SynthConfig::default() }).expect("generator");
    let cjk = |font: &str| font.contains("CJK SC");
    let mut chinese = 0;
    for i in 0..300 {
        let s = g.sample(Split::Train, i).expect("sample");
        if cjk(&s.font) {
            chinese += 1;
        } else {
            assert!(!has_han(&s.text), "Chinese text in a Latin face: {} ({})", s.text, s.font);
        }
    }
    assert!((90..=150).contains(&chinese), "{chinese} of 300 train lines in Chinese faces; want about 40 %");
    let zh = Corpus::load(None, folio::synth::corpus::BUILTIN_CHINESE).expect("Chinese corpus");
    // Pieces may span consecutive lines: compare without spaces against the held-out text run on.
    let squeeze = |s: &str| s.chars().filter(|c| *c != ' ').collect::<String>();
    let held_out = squeeze(&zh.held_out.concat());
    let mut han_lines = 0;
    for i in 0..60 {
        let s = g.sample(Split::EvalZh, i).expect("sample");
        assert!(cjk(&s.font), "eval-zh sample {i} in {}", s.font);
        han_lines += usize::from(has_han(&s.text));
        assert!(held_out.contains(&squeeze(&s.text)), "eval-zh sample {i} is not held-out text: {}", s.text);
    }
    assert!(han_lines >= 45, "{han_lines} of 60 eval-zh lines have Chinese characters");
    assert!(g.charset().contains(&'数') && !gen().charset().contains(&'数'));
    // Without Chinese data, eval-zh is an error rather than Latin lines under a Chinese name.
    assert!(gen().sample(Split::EvalZh, 0).is_err());
    assert!(Generator::new(SynthConfig { chinese: 1.5, ..SynthConfig::default() }).is_err());
}
