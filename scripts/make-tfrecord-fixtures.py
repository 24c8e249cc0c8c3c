#!/usr/bin/env python3
"""TFRecord interop fixtures, both directions, with TensorFlow itself.

(a) write: TensorFlow's own tf.io.TFRecordWriter + tf.train.Example write
    tests/fixtures/tfrecord/tf-written.tfrecord (4 tiny images: JPEG and PNG, RGB and
    gray, labels and class names) and tf-written.json (the labels, sizes and encoded
    lengths that `cargo test` expects edgebench to read back).
(b) read: tests/fixtures/tfrecord/ours.tfrecord and ours.json, written by
    `edgebench data pack` (see below), are read with tf.data.TFRecordDataset +
    tf.io.parse_single_example; labels, class names, format and decoded sizes are
    checked against the JSON.

Run:
    py=$(scripts/tf-env.sh)               # venv .cache/tfenv with tensorflow-cpu
    $py scripts/make-tfrecord-fixtures.py          # (b) check, then (a) rewrite
    $py scripts/make-tfrecord-fixtures.py --check  # (b) only

ours.tfrecord is made from tests/fixtures/tfrecord/ours-src (a tiny synth set):
    edgebench data synth -o tests/fixtures/tfrecord/ours-src --classes 3 --count 6 \\
        --size 24 --seed 1
    edgebench data pack tests/fixtures/tfrecord/ours-src \\
        -o tests/fixtures/tfrecord/ours.tfrecord
(`cargo test` checks that ours.tfrecord still matches what `data pack` writes.)
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tfrecord")

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    "image/class/text": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/height": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "image/width": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


def _bytes(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _int(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))


def write_tf_fixture():
    classes = ["apple", "banana", "cherry"]
    rng = np.random.default_rng(42)
    specs = [  # (label, format, height, width, channels)
        (0, "jpeg", 8, 12, 3),
        (2, "png", 10, 6, 3),
        (1, "jpeg", 16, 16, 1),
        (2, "png", 5, 7, 1),
    ]
    items = []
    path = os.path.join(HERE, "tf-written.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for label, fmt, h, wd, c in specs:
            pixels = rng.integers(0, 256, size=(h, wd, c), dtype=np.uint8)
            enc = tf.io.encode_jpeg(pixels, quality=90) if fmt == "jpeg" else tf.io.encode_png(pixels)
            enc = enc.numpy()
            ex = tf.train.Example(features=tf.train.Features(feature={
                "image/encoded": _bytes(enc),
                "image/class/label": _int(label),
                "image/class/text": _bytes(classes[label].encode()),
                "image/format": _bytes(fmt.encode()),
                "image/height": _int(h),
                "image/width": _int(wd),
            }))
            w.write(ex.SerializeToString())
            items.append({"label": label, "format": fmt, "height": h, "width": wd,
                          "channels": c, "encoded_len": len(enc)})
    meta = {"written_by": f"tensorflow {tf.__version__} tf.io.TFRecordWriter",
            "classes": classes, "items": items}
    with open(os.path.join(HERE, "tf-written.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(items)} records with TensorFlow {tf.__version__}")


def check_ours():
    path = os.path.join(HERE, "ours.tfrecord")
    with open(os.path.join(HERE, "ours.json")) as f:
        want = json.load(f)
    n = 0
    for i, raw in enumerate(tf.data.TFRecordDataset(path)):
        ex = tf.io.parse_single_example(raw, FEATURES)
        img = tf.io.decode_image(ex["image/encoded"], channels=3)
        w = want["items"][i]
        got = {
            "label": int(ex["image/class/label"]),
            "class": ex["image/class/text"].numpy().decode(),
            "format": ex["image/format"].numpy().decode(),
            "height": int(img.shape[0]),
            "width": int(img.shape[1]),
        }
        assert got == w, f"record {i}: TensorFlow read {got}, expected {w}"
        assert int(ex["image/height"]) == got["height"] and int(ex["image/width"]) == got["width"]
        n += 1
    assert n == len(want["items"]), f"{n} records, expected {len(want['items'])}"
    print(f"TensorFlow {tf.__version__} read {path}: {n} records, labels and sizes as expected")


if __name__ == "__main__":
    check_ours()
    if "--check" not in sys.argv:
        write_tf_fixture()
