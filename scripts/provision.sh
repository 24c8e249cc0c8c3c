#!/usr/bin/env bash
# Install, each at most once, everything the CI steps fetch from the network: the
# turbojpeg build tools (cmake, nasm), the Jetson cross toolchain (Debian rustc-web with
# its aarch64 std, the aarch64 gcc and runtime; zig and cargo-zigbuild from PyPI), ONNX
# Runtime for x86-64 and aarch64 (pinned PyPI wheels) and the pinned TensorFlow
# environment. Downloads and installs, little CPU: .ci/run starts it in the background
# while the first builds compile, and waits for it before the first step that needs it.
#
# Usage: scripts/provision.sh [--downloads]   (the scripts it calls stay the place each
# part is defined; running one of them later finds its part done)
#   --downloads   only what comes from PyPI (ONNX Runtime, TensorFlow), no apt: .ci/run
#                 installs the apt parts itself, ahead of its background cross build
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# One part: its output prefixed with its name, its duration, its failure named.
part() {
    local name="$1" t0=$SECONDS
    shift
    if "$@" 2>&1 | sed -u "s/^/[$name] /"; then
        echo "provision: $name done in $((SECONDS - t0)) s"
    else
        echo "provision: error: $name failed (see its lines above)"
        return 1
    fi
}

cross_tools() {
    PROG=provision
    # shellcheck source=cross-common.sh
    source "$root/scripts/cross-common.sh"
    ensure_build_tools 1
}

# The two apt users one after the other (apt holds a lock); the rest alongside.
apt_parts() {
    part build-deps bash scripts/build-deps.sh && part cross-tools cross_tools
}
onnxruntime() {
    bash scripts/fetch-onnxruntime.sh && bash scripts/fetch-onnxruntime.sh --arch aarch64
}

apt=1
case "${1:-}" in
--downloads) apt=0 ;;
"") ;;
*)
    echo "provision: unknown option '$1' (usage: scripts/provision.sh [--downloads])" >&2
    exit 2
    ;;
esac

started=$SECONDS
pids=()
if [[ "$apt" == 1 ]]; then
    apt_parts &
    pids+=($!)
fi
part onnxruntime onnxruntime &
pids+=($!)
part tensorflow bash scripts/tf-env.sh &
pids+=($!)
failed=0
for p in "${pids[@]}"; do
    wait "$p" || failed=1
done
echo "provision: all parts in $((SECONDS - started)) s"
exit "$failed"
