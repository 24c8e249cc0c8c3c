//! Engine tests: ONNX Runtime and tract on small models built here, against a naive
//! reference; error paths (bad shapes, garbage files, unknown ops, missing or bogus
//! ONNX Runtime libraries, unavailable execution providers) and `auto` fallbacks.
//!
//! The ONNX Runtime tests need the library: run `bash scripts/fetch-onnxruntime.sh`
//! first (CI does). Without it they fail, saying so; they are never skipped.
//!
//! All tests share one process and `ort` allows one library per process, so the tests
//! that use a missing or bogus library only ever reach edgebench's own pre-check.
#![cfg(all(feature = "ort", feature = "tract"))]

use std::path::{Path, PathBuf};

use edgebench_runtime::Error;
use edgebench_runtime::engine::{self, EngineChoice, EngineOptions, Provider};
use edgebench_runtime::onnx::{encode_model, pb};
use ndarray::{Array4, ArrayD, IxDyn};
use onnx_build::{int, ints, node, tensor, value};

mod onnx_build;

const C_IN: usize = 3;
const C_OUT: usize = 4;
const HW: usize = 8;
const CLASSES: usize = 5;
const FLAT: usize = C_OUT * (HW / 2) * (HW / 2);

/// Deterministic values in [-0.5, 0.5) * scale.
fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 37 + seed * 11) % 101) as f32 / 101.0 - 0.5) * scale)
        .collect()
}

fn conv_w() -> Vec<f32> {
    values(C_OUT * C_IN * 9, 1, 0.8)
}
fn conv_b() -> Vec<f32> {
    values(C_OUT, 2, 0.2)
}
fn gemm_w() -> Vec<f32> {
    values(CLASSES * FLAT, 3, 0.6)
}
fn gemm_b() -> Vec<f32> {
    values(CLASSES, 4, 0.2)
}

