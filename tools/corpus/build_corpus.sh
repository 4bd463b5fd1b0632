#!/usr/bin/env bash
# Rebuilds models/corpus/corpus.txt and zh.txt, the text corpora of the synthetic OCR data
# generator (src/synth), from English documentation and Chinese manual pages shipped by Debian 12
# packages. Needs root for apt (or the packages already installed), python3 (stdlib only), man-db
# and groff-base.
#
#   tools/corpus/build_corpus.sh            # writes models/corpus/corpus.txt and zh.txt
#
# The output depends on the package versions installed; the committed files are the reference
# artefact, and models/corpus/README.md records the sources and versions it was built from.
set -euo pipefail
cd "$(dirname "$0")/../.."

DOC_PACKAGES=(debian-reference-en debian-faq developers-reference debian-policy gnu-standards man-db groff-base manpages-zh)
missing=()
for p in "${DOC_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing packages ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

python3 tools/corpus/build_corpus.py --out models/corpus/corpus.txt --versions models/corpus/sources.tsv
python3 tools/corpus/build_zh_corpus.py --out models/corpus/zh.txt --versions models/corpus/sources-zh.tsv
