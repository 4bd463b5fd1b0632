//! Page regions: what a layout detector finds (a class, a box, a score) and what folio does with
//! each class.
//!
//! Detectors name their classes in their own words: CDLA's 10 (`text`, `title`, `figure`,
//! `figure_caption`, `table`, `table_caption`, `header`, `footer`, `reference`, `equation`) or
//! PP-DocLayout's 25 (`paragraph_title`, `doc_title`, `display_formula`, `number`, `aside_text`,
//! `chart`, `seal`, …). [`RegionClass::from_label`] maps both onto one set of classes that decide
//! the prompt, the Markdown and the reading order; the detector's own label is kept beside it.

use serde::Serialize;

/// A box in page pixels: `x0 <= x1`, `y0 <= y1`, right and bottom edges exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BBox {
    pub fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        BBox { x0: x0.min(x1), y0: y0.min(y1), x1: x0.max(x1), y1: y0.max(y1) }
    }
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    pub fn center(&self) -> (f32, f32) {
        (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))
    }
    pub fn intersection(&self, o: &BBox) -> f32 {
        let w = (self.x1.min(o.x1) - self.x0.max(o.x0)).max(0.0);
        let h = (self.y1.min(o.y1) - self.y0.max(o.y0)).max(0.0);
        w * h
    }
    /// Intersection over union (0 for two empty boxes).
    pub fn iou(&self, o: &BBox) -> f32 {
        let i = self.intersection(o);
        let u = self.area() + o.area() - i;
        if u > 0.0 {
            i / u
        } else {
            0.0
        }
    }
    /// The smallest box holding both.
    pub fn union(&self, o: &BBox) -> BBox {
        BBox { x0: self.x0.min(o.x0), y0: self.y0.min(o.y0), x1: self.x1.max(o.x1), y1: self.y1.max(o.y1) }
    }
    /// Clipped to a `w`×`h` page.
    pub fn clip(&self, w: u32, h: u32) -> BBox {
        let (w, h) = (w as f32, h as f32);
        BBox {
            x0: self.x0.clamp(0.0, w),
            y0: self.y0.clamp(0.0, h),
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
        }
    }
    /// Whole pixels covering the box on a `w`×`h` page: `(x, y, width, height)`, at least 1×1
    /// where the page has pixels.
    pub fn pixels(&self, w: u32, h: u32) -> (u32, u32, u32, u32) {
        let b = self.clip(w, h);
        let x0 = (b.x0.floor() as u32).min(w.saturating_sub(1));
        let y0 = (b.y0.floor() as u32).min(h.saturating_sub(1));
        let x1 = (b.x1.ceil() as u32).clamp(x0 + 1, w.max(x0 + 1));
        let y1 = (b.y1.ceil() as u32).clamp(y0 + 1, h.max(y0 + 1));
        (x0, y0, x1 - x0, y1 - y0)
    }
}

/// What a region is, as far as reading it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionClass {
    /// The document's title (a level-1 heading).
    DocTitle,
    /// A section or paragraph title (a level-2 heading).
    Title,
    /// Body text: paragraphs, lists, abstracts, side notes.
    Text,
    /// Bibliography entries.
    Reference,
    /// Footnotes at the bottom of the body.
    Footnote,
    /// Program code or an algorithm block.
    Code,
    Table,
    TableCaption,
    Figure,
    FigureCaption,
    Chart,
    ChartCaption,
    /// A displayed formula.
    Formula,
    /// A formula's number, "(3)".
    FormulaNumber,
    /// Running header, footer, page number: kept in JSON, left out of Markdown.
    Header,
    Footer,
    PageNumber,
    /// A stamp or seal: an image, not text.
    Seal,
}

