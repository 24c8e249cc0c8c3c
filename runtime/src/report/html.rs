//! One self-contained HTML page: inline CSS, inline SVG charts (see [`super::plots`]),
//! no scripts and no external resources, so it can be mailed or attached to a CI run.
//! Every string that comes from the user or the machine is escaped.

use std::fmt::Write as _;

use crate::board;
use crate::report::schema::{Report, VerdictStatus};
use crate::units;

use super::plots::{self, PALETTE};
use super::power;
use super::{
    accuracy_pct, cross_model, engine_cell, fallback_lines, latencies, machine_line, ms, num,
    peak_share, peak_stale_note, pipeline_line, ratio, settings_line, startup_line, sweep_rows,
    target_lines, verdict_figures,
};
use crate::error::Result;

/// Nodes shown per model in the per-node chart.
const TOP_NODES: usize = 15;

pub(crate) const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1180px;padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
ul.meta{list-style:none;padding:0;margin:.4em 0;color:#444}ul.meta li{margin:.15em 0}ul.meta b{display:inline-block;min-width:6em;color:#222}
.note{color:#a15c00;font-weight:600}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f4f4f4;border-bottom:2px solid #ccc}td.l,th.l{text-align:left}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:-.05em}
.fits{color:#1a7f37}.over{color:#c62828;font-weight:600}.none{color:#888}
.front{font-weight:700}figure{margin:1em 0}figcaption{color:#555;font-size:.9em;margin-bottom:.3em}
svg{max-width:100%;height:auto}.scroll{overflow-x:auto}footer{margin-top:2em;color:#888;font-size:.85em}
";

/// Escape text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn swatch(i: usize) -> String {
    let c = PALETTE[i % PALETTE.len()];
    format!(
        "<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>",
        c.0, c.1, c.2
    )
}

/// Render the page.
pub fn render(r: &Report) -> Result<String> {
    let mut h = String::new();
    let names = r
        .models
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(" vs ");
    let title = if r.models.len() <= 3 && names.chars().count() <= 60 {
        format!("edgebench {} — {names}", r.command)
    } else {
        format!("edgebench {} — {} models", r.command, r.models.len())
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n<ul class=\"meta\">",
        esc(&title),
        esc(&title)
    );
    let _ = write!(
        h,
        "<li><b>machine</b>{}</li><li><b>settings</b>{}</li>",
        esc(&machine_line(&r.machine)),
        esc(&settings_line(&r.settings))
    );
    if let Some(n) = peak_stale_note(r) {
        let _ = write!(h, "<li class=\"note\">{}</li>", esc(&n));
    }
    if let Some(t) = &r.tegrastats {
        let _ = write!(h, "<li><b>tegrastats</b>{}</li>", esc(&t.note));
    }
    for l in target_lines(r) {
        let (key, rest) = l.split_once(": ").unwrap_or(("", l.as_str()));
        if key.is_empty() {
            let _ = write!(h, "<li class=\"note\">{}</li>", esc(rest));
        } else {
            let _ = write!(h, "<li><b>{}</b>{}</li>", esc(key), esc(rest));
        }
    }
    h.push_str("</ul>\n");
    models_table(&mut h, r);
    verdicts_table(&mut h, r);
    details(&mut h, r);
    charts(&mut h, r)?;
    let _ = write!(
        h,
        "<footer>edgebench {} · report schema {} v{} · created at Unix time {}</footer>\n</body></html>\n",
        esc(&r.edgebench_version),
        esc(&r.schema),
        r.schema_version,
        r.created_unix_s
    );
    Ok(h)
}

fn models_table(h: &mut String, r: &Report) {
    h.push_str("<h2>Models</h2>\n");
    if r.models.is_empty() {
        h.push_str("<p>No models.</p>\n");
        return;
    }
    let multi = r.models.len() > 1;
    let accuracy = r.models.iter().any(|m| m.accuracy.is_some());
    h.push_str(
        "<div class=\"scroll\"><table><tr><th class=\"l\">model</th><th class=\"l\">engine</th><th>params</th><th>MACs</th>\
         <th>median ms</th><th>p90 ms</th><th>p99 ms</th><th>images/s</th><th>peak RSS</th>\
         <th>growth</th><th>GFLOP/s</th><th>% of peak</th>",
    );
    if accuracy {
        h.push_str("<th>accuracy</th>");
    }
    h.push_str("</tr>\n");
    for (i, m) in r.models.iter().enumerate() {
        let front = multi && r.pareto.contains(&i);
        let (median, p90, p99) = latencies(m)
            .map(|(a, b, c)| (ms(a), ms(b), ms(c)))
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        let ips = m.offline.as_ref().map_or("-".into(), |o| {
            format!("{} @{}", num(o.throughput_ips), o.batch)
        });
        let _ = write!(
            h,
            "<tr><td class=\"l{}\">{}{}{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
             <td>{median}</td><td>{p90}</td><td>{p99}</td><td>{ips}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td>",
            if front { " front" } else { "" },
            swatch(i),
            esc(&m.name),
            if front { " ★" } else { "" },
            esc(&engine_cell(m)),
            units::count(m.params),
            units::count(m.macs_per_image),
            units::bytes(m.memory.peak_rss_bytes),
            units::bytes(m.memory.growth_bytes),
            num(m.compute.gflops),
            peak_share(m.compute.share_of_peak),
        );
        if accuracy {
            let a = accuracy_pct(m.accuracy);
            let _ = write!(h, "<td>{a}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table></div>\n");
    if multi {
        let _ = writeln!(
            h,
            "<p>★ Pareto front ({}).</p>",
            esc(cross_model::pareto_axes(&r.models))
        );
    }
    let fallbacks: Vec<String> = fallback_lines(r)
        .into_iter()
        .map(|(m, f)| format!("<li>{}: {}</li>", esc(m), esc(f)))
        .collect();
    if !fallbacks.is_empty() {
        let _ = writeln!(h, "<p>Engine fallbacks:</p><ul>{}</ul>", fallbacks.concat());
    }
    if multi {
        let _ = writeln!(
            h,
            "<h2>Against {} (×1 = same)</h2>\n<div class=\"scroll\"><table>\
             <tr><th class=\"l\">model</th><th>p90 latency</th><th>throughput</th>\
             <th>peak RSS</th><th>MACs</th><th>params</th></tr>",
            esc(&r.models[0].name)
        );
        for (i, m) in r.models.iter().enumerate() {
            let q = m.ratios.unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                swatch(i),
                esc(&m.name),
                ratio(q.p90_latency),
                ratio(q.throughput),
                ratio(q.peak_rss),
                ratio(q.macs),
                ratio(q.params)
            );
        }
        h.push_str("</table></div>\n");
    }
}

/// Start-up times, arena, and the batch sweeps.
fn details(h: &mut String, r: &Report) {
    if r.models.is_empty() {
        return;
    }
    h.push_str("<h2>Start-up and memory</h2>\n<ul>");
    for (i, m) in r.models.iter().enumerate() {
        let _ = write!(
            h,
            "<li>{}{}: {}</li>",
            swatch(i),
            esc(&m.name),
            esc(&startup_line(m))
        );
    }
    h.push_str("</ul>\n");
    power_table(h, r);
    if r.models.iter().any(|m| m.pipeline.is_some()) {
        h.push_str("<h2>Input pipeline (real images through the loader)</h2>\n<ul>");
        for (i, m) in r.models.iter().enumerate() {
            let Some(p) = &m.pipeline else { continue };
            let _ = write!(
                h,
                "<li>{}{} on {}: {}</li>",
                swatch(i),
                esc(&m.name),
                esc(&p.data),
                esc(&pipeline_line(m, p))
            );
        }
        h.push_str("</ul>\n");
    }
    for (i, m) in r.models.iter().enumerate() {
        let Some(s) = &m.batch_sweep else { continue };
        let _ = write!(
            h,
            "<h2>Batch sweep: {}{}</h2>\n<p>Batch {} chosen: {}.</p>\n<table><tr><th>batch</th>\
             <th>images/s</th><th>peak RSS</th><th>fits</th></tr>",
            swatch(i),
            esc(&m.name),
            s.chosen,
            esc(&s.reason)
        );
        for row in sweep_rows(s) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                row[0], row[1], row[2], row[3]
            );
        }
        h.push_str("</table>\n");
    }
}

/// Power, loads, temperature and energy per model (tegrastats).
fn power_table(h: &mut String, r: &Report) {
    if !r.models.iter().any(|m| m.power.is_some()) {
        return;
    }
    h.push_str(
        "<h2>Power (tegrastats, during the timed runs)</h2>\n<div class=\"scroll\"><table>\
         <tr><th class=\"l\">model</th><th>power avg</th><th>power peak</th><th class=\"l\">source</th>\
         <th>GPU % avg / peak</th><th>EMC % avg</th><th>RAM peak</th><th>hottest</th>\
         <th>mJ/inference single-stream</th><th>mJ/inference offline</th></tr>\n",
    );
    let w = |v: Option<f64>| v.map_or("-".into(), |mw| format!("{:.2} W", mw / 1000.0));
    let f = |v: Option<f64>| v.map_or("-".into(), num);
    for (i, m) in r.models.iter().enumerate() {
        let Some(p) = &m.power else { continue };
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            swatch(i),
            esc(&m.name),
            w(p.total_avg_mw),
            w(p.total_peak_mw),
            esc(&p.total_source),
            p.gpu_load_pct
                .map_or("-".into(), |g| format!("{:.0} / {:.0}", g.avg, g.peak)),
            p.emc_load_pct
                .map_or("-".into(), |e| format!("{:.0}", e.avg)),
            p.ram_used_mib
                .map_or("-".into(), |r| format!("{:.0} MiB", r.peak)),
            match (&p.max_temp_sensor, p.max_temp_c) {
                (Some(s), Some(t)) => format!("{t:.1} °C ({})", esc(s)),
                _ => "-".into(),
            },
            f(power::energy_cell(Some(p), "single_stream")),
            f(power::energy_cell(Some(p), "offline")),
        );
    }
    h.push_str("</table></div>\n<ul>");
    for (i, m) in r.models.iter().enumerate() {
        let Some(p) = &m.power else { continue };
        let _ = write!(
            h,
            "<li>{}{}: {}; rails avg / peak: {}</li>",
            swatch(i),
            esc(&m.name),
            esc(&power::power_line(p)),
            esc(&power::rails_line(p))
        );
    }
    h.push_str("</ul>\n");
}

fn verdicts_table(h: &mut String, r: &Report) {
    let Some(t) = &r.target else {
        return;
    };
    let _ = writeln!(
        h,
        "<h2>Verdicts against {}</h2>\n<table><tr><th class=\"l\">model</th>\
         <th class=\"l\">memory</th><th class=\"l\">p90 latency</th><th class=\"l\">throughput</th></tr>",
        esc(&t.name)
    );
    for (i, m) in r.models.iter().enumerate() {
        let _ = write!(h, "<tr><td class=\"l\">{}{}</td>", swatch(i), esc(&m.name));
        for budget in ["memory", "p90_latency", "throughput"] {
            match m.verdicts.iter().find(|v| v.budget == budget) {
                Some(v) => {
                    let class = match v.status {
                        VerdictStatus::Fits { .. } => "fits",
                        VerdictStatus::Over { .. } => "over",
                        _ => "none",
                    };
                    let figures = match verdict_figures(v) {
                        f if f.is_empty() => f,
                        f => format!(" — {f}"),
                    };
                    let _ = write!(
                        h,
                        "<td class=\"l {class}\">{}{}</td>",
                        esc(&board::describe(v)),
                        esc(&figures)
                    );
                }
                None => h.push_str("<td class=\"l none\">-</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

fn charts(h: &mut String, r: &Report) -> Result<()> {
    h.push_str("<h2>Latency distribution</h2>\n");
    match plots::latency_cdf(&r.models)? {
        Some(svg) => {
            let _ = writeln!(
                h,
                "<figure><figcaption>Cumulative share of batch-1 queries answered within a \
                 latency (SingleStream). Steeper is steadier; further left is faster.</figcaption>{svg}</figure>"
            );
        }
        None => h.push_str("<p class=\"none\">SingleStream was not run: no latencies.</p>\n"),
    }
    h.push_str("<h2>Latency against memory</h2>\n");
    match plots::latency_vs_memory(&r.models, r.target.as_ref())? {
        Some(svg) => {
            let budget = match &r.target {
                Some(t) => format!(
                    " Dashed lines: {}'s budgets; the shaded area fits both.",
                    esc(&t.name)
                ),
                None => String::new(),
            };
            let _ = writeln!(
                h,
                "<figure><figcaption>p90 batch-1 latency against the peak RSS of each model's \
                 process. Lower left is better.{budget}</figcaption>{svg}</figure>"
            );
        }
        None => {
            h.push_str("<p class=\"none\">No model has both a latency and a memory figure.</p>\n")
        }
    }
    let profiled: Vec<(usize, &crate::report::schema::ModelResult)> = r
        .models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.profile.as_ref().is_some_and(|p| !p.is_empty()))
        .collect();
    if !profiled.is_empty() {
        h.push_str("<h2>Time per node</h2>\n");
    }
    for (i, m) in profiled {
        let nodes = m.profile.as_deref().unwrap_or_default();
        if let Some(svg) = plots::node_bars(i, nodes, TOP_NODES)? {
            let _ = writeln!(
                h,
                "<figure><figcaption>{}{}: the {} longest of {} nodes (mean ms per inference, share of the summed node time)</figcaption>{svg}</figure>",
                swatch(i),
                esc(&m.name),
                nodes.len().min(TOP_NODES),
                nodes.len()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn self_contained_page_with_three_kinds_of_chart() {
        let page = render(&fixture::report()).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        // CDF, scatter, and one node chart per profiled model.
        assert_eq!(page.matches("<svg").count(), 4, "charts");
        assert!(page.contains("memory budget 2048 MiB"));
        assert!(page.contains("p90 budget 33.3 ms"));
        assert!(page.contains("\n/features/Conv_0\n</text>"));
        assert!(page.contains("/features/BatchNormalization_11\n"));
        assert!(page.contains("over by 105%"));
        assert!(page.contains("not on the board"));
        assert!(page.contains("Batch sweep: "));
        assert!(page.contains("first inference 137 ms"));
        assert!(!page.contains("<script"));
        for scheme in ["http://", "https://"] {
            for (at, _) in page.match_indices(scheme) {
                let before = &page[at.saturating_sub(7)..at];
                assert!(
                    before.starts_with("xmlns="),
                    "external reference at {at}: {}",
                    &page[at.saturating_sub(20)..(at + 40).min(page.len())]
                );
            }
        }
    }

    #[test]
    fn user_strings_are_escaped() {
        let mut r = fixture::report();
        r.models[0].name = "<script>alert(1)</script>".into();
        r.models[1].engine.fallbacks = vec!["cuda: <b>&</b>".into()];
        let page = render(&r).unwrap();
        assert!(!page.contains("<script"), "unescaped model name");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("cuda: &lt;b&gt;&amp;&lt;/b&gt;"));
    }

    #[test]
    fn missing_scenarios_give_notes_not_empty_charts() {
        let mut r = fixture::report();
        for m in &mut r.models {
            m.single_stream = None;
            m.profile = None;
        }
        let page = render(&r).unwrap();
        assert_eq!(page.matches("<svg").count(), 0);
        assert!(page.contains("SingleStream was not run"));
    }
}
