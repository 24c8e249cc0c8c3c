#!/usr/bin/env bash
# The TensorFlow (CPU) environment for scripts/make-tfrecord-fixtures.py and
# scripts/tfrecord-interop-check.sh, every package pinned; prints the interpreter path.
# See python-env.sh.
exec bash "$(dirname "${BASH_SOURCE[0]}")/python-env.sh" tf
