//! What a finished search shows: every candidate with its measured figures, training
//! and held-out accuracy, the Pareto front (accuracy × p90 latency × peak memory), the
//! chosen model; as a terminal table, JSON (`shrink.json`) and a self-contained HTML
//! page with an accuracy-against-latency chart (`shrink.html`).

use std::fmt::Write as _;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use super::ShrinkConfig;
use super::schedule::Schedule;
use super::space::{Precision, Space};
use super::state::{State, TrainPlan};
use crate::error::Result;
use crate::report::html::{CSS, esc};
use crate::report::plots::{FONT, PALETTE, TEXT, short, svg};
use crate::report::schema::TargetBudget;
use crate::units;

/// The JSON's `schema`.
pub const SCHEMA: &str = "edgebench-shrink";

/// The whole result of a search.
#[derive(Debug, Clone, Serialize)]
pub struct ShrinkReport {
    pub schema: String,
    pub schema_version: u32,
    pub edgebench_version: String,
    pub base: String,
    pub target: TargetBudget,
    pub space: Space,
    /// The settings the search ran with.
    pub settings: Vec<(String, String)>,
    /// Where the candidates were measured (machine and engine).
    pub measured_on: String,
    pub schedule: Option<Schedule>,
    /// Every arch in every precision.
    pub candidates: Vec<CandidateRow>,
    /// Indices into `candidates`: the points no other candidate beats in accuracy,
    /// p90 latency and peak memory at once (among those that fit, with an accuracy).
    pub front: Vec<usize>,
    pub chosen: Option<Chosen>,
    /// Why the search ended.
    pub ended: String,
    /// Seconds of search, earlier interrupted runs included.
    pub wall_s: f64,
}

/// One candidate.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateRow {
    /// Arch name and precision suffix (`lean-w0.5-64@int8`).
    pub name: String,
    pub arch: String,
    pub width: f64,
    pub depth: i32,
    pub size: usize,
    pub precision: Precision,
    pub p90_ms: Option<f64>,
    pub throughput_ips: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub file_bytes: Option<u64>,
    pub fits: bool,
    pub over: Vec<String>,
    pub train_plan: Option<TrainPlan>,
    /// Images the arch trained in the search.
    pub images_trained: u64,
    /// Held-out accuracy (0–1): the trainer's for fp32, the engine's (final comparison)
    /// for the chosen arch's other precisions; `None` where not evaluated.
    pub accuracy: Option<f64>,
    /// What the candidate's search ended with: `chosen`, `finalist`, or why it left.
    pub status: String,
}

impl CandidateRow {
    /// The row's cells, as the table and the HTML page show them: name, p90 ms,
    /// images/s, peak, budget, training step, images, held-out accuracy, status.
    fn cells(&self) -> [String; 9] {
        [
            self.name.clone(),
            self.p90_ms.map_or("-".into(), |v| format!("{v:.2}")),
            self.throughput_ips
                .map_or("-".into(), |v| format!("{v:.0}")),
            self.peak_rss_bytes.map_or("-".into(), units::bytes),
            if self.fits { "fits" } else { "over" }.into(),
            self.train_plan
                .as_ref()
                .map_or("-".into(), |p| units::bytes(p.bytes)),
            if self.images_trained > 0 {
                units::thousands(self.images_trained)
            } else {
                "-".into()
            },
            self.accuracy
                .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            self.status.clone(),
        ]
    }
}

/// The chosen model.
#[derive(Debug, Clone, Serialize)]
pub struct Chosen {
    pub name: String,
    /// Its model file, in the output folder.
    pub model_file: String,
    pub accuracy: Option<f64>,
    pub p90_ms: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub images_trained: u64,
}

