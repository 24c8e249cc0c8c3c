#!/usr/bin/env bash
# Install ONNX Runtime's shared library (libonnxruntime.so) into the repo cache.
#
# edgebench loads ONNX Runtime at run time (ort's `load-dynamic`); nothing is downloaded
# at build time. This script takes the library from the pinned PyPI wheel
# `onnxruntime==1.31.1`, checks the wheel's and the library's sha256 against values
# pinned below, and installs it as
#
#     <repo>/.cache/onnxruntime/linux-<arch>/libonnxruntime.so
#
# where edgebench looks for it (see runtime/src/engine/ort/library.rs). It prints that path.
#
# Usage: scripts/fetch-onnxruntime.sh [--arch x86_64|aarch64] [--wheel FILE] [--force]
#   --arch   architecture to fetch (default: the host's); `--arch aarch64` on an x86-64
#            host fetches the Jetson/ARM library for cross-built deploy bundles
#   --wheel  use this already-downloaded wheel instead of asking pip (still verified)
#   --force  reinstall even when a verified library is present
#
# Note: the PyPI wheel is CPU-only. On a Jetson, point ORT_DYLIB_PATH at a JetPack build
# of ONNX Runtime for the CUDA/TensorRT execution providers.
set -euo pipefail

ORT_VERSION="1.31.1"
PY_VERSION="3.11"

# sha256 of the wheel and of onnxruntime/capi/libonnxruntime.so.<version> inside it.
sha_wheel() {
    case "$1" in
    x86_64) echo "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f" ;;
    aarch64) echo "da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3" ;;
    esac
}
sha_lib() {
    case "$1" in
    x86_64) echo "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3" ;;
    aarch64) echo "8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467" ;;
    esac
}
# ELF e_machine: EM_X86_64 = 62, EM_AARCH64 = 183.
elf_machine() {
    case "$1" in
    x86_64) echo 62 ;;
    aarch64) echo 183 ;;
    esac
}

die() {
    echo "fetch-onnxruntime: error: $*" >&2
    exit 1
}
log() { echo "fetch-onnxruntime: $*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"

arch=""
wheel=""
force=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --arch)
        [[ $# -ge 2 ]] || die "--arch needs a value (x86_64 or aarch64)"
        arch="$2"
        shift 2
        ;;
    --arch=*)
        arch="${1#--arch=}"
        shift
        ;;
    --wheel)
        [[ $# -ge 2 ]] || die "--wheel needs a file"
        wheel="$2"
        shift 2
        ;;
    --wheel=*)
        wheel="${1#--wheel=}"
        shift
        ;;
    --force)
        force=1
        shift
        ;;
    -h | --help)
        sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done

[[ -n "$arch" ]] || arch="$(uname -m)"
case "$arch" in
x86_64 | amd64) arch="x86_64" ;;
aarch64 | arm64) arch="aarch64" ;;
*) die "unsupported architecture '$arch': the onnxruntime wheels exist for x86_64 and aarch64" ;;
esac

dest_dir="$repo_root/.cache/onnxruntime/linux-$arch"
lib_name="libonnxruntime.so.$ORT_VERSION"
lib_path="$dest_dir/$lib_name"
link_path="$dest_dir/libonnxruntime.so"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        die "need sha256sum or shasum to verify downloads"
    fi
}

# Check the ELF header: magic, 64-bit class, little endian, machine of $arch.
check_elf() {
    local f="$1" bytes
    read -r -a bytes <<<"$(od -An -tu1 -N20 "$f" | tr -s ' \n' '  ')"
    [[ ${#bytes[@]} -ge 20 ]] || die "$f: too short to be a shared library"
    [[ "${bytes[0]} ${bytes[1]} ${bytes[2]} ${bytes[3]}" == "127 69 76 70" ]] ||
        die "$f: not an ELF file"
    [[ "${bytes[4]}" == 2 && "${bytes[5]}" == 1 ]] || die "$f: not a 64-bit little-endian ELF"
    local machine=$((bytes[18] + 256 * bytes[19]))
    [[ "$machine" == "$(elf_machine "$arch")" ]] ||
        die "$f: ELF machine $machine, expected $(elf_machine "$arch") for $arch"
}

# Already installed and verified: nothing to do.
if [[ "$force" == 0 && -f "$lib_path" && -e "$link_path" ]] &&
    [[ "$(sha256_of "$lib_path")" == "$(sha_lib "$arch")" ]]; then
    check_elf "$lib_path"
    log "ONNX Runtime $ORT_VERSION ($arch) already installed"
    echo "$link_path"
    exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fetch-onnxruntime.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

if [[ -z "$wheel" ]]; then
    if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
        pip_cmd=(python3 -m pip)
    elif command -v pip3 >/dev/null 2>&1; then
        pip_cmd=(pip3)
    elif command -v pip >/dev/null 2>&1; then
        pip_cmd=(pip)
    else
        die "pip is needed to download onnxruntime==$ORT_VERSION (install python3-pip), or pass --wheel FILE"
    fi
    log "downloading onnxruntime==$ORT_VERSION wheel for manylinux_2_28_$arch"
    if ! "${pip_cmd[@]}" download --no-deps --only-binary=:all: \
        --platform "manylinux_2_28_$arch" --python-version "$PY_VERSION" \
        --dest "$tmp" "onnxruntime==$ORT_VERSION" >&2; then
        die "pip could not download onnxruntime==$ORT_VERSION for $arch (network? proxy?)"
    fi
    shopt -s nullglob
    wheels=("$tmp"/onnxruntime-"$ORT_VERSION"-*.whl)
    shopt -u nullglob
    [[ ${#wheels[@]} -eq 1 ]] || die "expected one onnxruntime wheel from pip, found ${#wheels[@]}"
    wheel="${wheels[0]}"
fi
[[ -f "$wheel" ]] || die "wheel not found: $wheel"

got="$(sha256_of "$wheel")"
want="$(sha_wheel "$arch")"
[[ "$got" == "$want" ]] ||
    die "sha256 mismatch for $(basename "$wheel"): got $got, expected $want (onnxruntime==$ORT_VERSION, $arch)"

member="onnxruntime/capi/$lib_name"
mkdir -p "$tmp/x"
if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$wheel" "$member" -d "$tmp/x" || die "could not extract $member from $wheel"
elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
        "$wheel" "$member" "$tmp/x" || die "could not extract $member from $wheel"
else
    die "need unzip or python3 to extract the wheel"
fi
extracted="$tmp/x/$member"
[[ -f "$extracted" ]] || die "$member is missing from $wheel"

got="$(sha256_of "$extracted")"
want="$(sha_lib "$arch")"
[[ "$got" == "$want" ]] || die "sha256 mismatch for $member: got $got, expected $want"
check_elf "$extracted"

mkdir -p "$dest_dir"
# Install atomically: copy next to the target, then rename over it.
cp "$extracted" "$dest_dir/.$lib_name.tmp"
mv -f "$dest_dir/.$lib_name.tmp" "$lib_path"
ln -sfn "$lib_name" "$dest_dir/libonnxruntime.so.1"
ln -sfn "$lib_name" "$link_path"

log "installed ONNX Runtime $ORT_VERSION ($arch)"
echo "$link_path"
