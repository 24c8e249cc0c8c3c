#!/usr/bin/env bash
# The check of `edgebench shrink` against the built-in zoo (issue 17), end to end:
#   1. a labelled synthetic set at 64×64 (6 classes; 2,400 training images, 600 held out
#      with another seed);
#   2. `edgebench shrink --model lean --target jetson-nano --time 15m` over widths
#      0.25…2 × sizes 32,48,64 × fp32,int8, timed;
#   3. every zoo variant (lean, lean-w0.5, lean-w2, mobile) trained at 64×64 with the same
#      optimizer, seed and batch for as many images as the chosen model trained;
#   4. one `compare` of the chosen model and the four on the held-out set (top-1 through
#      the same engine, verdicts against jetson-nano);
#   5. checks: the search ended within its --time, the chosen model fits every budget,
#      and its top-1 is at least that of every zoo variant that fits.
#
# Usage: scripts/shrink-check.sh [--time 15m] [--work DIR] [--bin PATH]
# Takes the --time plus a few minutes on a 2-core machine (a release build first when
# --bin is not given). Exit status: 0 the checks hold, 1 one failed, 2 bad arguments.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
time_budget=15m work="" bin=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --time) time_budget="$2" && shift 2 ;;
    --work) work="$2" && shift 2 ;;
    --bin) bin="$2" && shift 2 ;;
    -h | --help) sed -n '2,17p' "$0" && exit 0 ;;
    *) echo "shrink-check: unknown argument $1 (see --help)" >&2 && exit 2 ;;
    esac
done
if [[ -z "$bin" ]]; then
    (cd "$root" && cargo build --release --quiet)
    bin="$root/target/release/edgebench"
fi
[[ -x "$bin" ]] || { echo "shrink-check: $bin is not an executable" >&2; exit 2; }
if [[ -z "$work" ]]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
cd "$work"
eb() { echo "\$ edgebench $*" >&2; "$bin" "$@"; }

eb data synth -o train --classes 6 --count 2400 --size 64 --seed 1 >/dev/null
eb data synth -o val --classes 6 --count 600 --size 64 --seed 2 >/dev/null
rm -rf search
started=$(date +%s)
eb shrink --model lean --data train --val val --target jetson-nano --time "$time_budget" \
    --sizes 32,48,64 --batch 32 --optimizer adam --seed 0 --out search --quiet | tee shrink.txt
wall=$(($(date +%s) - started))
read -r chosen model images < <(python3 -c '
import json
r = json.load(open("search/shrink.json"))
c = r["chosen"]
print(c["name"], c["model_file"], c["images_trained"])')
steps=$((images / 32))
echo "chosen $chosen ($model) after $images images ($steps steps), search wall time ${wall} s"
zoo=()
for m in lean lean-w0.5 lean-w2 mobile; do
    eb train --model "$m" --data train --input-size 64x64 --batch 32 --optimizer adam --seed 0 \
        --epochs 1000 --max-steps "$steps" --export "zoo-$m.onnx" --quiet >/dev/null
    zoo+=("zoo-$m.onnx")
done
eb compare "search/$model" "${zoo[@]}" --data val --target jetson-nano --min-duration 1 \
    --json zoo-compare.json --quiet
python3 - "$wall" "$time_budget" <<'EOF'
import json, re, sys
wall, budget = int(sys.argv[1]), sys.argv[2]
secs = sum(float(v) * {"s": 1, "m": 60, "h": 3600}[u] for v, u in re.findall(r"([\d.]+)([smh])", budget))
r = json.load(open("zoo-compare.json"))
fits = lambda m: all(v["status"] != "over" for v in m["verdicts"])
chosen, zoo = r["models"][0], r["models"][1:]
print(f"{'model':28} {'top-1':>7} {'p90 ms':>8} {'peak MiB':>9}  budget")
for m in r["models"]:
    ss = m["single_stream"]["latency_ms"]["p90"]
    print(f"{m['name']:28} {100 * m['accuracy']:6.2f}% {ss:8.2f} {m['memory']['peak_rss_bytes'] / 2**20:9.1f}  {'fits' if fits(m) else 'over'}")
ok = True
if wall > secs + 60:
    print(f"FAIL: the search took {wall} s, over its --time {budget} ({secs:.0f} s)"); ok = False
if not fits(chosen):
    print(f"FAIL: the chosen model {chosen['name']} does not fit jetson-nano"); ok = False
for m in zoo:
    if fits(m) and m["accuracy"] > chosen["accuracy"]:
        print(f"FAIL: {m['name']} (fits) is more accurate than the chosen model"); ok = False
print(f"search {wall} s of {secs:.0f} s; chosen {chosen['name']} top-1 {100 * chosen['accuracy']:.2f}%"
      + ("; at least every zoo variant that fits" if ok else ""))
sys.exit(0 if ok else 1)
EOF
