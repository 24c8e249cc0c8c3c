//! CLI tests of `bench`, `compare`, `hw` and `targets` through the built binary: a real
//! (short) run parsed back through the report's JSON schema, every output format, the
//! batch sweep, and bad input. No assertion is about wall-clock time.

use std::path::Path;

use edgebench_runtime::bench::result::{Report, SCHEMA_NAME, SCHEMA_VERSION, VerdictStatus};

/// Short, small runs: 32×32 inputs, a few queries.
const FAST: &[&str] = &[
    "--size",
    "32x32x3",
    "--min-duration",
    "0.05",
    "--min-queries",
    "3",
    "--warmup",
    "1",
    "--warmup-time",
    "0",
];

mod common;
use common::{fails, ok};

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn compare_without_models_is_heavy_vs_lean_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let (json, csv, md, html) = (p("r.json"), p("r.csv"), p("r.md"), p("r.html"));
    let args = with(
        &["compare"],
        &[
            "--target",
            "jetson-orin-nano",
            "--json",
            &json,
            "--csv",
            &csv,
            "--markdown",
            &md,
            "--report",
            &html,
            "--profile",
        ],
    );
    let table = ok(&strs(&with(&strs(&args), FAST)));
    assert!(table.contains("heavy") && table.contains("lean"), "{table}");
    assert!(table.contains("jetson-orin-nano"), "{table}");

    // The JSON of a real run parses back into the schema's types.
    let text = std::fs::read_to_string(&json).unwrap();
    let r: Report = serde_json::from_str(&text).expect("report JSON matches the schema");
    assert_eq!(
        (r.schema.as_str(), r.schema_version),
        (SCHEMA_NAME, SCHEMA_VERSION)
    );
    assert_eq!(r.command, "compare");
    assert!(r.settings.interleaved);
    let names: Vec<&str> = r.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["heavy", "lean"]);
    assert!(r.machine.cores >= 1 && r.machine.gemm_peak_gflops.unwrap() > 0.0);
    let t = r.target.as_ref().unwrap();
    assert_eq!(
        (t.name.as_str(), t.chosen_by.as_str()),
        ("jetson-orin-nano", "--target")
    );
    for m in &r.models {
        let ss = m.single_stream.as_ref().unwrap();
        assert!(ss.latency_ms.count >= 3 && ss.samples_ms.len() as u64 == ss.latency_ms.count);
        let l = &ss.latency_ms;
        assert!(l.min <= l.median && l.median <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max);
        let off = m.offline.as_ref().unwrap();
        assert_eq!(off.batch, 4);
        assert_eq!(off.images, off.queries * 4);
        assert!(off.throughput_ips > 0.0);
        assert!(m.memory.peak_rss_bytes >= m.memory.baseline_rss_bytes);
        assert!(m.memory.peak_rss_bytes > 0 && m.memory.growth_bytes > 0);
        assert!(m.compute.gflops > 0.0 && m.compute.share_of_peak.unwrap() > 0.0);
        assert!(m.init_ms > 0.0 && m.first_inference_ms > 0.0);
        assert!(!m.engine.engine.is_empty() && !m.engine.provider.is_empty());
        assert_eq!(m.verdicts.len(), 3, "{:?}", m.verdicts);
        assert!(m.verdicts.iter().all(|v| matches!(
            v.status,
            VerdictStatus::Fits { .. } | VerdictStatus::Over { .. }
        )));
        let prof = m.profile.as_ref().expect("--profile fills per-node times");
        assert!(
            prof.iter().any(|n| n.op.starts_with("Conv") && n.macs > 0),
            "{prof:?}"
        );
    }
    assert!(r.models[0].params > r.models[1].params);
    let ratios = r.models[1].ratios.unwrap();
    assert!(ratios.macs.unwrap() < 0.1);
    assert_eq!(r.models[0].ratios.unwrap().macs, Some(1.0));
    assert!(!r.pareto.is_empty());

    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| heavy") || md.contains("|heavy"), "{md}");
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") || html.starts_with("<!doctype html>"));
    assert!(
        html.matches("<svg").count() >= 3,
        "latency, scatter and per-layer charts"
    );
}

#[test]
fn bench_json_to_stdout_and_single_stream_only() {
    let args = with(
        &[
            "bench",
            "lean",
            "--json",
            "-",
            "--scenario",
            "single-stream",
            "--engine",
            "tract",
        ],
        FAST,
    );
    let out = ok(&strs(&args));
    let r: Report = serde_json::from_str(&out).expect("stdout is exactly the JSON report");
    assert_eq!(r.command, "bench");
    assert!(!r.settings.interleaved);
    let m = &r.models[0];
    assert_eq!(m.engine.engine, "tract");
    assert!(m.offline.is_none() && m.single_stream.is_some());
    assert!(r.target.is_none() && m.verdicts.is_empty());
}

