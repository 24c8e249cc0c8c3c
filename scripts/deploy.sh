#!/usr/bin/env bash
# Copy an edgebench bundle to a Jetson over ssh, run a command there, fetch its reports.
#
# Usage: scripts/deploy.sh [options] HOST TARGET [-- EDGEBENCH-ARGS...]
#   HOST            ssh destination: user@board or a Host alias of ~/.ssh/config (ports,
#                   keys and jump hosts go there)
#   TARGET          the board, a name from targets/ (e.g. jetson-orin-nano)
#   EDGEBENCH-ARGS  the edgebench command run on the board (default: compare). bench and
#                   compare get `--json report.json --report report.html` when neither
#                   is given, and `--target TARGET` when no --target is given
#   --dir DIR       bundle folder on the board (default: edgebench, under the remote home)
#   --ort PATH      ONNX Runtime library on the board (a JetPack build with CUDA/TensorRT):
#                   ORT_DYLIB_PATH for the run; default: the bundle's CPU-only library
#   --out DIR       local folder the run's files are copied into
#                   (default: target/jetson-runs/HOST-TARGET-<UTC time>)
#   --bundle DIR    bundle to copy (default: target/jetson/TARGET)
#   --no-build      copy the bundle as it is (default: run cross-build.sh TARGET first;
#                   quick when nothing changed)
#   --copy HOW      auto (rsync, falling back to scp when rsync fails), rsync or scp
#   --dry-run       print the commands instead of running them
#   -h, --help      this text
#
# On the board the command runs in DIR/runs/<UTC time>/, so relative output paths
# (--json, --report, --trace, ...) land there; that folder is copied back whole, even
# when the command fails. Exit status: the remote edgebench's, else 1 a failure,
# 2 bad arguments.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cross-common.sh
source "$root/scripts/cross-common.sh"
PROG=deploy

usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

dir="edgebench" ort="" out="" bundle="" build=1 copy=auto dry=0
pos=() eb_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --dir | --ort | --out | --bundle | --copy)
        [[ $# -ge 2 && -n "$2" ]] || usage_error "$1 needs a value"
        case "$1" in
        --dir) dir="$2" ;;
        --ort) ort="$2" ;;
        --out) out="$2" ;;
        --bundle) bundle="$2" ;;
        --copy) copy="$2" ;;
        esac
        shift 2
        ;;
    --no-build) build=0 && shift ;;
    --dry-run) dry=1 && shift ;;
    -h | --help) usage && exit 0 ;;
    --)
        shift
        eb_args=("$@")
        break
        ;;
    -*) usage_error "unknown option '$1' (try --help)" ;;
    *) pos+=("$1") && shift ;;
    esac
