//! Tables as a grid of slots, the shape OTSL gives them ("Optimized Table Structure Language",
//! Lysak et al. 2023): every grid position is a cell that starts there, or a continuation of the
//! cell to its left, above, or both. PaddleOCR-VL answers `Table Recognition:` in OTSL
//! ([`Table::from_otsl`]); folio's own cell finder builds the same grid from ruling lines and
//! column gaps (`super::cells`). Either way a table renders as a Markdown pipe table when no cell
//! spans, else as HTML with `rowspan`/`colspan` ([`Table::render`]).

use serde::Serialize;

/// One grid position.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// A cell starts here, with this text (empty for an empty cell); `header` for a column or row
    /// header cell.
    Cell { text: String, header: bool },
    /// Continues the cell to the left (OTSL `<lcel>`).
    Left,
    /// Continues the cell above (`<ucel>`).
    Up,
    /// Continues the cell up and to the left (`<xcel>`).
    Cross,
}

/// A table: rows of slots, every row as long as the longest (short rows are padded with empty
/// cells).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    pub rows: Vec<Vec<Slot>>,
}

/// A cell as HTML wants it: where it starts, its text and its spans.
struct Span<'a> {
    row: usize,
    col: usize,
    text: &'a str,
    header: bool,
    rows: usize,
    cols: usize,
}

impl Table {
    /// A table from rows of slots, padded to a rectangle.
    pub fn new(mut rows: Vec<Vec<Slot>>) -> Self {
        rows.retain(|r| !r.is_empty());
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        for r in &mut rows {
            r.resize(width, Slot::Cell { text: String::new(), header: false });
        }
        Table { rows }
    }

    /// Parses OTSL: cell tags (`<fcel>`, `<ecel>`, `<ched>`, `<rhed>`, `<srow>`, `<lcel>`,
    /// `<ucel>`, `<xcel>`) each before its cell's text, `<nl>` ending a row. Text before the first
    /// tag, unknown tags and `<otsl>`/`<loc_N>` wrappers are left out; a model that stopped
    /// mid-row still gives the rows it finished and the cells of the last.
    pub fn from_otsl(otsl: &str) -> Self {
        let mut rows: Vec<Vec<Slot>> = Vec::new();
        let mut row: Vec<Slot> = Vec::new();
        let mut rest = otsl;
        while !rest.is_empty() {
            let Some((tag, len)) = leading_tag(rest) else {
                // Text up to the next '<' (or a '<' that starts no tag) belongs to the last cell.
                let n = rest[1..].find('<').map_or(rest.len(), |i| i + 1);
                if let Some(Slot::Cell { text, .. }) = row.last_mut() {
                    text.push_str(&rest[..n]);
                }
                rest = &rest[n..];
                continue;
            };
            rest = &rest[len..];
            match tag {
                "fcel" | "ecel" | "srow" => row.push(Slot::Cell { text: String::new(), header: false }),
                "ched" | "rhed" => row.push(Slot::Cell { text: String::new(), header: true }),
                "lcel" => row.push(Slot::Left),
                "ucel" => row.push(Slot::Up),
                "xcel" => row.push(Slot::Cross),
                "nl" => rows.push(std::mem::take(&mut row)),
                _ => {} // <otsl>, </otsl>, <loc_N>
            }
        }
        rows.push(row);
        for r in &mut rows {
            for s in r.iter_mut() {
                if let Slot::Cell { text, .. } = s {
                    *text = text.trim().to_string();
                }
            }
        }
        Table::new(rows)
    }

    /// Whether any cell spans more than one grid position.
    /// The cells' texts row by row, cells apart by two spaces (a text layer's or a search's view).
    pub fn plain_text(&self) -> String {
        let row_text = |row: &Vec<Slot>| {
            let cells = row.iter().filter_map(|s| match s {
                Slot::Cell { text, .. } if !text.trim().is_empty() => Some(text.trim()),
                _ => None,
            });
            cells.collect::<Vec<_>>().join("  ")
        };
        self.rows.iter().map(row_text).collect::<Vec<_>>().join("\n")
    }

    pub fn has_spans(&self) -> bool {
        self.rows.iter().flatten().any(|s| !matches!(s, Slot::Cell { .. }))
    }

    /// Markdown when no cell spans, else HTML.
    pub fn render(&self) -> String {
        if self.has_spans() {
            self.to_html()
        } else {
            self.to_markdown()
        }
    }

    /// A Markdown pipe table; the first row is the header row. Spanned positions are left empty.
    pub fn to_markdown(&self) -> String {
        let Some(width) = self.rows.first().map(Vec::len).filter(|&w| w > 0) else { return String::new() };
        let cell = |s: &Slot| match s {
            Slot::Cell { text, .. } => text.replace('|', "\\|").replace('\n', " "),
            _ => String::new(),
        };
        let line = |r: &Vec<Slot>| format!("| {} |\n", r.iter().map(cell).collect::<Vec<_>>().join(" | "));
        let mut out = line(&self.rows[0]);
        out.push_str(&format!("|{}\n", "---|".repeat(width)));
        for r in &self.rows[1..] {
            out.push_str(&line(r));
        }
        out
    }

