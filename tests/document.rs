//! `folio parse` on a whole document with layout, on the embedded model: the bundled two-column
//! sample (tools/fixtures/make_sample.py) comes out in reading order, its ruled table as a
//! Markdown table with the right cells, its figure saved and linked, its header and page number in
//! the JSON and not in the Markdown. Needs libpdfium, ONNX Runtime and the layout model
//! (scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use folio::pipeline::metrics::{levenshtein, normalize_whitespace};

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pages/sample-two-columns.pdf")
}

/// Parses the sample into a fresh directory; returns it with the Markdown and the JSON.
fn parse_sample(name: &str) -> Result<(PathBuf, String, serde_json::Value)> {
    let out = std::env::temp_dir().join(format!("folio-document-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("parse")
        .arg(sample())
        .args(["--format", "md,json", "--out"])
        .arg(&out)
        .env_remove("FOLIO_MODEL")
        .output()?;
    ensure!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let md = std::fs::read_to_string(out.join("sample-two-columns.md"))?;
    let json = serde_json::from_str(&std::fs::read_to_string(out.join("sample-two-columns.json"))?)?;
    Ok((out, md, json))
}

#[test]
fn the_two_column_sample_parses_into_a_structured_document() -> Result<()> {
    let (out, md, json) = parse_sample("sample")?;
    eprintln!("{md}");

    // Reading order: the title, then the left column, then the right one.
    let at = |needle: &str| md.find(needle).with_context(|| format!("{needle:?} missing from:\n{md}"));
    let order = [
        at("Reading Documents with Layout")?,
        at("Why layout matters")?,
        at("Regions and their order")?,
        at("to the table or figure it describes")?,
        at("Tables")?,
        at("Table 1.")?,
        at("| Pages |")?,
        at("so that")?,
    ];
    ensure!(order.windows(2).all(|w| w[0] < w[1]), "out of order {order:?}:\n{md}");
    ensure!(md.starts_with("# ") || md.starts_with("## "), "the title is a heading:\n{md}");

    // The table: a header row and three rows of three cells, the numbers exact.
    let rows: Vec<Vec<String>> = md
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect();
    ensure!(rows.len() == 4 && rows.iter().all(|r| r.len() == 3), "{rows:?}");
    let numbers: Vec<&[String]> = rows[1..].iter().map(|r| &r[1..]).collect();
    ensure!(numbers == [["120", "4"], ["96", "6"], ["3", "30"]], "{rows:?}");
    ensure!(levenshtein(&rows[0].join(" "), "Engine Pages Minutes") <= 2, "{rows:?}");

    // The figure: saved and linked; the header and the page number: only in the JSON.
    let link = md.lines().find(|l| l.starts_with("![figure](")).context("no figure link")?;
    let file = link.trim_start_matches("![figure](").trim_end_matches(')');
    ensure!(image::open(out.join(file)).is_ok(), "{file} is not a readable image");
    ensure!(!md.contains("Layout and reading order") && !md.contains("sample document"), "header in the Markdown");
    let regions = json["pages"][0]["regions"].as_array().context("regions")?;
    let class_of = |text: &str| {
        regions.iter().find(|r| r["text"].as_str().is_some_and(|t| t.contains(text))).map(|r| r["class"].clone())
    };
    ensure!(class_of("reading order") == Some("header".into()), "{regions:?}");
    ensure!(regions.iter().any(|r| r["class"] == "footer" || r["class"] == "page_number"), "{regions:?}");
    let table = regions.iter().find(|r| r["class"] == "table").context("a table region")?;
    ensure!(table["read_as"] == "cells" && table["table"]["rows"].as_array().map(Vec::len) == Some(4));

    // And the words: close to the sample's own text in reading order.
    let plain: String = md
        .lines()
        .filter(|l| !l.starts_with("![") && !l.starts_with("|---"))
        .map(|l| l.trim_start_matches('#').replace(" | ", " ").trim_matches(|c| c == '|' || c == ' ').to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let truth = std::fs::read_to_string(sample().with_extension("txt"))?;
    let (h, r) = (normalize_whitespace(&plain), normalize_whitespace(&truth));
    let cer = levenshtein(&r, &h) as f64 / r.chars().count() as f64;
    ensure!(cer < 0.03, "CER {cer:.4} in reading order:\n{h}\n---\n{r}");
    std::fs::remove_dir_all(&out)?;
    Ok(())
}
