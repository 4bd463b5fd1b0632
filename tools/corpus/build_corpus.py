#!/usr/bin/env python3
"""Builds the text corpus of folio's synthetic OCR data generator (see build_corpus.sh).

Reads English documentation shipped by Debian packages (manuals, policy, licences, manual pages,
changelogs, copyright files), reflows hard-wrapped paragraphs, cuts them into lines of at most
MAX_LINE characters, normalises whitespace, drops lines that are not mostly Latin script, dedupes,
and caps each source so the corpus stays under ~3 MB. Deterministic for a given set of installed
package versions. Standard library only.
"""
import argparse
import gzip
import hashlib
import os
import re
import subprocess
import sys
import unicodedata

MAX_LINE = 160

# (name, cap in bytes, list of files); files are read as text (gz transparently).
DOC_SOURCES = [
    ("debian-reference", 700_000, ["/usr/share/debian-reference/debian-reference.en.txt.gz"]),
    ("debian-policy", 480_000, [
        "/usr/share/doc/debian-policy/policy.txt.gz",
        "/usr/share/doc/debian-policy/upgrading-checklist.txt.gz",
        "/usr/share/doc/debian-policy/copyright-format-1.0.txt.gz",
        "/usr/share/doc/debian-policy/debconf_specification.txt.gz",
        "/usr/share/doc/debian-policy/menu-policy.txt.gz",
        "/usr/share/doc/debian-policy/perl-policy.txt.gz",
        "/usr/share/doc/debian-policy/autopkgtest.txt.gz",
        "/usr/share/doc/debian-policy/fhs/fhs-3.0.txt.gz",
    ]),
    ("developers-reference", 240_000, ["/usr/share/developers-reference/developers-reference.txt.gz"]),
    ("debian-faq", 150_000, ["/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"]),
    ("gnu-standards", 280_000, [
        "/usr/share/doc/gnu-standards/standards.text.gz",
        "/usr/share/doc/gnu-standards/maintain.text.gz",
    ]),
    ("common-licenses", 200_000, sorted(
        os.path.join("/usr/share/common-licenses", f)
        for f in (os.listdir("/usr/share/common-licenses") if os.path.isdir("/usr/share/common-licenses") else [])
        if os.path.isfile(os.path.join("/usr/share/common-licenses", f))
    )),
]

# Manual pages rendered by man(1) without hyphenation or justification, one paragraph a line.
MAN_PAGES = [
    "ls", "cp", "mv", "rm", "ln", "mkdir", "chmod", "chown", "touch", "cat", "head", "tail", "sort",
    "uniq", "cut", "tr", "wc", "du", "df", "date", "env", "test", "stat", "dd", "install", "split",
    "tar", "gzip", "grep", "sed", "find", "xargs", "diff", "cmp", "less", "man", "apt", "apt-get",
    "apt-cache", "dpkg", "dpkg-query", "sources.list", "passwd", "login", "su", "mount", "ps",
    "kill", "top", "free", "hostname", "hier", "ascii", "utf-8", "locale", "crontab", "bash",
    "python3", "perl", "groff", "make", "ssh", "git", "curl", "rsync", "gpg", "systemctl",
    "journalctl",
]
MAN_CAP = 520_000
MAN_PAGE_CAP = 24_000  # per page, so that the big ones (bash, curl, git) do not dominate

# Changelogs and copyright files: names, e-mail addresses, dates, version numbers, bug numbers.
META_PACKAGES = [
    "apt", "bash", "coreutils", "dpkg", "findutils", "grep", "gzip", "sed", "tar", "util-linux",
    "libc6", "base-files", "debianutils", "diffutils", "e2fsprogs", "login", "passwd", "perl-base",
    "procps", "man-db", "groff-base", "ncurses-base", "zlib1g", "xz-utils", "bzip2", "libssl3",
    "ca-certificates", "openssl", "python3", "git", "curl", "fontconfig", "libfreetype6",
    "debian-policy", "developers-reference", "gnu-standards",
]
CHANGELOG_LINES = 400
META_CAP = 260_000

ALLOWED_EXTRA = set("‐‑‒–—―‘’‚‛“”„‟†‡•‣…‰′″‹›€™→←↑↓−×÷°±§¶©®µ·¹²³¼½¾¡¿«»")


