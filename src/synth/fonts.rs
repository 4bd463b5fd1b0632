//! Loading the catalogue's faces ([`CATALOGUE`]), and the font facts rendering needs (scale,
//! kerning, which characters have visible glyphs).
//!
//! Every face is found by file name under the font directories (`/usr/share/fonts`, the TeX font
//! tree of `fonts-lmodern`, plus any the config adds). `scripts/setup.sh` installs the packages.
//!
//! One family, Latin Modern Roman (the LaTeX look: high-contrast Computer Modern serif), is held
//! out of training by default; the `eval-font` split renders only it. It is the family most unlike
//! the others in the catalogue (the serifs in training are Times, Century, Palatino, Bookman,
//! Cambria, Garamond, Libertine, Gentium and DejaVu designs), and LaTeX documents are common in
//! the wild, so its figure is a fair test of generalisation to an unseen typeface.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontVec, GlyphId};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use super::catalogue::{FamilyDef, CATALOGUE, CHINESE};

/// Broad design class; text kinds choose classes (code likes monospace).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Serif,
    Sans,
    Mono,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Style {
    Regular,
    Bold,
    Italic,
    BoldItalic,
}

impl Style {
    pub const ALL: [Style; 4] = [Style::Regular, Style::Bold, Style::Italic, Style::BoldItalic];

    pub fn name(self) -> &'static str {
        match self {
            Style::Regular => "Regular",
            Style::Bold => "Bold",
            Style::Italic => "Italic",
            Style::BoldItalic => "Bold Italic",
        }
    }
}

/// Directories searched (recursively) for the catalogue's files, before any the config adds.
pub const DEFAULT_FONT_DIRS: &[&str] =
    &["/usr/share/fonts", "/usr/share/texmf/fonts/opentype", "/usr/share/texlive/texmf-dist/fonts/opentype/public/lm"];

/// A loaded face.
pub struct Face {
    pub family: &'static str,
    pub class: Class,
    pub style: Style,
    pub font: FontVec,
    /// Pixels per em = `scale_per_em * px` gives the `PxScale` for an em of `px` pixels.
    pub scale_per_em: f32,
    /// Index of the face in its file (non-zero in a collection).
    index: u32,
    /// Lookup indices of the GPOS `kern` feature (empty: use the legacy `kern` table).
    gpos_kern_lookups: Vec<u16>,
}

impl Face {
    pub fn display_name(&self) -> String {
        if self.style == Style::Regular {
            self.family.to_string()
        } else {
            format!("{} {}", self.family, self.style.name())
        }
    }

    /// The glyph for `c`, or `None` when the font has no visible glyph for it (glyph 0, or an
    /// empty outline for a non-space character: either would make the label lie about the pixels).
    pub fn visible_glyph(&self, c: char) -> Option<GlyphId> {
        let id = self.font.glyph_id(c);
        if id.0 == 0 || self.font.outline(id).is_none() {
            None
        } else {
            Some(id)
        }
    }

    /// Pair kerning in font units: GPOS `kern` pair adjustments when the font has them, else the
    /// legacy `kern` table (through ab_glyph).
    pub fn kerning(&self) -> Kerner<'_> {
        let face = if self.gpos_kern_lookups.is_empty() {
            None
        } else {
            ttf_parser::Face::parse(self.font.as_slice(), self.index).ok()
        };
        Kerner { face: self, parsed: face }
    }
}

/// Kerning for one line; holds the parsed GPOS table for the duration.
pub struct Kerner<'a> {
    face: &'a Face,
    parsed: Option<ttf_parser::Face<'a>>,
}

impl Kerner<'_> {
    pub fn kern_unscaled(&self, a: GlyphId, b: GlyphId) -> f32 {
        let Some(face) = &self.parsed else {
            return self.face.font.kern_unscaled(a, b);
        };
        let Some(gpos) = face.tables().gpos else { return 0.0 };
        let (a, b) = (ttf_parser::GlyphId(a.0), ttf_parser::GlyphId(b.0));
        let mut total = 0.0;
        for &li in &self.face.gpos_kern_lookups {
            let Some(lookup) = gpos.lookups.get(li) else { continue };
            for sub in lookup.subtables.into_iter::<ttf_parser::gpos::PositioningSubtable>() {
                let ttf_parser::gpos::PositioningSubtable::Pair(pair) = sub else { continue };
                let Some(cov) = pair.coverage().get(a) else { continue };
                let adj = match pair {
                    ttf_parser::gpos::PairAdjustment::Format1 { sets, .. } => {
                        sets.get(cov).and_then(|set| set.get(b)).map(|(v, _)| v.x_advance)
                    }
                    ttf_parser::gpos::PairAdjustment::Format2 { classes, matrix, .. } => {
                        matrix.get((classes.0.get(a), classes.1.get(b))).map(|(v, _)| v.x_advance)
                    }
                };
                // The first subtable that covers the first glyph decides, as in a shaper.
                total += adj.unwrap_or(0) as f32;
                break;
            }
        }
        total
    }
}

