//! `edgebench train` with tegrastats, through the binary and without a board: a fake
//! `tegrastats` (printing real lines from `tests/fixtures/tegrastats/` at the
//! `--interval` it is given) via `EDGEBENCH_TEGRASTATS`, a fixture Jetson root via
//! `EDGEBENCH_SYSROOT`, and a small spec on `.npy` data so the unoptimised build trains
//! in about a second. Energy per trained image is checked against the fixture's power and
//! the run's own reported time; no assertion is about wall-clock time.

mod common;

use std::path::{Path, PathBuf};

use common::{
    TINY_ONE_CONV, fake_tegrastats, ok_env, one_orin_nano_line, orin_nano_root, p, read_json,
    tegrastats_script as script, write_npy_set, write_spec,
};
use ndarray::Array4;

/// The spec (a small one-conv CNN) and `n` 3×16×16 images in 4 classes (a bright
/// quadrant per class) as .npy.
fn tiny_set(dir: &Path, n: usize) -> (PathBuf, PathBuf, PathBuf) {
    let spec = write_spec(dir, TINY_ONE_CONV);
    let labels: Vec<i64> = (0..n).map(|i| (i % 4) as i64).collect();
    let x = Array4::from_shape_fn((n, 3, 16, 16), |(i, c, h, w)| {
        let on = (h / 8) * 2 + w / 8 == labels[i] as usize;
        ((i * 7 + c * 5 + h * 3 + w) % 11) as f32 / 22.0 + if on { 0.8 } else { 0.0 }
    });
    let (xp, yp) = (dir.join("x.npy"), dir.join("y.npy"));
    write_npy_set(&xp, &yp, x, labels);
    (spec, xp, yp)
}

