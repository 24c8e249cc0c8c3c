//! On-device figures through the binary, without a board: a fake `tegrastats` script
//! (printing real lines from `tests/fixtures/tegrastats/` at the `--interval` it is
//! given) via `EDGEBENCH_TEGRASTATS`, and a fixture root with a Jetson's
//! `/proc/device-tree/model` and `/etc/nv_tegra_release` via `EDGEBENCH_SYSROOT`.
//! No assertion is about wall-clock time.

mod common;

use std::path::Path;

use common::{
    fake_tegrastats, ok_env, one_orin_nano_line, orin_nano_root, tegrastats_fixture as fixture,
};
use edgebench_runtime::report::schema::Report;

const SHORT: [&str; 9] = [
    "--size",
    "32x32x3",
    "--min-duration",
    "0.6",
    "--warmup-time",
    "0",
    "--min-queries",
    "5",
    "--quiet",
];

fn bench_json(model: &str, extra: &[&str], env: &[(&str, &Path)]) -> Report {
    let mut args = vec!["bench", model, "--json", "-"];
    args.extend(SHORT);
    args.extend(extra);
    let (out, _) = ok_env(&args, env);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `bench lean --scenario single-stream --json -` with the short timings but without
/// `--quiet`, so that the board detection shows on stderr: the report and stderr.
fn single_stream_json(extra: &[&str], env: &[(&str, &Path)]) -> (Report, String) {
    let mut args = vec![
        "bench",
        "lean",
        "--scenario",
        "single-stream",
        "--json",
        "-",
    ];
    args.extend(&SHORT[..SHORT.len() - 1]);
    args.extend(extra);
    let (out, err) = ok_env(&args, env);
    let r = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (r, err)
}

#[test]
fn bench_reports_power_and_energy_consistent_with_the_fixture() {
    let dir = tempfile::tempdir().unwrap();
    // One R36 Orin Nano line: VDD_IN 4742 mW throughout.
    let lines = one_orin_nano_line(dir.path());
    let fake = fake_tegrastats(dir.path(), &lines);
    let r = bench_json(
        "lean",
        &["--tegrastats-interval", "20"],
        &[("EDGEBENCH_TEGRASTATS", &fake)],
    );
    let t = r.tegrastats.as_ref().expect("tegrastats status");
    assert!(t.available, "{t:?}");
    assert_eq!(t.interval_ms, 20);
    assert_eq!(t.path.as_deref(), fake.to_str());
    let m = &r.models[0];
    let p = m.power.as_ref().expect("power figures");
    assert!(p.samples >= 3, "{p:?}");
    assert_eq!(p.total_source, "VDD_IN");
    assert_eq!(p.total_avg_mw, Some(4742.0));
    assert_eq!(p.total_peak_mw, Some(4742.0));
    let rails: Vec<&str> = p.rails.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rails, ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]);
    assert_eq!(p.rails[1].avg_mw, 482.0);
    assert_eq!(p.gpu_load_pct.map(|g| g.peak), Some(0.0));
    assert_eq!(p.ram_used_mib.map(|r| r.peak), Some(1905.0));
    assert_eq!(p.ram_total_mib, Some(7620));
    assert_eq!(p.max_temp_c, Some(46.125));
    assert_eq!(p.unparsed_lines, 0);
    // Energy per inference = 4742 mW × measured time / inferences, per scenario.
    let ss = m.single_stream.as_ref().unwrap();
    let off = m.offline.as_ref().unwrap();
    assert_eq!(p.energy.len(), 2, "{:?}", p.energy);
    for (e, duration_s, inferences) in [
        (&p.energy[0], ss.duration_s, ss.latency_ms.count),
        (&p.energy[1], off.duration_s, off.images),
    ] {
        assert_eq!(e.avg_power_mw, 4742.0);
        assert_eq!(e.duration_s, duration_s);
        assert_eq!(e.inferences, inferences);
        let want = 4742.0 * duration_s / inferences as f64;
        assert!((e.mj_per_inference - want).abs() < 1e-9 * want, "{e:?}");
    }
    assert_eq!(p.energy[0].scenario, "single_stream");
    assert_eq!(p.energy[1].scenario, "offline");
}

