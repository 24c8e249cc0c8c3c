//! Rendering a [`Report`]: a terminal table, JSON (the versioned schema of
//! `docs/report-schema.md`), CSV, Markdown and one self-contained HTML page with SVG
//! charts. [`render`] gives the text; [`write()`] puts it in a file atomically.
//!
//! The header phrases (machine, settings, target, "measured on") are built here once so
//! every format says the same thing.

mod csv;
mod html;
mod markdown;
mod plots;
pub mod summary;
mod table;

#[cfg(test)]
pub(crate) mod fixture;

use std::path::Path;
use std::str::FromStr;

use crate::bench::result::{BatchSweep, Machine, ModelResult, Report, Settings, Verdict};
use crate::error::{Error, Result};
use crate::target;
use crate::units;

pub use summary::{pareto_front, ratios};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// The report's JSON schema, pretty-printed.
    Json,
    /// One row per model.
    Csv,
    /// GitHub-flavoured Markdown tables.
    Markdown,
    /// One self-contained page with inline CSS and SVG charts.
    Html,
}

impl Format {
    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Table => "txt",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" | "text" | "txt" => Format::Table,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "markdown" | "md" => Format::Markdown,
            "html" | "htm" => Format::Html,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown report format {s:?} (table, json, csv, markdown, html)"
                )));
            }
        })
    }
}

/// Render `report` as text in format `f`.
pub fn render(report: &Report, f: Format) -> Result<String> {
    Ok(match f {
        Format::Table => table::render(report),
        Format::Json => {
            serde_json::to_string_pretty(report)
                .map_err(|e| Error::Invalid(format!("report cannot be written as JSON: {e}")))?
                + "\n"
        }
        Format::Csv => csv::render(report),
        Format::Markdown => markdown::render(report),
        Format::Html => html::render(report)?,
    })
}

/// Render `report` and write it to `path` atomically: on any error (missing directory,
/// no permission, full disk) the error names `path` and no partial file is left.
pub fn write(report: &Report, f: Format, path: &Path) -> Result<()> {
    let text = render(report, f)?;
    crate::fsutil::write_atomic(path, text.as_bytes())
}

// ---- phrases shared by the formats ----

