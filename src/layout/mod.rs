//! Layout: where a page's text, titles, tables, formulas and figures are ([`LayoutDetector`]; the
//! default is PP-PicoDet trained on CDLA, [`picodet`]; boxes fitted to the ink and uncovered text
//! added, [`refine`]), in what order to read them ([`order`]),
//! the projection-profile line finder that cuts a text region into lines for a line model
//! ([`lines`], ruling lines erased first by [`rules`]), and the cells of a table for such a model
//! ([`cells`]).

pub mod cells;
pub mod lines;
pub mod order;
pub mod picodet;
pub mod refine;
pub mod region;
pub mod rules;

use std::path::{Path, PathBuf};

use anyhow::Result;
use image::DynamicImage;

pub use region::{BBox, Region, RegionClass};

use crate::assets;

/// Finds the regions of a page image.
pub trait LayoutDetector: Send + Sync {
    /// A short name for logs and JSON ("pp-picodet").
    fn name(&self) -> &str;
    /// The page's regions, boxes in page pixels, in no particular order.
    fn detect(&self, page: &DynamicImage) -> Result<Vec<Region>>;
}

/// No detection: the whole page is one text region (single-column pages, line crops, and
/// machines without ONNX Runtime).
pub struct WholePage;

impl LayoutDetector for WholePage {
    fn name(&self) -> &str {
        "none"
    }

    fn detect(&self, page: &DynamicImage) -> Result<Vec<Region>> {
        let bbox = BBox::new(0.0, 0.0, page.width() as f32, page.height() as f32);
        Ok(vec![Region { class: RegionClass::Text, label: "page".into(), bbox, score: 1.0 }])
    }
}

/// Which layout detector a run uses.
#[derive(Clone, Debug, PartialEq)]
pub enum LayoutChoice {
    /// The installed CDLA PicoDet model (`scripts/setup.sh`; `FOLIO_LAYOUT_MODEL` overrides).
    Default,
    /// A PaddleDetection PicoDet layout export at this path.
    Model(PathBuf),
    /// No detection ([`WholePage`]).
    None,
}

impl std::str::FromStr for LayoutChoice {
    type Err = std::convert::Infallible;

    /// `default`, `none`, or a path to an ONNX file.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match s {
            "default" => LayoutChoice::Default,
            "none" => LayoutChoice::None,
            path => LayoutChoice::Model(PathBuf::from(path)),
        })
    }
}

impl LayoutChoice {
    /// Loads the detector, its network running on `threads` threads.
    pub fn load(&self, threads: usize) -> Result<Box<dyn LayoutDetector>> {
        let load_picodet =
            |path: &Path| -> Result<Box<dyn LayoutDetector>> { Ok(Box::new(picodet::PicoDet::load(path, threads)?)) };
        match self {
            LayoutChoice::Default => load_picodet(&assets::LAYOUT_MODEL.locate()?),
            LayoutChoice::Model(path) => load_picodet(path),
            LayoutChoice::None => Ok(Box::new(WholePage)),
        }
    }
}
