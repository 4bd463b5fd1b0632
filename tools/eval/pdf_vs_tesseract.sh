#!/usr/bin/env bash
# Page CER of `folio ocr --page` next to tesseract's on real born-digital PDF pages.
#
#   tools/eval/pdf_vs_tesseract.sh MODEL_DIR PDF[:A[-B]]... [--pages N] [--first P] [--dpi 150]
#                                  [--lang eng] [--keep DIR]
#
# For pages P..P+N-1 of each PDF (plain or .gz; PDF:A-B or PDF:A picks that PDF's pages instead;
# default P=1, N=3): render at DPI with pdftoppm, take the ground truth
# from the PDF's text layer (pdftotext -layout), read the same page image with folio (all pages in
# one `folio ocr --page` run, so their lines decode together) and with tesseract (`-l LANG`, one
# run per page), and score both with `folio eval cer` (whitespace-normalised page CER; with all
# whitespace removed when LANG includes Chinese or Japanese, e.g. `--lang chi_sim+eng`, since
# neither tool nor the text layer spaces those scripts consistently). Prints one row per page,
# totals (edits over all reference characters) and each tool's wall time.
#
# Needs: poppler-utils, tesseract-ocr and its LANG data (scripts/setup.sh installs eng and chi_sim), python3,
# and a release build (`cargo build --release`; FOLIO_BIN overrides the binary).
# See tools/eval/README.md for the default PDFs and which pages are held out of training.
set -euo pipefail

source "$(dirname "$0")/common.sh"
usage() { usage_from_header 5; }

pages=3
first=1
dpi=150
keep=""
lang=eng
model=""
pdfs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --pages) pages="${2:?}"; shift 2 ;;
        --first) first="${2:?}"; shift 2 ;;
        --dpi) dpi="${2:?}"; shift 2 ;;
        --keep) keep="${2:?}"; shift 2 ;;
        --lang) lang="${2:?}"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) if [ -z "$model" ]; then model="$1"; else pdfs+=("$1"); fi; shift ;;
    esac
done
[ -n "$model" ] && [ "${#pdfs[@]}" -gt 0 ] || usage
require_tools pdftoppm pdftotext pdfinfo tesseract python3
require_tesseract_langs "$lang"
cer_opts=()
[[ "$lang" =~ (chi_|jpn) ]] && cer_opts=(--no-whitespace)

if [ -n "$keep" ]; then
    work="$keep"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi

now() { date +%s.%N; }

# 1. Render pages and take their text layers.
ids=()     # one per page: "<n>" (files $work/<n>.png, .ref.txt, …)
labels=()  # "pdf-name:page"
n=0
for arg in "${pdfs[@]}"; do
    pdf="$arg"
    from="$first"
    to=$(( first + pages - 1 ))
    if [ ! -e "$arg" ] && [[ "$arg" =~ ^(.+):([0-9]+)(-([0-9]+))?$ ]]; then
        pdf="${BASH_REMATCH[1]}"
        from="${BASH_REMATCH[2]}"
        to="${BASH_REMATCH[4]:-$from}"
    fi
    [ -f "$pdf" ] || { echo "error: $pdf: no such file" >&2; exit 1; }
    name="$(basename "$pdf")"
    src="$pdf"
    if [[ "$pdf" == *.gz ]]; then
        name="${name%.gz}"
        src="$work/src-$n-$name"
        gzip -dc "$pdf" > "$src"
    fi
    count="$(pdfinfo "$src" | awk '/^Pages:/ {print $2}')"
    [ "$to" -le "$count" ] || to="$count"
    for (( p = from; p <= to; p++ )); do
        n=$(( n + 1 ))
        pdftoppm -r "$dpi" -f "$p" -l "$p" -singlefile -png "$src" "$work/$n"
        pdftotext -layout -f "$p" -l "$p" "$src" "$work/$n.ref.txt"
        if ! grep -q '[^[:space:]]' "$work/$n.ref.txt"; then
            echo "note: $name page $p has no text layer; skipped" >&2
            continue
        fi
        ids+=("$n")
        labels+=("$name:$p")
    done
done
[ "${#ids[@]}" -gt 0 ] || { echo "error: no pages with text" >&2; exit 1; }

# 2. folio: every page in one run.
images=()
for i in "${ids[@]}"; do images+=("$work/$i.png"); done
t0="$(now)"
# A piece folio could not read is reported on stderr and scored as missing text. These pages are
# single-column: read as one region each (--layout none), this measures the model and the line
# reader as the model card always has (tools/eval/parse_vs_tesseract.py measures layout too).
"$folio" ocr --page --json --layout none --model "$model" "${images[@]}" > "$work/folio.json" \
    || echo "warning: folio reported errors (above); their lines count as unread" >&2
t1="$(now)"
python3 - "$work/folio.json" <<'EOF'
import json, os, sys
for page in json.load(open(sys.argv[1])):
    base = os.path.splitext(page["path"])[0]
    with open(base + ".folio.txt", "w", encoding="utf-8") as f:
        f.write(page.get("text", ""))
EOF

# 3. tesseract: one run per page.
t2="$(now)"
for i in "${ids[@]}"; do
    tesseract "$work/$i.png" - -l "$lang" > "$work/$i.tess.txt" 2>/dev/null
done
t3="$(now)"

# 4. Score.
cer_json() { "$folio" eval cer --json "${cer_opts[@]}" --reference "$1" --hypothesis "$2"; }
rows="$work/rows.tsv"
: > "$rows"
for k in "${!ids[@]}"; do
    i="${ids[$k]}"
    f="$(cer_json "$work/$i.ref.txt" "$work/$i.folio.txt")"
    t="$(cer_json "$work/$i.ref.txt" "$work/$i.tess.txt")"
    printf '%s\t%s\t%s\n' "${labels[$k]}" "$f" "$t" >> "$rows"
done
python3 - "$rows" "$t0" "$t1" "$t2" "$t3" "$dpi" "$lang" "${#cer_opts[@]}" <<'EOF'
import json, sys
rows, t0, t1, t2, t3, dpi, lang, bare = sys.argv[1], *map(float, sys.argv[2:6]), *sys.argv[6:9]
if bare != "0":
    print("CER with all whitespace removed")
print(f"{'page':<36} {'chars':>7} {'folio CER':>10} {'tesseract CER':>14}")
tot = {"chars": 0, "folio": 0, "tess": 0}
for line in open(rows, encoding="utf-8"):
    label, f, t = line.rstrip("\n").split("\t")
    f, t = json.loads(f), json.loads(t)
    tot["chars"] += f["chars"]; tot["folio"] += f["edits"]; tot["tess"] += t["edits"]
    print(f"{label:<36} {f['chars']:>7} {100 * f['cer']:>9.2f}% {100 * t['cer']:>13.2f}%")
c = max(tot["chars"], 1)
print(f"{'total':<36} {tot['chars']:>7} {100 * tot['folio'] / c:>9.2f}% {100 * tot['tess'] / c:>13.2f}%")
print(f"wall time at {dpi} dpi: folio {t1 - t0:.1f} s (one run, model load included), tesseract -l {lang} {t3 - t2:.1f} s (one run per page)")
EOF
[ -z "$keep" ] || echo "page images, references and outputs kept in $work" >&2