impl ShrinkReport {
    /// The report of the search in `st`.
    pub fn new(cfg: &ShrinkConfig, st: &State, wall_s: f64) -> ShrinkReport {
        let done = st.done.as_ref();
        let mut rows = Vec::new();
        let mut measured_on = String::new();
        for a in &st.arches {
            let images = a.rungs.last().map_or(0, |r| r.images);
            let fp32_acc = a.rungs.last().map(|r| r.val_acc);
            let is_winner = done.is_some_and(|d| d.arch == a.name);
            for m in a.measured.iter().flatten() {
                if measured_on.is_empty() {
                    measured_on = m.measured_on.clone();
                }
                let engine_acc = done
                    .filter(|_| is_winner)
                    .and_then(|d| d.top1.iter().find(|(p, _)| *p == m.precision))
                    .and_then(|(_, a)| *a);
                let accuracy = match m.precision {
                    Precision::Fp32 => fp32_acc,
                    _ => engine_acc,
                };
                let status = if is_winner && done.is_some_and(|d| d.precision == m.precision) {
                    "chosen".to_string()
                } else if !m.fits {
                    format!("over: {}", m.over.join("; "))
                } else if let Some(d) = &a.dropped {
                    d.clone()
                } else if is_winner {
                    "winner's other precision".into()
                } else if a.rungs.is_empty() {
                    "not trained".into()
                } else {
                    "finalist".into()
                };
                rows.push(CandidateRow {
                    name: format!("{}{}", a.name, m.precision.suffix()),
                    arch: a.name.clone(),
                    width: a.width,
                    depth: a.depth,
                    size: a.size,
                    precision: m.precision,
                    p90_ms: m.p90_ms,
                    throughput_ips: m.throughput_ips,
                    peak_rss_bytes: Some(m.peak_rss_bytes),
                    file_bytes: m.file_bytes,
                    fits: m.fits,
                    over: m.over.clone(),
                    train_plan: a.train_plan.clone(),
                    images_trained: images,
                    accuracy,
                    status,
                });
            }
        }
        let front = front(&rows);
        let chosen = done.and_then(|d| {
            let name = format!("{}{}", d.arch, d.precision.suffix());
            let r = rows.iter().find(|r| r.name == name)?;
            Some(Chosen {
                name,
                model_file: d.model_file.clone(),
                accuracy: r.accuracy,
                p90_ms: r.p90_ms,
                peak_rss_bytes: r.peak_rss_bytes,
                images_trained: r.images_trained,
            })
        });
        ShrinkReport {
            schema: SCHEMA.into(),
            schema_version: 1,
            edgebench_version: env!("CARGO_PKG_VERSION").into(),
            base: cfg.base.name.clone(),
            target: cfg.budget.clone(),
            space: cfg.space.clone(),
            settings: st.settings.clone(),
            measured_on,
            schedule: st.schedule.clone(),
            candidates: rows,
            front,
            chosen,
            ended: done.map_or(String::new(), |d| d.ended.clone()),
            wall_s,
        }
    }

