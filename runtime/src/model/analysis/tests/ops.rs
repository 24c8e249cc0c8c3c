//! Shape rules of single operators, each checked against the ONNX specification's
//! formula worked by hand (and, for pooling with `ceil_mode`, against PyTorch).

use std::path::Path;

use super::builder::{a_int, a_ints, a_str, ints_tensor, model, node, vi_fixed, weight};
use crate::model::analysis::{Analysis, analyze};
use crate::onnx::pb::{NodeProto, TensorProto};

fn run(input: &[i64], nodes: Vec<NodeProto>, inits: Vec<TensorProto>, opset: i64) -> Analysis {
    let last = nodes
        .last()
        .and_then(|n| n.output.first())
        .cloned()
        .unwrap_or_default();
    let m = model(nodes, inits, vec![vi_fixed("x", input)], &[&last], opset);
    analyze(&m, Path::new("ops.onnx"), None).unwrap()
}

/// Output shape of the node that writes `out`.
fn shape(a: &Analysis, out: &str) -> Vec<usize> {
    let n = a.nodes.iter().find(|n| n.name == format!("{out}_node"));
    n.map(|n| n.output_shape.clone())
        .unwrap_or_else(|| panic!("no node {out}"))
}

#[test]
fn pooling_ceil_mode_and_auto_pad() {
    let k2s2 = || vec![a_ints("kernel_shape", &[2, 2]), a_ints("strides", &[2, 2])];
    let mut ceil = k2s2();
    ceil.push(a_int("ceil_mode", 1));
    // torch MaxPool2d(2, 2, padding=1, ceil_mode=True) on 3×3 gives 2×2: the last
    // window would start in the end padding and is dropped.
    let mut ceil_pad = ceil.clone();
    ceil_pad.push(a_ints("pads", &[1, 1, 1, 1]));
    let same_lower = vec![
        a_ints("kernel_shape", &[3, 3]),
        a_ints("strides", &[2, 2]),
        a_str("auto_pad", "SAME_LOWER"),
    ];
    let nodes = vec![
        node("MaxPool", &["x"], &["floor"], k2s2()),
        node("MaxPool", &["x"], &["ceil"], ceil),
        node("AveragePool", &["x"], &["same"], same_lower),
        node("MaxPool", &["small"], &["ceil_pad"], ceil_pad),
        node("GlobalMaxPool", &["x"], &["gmp"], vec![]),
    ];
    let small = node(
        "MaxPool",
        &["x"],
        &["small"],
        vec![a_ints("kernel_shape", &[3, 3])],
    );
    let a = run(&[1, 2, 5, 5], [vec![small], nodes].concat(), vec![], 13);
    assert_eq!(shape(&a, "floor"), [1, 2, 2, 2]);
    assert_eq!(shape(&a, "ceil"), [1, 2, 3, 3]);
    assert_eq!(shape(&a, "same"), [1, 2, 3, 3]);
    assert_eq!(shape(&a, "small"), [1, 2, 3, 3]);
    assert_eq!(shape(&a, "ceil_pad"), [1, 2, 2, 2]);
    assert_eq!(shape(&a, "gmp"), [1, 2, 1, 1]);
    assert_eq!(a.total_macs, 0);
}

#[test]
fn conv_variants_shapes_and_macs() {
    let nodes = vec![
        node(
            "Conv",
            &["x", "w5"],
            &["valid"],
            vec![a_str("auto_pad", "VALID")],
        ),
        node(
            "Conv",
            &["x", "w3"],
            &["dilated"],
            vec![a_ints("dilations", &[2, 2])],
        ),
        node(
            "Conv",
            &["x", "dw"],
            &["depthwise"],
            vec![a_int("group", 8), a_ints("pads", &[1, 1, 1, 1])],
        ),
        node(
            "ConvTranspose",
            &["x", "wt"],
            &["up"],
            vec![a_ints("strides", &[2, 2])],
        ),
    ];
    let inits = vec![
        weight("w5", &[4, 8, 5, 5]),
        weight("w3", &[4, 8, 3, 3]),
        weight("dw", &[8, 1, 3, 3]),
        weight("wt", &[8, 4, 2, 2]),
    ];
    let a = run(&[1, 8, 16, 16], nodes, inits, 13);
    assert_eq!(shape(&a, "valid"), [1, 4, 12, 12]);
    assert_eq!(shape(&a, "dilated"), [1, 4, 12, 12]);
    assert_eq!(shape(&a, "depthwise"), [1, 8, 16, 16]);
    assert_eq!(shape(&a, "up"), [1, 4, 32, 32]);
    let macs: Vec<u64> = a.nodes.iter().map(|n| n.macs).collect();
    // out elems × Cin/group × k², and for the transpose in elems × Cout × k².
    assert_eq!(macs, [576 * 200, 576 * 72, 2048 * 9, 2048 * 16]);
    assert_eq!(a.total_params, 800 + 288 + 72 + 128);
}

