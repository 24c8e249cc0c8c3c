#!/usr/bin/env bash
# Creates a Python environment for the reference scripts (fixture generators only; the
# Rust build and tests never need one) and prints its interpreter path.
#   python-env.sh        .cache/pyenv: pinned onnx, onnxruntime, numpy (make-golden.py)
#   python-env.sh tf     .cache/tfenv: pinned tensorflow-cpu (make-tfrecord-fixtures.py)
#   python-env.sh torch  .cache/torchenv: pinned torch (PyPI's default wheel), numpy (make-train-golden.py)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-onnx}" in
onnx) venv="$root/.cache/pyenv"; pkgs=(numpy==2.3.5 onnx==1.23.2 onnxruntime==1.31.1) ;;
tf) venv="$root/.cache/tfenv"; pkgs=(tensorflow-cpu==2.21.0) ;;
torch) venv="$root/.cache/torchenv"; pkgs=(numpy==2.3.5 torch==2.15.0) ;;
*) echo "python-env: unknown environment ${1} (onnx, tf or torch)" >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pkgs[@]}" >&2
echo "$venv/bin/python"
