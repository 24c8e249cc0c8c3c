//! `edgebench train` through the binary: learning on a synthetic image set (a small
//! spec file, so that the unoptimised test build stays quick), `--plan` and
//! the memory budget, `--export` agreeing with the trainer's own forward pass when the
//! exported model runs in `edgebench run`, `--init` from another architecture, resume,
//! bad labels and a diverging loss.

mod common;

use std::path::Path;

use common::{TINY, fails, ok, p, read_json, write_npy_set, write_spec};
use ndarray::{Array1, Array4};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

/// `n` learnable 3×16×16 images in `classes` classes: noise plus a class-dependent
/// bright quadrant, seeded.
fn write_set(dir: &Path, name: &str, n: usize, classes: usize, seed: u64) -> (String, String) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let labels: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let x = Array4::from_shape_fn((n, 3, 16, 16), |(i, _, h, w)| {
        let q = (h / 8) * 2 + w / 8;
        let on = q == labels[i] as usize % 4;
        0.5 * noise() + if on { 0.8 } else { 0.0 }
    });
    let (xp, yp) = (
        dir.join(format!("{name}_x.npy")),
        dir.join(format!("{name}_y.npy")),
    );
    write_npy_set(&xp, &yp, x, labels);
    (xp.to_str().unwrap().into(), yp.to_str().unwrap().into())
}