#[test]
fn batch_auto_sweeps_and_picks_a_measured_batch() {
    let args = with(
        &[
            "bench",
            "lean",
            "--batch",
            "auto",
            "--max-batch",
            "4",
            "--json",
            "-",
        ],
        FAST,
    );
    let out = ok(&strs(&args));
    let r: Report = serde_json::from_str(&out).unwrap();
    let m = &r.models[0];
    let sweep = m.batch_sweep.as_ref().expect("a sweep");
    let batches: Vec<usize> = sweep.points.iter().map(|p| p.batch).collect();
    assert_eq!(batches[0], 1);
    assert!(batches.iter().all(|b| [1, 2, 4].contains(b)), "{batches:?}");
    assert!(batches.contains(&sweep.chosen));
    assert!(
        sweep
            .points
            .iter()
            .all(|p| p.fits && p.throughput_ips > 0.0)
    );
    assert_eq!(m.offline.as_ref().unwrap().batch, sweep.chosen);

    // A budget nothing fits: refused, saying what batch 1 needs.
    let args = with(
        &[
            "bench",
            "lean",
            "--batch",
            "auto",
            "--max-batch",
            "2",
            "--memory-budget",
            "1MiB",
        ],
        FAST,
    );
    let err = fails(&strs(&args), 2);
    assert!(
        err.contains("no batch size fits") && err.contains("1.0 MiB"),
        "{err}"
    );
}

#[test]
fn unknown_target_and_unknown_model_are_named() {
    let err = fails(
        &strs(&with(&["compare", "--target", "jetson-tx9"], FAST)),
        2,
    );
    assert!(
        err.contains("jetson-tx9") && err.contains("jetson-orin-nano"),
        "{err}"
    );
    let err = fails(&strs(&with(&["bench", "leen"], FAST)), 2);
    assert!(err.contains("leen") && err.contains("lean"), "{err}");
}

#[test]
fn budget_file_with_a_typo_names_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("myboard.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/jetson-orin-nano.toml"),
    )
    .unwrap()
    .replace("p90_latency_ms", "p90_latncy_ms");
    std::fs::write(&path, text).unwrap();
    let err = fails(
        &strs(&with(
            &["bench", "lean", "--target", path.to_str().unwrap()],
            FAST,
        )),
        2,
    );
    assert!(
        err.contains("p90_latncy_ms") && err.contains("myboard.toml"),
        "{err}"
    );
}

#[test]
fn unwritable_report_paths_fail_before_measuring_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/report.html");
    let err = fails(
        &strs(&with(
            &["bench", "lean", "--report", missing.to_str().unwrap()],
            FAST,
        )),
        1,
    );
    assert!(err.contains("no/such/dir"), "{err}");
    let as_dir = dir.path().to_str().unwrap().to_string();
    let err = fails(&strs(&with(&["bench", "lean", "--json", &as_dir], FAST)), 2);
    assert!(err.contains("is a directory"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn onnx_with_free_spatial_dims_asks_for_an_input_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dynamic.onnx");
    common::write_chain_model(&path, &[None, Some(3), None, None], &[("relu", "Relu")]);
    let p = path.to_str().unwrap();
    let err = fails(&strs(&with(&["bench", p], FAST)), 2);
    assert!(
        err.contains("--input-shape") && err.contains("dynamic.onnx"),
        "{err}"
    );
    // With the shape given it runs (on both scenarios, the batch dimension is free).
    let out = ok(&strs(&with(
        &["bench", p, "--input-shape", "1x3x16x16", "--json", "-"],
        FAST,
    )));
    let r: Report = serde_json::from_str(&out).unwrap();
    assert_eq!(r.models[0].input_shape, [1, 3, 16, 16]);
}

#[test]
fn hw_and_targets_list() {
    let out = ok(&["hw", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(j["gemm_peak"]["gflops"].as_f64().unwrap() > 0.0, "{j}");
    assert!(j["machine"]["cores"].as_u64().unwrap() >= 1);
    let out = ok(&["targets"]);
    for t in [
        "jetson-nano",
        "jetson-xavier-nx",
        "jetson-orin-nano",
        "jetson-agx-orin",
        "host",
    ] {
        assert!(out.contains(t), "{out}");
    }
}

#[test]
fn data_runs_the_real_pipeline_and_bad_data_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("set");
    let d = data.to_str().unwrap();
    ok(&[
        "data",
        "synth",
        "-o",
        d,
        "--classes",
        "3",
        "--count",
        "26",
        "--size",
        "32",
    ]);
    let args = with(&["bench", "lean", "--data", d, "--json", "-"], FAST);
    let r: Report = serde_json::from_str(&ok(&strs(&args))).unwrap();
    let p = r.models[0]
        .pipeline
        .as_ref()
        .expect("--data gives pipeline figures");
    assert_eq!(p.batch, 4);
    assert!(p.data.contains("set"), "{}", p.data);
    assert!(p.images >= 3 * 4 && p.errors == 0, "{p:?}");
    assert!(p.loader_ips > 0.0 && p.engine_ips > 0.0 && p.end_to_end_ips > 0.0);
    assert!((0.0..=1.0).contains(&p.stall_fraction), "{p:?}");
    // Top-1 over all 26 labelled images, the last partial batch (2 of 4) included.
    assert!(
        p.top1.is_some_and(|t| (0.0..=1.0).contains(&t)) && p.top1_images == 26,
        "{p:?}"
    );
    assert_eq!(r.models[0].accuracy, p.top1);
    assert!(p.pool_bytes >= 4 * 3 * 32 * 32 * 4);

    let missing = dir.path().join("nowhere");
    let err = fails(
        &strs(&with(
            &["bench", "lean", "--data", missing.to_str().unwrap()],
            FAST,
        )),
        1,
    );
    assert!(err.contains("nowhere"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = eb_status(&strs(&with(
        &["bench", "lean", "--data", empty.to_str().unwrap()],
        FAST,
    )));
    assert!(!out.0 && out.1.contains("empty"), "{}", out.1);
}

/// (success, last stderr line) of a run.
fn eb_status(args: &[&str]) -> (bool, String) {
    let out = common::eb(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    (
        out.status.success(),
        err.trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string(),
    )
}