/// Milliseconds with precision that suits their size: `0.412`, `9.73`, `68.4`, `1204`.
pub(crate) fn ms(v: f64) -> String {
    match v.abs() {
        x if !x.is_finite() => "-".into(),
        0.0 => "0".into(),
        x if x >= 100.0 => format!("{v:.0}"),
        x if x >= 10.0 => format!("{v:.1}"),
        x if x >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

/// A figure with up to 3 significant digits, for throughput and GFLOP/s.
pub(crate) fn num(v: f64) -> String {
    ms(v)
}

/// A setting or budget as written: `1`, `0.25`, `33.3` (at most 2 decimals, no
/// trailing zeros).
pub(crate) fn plain(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// A ratio: `×0.21`.
pub(crate) fn ratio(v: Option<f64>) -> String {
    match v {
        Some(r) if r.is_finite() => format!("×{}", num(r)),
        _ => "-".into(),
    }
}

/// `cpu · 2 cores · avx2+fma · x86_64 · 8.0 GiB · GEMM peak 95.0 GFLOP/s · board`.
pub(crate) fn machine_line(m: &Machine) -> String {
    let mut parts = vec![
        m.cpu.clone(),
        format!("{} cores", m.cores),
        m.simd.clone(),
        m.arch.clone(),
        units::bytes(m.memory_bytes),
    ];
    match m.gemm_peak_gflops {
        Some(p) => parts.push(format!("GEMM peak {} GFLOP/s", num(p))),
        None => parts.push("GEMM peak not measured (run `edgebench hw`)".into()),
    }
    if let Some(b) = &m.board {
        parts.push(b.clone());
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" · ")
}

/// `engine auto, ep cpu, threads default, warm-up ..., batch 8, interleaved`.
pub(crate) fn settings_line(s: &Settings) -> String {
    let threads = s.threads.map_or("default".into(), |t| t.to_string());
    format!(
        "engine {}, ep {}, threads {threads}, warm-up {} queries and {} s, timed ≥ {} s and ≥ {} queries, batch {}{}",
        s.engine,
        if s.ep.is_empty() {
            "-".into()
        } else {
            s.ep.join(",")
        },
        s.warmup_queries,
        plain(s.warmup_s),
        plain(s.min_duration_s),
        s.min_queries,
        if s.batch == 0 {
            "auto".to_string()
        } else {
            s.batch.to_string()
        },
        if s.interleaved { ", interleaved" } else { "" }
    )
}

/// `target jetson-orin-nano (Jetson ...), chosen by --target` and its budgets.
pub(crate) fn target_lines(report: &Report) -> Vec<String> {
    let Some(t) = &report.target else {
        return vec!["target: none (no verdicts; use --target NAME)".into()];
    };
    let mut budgets = Vec::new();
    if let Some(b) = t.memory_bytes {
        // Budgets are written in MiB; show them as written.
        let mib = 1024 * 1024;
        if b % mib == 0 {
            budgets.push(format!("memory {} MiB", b / mib));
        } else {
            budgets.push(format!("memory {}", units::bytes(b)));
        }
    }
    if let Some(l) = t.p90_latency_ms {
        budgets.push(format!("p90 latency {} ms", plain(l)));
    }
    if let Some(i) = t.min_throughput_ips {
        budgets.push(format!("throughput ≥ {} images/s", plain(i)));
    }
    let mut lines = vec![
        format!(
            "target: {} ({}), chosen by {}",
            t.name, t.description, t.chosen_by
        ),
        format!(
            "budgets: {}",
            if budgets.is_empty() {
                "none".into()
            } else {
                budgets.join(", ")
            }
        ),
    ];
    if let Some(n) = measured_on_note(report) {
        lines.push(n);
    }
    lines
}

/// When the target is a Jetson and the figures come from another machine, say so.
pub(crate) fn measured_on_note(report: &Report) -> Option<String> {
    let t = report.target.as_ref()?;
    if !t.name.starts_with("jetson") {
        return None;
    }
    match &report.machine.board {
        None => Some(format!(
            "figures measured on {}, not on the board",
            report.machine.cpu
        )),
        Some(board) => {
            let detected = target::detect_board(Some(board), None).and_then(|(_, t)| t);
            (detected.as_deref() != Some(t.name.as_str()))
                .then(|| format!("figures measured on {board}, not on {}", t.name))
        }
    }
}

/// The figures of one verdict: `612 / 2048 MiB`, `9.70 ms` (no budget), `limit 30
/// images/s` (not measured).
pub(crate) fn verdict_figures(v: &Verdict) -> String {
    match (v.measured, v.limit) {
        (Some(m), Some(l)) => format!("{} / {} {}", num(m), plain(l), v.unit),
        (Some(m), None) => format!("{} {}", num(m), v.unit),
        (None, Some(l)) => format!("limit {} {}", plain(l), v.unit),
        (None, None) => String::new(),
    }
}

/// Rows of a `--batch auto` sweep: batch (★ when chosen), images/s, peak RSS, fits.
pub(crate) fn sweep_rows(s: &BatchSweep) -> Vec<[String; 4]> {
    s.points
        .iter()
        .map(|p| {
            [
                if p.batch == s.chosen {
                    format!("{} ★", p.batch)
                } else {
                    p.batch.to_string()
                },
                num(p.throughput_ips),
                units::bytes(p.peak_rss_bytes),
                if p.fits { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect()
}

/// `session 40.0 ms, first inference 137 ms, arena 12.0 MiB` (or the arena note).
pub(crate) fn startup_line(m: &ModelResult) -> String {
    let arena = match (m.memory.arena_bytes, m.memory.arena_note.as_str()) {
        (Some(b), "") => format!("arena {}", units::bytes(b)),
        (Some(b), note) => format!("arena {} ({note})", units::bytes(b)),
        (None, "") => "arena unknown".to_string(),
        (None, note) => format!("arena: {note}"),
    };
    format!(
        "session init {} ms, first inference {} ms, {arena}",
        ms(m.init_ms),
        ms(m.first_inference_ms)
    )
}

/// `p90 latency` for `p90_latency`.
pub(crate) fn budget_label(v: &Verdict) -> String {
    v.budget.replace('_', " ")
}

/// `ort/cpu`: the engine and the provider that really ran.
pub(crate) fn engine_cell(m: &ModelResult) -> String {
    let e = &m.engine;
    match (e.engine.is_empty(), e.provider.is_empty()) {
        (true, _) => "-".to_string(),
        (false, true) => e.engine.clone(),
        (false, false) => format!("{}/{}", e.engine, e.provider),
    }
}

/// Latency of batch-1 queries: `(median, p90, p99)`, when SingleStream ran.
pub(crate) fn latencies(m: &ModelResult) -> Option<(f64, f64, f64)> {
    m.single_stream
        .as_ref()
        .map(|s| (s.latency_ms.median, s.latency_ms.p90, s.latency_ms.p99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_names_the_schema() {
        let r = fixture::report();
        let text = render(&r, Format::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "edgebench.report");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["models"][0]["verdicts"][1]["status"]["status"], "over");
        let back: Report = serde_json::from_str(&text).unwrap();
        // serde_json's default float parser may differ in the last bit, so compare what
        // is not a float sample exactly and the rest closely.
        assert_eq!(back.pareto, r.pareto);
        assert_eq!(back.target, r.target);
        for (b, m) in back.models.iter().zip(&r.models) {
            assert_eq!(
                (&b.name, &b.engine, &b.memory),
                (&m.name, &m.engine, &m.memory)
            );
            assert_eq!(b.verdicts.len(), m.verdicts.len());
            let (x, y) = (
                b.single_stream.as_ref().unwrap(),
                m.single_stream.as_ref().unwrap(),
            );
            assert_eq!(x.samples_ms.len(), y.samples_ms.len());
            assert!((x.latency_ms.p90 - y.latency_ms.p90).abs() < 1e-12);
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(ms(0.0), "0");
        assert_eq!(ms(0.4123), "0.412");
        assert_eq!(ms(9.731), "9.73");
        assert_eq!(ms(68.44), "68.4");
        assert_eq!(ms(1204.4), "1204");
        assert_eq!(plain(1.0), "1");
        assert_eq!(plain(0.25), "0.25");
        assert_eq!(plain(33.3), "33.3");
        assert_eq!(ratio(Some(0.1418)), "×0.142");
        assert_eq!(ratio(None), "-");
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("md".parse::<Format>().unwrap(), Format::Markdown);
        assert_eq!("HTML".parse::<Format>().unwrap(), Format::Html);
        assert!(
            "xls"
                .parse::<Format>()
                .unwrap_err()
                .to_string()
                .contains("xls")
        );
    }

    #[test]
    fn write_into_a_missing_directory_names_the_path_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let r = fixture::report();
        for f in [Format::Html, Format::Json, Format::Csv] {
            let p = dir
                .path()
                .join("missing")
                .join(format!("r.{}", f.extension()));
            let e = write(&r, f, &p).unwrap_err().to_string();
            assert!(e.contains(&p.display().to_string()), "{e}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let ok = dir.path().join("r.md");
        write(&r, Format::Markdown, &ok).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the report, no temp file");
    }

    #[test]
    fn measured_on_another_machine_is_said() {
        let mut r = fixture::report();
        assert!(measured_on_note(&r).unwrap().contains("AMD EPYC"));
        r.machine.board = Some("NVIDIA Jetson Orin Nano Developer Kit".into());
        assert_eq!(measured_on_note(&r), None);
        r.machine.board = Some("NVIDIA Jetson Xavier NX Developer Kit".into());
        assert!(
            measured_on_note(&r)
                .unwrap()
                .contains("not on jetson-orin-nano")
        );
        r.target = None;
        assert_eq!(measured_on_note(&r), None);
    }

    /// Writes the fixture in every format to `$EDGEBENCH_SAMPLE_REPORT` (`.html`, and
    /// the same stem with `.txt`, `.md`, `.csv`, `.json`) for a look in a browser.
    #[test]
    fn sample_report_for_a_browser() {
        if let Some(p) = std::env::var_os("EDGEBENCH_SAMPLE_REPORT") {
            let p = Path::new(&p);
            let r = fixture::report();
            write(&r, Format::Html, p).unwrap();
            for f in [Format::Table, Format::Markdown, Format::Csv, Format::Json] {
                write(&r, f, &p.with_extension(f.extension())).unwrap();
            }
            // Crowded: six models close together, long names, no target, no profile.
            let mut models: Vec<_> = (0..6)
                .map(|i| {
                    let name = format!("mobilenet-v2-width-{}-very-long-name", 10 + i);
                    fixture::with_figures(&name, 20.0 + i as f64, 300 + 10 * i, None)
                })
                .collect();
            let ratios = summary::ratios(&models);
            for (m, q) in models.iter_mut().zip(ratios) {
                m.ratios = Some(q);
            }
            let crowded = Report {
                target: None,
                pareto: summary::pareto_front(&models),
                models,
                ..r
            };
            write(&crowded, Format::Html, &p.with_extension("crowded.html")).unwrap();
        }
    }
}
