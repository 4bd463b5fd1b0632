#!/usr/bin/env bash
# Installs everything folio needs on a fresh machine (idempotent; safe to rerun): the Debian
# packages its features and tests use. Nothing is to be installed by hand.
set -euo pipefail
if ! command -v cargo >/dev/null; then
    echo "error: cargo (the Rust toolchain) is not installed: see https://rustup.rs" >&2
    exit 1
fi

# Fonts for the synthetic training/evaluation data (src/synth/fonts.rs lists the files it uses).
FONT_PACKAGES=(fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-liberation2 fonts-urw-base35 fonts-lmodern)
missing_fonts=()
for p in "${FONT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_fonts+=("$p")
done
if [ "${#missing_fonts[@]}" -eq 0 ]; then
    :
elif ! command -v apt-get >/dev/null; then
    echo "warning: no apt-get; install these font packages (or their files) by hand: ${missing_fonts[*]}" >&2
elif [ "$(id -u)" -ne 0 ]; then
    echo "warning: not root, so not installing the synthetic-data fonts: ${missing_fonts[*]}" >&2
    echo "         run: sudo apt-get install --no-install-recommends ${missing_fonts[*]}" >&2
else
    echo "installing synthetic-data fonts: ${missing_fonts[*]}"
    # Refresh the package lists only when apt cannot find a package (fresh containers have none).
    if ! apt-cache show "${missing_fonts[@]}" >/dev/null 2>&1; then
        apt-get update
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing_fonts[@]}"
fi

# Evaluation against real PDFs (tools/eval/pdf_vs_tesseract.sh): page rendering and the PDF text
# layer (poppler-utils), and tesseract as the classic-OCR baseline.
EVAL_PACKAGES=(poppler-utils tesseract-ocr tesseract-ocr-eng)
missing_eval=()
for p in "${EVAL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_eval+=("$p")
done
if [ "${#missing_eval[@]}" -eq 0 ]; then
    :
elif ! command -v apt-get >/dev/null; then
    echo "warning: no apt-get; install these evaluation packages by hand: ${missing_eval[*]}" >&2
elif [ "$(id -u)" -ne 0 ]; then
    echo "warning: not root, so not installing the evaluation tools: ${missing_eval[*]}" >&2
    echo "         run: sudo apt-get install --no-install-recommends ${missing_eval[*]}" >&2
else
    echo "installing evaluation tools: ${missing_eval[*]}"
    if ! apt-cache show "${missing_eval[@]}" >/dev/null 2>&1; then
        apt-get update
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing_eval[@]}"
fi
