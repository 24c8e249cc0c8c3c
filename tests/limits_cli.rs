//! Sizes beyond this machine, through the built binary: inputs, `.npy` headers, models'
//! declared shapes, activations and the loader's pool that cannot fit in memory end in
//! one error line and exit 1 — never an abort in the allocator or an overflow panic —
//! and shapes of the wrong rank or size are refused with the real limit.
//!
//! Every size here is terabytes or more, beyond any machine the tests run on.

use std::path::Path;

mod common;
use common::{fails_one_line as fails, ok, p};

use edgebench_runtime::onnx::{self, pb};

/// Asserts the one-line error is about memory and not an abort or a panic; the line.
fn out_of_memory(args: &[&str]) -> String {
    let err = fails(args, 1);
    assert!(!err.contains("memory allocation of"), "{err}");
    assert!(
        err.contains("needs ") && err.contains("this machine has"),
        "{err}"
    );
    err
}

/// A lean model exported at 32×32 (input declared `?x3x32x32`).
fn lean32(dir: &Path) -> String {
    let m = dir.join("m.onnx");
    ok(&[
        "models",
        "export",
        "lean",
        "-o",
        p(&m),
        "--input",
        "32x32x3",
    ]);
    p(&m).to_string()
}

/// A `.npy` header (format 1.0, little-endian float32) declaring `shape`, no data.
fn npy_header_only(path: &Path, shape: &str) {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    std::fs::write(path, out).unwrap();
}

/// `run MODEL --input random --input-shape SHAPE --engine tract`.
fn run_random<'a>(m: &'a str, shape: &'a str) -> [&'a str; 8] {
    [
        "run",
        m,
        "--input",
        "random",
        "--input-shape",
        shape,
        "--engine",
        "tract",
    ]
}

#[test]
fn random_input_beyond_memory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = lean32(dir.path());
    let err = out_of_memory(&run_random(&m, "1x3x1048576x1048576"));
    assert!(
        err.contains("m.onnx: needs 12.0 TiB for a 1x3x1048576x1048576 f32 tensor"),
        "{err}"
    );
}

/// A shape whose byte size overflows 64 bits (it made `run` panic in the product).
#[test]
fn input_shape_overflowing_64_bits_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = lean32(dir.path());
    let shape = "4611686018427387904x4611686018427387904x1x1";
    let err = fails(&run_random(&m, shape), 1);
    assert!(err.contains("overflows 64 bits"), "{err}");
}

/// A 128-byte `.npy` whose header declares 360 GB: refused from the file's length, in
/// `run` and in `train`, before anything is allocated.
#[test]
fn npy_header_larger_than_its_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    npy_header_only(&x, "(100000, 100000, 3, 3)");
    ndarray_npy::write_npy(&y, &ndarray::Array1::<i64>::zeros(4)).unwrap();
    let expect = |err: &str| {
        assert!(
            err.contains("x.npy")
                && err.contains("declares 360,000,000,000 bytes of data")
                && err.contains("the file has 0"),
            "{err}"
        );
    };
    expect(&fails(&["run", "lean", "--input", p(&x)], 1));
    let spec = common::write_spec(dir.path(), common::TINY);
    expect(&fails(
        &[
            "train",
            "--model",
            p(&spec),
            "--data",
            p(&x),
            "--labels",
            p(&y),
            "--epochs",
            "1",
        ],
        1,
    ));
    // A file that holds its 12 TB (sparse, where the file system allows it) is refused
    // by the memory check instead.
    npy_header_only(&x, "(1000000, 1000000, 3, 1)");
    let f = std::fs::OpenOptions::new().write(true).open(&x).unwrap();
    if f.set_len(128 + 12_000_000_000_000).is_ok() {
        let err = out_of_memory(&["run", "lean", "--input", p(&x)]);
        assert!(
            err.contains("x.npy: needs 10.9 TiB for a 1000000x1000000x3x1 f32 tensor"),
            "{err}"
        );
    }
}

/// A model whose declared input is 12 TB.
#[test]
fn model_declaring_a_huge_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("huge.onnx");
    common::write_chain_model(
        &m,
        &[Some(1), Some(3), Some(1_000_000), Some(1_000_000)],
        &[("relu", "Relu")],
    );
    for engine in ["tract", "ort"] {
        let err = out_of_memory(&["run", p(&m), "--input", "random", "--engine", engine]);
        assert!(err.contains("huge.onnx: needs 10.9 TiB"), "{err}");
    }
}

