#!/usr/bin/env python3
"""TFRecord interop with TensorFlow itself, both directions: fixtures and a check.

--check --edgebench BIN  (what CI runs, through scripts/tfrecord-interop-check.sh)
    TensorFlow reads TFRecords that BIN writes now, in a temporary folder:
    1. `BIN data synth` writes a small class-folder set (JPEG and PNG), to which this
       script adds images TensorFlow encoded (a gray PNG, an RGB JPEG); `BIN data pack
       --shards 2` packs it. tf.data.TFRecordDataset (which checks both CRCs of every
       record) + tf.io.parse_single_example must read, record by record in folder order,
       the file's own bytes in image/encoded, the label (sorted class-folder index) and
       class name, the format (from the file's magic bytes) and the size TensorFlow's
       decoder finds, in image/height and image/width.
    2. `BIN data pack` repacks tf-written.tfrecord (below); TensorFlow must read back
       every feature it wrote.
    The expected values come from the folder on disk and from TensorFlow, never from
    edgebench. Any difference, unreadable record or missing feature fails (exit 1).
--check
    Only the committed files: ours.tfrecord read by TensorFlow against ours.json, and
    ours.json against what ours-src/ holds (as in 1).
(no --check) [--edgebench BIN]
    Rewrites the fixtures in tests/fixtures/tfrecord/: with BIN, ours-src/ and
    ours.tfrecord (edgebench's own output, see below); ours.json, the expected reading of
    ours.tfrecord, from ours-src/ as in 1; then the committed check; then tf-written.tfrecord
    and tf-written.json, which TensorFlow writes (tf.io.TFRecordWriter + tf.train.Example:
    4 tiny images, JPEG and PNG, RGB and gray) and `cargo test` reads with edgebench.

ours-src/ and ours.tfrecord are, by construction, what edgebench wrote:
    edgebench data synth -o tests/fixtures/tfrecord/ours-src --classes 3 --count 6 \\
        --size 24 --seed 1
    edgebench data pack tests/fixtures/tfrecord/ours-src \\
        -o tests/fixtures/tfrecord/ours.tfrecord
tests/data_cli.rs compares today's synth + pack output with them byte for byte: a change
detector (a deliberate format change regenerates them here), not the interop check.

Run:
    py=$(bash scripts/tf-env.sh)          # venv .cache/tfenv, pinned tensorflow-cpu
    $py scripts/make-tfrecord-fixtures.py --check --edgebench target/debug/edgebench
    $py scripts/make-tfrecord-fixtures.py --edgebench target/debug/edgebench  # rewrite
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # quiets its start-up notice; no math here
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                     "tests", "fixtures", "tfrecord"))
OURS_SRC = os.path.join(HERE, "ours-src")
OURS_SYNTH = ["--classes", "3", "--count", "6", "--size", "24", "--seed", "1"]
WRITTEN_BY = ("edgebench data pack tests/fixtures/tfrecord/ours-src "
              "-o tests/fixtures/tfrecord/ours.tfrecord")

# No defaults: a record without one of these features fails to parse.
FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    "image/class/text": tf.io.FixedLenFeature([], tf.string),
    "image/format": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
}


class Mismatch(Exception):
    """What TensorFlow read is not what was expected."""


def _bytes(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _int(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))


def magic_format(data):
    """The image format of encoded bytes, from their magic bytes."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    raise Mismatch(f"not a JPEG or PNG file ({data[:8]!r})")


def folder_expectation(src):
    """What packing the class folder `src` must give, found without edgebench: classes
    are the sorted sub-folder names (label = index), files sorted by name in each, the
    encoded bytes are the file's bytes, the size is what TensorFlow decodes."""
    classes = sorted(d for d in os.listdir(src)
                     if not d.startswith(".") and os.path.isdir(os.path.join(src, d)))
    items = []
    for label, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(src, c))):
            if f.startswith("."):
                continue
            with open(os.path.join(src, c, f), "rb") as fh:
                data = fh.read()
            shape = tf.io.decode_image(data).shape
            items.append({"label": label, "class": c, "format": magic_format(data),
                          "height": int(shape[0]), "width": int(shape[1]),
                          "encoded": data, "name": f"{c}/{f}"})
    return items


def tf_message(e):
    """The first line of a TensorFlow error, without its graph-function decoration."""
    msg = re.sub(r"\{\{[^}]*\}\}\s*", "", e.message.splitlines()[0] if e.message else str(e))
    return re.sub(r"\s*\[Op:.*$", "", msg)


def read_with_tf(paths):
    """Every record of the TFRecord files `paths`, in order, as TensorFlow parses it."""
    try:
        return _read_with_tf(paths)
    except tf.errors.OpError as e:
        names = ", ".join(os.path.basename(p) for p in paths)
        raise Mismatch(f"TensorFlow cannot read {names}: {tf_message(e)}") from e