#[test]
fn gemm_matmul_and_broadcasting() {
    let nodes = vec![
        node("Reshape", &["x", "to_col"], &["col"], vec![]),
        node(
            "Gemm",
            &["col", "g", "gb"],
            &["gemm"],
            vec![a_int("transA", 1)],
        ),
        node("MatMul", &["x", "batched"], &["mm"], vec![]),
        node("MatMul", &["vec", "mat"], &["mv"], vec![]),
        node("Mul", &["mm", "row"], &["bc"], vec![]),
    ];
    let inits = vec![
        ints_tensor("to_col", &[2], &[-1, 1]),
        weight("g", &[24, 5]),
        weight("gb", &[1, 5]),
        weight("batched", &[5, 4, 6]),
        weight("vec", &[4]),
        weight("mat", &[4, 6]),
        weight("row", &[6]),
    ];
    let a = run(&[2, 1, 3, 4], nodes, inits, 13);
    assert_eq!(shape(&a, "col"), [24, 1]);
    assert_eq!(shape(&a, "gemm"), [1, 5]);
    assert_eq!(shape(&a, "mm"), [2, 5, 3, 6]);
    assert_eq!(shape(&a, "mv"), [6]);
    assert_eq!(shape(&a, "bc"), [2, 5, 3, 6]);
    let macs: Vec<u64> = a.nodes.iter().map(|n| n.macs).collect();
    assert_eq!(macs, [0, 5 * 24, 10 * 3 * 6 * 4, 24, 0]);
    // The Reshape target is a shape, not a parameter.
    assert_eq!(a.total_params, 120 + 5 + 120 + 4 + 24 + 6);
}

#[test]
fn tensor_ops_with_axes_as_inputs_opset13() {
    let nodes = vec![
        node(
            "ReduceMean",
            &["x"],
            &["mean"],
            vec![a_ints("axes", &[2, 3])],
        ),
        node("Squeeze", &["mean", "ax23"], &["sq"], vec![]),
        node("Unsqueeze", &["sq", "axm1"], &["unsq"], vec![]),
        node(
            "ReduceSum",
            &["x", "ax23"],
            &["sum"],
            vec![a_int("keepdims", 0)],
        ),
        node("Pad", &["x", "pads"], &["pad"], vec![]),
        node("Resize", &["x", "", "scales"], &["resize"], vec![]),
        node(
            "Split",
            &["x", "split"],
            &["s0", "s1"],
            vec![a_int("axis", 1)],
        ),
        node(
            "Slice",
            &["x", "start", "end", "ax1", "step"],
            &["rev"],
            vec![],
        ),
        node("Concat", &["s0", "x"], &["cat"], vec![a_int("axis", 1)]),
        node("Transpose", &["x"], &["tr"], vec![]),
        node("Reshape", &["x", "zero_m1"], &["rs"], vec![]),
        node("Expand", &["sq", "exp"], &["ex"], vec![]),
        node("Tile", &["x", "reps"], &["tile"], vec![]),
        node("Cast", &["x"], &["i64"], vec![a_int("to", 7)]),
        node(
            "BatchNormalization",
            &["x", "s", "b", "m", "v"],
            &["bn"],
            vec![],
        ),
    ];
    let f32s = |name: &str, v: &[f32]| TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: 1,
        float_data: v.to_vec(),
        ..Default::default()
    };
    let inits = vec![
        ints_tensor("ax23", &[2], &[2, 3]),
        ints_tensor("axm1", &[1], &[-1]),
        ints_tensor("pads", &[8], &[0, 0, 1, 2, 0, 0, 3, 4]),
        f32s("scales", &[1.0, 1.0, 2.0, 1.5]),
        ints_tensor("split", &[2], &[2, 6]),
        ints_tensor("start", &[1], &[-1]),
        ints_tensor("end", &[1], &[i64::MIN]),
        ints_tensor("ax1", &[1], &[1]),
        ints_tensor("step", &[1], &[-3]),
        ints_tensor("zero_m1", &[3], &[0, 0, -1]),
        ints_tensor("exp", &[3], &[3, 1, 8]),
        ints_tensor("reps", &[4], &[1, 2, 1, 3]),
        weight("s", &[8]),
        weight("b", &[8]),
        weight("m", &[8]),
        weight("v", &[8]),
    ];
    let a = run(&[1, 8, 4, 4], nodes, inits, 13);
    assert_eq!(shape(&a, "mean"), [1, 8, 1, 1]);
    assert_eq!(shape(&a, "sq"), [1, 8]);
    assert_eq!(shape(&a, "unsq"), [1, 8, 1]);
    assert_eq!(shape(&a, "sum"), [1, 8]);
    assert_eq!(shape(&a, "pad"), [1, 8, 8, 10]);
    assert_eq!(shape(&a, "resize"), [1, 8, 8, 6]);
    assert_eq!(shape(&a, "s0"), [1, 2, 4, 4]);
    let split = a.nodes.iter().find(|n| n.op == "Split").unwrap();
    assert_eq!(split.activation_bytes, 8 * 16 * 4); // both outputs
    // start 7, step -3 down to the beginning: 7, 4, 1.
    assert_eq!(shape(&a, "rev"), [1, 3, 4, 4]);
    assert_eq!(shape(&a, "cat"), [1, 10, 4, 4]);
    assert_eq!(shape(&a, "tr"), [4, 4, 8, 1]);
    assert_eq!(shape(&a, "rs"), [1, 8, 16]);
    assert_eq!(shape(&a, "ex"), [3, 1, 8]);
    assert_eq!(shape(&a, "tile"), [1, 16, 4, 12]);
    let cast = a.nodes.iter().find(|n| n.name == "i64_node").unwrap();
    assert_eq!(cast.activation_bytes, 128 * 8);
    let bn = a.nodes.iter().find(|n| n.name == "bn_node").unwrap();
    assert_eq!(
        (bn.output_shape.as_slice(), bn.params),
        (&[1, 8, 4, 4][..], 32)
    );
    // Only BatchNormalization's four vectors are parameters.
    assert_eq!(a.total_params, 32);
}

