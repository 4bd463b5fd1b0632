//! Reading a single-column page through the engine, line by line:
//! [`find_lines`](super::lines::find_lines) → crop each line (with the finder's padding) → split
//! lines wider than the model was trained on ([`LineProfile::split`]), and window each cut through
//! a gap ([`LineProfile::seams`]) → [`normalize_line`] (exactly as training does) → one engine
//! request per piece and per seam, all pages' crops in flight together → line texts (spaces at
//! cuts settled by the seams, [`settle_spaces`]; then [`join_pieces`]) → page text, lines top to
//! bottom joined by newlines. Lone CJK characters on a Latin page are read again without CJK
//! ([`super::script`]).
//!
//! Multi-column pages need a layout detector first; this is the stand-in until then.

use std::collections::VecDeque;

use anyhow::Result;
use image::{DynamicImage, Pixel, RgbImage};
use serde::Serialize;

use super::lines::{scan_page, LineBox, LineFinderOptions};
use super::pieces::{LineProfile, Piece, MAX_LINE_WIDTH};
use super::script::{is_cjk, stray_pieces};
use super::text::{join_pieces, settle_spaces};
use crate::engine::sampling::SamplingParams;
use crate::engine::{Engine, Request, RequestStream};
use crate::models::paddleocr_vl::Task;
use crate::train::normalize_line;

/// How pages are cut and read.
#[derive(Clone, Debug)]
pub struct PageOptions {
    pub lines: LineFinderOptions,
    /// See [`MAX_LINE_WIDTH`].
    pub max_line_width: u32,
    /// Most new tokens per piece.
    pub max_tokens: usize,
    /// Read a window across each cut through a gap to settle its space
    /// (see [`LineProfile::seams`]).
    pub seams: bool,
    /// Most pieces submitted to the engine and not yet collected (bounds the memory of prepared
    /// images on long documents; far above what the engine runs at once).
    pub max_in_flight: usize,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            lines: LineFinderOptions::default(),
            max_line_width: MAX_LINE_WIDTH,
            max_tokens: 128,
            seams: true,
            max_in_flight: 256,
        }
    }
}

/// One line of a page, its pieces in page columns and, once read, its text.
#[derive(Clone, Debug, Serialize)]
pub struct PageLine {
    #[serde(serialize_with = "bbox_array")]
    pub bbox: LineBox,
    pub pieces: Vec<Piece>,
    pub text: String,
}

fn bbox_array<S: serde::Serializer>(b: &LineBox, s: S) -> std::result::Result<S::Ok, S::Error> {
    [b.x0, b.y0, b.x1, b.y1].serialize(s)
}

/// A page read line by line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PageText {
    pub width: u32,
    pub height: u32,
    pub lines: Vec<PageLine>,
    /// Pieces that could not be read ("line L piece K: why"); their text is left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl PageText {
    /// The lines' texts, top to bottom, one a line (lines read as nothing are left out).
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.text.as_str()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n")
    }
}

/// A line cut out of a page: its box, its pieces (page columns) and their normalised crops, and
/// the normalised crops across its cuts (`(k, crop)` for the cut before piece `k`; none unless
/// [`PageOptions::seams`]).
pub struct LineCrops {
    pub bbox: LineBox,
    pub pieces: Vec<Piece>,
    pub images: Vec<DynamicImage>,
    pub seams: Vec<(usize, DynamicImage)>,
}

/// Finds a page's lines and cuts each into normalised piece and seam crops, top to bottom.
pub fn cut_page(page: &DynamicImage, opts: &PageOptions) -> Vec<LineCrops> {
    let mut gray = page.to_luma8();
    let scan = scan_page(&gray, &opts.lines);
    let mut rgb: RgbImage = page.to_rgb8();
    if !scan.rules.is_empty() {
        // Rules go from what the model reads too: a border at a crop's edge reads as "|" or "—".
        let paper = paper_colour(&rgb);
        let luma = image::Rgb(paper).to_luma();
        for ((g, c), _) in gray.pixels_mut().zip(rgb.pixels_mut()).zip(&scan.rules).filter(|(_, &r)| r) {
            *g = luma;
            *c = image::Rgb(paper);
        }
    }
    scan.boxes
        .into_iter()
        .map(|b| {
            let g = image::imageops::crop_imm(&gray, b.x0, b.y0, b.width(), b.height()).to_image();
            let profile = LineProfile::of(&g);
            let in_crop = profile.split(opts.max_line_width);
            let seams = if opts.seams { profile.seams(&in_crop) } else { Vec::new() };
            let span = |x0: u32, x1: u32| {
                normalize_line(&image::imageops::crop_imm(&rgb, b.x0 + x0, b.y0, x1 - x0, b.height()).to_image())
            };
            LineCrops {
                bbox: b,
                images: in_crop.iter().map(|p| span(p.x0, p.x1)).collect(),
                seams: seams.into_iter().map(|(k, x0, x1)| (k, span(x0, x1))).collect(),
                pieces: in_crop.iter().map(|p| Piece { x0: p.x0 + b.x0, x1: p.x1 + b.x0, ..*p }).collect(),
            }
        })
        .collect()
}

