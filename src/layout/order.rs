//! Reading order of a page's regions: duplicates settled, then recursive XY-cut with columns first,
//! then captions moved next to what they caption.
//!
//! XY-cut (Nagy & Seth 1984) splits a set of boxes at a gap that no box crosses, recursively. Here a
//! vertical gap (between columns) is preferred to a horizontal one: two columns whose paragraphs
//! happen to end at the same height must still be read column by column, and a title or figure
//! spanning both columns blocks the vertical cut, so it is cut off above or below first. A set
//! with no gap at all is read top to bottom, then left to right. Nested or heavily overlapping text
//! boxes are merged first, so no line is read twice. Cost: O(n³) at worst for n regions (tens).

use super::region::{BBox, Region, RegionClass};

/// Boxes overlapping more than this (IoU) are one region: the higher score is kept.
const DUPLICATE_IOU: f32 = 0.6;
/// Text regions overlapping by more than this share of the smaller one's area are one region.
const TEXT_OVERLAP: f32 = 0.3;
/// A text region this much inside a table, figure or formula belongs to it.
const INSIDE: f32 = 0.8;
/// How far boxes may reach into a gap and still leave it open, as a fraction of the page side
/// (detector boxes of neighbouring columns often touch).
const GAP_TOLERANCE: f32 = 0.004;

/// A region in reading order.
#[derive(Clone, Debug, PartialEq)]
pub struct Ordered {
    pub region: Region,
    /// For a caption: the index (in the same order) of the table, figure or chart it captions.
    pub caption_of: Option<usize>,
}

/// Cleans `regions` (duplicates, text inside tables and figures, empty boxes) and puts them in
/// reading order on a `w`×`h` page.
pub fn reading_order(regions: Vec<Region>, w: u32, h: u32) -> Vec<Ordered> {
    let regions = deduplicate(regions, w, h);
    let tol = (GAP_TOLERANCE * w.max(h) as f32).max(1.0);
    // Headers, footers and page numbers stand outside the columns: those in the top half of the
    // page come first, the others last, each set top to bottom and left to right.
    let by_position = |a: &usize, b: &usize| {
        let (ba, bb) = (regions[*a].bbox, regions[*b].bbox);
        ba.y0.total_cmp(&bb.y0).then(ba.x0.total_cmp(&bb.x0))
    };
    let furniture = |top: bool| {
        let mut v: Vec<usize> = (0..regions.len())
            .filter(|&i| regions[i].class.is_furniture() && (regions[i].bbox.center().1 < 0.5 * h as f32) == top)
            .collect();
        v.sort_by(by_position);
        v
    };
    let body: Vec<usize> = (0..regions.len()).filter(|&i| !regions[i].class.is_furniture()).collect();
    let mut order = furniture(true);
    xy_cut(body, &regions, tol, &mut order);
    order.extend(furniture(false));
    attach_captions(order.into_iter().map(|i| regions[i].clone()).collect())
}

fn deduplicate(mut regions: Vec<Region>, w: u32, h: u32) -> Vec<Region> {
    for r in &mut regions {
        r.bbox = r.bbox.clip(w, h);
    }
    regions.retain(|r| r.bbox.width() >= 1.0 && r.bbox.height() >= 1.0);
    regions.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Region> = Vec::with_capacity(regions.len());
    for r in regions {
        let duplicate = kept.iter().any(|k| k.bbox.iou(&r.bbox) > DUPLICATE_IOU);
        let swallowed = !r.class.is_picture()
            && !matches!(r.class, RegionClass::Table | RegionClass::Formula | RegionClass::Chart)
            && kept.iter().any(|k| {
                matches!(k.class, RegionClass::Table | RegionClass::Figure | RegionClass::Chart | RegionClass::Formula)
                    && k.bbox.intersection(&r.bbox) > INSIDE * r.bbox.area()
            });
        if !duplicate && !swallowed {
            kept.push(r);
        }
    }
    merge_overlapping_text(kept)
}

/// Whether a region is read as running text (so two of them may merge).
fn is_running_text(class: RegionClass) -> bool {
    !class.is_picture()
        && !class.is_furniture()
        && !matches!(class, RegionClass::Table | RegionClass::Formula | RegionClass::Chart)
}

/// Text regions that overlap by more than [`TEXT_OVERLAP`] of the smaller one become one region
/// (the union, as the larger's class): detectors sometimes nest a paragraph's box in a block's,
/// and reading both would repeat the text.
fn merge_overlapping_text(mut regions: Vec<Region>) -> Vec<Region> {
    loop {
        let pair = (0..regions.len()).flat_map(|i| (i + 1..regions.len()).map(move |j| (i, j))).find(|&(i, j)| {
            let (a, b) = (&regions[i], &regions[j]);
            is_running_text(a.class)
                && is_running_text(b.class)
                && a.bbox.intersection(&b.bbox) > TEXT_OVERLAP * a.bbox.area().min(b.bbox.area())
        });
        let Some((i, j)) = pair else { return regions };
        let (keep, drop) = if regions[i].bbox.area() >= regions[j].bbox.area() { (i, j) } else { (j, i) };
        let small = regions[drop].bbox;
        let target = &mut regions[keep];
        target.bbox = target.bbox.union(&small);
        let score = regions[drop].score;
        regions[keep].score = regions[keep].score.max(score);
        regions.remove(drop);
    }
}

