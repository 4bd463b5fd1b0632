//! Deterministic synthetic text-line images for training and evaluating the OCR model.
//!
//! A sample is a pure function of (seed, split, index): [`Generator::sample`] can make any index on
//! its own, so training resumes at any step and data loading parallelises freely.
//!
//! - Text: a real-text corpus (English documentation from Debian packages, `models/corpus/`), cut
//!   into pieces of 1..`max_chars` characters, plus generated numbers, dates, prices, code, URLs
//!   and e-mail addresses; in training, also table-of-contents entries with dot leaders
//!   ([`toc`]). One corpus line in 20 (by hash) is held-out text.
//! - Fonts: Debian-packaged serif / sans / mono families ([`fonts::CATALOGUE`]); the
//!   `eval_families` (default: Latin Modern Roman) are never used by the train split.
//! - Chinese (when `chinese` > 0): that share of the train samples are simplified-Chinese lines
//!   from Debian's Chinese manual pages (`models/corpus/zh.txt`, mixed Chinese/Latin text) in the
//!   Noto CJK SC faces ([`fonts::CHINESE`]).
//! - Splits: `train` (train text, train fonts), `eval-text` (held-out text, train fonts),
//!   `eval-font` (held-out text, held-out fonts) and `eval-zh` (held-out Chinese text).
//!
//! ```no_run
//! use folio::synth::{Generator, Split, SynthConfig};
//! let gen = Generator::new(SynthConfig::default())?;
//! let s = gen.sample(Split::Train, 42)?;
//! s.image.save("line.png")?;
//! println!("{} ({})", s.text, s.font);
//! # anyhow::Ok(())
//! ```

pub mod catalogue;
pub mod cli;
pub mod corpus;
mod degrade;
pub mod fonts;
mod inline;
pub mod render;
mod rng;
mod toc;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use image::RgbImage;
use serde::{Deserialize, Serialize};

pub use corpus::Corpus;
pub use fonts::{Class, Face, Style};
pub use render::{Fragment, Inline, LineStyle};

use corpus::Kind;
use rng::Rng;

/// Share of Latin prose lines with words in a second face (at `augment` 1).
const INLINE_SHARE: f64 = 0.2;
/// Salt of the seed of the mixed-face spans' random stream.
const INLINE_STREAM: u64 = 0x1A11_11CE;
/// Share of train lines whose stroke weight changes (at `augment` 1), and the salt of its stream:
/// a light or heavy cut of a face, or ink spread, widens the designs the model sees.
const STROKE_SHARE: f64 = 0.25;
const STROKE_STREAM: u64 = 0x57_0CE;
/// Share of Latin train lines that are table-of-contents entries with dot leaders
/// ([`toc`]), and the salt of their stream.
const TOC_SHARE: f64 = 0.08;
const TOC_STREAM: u64 = 0x70C;

/// Which data a sample comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    /// Train text in train fonts.
    Train,
    /// Held-out text in train fonts.
    EvalText,
    /// Held-out text in the held-out font families.
    EvalFont,
    /// Held-out Chinese text in the Chinese fonts.
    EvalZh,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::EvalText => "eval-text",
            Split::EvalFont => "eval-font",
            Split::EvalZh => "eval-zh",
        }
    }
    fn tag(self) -> u64 {
        match self {
            Split::Train => 1,
            Split::EvalText => 2,
            Split::EvalFont => 3,
            Split::EvalZh => 4,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "train" => Split::Train,
            "eval-text" => Split::EvalText,
            "eval-font" => Split::EvalFont,
            "eval-zh" => Split::EvalZh,
            _ => bail!("unknown split {s:?}: expected train, eval-text, eval-font or eval-zh"),
        })
    }
}

/// Generator settings. Every field has a default; a JSON file may set any subset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthConfig {
    /// The data seed: sample (seed, split, index) is always the same image and label.
    pub seed: u64,
    /// A corpus file (UTF-8, one text a line); `None` uses the built-in `models/corpus/corpus.txt`.
    pub corpus: Option<PathBuf>,
    /// Extra font directories searched before the system ones.
    pub font_dirs: Vec<PathBuf>,
    /// Families held out of training (rendered only by the `eval-font` split).
    pub eval_families: Vec<String>,
    /// Families for training; `None` means every catalogue family not held out.
    pub train_families: Option<Vec<String>>,
    /// Em size range in pixels (log-uniform).
    pub min_px: f32,
    pub max_px: f32,
    /// Longest label in characters.
    pub max_chars: usize,
    /// Scales the probability of every augmentation (0 = clean black-on-white renders).
    pub augment: f32,
    /// Share of train samples that are Chinese lines, 0..=1. At 0 (the default) neither the Chinese
    /// corpus nor its fonts are loaded, and the `eval-zh` split is unavailable.
    pub chinese: f32,
    /// A Chinese corpus file; `None` uses the built-in `models/corpus/zh.txt`.
    pub chinese_corpus: Option<PathBuf>,
}

