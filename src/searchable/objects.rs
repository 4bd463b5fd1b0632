//! PDF objects written to a byte stream: object numbers, the offset of each, and the
//! cross-reference section that ends a file or an incremental update (ISO 32000-1 §7.5.4–7.5.8).
//!
//! Objects are written as they come and forgotten; only their offsets are kept (16 bytes each), so
//! a 2,000-page document never sits in memory.

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::write::ZlibEncoder;
use flate2::Compression;

/// Writes numbered objects and remembers where each one starts.
pub struct ObjectWriter<W: Write> {
    out: W,
    /// Bytes written so far, counting what came before this writer (an original file).
    pos: u64,
    /// Object number → (generation, byte offset).
    offsets: BTreeMap<u32, (u16, u64)>,
    next_id: u32,
    /// Whether this writes a whole file (its table then starts with the free object 0).
    whole_file: bool,
}

/// How the cross-reference section is written: a classic table or (PDF 1.5) a stream. An update
/// uses the kind of the file it updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XrefKind {
    Table,
    Stream,
}

impl<W: Write> ObjectWriter<W> {
    /// A new file: writes the header; objects are numbered from 1.
    pub fn new_file(out: W) -> io::Result<Self> {
        let mut w = ObjectWriter { out, pos: 0, offsets: BTreeMap::new(), next_id: 1, whole_file: true };
        // The second line's bytes above 127 mark the file as binary for transfer tools.
        w.raw(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")?;
        Ok(w)
    }

    /// An update appended to a file of `len` bytes whose objects are numbered below `next_id`.
    pub fn update(out: W, len: u64, next_id: u32) -> Self {
        ObjectWriter { out, pos: len, offsets: BTreeMap::new(), next_id: next_id.max(1), whole_file: false }
    }

    /// A fresh object number.
    pub fn reserve(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id - 1
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn begin(&mut self, id: u32, generation: u16) -> io::Result<()> {
        self.offsets.insert(id, (generation, self.pos));
        self.raw(format!("{id} {generation} obj\n").as_bytes())
    }

    /// Object `id` (generation `generation`: an update re-issues an object under its own number)
    /// with `body`, an object's serialised value.
    pub fn object(&mut self, id: u32, generation: u16, body: &[u8]) -> io::Result<()> {
        self.begin(id, generation)?;
        self.raw(body)?;
        self.raw(b"\nendobj\n")
    }

    /// Stream object `id`: `entries` are its dictionary's entries besides `/Length` (`"/Subtype
    /// /Image …"`), `data` its bytes as stored.
    pub fn stream(&mut self, id: u32, entries: &str, data: &[u8]) -> io::Result<()> {
        self.begin(id, 0)?;
        self.raw(format!("<< {entries} /Length {} >>\nstream\n", data.len()).as_bytes())?;
        self.raw(data)?;
        self.raw(b"\nendstream\nendobj\n")
    }

    /// Stream object `id` holding `data` deflated.
    pub fn flate_stream(&mut self, id: u32, entries: &str, data: &[u8]) -> io::Result<()> {
        let deflated = deflate(data)?;
        self.stream(id, &format!("{entries} /Filter /FlateDecode"), &deflated)
    }

    /// Ends the file or update: its cross-reference section and trailer. `trailer` holds the
    /// trailer's entries besides `/Size` (`"/Root 1 0 R"`, and `/Prev` for an update). Returns the
    /// output.
    pub fn finish(mut self, kind: XrefKind, trailer: &[u8]) -> io::Result<W> {
        match kind {
            XrefKind::Table => self.finish_table(trailer)?,
            XrefKind::Stream => self.finish_stream(trailer)?,
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// Runs of consecutive object numbers, as `(first, count)`.
    fn runs(&self) -> Vec<(u32, u32)> {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        if self.whole_file {
            runs.push((0, 1));
        }
        for &id in self.offsets.keys() {
            match runs.last_mut() {
                Some((first, count)) if *first + *count == id => *count += 1,
                _ => runs.push((id, 1)),
            }
        }
        runs
    }

    fn finish_table(&mut self, trailer: &[u8]) -> io::Result<()> {
        let start = self.pos;
        let mut table = String::from("xref\n");
        for (first, count) in self.runs() {
            table.push_str(&format!("{first} {count}\n"));
            for id in first..first + count {
                match self.offsets.get(&id) {
                    Some((generation, offset)) => table.push_str(&format!("{offset:010} {generation:05} n \n")),
                    None => table.push_str("0000000000 65535 f \n"),
                }
            }
        }
        table.push_str(&format!("trailer\n<< /Size {} ", self.next_id));
        self.raw(table.as_bytes())?;
        self.raw(trailer)?;
        self.raw(format!(" >>\nstartxref\n{start}\n%%EOF\n").as_bytes())
    }

    fn finish_stream(&mut self, trailer: &[u8]) -> io::Result<()> {
        let id = self.reserve();
        // The stream lists itself: its offset is where it is about to start.
        self.offsets.insert(id, (0, self.pos));
        let runs = self.runs();
        let mut rows = Vec::with_capacity(11 * self.offsets.len() + 11);
        for &(first, count) in &runs {
            for n in first..first + count {
                match self.offsets.get(&n) {
                    Some((generation, offset)) => {
                        rows.push(1);
                        rows.extend_from_slice(&offset.to_be_bytes());
                        rows.extend_from_slice(&generation.to_be_bytes());
                    }
                    None => rows.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
                }
            }
        }
        let index: Vec<String> = runs.iter().map(|(first, count)| format!("{first} {count}")).collect();
        let start = self.pos;
        let mut entries =
            format!("/Type /XRef /Size {} /Index [{}] /W [1 8 2] ", self.next_id, index.join(" ")).into_bytes();
        entries.extend_from_slice(trailer);
        let deflated = deflate(&rows)?;
        self.begin(id, 0)?;
        self.raw(b"<< ")?;
        self.raw(&entries)?;
        self.raw(format!(" /Filter /FlateDecode /Length {} >>\nstream\n", deflated.len()).as_bytes())?;
        self.raw(&deflated)?;
        self.raw(b"\nendstream\nendobj\n")?;
        self.raw(format!("startxref\n{start}\n%%EOF\n").as_bytes())
    }
}

/// `data` deflated (zlib, as `/FlateDecode` reads it).
pub fn deflate(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut z = ZlibEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::default());
    z.write_all(data)?;
    z.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One character per byte (the header's binary marker as `?`), so offsets index the text.
    fn text(bytes: &[u8]) -> String {
        bytes.iter().map(|&b| if b.is_ascii() { b as char } else { '?' }).collect()
    }

    #[test]
    fn a_table_lists_every_object_at_its_offset() -> io::Result<()> {
        let mut w = ObjectWriter::new_file(Vec::new())?;
        let (a, b) = (w.reserve(), w.reserve());
        w.object(b, 0, b"<< /Type /Pages /Kids [] /Count 0 >>")?;
        w.object(a, 0, b"<< /Type /Catalog /Pages 2 0 R >>")?;
        let out = w.finish(XrefKind::Table, b"/Root 1 0 R")?;
        let s = text(&out);
        let start: usize =
            s.rsplit("startxref\n").next().and_then(|t| t.lines().next()).unwrap_or("").parse().unwrap_or(0);
        assert!(s[start..].starts_with("xref\n0 3\n0000000000 65535 f \n"), "{}", &s[start..]);
        for (id, line) in [(1, 3), (2, 4)] {
            let entry = s[start..].lines().nth(line).unwrap_or("");
            let offset: usize = entry[..10].parse().unwrap_or(0);
            assert!(s[offset..].starts_with(&format!("{id} 0 obj")), "object {id} at {offset}");
        }
        assert!(s.contains("trailer\n<< /Size 3 /Root 1 0 R >>"));
        Ok(())
    }

    #[test]
    fn an_update_numbers_after_the_original_and_runs_skip_gaps() -> io::Result<()> {
        let original = b"%PDF-1.4\n...".to_vec();
        let len = original.len() as u64;
        let mut w = ObjectWriter::update(original, len, 10);
        let font = w.reserve();
        assert_eq!(font, 10);
        w.object(font, 0, b"<< >>")?;
        w.object(4, 2, b"<< /Type /Page >>")?;
        let out = w.finish(XrefKind::Table, b"/Root 1 0 R /Prev 9")?;
        let s = text(&out);
        assert!(s.contains("xref\n4 1\n"), "{s}");
        assert!(s.contains(" 00002 n \n10 1\n"), "{s}");
        assert!(s.contains("/Size 11 /Root 1 0 R /Prev 9"));
        Ok(())
    }

    #[test]
    fn an_xref_stream_lists_itself() -> io::Result<()> {
        let mut w = ObjectWriter::update(Vec::new(), 100, 5);
        w.object(3, 0, b"<< >>")?;
        let out = w.finish(XrefKind::Stream, b"/Root 1 0 R /Prev 50")?;
        let s = text(&out);
        assert!(s.contains("/Type /XRef /Size 6 /Index [3 1 5 1] /W [1 8 2]"), "{s}");
        assert!(s.contains("5 0 obj"));
        Ok(())
    }
}
