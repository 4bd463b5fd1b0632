//! Table cells from a table's image, for a model that reads lines and not tables.
//!
//! 1. The crop is binarised and its ruling lines found ([`InkMask::erase_rules`], sized by the
//!    typical text-line height of the crop).
//! 2. Rows: horizontal rules cut the table into bands. In a table without vertical rules (open or
//!    "booktabs" tables, whose rules mark only the header) every text line within a band is a row;
//!    in a ruled grid a band is one row, so a cell may hold several lines.
//! 3. Columns: vertical rules where there are any, else gaps of blank columns at least
//!    [`COLUMN_GAP`] line heights wide across the whole table (word spaces are a third of one).
//! 4. Spans, in a ruled grid: two neighbouring positions whose separator has no rule along them are
//!    one cell.
//!
//! Cost: a few passes over the crop, O(width × height).

use image::GrayImage;

use super::lines::otsu_threshold;
use super::rules::{runs, InkMask};

/// Least blank gap between two columns of an unruled table, in text-line heights.
const COLUMN_GAP: f32 = 0.8;
/// A rule must cover this share of a table's width (or height) to separate rows (columns).
const RULE_COVER: f32 = 0.2;
/// A separator with rule along less than this share of a cell's side does not separate there.
const SPAN_COVER: f32 = 0.5;

/// What a grid position is: a cell starting there, or the continuation of one to its left, above,
/// or both (as OTSL's `lcel`, `ucel`, `xcel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridSlot {
    Start,
    Left,
    Up,
    Cross,
}

/// A table's grid: row and column extents in crop pixels, and what each position is.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub rows: Vec<(u32, u32)>,
    pub cols: Vec<(u32, u32)>,
    pub slots: Vec<Vec<GridSlot>>,
    /// The crop's ruling-line pixels, row-major (empty when it has none).
    pub rules: Vec<bool>,
}

impl Grid {
    /// Paints the rules of the crop the grid was found in, and one pixel around them (their
    /// anti-aliased edges), with `paper`, so no cell crop carries a border (the model reads one as
    /// "|" or "i").
    pub fn erase_rules(&self, crop: &mut image::RgbImage, paper: image::Rgb<u8>) {
        let (w, h) = (crop.width() as usize, crop.height() as usize);
        if self.rules.len() != w * h {
            return;
        }
        for (i, _) in self.rules.iter().enumerate().filter(|(_, &r)| r) {
            let (x, y) = (i % w, i / w);
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    crop.put_pixel(xx as u32, yy as u32, paper);
                }
            }
        }
    }

    /// The box (x0, y0, x1, y1) of the cell starting at (`r`, `c`): its own position widened by
    /// the `Left` slots right of it and the `Up` slots below it.
    pub fn cell_box(&self, r: usize, c: usize) -> (u32, u32, u32, u32) {
        let width = 1 + (c + 1..self.cols.len()).take_while(|&k| self.slots[r][k] == GridSlot::Left).count();
        let height = 1 + (r + 1..self.rows.len()).take_while(|&k| self.slots[k][c] == GridSlot::Up).count();
        (self.cols[c].0, self.rows[r].0, self.cols[c + width - 1].1, self.rows[r + height - 1].1)
    }
}

