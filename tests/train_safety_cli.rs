//! `edgebench train` never loses the user's work nor hands back a broken model: non-finite
//! inputs and `--init` weights are refused naming the file and the item or layer, an
//! update that makes a parameter non-finite stops training like a NaN loss, an existing
//! `--checkpoint` is not started over without `--resume` or `--overwrite-checkpoint`, an
//! `--export` that fails at the end saves the weights elsewhere and says where, and
//! `.npy` arrays in the wrong layout or with no items are named as such.

mod common;

use std::path::{Path, PathBuf};

use common::{TINY_ONE_CONV, eb, eb_env, fails, ok, p, write_npy_set, write_spec};
use edgebench_runtime::model::{onnx_write, zoo};
use ndarray::Array4;

/// `n` 3×16×16 images (small values from a fixed pattern) in 4 classes, with `poison`
/// written at `(item, channel, y, x)` when given; the `.npy` paths.
fn write_set(
    dir: &Path,
    name: &str,
    n: usize,
    poison: Option<((usize, usize, usize, usize), f32)>,
) -> (PathBuf, PathBuf) {
    let mut x = Array4::from_shape_fn((n, 3, 16, 16), |(i, c, h, w)| {
        ((i * 7 + c * 5 + h * 3 + w) % 11) as f32 / 11.0
    });
    if let Some((at, v)) = poison {
        x[at] = v;
    }
    let (xp, yp) = (
        dir.join(format!("{name}_x.npy")),
        dir.join(format!("{name}_y.npy")),
    );
    write_npy_set(&xp, &yp, x, (0..n).map(|i| (i % 4) as i64).collect());
    (xp, yp)
}

#[test]
fn non_finite_inputs_are_refused_naming_the_file_and_item() {
    let d = tempfile::tempdir().unwrap();
    let spec = write_spec(d.path(), TINY_ONE_CONV);
    let (x, y) = write_set(d.path(), "nan", 8, Some(((5, 1, 2, 3), f32::NAN)));
    let e = fails(
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
            "--batch",
            "4",
        ],
        1,
    );
    assert!(
        e.contains("nan_x.npy") && e.contains("item 5") && e.contains("NaN"),
        "{e}"
    );
    let (gx, gy) = write_set(d.path(), "good", 8, None);
    let (vx, vy) = write_set(d.path(), "val", 4, Some(((2, 0, 0, 0), f32::INFINITY)));
    let e = fails(
        &[
            "train",
            "--model",
            p(&spec),
            "--data",
            p(&gx),
            "--labels",
            p(&gy),
            "--val",
            p(&vx),
            "--val-labels",
            p(&vy),
            "--epochs",
            "1",
            "--batch",
            "4",
        ],
        1,
    );
    assert!(
        e.contains("val_x.npy") && e.contains("item 2") && e.contains("inf"),
        "{e}"
    );
}

#[test]
fn init_with_non_finite_weights_is_refused_naming_the_layer() {
    let d = tempfile::tempdir().unwrap();
    let spec_path = write_spec(d.path(), TINY_ONE_CONV);
    let zoo::ModelRef::Spec(spec) = zoo::resolve(p(&spec_path)).unwrap() else {
        panic!("a spec file")
    };
    let mut w = onnx_write::he_init(&spec, spec.input, 1).unwrap();
    let dense = w.layers.iter_mut().rev().flatten().next().unwrap();
    dense.bias[2] = f32::NAN;
    let bad = d.path().join("bad.onnx");
    onnx_write::export_weights(&spec, spec.input, &w, &bad).unwrap();
    let (x, y) = write_set(d.path(), "t", 8, None);
    let e = fails(
        &[
            "train",
            "--model",
            p(&spec_path),
            "--data",
            p(&x),
            "--labels",
            p(&y),
            "--init",
            p(&bad),
            "--epochs",
            "1",
            "--batch",
            "4",
        ],
        1,
    );
    assert!(
        e.contains("bad.onnx") && e.contains("layer 4 (dense) bias") && e.contains("NaN"),
        "{e}"
    );
}

#[test]
fn an_update_to_non_finite_weights_stops_without_saving_them() {
    let d = tempfile::tempdir().unwrap();
    let spec = write_spec(d.path(), TINY_ONE_CONV);
    let (x, y) = write_set(d.path(), "t", 8, None);
    let (ck, onnx) = (d.path().join("ck"), d.path().join("m.onnx"));
    // The first update overflows the weights (lr · decay · w ≈ 1e59) while the loss it
    // was computed from is finite.
    let e = fails(
        &[
            "train",
            "--model",
            p(&spec),
            "--data",
            p(&x),
            "--labels",
            p(&y),
            "--epochs",
            "2",
            "--batch",
            "8",
            "--momentum",
            "0",
            "--lr",
            "1e30",
            "--weight-decay",
            "1e30",
            "--checkpoint",
            p(&ck),
            "--export",
            p(&onnx),
        ],
        1,
    );
    assert!(e.contains("training diverged at step 1"), "{e}");
    assert!(e.contains("layer 1 (conv) weight"), "{e}");
    assert!(e.contains("no checkpoint was written"), "{e}");
    assert!(!ck.exists() && !onnx.exists());
}

