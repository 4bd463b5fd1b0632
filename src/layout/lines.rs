//! A line finder for single-column page images: horizontal projection profile of a binarised page.
//!
//! 1. Binarise: Otsu's threshold on the grayscale page (or a fixed one); a page that is mostly
//!    "ink" is taken as light text on a dark background and inverted.
//! 2. Ruling lines (table borders, separators) are erased from the binarised page
//!    ([`rules`](super::rules)), sized by a first estimate of the line height.
//! 3. Rows with ink form bands. Thin bands (dots of i, accents, underlines) join the nearest line
//!    when close, else they are specks and dropped (unless they carry real ink).
//! 4. Bands much taller than the typical line (touching lines) are cut at profile minima — only
//!    where the profile really dips (a valley between two lines), so a tall heading stays whole.
//! 5. Each band gets its ink's horizontal extent and a small padding.
//!
//! Boxes come back top to bottom. Multi-column pages need a layout detector first.

use image::{DynamicImage, GrayImage};

use super::rules::{runs, InkMask};

/// A line's crop box in page pixels; `x1` and `y1` are exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineBox {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl LineBox {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
    pub fn center_y(&self) -> f32 {
        0.5 * (self.y0 + self.y1) as f32
    }
}

#[derive(Clone, Debug)]
pub struct LineFinderOptions {
    /// Fixed gray threshold (ink is darker); `None` uses Otsu's method.
    pub threshold: Option<u8>,
    /// Padding around each line as a fraction of its height.
    pub pad_frac: f32,
    /// Least padding in pixels.
    pub min_pad: u32,
    /// Bands taller than this many typical line heights are split.
    pub split_ratio: f32,
}

impl Default for LineFinderOptions {
    fn default() -> Self {
        LineFinderOptions { threshold: None, pad_frac: 0.15, min_pad: 2, split_ratio: 1.7 }
    }
}

/// Otsu's threshold: the gray level that maximises the between-class variance. Ink is `<= t`.
pub fn otsu_threshold(gray: &GrayImage) -> u8 {
    let mut hist = [0u64; 256];
    for p in gray.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 127;
    }
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &n)| i as f64 * n as f64).sum();
    let (mut w0, mut sum0) = (0u64, 0f64);
    let (mut best, mut best_t) = (-1.0f64, 127u8);
    for (t, &count) in hist.iter().enumerate() {
        w0 += count;
        if w0 == 0 {
            continue;
        }
        let w1 = total - w0;
        if w1 == 0 {
            break;
        }
        sum0 += t as f64 * count as f64;
        let m0 = sum0 / w0 as f64;
        let m1 = (sum_all - sum0) / w1 as f64;
        let between = w0 as f64 * w1 as f64 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t as u8;
        }
    }
    best_t
}

#[derive(Clone, Copy, Debug)]
struct Band {
    y0: usize,
    y1: usize, // exclusive
    ink: u64,
}

impl Band {
    fn h(&self) -> usize {
        self.y1 - self.y0
    }
}

/// Finds text lines on a page image; see the module docs.
pub fn find_lines(page: &DynamicImage, opts: &LineFinderOptions) -> Vec<LineBox> {
    find_lines_gray(&page.to_luma8(), opts)
}

pub fn find_lines_gray(gray: &GrayImage, opts: &LineFinderOptions) -> Vec<LineBox> {
    scan_page(gray, opts).boxes
}

/// What the line finder saw on a page.
pub struct PageScan {
    /// Text lines, top to bottom.
    pub boxes: Vec<LineBox>,
    /// Ruling-line pixels (row-major over the page) erased before lines were looked for; empty
    /// when there were none. See [`rules`](super::rules).
    pub rules: Vec<bool>,
}

