//! CLI tests through the built `edgebench` binary: the zoo, export, inspect, run on
//! both engines, the golden fixtures from onnxruntime's Python API, and bad input.

use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;

mod common;
use common::{eb, fails_one_line as fails, ok};

fn npy(path: &Path) -> ArrayD<f32> {
    ArrayD::<f32>::read_npy(std::fs::File::open(path).unwrap()).unwrap()
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(name)
}

#[test]
fn models_list_shows_keras_param_counts() {
    let out = ok(&["models", "list"]);
    assert!(out.contains("heavy") && out.contains("7,261,450"), "{out}");
    assert!(out.contains("lean") && out.contains("1,403,978"), "{out}");
    for m in ["lean-w0.5", "lean-w2", "mobile"] {
        assert!(out.contains(m), "{m} missing: {out}");
    }
    let json: serde_json::Value = serde_json::from_str(&ok(&["models", "list", "--json"])).unwrap();
    let heavy = json
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "heavy")
        .unwrap();
    assert_eq!(heavy["macs"], 19_491_979_264u64);
}

#[test]
fn inspect_totals_match_the_reference() {
    for (model, params, macs) in [("heavy", 7_261_450u64, 19.5e9), ("lean", 1_403_978, 0.66e9)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{model}.onnx"));
        ok(&["models", "export", model, "-o", file.to_str().unwrap()]);
        let j: serde_json::Value =
            serde_json::from_str(&ok(&["inspect", file.to_str().unwrap(), "--json"])).unwrap();
        assert_eq!(j["total_params"], params, "{model}");
        let m = j["total_macs"].as_u64().unwrap() as f64;
        assert!((m / macs - 1.0).abs() < 0.01, "{model}: {m} MACs vs {macs}");
        assert!(j["peak_activation_bytes"].as_u64().unwrap() > 0);
        let table = ok(&["inspect", file.to_str().unwrap()]);
        assert!(table.contains("Conv"), "{table}");
    }
}

/// Every zoo model, exported and run on both engines from the same seeded input,
/// agrees to 1e-4 (max abs).
#[test]
fn ort_and_tract_agree_on_every_zoo_model() {
    let dir = tempfile::tempdir().unwrap();
    for model in ["heavy", "lean", "lean-w0.5", "lean-w2", "mobile"] {
        let mut outs = Vec::new();
        for engine in ["ort", "tract"] {
            let out = dir.path().join(format!("{model}-{engine}.npy"));
            let text = ok(&[
                "run",
                model,
                "--input",
                "random",
                "--seed",
                "3",
                "--engine",
                engine,
                "--output",
                out.to_str().unwrap(),
            ]);
            assert!(text.contains(&format!("engine {engine}")), "{text}");
            outs.push(npy(&out));
        }
        assert_eq!(outs[0].shape(), &[1, 10]);
        let sum: f32 = outs[0].iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{model}: softmax sums to {sum}");
        let d = max_abs_diff(&outs[0], &outs[1]);
        assert!(d <= 1e-4, "{model}: ort vs tract differ by {d}");
    }
}

/// Golden cases: the model, an input and the output onnxruntime's Python API (CPU EP)
/// computed for it, all made by scripts/make-golden.py.
/// - `nhwc_cnn`: a tf2onnx-shaped model built with onnx.helper (committed `.onnx`).
/// - `lean32`: our own writer's `lean` at 32x32x3, seed 1. Its model is exported here by
///   the binary under test, so a change in the writer or the lean spec that alters the
///   model's numbers fails against onnxruntime's outputs for the model it wrote when the
///   fixture was made.
///
/// Every case's files must be committed: a missing one is a failure, not a skip.
#[test]
fn golden_fixtures_pass_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let lean32 = dir.path().join("lean32.onnx");
    ok(&[
        "models",
        "export",
        "lean",
        "--input",
        "32x32x3",
        "--seed",
        "1",
        "-o",
        lean32.to_str().unwrap(),
    ]);
    for (case, model) in [
        ("nhwc_cnn", golden("nhwc_cnn.onnx")),
        ("lean32", lean32.clone()),
    ] {
        let input = golden(&format!("{case}.input.npy"));
        let expected = golden(&format!("{case}.expected.npy"));
        for f in [&model, &input, &expected] {
            assert!(
                f.is_file(),
                "golden case {case}: {} is missing (made by scripts/make-golden.py)",
                f.display()
            );
        }
        let expected = npy(&expected);
        for engine in ["ort", "tract"] {
            let out = dir.path().join(format!("{case}-{engine}.npy"));
            ok(&[
                "run",
                model.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--engine",
                engine,
                "--output",
                out.to_str().unwrap(),
            ]);
            let d = max_abs_diff(&npy(&out), &expected);
            assert!(d <= 1e-5, "{case} on {engine}: off by {d}");
        }
    }
}

#[test]
fn run_accepts_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("photo.png");
    image::RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    })
    .save(&img)
    .unwrap();
    let out = dir.path().join("y.npy");
    let text = ok(&[
        "run",
        "lean",
        "--input",
        img.to_str().unwrap(),
        "--size",
        "64x64x3",
        "--engine",
        "tract",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("top classes"), "{text}");
    let y = npy(&out);
    assert_eq!(y.shape(), &[1, 10]);
    // The golden NHWC model takes an image too (layout detected from the input shape).
    ok(&[
        "run",
        golden("nhwc_cnn.onnx").to_str().unwrap(),
        "--input",
        img.to_str().unwrap(),
        "--engine",
        "tract",
    ]);
}