impl RegionClass {
    /// The class of a detector's label (CDLA and PP-DocLayout names); `None` for a label folio
    /// does not know, which is read as text.
    pub fn from_label(label: &str) -> Option<Self> {
        use RegionClass::*;
        Some(match label.to_ascii_lowercase().replace([' ', '-'], "_").as_str() {
            "text" | "paragraph" | "plain_text" | "content" | "abstract" | "aside_text" | "vertical_text" | "list"
            | "list_item" => Text,
            "title" | "paragraph_title" | "section_header" | "section_title" => Title,
            "doc_title" | "document_title" => DocTitle,
            "reference" | "reference_content" | "references" => Reference,
            "footnote" | "vision_footnote" | "page_footnote" => Footnote,
            "algorithm" | "code" => Code,
            "table" => Table,
            "table_caption" | "table_title" | "table_footnote" => TableCaption,
            "figure" | "image" | "picture" | "header_image" | "footer_image" => Figure,
            "figure_caption" | "figure_title" | "image_caption" | "caption" => FigureCaption,
            "chart" => Chart,
            "chart_caption" | "chart_title" => ChartCaption,
            "equation" | "formula" | "display_formula" | "isolate_formula" | "inline_formula" => Formula,
            "formula_number" | "formula_caption" => FormulaNumber,
            "header" | "page_header" => Header,
            "footer" | "page_footer" => Footer,
            "number" | "page_number" => PageNumber,
            "seal" | "stamp" => Seal,
            _ => return None,
        })
    }

    /// Page furniture (headers, footers, page numbers): in JSON, not in the Markdown.
    pub fn is_furniture(self) -> bool {
        matches!(self, RegionClass::Header | RegionClass::Footer | RegionClass::PageNumber)
    }

    /// A caption, and the class of what it belongs to.
    pub fn caption_of(self) -> Option<RegionClass> {
        match self {
            RegionClass::TableCaption => Some(RegionClass::Table),
            RegionClass::FigureCaption => Some(RegionClass::Figure),
            RegionClass::ChartCaption => Some(RegionClass::Chart),
            _ => None,
        }
    }

    /// Kept as a picture (cropped and linked), never read as text.
    pub fn is_picture(self) -> bool {
        matches!(self, RegionClass::Figure | RegionClass::Seal)
    }
}

/// A region a layout detector found on a page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Region {
    pub class: RegionClass,
    /// The detector's own name for the class.
    pub label: String,
    pub bbox: BBox,
    pub score: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_detector_families_map_onto_folio_classes() {
        let cdla = [
            "text",
            "title",
            "figure",
            "figure_caption",
            "table",
            "table_caption",
            "header",
            "footer",
            "reference",
            "equation",
        ];
        for label in cdla {
            assert!(RegionClass::from_label(label).is_some(), "{label}");
        }
        assert_eq!(RegionClass::from_label("display_formula"), Some(RegionClass::Formula));
        assert_eq!(RegionClass::from_label("paragraph_title"), Some(RegionClass::Title));
        assert_eq!(RegionClass::from_label("number"), Some(RegionClass::PageNumber));
        assert_eq!(RegionClass::from_label("figure_title"), Some(RegionClass::FigureCaption));
        assert_eq!(RegionClass::from_label("Section-header"), Some(RegionClass::Title));
        assert_eq!(RegionClass::from_label("poem"), None);
        assert_eq!(RegionClass::TableCaption.caption_of(), Some(RegionClass::Table));
        assert!(RegionClass::PageNumber.is_furniture() && !RegionClass::Text.is_furniture());
    }

    #[test]
    fn boxes_overlap_and_cover_whole_pixels() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        let b = BBox::new(5.0, 5.0, 15.0, 15.0);
        assert!((a.iou(&b) - 25.0 / 175.0).abs() < 1e-6);
        assert_eq!(a.union(&b), BBox::new(0.0, 0.0, 15.0, 15.0));
        assert_eq!(BBox::new(2.5, 3.2, 7.1, 9.9).pixels(100, 100), (2, 3, 6, 7));
        assert_eq!(BBox::new(95.0, 95.0, 140.0, 99.5).pixels(100, 100), (95, 95, 5, 5));
        // A box off the page still gives one pixel of it.
        assert_eq!(BBox::new(120.0, 120.0, 140.0, 140.0).pixels(100, 100), (99, 99, 1, 1));
    }
}
