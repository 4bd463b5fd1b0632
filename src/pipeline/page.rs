//! Reading a single-column page through the engine, line by line:
//! [`find_lines`](super::lines::find_lines) → crop each line (with the finder's padding) → split lines wider than the
//! model was trained on ([`split_wide_line`]) → [`normalize_line`] (exactly as training does) →
//! one engine request per piece, all pages' pieces in flight together → line texts
//! ([`join_pieces`]) → page text, lines top to bottom joined by newlines.
//!
//! Multi-column pages need a layout detector first; this is the stand-in until then.

use std::collections::VecDeque;

use anyhow::Result;
use image::{DynamicImage, GrayImage, Pixel, RgbImage};
use serde::Serialize;

use super::lines::{otsu_threshold, scan_page, LineBox, LineFinderOptions};
use super::rules::runs;
use super::text::join_pieces;
use crate::engine::sampling::SamplingParams;
use crate::engine::{Engine, Request, RequestStream};
use crate::models::paddleocr_vl::Task;
use crate::train::{normalize_line, LINE_HEIGHT};

/// Widest line crop, in pixels at [`LINE_HEIGHT`], sent to the model in one piece; wider lines
/// are split at word gaps ([`split_wide_line`]). The model was trained on lines of up to 60
/// characters (about 1500 px), but its small decoder loses its place towards the end of long
/// pieces on real pages. Page CER on three tuning pages of Debian PDFs at 150 dpi (not the
/// evaluation pages) with folio-ocr-small at step 8,000: 7.04% at 1500 px, 4.21% at 1000, 3.11% at
/// 700, 2.25% at 500, 2.11% at 400, 1.94% at 350, 2.00% at 300, 2.28% at 250, 2.80% at 200.
pub const MAX_LINE_WIDTH: u32 = 350;

/// A horizontal piece of a line crop: columns `x0..x1` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub x0: u32,
    pub x1: u32,
    /// The cut before this piece was in a word space (so the texts join with a space); false for
    /// the first piece and for cuts forced through a long word.
    pub space_before: bool,
}

/// Splits a line crop into pieces no wider than `max_width` pixels once scaled to [`LINE_HEIGHT`].
///
/// Cuts go through the widest whitespace gap near the middle of the crop (vertical projection of
/// the binarised crop; a gap's centre must lie in the middle half), recursively until every piece
/// fits. A line with no gap in its middle half is cut at the gap nearest the middle, and one with
/// no gap at all at its least-inked column near the middle. The outer 10% of rows are left out
/// of the projection: the line finder's padding may hold a neighbour line's descenders. Pieces
/// come back left to right, without overlap. A crop that fits comes back whole; when it is cut,
/// each piece's blank margins are trimmed to a line's usual padding (so pieces need not touch)
/// and blank pieces are dropped.
pub fn split_wide_line(crop: &GrayImage, max_width: u32) -> Vec<Piece> {
    let (w, h) = crop.dimensions();
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let max_px = ((max_width.max(1) as u64 * h as u64) / LINE_HEIGHT as u64).max(1) as u32;
    if w <= max_px {
        return vec![Piece { x0: 0, x1: w, space_before: false }];
    }
    let cols = column_ink(crop);
    // Blank runs strictly inside the crop (the outer margins are not gaps between words).
    let blank: Vec<bool> = cols.iter().map(|&c| c == 0).collect();
    let gaps: Vec<(u32, u32)> =
        runs(&blank).into_iter().filter(|&(s, e)| s > 0 && e < w as usize).map(|(s, e)| (s as u32, e as u32)).collect();
    // A cut through a wide gap (a running header's page number, a table) leaves a piece with a
    // long blank margin the model never saw in training: every piece is trimmed to its ink plus a
    // line's usual padding before it is measured, and a piece with no ink is dropped (the model
    // reads blank paper as dashes).
    let splitter = Splitter {
        cols: &cols,
        gaps: &gaps,
        max_px,
        space_px: word_space_px(&gaps, h),
        pad: ((h as f32 * 0.12).round() as u32).max(2),
    };
    let mut out = Vec::new();
    splitter.split(0, w, false, &mut out);
    out
}

