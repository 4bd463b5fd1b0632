//! Pages through layout and the model: each region of a page, in reading order, is read the way its
//! class and the model call for ([`plan_region`]), every region of every page of a batch decoding
//! together ([`read_blocks`]), and the readings are put back into regions ([`ParsedPage`]).
//!
//! | class | a line model (folio-ocr-small) | a block model (PaddleOCR-VL) |
//! |---|---|---|
//! | text, titles, captions, references, headers, footers | its lines, found inside the region | the crop, `OCR:` |
//! | table | cells from rules and column gaps, each read as text | the crop, `Table Recognition:` (OTSL) |
//! | formula | kept as an image, with a note | the crop, `Formula Recognition:` (LaTeX) |
//! | chart | kept as an image | the crop, `Chart Recognition:` when the model declares it |
//! | figure, seal | kept as an image | kept as an image |

use anyhow::Result;
use image::{DynamicImage, RgbImage};
use serde::Serialize;

use super::reader::{paper_colour, read_blocks, Block, How, PageLine, ReadOptions, Reading};
use super::table::{Slot, Table};
use crate::engine::{Engine, Usage};
use crate::layout::cells::{find_grid, Grid, GridSlot};
use crate::layout::order::{reading_order, Ordered};
use crate::layout::refine::{fit_to_ink, uncovered_text};
use crate::layout::{BBox, LayoutDetector, RegionClass};
use crate::models::paddleocr_vl::{ReadingSpec, Task};

/// Pixels added around a region before it is read: detector boxes are tight and sometimes clip a
/// glyph's edge.
const REGION_PAD: f32 = 4.0;

/// A page ready to read: its image and its regions in reading order.
pub struct LaidOutPage {
    pub image: DynamicImage,
    pub regions: Vec<Ordered>,
    /// The detector that found them.
    pub layout: String,
}

/// Runs `detector` on `image`, fits its boxes to the ink, adds text it missed, and orders it all.
pub fn lay_out(detector: &dyn LayoutDetector, image: DynamicImage) -> Result<LaidOutPage> {
    let mut regions = detector.detect(&image)?;
    let gray = image.to_luma8();
    fit_to_ink(&mut regions, &gray);
    let missed = uncovered_text(&regions, &gray);
    regions.extend(missed);
    let regions = reading_order(regions, image.width(), image.height());
    Ok(LaidOutPage { image, regions, layout: detector.name().to_string() })
}

/// A region once read.
#[derive(Clone, Debug, Serialize)]
pub struct ParsedRegion {
    /// Place in the page's reading order (0-based).
    pub index: usize,
    pub class: RegionClass,
    /// The detector's own class name.
    pub label: String,
    #[serde(serialize_with = "bbox_array")]
    pub bbox: BBox,
    pub score: f32,
    /// For a caption: the index of the region it captions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption_of: Option<usize>,
    /// How it was read: `lines` (a line model, line by line), `cells` (a line model's table, cell
    /// by cell), a task's name (`ocr`, `table`, `formula`, `chart`: one request), or `none`.
    pub read_as: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<PageLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    /// The file the region's picture was saved to (relative to the Markdown), for figures and
    /// regions left as images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Why a region was left unread, or what to know about its text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The crop to save as `image`, until it is written.
    #[serde(skip)]
    pub crop: Option<RgbImage>,
}

fn bbox_array<S: serde::Serializer>(b: &BBox, s: S) -> std::result::Result<S::Ok, S::Error> {
    [b.x0.round(), b.y0.round(), b.x1.round(), b.y1.round()].serialize(s)
}

/// A page once read.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ParsedPage {
    pub width: u32,
    pub height: u32,
    /// The layout detector used.
    pub layout: String,
    pub regions: Vec<ParsedRegion>,
    /// Requests that could not be read ("region R: why"); their text is left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Tokens of every request made to read the page.
    #[serde(skip)]
    pub usage: Usage,
    /// The page image as read, until a writer that needs it (the searchable PDF of an image) is
    /// done with it.
    #[serde(skip)]
    pub image: Option<RgbImage>,
}

