//! Cutting a line crop wider than the model reads well into pieces at word gaps, and the windows
//! across those cuts ("seams") whose reading settles whether a cut was a word space.

use image::GrayImage;
use serde::Serialize;

use crate::layout::lines::otsu_threshold;
use crate::layout::rules::runs;

/// Widest line crop, in pixels at the model's line height (48 px for folio-ocr-small), sent to the model in one piece; wider lines
/// are split at word gaps ([`LineProfile::split`]). The model was trained on lines of up to 60
/// characters (about 1500 px), but its small decoder loses its place towards the end of long
/// pieces on real pages. Page CER on three tuning pages of Debian PDFs at 150 dpi (not the
/// evaluation pages) with folio-ocr-small at step 8,000: 7.04% at 1500 px, 4.21% at 1000, 3.11% at
/// 700, 2.25% at 500, 2.11% at 400, 1.94% at 350, 2.00% at 300, 2.28% at 250, 2.80% at 200.
pub const MAX_LINE_WIDTH: u32 = 350;

/// How far past the widest piece a stretch with no word space to cut at (a long hyphenated word,
/// touching italic letters) stays whole: a cut between or through letters costs more than a long
/// piece ("Collision-resistant" cut at its hyphen read "Collission" + "rcsistant").
const UNCUT_SLACK: f32 = 1.6;

/// A horizontal piece of a line crop: columns `x0..x1` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub x0: u32,
    pub x1: u32,
    /// The cut before this piece was in a word space (so the texts join with a space); false for
    /// the first piece and for cuts forced through a long word.
    pub space_before: bool,
}

/// A line crop's vertical projection, computed once and read by both the splitting and the seams:
/// ink per column (`column_ink`), the blank gaps strictly inside the crop, and the least gap
/// width that is a word space on this line (`word_space_px`).
pub struct LineProfile {
    cols: Vec<u32>,
    gaps: Vec<(u32, u32)>,
    space_px: f32,
    height: u32,
}

impl LineProfile {
    pub fn of(crop: &GrayImage) -> Self {
        let (w, h) = crop.dimensions();
        let cols = if w == 0 || h == 0 { Vec::new() } else { column_ink(crop) };
        let gaps = inner_gaps(&cols);
        LineProfile { space_px: word_space_px(&gaps, h), cols, gaps, height: h }
    }

    /// Splits the line crop into pieces no wider than `max_width` pixels once scaled to
    /// `line_height` (but see `UNCUT_SLACK`).
    ///
    /// Cuts go through the widest whitespace gap near the middle of the crop (vertical projection
    /// of the binarised crop; a gap's centre must lie in the middle half), recursively until every
    /// piece fits. A line with no gap in its middle half is cut at the gap nearest the middle, and
    /// one with no gap at all at its least-inked column near the middle; but a stretch whose best
    /// cut is not a word space stays whole up to `UNCUT_SLACK` times the limit. The outer 10% of
    /// rows are left out of the projection: the line finder's padding may hold a neighbour line's
    /// descenders. Pieces come back left to right, without overlap. A crop that fits comes back
    /// whole; when it is cut, each piece's blank margins are trimmed to a line's usual padding (so
    /// pieces need not touch) and blank pieces are dropped.
    pub fn split(&self, max_width: u32, line_height: u32) -> Vec<Piece> {
        let (w, h) = (self.cols.len() as u32, self.height);
        if w == 0 || h == 0 {
            return Vec::new();
        }
        let max_px = ((max_width.max(1) as u64 * h as u64) / line_height.max(1) as u64).max(1) as u32;
        if w <= max_px {
            return vec![Piece { x0: 0, x1: w, space_before: false }];
        }
        // A cut through a wide gap (a running header's page number, a table) leaves a piece with
        // a long blank margin the model never saw in training: every piece is trimmed to its ink
        // plus a line's usual padding before it is measured, and a piece with no ink is dropped
        // (the model reads blank paper as dashes).
        let splitter = Splitter { profile: self, max_px, pad: ((h as f32 * 0.12).round() as u32).max(2) };
        let mut out = Vec::new();
        splitter.split(0, w, false, &mut out);
        out
    }