/// `edgebench train` on the tiny set with `extra` flags and environment; must succeed.
/// Its stdout and the `--metrics` JSON.
fn train(dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> (String, serde_json::Value) {
    let (spec, x, y) = tiny_set(dir, 256);
    let metrics = dir.join("m.json");
    #[rustfmt::skip]
    let mut args = vec![
        "train", "--model", p(&spec), "--data", p(&x), "--labels", p(&y), "--epochs", "3",
        "--batch", "16", "--threads", "1", "--quiet", "--metrics", p(&metrics),
    ];
    args.extend(extra);
    let (out, _) = ok_env(&args, env);
    (out, read_json(&metrics))
}

#[test]
fn power_and_energy_per_trained_image_from_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    // One R36 Orin Nano line: VDD_IN 4742 mW, VDD_CPU_GPU_CV 482 mW, RAM 1905/7620 MiB.
    let lines = one_orin_nano_line(dir.path());
    let fake = fake_tegrastats(dir.path(), &lines);
    let root = orin_nano_root(dir.path());
    let (out, m) = train(
        dir.path(),
        &["--tegrastats-interval", "10"],
        &[
            ("EDGEBENCH_TEGRASTATS", &fake),
            ("EDGEBENCH_SYSROOT", &root),
        ],
    );
    let pw = &m["power"];
    assert_eq!(pw["available"], true, "{pw}");
    assert_eq!(pw["interval_ms"], 10);
    assert_eq!(pw["path"], p(&fake));
    let board = "NVIDIA Jetson Orin Nano Developer Kit (L4T R36.4.3)";
    assert_eq!(pw["board"], board);
    // Every image of every epoch counts; the time is the epochs' training parts.
    let epochs = m["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    assert_eq!(pw["images"], 3 * 256);
    let secs: f64 = epochs.iter().map(|e| e["seconds"].as_f64().unwrap()).sum();
    let train_s = pw["train_seconds"].as_f64().unwrap();
    assert!((train_s - secs).abs() <= 1e-9 * secs, "{train_s} vs {secs}");
    let s = &pw["summary"];
    assert!(s["samples"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["total_source"], "VDD_IN");
    assert_eq!(s["total_avg_mw"], 4742.0);
    assert_eq!(s["total_peak_mw"], 4742.0);
    let rails: Vec<&str> = s["rails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(rails, ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]);
    assert_eq!(s["rails"][1]["avg_mw"], 482.0);
    assert_eq!(s["gpu_load_pct"]["peak"], 0.0);
    assert_eq!(s["ram_used_mib"]["peak"], 1905.0);
    assert_eq!(s["ram_total_mib"], 7620);
    assert_eq!(s["max_temp_c"], 46.125);
    // Energy per trained image = 4742 mW × training time ÷ images trained.
    let mj = pw["mj_per_image"].as_f64().unwrap();
    let want = 4742.0 * train_s / 768.0;
    assert!((mj - want).abs() <= 1e-9 * want, "{mj} vs {want}");
    // The text summary says the same.
    assert!(
        out.contains("samples every 10 ms during training") && out.contains(board),
        "{out}"
    );
    assert!(
        out.contains("  power: 4.74 W avg, 4.74 W peak (VDD_IN)"),
        "{out}"
    );
    assert!(
        out.contains("  rail VDD_CPU_GPU_CV: 482 mW avg, 482 mW peak"),
        "{out}"
    );
    assert!(out.contains("RAM 1905 / 7620 MiB peak"), "{out}");
    assert!(
        out.contains(&format!("  energy: {mj:.3} mJ per trained image")),
        "{out}"
    );
}

#[test]
fn absent_or_failing_tegrastats_is_one_line_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // Not executable: named in the one line; the JSON has no figures.
    let not_exe = dir.path().join("not-exe");
    std::fs::write(&not_exe, "").unwrap();
    let (out, m) = train(dir.path(), &[], &[("EDGEBENCH_TEGRASTATS", &not_exe)]);
    let line = format!(
        "tegrastats: not available (EDGEBENCH_TEGRASTATS={}: not an executable file)",
        not_exe.display()
    );
    assert!(out.lines().any(|l| l == line), "{out}");
    assert_eq!(m["power"]["available"], false);
    assert!(m["power"]["summary"].is_null(), "{m}");
    assert!(m["power"]["mj_per_image"].is_null(), "{m}");

    // Off by flag, even where it would run.
    let (out, m) = train(
        dir.path(),
        &["--tegrastats-interval", "0"],
        &[("EDGEBENCH_TEGRASTATS", &script(dir.path(), "exit 0\n"))],
    );
    assert!(
        out.lines()
            .any(|l| l == "tegrastats: off (--tegrastats-interval 0)"),
        "{out}"
    );
    assert_eq!(m["power"]["available"], false);

    // It starts but quits at once (not root): no figures, the reason in a note.
    let quits = script(
        dir.path(),
        "echo 'tegrastats: must be run as root' >&2\nexit 1\n",
    );
    let (out, m) = train(
        dir.path(),
        &["--tegrastats-interval", "10"],
        &[("EDGEBENCH_TEGRASTATS", &quits)],
    );
    let s = &m["power"]["summary"];
    assert_eq!(s["samples"], 0, "{s}");
    let note = s["note"].as_str().unwrap();
    assert!(
        note.contains("no tegrastats sample fell within training"),
        "{note}"
    );
    assert!(note.contains("must be run as root"), "{note}");
    assert!(m["power"]["mj_per_image"].is_null());
    assert!(out.contains("must be run as root"), "{out}");
}

#[test]
fn csv_metrics_keep_one_row_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, x, y) = tiny_set(dir.path(), 32);
    let csv = dir.path().join("m.csv");
    #[rustfmt::skip]
    ok_env(
        &[
            "train", "--model", p(&spec), "--data", p(&x), "--labels", p(&y), "--epochs", "2",
            "--batch", "16", "--quiet", "--metrics", p(&csv),
        ],
        &[],
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,steps,loss,acc,val_loss,val_acc,images_per_s,lr,seconds"
    );
    assert_eq!(lines.len(), 3, "{text}");
}