#[test]
fn compare_gives_each_model_its_own_samples_and_every_format_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    // AGX Orin (R36.4.4): no VDD_IN, so the total is the sum of the three rails.
    let fake = fake_tegrastats(dir.path(), &fixture("r36-agx-orin.txt"));
    let (md, csv, html) = (
        dir.path().join("r.md"),
        dir.path().join("r.csv"),
        dir.path().join("r.html"),
    );
    let mut args = vec!["compare", "lean", "lean-w0.5"];
    args.extend(SHORT);
    args.extend([
        "--tegrastats-interval",
        "20",
        "--markdown",
        md.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
        "--json",
        "-",
    ]);
    let (out, _) = ok_env(&args, &[("EDGEBENCH_TEGRASTATS", &fake)]);
    let r: Report = serde_json::from_str(&out).unwrap();
    let sums = [8726.0, 8626.0, 8726.0];
    for m in &r.models {
        let p = m.power.as_ref().expect("power per model");
        assert!(p.samples >= 1, "{}: {p:?}", m.name);
        assert_eq!(p.total_source, "sum of rails");
        let avg = p.total_avg_mw.unwrap();
        assert!((8626.0..=8726.0).contains(&avg), "{avg}");
        assert!(sums.contains(&p.total_peak_mw.unwrap()));
        assert_eq!(p.energy.len(), 2);
    }
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("### Power (tegrastats, during the timed runs)"),
        "{md}"
    );
    assert!(
        md.contains("| lean-w0.5 | 8.6") || md.contains("| lean-w0.5 | 8.7"),
        "{md}"
    );
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("<h2>Power (tegrastats, during the timed runs)</h2>"));
    assert!(html.contains("VIN_SYS_5V0"));
    let csv = std::fs::read_to_string(csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    // Columns are only ever appended: the power ones, then the count of dropped
    // samples and the stale-peak note, then the model file's size and precision.
    assert_eq!(
        header[header.len() - 6..],
        [
            "energy_offline_mj",
            "tegrastats_implausible",
            "peak_note",
            "file_bytes",
            "precision",
            "top1_change_points"
        ]
    );
    let col = header.iter().position(|h| *h == "power_source").unwrap();
    for row in csv.lines().skip(1) {
        assert_eq!(row.split(',').nth(col), Some("sum of rails"), "{row}");
    }
}

#[test]
fn absent_tegrastats_is_reported_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty_root = dir.path().join("empty");
    std::fs::create_dir_all(&empty_root).unwrap();
    let env = [("EDGEBENCH_SYSROOT", empty_root.as_path())];
    let r = bench_json("lean", &["--scenario", "single-stream"], &env);
    let t = r.tegrastats.as_ref().unwrap();
    assert!(!t.available);
    assert_eq!(t.note, "not available (not a Jetson)");
    assert!(r.models[0].power.is_none());
    assert!(r.machine.board.is_none());
    let mut args = vec!["bench", "lean", "--scenario", "single-stream"];
    args.extend(&SHORT[..8]);
    let (table, _) = ok_env(&args, &env);
    assert!(
        table.contains("tegrastats: not available (not a Jetson)"),
        "{table}"
    );

    // A named executable that is not there: said, still not an error.
    let missing = dir.path().join("no-such-tegrastats");
    let r = bench_json(
        "lean",
        &["--scenario", "single-stream"],
        &[("EDGEBENCH_TEGRASTATS", &missing), env[0]],
    );
    let note = &r.tegrastats.unwrap().note;
    assert!(
        note.contains("no-such-tegrastats") && note.contains("not available"),
        "{note}"
    );
}

#[test]
fn unreadable_tegrastats_output_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("garbage.txt");
    std::fs::write(&lines, "tegrastats: permission denied\n").unwrap();
    let fake = fake_tegrastats(dir.path(), &lines);
    let r = bench_json(
        "lean",
        &["--scenario", "single-stream", "--tegrastats-interval", "20"],
        &[("EDGEBENCH_TEGRASTATS", &fake)],
    );
    let p = r.models[0].power.as_ref().unwrap();
    assert_eq!(p.samples, 0);
    assert!(p.unparsed_lines >= 1, "{p:?}");
    assert!(
        p.first_unparsed
            .as_deref()
            .unwrap()
            .contains("not a tegrastats line")
    );
    assert!(p.note.contains("no tegrastats sample"), "{}", p.note);
    assert!(p.energy.is_empty());
}

