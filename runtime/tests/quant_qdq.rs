//! The QDQ rewrite run by the real engines: a tiny conv net quantized with known ranges
//! gives, on ONNX Runtime, the output of an integer reference computed here by hand
//! (int8 inputs and weights, int32 accumulation and bias, requantization); a deeper
//! net's int8 output stays close to its fp32 output; tract's answer to a QDQ model; the
//! fp16 conversion run by tract (and by ONNX Runtime where its CPU has the kernels).
//!
//! Needs the ONNX Runtime library (`bash scripts/fetch-onnxruntime.sh`, CI does).
#![cfg(all(feature = "ort", feature = "tract"))]

use std::collections::HashMap;
use std::path::Path;

use edgebench_runtime::engine::{self, EngineChoice, EngineOptions};
use edgebench_runtime::onnx::{encode_model, pb};
use edgebench_runtime::quant::QParams;
use edgebench_runtime::quant::qdq::{self, Activations, Options};
use ndarray::{ArrayD, IxDyn};
use onnx_build::{int as attr_int, ints as attr_ints, node, tensor, value};

mod onnx_build;

const C_IN: usize = 2;
const C_OUT: usize = 3;
const HW: usize = 5;

/// Deterministic values in [-0.5, 0.5) · scale.
fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 37 + seed * 11) % 101) as f32 / 101.0 - 0.5) * scale)
        .collect()
}

fn model(
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    out: (&str, &[i64]),
) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "edgebench-test".into(),
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: inits,
            input: vec![value(
                "x",
                &[Some(1), Some(C_IN as i64), Some(HW as i64), Some(HW as i64)],
            )],
            output: vec![value(
                out.0,
                &out.1.iter().map(|&d| Some(d)).collect::<Vec<_>>(),
            )],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn conv_w() -> Vec<f32> {
    values(C_OUT * C_IN * 9, 1, 1.6)
}
fn conv_b() -> Vec<f32> {
    values(C_OUT, 2, 0.4)
}
fn input() -> Vec<f32> {
    values(C_IN * HW * HW, 5, 2.0)
}

/// Conv 3×3 (pad 1, bias) → ReLU.
fn conv_relu() -> pb::ModelProto {
    model(
        vec![
            node(
                "Conv",
                &["x", "w", "b"],
                "c",
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node("Relu", &["c"], "y", vec![]),
        ],
        vec![
            tensor("w", &[C_OUT as i64, C_IN as i64, 3, 3], &conv_w()),
            tensor("b", &[C_OUT as i64], &conv_b()),
        ],
        ("y", &[1, C_OUT as i64, HW as i64, HW as i64]),
    )
}

fn write(dir: &Path, name: &str, m: &pb::ModelProto) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, encode_model(m)).unwrap();
    p
}

fn run(path: &Path, choice: EngineChoice, x: &[f32]) -> edgebench_runtime::Result<ArrayD<f32>> {
    let shape = vec![1, C_IN, HW, HW];
    let mut s = engine::open(path, choice, &EngineOptions::for_shape(shape.clone()))?;
    let x = ArrayD::from_shape_vec(IxDyn(&shape), x.to_vec()).unwrap();
    s.run(x.view())
}