impl SynthConfig {
    /// This config, able to draw `split`: `eval-zh` needs the Chinese corpus and fonts, which load
    /// when `chinese` is above 0 (its value only shapes the train split).
    pub fn able_to_draw(mut self, split: Split) -> Self {
        if split == Split::EvalZh && self.chinese == 0.0 {
            self.chinese = 1.0;
        }
        self
    }
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            corpus: None,
            font_dirs: Vec::new(),
            eval_families: vec!["Latin Modern Roman".to_string()],
            train_families: None,
            min_px: 14.0,
            max_px: 48.0,
            max_chars: 60,
            augment: 1.0,
            chinese: 0.0,
            chinese_corpus: None,
        }
    }
}

/// One rendered line.
#[derive(Clone, Debug)]
pub struct Sample {
    pub image: RgbImage,
    /// Exactly the text the image shows (single spaces, no leading or trailing space).
    pub text: String,
    /// Family and style, e.g. "Nimbus Roman Bold Italic".
    pub font: String,
}

/// Loads fonts and corpus once; then makes samples from any thread. Clones share them.
#[derive(Clone)]
pub struct Generator {
    cfg: SynthConfig,
    corpus: Arc<Corpus>,
    /// The Chinese corpus, when `cfg.chinese` > 0.
    chinese: Option<Arc<Corpus>>,
    faces: Arc<Vec<Face>>,
    /// Face indices by role: Latin train faces, held-out faces, Chinese faces.
    train_faces: Vec<usize>,
    eval_faces: Vec<usize>,
    chinese_faces: Vec<usize>,
}

/// The writing system of a sample: it chooses the corpus and the fonts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Latin,
    Chinese,
}

impl Generator {
    pub fn new(cfg: SynthConfig) -> Result<Self> {
        if !(cfg.min_px >= 4.0 && cfg.max_px >= cfg.min_px) {
            bail!("need 4 <= min_px <= max_px (got {} and {})", cfg.min_px, cfg.max_px);
        }
        if cfg.max_chars == 0 {
            bail!("max_chars must be at least 1");
        }
        if !(0.0..=1.0).contains(&cfg.chinese) {
            bail!("chinese is a share of the samples, 0 to 1 (got {})", cfg.chinese);
        }
        let corpus = Corpus::load(cfg.corpus.as_deref(), corpus::BUILTIN)?;
        let chinese = if cfg.chinese > 0.0 {
            let zh = Corpus::load(cfg.chinese_corpus.as_deref(), corpus::BUILTIN_CHINESE).context("Chinese corpus")?;
            Some(Arc::new(zh))
        } else {
            None
        };
        // Train and eval families are Latin ones; the Chinese faces come with `chinese`.
        let all: Vec<&str> = fonts::CATALOGUE.iter().map(|f| f.name).collect();
        for f in &cfg.eval_families {
            if !all.contains(&f.as_str()) {
                bail!("unknown eval family {f:?}; the catalogue has: {}", all.join(", "));
            }
        }
        let train: Vec<&str> = match &cfg.train_families {
            Some(v) => v.iter().map(String::as_str).collect(),
            None => all.iter().copied().filter(|f| !cfg.eval_families.iter().any(|e| e == f)).collect(),
        };
        if let Some(f) = train.iter().find(|f| !all.contains(f)) {
            bail!("unknown train family {f:?}; the Latin catalogue has: {}", all.join(", "));
        }
        if let Some(f) = train.iter().find(|f| cfg.eval_families.iter().any(|e| e == *f)) {
            bail!("family {f:?} is both a train and an eval family");
        }
        if train.is_empty() {
            bail!("no train font families");
        }
        let chinese_families: Vec<&str> =
            if chinese.is_some() { fonts::CHINESE.iter().map(|f| f.name).collect() } else { Vec::new() };
        let mut names: Vec<&str> = train.clone();
        names.extend(cfg.eval_families.iter().map(String::as_str));
        names.extend(&chinese_families);
        let faces = fonts::load_families(&names, &cfg.font_dirs)?;
        let with = |families: &[&str]| -> Vec<usize> {
            (0..faces.len()).filter(|&i| families.contains(&faces[i].family)).collect()
        };
        let eval: Vec<&str> = cfg.eval_families.iter().map(String::as_str).collect();
        let (train_faces, eval_faces, chinese_faces) = (with(&train), with(&eval), with(&chinese_families));
        Ok(Generator {
            cfg,
            corpus: Arc::new(corpus),
            chinese,
            faces: Arc::new(faces),
            train_faces,
            eval_faces,
            chinese_faces,
        })
    }