def _read_with_tf(paths):
    out = []
    for i, raw in enumerate(tf.data.TFRecordDataset(paths)):
        ex = tf.io.parse_single_example(raw, FEATURES)
        enc = ex["image/encoded"].numpy()
        shape = tf.io.decode_image(enc).shape
        got = {
            "label": int(ex["image/class/label"]),
            "class": ex["image/class/text"].numpy().decode(),
            "format": ex["image/format"].numpy().decode(),
            "height": int(ex["image/height"]),
            "width": int(ex["image/width"]),
            "encoded": enc,
        }
        if (got["height"], got["width"]) != (int(shape[0]), int(shape[1])):
            raise Mismatch(f"record {i}: image/height, image/width say "
                           f"{got['height']}x{got['width']}, the image decodes to "
                           f"{shape[0]}x{shape[1]}")
        out.append(got)
    return out


def compare(what, got, want, keys):
    """Record by record, `keys` of what TensorFlow read (`got`) against `want`."""
    if len(got) != len(want):
        raise Mismatch(f"{what}: TensorFlow read {len(got)} records, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        for k in keys:
            if g[k] != w[k]:
                shown = (f"{len(g[k])} bytes vs {len(w[k])}" if k == "encoded"
                         else f"{g[k]!r}, expected {w[k]!r}")
                raise Mismatch(f"{what}: record {i} ({w.get('name', '')}): {k} is {shown}")


def check_committed():
    """ours.tfrecord read by TensorFlow is ours.json; ours.json is what ours-src holds."""
    path = os.path.join(HERE, "ours.tfrecord")
    with open(os.path.join(HERE, "ours.json")) as f:
        want = json.load(f)["items"]
    keys = ["label", "class", "format", "height", "width"]
    compare("ours.json vs ours-src", [{k: w[k] for k in keys} for w in want],
            folder_expectation(OURS_SRC), keys)
    got = read_with_tf([path])
    compare(path, got, want, keys)
    print(f"TensorFlow {tf.__version__} read the committed {path}: {len(got)} records "
          "as ours.json says")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Mismatch(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def check_fresh(edgebench):
    """TensorFlow reads what `edgebench` packs now, and what it repacks from TensorFlow."""
    keys = ["label", "class", "format", "height", "width", "encoded"]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        run([edgebench, "data", "synth", "-o", src, "--classes", "3", "--count", "6",
             "--size", "20", "--seed", "7"])
        run([edgebench, "data", "synth", "-o", src, "--classes", "2", "--count", "2",
             "--size", "17", "--seed", "8", "--format", "png"])
        rng = np.random.default_rng(5)
        gray = tf.io.encode_png(rng.integers(0, 256, (10, 6, 1), dtype=np.uint8)).numpy()
        rgb = tf.io.encode_jpeg(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)).numpy()
        with open(os.path.join(src, "class_01", "tf_gray.png"), "wb") as f:
            f.write(gray)
        with open(os.path.join(src, "class_02", "tf_rgb.jpg"), "wb") as f:
            f.write(rgb)
        want = folder_expectation(src)
        out = os.path.join(tmp, "set.tfrecord")
        run([edgebench, "data", "pack", src, "-o", out, "--shards", "2"])
        shards = sorted(os.path.join(tmp, f) for f in os.listdir(tmp) if "-of-" in f)
        if len(shards) != 2:
            raise Mismatch(f"data pack --shards 2 wrote {shards}")
        got = read_with_tf(shards)
        compare("pack of a class folder", got, want, keys)
        print(f"TensorFlow {tf.__version__} read {len(got)} records in 2 shards that "
              f"{edgebench} packed: bytes, labels, classes, formats and sizes as expected")

        tf_written = os.path.join(HERE, "tf-written.tfrecord")
        repacked = os.path.join(tmp, "repacked.tfrecord")
        run([edgebench, "data", "pack", tf_written, "-o", repacked])
        want = read_with_tf([tf_written])
        got = read_with_tf([repacked])
        compare("repack of tf-written.tfrecord", got, want, keys)
        print(f"TensorFlow read back all {len(got)} records that {edgebench} repacked from "
              "tf-written.tfrecord")


def write_ours(edgebench):
    """ours-src/, ours.tfrecord (edgebench's output) and ours.json (from ours-src/)."""
    if edgebench:
        run([edgebench, "data", "synth", "-o", OURS_SRC, *OURS_SYNTH])
        run([edgebench, "data", "pack", OURS_SRC, "-o", os.path.join(HERE, "ours.tfrecord")])
    items = [{k: w[k] for k in ["label", "class", "format", "height", "width"]}
             for w in folder_expectation(OURS_SRC)]
    with open(os.path.join(HERE, "ours.json"), "w") as f:
        json.dump({"written_by": WRITTEN_BY, "items": items}, f, indent=1)
        f.write("\n")


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="check only; write no fixture")
    ap.add_argument("--edgebench", metavar="BIN",
                    help="the edgebench binary whose TFRecords TensorFlow reads")
    args = ap.parse_args()
    try:
        if args.check:
            check_committed()
            if args.edgebench:
                check_fresh(args.edgebench)
        else:
            write_ours(args.edgebench)
            check_committed()
            write_tf_fixture()
    except (Mismatch, tf.errors.OpError) as e:
        msg = tf_message(e) if isinstance(e, tf.errors.OpError) else str(e)
        print(f"make-tfrecord-fixtures: TFRecord interop check failed: {msg}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
