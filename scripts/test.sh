#!/usr/bin/env bash
# The test command from the README: installs libjpeg-turbo's build tools when missing
# (cmake, nasm from Debian's packages), provisions ONNX Runtime (pinned PyPI wheel, into
# .cache/), then runs every test of the workspace. Safe to run again: nothing is
# fetched twice.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build-deps.sh
bash scripts/fetch-onnxruntime.sh
cargo test --workspace "$@"
