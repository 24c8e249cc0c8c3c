#!/usr/bin/env bash
# Tests of deploy.sh without a board: argument handling and exit codes, --dry-run, the
# bundle's contents, and the whole flow against a fake board: `ssh` and `scp` on PATH
# are stand-ins that record their arguments and act on a folder (the board's home), and
# the bundle's aarch64 edgebench really runs there under qemu (binfmt_misc).
#
# Usage: scripts/test-deploy.sh [BUNDLE]   (default: target/jetson/jetson-nano; the
#        end-to-end part is skipped, and said so, when there is no bundle)
# Prints one line per check and closes with 'N passed, N failed'; exit 1 on a failure.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/cross-common.sh
source "$root/scripts/cross-common.sh"
PROG=test-deploy
bundle="${1:-$root/target/jetson/jetson-nano}"
deploy="$root/scripts/deploy.sh"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/test-deploy.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
pass() {
    echo "ok   $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL $1"
    [[ -z "${2:-}" ]] || sed 's/^/     | /' <<<"$2" | head -n 20
    failed=$((failed + 1))
}
# `expect NAME CODE PATTERN CMD...`: CMD exits with CODE and its output matches PATTERN.
expect() {
    local name="$1" code="$2" pattern="$3" out rc
    shift 3
    out="$("$@" 2>&1)"
    rc=$?
    if [[ "$rc" == "$code" ]] && grep -Eq -- "$pattern" <<<"$out"; then
        pass "$name"
    else
        fail "$name (exit $rc, wanted $code and /$pattern/)" "$out"
    fi
}

# ---- the fake board ----------------------------------------------------------------
board="$tmp/board" fakebin="$tmp/bin" calls="$tmp/calls.log"
mkdir -p "$board" "$fakebin"
: >"$calls"
cat >"$fakebin/ssh" <<'EOF'
#!/usr/bin/env bash
# Fake ssh: `ssh [opts] HOST CMD...` runs CMD with sh in $FAKE_BOARD (the board's home).
echo "ssh $*" >>"$FAKE_CALLS"
while [[ $# -gt 0 && "$1" == -* ]]; do
    case "$1" in -[pilFJoEc]) shift 2 ;; *) shift ;; esac
