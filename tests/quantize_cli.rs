//! `edgebench quantize` through the binary: a built-in model calibrated on a synthetic
//! image set becomes an int8 QDQ model that `run` and `inspect` take, a quarter of the
//! size; the calibration images can be saved for the reference quantizer; bad input
//! (no images, a quantized model, an unknown method, the output over the input) is
//! one line, exit ≠ 0, nothing written.

mod common;

use std::path::Path;

use common::{fails, ok, p};

/// A short, quiet measurement writing its JSON report to `json`: `compare` or `bench`
/// arguments before these.
fn quick<'a>(args: &[&'a str], json: &'a Path) -> Vec<&'a str> {
    let mut a = args.to_vec();
    #[rustfmt::skip]
    a.extend([
        "--no-peak", "--warmup", "1", "--warmup-time", "0", "--min-duration", "0.1",
        "--min-queries", "3", "--tegrastats-interval", "0", "--quiet", "--json", p(json),
    ]);
    a
}

fn synth(dir: &Path, n: usize) -> std::path::PathBuf {
    let out = dir.join("synth");
    ok(&[
        "data",
        "synth",
        "--out",
        p(&out),
        "--classes",
        "4",
        "--count",
        &n.to_string(),
        "--size",
        "40",
    ]);
    out
}

#[test]
fn a_built_in_model_quantizes_runs_and_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 20);
    let out = dir.path().join("lean-int8.onnx");
    let calib = dir.path().join("calib.npy");
    let json = ok(&[
        "quantize",
        "lean",
        "--size",
        "32x32x3",
        "--calibrate",
        p(&data),
        "-o",
        p(&out),
        "--calibrate-images",
        "12",
        "--save-calibration",
        p(&calib),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["calibration_images"], 12);
    assert_eq!(r["method"], "minmax");
    let quantized = r["quantized"].as_array().unwrap();
    assert!(
        quantized
            .iter()
            .any(|q| q[0] == "Conv" && q[1].as_u64() >= Some(3)),
        "{quantized:?}"
    );
    assert!(r["folded_relus"].as_array().unwrap().len() >= 3, "{r}");
    let (fp32, int8) = (
        r["fp32_bytes"].as_f64().unwrap(),
        r["int8_bytes"].as_f64().unwrap(),
    );
    assert!(int8 < 0.3 * fp32, "int8 {int8} bytes vs fp32 {fp32}");
    assert_eq!(std::fs::metadata(&out).unwrap().len() as f64, int8);
    for range in r["ranges"].as_array().unwrap() {
        let (lo, hi) = (range["lo"].as_f64().unwrap(), range["hi"].as_f64().unwrap());
        let (scale, zp) = (
            range["scale"].as_f64().unwrap(),
            range["zero_point"].as_i64().unwrap(),
        );
        assert!(
            hi > lo && scale > 0.0 && (-128..=127).contains(&zp),
            "{range}"
        );
        // The range quantized holds 0 and, to within the zero point's rounding (half a
        // step at each end), what calibration saw.
        let (qlo, qhi) = (scale * (-128 - zp) as f64, scale * (127 - zp) as f64);
        assert!(
            qhi >= hi.max(0.0) - scale && qlo <= lo.min(0.0) + scale,
            "{range}"
        );
    }
    // The calibration images, as the model saw them.
    let a: ndarray::ArrayD<f32> =
        ndarray_npy::ReadNpyExt::read_npy(std::fs::File::open(&calib).unwrap()).unwrap();
    assert_eq!(a.shape(), [12, 3, 32, 32]);

    // A normal ONNX file: run and inspect take it.
    let run = ok(&["run", p(&out), "--input", "random", "--json"]);
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(run["output_shape"], serde_json::json!([1, 10]));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", p(&out), "--json"])).unwrap();
    assert_eq!(inspect["precision"], "int8");
    let size = std::fs::metadata(&out).unwrap().len();
    assert_eq!(inspect["file_bytes"].as_u64(), Some(size));
    // Per node: the convolutions read dequantized values (int8), Q/DQ are named so.
    for n in inspect["nodes"].as_array().unwrap() {
        let want = match n["op"].as_str().unwrap() {
            "Conv" | "Gemm" => "int8",
            "QuantizeLinear" | "DequantizeLinear" => "q/dq",
            _ => continue,
        };
        assert_eq!(n["precision"], want, "{n}");
    }
    let text = ok(&["inspect", p(&out)]);
    assert!(
        text.contains("opset 13, int8, ") && text.contains("on disk"),
        "{text}"
    );

    // The text report says what was quantized and how big it is.
    let out2 = dir.path().join("lean-int8-text.onnx");
    let text = ok(&[
        "quantize",
        "lean",
        "--size",
        "32x32x3",
        "--calibrate",
        p(&data),
        "-o",
        p(&out2),
        "--calibrate-images",
        "8",
        "--keep-last",
        "--method",
        "percentile:99.9",
    ]);
    assert!(
        text.contains("int8 QDQ") && text.contains("percentile:99.9"),
        "{text}"
    );
    assert!(
        text.contains("kept fp32:") && text.contains("--keep-last"),
        "{text}"
    );
    assert!(text.contains("size: "), "{text}");

    // Quantizing the quantized model again is refused.
    let e = fails(
        &[
            "quantize",
            p(&out),
            "--calibrate",
            p(&data),
            "-o",
            p(&dir.path().join("again.onnx")),
        ],
        1,
    );
    assert!(e.contains("already quantized"), "{e}");
    assert!(!dir.path().join("again.onnx").exists());
}

