//! Tests of the TFRecord reader, writer and source: round trips, corruption of every
//! kind reported with file and record, the TensorFlow-written fixture, and a
//! mutation property test (the fuzz target's body run as a plain test).

use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};

use super::*;
use crate::data::example::ImageExample;

fn ex(label: i64, text: &str, payload: &[u8]) -> Vec<u8> {
    ImageExample {
        encoded: payload.to_vec(),
        label: Some(label),
        class_text: Some(text.into()),
        format: Some("jpeg".into()),
        height: Some(2),
        width: Some(3),
    }
    .encode()
}

fn shard(records: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    for r in records {
        w.write(r).unwrap();
    }
    w.into_inner().unwrap()
}

fn sample() -> Vec<Vec<u8>> {
    vec![
        ex(0, "cat", b"first image"),
        ex(2, "dog", &[7u8; 300]),
        ex(1, "owl", b""),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn open_err(p: &Path) -> String {
    match TfRecordSource::open(&[p.to_path_buf()], "t") {
        Ok(_) => panic!("{} opened", p.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn header_matches_tensorflow_framing() {
    let h = header(3);
    assert_eq!(&h[..8], &3u64.to_le_bytes());
    let crc = crate::crc32c::masked_crc32c(&3u64.to_le_bytes());
    assert_eq!(&h[8..], &crc.to_le_bytes());
}

#[test]
fn round_trip_through_reader_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = shard(&sample());
    assert_eq!(check_bytes(&bytes).unwrap(), 3);
    let mut r = Reader::new(&bytes[..], "mem");
    let mut buf = Vec::new();
    let mut got = Vec::new();
    while r.next(&mut buf).unwrap().is_some() {
        got.push(buf.clone());
    }
    assert_eq!(got, sample());

    let p = write(dir.path(), "a.tfrecord", &bytes);
    let src = TfRecordSource::open(std::slice::from_ref(&p), "a").unwrap();
    assert_eq!(src.len(), 3);
    assert_eq!(src.classes(), ["cat", "owl", "dog"]);
    assert_eq!(
        (src.label(0), src.label(1), src.label(2)),
        (Some(0), Some(2), Some(1))
    );
    src.read(1, &mut buf).unwrap();
    assert_eq!(buf, vec![7u8; 300]);
    src.read(0, &mut buf).unwrap();
    assert_eq!(buf, b"first image");
    src.read(2, &mut buf).unwrap();
    assert!(buf.is_empty());
    assert!(
        src.name(1).ends_with("a.tfrecord record 1"),
        "{}",
        src.name(1)
    );
    assert!(src.describe().contains("3 records"), "{}", src.describe());
}

#[test]
fn bad_data_crc_fails_that_record_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = shard(&sample());
    let first = sample()[0].len();
    // Flip a byte inside record 1's data.
    bytes[16 + first + 12 + 5] ^= 0x40;
    assert!(
        check_bytes(&bytes)
            .unwrap_err()
            .to_string()
            .contains("record 1: data CRC mismatch")
    );
    let p = write(dir.path(), "bad.tfrecord", &bytes);
    let src = TfRecordSource::open(&[p], "bad").unwrap();
    // Left out of the items, listed with its offset; the others read.
    assert_eq!(src.len(), 2);
    let bad: Vec<String> = src.unreadable().iter().map(|u| u.to_string()).collect();
    let at = 16 + first + 12;
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].ends_with(&format!(
            "bad.tfrecord: record 1: data CRC mismatch (record data at byte {at})"
        )),
        "{bad:?}"
    );
    assert!(
        src.describe().contains("3 records (1 unreadable)"),
        "{}",
        src.describe()
    );
    let mut buf = Vec::new();
    src.read(0, &mut buf).unwrap();
    assert!(
        src.name(1).ends_with("bad.tfrecord record 2"),
        "{}",
        src.name(1)
    );
    src.read(1, &mut buf).unwrap();
    // A record that goes bad after the open still fails its read.
    let mut later = shard(&sample());
    let p = write(dir.path(), "later.tfrecord", &later);
    let src = TfRecordSource::open(std::slice::from_ref(&p), "later").unwrap();
    later[16 + first + 12 + 5] ^= 0x40;
    std::fs::write(&p, &later).unwrap();
    let e = src.read(1, &mut buf).unwrap_err().to_string();
    assert!(
        e.contains("later.tfrecord: record 1: data CRC mismatch"),
        "{e}"
    );
}

#[test]
fn empty_shards_hold_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let full = write(dir.path(), "a.tfrecord", &shard(&sample()));
    let empty = write(dir.path(), "b.tfrecord", b"");
    let src = TfRecordSource::open(&[full, empty.clone()], "set").unwrap();
    assert_eq!(src.len(), 3);
    assert!(
        src.describe().contains("2 shards, 3 records"),
        "{}",
        src.describe()
    );
    let other = write(dir.path(), "c.tfrecord", b"");
    let e = TfRecordSource::open(&[empty, other], "set")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("set: no TFRecord records in its 2 shards"),
        "{e}"
    );
}

