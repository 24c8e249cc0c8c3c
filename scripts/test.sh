#!/usr/bin/env bash
# The test command from the README: provisions ONNX Runtime (pinned PyPI wheel, into
# .cache/), then runs every test of the workspace. Safe to run again: nothing is
# fetched twice.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/fetch-onnxruntime.sh
cargo test --workspace "$@"
