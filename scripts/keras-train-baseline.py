#!/usr/bin/env python3
"""Keras (TF-CPU) training speed of the lean model on data in memory: the reference that
`edgebench train` is measured against (issue 16).

Usage (with the pinned TensorFlow of scripts/tf-env.sh):
    python scripts/keras-train-baseline.py --x x.npy --y y.npy [--batch 32] [--epochs 2]
        [--optimizer adam|sgd] [--threads N]

x.npy holds N×C×H×W float32 inputs (edgebench's `.npy` layout; transposed to NHWC here,
outside the timing), y.npy N integer labels. The model is models/lean.toml in Keras:
conv 32/64/128 3×3 same + ReLU, each followed by 2×2 max-pool, flatten, dense softmax
over the labels' classes. Adam (lr 1e-3) or SGD momentum 0.9 (lr 0.01), as `edgebench
train --optimizer adam|sgd` defaults. Each epoch's wall time is measured by a callback;
the last line is JSON: images/s per epoch and of the last epoch (the first one includes
tracing and warm-up).
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--x", required=True)
    ap.add_argument("--y", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: TF's default)")
    a = ap.parse_args()
    if a.batch < 1 or a.epochs < 1:
        sys.exit("keras-train-baseline: --batch and --epochs must be at least 1")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    try:
        x = np.load(a.x)
        y = np.load(a.y)
    except (OSError, ValueError) as e:
        sys.exit(f"keras-train-baseline: {e}")
    if x.ndim != 4 or x.dtype != np.float32 or len(y) != len(x):
        sys.exit(f"keras-train-baseline: {a.x}: expected N×C×H×W float32 and {len(x)} labels, "
                 f"got shape {x.shape} {x.dtype} and {len(y)} labels")
    if not np.isfinite(x).all():
        sys.exit(f"keras-train-baseline: {a.x}: non-finite values")
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = y.astype(np.int64)
    classes = int(y.max()) + 1
    h, w, c = x.shape[1:]

    L = tf.keras.layers
    model = tf.keras.Sequential([
        tf.keras.Input((h, w, c)),
        L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(64, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(128, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(classes, activation="softmax"),
    ])
    opt = (tf.keras.optimizers.Adam(1e-3) if a.optimizer == "adam"
           else tf.keras.optimizers.SGD(0.01, momentum=0.9))
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Timer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.secs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.secs.append(time.perf_counter() - self.t0)

    timer = Timer()
    hist = model.fit(x, y, batch_size=a.batch, epochs=a.epochs, shuffle=True, verbose=0,
                     callbacks=[timer])
    ips = [len(x) / s for s in timer.secs]
    for i, (s, r) in enumerate(zip(timer.secs, ips)):
        print(f"keras epoch {i + 1}/{a.epochs}: loss {hist.history['loss'][i]:.4f}, "
              f"{r:.1f} images/s, {s:.2f} s")
    print(json.dumps({"tensorflow": tf.__version__, "images": len(x), "shape": [h, w, c],
                      "batch": a.batch, "optimizer": a.optimizer, "threads": a.threads,
                      "images_per_s": ips, "last_epoch_images_per_s": ips[-1]}))


if __name__ == "__main__":
    main()