/// The grid of the table in `gray`; `None` when the crop shows no text.
pub fn find_grid(gray: &GrayImage) -> Option<Grid> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    if w < 4 || h < 4 {
        return None;
    }
    let mut ink = InkMask::binarise(gray, otsu_threshold(gray));
    let line_h = text_line_height(&ink)?;
    let rule = ink.erase_rules(line_h * 0.8);
    let is_rule = |x: usize, y: usize| !rule.is_empty() && rule[y * w + x];

    let h_rules = separators((0..h).map(|y| (0..w).filter(|&x| is_rule(x, y)).count()), w, line_h);
    let v_rules = separators((0..w).map(|x| (0..h).filter(|&y| is_rule(x, y)).count()), h, line_h);
    let ruled = !v_rules.is_empty();

    // Text lines: runs of rows with ink once the rules are gone.
    let row_ink: Vec<bool> = (0..h).map(|y| ink.row(y).iter().any(|&i| i)).collect();
    let lines = runs(&row_ink);
    // Rows: bands between horizontal rules; without vertical rules, each text line its own row.
    let mut rows = Vec::new();
    for (a, b) in bands(&h_rules, h) {
        let inside: Vec<(usize, usize)> =
            lines.iter().copied().filter(|&(y0, y1)| (y0 + y1) / 2 >= a && (y0 + y1) / 2 < b).collect();
        if inside.is_empty() {
            continue;
        }
        if ruled || inside.len() == 1 {
            rows.push((a as u32, b as u32));
            continue;
        }
        // Cut halfway between consecutive lines.
        let mut top = a;
        for pair in inside.windows(2) {
            let cut = ((pair[0].1 + pair[1].0) / 2).clamp(top + 1, b - 1);
            rows.push((top as u32, cut as u32));
            top = cut;
        }
        rows.push((top as u32, b as u32));
    }
    // Columns: between vertical rules, else at wide blank gaps.
    let col_ink: Vec<bool> = (0..w).map(|x| (0..h).any(|y| ink.ink(x, y))).collect();
    let cols: Vec<(u32, u32)> = if ruled {
        bands(&v_rules, w)
            .into_iter()
            .filter(|&(a, b)| col_ink[a..b].iter().any(|&i| i))
            .map(|(a, b)| (a as u32, b as u32))
            .collect()
    } else {
        let blank: Vec<bool> = col_ink.iter().map(|&i| !i).collect();
        let cuts: Vec<usize> = runs(&blank)
            .into_iter()
            .filter(|&(a, b)| a > 0 && b < w && (b - a) as f32 >= COLUMN_GAP * line_h)
            .map(|(a, b)| (a + b) / 2)
            .collect();
        bands(&cuts, w).into_iter().map(|(a, b)| (a as u32, b as u32)).collect()
    };
    if rows.is_empty() || cols.is_empty() {
        return None;
    }
    let slots = if ruled { spans(&rows, &cols, is_rule) } else { vec![vec![GridSlot::Start; cols.len()]; rows.len()] };
    Some(Grid { rows, cols, slots, rules: rule })
}

/// The median height of the crop's text lines, leaving out what a table's rules put in the
/// profile: columns inked in most rows (vertical rules) and rows inked across most columns
/// (horizontal rules). `None` when there is no text.
fn text_line_height(ink: &InkMask) -> Option<f32> {
    let (w, h) = (ink.width(), ink.height());
    let rule_col: Vec<bool> = (0..w).map(|x| (0..h).filter(|&y| ink.ink(x, y)).count() * 10 > h * 6).collect();
    let counts: Vec<usize> = (0..h).map(|y| (0..w).filter(|&x| !rule_col[x] && ink.ink(x, y)).count()).collect();
    let text_row: Vec<bool> = counts.iter().map(|&c| c > 0 && c * 10 <= w * 6).collect();
    let mut heights: Vec<usize> = runs(&text_row).into_iter().map(|(a, b)| b - a).filter(|&n| n >= 3).collect();
    if heights.is_empty() {
        return None;
    }
    heights.sort_unstable();
    Some(heights[heights.len() / 2] as f32)
}

/// Positions (centres) of rules along one axis: runs of lines whose rule pixels cover
/// [`RULE_COVER`] of `len`, merged when closer than half a text line.
fn separators(counts: impl Iterator<Item = usize>, len: usize, line_h: f32) -> Vec<usize> {
    let on: Vec<bool> = counts.map(|c| c as f32 >= RULE_COVER * len as f32).collect();
    let mut out: Vec<usize> = Vec::new();
    for (a, b) in runs(&on) {
        let c = (a + b) / 2;
        match out.last_mut() {
            Some(last) if ((c - *last) as f32) < 0.5 * line_h => *last = (*last + c) / 2,
            _ => out.push(c),
        }
    }
    out
}

/// The stretches of `0..len` between consecutive cuts (and the ends), each at least 2 px long.
fn bands(cuts: &[usize], len: usize) -> Vec<(usize, usize)> {
    let mut edges = vec![0];
    edges.extend(cuts.iter().copied().filter(|&c| c > 0 && c < len));
    edges.push(len);
    edges.windows(2).filter(|e| e[1] >= e[0] + 2).map(|e| (e[0], e[1])).collect()
}

