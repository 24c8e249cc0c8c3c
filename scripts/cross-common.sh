# Helpers shared by cross-build.sh, qemu-check.sh and deploy.sh (sourced, not run).
#
# Callers set `root` (the repository) and `PROG` (their name, for messages) first.
# Exit codes: 1 a failure, 2 bad arguments (unknown target, missing value).

CROSS_VENV="$root/.cache/crossenv"
CROSS_TARGET_DIR="${CROSS_TARGET_DIR:-$root/target/cross}"
CROSS_RUSTC="${CROSS_RUSTC:-/usr/bin/rustc}"
CROSS_SYSROOT="/usr/aarch64-linux-gnu"
# The emulated runs' cache (their GEMM peak, measured once under qemu).
QEMU_CACHE="$root/target/qemu-cache"
# Pinned PyPI tools of the cross build (and numpy for qemu-check's output comparison).
CROSS_PIP_PKGS=(ziglang==0.17.1 cargo-zigbuild==0.24.1 numpy==2.3.5)
# Debian packages: the compiler with an aarch64 std, and the aarch64 C runtime
# (libc, libgcc_s, libstdc++ under /usr/aarch64-linux-gnu) plus binutils (strip).
CROSS_APT_PKGS=(rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross file)

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}
usage_error() {
    echo "$PROG: error: $*" >&2
    exit 2
}
log() { echo "$PROG: $*" >&2; }

# `version_le A B`: true when version A <= version B (e.g. 2.27 <= 2.31).
version_le() {
    [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" == "$1" ]]
}

# The cross targets: every targets/*.toml with a glibc field (not `host`).
known_targets() {
    local f names=()
    for f in "$root"/targets/*.toml; do
        grep -q '^glibc *=' "$f" && names+=("$(basename "$f" .toml)")
    done
    echo "${names[*]}"
}

# A quoted string field of a target file: `toml_field FILE KEY`.
toml_field() {
    sed -n "s/^$2 *= *\"\\([^\"]*\\)\".*/\\1/p" "$1" | head -n1
}

# Sets T_FILE, T_TRIPLE, T_GLIBC, T_DESC for a target name; exit 2 when unknown.
load_target() {
    local name="$1"
    T_FILE="$root/targets/$name.toml"
    if [[ ! "$name" =~ ^[A-Za-z0-9._-]+$ || ! -f "$T_FILE" ]]; then
        usage_error "unknown target '$name'; known targets: $(known_targets)"
    fi
    T_TRIPLE="$(toml_field "$T_FILE" triple)"
    T_GLIBC="$(toml_field "$T_FILE" glibc)"
    T_DESC="$(toml_field "$T_FILE" description)"
    if [[ -z "$T_GLIBC" ]]; then
        usage_error "target '$name' ($T_FILE) has no glibc field: it is not a cross target; known targets: $(known_targets)"
    fi
    [[ "$T_TRIPLE" == aarch64-unknown-linux-gnu ]] ||
        die "target '$name': triple '$T_TRIPLE' is not supported (only aarch64-unknown-linux-gnu)"
}

# Packages of a list that dpkg does not have installed.
missing_debs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
    done
}

