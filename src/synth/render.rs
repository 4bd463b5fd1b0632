//! Drawing one text line: glyph layout with kerning, an ink mask in text space, a small affine
//! transform, a crop like a layout detector's, then paper and ink colours and degradations.
//!
//! The label is built while laying out: a character the font cannot show is replaced by an ASCII
//! fallback or dropped, so the returned text is exactly what the pixels show.

use std::ops::Range;

use ab_glyph::{point, Font, Glyph, GlyphId, OutlinedGlyph, PxScale, ScaleFont};
use anyhow::{Context, Result};
use image::RgbImage;

use super::degrade;
use super::fonts::{Face, Kerner};

/// Every parameter of one rendering. [`LineStyle::clean`] is the plain black-on-white case.
#[derive(Clone, Debug)]
pub struct LineStyle {
    /// Index of the face in the generator's face list.
    pub face: usize,
    /// Em size in pixels.
    pub px: f32,
    /// Horizontal scale of the glyphs (condensed < 1 < expanded).
    pub x_stretch: f32,
    /// Extra advance after each character, in em.
    pub tracking: f32,
    /// Multiplier of the space advance (justified text has wide spaces).
    pub word_space: f32,
    /// Rotation in degrees (positive: counter-clockwise on screen) and horizontal shear.
    pub angle_deg: f32,
    pub shear: f32,
    /// Crop padding around the text in em: left, top, right, bottom. Top and bottom may be
    /// negative (a slightly clipped crop), but never cut more than 40 % of any glyph's height.
    pub pad: [f32; 4],
    /// The vertical base of the crop: the font's ascent..descent box (true) or the ink box (false).
    pub line_box: bool,
    /// Words drawn in a second face, as documentation sets `filename.bz2` or `xml:lang` in a
    /// typewriter face or stresses a word in bold.
    pub inline: Option<Inline>,
    pub underline: bool,
    /// Parts of the neighbouring lines that a loose crop catches (not part of the label).
    pub fragment_above: Option<Fragment>,
    pub fragment_below: Option<Fragment>,
    /// Stroke weight change: every stroke edge moves out (bolder, > 0) or in (lighter, < 0) by
    /// this many pixels, as ink spread or a light cut of a face would draw it.
    pub stroke: f32,
    pub ink: [f32; 3],
    pub background: [f32; 3],
    /// Brightness change of the background from left to right edge (multiplicative).
    pub gradient: f32,
    /// Render-then-resample factor (< 1 loses detail like a low-resolution scan); 1 = none.
    pub resample: f32,
    pub blur_sigma: f32,
    /// Gaussian noise, in units of full scale (0..1).
    pub noise_sigma: f32,
    /// Seed for the noise pattern.
    pub noise_seed: u64,
    pub jpeg_quality: Option<u8>,
}

/// Spans of a line drawn in another face than the line's own.
#[derive(Clone, Debug)]
pub struct Inline {
    /// Index of the face in the generator's face list.
    pub face: usize,
    /// Byte ranges of the text, sorted and disjoint.
    pub spans: Vec<Range<usize>>,
}

/// A neighbouring line caught at the crop's edge.
#[derive(Clone, Debug)]
pub struct Fragment {
    pub text: String,
    /// Ink-to-ink gap to the main line, in em.
    pub gap: f32,
    /// How far the crop reaches into the fragment past its baseline (above) or cap line (below), in em.
    pub reach: f32,
    /// Horizontal offset of the fragment's start from the main line's start, in em.
    pub x_offset: f32,
}

impl LineStyle {
    /// Black on white, no transform, padding 0.25 em, no degradation.
    pub fn clean(face: usize, px: f32) -> Self {
        LineStyle {
            face,
            px,
            x_stretch: 1.0,
            tracking: 0.0,
            word_space: 1.0,
            angle_deg: 0.0,
            shear: 0.0,
            pad: [0.25; 4],
            line_box: true,
            inline: None,
            underline: false,
            fragment_above: None,
            fragment_below: None,
            stroke: 0.0,
            ink: [0.0; 3],
            background: [1.0; 3],
            gradient: 0.0,
            resample: 1.0,
            blur_sigma: 0.0,
            noise_sigma: 0.0,
            noise_seed: 0,
            jpeg_quality: None,
        }
    }

