//! `edgebench train` never hands back a broken model: non-finite inputs and `--init`
//! weights are refused naming the file and the item or layer, an update that makes a
//! parameter non-finite stops training like a NaN loss, and `.npy` arrays in the wrong
//! layout or with no items are named as such.

mod common;

use std::path::{Path, PathBuf};

use common::{TINY_ONE_CONV, fails, p, write_npy_set, write_spec};
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
