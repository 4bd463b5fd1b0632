#!/usr/bin/env python3
"""Builds the simplified-Chinese text corpus of folio's synthetic OCR data (see build_corpus.sh).

Reads the zh_CN manual pages of Debian's manpages-zh, renders each with man(1) without hyphenation
or justification (one paragraph a line), drops the page header and footer, removes the spaces that
the translators' hard line breaks left between two Chinese characters, keeps lines with Chinese
text (mixed Chinese/Latin lines are kept: command names and options are part of real Chinese
documents), cuts them into pieces of at most MAX_LINE characters at Chinese or Latin sentence ends,
dedupes, and caps the total. Deterministic for a given manpages-zh version. Standard library only.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_corpus  # noqa: E402
from build_corpus import capped, is_latin_char, normalise, package_version  # noqa: E402

MAN_ROOT = "/usr/share/man/zh_CN"
MAX_LINE = 80
CAP = 1_500_000
PAGE_CAP = 12_000  # bytes per page, so that the few huge pages (bash, gcc) do not dominate
MIN_HAN = 2


def is_han(c):
    o = ord(c)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF


def is_cjk_punct(c):
    o = ord(c)
    return 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF


def is_cjk(c):
    return is_han(c) or is_cjk_punct(c)


def allowed(c):
    return is_latin_char(c) or is_cjk(c)


def render(path):
    env = dict(os.environ, MANWIDTH="4000", LANG="C.UTF-8", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
    try:
        out = subprocess.run(["man", "--nh", "--nj", "-E", "UTF-8", "-l", path], env=env,
                             capture_output=True, check=True, timeout=60).stdout.decode("utf-8", "replace")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError):
        return None
    return re.sub(".\b", "", out)


def join_cjk(line):
    """Drops spaces with a Chinese character or Chinese punctuation on both sides."""
    out = []
    for i, c in enumerate(line):
        if c == " " and 0 < i < len(line) - 1 and is_cjk(line[i - 1]) and is_cjk(line[i + 1]):
            continue
        out.append(c)
    return "".join(out)


def chunk(par):
    """Pieces of at most MAX_LINE characters, cut after 。！？；, else after ，、：, else at a space."""
    return build_corpus.chunk(par, MAX_LINE, (r"[。！？；]|[.;!?] ", r"[，、：]|[,:] "))


def keep(line):
    return sum(is_han(c) for c in line) >= MIN_HAN and all(allowed(c) for c in line)


def page_lines(text):
    rows = text.splitlines()
    # The first and last non-blank rows are the running header and footer ("LS(1) ... LS(1)").
    body = [r for r in rows if r.strip()][1:-1]
    out = []
    for raw in body:
        line = join_cjk(normalise(raw))
        for piece in chunk(line) if line else []:
            if keep(piece) and piece not in out:
                out.append(piece)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--versions", required=True, help="TSV of source, package, version, lines, bytes")
    args = ap.parse_args()

    pages = sorted(glob.glob(os.path.join(MAN_ROOT, "man*", "*")))
    if not pages:
        sys.exit(f"error: no manual pages under {MAN_ROOT}; install manpages-zh")
    seen, corpus, skipped = set(), [], 0
    for i, path in enumerate(pages):
        text = render(path)
        if text is None:
            skipped += 1
            continue
        fresh = [l for l in page_lines(text) if l not in seen]
        kept = capped(fresh, PAGE_CAP)
        seen.update(kept)
        corpus.extend(kept)
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(pages)} pages, {len(corpus)} lines", file=sys.stderr)
    corpus = capped(corpus, CAP)

    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for l in corpus:
            f.write(l + "\n")
    total = sum(len(l.encode()) + 1 for l in corpus)
    han = Counter(c for l in corpus for c in l if is_han(c))
    with open(args.versions, "w", encoding="utf-8") as f:
        f.write("source\tpackages\tversion\tlines\tbytes\n")
        f.write(f"man-pages-zh_CN\tmanpages-zh\t{package_version('manpages-zh')}\t{len(corpus)}\t{total}\n")
    print(f"{args.out}: {len(corpus)} lines, {total} bytes, {sum(han.values())} Chinese characters "
          f"({len(han)} distinct) from {len(pages) - skipped} of {len(pages)} pages", file=sys.stderr)


if __name__ == "__main__":
    main()