/// A 1×1 input padded by a million on each side: the input is tiny, the first
/// activation is 14.6 TiB; refused from the analysis before the engine allocates it.
#[test]
fn activation_beyond_memory_is_refused_before_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("pad.toml");
    std::fs::write(
        &spec,
        "name = \"pad\"\ninput = \"1x1x1\"\n[[layers]]\ntype = \"conv\"\nfilters = 1\n\
         kernel = 1\npadding = 1000000\n",
    )
    .unwrap();
    let err = out_of_memory(&["run", p(&spec), "--input", "random", "--engine", "tract"]);
    assert!(
        err.contains("pad.toml: needs 14.6 TiB for the output of node \"l1_conv\" (Conv)"),
        "{err}"
    );
    // bench refuses it the same way, naming the user's file, before it measures the
    // GEMM peak or starts a worker (one line, even with no peak cached).
    let err = out_of_memory(&[
        "bench",
        p(&spec),
        "--engine",
        "tract",
        "--scenario",
        "single-stream",
        "--min-duration",
        "0",
        "--min-queries",
        "1",
    ]);
    assert!(
        err.contains("pad.toml: needs 14.6 TiB for the output of node \"l1_conv\" (Conv)"),
        "{err}"
    );
}

#[test]
fn loader_pool_beyond_memory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("imgs");
    ok(&[
        "data",
        "synth",
        "-o",
        p(&data),
        "--classes",
        "2",
        "--count",
        "2",
        "--size",
        "16",
    ]);
    let err = out_of_memory(&[
        "loader",
        p(&data),
        "--batch",
        "100000000",
        "--size",
        "64x64",
    ]);
    assert!(
        err.contains("the loader's pool") && err.contains("100000000 images"),
        "{err}"
    );
}

/// `--size` over the limit says what the limit is.
#[test]
fn size_over_the_limit_says_the_limit() {
    let out = common::eb(&["run", "lean", "--input", "random", "--size", "16384x16384"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "16384x16384x3 is 805,306,368 values per image, over the limit of 268,435,456"
        ),
        "{err}"
    );
}

/// A 3-dimension `--input-shape` for a 4-dimension model is refused before any engine
/// sees it (tract answered with its unification rules).
#[test]
fn input_shape_of_the_wrong_rank_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let m = lean32(dir.path());
    for engine in ["tract", "ort"] {
        let err = fails(
            &[
                "run",
                &m,
                "--input",
                "random",
                "--input-shape",
                "1x3x32",
                "--engine",
                engine,
            ],
            2,
        );
        assert!(
            err.contains("--input-shape 1x3x32 has 3 dimensions, but the model's input has 4")
                && err.contains("NxCxHxW"),
            "{engine}: {err}"
        );
    }
    let err = fails(&["inspect", &m, "--input-shape", "1x3x32"], 2);
    assert!(err.contains("has 3 dimensions"), "{err}");
}

/// `inspect` of a model whose weights live in a missing external file warns, on one
/// stderr line naming the file, and still prints the analysis.
#[test]
fn inspect_warns_about_missing_external_data() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("ext.onnx");
    common::write_chain_model(
        &m,
        &[Some(1), Some(3), Some(8), Some(8)],
        &[("relu", "Relu")],
    );
    let mut model = onnx::decode_model(&std::fs::read(&m).unwrap(), &m).unwrap();
    let graph = model.graph.as_mut().unwrap();
    graph.node[0].output = vec!["r".into()];
    graph.node.push(pb::NodeProto {
        input: vec!["r".into(), "w".into()],
        output: vec!["y".into()],
        name: "add".into(),
        op_type: "Add".into(),
        ..Default::default()
    });
    graph.initializer.push(pb::TensorProto {
        dims: vec![3, 1, 1],
        data_type: pb::data_type::FLOAT,
        name: "w".into(),
        external_data: vec![pb::StringStringEntryProto {
            key: "location".into(),
            value: "weights.bin".into(),
        }],
        data_location: 1,
        ..Default::default()
    });
    std::fs::write(&m, onnx::encode_model(&model)).unwrap();
    let out = common::eb(&["inspect", p(&m)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("warning") && err.contains("ext.onnx") && err.contains("weights.bin"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Add"));
    // With the file present, nothing is said.
    std::fs::write(dir.path().join("weights.bin"), [0u8; 12]).unwrap();
    let out = common::eb(&["inspect", p(&m)]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