#[test]
fn an_existing_checkpoint_is_not_started_over() {
    let d = tempfile::tempdir().unwrap();
    let spec = write_spec(d.path(), TINY_ONE_CONV);
    let (x, y) = write_set(d.path(), "t", 8, None);
    let ck = d.path().join("ck");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--model",
            p(&spec),
            "--data",
            p(&x),
            "--labels",
            p(&y),
            "--batch",
            "4",
            "--checkpoint",
            p(&ck),
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run_ok = |extra: &[&str]| {
        let a = args(extra);
        ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run_ok(&["--epochs", "1"]);
    let saved = std::fs::read(&ck).unwrap();
    let again = args(&["--epochs", "2"]);
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let out = eb(&again);
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "refused before any work"
    );
    let e = fails(&again, 2);
    assert!(
        e.contains(p(&ck))
            && e.contains(&format!("--resume {}", p(&ck)))
            && e.contains("--overwrite-checkpoint"),
        "{e}"
    );
    assert_eq!(std::fs::read(&ck).unwrap(), saved, "the checkpoint is kept");
    let out = run_ok(&["--epochs", "2", "--resume", p(&ck)]);
    assert!(
        !out.contains("epoch 1/2") && out.contains("epoch 2/2"),
        "{out}"
    );
    let out = run_ok(&["--epochs", "1", "--overwrite-checkpoint"]);
    assert!(out.contains("epoch 1/1"), "{out}");
}

/// The one file in `dir` whose name starts with `prefix`.
fn one_file(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?} in {}", dir.display());
    found.into_iter().next().unwrap()
}

/// `--export` names a link to `/dev/full`: the output-path policy writes through to the
/// character device it names (the checks before training pass) and the write fails with
/// ENOSPC. Through a link, so that a writer that renames over its output replaces the
/// link, never the device.
#[test]
fn a_failed_export_saves_the_weights_elsewhere() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let spec = write_spec(d.path(), TINY_ONE_CONV);
    let (x, y) = write_set(d.path(), "t", 8, None);
    let (run, tmp) = (d.path().join("run"), d.path().join("tmp"));
    std::fs::create_dir(&run).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    let full = d.path().join("full.onnx");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let common = [
        "train",
        "--model",
        p(&spec),
        "--data",
        p(&x),
        "--labels",
        p(&y),
        "--epochs",
        "1",
        "--batch",
        "4",
        "--export",
        p(&full),
    ];
    // Beside the checkpoint.
    let ck = run.join("ck");
    let mut a = common.to_vec();
    a.extend(["--checkpoint", p(&ck)]);
    let e = fails(&a, 1);
    let saved = one_file(&run, "edgebench-tiny-");
    assert!(saved.extension().is_some_and(|x| x == "onnx"), "{saved:?}");
    assert!(
        e.contains(&format!("--export {}", p(&full)))
            && e.contains("No space left on device")
            && e.contains(&format!("saved to {}", p(&saved))),
        "{e} (saved: {saved:?})"
    );
    let info = ok(&["inspect", p(&saved)]);
    assert!(info.contains("Conv"), "{info}");
    // Without a checkpoint: in the temporary folder.
    let out = eb_env(&common, &[("TMPDIR", &tmp)]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    let saved = one_file(&tmp, "edgebench-tiny-");
    assert!(err.contains(p(&saved)), "{err} (saved: {saved:?})");
    assert!(std::fs::symlink_metadata(&full).unwrap().is_symlink());
}

#[test]
fn nhwc_arrays_are_named_as_such() {
    let d = tempfile::tempdir().unwrap();
    let spec = write_spec(d.path(), TINY_ONE_CONV);
    let (xp, yp) = (d.path().join("nhwc_x.npy"), d.path().join("nhwc_y.npy"));
    write_npy_set(
        &xp,
        &yp,
        Array4::zeros((4, 16, 16, 3)),
        (0..4).map(|i| i % 4).collect(),
    );
    for extra in [&[][..], &["--input-size", "16x16"][..]] {
        let mut a = vec![
            "train",
            "--model",
            p(&spec),
            "--data",
            p(&xp),
            "--labels",
            p(&yp),
            "--epochs",
            "1",
        ];
        a.extend(extra);
        let e = fails(&a, 1);
        assert!(
            e.contains("nhwc_x.npy") && e.contains("NHWC") && e.contains("NCHW"),
            "{e}"
        );
    }
}

#[test]
fn arrays_without_items_are_named() {
    let d = tempfile::tempdir().unwrap();
    let spec = write_spec(d.path(), TINY_ONE_CONV);
    for (name, shape) in [
        ("n0", (0, 3, 16, 16)),
        ("c0", (4, 0, 16, 16)),
        ("h0", (4, 3, 0, 16)),
        ("w0", (4, 3, 16, 0)),
    ] {
        let (xp, yp) = (
            d.path().join(format!("{name}_x.npy")),
            d.path().join(format!("{name}_y.npy")),
        );
        let n = shape.0;
        write_npy_set(
            &xp,
            &yp,
            Array4::zeros(shape),
            (0..n as i64).map(|i| i % 4).collect(),
        );
        let e = fails(
            &[
                "train",
                "--model",
                p(&spec),
                "--data",
                p(&xp),
                "--labels",
                p(&yp),
                "--epochs",
                "1",
            ],
            1,
        );
        assert!(
            e.contains(&format!("{name}_x.npy")) && e.contains("no items"),
            "{name}: {e}"
        );
    }
}
