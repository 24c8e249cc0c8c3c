//! What every CLI test file shares: running the built `edgebench` binary and checking
//! how it ended.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Output};

use edgebench_runtime::onnx::pb;

/// Run `edgebench args…`. The GEMM-peak cache goes to cargo's test scratch folder, away
/// from the user's own.
pub fn eb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(args)
        .env("XDG_CACHE_HOME", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("the edgebench binary runs")
}

/// Run a command that must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = eb(args);
    assert!(
        out.status.success(),
        "edgebench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command that must fail with `code` without a panic; its whole stderr.
pub fn fails_stderr(args: &[&str], code: i32) -> String {
    let out = eb(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "edgebench {args:?}: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

/// Run a command that must fail with `code`, without a panic, its last stderr line
/// being edgebench's error; that line.
pub fn fails(args: &[&str], code: i32) -> String {
    let err = fails_stderr(args, code);
    let last = err
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.starts_with("edgebench: error: "), "{err}");
    last
}

/// Like [`fails`], and stderr is that one line only.
pub fn fails_one_line(args: &[&str], code: i32) -> String {
    let out = eb(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    fails(args, code)
}

/// Write a float model `x → node → … → y` with input dims `dims` (`None`: a symbolic
/// dimension) and one single-input node per `(name, op)`, each fed by the previous.
pub fn write_chain_model(path: &Path, dims: &[Option<i64>], nodes: &[(&str, &str)]) {
    let vi = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            tensor_type: Some(pb::TypeProtoTensor {
                elem_type: pb::data_type::FLOAT,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .enumerate()
                        .map(|(i, d)| pb::Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| format!("d{i}")),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let names: Vec<String> = (0..=nodes.len())
        .map(|i| match i {
            0 => "x".to_string(),
            i if i == nodes.len() => "y".to_string(),
            i => format!("t{i}"),
        })
        .collect();
    let node = nodes
        .iter()
        .enumerate()
        .map(|(i, (name, op))| pb::NodeProto {
            input: vec![names[i].clone()],
            output: vec![names[i + 1].clone()],
            name: name.to_string(),
            op_type: op.to_string(),
            ..Default::default()
        })
        .collect();
    let model = pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "g".into(),
            node,
            input: vec![vi("x")],
            output: vec![vi("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(path, edgebench_runtime::onnx::encode_model(&model)).expect("model written");
}