/// Least gap width, in pixels, that is a word space in a line `h` pixels high. Gaps between
/// letters and gaps between words are two clusters of widths whose sizes depend on the font
/// (monospaced and bold faces leave wide letter gaps), so the threshold is the best two-means split
/// of this line's gap widths, kept within 0.15–0.30 of the crop height: the clamp covers lines with
/// too few gaps to cluster, lines that are all one word, and tables, whose column gaps would
/// otherwise form the upper cluster on their own. On three tuning pages of Debian PDFs (150 dpi),
/// taking a line's k widest gaps as its k word spaces, the fixed 0.1 × height used before called
/// 671 letter gaps spaces; this rule, 19 (and misses 30, most of them spaces the text layer has
/// and the page does not show).
fn word_space_px(gaps: &[(u32, u32)], h: u32) -> f32 {
    let (lo, hi) = (h as f32 * 0.15, h as f32 * 0.30);
    let mut widths: Vec<f32> = gaps.iter().map(|&(s, e)| (e - s) as f32).collect();
    if widths.len() < 4 {
        return h as f32 * 0.2;
    }
    widths.sort_by(f32::total_cmp);
    // Two-means on sorted values: the split minimising the within-cluster sum of squares, which
    // maximises n_a·n_b·(mean_a − mean_b)² (Otsu's criterion).
    let total: f32 = widths.iter().sum();
    let n = widths.len() as f32;
    let mut below = 0.0;
    let mut best = (f32::NEG_INFINITY, h as f32 * 0.2);
    for i in 1..widths.len() {
        below += widths[i - 1];
        if widths[i - 1] == widths[i] {
            continue;
        }
        let (na, nb) = (i as f32, n - i as f32);
        let gap = below / na - (total - below) / nb;
        let score = na * nb * gap * gap;
        if score > best.0 {
            best = (score, (widths[i - 1] + widths[i]) / 2.0);
        }
    }
    best.1.clamp(lo, hi)
}

/// Ink pixels per column over the central rows, after Otsu binarisation of the crop (inverted when
/// the crop's left and right edges, its padding, are mostly dark: light text on a dark background).
fn column_ink(crop: &GrayImage) -> Vec<u32> {
    let (w, h) = crop.dimensions();
    let t = otsu_threshold(crop);
    let raw = crop.as_raw();
    let dark_edge = (0..h).filter(|&y| crop.get_pixel(0, y).0[0] <= t).count()
        + (0..h).filter(|&y| crop.get_pixel(w - 1, y).0[0] <= t).count();
    let invert = dark_edge > h as usize;
    let margin = (h as f32 * 0.1).round() as u32;
    let (r0, r1) = if h > 2 * margin + 2 { (margin, h - margin) } else { (0, h) };
    let mut cols = vec![0u32; w as usize];
    for y in r0..r1 {
        let row = &raw[(y * w) as usize..((y + 1) * w) as usize];
        for (c, &v) in cols.iter_mut().zip(row) {
            *c += u32::from(if invert { v > t } else { v <= t });
        }
    }
    cols
}

/// The recursive cutting of [`split_wide_line`] over one crop's column profile.
struct Splitter<'a> {
    cols: &'a [u32],
    /// Blank column runs strictly inside the crop.
    gaps: &'a [(u32, u32)],
    max_px: u32,
    /// Least gap width that is a word space.
    space_px: f32,
    /// Blank margin kept on each side of a piece's ink.
    pad: u32,
}

