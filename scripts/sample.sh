#!/usr/bin/env bash
# The README's first command: installs what folio needs (scripts/setup.sh), builds folio, and
# parses the bundled two-column sample with the embedded model into out/sample/, then prints the
# Markdown. The JSON (regions, boxes, lines) and the figure are beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo run --release -- parse tests/fixtures/pages/sample-two-columns.pdf --format md,json --out out/sample --overwrite
echo "--- out/sample/sample-two-columns.md:"
cat out/sample/sample-two-columns.md
