#!/usr/bin/env bash
# Build tools for the default `turbojpeg` feature (libjpeg-turbo 3 built from the
# turbojpeg-sys crate's bundled source): cmake and nasm (SIMD is required, so a build
# without nasm fails instead of silently producing a slow decoder). Installs them from
# Debian's packages when missing; safe to run again. Without them (and no root or sudo),
# build the pure-Rust JPEG path instead: --no-default-features --features ort,tract.
#
#   bash scripts/build-deps.sh && cargo build --release
set -euo pipefail
missing=()
for tool in cmake nasm; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "build-deps: missing ${missing[*]} (libjpeg-turbo's build needs them); install them (e.g. apt-get install ${missing[*]}) and rerun, or build without libjpeg-turbo: cargo build --no-default-features --features ort,tract" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "build-deps: installing ${missing[*]} from Debian's packages" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