#[test]
fn bad_calibration_input_is_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.onnx");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = fails(
        &[
            "quantize",
            "lean",
            "--size",
            "32x32x3",
            "--calibrate",
            p(&empty),
            "-o",
            p(&out),
        ],
        1,
    );
    assert!(e.contains("empty") && e.contains("no images"), "{e}");
    assert!(!out.exists());

    let missing = dir.path().join("missing");
    let e = fails(
        &[
            "quantize",
            "lean",
            "--calibrate",
            p(&missing),
            "-o",
            p(&out),
        ],
        1,
    );
    assert!(e.contains("missing"), "{e}");
    assert!(!out.exists());

    let data = synth(dir.path(), 4);
    let e = common::fails_stderr(
        &[
            "quantize",
            "lean",
            "--calibrate",
            p(&data),
            "-o",
            p(&out),
            "--method",
            "median",
        ],
        2,
    );
    assert!(e.contains("median") && e.contains("percentile:P"), "{e}");
    let e = fails(
        &[
            "quantize",
            "lean",
            "--calibrate",
            p(&data),
            "-o",
            p(&out),
            "--keep-fp32",
            "nope",
        ],
        2,
    );
    assert!(e.contains("nope"), "{e}");
    assert!(!out.exists());

    // The output never replaces the model it reads.
    let model = dir.path().join("lean.onnx");
    ok(&[
        "models",
        "export",
        "lean",
        "--input",
        "32x32x3",
        "-o",
        p(&model),
    ]);
    let before = std::fs::read(&model).unwrap();
    let e = fails(
        &[
            "quantize",
            p(&model),
            "--calibrate",
            p(&data),
            "-o",
            p(&model),
        ],
        2,
    );
    assert!(e.contains("never replaces an input"), "{e}");
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn int8_variants_by_suffix_run_and_compare_beside_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 16);
    let json = dir.path().join("cmp.json");
    #[rustfmt::skip]
    ok(&quick(&[
        "compare", "lean", "lean@int8", "--size", "32x32x3", "--calibrate", p(&data),
        "--data", p(&data),
    ], &json));
    let r = common::read_json(&json);
    let models = r["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lean", "lean@int8"]);
    for m in models {
        let top1 = m["pipeline"]["top1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&top1), "{m}");
    }
    // Precision, file size and the top-1 change against the fp32 parent.
    let (fp32, int8) = (&models[0], &models[1]);
    assert_eq!(
        (fp32["precision"].as_str(), int8["precision"].as_str()),
        (Some("fp32"), Some("int8"))
    );
    let size = int8["ratios"]["file_bytes"].as_f64().unwrap();
    assert!(size > 0.1 && size < 0.3, "int8 file ×{size}");
    let change = int8["top1_change_points"].as_f64().unwrap();
    let want = (int8["accuracy"].as_f64().unwrap() - fp32["accuracy"].as_f64().unwrap()) * 100.0;
    assert!((change - want).abs() < 1e-9, "{change} vs {want}");
    assert!(fp32["top1_change_points"].is_null());
    let run = ok(&[
        "run",
        "lean@int8",
        "--size",
        "32x32x3",
        "--calibrate",
        p(&data),
        "--input",
        "random",
        "--json",
    ]);
    let run: serde_json::Value = serde_json::from_str(&run).unwrap();
    assert_eq!(run["model"], "lean@int8");

    let e = common::fails_one_line(&["run", "lean@int8", "--input", "random"], 2);
    assert!(
        e.contains("lean@int8") && e.contains("--calibrate DATA"),
        "{e}"
    );
    let e = common::fails_one_line(&["run", "lean@int4", "--input", "random"], 2);
    assert!(e.contains("unknown precision suffix @int4"), "{e}");
    let e = common::fails_one_line(
        &["quantize", "lean", "-o", p(&dir.path().join("q.onnx"))],
        2,
    );
    assert!(e.contains("--calibrate DATA"), "{e}");
}