    /// The same fonts and corpus with other line lengths and augmentation (a curriculum stage);
    /// nothing is loaded again.
    pub fn with_stage(&self, max_chars: usize, augment: f32) -> Result<Self> {
        if max_chars == 0 {
            bail!("max_chars must be at least 1");
        }
        Ok(Generator { cfg: SynthConfig { max_chars, augment, ..self.cfg.clone() }, ..self.clone() })
    }

    pub fn config(&self) -> &SynthConfig {
        &self.cfg
    }

    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    pub fn faces(&self) -> &[Face] {
        &self.faces
    }

    /// Display names of the faces a split draws from.
    pub fn split_fonts(&self, split: Split) -> Vec<String> {
        let mut faces = match split {
            Split::EvalZh => Vec::new(),
            _ => self.faces_for(split, Script::Latin).to_vec(),
        };
        if split == Split::Train || split == Split::EvalZh {
            faces.extend(self.faces_for(split, Script::Chinese));
        }
        faces.iter().map(|&i| self.faces[i].display_name()).collect()
    }

    fn faces_for(&self, split: Split, script: Script) -> &[usize] {
        match (split, script) {
            (Split::EvalZh, _) | (_, Script::Chinese) => &self.chinese_faces,
            (Split::Train | Split::EvalText, Script::Latin) => &self.train_faces,
            (Split::EvalFont, Script::Latin) if self.eval_faces.is_empty() => &self.train_faces,
            (Split::EvalFont, Script::Latin) => &self.eval_faces,
        }
    }

    /// The corpus lines of `split` and `script`; `None` when the generator has no Chinese.
    fn lines_for(&self, split: Split, script: Script) -> Option<&[String]> {
        let corpus = match script {
            Script::Latin => &self.corpus,
            Script::Chinese => self.chinese.as_ref()?,
        };
        Some(if split == Split::Train { &corpus.train } else { &corpus.held_out })
    }

    /// The script of sample `rng` is about to make in `split`. Draws from `rng` only when the
    /// train split mixes scripts, so Latin-only data is the same as before Chinese existed.
    fn script_for(&self, rng: &mut Rng, split: Split) -> Script {
        match split {
            Split::EvalZh => Script::Chinese,
            Split::Train if self.chinese.is_some() && rng.chance(self.cfg.chinese as f64) => Script::Chinese,
            _ => Script::Latin,
        }
    }

    /// Every character a label can contain (a superset: corpus, generated texts, fallbacks).
    pub fn charset(&self) -> BTreeSet<char> {
        let mut set: BTreeSet<char> = (' '..='~').collect();
        for l in self.corpus.train.iter().chain(&self.corpus.held_out) {
            set.extend(l.chars());
            set.extend(l.to_uppercase().chars());
        }
        if let Some(zh) = &self.chinese {
            set.extend(zh.train.iter().chain(&zh.held_out).flat_map(|l| l.chars()));
        }
        set.extend("•–·×§€£¥".chars());
        set
    }

    /// Sample `index` of `split`: a pure function of (config, split, index).
    pub fn sample(&self, split: Split, index: u64) -> Result<Sample> {
        let mut rng = Rng::for_sample(self.cfg.seed, split.tag(), index);
        let script = self.script_for(&mut rng, split);
        let Some(lines) = self.lines_for(split, script) else {
            bail!("the {split} split needs Chinese data: set `chinese` above 0 in the synthetic-data config");
        };
        // Mixed-face spans draw from a stream of their own, so every other draw of a sample is
        // what it was before they existed.
        let mut inline_rng = Rng::for_sample(self.cfg.seed ^ INLINE_STREAM, split.tag(), index);
        let inline_p = self.augmented(INLINE_SHARE);
        let mut stroke_rng = Rng::for_sample(self.cfg.seed ^ STROKE_STREAM, split.tag(), index);
        let stroke_p = self.augmented(STROKE_SHARE);
        let mut toc_rng = Rng::for_sample(self.cfg.seed ^ TOC_STREAM, split.tag(), index);
        let mut last = None;
        for _ in 0..8 {
            let (mut text, kind) = match script {
                Script::Latin => corpus::sample_text(&mut rng, lines, self.cfg.max_chars),
                // Chinese characters are about twice as wide as Latin ones: two thirds as many
                // make a line of a similar width (40 for 60, a printed column's worth).
                Script::Chinese => {
                    (corpus::chinese_text(&mut rng, lines, (self.cfg.max_chars * 2 / 3).max(1)), Kind::Prose)
                }
            };
            // Training only, like the stroke weight below.
            if split == Split::Train && script == Script::Latin && toc_rng.chance(TOC_SHARE) {
                text = toc::entry(&mut toc_rng, lines, self.cfg.max_chars);
            }
            let faces = self.faces_for(split, script);
            let mut style = self.sample_style(&mut rng, faces, lines, script, kind);
            if script == Script::Latin && kind == Kind::Prose && inline_rng.chance(inline_p) {
                style.inline = inline::choose(&mut inline_rng, &text, &self.faces, faces, style.face);
            }
            // Training only: the evaluation sets stay the benchmark they were.
            if split == Split::Train && stroke_rng.chance(stroke_p) {
                // Lighter or bolder by up to a third of a regular stem (about 0.08 em).
                style.stroke = (style.px as f64 * stroke_rng.uniform(-0.02, 0.03)).clamp(-0.8, 1.5) as f32;
            }
            let s = self.draw(&text, &style)?;
            if !s.text.is_empty() {
                return Ok(s);
            }
            last = Some(s);
        }
        last.ok_or_else(|| anyhow::anyhow!("no sample"))
    }

