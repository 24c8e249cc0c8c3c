#!/usr/bin/env python3
"""Compare .npy outputs of different builds/engines against a reference (qemu-check.sh).

Usage: compare-npy.py TOL REF.npy OTHER.npy [OTHER.npy ...]

Prints each file's values and its maximum absolute difference to REF; exits 1 when a
shape differs or a difference exceeds TOL (or is not finite), 2 on bad arguments.
"""
import sys

import numpy as np


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        tol = float(argv[0])
    except ValueError:
        print(f"compare-npy: TOL '{argv[0]}' is not a number", file=sys.stderr)
        return 2
    ref_path, others = argv[1], argv[2:]
    ref = np.load(ref_path)
    np.set_printoptions(precision=6, suppress=True, linewidth=120)
    print(f"{ref_path}: shape {ref.shape} {ref.dtype} {ref.ravel()[:10]}")
    ok = True
    for path in others:
        got = np.load(path)
        if got.shape != ref.shape:
            print(f"{path}: shape {got.shape} differs from {ref.shape}")
            ok = False
            continue
        diff = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))
        good = np.isfinite(diff) and diff <= tol
        ok &= good
        verdict = "ok" if good else f"ABOVE {tol:g}"
        print(f"{path}: {got.ravel()[:10]} max |diff| {diff:.3g} ({verdict})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