/// The integer reference of Conv → ReLU at the given input and output parameters, with
/// weights in −`qmax`…`qmax`.
fn integer_reference(px: QParams, py: QParams, x: &[f32], qmax: f32) -> Vec<f32> {
    let (w, b) = (conv_w(), conv_b());
    let qx: Vec<i32> = x.iter().map(|&v| px.quantize(v)).collect();
    let mut out = vec![0f32; C_OUT * HW * HW];
    for c in 0..C_OUT {
        let wc = &w[c * C_IN * 9..(c + 1) * C_IN * 9];
        let sw = wc.iter().fold(0f32, |m, v| m.max(v.abs())) / qmax;
        let qw: Vec<i32> = wc
            .iter()
            .map(|&v| (v / sw).round_ties_even() as i32)
            .collect();
        let sb = px.scale * sw;
        let qb = (f64::from(b[c]) / f64::from(sb)).round_ties_even() as i64;
        for y in 0..HW {
            for xx in 0..HW {
                let mut acc = qb;
                for ci in 0..C_IN {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let (iy, ix) = (y + ky, xx + kx);
                            if iy < 1 || ix < 1 || iy > HW || ix > HW {
                                continue; // zero padding: q = zero point, contributes 0
                            }
                            let q = qx[(ci * HW + iy - 1) * HW + ix - 1] - px.zero_point;
                            acc += i64::from(q) * i64::from(qw[(ci * 3 + ky) * 3 + kx]);
                        }
                    }
                }
                let real = acc as f64 * f64::from(sb);
                let q = ((real / f64::from(py.scale)).round_ties_even() as i64
                    + i64::from(py.zero_point))
                .clamp(-128, 127) as i32;
                out[(c * HW + y) * HW + xx] = py.dequantize(q);
            }
        }
    }
    out
}

/// Which weight ranges ONNX Runtime's CPU kernels compute exactly here: reduced (7-bit)
/// everywhere, full range unless this is an x86-64 CPU without VNNI (whose 16-bit
/// intermediate sums saturate).
fn exact_weight_ranges() -> Vec<bool> {
    if edgebench_runtime::quant::int8_saturates_here() {
        vec![true]
    } else {
        vec![true, false]
    }
}

#[test]
fn a_quantized_conv_relu_matches_the_integer_reference_on_onnx_runtime() {
    for reduce_range in exact_weight_ranges() {
        conv_relu_against_the_integer_reference(reduce_range);
    }
}

fn conv_relu_against_the_integer_reference(reduce_range: bool) {
    let dir = tempfile::tempdir().unwrap();
    let m = conv_relu();
    let src = write(dir.path(), "fp32.onnx", &m);
    let opts = Options {
        reduce_range,
        ..Options::default()
    };
    let plan = qdq::plan(&m, &src, &opts).unwrap();
    // The ReLU folds away: the conv's output is the ReLU's, quantized from 0.
    assert_eq!(plan.folded_relus, ["y_node"]);
    assert_eq!(plan.tensors, ["x", "y"]);
    // The input spans [-1, 1); the output range is what the fp32 model reaches.
    let x = input();
    let fp32 = run(&src, EngineChoice::Ort, &x).unwrap();
    let hi = fp32.iter().fold(0f32, |m, &v| m.max(v));
    let ranges = HashMap::from([
        ("x".to_string(), (-1.0f32, 1.0f32)),
        ("y".to_string(), (0.0, hi)),
    ]);
    let q = qdq::rewrite(&m, &src, &plan, &ranges).unwrap();
    let g = q.model.graph.as_ref().unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(
        ops,
        [
            "QuantizeLinear",
            "DequantizeLinear",
            "DequantizeLinear",
            "DequantizeLinear",
            "Conv",
            "QuantizeLinear",
            "DequantizeLinear"
        ]
    );
    let int8 = g
        .initializer
        .iter()
        .find(|t| t.name == "w_quantized")
        .unwrap();
    assert_eq!(int8.data_type, pb::data_type::INT8);
    let qmax = if reduce_range { 64 } else { 127 };
    let widest = int8
        .raw_data
        .iter()
        .map(|&b| (b as i8).unsigned_abs())
        .max();
    assert_eq!(widest, Some(qmax), "weights span -{qmax}..{qmax}");
    assert!(
        g.initializer.iter().all(|t| t.name != "w"),
        "the fp32 weight is gone"
    );
    let path = write(dir.path(), "int8.onnx", &q.model);

    let px = QParams::asymmetric_i8(-1.0, 1.0).unwrap();
    let py = QParams::asymmetric_i8(0.0, hi).unwrap();
    assert_eq!(py.zero_point, -128);
    let want = integer_reference(px, py, &x, f32::from(qmax));
    let got = run(&path, EngineChoice::Ort, &x).unwrap();
    let got = got.as_slice().unwrap();
    let mut exact = 0;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // ONNX Runtime requantizes in float: a value on a rounding tie may land one
        // step away; never further.
        assert!(
            (g - w).abs() <= py.scale * 1.001,
            "weights ±{qmax}, value {i}: {g} vs {w}"
        );
        exact += usize::from(g == w);
    }
    assert!(
        exact * 100 >= want.len() * 95,
        "{exact} of {} exact",
        want.len()
    );
    assert!(
        want.contains(&0.0) && want.iter().any(|&v| v > 0.5),
        "the test covers both sides of the ReLU"
    );

    // And it stays close to the fp32 model: within a few output steps.
    for (a, b) in got.iter().zip(fp32.as_slice().unwrap()) {
        assert!((a - b).abs() <= 4.0 * py.scale, "{a} vs fp32 {b}");
    }
}