#[test]
fn learns_on_a_synthetic_image_set() {
    let d = tempfile::tempdir().unwrap();
    let (synth, spec) = (d.path().join("synth"), write_spec(d.path(), TINY));
    #[rustfmt::skip]
    ok(&["data", "synth", "-o", p(&synth), "--classes", "4", "--count", "160", "--size", "24"]);
    let m = d.path().join("m.json");
    #[rustfmt::skip]
    let out = ok(&[
        "train", "--model", p(&spec), "--data", p(&synth), "--epochs", "10", "--batch", "16",
        "--val-split", "0.25", "--lr", "0.02", "--flip", "--seed", "1", "--metrics", p(&m),
    ]);
    assert!(
        out.contains("training tiny at 16x16x3") && out.contains("epoch 10/10"),
        "{out}"
    );
    let doc = read_json(&m);
    let epochs = doc["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 10);
    let last = &epochs[9];
    let val_acc = last["val_acc"].as_f64().unwrap();
    assert!(
        val_acc >= 0.6,
        "held-out accuracy {val_acc} (chance 0.25): {out}"
    );
    assert!(last["loss"].as_f64().unwrap() < epochs[0]["loss"].as_f64().unwrap());
    assert!(last["images_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(last["lr"].as_f64(), Some(0.02));
    // Achieved GFLOP/s: images/s × 3 × 2 × the tiny spec's 130,048 forward MACs (the
    // MACs `models show` prints), on every epoch's line and row.
    assert!(out.contains(" GFLOP/s), "), "{out}");
    for e in epochs {
        let (g, ips) = (
            e["gflops"].as_f64().unwrap(),
            e["images_per_s"].as_f64().unwrap(),
        );
        let want = ips * 6.0 * 130_048.0 / 1e9;
        assert!(
            g > 0.0 && (g - want).abs() <= 1e-9 * want.max(1.0),
            "{g} vs {want}"
        );
    }
}

#[test]
fn plan_and_memory_budget() {
    let out = ok(&[
        "train",
        "--plan",
        "--model",
        "lean",
        "--input-size",
        "64x64",
        "--batch",
        "64",
        "--memory-budget",
        "16MiB",
    ]);
    assert!(out.contains("conv_1") && out.contains("total"), "{out}");
    assert!(out.contains("micro-batches of"), "{out}");
    assert!(
        out.contains("memory budget 16.0 MiB: the largest micro-batch that fits is"),
        "{out}"
    );
    let bias = ok(&["train", "--plan", "--input-size", "64x64", "--bias-only"]);
    assert!(
        bias.contains("trainable: bias-only") && bias.contains("bias"),
        "{bias}"
    );
    let e = fails(
        &[
            "train",
            "--plan",
            "--model",
            "lean",
            "--batch",
            "16",
            "--memory-budget",
            "10MiB",
        ],
        2,
    );
    assert!(
        e.contains("needs") && e.contains("over the 10.0 MiB budget"),
        "{e}"
    );
    assert!(e.contains("what would fit"), "{e}");
}

#[test]
fn exported_model_agrees_with_the_trainer() {
    let d = tempfile::tempdir().unwrap();
    let (x, y) = write_set(d.path(), "train", 48, 4, 1);
    let (vx, vy) = write_set(d.path(), "val", 20, 4, 2);
    let (m, onnx, probs) = (
        d.path().join("m.json"),
        d.path().join("t.onnx"),
        d.path().join("p.npy"),
    );
    ok(&[
        "train",
        "--data",
        &x,
        "--labels",
        &y,
        "--val",
        &vx,
        "--val-labels",
        &vy,
        "--epochs",
        "2",
        "--batch",
        "8",
        "--optimizer",
        "adam",
        "--metrics",
        p(&m),
        "--export",
        p(&onnx),
    ]);
    ok(&[
        "run",
        p(&onnx),
        "--input",
        &vx,
        "--output",
        p(&probs),
        "--engine",
        "tract",
    ]);
    let pr = ndarray::Array2::<f32>::read_npy(std::fs::File::open(&probs).unwrap()).unwrap();
    let labels = ndarray::Array1::<i64>::read_npy(std::fs::File::open(&vy).unwrap()).unwrap();
    let n = labels.len();
    let (mut loss, mut correct) = (0f64, 0usize);
    for (row, &l) in pr.rows().into_iter().zip(&labels) {
        loss -= f64::from(row[l as usize]).ln();
        let best = (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        correct += usize::from(best == l as usize);
    }
    let doc = read_json(&m);
    let last = &doc["epochs"][1];
    let (want_loss, want_acc) = (
        last["val_loss"].as_f64().unwrap(),
        last["val_acc"].as_f64().unwrap(),
    );
    let loss = loss / n as f64;
    assert!(
        (loss - want_loss).abs() <= 1e-4 * (1.0 + want_loss),
        "tract {loss} vs trainer {want_loss}"
    );
    assert_eq!(correct as f64 / n as f64, want_acc);
}

#[test]
fn init_from_another_architecture_names_the_layer() {
    let d = tempfile::tempdir().unwrap();
    let (x, y) = write_set(d.path(), "train", 8, 4, 3);
    let (half, good) = (d.path().join("half.onnx"), d.path().join("lean.onnx"));
    ok(&[
        "models",
        "export",
        "lean-w0.5",
        "-o",
        p(&half),
        "--input",
        "16x16x3",
    ]);
    let e = fails(
        &[
            "train",
            "--data",
            &x,
            "--labels",
            &y,
            "--init",
            p(&half),
            "--epochs",
            "1",
        ],
        1,
    );
    assert!(e.contains("half.onnx: layer 1 (conv) of lean"), "{e}");
    assert!(
        e.contains("[32, 3, 3, 3]") && e.contains("[16, 3, 3, 3]"),
        "{e}"
    );
    ok(&[
        "models",
        "export",
        "lean",
        "-o",
        p(&good),
        "--input",
        "16x16x3",
        "--seed",
        "9",
    ]);
    ok(&[
        "train",
        "--data",
        &x,
        "--labels",
        &y,
        "--init",
        p(&good),
        "--epochs",
        "1",
        "--batch",
        "4",
    ]);
}

#[test]
fn resume_continues_bit_identically() {
    let d = tempfile::tempdir().unwrap();
    let (x, y) = write_set(d.path(), "train", 24, 4, 4);
    let path = |n: &str| d.path().join(n);
    let common = [
        "--data",
        &x,
        "--labels",
        &y,
        "--batch",
        "6",
        "--micro-batch",
        "4",
        "--seed",
        "5",
    ];
    let run = |extra: &[&str]| {
        let mut a = vec!["train"];
        a.extend(common);
        a.extend(extra);
        ok(&a)
    };
    run(&["--epochs", "3", "--export", p(&path("whole.onnx"))]);
    // Stopped mid-epoch (4 updates per epoch), then at an epoch's end, then finished.
    let ck = path("ck");
    let stop = ["--epochs", "3", "--checkpoint", p(&ck), "--max-steps", "3"];
    let out = run(&stop);
    assert!(
        out.contains("stopped after 3 optimizer steps (--max-steps) in epoch 1"),
        "{out}"
    );
    let out = run(&["--epochs", "2", "--resume", p(&ck), "--checkpoint", p(&ck)]);
    assert!(
        out.contains("epoch 1/2") && out.contains("epoch 2/2"),
        "{out}"
    );
    let resumed = path("resumed.onnx");
    let out = run(&["--epochs", "3", "--resume", p(&ck), "--export", p(&resumed)]);
    assert!(
        !out.contains("epoch 2/3") && out.contains("epoch 3/3"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(path("whole.onnx")).unwrap(),
        std::fs::read(&resumed).unwrap(),
        "resumed run differs from the uninterrupted one"
    );
    let mut other_seed = vec!["train"];
    other_seed.extend(&common[..common.len() - 1]);
    other_seed.extend(["6", "--resume", p(&ck)]);
    let e = fails(&other_seed, 1);
    assert!(e.contains("--seed 5"), "{e}");
}

#[test]
fn labels_outside_the_classes_name_the_item() {
    let d = tempfile::tempdir().unwrap();
    let (x, _) = write_set(d.path(), "train", 6, 4, 5);
    let y = d.path().join("bad_y.npy");
    Array1::from(vec![0i64, 1, 2, 12, 3, 0])
        .write_npy(std::fs::File::create(&y).unwrap())
        .unwrap();
    let e = fails(&["train", "--data", &x, "--labels", p(&y)], 1);
    assert!(
        e.contains("bad_y.npy: label 12 of item 3 is outside lean's 10 classes"),
        "{e}"
    );
    let synth = d.path().join("synth");
    ok(&[
        "data",
        "synth",
        "-o",
        p(&synth),
        "--classes",
        "12",
        "--count",
        "24",
        "--size",
        "16",
    ]);
    let e = fails(&["train", "--data", p(&synth), "--input-size", "16x16"], 1);
    assert!(
        e.contains("has label 10") && e.contains("outside lean's 10 classes"),
        "{e}"
    );
}

#[test]
fn a_diverging_loss_stops_and_keeps_the_last_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let (x, y) = write_set(d.path(), "train", 32, 4, 6);
    let ck = d.path().join("ck");
    let e = fails(
        &[
            "train",
            "--data",
            &x,
            "--labels",
            &y,
            "--batch",
            "4",
            "--lr",
            "1e35",
            "--momentum",
            "0",
            "--checkpoint",
            p(&ck),
            "--checkpoint-every",
            "1",
            "--epochs",
            "3",
        ],
        1,
    );
    assert!(e.contains("training diverged at step"), "{e}");
    assert!(
        e.contains("the last good checkpoint") && e.contains("is kept"),
        "{e}"
    );
    // The kept checkpoint is whole (its magic at the start; loading checks the rest).
    let bytes = std::fs::read(&ck).unwrap();
    assert!(bytes.starts_with(b"EBTRAIN\0"), "{} bytes", bytes.len());
}

#[test]
fn trains_from_tfrecord_shards() {
    let d = tempfile::tempdir().unwrap();
    let (synth, shards) = (d.path().join("synth"), d.path().join("shards"));
    let csv = d.path().join("m.csv");
    ok(&[
        "data",
        "synth",
        "-o",
        p(&synth),
        "--classes",
        "4",
        "--count",
        "16",
        "--size",
        "16",
    ]);
    std::fs::create_dir(&shards).unwrap();
    let out = shards.join("s.tfrecord");
    ok(&["data", "pack", p(&synth), "-o", p(&out), "--shards", "2"]);
    let out = ok(&[
        "train",
        "--data",
        p(&shards),
        "--val",
        p(&synth),
        "--input-size",
        "16x16",
        "--epochs",
        "1",
        "--batch",
        "8",
        "--crop-min-scale",
        "0.8",
        "--metrics",
        p(&csv),
    ]);
    assert!(
        out.contains("TFRecord") || out.contains("tfrecord"),
        "{out}"
    );
    assert!(
        out.contains("epoch 1/1") && out.contains("val acc"),
        "{out}"
    );
}

#[test]
fn the_kernel_path_is_chosen_at_run_time_and_named() {
    use edgebench_runtime::simd::Simd;
    let d = tempfile::tempdir().unwrap();
    let synth = d.path().join("synth");
    #[rustfmt::skip]
    ok(&["data", "synth", "-o", p(&synth), "--classes", "4", "--count", "32", "--size", "32"]);
    let mut losses = Vec::new();
    for simd in Simd::available() {
        let m = d.path().join(format!("{}.json", simd.name()));
        let name = Path::new(simd.name());
        #[rustfmt::skip]
        let (out, _) = common::ok_env(&[
            "train", "--model", "lean", "--data", p(&synth), "--input-size", "32x32",
            "--epochs", "1", "--batch", "8", "--seed", "3", "--quiet", "--metrics", p(&m),
        ], &[("EDGEBENCH_SIMD", name)]);
        assert!(out.contains(&format!("kernels {}", simd.name())), "{out}");
        losses.push(read_json(&m)["epochs"][0]["loss"].as_f64().unwrap());
    }
    // Every path trains the same model: the same losses up to rounding, and rounding
    // there is (FMA rounds once where the portable path rounds twice): the variable
    // switched the kernels, not just the label.
    for l in &losses {
        assert!(
            (l - losses[0]).abs() <= 1e-3 * losses[0].abs(),
            "{losses:?}"
        );
    }
    if losses.len() > 1 {
        assert_ne!(
            losses[0],
            losses[1],
            "{} and portable computed bit-identically",
            Simd::available()[0].name()
        );
    }
    // Reports name the path.
    #[rustfmt::skip]
    let (json, _) = common::ok_env(&[
        "bench", "lean", "--size", "32x32x3", "--no-peak", "--warmup", "1", "--warmup-time", "0",
        "--min-duration", "0.1", "--min-queries", "2", "--tegrastats-interval", "0", "--json", "-",
    ], &[("EDGEBENCH_SIMD", Path::new("portable"))]);
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["machine"]["kernels"], "portable", "{}", r["machine"]);
    // A path that cannot run here, or no path at all: one line, exit 2.
    let foreign = if cfg!(target_arch = "aarch64") {
        "avx2"
    } else {
        "neon"
    };
    let cannot = format!("{foreign} kernels cannot run on this CPU");
    for (value, says) in [
        (foreign, cannot.as_str()),
        ("sse9", "unknown kernel path 'sse9'"),
    ] {
        let out = common::eb_env(&["models", "list"], &[("EDGEBENCH_SIMD", Path::new(value))]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("EDGEBENCH_SIMD={value}: {says}")),
            "{err}"
        );
    }
}
