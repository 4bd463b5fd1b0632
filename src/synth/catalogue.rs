//! The font catalogue: which Debian-packaged families the synthetic data draws from, and the
//! files and packages of each. `scripts/setup.sh` installs every package named here.
//!
//! The families cover what real documents are set in: Times, Helvetica, Courier, Palatino, Century
//! and Bookman clones (URW base35, Liberation, FreeFont, STIX), the Office look (Carlito and
//! Caladea, metric clones of Calibri and Cambria), book faces (Libertine, Garamond, Gentium, Charis),
//! high-contrast faces (GFS Didot, a Didone; Century Catalogue), a Baskerville and a Galliard
//! (Baskervald and Accanthis ADF), Quattrocento, the web and desktop sans
//! (Open Sans, Lato, Cantarell), code faces (Hack, Courier Prime) and the DejaVu families of
//! generated documentation. Goudy Bookletter 1911 was tried and left out: its hyphen is a slanted
//! tick and its brackets are doubled, not what documents print for code. No Computer Modern Roman
//! design is in training:
//! Latin Modern Roman is the held-out family (see `fonts`). Old Standard stays out too: it revives
//! the same Modern style as Computer Modern, too close to the held-out family to keep that figure
//! a measure of unseen designs.
//!
//! [`CHINESE`] lists the simplified-Chinese faces, loaded only when the data has Chinese lines:
//! Noto Serif CJK SC (the Song/Ming style of body text) and Noto Sans CJK SC (Hei, headings and
//! screens). Their files are collections (`.ttc`); the face used is the one whose family name is
//! the catalogue name.

use super::fonts::{Class, Style};

/// A family of the catalogue: its faces as file names, and the Debian package that ships them.
pub struct FamilyDef {
    pub name: &'static str,
    pub class: Class,
    pub package: &'static str,
    /// (style, file name); a missing style falls back to the regular face.
    pub faces: &'static [(Style, &'static str)],
}

use Style::*;

