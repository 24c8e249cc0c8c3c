#!/usr/bin/env bash
# Cross-compile edgebench for a Jetson board and write a deploy bundle.
#
# Usage: scripts/cross-build.sh [options] TARGET
#   TARGET         a board from targets/ (jetson-nano, jetson-xavier-nx, jetson-orin-nano,
#                  jetson-agx-orin); its `triple` and `glibc` fields pick the build
#   --glibc X.Y    link against this glibc instead of the target's (any board accepts a
#                  binary pinned at or below its own glibc; 2.27 runs on all of them)
#   --out DIR      bundle folder (default: target/jetson/TARGET)
#   --keep-debug   keep the debug line tables in the bundle's binary (default: stripped)
#   --profile P    cargo profile (default: release; the bundle's BUILD-INFO names it)
#   --no-install   install nothing; fail with the install command when a tool is missing
#   --no-bundle    build and check the binary only
#   -h, --help     this text
#
# What it does, every step skipped when already done:
#   1. installs the toolchain: from Debian `rustc-web` (rustc 1.96 with an aarch64 std in
#      `libstd-rust-web-dev:arm64`), `gcc-aarch64-linux-gnu` and `libc6-dev-arm64-cross`
#      (the aarch64 runtime libraries qemu-check.sh runs against); from PyPI, into the venv
#      .cache/crossenv, `ziglang` and `cargo-zigbuild` (zig links against any glibc level);
#   2. builds `edgebench` (the profile, features ort + tract: JPEG through zune-jpeg, as
#      libjpeg-turbo's cmake build is not set up for the cross toolchain) for aarch64-unknown-linux-gnu
#      pinned to the glibc: `cargo zigbuild --target aarch64-unknown-linux-gnu.<glibc>`,
#      in its own target dir target/cross/ so it never invalidates the host build;
#   3. checks the binary: an ELF for AArch64 with the aarch64 loader, and its newest
#      required GLIBC_x.y symbol version not above the glibc (printed; failure if above);
#   4. writes the bundle: edgebench, lib/libonnxruntime.so (ONNX Runtime 1.31.1, CPU only,
#      from the pinned PyPI aarch64 wheel; found by edgebench beside its executable),
#      models/, targets/, run.sh (a first check on the board), README.md, BUILD-INFO.
#      On the board, set ORT_DYLIB_PATH to a JetPack ONNX Runtime for CUDA/TensorRT.
#
# The last line on stdout is the bundle folder (or the binary with --no-bundle).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cross-common.sh
source "$root/scripts/cross-common.sh"
PROG=cross-build

usage() { sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

target="" glibc="" out="" keep_debug=0 install=1 bundle=1 profile=release
while [[ $# -gt 0 ]]; do
    case "$1" in
    --glibc)
        [[ $# -ge 2 ]] || usage_error "--glibc needs a value such as 2.27"
        glibc="$2"
        shift 2
        ;;
    --glibc=*) glibc="${1#--glibc=}" && shift ;;
    --out)
        [[ $# -ge 2 ]] || usage_error "--out needs a folder"
        out="$2"
        shift 2
        ;;
    --out=*) out="${1#--out=}" && shift ;;
    --keep-debug) keep_debug=1 && shift ;;
    --profile)
        [[ $# -ge 2 ]] || usage_error "--profile needs a cargo profile such as release"
        profile="$2"
        shift 2
        ;;
    --profile=*) profile="${1#--profile=}" && shift ;;
    --no-install) install=0 && shift ;;
    --no-bundle) bundle=0 && shift ;;
    -h | --help) usage && exit 0 ;;
    -*) usage_error "unknown option '$1' (try --help)" ;;
    *)
        [[ -z "$target" ]] || usage_error "one TARGET only (got '$target' and '$1')"
        target="$1"
        shift
        ;;
    esac
done
[[ "$profile" =~ ^[A-Za-z][A-Za-z0-9_-]*$ ]] || usage_error "--profile '$profile': not a cargo profile name"
[[ -n "$target" ]] || usage_error "missing TARGET; known targets: $(known_targets)"
load_target "$target"
if [[ -n "$glibc" ]]; then
    [[ "$glibc" =~ ^2\.[0-9]+$ ]] || usage_error "--glibc '$glibc': expected a version such as 2.27"
    if ! version_le "$glibc" "$T_GLIBC"; then
        die "--glibc $glibc is above $target's glibc $T_GLIBC: the binary would not start there"
    fi