    fn is_identity(&self) -> bool {
        self.angle_deg == 0.0 && self.shear == 0.0
    }
}

/// Laid-out glyphs of one line, baseline at y = 0, starting at x = 0.
struct Laid {
    glyphs: Vec<OutlinedGlyph>,
    label: String,
    /// Advance width of the line.
    advance: f32,
    ascent: f32,
    descent: f32,
}

/// ASCII stand-ins for typographic characters a font may lack.
fn fallback(c: char) -> Option<&'static str> {
    Some(match c {
        '‘' | '’' | '‚' | '‛' | '′' => "'",
        '“' | '”' | '„' | '‟' | '″' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' => "-",
        '…' => "...",
        '·' => ".",
        '•' => "*",
        '×' => "x",
        '→' => "->",
        '←' => "<-",
        '«' => "<<",
        '»' => ">>",
        '€' => "EUR",
        _ => return None,
    })
}

/// One face at the line's size: what laying out its glyphs needs.
struct Pen<'a> {
    face: &'a Face,
    scale: PxScale,
    kerner: Kerner<'a>,
    h_factor: f32,
    space_advance: f32,
    ascent: f32,
    descent: f32,
}

impl<'a> Pen<'a> {
    fn new(face: &'a Face, style: &LineStyle) -> Self {
        let sy = style.px * face.scale_per_em;
        let scale = PxScale { x: sy * style.x_stretch, y: sy };
        let scaled = face.font.as_scaled(scale);
        let space = face.font.glyph_id(' ');
        let space_advance = if space.0 != 0 { scaled.h_advance(space) } else { 0.25 * style.px * style.x_stretch };
        Pen {
            face,
            scale,
            kerner: face.kerning(),
            h_factor: scaled.h_scale_factor(),
            space_advance,
            ascent: scaled.ascent(),
            descent: scaled.descent(),
        }
    }

    /// The glyphs that show `c`: its own, or its fallback's, or none.
    fn glyphs_for(&self, c: char) -> Vec<(GlyphId, char)> {
        if let Some(id) = self.face.visible_glyph(c) {
            return vec![(id, c)];
        }
        let ids: Vec<(GlyphId, char)> =
            fallback(c).unwrap_or_default().chars().map(|f| (self.face.font.glyph_id(f), f)).collect();
        if ids.iter().all(|(i, _)| i.0 != 0) {
            ids
        } else {
            Vec::new()
        }
    }
}

/// Lays `text` out with `pens[0]`, except the bytes in `spans`, which use `pens[1]`. Kerning
/// applies within a face only; a space takes the advance of the face it sits in.
fn layout(pens: &[Pen], text: &str, style: &LineStyle, spans: &[Range<usize>]) -> Laid {
    let pen_at = |i: usize| usize::from(pens.len() > 1 && spans.iter().any(|r| r.contains(&i)));
    let tracking = style.tracking * style.px;
    let mut glyphs = Vec::new();
    let mut label = String::new();
    let mut x = 0.0f32;
    let mut prev: Option<(usize, GlyphId)> = None;
    let mut pending_space: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if !label.is_empty() {
                pending_space = Some(pen_at(i));
            }
            continue;
        }
        let p = pen_at(i);
        let pen = &pens[p];
        let chars = pen.glyphs_for(c);
        if chars.is_empty() {
            continue;
        }
        if let Some(sp) = pending_space.take() {
            label.push(' ');
            x += pens[sp].space_advance * style.word_space + tracking;
            prev = None;
        }
        for (id, ch) in chars {
            let mut gx = x;
            if let Some((prev_pen, prev_id)) = prev {
                if prev_pen == p {
                    gx += pen.kerner.kern_unscaled(prev_id, id) * pen.h_factor;
                }
            }
            let glyph: Glyph = id.with_scale_and_position(pen.scale, point(gx, 0.0));
            let Some(outlined) = pen.face.font.outline_glyph(glyph) else { continue };
            glyphs.push(outlined);
            label.push(ch);
            x = gx + pen.face.font.as_scaled(pen.scale).h_advance(id) + tracking;
            prev = Some((p, id));
        }
    }
    // A label must never end in a space the pixels cannot show.
    while label.ends_with(' ') {
        label.pop();
    }
    let used = if spans.is_empty() { &pens[..1] } else { pens };
    Laid {
        glyphs,
        label,
        advance: x - tracking.max(0.0),
        ascent: used.iter().map(|p| p.ascent).fold(f32::NEG_INFINITY, f32::max),
        descent: used.iter().map(|p| p.descent).fold(f32::INFINITY, f32::min),
    }
}