done
shift # HOST
cd "$FAKE_BOARD" && HOME="$FAKE_BOARD" exec sh -c "$*"
EOF
cat >"$fakebin/scp" <<'EOF'
#!/usr/bin/env bash
# Fake scp: HOST:PATH is PATH under $FAKE_BOARD (relative paths only); copies with cp -R.
echo "scp $*" >>"$FAKE_CALLS"
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in -[PioFJc]) shift 2 ;; -*) shift ;; *) args+=("$1") && shift ;; esac
done
map() {
    if [[ "$1" == *:* && "$1" != /* ]]; then
        local p="${1#*:}"
        [[ "$p" != /* ]] || { echo "fake scp: absolute remote path $p" >&2; exit 1; }
        echo "$FAKE_BOARD/$p"
    else
        echo "$1"
    fi
}
paths=()
for a in "${args[@]}"; do paths+=("$(map "$a")"); done
exec cp -R "${paths[@]}"
EOF
chmod +x "$fakebin/ssh" "$fakebin/scp"
export FAKE_BOARD="$board" FAKE_CALLS="$calls" PATH="$fakebin:$PATH"

# ---- arguments -------------------------------------------------------------------------
expect "--help prints the usage" 0 '^Usage: scripts/deploy.sh' bash "$deploy" --help
expect "no arguments: exit 2" 2 'missing HOST and TARGET' bash "$deploy"
expect "HOST without TARGET: exit 2, known targets listed" 2 \
    "missing TARGET after HOST 'board'; known targets: .*jetson-nano.*jetson-orin-nano" bash "$deploy" board
expect "unknown target: exit 2, known targets listed" 2 \
    "unknown target 'jetson-tx9'; known targets: jetson-agx-orin jetson-nano jetson-orin-nano jetson-xavier-nx" \
    bash "$deploy" board jetson-tx9
expect "the host target is no cross target: exit 2" 2 "target 'host' .* not a cross target" bash "$deploy" board host
expect "unknown option: exit 2" 2 "unknown option '--bogus'" bash "$deploy" --bogus board jetson-nano
expect "option without its value: exit 2" 2 '--dir needs a value' bash "$deploy" board jetson-nano --dir
expect "bad --copy: exit 2" 2 "--copy 'ftp': expected auto, rsync or scp" bash "$deploy" --copy ftp board jetson-nano
expect "a third positional argument: exit 2" 2 "unexpected argument 'bench'" bash "$deploy" board jetson-nano bench
expect "a HOST with a space: exit 2" 2 "is not an ssh destination" bash "$deploy" 'a b' jetson-nano
expect "a missing bundle with --no-build: exit 1, says how to build it" 1 \
    'is not a bundle from cross-build.sh \(run scripts/cross-build.sh jetson-nano\)' \
    bash "$deploy" --no-build --bundle "$tmp/none" board jetson-nano

# ---- dry run ----------------------------------------------------------------------------
out="$(bash "$deploy" --dry-run --copy scp --ort /opt/ort/lib/libonnxruntime.so --dir /opt/eb \
    nvidia@orin jetson-orin-nano -- bench lean --min-duration 5 2>&1)"
rc=$?
if [[ "$rc" == 0 ]] &&
    grep -q '^+ bash .*/scripts/cross-build.sh --out .*/target/jetson/jetson-orin-nano jetson-orin-nano$' <<<"$out" &&
    grep -q "^+ ssh nvidia@orin mkdir.*/opt/eb" <<<"$out" &&
    grep -q "^+ scp -r -q .*/edgebench .*/lib .*BUILD-INFO nvidia@orin:/opt/eb/$" <<<"$out" &&
    grep "^+ ssh nvidia@orin set" <<<"$out" | grep -q "ORT_DYLIB_PATH=.*/opt/ort/lib/libonnxruntime.so.*exec.*bench.*lean.*--min-duration.*5.*--json.*report.json.*--report.*report.html.*--target.*jetson-orin-nano" &&
    grep -q "^+ scp -r -q nvidia@orin:/opt/eb/runs/" <<<"$out" && [[ ! -s "$calls" ]]; then
    pass "--dry-run prints build, ssh and scp commands (ORT_DYLIB_PATH, report paths, --target) and runs none"
else
    fail "--dry-run (exit $rc)" "$out"
fi
out="$(bash "$deploy" --dry-run --no-build nvidia@orin jetson-orin-nano -- compare --json mine.json --target jetson-nano 2>&1)"
if grep "^+ ssh nvidia@orin set" <<<"$out" | grep -q "exec.*compare.*--json.*mine.json.*--target.*jetson-nano[^-]*$" &&
    ! grep -q "report.html\|cross-build.sh" <<<"$out"; then
    pass "--dry-run keeps the user's --json and --target, and --no-build builds nothing"
else
    fail "--dry-run with the user's --json/--target" "$out"
fi

# ---- the bundle ---------------------------------------------------------------------------
if [[ ! -f "$bundle/BUILD-INFO" ]]; then
    echo "skip the bundle and end-to-end checks: no bundle at $bundle (scripts/cross-build.sh jetson-nano)"
else
    problems=""
    for f in edgebench lib/libonnxruntime.so run.sh README.md models/lean.toml models/heavy.toml \
        targets/jetson-nano.toml targets/jetson-orin-nano.toml; do
        [[ -s "$bundle/$f" ]] || problems+="missing $f; "
    done
    [[ -x "$bundle/run.sh" && -x "$bundle/edgebench" ]] || problems+="run.sh or edgebench not executable; "
    [[ "$(readelf -h "$bundle/edgebench" 2>/dev/null | grep -c 'Machine:.*AArch64')" == 1 ]] || problems+="edgebench is not AArch64; "
    [[ "$(readelf -h "$bundle/lib/libonnxruntime.so" 2>/dev/null | grep -c 'Machine:.*AArch64')" == 1 ]] || problems+="libonnxruntime.so is not AArch64; "
    sums="$(sed -n '/^sha256:/,$p' "$bundle/BUILD-INFO" | tail -n +2)"
    (cd "$bundle" && sha256sum --quiet -c <<<"$sums") >/dev/null 2>&1 || problems+="BUILD-INFO checksums do not match; "
    pin="$(sed -n 's/^glibc_pin=//p' "$bundle/BUILD-INFO")"
    newest="$(newest_glibc "$bundle/edgebench")"
    version_le "$newest" "$pin" || problems+="edgebench needs GLIBC_$newest > $pin; "
    [[ -z "$problems" ]] && pass "bundle: files, AArch64 ELFs, checksums, GLIBC_$newest <= $pin" ||
        fail "bundle $bundle" "$problems"

    # ---- end to end on the fake board -------------------------------------------------------
    ensure_debs 0 qemu-user-static libc6-dev-arm64-cross >/dev/null 2>&1 && (enable_binfmt) 2>/dev/null
    if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
        echo "skip the end-to-end checks: aarch64 programs cannot run here (qemu-user-static + binfmt_misc; scripts/qemu-check.sh sets them up)"
    else
        make_qemu_sysroot "$tmp/sysroot" cortex-a57
        export QEMU_LD_PREFIX="$tmp/sysroot" QEMU_CPU=cortex-a57 XDG_CACHE_HOME="$QEMU_CACHE"
        out="$(bash "$deploy" --no-build --bundle "$bundle" --copy scp --out "$tmp/reports" board jetson-nano -- \
            bench lean --size 32x32x3 --engine tract --scenario single-stream --warmup 1 --warmup-time 0 \
            --min-duration 0.1 --min-queries 2 --tegrastats-interval 0 --quiet --markdown "it's a table.md" 2>&1)"
        rc=$?
        echo "$out" | sed 's/^/     > /'
        if [[ "$rc" == 0 && -s "$tmp/reports/report.json" && -s "$tmp/reports/report.html" &&
            -s "$tmp/reports/it's a table.md" ]] &&
            grep -q '"schema": *"edgebench.report"' "$tmp/reports/report.json" &&
            grep -q '"arch": *"aarch64"' "$tmp/reports/report.json" &&
            grep -q '"name": *"jetson-nano"' "$tmp/reports/report.json" &&
            cmp -s "$bundle/edgebench" "$board/edgebench/edgebench" &&
            [[ -s "$board/edgebench/lib/libonnxruntime.so" ]]; then
            pass "deploy runs bench on the (emulated) board and brings report.json, report.html and a quoted file name back"
        else
            fail "deploy end to end (exit $rc)" "$(ls -la "$tmp/reports" 2>&1)"
        fi
        if grep -q '^ssh board mkdir' "$calls" && grep -q '^scp -r -q .*/edgebench .* board:edgebench/$' "$calls" &&
            grep -q "^ssh board set -e; mkdir -p 'edgebench/runs/" "$calls" && grep -q '^scp -r -q board:edgebench/runs/' "$calls"; then
            pass "deploy's ssh and scp calls: mkdir, bundle copy, run, copy back"
        else
            fail "deploy's ssh/scp calls" "$(cat "$calls")"
        fi
        out="$(bash "$deploy" --no-build --bundle "$bundle" --copy scp --out "$tmp/reports2" board jetson-nano -- \
            run no-such-model --input random 2>&1)"
        rc=$?
        if [[ "$rc" == 2 ]] && grep -q "edgebench on board exited with status 2" <<<"$out" && [[ -d "$tmp/reports2" ]]; then
            pass "a failing remote command: its exit status (2) comes back, the run folder too"
        else
            fail "failing remote command (exit $rc, wanted 2)" "$out"
        fi
        expect "an existing --out is never overwritten: exit 1" 1 "already exists: not overwriting" \
            bash "$deploy" --no-build --bundle "$bundle" --copy scp --out "$tmp/reports" board jetson-nano -- --version
    fi
fi

echo "$passed passed, $failed failed"
[[ "$failed" == 0 ]]
