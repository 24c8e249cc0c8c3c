#!/usr/bin/env bash
# The prepared GPU check: lean in fp32, fp16 and int8 on ONNX Runtime's TensorRT, CUDA and
# CPU providers, every provider's outputs checked against the CPU fp32 outputs, and the
# speed of each, in one summary table.
#
# Usage: scripts/gpu-check.sh [--dry-run] [--bin PATH] [--work DIR] [--wheels DIR]
#                             [--ort-lib DIR] [--cuda-libs DIR] [--python PATH] [--no-tensorrt]
#   --dry-run     everything that needs no GPU: the pinned packages resolve on PyPI for this
#                 machine (metadata only, nothing installed), the data, model and variants
#                 are made and the CPU rows run and are checked; the GPU rows say "not run".
#                 CI runs this.
#   --bin PATH    the edgebench to use (default: `cargo build --release`, then that binary)
#   --work DIR    keep the files of the run here (default: a temporary folder)
#   --wheels DIR  install the pinned packages from wheel files in DIR (made with
#                 `pip download` on a connected machine) instead of PyPI
#   --ort-lib DIR use the GPU build of ONNX Runtime in DIR (libonnxruntime.so.* beside its
#                 libonnxruntime_providers_*.so) instead of the pinned wheel's
#   --cuda-libs DIR  use the CUDA 13 and cuDNN 9 libraries found under DIR (every folder
#                 in it holding lib*.so*, e.g. a Python environment's site-packages/nvidia)
#                 instead of installing the pinned ones; for a machine with no network
#   --python PATH the Python (with numpy) that checks the outputs and prints the table,
#                 instead of scripts/python-env.sh's environment (which installs from PyPI)
#   --no-tensorrt leave out the TensorRT rows (they say so), where TensorRT 10's libraries
#                 are not at hand; the CUDA and CPU rows still run
#
# What it does, failing with one line at the first missing piece:
#   1. the machine: Linux x86-64 or aarch64 with an NVIDIA driver (`nvidia-smi -L` lists a GPU);
#   2. installs into .cache/gpu/ (no system changes): the libraries of the onnxruntime-gpu
#      1.31.1 wheel (CUDA 13, sha256-checked) and, pinned, the CUDA 13 runtime, cuBLAS,
#      cuRAND, cuFFT, nvJitLink, NVRTC, cuDNN 9 libraries from PyPI and TensorRT 10's (PyPI
#      holds its source package, which takes the wheel from pypi.nvidia.com). There is
#      no onnxruntime-gpu wheel for aarch64 on PyPI: on a Jetson set ORT_DYLIB_PATH to a GPU
#      build of ONNX Runtime (JetPack's) and the CUDA libraries come from JetPack;
#   3. `edgebench engines`: the CUDA and TensorRT providers must be in the library;
#   4. a labelled `data synth` set (8 classes, 64×64, 1,600 training and 256 held-out
#      images; a dry run 4 classes and 480), lean trained on it (Adam, 3 epochs) (so that top-1 means something), lean-fp16
#      (`quantize --to fp16`) and lean-int8 (`quantize --activations symmetric`, the form
#      TensorRT's explicit quantization takes);
#   5. the 256 held-out images through each model on each provider, against the CPU fp32
#      outputs: fp32 max |Δ| ≤ 1e-4 of the largest logit (CUDA with --no-tf32; TensorRT
#      1e-3: it computes fp32 as TF32 on Ampere and newer, and ONNX Runtime has no switch for
#      it), fp16 ≤ 1e-2, int8: top-1 agreement ≥ 99% with the CPU fp32 model;
#   6. speed: `edgebench bench` of each model on each provider (batch 1, p90 latency, and
#      batch 32 throughput), TensorRT with --trt-fp16 --trt-int8 and an engine cache in
#      .cache/gpu/trt-cache;
#   7. one summary table, with the precision each provider ran the convolutions and
#      matrix products in (from `edgebench profile`: the element type ONNX Runtime fed
#      each node); exit 1 when any check failed.
# Takes about 3 minutes on a warm machine (packages installed, edgebench built).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ORT_VERSION=1.31.1
ORT_WHEEL_X86=onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_X86_SHA=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6
# What onnxruntime-gpu[cuda,cudnn]==1.31.1 resolves to on PyPI (wheels)...
NVIDIA_PINS=(
    nvidia-cuda-runtime==13.5.37 nvidia-cublas==13.10.0.20 nvidia-curand==10.4.5.25
    nvidia-cufft==12.5.0.14 nvidia-nvjitlink==13.5.37 nvidia-cuda-nvrtc==13.5.37
    nvidia-cudnn-cu13==9.28.1.4
)
# ...and TensorRT 10 (its provider links libnvinfer.so.10 and libnvonnxparser.so.10): on
# PyPI only as a source package that fetches NVIDIA's wheel from pypi.nvidia.com.
TRT_PIN=tensorrt-cu13-libs==10.16.1.11
NVIDIA_INDEX=https://pypi.nvidia.com

