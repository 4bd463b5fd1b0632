//! Helpers shared by the integration tests that compose pages from rendered lines.

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
