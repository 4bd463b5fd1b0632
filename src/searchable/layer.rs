//! The invisible text of one page: each recognised line drawn in render mode 3 (neither filled
//! nor stroked) over the line's box, stretched to its width, so a viewer selects and finds the words
//! where they are on the page.

use crate::layout::BBox;
use crate::pipeline::page::ParsedPage;

use super::font::{encode, ADVANCE, DESCENT};

/// A line of recognised text and its box, in pixels of the page image as read.
#[derive(Clone, Debug, PartialEq)]
pub struct PlacedLine {
    pub bbox: BBox,
    pub text: String,
}

/// The lines of a page to put in its text layer, in reading order. A line model's lines keep their
/// boxes; a block read whole (several lines of text, one box) has its box cut into equal bands,
/// one per line of text; a table read whole gives one line per row. Formulas (LaTeX) and pictures
/// add nothing.
pub fn page_lines(page: &ParsedPage) -> Vec<PlacedLine> {
    let mut out = Vec::new();
    for region in &page.regions {
        if !region.lines.is_empty() {
            for line in &region.lines {
                let b = &line.bbox;
                let bbox = BBox::new(b.x0 as f32, b.y0 as f32, b.x1 as f32, b.y1 as f32);
                push_bands(&mut out, bbox, &line.text);
            }
        } else if let Some(table) = &region.table {
            push_bands(&mut out, region.bbox, &table.plain_text());
        } else if region.read_as != "formula" {
            push_bands(&mut out, region.bbox, &region.text);
        }
    }
    out
}

/// Adds `text`'s non-empty lines over `bbox`, each in its own band of equal height.
fn push_bands(out: &mut Vec<PlacedLine>, bbox: BBox, text: &str) {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let n = lines.len().max(1) as f32;
    let band = (bbox.y1 - bbox.y0) / n;
    for (k, line) in lines.into_iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        let y0 = bbox.y0 + band * k as f32;
        out.push(PlacedLine { bbox: BBox::new(bbox.x0, y0, bbox.x1, y0 + band), text: line.to_string() });
    }
}

/// Where a page image sits on its PDF page.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Placement {
    /// The page image's size in pixels.
    pub pixels: (u32, u32),
    /// The page as displayed (after `/Rotate`), in user-space units.
    pub size: (f32, f32),
    /// Matrix `[a b c d e f]` from displayed space (origin at the displayed page's lower left,
    /// y up) to the page's user space.
    pub to_user: [f32; 6],
}

impl Placement {
    /// A page whose visible area (`/CropBox`, else `/MediaBox`) is `[x0 y0 x1 y1]` and which is
    /// shown turned clockwise by `rotate` degrees, rendered to a `pixels` image.
    pub fn of_page(pixels: (u32, u32), crop: [f32; 4], rotate: i64) -> Self {
        let [x0, y0, x1, y1] = crop;
        let (w, h) = ((x1 - x0).abs(), (y1 - y0).abs());
        let (x0, y0) = (x0.min(x1), y0.min(y1));
        let (size, to_user) = match rotate.rem_euclid(360) {
            90 => ((h, w), [0.0, 1.0, -1.0, 0.0, x0 + w, y0]),
            180 => ((w, h), [-1.0, 0.0, 0.0, -1.0, x0 + w, y0 + h]),
            270 => ((h, w), [0.0, -1.0, 1.0, 0.0, x0, y0 + h]),
            _ => ((w, h), [1.0, 0.0, 0.0, 1.0, x0, y0]),
        };
        Placement { pixels, size, to_user }
    }

    /// A page that is the image itself, `size` units large.
    pub fn of_image(pixels: (u32, u32), size: (f32, f32)) -> Self {
        Placement { pixels, size, to_user: [1.0, 0.0, 0.0, 1.0, 0.0, 0.0] }
    }
}

/// The content stream drawing `lines` invisibly with the font named `font` in the page's
/// resources; empty when there is nothing to draw.
pub fn text_layer(lines: &[PlacedLine], at: &Placement, font: &str) -> Vec<u8> {
    let (pw, ph) = (at.pixels.0.max(1) as f32, at.pixels.1.max(1) as f32);
    let (sx, sy) = (at.size.0 / pw, at.size.1 / ph);
    let mut ops = String::new();
    for line in lines {
        let (hex, count) = encode(&line.text);
        let (width, height) = ((line.bbox.x1 - line.bbox.x0) * sx, (line.bbox.y1 - line.bbox.y0) * sy);
        if count == 0 || width <= 0.0 || height <= 0.0 {
            continue;
        }
        let size = height;
        let stretch = 100.0 * width / (count as f32 * ADVANCE / 1000.0 * size);
        let x = line.bbox.x0 * sx;
        let baseline = at.size.1 - line.bbox.y1 * sy + DESCENT / 1000.0 * size;
        ops.push_str(&format!("/{font} {size:.2} Tf {stretch:.2} Tz 1 0 0 1 {x:.2} {baseline:.2} Tm <{hex}> Tj\n"));
    }
    if ops.is_empty() {
        return Vec::new();
    }
    let [a, b, c, d, e, f] = at.to_user;
    format!("q\n{a} {b} {c} {d} {e:.3} {f:.3} cm\nBT\n3 Tr\n{ops}ET\nQ\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: [f32; 6], (x, y): (f32, f32)) -> (f32, f32) {
        (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
    }

    /// The displayed page's top-left corner lands on the user-space corner that is shown at the
    /// top left, for every rotation.
    #[test]
    fn displayed_corners_map_to_the_rotated_user_corners() {
        let crop = [10.0, 20.0, 610.0, 820.0]; // 600 x 800
        for (rotate, size, top_left) in [
            (0, (600.0, 800.0), (10.0, 820.0)),
            (90, (800.0, 600.0), (10.0, 20.0)),
            (180, (600.0, 800.0), (610.0, 20.0)),
            (270, (800.0, 600.0), (610.0, 820.0)),
            (-90, (800.0, 600.0), (610.0, 820.0)),
        ] {
            let p = Placement::of_page((100, 100), crop, rotate);
            assert_eq!(p.size, size, "rotate {rotate}");
            assert_eq!(apply(p.to_user, (0.0, p.size.1)), top_left, "rotate {rotate}");
        }
    }

    #[test]
    fn a_line_fills_its_box() {
        let lines = [PlacedLine { bbox: BBox::new(100.0, 50.0, 300.0, 70.0), text: "abcd".into() }];
        let at = Placement::of_image((1000, 1000), (500.0, 500.0));
        let s = String::from_utf8(text_layer(&lines, &at, "F")).unwrap_or_default();
        // 20 px tall at 0.5 pt/px: size 10; 4 chars of 5 pt = 20 pt natural, 100 pt wanted.
        assert!(s.contains("/F 10.00 Tf 500.00 Tz 1 0 0 1 50.00 467.00 Tm <0061006200630064> Tj"), "{s}");
        assert!(s.contains("3 Tr"));
        assert!(text_layer(&[], &at, "F").is_empty());
    }

    #[test]
    fn a_block_read_whole_is_cut_into_bands() {
        let mut out = Vec::new();
        push_bands(&mut out, BBox::new(0.0, 0.0, 100.0, 30.0), "one\n\nthree");
        assert_eq!(out.len(), 2);
        assert_eq!((out[1].bbox.y0, out[1].bbox.y1, out[1].text.as_str()), (20.0, 30.0, "three"));
    }
}