/// Finds the text lines and the ruling lines of a page.
pub fn scan_page(gray: &GrayImage, opts: &LineFinderOptions) -> PageScan {
    let none = PageScan { boxes: Vec::new(), rules: Vec::new() };
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    if w == 0 || h == 0 {
        return none;
    }
    let (lo, hi) = gray.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
    if hi.saturating_sub(lo) < 32 {
        return none; // blank (or nearly) page
    }
    let mut ink = InkMask::binarise(gray, opts.threshold.unwrap_or_else(|| otsu_threshold(gray)));
    let mut rows = ink.row_counts();
    let min_row = ((w as f64 * 0.001).round() as u64).max(1);

    // The typical line height before rules are known: a table's side borders put ink in every
    // row, so only rows with a text line's worth of ink (1% of the width) count here.
    let dense = bands_of(&rows, ((w as f64 * 0.01).round() as u64).max(min_row));
    let first_guess = if dense.is_empty() { bands_of(&rows, min_row) } else { dense };
    if first_guess.is_empty() {
        return none;
    }
    let rules = ink.erase_rules(weighted_median_height(&first_guess).max(2) as f32);
    if !rules.is_empty() {
        rows = ink.row_counts();
    }
    let mut bands = bands_of(&rows, min_row);
    if bands.is_empty() {
        return PageScan { boxes: Vec::new(), rules };
    }
    let med = weighted_median_height(&bands).max(2) as f32;

    // Thin bands: attach to the nearer neighbour when close, else drop specks.
    let mut i = 0;
    while i < bands.len() {
        let b = bands[i];
        if (b.h() as f32) >= 0.4 * med || bands.len() == 1 {
            i += 1;
            continue;
        }
        let gap_up = if i > 0 { Some(b.y0 - bands[i - 1].y1) } else { None };
        let gap_down = if i + 1 < bands.len() { Some(bands[i + 1].y0 - b.y1) } else { None };
        let limit = (0.6 * med).ceil() as usize;
        let target = match (gap_up, gap_down) {
            (Some(u), Some(d)) if u <= d && u <= limit => Some(i - 1),
            (Some(_), Some(d)) if d <= limit => Some(i + 1),
            (Some(u), None) if u <= limit => Some(i - 1),
            (None, Some(d)) if d <= limit => Some(i + 1),
            _ => None,
        };
        match target {
            Some(j) => {
                let n = &mut bands[j];
                n.y0 = n.y0.min(b.y0);
                n.y1 = n.y1.max(b.y1);
                n.ink += b.ink;
                bands.remove(i);
                if j < i {
                    i -= 1; // re-check the grown band's neighbours from its position
                }
            }
            None if (b.ink as f32) < 0.5 * med * med => {
                bands.remove(i);
            }
            None => i += 1,
        }
    }
    // Pieces of one line separated by a hairline gap.
    let mut merged: Vec<Band> = Vec::new();
    for b in bands {
        if let Some(last) = merged.last_mut() {
            if b.y0 - last.y1 <= 1 && ((b.y1 - last.y0) as f32) <= 1.3 * med {
                last.y1 = b.y1;
                last.ink += b.ink;
                continue;
            }
        }
        merged.push(b);
    }

    // Split bands holding several touching lines at the profile minima.
    let mut lines: Vec<Band> = Vec::new();
    for b in merged {
        let bh = b.h() as f32;
        if bh <= opts.split_ratio * med {
            lines.push(b);
            continue;
        }
        let k = (bh / med).round().max(2.0) as usize;
        // A cut needs a valley: touching lines meet in a few descenders and ascenders, far below
        // the band's typical row; a tall heading's rows stay dense throughout.
        let mean_row = rows[b.y0..b.y1].iter().sum::<u64>() as f32 / bh;
        let mut start = b.y0;
        for j in 1..k {
            let expect = b.y0 as f32 + bh * j as f32 / k as f32;
            let r = (0.35 * med) as isize;
            let (mut best, mut best_y) = (u64::MAX, expect as usize);
            for dy in -r..=r {
                let yy = (expect as isize + dy).clamp(start as isize + 1, b.y1 as isize - 2) as usize;
                let v = rows[yy.saturating_sub(1)] + rows[yy] + rows[(yy + 1).min(h - 1)];
                if v < best {
                    best = v;
                    best_y = yy;
                }
            }
            if best_y > start && (best as f32 / 3.0) <= 0.4 * mean_row {
                lines.push(Band { y0: start, y1: best_y, ink: 0 });
                start = best_y;
            }
        }
        lines.push(Band { y0: start, y1: b.y1, ink: 0 });
    }

    // Horizontal extent and padding.
    let mut out = Vec::with_capacity(lines.len());
    for b in lines {
        let mut x0 = w;
        let mut x1 = 0;
        for yy in b.y0..b.y1 {
            let row = ink.row(yy);
            if let Some(first) = row.iter().position(|&v| v) {
                x0 = x0.min(first);
                let last = row.iter().rposition(|&v| v).unwrap_or(first);
                x1 = x1.max(last + 1);
            }
        }
        if x1 <= x0 {
            continue;
        }
        let pad = ((opts.pad_frac * b.h() as f32).round() as u32).max(opts.min_pad) as usize;
        out.push(LineBox {
            x0: x0.saturating_sub(pad) as u32,
            y0: b.y0.saturating_sub(pad) as u32,
            x1: (x1 + pad).min(w) as u32,
            y1: (b.y1 + pad).min(h) as u32,
        });
    }
    PageScan { boxes: out, rules }
}

/// Runs of rows holding at least `min_row` ink pixels.
fn bands_of(rows: &[u64], min_row: u64) -> Vec<Band> {
    let inked: Vec<bool> = rows.iter().map(|&r| r >= min_row).collect();
    runs(&inked).into_iter().map(|(y0, y1)| Band { y0, y1, ink: rows[y0..y1].iter().sum() }).collect()
}

