//! Reading blocks of pages through the engine. A block is a crop of a page (a text region, a table
//! cell, a formula) and how to read it:
//!
//! - [`How::Lines`], for a model that reads lines: the crop's lines are found
//!   ([`scan_page`]), each is cut into pieces at word gaps ([`LineProfile::split`]) with a window
//!   across each cut whose space is in doubt ([`LineProfile::seams`]), scaled by the model's
//!   [`LineCrop`], and every piece is one request; the line's text is put together from its
//!   pieces ([`settle_spaces`], [`join_pieces`]). Lone CJK characters on a Latin page are read
//!   again without CJK ([`super::script`]).
//! - [`How::Whole`], for a model that reads blocks: the crop is one request with the task's prompt.
//!
//! Every request of every block goes to the engine at once (at most `max_in_flight` waiting), so
//! all of a batch of pages decodes together.

use std::collections::VecDeque;

use anyhow::Result;
use image::{DynamicImage, Pixel, RgbImage};
use serde::Serialize;

use super::pieces::{LineProfile, Piece, MAX_LINE_WIDTH};
use super::script::{is_cjk, stray_pieces};
use super::text::{join_pieces, settle_spaces};
use crate::engine::sampling::SamplingParams;
use crate::engine::{Engine, Request, RequestStream, Usage};
use crate::layout::lines::{scan_page, LineBox, LineFinderOptions};
use crate::models::paddleocr_vl::{LineCrop, Task};

/// How blocks are cut and read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub lines: LineFinderOptions,
    /// See [`MAX_LINE_WIDTH`].
    pub max_line_width: u32,
    /// Most new tokens per line piece.
    pub max_tokens: usize,
    /// Most new tokens per whole block (a block model's paragraph or table).
    pub max_block_tokens: usize,
    /// Read a window across each cut through a gap to settle its space
    /// (see [`LineProfile::seams`]).
    pub seams: bool,
    /// Most requests submitted to the engine and not yet collected (bounds the memory of prepared
    /// images on long documents; far above what the engine runs at once).
    pub max_in_flight: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            lines: LineFinderOptions::default(),
            max_line_width: MAX_LINE_WIDTH,
            max_tokens: 128,
            max_block_tokens: 4096,
            seams: true,
            max_in_flight: 256,
        }
    }
}

/// How a block is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum How {
    /// Line by line, each line cut to the model's rule.
    Lines(LineCrop),
    /// In one request, with this task's prompt.
    Whole(Task),
}

/// A crop of a page to read.
pub struct Block {
    /// Which page of the batch (lone CJK characters are judged against their page).
    pub page: usize,
    /// The crop's top-left corner on the page.
    pub origin: (u32, u32),
    pub image: RgbImage,
    pub how: How,
}

/// One line of a block, its box and pieces in page pixels and, once read, its text.
#[derive(Clone, Debug, Serialize)]
pub struct PageLine {
    #[serde(serialize_with = "bbox_array")]
    pub bbox: LineBox,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pieces: Vec<Piece>,
    pub text: String,
}

fn bbox_array<S: serde::Serializer>(b: &LineBox, s: S) -> std::result::Result<S::Ok, S::Error> {
    [b.x0, b.y0, b.x1, b.y1].serialize(s)
}

/// What a block read as.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// Its lines, top to bottom (a block read whole is one "line": the block).
    pub lines: Vec<PageLine>,
    /// Requests that failed ("line L piece K: why"); their text is left out.
    pub errors: Vec<String>,
    /// Tokens of every request made for it (pieces, seams and re-reads).
    pub usage: Usage,
}

impl Reading {
    /// The lines' texts joined by newlines (lines read as nothing left out).
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.text.as_str()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n")
    }
}

/// A line cut out of a block: its box (block pixels), its pieces and their normalised crops, and
/// the normalised crops across its cuts (`(k, crop)` for the cut before piece `k`).
pub struct LineCrops {
    pub bbox: LineBox,
    pub pieces: Vec<Piece>,
    pub images: Vec<DynamicImage>,
    pub seams: Vec<(usize, DynamicImage)>,
}

