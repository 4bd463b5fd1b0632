#!/usr/bin/env bash
# Installs everything folio needs on a fresh machine (idempotent; safe to rerun): the Debian
# packages its features and tests use. Nothing is to be installed by hand.
set -euo pipefail
if ! command -v cargo >/dev/null; then
    echo "error: cargo (the Rust toolchain) is not installed: see https://rustup.rs" >&2
    exit 1
fi

# ensure_packages PURPOSE PACKAGE...: installs the missing ones (as root), or says how to.
ensure_packages() {
    local purpose=$1; shift
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    elif ! command -v apt-get >/dev/null; then
        echo "warning: no apt-get; install these packages ($purpose) by hand: ${missing[*]}" >&2
    elif [ "$(id -u)" -ne 0 ]; then
        echo "warning: not root, so not installing $purpose: ${missing[*]}" >&2
        echo "         run: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    else
        echo "installing $purpose: ${missing[*]}"
        # Refresh the package lists only when apt cannot find a package (fresh containers have none).
        if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
            apt-get update
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

# Fonts for the synthetic training/evaluation data (src/synth/catalogue.rs lists the files it uses).
ensure_packages "synthetic-data fonts" \
    fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-liberation2 fonts-urw-base35 fonts-lmodern \
    fonts-freefont-ttf fonts-stix fonts-crosextra-caladea fonts-crosextra-carlito fonts-linuxlibertine \
    fonts-ebgaramond fonts-sil-gentium fonts-sil-charis fonts-century-catalogue fonts-gfs-didot fonts-open-sans \
    fonts-inconsolata fonts-adf-baskervald fonts-adf-accanthis fonts-quattrocento \
    fonts-lato fonts-cantarell fonts-hack fonts-courier-prime fonts-noto-cjk

# Evaluation against real PDFs (tools/eval/pdf_vs_tesseract.sh) and on synthetic lines
# (tools/eval/lines_vs_tesseract.sh): page rendering and the PDF text layer (poppler-utils),
# tesseract with English and simplified Chinese as the classic-OCR baseline, and the held-out PDFs
# (bzip2 manual, nettle manual, shared-mime-info spec, and the Chinese Debian New Maintainers'
# Guide; see tools/eval/README.md).
ensure_packages "evaluation tools and PDFs" \
    poppler-utils tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim bzip2-doc nettle-dev shared-mime-info \
    maint-guide-zh-cn

# libpdfium for reading PDFs (`folio parse`), unpacked from the pypdfium2 wheel on PyPI into
# folio's data directory, where folio looks for it (src/pipeline/pdf.rs; FOLIO_PDFIUM overrides).
PYPDFIUM2_VERSION=5.15.2  # PDFium build 8149
pdfium_dir="${XDG_DATA_HOME:-$HOME/.local/share}/folio/lib"
if [ ! -f "$pdfium_dir/libpdfium.so" ] || [ "$(cat "$pdfium_dir/pypdfium2-version" 2>/dev/null)" != "$PYPDFIUM2_VERSION" ]; then
    case "$(uname -m)" in
        x86_64) platform=manylinux_2_17_x86_64 ;;
        aarch64) platform=manylinux_2_17_aarch64 ;;
        *) echo "error: no pypdfium2 wheel for $(uname -m); set FOLIO_PDFIUM to a libpdfium.so" >&2; exit 1 ;;
    esac
    if ! python3 -m pip --version >/dev/null 2>&1; then
        ensure_packages "pip (to fetch libpdfium)" python3-pip
    fi
    echo "installing libpdfium from pypdfium2 $PYPDFIUM2_VERSION into $pdfium_dir"
    wheel_dir="$(mktemp -d)"
    trap 'rm -rf "$wheel_dir"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary :all: --platform "$platform" \
        --dest "$wheel_dir" "pypdfium2==$PYPDFIUM2_VERSION"
    mkdir -p "$pdfium_dir"
    python3 - "$wheel_dir" "$pdfium_dir" <<'PY'
import glob, os, sys, zipfile
wheel_dir, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(wheel_dir, "pypdfium2-*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read("pypdfium2_raw/libpdfium.so")
tmp = os.path.join(dest, "libpdfium.so.tmp")
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, os.path.join(dest, "libpdfium.so"))
PY
    echo "$PYPDFIUM2_VERSION" > "$pdfium_dir/pypdfium2-version"
fi
