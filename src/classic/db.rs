//! Text boxes from a DB probability map (Liao et al., "Real-time Scene Text Detection with
//! Differentiable Binarization", AAAI 2020), post-processed as PP-OCR does it:
//!
//! 1. binarise the map at `thresh` and dilate it by a 2×2 square;
//! 2. trace every contour (outer borders and holes, Suzuki–Abe, as OpenCV's `RETR_LIST`);
//! 3. per contour, its minimum-area rectangle; too thin (shorter side < `min_size`) is dropped;
//! 4. its score is the mean probability inside the rectangle; below `box_thresh` it is dropped;
//! 5. the rectangle is grown by `area × unclip_ratio / perimeter` on every side (the text kernel the
//!    network predicts is shrunk by that rule in training), thin ones dropped again;
//! 6. corners scaled to the source image, rounded and clipped to it; boxes under 4 px a side dropped.
//!
//! Growing a rectangle's sides is what PP-OCR's polygon offset (round joins) followed by a new
//! minimum-area rectangle amounts to. Cost: O(pixels) for the map and the contours, O(n log n) per
//! contour for its hull.

use imageproc::point::Point;

/// PP-OCR's defaults, as rapidocr 3.10 sets them.
#[derive(Clone, Debug)]
pub struct DbParams {
    pub thresh: f32,
    pub box_thresh: f32,
    pub max_candidates: usize,
    pub unclip_ratio: f32,
    pub dilate: bool,
    pub min_size: f32,
}

impl Default for DbParams {
    fn default() -> Self {
        DbParams { thresh: 0.3, box_thresh: 0.5, max_candidates: 1000, unclip_ratio: 1.6, dilate: true, min_size: 3.0 }
    }
}

/// A text box: corners top-left, top-right, bottom-right, bottom-left (x, y) in source pixels, and
/// the map's mean probability inside it.
#[derive(Clone, Debug, PartialEq)]
pub struct TextBox {
    pub corners: [[f32; 2]; 4],
    pub score: f32,
}

/// The boxes of a `w`×`h` probability map (row-major) whose source image is `src` (width, height).
pub fn text_boxes(prob: &[f32], (w, h): (usize, usize), src: (u32, u32), p: &DbParams) -> Vec<TextBox> {
    if w == 0 || h == 0 || prob.len() != w * h {
        return Vec::new();
    }
    let mut bitmap = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([if prob[y as usize * w + x as usize] > p.thresh { 255 } else { 0 }])
    });
    if p.dilate {
        bitmap = dilate_2x2(&bitmap);
    }
    let contours = imageproc::contours::find_contours::<i32>(&bitmap);
    let mut out = Vec::new();
    for contour in contours.iter().take(p.max_candidates) {
        let Some(rect) = MinRect::of(&contour.points) else { continue };
        if rect.short_side() < p.min_size as f64 {
            continue;
        }
        let score = mean_inside(prob, (w, h), &rect.corners);
        if score < p.box_thresh {
            continue;
        }
        let grown = rect.grown(rect.area() * p.unclip_ratio as f64 / rect.perimeter().max(1e-9));
        if grown.short_side() < p.min_size as f64 + 2.0 {
            continue;
        }
        let (sx, sy) = (src.0 as f64 / w as f64, src.1 as f64 / h as f64);
        // Rounded into the source, then clipped to its last pixel (PP-OCR clips twice; the
        // second, to W-1 and H-1, wins).
        let (xmax, ymax) = (src.0.saturating_sub(1) as f64, src.1.saturating_sub(1) as f64);
        let corners = grown
            .corners
            .map(|[x, y]| [(x * sx).round().clamp(0.0, xmax) as f32, (y * sy).round().clamp(0.0, ymax) as f32]);
        let side = |a: [f32; 2], b: [f32; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt() as i32;
        if side(corners[0], corners[1]) <= 3 || side(corners[0], corners[3]) <= 3 {
            continue;
        }
        out.push(TextBox { corners, score });
    }
    out
}

/// `dst(x, y) = max(src(x-1..=x, y-1..=y))`: OpenCV's dilation by a 2×2 kernel (anchor at its
/// centre, (1, 1)).
fn dilate_2x2(src: &image::GrayImage) -> image::GrayImage {
    let (w, h) = src.dimensions();
    image::GrayImage::from_fn(w, h, |x, y| {
        let mut v = 0;
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            if x >= dx && y >= dy {
                v = v.max(src.get_pixel(x - dx, y - dy)[0]);
            }
        }
        image::Luma([v])
    })
}