/// Median band height, each band weighted by its ink (so dots and specks do not count).
fn weighted_median_height(bands: &[Band]) -> usize {
    let mut v: Vec<(usize, u64)> = bands.iter().map(|b| (b.h(), b.ink)).collect();
    v.sort_unstable();
    let total: u64 = v.iter().map(|x| x.1).sum();
    let mut acc = 0;
    for (hgt, ink) in &v {
        acc += ink;
        if acc * 2 >= total {
            return *hgt;
        }
    }
    v.last().map(|x| x.0).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{Generator, LineStyle, Style, SynthConfig};
    use image::{Luma, Rgb, RgbImage};

    fn paste_dark(page: &mut RgbImage, img: &RgbImage, x: u32, y: u32) {
        for (ix, iy, p) in img.enumerate_pixels() {
            let (px, py) = (x + ix, y + iy);
            if px < page.width() && py < page.height() {
                let q = page.get_pixel_mut(px, py);
                *q = Rgb([q.0[0].min(p.0[0]), q.0[1].min(p.0[1]), q.0[2].min(p.0[2])]);
            }
        }
    }

    /// A clean style in `family`/`style` at `px`, with no padding and no line box: ink only, to
    /// paste onto a page.
    fn bare_style(gen: &Generator, family: &str, style: Style, px: f32) -> LineStyle {
        let face = gen.face_index(family, style).unwrap_or_else(|| panic!("font {family} (run scripts/setup.sh)"));
        let mut st = LineStyle::clean(face, px);
        st.pad = [0.0; 4];
        st.line_box = false;
        st
    }

    #[test]
    fn otsu_separates_two_levels() {
        let mut g = GrayImage::from_pixel(10, 10, Luma([230]));
        for x in 0..10 {
            g.put_pixel(x, 5, Luma([20]));
        }
        let t = otsu_threshold(&g);
        assert!((20..230).contains(&t), "threshold {t}");
    }

    #[test]
    fn blank_page_has_no_lines() {
        let g = DynamicImage::ImageLuma8(GrayImage::from_pixel(200, 300, Luma([250])));
        assert!(find_lines(&g, &LineFinderOptions::default()).is_empty());
    }

    /// Renders a page of lines at known positions with the synthetic-data generator and finds them.
    #[test]
    fn finds_rendered_lines_in_order() {
        let gen = Generator::new(SynthConfig::default()).expect("synthetic-data fonts (run scripts/setup.sh)");
        let face = gen.face_index("Liberation Serif", Style::Regular).expect("Liberation Serif");
        let texts = [
            "Debian GNU/Linux is a free operating system.",
            "The quick brown fox jumps over the lazy dog.",
            "Package: folio; Version: 0.1.0-1 (2024-05-17)",
            "apt-get install --no-install-recommends fonts",
            "jiggly typography with descenders: g, p, q, y",
            "Ünïcödé àccents sit above the capitals: É Å Ö",
        ];
        let mut page = RgbImage::from_pixel(900, 420, Rgb([255, 255, 255]));
        let mut expected = Vec::new();
        let mut y = 20u32;
        for (i, t) in texts.iter().enumerate() {
            let mut st = LineStyle::clean(face, 24.0);
            st.pad = [0.0; 4];
            let s = gen.draw(t, &st).expect("draw");
            let x = 40 + 10 * i as u32;
            paste_dark(&mut page, &s.image, x, y);
            expected.push((y + s.image.height() / 2, x, s.image.width()));
            y += s.image.height() + 30;
        }
        // A speck far from any line must not become a line.
        page.put_pixel(600, 405, Rgb([0, 0, 0]));
        let found = find_lines(&DynamicImage::ImageRgb8(page), &LineFinderOptions::default());
        assert_eq!(found.len(), texts.len(), "{found:?}");
        for (b, (cy, x, w)) in found.iter().zip(&expected) {
            assert!((b.center_y() - *cy as f32).abs() < 6.0, "{b:?} vs centre {cy}");
            assert!(b.x0 <= *x + 4 && b.x1 + 4 >= x + w, "{b:?} vs x {x}..{}", x + w);
        }
        assert!(found.windows(2).all(|p| p[0].y1 <= p[1].y0 + 4), "top to bottom: {found:?}");
    }

    /// A heading twice as tall as the body text is one line, and a rule under a page header is
    /// not glued to it.
    #[test]
    fn keeps_tall_headings_whole_and_drops_rules() {
        let gen = Generator::new(SynthConfig::default()).expect("synthetic-data fonts (run scripts/setup.sh)");
        let mut page = RgbImage::from_pixel(900, 420, Rgb([255, 255, 255]));
        let st = bare_style(&gen, "Liberation Serif", Style::Regular, 18.0);
        let header = gen.draw("Running header", &st).expect("draw").image;
        paste_dark(&mut page, &header, 600, 10);
        // The rule sits 3 px under the header, across the whole text block.
        let rule_y = 10 + header.height() + 3;
        for x in 40..860 {
            page.put_pixel(x, rule_y, Rgb([0, 0, 0]));
        }
        let hs = bare_style(&gen, "Liberation Sans", Style::Bold, 40.0);
        let heading = gen.draw("2.3. DESCRIPTION", &hs).expect("draw").image;
        let hy = rule_y + 30;
        paste_dark(&mut page, &heading, 40, hy);
        let mut y = hy + heading.height() + 20;
        for t in ["Body text follows the heading,", "one line after another, at a", "smaller size than the heading."] {
            let img = gen.draw(t, &st).expect("draw").image;
            paste_dark(&mut page, &img, 40, y);
            y += img.height() + 8;
        }
        let found = find_lines(&DynamicImage::ImageRgb8(page), &LineFinderOptions::default());
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found[0].x0 >= 590, "the header's box does not reach over the rule: {:?}", found[0]);
        let hc = hy as f32 + heading.height() as f32 / 2.0;
        assert!((found[1].center_y() - hc).abs() < 6.0, "heading whole: {:?}", found[1]);
    }

    /// Text in a ruled box (a table, a framed listing): each line inside is found on its own, its
    /// box does not reach out to the borders, and the borders give no line of their own.
    #[test]
    fn finds_lines_inside_a_ruled_box() {
        let gen = Generator::new(SynthConfig::default()).expect("synthetic-data fonts (run scripts/setup.sh)");
        let st = bare_style(&gen, "DejaVu Serif", Style::Regular, 22.0);
        let mut page = RgbImage::from_pixel(800, 400, Rgb([255, 255, 255]));
        let above = gen.draw("A paragraph above the table.", &st).expect("draw").image;
        paste_dark(&mut page, &above, 40, 20);
        let (bx0, by0, bx1, by1) = (30u32, 80u32, 770u32, 330u32);
        for x in bx0..bx1 {
            page.put_pixel(x, by0, Rgb([0, 0, 0]));
            page.put_pixel(x, by1, Rgb([0, 0, 0]));
        }
        for y in by0..=by1 {
            page.put_pixel(bx0, y, Rgb([0, 0, 0]));
            page.put_pixel(bx1 - 1, y, Rgb([0, 0, 0]));
        }
        let mut y = by0 + 20;
        let mut centres = vec![20.0 + above.height() as f32 / 2.0];
        for t in ["first row of the table", "second row, a little longer", "third and last row"] {
            let img = gen.draw(t, &st).expect("draw").image;
            paste_dark(&mut page, &img, 60, y);
            centres.push(y as f32 + img.height() as f32 / 2.0);
            y += img.height() + 40;
        }
        let found = find_lines(&DynamicImage::ImageRgb8(page), &LineFinderOptions::default());
        assert_eq!(found.len(), centres.len(), "{found:?}");
        for (b, c) in found.iter().zip(&centres) {
            assert!((b.center_y() - c).abs() < 6.0, "{b:?} vs centre {c}");
        }
        assert!(found[1..].iter().all(|b| b.x0 > bx0 + 10 && b.x1 < 700), "boxes stay off the borders: {found:?}");
    }

    /// Two lines with no blank row between them are split apart.
    #[test]
    fn splits_touching_lines() {
        let gen = Generator::new(SynthConfig::default()).expect("synthetic-data fonts (run scripts/setup.sh)");
        let st = bare_style(&gen, "DejaVu Sans", Style::Regular, 30.0);
        let a = gen.draw("Hyphenation plays jigs", &st).expect("draw").image;
        let b = gen.draw("quietly keeping typography", &st).expect("draw").image;
        let mut page = RgbImage::from_pixel(700, 400, Rgb([255, 255, 255]));
        paste_dark(&mut page, &a, 20, 30);
        // Overlap by a few rows so the profile never drops to zero between the two.
        let y2 = 30 + a.height() - 3;
        paste_dark(&mut page, &b, 20, y2);
        // Ordinary, separated lines below set the typical line height.
        let mut y = y2 + b.height() + 25;
        for t in ["Separated lines follow", "one after another here", "to set the line height"] {
            let img = gen.draw(t, &st).expect("draw").image;
            paste_dark(&mut page, &img, 20, y);
            y += img.height() + 25;
        }
        let found = find_lines(&DynamicImage::ImageRgb8(page), &LineFinderOptions::default());
        assert_eq!(found.len(), 5, "{found:?}");
        let (c0, c1) = (30.0 + a.height() as f32 / 2.0, y2 as f32 + b.height() as f32 / 2.0);
        assert!((found[0].center_y() - c0).abs() < 6.0 && (found[1].center_y() - c1).abs() < 6.0, "{found:?}");
    }
}