die() {
    echo "gpu-check: error: $*" >&2
    exit 1
}
log() { echo "gpu-check: $*" >&2; }

dry=0 bin="" work="" wheels="" ort_lib="" cuda_libs="" python="" no_trt=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --dry-run) dry=1 && shift ;;
    --bin)
        [[ $# -ge 2 ]] || die "--bin needs a path"
        bin="$2" && shift 2
        ;;
    --work)
        [[ $# -ge 2 ]] || die "--work needs a folder"
        work="$2" && shift 2
        ;;
    --wheels)
        [[ $# -ge 2 ]] || die "--wheels needs a folder"
        wheels="$2" && shift 2
        ;;
    --ort-lib)
        [[ $# -ge 2 ]] || die "--ort-lib needs a folder"
        ort_lib="$2" && shift 2
        ;;
    --cuda-libs)
        [[ $# -ge 2 ]] || die "--cuda-libs needs a folder"
        cuda_libs="$2" && shift 2
        ;;
    --python)
        [[ $# -ge 2 ]] || die "--python needs a path"
        python="$2" && shift 2
        ;;
    --no-tensorrt) no_trt=1 && shift ;;
    -h | --help) sed -n '2,50p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done
[[ -z "$wheels" || -d "$wheels" ]] || die "--wheels $wheels: not a folder"
[[ -z "$ort_lib" || -d "$ort_lib" ]] || die "--ort-lib $ort_lib: not a folder"
[[ -z "$cuda_libs" || -d "$cuda_libs" ]] || die "--cuda-libs $cuda_libs: not a folder"
[[ -z "$python" || -x "$python" || -n "$(command -v "$python")" ]] || die "--python $python: not an executable"
started=$SECONDS

# 1. The machine.
[[ "$(uname -s)" == Linux ]] || die "Linux only (this is $(uname -s))"
arch="$(uname -m)"
case "$arch" in
x86_64 | aarch64) ;;
*) die "x86-64 or aarch64 only (this is $arch)" ;;
esac
gpu=""
if command -v nvidia-smi >/dev/null 2>&1; then
    gpu="$(nvidia-smi -L 2>/dev/null | head -n1 || true)"
fi
if [[ -z "$gpu" ]]; then
    [[ "$dry" == 1 ]] || die "no NVIDIA GPU: nvidia-smi is missing or lists none (the driver must be installed; --dry-run checks the rest)"
    log "dry run: no NVIDIA GPU here; the GPU rows will not run"
else
    driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1 || true)"
    log "$gpu, driver ${driver:-unknown}"
fi

# 2. The libraries, into .cache/gpu/.
cache="$root/.cache/gpu"
if [[ -n "$python" ]]; then
    py="$python"
    "$py" -c "import numpy" 2>/dev/null || die "--python $python: cannot import numpy"
else
    py="$(bash "$root/scripts/python-env.sh")" || die "the Python environment (scripts/python-env.sh) could not be made"
fi
pip_src=()
[[ -n "$wheels" ]] && pip_src=(--no-index --find-links "$wheels")
if [[ "$arch" == x86_64 ]]; then
    if [[ "$dry" == 1 ]]; then
        log "dry run: resolving the pinned packages for this machine (metadata only)"
        "$py" -m pip install --quiet --dry-run --ignore-installed --no-deps --only-binary=:all: \
            "${pip_src[@]}" "onnxruntime-gpu==$ORT_VERSION" "${NVIDIA_PINS[@]}" ||
            die "the pinned GPU packages do not resolve for this machine (see pip's message above)"
        if [[ -z "$wheels" ]]; then
            "$py" - "$TRT_PIN" <<'EOF' || die "$TRT_PIN is not on PyPI"
import json, sys, urllib.request
name, version = sys.argv[1].split("==")
try:
    releases = json.load(urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30))["releases"]
except Exception as e:
    sys.exit(f"gpu-check: cannot read PyPI's index of {name}: {e}")
sys.exit(0 if releases.get(version) else 1)
EOF
        fi
    else
        lib="$cache/onnxruntime/libonnxruntime.so.$ORT_VERSION"
        if [[ -n "$ort_lib" ]]; then
            lib="$(find "$ort_lib" -maxdepth 1 -name 'libonnxruntime.so.*[0-9]' | sort -V | tail -n1)"
            [[ -n "$lib" ]] || die "--ort-lib $ort_lib: no libonnxruntime.so.* in it"
            lib="$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")"
        elif [[ ! -f "$lib" ]]; then
            mkdir -p "$cache/wheels" "$cache/onnxruntime"
            if [[ ! -f "$cache/wheels/$ORT_WHEEL_X86" ]]; then
                log "downloading onnxruntime-gpu $ORT_VERSION (≈ 255 MB)"
                "$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
                    --platform manylinux_2_28_x86_64 -d "$cache/wheels" "${pip_src[@]}" \
                    "onnxruntime-gpu==$ORT_VERSION" || die "cannot download onnxruntime-gpu==$ORT_VERSION (no network? use --wheels DIR)"
            fi
            sum="$(sha256sum "$cache/wheels/$ORT_WHEEL_X86" | cut -d' ' -f1)"
            [[ "$sum" == "$ORT_WHEEL_X86_SHA" ]] || die "$ORT_WHEEL_X86: sha256 $sum, expected $ORT_WHEEL_X86_SHA"
            "$py" - "$cache/wheels/$ORT_WHEEL_X86" "$cache/onnxruntime" <<'EOF'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if n.startswith("onnxruntime/capi/lib") and ".so" in n:
            with open(os.path.join(sys.argv[2], os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
EOF
        fi
        export ORT_DYLIB_PATH="$lib"
        # What .cache/gpu/site must hold: the pinned CUDA libraries, and TensorRT's unless
        # --no-tensorrt (then a site that has TensorRT too will do).
        all_pins="${NVIDIA_PINS[*]} $TRT_PIN"
        want_pins="$all_pins"
        [[ "$no_trt" == 1 ]] && want_pins="${NVIDIA_PINS[*]}"
        pins_installed() {
            local have
            have="$(cat "$cache/site/.pins" 2>/dev/null)" || return 1
            [[ "$have" == "$want_pins" || "$have" == "$all_pins" ]]
        }
        site="$cache/site"
        if [[ -n "$cuda_libs" ]]; then
            site="$(cd "$cuda_libs" && pwd)"
            for need in libcudart.so.13 libcublas.so.13 libcudnn.so.9; do
                [[ -n "$(find "$site" -name "$need*" -print -quit)" ]] ||
                    die "--cuda-libs $cuda_libs: no $need in it"
            done
            log "CUDA and cuDNN libraries from $site"
        elif ! pins_installed; then
            log "installing CUDA 13, cuDNN 9$([[ "$no_trt" == 1 ]] || echo " and TensorRT 10") libraries (pinned, several GB) into $cache/site"
            rm -rf "$cache/site"
            "$py" -m pip install --quiet --no-deps --only-binary=:all: --target "$cache/site" \
                "${pip_src[@]}" "${NVIDIA_PINS[@]}" || die "cannot install the CUDA/cuDNN libraries (no network? use --wheels DIR)"
            trt_src=(--extra-index-url "$NVIDIA_INDEX")
            [[ -n "$wheels" ]] && trt_src=("${pip_src[@]}")
            [[ "$no_trt" == 1 ]] ||
                "$py" -m pip install --quiet --no-deps --target "$cache/site" "${trt_src[@]}" "$TRT_PIN" ||
                die "cannot install $TRT_PIN (its wheel comes from $NVIDIA_INDEX; or use --wheels DIR, or --no-tensorrt)"
            echo "$want_pins" >"$cache/site/.pins"
        fi
        libdirs="$(find "$site" -name 'lib*.so*' -printf '%h\n' | sort -u | tr '\n' ':')"
        export LD_LIBRARY_PATH="$(dirname "$lib"):${libdirs}${LD_LIBRARY_PATH:-}"
    fi
elif [[ -z "${ORT_DYLIB_PATH:-}" ]]; then
    [[ "$dry" == 1 ]] || die "aarch64: PyPI has no onnxruntime-gpu wheel; set ORT_DYLIB_PATH to a GPU build of ONNX Runtime (JetPack's libonnxruntime.so) and rerun"
    log "dry run: aarch64 needs ORT_DYLIB_PATH set to a GPU build of ONNX Runtime"
fi

# The binary.
if [[ -z "$bin" ]]; then
    (cd "$root" && cargo build --release --quiet) || die "cargo build --release failed"
    bin="$root/target/release/edgebench"
fi
[[ -x "$bin" ]] || die "$bin: not an executable"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
eb() { "$bin" "$@"; }

# 3. The providers.
gpu_rows=0
if [[ "$dry" == 0 ]]; then
    eb engines --json >"${TMPDIR:-/tmp}/gpu-check-engines.json" || die "edgebench engines failed (see above)"
    "$py" - "${TMPDIR:-/tmp}/gpu-check-engines.json" "$no_trt" <<'EOF' || exit 1
import json, sys
e = json.load(open(sys.argv[1]))
text = json.dumps(e)
wanted = ("CUDAExecutionProvider",) + (() if sys.argv[2] == "1" else ("TensorrtExecutionProvider",))
missing = [p for p in wanted if p not in text]
if missing:
    print(f"gpu-check: error: the ONNX Runtime library has no {', '.join(missing)} (is ORT_DYLIB_PATH a GPU build?)", file=sys.stderr)
    sys.exit(1)
EOF
    gpu_rows=1
fi

# 4. Data, model and its variants.
if [[ -z "$work" ]]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
cd "$work"
log "data and model in $work"
# A dry run (CI, often a debug build) trains on fewer images.
n_train=1600 classes=8
[[ "$dry" == 1 ]] && n_train=480 classes=4
eb data synth -o train --classes "$classes" --count "$n_train" --size 64 --seed 1 >/dev/null
eb data synth -o val --classes "$classes" --count 256 --size 64 --seed 2 >/dev/null
eb train --model lean --data train --input-size 64x64 --epochs 3 --optimizer adam --seed 0 --export lean.onnx >train.log 2>&1 ||
    die "training lean failed: $(tail -n1 train.log)"
eb quantize lean.onnx --to fp16 -o lean-fp16.onnx >/dev/null
eb quantize lean.onnx --calibrate train --activations symmetric -o lean-int8.onnx >/dev/null 2>int8.err ||
    die "quantizing lean to int8 failed: $(tail -n1 int8.err)"
# The CPU rows run int8 with 7-bit weights where ONNX Runtime's CPU kernels need them
# (x86-64 without VNNI; quantize says so), as `MODEL@int8` does.
cpu_int8=lean-int8
if grep -q "has no VNNI" int8.err; then
    eb quantize lean.onnx --calibrate train --activations symmetric --reduce-range \
        -o lean-int8-cpu.onnx >/dev/null 2>&1 || die "quantizing lean to int8 (reduced range) failed"
    cpu_int8=lean-int8-cpu
    log "this CPU has no VNNI: its int8 rows use 7-bit weights (--reduce-range)"
fi
# The held-out images, preprocessed as the model's loader does, as one .npy.
eb quantize lean.onnx --calibrate val --calibrate-images 256 --save-calibration val.npy \
    -o scratch.onnx >/dev/null 2>&1 || die "writing the held-out images as .npy failed"

# 5 and 6. Outputs and speed per model and provider (a dry run times briefly).
secs=2
[[ "$dry" == 1 ]] && secs=0.3
providers=(cpu)
[[ "$gpu_rows" == 1 ]] && providers=(cpu cuda)
[[ "$gpu_rows" == 1 && "$no_trt" == 0 ]] && providers+=(tensorrt)
for p in "${providers[@]}"; do
    flags=(--engine ort --ep "$p")
    case "$p" in
    cuda) flags+=(--no-tf32) ;;
    tensorrt) flags+=(--trt-fp16 --trt-int8 --trt-cache "$cache/trt-cache") ;;
    esac
    for m in lean lean-fp16 lean-int8; do
        src="$m.onnx"
        [[ "$p" == cpu && "$m" == lean-int8 ]] && src="$cpu_int8.onnx"
        eb run "$src" --input val.npy --output "out-$m-$p.npy" "${flags[@]}" --json >"run-$m-$p.json" 2>"run-$m-$p.err" ||
            echo "$(tail -n1 "run-$m-$p.err")" >"fail-$m-$p.txt"
        eb profile "$src" --warmup 1 --runs 3 --json "${flags[@]}" >"prof-$m-$p.json" 2>/dev/null || true
        eb bench "$src" --batch 1 --no-peak --warmup-time 0.2 --min-duration "$secs" \
            --tegrastats-interval 0 --json "bench1-$m-$p.json" "${flags[@]}" >/dev/null 2>&1 || true
        eb bench "$src" --batch 32 --no-peak --warmup-time 0.2 --min-duration "$secs" \
            --tegrastats-interval 0 --json "bench32-$m-$p.json" "${flags[@]}" >/dev/null 2>&1 || true
    done
