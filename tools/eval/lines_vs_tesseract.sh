#!/usr/bin/env bash
# Line CER of a folio model next to tesseract's on the same held-out synthetic lines.
#
#   tools/eval/lines_vs_tesseract.sh MODEL_DIR [--split eval-zh] [--count 200] [--lang chi_sim] [--keep DIR]
#
# Renders lines 0..COUNT-1 of SPLIT with data seed 1 (`folio synth`; the same images
# `folio eval lines` reads), reads them with folio (`folio eval lines`, greedy decoding through the
# engine) and with tesseract (`--psm 7`, a single text line; language LANG, default chi_sim for
# eval-zh and eng otherwise), and scores both in one place: edits over reference characters, after
# removing all whitespace for Chinese (tesseract puts spaces between Chinese characters; where
# spaces go in mixed Chinese/Latin text is not what a Chinese reader checks) and collapsing it
# otherwise. Prints CER, exact-line share and wall time per reader.
#
# Needs: tesseract-ocr with the LANG data (scripts/setup.sh installs eng and chi_sim), python3, and
# a release build (`cargo build --release`; FOLIO_BIN overrides the binary). With --keep DIR, the
# images, folio's JSON and tesseract's texts stay in DIR (emptied first).
set -euo pipefail

source "$(dirname "$0")/common.sh"
usage() { usage_from_header 5; }

split=eval-zh
count=200
lang=""
keep=""
model=""
while [ $# -gt 0 ]; do
    case "$1" in
        --split) split="${2:?}"; shift 2 ;;
        --count) count="${2:?}"; shift 2 ;;
        --lang) lang="${2:?}"; shift 2 ;;
        --keep) keep="${2:?}"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) if [ -z "$model" ]; then model="$1"; else usage; fi; shift ;;
    esac
done
[ -n "$model" ] || usage
case "$count" in ''|*[!0-9]*|0) echo "error: --count must be a positive integer (got '$count')" >&2; exit 2 ;; esac
require_tools tesseract python3
if [ -z "$lang" ]; then
    if [ "$split" = eval-zh ]; then lang=chi_sim; else lang=eng; fi
fi
require_tesseract_langs "$lang"

work="${keep:-$(mktemp -d)}"
rm -rf "$work/lines" "$work/tess"
mkdir -p "$work/tess"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT

"$folio" synth --out "$work/lines" --split "$split" --seed 1 --count "$count" >/dev/null

start=$(date +%s%N)
"$folio" eval lines --model "$model" --split "$split" --seed 1 --count "$count" --worst "$count" --json >"$work/folio.json"
folio_ms=$(( ($(date +%s%N) - start) / 1000000 ))

start=$(date +%s%N)
for png in "$work"/lines/*.png; do
    name="$(basename "$png" .png)"
    tesseract "$png" "$work/tess/$name" -l "$lang" --psm 7 >/dev/null 2>&1 || : >"$work/tess/$name.txt"
done
tess_ms=$(( ($(date +%s%N) - start) / 1000000 ))

python3 - "$work" "$split" "$folio_ms" "$tess_ms" "$lang" <<'EOF'
import json, os, sys

work, split, lang = sys.argv[1], sys.argv[2], sys.argv[5]
folio_secs, tess_secs = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
chinese = split == "eval-zh"

def norm(s):
    return "".join(s.split()) if chinese else " ".join(s.split())

def edits(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]

labels = [json.loads(l) for l in open(os.path.join(work, "lines", "labels.jsonl"), encoding="utf-8")]
folio = json.load(open(os.path.join(work, "folio.json"), encoding="utf-8"))
folio_hyp = {w["index"]: w["hypothesis"] for w in folio["worst"]}
if len(folio_hyp) != len(labels):
    sys.exit(f"error: folio read {len(folio_hyp)} lines of {len(labels)}")
rows = {"folio": [0, 0], f"tesseract ({lang})": [0, 0]}
chars = 0
for i, label in enumerate(labels):
    ref = norm(label["text"])
    tess_file = os.path.join(work, "tess", label["file"][:-4] + ".txt")
    tess = open(tess_file, encoding="utf-8", errors="replace").read() if os.path.exists(tess_file) else ""
    chars += len(ref)
    for name, hyp in (("folio", folio_hyp[i]), (f"tesseract ({lang})", tess)):
        e = edits(ref, norm(hyp))
        rows[name][0] += e
        rows[name][1] += e == 0
n = len(labels)
print(f"{split}: {n} lines, {chars} reference characters" + (" (whitespace removed)" if chinese else ""))
for (name, (e, exact)), secs in zip(rows.items(), (folio_secs, tess_secs)):
    print(f"  {name:<20} CER {100 * e / max(chars, 1):6.2f} %   exact lines {100 * exact / n:5.1f} %   {secs:6.1f} s")
EOF
