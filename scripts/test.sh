#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test in the workspace.
# Snapshots are compared, never written (insta's CI mode): a changed snapshot fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

export CI="${CI:-true}"
export INSTA_UPDATE=no
# Property tests run 10,000 cases each unless told otherwise.
export NAAS_PROPTEST_CASES="${NAAS_PROPTEST_CASES:-10000}"

if ! command -v cargo >/dev/null; then
    echo "scripts/test.sh: cargo is missing; install Rust (https://rustup.rs) first" >&2
    exit 2
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --quiet --no-fail-fast
