//! Graphs as tf2onnx and `torch.onnx` write them: NHWC inputs wrapped in `Transpose`,
//! symbolic batch, shape arithmetic feeding `Reshape`, nodes out of order.

use std::path::Path;

use super::builder::{
    a_int, a_ints, a_str, a_tensor, ints_tensor, model, node, raw_ints, vi, weight,
};
use crate::model::analysis::analyze;

#[test]
fn tf2onnx_nhwc_graph_with_shape_chain() {
    let nodes = vec![
        node(
            "Transpose",
            &["x"],
            &["x_nchw"],
            vec![a_ints("perm", &[0, 3, 1, 2])],
        ),
        node(
            "Conv",
            &["x_nchw", "k", "kb"],
            &["c"],
            vec![a_str("auto_pad", "SAME_UPPER")],
        ),
        node("Relu", &["c"], &["r"], vec![]),
        node(
            "Transpose",
            &["r"],
            &["r_nhwc"],
            vec![a_ints("perm", &[0, 2, 3, 1])],
        ),
        // batch = Shape(r_nhwc)[0:1] via Slice; then Cast round trip as tf2onnx emits.
        node("Shape", &["r_nhwc"], &["shp"], vec![]),
        node("Slice", &["shp", "zero", "one"], &["batch"], vec![]),
        node("Cast", &["batch"], &["batch32"], vec![a_int("to", 6)]),
        node("Cast", &["batch32"], &["batch64"], vec![a_int("to", 7)]),
        node(
            "Constant",
            &[],
            &["minus1"],
            vec![a_tensor("value", ints_tensor("", &[1], &[-1]))],
        ),
        node(
            "Concat",
            &["batch64", "minus1"],
            &["newshape"],
            vec![a_int("axis", 0)],
        ),
        node("Reshape", &["r_nhwc", "newshape"], &["flat"], vec![]),
        node("MatMul", &["flat", "dense_w"], &["mm"], vec![]),
        node("Add", &["mm", "dense_b"], &["logits"], vec![]),
        node("Softmax", &["logits"], &["probs"], vec![a_int("axis", -1)]),
    ];
    // Out of order on purpose: a topological sort must restore it.
    let shuffled: Vec<_> = nodes.into_iter().rev().collect();
    let inits = vec![
        weight("k", &[8, 3, 3, 3]),
        weight("kb", &[8]),
        weight("dense_w", &[32 * 32 * 8, 10]),
        weight("dense_b", &[10]),
        raw_ints("zero", &[0]),
        raw_ints("one", &[1]),
    ];
    let input = vi("x", &[None, Some(32), Some(32), Some(3)]);
    let m = model(shuffled, inits, vec![input], &["probs"], 13);
    let a = analyze(&m, Path::new("tf.onnx"), None).unwrap();
    let ops: Vec<&str> = a.nodes.iter().map(|n| n.op.as_str()).collect();
    assert_eq!(ops[..4], ["Constant", "Transpose", "Conv", "Relu"]);
    let shape_of = |name: &str| {
        let n = a
            .nodes
            .iter()
            .find(|n| n.name == format!("{name}_node"))
            .unwrap();
        n.output_shape.clone()
    };
    assert_eq!(shape_of("x_nchw"), [1, 3, 32, 32]);
    assert_eq!(shape_of("c"), [1, 8, 32, 32]);
    assert_eq!(shape_of("r_nhwc"), [1, 32, 32, 8]);
    assert_eq!(shape_of("shp"), [4]);
    assert_eq!(shape_of("flat"), [1, 8192]);
    assert_eq!(shape_of("probs"), [1, 10]);
    // conv 8·3·9 + 8 and dense 8192·10 + 10; slice bounds are not parameters.
    assert_eq!(a.total_params, 224 + 81_930);
    assert_eq!(a.total_macs, 32 * 32 * 8 * 27 + 8192 * 10);
    assert_eq!(a.inputs[0].shape, [1, 32, 32, 3]);
    // Same graph at batch 4 through the override: the folded chain follows.
    let b = analyze(&m, Path::new("tf.onnx"), Some(&[4, 32, 32, 3])).unwrap();
    assert_eq!(b.outputs[0].shape, [4, 10]);
    assert_eq!(b.total_macs, 4 * a.total_macs);
}

#[test]
fn torch_flatten_chain_and_flatten_node() {
    let scalar0 = ints_tensor("", &[], &[0]);
    let nodes = vec![
        node(
            "Conv",
            &["input", "conv.weight", "conv.bias"],
            &["c"],
            vec![
                a_ints("kernel_shape", &[3, 3]),
                a_ints("pads", &[1, 1, 1, 1]),
                a_ints("strides", &[2, 2]),
            ],
        ),
        node("Relu", &["c"], &["r"], vec![]),
        // x.view(x.size(0), -1) as torch exports it at opset 11.
        node("Shape", &["r"], &["s"], vec![]),
        node("Constant", &[], &["i0"], vec![a_tensor("value", scalar0)]),
        node("Gather", &["s", "i0"], &["n"], vec![a_int("axis", 0)]),
        node("Unsqueeze", &["n"], &["n1"], vec![a_ints("axes", &[0])]),
        node("Concat", &["n1", "m1"], &["shape"], vec![a_int("axis", 0)]),
        node("Reshape", &["r", "shape"], &["v"], vec![]),
        node(
            "Gemm",
            &["v", "fc.weight", "fc.bias"],
            &["logits"],
            vec![a_int("transB", 1)],
        ),
        // torch.flatten after global pooling, on a second head.
        node("GlobalAveragePool", &["r"], &["gap"], vec![]),
        node("Flatten", &["gap"], &["gap_flat"], vec![a_int("axis", 1)]),
    ];
    let inits = vec![
        weight("conv.weight", &[4, 3, 3, 3]),
        weight("conv.bias", &[4]),
        weight("fc.weight", &[10, 256]),
        weight("fc.bias", &[10]),
        ints_tensor("m1", &[1], &[-1]),
    ];
    let input = vi("input", &[None, Some(3), Some(16), Some(16)]);
    let m = model(nodes, inits, vec![input], &["logits", "gap_flat"], 11);
    let a = analyze(&m, Path::new("torch.onnx"), None).unwrap();
    assert_eq!(a.nodes[0].output_shape, [1, 4, 8, 8]);
    assert_eq!(a.nodes[7].output_shape, [1, 256]);
    assert_eq!(a.outputs[0].shape, [1, 10]);
    assert_eq!(a.outputs[1].shape, [1, 4]);
    assert_eq!(a.total_params, 112 + 2570);
    assert_eq!(a.total_macs, 4 * 8 * 8 * 27 + 10 * 256);
    // Shape's output is a real (tiny) activation: 4 × int64.
    assert_eq!(a.nodes[2].activation_bytes, 32);
    // Constant nodes hold constants, not activations.
    assert_eq!(a.nodes[3].activation_bytes, 0);
}