impl Splitter<'_> {
    fn split(&self, x0: u32, x1: u32, space_before: bool, out: &mut Vec<Piece>) {
        let ink = &self.cols[x0 as usize..x1 as usize];
        let (Some(first), Some(last)) = (ink.iter().position(|&c| c > 0), ink.iter().rposition(|&c| c > 0)) else {
            return;
        };
        let (x0, x1) = (x0.max((x0 + first as u32).saturating_sub(self.pad)), x1.min(x0 + last as u32 + 1 + self.pad));
        let len = x1 - x0;
        if len <= self.max_px || len < 2 {
            out.push(Piece { x0, x1, space_before });
            return;
        }
        let mid = x0 as f32 + len as f32 / 2.0;
        let inside: Vec<(u32, u32)> = self.gaps.iter().copied().filter(|&(s, e)| s > x0 && e < x1).collect();
        let centre = |&(s, e): &(u32, u32)| (s + e) as f32 / 2.0;
        let (lo, hi) = (x0 as f32 + len as f32 / 4.0, x1 as f32 - len as f32 / 4.0);
        let middle = inside.iter().filter(|g| (lo..=hi).contains(&centre(g))).max_by(|a, b| {
            (a.1 - a.0).cmp(&(b.1 - b.0)).then_with(|| (centre(b) - mid).abs().total_cmp(&(centre(a) - mid).abs()))
        });
        let nearest = || inside.iter().min_by(|a, b| (centre(a) - mid).abs().total_cmp(&(centre(b) - mid).abs()));
        let (cut, space) = match middle.or_else(nearest) {
            Some(&(s, e)) => ((s + e) / 2, (e - s) as f32 >= self.space_px),
            None => {
                // No blank column at all: the least-inked column in the middle half, nearest the
                // middle.
                let (a, b) = ((lo as u32).max(x0 + 1), (hi as u32).min(x1 - 1).max(x0 + 1));
                let best = (a..=b).min_by(|&p, &q| {
                    self.cols[p as usize]
                        .cmp(&self.cols[q as usize])
                        .then_with(|| (p as f32 - mid).abs().total_cmp(&(q as f32 - mid).abs()))
                });
                (best.unwrap_or(x0 + len / 2), false)
            }
        };
        let cut = cut.clamp(x0 + 1, x1 - 1);
        self.split(x0, cut, space_before, out);
        self.split(cut, x1, space, out);
    }
}

/// How pages are cut and read.
#[derive(Clone, Debug)]
pub struct PageOptions {
    pub lines: LineFinderOptions,
    /// See [`MAX_LINE_WIDTH`].
    pub max_line_width: u32,
    /// Most new tokens per piece.
    pub max_tokens: usize,
    /// Most pieces submitted to the engine and not yet collected (bounds the memory of prepared
    /// images on long documents; far above what the engine runs at once).
    pub max_in_flight: usize,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            lines: LineFinderOptions::default(),
            max_line_width: MAX_LINE_WIDTH,
            max_tokens: 128,
            max_in_flight: 256,
        }
    }
}

/// One line of a page, its pieces in page columns and, once read, its text.
#[derive(Clone, Debug, Serialize)]
pub struct PageLine {
    #[serde(serialize_with = "bbox_array")]
    pub bbox: LineBox,
    pub pieces: Vec<Piece>,
    pub text: String,
}

fn bbox_array<S: serde::Serializer>(b: &LineBox, s: S) -> std::result::Result<S::Ok, S::Error> {
    [b.x0, b.y0, b.x1, b.y1].serialize(s)
}

/// A page read line by line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PageText {
    pub width: u32,
    pub height: u32,
    pub lines: Vec<PageLine>,
    /// Pieces that could not be read ("line L piece K: why"); their text is left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl PageText {
    /// The lines' texts, top to bottom, one a line (lines read as nothing are left out).
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.text.as_str()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n")
    }
}

/// A line cut out of a page: its box, its pieces (page columns) and their normalised crops.
pub struct LineCrops {
    pub bbox: LineBox,
    pub pieces: Vec<Piece>,
    pub images: Vec<DynamicImage>,
}