/// Conv(3→4, 3×3, pads 1) → Relu → MaxPool 2×2/2 → Flatten → Gemm(→5) → Softmax.
/// With `extra_op`, an operator of that type is inserted after Relu.
fn cnn_model(extra_op: Option<&str>) -> pb::ModelProto {
    let mut nodes = vec![
        node(
            "Conv",
            &["input", "conv_w", "conv_b"],
            "conv",
            vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])],
        ),
        node("Relu", &["conv"], "relu", vec![]),
    ];
    let pool_in = match extra_op {
        Some(op) => {
            nodes.push(node(op, &["relu"], "custom", vec![]));
            "custom"
        }
        None => "relu",
    };
    nodes.extend([
        node(
            "MaxPool",
            &[pool_in],
            "pool",
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        node("Flatten", &["pool"], "flat", vec![int("axis", 1)]),
        node(
            "Gemm",
            &["flat", "gemm_w", "gemm_b"],
            "logits",
            vec![int("transB", 1)],
        ),
        node("Softmax", &["logits"], "probs", vec![int("axis", 1)]),
    ]);
    let hw = HW as i64;
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "edgebench-tests".into(),
        graph: Some(pb::GraphProto {
            name: "tiny_cnn".into(),
            node: nodes,
            initializer: vec![
                tensor("conv_w", &[C_OUT as i64, C_IN as i64, 3, 3], &conv_w()),
                tensor("conv_b", &[C_OUT as i64], &conv_b()),
                tensor("gemm_w", &[CLASSES as i64, FLAT as i64], &gemm_w()),
                tensor("gemm_b", &[CLASSES as i64], &gemm_b()),
            ],
            input: vec![value(
                "input",
                &[None, Some(C_IN as i64), Some(hw), Some(hw)],
            )],
            output: vec![value("probs", &[None, Some(CLASSES as i64)])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Naive forward pass of [`cnn_model`]`(None)`.
fn reference(x: &Array4<f32>) -> ArrayD<f32> {
    let (n, w, b, gw, gb) = (x.shape()[0], conv_w(), conv_b(), gemm_w(), gemm_b());
    let mut out = ArrayD::zeros(IxDyn(&[n, CLASSES]));
    for s in 0..n {
        let mut act = vec![0f32; C_OUT * HW * HW];
        for o in 0..C_OUT {
            for y in 0..HW {
                for xx in 0..HW {
                    let mut acc = b[o];
                    for c in 0..C_IN {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = (y + ky, xx + kx);
                                if iy < 1 || ix < 1 || iy > HW || ix > HW {
                                    continue;
                                }
                                acc += w[((o * C_IN + c) * 3 + ky) * 3 + kx]
                                    * x[[s, c, iy - 1, ix - 1]];
                            }
                        }
                    }
                    act[(o * HW + y) * HW + xx] = acc.max(0.0);
                }
            }
        }
        let h = HW / 2;
        let mut flat = vec![0f32; FLAT];
        for o in 0..C_OUT {
            for y in 0..h {
                for xx in 0..h {
                    let at = |dy: usize, dx: usize| act[(o * HW + 2 * y + dy) * HW + 2 * xx + dx];
                    flat[(o * h + y) * h + xx] = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                }
            }
        }
        let logits: Vec<f32> = (0..CLASSES)
            .map(|k| gb[k] + (0..FLAT).map(|i| gw[k * FLAT + i] * flat[i]).sum::<f32>())
            .collect();
        let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        for k in 0..CLASSES {
            out[[s, k]] = exp[k] / sum;
        }
    }
    out
}

fn input(batch: usize) -> Array4<f32> {
    Array4::from_shape_vec(
        (batch, C_IN, HW, HW),
        values(batch * C_IN * HW * HW, 5, 2.0),
    )
    .expect("input shape")
}

fn write_model(dir: &Path, name: &str, model: &pb::ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, encode_model(model)).expect("write model");
    path
}

fn max_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The ONNX Runtime library the tests use: the default lookup (ORT_DYLIB_PATH, then
/// the repo cache). Missing → fail with the fix.
fn ort_lib() -> PathBuf {
    let opts = EngineOptions::for_shape(vec![1]);
    engine::ort::library_path(&opts).unwrap_or_else(|e| {
        panic!(
            "{e}\nThe ONNX Runtime tests need the library: run `bash scripts/fetch-onnxruntime.sh`"
        )
    })
}

fn opts(batch: usize, providers: Vec<Provider>) -> EngineOptions {
    let mut o = EngineOptions::for_shape(vec![batch, C_IN, HW, HW]);
    o.settings.providers = providers;
    o
}

fn ort_opts(batch: usize, providers: Vec<Provider>) -> EngineOptions {
    let mut o = opts(batch, providers);
    o.settings.ort_library = Some(ort_lib());
    o
}

fn missing_lib_opts(batch: usize, providers: Vec<Provider>) -> EngineOptions {
    let mut o = opts(batch, providers);
    o.settings.ort_library = Some("/nonexistent/libonnxruntime.so".into());
    o
}

#[test]
fn tract_and_ort_agree_with_the_naive_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    let x = input(2);
    let want = reference(&x);

    let mut t = engine::open(&model, EngineChoice::Tract, &opts(2, vec![Provider::Cpu]))
        .expect("tract open");
    let got_t = t.run(x.view().into_dyn()).expect("tract run");
    assert_eq!(t.info().engine, "tract");
    assert_eq!(t.info().provider, "tract-cpu");

    let mut o = ort_opts(2, vec![Provider::Cpu]);
    o.settings.threads = Some(1);
    let mut s = engine::open(&model, EngineChoice::Ort, &o).expect("ort open");
    let got_o = s.run(x.view().into_dyn()).expect("ort run");
    assert_eq!(s.info().engine, "ort");
    assert_eq!(s.info().provider, "CPUExecutionProvider");
    assert!(s.info().fallbacks.is_empty(), "{:?}", s.info().fallbacks);
    assert_eq!(s.info().input_shape, vec![2, C_IN, HW, HW]);

    assert!(max_diff(&got_t, &want) < 1e-5, "tract vs reference");
    assert!(max_diff(&got_o, &want) < 1e-5, "ort vs reference");
    assert!(max_diff(&got_o, &got_t) < 1e-5, "ort vs tract");
    // Running twice reuses the prepared state and gives the same answer.
    assert_eq!(t.run(x.view().into_dyn()).expect("tract rerun"), got_t);
    assert_eq!(s.run(x.view().into_dyn()).expect("ort rerun"), got_o);
}

#[test]
fn probe_reports_the_library_version_and_providers() {
    let version = engine::ort::probe(&ort_opts(1, vec![Provider::Cpu])).expect("probe");
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .expect("version x.y.z");
    assert!(version.starts_with("1.") && minor >= 17, "{version}");
    let providers = engine::ort::available_providers().expect("available providers");
    assert!(
        providers.iter().any(|p| p == "CPUExecutionProvider"),
        "{providers:?}"
    );
}

#[test]
fn wrong_input_shape_is_a_shape_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    let x = input(1);
    for choice in [EngineChoice::Tract, EngineChoice::Ort] {
        let mut s = engine::open(&model, choice, &ort_opts(2, vec![Provider::Cpu]))
            .unwrap_or_else(|e| panic!("{choice}: {e}"));
        match s.run(x.view().into_dyn()) {
            Err(Error::Shape { expected, got, .. }) => {
                assert_eq!(expected, "[2, 3, 8, 8]", "{choice}");
                assert_eq!(got, "[1, 3, 8, 8]", "{choice}");
            }
            other => panic!("{choice}: expected a shape error, got {other:?}"),
        }
    }
}

