//! Detector boxes fitted to the page's ink, and text no box covers.
//!
//! A layout detector's boxes are tight and sometimes clip a line's last word or a paragraph's last
//! line, and now and then it misses a line or a paragraph altogether. Reading only inside its boxes
//! would lose that text. So:
//!
//! 1. [`fit_to_ink`]: each box that holds text grows sideways while ink continues within its rows
//!    (up to a gap wider than a word space), and up or down while a line runs through its edge,
//!    never into another box.
//! 2. [`uncovered_text`]: lines the line finder sees outside every box become text regions
//!    (label `uncovered`, score 0), neighbouring lines grouped into one.
//!
//! Cost: one binarisation and a line scan of the page, O(width × height), plus O(n²) box checks.

use image::{GrayImage, Luma};

use super::lines::{otsu_threshold, scan_page, LineBox, LineFinderOptions};
use super::region::{BBox, Region, RegionClass};
use super::rules::InkMask;

/// Widest blank gap a box grows across, as a share of the page width (a word space is well
/// under; a column gutter well over).
const WORD_GAP: f32 = 0.012;
/// Farthest a box grows sideways, as a share of the page width.
const MAX_GROW: f32 = 0.15;
/// Least ink of a column (or row) strip that counts, in pixels.
const MIN_INK: usize = 1;

fn holds_text(class: RegionClass) -> bool {
    !class.is_picture() && !matches!(class, RegionClass::Chart)
}

/// Grows each text box to the ink it clips (see the module docs).
pub fn fit_to_ink(regions: &mut [Region], gray: &GrayImage) {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 {
        return;
    }
    let ink = InkMask::binarise(gray, otsu_threshold(gray));
    let stop = ((WORD_GAP * w as f32).round() as u32).max(4);
    let reach = (MAX_GROW * w as f32) as u32;
    for i in 0..regions.len() {
        if !holds_text(regions[i].class) {
            continue;
        }
        let others: Vec<BBox> = (0..regions.len()).filter(|&j| j != i).map(|j| regions[j].bbox).collect();
        let (x0, y0, bw, bh) = regions[i].bbox.pixels(w, h);
        let (mut x0, mut y0, mut x1, mut y1) = (x0, y0, x0 + bw, y0 + bh);
        let free = |b: BBox| !others.iter().any(|o| o.intersection(&b) > 0.0);
        let col_ink = |x: u32, y0: u32, y1: u32| (y0..y1).filter(|&y| ink.ink(x as usize, y as usize)).count();
        let row_ink = |y: u32, x0: u32, x1: u32| (x0..x1).filter(|&x| ink.ink(x as usize, y as usize)).count();
        // Right, then left: grow to the last inked column before a gap wider than `stop`.
        let mut last = x1;
        for x in x1..(x1 + reach).min(w) {
            if !free(BBox::new(x as f32, y0 as f32, x as f32 + 1.0, y1 as f32)) || x - last > stop {
                break;
            }
            if col_ink(x, y0, y1) >= MIN_INK {
                last = x + 1;
            }
        }
        x1 = last;
        let mut first = x0;
        for x in (x0.saturating_sub(reach)..x0).rev() {
            if !free(BBox::new(x as f32, y0 as f32, x as f32 + 1.0, y1 as f32)) || first - x > stop + 1 {
                break;
            }
            if col_ink(x, y0, y1) >= MIN_INK {
                first = x;
            }
        }
        x0 = first;
        // Down, then up: only while a line runs through the edge (ink in every row up to a blank).
        while y1 < h
            && row_ink(y1, x0, x1) >= MIN_INK
            && free(BBox::new(x0 as f32, y1 as f32, x1 as f32, y1 as f32 + 1.0))
        {
            y1 += 1;
        }
        while y0 > 0
            && row_ink(y0 - 1, x0, x1) >= MIN_INK
            && free(BBox::new(x0 as f32, y0 as f32 - 1.0, x1 as f32, y0 as f32))
        {
            y0 -= 1;
        }
        regions[i].bbox = BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32);
    }
}