    /// The windows across the cuts between `pieces` of this crop whose space is in doubt: `(k, x0,
    /// x1)` for the cut before piece `k`, in crop columns. In doubt is a cut through a blank gap
    /// narrower than `SEAM_SURE` word spaces (a cut forced through a word has no space to settle;
    /// a wider gap is a space beyond doubt). A window reaches `SEAM_REACH` crop heights into both
    /// pieces, no further than their outer ends, and each edge moves to the nearest blank column
    /// within a third of a height, so it does not halve a glyph where it can help it.
    ///
    /// Why: whether a cut was a word space is decided from the gap's width alone, and where a line
    /// changes face the widths lie (a typewriter `.` after a Times word leaves a gap as wide as a
    /// space: "filename .bz2"). Reading across the cut sees the glyphs on both sides.
    pub fn seams(&self, pieces: &[Piece]) -> Vec<(usize, u32, u32)> {
        let (cols, gaps, h) = (&self.cols, &self.gaps, self.height);
        if pieces.len() < 2 || cols.is_empty() || h == 0 {
            return Vec::new();
        }
        let sure = self.space_px * SEAM_SURE;
        let blank = |x: u32| cols.get(x as usize).is_some_and(|&c| c == 0);
        let reach = (h as f32 * SEAM_REACH).round() as u32;
        let slack = (h / 3).max(1);
        // The blank column nearest `x` within `slack`, else `x`; kept within lo..=hi.
        let snap = |x: u32, lo: u32, hi: u32| -> u32 {
            (0..=slack)
                .flat_map(|d| [x.checked_sub(d), x.checked_add(d)])
                .flatten()
                .find(|&c| (lo..=hi).contains(&c) && blank(c))
                .unwrap_or(x)
                .clamp(lo, hi)
        };
        let mut out = Vec::new();
        for (k, pair) in pieces.windows(2).enumerate() {
            let (prev, next) = (pair[0], pair[1]);
            let (a, b) = (prev.x1.min(next.x0), prev.x1.max(next.x0));
            // The gap the cut went through: trimming leaves its middle between the two pieces.
            let Some(&(s, e)) = gaps.iter().find(|&&(s, e)| s <= b && e > a) else { continue };
            if (e - s) as f32 >= sure {
                continue;
            }
            let x0 = snap(a.saturating_sub(reach).max(prev.x0), prev.x0, a);
            let x1 = snap((b + reach).min(next.x1), b, next.x1);
            if x1 > x0 {
                out.push((k + 1, x0, x1));
            }
        }
        out
    }
}

/// Blank column runs strictly inside a crop (its outer margins are not gaps between words).
fn inner_gaps(cols: &[u32]) -> Vec<(u32, u32)> {
    let blank: Vec<bool> = cols.iter().map(|&c| c == 0).collect();
    runs(&blank).into_iter().filter(|&(s, e)| s > 0 && e < cols.len()).map(|(s, e)| (s as u32, e as u32)).collect()
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

/// The recursive cutting of [`LineProfile::split`] over one crop's column profile.
struct Splitter<'a> {
    profile: &'a LineProfile,
    max_px: u32,
    /// Blank margin kept on each side of a piece's ink.
    pad: u32,
}

