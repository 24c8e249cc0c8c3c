#!/usr/bin/env bash
# Creates a Python environment for the reference scripts (fixture generators and the
# TensorFlow interop check; the Rust build and tests never need one) and prints its
# interpreter path.
#   python-env.sh        .cache/pyenv: onnx, onnxruntime, numpy (make-golden.py)
#   python-env.sh tf     .cache/tfenv: tensorflow-cpu (make-tfrecord-fixtures.py,
#                        tfrecord-interop-check.sh; about 1.6 GB, 45 s to install cold)
#   python-env.sh torch  .cache/torchenv: torch (PyPI's default wheel), numpy (make-train-golden.py)
# The onnx and tf environments pin every package they install, dependencies included
# (pip freeze of a clean install), so a fresh machine gets the same versions. An
# environment whose pins are unchanged since its last install is used as it is.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-onnx}" in
onnx)
  venv="$root/.cache/pyenv"
  pkgs=(flatbuffers==25.12.19 ml_dtypes==0.7.0 numpy==2.3.5 onnx==1.23.2
    onnxruntime==1.31.1 packaging==26.4 protobuf==7.36.2 typing_extensions==4.16.0)
  ;;
tf)
  venv="$root/.cache/tfenv"
  pkgs=(tensorflow_cpu==2.21.0 absl-py==2.5.1 astunparse==1.6.3 certifi==2026.10.19.post1
    charset-normalizer==3.5.3 flatbuffers==25.12.19 gast==0.7.0 google-pasta==0.2.0
    grpcio==1.85.3 h5py==3.14.0 idna==3.20 keras==3.15.1 libclang==18.1.1
    markdown-it-py==4.3.0 mdurl==0.1.2 ml_dtypes==0.7.0 namex==0.1.0 numpy==2.4.6
    opt_einsum==3.4.0 optree==0.20.0 packaging==26.4 protobuf==7.36.2 Pygments==2.21.0
    requests==2.34.2 rich==15.0.0 six==1.17.0 termcolor==3.3.0 typing_extensions==4.16.0
    urllib3==2.8.0 wrapt==2.5.2)
  ;;
torch) venv="$root/.cache/torchenv"; pkgs=(numpy==2.3.5 torch==2.15.0) ;;
*) echo "python-env: unknown environment ${1} (onnx, tf or torch)" >&2; exit 2 ;;
esac
stamp="$venv/.edgebench-pins"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${pkgs[*]}" ]; then
  echo "$venv/bin/python"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pkgs[@]}" >&2
echo "${pkgs[*]}" >"$stamp"
echo "$venv/bin/python"