    /// The terminal table and the summary lines.
    pub fn text(&self) -> String {
        let head = [
            "candidate",
            "p90 ms",
            "img/s",
            "peak",
            "budget",
            "train step",
            "images",
            "held-out",
            "status",
        ];
        let right = [false, true, true, true, false, true, true, true, false];
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            let mut cells = c.cells();
            if self.front.contains(&i) {
                cells[0].push_str(" *");
            }
            rows.push(cells.to_vec());
        }
        let mut t = String::new();
        let _ = writeln!(t, "target {}", super::budget_line(&self.target));
        let _ = writeln!(t, "measured on {}", self.measured_on);
        t.push_str(&units::columns(
            &head,
            &right,
            &rows,
            units::Rule::PerColumn,
        ));
        let _ = writeln!(
            t,
            "* the Pareto front: no other candidate that fits is more accurate, faster and smaller at once"
        );
        match &self.chosen {
            Some(c) => {
                let _ = writeln!(
                    t,
                    "chosen: {} — held-out accuracy {}, p90 {} ms, peak {}, trained on {} images; model {}",
                    c.name,
                    c.accuracy
                        .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
                    c.p90_ms.map_or("-".into(), |v| format!("{v:.2}")),
                    c.peak_rss_bytes.map_or("-".into(), units::bytes),
                    units::thousands(c.images_trained),
                    c.model_file
                );
            }
            None => t.push_str("chosen: none\n"),
        }
        let _ = writeln!(
            t,
            "search ended: {}; {} in all",
            self.ended,
            units::duration(self.wall_s)
        );
        t
    }

    /// Write `shrink.json` and `shrink.html` into `out` (atomically), and the final
    /// comparison's `final-compare.html` when there is one; the paths written, in order.
    pub fn write(
        &self,
        out: &std::path::Path,
        compared: Option<&crate::report::schema::Report>,
    ) -> Result<Vec<std::path::PathBuf>> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| crate::error::Error::json("the report", e))?;
        let mut written = Vec::new();
        for (name, text) in [("shrink.json", json), ("shrink.html", self.html()?)] {
            let p = out.join(name);
            crate::fsutil::write_atomic(&p, text.as_bytes())?;
            written.push(p);
        }
        if let Some(c) = compared {
            let p = out.join("final-compare.html");
            crate::report::write(c, crate::report::Format::Html, &p)?;
            written.push(p);
        }
        Ok(written)
    }

    /// The HTML page.
    pub fn html(&self) -> Result<String> {
        let title = format!("edgebench shrink — {} for {}", self.base, self.target.name);
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{t}</title><style>{CSS}</style></head><body>\n<h1>{t}</h1>\n<ul class=\"meta\">",
            t = esc(&title)
        );
        let mut meta = vec![
            ("target", super::budget_line(&self.target)),
            ("measured on", self.measured_on.clone()),
            ("space", self.space.describe()),
        ];
        if let Some(s) = &self.schedule {
            meta.push((
                "schedule",
                format!(
                    "candidates per rung {:?}, optimizer steps {:?} ({})",
                    s.counts, s.steps, s.basis
                ),
            ));
        }
        meta.push((
            "ended",
            format!("{}; {} in all", self.ended, units::duration(self.wall_s)),
        ));
        if let Some(c) = &self.chosen {
            meta.push((
                "chosen",
                format!(
                    "{} ({}; held-out accuracy {}, p90 {} ms)",
                    c.name,
                    c.model_file,
                    c.accuracy
                        .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
                    c.p90_ms.map_or("-".into(), |v| format!("{v:.2}"))
                ),
            ));
        }
        for (k, v) in meta {
            let _ = write!(h, "<li><b>{}</b>{}</li>", esc(k), esc(&v));
        }
        h.push_str("</ul>\n");
        if let Some(chart) = self.chart()? {
            let _ = writeln!(
                h,
                "<h2>Accuracy against p90 latency</h2><figure><figcaption>Candidates that fit and have a held-out accuracy; the Pareto front is joined by a line, the chosen model ringed.</figcaption>{chart}</figure>"
            );
        }
        h.push_str("<h2>Candidates</h2><div class=\"scroll\"><table><tr><th class=\"l\">candidate</th><th>p90 ms</th><th>images/s</th><th>peak</th><th>budget</th><th>train step</th><th>images</th><th>held-out</th><th class=\"l\">status</th></tr>\n");
        for (i, c) in self.candidates.iter().enumerate() {
            let [name, p90, ips, peak, fits, step, images, acc, status] =
                c.cells().map(|t| esc(&t));
            let _ = writeln!(
                h,
                "<tr{}><td class=\"l\">{name}</td><td>{p90}</td><td>{ips}</td><td>{peak}</td><td class=\"{fits}\">{fits}</td><td>{step}</td><td>{images}</td><td>{acc}</td><td class=\"l\">{status}</td></tr>",
                if self.front.contains(&i) {
                    " class=\"front\""
                } else {
                    ""
                },
            );
        }
        h.push_str("</table></div>\n");
        let _ = write!(
            h,
            "<footer>edgebench {} · {SCHEMA} v{}</footer>\n</body></html>\n",
            esc(&self.edgebench_version),
            self.schema_version
        );
        Ok(h)
    }

    /// Accuracy (y) against p90 latency (x) of the candidates that fit and have both.
    fn chart(&self) -> Result<Option<String>> {
        let pts: Vec<(usize, &CandidateRow, f64, f64)> = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.fits)
            .filter_map(|(i, c)| Some((i, c, c.p90_ms?, 100.0 * c.accuracy?)))
            .collect();
        if pts.is_empty() {
            return Ok(None);
        }
        let x_hi = pts.iter().map(|p| p.2).fold(0.0, f64::max) * 1.15;
        let y_lo = pts.iter().map(|p| p.3).fold(100.0, f64::min);
        let y_lo = (y_lo - (100.0 - y_lo).max(1.0) * 0.3).max(0.0);
        let chosen = self.chosen.as_ref().map(|c| c.name.clone());
        let mut front: Vec<(f64, f64)> = pts
            .iter()
            .filter(|p| self.front.contains(&p.0))
            .map(|p| (p.2, p.3))
            .collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        let drawn = svg("accuracy vs latency", 1100, 460, |root| {
            let mut chart = ChartBuilder::on(root)
                .margin(16)
                .margin_right(24)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_hi, y_lo..100.5)?;
            chart
                .configure_mesh()
                .x_desc("p90 latency, ms")
                .y_desc("held-out accuracy, %")
                .label_style((FONT, 17))
                .axis_desc_style((FONT, 18))
                .light_line_style(RGBColor(238, 238, 238))
                .draw()?;
            if front.len() > 1 {
                chart.draw_series(std::iter::once(PathElement::new(
                    front.clone(),
                    PALETTE[0].stroke_width(2),
                )))?;
            }
            for (i, c, x, y) in &pts {
                let color = PALETTE[(c.precision as usize) % PALETTE.len()];
                chart.draw_series(std::iter::once(Circle::new((*x, *y), 6, color.filled())))?;
                if chosen.as_deref() == Some(c.name.as_str()) {
                    chart.draw_series(std::iter::once(Circle::new(
                        (*x, *y),
                        11,
                        RGBColor(200, 40, 40).stroke_width(2),
                    )))?;
                }
                if self.front.contains(i) || pts.len() <= 8 {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((*x, *y))
                            + Text::new(
                                short(&c.name, 22),
                                (10, 0),
                                (FONT, 15)
                                    .into_font()
                                    .color(&TEXT)
                                    .pos(Pos::new(HPos::Left, VPos::Center)),
                            ),
                    ))?;
                }
            }
            Ok(())
        })?;
        Ok(Some(drawn))
    }
}

/// Indices of the rows that fit, have an accuracy, and are not dominated (another at
/// least as accurate, as fast and as small, and better in one).
fn front(rows: &[CandidateRow]) -> Vec<usize> {
    let key = |r: &CandidateRow| -> Option<(f64, f64, f64)> {
        if !r.fits {
            return None;
        }
        Some((r.accuracy?, r.p90_ms?, r.peak_rss_bytes? as f64))
    };
    let pts: Vec<(usize, (f64, f64, f64))> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, key(r)?)))
        .collect();
    pts.iter()
        .filter(|(_, a)| {
            !pts.iter().any(|(_, b)| {
                b.0 >= a.0 && b.1 <= a.1 && b.2 <= a.2 && (b.0 > a.0 || b.1 < a.1 || b.2 < a.2)
            })
        })
        .map(|(i, _)| *i)
        .collect()
}
