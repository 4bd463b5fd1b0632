//! What a checkpoint reads and how it wants its crops, declared by the checkpoint itself in a
//! `folio.json` beside `config.json`:
//!
//! ```json
//! {"reads": "lines", "line_height": 48, "tasks": ["ocr"]}
//! ```
//!
//! - `reads: "blocks"` (the default, and what a released PaddleOCR-VL checkpoint does): the model
//!   reads whole page regions, paragraphs and tables included, through the image processor's own
//!   resizing.
//! - `reads: "lines"`: the model reads one text line at a time, scaled to `line_height` pixels
//!   (folio's small model); the page reader finds the lines and cuts them to that rule.
//! - `tasks`: the prompts it was trained on (`ocr`, `table`, `formula`, `chart`); all four when
//!   absent, as PaddleOCR-VL.
//!
//! A checkpoint without the file is a PaddleOCR-VL checkpoint as released: blocks, all tasks.

use std::path::Path;

use anyhow::{bail, Context, Result};
use image::{imageops::FilterType, DynamicImage, RgbImage};
use serde::Deserialize;

use super::prompt::Task;

/// The file a checkpoint declares its reading rules in.
pub const FILE: &str = "folio.json";

/// Tallest and shortest line height a line model may ask for, in pixels.
const LINE_HEIGHTS: std::ops::RangeInclusive<u32> = 8..=256;

/// What one request of the model covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// A text line scaled to this many pixels high.
    Lines { height: u32 },
    /// A whole region (paragraph, table, formula, chart) as the image processor resizes it.
    Blocks,
}

/// A checkpoint's reading rules (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct ReadingSpec {
    pub reads: Reads,
    pub tasks: Vec<Task>,
}

impl Default for ReadingSpec {
    /// PaddleOCR-VL as released.
    fn default() -> Self {
        ReadingSpec { reads: Reads::Blocks, tasks: vec![Task::Ocr, Task::Table, Task::Formula, Task::Chart] }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    reads: String,
    line_height: Option<u32>,
    tasks: Option<Vec<String>>,
}

impl ReadingSpec {
    /// A line model whose crops are `height` pixels high, reading plain text only.
    pub fn lines(height: u32) -> Self {
        ReadingSpec { reads: Reads::Lines { height }, tasks: vec![Task::Ocr] }
    }

    /// The rules of the checkpoint in `dir`: its `folio.json`, or the released model's defaults.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        if !path.is_file() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn from_json(text: &str) -> Result<Self> {
        let file: SpecFile = serde_json::from_str(text)?;
        let reads = match (file.reads.as_str(), file.line_height) {
            ("blocks", None) => Reads::Blocks,
            ("blocks", Some(_)) => bail!("line_height is for \"reads\": \"lines\""),
            ("lines", Some(h)) if LINE_HEIGHTS.contains(&h) => Reads::Lines { height: h },
            ("lines", Some(h)) => bail!("line_height {h} is out of range ({LINE_HEIGHTS:?})"),
            ("lines", None) => bail!("\"reads\": \"lines\" needs a line_height"),
            (other, _) => bail!("unknown \"reads\": {other:?} (expected \"lines\" or \"blocks\")"),
        };
        let tasks = match file.tasks {
            None => Self::default().tasks,
            Some(names) if names.is_empty() => bail!("\"tasks\" is empty: a model must read something"),
            Some(names) => names.iter().map(|n| n.parse()).collect::<Result<Vec<Task>>>()?,
        };
        Ok(ReadingSpec { reads, tasks })
    }

    /// The `folio.json` text of these rules.
    pub fn to_json(&self) -> String {
        let tasks: Vec<&str> = self.tasks.iter().map(|t| t.name()).collect();
        let value = match self.reads {
            Reads::Lines { height } => serde_json::json!({"reads": "lines", "line_height": height, "tasks": tasks}),
            Reads::Blocks => serde_json::json!({"reads": "blocks", "tasks": tasks}),
        };
        format!("{value:#}\n")
    }

    pub fn supports(&self, task: Task) -> bool {
        self.tasks.contains(&task)
    }

    /// How a request for `task` (`None`: an instruction that is no task prompt) on an image is
    /// served: a block model takes any prompt it declares (and free instructions) straight; a line
    /// model answers `OCR:` by reading the image as a page (regions, then their lines), because a
    /// whole page or region given to it at once reads as a few stray characters.
    pub fn route(&self, task: Option<Task>) -> Route {
        match (self.reads, task) {
            (_, Some(task)) if !self.supports(task) => Route::Unsupported(format!(
                "this model cannot do {} (its folio.json declares the tasks: {})",
                task.prompt().trim_end_matches(':'),
                self.tasks.iter().map(|t| t.prompt()).collect::<Vec<_>>().join(", ")
            )),
            (Reads::Lines { .. }, Some(_)) => Route::PageReader,
            (Reads::Lines { .. }, None) => Route::Unsupported(
                "this model reads lines of text only: send the prompt \"OCR:\" with an image".to_string(),
            ),
            (Reads::Blocks, _) => Route::Model,
        }
    }

