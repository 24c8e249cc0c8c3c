//! Markdown: the header as a list, a GitHub table of the models, the verdicts as a
//! second table, fallbacks and the Pareto front. Cells escape `|` so a model name cannot
//! break the table.

use std::fmt::Write as _;

use crate::board;
use crate::report::schema::Report;
use crate::units;

use super::power;
use super::{
    accuracy_pct, cross_model, engine_cell, fallback_lines, latencies, machine_line, ms, num,
    peak_share, peak_stale_note, pipeline_line, ratio, settings_line, sweep_rows, target_lines,
};

/// Render the report as GitHub-flavoured Markdown.
pub fn render(r: &Report) -> String {
    let mut out = format!("## edgebench {}\n\n", cell(&r.command));
    let _ = writeln!(out, "- machine: {}", cell(&machine_line(&r.machine)));
    if let Some(n) = peak_stale_note(r) {
        let _ = writeln!(out, "- note: {}", cell(&n));
    }
    let _ = writeln!(out, "- settings: {}", cell(&settings_line(&r.settings)));
    if let Some(l) = power::status_line(r) {
        let _ = writeln!(out, "- {}", cell(&l));
    }
    for l in target_lines(r) {
        let _ = writeln!(out, "- {}", cell(&l));
    }
    out.push('\n');
    if r.models.is_empty() {
        out.push_str("No models.\n");
        return out;
    }
    let multi = r.models.len() > 1;
    let accuracy = r.models.iter().any(|m| m.accuracy.is_some());
    out.push_str(
        "| model | engine | params | MACs | median ms | p90 ms | p99 ms | images/s | peak RSS | GFLOP/s | % of peak |",
    );
    out.push_str(if accuracy { " accuracy |" } else { "" });
    out.push_str(if multi { " p90 × | RSS × |\n" } else { "\n" });
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    out.push_str(if accuracy { "--:|" } else { "" });
    out.push_str(if multi { "--:|--:|\n" } else { "\n" });
    for (i, m) in r.models.iter().enumerate() {
        let name = if multi && r.pareto.contains(&i) {
            format!("**{}** ★", cell(&m.name))
        } else {
            cell(&m.name)
        };
        let (median, p90, p99) = latencies(m)
            .map(|(a, b, c)| (ms(a), ms(b), ms(c)))
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        let ips = m.offline.as_ref().map_or("-".into(), |o| {
            format!("{} @{}", num(o.throughput_ips), o.batch)
        });
        let _ = write!(
            out,
            "| {name} | {} | {} | {} | {median} | {p90} | {p99} | {ips} | {} | {} | {} |",
            cell(&engine_cell(m)),
            units::count(m.params),
            units::count(m.macs_per_image),
            units::bytes(m.memory.peak_rss_bytes),
            num(m.compute.gflops),
            peak_share(m.compute.share_of_peak),
        );
        if accuracy {
            let a = accuracy_pct(m.accuracy);
            let _ = write!(out, " {a} |");
        }
        if multi {
            let q = m.ratios.unwrap_or_default();
            let _ = write!(out, " {} | {} |", ratio(q.p90_latency), ratio(q.peak_rss));
        }
        out.push('\n');
    }
    if multi {
        let _ = writeln!(
            out,
            "\n★ Pareto front ({}); ratios are against {}.",
            cross_model::pareto_axes(&r.models),
            cell(&r.models[0].name)
        );
    }
    if let Some(t) = &r.target {
        let _ = writeln!(out, "\n### Verdicts against {}\n", cell(&t.name));
        out.push_str("| model | memory | p90 latency | throughput |\n|---|---|---|---|\n");
        for m in &r.models {
            let v = |name: &str| {
                m.verdicts
                    .iter()
                    .find(|v| v.budget == name)
                    .map_or("-".into(), |v| cell(&board::describe(v)))
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&m.name),
                v("memory"),
                v("p90_latency"),
                v("throughput")
            );
        }
    }
    power_table(&mut out, r);
    for m in &r.models {
        let Some(p) = &m.pipeline else { continue };
        let _ = writeln!(
            out,
            "\n### Input pipeline: {}\n\n{}: {}.",
            cell(&m.name),
            cell(&p.data),
            cell(&pipeline_line(m, p))
        );
    }
    for m in &r.models {
        let Some(s) = &m.batch_sweep else { continue };
        let _ = writeln!(
            out,
            "\n### Batch sweep: {}\n\nBatch {} chosen: {}.\n\n| batch | images/s | peak RSS | fits |\n|--:|--:|--:|--:|",
            cell(&m.name),
            s.chosen,
            cell(&s.reason)
        );
        for row in sweep_rows(s) {
            let _ = writeln!(out, "| {} | {} | {} | {} |", row[0], row[1], row[2], row[3]);
        }
    }
    let fallbacks: Vec<String> = fallback_lines(r)
        .into_iter()
        .map(|(m, f)| format!("- {}: {}", cell(m), cell(f)))
        .collect();
    if !fallbacks.is_empty() {
        let _ = writeln!(out, "\nEngine fallbacks:\n\n{}", fallbacks.join("\n"));
    }
    out
}

