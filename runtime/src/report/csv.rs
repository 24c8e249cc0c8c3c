//! CSV: one row per model with a stable header (columns are only ever appended), raw
//! units (ms, bytes, images/s) and RFC 4180 quoting. Missing figures are empty cells.

use crate::report::schema::{ModelResult, Report, VerdictStatus};

/// The header, in order. Verdict columns hold `fits 12.3%` (headroom), `over 34.0%`
/// (excess; shortfall for throughput), `no_budget`, `not_measured`, or nothing without
/// a target.
pub const HEADER: [&str; 55] = [
    "model",
    "source",
    "engine",
    "provider",
    "engine_version",
    "input_shape",
    "params",
    "macs_per_image",
    "init_ms",
    "first_inference_ms",
    "latency_count",
    "latency_min_ms",
    "latency_mean_ms",
    "latency_median_ms",
    "latency_p90_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "latency_std_ms",
    "batch",
    "throughput_ips",
    "baseline_rss_bytes",
    "peak_rss_bytes",
    "growth_bytes",
    "arena_bytes",
    "gflops",
    "share_of_peak",
    "accuracy",
    "ratio_p90_latency",
    "ratio_throughput",
    "ratio_peak_rss",
    "verdict_memory",
    "verdict_p90_latency",
    "verdict_throughput",
    "pareto",
    "fallbacks",
    "loader_ips",
    "end_to_end_ips",
    "stall_fraction",
    "tegrastats_samples",
    "power_source",
    "power_avg_mw",
    "power_peak_mw",
    "gpu_load_avg_pct",
    "gpu_load_peak_pct",
    "emc_load_avg_pct",
    "ram_used_peak_mib",
    "max_temp_c",
    "energy_single_stream_mj",
    "energy_offline_mj",
    "tegrastats_implausible",
    "peak_note",
    "file_bytes",
    "precision",
    "top1_change_points",
];

/// Render every model as one CSV row under [`HEADER`].
pub fn render(r: &Report) -> String {
    let mut out = HEADER.join(",");
    out.push('\n');
    for (i, m) in r.models.iter().enumerate() {
        let cells = row(m, r.pareto.contains(&i));
        debug_assert_eq!(cells.len(), HEADER.len());
        out.push_str(&cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn row(m: &ModelResult, pareto: bool) -> Vec<String> {
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v}")
        } else {
            String::new()
        }
    };
    let opt = |v: Option<f64>| v.map(f).unwrap_or_default();
    let lat = m.single_stream.as_ref().map(|s| s.latency_ms);
    let l = |g: fn(&crate::report::schema::LatencyStats) -> f64| opt(lat.as_ref().map(g));
    let ratios = m.ratios.unwrap_or_default();
    let pw = m.power.as_ref();
    let verdict = |name: &str| {
        m.verdicts
            .iter()
            .find(|v| v.budget == name)
            .map(|v| match v.status {
                VerdictStatus::Fits { margin_pct } => format!("fits {margin_pct:.1}%"),
                VerdictStatus::Over { over_pct } => format!("over {over_pct:.1}%"),
                VerdictStatus::NoBudget => "no_budget".into(),
                VerdictStatus::NotMeasured => "not_measured".into(),
            })
            .unwrap_or_default()
    };
    vec![
        m.name.clone(),
        m.source.clone(),
        m.engine.engine.clone(),
        m.engine.provider.clone(),
        m.engine.version.clone(),
        m.input_shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x"),
        m.params.to_string(),
        m.macs_per_image.to_string(),
        f(m.init_ms),
        f(m.first_inference_ms),
        lat.map(|s| s.count.to_string()).unwrap_or_default(),
        l(|s| s.min),
        l(|s| s.mean),
        l(|s| s.median),
        l(|s| s.p90),
        l(|s| s.p95),
        l(|s| s.p99),
        l(|s| s.max),
        l(|s| s.std),
        m.offline
            .as_ref()
            .map(|o| o.batch.to_string())
            .unwrap_or_default(),
        opt(m.offline.as_ref().map(|o| o.throughput_ips)),
        m.memory.baseline_rss_bytes.to_string(),
        m.memory.peak_rss_bytes.to_string(),
        m.memory.growth_bytes.to_string(),
        m.memory
            .arena_bytes
            .map(|b| b.to_string())
            .unwrap_or_default(),
        f(m.compute.gflops),
        opt(m.compute.share_of_peak),
        opt(m.accuracy),
        opt(ratios.p90_latency),
        opt(ratios.throughput),
        opt(ratios.peak_rss),
        verdict("memory"),
        verdict("p90_latency"),
        verdict("throughput"),
        pareto.to_string(),
        m.engine.fallbacks.join("; "),
        opt(m.pipeline.as_ref().map(|p| p.loader_ips)),
        opt(m.pipeline.as_ref().map(|p| p.end_to_end_ips)),
        opt(m.pipeline.as_ref().map(|p| p.stall_fraction)),
        pw.map(|p| p.samples.to_string()).unwrap_or_default(),
        pw.map(|p| p.total_source.clone()).unwrap_or_default(),
        opt(pw.and_then(|p| p.total_avg_mw)),
        opt(pw.and_then(|p| p.total_peak_mw)),
        opt(pw.and_then(|p| p.gpu_load_pct).map(|g| g.avg)),
        opt(pw.and_then(|p| p.gpu_load_pct).map(|g| g.peak)),
        opt(pw.and_then(|p| p.emc_load_pct).map(|e| e.avg)),
        opt(pw.and_then(|p| p.ram_used_mib).map(|r| r.peak)),
        opt(pw.and_then(|p| p.max_temp_c)),
        opt(super::power::energy_cell(pw, "single_stream")),
        opt(super::power::energy_cell(pw, "offline")),
        pw.map(|p| p.implausible_samples.to_string())
            .unwrap_or_default(),
        if m.compute.shows_stale_peak() {
            super::PEAK_STALE.to_string()
        } else {
            String::new()
        },
        m.file_bytes.map(|b| b.to_string()).unwrap_or_default(),
        m.precision.clone().unwrap_or_default(),
        opt(m.top1_change_points),
    ]
}

/// Quote a cell when it holds a comma, quote, or line break (RFC 4180).
fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn one_row_per_model_under_a_stable_header() {
        let text = render(&fixture::report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("model,source,engine,provider,"));
        assert!(lines[1].starts_with("heavy,heavy,ort,cpu,1.23.2,1x3x224x224,7261450,"));
        assert!(lines[1].contains(",over 105.4%,"), "{}", lines[1]);
        assert!(
            lines[2].contains(",true,"),
            "lean is on the front: {}",
            lines[2]
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("two\nlines"), "\"two\nlines\"");
        let mut r = fixture::report();
        r.models[0].name = "resnet, \"v2\"".into();
        let text = render(&r);
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("\"resnet, \"\"v2\"\"\",heavy,"), "{row}");
        // Two fallbacks joined with "; " need no quoting.
        assert!(row.ends_with(",false,tensorrt: not available in this ONNX Runtime library; cuda: libcudart.so.12: cannot open shared object file,,,,,,,,,,,,,,,,,5617654,fp32,"), "{row}");
    }
}
