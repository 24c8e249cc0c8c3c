//! The terminal table: header lines (command, machine, settings, target), one row per
//! model, ratios against the first model, verdicts, engine fallbacks and the Pareto front.

use std::fmt::Write as _;

use crate::report::schema::{ModelResult, Report};
use crate::units;

use super::power;
use super::{
    accuracy_pct, budget_label, cross_model, engine_cell, fallback_lines, latencies, machine_line,
    ms, num, peak_share, peak_stale_note, pipeline_line, ratio, settings_line, startup_line,
    sweep_rows, target_lines, verdict_figures,
};
use crate::board;

/// Columns of the main table: header and whether the column is numeric (right-aligned).
const COLUMNS: [(&str, bool); 13] = [
    ("model", false),
    ("engine", false),
    ("params", true),
    ("MACs", true),
    ("median ms", true),
    ("p90 ms", true),
    ("p99 ms", true),
    ("images/s", true),
    ("peak RSS", true),
    ("growth", true),
    ("GFLOP/s", true),
    ("% peak", true),
    ("accuracy", true),
];

/// Render the whole report as aligned text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let n = r.models.len();
    let _ = writeln!(
        out,
        "edgebench {} — {n} model{} (edgebench {})",
        r.command,
        if n == 1 { "" } else { "s" },
        r.edgebench_version
    );
    let _ = writeln!(out, "machine:  {}", machine_line(&r.machine));
    if let Some(n) = peak_stale_note(r) {
        let _ = writeln!(out, "note:     {n}");
    }
    let _ = writeln!(out, "settings: {}", settings_line(&r.settings));
    if let Some(l) = power::status_line(r) {
        let _ = writeln!(out, "{l}");
    }
    for l in target_lines(r) {
        let _ = writeln!(out, "{l}");
    }
    out.push('\n');
    if r.models.is_empty() {
        out.push_str("no models\n");
        return out;
    }

    let show_accuracy = r.models.iter().any(|m| m.accuracy.is_some());
    let show_power = r.models.iter().any(|m| m.power.is_some());
    let mut columns: Vec<(String, bool)> = COLUMNS
        .iter()
        .filter(|(h, _)| show_accuracy || *h != "accuracy")
        .map(|(h, right)| match *h {
            "images/s" => (format!("images/s @{}", batch_label(r)), *right),
            _ => (h.to_string(), *right),
        })
        .collect();
    if show_power {
        // On a Jetson: board power and energy beside the latency figures.
        columns.push(("avg W".into(), true));
        columns.push(("mJ/image".into(), true));
    }
    let rows: Vec<Vec<String>> = r
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut row = model_row(r, i, m, show_accuracy);
            if show_power {
                let p = m.power.as_ref();
                row.push(
                    p.and_then(|p| p.total_avg_mw)
                        .map_or("-".into(), |mw| format!("{:.2}", mw / 1000.0)),
                );
                // Offline's figure when it ran (the efficient way to run), else batch 1's.
                let mj = power::energy_cell(p, "offline")
                    .or_else(|| power::energy_cell(p, "single_stream"));
                row.push(mj.map_or("-".into(), num));
            }
            row
        })
        .collect();
    out.push_str(&grid(&columns, &rows));

    if n > 1 {
        let _ = writeln!(out, "\nagainst {} (×1 = same):", r.models[0].name);
        let cols: Vec<(String, bool)> = [
            "model",
            "p90 latency",
            "throughput",
            "peak RSS",
            "MACs",
            "params",
            "file size",
        ]
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_string(), i > 0))
        .collect();
        let rows: Vec<Vec<String>> = r
            .models
            .iter()
            .map(|m| {
                let q = m.ratios.unwrap_or_default();
                vec![
                    m.name.clone(),
                    ratio(q.p90_latency),
                    ratio(q.throughput),
                    ratio(q.peak_rss),
                    ratio(q.macs),
                    ratio(q.params),
                    ratio(q.file_bytes),
                ]
            })
            .collect();
        out.push_str(&grid(&cols, &rows));
    }

    if let Some(t) = &r.target {
        let _ = writeln!(out, "\nverdicts against {}:", t.name);
        let cols: Vec<(String, bool)> = ["model", "budget", "measured / limit", "verdict"]
            .iter()
            .map(|h| (h.to_string(), false))
            .collect();
        let mut rows = Vec::new();
        for m in &r.models {
            if m.verdicts.is_empty() {
                rows.push(vec![
                    m.name.clone(),
                    "-".into(),
                    "-".into(),
                    "no verdicts".into(),
                ]);
            }
            for (k, v) in m.verdicts.iter().enumerate() {
                let name = if k == 0 {
                    m.name.clone()
                } else {
                    String::new()
                };
                rows.push(vec![
                    name,
                    budget_label(v),
                    verdict_figures(v),
                    board::describe(v),
                ]);
            }
        }
        out.push_str(&grid(&cols, &rows));
    }

    let fallbacks = fallback_lines(r);
    if !fallbacks.is_empty() {
        out.push_str("\nengine fallbacks:\n");
        for (m, f) in fallbacks {
            let _ = writeln!(out, "  {m}: {f}");
        }
    }
    out.push_str("\nstart-up and memory:\n");
    let width = r
        .models
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(0);
    for m in &r.models {
        let _ = writeln!(out, "  {:width$}  {}", m.name, startup_line(m));
    }
    let ran: Vec<_> = r
        .models
        .iter()
        .filter_map(|m| {
            let groups = crate::report::compute_ran_as(m.profile.as_deref()?);
            (!groups.is_empty()).then(|| (m, groups.join("; ")))
        })
        .collect();
    if !ran.is_empty() {
        out.push_str("\nconvolutions and matrix products ran as (per-node profile):\n");
        for (m, groups) in ran {
            let _ = writeln!(out, "  {:width$}  {groups}", m.name);
        }
    }
    if r.models.iter().any(|m| m.power.is_some()) {
        out.push_str("\npower (tegrastats, during the timed runs):\n");
        for m in &r.models {
            let Some(p) = &m.power else { continue };
            let pad = " ".repeat(width);
            let _ = writeln!(out, "  {:width$}  {}", m.name, power::power_line(p));
            let energy = power::energy_line(p);
            if !energy.is_empty() {
                let _ = writeln!(out, "  {pad}  energy: {energy}");
            }
            if !p.rails.is_empty() {
                let _ = writeln!(out, "  {pad}  rails avg / peak: {}", power::rails_line(p));
            }
        }
    }
    for m in &r.models {
        if let Some(p) = &m.pipeline {
            let _ = writeln!(
                out,
                "\n{}: input pipeline ({}):\n  {}",
                m.name,
                p.data,
                pipeline_line(m, p)
            );
        }
    }
    for m in &r.models {
        if let Some(s) = &m.batch_sweep {
            let _ = writeln!(
                out,
                "\n{}: batch sweep, batch {} chosen ({}):",
                m.name, s.chosen, s.reason
            );
            let cols: Vec<(String, bool)> = ["batch", "images/s", "peak RSS", "fits"]
                .iter()
                .map(|h| (h.to_string(), true))
                .collect();
            let rows: Vec<Vec<String>> = sweep_rows(s).into_iter().map(Vec::from).collect();
            out.push_str(&grid(&cols, &rows));
        }
    }
    if n > 1 {
        let _ = writeln!(
            out,
            "\n* Pareto front ({}): {}",
            cross_model::pareto_axes(&r.models),
            r.pareto
                .iter()
                .filter_map(|&i| r.models.get(i).map(|m| m.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

/// The Offline batch shown in the throughput header (the settings' batch, or `N` when
/// models ran at different batches).
fn batch_label(r: &Report) -> String {
    let mut batches = r
        .models
        .iter()
        .filter_map(|m| m.offline.as_ref().map(|o| o.batch));
    match batches.next() {
        Some(b) if batches.all(|x| x == b) => b.to_string(),
        Some(_) => "batch".into(),
        None if r.settings.batch == 0 => "auto".into(),
        None => r.settings.batch.to_string(),
    }
}

fn model_row(r: &Report, i: usize, m: &ModelResult, show_accuracy: bool) -> Vec<String> {
    let mark = if r.models.len() > 1 && r.pareto.contains(&i) {
        " *"
    } else {
        ""
    };
    let (median, p90, p99) = match latencies(m) {
        Some((a, b, c)) => (ms(a), ms(b), ms(c)),
        None => ("-".into(), "-".into(), "-".into()),
    };
    let ips = m
        .offline
        .as_ref()
        .map_or("-".into(), |o| num(o.throughput_ips));
    let mut row = vec![
        format!("{}{mark}", m.name),
        engine_cell(m),
        units::count(m.params),
        units::count(m.macs_per_image),
        median,
        p90,
        p99,
        ips,
        bytes_or_dash(m.memory.peak_rss_bytes),
        bytes_or_dash(m.memory.growth_bytes),
        if m.compute.gflops > 0.0 {
            num(m.compute.gflops)
        } else {
            "-".into()
        },
        peak_share(m.compute.share_of_peak),
    ];
    if show_accuracy {
        row.push(accuracy_pct(m.accuracy));
    }
    row
}

fn bytes_or_dash(b: u64) -> String {
    if b == 0 { "-".into() } else { units::bytes(b) }
}

/// Aligned columns with a dashed rule under the header.
pub(crate) fn grid(columns: &[(String, bool)], rows: &[Vec<String>]) -> String {
    let head: Vec<&str> = columns.iter().map(|(h, _)| h.as_str()).collect();
    let right: Vec<bool> = columns.iter().map(|(_, r)| *r).collect();
    units::columns(&head, &right, rows, units::Rule::PerColumn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn table_has_rows_verdicts_fallbacks_and_the_front() {
        let text = render(&fixture::report());
        assert!(text.contains("machine:  AMD EPYC"), "{text}");
        assert!(text.contains("GEMM peak 95.0 GFLOP/s"), "{text}");
        assert!(text.contains("chosen by --target"), "{text}");
        assert!(text.contains("not on the board"), "{text}");
        assert!(text.contains("images/s @8"), "{text}");
        assert!(text.contains("heavy ") && text.contains("lean *"), "{text}");
        let line_with = |a: &str, b: &str| text.lines().any(|l| l.contains(a) && l.contains(b));
        assert!(line_with("heavy  memory", "612 / 2048 MiB"), "{text}");
        assert!(
            line_with("p90 latency  68.4 / 33.3 ms", "over by 105%"),
            "{text}"
        );
        assert!(
            line_with("throughput   17.6 / 30 images/s", "below by 41%"),
            "{text}"
        );
        assert!(line_with("148 / 2048 MiB", "fits (93% headroom)"), "{text}");
        assert!(text.contains("heavy: tensorrt: not available"), "{text}");
        assert!(
            text.contains("* Pareto front (p90 latency × peak RSS): lean"),
            "{text}"
        );
        assert!(text.contains("against heavy"), "{text}");
        assert!(
            text.contains(
                "heavy  file 5.4 MiB (fp32), input x/255, nchw, session init 40.0 ms, first inference 137 ms, arena: not exposed"
            ),
            "{text}"
        );
        assert!(
            text.contains("lean: batch sweep, batch 8 chosen (smallest batch"),
            "{text}"
        );
        assert!(text.contains("8 ★"), "{text}");
        // Every line of a grid has the same width as its header rule, or less.
        assert!(
            !text.contains("accuracy"),
            "no accuracy column without accuracy"
        );
    }

    #[test]
    fn profiled_models_say_what_their_convolutions_ran_as() {
        let mut r = fixture::report();
        let text = render(&r);
        assert!(
            !text.contains("ran as"),
            "the fixture's nodes name no provider: {text}"
        );
        let profile = r.models[1].profile.get_or_insert_with(Vec::new);
        profile.clear();
        for (op, ms, precision) in [
            ("Conv", 3.0, "fp32"),
            ("Conv", 1.0, "fp32"),
            ("Relu", 1.0, "fp32"),
        ] {
            profile.push(crate::report::schema::NodeTime {
                name: op.into(),
                op: op.into(),
                mean_ms: ms,
                provider: Some("CUDAExecutionProvider".into()),
                precision: Some(precision.into()),
                ..Default::default()
            });
        }
        let text = render(&r);
        assert!(
            text.contains(
                "convolutions and matrix products ran as (per-node profile):\n  lean   CUDAExecutionProvider fp32: 2 nodes, 80.0 % of node time\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn no_target_and_no_scenarios() {
        let mut r = fixture::report();
        r.target = None;
        r.models.truncate(1);
        r.models[0].single_stream = None;
        r.models[0].offline = None;
        r.models[0].accuracy = Some(0.912);
        r.settings.batch = 0;
        let text = render(&r);
        assert!(text.contains("target: none"), "{text}");
        assert!(!text.contains("verdicts against"), "{text}");
        assert!(text.contains("91.2%"), "{text}");
        assert!(
            text.contains("batch auto") && text.contains("images/s @auto"),
            "{text}"
        );
        assert!(!text.contains("Pareto"), "{text}");
    }
}