/// Appends `set` to `out` in reading order.
fn xy_cut(set: Vec<usize>, regions: &[Region], tol: f32, out: &mut Vec<usize>) {
    if set.len() <= 1 {
        out.extend(set);
        return;
    }
    let boxes: Vec<BBox> = set.iter().map(|&i| regions[i].bbox).collect();
    for vertical in [true, false] {
        let spans: Vec<(f32, f32)> = boxes.iter().map(|b| if vertical { (b.x0, b.x1) } else { (b.y0, b.y1) }).collect();
        let mut groups = split_at_gaps(&spans, tol);
        if !vertical {
            groups = keep_columns_together(groups, &boxes, tol);
        }
        if groups.len() > 1 {
            for group in groups {
                xy_cut(group.into_iter().map(|k| set[k]).collect(), regions, tol, out);
            }
            return;
        }
    }
    // No gap: top to bottom, then left to right.
    let mut rest = set;
    rest.sort_by(|&a, &b| {
        let (ba, bb) = (regions[a].bbox, regions[b].bbox);
        ba.y0.total_cmp(&bb.y0).then(ba.x0.total_cmp(&bb.x0))
    });
    out.extend(rest);
}

/// Joins consecutive horizontal bands that share their columns: two bands of a two-column body
/// whose paragraphs happen to end at the same height are one band, to be cut into columns. Bands
/// join while their union still has a vertical gap; a full-width title or figure has none.
fn keep_columns_together(bands: Vec<Vec<usize>>, boxes: &[BBox], tol: f32) -> Vec<Vec<usize>> {
    let columns = |set: &[usize]| {
        let spans: Vec<(f32, f32)> = set.iter().map(|&k| (boxes[k].x0, boxes[k].x1)).collect();
        split_at_gaps(&spans, tol).len()
    };
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(bands.len());
    for band in bands {
        if let Some(last) = out.last_mut() {
            let union: Vec<usize> = last.iter().chain(&band).copied().collect();
            let most = columns(last).max(columns(&band));
            if most > 1 && columns(&union) == most {
                *last = union;
                continue;
            }
        }
        out.push(band);
    }
    out
}

/// Groups of `spans` (indices) separated by gaps no span crosses (spans shrunk by `tol` at both
/// ends), in increasing position.
fn split_at_gaps(spans: &[(f32, f32)], tol: f32) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..spans.len()).collect();
    idx.sort_by(|&a, &b| spans[a].0.total_cmp(&spans[b].0));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut reach = f32::MIN;
    for i in idx {
        let (lo, hi) = spans[i];
        let (lo, hi) = if hi - lo > 2.0 * tol { (lo + tol, hi - tol) } else { (lo, hi) };
        match groups.last_mut() {
            Some(g) if lo < reach => g.push(i),
            _ => groups.push(vec![i]),
        }
        reach = reach.max(hi);
    }
    groups
}

