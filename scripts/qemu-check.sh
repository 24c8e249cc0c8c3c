#!/usr/bin/env bash
# The emulated on-device run: a cross-built edgebench under qemu-aarch64-static.
#
# Usage: scripts/qemu-check.sh [options] [BUNDLE]
#   BUNDLE         a bundle folder from cross-build.sh (default: target/jetson/jetson-nano,
#                  built first when missing; glibc 2.27 runs on every board)
#   --host-bin F   the x86-64 edgebench to compare with (default: target/debug/edgebench,
#                  built first with `cargo build --workspace --bins`, the features the
#                  test build gives it, so after `cargo test` nothing is compiled again)
#   --cpu NAME     QEMU CPU model: cortex-a57 (default: the Jetson Nano's core, so no
#                  instruction newer than ARMv8.0 + NEON may run), cortex-a72, cortex-a76
#                  or neoverse-n1
#   --work DIR     keep the files of the run here (default: a temporary folder)
#   --no-install   install nothing; fail when qemu or the aarch64 libraries are missing
#   -h, --help     this text
#
# Under `qemu-aarch64-static -L SYSROOT` (Debian's /usr/aarch64-linux-gnu runtime, see
# below) it runs, printing everything:
#   1. `edgebench --version` and `edgebench engines` (the bundle's aarch64 ONNX Runtime);
#   2. `models export lean --input 64x64x3 --seed 0` on both builds: the ONNX files must
#      be byte-identical;
#   3. `run` of that model on one seeded input through tract and ONNX Runtime on both
#      builds: the four outputs must agree to 1e-4 (max |diff| printed);
#   4. a short `bench lean` on tract and on ort (JSON checked: engine, latencies).
# bench runs every model in a child process: the kernel must start aarch64 children
# through qemu, so this registers qemu's binfmt_misc handler (as root) when it is not.
# Exit status: 0 all agree, 1 a failure, 2 bad arguments.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cross-common.sh
source "$root/scripts/cross-common.sh"
PROG=qemu-check
TOL=1e-4

usage() { sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

bundle="" host_bin="" cpu="cortex-a57" work="" install=1
while [[ $# -gt 0 ]]; do
    case "$1" in
    --host-bin | --cpu | --work)
        [[ $# -ge 2 ]] || usage_error "$1 needs a value"
        case "$1" in
        --host-bin) host_bin="$2" ;;
        --cpu) cpu="$2" ;;
        --work) work="$2" ;;
        esac
        shift 2
        ;;
    --no-install) install=0 && shift ;;
    -h | --help) usage && exit 0 ;;
    -*) usage_error "unknown option '$1' (try --help)" ;;
    *)
        [[ -z "$bundle" ]] || usage_error "one BUNDLE only (got '$bundle' and '$1')"
        bundle="$1"
        shift
        ;;
    esac
done

ensure_debs "$install" qemu-user-static gcc-aarch64-linux-gnu libc6-dev-arm64-cross
ensure_venv "$install"
PY="$CROSS_VENV/bin/python"

if [[ -z "$bundle" ]]; then
    bundle="$root/target/jetson/jetson-nano"
    if [[ ! -f "$bundle/BUILD-INFO" ]]; then
        flags=()
        [[ "$install" == 1 ]] || flags+=(--no-install)
        bash "$root/scripts/cross-build.sh" "${flags[@]}" jetson-nano >/dev/null
    fi
fi
[[ -f "$bundle/BUILD-INFO" && -x "$bundle/edgebench" ]] ||
    die "$bundle is not a bundle from cross-build.sh (no BUILD-INFO or edgebench)"
bundle="$(cd "$bundle" && pwd)"
arm="$bundle/edgebench"
check_aarch64_elf "$arm"

if [[ -z "$host_bin" ]]; then
    (cd "$root" && cargo build --quiet --workspace --bins) || die "cargo build of the host edgebench failed"
    host_bin="$root/target/debug/edgebench"
fi
[[ -x "$host_bin" ]] || die "host edgebench not found: $host_bin"
bash "$root/scripts/fetch-onnxruntime.sh" >/dev/null # the host's ONNX Runtime

if [[ -z "$work" ]]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/qemu-check.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
work="$(cd "$work" && pwd)"

# Children (bench's worker processes) are started by the kernel: register qemu for
# aarch64 ELF files. The environment gives them the same sysroot and CPU model.
enable_binfmt