/// Finds a crop's lines and cuts each into normalised piece and seam crops, top to bottom. Ruling
/// lines are painted over with the paper's colour first: a border at a crop's edge reads as "|".
pub fn cut_lines(image: &RgbImage, crop: LineCrop, opts: &ReadOptions) -> Vec<LineCrops> {
    let mut gray = image::imageops::grayscale(image);
    let scan = scan_page(&gray, &opts.lines);
    let mut rgb = std::borrow::Cow::Borrowed(image);
    if !scan.rules.is_empty() {
        let paper = paper_colour(image);
        let luma = image::Rgb(paper).to_luma();
        for ((g, c), _) in gray.pixels_mut().zip(rgb.to_mut().pixels_mut()).zip(&scan.rules).filter(|(_, &r)| r) {
            *g = luma;
            *c = image::Rgb(paper);
        }
    }
    scan.boxes
        .into_iter()
        .map(|b| {
            let g = image::imageops::crop_imm(&gray, b.x0, b.y0, b.width(), b.height()).to_image();
            let profile = LineProfile::of(&g);
            let in_crop = profile.split(opts.max_line_width, crop.height);
            let seams = if opts.seams { profile.seams(&in_crop) } else { Vec::new() };
            let span = |x0: u32, x1: u32| {
                crop.normalize(
                    &image::imageops::crop_imm(rgb.as_ref(), b.x0 + x0, b.y0, x1 - x0, b.height()).to_image(),
                )
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
pub fn paper_colour(rgb: &RgbImage) -> [u8; 3] {
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

/// What a request reads: piece `k` of a line, the seam across the cut before piece `k`, or a
/// whole block.
#[derive(Clone, Copy)]
enum Part {
    Piece(usize),
    Seam(usize),
    Whole,
}

/// (block, line, part).
type Key = (usize, usize, Part);

/// A request to make: its key, its image and its prompt.
struct Job {
    key: Key,
    image: DynamicImage,
    task: Task,
}

/// A line's readings: one text per piece, and per piece the seam before it when one was read.
struct LineReadings {
    pieces: Vec<String>,
    seams: Vec<Option<String>>,
}

/// Reads `blocks`; the readings come back in the same order. A request that fails is recorded in
/// its block's `errors` and the rest is still read; a seam that fails leaves its cut to the gap's
/// width.
pub fn read_blocks(engine: &Engine, blocks: &[Block], opts: &ReadOptions) -> Vec<Reading> {
    let mut results: Vec<Reading> = Vec::with_capacity(blocks.len());
    let mut readings: Vec<Vec<LineReadings>> = Vec::with_capacity(blocks.len());
    let mut jobs: VecDeque<Job> = VecDeque::new();
    for (bi, block) in blocks.iter().enumerate() {
        let (ox, oy) = block.origin;
        let shift = |b: LineBox| LineBox { x0: b.x0 + ox, y0: b.y0 + oy, x1: b.x1 + ox, y1: b.y1 + oy };
        let mut reading = Reading::default();
        let mut block_readings = Vec::new();
        match block.how {
            How::Whole(task) => {
                let (w, h) = block.image.dimensions();
                let image = DynamicImage::ImageRgb8(block.image.clone());
                jobs.push_back(Job { key: (bi, 0, Part::Whole), image, task });
                let bbox = shift(LineBox { x0: 0, y0: 0, x1: w, y1: h });
                reading.lines.push(PageLine { bbox, pieces: Vec::new(), text: String::new() });
            }
            How::Lines(crop) => {
                for (li, line) in cut_lines(&block.image, crop, opts).into_iter().enumerate() {
                    let n = line.pieces.len();
                    block_readings.push(LineReadings { pieces: vec![String::new(); n], seams: vec![None; n] });
                    let piece = |(k, image)| Job { key: (bi, li, Part::Piece(k)), image, task: Task::Ocr };
                    jobs.extend(line.images.into_iter().enumerate().map(piece));
                    let seam = |(k, image)| Job { key: (bi, li, Part::Seam(k)), image, task: Task::Ocr };
                    jobs.extend(line.seams.into_iter().map(seam));
                    let pieces = line.pieces.iter().map(|p| Piece { x0: p.x0 + ox, x1: p.x1 + ox, ..*p }).collect();
                    reading.lines.push(PageLine { bbox: shift(line.bbox), pieces, text: String::new() });
                }
            }
        }
        readings.push(block_readings);
        results.push(reading);
    }
    let seams = jobs.iter().filter(|j| matches!(j.key.2, Part::Seam(_))).count();
    tracing::debug!(blocks = blocks.len(), requests = jobs.len(), seams, "reading");
    for ((bi, li, part), read) in read_jobs(engine, jobs, opts, &[]) {
        if let Ok((_, usage)) = &read {
            results[bi].usage += *usage;
        }
        let read = read.map(|(text, _)| text);
        match (part, read) {
            (Part::Whole, Ok(text)) => results[bi].lines[0].text = text.trim().to_string(),
            (Part::Piece(k), Ok(text)) => readings[bi][li].pieces[k] = text,
            (Part::Seam(k), Ok(text)) => readings[bi][li].seams[k] = Some(text),
            (Part::Whole, Err(e)) => results[bi].errors.push(format!("{e:#}")),
            (Part::Piece(k), Err(e)) => results[bi].errors.push(format!("line {} piece {}: {e:#}", li + 1, k + 1)),
            (Part::Seam(k), Err(e)) => tracing::debug!("line {} seam before piece {}: {e:#}", li + 1, k + 1),
        }
    }
    reread_stray_cjk(engine, blocks, opts, &mut readings, &mut results);
    for (reading, block_readings) in results.iter_mut().zip(readings) {
        for (line, r) in reading.lines.iter_mut().zip(block_readings) {
            settle_spaces(&mut line.pieces, &r.pieces, &r.seams);
            line.text = join_pieces(&line.pieces, &r.pieces);
        }
    }
    results
}

/// Makes every request of `jobs` (at most `max_in_flight` submitted and not yet collected),
/// suppressing `suppress` tokens; the readings come back in `jobs`' order.
fn read_jobs(
    engine: &Engine,
    mut jobs: VecDeque<Job>,
    opts: &ReadOptions,
    suppress: &[u32],
) -> Vec<(Key, Result<(String, Usage)>)> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut in_flight: VecDeque<(Key, Result<RequestStream>)> = VecDeque::new();
    loop {
        while in_flight.len() < opts.max_in_flight.max(1) {
            let Some(job) = jobs.pop_front() else { break };
            let max_tokens = if matches!(job.key.2, Part::Whole) { opts.max_block_tokens } else { opts.max_tokens };
            let sampling = SamplingParams { suppress_tokens: suppress.to_vec(), ..SamplingParams::greedy(max_tokens) };
            let req = Request { images: vec![job.image], instruction: job.task.prompt().to_string(), sampling };
            in_flight.push_back((job.key, engine.submit(req)));
        }
        let Some((key, stream)) = in_flight.pop_front() else { break };
        out.push((key, stream.and_then(|s| s.blocking_collect()).map(|(text, _, _, usage)| (text, usage))));
    }
    out
}

/// Reads again, with every CJK token of the model suppressed, the pieces [`stray_pieces`] picks on
/// each page; a reading that fails keeps the first one. Blocks with stray pieces are cut again
/// (cheap next to reading) rather than holding every crop until all are read.
fn reread_stray_cjk(
    engine: &Engine,
    blocks: &[Block],
    opts: &ReadOptions,
    readings: &mut [Vec<LineReadings>],
    results: &mut [Reading],
) {
    let pages = blocks.iter().map(|b| b.page + 1).max().unwrap_or(0);
    let mut jobs: VecDeque<Job> = VecDeque::new();
    for page in 0..pages {
        // Every piece of the page: (block, line, piece).
        let keys: Vec<(usize, usize, usize)> = (0..blocks.len())
            .filter(|&bi| blocks[bi].page == page)
            .flat_map(|bi| {
                let lines = &readings[bi];
                (0..lines.len()).flat_map(move |li| (0..lines[li].pieces.len()).map(move |k| (bi, li, k)))
            })
            .collect();
        let texts: Vec<&str> = keys.iter().map(|&(bi, li, k)| readings[bi][li].pieces[k].as_str()).collect();
        let mut cut: Option<(usize, Vec<LineCrops>)> = None;
        for (bi, li, k) in stray_pieces(&texts).into_iter().map(|i| keys[i]) {
            let How::Lines(crop) = blocks[bi].how else { continue };
            if cut.as_ref().is_none_or(|(b, _)| *b != bi) {
                cut = Some((bi, cut_lines(&blocks[bi].image, crop, opts)));
            }
            if let Some(image) = cut.as_mut().and_then(|(_, lines)| lines.get_mut(li)?.images.get_mut(k)) {
                jobs.push_back(Job { key: (bi, li, Part::Piece(k)), image: std::mem::take(image), task: Task::Ocr });
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
    for ((bi, li, part), read) in read_jobs(engine, jobs, opts, &cjk) {
        if let Ok((_, usage)) = &read {
            results[bi].usage += *usage;
        }
        match (part, read.map(|(text, _)| text)) {
            (Part::Piece(k), Ok(text)) => {
                tracing::debug!(block = bi, line = li + 1, piece = k + 1, first = %readings[bi][li].pieces[k], again = %text, "stray CJK read again");
                readings[bi][li].pieces[k] = text;
            }
            (_, Err(e)) => tracing::debug!("line {} read again: {e:#}", li + 1),
            _ => {}
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
        let lines = cut_lines(&page, LineCrop { height: 48 }, &ReadOptions::default());
        assert_eq!(lines.len(), 3, "{:?}", lines.iter().map(|l| l.bbox).collect::<Vec<_>>());
        for l in &lines {
            assert!(l.bbox.x0 <= 20, "the box takes the border in: {:?}", l.bbox);
            // The crop's leftmost column lies on the border: it must be paper now.
            let first = l.images[0].to_rgb8();
            assert_eq!(first.height(), 48);
            let dark = (0..first.height()).filter(|&y| first.get_pixel(0, y).0[0] < 128).count();
            assert_eq!(dark, 0, "border ink in the crop of {:?}", l.bbox);
        }
    }
}