#[test]
fn folded_shape_arithmetic_range_and_topk() {
    let scalar = |name: &str, v: i64| ints_tensor(name, &[], &[v]);
    let nodes = vec![
        // [N, C·H·W] computed from the runtime shape, as torch writes x.view(n, c*h*w).
        node("Shape", &["x"], &["s"], vec![]),
        node("Gather", &["s", "i0"], &["n"], vec![]),
        node("Gather", &["s", "i1"], &["c"], vec![]),
        node("Gather", &["s", "i2"], &["h"], vec![]),
        node("Gather", &["s", "i3"], &["w"], vec![]),
        node("Mul", &["c", "h"], &["ch"], vec![]),
        node("Mul", &["ch", "w"], &["chw"], vec![]),
        node("Unsqueeze", &["n", "ax0"], &["n1"], vec![]),
        node("Unsqueeze", &["chw", "ax0"], &["chw1"], vec![]),
        node(
            "Concat",
            &["n1", "chw1"],
            &["shape"],
            vec![a_int("axis", 0)],
        ),
        node("Reshape", &["x", "shape"], &["flat"], vec![]),
        node("Range", &["i0", "chw", "i3"], &["idx"], vec![]),
        node(
            "Gather",
            &["flat", "idx"],
            &["picked"],
            vec![a_int("axis", 1)],
        ),
        node("TopK", &["picked", "k"], &["top", "top_i"], vec![]),
        node("Dropout", &["top", "ratio"], &["out"], vec![]),
    ];
    let ratio = TensorProto {
        name: "ratio".into(),
        data_type: 1,
        float_data: vec![0.5],
        ..Default::default()
    };
    let inits = vec![
        scalar("i0", 0),
        scalar("i1", 1),
        scalar("i2", 2),
        scalar("i3", 3),
        ints_tensor("ax0", &[1], &[0]),
        ints_tensor("k", &[1], &[5]),
        ratio,
    ];
    let a = run(&[2, 3, 4, 5], nodes, inits, 13);
    assert_eq!(shape(&a, "chw"), Vec::<usize>::new());
    assert_eq!(shape(&a, "flat"), [2, 60]);
    // range(0, 60, 3) has 20 elements.
    assert_eq!(shape(&a, "idx"), [20]);
    assert_eq!(shape(&a, "picked"), [2, 20]);
    let topk = a.nodes.iter().find(|n| n.op == "TopK").unwrap();
    assert_eq!(topk.output_shape, [2, 5]);
    assert_eq!(topk.activation_bytes, 10 * 4 + 10 * 8);
    assert_eq!(shape(&a, "out"), [2, 5]);
    // Indices, axes, k and the dropout ratio are not parameters.
    assert_eq!(a.total_params, 0);
}

#[test]
fn zero_dimension_override_is_rejected() {
    let m = model(
        vec![node("Relu", &["x"], &["y"], vec![])],
        vec![],
        vec![vi_fixed("x", &[1, 3])],
        &["y"],
        13,
    );
    let err = analyze(&m, Path::new("z.onnx"), Some(&[0, 3])).unwrap_err();
    assert!(matches!(err, crate::Error::Invalid(_)), "{err}");
    assert!(err.to_string().contains("z.onnx"), "{err}");
}
