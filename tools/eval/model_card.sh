#!/usr/bin/env bash
# Every accuracy figure of a model card, measured in one run.
#
#   tools/eval/model_card.sh MODEL_DIR [--count 500] [--out DIR]
#
# Runs, in order: `folio eval lines` on eval-text, eval-font and eval-zh (COUNT lines each);
# lines_vs_tesseract.sh on eval-zh (200 lines, folio next to tesseract chi_sim); pdf_vs_tesseract.sh
# on the three Latin evaluation pages (eng) and on the three Chinese ones (chi_sim+eng). The pages are
# those of tools/eval/README.md. Each step's full output goes to OUT/NAME.txt (OUT defaults to a
# temporary directory that is kept) and a summary is printed at the end.
#
# Needs what the scripts it calls need: scripts/setup.sh and `cargo build --release`.
set -euo pipefail

source "$(dirname "$0")/common.sh"
usage() { usage_from_header 4; }

count=500
out=""
model=""
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) if [ -z "$model" ]; then model="$1"; else usage; fi; shift ;;
    esac
done
[ -n "$model" ] || usage
require_tools tesseract pdftoppm pdftotext python3
out="${out:-$(mktemp -d)}"
mkdir -p "$out"

# step NAME COMMAND...: runs COMMAND with its output in OUT/NAME.txt, says how long it took.
step() {
    local name=$1; shift
    local start=$SECONDS
    echo "== $name: $*" >&2
    if ! "$@" >"$out/$name.txt" 2>&1; then
        echo "error: $name failed; see $out/$name.txt" >&2
        tail -5 "$out/$name.txt" >&2
        exit 1
    fi
    echo "   done in $((SECONDS - start)) s" >&2
}

for split in eval-text eval-font eval-zh; do
    step "lines-$split" "$folio" eval lines --model "$model" --split "$split" --count "$count"
done
step lines-zh-vs-tesseract "$eval_dir/lines_vs_tesseract.sh" "$model" --split eval-zh --count 200
step pages-latin "$eval_dir/pdf_vs_tesseract.sh" "$model" --keep "$out/pages-latin" \
    /usr/share/doc/bzip2/manual.pdf.gz:6 \
    /usr/share/doc/nettle-dev/nettle.pdf.gz:13 \
    /usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf:5
zh_pdf=/usr/share/doc/maint-guide-zh-cn/maint-guide.zh-cn.pdf
step pages-chinese "$eval_dir/pdf_vs_tesseract.sh" "$model" --lang chi_sim+eng --keep "$out/pages-chinese" \
    "$zh_pdf:13" "$zh_pdf:15" "$zh_pdf:25"

echo "# $model: outputs in $out"
for split in eval-text eval-font eval-zh; do
    echo "## folio eval lines --split $split --count $count"
    sed -n '1,3p' "$out/lines-$split.txt"
done
for name in lines-zh-vs-tesseract pages-latin pages-chinese; do
    echo "## $name"
    cat "$out/$name.txt"
done
