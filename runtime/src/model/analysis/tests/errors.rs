//! Bad files must give errors that name the file, the node and the culprit, never panic.

use std::path::Path;

use super::builder::{model, node, vi, vi_fixed, weight};
use crate::Error;
use crate::model::analysis::{analyze, input_shape_of};
use crate::onnx::{decode_model, encode_model};

#[test]
fn unknown_and_custom_domain_ops_are_unsupported() {
    let m = model(
        vec![node("Frobnicate", &["x"], &["y"], vec![])],
        vec![],
        vec![vi_fixed("x", &[1, 3])],
        &["y"],
        13,
    );
    let err = analyze(&m, Path::new("odd.onnx"), None).unwrap_err();
    let Error::UnsupportedOp {
        path,
        node: name,
        op,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (path.to_str(), name.as_str(), op.as_str()),
        (Some("odd.onnx"), "y_node", "Frobnicate")
    );
    assert!(err.to_string().contains("odd.onnx"), "{err}");

    let mut custom = node("Relu", &["x"], &["y"], vec![]);
    custom.domain = "com.microsoft".into();
    let m = model(
        vec![custom],
        vec![],
        vec![vi_fixed("x", &[1, 3])],
        &["y"],
        13,
    );
    let err = analyze(&m, Path::new("ms.onnx"), None).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedOp { op, .. } if op == "Relu"),
        "{err}"
    );
    assert!(err.to_string().contains("com.microsoft"), "{err}");
}

#[test]
fn garbage_bytes_are_invalid_onnx() {
    let err = decode_model(
        b"\xff\xfe this is not protobuf \x00\x01",
        Path::new("junk.onnx"),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidOnnx { path, .. } if path == Path::new("junk.onnx")),
        "{err}"
    );
}

#[test]
fn corrupted_files_never_panic() {
    // Every single-byte corruption of a small valid model either fails to decode or
    // gives a result or an error from the analysis; none may panic.
    let nodes = vec![
        node(
            "Conv",
            &["x", "w"],
            &["c"],
            vec![super::builder::a_ints("pads", &[1, 1, 1, 1])],
        ),
        node("Shape", &["c"], &["s"], vec![]),
        node("Reshape", &["c", "s"], &["r"], vec![]),
        node("Flatten", &["r"], &["f"], vec![]),
    ];
    let m = model(
        nodes,
        vec![weight("w", &[2, 3, 3, 3])],
        vec![vi_fixed("x", &[1, 3, 8, 8])],
        &["f"],
        13,
    );
    let bytes = encode_model(&m);
    let (mut decoded, mut analysed) = (0, 0);
    for i in 0..bytes.len() {
        for v in [0x00, 0x01, 0x7f, 0xff] {
            let mut b = bytes.clone();
            b[i] = v;
            if let Ok(m) = decode_model(&b, Path::new("fuzz.onnx")) {
                decoded += 1;
                analysed += usize::from(analyze(&m, Path::new("fuzz.onnx"), None).is_ok());
                let _ = analyze(&m, Path::new("fuzz.onnx"), Some(&[1, 3, 9, 9]));
            }
        }
    }
    assert!(
        decoded > bytes.len(),
        "decoded {decoded} of {} variants",
        4 * bytes.len()
    );
    assert!(analysed > 0);
}

#[test]
fn missing_input_and_cycle_name_the_node() {
    let m = model(
        vec![node("Relu", &["nope"], &["y"], vec![])],
        vec![],
        vec![vi_fixed("x", &[1])],
        &["y"],
        13,
    );
    let err = analyze(&m, Path::new("m.onnx"), None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidOnnx { .. }), "{msg}");
    assert!(
        msg.contains("y_node") && msg.contains("\"nope\"") && msg.contains("m.onnx"),
        "{msg}"
    );

    let cycle = vec![
        node("Relu", &["x", "b"], &["a"], vec![]),
        node("Relu", &["a"], &["b"], vec![]),
    ];
    let m = model(cycle, vec![], vec![vi_fixed("x", &[1])], &["b"], 13);
    let msg = analyze(&m, Path::new("m.onnx"), None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("a_node") && msg.contains("cycle"), "{msg}");
}

#[test]
fn unknown_dims_need_an_input_shape() {
    let conv = node("Conv", &["image", "w"], &["y"], vec![]);
    let input = vi("image", &[None, Some(3), None, None]);
    let m = model(
        vec![conv],
        vec![weight("w", &[4, 3, 3, 3])],
        vec![input],
        &["y"],
        13,
    );
    let path = Path::new("dyn.onnx");
    assert_eq!(
        input_shape_of(&m, path).unwrap(),
        [None, Some(3), None, None]
    );
    let err = analyze(&m, path, None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Invalid(_)), "{msg}");
    assert!(
        msg.contains("dyn.onnx") && msg.contains("\"image\"") && msg.contains("--input-shape"),
        "{msg}"
    );
    assert!(msg.contains("[?, 3, ?, ?]"), "{msg}");

    let a = analyze(&m, path, Some(&[1, 3, 10, 10])).unwrap();
    assert_eq!(a.outputs[0].shape, [1, 4, 8, 8]);
    let err = analyze(&m, path, Some(&[3, 10, 10])).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn mismatched_channels_are_shape_errors() {
    let conv = node("Conv", &["x", "w"], &["y"], vec![]);
    let m = model(
        vec![conv],
        vec![weight("w", &[4, 2, 3, 3])],
        vec![vi_fixed("x", &[1, 3, 8, 8])],
        &["y"],
        13,
    );
    let err = analyze(&m, Path::new("c.onnx"), None).unwrap_err();
    let Error::Shape {
        what,
        expected,
        got,
    } = &err
    else {
        panic!("{err}")
    };
    assert!(what.contains("c.onnx") && what.contains("y_node"), "{what}");
    assert!(
        expected.contains("3 channels") && got.contains("[4, 2, 3, 3]"),
        "{err}"
    );
}
