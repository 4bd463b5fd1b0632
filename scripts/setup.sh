#!/usr/bin/env bash
# Installs everything folio needs on a fresh machine (idempotent; safe to rerun).
# Today that is only the Rust toolchain check; system packages and model assets are added here as
# features need them, never installed by hand.
set -euo pipefail
if ! command -v cargo >/dev/null; then
    echo "error: cargo (the Rust toolchain) is not installed: see https://rustup.rs" >&2
    exit 1
fi
