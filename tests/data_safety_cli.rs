//! Data sets that are subtly broken, through the built binary: a symlink loop in an image
//! folder, more shards than items, a TFRecord record with a bad CRC, a truncated JPEG, an
//! image over the size limit, and the messages for missing or odd paths. Each must be
//! named and counted correctly, never silently mislabelled or miscounted.

use std::path::Path;

mod common;
use common::{eb, fails, fails_one_line, fails_stderr, ok, p, synth};

fn loader_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["loader"];
    all.extend_from_slice(args);
    all.push("--json");
    serde_json::from_str(&ok(&all)).expect("loader --json prints one JSON object")
}

/// Labels of every record of a TFRecord file or folder, per class index.
fn label_counts(data: &Path) -> Vec<usize> {
    let src = edgebench_runtime::data::source::open(data).unwrap();
    let mut counts = vec![0; src.classes().len()];
    for i in 0..src.len() {
        counts[src.label(i).unwrap() as usize] += 1;
    }
    counts
}

/// Byte offset of the data of each record of a TFRecord file.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        out.push(at + 12);
        at += 16 + len;
    }
    out
}

#[test]
fn symlink_loops_are_walked_once_and_classes_are_top_level_folders() {
    let d = tempfile::tempdir().unwrap();
    let set = synth(d.path(), "set", 2, 12, 16);
    // A loop back to the root.
    std::os::unix::fs::symlink("..", set.join("class_00/up")).unwrap();
    let info = ok(&["data", "info", p(&set)]);
    assert!(info.contains("12 images in 2 classes"), "{info}");
    // A link to the other class, a link to its own class, and a top-level alias of a
    // class: none may add or relabel an image either.
    std::os::unix::fs::symlink("../class_01", set.join("class_00/sib")).unwrap();
    std::fs::create_dir(set.join("class_01/deep")).unwrap();
    std::os::unix::fs::symlink("../../class_01", set.join("class_01/deep/self")).unwrap();
    std::os::unix::fs::symlink("class_00", set.join("alias")).unwrap();
    let info = ok(&["data", "info", p(&set)]);
    assert!(info.contains("12 images in 2 classes"), "{info}");
    assert!(info.contains("classes: class_00, class_01\n"), "{info}");
    let packed = d.path().join("p.tfrecord");
    ok(&["data", "pack", p(&set), "-o", p(&packed)]);
    assert_eq!(label_counts(&packed), [6, 6]);
    let j = loader_json(&[p(&set), "--size", "16x16", "--batch", "4"]);
    assert_eq!(
        (j["images"].as_u64(), j["errors"].as_u64()),
        (Some(12), Some(0))
    );
    // A link to a folder outside the tree is followed (once).
    let outside = synth(d.path(), "outside", 1, 3, 16);
    std::os::unix::fs::symlink(outside.join("class_00"), set.join("class_01/more")).unwrap();
    std::os::unix::fs::symlink(outside.join("class_00"), set.join("class_01/again")).unwrap();
    let info = ok(&["data", "info", p(&set)]);
    assert!(info.contains("15 images in 2 classes"), "{info}");
}