/// A minimum-area rectangle: corners in PP-OCR's order (top-left, top-right, bottom-right,
/// bottom-left) and its side lengths.
#[derive(Clone, Debug, PartialEq)]
struct MinRect {
    corners: [[f64; 2]; 4],
    sides: (f64, f64),
}

impl MinRect {
    /// By rotating calipers over the convex hull's edges (closing edge included), in floating
    /// point: imageproc's `min_area_rect` rounds corners to whole pixels, which moves small boxes.
    fn of(points: &[Point<i32>]) -> Option<Self> {
        let hull: Vec<[f64; 2]> =
            imageproc::geometry::convex_hull(points.to_vec()).iter().map(|p| [p.x as f64, p.y as f64]).collect();
        match hull.len() {
            0 => return None,
            1 => return Some(MinRect::from_axes(hull[0], [1.0, 0.0], (0.0, 0.0), (0.0, 0.0))),
            _ => {}
        }
        let mut best: Option<(f64, MinRect)> = None;
        for i in 0..hull.len() {
            let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
            let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
            if len == 0.0 {
                continue;
            }
            let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
            let (mut lo, mut hi) = ((f64::MAX, f64::MAX), (f64::MIN, f64::MIN));
            for p in &hull {
                let (pu, pv) = (p[0] * u[0] + p[1] * u[1], -p[0] * u[1] + p[1] * u[0]);
                lo = (lo.0.min(pu), lo.1.min(pv));
                hi = (hi.0.max(pu), hi.1.max(pv));
            }
            let area = (hi.0 - lo.0) * (hi.1 - lo.1);
            if best.as_ref().is_none_or(|(a, _)| area < *a) {
                best = Some((area, MinRect::from_axes([0.0, 0.0], u, lo, hi)));
            }
        }
        best.map(|(_, r)| r)
    }

    /// The rectangle spanning `lo..hi` along `u` and its normal, offset by `origin`.
    fn from_axes(origin: [f64; 2], u: [f64; 2], lo: (f64, f64), hi: (f64, f64)) -> Self {
        let at = |s: f64, t: f64| [origin[0] + s * u[0] - t * u[1], origin[1] + s * u[1] + t * u[0]];
        let mut pts = [at(lo.0, lo.1), at(hi.0, lo.1), at(hi.0, hi.1), at(lo.0, hi.1)];
        // PP-OCR's order: by x, then the upper of the two left points first, the upper right next.
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let (tl, bl) = if pts[1][1] > pts[0][1] { (pts[0], pts[1]) } else { (pts[1], pts[0]) };
        let (tr, br) = if pts[3][1] > pts[2][1] { (pts[2], pts[3]) } else { (pts[3], pts[2]) };
        MinRect { corners: [tl, tr, br, bl], sides: (hi.0 - lo.0, hi.1 - lo.1) }
    }

    fn short_side(&self) -> f64 {
        self.sides.0.min(self.sides.1)
    }

    fn area(&self) -> f64 {
        self.sides.0 * self.sides.1
    }

    fn perimeter(&self) -> f64 {
        2.0 * (self.sides.0 + self.sides.1)
    }

    /// The rectangle with every side moved out by `d`.
    fn grown(&self, d: f64) -> Self {
        let c = self.corners;
        let centre = [(c[0][0] + c[2][0]) / 2.0, (c[0][1] + c[2][1]) / 2.0];
        let (w, h) = (dist(c[0], c[1]), dist(c[0], c[3]));
        let u = if w > 0.0 { [(c[1][0] - c[0][0]) / w, (c[1][1] - c[0][1]) / w] } else { [1.0, 0.0] };
        let (hw, hh) = (w / 2.0 + d, h / 2.0 + d);
        let origin = [0.0, 0.0];
        let (cu, cv) = (centre[0] * u[0] + centre[1] * u[1], -centre[0] * u[1] + centre[1] * u[0]);
        MinRect::from_axes(origin, u, (cu - hw, cv - hh), (cu + hw, cv + hh))
    }
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// The mean of `prob` over the pixels inside the quadrilateral `corners` (boundary included),
/// corners truncated to whole pixels as PP-OCR's fast score does.
fn mean_inside(prob: &[f32], (w, h): (usize, usize), corners: &[[f64; 2]; 4]) -> f32 {
    let quad: Vec<[f64; 2]> = corners.iter().map(|c| [c[0].trunc(), c[1].trunc()]).collect();
    let clampx = |v: f64| v.clamp(0.0, (w - 1) as f64) as usize;
    let clampy = |v: f64| v.clamp(0.0, (h - 1) as f64) as usize;
    let (x0, x1) = (
        clampx(quad.iter().map(|c| c[0]).fold(f64::MAX, f64::min).floor()),
        clampx(quad.iter().map(|c| c[0]).fold(f64::MIN, f64::max).ceil()),
    );
    let (y0, y1) = (
        clampy(quad.iter().map(|c| c[1]).fold(f64::MAX, f64::min).floor()),
        clampy(quad.iter().map(|c| c[1]).fold(f64::MIN, f64::max).ceil()),
    );
    let (mut sum, mut n) = (0f64, 0usize);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if inside(&quad, x as f64, y as f64) {
                sum += prob[y * w + x] as f64;
                n += 1;
            }
        }
    }
    if n == 0 {
        0.0
    } else {
        (sum / n as f64) as f32
    }
}