#[test]
fn a_detected_jetson_is_named_everywhere_and_picks_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let root = orin_nano_root(dir.path());
    let env = [("EDGEBENCH_SYSROOT", root.as_path())];
    let board = "NVIDIA Jetson Orin Nano Developer Kit (L4T R36.4.3)";

    let (hw, _) = ok_env(&["hw"], &env);
    assert!(
        hw.contains(&format!("board:     {board} (target jetson-orin-nano)")),
        "{hw}"
    );
    assert!(
        hw.contains("tegrastats: not available (no tegrastats on PATH)"),
        "{hw}"
    );
    let (hw_json, _) = ok_env(&["hw", "--json"], &env);
    let j: serde_json::Value = serde_json::from_str(&hw_json).unwrap();
    assert_eq!(j["machine"]["board"], board);
    assert_eq!(j["target"], "jetson-orin-nano");
    assert_eq!(j["tegrastats"], serde_json::Value::Null);
    let fake = fake_tegrastats(dir.path(), &fixture("r32-nano.txt"));
    let (hw, _) = ok_env(&["hw"], &[env[0], ("EDGEBENCH_TEGRASTATS", &fake)]);
    assert!(
        hw.contains(&format!("tegrastats: {}", fake.display())),
        "{hw}"
    );

    let (md, html) = (dir.path().join("r.md"), dir.path().join("r.html"));
    let mut args = vec!["bench", "lean", "--scenario", "single-stream"];
    args.extend(&SHORT[..8]);
    args.extend([
        "--markdown",
        md.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    let (table, err) = ok_env(&args, &env);
    assert!(
        err.contains(&format!("detected {board}: using target jetson-orin-nano")),
        "{err}"
    );
    // The board has no tegrastats here: said as such, not as "not a Jetson".
    assert!(
        err.contains("tegrastats: not available (no tegrastats on PATH)"),
        "{err}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("machine:") && l.contains(board)),
        "{table}"
    );
    assert!(
        table.contains(&format!("chosen by detected: {board}")),
        "{table}"
    );
    assert!(std::fs::read_to_string(&md).unwrap().contains(board));
    assert!(std::fs::read_to_string(&html).unwrap().contains(board));

    // With --json - the detection still goes to stderr, the JSON names the board.
    let (r, err) = single_stream_json(&[], &env);
    assert!(err.contains("detected NVIDIA Jetson Orin Nano"), "{err}");
    assert_eq!(r.machine.board.as_deref(), Some(board));
    let t = r.target.expect("detected target");
    assert_eq!(t.name, "jetson-orin-nano");
    assert_eq!(t.chosen_by, format!("detected: {board}"));
    assert!(!r.models[0].verdicts.is_empty());
    // --target still wins over the detected board, which is still named.
    let (r, _) = single_stream_json(&["--target", "jetson-nano"], &env);
    assert_eq!(r.target.unwrap().name, "jetson-nano");
    assert_eq!(r.machine.board.as_deref(), Some(board));
}

#[test]
fn a_jetson_without_a_builtin_target_is_named_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = orin_nano_root(dir.path());
    std::fs::write(
        root.join("proc/device-tree/model"),
        b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\0",
    )
    .unwrap();
    let (r, err) = single_stream_json(&[], &[("EDGEBENCH_SYSROOT", &root)]);
    assert!(
        err.contains("no built-in target matches it; give --target"),
        "{err}"
    );
    assert!(r.target.is_none());
    assert!(
        r.machine
            .board
            .unwrap()
            .starts_with("NVIDIA Jetson Orin NX")
    );
}

#[test]
fn implausible_samples_are_dropped_and_counted_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("mixed.txt");
    let real = std::fs::read_to_string(fixture("r36-orin-nano.txt")).unwrap();
    let real = real.lines().next().unwrap();
    std::fs::write(
        &lines,
        format!(
            "{real}\nRAM 5/0MB VDD_IN 4000mW/4000mW\n\
             VDD_IN 99999999999999999999999mW/99999999999999999999999mW\n"
        ),
    )
    .unwrap();
    let fake = fake_tegrastats(dir.path(), &lines);
    let md = dir.path().join("r.md");
    let json = dir.path().join("r.json");
    let mut args = vec![
        "bench",
        "lean",
        "--tegrastats-interval",
        "20",
        "--json",
        json.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ];
    args.extend(&SHORT[..SHORT.len() - 1]); // without --quiet: the table too
    let (table, _) = ok_env(&args, &[("EDGEBENCH_TEGRASTATS", &fake)]);
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let p = r.models[0].power.as_ref().unwrap();
    assert!(p.samples >= 1, "{p:?}");
    assert!(p.implausible_samples >= 2, "{p:?}");
    assert!(
        p.first_implausible
            .as_deref()
            .unwrap()
            .contains("RAM 5/0MB"),
        "{p:?}"
    );
    // Only the real line's figures: 4742 mW, 7620 MiB of RAM; no 3.3e22 W.
    assert_eq!(
        (p.total_avg_mw, p.total_peak_mw),
        (Some(4742.0), Some(4742.0))
    );
    assert_eq!(p.ram_total_mib, Some(7620));
    assert_eq!(p.unparsed_lines, 0);
    for text in [table, std::fs::read_to_string(&md).unwrap()] {
        assert!(text.contains("implausible samples dropped"), "{text}");
        assert!(text.contains("4.74 W avg"), "{text}");
    }
}