/// Power, loads, temperature and energy per model (tegrastats), with each model's rails.
fn power_table(out: &mut String, r: &Report) {
    if !r.models.iter().any(|m| m.power.is_some()) {
        return;
    }
    out.push_str(
        "\n### Power (tegrastats, during the timed runs)\n\n\
         | model | power avg W | power peak W | source | GPU % avg / peak | EMC % avg | RAM peak MiB | hottest °C | mJ/inference single-stream | mJ/inference offline |\n\
         |---|--:|--:|---|--:|--:|--:|--:|--:|--:|\n",
    );
    let w = |v: Option<f64>| v.map_or("-".into(), |mw| format!("{:.2}", mw / 1000.0));
    let f = |v: Option<f64>| v.map_or("-".into(), num);
    for m in &r.models {
        let Some(p) = &m.power else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&m.name),
            w(p.total_avg_mw),
            w(p.total_peak_mw),
            cell(&p.total_source),
            p.gpu_load_pct
                .map_or("-".into(), |g| format!("{:.0} / {:.0}", g.avg, g.peak)),
            p.emc_load_pct
                .map_or("-".into(), |e| format!("{:.0}", e.avg)),
            p.ram_used_mib
                .map_or("-".into(), |r| format!("{:.0}", r.peak)),
            p.max_temp_c.map_or("-".into(), |t| format!("{t:.1}")),
            f(power::energy_cell(Some(p), "single_stream")),
            f(power::energy_cell(Some(p), "offline")),
        );
    }
    out.push('\n');
    for m in &r.models {
        let Some(p) = &m.power else { continue };
        let _ = writeln!(
            out,
            "- {}: {}; rails avg / peak: {}",
            cell(&m.name),
            cell(&power::power_line(p)),
            cell(&power::rails_line(p))
        );
    }
}

/// One table cell: `|` escaped, line breaks flattened.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn github_table_with_verdicts() {
        let text = render(&fixture::report());
        assert!(text.starts_with("## edgebench compare\n"), "{text}");
        assert!(text.contains("| model | engine | params |"), "{text}");
        assert!(
            text.contains("| heavy | ort/cpu | 7.26 M | 2.31 G | "),
            "{text}"
        );
        assert!(text.contains("| **lean** ★ | ort/cpu |"), "{text}");
        assert!(
            text.contains("### Verdicts against jetson-orin-nano"),
            "{text}"
        );
        assert!(
            text.contains("| heavy | fits (70% headroom) | over by 105% | below by 41% |"),
            "{text}"
        );
        assert!(text.contains("- heavy: cuda: libcudart"), "{text}");
        assert!(text.contains("### Batch sweep: lean"), "{text}");
        assert!(text.contains("| 8 ★ | 134 | 148.0 MiB | yes |"), "{text}");
        assert!(!text.contains("accuracy"), "{text}");
        // Every table row has as many cells as its header.
        for table in text.split("\n\n").filter(|b| b.starts_with('|')) {
            let counts: Vec<usize> = table
                .lines()
                .map(|l| l.matches('|').count() - l.matches("\\|").count())
                .collect();
            assert!(counts.windows(2).all(|w| w[0] == w[1]), "{table}");
        }
    }

    #[test]
    fn pipes_in_names_are_escaped() {
        let mut r = fixture::report();
        r.models[1].name = "a|b".into();
        r.models[1].accuracy = Some(0.5);
        let text = render(&r);
        assert!(text.contains("**a\\|b** ★"), "{text}");
        assert!(
            text.contains("| accuracy |") && text.contains("| 50.0% |"),
            "{text}"
        );
    }
}