sysroot="$work/sysroot"
make_qemu_sysroot "$sysroot" "$cpu"
export QEMU_LD_PREFIX="$sysroot" QEMU_CPU="$cpu"
# The GEMM peak that bench measures once is cached per machine: keep the emulated one apart.
export XDG_CACHE_HOME="$QEMU_CACHE"
unset ORT_DYLIB_PATH

Q=(qemu-aarch64-static -L "$sysroot" -cpu "$cpu")
step() {
    echo
    echo "== $1"
}
# `qrun ARGS...`: the emulated edgebench, command echoed.
qrun() {
    echo "\$ qemu-aarch64-static -L sysroot -cpu $cpu edgebench $*"
    "${Q[@]}" "$arm" "$@"
}
hrun() {
    echo "\$ edgebench(x86-64) $*"
    "$host_bin" "$@"
}

started=$(date +%s)
echo "qemu-check: bundle $bundle ($(grep -E '^(target|glibc_pin|newest_glibc_symbol)=' "$bundle/BUILD-INFO" | tr '\n' ' '))"
echo "qemu-check: $(qemu-aarch64-static --version | head -n1), CPU model $cpu"
cd "$work"

step "version and engines"
qrun --version | tee version.txt
[[ "$(tail -n1 version.txt)" == "$("$host_bin" --version)" ]] || die "the aarch64 and x86-64 builds report different versions"
qrun engines | tee engines.txt
grep -q "$bundle/lib/libonnxruntime.so" engines.txt ||
    die "edgebench engines under qemu did not name the bundle's lib/libonnxruntime.so"

step "model export (same seed on both builds)"
qrun models export lean -o lean-arm.onnx --input 64x64x3 --seed 0
hrun models export lean -o lean-x86.onnx --input 64x64x3 --seed 0
cmp lean-arm.onnx lean-x86.onnx || die "the aarch64 and x86-64 exports of lean differ"
echo "lean-arm.onnx and lean-x86.onnx are byte-identical ($(wc -c <lean-x86.onnx) bytes)"

step "one input through tract and ONNX Runtime on both builds"
"$PY" -c 'import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32))' x.npy
for e in tract ort; do
    hrun run lean-x86.onnx --input x.npy --output "y-x86-$e.npy" --engine "$e"
    qrun run lean-x86.onnx --input x.npy --output "y-arm-$e.npy" --engine "$e"
done
"$PY" "$root/scripts/compare-npy.py" "$TOL" y-x86-tract.npy y-x86-ort.npy y-arm-tract.npy y-arm-ort.npy ||
    die "outputs differ by more than $TOL"

# The first bench measures the GEMM peak (the aarch64 GEMM kernels, about a minute
# emulated; never cached, as the machine is busy); the second skips it (--no-peak).
for e in tract ort; do
    peak=()
    [[ "$e" == ort ]] && peak=(--no-peak)
    step "short bench lean on $e (emulated: the figures say nothing about a board)"
    qrun bench lean --size 64x64x3 --engine "$e" --batch 2 --warmup 1 --warmup-time 0 \
        --min-duration 0.2 --min-queries 3 --tegrastats-interval 0 "${peak[@]}" --json "bench-$e.json"
    "$PY" - "bench-$e.json" "$e" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["schema"] == "edgebench.report", r.get("schema")
assert r["machine"]["arch"] == "aarch64", r["machine"]["arch"]
peak = r["machine"].get("gemm_peak_gflops")
if sys.argv[2] == "tract":
    assert peak and peak > 0, f"GEMM peak {peak}"
else:
    assert peak is None, f"--no-peak, yet a GEMM peak {peak}"
(m,) = r["models"]
assert m["engine"]["engine"] == sys.argv[2], m["engine"]
ss, off = m["single_stream"], m["offline"]
assert ss and ss["latency_ms"]["count"] >= 3 and ss["latency_ms"]["median"] > 0, ss
assert off and off["throughput_ips"] > 0, off
print(f"{sys.argv[1]}: arch aarch64, engine {m['engine']['engine']} {m['engine']['version']}, "
      f"{ss['latency_ms']['count']} queries, median {ss['latency_ms']['median']:.1f} ms, offline {off['throughput_ips']:.1f} img/s (emulated)")
EOF
done

echo
echo "qemu-check: ok in $(($(date +%s) - started)) s: the aarch64 build runs and agrees with x86-64 to $TOL"
