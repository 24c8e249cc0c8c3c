#!/usr/bin/env bash
# Clippy on the code only an aarch64 build compiles (the NEON kernels of SGEMM, the
# convolutions' weight gradients, the loader's normalisation, CRC32C, the machine probe),
# which the host's `cargo clippy` never sees: `cargo clippy --target
# aarch64-unknown-linux-gnu` over the workspace, every target, the Jetson build's
# features (ort + tract), warnings as errors. It checks, it links nothing.
#
# Usage: scripts/clippy-aarch64.sh [--no-install]
#   --no-install   install nothing; fail with the install command when a tool is missing
#
# The compiler is Debian's rustc-web (it ships an aarch64 std) with its rust-web-clippy,
# installed when missing (as root, apt); the check lands in target/clippy-aarch64.
# Exit status: 0 clean, 1 a lint or a failure, 2 bad arguments.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cross-common.sh
source "$root/scripts/cross-common.sh"
PROG=clippy-aarch64

install=1
while [[ $# -gt 0 ]]; do
    case "$1" in
    --no-install) install=0 && shift ;;
    -h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) usage_error "unknown argument '$1' (see --help)" ;;
    esac
done

ensure_debs "$install" "${CROSS_APT_PKGS[@]}" rust-web-clippy
clippy=/usr/bin/cargo-clippy
[[ -x "$clippy" ]] || die "$clippy is missing (Debian package rust-web-clippy)"
cd "$root"
RUSTC="$CROSS_RUSTC" CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    "$clippy" clippy --locked --quiet --target aarch64-unknown-linux-gnu --workspace --all-targets \
    --no-default-features --features ort,tract --target-dir "$root/target/clippy-aarch64" \
    -- -D warnings
