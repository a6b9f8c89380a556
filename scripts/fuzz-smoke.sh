#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a few seconds (default 15)
# on a copy of its corpus, on the stable toolchain (RUSTC_BOOTSTRAP=1 allows the
# sanitizer flags cargo-fuzz passes). Installs cargo-fuzz (pinned) with
# `cargo install` when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version 2>/dev/null | grep -q '0\.13\.2'; then
  echo "installing cargo-fuzz 0.13.2"
  cargo install --quiet --locked cargo-fuzz@0.13.2
fi
cd fuzz
targets=$(cargo fuzz list)
# One build for all targets; no sanitizer keeps it quick (libFuzzer's coverage
# guidance and the targets' own assertions still run); debug assertions and
# overflow checks on (-a), so an arithmetic overflow a peer can cause fails.
cargo fuzz build --sanitizer none --release --debug-assertions
for t in $targets; do
  work=$(mktemp -d)
  cp -r "corpus/$t/." "$work/" 2>/dev/null || true
  echo "fuzz $t for ${secs}s"
  log="$work.log"
  if cargo fuzz run --sanitizer none --release --debug-assertions "$t" "$work" -- \
      -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units' "$log" || true
    rm -rf "$work" "$log"
  else
    tail -n 40 "$log"
    echo "fuzz target $t failed (artifacts in fuzz/artifacts/$t)"
    exit 1
  fi
done