/// Text regions for the lines outside every region (see the module docs).
pub fn uncovered_text(regions: &[Region], gray: &GrayImage) -> Vec<Region> {
    let (w, h) = gray.dimensions();
    let mut rest = gray.clone();
    let paper = Luma([paper_level(gray)]);
    for r in regions {
        let (x, y, bw, bh) = r.bbox.pixels(w, h);
        for yy in y..y + bh {
            for xx in x..x + bw {
                rest.put_pixel(xx, yy, paper);
            }
        }
    }
    let lines: Vec<LineBox> = scan_page(&rest, &LineFinderOptions::default())
        .boxes
        .into_iter()
        .filter(|l| l.height() >= 6 && l.height() as f32 <= 0.08 * h as f32 && l.width() >= l.height())
        .collect();
    // Group lines that follow each other closely and overlap sideways.
    let mut groups: Vec<BBox> = Vec::new();
    for l in lines {
        let b = BBox::new(l.x0 as f32, l.y0 as f32, l.x1 as f32, l.y1 as f32);
        let joins = groups.last().is_some_and(|g| {
            let overlap = (g.x1.min(b.x1) - g.x0.max(b.x0)).max(0.0);
            b.y0 - g.y1 < b.height() && overlap > 0.5 * g.width().min(b.width())
        });
        match groups.last_mut() {
            Some(g) if joins => *g = g.union(&b),
            _ => groups.push(b),
        }
    }
    groups
        .into_iter()
        .map(|bbox| Region { class: RegionClass::Text, label: "uncovered".into(), bbox, score: 0.0 })
        .collect()
}

/// The page's paper level: the brightest common gray (the page is mostly paper); 255 on a blank.
fn paper_level(gray: &GrayImage) -> u8 {
    let mut hist = [0u32; 256];
    for p in gray.pixels() {
        hist[p.0[0] as usize] += 1;
    }
    hist.iter().enumerate().max_by_key(|(_, &n)| n).map_or(255, |(v, _)| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with_words(words: &[(u32, u32, u32, u32)]) -> GrayImage {
        let mut img = GrayImage::from_pixel(1000, 800, Luma([255]));
        for &(x0, y0, x1, y1) in words {
            for y in y0..y1 {
                for x in (x0..x1).filter(|x| x % 4 != 0) {
                    img.put_pixel(x, y, Luma([0]));
                }
            }
        }
        img
    }

    fn text(x0: f32, y0: f32, x1: f32, y1: f32) -> Region {
        Region { class: RegionClass::Text, label: "text".into(), bbox: BBox::new(x0, y0, x1, y1), score: 0.9 }
    }

    /// A box that clips a line's last word and a paragraph's last line grows over them, but not
    /// across the gutter into the next column.
    #[test]
    fn boxes_grow_over_clipped_words_and_lines_not_gutters() {
        let img = page_with_words(&[
            (100, 100, 300, 116),
            (306, 100, 380, 116), // a word after a 6 px space, outside the box
            (100, 130, 380, 146),
            (100, 160, 380, 176), // the last line, cut through by the box's bottom
            (420, 100, 700, 176), // the next column, 40 px away
        ]);
        let mut regions = vec![text(100.0, 100.0, 302.0, 170.0)];
        fit_to_ink(&mut regions, &img);
        assert_eq!(regions[0].bbox, BBox::new(100.0, 100.0, 380.0, 176.0));
    }

    #[test]
    fn a_box_never_grows_into_another() {
        let img = page_with_words(&[(100, 100, 300, 116), (303, 100, 400, 116)]);
        let mut regions = vec![text(100.0, 100.0, 290.0, 116.0), text(303.0, 100.0, 400.0, 116.0)];
        fit_to_ink(&mut regions, &img);
        assert!(regions[0].bbox.x1 <= 303.0, "{:?}", regions[0].bbox);
    }

    #[test]
    fn lines_outside_every_box_become_text_regions() {
        let img = page_with_words(&[(100, 100, 600, 116), (100, 400, 600, 416), (100, 424, 500, 440)]);
        let regions = vec![text(90.0, 90.0, 610.0, 120.0)];
        let extra = uncovered_text(&regions, &img);
        assert_eq!(extra.len(), 1, "{extra:?}");
        let b = extra[0].bbox;
        assert!(b.y0 <= 400.0 && b.y1 >= 440.0 && b.x0 <= 100.0 && b.x1 >= 600.0, "{b:?}");
        assert_eq!(extra[0].label, "uncovered");
    }
}