    /// Renders `text` with an explicit style (tests, pages, debugging).
    pub fn draw(&self, text: &str, style: &LineStyle) -> Result<Sample> {
        let (image, text) = render::draw_line(&self.faces, text, style)?;
        Ok(Sample { image, text, font: self.faces[style.face].display_name() })
    }

    /// Index of the face with this family and style, if loaded.
    pub fn face_index(&self, family: &str, style: Style) -> Option<usize> {
        self.faces.iter().position(|f| f.family == family && f.style == style)
    }

    fn pick_face(&self, rng: &mut Rng, pool: &[usize], kind: Kind) -> usize {
        // Class first (code prefers monospace), then a family, then a style.
        let class_w = match kind {
            Kind::Code => [0.2, 0.2, 0.6],
            _ => [0.45, 0.4, 0.15],
        };
        let classes = [Class::Serif, Class::Sans, Class::Mono];
        let mut families: Vec<&str> = Vec::new();
        let present: Vec<f64> = classes
            .iter()
            .zip(class_w)
            .map(|(c, w)| if pool.iter().any(|&i| self.faces[i].class == *c) { w } else { 0.0 })
            .collect();
        let class =
            if present.iter().sum::<f64>() > 0.0 { classes[rng.weighted(&present)] } else { self.faces[pool[0]].class };
        for &i in pool {
            let f = &self.faces[i];
            if f.class == class && !families.contains(&f.family) {
                families.push(f.family);
            }
        }
        let family = *rng.pick(&families);
        let style = Style::ALL[rng.weighted(&[0.62, 0.15, 0.16, 0.07])];
        pool.iter()
            .copied()
            .find(|&i| self.faces[i].family == family && self.faces[i].style == style)
            .or_else(|| pool.iter().copied().find(|&i| self.faces[i].family == family))
            .unwrap_or(pool[0])
    }

    /// The probability of an augmentation whose probability at `augment` 1 is `p`.
    fn augmented(&self, p: f64) -> f64 {
        (p * self.cfg.augment.max(0.0) as f64).min(1.0)
    }