/// Moves each caption next to the nearest region it can caption (above it when the caption is
/// above, else below), and records the link.
fn attach_captions(regions: Vec<Region>) -> Vec<Ordered> {
    let owner_of = |c: &Region| -> Option<usize> {
        let want = c.class.caption_of()?;
        regions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.class == want || (want == RegionClass::Figure && r.class == RegionClass::Chart))
            .map(|(i, r)| (i, gap(&c.bbox, &r.bbox)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    };
    let owners: Vec<Option<usize>> = regions.iter().map(owner_of).collect();
    // Order the non-captions, then slot each caption before or after its owner.
    let mut order: Vec<usize> = (0..regions.len()).filter(|&i| owners[i].is_none()).collect();
    for (c, owner) in owners.iter().enumerate() {
        let Some(owner) = *owner else { continue };
        let Some(at) = order.iter().position(|&i| i == owner) else { continue };
        let above = regions[c].bbox.center().1 < regions[owner].bbox.center().1;
        // After the owner and any captions already placed below it.
        let mut pos = if above { at } else { at + 1 };
        while !above && pos < order.len() && owners[order[pos]] == Some(owner) {
            pos += 1;
        }
        order.insert(pos, c);
    }
    let position: Vec<usize> = {
        let mut p = vec![0; regions.len()];
        for (k, &i) in order.iter().enumerate() {
            p[i] = k;
        }
        p
    };
    order.iter().map(|&i| Ordered { region: regions[i].clone(), caption_of: owners[i].map(|o| position[o]) }).collect()
}

/// Distance between two boxes (0 when they touch or overlap), vertical gaps weighing as much as
/// horizontal ones.
fn gap(a: &BBox, b: &BBox) -> f32 {
    let dx = (a.x0 - b.x1).max(b.x0 - a.x1).max(0.0);
    let dy = (a.y0 - b.y1).max(b.y0 - a.y1).max(0.0);
    dx.hypot(dy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(class: RegionClass, x0: f32, y0: f32, x1: f32, y1: f32) -> Region {
        Region { class, label: format!("{class:?}"), bbox: BBox::new(x0, y0, x1, y1), score: 0.9 }
    }

    fn names(order: &[Ordered]) -> Vec<String> {
        order.iter().map(|o| format!("{:?}@{}", o.region.class, o.region.bbox.y0 as u32)).collect()
    }

    /// A title across two columns whose paragraphs end at the same heights: read the title, then
    /// the left column, then the right, then the footer.
    #[test]
    fn columns_are_read_one_after_the_other() {
        use RegionClass::*;
        let regions = vec![
            region(Text, 620.0, 200.0, 1150.0, 400.0),
            region(Text, 50.0, 420.0, 580.0, 700.0),
            region(Footer, 50.0, 1550.0, 1150.0, 1580.0),
            region(Title, 50.0, 80.0, 1150.0, 150.0),
            region(Text, 50.0, 200.0, 580.0, 400.0),
            region(Text, 620.0, 420.0, 1150.0, 700.0),
        ];
        let order = reading_order(regions, 1200, 1600);
        let xs: Vec<(RegionClass, u32, u32)> =
            order.iter().map(|o| (o.region.class, o.region.bbox.x0 as u32, o.region.bbox.y0 as u32)).collect();
        assert_eq!(
            xs,
            [(Title, 50, 80), (Text, 50, 200), (Text, 50, 420), (Text, 620, 200), (Text, 620, 420), (Footer, 50, 1550)]
        );
    }

    /// A full-width figure between two-column sections cuts the page into bands.
    #[test]
    fn a_full_width_figure_separates_two_column_bands() {
        use RegionClass::*;
        let regions = vec![
            region(Text, 50.0, 100.0, 580.0, 400.0),
            region(Text, 620.0, 100.0, 1150.0, 400.0),
            region(Figure, 50.0, 450.0, 1150.0, 800.0),
            region(FigureCaption, 50.0, 810.0, 1150.0, 850.0),
            region(Text, 50.0, 900.0, 580.0, 1400.0),
            region(Text, 620.0, 900.0, 1150.0, 1400.0),
        ];
        let order = reading_order(regions, 1200, 1600);
        assert_eq!(names(&order), ["Text@100", "Text@100", "Figure@450", "FigureCaption@810", "Text@900", "Text@900"]);
        assert_eq!(order[0].region.bbox.x0, 50.0);
        assert_eq!(order[3].caption_of, Some(2));
    }

    /// A table caption above its table stays right above it and links to it.
    #[test]
    fn captions_stay_with_their_table() {
        use RegionClass::*;
        let regions = vec![
            region(Text, 50.0, 100.0, 580.0, 1400.0),
            region(TableCaption, 620.0, 100.0, 1150.0, 130.0),
            region(Table, 620.0, 140.0, 1150.0, 600.0),
            region(Text, 620.0, 650.0, 1150.0, 1400.0),
        ];
        let order = reading_order(regions, 1200, 1600);
        assert_eq!(names(&order), ["Text@100", "TableCaption@100", "Table@140", "Text@650"]);
        assert_eq!(order[1].caption_of, Some(2));
        assert_eq!(order[2].caption_of, None);
        // A caption the cut reads apart from its figure (a side caption, left of a figure that
        // sits below the text beside it) is moved after the figure.
        let regions = vec![
            region(FigureCaption, 50.0, 700.0, 300.0, 760.0),
            region(Text, 350.0, 100.0, 1150.0, 500.0),
            region(Figure, 350.0, 550.0, 1150.0, 900.0),
        ];
        let order = reading_order(regions, 1200, 1600);
        assert_eq!(names(&order), ["Text@100", "Figure@550", "FigureCaption@700"]);
        assert_eq!(order[2].caption_of, Some(1));
    }

    #[test]
    fn nested_text_boxes_become_one() {
        use RegionClass::*;
        let regions = vec![
            region(Text, 100.0, 100.0, 900.0, 800.0),
            region(Text, 110.0, 110.0, 890.0, 300.0),
            region(Text, 100.0, 900.0, 900.0, 1000.0),
        ];
        let order = reading_order(regions, 1000, 1200);
        assert_eq!(names(&order), ["Text@100", "Text@900"]);
        assert_eq!(order[0].region.bbox, BBox::new(100.0, 100.0, 900.0, 800.0));
    }

    #[test]
    fn duplicates_and_text_inside_tables_are_dropped() {
        use RegionClass::*;
        let mut title = region(Title, 50.0, 50.0, 500.0, 90.0);
        title.score = 0.6;
        let regions = vec![
            region(Text, 50.0, 50.0, 500.0, 92.0),
            title,
            region(Table, 50.0, 200.0, 900.0, 600.0),
            region(Text, 100.0, 250.0, 300.0, 300.0),
            region(Text, 0.0, 0.0, 0.5, 10.0),
        ];
        let order = reading_order(regions, 1000, 1000);
        assert_eq!(names(&order), ["Text@50", "Table@200"]);
    }
}
