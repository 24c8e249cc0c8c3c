#!/usr/bin/env python3
"""The seed's Example 2 input pipeline in TensorFlow, to compare `edgebench loader` with.

    $(scripts/tf-env.sh) scripts/tfdata-baseline.py DIR [--epochs 3] [--batch 16]

DIR holds JPEG files (any depth, e.g. `edgebench data synth` output). The pipeline is
tf.data as the seed writes it: list the files, `read_file` → `decode_jpeg(channels=3)` →
`convert_image_dtype(float32)` (values in [0, 1]) in `map(num_parallel_calls=AUTOTUNE)`,
`batch`, `prefetch(AUTOTUNE)`, iterated for `--epochs` epochs after one warm-up epoch.
Prints images/s over the timed epochs, and the process CPU seconds per image.
"""
import argparse
import glob
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.dir, "**", "*.jp*g"), recursive=True))
    if not files:
        print(f"{args.dir}: no .jpg/.jpeg files", file=sys.stderr)
        return 1
    import tensorflow as tf

    def load(path):
        img = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.image.convert_image_dtype(img, tf.float32)

    ds = (
        tf.data.Dataset.from_tensor_slices(files)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(args.batch)
        .prefetch(tf.data.AUTOTUNE)
    )
    for _ in ds:  # warm-up epoch: graph tracing, thread pools, page cache
        pass
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    n = 0
    for _ in range(args.epochs):
        for batch in ds:
            n += int(batch.shape[0])
    dt = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(f"tf.data {tf.__version__}: {n} images in {dt:.3f} s: {n / dt:,.0f} images/s; "
          f"CPU {cpu / n * 1e6:,.0f} µs per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