/// Conv → ReLU → MaxPool → Conv → ReLU → GlobalAveragePool → Flatten → Gemm.
fn deeper() -> pb::ModelProto {
    let classes = 4;
    model(
        vec![
            node(
                "Conv",
                &["x", "w1", "b1"],
                "c1",
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node("Relu", &["c1"], "r1", vec![]),
            node(
                "MaxPool",
                &["r1"],
                "p1",
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[2, 2]),
                ],
            ),
            node(
                "Conv",
                &["p1", "w2", "b2"],
                "c2",
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node("Relu", &["c2"], "r2", vec![]),
            node("GlobalAveragePool", &["r2"], "g", vec![]),
            node("Flatten", &["g"], "f", vec![attr_int("axis", 1)]),
            node(
                "Gemm",
                &["f", "w3", "b3"],
                "logits",
                vec![attr_int("transB", 1)],
            ),
        ],
        vec![
            tensor("w1", &[C_OUT as i64, C_IN as i64, 3, 3], &conv_w()),
            tensor("b1", &[C_OUT as i64], &conv_b()),
            tensor(
                "w2",
                &[6, C_OUT as i64, 3, 3],
                &values(6 * C_OUT * 9, 7, 1.0),
            ),
            tensor("b2", &[6], &values(6, 8, 0.2)),
            tensor("w3", &[classes, 6], &values(classes as usize * 6, 9, 2.0)),
            tensor("b3", &[classes], &values(classes as usize, 10, 0.2)),
        ],
        ("logits", &[1, classes]),
    )
}

/// min/max of every planned tensor over some inputs, as calibration would find them.
fn observed(
    m: &pb::ModelProto,
    plan: &qdq::Plan,
    dir: &Path,
    inputs: &[Vec<f32>],
) -> HashMap<String, (f32, f32)> {
    let calib = qdq::calibration_model(m, plan);
    let names: Vec<String> = calib
        .graph
        .as_ref()
        .unwrap()
        .output
        .iter()
        .map(|o| o.name.clone())
        .collect();
    let path = write(dir, "calib.onnx", &calib);
    let shape = vec![1, C_IN, HW, HW];
    let mut s = engine::open(
        &path,
        EngineChoice::Ort,
        &EngineOptions::for_shape(shape.clone()),
    )
    .unwrap();
    let mut r: HashMap<String, (f32, f32)> = HashMap::new();
    for x in inputs {
        let t = ArrayD::from_shape_vec(IxDyn(&shape), x.clone()).unwrap();
        let outs = s.run_all(t.view()).unwrap();
        assert_eq!(outs.len(), names.len());
        let named = names
            .iter()
            .zip(outs.iter().map(|o| o.as_slice().unwrap().to_vec()));
        let input = std::iter::once(("x".to_string(), x.clone()));
        for (n, v) in named.map(|(n, v)| (n.clone(), v)).chain(input) {
            let e = r.entry(n).or_insert((f32::MAX, f32::MIN));
            for &x in &v {
                e.0 = e.0.min(x);
                e.1 = e.1.max(x);
            }
        }
    }
    r
}