#[test]
fn missing_model_file_is_named() {
    let err = fails(&["inspect", "/nonexistent/model.onnx"], 1);
    assert!(err.contains("/nonexistent/model.onnx"), "{err}");
    let err = fails(&["run", "/nonexistent/model.onnx", "--input", "random"], 1);
    assert!(err.contains("/nonexistent/model.onnx"), "{err}");
    let err = fails(&["run", "no-such-model", "--input", "random"], 2);
    assert!(err.contains("unknown model \"no-such-model\""), "{err}");
}

#[test]
fn an_os_error_is_said_once() {
    for args in [
        &["run", "lean", "--input", "/nonexistent/x.npy"][..],
        &["train", "--data", "/nonexistent/set", "--epochs", "1"][..],
        &["inspect", "/nonexistent/model.onnx"][..],
    ] {
        let err = fails(args, 1);
        assert_eq!(
            err.to_lowercase().matches("no such file").count(),
            1,
            "{args:?}: {err}"
        );
        assert_eq!(err.matches("/nonexistent/").count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn garbage_and_truncated_onnx_are_rejected_by_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf at all \xff\xff\xff").unwrap();
    let lean = dir.path().join("lean.onnx");
    ok(&[
        "models",
        "export",
        "lean",
        "-o",
        lean.to_str().unwrap(),
        "--input",
        "32x32x3",
    ]);
    let bytes = std::fs::read(&lean).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    for f in [&garbage, &truncated] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let err = fails(&["inspect", f.to_str().unwrap()], 1);
        assert!(err.contains(name), "{err}");
        for engine in ["ort", "tract"] {
            let err = fails(
                &[
                    "run",
                    f.to_str().unwrap(),
                    "--input",
                    "random",
                    "--input-shape",
                    "1x3x32x32",
                    "--engine",
                    engine,
                ],
                1,
            );
            assert!(err.contains(name), "{engine}: {err}");
        }
    }
}

/// A model with an operator nobody implements: analysis and both engines name the op.
#[test]
fn unsupported_op_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foobar.onnx");
    common::write_chain_model(
        &path,
        &[Some(1), Some(3), Some(8), Some(8)],
        &[("relu", "Relu"), ("mystery", "FooBar")],
    );
    let err = fails(&["inspect", path.to_str().unwrap()], 1);
    assert!(
        err.contains("FooBar") && err.contains("foobar.onnx"),
        "{err}"
    );
    for engine in ["ort", "tract"] {
        let err = fails(
            &[
                "run",
                path.to_str().unwrap(),
                "--input",
                "random",
                "--engine",
                engine,
            ],
            1,
        );
        assert!(err.contains("FooBar"), "{engine}: {err}");
        assert!(err.contains("foobar.onnx"), "{engine}: {err}");
    }
}

#[test]
fn wrong_shaped_npy_is_rejected_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("small.npy");
    let a = ArrayD::<f32>::zeros(ndarray::IxDyn(&[1, 3, 32, 32]));
    ndarray_npy::write_npy(&x, &a).unwrap();
    let err = fails(&["run", "lean", "--input", x.to_str().unwrap()], 1);
    assert!(err.contains("small.npy"), "{err}");
    assert!(
        err.contains("[1, 3, 256, 256]") && err.contains("[1, 3, 32, 32]"),
        "{err}"
    );
    let txt = dir.path().join("text.npy");
    std::fs::write(&txt, "not numpy").unwrap();
    let err = fails(&["run", "lean", "--input", txt.to_str().unwrap()], 1);
    assert!(err.contains("text.npy"), "{err}");
}

#[test]
fn missing_onnx_runtime_library_is_reported() {
    let err = fails(
        &[
            "run",
            "lean",
            "--input",
            "random",
            "--size",
            "32x32x3",
            "--engine",
            "ort",
            "--ort-lib",
            "/nonexistent/libonnxruntime.so",
        ],
        3,
    );
    assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
    // auto falls back to tract and says why.
    let out = ok(&[
        "run",
        "lean",
        "--input",
        "random",
        "--size",
        "32x32x3",
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
    ]);
    assert!(out.contains("engine tract"), "{out}");
    assert!(out.contains("fallback: ort"), "{out}");
}

#[test]
fn cuda_on_a_cpu_only_library_is_reported() {
    let err = fails(
        &[
            "run", "lean", "--input", "random", "--size", "32x32x3", "--engine", "ort", "--ep",
            "cuda",
        ],
        3,
    );
    assert!(err.contains("CUDAExecutionProvider"), "{err}");
    // With cpu after it, the fallback is taken and its reason printed.
    let out = ok(&[
        "run", "lean", "--input", "random", "--size", "32x32x3", "--engine", "ort", "--ep",
        "cuda,cpu",
    ]);
    assert!(out.contains("provider CPUExecutionProvider"), "{out}");
    assert!(out.contains("fallback: CUDAExecutionProvider"), "{out}");
}

#[test]
fn bad_flags_exit_2() {
    let out = eb(&["run", "lean", "--input", "random", "--ep", "quantum"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("quantum"));
    let out = eb(&["models", "export", "lean", "-o", "x.onnx", "--input", "0x1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn export_to_a_missing_directory_fails_cleanly() {
    let err = fails(
        &[
            "models",
            "export",
            "lean",
            "-o",
            "/nonexistent-dir/lean.onnx",
        ],
        2,
    );
    assert!(err.contains("/nonexistent-dir"), "{err}");
}
