//! Per-node profiles on both engines (`bench::profile`): the built-in `lean` at a small
//! input; every Conv appears with the analysis' MACs, shares sum to 1, and the Chrome
//! trace parses. No timing asserts.
//!
//! The ONNX Runtime half needs the library (`bash scripts/fetch-onnxruntime.sh`).
#![cfg(all(feature = "ort", feature = "tract"))]

use edgebench_runtime::bench::profile::{self, Profile, ProfileOptions};
use edgebench_runtime::engine::{EngineChoice, EngineOptions};
use edgebench_runtime::model::{self, PrepareOptions, analysis};

fn lean() -> model::Prepared {
    model::prepare(
        "lean",
        &PrepareOptions {
            input: Some("64x64x3".parse().expect("a valid size")),
            ..PrepareOptions::default()
        },
    )
    .expect("lean exports")
}

fn run(choice: EngineChoice) -> (model::Prepared, Profile) {
    let m = lean();
    let opts = EngineOptions::for_shape(m.input_shape.clone());
    let p = profile::profile(
        &m.path,
        choice,
        &opts,
        &ProfileOptions {
            warmup: 1,
            runs: 3,
            seed: 0,
        },
    )
    .expect("profiles");
    (m, p)
}

fn check(choice: EngineChoice, engine: &str) {
    let (m, p) = run(choice);
    assert_eq!(p.engine.engine, engine);
    assert_eq!((p.warmup, p.runs, p.run_ms.len()), (1, 3, 3));
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    let a = analysis::analyze_file(&m.path, Some(&m.input_shape)).unwrap();
    assert_eq!(p.total_macs, a.total_macs);
    let convs: Vec<_> = a.nodes.iter().filter(|n| n.op == "Conv").collect();
    assert_eq!(convs.len(), 3, "lean has three convolutions");
    for c in convs {
        let row = p
            .nodes
            .iter()
            .find(|n| n.name == c.name)
            .unwrap_or_else(|| panic!("{engine}: no row for {}: {:#?}", c.name, p.nodes));
        assert!(row.op.starts_with("Conv"), "{}", row.op);
        assert_eq!(row.macs, c.macs, "{engine}: MACs of {}", c.name);
        assert!(row.mean_ms > 0.0 && row.gflops > 0.0, "{row:?}");
    }
    // The dense layer's MACs too.
    let gemm = a.nodes.iter().find(|n| n.op == "Gemm").unwrap();
    let row = p.nodes.iter().find(|n| n.name == gemm.name).unwrap();
    assert_eq!(row.macs, gemm.macs);
    let share: f64 = p.nodes.iter().map(|n| n.share).sum();
    assert!((share - 1.0).abs() < 1e-9, "shares sum to {share}");
    assert!(p.nodes.windows(2).all(|w| w[0].mean_ms >= w[1].mean_ms));
    let sum: f64 = p.nodes.iter().map(|n| n.mean_ms).sum();
    assert!((sum - p.node_sum_ms).abs() < 1e-9);
    assert!(p.total_ms > 0.0);
    assert!(p.events.iter().all(|e| e.run < 3 && e.dur_us >= 0.0));
    assert!(!p.kernels.is_empty());

    // The trace: valid JSON, complete events for every node execution and run.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    profile::write_chrome_trace(&path, &p).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let complete: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), p.events.len() + p.runs);
    for e in complete {
        assert!(e["name"].is_string() && e["cat"].is_string(), "{e}");
        assert!(e["ts"].is_number() && e["dur"].is_number(), "{e}");
        assert!(e["pid"].is_number() && e["tid"].is_number(), "{e}");
        assert!(e["args"].is_object(), "{e}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["args"]["onnx_node"] == serde_json::json!(convs_first(&a))),
        "conv events name their ONNX node"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

fn convs_first(a: &analysis::Analysis) -> String {
    a.nodes
        .iter()
        .find(|n| n.op == "Conv")
        .unwrap()
        .name
        .clone()
}

#[test]
fn tract_profiles_every_conv_with_its_macs() {
    check(EngineChoice::Tract, "tract");
}

#[test]
fn onnx_runtime_profiles_every_conv_with_its_macs() {
    check(EngineChoice::Ort, "ort");
}

#[test]
fn zero_runs_is_refused() {
    let m = lean();
    let opts = EngineOptions::for_shape(m.input_shape.clone());
    let e = profile::profile(
        &m.path,
        EngineChoice::Tract,
        &opts,
        &ProfileOptions {
            warmup: 0,
            runs: 0,
            seed: 0,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("--runs"), "{e}");
}

#[test]
fn unwritable_trace_path_is_named_and_nothing_is_left() {
    let (_m, p) = run(EngineChoice::Tract);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("t.json");
    let e = profile::write_chrome_trace(&path, &p).unwrap_err();
    assert!(e.to_string().contains("missing-dir"), "{e}");
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_missing_model_is_named() {
    let opts = EngineOptions::for_shape(vec![1, 3, 8, 8]);
    for choice in [EngineChoice::Tract, EngineChoice::Ort] {
        let e = profile::profile(
            std::path::Path::new("/nonexistent/m.onnx"),
            choice,
            &opts,
            &ProfileOptions::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/m.onnx"),
            "{choice}: {e}"
        );
    }
}