    /// A style for a line of `script` and `kind` in one of `faces`; `lines` give the neighbour
    /// fragments some crops catch.
    fn sample_style(&self, rng: &mut Rng, faces: &[usize], lines: &[String], script: Script, kind: Kind) -> LineStyle {
        let a = self.cfg.augment.max(0.0) as f64;
        let p = |x: f64| self.augmented(x);
        let face = self.pick_face(rng, faces, kind);
        let px = rng.log_uniform(self.cfg.min_px as f64, self.cfg.max_px as f64 + 1e-3) as f32;
        let mut s = LineStyle::clean(face, px);
        let mono = self.faces[face].class == Class::Mono;

        if rng.chance(p(0.15)) {
            s.x_stretch = rng.uniform(0.88, 1.12) as f32;
        }
        if !mono && rng.chance(p(0.3)) {
            s.tracking = (rng.normal() * 0.03).clamp(-0.04, 0.1) as f32;
        }
        if !mono && rng.chance(p(0.25)) {
            s.word_space = rng.uniform(0.8, 1.8) as f32;
        }
        if rng.chance(p(0.35)) {
            s.angle_deg = (rng.normal() * 0.6).clamp(-2.0, 2.0) as f32;
        }
        if rng.chance(p(0.1)) {
            s.shear = rng.uniform(-0.06, 0.06) as f32;
        }
        // Padding per side (left, top, right, bottom): tight, usual or loose. Vertical padding stays
        // small, as a line finder or layout detector cuts lines: every crop is scaled to one
        // height, and with an em of padding above and below, text shrank to a third of it — under
        // two 14-px patch columns per three characters, too small to read.
        for side in 0..4 {
            let vertical = side % 2 == 1;
            s.pad[side] = match rng.weighted(if vertical { &[0.35, 0.55, 0.1] } else { &[0.25, 0.55, 0.2] }) {
                0 => rng.uniform(0.0, 0.06),
                1 if vertical => rng.uniform(0.06, 0.25),
                1 => rng.uniform(0.08, 0.4),
                _ if vertical => rng.uniform(0.25, 0.5),
                _ => rng.uniform(0.4, 1.2),
            } as f32;
        }
        if a == 0.0 {
            s.pad = [0.25; 4];
        }
        s.line_box = rng.chance(0.5);
        if rng.chance(p(0.08)) {
            // Slightly clipped top and/or bottom (bounded in the renderer).
            if rng.chance(0.6) {
                s.pad[3] = -rng.uniform(0.0, 0.12) as f32;
            }
            if rng.chance(0.6) {
                s.pad[1] = -rng.uniform(0.0, 0.12) as f32;
            }
        }
        s.underline = rng.chance(p(0.04));
        let fragment = |rng: &mut Rng| Fragment {
            text: match script {
                Script::Latin => corpus::sample_text(rng, lines, 80).0,
                Script::Chinese => corpus::chinese_text(rng, lines, 50),
            },
            gap: rng.uniform(0.08, 0.45) as f32,
            reach: rng.uniform(0.0, 0.15) as f32,
            x_offset: rng.uniform(-0.6, 0.4) as f32 * self.cfg.max_chars as f32 * 0.1,
        };
        if rng.chance(p(0.1)) {
            s.fragment_above = Some(fragment(rng));
        }
        if rng.chance(p(0.1)) {
            s.fragment_below = Some(fragment(rng));
        }

        // Colours: mostly dark ink on light paper, sometimes tinted, inverted or faint.
        let colour_w = if a == 0.0 { [1.0, 0.0, 0.0, 0.0] } else { [0.8, 0.11, 0.05, 0.04] };
        let (ink, bg) = match rng.weighted(&colour_w) {
            0 => {
                let paper = rng.uniform(0.86, 1.0);
                let tint = [rng.uniform(-0.025, 0.015), rng.uniform(-0.02, 0.015), rng.uniform(-0.04, 0.01)];
                let bg = tint.map(|t| (paper + t).clamp(0.0, 1.0));
                let ink = if rng.chance(0.85) {
                    let l = rng.uniform(0.0, 0.3);
                    [l, l, l]
                } else {
                    *rng.pick(&[[0.05, 0.1, 0.45], [0.5, 0.05, 0.05], [0.05, 0.3, 0.1], [0.2, 0.2, 0.35]])
                };
                (ink, bg)
            }
            1 => {
                let bg = [rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)];
                let l = rng.uniform(0.0, 0.25);
                ([l, l, l], bg)
            }
            2 => {
                let d = rng.uniform(0.05, 0.4);
                let bg = [d * rng.uniform(0.6, 1.0), d * rng.uniform(0.6, 1.0), d];
                let l = rng.uniform(0.85, 1.0);
                ([l, l, l], bg)
            }
            _ => {
                let l = rng.uniform(0.35, 0.5);
                ([l, l, l], [1.0, 1.0, 1.0])
            }
        };
        s.ink = ink.map(|v| v as f32);
        s.background = bg.map(|v| v as f32);
        if rng.chance(p(0.2)) {
            s.gradient = rng.uniform(-0.12, 0.12) as f32;
        }

        // Degradations.
        if rng.chance(p(0.15)) {
            let min_f = (9.0 / px).min(1.0) as f64;
            s.resample = rng.uniform(min_f.max(0.4), 0.85).min(1.0) as f32;
        }
        if rng.chance(p(0.3)) {
            s.blur_sigma = rng.uniform(0.3, (0.045 * px as f64).clamp(0.4, 1.2)) as f32;
        }
        if rng.chance(p(0.5)) {
            s.noise_sigma = rng.uniform(0.008, 0.05) as f32;
        }
        s.noise_seed = rng.u64();
        if rng.chance(p(0.4)) {
            s.jpeg_quality = Some(rng.int(30, 95) as u8);
        }
        s
    }
}