#[test]
fn fp16_converts_without_calibration_runs_on_tract_and_compares() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lean-fp16.onnx");
    let r: serde_json::Value = serde_json::from_str(&ok(&[
        "quantize",
        "lean",
        "--size",
        "32x32x3",
        "--to",
        "fp16",
        "-o",
        p(&out),
        "--json",
    ]))
    .unwrap();
    assert!(r["initializers"].as_u64().unwrap() >= 6, "{r}");
    assert_eq!(r["cast_inputs"].as_array().unwrap().len(), 1, "{r}");
    let ratio = r["fp16_bytes"].as_f64().unwrap() / r["fp32_bytes"].as_f64().unwrap();
    assert!(ratio > 0.45 && ratio < 0.55, "fp16 file ×{ratio}");
    let text = ok(&[
        "quantize",
        "lean",
        "--size",
        "32x32x3",
        "--to",
        "fp16",
        "-o",
        p(&out),
    ]);
    assert!(
        text.contains("fp16") && text.contains("inputs and outputs stay fp32"),
        "{text}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", p(&out), "--json"])).unwrap();
    assert_eq!(info["precision"], "fp16");
    for n in info["nodes"].as_array().unwrap() {
        let want = match n["op"].as_str().unwrap() {
            "Conv" | "Relu" | "MaxPool" | "Gemm" => "fp16",
            // The input's cast reads float32.
            "Cast" if n["name"] == "input_to_fp16" => "fp32",
            _ => continue,
        };
        assert_eq!(n["precision"], want, "{n}");
    }
    // The same input through fp32 and fp16 on tract: outputs within 1e-2 of the largest.
    let x = dir.path().join("x.npy");
    let (y32, y16) = (dir.path().join("y32.npy"), dir.path().join("y16.npy"));
    let input = ndarray::Array4::<f32>::from_shape_fn((1, 3, 32, 32), |(_, c, h, w)| {
        ((c * 31 + h * 7 + w * 3) % 17) as f32 / 8.0 - 1.0
    });
    ndarray_npy::write_npy(&x, &input).unwrap();
    ok(&[
        "run",
        "lean",
        "--size",
        "32x32x3",
        "--input",
        p(&x),
        "--output",
        p(&y32),
        "--engine",
        "tract",
    ]);
    ok(&[
        "run",
        "lean@fp16",
        "--size",
        "32x32x3",
        "--input",
        p(&x),
        "--output",
        p(&y16),
        "--engine",
        "tract",
    ]);
    let read = |f: &Path| -> Vec<f32> {
        ndarray_npy::read_npy::<_, ndarray::ArrayD<f32>>(f)
            .unwrap()
            .iter()
            .copied()
            .collect()
    };
    let (a, b) = (read(&y32), read(&y16));
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let gap = a
        .iter()
        .zip(&b)
        .map(|(u, v)| (u - v).abs())
        .fold(0f32, f32::max);
    assert!(
        gap <= 1e-2 * scale && gap > 0.0,
        "fp16 vs fp32: {gap} of {scale}"
    );

    // The report of an fp16 variant beside its parent, on ONNX Runtime: tract computes
    // fp16 correctly (above) but slowly, and on some CPUs very slowly (an AVX-512 Xeon
    // here: 0.11 s for the first inference of this model, then 2.5 s for each one after),
    // which made this comparison take 150 s there.
    let data = synth(dir.path(), 12);
    let json = dir.path().join("cmp.json");
    #[rustfmt::skip]
    ok(&quick(&[
        "compare", "lean", "lean@fp16", "--size", "32x32x3", "--engine", "ort",
        "--data", p(&data),
    ], &json));
    let r = common::read_json(&json);
    let fp16 = &r["models"][1];
    assert_eq!(
        (fp16["name"].as_str(), fp16["precision"].as_str()),
        (Some("lean@fp16"), Some("fp16"))
    );
    let size = fp16["ratios"]["file_bytes"].as_f64().unwrap();
    assert!(size > 0.45 && size < 0.55, "fp16 file ×{size}");
    assert!(fp16["top1_change_points"].is_number(), "{fp16}");

    let e = common::fails_one_line(
        &[
            "quantize",
            "lean",
            "--to",
            "fp16",
            "--keep-last",
            "-o",
            p(&dir.path().join("k.onnx")),
        ],
        2,
    );
    assert!(e.contains("--keep-last applies to --to int8 only"), "{e}");
    let e = common::fails_one_line(
        &[
            "quantize",
            p(&out),
            "--to",
            "fp16",
            "-o",
            p(&dir.path().join("twice.onnx")),
        ],
        1,
    );
    assert!(e.contains("fp16 already"), "{e}");
    assert!(!dir.path().join("twice.onnx").exists());
}