/// Whether (x, y) lies inside or on the convex polygon `poly`.
fn inside(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
    let (mut pos, mut neg) = (false, false);
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
        let cross = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        pos |= cross > 1e-9;
        neg |= cross < -1e-9;
    }
    !(pos && neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map with a horizontal text kernel and a tilted one: both found, in source coordinates,
    /// grown by the unclip rule; a faint blob and a one-pixel line are dropped.
    #[test]
    fn kernels_become_grown_boxes_and_faint_or_thin_ones_are_dropped() {
        let (w, h) = (200usize, 100usize);
        let mut prob = vec![0.0f32; w * h];
        for y in 20..30 {
            for x in 40..140 {
                prob[y * w + x] = 0.9; // 100 x 10 kernel
            }
        }
        for y in 60..70 {
            for x in 10..20 {
                prob[y * w + x] = 0.35; // above thresh, below box_thresh
            }
        }
        for x in 150..190 {
            prob[85 * w + x] = 0.9; // one pixel tall
        }
        let boxes = text_boxes(&prob, (w, h), (400, 200), &DbParams { dilate: false, ..DbParams::default() });
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let b = &boxes[0];
        assert!(b.score > 0.85);
        // Pixel centres 40..=139 x 20..=29 span 99 x 9; grown by 99*9*1.6/216 = 6.6 each side,
        // then doubled into the 400 x 200 source.
        let [tl, tr, br, bl] = b.corners;
        assert!((tl[0] - 2.0 * (40.0 - 6.6)).abs() <= 1.0 && (tl[1] - 2.0 * (20.0 - 6.6)).abs() <= 1.0, "{tl:?}");
        assert!((br[0] - 2.0 * (139.0 + 6.6)).abs() <= 1.0 && (br[1] - 2.0 * (29.0 + 6.6)).abs() <= 1.0, "{br:?}");
        assert!((tr[1] - tl[1]).abs() <= 1.0 && (bl[0] - tl[0]).abs() <= 1.0);
    }

    #[test]
    fn a_tilted_kernel_gets_a_tilted_box() {
        let (w, h) = (120usize, 120usize);
        let mut prob = vec![0.0f32; w * h];
        // A band along y = x / 2 + 30, 8 px thick.
        for x in 10..110 {
            let yc = x as f32 / 2.0 + 30.0;
            for y in (yc - 4.0) as usize..(yc + 4.0) as usize {
                prob[y * w + x] = 0.95;
            }
        }
        let boxes = text_boxes(&prob, (w, h), (120, 120), &DbParams::default());
        assert_eq!(boxes.len(), 1);
        let [tl, tr, ..] = boxes[0].corners;
        let slope = (tr[1] - tl[1]) / (tr[0] - tl[0]);
        assert!((slope - 0.5).abs() < 0.05, "slope {slope}");
    }

    #[test]
    fn dilation_takes_the_upper_left_neighbours() {
        let mut img = image::GrayImage::new(4, 4);
        img.put_pixel(1, 1, image::Luma([255]));
        let d = dilate_2x2(&img);
        let on: Vec<(u32, u32)> = d.enumerate_pixels().filter(|p| p.2[0] > 0).map(|p| (p.0, p.1)).collect();
        assert_eq!(on, [(1, 1), (2, 1), (1, 2), (2, 2)]);
    }

    #[test]
    fn empty_and_mis_sized_maps_give_nothing() {
        assert!(text_boxes(&[], (0, 0), (10, 10), &DbParams::default()).is_empty());
        assert!(text_boxes(&[0.9; 10], (4, 4), (10, 10), &DbParams::default()).is_empty());
    }
}