/// The page's paper: per channel, the median over a sample of pixels (a page is mostly paper).
fn paper_colour(rgb: &RgbImage) -> [u8; 3] {
    let mut hist = [[0u32; 256]; 3];
    let mut n = 0u32;
    for p in rgb.pixels().step_by(7) {
        for (h, &v) in hist.iter_mut().zip(&p.0) {
            h[v as usize] += 1;
        }
        n += 1;
    }
    hist.map(|h| {
        let mut acc = 0;
        h.iter()
            .position(|&c| {
                acc += c;
                acc * 2 >= n
            })
            .unwrap_or(255) as u8
    })
}

/// What a crop of a line is: piece `k`, or the seam across the cut before piece `k`.
#[derive(Clone, Copy)]
enum Part {
    Piece(usize),
    Seam(usize),
}

/// A line's readings: one text per piece, and per piece the seam before it when one was read.
struct LineReadings {
    pieces: Vec<String>,
    seams: Vec<Option<String>>,
}

/// Reads pages: every piece and seam of every page goes to the engine (at most `max_in_flight`
/// waiting at once) so they decode together; results come back per page, in input order. A piece
/// that fails (say, a crop the image processor rejects) is recorded in its page's `errors` and the
/// rest of the page is still read; a seam that fails leaves its cut to the gap's width. Pieces read
/// as lone CJK characters on a Latin page are read again with the CJK tokens suppressed
/// ([`stray_pieces`]).
pub fn read_pages(engine: &Engine, pages: &[DynamicImage], opts: &PageOptions) -> Vec<PageText> {
    let mut results: Vec<PageText> = Vec::with_capacity(pages.len());
    let mut readings: Vec<Vec<LineReadings>> = Vec::with_capacity(pages.len());
    let mut jobs: VecDeque<Job> = VecDeque::new();
    for (pi, page) in pages.iter().enumerate() {
        let cut = cut_page(page, opts);
        let mut lines = Vec::with_capacity(cut.len());
        let mut page_readings = Vec::with_capacity(cut.len());
        for (li, line) in cut.into_iter().enumerate() {
            let n = line.pieces.len();
            page_readings.push(LineReadings { pieces: vec![String::new(); n], seams: vec![None; n] });
            jobs.extend(line.images.into_iter().enumerate().map(|(k, img)| (pi, li, Part::Piece(k), img)));
            jobs.extend(line.seams.into_iter().map(|(k, img)| (pi, li, Part::Seam(k), img)));
            lines.push(PageLine { bbox: line.bbox, pieces: line.pieces, text: String::new() });
        }
        readings.push(page_readings);
        results.push(PageText { width: page.width(), height: page.height(), lines, errors: Vec::new() });
    }
    let sampling = SamplingParams::greedy(opts.max_tokens);
    for ((pi, li, part), reading) in read_crops(engine, jobs, &sampling, opts.max_in_flight) {
        let line = &mut readings[pi][li];
        match (part, reading) {
            (Part::Piece(k), Ok(text)) => line.pieces[k] = text,
            (Part::Seam(k), Ok(text)) => line.seams[k] = Some(text),
            (Part::Piece(k), Err(e)) => results[pi].errors.push(format!("line {} piece {}: {e:#}", li + 1, k + 1)),
            (Part::Seam(k), Err(e)) => tracing::debug!("line {} seam before piece {}: {e:#}", li + 1, k + 1),
        }
    }
    reread_stray_cjk(engine, pages, opts, &mut readings);
    for (page, page_readings) in results.iter_mut().zip(readings) {
        for (line, r) in page.lines.iter_mut().zip(page_readings) {
            settle_spaces(&mut line.pieces, &r.pieces, &r.seams);
            line.text = join_pieces(&line.pieces, &r.pieces);
        }
    }
    results
}

/// A crop to read: (page, line, part) and the normalised image.
type Job = (usize, usize, Part, DynamicImage);

