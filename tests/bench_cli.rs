//! CLI tests of `bench`, `compare`, `hw` and `targets` through the built binary: a real
//! (short) run parsed back through the report's JSON schema, every output format, the
//! batch sweep, and bad input. No assertion is about wall-clock time.

use std::path::Path;

use edgebench_runtime::report::schema::{Report, SCHEMA_NAME, SCHEMA_VERSION, VerdictStatus};

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
        2,
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
    // edgebench's own SGEMM beside it, on the process's kernel path.
    let own = &j["own_sgemm"];
    assert!(own["gflops"].as_f64().unwrap() > 0.0, "{j}");
    assert_eq!(own["kernels"], j["machine"]["kernels"], "{j}");
    let out = ok(&["hw"]);
    assert!(
        out.contains("own sgemm: ") && out.contains("% of the peak"),
        "{out}"
    );
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

/// One unreadable image among six still fills batches of four (short batches are
/// gathered), and a set with no readable image ends with an error instead of decoding
/// failures forever.
#[test]
fn unreadable_images_do_not_starve_full_batches() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("set");
    let d = data.to_str().unwrap();
    ok(&[
        "data",
        "synth",
        "-o",
        d,
        "--classes",
        "2",
        "--count",
        "6",
        "--size",
        "32",
    ]);
    let mut jpegs: Vec<_> = std::fs::read_dir(data.join("class_00"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    jpegs.sort();
    std::fs::write(&jpegs[1], b"not a JPEG at all").unwrap();
    let args = with(&["bench", "lean", "--data", d, "--json", "-"], FAST);
    let r: Report = serde_json::from_str(&ok(&strs(&args))).unwrap();
    let p = r.models[0].pipeline.as_ref().unwrap();
    assert_eq!((p.batch, p.errors), (4, 1), "{p:?}");
    assert!(p.images >= 3 * 4, "{p:?}");
    assert_eq!(p.top1_images, 5);

    for class in ["class_00", "class_01"] {
        for e in std::fs::read_dir(data.join(class)).unwrap() {
            std::fs::write(e.unwrap().path(), b"garbage").unwrap();
        }
    }
    let (success, line) = eb_status(&strs(&with(&["bench", "lean", "--data", d], FAST)));
    assert!(!success, "{line}");
    assert!(line.contains("no item of the data could be read"), "{line}");
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

/// A model whose input cannot fit in memory is refused before anything is measured
/// (no GEMM peak, no worker), on one line naming the file; exit 1. (A worker's own
/// error crossing the process boundary is `ep_cli`'s provider test.)
#[test]
fn a_model_too_large_for_the_machine_is_refused_before_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.onnx");
    common::write_chain_model(
        &path,
        &[None, Some(3), Some(100_000), Some(100_000)],
        &[("relu", "Relu")],
    );
    for cmd in ["bench", "compare"] {
        let mut args = vec![cmd, path.to_str().unwrap()];
        if cmd == "compare" {
            args.push("lean");
        }
        let out = common::eb(&strs(&with(&args, FAST)));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            !err.contains("GEMM peak"),
            "measured before refusing: {err}"
        );
        let lines: Vec<&str> = err.trim_end().lines().collect();
        let last = lines.last().copied().unwrap_or_default();
        assert!(last.starts_with("edgebench: error: "), "{err}");
        assert!(
            last.contains(
                "huge.onnx: needs 111.8 GiB for a 1x3x100000x100000 f32 tensor (the input)"
            ),
            "{err}"
        );
        assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    }
}

#[test]
fn compare_keys_models_by_position_when_two_share_a_file_name() {
    let dir = tempfile::tempdir().unwrap();
    for (model, sub) in [("lean", "m"), ("heavy", "other")] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        let out = dir.path().join(sub).join("ok.onnx");
        ok(&[
            "models",
            "export",
            model,
            "-o",
            out.to_str().unwrap(),
            "--input",
            "32x32x3",
        ]);
    }
    let (a, b) = (
        dir.path().join("m/ok.onnx"),
        dir.path().join("other/ok.onnx"),
    );
    let json = dir.path().join("r.json");
    let args = with(
        &[
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        FAST,
    );
    let table = ok(&strs(&args));
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let names: Vec<&str> = r.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ok.onnx", "other/ok.onnx"]);
    // The baseline is 1× itself; the second (heavy) gets its own ratios.
    let (first, second) = (r.models[0].ratios.unwrap(), r.models[1].ratios.unwrap());
    assert_eq!(first.macs, Some(1.0));
    assert_eq!(first.params, Some(1.0));
    let macs = r.models[1].macs_per_image as f64 / r.models[0].macs_per_image as f64;
    assert!(macs > 10.0, "heavy has many more MACs than lean");
    assert!((second.macs.unwrap() - macs).abs() < 1e-9, "{second:?}");
    let row = |name: &str| {
        table
            .lines()
            .filter(|l| l.starts_with(&format!("{name} ")))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // In the table's ratio section, each row is its own model's.
    assert!(
        row("other/ok.onnx")
            .iter()
            .any(|l| l.contains(&format!("×{:.1}", second.macs.unwrap()))),
        "{table}"
    );
    assert!(
        row("ok.onnx")
            .iter()
            .any(|l| l.matches("×1.00").count() == 6),
        "{table}"
    );
}

/// `dir/NAME`, a fixture root whose `/proc/loadavg` starts with `load` (no Jetson
/// files), for `EDGEBENCH_SYSROOT`.
fn root_with_load(dir: &Path, name: &str, load: &str) -> std::path::PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/loadavg"),
        format!("{load} {load} {load} 1/100 4242\n"),
    )
    .unwrap();
    root
}