/// Union of the glyphs' pixel bounds: (x0, y0, x1, y1); None when nothing is inked.
fn ink_bounds(glyphs: &[OutlinedGlyph]) -> Option<(f32, f32, f32, f32)> {
    let mut b: Option<(f32, f32, f32, f32)> = None;
    for g in glyphs {
        let r = g.px_bounds();
        b = Some(match b {
            None => (r.min.x, r.min.y, r.max.x, r.max.y),
            Some((x0, y0, x1, y1)) => (x0.min(r.min.x), y0.min(r.min.y), x1.max(r.max.x), y1.max(r.max.y)),
        });
    }
    b
}

/// A single-channel f32 canvas covering [x0, x0 + w) × [y0, y0 + h) of text space.
struct Canvas {
    x0: i32,
    y0: i32,
    w: usize,
    h: usize,
    data: Vec<f32>,
}

impl Canvas {
    fn new(x0: i32, y0: i32, w: usize, h: usize) -> Self {
        Canvas { x0, y0, w, h, data: vec![0.0; w * h] }
    }

    fn draw_glyph(&mut self, g: &OutlinedGlyph, dx: f32, dy: f32) {
        let b = g.px_bounds();
        let ox = (b.min.x + dx).round() as i32 - self.x0;
        let oy = (b.min.y + dy).round() as i32 - self.y0;
        let (w, h) = (self.w as i32, self.h as i32);
        let data = &mut self.data;
        g.draw(|x, y, c| {
            let (px, py) = (ox + x as i32, oy + y as i32);
            if px >= 0 && py >= 0 && px < w && py < h {
                let v = &mut data[py as usize * w as usize + px as usize];
                *v = (*v + c).min(1.0);
            }
        });
    }

    /// Fills [x0, x1) × [y0, y1) with anti-aliased vertical edges.
    fn fill_rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32) {
        let (cx0, cy0) = (self.x0 as f32, self.y0 as f32);
        for py in 0..self.h {
            let (ry0, ry1) = (cy0 + py as f32, cy0 + py as f32 + 1.0);
            let cov_y = (y1.min(ry1) - y0.max(ry0)).max(0.0);
            if cov_y <= 0.0 {
                continue;
            }
            for px in 0..self.w {
                let (rx0, rx1) = (cx0 + px as f32, cx0 + px as f32 + 1.0);
                let cov_x = (x1.min(rx1) - x0.max(rx0)).max(0.0);
                if cov_x > 0.0 {
                    let v = &mut self.data[py * self.w + px];
                    *v = (*v + cov_x * cov_y).min(1.0);
                }
            }
        }
    }

    fn sample(&self, x: f32, y: f32) -> f32 {
        // Bilinear at a text-space point (pixel centres at +0.5).
        let fx = x - self.x0 as f32 - 0.5;
        let fy = y - self.y0 as f32 - 0.5;
        let (ix, iy) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - ix, fy - iy);
        let (ix, iy) = (ix as i64, iy as i64);
        let at = |xx: i64, yy: i64| -> f32 {
            if xx < 0 || yy < 0 || xx >= self.w as i64 || yy >= self.h as i64 {
                0.0
            } else {
                self.data[yy as usize * self.w + xx as usize]
            }
        };
        let a = at(ix, iy) * (1.0 - tx) + at(ix + 1, iy) * tx;
        let b = at(ix, iy + 1) * (1.0 - tx) + at(ix + 1, iy + 1) * tx;
        a * (1.0 - ty) + b * ty
    }
}