    /// An HTML table with `rowspan`/`colspan`; header cells as `<th>`.
    pub fn to_html(&self) -> String {
        let mut out = String::from("<table>\n");
        let spans = self.spans();
        for r in 0..self.rows.len() {
            out.push_str("<tr>");
            for s in spans.iter().filter(|s| s.row == r) {
                let tag = if s.header { "th" } else { "td" };
                out.push('<');
                out.push_str(tag);
                if s.rows > 1 {
                    out.push_str(&format!(" rowspan=\"{}\"", s.rows));
                }
                if s.cols > 1 {
                    out.push_str(&format!(" colspan=\"{}\"", s.cols));
                }
                out.push('>');
                out.push_str(&escape_html(s.text));
                out.push_str(&format!("</{tag}>"));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        out
    }

    /// Each starting cell with its extent: `Left` slots to its right widen it, `Up` slots below
    /// (across its whole width) lengthen it.
    fn spans(&self) -> Vec<Span<'_>> {
        let at = |r: usize, c: usize| self.rows.get(r).and_then(|row| row.get(c));
        let mut out = Vec::new();
        for (r, row) in self.rows.iter().enumerate() {
            for (c, slot) in row.iter().enumerate() {
                let Slot::Cell { text, header } = slot else { continue };
                let cols = 1 + (c + 1..row.len()).take_while(|&k| matches!(row[k], Slot::Left)).count();
                let rows = 1
                    + (r + 1..self.rows.len())
                        .take_while(|&k| {
                            matches!(at(k, c), Some(Slot::Up))
                                && (c + 1..c + cols).all(|j| matches!(at(k, j), Some(Slot::Cross | Slot::Up)))
                        })
                        .count();
                out.push(Span { row: r, col: c, text, header: *header, rows, cols });
            }
        }
        out.sort_by_key(|s| (s.row, s.col));
        out
    }
}

/// The OTSL tag `s` starts with, and its length in bytes; `None` when `s` does not start with one.
fn leading_tag(s: &str) -> Option<(&str, usize)> {
    const TAGS: [&str; 12] =
        ["fcel", "ecel", "ched", "rhed", "srow", "lcel", "ucel", "xcel", "nl", "otsl", "/otsl", "loc_"];
    let body = s.strip_prefix('<')?;
    let close = body.find('>')?;
    let name = &body[..close];
    let known = TAGS
        .iter()
        .any(|t| name == *t || (*t == "loc_" && name.starts_with(t) && name[4..].bytes().all(|b| b.is_ascii_digit())));
    known.then_some((name, close + 2))
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(t: &str) -> Slot {
        Slot::Cell { text: t.into(), header: false }
    }

    /// The simple 2×2 example of the OTSL documentation.
    #[test]
    fn a_plain_table_is_markdown() {
        let t =
            Table::from_otsl("<otsl><loc_150><loc_280><loc_320><loc_360><fcel>A<fcel>B<nl><fcel>C<fcel>D<nl></otsl>");
        assert_eq!(t.rows, vec![vec![cell("A"), cell("B")], vec![cell("C"), cell("D")]]);
        assert_eq!(t.plain_text(), "A  B\nC  D");
        assert_eq!(t.render(), "| A | B |\n|---|---|\n| C | D |\n");
    }

    /// Header cells, an empty cell, a cell spanning two columns and one spanning two rows, as in
    /// the OTSL paper's examples; the HTML gives each cell once with its spans.
    #[test]
    fn spans_become_html() {
        let otsl = "<ched>Name<ched>Score<lcel><nl><fcel>Ann<fcel>1<fcel>2<nl><fcel>Bob<fcel>3<ecel><nl><ucel><fcel>4<fcel>5<nl>";
        let t = Table::from_otsl(otsl);
        assert!(t.has_spans());
        assert_eq!(
            t.render(),
            "<table>\n<tr><th>Name</th><th colspan=\"2\">Score</th></tr>\n<tr><td>Ann</td><td>1</td><td>2</td></tr>\n\
             <tr><td rowspan=\"2\">Bob</td><td>3</td><td></td></tr>\n<tr><td>4</td><td>5</td></tr>\n</table>\n"
        );
    }

    #[test]
    fn a_two_by_two_block_uses_cross_slots() {
        let t = Table::from_otsl("<fcel>big<lcel><fcel>x<nl><ucel><xcel><fcel>y<nl>");
        assert!(t.to_html().contains("<td rowspan=\"2\" colspan=\"2\">big</td>"), "{}", t.to_html());
    }

    #[test]
    fn ragged_and_truncated_output_still_gives_a_table() {
        // A model cut off mid-cell, with a short row and text escaping Markdown and HTML.
        let t = Table::from_otsl("<fcel>a|b<fcel>c<nl><fcel>d<nl><fcel>e<f");
        assert_eq!(t.rows.len(), 3);
        assert!(t.rows.iter().all(|r| r.len() == 2));
        assert_eq!(t.rows[2][0], cell("e<f"));
        assert!(t.to_markdown().starts_with("| a\\|b | c |"));
        let html = Table::from_otsl("<fcel>x<y<lcel><nl>").to_html();
        assert!(html.contains("x&lt;y"), "{html}");
        assert!(Table::from_otsl("no table here").rows.is_empty());
    }
}