done

# 7. The table.
rc=0
"$py" - "$gpu_rows" "$dry" "$no_trt" <<'EOF' || rc=$?
import glob, json, os, sys
import numpy as np

gpu_rows, dry, no_trt = sys.argv[1] == "1", sys.argv[2] == "1", sys.argv[3] == "1"
ref = np.load("out-lean-cpu.npy")
scale = float(np.abs(ref).max())
ref_top1 = ref.reshape(ref.shape[0], -1).argmax(1)
labels = None
tol = {("lean", "cpu"): 1e-4, ("lean", "cuda"): 1e-4, ("lean", "tensorrt"): 1e-3}

def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None

SHORT = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda",
         "TensorrtExecutionProvider": "trt"}

def ran_as(r):
    # profile's groups of compute nodes per provider and precision -> "cuda fp16 ×3"
    if not r or not r.get("compute_ran_as"):
        return "-"
    return ", ".join(f"{SHORT.get(g['provider'], g['provider'])} {g['precision']} ×{g['nodes']}"
                     for g in r["compute_ran_as"])

def stat(r, key):
    if not r:
        return "-"
    (m,) = r["models"]
    if key == "p90":
        ss = m.get("single_stream") or {}
        v = (ss.get("latency_ms") or {}).get("p90")
        return f"{v:.3f} ms" if v else "-"
    off = m.get("offline") or {}
    v = off.get("throughput_ips")
    return f"{v:,.0f}/s" if v else "-"