#[test]
fn framing_errors_name_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = shard(&sample());
    // Bad length CRC on record 0.
    let mut b = bytes.clone();
    b[8] ^= 1;
    let e = open_err(&write(dir.path(), "len.tfrecord", &b));
    assert!(
        e.contains("len.tfrecord: record 0: length CRC mismatch"),
        "{e}"
    );
    // Truncated in the data of the last record, and in a header.
    let e = open_err(&write(
        dir.path(),
        "trunc.tfrecord",
        &bytes[..bytes.len() - 6],
    ));
    assert!(
        e.contains("trunc.tfrecord: record 2: truncated record"),
        "{e}"
    );
    let first = sample()[0].len() + 16;
    let e = open_err(&write(dir.path(), "trunc2.tfrecord", &bytes[..first + 5]));
    assert!(
        e.contains("record 1: truncated record: file ends inside the header"),
        "{e}"
    );
    // Empty and garbage files.
    let e = open_err(&write(dir.path(), "empty.tfrecord", b""));
    assert!(e.contains("empty.tfrecord: empty file"), "{e}");
    let e = open_err(&write(
        dir.path(),
        "text.tfrecord",
        b"hello, this is not a TFRecord\n",
    ));
    assert!(
        e.contains("text.tfrecord: record 0: length CRC mismatch"),
        "{e}"
    );
    // A huge length with a valid CRC is refused before allocating.
    let mut huge = header(1 << 40).to_vec();
    huge.extend_from_slice(&[0; 64]);
    let e = open_err(&write(dir.path(), "huge.tfrecord", &huge));
    assert!(
        e.contains("record 0: record length 1099511627776 exceeds the 64 MiB"),
        "{e}"
    );
}

#[test]
fn records_without_an_image_are_listed_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = ImageExample::default().to_example();
    if let Some(f) = e.features.as_mut() {
        f.feature.remove(example::KEY_ENCODED);
    }
    let bytes = shard(&[prost::Message::encode_to_vec(&e), b"\x0b\x0c".to_vec()]);
    let p = write(dir.path(), "noimg.tfrecord", &bytes);
    let src = TfRecordSource::open(&[p], "noimg").unwrap();
    assert!(src.is_empty());
    let bad: Vec<String> = src.unreadable().iter().map(|u| u.to_string()).collect();
    assert!(
        bad[0].contains("noimg.tfrecord: record 0: no image/encoded"),
        "{bad:?}"
    );
    assert!(
        bad[1].contains("record 1: not a tf.train.Example"),
        "{bad:?}"
    );
    assert!(src.classes().is_empty());
}

#[test]
fn tensorflow_written_fixture_reads_with_its_labels() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tfrecord");
    let json = std::fs::read_to_string(dir.join("tf-written.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&json).unwrap();
    let src = TfRecordSource::open(&[dir.join("tf-written.tfrecord")], "tf").unwrap();
    let items = expected["items"].as_array().unwrap();
    assert_eq!(src.len(), items.len());
    let mut buf = Vec::new();
    for (i, want) in items.iter().enumerate() {
        assert_eq!(
            src.label(i).map(i64::from),
            want["label"].as_i64(),
            "item {i}"
        );
        src.read(i, &mut buf).unwrap();
        let img = image::load_from_memory(&buf).unwrap();
        assert_eq!(
            img.width() as u64,
            want["width"].as_u64().unwrap(),
            "item {i}"
        );
        assert_eq!(
            img.height() as u64,
            want["height"].as_u64().unwrap(),
            "item {i}"
        );
        assert_eq!(
            buf.len() as u64,
            want["encoded_len"].as_u64().unwrap(),
            "item {i}"
        );
    }
    let names: Vec<&str> = expected["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(src.classes(), names);
}

/// The `tfrecord` fuzz target's body over 20,000 random mutations of a valid shard and
/// random byte strings: never a panic, and the scanner agrees with prost. The agreement
/// check only runs on records both decoders accept, so the test counts them (as the
/// fuzz body does it) and requires that many mutated records were actually compared.
#[test]
fn mutations_never_panic() {
    let originals = sample();
    let valid = shard(&originals);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let (mut compared, mut mutated) = (0usize, 0usize);
    let mut buf = Vec::new();
    for round in 0..20_000 {
        let mut b = valid.clone();
        match round % 4 {
            k @ 0..crate::mutate::BASIC => crate::mutate::basic(&mut rng, &mut b, k),
            _ => {
                let n = rng.random_range(0..64);
                b = (0..n).map(|_| rng.random()).collect();
            }
        }
        fuzz_one(&b);
        let mut r = Reader::new(&b[..], "<fuzz>");
        while let Ok(Some(_)) = r.next_framed(&mut buf) {
            let (Ok(s), Ok(d)) = (example::scan(&buf), ImageExample::decode(&buf)) else {
                continue;
            };
            assert_eq!(s.encoded.map(|r| &buf[r]), Some(&d.encoded[..]), "{b:?}");
            assert_eq!(s.label, d.label, "{b:?}");
            compared += 1;
            mutated += usize::from(!originals.contains(&buf));
        }
    }
    // Three quarters of the rounds start from the three-record shard: most keep their
    // framing, and a flipped bit or overwritten byte in a record's data often still
    // decodes (a changed image byte or label), which is what the comparison is for.
    assert!(
        compared > 20_000,
        "only {compared} records reached both decoders"
    );
    assert!(
        mutated > 5_000,
        "only {mutated} mutated records reached both decoders"
    );
}
