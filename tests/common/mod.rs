//! Helpers shared by the integration tests that compose pages from rendered lines.

use folio::synth::LineStyle;
use image::{Rgb, RgbImage};

/// Pastes the dark pixels of `img` onto `page` at (x, y): the darker of the two per channel, so
/// lines drawn on white compose like ink on paper.
pub fn paste_dark(page: &mut RgbImage, img: &RgbImage, x: u32, y: u32) {
    for (ix, iy, p) in img.enumerate_pixels() {
        if let Some(q) = page.get_pixel_mut_checked(x + ix, y + iy) {
            *q = Rgb([q.0[0].min(p.0[0]), q.0[1].min(p.0[1]), q.0[2].min(p.0[2])]);
        }
    }
}

/// A clean style with no padding and no line box: a line as it is drawn onto a page.
pub fn bare_style(face: usize, px: f32) -> LineStyle {
    LineStyle { pad: [0.0; 4], line_box: false, ..LineStyle::clean(face, px) }
}
