# Sourced by the evaluation scripts beside it: the folio binary they run and their shared checks.
# FOLIO_BIN overrides the binary (default: this checkout's release build).

eval_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
folio="${FOLIO_BIN:-$eval_dir/../../target/release/folio}"

# usage_from_header LAST_LINE: prints the calling script's header comment from line 2 to LAST_LINE, exits 2.
usage_from_header() {
    sed -n "2,${1}p" "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# require_tools TOOL...: the folio release build and each TOOL must be there.
require_tools() {
    [ -x "$folio" ] || { echo "error: $folio not found (cargo build --release, or set FOLIO_BIN)" >&2; exit 1; }
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "error: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
    done
}

# require_tesseract_langs LANG[+LANG...]: tesseract must have each language's data.
require_tesseract_langs() {
    local have l
    have="$(tesseract --list-langs 2>/dev/null)"
    for l in ${1//+/ }; do
        grep -qx "$l" <<<"$have" || { echo "error: tesseract has no '$l' data; run scripts/setup.sh" >&2; exit 1; }
    done
}