#[test]
fn a_deeper_net_quantizes_between_ops_and_stays_close_to_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let m = deeper();
    let src = write(dir.path(), "fp32.onnx", &m);
    // The weight range ONNX Runtime computes exactly on this CPU.
    let here = Options {
        reduce_range: edgebench_runtime::quant::int8_saturates_here(),
        ..Options::default()
    };
    let plan = qdq::plan(&m, &src, &here).unwrap();
    assert_eq!(
        plan.quantized_ops(),
        [
            ("Conv".to_string(), 2),
            ("MaxPool".into(), 1),
            ("GlobalAveragePool".into(), 1),
            ("Gemm".into(), 1)
        ]
    );
    assert_eq!(plan.folded_relus.len(), 2);
    assert!(plan.kept.is_empty(), "{:?}", plan.kept);
    let inputs: Vec<Vec<f32>> = (0..8)
        .map(|s| values(C_IN * HW * HW, 20 + s, 2.0))
        .collect();
    let ranges = observed(&m, &plan, dir.path(), &inputs);
    let q = qdq::rewrite(&m, &src, &plan, &ranges).unwrap();
    let path = write(dir.path(), "int8.onnx", &q.model);
    for x in &inputs {
        let a = run(&path, EngineChoice::Ort, x).unwrap();
        let b = run(&src, EngineChoice::Ort, x).unwrap();
        let span = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (u, v) in a.iter().zip(b.iter()) {
            assert!(
                (u - v).abs() <= 0.05 * span,
                "int8 {u} vs fp32 {v} (span {span})"
            );
        }
    }

    // --keep-last leaves the Gemm in fp32 and says so.
    let keep = qdq::plan(
        &m,
        &src,
        &Options {
            keep_last: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(keep.kept.len(), 1);
    assert_eq!(
        (keep.kept[0].op.as_str(), keep.kept[0].reason.as_str()),
        ("Gemm", "--keep-last (the last layer)")
    );
    // Symmetric activations keep the ReLUs (TensorRT's form).
    let sym = qdq::plan(
        &m,
        &src,
        &Options {
            activations: Activations::Symmetric,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(sym.folded_relus.is_empty());
    assert_eq!(
        sym.quantized_ops()
            .iter()
            .find(|(o, _)| o == "Relu")
            .map(|p| p.1),
        Some(2)
    );
}

#[test]
fn bad_models_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let m = conv_relu();
    let src = write(dir.path(), "fp32.onnx", &m);
    let plan = qdq::plan(&m, &src, &Options::default()).unwrap();
    let ranges = HashMap::from([
        ("x".to_string(), (-1.0f32, 1.0f32)),
        ("y".to_string(), (0.0, 1.5)),
    ]);
    let q = qdq::rewrite(&m, &src, &plan, &ranges).unwrap();
    let mut errors = Vec::new();
    // Already quantized.
    let e = qdq::plan(&q.model, &src, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("already quantized") && e.contains("QuantizeLinear"),
        "{e}"
    );
    errors.push(e);
    // No quantizable node.
    let mut relu_only = m.clone();
    let g = relu_only.graph.as_mut().unwrap();
    g.node = vec![node("Relu", &["x"], "y", vec![])];
    g.initializer.clear();
    let e = qdq::plan(&relu_only, &src, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no node to quantize"), "{e}");
    errors.push(e);
    // An old opset.
    let mut old = m.clone();
    old.opset_import[0].version = 11;
    let e = qdq::plan(&old, &src, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("opset 11") && e.contains("13"), "{e}");
    errors.push(e);
    // An unknown --keep-fp32 name.
    let opts = Options {
        keep_fp32: vec!["nope".into()],
        ..Default::default()
    };
    let e = qdq::plan(&m, &src, &opts).unwrap_err().to_string();
    assert!(e.contains("\"nope\"") && e.contains("c_node"), "{e}");
    errors.push(e);
    // A range that is not finite.
    let bad = HashMap::from([
        ("x".to_string(), (-1.0f32, f32::NAN)),
        ("y".to_string(), (0.0, 1.5)),
    ]);
    let e = qdq::rewrite(&m, &src, &plan, &bad).unwrap_err().to_string();
    assert!(e.contains("not finite"), "{e}");
    errors.push(e);
    for e in errors {
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn tract_on_a_qdq_model() {
    let dir = tempfile::tempdir().unwrap();
    let m = conv_relu();
    let src = write(dir.path(), "fp32.onnx", &m);
    let here = Options {
        reduce_range: edgebench_runtime::quant::int8_saturates_here(),
        ..Options::default()
    };
    let plan = qdq::plan(&m, &src, &here).unwrap();
    let ranges = HashMap::from([
        ("x".to_string(), (-1.0f32, 1.0f32)),
        ("y".to_string(), (0.0, 1.5)),
    ]);
    let q = qdq::rewrite(&m, &src, &plan, &ranges).unwrap();
    let path = write(dir.path(), "int8.onnx", &q.model);
    let x = input();
    let ort = run(&path, EngineChoice::Ort, &x).unwrap();
    let tract = run(&path, EngineChoice::Tract, &x).unwrap();
    let step = QParams::asymmetric_i8(0.0, 1.5).unwrap().scale;
    for (a, b) in tract.iter().zip(ort.iter()) {
        assert!((a - b).abs() <= step * 1.001, "tract {a} vs ort {b}");
    }
}

/// Largest |a − b| over the largest |b|.
fn relative_gap(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
        / scale
}

#[test]
fn fp16_conversion_runs_on_tract_within_1e_2_of_fp32() {
    use edgebench_runtime::quant::fp16;
    let dir = tempfile::tempdir().unwrap();
    let fp32 = deeper();
    let fp32_path = write(dir.path(), "deeper.onnx", &fp32);
    let c = fp16::convert(&fp32, &fp32_path).unwrap();
    assert_eq!(c.initializers, 6);
    assert_eq!(c.gemm_as_matmul, ["logits_node"]);
    assert_eq!(
        (c.cast_inputs.as_slice(), c.cast_outputs.as_slice()),
        (&["x".to_string()][..], &["logits".to_string()][..])
    );
    let g = c.model.graph.as_ref().unwrap();
    assert!(
        g.initializer
            .iter()
            .all(|t| t.data_type == pb::data_type::FLOAT16)
    );
    // The graph's interface stays float32.
    for v in g.input.iter().chain(&g.output) {
        let elem = v
            .r#type
            .as_ref()
            .unwrap()
            .tensor_type
            .as_ref()
            .unwrap()
            .elem_type;
        assert_eq!(elem, pb::data_type::FLOAT, "{}", v.name);
    }
    assert_eq!(edgebench_runtime::quant::precision_of(&c.model), "fp16");
    let fp16_path = write(dir.path(), "deeper-fp16.onnx", &c.model);
    let x = input();
    let want = run(&fp32_path, EngineChoice::Ort, &x).unwrap();
    let got = run(&fp16_path, EngineChoice::Tract, &x).unwrap();
    assert_eq!(got.shape(), want.shape());
    let gap = relative_gap(&got, &want);
    assert!(gap <= 1e-2, "fp16 on tract is {gap} (relative) from fp32");
    assert!(
        gap > 0.0,
        "fp16 gave exactly the fp32 answer: was it converted?"
    );
    // ONNX Runtime: either it runs the fp16 model (a CPU with float16 kernels) to the
    // same tolerance, or it refuses with the way to run it.
    match run(&fp16_path, EngineChoice::Ort, &x) {
        Ok(y) => assert!(relative_gap(&y, &want) <= 1e-2),
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.contains("--engine tract") && e.contains("cuda or tensorrt"),
                "{e}"
            );
        }
    }
    // Converting twice is refused: the model is fp16 already.
    let e = fp16::convert(&c.model, &fp16_path).unwrap_err().to_string();
    assert!(e.contains("fp16 already"), "{e}");
}

#[test]
fn fp16_conversion_refuses_what_does_not_fit_and_keeps_float32_inputs() {
    use edgebench_runtime::quant::fp16;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    // A weight over fp16's largest value is refused, naming it.
    let mut big = conv_relu();
    let g = big.graph.as_mut().unwrap();
    let mut w = conv_w();
    w[4] = 1.0e6;
    g.initializer[0] = tensor("w", &[C_OUT as i64, C_IN as i64, 3, 3], &w);
    let e = fp16::convert(&big, &path).unwrap_err().to_string();
    assert!(
        e.contains("initializer \"w\"") && e.contains("does not fit in fp16"),
        "{e}"
    );
    // Resize's scales stay float32; a Cast to float casts to float16; a float Constant
    // becomes a float16 tensor; tiny weights become 0 and are counted.
    let mut m = conv_relu();
    let g = m.graph.as_mut().unwrap();
    g.initializer[1] = tensor("b", &[C_OUT as i64], &[1e-9, 0.5, -0.25]);
    g.node
        .push(node("Resize", &["y", "", "scales"], "up", vec![]));
    g.initializer
        .push(tensor("scales", &[4], &[1.0, 1.0, 2.0, 2.0]));
    g.node.push(node("Shape", &["up"], "shape", vec![]));
    g.node
        .push(node("Cast", &["shape"], "shape_f", vec![attr_int("to", 1)]));
    g.node.push(pb::NodeProto {
        op_type: "Constant".into(),
        name: "half_node".into(),
        output: vec!["half".into()],
        attribute: vec![pb::AttributeProto {
            name: "value_float".into(),
            r#type: pb::attribute_type::FLOAT,
            f: 0.5,
            ..Default::default()
        }],
        ..Default::default()
    });
    let c = fp16::convert(&m, &path).unwrap();
    assert_eq!(c.kept_fp32.len(), 1, "{:?}", c.kept_fp32);
    assert_eq!(c.kept_fp32[0].0, "scales");
    assert_eq!(c.flushed_to_zero, 1);
    assert!(
        c.max_relative_error > 0.0 && c.max_relative_error <= 4.9e-4,
        "{}",
        c.max_relative_error
    );
    let g = c.model.graph.as_ref().unwrap();
    let scales = g.initializer.iter().find(|t| t.name == "scales").unwrap();
    assert_eq!(scales.data_type, pb::data_type::FLOAT);
    let cast = g.node.iter().find(|n| n.name == "shape_f_node").unwrap();
    assert_eq!(cast.attribute[0].i, i64::from(pb::data_type::FLOAT16));
    let constant = g.node.iter().find(|n| n.name == "half_node").unwrap();
    let t = constant.attribute[0].t.as_ref().unwrap();
    assert_eq!(
        (constant.attribute[0].name.as_str(), t.data_type),
        ("value", pb::data_type::FLOAT16)
    );
    assert_eq!(t.raw_data, half::f16::from_f32(0.5).to_le_bytes());
    // An int8 model is refused.
    let plan = qdq::plan(&conv_relu(), &path, &Options::default()).unwrap();
    let ranges: HashMap<String, (f32, f32)> = plan
        .tensors
        .iter()
        .map(|t| (t.clone(), (-1.0, 1.0)))
        .collect();
    let int8 = qdq::rewrite(&conv_relu(), &path, &plan, &ranges)
        .unwrap()
        .model;
    let e = fp16::convert(&int8, &path).unwrap_err().to_string();
    assert!(e.contains("int8 already"), "{e}");
}