def read_text(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def render_man(page):
    env = dict(os.environ, MANWIDTH="4000", LANG="C.UTF-8", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
    try:
        out = subprocess.run(["man", "--nh", "--nj", "-E", "UTF-8", page], env=env,
                             capture_output=True, check=True).stdout.decode("utf-8", "replace")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    # Strip any overstrike formatting (bold = c\bc, underline = _\bc).
    return re.sub(".\b", "", out)


def is_latin_char(c):
    o = ord(c)
    return (0x20 <= o <= 0x7E) or (0xA0 <= o <= 0x17F) or c in ALLOWED_EXTRA


def normalise(line):
    line = unicodedata.normalize("NFC", line)
    line = line.replace("\u00ad", "")  # soft hyphen
    line = "".join(" " if c.isspace() else c for c in line if c.isspace() or unicodedata.category(c)[0] != "C")
    return re.sub(r" {2,}", " ", line).strip()


def keep(line):
    if len(line) < 3 or not any(c.isalnum() for c in line):
        return False
    if not all(is_latin_char(c) for c in line):
        return False
    # Rulers, table borders and underlines.
    if re.fullmatch(r"[\s+|=\-_*~.#:]+", line):
        return False
    letters = sum(c.isalpha() for c in line)
    return letters >= 0.3 * len(line) or len(line) <= 40


def chunk(par, max_line=MAX_LINE, breaks=(r"[.;:!?] ",)):
    """Cuts a paragraph into pieces of at most max_line characters: after the last match of the
    first of `breaks` that matches past a third of the piece, else at the last space, else hard."""
    out = []
    while len(par) > max_line:
        cut = -1
        for pattern in breaks:
            ends = [m.end() for m in re.finditer(pattern, par[: max_line + 1])
                    if m.end() >= max_line // 3 and len(par[: m.end()].rstrip()) <= max_line]
            if ends:
                cut = ends[-1]
                break
        if cut < 0:
            cut = par.rfind(" ", 0, max_line + 1)
        if cut <= 0:
            cut = max_line
        out.append(par[:cut].strip())
        par = par[cut:].strip()
    if par:
        out.append(par)
    return out


def indent(s):
    return len(s) - len(s.lstrip(" "))


def paragraphs(text):
    """Hard-wrapped text → paragraph strings; code-like or short-line blocks stay line by line."""
    text = text.replace("\t", "        ")
    blocks, cur = [], []
    for raw in text.splitlines():
        if raw.strip() == "":
            if cur:
                blocks.append(cur)
                cur = []
        else:
            cur.append(raw.rstrip())
    if cur:
        blocks.append(cur)
    for block in blocks:
        # ASCII tables: keep the cell texts.
        if sum("|" in l for l in block) >= 2:
            for l in block:
                for cell in l.split("|"):
                    yield cell
            continue
        code = any(re.match(r"\s*([$#>] |%|\.\.\. )", l) for l in block)
        short = max(len(l.strip()) for l in block) < 45
        if len(block) == 1 or code or short:
            yield from block
            continue
        # Join runs of lines; a deeper indent than the run's second line starts a new line.
        par = block[0].strip()
        base = indent(block[1])
        for l in block[1:]:
            if indent(l) > base + 2:
                yield par
                par = l.strip()
            elif par.endswith("/"):
                par += l.strip()
            else:
                par += " " + l.strip()
        yield par


def lines_of(text, reflow=True):
    for par in paragraphs(text) if reflow else text.splitlines():
        par = normalise(par)
        if not par:
            continue
        for piece in chunk(par):
            if keep(piece):
                yield piece


def capped(lines, cap):
    """Keeps a deterministic, order-preserving subsample of `lines` of at most `cap` bytes."""
    total = sum(len(l.encode()) + 1 for l in lines)
    if total <= cap:
        return lines
    frac = cap / total
    keyed = [(int(hashlib.sha1(l.encode()).hexdigest()[:8], 16) / 2**32, l) for l in lines]
    out = [l for k, l in keyed if k < frac]
    while sum(len(l.encode()) + 1 for l in out) > cap:
        out.pop()
    return out


def package_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                              check=True).stdout.decode().strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "?"


def owner_package(path):
    try:
        out = subprocess.run(["dpkg", "-S", path], capture_output=True, check=True).stdout.decode()
        return out.split(":")[0]
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--versions", required=True, help="TSV of source, package, version, lines, bytes")
    args = ap.parse_args()

    seen = set()
    corpus = []
    report = []

    def add(name, pkg, lines, cap):
        fresh = []
        for l in lines:
            if l not in seen:
                seen.add(l)
                fresh.append(l)
        kept = capped(fresh, cap)
        corpus.extend(kept)
        report.append((name, pkg, package_version(pkg) if pkg != "-" else "-", len(kept),
                       sum(len(l.encode()) + 1 for l in kept)))

    for name, cap, files in DOC_SOURCES:
        lines = []
        pkgs = set()
        for path in files:
            if not os.path.exists(path):
                print(f"warning: {path} missing, skipped", file=sys.stderr)
                continue
            pkgs.add(owner_package(path))
            lines.extend(lines_of(read_text(path)))
        add(name, ",".join(sorted(pkgs)) or "-", lines, cap)

    man_lines = []
    for page in MAN_PAGES:
        text = render_man(page)
        if text is None:
            print(f"warning: man page {page} not installed, skipped", file=sys.stderr)
            continue
        page_lines = []
        for l in lines_of(text, reflow=False):
            if l not in page_lines:
                page_lines.append(l)
        man_lines.extend(capped(page_lines, MAN_PAGE_CAP))
    add("man-pages", "-", man_lines, MAN_CAP)

    meta_lines = []
    for pkg in META_PACKAGES:
        d = f"/usr/share/doc/{pkg}"
        for fn in ("changelog.Debian.gz", "copyright"):
            p = os.path.join(d, fn)
            if not os.path.exists(p):
                continue
            text = read_text(p)
            if fn.startswith("changelog"):
                text = "\n".join(text.splitlines()[:CHANGELOG_LINES])
            # Changelog and copyright entries are line-oriented: keep lines as they are.
            for raw in text.splitlines():
                l = normalise(raw)
                for piece in chunk(l) if l else []:
                    if keep(piece):
                        meta_lines.append(piece)
    add("changelogs+copyright", "-", meta_lines, META_CAP)

    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for l in corpus:
            f.write(l + "\n")
    with open(args.versions, "w", encoding="utf-8") as f:
        f.write("source\tpackages\tversion\tlines\tbytes\n")
        for row in report:
            f.write("\t".join(map(str, row)) + "\n")
    total = sum(len(l.encode()) + 1 for l in corpus)
    print(f"{args.out}: {len(corpus)} lines, {total} bytes", file=sys.stderr)
    for row in report:
        print("  " + "\t".join(map(str, row)), file=sys.stderr)


if __name__ == "__main__":
    main()