impl Splitter<'_> {
    fn split(&self, x0: u32, x1: u32, space_before: bool, out: &mut Vec<Piece>) {
        let ink = &self.profile.cols[x0 as usize..x1 as usize];
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
        let inside: Vec<(u32, u32)> = self.profile.gaps.iter().copied().filter(|&(s, e)| s > x0 && e < x1).collect();
        let centre = |&(s, e): &(u32, u32)| (s + e) as f32 / 2.0;
        let (lo, hi) = (x0 as f32 + len as f32 / 4.0, x1 as f32 - len as f32 / 4.0);
        let middle = inside.iter().filter(|g| (lo..=hi).contains(&centre(g))).max_by(|a, b| {
            (a.1 - a.0).cmp(&(b.1 - b.0)).then_with(|| (centre(b) - mid).abs().total_cmp(&(centre(a) - mid).abs()))
        });
        let nearest = || inside.iter().min_by(|a, b| (centre(a) - mid).abs().total_cmp(&(centre(b) - mid).abs()));
        let (cut, space) = match middle.or_else(nearest) {
            Some(&(s, e)) => ((s + e) / 2, (e - s) as f32 >= self.profile.space_px),
            None => {
                // No blank column at all: the least-inked column in the middle half, nearest the
                // middle.
                let (a, b) = ((lo as u32).max(x0 + 1), (hi as u32).min(x1 - 1).max(x0 + 1));
                let best = (a..=b).min_by(|&p, &q| {
                    self.profile.cols[p as usize]
                        .cmp(&self.profile.cols[q as usize])
                        .then_with(|| (p as f32 - mid).abs().total_cmp(&(q as f32 - mid).abs()))
                });
                (best.unwrap_or(x0 + len / 2), false)
            }
        };
        if !space && len as f32 <= self.max_px as f32 * UNCUT_SLACK {
            // No word space to cut at: a little past the limit, the whole stays one piece.
            out.push(Piece { x0, x1, space_before });
            return;
        }
        let cut = cut.clamp(x0 + 1, x1 - 1);
        self.split(x0, cut, space_before, out);
        self.split(cut, x1, space, out);
    }
}

/// How far a seam window reaches into the pieces on either side of a cut, in crop heights: three
/// to five characters, enough to read the letters at the cut in context.
const SEAM_REACH: f32 = 1.5;

/// Gaps at least this many word spaces wide (see [`word_space_px`]) are spaces beyond doubt.
const SEAM_SURE: f32 = 2.0;

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    const LINE_HEIGHT: u32 = 48;

    fn split_wide_line(crop: &GrayImage, max_width: u32) -> Vec<Piece> {
        LineProfile::of(crop).split(max_width, LINE_HEIGHT)
    }

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
    fn a_line_without_gaps_stays_whole_a_little_past_the_limit_then_is_cut_without_a_space() {
        // 40 px high: the 1500 px limit at 48 is 1250 px here.
        assert_eq!(split_wide_line(&line(1800, 40, &[(5, 1795)]), 1500).len(), 1);
        let pieces = split_wide_line(&line(4000, 40, &[(5, 3995)]), 1500);
        assert!(pieces.len() >= 2, "{pieces:?}");
        assert!(pieces.iter().all(|p| scaled(p, 40) as f32 <= 1500.0 * UNCUT_SLACK), "{pieces:?}");
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

    #[test]
    fn seams_cross_only_the_cuts_in_doubt() {
        // 30 px high: two words 5 px apart (a gap in doubt), a 30 px gap (a space beyond doubt),
        // then one long word that must be cut through.
        let g = line(2000, 30, &[(10, 420), (425, 830), (860, 1990)]);
        let pieces = split_wide_line(&g, 700);
        assert!(pieces.len() >= 4, "{pieces:?}");
        let seams = LineProfile::of(&g).seams(&pieces);
        assert_eq!(seams.len(), 1, "{seams:?} {pieces:?}");
        let (k, x0, x1) = seams[0];
        let (prev, next) = (pieces[k - 1], pieces[k]);
        assert!(prev.x1 <= 425 && next.x0 >= 420, "the seam is the cut in 420..425: {pieces:?}");
        // The window spans the cut, stays within the two pieces and is about 3 heights wide.
        assert!(x0 >= prev.x0 && x0 < prev.x1 && x1 > next.x0 && x1 <= next.x1, "{x0}..{x1} {pieces:?}");
        assert!((80..=110).contains(&(x1 - x0)), "{x0}..{x1}");
    }
}
