#!/usr/bin/env bash
# The main job from the README: the built-in heavy-vs-lean comparison, end to end, on
# this machine. Provisions ONNX Runtime, builds edgebench (release), lists the zoo,
# analyses both models, then runs both on ONNX Runtime and on tract with timed repeats.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/fetch-onnxruntime.sh
cargo build --release --quiet
eb="$root/target/release/edgebench"
repeat="${REPEAT:-10}"

echo "== the model zoo"
"$eb" models list
for m in heavy lean; do
  echo
  echo "== analysis: $m"
  "$eb" inspect "$m" | tail -n 4
done
for engine in ort tract; do
  for m in heavy lean; do
    echo
    echo "== $m on $engine (batch 1, 256x256x3, $repeat timed runs after 2 warm-up)"
    "$eb" run "$m" --input random --engine "$engine" --warmup 2 --repeat "$repeat"
  done
done
