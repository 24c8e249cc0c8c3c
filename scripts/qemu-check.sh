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
#   --kernel-tests also build edgebench-runtime's kernel unit tests and its trainer test
#                  files (train_trainer, train_golden, train_checkpoint) for aarch64 (the
#                  bundle's profile, in target/cross; about 1,000 CPU-seconds cold) and
#                  run them under qemu on the neon and the portable path
#   --build-kernel-tests  only build those (CI does, beside its host builds) and exit
#   --only-kernel-tests   build those (nothing to do when built) and run them under qemu,
#                  skipping steps 1–5 (CI runs those first, while the tests still build)
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
#   4. a short `bench lean` on tract and on ort (JSON checked: engine, latencies);
#   5. edgebench's own kernels (SGEMM, direct and Winograd convolutions, the loader's
#      normalisation): one epoch of `train` on the same images with EDGEBENCH_SIMD=neon and
#      =portable under qemu and on x86-64 (decoding with zune-jpeg, as the bundle does):
#      every loss within 1e-4 (relative) of the x86-64
#      portable one, and neon's not bit-identical to portable's (the path switched); and
#      20 optimizer steps of lean at 64×64 on one fixed .npy batch on every path: each
#      step's loss within 1e-4 and every exported parameter tensor within 1e-3 (‖Δ‖/‖w‖)
#      of x86-64 portable's (plain SGD at lr 3e-4: with momentum, a larger rate or Adam,
#      one batch over and over is chaotic enough that rounding alone parts two paths by
#      more than 1e-4 within 20 steps — a ReLU or max-pool tie decided by the last bit,
#      Adam's sign-like steps where a gradient is ~0);
#   6. with --kernel-tests, the runtime's kernel unit tests and trainer test files under
#      qemu, on both paths.
# bench runs every model in a child process: the kernel must start aarch64 children
# through qemu, so this registers qemu's binfmt_misc handler (as root) when it is not.
# Exit status: 0 all agree, 1 a failure, 2 bad arguments.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cross-common.sh
source "$root/scripts/cross-common.sh"
PROG=qemu-check
TOL=1e-4

usage() { sed -n '2,/^# Exit status/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

bundle="" host_bin="" cpu="cortex-a57" work="" install=1 kernel_tests=0
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
    --kernel-tests) kernel_tests=1 && shift ;;
    --build-kernel-tests) kernel_tests=build && shift ;;
    --only-kernel-tests) kernel_tests=only && shift ;;
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

# The runtime's kernel and trainer tests built for aarch64 with the bundle's profile (in
# the cross target folder, so the bundle's dependencies are reused); prints each test
# executable: the library's unit tests, train_trainer (fast paths against naive loops,
# finite-difference gradients), train_golden (PyTorch's steps), train_checkpoint
# (bit-identical resume).
build_kernel_tests() {
    local profile
    profile="$(sed -n 's/^cargo_profile=//p' "$bundle/BUILD-INFO")"
    (cd "$root" && env PATH="$CROSS_VENV/bin:$PATH" RUSTC="$CROSS_RUSTC" CARGO_TARGET_DIR="$CROSS_TARGET_DIR" \
        cargo-zigbuild test --no-run --locked --message-format=json --profile "${profile:-release}" \
        -p edgebench-runtime --no-default-features --features ort,tract \
        --lib --test train_trainer --test train_golden --test train_checkpoint \
        --target aarch64-unknown-linux-gnu.2.27 |
        "$PY" -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])') || die "the aarch64 kernel tests did not build"
}
# Built here, before the environment below changes (qemu's variables, the cache folder):
# the same environment as a --build-kernel-tests run, so cargo finds its build fresh.
tests=()
if [[ "$kernel_tests" != 0 ]]; then
    while IFS= read -r t; do tests+=("$t"); done < <(build_kernel_tests)
    [[ "${#tests[@]}" == 4 ]] || die "expected 4 aarch64 test executables, got ${#tests[@]}"
    for t in "${tests[@]}"; do [[ -x "$t" ]] || die "no aarch64 test executable at $t"; done
    if [[ "$kernel_tests" == build ]]; then
        echo "qemu-check: built the 4 aarch64 test executables of --kernel-tests"
        exit 0
    fi
fi

if [[ "$kernel_tests" != only ]]; then
    if [[ -z "$host_bin" ]]; then
        (cd "$root" && cargo build --quiet --workspace --bins) || die "cargo build of the host edgebench failed"
        host_bin="$root/target/debug/edgebench"
    fi
    [[ -x "$host_bin" ]] || die "host edgebench not found: $host_bin"
    host_bin="$(cd "$(dirname "$host_bin")" && pwd)/$(basename "$host_bin")"
    bash "$root/scripts/fetch-onnxruntime.sh" >/dev/null # the host's ONNX Runtime
fi

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

# 6. The runtime's kernel and trainer tests under qemu, on both paths.
kernel_tests_under_qemu() {
    step "edgebench-runtime's kernel and trainer tests under qemu, neon and portable"
    for p in neon portable; do
        for t in "${tests[@]}"; do
            # The library's kernel tests; the trainer's test files whole.
            filter=()
            [[ "$(basename "$t")" == edgebench_runtime-* ]] && filter=(train::kernels data::normalize simd::)
            echo "\$ EDGEBENCH_SIMD=$p qemu-aarch64-static ... $(basename "$t") ${filter[*]}"
            EDGEBENCH_SIMD="$p" "${Q[@]}" "$t" --test-threads 2 "${filter[@]}" ||
                die "$(basename "$t") failed under qemu on the $p path"
        done
    done
}

