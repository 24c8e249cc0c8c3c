#!/usr/bin/env bash
# Creates the Python environment with TensorFlow (CPU) that the TFRecord interop script
# (scripts/make-tfrecord-fixtures.py) uses: .cache/tfenv. Only fixture generation needs
# it; the Rust build and tests never do. Prints the interpreter path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.cache/tfenv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  tensorflow-cpu==2.21.0 >&2
echo "$venv/bin/python"