/// Reads every crop of `jobs` with `sampling`, keeping at most `max_in_flight` submitted and not
/// yet collected; the readings come back in `jobs`' order.
fn read_crops(
    engine: &Engine,
    mut jobs: VecDeque<Job>,
    sampling: &SamplingParams,
    max_in_flight: usize,
) -> Vec<((usize, usize, Part), Result<String>)> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut in_flight: VecDeque<((usize, usize, Part), Result<RequestStream>)> = VecDeque::new();
    loop {
        while in_flight.len() < max_in_flight.max(1) {
            let Some((pi, li, part, img)) = jobs.pop_front() else { break };
            let req =
                Request { images: vec![img], instruction: Task::Ocr.prompt().to_string(), sampling: sampling.clone() };
            in_flight.push_back(((pi, li, part), engine.submit(req)));
        }
        let Some((key, stream)) = in_flight.pop_front() else { break };
        out.push((key, stream.and_then(|s| s.blocking_collect()).map(|(text, ..)| text)));
    }
    out
}

/// Reads again, with every CJK token of the model suppressed, the pieces [`stray_pieces`] picks on
/// each page; a reading that fails keeps the first one. Pages with stray pieces are cut again
/// (cheap next to reading) rather than holding every crop until all are read.
fn reread_stray_cjk(engine: &Engine, pages: &[DynamicImage], opts: &PageOptions, readings: &mut [Vec<LineReadings>]) {
    let mut jobs: VecDeque<Job> = VecDeque::new();
    for (pi, page_readings) in readings.iter().enumerate() {
        let keys: Vec<(usize, usize)> =
            page_readings.iter().enumerate().flat_map(|(li, r)| (0..r.pieces.len()).map(move |k| (li, k))).collect();
        let texts: Vec<&str> = keys.iter().map(|&(li, k)| page_readings[li].pieces[k].as_str()).collect();
        let stray = stray_pieces(&texts);
        if stray.is_empty() {
            continue;
        }
        let mut lines = cut_page(&pages[pi], opts);
        for (li, k) in stray.into_iter().map(|i| keys[i]) {
            if let Some(img) = lines.get_mut(li).and_then(|l| l.images.get_mut(k)) {
                jobs.push_back((pi, li, Part::Piece(k), std::mem::take(img)));
            }
        }
    }
    if jobs.is_empty() {
        return;
    }
    let cjk = engine.checkpoint().prompts.token_ids_where(|piece| piece.chars().any(is_cjk));
    if cjk.is_empty() {
        return;
    }
    let sampling = SamplingParams { suppress_tokens: cjk, ..SamplingParams::greedy(opts.max_tokens) };
    for ((pi, li, part), reading) in read_crops(engine, jobs, &sampling, opts.max_in_flight) {
        match (part, reading) {
            (Part::Piece(k), Ok(text)) => {
                tracing::debug!(page = pi + 1, line = li + 1, piece = k + 1, first = %readings[pi][li].pieces[k], again = %text, "stray CJK read again");
                readings[pi][li].pieces[k] = text;
            }
            (_, Err(e)) => tracing::debug!("line {} read again: {e:#}", li + 1),
            (Part::Seam(_), Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of "text" in a box on tinted paper: one crop per block, and the border at the crops'
    /// edges is painted with the paper's colour.
    #[test]
    fn crops_inside_a_ruled_box_carry_no_border() {
        let paper = image::Rgb([240, 236, 225]);
        let mut page = RgbImage::from_pixel(600, 300, paper);
        let ink = image::Rgb([20, 20, 20]);
        for x in 20..580 {
            page.put_pixel(x, 20, ink);
            page.put_pixel(x, 280, ink);
        }
        for y in 20..=280 {
            page.put_pixel(20, y, ink);
            page.put_pixel(579, y, ink);
        }
        // Three rows of words, 16 px tall, the first word 2 px from the left border (so the
        // line's padded box takes the border in).
        for row in 0..3u32 {
            let y0 = 60 + 70 * row;
            for word in 0..8u32 {
                let x0 = 22 + 60 * word;
                for y in y0..y0 + 16 {
                    for x in x0..x0 + 40 {
                        page.put_pixel(x, y, ink);
                    }
                }
            }
        }
        let lines = cut_page(&DynamicImage::ImageRgb8(page), &PageOptions::default());
        assert_eq!(lines.len(), 3, "{:?}", lines.iter().map(|l| l.bbox).collect::<Vec<_>>());
        for l in &lines {
            assert!(l.bbox.x0 <= 20, "the box takes the border in: {:?}", l.bbox);
            // The crop's leftmost column lies on the border: it must be paper now.
            let first = l.images[0].to_rgb8();
            let dark = (0..first.height()).filter(|&y| first.get_pixel(0, y).0[0] < 128).count();
            assert_eq!(dark, 0, "border ink in the crop of {:?}", l.bbox);
        }
    }
}