fn gpos_kern_lookups(data: &[u8], index: u32) -> Vec<u16> {
    let Ok(face) = ttf_parser::Face::parse(data, index) else { return Vec::new() };
    let Some(gpos) = face.tables().gpos else { return Vec::new() };
    let mut out: Vec<u16> = Vec::new();
    for feature in gpos.features {
        if feature.tag == ttf_parser::Tag::from_bytes(b"kern") {
            for li in feature.lookup_indices {
                if !out.contains(&li) {
                    out.push(li);
                }
            }
        }
    }
    out.sort_unstable();
    out
}

fn index_dir(dir: &Path, index: &mut HashMap<String, PathBuf>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            index_dir(&path, index, depth + 1);
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            index.entry(name.to_string()).or_insert(path);
        }
    }
}

/// Loads every face of the given families. Fails, naming the missing files and their packages,
/// when any is absent.
pub fn load_families(names: &[&str], extra_dirs: &[PathBuf]) -> Result<Vec<Face>> {
    let mut index = HashMap::new();
    // Extra directories first so they can override.
    for d in extra_dirs {
        index_dir(d, &mut index, 0);
    }
    for d in DEFAULT_FONT_DIRS {
        index_dir(Path::new(d), &mut index, 0);
    }
    let mut missing = Vec::new();
    let mut faces = Vec::new();
    for name in names {
        let Some(def) = CATALOGUE.iter().chain(CHINESE).find(|f| f.name == *name) else {
            bail!("unknown font family {name:?}; the catalogue has: {}", family_names().join(", "));
        };
        for (style, file) in def.faces {
            let Some(path) = index.get(*file) else {
                missing.push(format!("{file} ({})", def.package));
                continue;
            };
            let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let face_index = face_index_of(&data, def.name)
                .with_context(|| format!("{}: no face of family {:?}", path.display(), def.name))?;
            let lookups = gpos_kern_lookups(&data, face_index);
            let font = FontVec::try_from_vec_and_index(data, face_index)
                .map_err(|_| anyhow::anyhow!("{}: not a font", path.display()))?;
            let upem = font.units_per_em().unwrap_or(1000.0);
            let scale_per_em = font.height_unscaled() / upem;
            faces.push(Face {
                family: def.name,
                class: def.class,
                style: *style,
                font,
                scale_per_em,
                index: face_index,
                gpos_kern_lookups: lookups,
            });
        }
    }
    if !missing.is_empty() {
        bail!(
            "synthetic-data fonts are missing: {}. Run scripts/setup.sh (as root) to install them",
            missing.join(", ")
        );
    }
    Ok(faces)
}

/// Index of the face to use in a font file: 0 for a single font, else the face of a collection
/// whose family name (typographic or legacy) is `family`.
fn face_index_of(data: &[u8], family: &str) -> Option<u32> {
    let Some(count) = ttf_parser::fonts_in_collection(data) else { return Some(0) };
    (0..count).find(|&i| {
        ttf_parser::Face::parse(data, i).is_ok_and(|face| {
            face.names().into_iter().any(|n| {
                (n.name_id == ttf_parser::name_id::TYPOGRAPHIC_FAMILY || n.name_id == ttf_parser::name_id::FAMILY)
                    && n.to_string().as_deref() == Some(family)
            })
        })
    })
}

/// Every family of the catalogue, Latin then Chinese.
pub fn family_names() -> Vec<&'static str> {
    CATALOGUE.iter().chain(CHINESE).map(|f| f.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collection's face is the one named in the catalogue: the simplified-Chinese cut of Noto
    /// CJK, not the Japanese one first in the file. Needs `fonts-noto-cjk` (scripts/setup.sh).
    #[test]
    fn collection_faces_are_found_by_family_name() -> Result<()> {
        let mut index = HashMap::new();
        for d in DEFAULT_FONT_DIRS {
            index_dir(Path::new(d), &mut index, 0);
        }
        let path = index.get("NotoSansCJK-Regular.ttc").context("NotoSansCJK-Regular.ttc (fonts-noto-cjk)")?;
        let data = std::fs::read(path)?;
        let sc = face_index_of(&data, "Noto Sans CJK SC").context("no SC face")?;
        let mono = face_index_of(&data, "Noto Sans Mono CJK SC").context("no Mono SC face")?;
        assert!(sc != 0 && mono != sc, "SC face {sc}, Mono SC face {mono}");
        let jp = face_index_of(&data, "Noto Sans CJK JP");
        assert_eq!(jp, Some(0), "the Japanese face opens the collection");
        assert_eq!(face_index_of(&data, "Noto Sans CJK XX"), None);
        // A single font is face 0 whatever it is called.
        let single = std::fs::read(index.get("DejaVuSans.ttf").context("DejaVuSans.ttf")?)?;
        assert_eq!(face_index_of(&single, "anything"), Some(0));
        Ok(())
    }
}
