#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20) from a copy of its seed corpus, so
# the checked-in corpus stays as it is. A crash fails the run and leaves its input in
# fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/ so the test suite replays it
# forever (crates/core/tests/fuzz_regressions.rs, crates/api/tests/fuzz_regressions.rs).
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
for target in scan emv paycode signature receipt qr_image; do
  work="$(mktemp -d)"
  cp -r "corpus/$target/." "$work/"
  if [ -d "regressions/$target" ]; then cp -r "regressions/$target/." "$work/"; fi
  echo "fuzz: $target for ${seconds}s"
  cargo +nightly fuzz run "$target" "$work" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 | tail -n 3
  rm -rf "$work"
done
echo "fuzz: every target ran ${seconds}s with no crash"
