#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all --check
fi
cargo test --release --workspace "$@"
