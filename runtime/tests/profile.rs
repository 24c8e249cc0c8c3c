//! Per-node profiles on both engines (`bench::profile`): the built-in `lean` at a small
//! input; every Conv and the dense layer appear with their MACs as counted by hand from
//! the architecture, shares sum to 1, and the Chrome trace parses. No timing asserts.
//!
//! The ONNX Runtime half needs the library (`bash scripts/fetch-onnxruntime.sh`).
#![cfg(all(feature = "ort", feature = "tract"))]

use edgebench_runtime::bench::profile::{self, Profile, ProfileOptions};
use edgebench_runtime::engine::{EngineChoice, EngineOptions};
use edgebench_runtime::model::{self, PrepareOptions};

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

/// `lean` at 64×64×3 (batch 1), counted by hand from `models/lean.toml`: three 3×3
/// "same" convolutions (32, 64, 128 filters), each followed by a 2×2 max-pool, then a
/// dense layer of 10 units on the flattened 8×8×128. A convolution's MACs are
/// out_h·out_w·out_c·k_h·k_w·in_c/groups (groups = 1 here); a dense layer's are
/// inputs·units. Pooling, ReLU, flatten and softmax multiply nothing.
const LEAN_64_MACS: [(&str, &str, u64); 4] = [
    // 64·64·32 · 3·3·3 = 4096·32·27
    ("l1_conv", "Conv", 3_538_944),
    // 32·32·64 · 3·3·32 = 1024·64·288
    ("l3_conv", "Conv", 18_874_368),
    // 16·16·128 · 3·3·64 = 256·128·576
    ("l5_conv", "Conv", 18_874_368),
    // 8·8·128 · 10 = 8192·10
    ("l8_dense", "Gemm", 81_920),
];
/// The sum of [`LEAN_64_MACS`].
const LEAN_64_TOTAL_MACS: u64 = 41_369_600;

fn check(choice: EngineChoice, engine: &str) {
    let (m, p) = run(choice);
    assert_eq!(m.input_shape, [1, 3, 64, 64]);
    assert_eq!(p.engine.engine, engine);
    assert_eq!((p.warmup, p.runs, p.run_ms.len()), (1, 3, 3));
    assert!(p.notes.is_empty(), "{:?}", p.notes);
    assert_eq!(
        LEAN_64_MACS.iter().map(|l| l.2).sum::<u64>(),
        LEAN_64_TOTAL_MACS
    );
    assert_eq!(p.total_macs, LEAN_64_TOTAL_MACS, "{engine}: total MACs");
    for (name, op, macs) in LEAN_64_MACS {
        let row = p
            .nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("{engine}: no row for {name}: {:#?}", p.nodes));
        assert!(row.op.starts_with(op), "{engine}: {name} is {}", row.op);
        assert_eq!(row.macs, macs, "{engine}: MACs of {name}");
        if op == "Conv" {
            assert!(row.mean_ms > 0.0 && row.gflops > 0.0, "{row:?}");
        }
    }
    // Every other node (pools, activations, flatten) multiplies nothing.
    for row in &p.nodes {
        if !LEAN_64_MACS.iter().any(|l| l.0 == row.name) {
            assert_eq!(row.macs, 0, "{engine}: MACs of {}", row.name);
        }
    }
    // Where each node ran and in what precision: ONNX Runtime's profile says (the CPU
    // provider, float32 inputs); tract's does not, and nothing is made up for it.
    let ran = profile::compute_ran_as(&p.nodes);
    if engine == "ort" {
        for row in p.nodes.iter().filter(|n| n.op.contains("Conv")) {
            assert_eq!(
                row.provider.as_deref(),
                Some("CPUExecutionProvider"),
                "{row:?}"
            );
            assert_eq!(row.precision.as_deref(), Some("fp32"), "{row:?}");
        }
        assert_eq!(ran.len(), 1, "{ran:?}");
        assert!(ran[0].starts_with("CPUExecutionProvider fp32: "), "{ran:?}");
    } else {
        assert!(
            p.nodes
                .iter()
                .all(|n| n.provider.is_none() && n.precision.is_none())
        );
        assert!(ran.is_empty(), "{ran:?}");
    }
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
        events.iter().any(|e| e["args"]["onnx_node"] == "l1_conv"),
        "conv events name their ONNX node"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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
