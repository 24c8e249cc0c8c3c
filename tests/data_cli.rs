//! `edgebench data synth|pack|info` through the built binary: a synthetic set packed into
//! shards and checked back, the committed interop fixture reproduced byte for byte, and
//! bad input (corrupt shard, empty folder, bad flags) reported with its path.

use std::path::{Path, PathBuf};

mod common;
use common::{fails_stderr as fails, ok};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tfrecord")
}

#[test]
fn synth_pack_info_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let set = d.path().join("set");
    let out = ok(&[
        "data",
        "synth",
        "-o",
        s(&set),
        "--classes",
        "4",
        "--count",
        "10",
        "--size",
        "40",
        "--seed",
        "3",
    ]);
    assert!(
        out.contains("wrote 10 images") && out.contains("4 classes"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(set.join("class_03")).unwrap().count(), 2);

    let info = ok(&["data", "info", s(&set)]);
    assert!(info.contains("10 images in 4 classes"), "{info}");
    assert!(
        info.contains("class_00, class_01, class_02, class_03"),
        "{info}"
    );
    assert!(info.contains("bad: 0"), "{info}");

    let shards = d.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    let packed = ok(&[
        "data",
        "pack",
        s(&set),
        "-o",
        s(&shards.join("train.tfrecord")),
        "--shards",
        "3",
    ]);
    assert!(
        packed.contains("packed 10 records") && packed.contains("skipped 0"),
        "{packed}"
    );
    let mut names: Vec<String> = std::fs::read_dir(&shards)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "train-00000-of-00003.tfrecord",
            "train-00001-of-00003.tfrecord",
            "train-00002-of-00003.tfrecord"
        ]
    );
    let info = ok(&["data", "info", s(&shards)]);
    assert!(info.contains("3 shards, 10 records, 4 classes"), "{info}");
    assert!(
        info.contains("labelled: 10") && info.contains("bad: 0"),
        "{info}"
    );
    // Class names travel in image/class/text.
    assert!(
        info.contains("class_00, class_01, class_02, class_03"),
        "{info}"
    );
}

/// A change detector: `ours-src/` and `ours.tfrecord` are exactly what synth + pack write
/// today, so any change to their output bytes is seen (a deliberate one regenerates them
/// with `scripts/make-tfrecord-fixtures.py --edgebench BIN`, which also writes
/// `ours.json`, the expected reading, from `ours-src/` without edgebench). Both sides
/// come from edgebench, so this is not the interop check: that is
/// `scripts/tfrecord-interop-check.sh`, TensorFlow reading what the binary under test
/// packs.
#[test]
fn committed_interop_fixture_is_what_pack_writes() {
    let d = tempfile::tempdir().unwrap();
    let set = d.path().join("src");
    ok(&[
        "data",
        "synth",
        "-o",
        s(&set),
        "--classes",
        "3",
        "--count",
        "6",
        "--size",
        "24",
        "--seed",
        "1",
    ]);
    let committed_src = fixtures().join("ours-src");
    for c in ["class_00", "class_01", "class_02"] {
        for f in ["img_00000.jpg", "img_00001.jpg"] {
            let a = std::fs::read(set.join(c).join(f)).unwrap();
            let b = std::fs::read(committed_src.join(c).join(f)).unwrap();
            assert!(a == b, "{c}/{f} differs from the committed fixture");
        }
    }
    let out = d.path().join("ours.tfrecord");
    ok(&["data", "pack", s(&committed_src), "-o", s(&out)]);
    let ours = std::fs::read(fixtures().join("ours.tfrecord")).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == ours,
        "pack output differs from ours.tfrecord"
    );
}

#[test]
fn tensorflow_written_fixture_info() {
    let info = ok(&["data", "info", s(&fixtures().join("tf-written.tfrecord"))]);
    assert!(info.contains("4 records, 3 classes"), "{info}");
    assert!(info.contains("classes: apple, banana, cherry"), "{info}");
    assert!(info.contains("bad: 0"), "{info}");
}

#[test]
fn bad_input_is_named() {
    let d = tempfile::tempdir().unwrap();
    // A shard with a flipped data byte: info counts it and exits 1.
    let mut bytes = std::fs::read(fixtures().join("ours.tfrecord")).unwrap();
    bytes[40] ^= 0x10;
    let bad = d.path().join("bad.tfrecord");
    std::fs::write(&bad, &bytes).unwrap();
    let err = fails(&["data", "info", s(&bad)], 1);
    assert!(
        err.contains("bad.tfrecord: record 0: data CRC mismatch"),
        "{err}"
    );
    assert!(err.contains("1 of 6 items are unreadable"), "{err}");
    // A text file named .jpg in a class folder.
    let set = d.path().join("set/cats");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::write(set.join("a.jpg"), "not an image").unwrap();
    let err = fails(&["data", "info", s(&d.path().join("set"))], 1);
    assert!(
        err.contains("a.jpg: not a recognised image format"),
        "{err}"
    );
    // Truncated shard, empty folder, zero-byte shard.
    let cut = d.path().join("cut.tfrecord");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let err = fails(&["data", "info", s(&cut)], 1);
    assert!(
        err.contains("cut.tfrecord: record 5: truncated record"),
        "{err}"
    );
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = fails(
        &[
            "data",
            "pack",
            s(&empty),
            "-o",
            s(&d.path().join("x.tfrecord")),
        ],
        1,
    );
    assert!(err.contains("empty: no images"), "{err}");
    let zero = d.path().join("zero.tfrecord");
    std::fs::write(&zero, b"").unwrap();
    let err = fails(&["data", "info", s(&zero)], 1);
    assert!(err.contains("zero.tfrecord: empty file"), "{err}");
    // Bad flags are exit 2.
    let err = fails(
        &[
            "data",
            "synth",
            "-o",
            s(&d.path().join("o")),
            "--classes",
            "0",
        ],
        2,
    );
    assert!(err.contains("--classes 0"), "{err}");
    let err = fails(
        &[
            "data",
            "pack",
            s(&fixtures().join("ours-src")),
            "-o",
            s(&d.path().join("y.tfrecord")),
            "--shards",
            "0",
        ],
        2,
    );
    assert!(err.contains("--shards"), "{err}");
}