impl ParsedPage {
    /// The text of the page's regions in reading order, one region after another (furniture and
    /// pictures included where they hold text).
    pub fn text(&self) -> String {
        self.regions.iter().map(|r| r.text.as_str()).filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n")
    }
}

/// How one region is read: which blocks hold its text.
enum Plan {
    /// Not read: a picture, or left as an image with a note.
    Picture { note: Option<&'static str> },
    /// Block `k`, read line by line or whole.
    Text(usize, &'static str),
    /// A table from a grid of cells; each starting cell with ink has a block.
    Cells(Grid, Vec<((usize, usize), usize)>),
    /// A table read whole as OTSL (block `k`).
    Otsl(usize),
    /// A formula read whole as LaTeX (block `k`).
    Latex(usize),
}

/// Reads pages: plans every region, reads all blocks of all pages together, and assembles the
/// readings, pages in input order.
pub fn read_pages(engine: &Engine, pages: Vec<LaidOutPage>, opts: &ReadOptions) -> Vec<ParsedPage> {
    let spec = engine.checkpoint().reading.clone();
    let mut blocks: Vec<Block> = Vec::new();
    let mut plans: Vec<(Vec<Ordered>, String, RgbImage, Vec<Plan>)> = Vec::with_capacity(pages.len());
    for (pi, LaidOutPage { image, regions, layout }) in pages.into_iter().enumerate() {
        let rgb = image.into_rgb8();
        let plan =
            regions.iter().map(|o| plan_region(pi, &rgb, o.region.class, &o.region.bbox, &spec, &mut blocks)).collect();
        plans.push((regions, layout, rgb, plan));
    }
    let readings = read_blocks(engine, &blocks, opts);
    drop(blocks);
    let assembled = plans.into_iter().map(|(regions, layout, rgb, plan)| {
        let mut page = assemble(regions, layout, &rgb, plan, &readings);
        page.image = Some(rgb);
        page
    });
    assembled.collect()
}

/// Decides how a region is read and adds the blocks that reading needs.
fn plan_region(
    page: usize,
    rgb: &RgbImage,
    class: RegionClass,
    bbox: &BBox,
    spec: &ReadingSpec,
    blocks: &mut Vec<Block>,
) -> Plan {
    let (w, h) = rgb.dimensions();
    let padded = BBox::new(bbox.x0 - REGION_PAD, bbox.y0 - REGION_PAD, bbox.x1 + REGION_PAD, bbox.y1 + REGION_PAD);
    let (x, y, cw, ch) = padded.pixels(w, h);
    let crop = || image::imageops::crop_imm(rgb, x, y, cw, ch).to_image();
    let mut push = |image: RgbImage, origin: (u32, u32), how: How| {
        blocks.push(Block { page, origin, image, how });
        blocks.len() - 1
    };
    let line_crop = spec.line_crop();
    use RegionClass::*;
    match class {
        Figure | Seal => Plan::Picture { note: None },
        Chart if spec.supports(Task::Chart) => Plan::Text(push(crop(), (x, y), How::Whole(Task::Chart)), "chart"),
        Chart => Plan::Picture { note: Some("a chart: this model reads text only, so it is kept as an image") },
        Formula if spec.supports(Task::Formula) => Plan::Latex(push(crop(), (x, y), How::Whole(Task::Formula))),
        Formula => Plan::Picture { note: Some("a formula: this model reads text only, so it is kept as an image") },
        Table if spec.supports(Task::Table) => Plan::Otsl(push(crop(), (x, y), How::Whole(Task::Table))),
        Table => match line_crop {
            None => Plan::Text(push(crop(), (x, y), How::Whole(Task::Ocr)), "ocr"),
            Some(lc) => {
                let mut image = crop();
                let Some(grid) = find_grid(&image::imageops::grayscale(&image)) else {
                    return Plan::Text(push(image, (x, y), How::Lines(lc)), "lines");
                };
                let paper = image::Rgb(paper_colour(&image));
                grid.erase_rules(&mut image, paper);
                let mut cells = Vec::new();
                for (r, row) in grid.slots.iter().enumerate() {
                    for (c, slot) in row.iter().enumerate() {
                        if *slot != GridSlot::Start {
                            continue;
                        }
                        let (x0, y0, x1, y1) = grid.cell_box(r, c);
                        let cell = image::imageops::crop_imm(&image, x0, y0, x1 - x0, y1 - y0).to_image();
                        cells.push(((r, c), push(cell, (x + x0, y + y0), How::Lines(lc))));
                    }
                }
                Plan::Cells(grid, cells)
            }
        },
        _ => match line_crop {
            Some(lc) => Plan::Text(push(crop(), (x, y), How::Lines(lc)), "lines"),
            None => Plan::Text(push(crop(), (x, y), How::Whole(Task::Ocr)), "ocr"),
        },
    }
}

/// Puts a page's readings back into its regions.
fn assemble(
    regions: Vec<Ordered>,
    layout: String,
    rgb: &RgbImage,
    plans: Vec<Plan>,
    readings: &[Reading],
) -> ParsedPage {
    let (w, h) = rgb.dimensions();
    let mut out = ParsedPage { width: w, height: h, layout, ..ParsedPage::default() };
    for (index, (ordered, plan)) in regions.into_iter().zip(plans).enumerate() {
        let region = ordered.region;
        let mut parsed = ParsedRegion {
            index,
            class: region.class,
            label: region.label,
            bbox: region.bbox,
            score: region.score,
            caption_of: ordered.caption_of,
            read_as: "none",
            text: String::new(),
            lines: Vec::new(),
            table: None,
            image: None,
            note: None,
            crop: None,
        };
        let mut errors = Vec::new();
        let mut usage = Usage::default();
        let mut take = |k: usize| {
            let r = &readings[k];
            errors.extend(r.errors.iter().cloned());
            usage += r.usage;
            r
        };
        match plan {
            Plan::Picture { note } => {
                let (x, y, cw, ch) = parsed.bbox.pixels(w, h);
                parsed.crop = Some(image::imageops::crop_imm(rgb, x, y, cw, ch).to_image());
                parsed.note = note.map(str::to_string);
            }
            Plan::Text(k, how) => {
                let r = take(k);
                parsed.read_as = how;
                parsed.text = r.text();
                parsed.lines = r.lines.clone();
            }
            Plan::Latex(k) => {
                parsed.read_as = "formula";
                parsed.text = take(k).text();
            }
            Plan::Otsl(k) => {
                let r = take(k);
                let table = Table::from_otsl(&r.text());
                parsed.read_as = "table";
                parsed.text = table.render();
                parsed.table = Some(table);
            }
            Plan::Cells(grid, cells) => {
                let mut rows: Vec<Vec<Slot>> = grid
                    .slots
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|s| match s {
                                GridSlot::Start => Slot::Cell { text: String::new(), header: false },
                                GridSlot::Left => Slot::Left,
                                GridSlot::Up => Slot::Up,
                                GridSlot::Cross => Slot::Cross,
                            })
                            .collect()
                    })
                    .collect();
                for ((r, c), k) in cells {
                    let reading = take(k);
                    rows[r][c] = Slot::Cell { text: reading.text().replace('\n', " "), header: false };
                    parsed.lines.extend(reading.lines.iter().cloned());
                }
                let table = Table::new(rows);
                parsed.read_as = "cells";
                parsed.text = table.render();
                parsed.table = Some(table);
            }
        }
        out.usage += usage;
        out.errors.extend(errors.into_iter().map(|e| format!("region {}: {e}", index + 1)));
        out.regions.push(parsed);
    }
    out
}
