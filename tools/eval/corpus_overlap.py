#!/usr/bin/env python3
"""How much of a PDF's text is in folio's training corpus (models/corpus/corpus.txt)?

For each page of each PDF (plain or .gz), takes the text layer (pdftotext), splits it into
lower-cased word tokens and reports the share of its word 8-grams that also occur anywhere in the
corpus (read as one token stream, so n-grams across the corpus's line cuts count too). A page at
~0% is held-out text; one near 100% was seen in training (in the training fonts, if not the PDF's).

usage: corpus_overlap.py [--corpus FILE] [--n 8] [--per-page] PDF...
Standard library + pdftotext (Debian poppler-utils).
"""
import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile

WORD = re.compile(r"[0-9A-Za-z]+")


def tokens(text):
    return [w.lower() for w in WORD.findall(text)]


def ngrams(toks, n):
    return {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def pdf_pages(path, tmp):
    if path.endswith(".gz"):
        plain = os.path.join(tmp, os.path.basename(path)[:-3])
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = plain
    text = subprocess.run(["pdftotext", "-layout", path, "-"], check=True, capture_output=True).stdout
    return text.decode("utf-8", errors="replace").split("\f")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(here, "..", "..", "models", "corpus", "corpus.txt"))
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--per-page", action="store_true", help="one row per page, not only per PDF")
    ap.add_argument("pdfs", nargs="+")
    args = ap.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        seen = ngrams(tokens(f.read()), args.n)
    print(f"corpus: {len(seen)} distinct word {args.n}-grams", file=sys.stderr)
    print("pdf\tpage\tngrams\tin_corpus\tratio")
    with tempfile.TemporaryDirectory() as tmp:
        for pdf in args.pdfs:
            total = hit = 0
            for i, page in enumerate(pdf_pages(pdf, tmp), 1):
                grams = [tuple(g) for g in ngrams(tokens(page), args.n)]
                h = sum(g in seen for g in grams)
                total += len(grams)
                hit += h
                if args.per_page and grams:
                    print(f"{pdf}\t{i}\t{len(grams)}\t{h}\t{h / len(grams):.3f}")
            ratio = hit / total if total else 0.0
            print(f"{pdf}\tall\t{total}\t{hit}\t{ratio:.3f}")


if __name__ == "__main__":
    main()
