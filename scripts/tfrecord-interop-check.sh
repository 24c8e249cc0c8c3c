#!/usr/bin/env bash
# TensorFlow reads the TFRecords that the current edgebench writes. Builds the debug
# binary target/debug/edgebench with the features `cargo test --workspace` gives it (so
# a no-op right after the tests), provisions TensorFlow with tf-env.sh (every package
# pinned; .cache/tfenv, about 1.6 GB, 45 s when cold) and runs
# `make-tfrecord-fixtures.py --check --edgebench target/debug/edgebench`: TensorFlow must
# read back every byte, label, class, format and size of a set that binary packs, and of
# TensorFlow's own records that it repacks. Fails (exit 1, one line) on any difference.
# Prints how long it took.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$SECONDS
cargo build --quiet --workspace --bins
built=$SECONDS
py="$(bash scripts/tf-env.sh)"
provisioned=$SECONDS
"$py" scripts/make-tfrecord-fixtures.py --check --edgebench target/debug/edgebench
echo "tfrecord-interop-check: passed in $((SECONDS - start)) s" \
  "(build $((built - start)) s, TensorFlow environment $((provisioned - built)) s," \
  "check $((SECONDS - provisioned)) s)"