/// The small affine map text space → output space: rotation and shear about a centre.
#[derive(Clone, Copy)]
struct Affine {
    c: (f32, f32),
    m: [f32; 4],
    inv: [f32; 4],
}

impl Affine {
    fn new(angle_deg: f32, shear: f32, c: (f32, f32)) -> Self {
        let (s, co) = (-angle_deg.to_radians()).sin_cos();
        // Rotation (y down, so a positive angle turns counter-clockwise on screen) after shear.
        // shear: x' = x - k·y
        let m = [co, -co * shear - s, s, -s * shear + co];
        let det = m[0] * m[3] - m[1] * m[2];
        let inv = [m[3] / det, -m[1] / det, -m[2] / det, m[0] / det];
        Affine { c, m, inv }
    }
    fn fwd(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.c.0, y - self.c.1);
        (self.c.0 + self.m[0] * dx + self.m[1] * dy, self.c.1 + self.m[2] * dx + self.m[3] * dy)
    }
    fn back(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.c.0, y - self.c.1);
        (self.c.0 + self.inv[0] * dx + self.inv[1] * dy, self.c.1 + self.inv[2] * dx + self.inv[3] * dy)
    }
}

/// Renders `text` with `style`; returns the image and the label (the text as drawn).
pub fn draw_line(faces: &[Face], text: &str, style: &LineStyle) -> Result<(RgbImage, String)> {
    let face = faces.get(style.face).context("LineStyle.face is out of range")?;
    let mut pens = vec![Pen::new(face, style)];
    let mut spans: &[Range<usize>] = &[];
    if let Some(inline) = &style.inline {
        pens.push(Pen::new(faces.get(inline.face).context("LineStyle.inline.face is out of range")?, style));
        spans = &inline.spans;
    }
    let px = style.px.max(1.0);
    let main = layout(&pens, text, style, spans);

    // Base box: horizontally the ink; vertically the ink or the font's line box.
    let ink = ink_bounds(&main.glyphs);
    let (ix0, iy0, ix1, iy1) = ink.unwrap_or((0.0, -main.ascent, main.advance.max(1.0), -main.descent));
    let (by0, mut by1) =
        if style.line_box || ink.is_none() { ((-main.ascent).min(iy0), (-main.descent).max(iy1)) } else { (iy0, iy1) };
    let (bx0, bx1) = (ix0, ix1);
    let identity = style.is_identity();

    // Underline: below the baseline, across the ink.
    let underline = if style.underline && ink.is_some() {
        let t = (0.05 * px).max(1.0);
        let y = 0.1 * px;
        by1 = by1.max(y + t);
        Some((ix0, y, ix1, y + t))
    } else {
        None
    };

    // Padding; vertical clipping only without a transform and within the 40 % rule.
    let [mut pl, mut pt, mut pr, mut pb] = style.pad.map(|p| p * px);
    pl = pl.max(0.0);
    pr = pr.max(0.0);
    if !identity || underline.is_some() {
        pt = pt.max(0.0);
        pb = pb.max(0.0);
    }
    if pt < 0.0 || pb < 0.0 {
        // Largest cut that leaves ≥ 60 % of every glyph's height visible.
        let (mut max_top, mut max_bot) = (f32::INFINITY, f32::INFINITY);
        for g in &main.glyphs {
            let r = g.px_bounds();
            max_top = max_top.min(r.min.y + 0.4 * r.height() - by0);
            max_bot = max_bot.min(by1 - (r.max.y - 0.4 * r.height()));
        }
        pt = pt.max(-max_top.max(0.0));
        pb = pb.max(-max_bot.max(0.0));
    }

    // Neighbouring-line fragments (only for untransformed crops).
    let mut frags: Vec<(Laid, f32, f32)> = Vec::new();
    if identity {
        if let Some(f) = &style.fragment_above {
            let laid = layout(&pens[..1], &f.text, style, &[]);
            if let Some((_, _, _, fy1)) = ink_bounds(&laid.glyphs) {
                // Fragment baseline so that its ink bottom sits `gap` above the main ink top.
                let base = iy0 - f.gap.max(0.02) * px - fy1;
                let top = base - f.reach.max(0.0) * px;
                // The crop edge cuts the fragment exactly `reach` past its baseline.
                pt = by0 - top;
                frags.push((laid, f.x_offset * px, base));
            }
        }
        if let Some(f) = &style.fragment_below {
            let laid = layout(&pens[..1], &f.text, style, &[]);
            if let Some((_, fy0, _, _)) = ink_bounds(&laid.glyphs) {
                let base = iy1 + f.gap.max(0.02) * px - fy0;
                // Reach measured from the fragment's cap line (its ink top).
                let bottom = base + fy0 + f.reach.max(0.0) * px;
                pb = bottom - by1;
                frags.push((laid, f.x_offset * px, base));
            }
        }
    }

    // Crop rectangle in output space: the transformed base box, padded, rounded outwards.
    let cx = 0.5 * (bx0 + bx1);
    let cy = 0.5 * (by0 + by1);
    let aff = Affine::new(style.angle_deg, style.shear, (cx, cy));
    let corners = [(bx0, by0), (bx1, by0), (bx0, by1), (bx1, by1)].map(|(x, y)| aff.fwd(x, y));
    let ox0 = corners.iter().map(|c| c.0).fold(f32::INFINITY, f32::min) - pl;
    let ox1 = corners.iter().map(|c| c.0).fold(f32::NEG_INFINITY, f32::max) + pr;
    let oy0 = corners.iter().map(|c| c.1).fold(f32::INFINITY, f32::min) - pt;
    let oy1 = corners.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max) + pb;
    let (x0, y0) = (ox0.floor() as i32, oy0.floor() as i32);
    let w = ((ox1.ceil() as i32 - x0).max(1)) as usize;
    let h = ((oy1.ceil() as i32 - y0).max(1)) as usize;

    // Text-space canvas covering the crop's pre-image.
    let mut canvas = if identity {
        Canvas::new(x0, y0, w, h)
    } else {
        let pre = [(x0, y0), (x0 + w as i32, y0), (x0, y0 + h as i32), (x0 + w as i32, y0 + h as i32)]
            .map(|(x, y)| aff.back(x as f32, y as f32));
        let tx0 = pre.iter().map(|c| c.0).fold(f32::INFINITY, f32::min).floor() as i32 - 2;
        let tx1 = pre.iter().map(|c| c.0).fold(f32::NEG_INFINITY, f32::max).ceil() as i32 + 2;
        let ty0 = pre.iter().map(|c| c.1).fold(f32::INFINITY, f32::min).floor() as i32 - 2;
        let ty1 = pre.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max).ceil() as i32 + 2;
        Canvas::new(tx0, ty0, (tx1 - tx0) as usize, (ty1 - ty0) as usize)
    };
    for g in &main.glyphs {
        canvas.draw_glyph(g, 0.0, 0.0);
    }
    if let Some((ux0, uy0, ux1, uy1)) = underline {
        canvas.fill_rect(ux0, uy0, ux1, uy1);
    }
    for (laid, dx, dy) in &frags {
        for g in &laid.glyphs {
            canvas.draw_glyph(g, *dx, *dy);
        }
    }

    let mask = if identity {
        canvas.data
    } else {
        let mut m = vec![0.0f32; w * h];
        for oy in 0..h {
            for ox in 0..w {
                let (tx, ty) = aff.back(x0 as f32 + ox as f32 + 0.5, y0 as f32 + oy as f32 + 0.5);
                m[oy * w + ox] = canvas.sample(tx, ty);
            }
        }
        m
    };

    let img = degrade::finish(mask, w, h, style)?;
    Ok((img, main.label))
}