started=$(date +%s)
if [[ "$kernel_tests" == only ]]; then
    kernel_tests_under_qemu
    echo
    echo "qemu-check: ok in $(($(date +%s) - started)) s: the kernel and trainer tests pass under qemu on both paths"
    exit 0
fi
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

step "edgebench's kernels: one epoch on each path, aarch64 (emulated) and x86-64"
hrun data synth -o synth --classes 4 --count 32 --size 32 --seed 1 >/dev/null
train_on() { # train_on RUNNER PATH OUT
    EDGEBENCH_SIMD="$2" "$1" train --model lean --data synth --input-size 32x32 --epochs 1 \
        --batch 8 --seed 3 --quiet --metrics "$3" | tee "$3.txt"
    grep -q "kernels $2" "$3.txt" || die "train did not report kernels $2"
}
for p in neon portable; do train_on qrun "$p" "arm-$p.json"; done
host_paths="$("$host_bin" hw --json 2>/dev/null | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["machine"]["kernels"])')"
[[ "$host_paths" == portable ]] || host_paths+=" portable"
# The bundle decodes JPEG with zune-jpeg (no libjpeg-turbo in the cross build): the same here.
for p in $host_paths; do EDGEBENCH_JPEG=zune-jpeg train_on hrun "$p" "x86-$p.json"; done
"$PY" - arm-neon.json arm-portable.json x86-*.json <<'EOF'
import json, sys
loss = {f: json.load(open(f))["epochs"][0]["loss"] for f in sys.argv[1:]}
ref = loss["x86-portable.json"]
for f, l in loss.items():
    print(f"{f}: loss {l!r}")
    assert abs(l - ref) <= 1e-4 * abs(ref), f"{f}: loss {l} against x86-64 portable {ref}"
assert loss["arm-neon.json"] != loss["arm-portable.json"], "neon and portable computed bit-identically: the path did not switch"
print("every path's loss within 1e-4 of x86-64 portable's; neon differs from portable only by rounding (FMA)")
EOF

step "20 training steps of lean at 64×64 on one fixed .npy batch: losses and parameters"
"$PY" - <<'EOF'
import numpy as np
rng = np.random.default_rng(5)
np.save("fixed_x.npy", rng.random((8, 3, 64, 64), dtype=np.float32))
np.save("fixed_y.npy", np.arange(8, dtype=np.int64) % 4)
EOF
steps_on() { # steps_on RUNNER PATH NAME
    EDGEBENCH_SIMD="$2" "$1" train --model lean --data fixed_x.npy --labels fixed_y.npy \
        --batch 8 --epochs 20 --no-shuffle --seed 3 --lr 0.0003 --momentum 0 --quiet \
        --metrics "$3.json" --export "$3.onnx" >/dev/null
}
for p in neon portable; do steps_on qrun "$p" "steps-arm-$p"; done
for p in $host_paths; do steps_on hrun "$p" "steps-x86-$p"; done
"$PY" - steps-arm-neon steps-arm-portable $(printf 'steps-x86-%s ' $host_paths) <<'EOF'
import json, sys
import numpy as np

def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i

def fields(b):
    """(field number, value) of one protobuf message's top level."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            v, i = b[i:i + n], i + n
        else:
            raise ValueError(f"protobuf wire type {wt}")
        yield num, v

def initializers(path):
    """name → values of an ONNX file's float initializers (raw_data, as edgebench writes)."""
    graph = next(v for n, v in fields(open(path, "rb").read()) if n == 7)
    out = {}
    for n, t in fields(graph):
        if n == 5:
            f = dict(fields(t))
            if f.get(2) == 1 and 9 in f:  # FLOAT with raw_data
                out[bytes(f[8]).decode()] = np.frombuffer(bytes(f[9]), dtype="<f4")
    return out

runs = {r: ([e["loss"] for e in json.load(open(r + ".json"))["epochs"]], initializers(r + ".onnx"))
        for r in sys.argv[1:]}
ref_loss, ref_w = runs["steps-x86-portable"]
assert len(ref_loss) == 20 and ref_w, "20 steps and the exported weights"
for r, (loss, w) in runs.items():
    dl = max(abs(a - b) / abs(b) for a, b in zip(loss, ref_loss))
    # Per tensor ‖Δ‖/‖w‖ (an elementwise bound would be set by the few parameters whose
    # gradients are ~0, not by the kernels).
    dw = max(float(np.linalg.norm(w[k] - ref_w[k]) / max(np.linalg.norm(ref_w[k]), 1e-12)) for k in ref_w)
    print(f"{r}: 20 losses (first {loss[0]:.6f}, last {loss[-1]:.6f}) within {dl:.2e} of x86-64 "
          f"portable's; {len(w)} parameter tensors within {dw:.2e} (‖Δ‖/‖w‖ per tensor)")
    assert len(loss) == 20 and dl <= 1e-4, f"{r}: a loss off by {dl:.2e} (> 1e-4)"
    assert set(w) == set(ref_w) and dw <= 1e-3, f"{r}: parameters off by {dw:.2e} (> 1e-3)"
assert ref_loss[-1] < ref_loss[0], "the loss did not fall over 20 steps on one batch"
print("every path: losses within 1e-4, parameters within 1e-3 of x86-64 portable's")
EOF

[[ "$kernel_tests" != 1 ]] || kernel_tests_under_qemu

echo
echo "qemu-check: ok in $(($(date +%s) - started)) s: the aarch64 build runs and agrees with x86-64 to $TOL"
