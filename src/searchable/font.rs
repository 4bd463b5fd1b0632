//! The font of the invisible text layer: a composite (Type 0) font over an embedded glyphless
//! TrueType, the way OCRmyPDF and tesseract make searchable PDFs.
//!
//! Each character is written as its Unicode code point (two-byte codes, `Identity-H`); every code
//! draws the same empty glyph, 500 units wide, and the `ToUnicode` map sends each code back to its
//! code point, so selecting or extracting the text gives the recognised characters, Chinese
//! included. Characters beyond the Basic Multilingual Plane are written as U+FFFD.

use std::io::{self, Write};

use super::objects::ObjectWriter;

/// `assets/fonts/glyphless.ttf` (tools/fonts/make_glyphless_font.py): two empty glyphs.
const GLYPHLESS_TTF: &[u8] = include_bytes!("../../assets/fonts/glyphless.ttf");

/// Advance of every character, in thousandths of the font size.
pub const ADVANCE: f32 = 500.0;
/// Descent below the baseline, in thousandths of the font size (the glyph box spans
/// `-DESCENT..1000-DESCENT`, so a line's box is covered from its bottom to its top).
pub const DESCENT: f32 = 200.0;

/// Writes the font's objects; returns the number of the font dictionary to put in a page's
/// `/Font` resources.
pub fn write_font<W: Write>(w: &mut ObjectWriter<W>) -> io::Result<u32> {
    let [font, cid_font, descriptor, file, to_unicode, cid_to_gid] = std::array::from_fn(|_| w.reserve());
    w.object(
        font,
        0,
        format!(
            "<< /Type /Font /Subtype /Type0 /BaseFont /FolioGlyphless /Encoding /Identity-H \
             /DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R >>"
        )
        .as_bytes(),
    )?;
    w.object(
        cid_font,
        0,
        format!(
            "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /FolioGlyphless \
             /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> \
             /FontDescriptor {descriptor} 0 R /DW {ADVANCE} /CIDToGIDMap {cid_to_gid} 0 R >>"
        )
        .as_bytes(),
    )?;
    let (ascent, descent) = (1000.0 - DESCENT, -DESCENT);
    w.object(
        descriptor,
        0,
        format!(
            "<< /Type /FontDescriptor /FontName /FolioGlyphless /Flags 5 /FontBBox [0 {descent} {ADVANCE} {ascent}] \
             /ItalicAngle 0 /Ascent {ascent} /Descent {descent} /CapHeight {ascent} /StemV 80 /FontFile2 {file} 0 R >>"
        )
        .as_bytes(),
    )?;
    w.flate_stream(file, &format!("/Length1 {}", GLYPHLESS_TTF.len()), GLYPHLESS_TTF)?;
    w.flate_stream(to_unicode, "", to_unicode_cmap().as_bytes())?;
    // Every two-byte code draws glyph 1.
    let map: Vec<u8> = std::iter::repeat_n([0u8, 1u8], 0x10000).flatten().collect();
    w.flate_stream(cid_to_gid, "", &map)?;
    Ok(font)
}

/// The `ToUnicode` CMap: code `XXYY` is the character U+XXYY (256 ranges, as a range may only
/// vary in its last byte).
fn to_unicode_cmap() -> String {
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    for block in (0..256u32).collect::<Vec<_>>().chunks(100) {
        cmap.push_str(&format!("{} beginbfrange\n", block.len()));
        for hi in block {
            cmap.push_str(&format!("<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>\n"));
        }
        cmap.push_str("endbfrange\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    cmap
}

/// The codes of `text` as a PDF hex string body, and how many characters it holds. Control
/// characters and surrogates cannot be shown and become spaces; characters beyond the BMP become
/// U+FFFD.
pub fn encode(text: &str) -> (String, usize) {
    let mut hex = String::with_capacity(text.len() * 4);
    let mut count = 0;
    for c in text.chars() {
        let code = match c as u32 {
            code if code < 0x20 || (0x7F..0xA0).contains(&code) => 0x20,
            code if code > 0xFFFF => 0xFFFD,
            code => code,
        };
        hex.push_str(&format!("{code:04X}"));
        count += 1;
    }
    (hex, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_their_code_points() {
        assert_eq!(encode("A 中"), ("004100204E2D".to_string(), 3));
        assert_eq!(encode("\t😀"), ("0020FFFD".to_string(), 2));
    }

    #[test]
    fn the_cmap_maps_every_two_byte_code() {
        let cmap = to_unicode_cmap();
        assert_eq!(cmap.matches("beginbfrange").count(), 3);
        assert!(cmap.contains("<4E00> <4EFF> <4E00>"));
        assert!(cmap.contains("<FF00> <FFFF> <FF00>"));
    }

    #[test]
    fn the_embedded_font_is_a_truetype_with_two_glyphs() {
        let face = ttf_parser::Face::parse(GLYPHLESS_TTF, 0);
        assert!(face.as_ref().is_ok_and(|f| f.number_of_glyphs() == 2 && f.units_per_em() == 1000));
        let face = face.ok();
        let advance = face.and_then(|f| f.glyph_hor_advance(ttf_parser::GlyphId(1)));
        assert_eq!(advance, Some(ADVANCE as u16));
    }
}
