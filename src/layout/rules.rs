//! Ruling lines: table borders, boxes, header and footer separators, long underlines.
//!
//! A projection profile sees a table's side borders as ink in every row, so a whole table becomes
//! one "line", and a rule read as a text line makes the model write a row of dashes. So rules are
//! found in the binarised page and erased before lines are looked for, and painted over with paper
//! in the crops the model reads.
//!
//! A rule is a run of ink along a row (or a column) at least [`RULE_RUN`] line heights (and 4% of
//! the page's width, or height) long that is thin across: text strokes are never that long, and a
//! solid block (a dark bar behind white heading text) is thick, so neither is touched. Cost: a few
//! passes over the page and two page-sized masks, O(width × height).

use image::GrayImage;

/// Least length of a rule, in typical line heights.
pub const RULE_RUN: f32 = 3.0;
/// Thickest rule, in typical line heights (at least [`MIN_THICK`] pixels).
const MAX_THICKNESS: f32 = 0.3;
const MIN_THICK: usize = 3;

/// A binarised page: `on[y * w + x]` is ink.
#[derive(Clone, Debug)]
pub struct InkMask {
    w: usize,
    h: usize,
    on: Vec<bool>,
}

impl InkMask {
    /// Ink is `<= threshold`; a page that is mostly "ink" is light text on a dark background and is
    /// inverted.
    pub fn binarise(gray: &GrayImage, threshold: u8) -> Self {
        let raw = gray.as_raw();
        let dark = raw.iter().filter(|&&v| v <= threshold).count();
        let invert = dark * 2 > raw.len();
        let on = raw.iter().map(|&v| (v <= threshold) != invert).collect();
        InkMask { w: gray.width() as usize, h: gray.height() as usize, on }
    }

    pub fn width(&self) -> usize {
        self.w
    }

    pub fn height(&self) -> usize {
        self.h
    }

    /// Whether pixel (`x`, `y`) is ink.
    pub fn ink(&self, x: usize, y: usize) -> bool {
        self.on[y * self.w + x]
    }

    pub fn row(&self, y: usize) -> &[bool] {
        &self.on[y * self.w..(y + 1) * self.w]
    }

    /// Ink pixels per row.
    pub fn row_counts(&self) -> Vec<u64> {
        (0..self.h).map(|y| self.row(y).iter().filter(|&&v| v).count() as u64).collect()
    }

    /// Erases ruling lines (see the module docs) given the page's typical line height in pixels,
    /// and returns the mask of erased pixels (empty when there was nothing to erase).
    pub fn erase_rules(&mut self, line_height: f32) -> Vec<bool> {
        let mut rule = vec![false; self.w * self.h];
        // Horizontal rules first: once they are gone, where a vertical border crosses one is thin
        // again, so the vertical pass takes the crossing too.
        for horizontal in [true, false] {
            self.erase_direction(horizontal, line_height, &mut rule);
        }
        if rule.iter().any(|&r| r) {
            rule
        } else {
            Vec::new()
        }
    }

    /// One direction of [`erase_rules`](Self::erase_rules): a run of ink along it at least
    /// `min_run` long whose pixels (90% of them) lie in a thin run of ink across it. The 90% lets
    /// a rule touched by a few descenders go, and keeps a dark bar behind white text, whose ink
    /// between the letters is as thick as the bar.
    fn erase_direction(&mut self, horizontal: bool, line_height: f32, rule: &mut [bool]) {
        let (w, h) = (self.w, self.h);
        // (lines, length) along the direction; index of position `j` on line `i`.
        let (lines, len) = if horizontal { (h, w) } else { (w, h) };
        let at = |i: usize, j: usize| if horizontal { i * w + j } else { j * w + i };
        // The floor keeps heading strokes safe when the line height is underestimated.
        let min_run = (RULE_RUN * line_height).max(len as f32 / 25.0).max(8.0) as usize;
        let max_thick = ((MAX_THICKNESS * line_height) as usize).max(MIN_THICK);
        // Thin across: the pixel's run of ink perpendicular to the direction is short.
        let mut thin = vec![false; w * h];
        let mut line = Vec::with_capacity(lines);
        for j in 0..len {
            line.clear();
            line.extend((0..lines).map(|i| self.on[at(i, j)]));
            for (a, b) in runs(&line).into_iter().filter(|(a, b)| b - a <= max_thick) {
                (a..b).for_each(|i| thin[at(i, j)] = true);
            }
        }
        let mut line = Vec::with_capacity(len);
        for i in 0..lines {
            line.clear();
            line.extend((0..len).map(|j| self.on[at(i, j)]));
            for (a, b) in runs(&line).into_iter().filter(|(a, b)| b - a >= min_run) {
                let thin_count = (a..b).filter(|&j| thin[at(i, j)]).count();
                if thin_count * 10 >= (b - a) * 9 {
                    // `thin` is already measured, so erasing now changes no later decision.
                    for j in (a..b).filter(|&j| thin[at(i, j)]) {
                        rule[at(i, j)] = true;
                        self.on[at(i, j)] = false;
                    }
                }
            }
        }
    }
}