/// The Latin-script families. File names are those of Debian 12 (bookworm) packages.
pub const CATALOGUE: &[FamilyDef] = &[
    // --- serif ---
    FamilyDef {
        name: "DejaVu Serif",
        class: Class::Serif,
        package: "fonts-dejavu-core",
        faces: &[
            (Regular, "DejaVuSerif.ttf"),
            (Bold, "DejaVuSerif-Bold.ttf"),
            (Italic, "DejaVuSerif-Italic.ttf"),
            (BoldItalic, "DejaVuSerif-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "DejaVu Serif Condensed",
        class: Class::Serif,
        package: "fonts-dejavu-extra",
        faces: &[
            (Regular, "DejaVuSerifCondensed.ttf"),
            (Bold, "DejaVuSerifCondensed-Bold.ttf"),
            (Italic, "DejaVuSerifCondensed-Italic.ttf"),
            (BoldItalic, "DejaVuSerifCondensed-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Liberation Serif",
        class: Class::Serif,
        package: "fonts-liberation2",
        faces: &[
            (Regular, "LiberationSerif-Regular.ttf"),
            (Bold, "LiberationSerif-Bold.ttf"),
            (Italic, "LiberationSerif-Italic.ttf"),
            (BoldItalic, "LiberationSerif-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Nimbus Roman",
        class: Class::Serif,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "NimbusRoman-Regular.otf"),
            (Bold, "NimbusRoman-Bold.otf"),
            (Italic, "NimbusRoman-Italic.otf"),
            (BoldItalic, "NimbusRoman-BoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "C059",
        class: Class::Serif,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "C059-Roman.otf"),
            (Bold, "C059-Bold.otf"),
            (Italic, "C059-Italic.otf"),
            (BoldItalic, "C059-BdIta.otf"),
        ],
    },
    FamilyDef {
        name: "P052",
        class: Class::Serif,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "P052-Roman.otf"),
            (Bold, "P052-Bold.otf"),
            (Italic, "P052-Italic.otf"),
            (BoldItalic, "P052-BoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "URW Bookman",
        class: Class::Serif,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "URWBookman-Light.otf"),
            (Bold, "URWBookman-Demi.otf"),
            (Italic, "URWBookman-LightItalic.otf"),
            (BoldItalic, "URWBookman-DemiItalic.otf"),
        ],
    },
    FamilyDef {
        name: "Latin Modern Roman",
        class: Class::Serif,
        package: "fonts-lmodern",
        faces: &[
            (Regular, "lmroman10-regular.otf"),
            (Bold, "lmroman10-bold.otf"),
            (Italic, "lmroman10-italic.otf"),
            (BoldItalic, "lmroman10-bolditalic.otf"),
        ],
    },
    FamilyDef {
        name: "FreeSerif",
        class: Class::Serif,
        package: "fonts-freefont-ttf",
        faces: &[
            (Regular, "FreeSerif.ttf"),
            (Bold, "FreeSerifBold.ttf"),
            (Italic, "FreeSerifItalic.ttf"),
            (BoldItalic, "FreeSerifBoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "STIX",
        class: Class::Serif,
        package: "fonts-stix",
        faces: &[
            (Regular, "STIXGeneral-Regular.otf"),
            (Bold, "STIXGeneral-Bold.otf"),
            (Italic, "STIXGeneral-Italic.otf"),
            (BoldItalic, "STIXGeneral-BoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "Caladea",
        class: Class::Serif,
        package: "fonts-crosextra-caladea",
        faces: &[
            (Regular, "Caladea-Regular.ttf"),
            (Bold, "Caladea-Bold.ttf"),
            (Italic, "Caladea-Italic.ttf"),
            (BoldItalic, "Caladea-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Linux Libertine",
        class: Class::Serif,
        package: "fonts-linuxlibertine",
        faces: &[
            (Regular, "LinLibertine_R.otf"),
            (Bold, "LinLibertine_RB.otf"),
            (Italic, "LinLibertine_RI.otf"),
            (BoldItalic, "LinLibertine_RBI.otf"),
        ],
    },
    FamilyDef {
        name: "EB Garamond",
        class: Class::Serif,
        package: "fonts-ebgaramond",
        faces: &[
            (Regular, "EBGaramond12-Regular.otf"),
            (Bold, "EBGaramond12-Bold.otf"),
            (Italic, "EBGaramond12-Italic.otf"),
        ],
    },
    FamilyDef {
        name: "Gentium",
        class: Class::Serif,
        package: "fonts-sil-gentium",
        faces: &[(Regular, "Gentium-R.ttf"), (Italic, "Gentium-I.ttf")],
    },
    FamilyDef {
        name: "Charis SIL",
        class: Class::Serif,
        package: "fonts-sil-charis",
        faces: &[
            (Regular, "CharisSIL-Regular.ttf"),
            (Bold, "CharisSIL-Bold.ttf"),
            (Italic, "CharisSIL-Italic.ttf"),
            (BoldItalic, "CharisSIL-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Century Catalogue",
        class: Class::Serif,
        package: "fonts-century-catalogue",
        faces: &[(Regular, "Century-Catalogue.ttf")],
    },
    FamilyDef {
        name: "GFS Didot",
        class: Class::Serif,
        package: "fonts-gfs-didot",
        faces: &[
            (Regular, "GFSDidot.otf"),
            (Bold, "GFSDidotBold.otf"),
            (Italic, "GFSDidotItalic.otf"),
            (BoldItalic, "GFSDidotBoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "Baskervald ADF",
        class: Class::Serif,
        package: "fonts-adf-baskervald",
        faces: &[
            (Regular, "BaskervaldADFStd.otf"),
            (Bold, "BaskervaldADFStd-Bold.otf"),
            (Italic, "BaskervaldADFStd-Italic.otf"),
            (BoldItalic, "BaskervaldADFStd-BoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "Accanthis ADF",
        class: Class::Serif,
        package: "fonts-adf-accanthis",
        faces: &[
            (Regular, "AccanthisADFStd-Regular.otf"),
            (Bold, "AccanthisADFStd-Bold.otf"),
            (Italic, "AccanthisADFStd-Italic.otf"),
            (BoldItalic, "AccanthisADFStd-BoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "Quattrocento",
        class: Class::Serif,
        package: "fonts-quattrocento",
        faces: &[(Regular, "Quattrocento-Regular.otf")],
    },
    // --- sans ---
    FamilyDef {
        name: "DejaVu Sans",
        class: Class::Sans,
        package: "fonts-dejavu-core",
        faces: &[
            (Regular, "DejaVuSans.ttf"),
            (Bold, "DejaVuSans-Bold.ttf"),
            (Italic, "DejaVuSans-Oblique.ttf"),
            (BoldItalic, "DejaVuSans-BoldOblique.ttf"),
        ],
    },
    FamilyDef {
        name: "DejaVu Sans Condensed",
        class: Class::Sans,
        package: "fonts-dejavu-extra",
        faces: &[
            (Regular, "DejaVuSansCondensed.ttf"),
            (Bold, "DejaVuSansCondensed-Bold.ttf"),
            (Italic, "DejaVuSansCondensed-Oblique.ttf"),
            (BoldItalic, "DejaVuSansCondensed-BoldOblique.ttf"),
        ],
    },
    FamilyDef {
        name: "Liberation Sans",
        class: Class::Sans,
        package: "fonts-liberation2",
        faces: &[
            (Regular, "LiberationSans-Regular.ttf"),
            (Bold, "LiberationSans-Bold.ttf"),
            (Italic, "LiberationSans-Italic.ttf"),
            (BoldItalic, "LiberationSans-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Liberation Sans Narrow",
        class: Class::Sans,
        package: "fonts-liberation",
        faces: &[
            (Regular, "LiberationSansNarrow-Regular.ttf"),
            (Bold, "LiberationSansNarrow-Bold.ttf"),
            (Italic, "LiberationSansNarrow-Italic.ttf"),
            (BoldItalic, "LiberationSansNarrow-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Nimbus Sans",
        class: Class::Sans,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "NimbusSans-Regular.otf"),
            (Bold, "NimbusSans-Bold.otf"),
            (Italic, "NimbusSans-Italic.otf"),
            (BoldItalic, "NimbusSans-BoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "Nimbus Sans Narrow",
        class: Class::Sans,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "NimbusSansNarrow-Regular.otf"),
            (Bold, "NimbusSansNarrow-Bold.otf"),
            (Italic, "NimbusSansNarrow-Oblique.otf"),
            (BoldItalic, "NimbusSansNarrow-BoldOblique.otf"),
        ],
    },
    FamilyDef {
        name: "URW Gothic",
        class: Class::Sans,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "URWGothic-Book.otf"),
            (Bold, "URWGothic-Demi.otf"),
            (Italic, "URWGothic-BookOblique.otf"),
            (BoldItalic, "URWGothic-DemiOblique.otf"),
        ],
    },
    FamilyDef {
        name: "Latin Modern Sans",
        class: Class::Sans,
        package: "fonts-lmodern",
        faces: &[
            (Regular, "lmsans10-regular.otf"),
            (Bold, "lmsans10-bold.otf"),
            (Italic, "lmsans10-oblique.otf"),
            (BoldItalic, "lmsans10-boldoblique.otf"),
        ],
    },
    FamilyDef {
        name: "FreeSans",
        class: Class::Sans,
        package: "fonts-freefont-ttf",
        faces: &[
            (Regular, "FreeSans.ttf"),
            (Bold, "FreeSansBold.ttf"),
            (Italic, "FreeSansOblique.ttf"),
            (BoldItalic, "FreeSansBoldOblique.ttf"),
        ],
    },
    FamilyDef {
        name: "Carlito",
        class: Class::Sans,
        package: "fonts-crosextra-carlito",
        faces: &[
            (Regular, "Carlito-Regular.ttf"),
            (Bold, "Carlito-Bold.ttf"),
            (Italic, "Carlito-Italic.ttf"),
            (BoldItalic, "Carlito-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Open Sans",
        class: Class::Sans,
        package: "fonts-open-sans",
        faces: &[
            (Regular, "OpenSans-Regular.ttf"),
            (Bold, "OpenSans-Bold.ttf"),
            (Italic, "OpenSans-Italic.ttf"),
            (BoldItalic, "OpenSans-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Linux Biolinum",
        class: Class::Sans,
        package: "fonts-linuxlibertine",
        faces: &[(Regular, "LinBiolinum_R.otf"), (Bold, "LinBiolinum_RB.otf"), (Italic, "LinBiolinum_RI.otf")],
    },
    FamilyDef {
        name: "Lato",
        class: Class::Sans,
        package: "fonts-lato",
        faces: &[
            (Regular, "Lato-Regular.ttf"),
            (Bold, "Lato-Bold.ttf"),
            (Italic, "Lato-Italic.ttf"),
            (BoldItalic, "Lato-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Cantarell",
        class: Class::Sans,
        package: "fonts-cantarell",
        faces: &[(Regular, "Cantarell-Regular.otf"), (Bold, "Cantarell-Bold.otf")],
    },
    // --- monospace ---
    FamilyDef {
        name: "DejaVu Sans Mono",
        class: Class::Mono,
        package: "fonts-dejavu-core",
        faces: &[
            (Regular, "DejaVuSansMono.ttf"),
            (Bold, "DejaVuSansMono-Bold.ttf"),
            (Italic, "DejaVuSansMono-Oblique.ttf"),
            (BoldItalic, "DejaVuSansMono-BoldOblique.ttf"),
        ],
    },
    FamilyDef {
        name: "Liberation Mono",
        class: Class::Mono,
        package: "fonts-liberation2",
        faces: &[
            (Regular, "LiberationMono-Regular.ttf"),
            (Bold, "LiberationMono-Bold.ttf"),
            (Italic, "LiberationMono-Italic.ttf"),
            (BoldItalic, "LiberationMono-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Nimbus Mono PS",
        class: Class::Mono,
        package: "fonts-urw-base35",
        faces: &[
            (Regular, "NimbusMonoPS-Regular.otf"),
            (Bold, "NimbusMonoPS-Bold.otf"),
            (Italic, "NimbusMonoPS-Italic.otf"),
            (BoldItalic, "NimbusMonoPS-BoldItalic.otf"),
        ],
    },
    FamilyDef {
        name: "Latin Modern Mono",
        class: Class::Mono,
        package: "fonts-lmodern",
        faces: &[
            (Regular, "lmmono10-regular.otf"),
            (Bold, "lmmonolt10-bold.otf"),
            (Italic, "lmmono10-italic.otf"),
            (BoldItalic, "lmmonolt10-boldoblique.otf"),
        ],
    },
    FamilyDef {
        name: "FreeMono",
        class: Class::Mono,
        package: "fonts-freefont-ttf",
        faces: &[
            (Regular, "FreeMono.ttf"),
            (Bold, "FreeMonoBold.ttf"),
            (Italic, "FreeMonoOblique.ttf"),
            (BoldItalic, "FreeMonoBoldOblique.ttf"),
        ],
    },
    FamilyDef {
        name: "Inconsolata",
        class: Class::Mono,
        package: "fonts-inconsolata",
        faces: &[(Regular, "Inconsolata.otf")],
    },
    FamilyDef {
        name: "Hack",
        class: Class::Mono,
        package: "fonts-hack",
        faces: &[
            (Regular, "Hack-Regular.ttf"),
            (Bold, "Hack-Bold.ttf"),
            (Italic, "Hack-Italic.ttf"),
            (BoldItalic, "Hack-BoldItalic.ttf"),
        ],
    },
    FamilyDef {
        name: "Courier Prime",
        class: Class::Mono,
        package: "fonts-courier-prime",
        faces: &[
            (Regular, "Courier Prime.otf"),
            (Bold, "Courier Prime Bold.otf"),
            (Italic, "Courier Prime Italic.otf"),
            (BoldItalic, "Courier Prime Bold Italic.otf"),
        ],
    },
];

/// The simplified-Chinese families (they carry Latin letters and digits too, for mixed lines).
pub const CHINESE: &[FamilyDef] = &[
    FamilyDef {
        name: "Noto Serif CJK SC",
        class: Class::Serif,
        package: "fonts-noto-cjk",
        faces: &[(Regular, "NotoSerifCJK-Regular.ttc"), (Bold, "NotoSerifCJK-Bold.ttc")],
    },
    FamilyDef {
        name: "Noto Sans CJK SC",
        class: Class::Sans,
        package: "fonts-noto-cjk",
        faces: &[(Regular, "NotoSansCJK-Regular.ttc"), (Bold, "NotoSansCJK-Bold.ttc")],
    },
    FamilyDef {
        name: "Noto Sans Mono CJK SC",
        class: Class::Mono,
        package: "fonts-noto-cjk",
        faces: &[(Regular, "NotoSansCJK-Regular.ttc"), (Bold, "NotoSansCJK-Bold.ttc")],
    },
];