/// Finds a page's lines and cuts each into normalised piece crops, top to bottom.
pub fn cut_page(page: &DynamicImage, opts: &PageOptions) -> Vec<LineCrops> {
    let mut gray = page.to_luma8();
    let scan = scan_page(&gray, &opts.lines);
    let mut rgb: RgbImage = page.to_rgb8();
    if !scan.rules.is_empty() {
        // Rules go from what the model reads too: a border at a crop's edge reads as "|" or "—".
        let paper = paper_colour(&rgb);
        let luma = image::Rgb(paper).to_luma();
        for ((g, c), _) in gray.pixels_mut().zip(rgb.pixels_mut()).zip(&scan.rules).filter(|(_, &r)| r) {
            *g = luma;
            *c = image::Rgb(paper);
        }
    }
    scan.boxes
        .into_iter()
        .map(|b| {
            let g = image::imageops::crop_imm(&gray, b.x0, b.y0, b.width(), b.height()).to_image();
            let pieces: Vec<Piece> = split_wide_line(&g, opts.max_line_width)
                .into_iter()
                .map(|p| Piece { x0: p.x0 + b.x0, x1: p.x1 + b.x0, space_before: p.space_before })
                .collect();
            let images = pieces
                .iter()
                .map(|p| {
                    normalize_line(&image::imageops::crop_imm(&rgb, p.x0, b.y0, p.x1 - p.x0, b.height()).to_image())
                })
                .collect();
            LineCrops { bbox: b, pieces, images }
        })
        .collect()
}

/// The page's paper: per channel, the median over a sample of pixels (a page is mostly paper).
fn paper_colour(rgb: &RgbImage) -> [u8; 3] {
    let mut hist = [[0u32; 256]; 3];
    let mut n = 0u32;
    for p in rgb.pixels().step_by(7) {
        for (h, &v) in hist.iter_mut().zip(&p.0) {
            h[v as usize] += 1;
        }
        n += 1;
    }
    hist.map(|h| {
        let mut acc = 0;
        h.iter()
            .position(|&c| {
                acc += c;
                acc * 2 >= n
            })
            .unwrap_or(255) as u8
    })
}

