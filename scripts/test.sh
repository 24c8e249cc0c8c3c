#!/usr/bin/env bash
# The test command from the README: installs libjpeg-turbo's build tools when missing
# (cmake, nasm from Debian's packages), provisions ONNX Runtime (pinned PyPI wheel, into
# .cache/), then runs every test of the workspace. Safe to run again: nothing is
# fetched twice. Arguments go to each `cargo test` (a test-name filter, `--no-run`, …).
#
# Every test, in three cargo runs: the integration tests, binaries and examples (the
# runtime at opt-level 2, Cargo.toml says why); the runtime's doc tests; the runtime's
# unit tests with the runtime unoptimised. Those unit tests are one more compilation of
# the whole runtime crate (with its test modules): optimised, it was the longest unit of
# CI's test build, for tests that run in seconds either way. (A Cargo profile cannot
# tell the unit tests from the library the integration tests link, so the opt-level is
# given to that run alone.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
no_run=0
[[ " $* " == *" --no-run "* ]] && no_run=1
bash scripts/build-deps.sh
# Only the test runs load ONNX Runtime (a build with --no-run needs no library).
[[ "$no_run" == 1 ]] || bash scripts/fetch-onnxruntime.sh
cargo test --workspace --bins --examples --test '*' "$@"
# Doc tests are compiled when they run (cargo has no --no-run for them).
[[ "$no_run" == 1 ]] || cargo test -p edgebench-runtime --doc "$@"
cargo test -p edgebench-runtime --lib --config 'profile.test.package.edgebench-runtime.opt-level=0' "$@"
