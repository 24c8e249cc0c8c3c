//! The report: its [`schema`] (the types that `bench`, `compare`, `profile`, the board's
//! verdicts and the power figures fill in) and rendering a [`Report`]: a terminal table,
//! JSON (the versioned schema of `docs/report-schema.md`), CSV, Markdown and one
//! self-contained HTML page with SVG charts. [`render`] gives the text; [`write()`] puts it in a file atomically.
//!
//! The header phrases (machine, settings, target, "measured on") are built once, in
//! `phrases`, so every format says the same thing.

pub mod cross_model;
mod csv;
pub(crate) mod html;
mod markdown;
pub(crate) mod phrases;
pub(crate) mod plots;
mod power;
pub mod schema;
mod table;

/// Made-up reports (a heavy-vs-lean compare on a 2-core host with the Orin Nano
/// target), for the report tests and `cargo run --example sample_report`.
#[doc(hidden)]
pub mod fixture;

use std::path::Path;
use std::str::FromStr;

use crate::error::{Error, Result};
use schema::Report;

pub(crate) use phrases::{
    PEAK_STALE, accuracy_pct, budget_label, engine_cell, fallback_lines, latencies, machine_line,
    ms, num, peak_share, peak_stale_note, pipeline_line, plain, ratio, settings_line, startup_line,
    sweep_rows, target_lines, verdict_figures,
};

pub use cross_model::{pareto_front, ratios};
pub use phrases::{ComputeGroup, compute_groups, compute_ran_as};

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
            serde_json::to_string_pretty(report).map_err(|e| Error::json("the report", e))? + "\n"
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

#[cfg(test)]
mod tests {
    use super::phrases::measured_on_note;
    use super::*;

    #[test]
    fn board_power_and_energy_appear_in_every_format() {
        let mut r = fixture::report();
        power::tests::on_orin(&mut r);
        for f in [Format::Table, Format::Markdown, Format::Html, Format::Json] {
            let text = render(&r, f).unwrap();
            assert!(
                text.contains("NVIDIA Jetson Orin Nano Developer Kit (L4T R36.4.3)"),
                "{f:?}: {text}"
            );
            assert!(
                text.contains("sampled every 100 ms by /usr/bin/tegrastats"),
                "{f:?}"
            );
            assert!(text.contains("VDD_CPU_GPU_CV"), "{f:?}");
            assert!(text.contains("61.2"), "{f:?}: energy per inference");
        }
        let table = render(&r, Format::Table).unwrap();
        let header = table.lines().find(|l| l.starts_with("model ")).unwrap();
        assert!(header.ends_with("avg W  mJ/image"), "{header}");
        let lean = table.lines().find(|l| l.starts_with("lean ")).unwrap();
        assert!(lean.ends_with(" 6.12      61.2"), "{lean}");
        for f in [Format::Table, Format::Markdown, Format::Html] {
            let text = render(&r, f).unwrap();
            assert!(
                text.contains("6.12 W avg, 7.01 W peak (VDD_IN)"),
                "{f:?}: {text}"
            );
            assert!(text.contains("hottest tj 51.2 °C"), "{f:?}");
        }
        let csv = render(&r, Format::Csv).unwrap();
        let lean = csv.lines().nth(2).unwrap();
        assert!(
            lean.ends_with(",42,VDD_IN,6120,7010,0,0,12,1950,51.25,61.2,,0,,5617654,fp32,"),
            "{lean}"
        );
        // heavy has no power figures: empty tegrastats columns before the file columns.
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .ends_with(",,,,,,,,,,,,,,5617654,fp32,")
        );
        // The JSON reads back with the same power figures.
        let back: Report = serde_json::from_str(&render(&r, Format::Json).unwrap()).unwrap();
        assert_eq!(back.tegrastats, r.tegrastats);
        assert_eq!(back.models[1].power, r.models[1].power);
        assert_eq!(back.machine.board, r.machine.board);
    }

    #[test]
    fn absent_tegrastats_is_said_and_old_reports_still_read() {
        let mut r = fixture::report();
        r.tegrastats = Some(crate::report::schema::TegrastatsStatus {
            note: "not available (not a Jetson)".into(),
            interval_ms: 100,
            ..Default::default()
        });
        for f in [Format::Table, Format::Markdown] {
            let text = render(&r, f).unwrap();
            assert!(
                text.contains("tegrastats: not available (not a Jetson)"),
                "{f:?}"
            );
            assert!(!text.contains("Power (tegrastats"), "{f:?}");
        }
        let html = render(&r, Format::Html).unwrap();
        assert!(html.contains("<b>tegrastats</b>not available (not a Jetson)"));
        // A version-1 report written before `tegrastats` and `power` existed.
        let mut old: serde_json::Value =
            serde_json::from_str(&render(&fixture::report(), Format::Json).unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("tegrastats");
        for m in old["models"].as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("power");
        }
        let back: Report = serde_json::from_value(old).unwrap();
        assert_eq!(back.tegrastats, None);
        assert!(back.models.iter().all(|m| m.power.is_none()));
    }

    #[test]
    fn pipeline_figures_appear_in_every_format() {
        let mut r = fixture::report();
        r.models[1].pipeline = Some(crate::report::schema::Pipeline {
            data: "image folder synth: 400 images in 8 classes".into(),
            batch: 4,
            workers: 2,
            pool_bytes: 5 * 4 * 3 * 256 * 256 * 4,
            loader_ips: 3900.0,
            engine_ips: 140.0,
            end_to_end_ips: 131.0,
            efficiency: 131.0 / 140.0,
            stall_fraction: 0.031,
            images: 524,
            errors: 1,
            first_errors: vec!["synth/class_01/bad.jpg: truncated JPEG".into()],
            top1: Some(0.25),
            top1_images: 524,
        });
        for f in [Format::Table, Format::Markdown, Format::Html] {
            let text = render(&r, f).unwrap();
            assert!(text.contains("stalled 3.1%"), "{f:?}: {text}");
            assert!(text.contains("94% of the slower stage"), "{f:?}");
            assert!(text.contains("bad.jpg"), "{f:?}");
        }
        let csv = render(&r, Format::Csv).unwrap();
        let lean = csv.lines().nth(2).unwrap();
        // The pipeline columns, then the (empty) tegrastats and peak columns after them,
        // then file size, precision and the (empty) top-1 change.
        assert!(
            lean.ends_with(",3900,131,0.031,,,,,,,,,,,,,,5617654,fp32,"),
            "{lean}"
        );
    }

    #[test]
    fn json_round_trips_and_names_the_schema() {
        let r = fixture::report();
        let text = render(&r, Format::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], "edgebench.report");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["models"][0]["verdicts"][1]["status"], "over");
        assert!(v["models"][0]["verdicts"][1]["over_pct"].as_f64().unwrap() > 0.0);
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
}