/// In a ruled grid: a position joins its left neighbour when the vertical separator between them
/// has rule along less than [`SPAN_COVER`] of the row, and the one above likewise.
fn spans(rows: &[(u32, u32)], cols: &[(u32, u32)], is_rule: impl Fn(usize, usize) -> bool) -> Vec<Vec<GridSlot>> {
    // Rule pixels near boundary `x` (±2 px) on rows y0..y1, as a share of the rows.
    let v_cover = |x: u32, (y0, y1): (u32, u32)| {
        let hit = (y0..y1).filter(|&y| (x.saturating_sub(3)..x + 3).any(|xx| is_rule(xx as usize, y as usize))).count();
        hit as f32 / (y1 - y0).max(1) as f32
    };
    let h_cover = |y: u32, (x0, x1): (u32, u32)| {
        let hit = (x0..x1).filter(|&x| (y.saturating_sub(3)..y + 3).any(|yy| is_rule(x as usize, yy as usize))).count();
        hit as f32 / (x1 - x0).max(1) as f32
    };
    let mut slots = vec![vec![GridSlot::Start; cols.len()]; rows.len()];
    for (r, &row) in rows.iter().enumerate() {
        for (c, &col) in cols.iter().enumerate() {
            let left = c > 0 && v_cover(col.0, row) < SPAN_COVER;
            let up = r > 0 && h_cover(row.0, col) < SPAN_COVER;
            slots[r][c] = match (left, up) {
                (false, false) => GridSlot::Start,
                (true, false) => GridSlot::Left,
                (false, true) => GridSlot::Up,
                (true, true) => GridSlot::Cross,
            };
        }
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    /// A white table image with black "words" (rectangles) and optional rules.
    fn table(
        w: u32,
        h: u32,
        words: &[(u32, u32, u32, u32)],
        h_rules: &[(u32, u32, u32)],
        v_rules: &[(u32, u32, u32)],
    ) -> GrayImage {
        let mut img = GrayImage::from_pixel(w, h, Luma([255]));
        for &(x0, y0, x1, y1) in words {
            for y in y0..y1 {
                for x in x0..x1 {
                    // Letters, not solid bars: every third column blank.
                    if x % 3 != 0 {
                        img.put_pixel(x, y, Luma([0]));
                    }
                }
            }
        }
        for &(y, x0, x1) in h_rules {
            (x0..x1).for_each(|x| img.put_pixel(x, y, Luma([0])));
        }
        for &(x, y0, y1) in v_rules {
            (y0..y1).for_each(|y| img.put_pixel(x, y, Luma([0])));
        }
        img
    }

    /// A booktabs-style table: rules above and below the header only, three columns apart by
    /// wide gaps, words within a cell apart by narrow ones.
    #[test]
    fn an_open_table_gets_rows_from_lines_and_columns_from_gaps() {
        let mut words = Vec::new();
        for row in 0..4u32 {
            let y = 20 + row * 40;
            words.push((10, y, 60, y + 16));
            words.push((66, y, 120, y + 16)); // second word of the first cell: 6 px gap
            words.push((200, y, 260, y + 16));
            words.push((340, y, 400, y + 16));
        }
        let img = table(420, 180, &words, &[(8, 0, 420), (50, 0, 420), (175, 0, 420)], &[]);
        let grid = find_grid(&img).expect("a grid");
        assert_eq!(grid.cols.len(), 3, "{grid:?}");
        assert_eq!(grid.rows.len(), 4, "{grid:?}");
        assert!(grid.slots.iter().flatten().all(|&s| s == GridSlot::Start));
        // The first column holds both words of its cells.
        assert!(grid.cols[0].0 <= 10 && grid.cols[0].1 >= 120, "{grid:?}");
    }

    /// A ruled grid whose header cell spans two columns.
    #[test]
    fn a_ruled_grid_finds_its_spans() {
        let (w, h) = (400, 130);
        let words = [
            (20, 15, 140, 31),
            (220, 15, 330, 31),
            (20, 55, 80, 71),
            (150, 55, 200, 71),
            (280, 55, 330, 71),
            (20, 95, 80, 111),
            (150, 95, 200, 111),
            (280, 95, 330, 111),
        ];
        let h_rules = [(2, 0, w), (42, 0, w), (84, 0, w), (126, 0, w)];
        // The rule between the first two columns stops under the header.
        let v_rules = [(1, 0, h), (130, 42, h), (260, 0, h), (398, 0, h)];
        let img = table(w, h, &words, &h_rules, &v_rules);
        let grid = find_grid(&img).expect("a grid");
        assert_eq!((grid.rows.len(), grid.cols.len()), (3, 3), "{grid:?}");
        assert_eq!(grid.slots[0], vec![GridSlot::Start, GridSlot::Left, GridSlot::Start]);
        assert!(grid.slots[1..].iter().flatten().all(|&s| s == GridSlot::Start));
        let (x0, _, x1, _) = grid.cell_box(0, 0);
        assert!(x0 <= 20 && x1 >= 250, "{:?}", grid.cell_box(0, 0));
    }

    #[test]
    fn a_blank_crop_has_no_grid() {
        assert!(find_grid(&GrayImage::from_pixel(100, 50, Luma([250]))).is_none());
    }
}