/// Reads pages: every piece of every page goes to the engine (at most `max_in_flight` waiting at
/// once) so they decode together; results come back per page, in input order. A piece that fails
/// (say, a crop the image processor rejects) is recorded in its page's `errors` and the rest of
/// the page is still read.
pub fn read_pages(engine: &Engine, pages: &[DynamicImage], opts: &PageOptions) -> Vec<PageText> {
    let mut results: Vec<PageText> = Vec::with_capacity(pages.len());
    let mut texts: Vec<Vec<Vec<String>>> = Vec::with_capacity(pages.len());
    // (page, line, piece) of every crop, in reading order, and the crops themselves.
    let mut jobs: VecDeque<(usize, usize, usize, DynamicImage)> = VecDeque::new();
    for (pi, page) in pages.iter().enumerate() {
        let cut = cut_page(page, opts);
        let mut lines = Vec::with_capacity(cut.len());
        let mut page_texts = Vec::with_capacity(cut.len());
        for (li, line) in cut.into_iter().enumerate() {
            page_texts.push(vec![String::new(); line.pieces.len()]);
            for (k, img) in line.images.into_iter().enumerate() {
                jobs.push_back((pi, li, k, img));
            }
            lines.push(PageLine { bbox: line.bbox, pieces: line.pieces, text: String::new() });
        }
        texts.push(page_texts);
        results.push(PageText { width: page.width(), height: page.height(), lines, errors: Vec::new() });
    }
    let sampling = SamplingParams::greedy(opts.max_tokens);
    let mut in_flight: VecDeque<(usize, usize, usize, Result<RequestStream>)> = VecDeque::new();
    loop {
        while in_flight.len() < opts.max_in_flight.max(1) {
            let Some((pi, li, k, img)) = jobs.pop_front() else { break };
            let req =
                Request { images: vec![img], instruction: Task::Ocr.prompt().to_string(), sampling: sampling.clone() };
            in_flight.push_back((pi, li, k, engine.submit(req)));
        }
        let Some((pi, li, k, stream)) = in_flight.pop_front() else { break };
        match stream.and_then(|s| s.blocking_collect()) {
            Ok((text, ..)) => texts[pi][li][k] = text,
            Err(e) => results[pi].errors.push(format!("line {} piece {}: {e:#}", li + 1, k + 1)),
        }
    }
    for (page, page_texts) in results.iter_mut().zip(texts) {
        for (line, t) in page.lines.iter_mut().zip(page_texts) {
            line.text = join_pieces(&line.pieces, &t);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A line crop: white, with black "words" at the given column ranges over the central rows.
    fn line(w: u32, h: u32, words: &[(u32, u32)]) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let ink = y >= h / 4 && y < h - h / 4 && words.iter().any(|&(a, b)| x >= a && x < b);
            Luma([if ink { 10 } else { 245 }])
        })
    }

    fn scaled(p: &Piece, h: u32) -> u32 {
        (p.x1 - p.x0) * LINE_HEIGHT / h
    }

    #[test]
    fn narrow_lines_stay_whole() {
        let g = line(1400, 48, &[(10, 600), (620, 1390)]);
        assert_eq!(split_wide_line(&g, 1500), vec![Piece { x0: 0, x1: 1400, space_before: false }]);
        // 24 px high: 700 px is 1400 px at 48.
        let g = line(700, 24, &[(5, 300), (310, 695)]);
        assert_eq!(split_wide_line(&g, 1500).len(), 1);
    }

    #[test]
    fn cuts_at_the_widest_gap_near_the_middle() {
        // 2000 px at 48 high: 90 px words with 12 px gaps, one 30 px gap after the word at
        // 1118..1208, and a wider one near the edge (150..200) that must not win.
        let mut words = vec![(10, 150)];
        let mut x = 200;
        while x < 1990 {
            words.push((x, (x + 90).min(1990)));
            x += if x == 1118 { 120 } else { 102 };
        }
        let g = line(2000, 48, &words);
        let pieces = split_wide_line(&g, 1500);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        // Cut in the gap 1208..1238; each side keeps at most a 6 px margin (12% of 48).
        assert_eq!((pieces[0].x0, pieces[0].x1, pieces[1].x0, pieces[1].x1), (4, 1214, 1232, 1996));
        assert!(!pieces[0].space_before && pieces[1].space_before);
    }

    #[test]
    fn very_wide_lines_split_until_every_piece_fits() {
        // 30 px high, 3000 px wide = 4800 px at 48: needs at least four pieces.
        let words: Vec<(u32, u32)> = (0..60).map(|i| (10 + i * 49, 10 + i * 49 + 42)).collect();
        let g = line(3000, 30, &words);
        let pieces = split_wide_line(&g, 1500);
        assert!(pieces.len() >= 4, "{pieces:?}");
        assert!(pieces.iter().all(|p| scaled(p, 30) <= 1500), "{pieces:?}");
        assert!(pieces.windows(2).all(|w| w[0].x1 <= w[1].x0), "in order: {pieces:?}");
        // Every word is inside one piece.
        for &(a, b) in &words {
            assert!(pieces.iter().any(|p| p.x0 <= a && b <= p.x1), "word {a}..{b} cut: {pieces:?}");
        }
        // Every cut sits in a blank gap between words.
        for p in &pieces[1..] {
            assert!(words.iter().all(|&(a, b)| p.x0 <= a || p.x0 >= b), "cut {} inside a word", p.x0);
            assert!(p.space_before);
        }
    }

    #[test]
    fn word_spaces_are_told_from_letter_gaps_line_by_line() {
        // Eight words of five letters: `letter` px between letters, `word` px between words.
        let gaps = |letter: u32, word: u32| -> Vec<(u32, u32)> {
            (0..8).flat_map(|_| (0..5).map(move |l| if l == 4 { word } else { letter })).map(|g| (0, g)).collect()
        };
        // A proportional face, and a monospaced one whose letter gaps (4 px at 25 px high) a fixed
        // 0.1 × height would take for spaces.
        for (h, letter, word) in [(30, 2, 8), (25, 4, 12)] {
            let t = word_space_px(&gaps(letter, word), h);
            assert!((letter as f32) < t && t <= word as f32, "h {h}: {t}");
        }
        // Too few gaps to cluster: a fifth of the height.
        assert_eq!(word_space_px(&[(0, 3), (10, 20)], 30), 6.0);
    }

    #[test]
    fn a_line_without_gaps_is_cut_anyway_without_a_space() {
        let g = line(2000, 40, &[(5, 1995)]);
        let pieces = split_wide_line(&g, 1500);
        assert!(pieces.len() >= 2 && pieces.iter().all(|p| scaled(p, 40) <= 1500), "{pieces:?}");
        assert!(pieces.iter().all(|p| !p.space_before));
    }

    #[test]
    fn neighbour_descenders_in_the_padding_do_not_hide_gaps() {
        let mut g = line(2000, 40, &[(10, 990), (1010, 1990)]);
        // A stroke across the top two rows (padding holding the line above's descenders).
        for x in 0..2000 {
            g.put_pixel(x, 0, Luma([0]));
            g.put_pixel(x, 1, Luma([0]));
        }
        let pieces = split_wide_line(&g, 1500);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!((990..1010).contains(&pieces[0].x1), "{pieces:?}");
    }

    #[test]
    fn a_far_page_number_gets_a_tight_piece() {
        // "Chapter 4: Example ............ 5": the cut goes through the wide gap, and both pieces
        // keep only a small blank margin.
        let g = line(2000, 40, &[(10, 400), (1950, 1970)]);
        let pieces = split_wide_line(&g, 1500);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!(pieces[0].x1 <= 410 && pieces[1].x0 >= 1940, "{pieces:?}");
    }

    /// A running header cut at 500 px: the wide blank between title and page number is
    /// not cut into blank pieces (the model reads blank paper as dashes), and the two-digit page
    /// number stays one piece.
    #[test]
    fn no_blank_pieces_and_a_short_word_stays_whole() {
        // 27 px high: 500 px at 48 is 281 px here. Title 10..213, "1" 888..894, "5" 897..904.
        let g = line(1100, 27, &[(10, 100), (106, 213), (888, 894), (897, 904)]);
        let pieces = split_wide_line(&g, 500);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!(pieces[0].x0 <= 10 && pieces[0].x1 >= 213 && pieces[0].x1 <= 220, "{pieces:?}");
        assert!(pieces[1].x0 >= 880 && pieces[1].x0 <= 888 && pieces[1].x1 >= 904, "{pieces:?}");
        assert!(pieces[1].space_before);
    }

    #[test]
    fn light_text_on_dark_is_split_too() {
        let mut g = line(2000, 40, &[(10, 990), (1010, 1990)]);
        image::imageops::invert(&mut g);
        let pieces = split_wide_line(&g, 1500);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!((990..1010).contains(&pieces[0].x1), "{pieces:?}");
    }

    /// Blocks of "text" in a box on tinted paper: one crop per block, and the border at the crops'
    /// edges is painted with the paper's colour.
    #[test]
    fn crops_inside_a_ruled_box_carry_no_border() {
        let paper = image::Rgb([240, 236, 225]);
        let mut page = RgbImage::from_pixel(600, 300, paper);
        let ink = image::Rgb([20, 20, 20]);
        for x in 20..580 {
            page.put_pixel(x, 20, ink);
            page.put_pixel(x, 280, ink);
        }
        for y in 20..=280 {
            page.put_pixel(20, y, ink);
            page.put_pixel(579, y, ink);
        }
        // Three rows of words, 16 px tall, the first word 2 px from the left border (so the
        // line's padded box takes the border in).
        for row in 0..3u32 {
            let y0 = 60 + 70 * row;
            for word in 0..8u32 {
                let x0 = 22 + 60 * word;
                for y in y0..y0 + 16 {
                    for x in x0..x0 + 40 {
                        page.put_pixel(x, y, ink);
                    }
                }
            }
        }
        let lines = cut_page(&DynamicImage::ImageRgb8(page), &PageOptions::default());
        assert_eq!(lines.len(), 3, "{:?}", lines.iter().map(|l| l.bbox).collect::<Vec<_>>());
        for l in &lines {
            assert!(l.bbox.x0 <= 20, "the box takes the border in: {:?}", l.bbox);
            // The crop's leftmost column lies on the border: it must be paper now.
            let first = l.images[0].to_rgb8();
            let dark = (0..first.height()).filter(|&y| first.get_pixel(0, y).0[0] < 128).count();
            assert_eq!(dark, 0, "border ink in the crop of {:?}", l.bbox);
        }
    }
}
