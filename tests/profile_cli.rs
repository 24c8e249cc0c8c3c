//! `edgebench profile` through the built binary: the table, `--json`, `--trace`, and
//! bad input (an unwritable trace path, zero runs). No timing asserts.

mod common;
use common::{eb, ok, ok_env, orin_nano_root};

#[test]
fn tract_table_and_chrome_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.json");
    let t = trace.to_str().unwrap();
    let out = ok(&[
        "profile", "lean", "--size", "64x64x3", "--engine", "tract", "--runs", "2", "--trace", t,
    ]);
    assert!(out.contains("engine tract"), "{out}");
    assert!(out.contains("provider tract-cpu"), "{out}");
    for head in ["node", "op", "mean ms", "share %", "MACs", "GFLOP/s"] {
        assert!(out.contains(head), "no {head:?} column: {out}");
    }
    for conv in ["l1_conv ", "l3_conv ", "l5_conv "] {
        assert!(out.contains(conv), "no row for {conv}: {out}");
    }
    assert!(out.contains("sum of node times"), "{out}");
    assert!(out.contains("measured end to end"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).expect("the trace is JSON");
    let events = v["traceEvents"].as_array().expect("traceEvents");
    let x: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert!(x.len() > 2, "{v}");
    assert!(
        x.iter()
            .all(|e| e["ts"].is_number() && e["dur"].is_number())
    );
    assert!(x.iter().any(|e| e["args"]["onnx_node"] == "l1_conv"), "{v}");
}

#[test]
fn onnx_runtime_json_lists_every_node() {
    let out = ok(&[
        "profile", "lean", "--size", "64x64x3", "--engine", "ort", "--runs", "2", "--warmup", "1",
        "--top", "1", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v["engine"]["engine"], "ort");
    assert_eq!(v["engine"]["provider"], "CPUExecutionProvider");
    assert_eq!(v["runs"], 2);
    assert_eq!(v["input_shape"], serde_json::json!([1, 3, 64, 64]));
    let nodes = v["nodes"].as_array().unwrap();
    // --top limits the table, not the JSON.
    assert!(nodes.len() > 3, "{v}");
    let conv = nodes
        .iter()
        .find(|n| n["name"] == "l3_conv")
        .expect("l3_conv");
    assert_eq!(conv["op"], "Conv");
    assert!(conv["macs"].as_u64().unwrap() > 0);
    let share: f64 = nodes.iter().map(|n| n["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-6, "{share}");
    // Where the convolutions and the dense layer ran, and in what: one group, for
    // scripts (gpu-check reads it) as fields, not words.
    assert_eq!(conv["provider"], "CPUExecutionProvider");
    assert_eq!(conv["precision"], "fp32");
    let groups = v["compute_ran_as"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{v}");
    assert_eq!(groups[0]["provider"], "CPUExecutionProvider");
    assert_eq!(groups[0]["precision"], "fp32");
    assert_eq!(
        groups[0]["nodes"], 4,
        "lean's three convolutions and its dense layer"
    );
    let g = groups[0]["share"].as_f64().unwrap();
    assert!(g > 0.0 && g <= 1.0, "{g}");
}

#[test]
fn unwritable_trace_path_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("no-such-dir").join("t.json");
    let out = eb(&[
        "profile",
        "lean",
        "--size",
        "64x64x3",
        "--engine",
        "tract",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // An unusable output path is a bad argument: exit 2, as for every output flag.
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("edgebench: error: "), "{err}");
    assert!(err.contains("no-such-dir"), "{err}");
    assert!(!trace.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn zero_runs_is_a_usage_error() {
    let out = eb(&["profile", "lean", "--runs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--runs"), "{err}");
}

#[test]
fn unknown_model_is_named() {
    let out = eb(&["profile", "no-such-model"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-model"), "{err}");
}

#[test]
fn names_the_jetson_board_from_a_fixture_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = orin_nano_root(dir.path());
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let profile = |root: &std::path::Path, json: bool| {
        let mut args = vec![
            "profile", "lean", "--size", "32x32x3", "--engine", "tract", "--runs", "1", "--warmup",
            "0",
        ];
        if json {
            args.push("--json");
        }
        ok_env(&args, &[("EDGEBENCH_SYSROOT", root)]).0
    };
    let board = "NVIDIA Jetson Orin Nano Developer Kit (L4T R36.4.3)";
    let text = profile(&root, false);
    assert!(
        text.lines()
            .any(|l| l == format!("  board: {board} (target jetson-orin-nano)")),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&profile(&root, true)).unwrap();
    assert_eq!(v["board"], board);
    assert_eq!(v["target"], "jetson-orin-nano");
    // Not a Jetson: no board line, and null in the JSON.
    assert!(!profile(&empty, false).contains("board:"));
    let v: serde_json::Value = serde_json::from_str(&profile(&empty, true)).unwrap();
    assert!(v["board"].is_null() && v["target"].is_null(), "{v}");
}