#[test]
fn garbage_file_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("garbage.onnx");
    std::fs::write(&model, b"this is not an ONNX model\n\x01\x02\x03").expect("write");
    for choice in [EngineChoice::Tract, EngineChoice::Ort, EngineChoice::Auto] {
        let err = engine::open(&model, choice, &ort_opts(1, vec![Provider::Cpu]))
            .err()
            .unwrap_or_else(|| panic!("{choice}: garbage accepted"));
        let msg = err.to_string();
        assert!(matches!(err, Error::Engine { .. }), "{choice}: {err:?}");
        assert!(msg.contains("garbage.onnx"), "{choice}: {msg}");
        assert!(!msg.contains('\n'), "{choice}: multi-line: {msg}");
    }
    // auto: ONNX Runtime rejected the model, so no switch to tract.
    let err = engine::open(
        &model,
        EngineChoice::Auto,
        &ort_opts(1, vec![Provider::Cpu]),
    )
    .err()
    .expect("auto rejects garbage");
    assert!(
        matches!(err, Error::Engine { engine: "ort", .. }),
        "{err:?}"
    );
}

#[test]
fn missing_model_file_is_an_io_error() {
    let model = Path::new("/nonexistent/model.onnx");
    for choice in [EngineChoice::Tract, EngineChoice::Ort] {
        let err = engine::open(model, choice, &ort_opts(1, vec![Provider::Cpu]))
            .err()
            .unwrap_or_else(|| panic!("{choice}: missing file accepted"));
        assert!(matches!(err, Error::Io { .. }), "{choice}: {err:?}");
        assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
    }
}

#[test]
fn unknown_operator_is_named_by_both_engines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "foobar.onnx", &cnn_model(Some("FooBar")));
    let o = ort_opts(1, vec![Provider::Cpu]);
    match engine::open(&model, EngineChoice::Tract, &o) {
        Err(Error::UnsupportedOp { op, node, path, .. }) => {
            assert_eq!(op, "FooBar");
            assert_eq!(node, "custom_node");
            assert_eq!(path, model);
        }
        other => panic!("tract: expected UnsupportedOp, got {:?}", other.err()),
    }
    let err = engine::open(&model, EngineChoice::Ort, &o)
        .err()
        .expect("ort accepted FooBar");
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Engine { engine: "ort", .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("FooBar") && msg.contains("foobar.onnx"),
        "{msg}"
    );
}

#[test]
fn missing_library_is_an_ort_library_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    let o = missing_lib_opts(1, vec![Provider::Cpu]);
    let err = engine::open(&model, EngineChoice::Ort, &o)
        .err()
        .expect("missing library accepted");
    let msg = err.to_string();
    assert!(matches!(err, Error::OrtLibrary { .. }), "{err:?}");
    assert!(msg.contains("/nonexistent/libonnxruntime.so"), "{msg}");
    assert!(msg.contains("fetch-onnxruntime.sh"), "{msg}");
    assert!(matches!(
        engine::ort::probe(&o),
        Err(Error::OrtLibrary { .. })
    ));
}