#[test]
fn an_unwritable_cache_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let idle = root_with_load(dir.path(), "idle", "0.00");
    // Under a regular file: unwritable even for root.
    let nowhere = Path::new("/dev/null/x");
    let empty = Path::new("");
    let envs: [&[(&str, &Path)]; 2] = [
        &[("XDG_CACHE_HOME", nowhere), ("EDGEBENCH_SYSROOT", &idle)],
        &[
            ("XDG_CACHE_HOME", empty),
            ("HOME", nowhere),
            ("EDGEBENCH_SYSROOT", &idle),
        ],
    ];
    for env in envs {
        let args = with(&["bench", "lean", "--json", "-"], FAST);
        let (out, err) = common::ok_env(&strs(&args), env);
        let r: Report = serde_json::from_str(&out).unwrap();
        assert!(r.machine.gemm_peak_gflops.unwrap() > 0.0);
        let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(warnings.len(), 1, "warned once: {err}");
        assert!(
            warnings[0].contains("cannot be cached") && warnings[0].contains("/dev/null/x"),
            "{err}"
        );
        let (out, err) = common::ok_env(&["hw", "--json"], env);
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(j["cached"], false, "{j}");
        assert!(j["gemm_peak"]["gflops"].as_f64().unwrap() > 0.0);
        assert!(err.contains("cannot be cached"), "{err}");
    }
}

#[test]
fn a_peak_measured_while_busy_is_not_cached_and_a_stale_one_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_file = cache.join("edgebench/gemm-peak.json");
    let busy = root_with_load(dir.path(), "busy", "999.00");
    let idle = root_with_load(dir.path(), "idle", "0.00");
    let env = |root: &Path| -> Vec<(&'static str, std::path::PathBuf)> {
        vec![
            ("XDG_CACHE_HOME", cache.clone()),
            ("EDGEBENCH_SYSROOT", root.to_path_buf()),
        ]
    };
    let run = |args: &[&str], root: &Path| {
        let e = env(root);
        let e: Vec<(&str, &Path)> = e.iter().map(|(k, v)| (*k, v.as_path())).collect();
        common::ok_env(args, &e)
    };

    // Busy: measured and used, not cached, and said so.
    let (out, err) = run(&["hw", "--json"], &busy);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(j["gemm_peak"]["gflops"].as_f64().unwrap() > 0.0);
    assert_eq!(j["gemm_peak"]["load_avg_1m"], 999.0);
    assert!(err.contains("busy") && err.contains("999.00"), "{err}");
    assert!(!cache_file.exists(), "a busy measurement is not cached");

    // Idle: cached with when and under what load it was measured.
    let (_, err) = run(&["hw", "--remeasure"], &idle);
    assert!(!err.contains("warning"), "{err}");
    let cached = common::read_json(&cache_file);
    assert!(cached["measured_unix_s"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(cached["load_avg_1m"], 0.0);
    assert!(
        cached["runs"].as_u64().unwrap() >= 3,
        "best of several runs"
    );

    // A cache written before load and time were recorded, with a peak far below what
    // this machine does (as when measured while busy): it loads, and every report
    // format flags the shares above 100%.
    let old = serde_json::json!({
        "cpu": cached["cpu"], "cores": cached["cores"], "n": 1024, "gflops": 0.001,
    });
    std::fs::write(&cache_file, old.to_string()).unwrap();
    let (out, _) = run(&["hw", "--json"], &idle);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&j["cached"], &j["gemm_peak"]["gflops"]),
        (&true.into(), &0.001.into())
    );
    let p = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let (json, csv, md, html) = (p("r.json"), p("r.csv"), p("r.md"), p("r.html"));
    let args = with(
        &[
            "bench",
            "lean",
            "--json",
            &json,
            "--csv",
            &csv,
            "--markdown",
            &md,
            "--report",
            &html,
        ],
        FAST,
    );
    let (table, _) = run(&strs(&args), &idle);
    let stale = "peak stale: run `edgebench hw --remeasure`";
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r.machine.gemm_peak_gflops, Some(0.001));
    let c = &r.models[0].compute;
    assert!(c.share_of_peak.unwrap() > 1.0 && c.peak_stale, "{c:?}");
    assert!(table.contains(stale), "{table}");
    for f in [&csv, &md, &html] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.contains(stale), "{f}: {text}");
    }

    // `--remeasure` replaces it.
    run(&["hw", "--remeasure"], &idle);
    assert!(common::read_json(&cache_file)["gflops"].as_f64().unwrap() > 0.001);
}

