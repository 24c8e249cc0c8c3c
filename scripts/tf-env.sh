#!/usr/bin/env bash
# The TensorFlow (CPU) environment for scripts/make-tfrecord-fixtures.py; prints the
# interpreter path. See python-env.sh.
exec bash "$(dirname "${BASH_SOURCE[0]}")/python-env.sh" tf