else
    glibc="$T_GLIBC"
fi
[[ -n "$out" ]] || out="$root/target/jetson/$target"

ensure_build_tools "$install"

# ---- build ------------------------------------------------------------------------
log "building edgebench for $T_TRIPLE, glibc $glibc ($target: $T_DESC)"
started=$(date +%s)
(
    cd "$root"
    # Line tables only when they are kept: the bundle's binary is stripped otherwise, and
    # generating them costs build time for nothing.
    debug=false
    [[ "$keep_debug" == 1 ]] && debug=line-tables-only
    profile_env="CARGO_PROFILE_$(echo "$profile" | tr 'a-z-' 'A-Z_')_DEBUG"
    env PATH="$CROSS_VENV/bin:$PATH" RUSTC="$CROSS_RUSTC" CARGO_TARGET_DIR="$CROSS_TARGET_DIR" \
        "$profile_env=$debug" \
        cargo zigbuild --profile "$profile" --locked -p edgebench \
            --no-default-features --features ort,tract --target "$T_TRIPLE.$glibc" >&2
) || die "cargo zigbuild failed (see above)"
bin="$CROSS_TARGET_DIR/$T_TRIPLE/$profile/edgebench"
[[ -x "$bin" ]] || die "the build finished but $bin is missing"
log "build took $(($(date +%s) - started)) s"

# ---- checks -----------------------------------------------------------------------
check_aarch64_elf "$bin"
newest="$(newest_glibc "$bin")"
[[ -n "$newest" ]] || die "$bin: no GLIBC_ symbol versions found (not a glibc binary?)"
if ! version_le "$newest" "$glibc"; then
    die "$bin needs GLIBC_$newest, above the glibc $glibc it was pinned to (zig pin not applied? stale link?)"
fi
log "check: ELF AArch64, newest symbol version GLIBC_$newest <= $glibc ($target has $T_GLIBC): ok"

if [[ "$bundle" == 0 ]]; then
    echo "$bin"
    exit 0
fi

# ---- bundle -----------------------------------------------------------------------
ort_lib="$(bash "$root/scripts/fetch-onnxruntime.sh" --arch aarch64)"
ort_glibc="$(newest_glibc "$ort_lib")"
ort_note="needs GLIBC_$ort_glibc: runs on this board"
if ! version_le "$ort_glibc" "$T_GLIBC"; then
    ort_note="needs GLIBC_$ort_glibc, above this board's $T_GLIBC: it will not load there, use the board's JetPack ONNX Runtime (ORT_DYLIB_PATH) or --engine tract"
    log "note: the bundled CPU ONNX Runtime $ort_note"
fi

mkdir -p "$(dirname "$out")"
stage="$(dirname "$out")/.$(basename "$out").tmp.$$"
mkdir -p "$stage/lib"
trap 'rm -rf "$stage"' EXIT
if [[ "$keep_debug" == 1 ]]; then
    cp "$bin" "$stage/edgebench"
else
    aarch64-linux-gnu-strip --strip-debug -o "$stage/edgebench" "$bin"
fi
cp -L "$ort_lib" "$stage/lib/libonnxruntime.so"
cp -r "$root/models" "$root/targets" "$stage/"
write_run_sh "$stage/run.sh"
write_bundle_readme "$stage/README.md" "$target" "$T_DESC" "$glibc" "$newest" "$ort_note"
{
    echo "target=$target"
    echo "triple=$T_TRIPLE"
    echo "glibc_pin=$glibc"
    echo "cargo_profile=$profile"
    echo "target_glibc=$T_GLIBC"
    echo "newest_glibc_symbol=GLIBC_$newest"
    echo "onnxruntime=1.31.1 (PyPI aarch64 wheel, CPU; newest symbol GLIBC_$ort_glibc)"
    echo "commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "built_unix_s=$(date +%s)"
    echo "rustc=$("$CROSS_RUSTC" --version)"
    echo "sha256:"
    (cd "$stage" && find . -type f ! -name BUILD-INFO | LC_ALL=C sort | xargs sha256sum)
} >"$stage/BUILD-INFO"
if [[ -e "$out" ]]; then
    [[ -f "$out/BUILD-INFO" ]] || die "$out exists and is not a bundle (no BUILD-INFO): not replacing it"
    rm -rf "$out"
fi
mkdir -p "$(dirname "$out")"
mv "$stage" "$out"
trap - EXIT
log "bundle: $out ($(du -sh "$out" | cut -f1))"
echo "$out"