#[test]
fn pack_never_writes_more_shards_than_items_and_empty_shards_read() {
    let d = tempfile::tempdir().unwrap();
    let set = synth(d.path(), "set", 2, 12, 16);
    let shards = d.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    let out = eb(&[
        "data",
        "pack",
        p(&set),
        "-o",
        p(&shards.join("s.tfrecord")),
        "--shards",
        "50",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("12 shards instead of 50"), "{text}");
    let written = std::fs::read_dir(&shards).unwrap().count();
    assert_eq!(written, 12, "{text}");
    let info = ok(&["data", "info", p(&shards)]);
    assert!(info.contains("12 shards, 12 records"), "{info}");
    // An empty shard among others is an empty TFRecord file: no records, no error.
    std::fs::write(shards.join("s-00099-of-00100.tfrecord"), b"").unwrap();
    let info = ok(&["data", "info", p(&shards)]);
    assert!(info.contains("13 shards, 12 records"), "{info}");
    let j = loader_json(&[p(&shards), "--size", "16x16", "--batch", "4"]);
    assert_eq!(
        (j["images"].as_u64(), j["errors"].as_u64()),
        (Some(12), Some(0))
    );
}

#[test]
fn a_record_with_a_bad_crc_is_skipped_and_counted_and_named_by_train() {
    let d = tempfile::tempdir().unwrap();
    let set = synth(d.path(), "set", 2, 6, 32);
    let good = d.path().join("good.tfrecord");
    ok(&["data", "pack", p(&set), "-o", p(&good)]);
    let mut bytes = std::fs::read(&good).unwrap();
    let offsets = record_offsets(&bytes);
    assert_eq!(offsets.len(), 6);
    bytes[offsets[1] + 20] ^= 0x40;
    let bad = d.path().join("crcflip.tfrecord");
    std::fs::write(&bad, &bytes).unwrap();

    // Five readable records fill a batch of 4.
    let out = ok(&[
        "bench",
        "lean",
        "--size",
        "32x32x3",
        "--min-duration",
        "0.05",
        "--min-queries",
        "3",
        "--warmup",
        "1",
        "--warmup-time",
        "0",
        "--batch",
        "4",
        "--data",
        p(&bad),
        "--json",
        "-",
    ]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pipe = &r["models"][0]["pipeline"];
    assert_eq!(pipe["errors"], 1, "{pipe}");
    let first = pipe["first_errors"].to_string();
    assert!(
        first.contains("crcflip.tfrecord: record 1: data CRC mismatch"),
        "{first}"
    );
    let j = loader_json(&[p(&bad), "--size", "16x16", "--batch", "4"]);
    assert_eq!(
        (j["images"].as_u64(), j["errors"].as_u64()),
        (Some(5), Some(1))
    );

    let err = fails(
        &[
            "train",
            "--data",
            p(&bad),
            "--input-size",
            "16x16",
            "--epochs",
            "1",
            "--batch",
            "2",
        ],
        1,
    );
    assert!(
        err.contains("crcflip.tfrecord: record 1: data CRC mismatch")
            && err.contains(&format!("byte {}", offsets[1])),
        "{err}"
    );
    assert!(!err.contains("no label"), "{err}");
}

#[test]
fn a_truncated_jpeg_is_named_by_run_and_counted_by_the_loader() {
    let d = tempfile::tempdir().unwrap();
    let set = synth(d.path(), "set", 2, 6, 32);
    // Cut just before the end: the decoders would pad the missing rows silently.
    let cut = set.join("class_00/img_00000.jpg");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();

    let out = eb(&["run", "lean", "--size", "32x32x3", "--input", p(&cut)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("truncated")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].starts_with("edgebench: warning: ") && warnings[0].contains("img_00000.jpg"),
        "{err}"
    );

    for mode in ["stream", "naive"] {
        let j = loader_json(&[p(&set), "--mode", mode, "--size", "16x16", "--batch", "2"]);
        assert_eq!(
            (
                j["images"].as_u64(),
                j["errors"].as_u64(),
                j["truncated"].as_u64()
            ),
            (Some(5), Some(1), Some(1)),
            "{j}"
        );
        assert!(
            j["first_errors"][0]
                .to_string()
                .contains("img_00000.jpg: truncated JPEG"),
            "{j}"
        );
    }
    let text = ok(&["loader", p(&set), "--size", "16x16", "--batch", "2"]);
    assert!(
        text.contains("1 unreadable item skipped (1 truncated)"),
        "{text}"
    );
    let err = fails(
        &["loader", p(&set), "--size", "16x16", "--on-error", "fail"],
        1,
    );
    assert!(err.contains("img_00000.jpg: truncated JPEG"), "{err}");
    let err = fails(&["data", "info", p(&set)], 1);
    assert!(err.contains("1 of 6 items are unreadable"), "{err}");
}

/// A PNG whose header claims `w`×`h` pixels, with an empty image data chunk (headers
/// are all a check reads).
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01"; // an empty zlib stream
    png.extend_from_slice(&8u32.to_be_bytes());
    png.extend_from_slice(idat);
    png.extend_from_slice(&crc32(idat).to_be_bytes());
    png.extend_from_slice(&[0, 0, 0, 0]);
    png.extend_from_slice(b"IEND");
    png.extend_from_slice(&crc32(b"IEND").to_be_bytes());
    png
}

#[test]
fn data_info_and_the_loader_share_the_image_size_limit() {
    let d = tempfile::tempdir().unwrap();
    let set = synth(d.path(), "set", 2, 4, 16);
    std::fs::write(set.join("class_01/huge.png"), png_header_only(60000, 60000)).unwrap();
    let err = fails_stderr(&["data", "info", p(&set)], 1);
    assert!(
        err.contains("huge.png: header claims 60000x60000 pixels, over the limit"),
        "{err}"
    );
    let j = loader_json(&[p(&set), "--size", "16x16", "--batch", "2"]);
    assert_eq!(j["errors"], 1, "{j}");
    assert!(
        j["first_errors"][0]
            .to_string()
            .contains("huge.png: header claims 60000x60000"),
        "{j}"
    );
}

#[test]
fn missing_paths_are_one_clean_line() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nonexistent");
    for args in [
        vec!["data", "info", p(&missing)],
        vec!["loader", p(&missing)],
    ] {
        let err = fails_one_line(&args, 1);
        assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
        assert_eq!(err.matches("nonexistent").count(), 1, "{err}");
    }
    // A path through a file.
    let file = d.path().join("file.tfrecord");
    std::fs::write(&file, b"x").unwrap();
    let through = file.join("x.tfrecord");
    let err = fails_one_line(&["loader", p(&through)], 1);
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
}

#[test]
fn one_bad_image_is_one_unreadable_image() {
    let d = tempfile::tempdir().unwrap();
    let set = synth(d.path(), "set", 2, 12, 32);
    std::fs::write(set.join("class_00/bad.jpg"), "not an image").unwrap();
    let json = d.path().join("r.json");
    let table = ok(&[
        "bench",
        "lean",
        "--size",
        "32x32x3",
        "--min-duration",
        "0.2",
        "--min-queries",
        "20",
        "--warmup",
        "1",
        "--warmup-time",
        "0",
        "--batch",
        "4",
        "--data",
        p(&set),
        "--json",
        p(&json),
    ]);
    let r = common::read_json(&json);
    assert_eq!(r["models"][0]["pipeline"]["errors"], 1, "{table}");
    assert!(
        table.contains("1 unreadable image skipped (first: ") && table.contains("bad.jpg"),
        "{table}"
    );
    // Over several epochs the loader still counts one bad item.
    let j = loader_json(&[p(&set), "--size", "16x16", "--batch", "4", "--epochs", "3"]);
    assert_eq!(
        (j["images"].as_u64(), j["errors"].as_u64()),
        (Some(36), Some(1)),
        "{j}"
    );
}
