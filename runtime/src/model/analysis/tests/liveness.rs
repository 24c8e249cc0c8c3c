//! Peak live activation memory on a branching graph, worked by hand.

use std::path::Path;

use super::builder::{a_ints, a_tensor, ints_tensor, model, node, vi_fixed, weight};
use crate::model::analysis::analyze;

#[test]
fn residual_branch_keeps_its_input_alive() {
    // S = one [1, 4, 8, 8] float32 tensor = 1024 bytes.
    const S: u64 = 1024;
    let nodes = vec![
        node(
            "Constant",
            &[],
            &["shape"],
            vec![a_tensor("value", ints_tensor("", &[2], &[1, -1]))],
        ),
        node("Relu", &["x"], &["a"], vec![]),
        node("Conv", &["a", "w"], &["b"], vec![]),
        node("Relu", &["b"], &["c"], vec![]),
        node("Add", &["c", "a"], &["d"], vec![]),
        node(
            "MaxPool",
            &["d"],
            &["y"],
            vec![a_ints("kernel_shape", &[2, 2]), a_ints("strides", &[2, 2])],
        ),
        node("Reshape", &["y", "shape"], &["z"], vec![]),
    ];
    let m = model(
        nodes,
        vec![weight("w", &[4, 4, 1, 1])],
        vec![vi_fixed("x", &[1, 4, 8, 8])],
        &["z"],
        13,
    );
    let a = analyze(&m, Path::new("residual.onnx"), None).unwrap();
    // live after each node (x: S from the start; a stays alive until the Add):
    //   const: S (constants not counted)  relu a: 2S, then x freed → S
    //   conv b: 2S                         relu c: 3S (peak), then b freed → 2S
    //   add d: 3S, then a and c freed → S  pool y: S + S/4, then d freed → S/4
    //   reshape z: S/2 (z is the graph output; y freed)
    // Were the weight or the Constant counted, the peak would exceed 3S.
    assert_eq!(a.peak_activation_bytes, 3 * S);
    let bytes: Vec<u64> = a.nodes.iter().map(|n| n.activation_bytes).collect();
    assert_eq!(bytes, [0, S, S, S, S, S / 4, S / 4]);
    assert_eq!(a.total_activation_bytes, 4 * S + S / 2);
    assert_eq!(a.outputs[0].shape, [1, 64]);
    assert_eq!(a.total_params, 16);
    assert_eq!(a.total_macs, 64 * 4 * 4);
}

#[test]
fn chain_without_residual_peaks_at_two_tensors() {
    let nodes = vec![
        node("Relu", &["x"], &["a"], vec![]),
        node("Sigmoid", &["a"], &["b"], vec![]),
        node("Tanh", &["b"], &["c"], vec![]),
    ];
    let m = model(
        nodes,
        vec![],
        vec![vi_fixed("x", &[1, 4, 8, 8])],
        &["c"],
        13,
    );
    let a = analyze(&m, Path::new("chain.onnx"), None).unwrap();
    assert_eq!(a.peak_activation_bytes, 2 * 1024);
    assert_eq!(a.total_activation_bytes, 3 * 1024);
}