    /// The line-crop rule of a line model; `None` for a block model.
    pub fn line_crop(&self) -> Option<LineCrop> {
        match self.reads {
            Reads::Lines { height } => Some(LineCrop { height }),
            Reads::Blocks => None,
        }
    }
}

/// How a request is served ([`ReadingSpec::route`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The image and the instruction go to the model as they are.
    Model,
    /// The image is read as a page: laid out, each region read as the model reads (its lines).
    PageReader,
    /// The model cannot do it; why.
    Unsupported(String),
}

/// How a line model wants a text-line crop: scaled to `height`, keeping its aspect ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCrop {
    pub height: u32,
}

impl LineCrop {
    /// Widest crop sent, in pixels after scaling (longer lines are cut by the page reader first).
    pub const MAX_WIDTH: u32 = 4000;

    /// Scales a line crop to the model's line height (Triangle filter, as in training).
    pub fn normalize(&self, img: &RgbImage) -> DynamicImage {
        let (w, h) = img.dimensions();
        let w2 = ((w as f64 * self.height as f64 / h.max(1) as f64).round() as u32).clamp(1, Self::MAX_WIDTH);
        DynamicImage::ImageRgb8(image::imageops::resize(img, w2, self.height, FilterType::Triangle))
    }

    /// `px` pixels of a crop `h` pixels high, measured at the model's line height.
    pub fn scaled_width(&self, px: u32, h: u32) -> u32 {
        ((px as u64 * self.height as u64) / h.max(1) as u64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_model_reads_ocr_as_a_page_and_refuses_the_rest() -> Result<()> {
        let lines = ReadingSpec::from_json(r#"{"reads": "lines", "line_height": 48, "tasks": ["ocr"]}"#)?;
        assert_eq!(lines.route(Some(Task::Ocr)), Route::PageReader);
        assert!(matches!(lines.route(Some(Task::Table)), Route::Unsupported(why) if why.contains("Table Recognition")));
        assert!(matches!(lines.route(None), Route::Unsupported(why) if why.contains("OCR:")));
        let blocks = ReadingSpec::default();
        for task in [Some(Task::Ocr), Some(Task::Chart), None] {
            assert_eq!(blocks.route(task), Route::Model);
        }
        assert_eq!(Task::from_prompt(" Table Recognition:\n"), Some(Task::Table));
        assert_eq!(Task::from_prompt("Describe the image"), None);
        Ok(())
    }

    #[test]
    fn a_line_model_declares_its_height_and_tasks() -> Result<()> {
        let spec = ReadingSpec::from_json(r#"{"reads": "lines", "line_height": 48, "tasks": ["ocr"]}"#)?;
        assert_eq!(spec, ReadingSpec::lines(48));
        assert!(spec.supports(Task::Ocr) && !spec.supports(Task::Table));
        assert_eq!(ReadingSpec::from_json(&spec.to_json())?, spec);
        Ok(())
    }

    #[test]
    fn blocks_read_every_task_unless_told() -> Result<()> {
        assert_eq!(ReadingSpec::from_json(r#"{"reads": "blocks"}"#)?, ReadingSpec::default());
        let some = ReadingSpec::from_json(r#"{"reads": "blocks", "tasks": ["ocr", "table"]}"#)?;
        assert!(some.supports(Task::Table) && !some.supports(Task::Formula));
        assert_eq!(ReadingSpec::from_json(&some.to_json())?, some);
        Ok(())
    }

    #[test]
    fn contradictions_and_typos_are_refused() {
        for bad in [
            r#"{"reads": "lines"}"#,
            r#"{"reads": "lines", "line_height": 4}"#,
            r#"{"reads": "blocks", "line_height": 48}"#,
            r#"{"reads": "pages"}"#,
            r#"{"reads": "blocks", "tasks": []}"#,
            r#"{"reads": "blocks", "tasks": ["poetry"]}"#,
            r#"{"reads": "lines", "lineheight": 48}"#,
        ] {
            assert!(ReadingSpec::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_line_crop_keeps_its_aspect_ratio() {
        let crop = LineCrop { height: 48 };
        let img = RgbImage::new(300, 24);
        let out = crop.normalize(&img);
        assert_eq!((out.width(), out.height()), (600, 48));
        assert_eq!(crop.scaled_width(300, 24), 600);
    }
}
