#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test in the workspace.
# Snapshots are compared, never written (insta's CI mode): a changed snapshot fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

export CI="${CI:-true}"
export INSTA_UPDATE=no
# Property tests run 10,000 cases each unless told otherwise (proptest's own PROPTEST_CASES; a costlier
# property divides it by its weight, see tests/support).
export PROPTEST_CASES="${PROPTEST_CASES:-10000}"
export NAAS_PROPTEST_CASES="${NAAS_PROPTEST_CASES:-$PROPTEST_CASES}"

if ! command -v cargo >/dev/null; then
    echo "scripts/test.sh: cargo is missing; install Rust (https://rustup.rs) first" >&2
    exit 2
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# The cross-target tests link NIC object files with a C compiler and run aarch64 code under qemu.
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
# tests/network_udp.rs drops packets in a network namespace with nftables; namespaces need root,
# so elsewhere that test says it was skipped and its in-process variant runs alone.
if [ "$(id -u)" -eq 0 ] && ! command -v nft >/dev/null; then need+=(nftables); fi
if [ ${#need[@]} -gt 0 ]; then
    echo "== installing ${need[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

start=$SECONDS
phase() { echo "== $1 ($((SECONDS - start)) s so far)"; }

phase "cargo fmt --check"
cargo fmt --all -- --check
phase "cargo clippy: lints every crate (a cold 2-core machine takes about 5 minutes; cargo names each crate as it goes)"
cargo clippy --workspace --all-targets -- -D warnings
phase "building the test binaries (about 5 more minutes when cold)"
cargo test --workspace --no-run
phase "cargo test: every test binary in turn (about 5-10 minutes; a dot per passing test)"
cargo test --workspace --quiet --no-fail-fast
phase "all checks passed"
