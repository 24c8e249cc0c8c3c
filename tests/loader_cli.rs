//! `edgebench loader` through the built binary: stream and naive on the same synthetic
//! set, the JSON summary, and bad items skipped (named, counted) or fatal. No timing
//! assertions: only counts, shapes and messages.

mod common;
use common::{fails, ok};

fn synth(dir: &std::path::Path, count: usize) -> String {
    let d = dir.join("set");
    let s = d.to_str().unwrap().to_string();
    let n = count.to_string();
    ok(&[
        "data",
        "synth",
        "-o",
        &s,
        "--classes",
        "2",
        "--count",
        &n,
        "--size",
        "24",
    ]);
    s
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("loader --json prints one JSON object")
}

#[test]
fn stream_and_naive_deliver_every_image() {
    let dir = tempfile::tempdir().unwrap();
    let set = synth(dir.path(), 10);
    for mode in ["stream", "naive"] {
        let j = json(&[
            "loader", &set, "--mode", mode, "--size", "16x16", "--batch", "4", "--epochs", "2",
            "--json",
        ]);
        assert_eq!(j["mode"], mode);
        assert_eq!(j["images"], 20, "{j}");
        assert_eq!(j["errors"], 0, "{j}");
        assert!(j["images_per_s"].as_f64().unwrap() > 0.0, "{j}");
        assert!(j["stage_s"]["decode"].as_f64().unwrap() > 0.0, "{j}");
    }
    let j = json(&[
        "loader",
        &set,
        "--size",
        "16x16",
        "--batch",
        "4",
        "--workers",
        "1",
        "--json",
    ]);
    // One worker: 2 × 1 + 1 slots, each 4 images of 3×16×16 f32 and 4 i32 labels.
    assert_eq!(j["pool_bytes"], 3 * 4 * (3 * 16 * 16 * 4 + 4), "{j}");
    let text = ok(&[
        "loader",
        &set,
        "--size",
        "16x16",
        "--images",
        "7",
        "--shuffle",
    ]);
    assert!(text.contains("7 images"), "{text}");
    let j = json(&[
        "loader",
        &set,
        "--size",
        "16x16",
        "--flip",
        "--crop-min-scale",
        "0.5",
        "--json",
    ]);
    assert_eq!(
        (j["images"].as_u64(), j["errors"].as_u64()),
        (Some(10), Some(0)),
        "{j}"
    );
    let err = common::fails_stderr(&["loader", &set, "--crop-min-scale", "0"], 2);
    assert!(err.contains("crop scale"), "{err}");
}

#[test]
fn bad_items_are_skipped_and_named_or_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let set = synth(dir.path(), 6);
    let bad = std::path::Path::new(&set).join("class_00/notes.jpg");
    std::fs::write(&bad, "this is text, not a JPEG").unwrap();
    std::fs::write(std::path::Path::new(&set).join("class_01/empty.png"), b"").unwrap();
    let j = json(&["loader", &set, "--size", "16x16", "--batch", "4", "--json"]);
    assert_eq!(
        (j["images"].as_u64(), j["errors"].as_u64()),
        (Some(6), Some(2)),
        "{j}"
    );
    let first = j["first_errors"].to_string();
    assert!(
        first.contains("notes.jpg") && first.contains("empty.png"),
        "{first}"
    );
    let err = fails(
        &[
            "loader",
            &set,
            "--size",
            "16x16",
            "--batch",
            "4",
            "--on-error",
            "fail",
        ],
        1,
    );
    assert!(
        err.contains("notes.jpg") || err.contains("empty.png"),
        "{err}"
    );
}

#[test]
fn empty_and_missing_data_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = fails(&["loader", empty.to_str().unwrap()], 1);
    assert!(err.contains("empty"), "{err}");
    let err = fails(&["loader", dir.path().join("nope").to_str().unwrap()], 1);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn the_jpeg_decoder_is_chosen_at_run_time_and_named() {
    use std::path::Path;
    let dir = tempfile::tempdir().unwrap();
    let set = synth(dir.path(), 6);
    let args = ["loader", &set, "--size", "16x16", "--batch", "2", "--json"];
    let decoder = |env: &[(&str, &Path)]| {
        let (out, _) = common::ok_env(&args, env);
        let j: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
        assert_eq!(
            (j["images"].as_u64(), j["errors"].as_u64()),
            (Some(6), Some(0)),
            "{j}"
        );
        j["jpeg_decoder"].as_str().unwrap().to_string()
    };
    assert_eq!(
        decoder(&[("EDGEBENCH_JPEG", Path::new("zune"))]),
        "zune-jpeg 0.5"
    );
    if std::env::var_os("EDGEBENCH_JPEG").is_none() {
        // The default is the fastest decoder built.
        let default = decoder(&[]);
        let fastest = if cfg!(feature = "turbojpeg") {
            "libjpeg-turbo 3"
        } else {
            "zune-jpeg"
        };
        assert!(default.starts_with(fastest), "{default}");
    }
    for (value, says) in [
        ("libjpeg", "unknown JPEG decoder 'libjpeg'"),
        ("turbo", "libjpeg-turbo is not in this build"),
    ] {
        if value == "turbo" && cfg!(feature = "turbojpeg") {
            continue;
        }
        let out = common::eb_env(&args, &[("EDGEBENCH_JPEG", Path::new(value))]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("EDGEBENCH_JPEG={value}: {says}")),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}
