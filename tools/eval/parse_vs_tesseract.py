#!/usr/bin/env python3
"""Real PDF pages through `folio parse` (layout included) and tesseract, side by side.

    tools/eval/parse_vs_tesseract.py PAGES.tsv --out DIR [--folio target/release/folio] [--dpi 150]

PAGES.tsv has a header row and the columns `id`, `kind`, `pdf`, `page` (1-based) and optionally
`truth` (a UTF-8 text file in reading order; default: `pdftotext -f N -l N PDF -`, which gives a
born-digital page's text layer in reading order, columns one after the other). A kind of
`chinese` scores without whitespace and runs tesseract with `chi_sim+eng`, others `eng`.

Each page is rendered once (pdftoppm -r DPI) and both engines read the same PNGs:
- folio: one `folio parse DIR --format md,json` run over all pages (model and layout model load
  included in the time, as a user pays it);
- tesseract: `OMP_THREAD_LIMIT=1 tesseract PAGE - -l LANG`, one process per core.
Scores come from `folio eval cer --json` on whitespace-normalised text: CER in reading order and an
order-free word F1. folio's Markdown markup (headings' `#`, table pipes and rules, image links,
`$$`) is stripped first; headers and footers are not in its Markdown, so they are taken out of
neither side (the text layer has them: they count as folio's misses).

Writes DIR/results.tsv (per page and in total) and prints a Markdown table.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def strip_markdown(md):
    out = []
    for line in md.splitlines():
        s = line.strip()
        if s.startswith("<!-- page") or s.startswith("![") or re.fullmatch(r"\|?(-+\|)+-*", s) or s == "$$":
            continue
        s = re.sub(r"^#+\s*", "", s)
        if s.startswith("|"):
            s = " ".join(c.strip() for c in s.strip("|").split(" | "))
        s = re.sub(r"</?(table|tr|td|th)[^>]*>", " ", s)
        out.append(s)
    return "\n".join(out)


def score(folio, truth, hyp, chinese):
    args = [folio, "eval", "cer", "--json", "--reference", truth, "--hypothesis", hyp]
    if chinese:
        args.append("--no-whitespace")
    return json.loads(run(args).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages")
    ap.add_argument("--out", required=True)
    ap.add_argument("--folio", default="target/release/folio")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="tesseract processes")
    ap.add_argument("--folio-args", default="", help="extra arguments for folio parse")
    a = ap.parse_args()

    os.makedirs(os.path.join(a.out, "png"), exist_ok=True)
    with open(a.pages) as f:
        pages = list(csv.DictReader(f, delimiter="\t"))
    for p in pages:
        png = os.path.join(a.out, "png", p["id"])
        if not os.path.exists(png + ".png"):
            run(["pdftoppm", "-r", str(a.dpi), "-f", p["page"], "-l", p["page"], "-png", "-singlefile", p["pdf"], png])
        truth = p.get("truth") or os.path.join(a.out, p["id"] + ".truth.txt")
        if not p.get("truth"):
            with open(truth, "wb") as f:
                f.write(run(["pdftotext", "-f", p["page"], "-l", p["page"], p["pdf"], "-"]).stdout)
        p["truth"] = truth

    t0 = time.time()
    md_dir = os.path.join(a.out, "folio")
    run([a.folio, "parse", os.path.join(a.out, "png"), "--format", "md,json", "--overwrite", "--out", md_dir]
        + a.folio_args.split())
    folio_secs = time.time() - t0

    def tess(p):
        lang = "chi_sim+eng" if p["kind"] == "chinese" else "eng"
        env = dict(os.environ, OMP_THREAD_LIMIT="1")
        out = run(["tesseract", os.path.join(a.out, "png", p["id"] + ".png"), "-", "-l", lang], env=env).stdout
        with open(os.path.join(a.out, p["id"] + ".tess.txt"), "wb") as f:
            f.write(out)

    t0 = time.time()
    with ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(tess, pages))
    tess_secs = time.time() - t0

    rows = []
    for p in pages:
        with open(os.path.join(md_dir, p["id"] + ".md")) as f:
            text = strip_markdown(f.read())
        hyp = os.path.join(a.out, p["id"] + ".folio.txt")
        with open(hyp, "w") as f:
            f.write(text)
        chinese = p["kind"] == "chinese"
        fo = score(a.folio, p["truth"], hyp, chinese)
        te = score(a.folio, p["truth"], os.path.join(a.out, p["id"] + ".tess.txt"), chinese)
        rows.append((p, fo, te))

    def total(i):
        edits = sum(r[i]["edits"] for r in rows)
        chars = sum(r[i]["chars"] for r in rows)
        return edits / max(chars, 1), sum(r[i]["word_f1"] for r in rows) / len(rows), edits, chars

    with open(os.path.join(a.out, "results.tsv"), "w") as f:
        f.write("id\tkind\tchars\tfolio_cer\ttess_cer\tfolio_word_f1\ttess_word_f1\n")
        for p, fo, te in rows:
            f.write(f"{p['id']}\t{p['kind']}\t{fo['chars']}\t{fo['cer']:.4f}\t{te['cer']:.4f}\t{fo['word_f1']:.4f}\t{te['word_f1']:.4f}\n")
    print("| page | kind | chars | folio CER | tesseract CER | folio word F1 | tesseract word F1 |")
    print("|---|---|---|---|---|---|---|")
    for p, fo, te in rows:
        print(f"| {p['id']} | {p['kind']} | {fo['chars']} | {100*fo['cer']:.2f} % | {100*te['cer']:.2f} % | "
              f"{100*fo['word_f1']:.1f} % | {100*te['word_f1']:.1f} % |")
    fc, ff, fe, ch = total(1)
    tc, tf, te_, _ = total(2)
    print(f"| **all** | | {ch} | **{100*fc:.2f} %** ({fe}) | **{100*tc:.2f} %** ({te_}) | {100*ff:.1f} % (mean) | {100*tf:.1f} % (mean) |")
    n = len(pages)
    print(f"\nfolio parse: {folio_secs:.1f} s for {n} pages ({n/folio_secs:.2f} pages/s, model load included); "
          f"tesseract: {tess_secs:.1f} s ({n/tess_secs:.2f} pages/s, {a.jobs} processes, OMP_THREAD_LIMIT=1)")


if __name__ == "__main__":
    sys.exit(main())