#[test]
fn preprocessing_flags_feed_the_model_and_travel_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), 12);
    let img = std::fs::read_dir(data.join("class_00"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let fp32 = dir.path().join("lean.onnx");
    ok(&[
        "models",
        "export",
        "lean",
        "-o",
        p(&fp32),
        "--input",
        "32x32x3",
    ]);
    // ImageNet normalisation given on the command line, written into the int8 model.
    let int8 = dir.path().join("lean-int8.onnx");
    let imagenet = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"];
    let mut args = vec![
        "quantize",
        p(&fp32),
        "--calibrate",
        p(&data),
        "--reduce-range",
        "-o",
        p(&int8),
    ];
    args.extend(imagenet);
    let text = ok(&args);
    assert!(
        text.contains("calibration input: x/255 − [0.485,0.456,0.406] / [0.229,0.224,0.225], nchw"),
        "{text}"
    );
    let model = edgebench_runtime::onnx::read_model(&int8).unwrap();
    let meta = |k: &str| {
        model
            .metadata_props
            .iter()
            .find(|m| m.key == k)
            .map(|m| m.value.clone())
    };
    assert_eq!(meta("edgebench.layout").as_deref(), Some("nchw"));
    let pre: serde_json::Value =
        serde_json::from_str(&meta("edgebench.preprocess").unwrap()).unwrap();
    assert_eq!(
        pre["std"][2].as_f64().map(|v| (v * 1000.0).round()),
        Some(225.0)
    );
    // An image through the int8 model: its own metadata gives the same input as the flags.
    let run = |extra: &[&str], out: &Path| {
        let mut a = vec!["run", p(&int8), "--input", p(&img), "--output", p(out)];
        a.extend(extra);
        ok(&a)
    };
    let (y_meta, y_flags, y_plain) = (
        dir.path().join("a.npy"),
        dir.path().join("b.npy"),
        dir.path().join("c.npy"),
    );
    let said = run(&[], &y_meta);
    assert!(said.contains("image input: x/255 − [0.485"), "{said}");
    run(&imagenet, &y_flags);
    run(&["--mean", "0", "--std", "1"], &y_plain);
    let read = |f: &Path| std::fs::read(f).unwrap();
    assert_eq!(
        read(&y_meta),
        read(&y_flags),
        "metadata and flags feed the same input"
    );
    assert_ne!(read(&y_meta), read(&y_plain), "the flags change the input");
    // Training feeds its images so and exports a model that says so.
    let trained = dir.path().join("trained.onnx");
    ok(&[
        "train",
        "--model",
        "lean",
        "--data",
        p(&data),
        "--input-size",
        "32x32",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--mean",
        "0.5",
        "--std",
        "0.25",
        "--export",
        p(&trained),
    ]);
    let said = ok(&["run", p(&trained), "--input", p(&img)]);
    assert!(
        said.contains("image input: x/255 − [0.5] / [0.25], nchw"),
        "{said}"
    );
    let e = common::fails_one_line(
        &["train", "--model", "lean", "--layout", "nhwc", "--plan"],
        2,
    );
    assert!(e.contains("training engine is NCHW"), "{e}");
    // Bad values: one line, exit 2.
    for (flags, says) in [
        (vec!["--std", "0"], "--std: 0 must be positive"),
        (vec!["--mean", "1,2"], "--mean: 2 values"),
        (vec!["--scale", "-1"], "--scale -1: must be a positive"),
        (
            vec!["--layout", "nhwc"],
            "--layout nhwc: lean.onnx's input 1x3x32x32 has 32 there",
        ),
    ] {
        let mut a = vec!["run", p(&fp32), "--input", p(&img)];
        a.extend(flags);
        let e = common::fails_one_line(&a, 2);
        assert!(e.contains(says), "{e}");
    }
}
