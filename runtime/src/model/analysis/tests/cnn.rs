//! The seed's lean and heavy CNNs: parameters must equal Keras' `count_params`, MACs
//! the hand-computed multiply-accumulates.

use std::path::Path;

use super::builder::{Seq, model, vi};
use crate::model::analysis::{analyze, analyze_file, input_shape_of};
use crate::onnx::pb::ModelProto;

fn lean() -> ModelProto {
    let mut s = Seq::new("input");
    s.conv(3, 32, 3, false).pool().conv(32, 64, 3, false).pool();
    s.conv(64, 128, 3, false)
        .pool()
        .flatten()
        .dense_softmax(32 * 32 * 128, 10);
    let out = s.output().to_string();
    let input = vi("input", &[Some(1), Some(3), Some(256), Some(256)]);
    model(s.nodes, s.inits, vec![input], &[&out], 13)
}

fn heavy() -> ModelProto {
    let mut s = Seq::new("input");
    s.conv(3, 128, 7, true)
        .pool()
        .conv(128, 256, 5, true)
        .pool();
    s.conv(256, 512, 3, true)
        .pool()
        .flatten()
        .dense_softmax(32 * 32 * 512, 10);
    let out = s.output().to_string();
    // Symbolic batch; and, as old-IR exporters do, every weight also listed as an input.
    let mut inputs = vec![vi("input", &[None, Some(3), Some(256), Some(256)])];
    inputs.extend(s.inits.iter().map(|t| vi(&t.name, &[])));
    model(s.nodes, s.inits, inputs, &[&out], 9)
}

#[test]
fn lean_cnn_matches_keras_params_and_macs() {
    let a = analyze(&lean(), Path::new("lean.onnx"), None).unwrap();
    assert_eq!(a.total_params, 1_403_978);
    // 256²·32·27 + 128²·64·288 + 64²·128·576 + 131072·10
    assert_eq!(a.total_macs, 661_913_600);
    assert!((a.total_macs as f64 / 0.662e9 - 1.0).abs() < 0.01);
    assert_eq!(a.nodes.len(), 12);
    let conv1 = &a.nodes[0];
    assert_eq!(
        (conv1.op.as_str(), conv1.output_shape.as_slice()),
        ("Conv", &[1, 32, 256, 256][..])
    );
    assert_eq!(
        (conv1.params, conv1.macs, conv1.activation_bytes),
        (896, 56_623_104, 8_388_608)
    );
    assert_eq!(a.nodes[8].output_shape, [1, 128, 32, 32]);
    assert_eq!(a.nodes[9].output_shape, [1, 131_072]);
    assert_eq!(
        (a.nodes[10].op.as_str(), a.nodes[10].params),
        ("Gemm", 1_310_730)
    );
    assert_eq!(a.outputs[0].shape, [1, 10]);
    assert_eq!(a.outputs[0].dtype, "float32");
    assert_eq!(a.inputs[0].shape, [1, 3, 256, 256]);
    assert_eq!(a.total_activation_bytes, 33_554_512);
    // Peak: conv1's and relu1's outputs together (the input is freed after conv1).
    assert_eq!(a.peak_activation_bytes, 2 * 8_388_608);
    assert_eq!(a.opset, 13);
}

#[test]
fn heavy_cnn_matches_keras_params_and_macs() {
    let m = heavy();
    let a = analyze(&m, Path::new("heavy.onnx"), None).unwrap();
    assert_eq!(a.total_params, 7_261_450);
    assert_eq!(a.total_macs, 19_491_979_264);
    assert!((a.total_macs as f64 / 19.49e9 - 1.0).abs() < 0.01);
    // Weights listed as graph inputs are parameters, not inputs; batch N → 1.
    assert_eq!(a.inputs.len(), 1);
    assert_eq!(a.inputs[0].shape, [1, 3, 256, 256]);
    assert_eq!(a.nodes[0].output_shape, [1, 128, 256, 256]);
    assert_eq!(a.peak_activation_bytes, 2 * 33_554_432);
    assert_eq!(a.total_activation_bytes, 134_217_808);

    // A batch of 2 doubles every MAC and activation, not the parameters.
    let b = analyze(&m, Path::new("heavy.onnx"), Some(&[2, 3, 256, 256])).unwrap();
    assert_eq!(b.total_params, 7_261_450);
    assert_eq!(b.total_macs, 2 * 19_491_979_264);
    assert_eq!(b.total_activation_bytes, 268_435_616);
    assert_eq!(b.outputs[0].shape, [2, 10]);
    // Another resolution: 128×128 gives a 16×16×512 flatten, which Gemm rejects.
    let err = analyze(&m, Path::new("heavy.onnx"), Some(&[1, 3, 128, 128])).unwrap_err();
    assert!(matches!(err, crate::Error::Shape { .. }), "{err}");
}

#[test]
fn declared_input_shape_skips_initializer_inputs() {
    let shape = input_shape_of(&heavy(), Path::new("heavy.onnx")).unwrap();
    assert_eq!(shape, [None, Some(3), Some(256), Some(256)]);
}

#[test]
fn analysis_of_a_file_and_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lean.onnx");
    std::fs::write(&path, crate::onnx::encode_model(&lean())).unwrap();
    let a = analyze_file(&path, None).unwrap();
    assert_eq!(a.total_params, 1_403_978);
    assert_eq!(a.producer, "edgebench-tests");
    let table = a.to_table();
    assert!(table.contains("conv1_node"), "{table}");
    assert!(table.contains("[1, 32, 256, 256]"), "{table}");
    assert!(table.contains("1,403,978"), "{table}");
    assert!(table.contains("661,913,600"), "{table}");
    assert!(table.contains("peak live activations: 16.0 MiB"), "{table}");
    assert_eq!(table.lines().count(), 4 + 12 + 4);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["nodes"][0]["macs"], 56_623_104);
    assert_eq!(json["total_params"], 1_403_978);
    // Weights need no data: the file holds dims only and is tiny.
    assert!(std::fs::metadata(&path).unwrap().len() < 4096);
}