/// Half-open runs of `true` in `v`.
pub(crate) fn runs(v: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &on) in v.iter().enumerate() {
        match (on, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, v.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    fn page(w: u32, h: u32) -> GrayImage {
        GrayImage::from_pixel(w, h, Luma([250]))
    }

    fn fill(g: &mut GrayImage, x0: u32, y0: u32, x1: u32, y1: u32) {
        for y in y0..y1 {
            for x in x0..x1 {
                g.put_pixel(x, y, Luma([10]));
            }
        }
    }

    #[test]
    fn runs_are_half_open() {
        assert_eq!(runs(&[true, true, false, true]), vec![(0, 2), (3, 4)]);
        assert!(runs(&[false, false]).is_empty());
    }

    /// A box (two-pixel borders) around "text" strokes: the borders go, the strokes and a thick
    /// solid bar stay.
    #[test]
    fn erases_thin_borders_keeps_strokes_and_solid_blocks() {
        let mut g = page(300, 200);
        fill(&mut g, 20, 20, 280, 22); // top border
        fill(&mut g, 20, 160, 280, 162); // bottom border
        fill(&mut g, 20, 20, 22, 162); // left border
        fill(&mut g, 278, 20, 280, 162); // right border
        for i in 0..10 {
            fill(&mut g, 40 + 20 * i, 60, 44 + 20 * i, 80); // strokes one line height tall
        }
        fill(&mut g, 40, 100, 260, 130); // a solid bar 1.5 line heights thick
        let mut mask = InkMask::binarise(&g, 128);
        let erased = mask.erase_rules(20.0);
        let at = |x: usize, y: usize| mask.on[y * 300 + x];
        assert!(!at(100, 21) && !at(100, 161) && !at(21, 90) && !at(279, 90), "borders erased");
        assert!(erased[21 * 300 + 100] && erased[90 * 300 + 21]);
        assert!(at(41, 70) && at(221, 70), "strokes kept");
        assert!(at(150, 115) && at(41, 101), "solid bar kept");
        assert_eq!(mask.on.iter().filter(|&&v| v).count(), 10 * 4 * 20 + 220 * 30);
    }

    /// A dark bar behind white "letters" that leave only thin dark margins above and below them:
    /// nothing of it is erased.
    #[test]
    fn keeps_a_dark_bar_behind_white_text() {
        let mut g = page(400, 200);
        fill(&mut g, 20, 50, 380, 80);
        for i in 0..12 {
            for y in 53..77 {
                for x in 30 + 28 * i..44 + 28 * i {
                    g.put_pixel(x, y, Luma([250]));
                }
            }
        }
        let mut mask = InkMask::binarise(&g, 128);
        let before = mask.on.clone();
        assert!(mask.erase_rules(20.0).is_empty());
        assert_eq!(mask.on, before);
    }

    #[test]
    fn nothing_to_erase_gives_an_empty_mask() {
        let mut g = page(100, 50);
        fill(&mut g, 10, 10, 60, 30);
        assert!(InkMask::binarise(&g, 128).erase_rules(20.0).is_empty());
    }
}
