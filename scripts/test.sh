#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine that has only the Rust
# toolchain and python3: it installs what the suites need (a Python venv with
# pinned peer packages, Debian packages, cargo-fuzz) and then runs
#   1. cargo fmt --check
#   2. cargo clippy --workspace --all-targets -D warnings
#   3. cargo doc --workspace with rustdoc warnings as errors (broken links,
#      missing docs)
#   4. cargo test --workspace (unit, doc, property tests, fuzz-corpus replay)
#   5. the conformance runner (RFC vectors and real third-party peers)
#   6. a short smoke run of every fuzz target.
# Set RTC_SKIP_FUZZ=1 to skip step 6 while iterating; CI never sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# One build from scratch: incremental state would only take disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "installing third-party peers (scripts/install-peers.sh)"
bash scripts/install-peers.sh
export RTC_PYTHON="$root/.venv/bin/python"

step "cargo fmt --check"
cargo fmt --all -- --check

step "lockfiles current (workspace and fuzz/)"
cargo metadata --locked --format-version 1 >/dev/null
(cd fuzz && cargo metadata --locked --format-version 1 >/dev/null)

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (rustdoc warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked -q

step "cargo test --workspace"
cargo test --workspace --locked 2>&1 | tee target/test-output.txt
# One summary line for the whole run, from cargo's per-binary results.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "cargo test: %d passed, %d failed, %d ignored\n", p, f, i }' target/test-output.txt

step "cargo test -p rtc-srtp, pure-Rust crypto (no ring)"
if ! cargo test --locked -p rtc-srtp --no-default-features --features rustcrypto >target/test-output-rustcrypto.txt 2>&1; then
  tail -n 60 target/test-output-rustcrypto.txt
  exit 1
fi
grep -E '^test result' target/test-output-rustcrypto.txt

step "conformance (rtc-conformance run)"
# The dev profile: cargo test has just built it, so this links and runs.
cargo run --locked -q -p rtc-conformance -- run

if [ "${RTC_SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzz smoke runs"
  if [ -n "${CI:-}" ]; then
    # A clean clone's test build is no longer needed; the fuzz build is
    # separate (other flags), so give its disk back first.
    rm -rf target/debug
  fi
  bash scripts/fuzz-smoke.sh "${RTC_FUZZ_SECONDS:-15}"
fi

echo
du -sh target fuzz/target 2>/dev/null | sed 's/^/disk used: /' || true
echo "all tests passed in $(( $(date +%s) - start )) s"
