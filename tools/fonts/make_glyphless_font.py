"""Builds assets/fonts/glyphless.ttf: the font of folio's invisible text layer.

Two glyphs, both empty and 500 units wide (.notdef and one for every character: the PDF maps every
CID to glyph 1). The text is drawn invisibly (render mode 3), so the font only has to exist, be
valid and give every character the same advance, which folio stretches to each line's width.

    python tools/fonts/make_glyphless_font.py   # needs fontTools
"""
from pathlib import Path

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen

OUT = Path(__file__).resolve().parents[2] / "assets" / "fonts" / "glyphless.ttf"


def main():
    fb = FontBuilder(unitsPerEm=1000, isTTF=True)
    names = [".notdef", "glyph"]
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap({0x20: "glyph"})
    empty = TTGlyphPen(None).glyph()
    fb.setupGlyf({n: empty for n in names})
    fb.setupHorizontalMetrics({n: (500, 0) for n in names})
    fb.setupHorizontalHeader(ascent=800, descent=-200)
    fb.setupNameTable({"familyName": "FolioGlyphless", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    fb.setupPost()
    fb.font["head"].created = fb.font["head"].modified = 0  # reproducible bytes
    fb.save(str(OUT))
    print(OUT, OUT.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
