//! What every CLI test file shares: running the built `edgebench` binary and checking
//! how it ended, small spec files, and a board without a board (a fake `tegrastats`, a
//! fixture Jetson root) for the on-device figures.
#![allow(dead_code)] // each test file uses its own subset

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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

/// `edgebench args…`, not started, with `env` set on top of a clean slate:
/// `EDGEBENCH_TEGRASTATS` and `EDGEBENCH_SYSROOT` are removed unless `env` names them;
/// the GEMM-peak cache as in [`eb`].
pub fn eb_command(args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgebench"));
    c.args(args)
        .env("XDG_CACHE_HOME", env!("CARGO_TARGET_TMPDIR"))
        .env_remove("EDGEBENCH_TEGRASTATS")
        .env_remove("EDGEBENCH_SYSROOT");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Run [`eb_command`]`(args, env)`.
pub fn eb_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    eb_command(args, env)
        .output()
        .expect("the edgebench binary runs")
}

/// Like [`eb_env`], and it must succeed without a panic; its stdout and stderr.
pub fn ok_env(args: &[&str], env: &[(&str, &Path)]) -> (String, String) {
    let out = eb_env(args, env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "edgebench {args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), err)
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

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// A small CNN in the shape of `lean` (conv → pool → conv → pool → flatten → dense) on
/// 16×16×3 inputs in 4 classes, a spec file as users write them; cheap enough for an
/// unoptimised test build. `tests/fixtures/specs/tiny.toml`.
pub const TINY: &str = include_str!("../fixtures/specs/tiny.toml");

/// Smaller still: one conv (conv → pool → flatten → dense), same input and classes.
/// `tests/fixtures/specs/tiny-one-conv.toml`.
pub const TINY_ONE_CONV: &str = include_str!("../fixtures/specs/tiny-one-conv.toml");

/// Write `spec` (e.g. [`TINY`]) to `dir/tiny.toml`; its path.
pub fn write_spec(dir: &Path, spec: &str) -> PathBuf {
    let path = dir.join("tiny.toml");
    std::fs::write(&path, spec).expect("spec written");
    path
}

/// Images `x` (N×C×H×W, f32) to `xp` and their `labels` (i64) to `yp`, as `.npy`.
pub fn write_npy_set(xp: &Path, yp: &Path, x: ndarray::Array4<f32>, labels: Vec<i64>) {
    use ndarray_npy::WriteNpyExt;
    x.write_npy(std::fs::File::create(xp).unwrap()).unwrap();
    ndarray::Array1::from(labels)
        .write_npy(std::fs::File::create(yp).unwrap())
        .unwrap();
}

/// A JSON file (e.g. `--metrics`), parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A file of real `tegrastats` lines in `tests/fixtures/tegrastats/`.
pub fn tegrastats_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tegrastats")
        .join(name)
}

/// The first line of the R36 Orin Nano fixture (VDD_IN 4742 mW, VDD_CPU_GPU_CV 482 mW,
/// RAM 1905/7620 MiB), without its line feed.
pub fn orin_nano_line() -> String {
    let all = std::fs::read_to_string(tegrastats_fixture("r36-orin-nano.txt")).unwrap();
    all.lines().next().unwrap().to_string()
}

/// `dir/orin.txt`: [`orin_nano_line`] alone, so that every sample is the same.
pub fn one_orin_nano_line(dir: &Path) -> PathBuf {
    let lines = dir.join("orin.txt");
    std::fs::write(&lines, format!("{}\n", orin_nano_line())).unwrap();
    lines
}

/// An executable `dir/tegrastats` shell script running `body`.
pub fn tegrastats_script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("tegrastats");
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A `tegrastats` look-alike in `dir` that prints `lines` (a file) over and over, one
/// line per `--interval` ms, as the real one does.
pub fn fake_tegrastats(dir: &Path, lines: &Path) -> PathBuf {
    tegrastats_script(
        dir,
        &format!(
            "[ \"$1\" = --interval ] || {{ echo 'usage: tegrastats --interval MS' >&2; exit 2; }}\n\
             s=$(($2 / 1000)).$(printf %03d $(($2 % 1000)))\n\
             while true; do\n\
             while IFS= read -r l || [ -n \"$l\" ]; do echo \"$l\"; sleep \"$s\"; done < '{}'\n\
             done\n",
            lines.display()
        ),
    )
}

/// `dir/root`, a fixture root that looks like a Jetson Orin Nano under L4T R36.4.3
/// (`/proc/device-tree/model` and `/etc/nv_tegra_release`), for `EDGEBENCH_SYSROOT`.
pub fn orin_nano_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("proc/device-tree")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("proc/device-tree/model"),
        b"NVIDIA Jetson Orin Nano Developer Kit\0",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/nv_tegra_release"),
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, \
         DATE: Wed Jan  8 01:49:37 UTC 2025\n",
    )
    .unwrap();
    root
}

/// `data synth` into `dir/name`: `count` JPEGs of `size`² in `classes` classes (seed 0).
pub fn synth(dir: &Path, name: &str, classes: usize, count: usize, size: u32) -> PathBuf {
    synth_seeded(dir, name, classes, count, size, 0)
}

/// [`synth`] with another seed (a held-out set apart from a training set).
pub fn synth_seeded(
    dir: &Path,
    name: &str,
    classes: usize,
    count: usize,
    size: u32,
    seed: u64,
) -> PathBuf {
    let out = dir.join(name);
    ok(&[
        "data",
        "synth",
        "-o",
        p(&out),
        "--classes",
        &classes.to_string(),
        "--count",
        &count.to_string(),
        "--size",
        &size.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    out
}
