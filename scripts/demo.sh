#!/usr/bin/env bash
# The main job from the README: the built-in heavy-vs-lean comparison, end to end, on
# this machine. Installs libjpeg-turbo's build tools when missing, provisions ONNX
# Runtime, builds edgebench (release), shows the machine
# and the two models, then runs `edgebench compare` (heavy vs lean, interleaved, each in
# its own process) against the Jetson Orin Nano budgets, writing every report format to
# target/edgebench-report/. Extra arguments go to `edgebench compare` (e.g.
# `--min-duration 5`, `--engine tract`, `--target jetson-nano`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/build-deps.sh
bash scripts/fetch-onnxruntime.sh >/dev/null
cargo build --release --quiet
eb="$root/target/release/edgebench"
out="$root/target/edgebench-report"
mkdir -p "$out"

echo "== this machine"
"$eb" hw
echo
echo "== the two models"
"$eb" models list | sed -n '1p;/^heavy /p;/^lean /p'
echo
echo "== heavy vs lean"
"$eb" compare --target "${TARGET:-jetson-orin-nano}" --profile \
    --json "$out/compare.json" --csv "$out/compare.csv" \
    --markdown "$out/compare.md" --report "$out/compare.html" "$@"