rows, failed = [], 0
for p in ("cpu", "cuda", "tensorrt"):
    for m, prec in (("lean", "fp32"), ("lean-fp16", "fp16"), ("lean-int8", "int8")):
        if p != "cpu" and not gpu_rows:
            rows.append([p, prec, "-", "-", "-", "-", "-", "not run (dry run: no GPU)"])
            continue
        if p == "tensorrt" and no_trt:
            rows.append([p, prec, "-", "-", "-", "-", "-", "not run (--no-tensorrt)"])
            continue
        fail = f"fail-{m}-{p}.txt"
        if os.path.exists(fail):
            rows.append([p, prec, "-", "-", "-", "-", "-", "FAIL: " + open(fail).read().strip()[:70]])
            failed += 1
            continue
        out = np.load(f"out-{m}-{p}.npy")
        top1 = out.reshape(out.shape[0], -1).argmax(1)
        agree = float((top1 == ref_top1).mean())
        gap = float(np.abs(out - ref).max()) / scale
        if not np.isfinite(out).all():
            ok, why = False, "non-finite outputs"
        elif prec == "int8":
            ok, why = agree >= 0.99, f"top-1 agreement {agree:.1%} (≥ 99%)"
        else:
            t = tol.get((m, p), 1e-2)
            ok, why = gap <= t, f"max |Δ| {gap:.1e} of the largest (≤ {t:.0e})"
        info = load(f"run-{m}-{p}.json") or {}
        ran = (info.get("engine") or {}).get("provider", "?")
        b1, b32 = load(f"bench1-{m}-{p}.json"), load(f"bench32-{m}-{p}.json")
        rows.append([p, prec, ran, ran_as(load(f"prof-{m}-{p}.json")), stat(b1, "p90"),
                     stat(b32, "tput"), f"{agree:.1%}",
                     ("ok: " if ok else "FAIL: ") + why])
        failed += not ok

head = ["provider", "model", "ran on", "conv/matmul ran as", "p90 batch 1", "batch 32", "top-1 = fp32 cpu", "check"]
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
print(line(head))
for r in rows:
    print(line(r))
sys.exit(1 if failed else 0)
EOF
log "$([[ "$dry" == 1 ]] && echo "dry run " || echo "")done in $((SECONDS - started)) s"
exit "$rc"
