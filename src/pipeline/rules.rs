//! Ruling lines: table borders, boxes, header and footer separators, long underlines.
//!
//! A projection profile sees a table's side borders as ink in every row, so a whole table becomes
//! one "line", and a rule read as a text line makes the model write a row of dashes. So rules are
//! found in the binarised page and erased before lines are looked for, and painted over with paper
//! in the crops the model reads.
//!
//! A rule is a run of ink along a row (or a column) at least [`RULE_RUN`] line heights (and 4% of
//! the page's larger side) long that is thin across: text strokes are never that long, and a solid
//! block (a dark bar behind white heading text) is thick, so neither is touched. Cost: two passes
//! over the page, O(width × height).

use image::GrayImage;

/// Least length of a rule, in typical line heights.
pub const RULE_RUN: f32 = 3.0;
/// Thickest rule, in typical line heights (at least [`MIN_THICK`] pixels).
const MAX_THICKNESS: f32 = 0.3;
const MIN_THICK: usize = 3;

/// A binarised page: `on[y * w + x]` is ink.
#[derive(Clone, Debug)]
pub struct InkMask {
    pub w: usize,
    pub h: usize,
    pub on: Vec<bool>,
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
        // The floor keeps heading strokes safe when the line height is underestimated.
        let min_run = (RULE_RUN * line_height).max(self.w.max(self.h) as f32 / 25.0).max(8.0) as usize;
        let max_thick = ((MAX_THICKNESS * line_height) as usize).max(MIN_THICK);
        let (w, h) = (self.w, self.h);
        let mut rule = vec![false; w * h];
        // Horizontal: long runs along rows, kept only where the run stack is thin.
        let mut long = vec![false; w * h];
        for y in 0..h {
            for (a, b) in runs(self.row(y)) {
                if b - a >= min_run {
                    long[y * w + a..y * w + b].fill(true);
                }
            }
        }
        for x in 0..w {
            let col: Vec<bool> = (0..h).map(|y| long[y * w + x]).collect();
            for (a, b) in runs(&col) {
                if b - a <= max_thick {
                    (a..b).for_each(|y| rule[y * w + x] = true);
                }
            }
        }
        // Vertical: long runs along columns, kept only where the run stack is thin.
        long.fill(false);
        for x in 0..w {
            let col: Vec<bool> = (0..h).map(|y| self.on[y * w + x]).collect();
            for (a, b) in runs(&col) {
                if b - a >= min_run {
                    (a..b).for_each(|y| long[y * w + x] = true);
                }
            }
        }
        for y in 0..h {
            for (a, b) in runs(&long[y * w..(y + 1) * w]) {
                if b - a <= max_thick {
                    rule[y * w + a..y * w + b].fill(true);
                }
            }
        }
        if !rule.iter().any(|&r| r) {
            return Vec::new();
        }
        for (on, &r) in self.on.iter_mut().zip(&rule) {
            *on &= !r;
        }
        rule
    }
}

/// Half-open runs of `true` in `v`.
fn runs(v: &[bool]) -> Vec<(usize, usize)> {
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

    #[test]
    fn nothing_to_erase_gives_an_empty_mask() {
        let mut g = page(100, 50);
        fill(&mut g, 10, 10, 60, 30);
        assert!(InkMask::binarise(&g, 128).erase_rules(20.0).is_empty());
    }
}
