#!/usr/bin/env bash
# Creates the Python environment the reference scripts use (fixture generators only;
# the Rust build and tests never need it): .cache/pyenv with pinned onnx, onnxruntime
# and numpy from PyPI. Prints the interpreter path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.cache/pyenv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  numpy==2.3.5 onnx==1.23.2 onnxruntime==1.31.1 >&2
echo "$venv/bin/python"