# Installs Debian packages (adding the arm64 architecture first when one is :arm64).
# `ensure_debs INSTALL PKG...`: with INSTALL=0 only tells what is missing and fails.
ensure_debs() {
    local install="$1"
    shift
    local missing
    mapfile -t missing < <(missing_debs "$@")
    [[ ${#missing[@]} -gt 0 ]] || return 0
    local cmd="dpkg --add-architecture arm64 && apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    if [[ "$install" == 0 ]]; then
        die "missing Debian packages: ${missing[*]}; install them with: $cmd"
    fi
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get (Debian/Ubuntu needed): $cmd"
    [[ "$(id -u)" == 0 ]] || die "missing packages ${missing[*]}; as root run: $cmd"
    # One apt user at a time among these scripts (CI runs some side by side); whatever
    # another installed meanwhile is not installed again.
    local lock
    exec {lock}>"${TMPDIR:-/tmp}/edgebench-apt.lock"
    flock "$lock"
    mapfile -t missing < <(missing_debs "$@")
    if [[ ${#missing[@]} == 0 ]]; then
        flock -u "$lock"
        return 0
    fi
    log "installing from Debian: ${missing[*]}"
    if [[ " ${missing[*]}" == *":arm64"* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
    fi
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed (is bookworm-security in the apt sources? rustc-web 1.96 comes from there)"
    flock -u "$lock"
}

# The pinned PyPI tools in .cache/crossenv.
ensure_venv() {
    local install="$1"
    local have="" p ok=1
    if [[ -x "$CROSS_VENV/bin/python" ]]; then
        have="$("$CROSS_VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null || true)"
    fi
    for p in "${CROSS_PIP_PKGS[@]}"; do
        grep -qx "$p" <<<"$have" || ok=0
    done
    [[ "$ok" == 0 ]] || return 0
    [[ "$install" == 1 ]] || die "missing $CROSS_VENV with ${CROSS_PIP_PKGS[*]} (run without --no-install)"
    log "installing from PyPI into $CROSS_VENV: ${CROSS_PIP_PKGS[*]}"
    if [[ ! -x "$CROSS_VENV/bin/python" ]]; then
        python3 -m venv "$CROSS_VENV" >&2 || die "python3 -m venv failed (install python3-venv)"
    fi
    "$CROSS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${CROSS_PIP_PKGS[@]}" >&2 ||
        die "pip install ${CROSS_PIP_PKGS[*]} failed"
}

ensure_build_tools() {
    ensure_debs "$1" "${CROSS_APT_PKGS[@]}"
    ensure_venv "$1"
    [[ -x "$CROSS_RUSTC" ]] || die "$CROSS_RUSTC is missing (Debian package rustc-web)"
    "$CROSS_RUSTC" --print target-libdir --target aarch64-unknown-linux-gnu >/dev/null 2>&1 &&
        [[ -n "$(ls "$("$CROSS_RUSTC" --print target-libdir --target aarch64-unknown-linux-gnu)"/libstd-*.rlib 2>/dev/null)" ]] ||
        die "$CROSS_RUSTC has no aarch64 std (Debian package libstd-rust-web-dev:arm64)"
    command -v cargo >/dev/null || die "cargo is missing (rustup or Debian cargo-web)"
}

# ELF header check: 64-bit little-endian AArch64 executable with the aarch64 loader.
check_aarch64_elf() {
    local f="$1" hdr interp
    hdr="$(readelf -h "$f" 2>/dev/null)" || die "$f: not an ELF file"
    grep -q 'Class:.*ELF64' <<<"$hdr" || die "$f: not a 64-bit ELF"
    grep -q 'Machine:.*AArch64' <<<"$hdr" || die "$f: not an AArch64 ELF ($(grep Machine: <<<"$hdr" | xargs))"
    interp="$(readelf -l "$f" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
    [[ "$interp" == /lib/ld-linux-aarch64.so.1 ]] || die "$f: program interpreter '$interp', expected /lib/ld-linux-aarch64.so.1"
    log "$(file -b "$f" | cut -d, -f1-2)"
}

# The newest GLIBC_x.y version a binary or library requires (empty when none).
newest_glibc() {
    readelf -V --wide "$1" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -V | tail -n1
}

# Lets the kernel start aarch64 ELF files through qemu (binfmt_misc; needs root once).
enable_binfmt() {
    local bf=/proc/sys/fs/binfmt_misc
    if [[ ! -e "$bf/qemu-aarch64" ]]; then
        [[ -e "$bf/register" ]] || mount -t binfmt_misc binfmt_misc "$bf" 2>/dev/null ||
            die "cannot mount $bf (needs root): bench's child processes cannot start under qemu"
        grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >"$bf/register" ||
            die "cannot register qemu-aarch64 in $bf/register (needs root)"
        log "registered qemu-aarch64 with binfmt_misc"
    fi
    grep -qx enabled "$bf/qemu-aarch64" || die "binfmt_misc handler qemu-aarch64 is disabled"
}

# qemu's -L prefix: files under it shadow the host's for the emulated program. It holds
#  - Debian's aarch64 cross runtime (libc6-arm64-cross, libstdc++6-arm64-cross), also at
#    the multiarch paths, and an empty ld.so.cache: otherwise the loader would mix in
#    /lib/aarch64-linux-gnu (libc6:arm64, another glibc build) and hang in pthread_create;
#  - a /proc/cpuinfo of the chosen ARM core: qemu 7.2 passes the host's x86 one through,
#    and ONNX Runtime's cpuinfo library crashes (SIGSEGV) parsing it.
# `make_qemu_sysroot DIR CPU`: (re)creates it for a QEMU CPU model.
make_qemu_sysroot() {
    local sysroot="$1" cpu="$2" f i part variant
    rm -rf "$sysroot"
    mkdir -p "$sysroot/lib" "$sysroot/usr" "$sysroot/etc" "$sysroot/proc"
    for f in "$CROSS_SYSROOT"/lib/*; do ln -s "$f" "$sysroot/lib/"; done
    ln -s . "$sysroot/lib/aarch64-linux-gnu"
    ln -s ../lib "$sysroot/usr/lib"
    : >"$sysroot/etc/ld.so.cache"
    case "$cpu" in
    cortex-a57) part=0xd07 variant=0x1 ;; # Jetson Nano, TX1, TX2 (beside Denver)
    cortex-a72) part=0xd08 variant=0x0 ;;
    cortex-a76) part=0xd0b variant=0x4 ;;
    neoverse-n1) part=0xd0c variant=0x3 ;;
    *) usage_error "CPU model $cpu: known models are cortex-a57, cortex-a72, cortex-a76, neoverse-n1" ;;
    esac
    for ((i = 0; i < $(nproc); i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\n' "$i"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: 1\n\n' "$variant" "$part"
    done >"$sysroot/proc/cpuinfo"
}

# run.sh of a bundle: a first check on the board.
write_run_sh() {
    cat >"$1" <<'EOF'
#!/bin/sh
# First check on the board: the engines edgebench can use, the machine, a short benchmark.
# ONNX Runtime: $ORT_DYLIB_PATH if set (a JetPack build with CUDA/TensorRT), else the
# CPU-only lib/libonnxruntime.so of this bundle. Extra arguments go to `edgebench bench`.
set -e
here="$(cd "$(dirname "$0")" && pwd)"
"$here/edgebench" --version
"$here/edgebench" engines
"$here/edgebench" hw
exec "$here/edgebench" bench lean --min-duration 1 "$@"
EOF
    chmod +x "$1"
}

# README.md of a bundle: `write_bundle_readme FILE TARGET DESC GLIBC NEWEST ORT_NOTE`.
write_bundle_readme() {
    cat >"$1" <<EOF
# edgebench for $2

$3. Built for aarch64-unknown-linux-gnu against glibc $4 (newest symbol version
required: GLIBC_$5). See BUILD-INFO for the commit and checksums.

| file | what |
|---|---|
| \`edgebench\` | the CLI |
| \`lib/libonnxruntime.so\` | ONNX Runtime 1.31.1 from PyPI, CPU only ($6) |
| \`models/\`, \`targets/\` | model specs and board budgets (also compiled into the binary) |
| \`run.sh\` | first check: \`engines\`, \`hw\`, a short \`bench lean\` |

edgebench finds \`lib/libonnxruntime.so\` beside itself. For the GPU execution
providers point it at the board's JetPack build of ONNX Runtime:

\`\`\`sh
export ORT_DYLIB_PATH=/path/to/onnxruntime/lib/libonnxruntime.so
./edgebench engines
./edgebench compare --ep tensorrt,cuda,cpu --trt-fp16 --trt-cache ~/.cache/trt --report cmp.html
\`\`\`

From the build machine, \`scripts/deploy.sh HOST $2 -- compare\` copies this folder,
runs the command and brings the reports back (docs/jetson.md).
EOF
}