/// `dir/argmax.onnx`: x [n, 3, 16, 16] → GlobalAveragePool → Flatten → y [n, 3], so the
/// predicted class of an image is its channel with the largest mean. An ONNX file's
/// pixels are scaled to [0, 1], so a flat red, green or blue image averages 1 in its own
/// channel and 0 in the others: class 0, 1 or 2.
fn write_channel_argmax_model(dir: &Path) -> std::path::PathBuf {
    use edgebench_runtime::onnx::pb;
    let vi = |name: &str, dims: &[Option<i64>]| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            tensor_type: Some(pb::TypeProtoTensor {
                elem_type: pb::data_type::FLOAT,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| pb::Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "n".to_string()),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = |op: &str, input: &str, output: &str| pb::NodeProto {
        input: vec![input.into()],
        output: vec![output.into()],
        name: op.to_lowercase(),
        op_type: op.into(),
        ..Default::default()
    };
    let model = pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(pb::GraphProto {
            name: "argmax".into(),
            node: vec![
                node("GlobalAveragePool", "x", "m"),
                node("Flatten", "m", "y"),
            ],
            input: vec![vi("x", &[None, Some(3), Some(16), Some(16)])],
            output: vec![vi("y", &[None, Some(3)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join("argmax.onnx");
    std::fs::write(&path, edgebench_runtime::onnx::encode_model(&model)).unwrap();
    path
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// An image folder `dir/name` with one sub-folder (class) per entry of `classes`, each
/// holding one `side`×`side` PNG of a flat colour per entry.
fn colour_set(dir: &Path, name: &str, side: u32, classes: &[&[[u8; 3]]]) -> std::path::PathBuf {
    let root = dir.join(name);
    for (c, colours) in classes.iter().enumerate() {
        let class = root.join(format!("class_{c}"));
        std::fs::create_dir_all(&class).unwrap();
        for (i, &rgb) in colours.iter().enumerate() {
            image::RgbImage::from_pixel(side, side, image::Rgb(rgb))
                .save(class.join(format!("{i}.png")))
                .unwrap();
        }
    }
    root
}

/// `bench --data` figures with known answers. Top-1: the channel-argmax model on flat
/// red, green and blue images, 7 of 10 of them filed under their colour's class (the
/// last batch of 4 is partial), so top-1 is exactly 0.7. Stall fraction: one loader
/// worker decoding 1024×1024 PNGs for a model that averages 16×16 pixels (the engine
/// is thousands of times faster than the loader, so it waits almost all the time), and
/// 16×16 PNGs for the heavy model at 32×32 on one thread (the loader is several hundred
/// times faster, so batches wait for the engine). Measured: above 0.99 and below 0.003,
/// also with four busy processes on two cores; the bounds 0.8 and 0.2 leave room.
#[test]
fn pipeline_top1_and_stall_fraction_have_known_answers() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_channel_argmax_model(dir.path());
    let classes: &[&[[u8; 3]]] = &[
        &[RED, RED, RED],
        &[GREEN, GREEN, BLUE],
        &[BLUE, BLUE, RED, RED],
    ];
    // One loader worker and one engine thread; `settings` is FAST, without its --size
    // for the ONNX file (whose input size is fixed).
    let run = |model: &str, data: &Path, settings: &[&str]| -> Report {
        let mut args = vec!["bench", model, "--data", common::p(data), "--json", "-"];
        args.extend_from_slice(&["--data-workers", "1", "--threads", "1"]);
        args.extend_from_slice(settings);
        serde_json::from_str(&ok(&args)).unwrap()
    };

    let big = colour_set(dir.path(), "big", 1024, classes);
    assert_eq!(FAST[..2], ["--size", "32x32x3"]);
    let r = run(common::p(&model), &big, &FAST[2..]);
    let p = r.models[0].pipeline.as_ref().unwrap();
    assert_eq!((p.top1, p.top1_images), (Some(0.7), 10), "{p:?}");
    assert_eq!(r.models[0].accuracy, Some(0.7));
    assert!(p.stall_fraction > 0.8, "the engine should wait: {p:?}");

    let small = colour_set(dir.path(), "small", 16, classes);
    let r = run("heavy", &small, FAST);
    let p = r.models[0].pipeline.as_ref().unwrap();
    assert_eq!(p.top1_images, 10, "{p:?}");
    assert!(p.stall_fraction < 0.2, "the loader should keep up: {p:?}");
}
