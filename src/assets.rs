//! Files folio loads at run time that are not compiled in: shared libraries (libpdfium,
//! libonnxruntime) and models (the layout detector). `scripts/setup.sh` unpacks each from a wheel on
//! PyPI into folio's data directory; an environment variable points to another copy.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// folio's data directory: `$XDG_DATA_HOME/folio` (`~/.local/share/folio`).
pub fn data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("folio"))
}

/// An asset: where setup puts it and which variable overrides that.
pub struct Asset {
    /// What it is, in a user's words ("the layout model").
    pub what: &'static str,
    /// Path below [`data_dir`].
    pub installed: &'static str,
    /// Environment variable naming another file.
    pub env: &'static str,
}

impl Asset {
    /// The file to load: the variable's, else the installed one. The error says how to get it.
    pub fn locate(&self) -> Result<PathBuf> {
        if let Some(path) = std::env::var_os(self.env).filter(|v| !v.is_empty()).map(PathBuf::from) {
            if !path.is_file() {
                bail!("{}: {} names {}, which is not a file", self.what, self.env, path.display());
            }
            return Ok(path);
        }
        match data_dir().map(|d| d.join(self.installed)) {
            Some(path) if path.is_file() => Ok(path),
            Some(path) => bail!(
                "{} is not installed ({} is missing): run scripts/setup.sh, or set {} to the file",
                self.what,
                path.display(),
                self.env
            ),
            None => bail!("{}: no home directory to look in; set {} to the file", self.what, self.env),
        }
    }

    /// The installed file's path, whether or not it exists.
    pub fn installed_path(&self) -> Option<PathBuf> {
        data_dir().map(|d| d.join(self.installed))
    }
}

pub const PDFIUM: Asset =
    Asset { what: "libpdfium (to read PDFs)", installed: "lib/libpdfium.so", env: "FOLIO_PDFIUM" };
pub const ONNXRUNTIME: Asset = Asset {
    what: "ONNX Runtime (to run the layout model)",
    installed: "lib/libonnxruntime.so",
    env: "FOLIO_ONNXRUNTIME",
};
pub const LAYOUT_MODEL: Asset = Asset {
    what: "the layout model (layout_cdla.onnx)",
    installed: "models/layout_cdla.onnx",
    env: "FOLIO_LAYOUT_MODEL",
};
/// PP-OCR's text detector, recogniser and angle classifier (the classic pipeline `folio compare`
/// measures folio against), from the rapidocr wheel.
pub const PPOCR_DET: Asset = Asset {
    what: "the PP-OCR text detector (PP-OCRv6_det_small.onnx)",
    installed: "models/ppocr/PP-OCRv6_det_small.onnx",
    env: "FOLIO_PPOCR_DET",
};
pub const PPOCR_REC: Asset = Asset {
    what: "the PP-OCR text recogniser (PP-OCRv6_rec_small.onnx)",
    installed: "models/ppocr/PP-OCRv6_rec_small.onnx",
    env: "FOLIO_PPOCR_REC",
};
pub const PPOCR_CLS: Asset = Asset {
    what: "the PP-OCR angle classifier (ch_ppocr_mobile_v2.0_cls_mobile.onnx)",
    installed: "models/ppocr/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    env: "FOLIO_PPOCR_CLS",
};