done
[[ ${#pos[@]} -ge 1 ]] || usage_error "missing HOST and TARGET (usage: deploy.sh [options] HOST TARGET [-- EDGEBENCH-ARGS...])"
[[ ${#pos[@]} -ge 2 ]] || usage_error "missing TARGET after HOST '${pos[0]}'; known targets: $(known_targets)"
[[ ${#pos[@]} -eq 2 ]] || usage_error "unexpected argument '${pos[2]}' (edgebench's arguments go after --)"
host="${pos[0]}" target="${pos[1]}"
host_re='^[][A-Za-z0-9._@:%-]+$'
[[ "$host" =~ $host_re && "$host" != -* ]] || usage_error "HOST '$host' is not an ssh destination"
load_target "$target"
case "$copy" in auto | rsync | scp) ;; *) usage_error "--copy '$copy': expected auto, rsync or scp" ;; esac
[[ "$dir" != *$'\n'* ]] || usage_error "--dir must be one line"
dir="${dir#\~/}" # ssh, scp and rsync start in the remote home
[[ -n "$dir" && "$dir" != "~" ]] || dir="."
[[ -n "$bundle" ]] || bundle="$root/target/jetson/$target"
stamp="$(date -u +%Y%m%d-%H%M%S)"
[[ -n "$out" ]] || out="$root/target/jetson-runs/$host-$target-$stamp"
[[ ${#eb_args[@]} -gt 0 ]] || eb_args=(compare)
[[ "$dry" == 1 || ! -e "$out" ]] || die "$out already exists: not overwriting it (give another --out)"

# bench and compare: reports into the run folder, verdicts against this board.
case "${eb_args[0]}" in
bench | compare)
    has() {
        local a
        for a in "${eb_args[@]}"; do [[ "$a" == "$1" || "$a" == "$1="* ]] && return 0; done
        return 1
    }
    if ! has --json && ! has --report; then eb_args+=(--json report.json --report report.html); fi
    has --target || eb_args+=(--target "$target")
    ;;
esac

# Single-quote for the remote POSIX shell.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
run_dir="$dir/runs/$stamp"
remote="set -e; mkdir -p $(sq "$run_dir"); cd $(sq "$run_dir"); "
[[ -z "$ort" ]] || remote+="ORT_DYLIB_PATH=$(sq "$ort"); export ORT_DYLIB_PATH; "
remote+="exec ../../edgebench"
for a in "${eb_args[@]}"; do remote+=" $(sq "$a")"; done

# `run CMD...`: print it (dry run) or run it.
run() {
    if [[ "$dry" == 1 ]]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        log "$(printf '%q ' "$@")"
        "$@"
    fi
}

if [[ "$build" == 1 ]]; then
    run bash "$root/scripts/cross-build.sh" --out "$bundle" "$target"
fi
if [[ "$dry" == 0 ]]; then
    [[ -f "$bundle/BUILD-INFO" && -x "$bundle/edgebench" ]] ||
        die "$bundle is not a bundle from cross-build.sh (run scripts/cross-build.sh $target)"
    bundle="$(cd "$bundle" && pwd)"
fi
[[ "$copy" != auto ]] || { command -v rsync >/dev/null && copy=rsync-then-scp || copy=scp; }

run ssh "$host" "mkdir -p $(sq "$dir")"
scp_bundle() {
    local items=("$bundle"/edgebench "$bundle"/lib "$bundle"/models "$bundle"/targets "$bundle"/run.sh "$bundle"/README.md "$bundle"/BUILD-INFO)
    run scp -r -q "${items[@]}" "$host:$dir/"
}
case "$copy" in
rsync) run rsync -a --delete --exclude /runs/ -e ssh "$bundle/" "$host:$dir/" ;;
scp) scp_bundle ;;
rsync-then-scp)
    if ! run rsync -a --delete --exclude /runs/ -e ssh "$bundle/" "$host:$dir/"; then
        log "rsync failed (missing on the board?): copying with scp"
        copy=scp
        scp_bundle
    fi
    ;;
esac

status=0
run ssh "$host" "$remote" || status=$?
if [[ "$status" == 255 ]]; then
    log "ssh $host failed (status 255: connection or authentication); trying to fetch the run folder"
elif [[ "$status" != 0 ]]; then
    log "edgebench on $host exited with status $status; fetching what it wrote"
fi

# Copy the run folder back: into a temporary sibling of --out, then renamed into place.
if [[ "$dry" == 0 ]]; then
    mkdir -p "$(dirname "$out")"
    [[ ! -e "$out" ]] || die "$out already exists: not overwriting it (give another --out)"
    fetch="$(mktemp -d "$(dirname "$out")/.deploy-fetch.XXXXXX")"
    trap 'rm -rf "$fetch"' EXIT
fi
fetched=0
case "$copy" in
rsync | rsync-then-scp) run rsync -a -e ssh "$host:$run_dir" "${fetch:-OUT-TMP}/" && fetched=1 ;;
esac
[[ "$fetched" == 1 ]] || run scp -r -q "$host:$run_dir" "${fetch:-OUT-TMP}/" || die "could not copy $host:$run_dir back"
if [[ "$dry" == 0 ]]; then
    mv "$fetch/$stamp" "$out"
    log "files of the run in $out: $(cd "$out" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')"
else
    echo "+ mv OUT-TMP/$stamp $(printf '%q' "$out")"
fi
exit "$status"