#[test]
fn text_file_as_library_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    let lib = dir.path().join("libonnxruntime.so");
    std::fs::write(&lib, "not a library\n").expect("write");
    let mut o = opts(1, vec![Provider::Cpu]);
    o.settings.ort_library = Some(lib.clone());
    let err = engine::open(&model, EngineChoice::Ort, &o)
        .err()
        .expect("text file loaded as a library");
    let msg = err.to_string();
    assert!(matches!(err, Error::OrtLibrary { .. }), "{err:?}");
    assert!(msg.contains("libonnxruntime.so"), "{msg}");
    assert!(msg.contains("not a shared library"), "{msg}");
}

#[test]
fn gpu_only_providers_on_a_cpu_library_fail_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    for (providers, name) in [
        (vec![Provider::Cuda], "CUDAExecutionProvider"),
        (vec![Provider::TensorRt], "TensorrtExecutionProvider"),
    ] {
        match engine::open(&model, EngineChoice::Ort, &ort_opts(1, providers)) {
            Err(Error::Provider { provider, reason }) => {
                assert_eq!(provider, name);
                assert!(reason.contains("not enabled in this build"), "{reason}");
            }
            other => panic!("{name}: expected a provider error, got {:?}", other.err()),
        }
        // auto must not turn this into a CPU run either.
        let err = engine::open(
            &model,
            EngineChoice::Auto,
            &ort_opts(1, vec![Provider::Cuda]),
        )
        .err()
        .expect("auto ran cuda-only on the CPU");
        assert!(matches!(err, Error::Provider { .. }), "{err:?}");
    }
}

#[test]
fn cuda_then_cpu_falls_back_to_cpu_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    let o = ort_opts(1, vec![Provider::TensorRt, Provider::Cuda, Provider::Cpu]);
    let mut s = engine::open(&model, EngineChoice::Ort, &o).expect("open");
    let info = s.info().clone();
    assert_eq!(info.provider, "CPUExecutionProvider");
    assert_eq!(info.fallbacks.len(), 2, "{:?}", info.fallbacks);
    assert!(info.fallbacks[0].starts_with("TensorrtExecutionProvider: "));
    assert!(
        info.fallbacks[1].starts_with("CUDAExecutionProvider: ")
            && info.fallbacks[1].contains("CUDA"),
        "{:?}",
        info.fallbacks
    );
    let x = input(1);
    let got = s.run(x.view().into_dyn()).expect("run");
    assert!(max_diff(&got, &reference(&x)) < 1e-5);
}

#[test]
fn auto_uses_ort_when_the_library_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    let s = engine::open(
        &model,
        EngineChoice::Auto,
        &ort_opts(1, vec![Provider::Cpu]),
    )
    .expect("open");
    assert_eq!(s.info().engine, "ort");
    assert!(s.info().fallbacks.is_empty());
}

#[test]
fn auto_without_the_library_falls_back_to_tract_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = write_model(dir.path(), "cnn.onnx", &cnn_model(None));
    let mut s = engine::open(
        &model,
        EngineChoice::Auto,
        &missing_lib_opts(1, vec![Provider::Cuda, Provider::Cpu]),
    )
    .expect("auto open");
    assert_eq!(s.info().engine, "tract");
    assert_eq!(s.info().fallbacks.len(), 1, "{:?}", s.info().fallbacks);
    let line = &s.info().fallbacks[0];
    assert!(line.starts_with("ort: "), "{line}");
    assert!(line.contains("/nonexistent/libonnxruntime.so"), "{line}");
    let x = input(1);
    let got = s.run(x.view().into_dyn()).expect("run");
    assert!(max_diff(&got, &reference(&x)) < 1e-5);

    // GPU-only request: tract (CPU) is no substitute.
    let err = engine::open(
        &model,
        EngineChoice::Auto,
        &missing_lib_opts(1, vec![Provider::Cuda]),
    )
    .err()
    .expect("auto fell back to the CPU for a cuda-only request");
    assert!(matches!(err, Error::OrtLibrary { .. }), "{err:?}");
    assert!(err.to_string().contains("no cpu"), "{err}");
}
