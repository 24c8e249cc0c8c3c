//! Phrases and number formats shared by every output format (machine, settings,
//! target, "measured on", verdict figures), built once so that the table, Markdown and
//! HTML say the same thing.

use crate::board;
use crate::report::schema::{
    BatchSweep, Machine, ModelResult, NodeTime, Report, Settings, Verdict,
};
use crate::units;

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
            let detected = board::detect_board(Some(board), None).and_then(|(_, t)| t);
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
    let mut file = match (m.file_bytes, &m.precision) {
        (Some(b), Some(p)) => format!("file {} ({p}), ", units::bytes(b)),
        (Some(b), None) => format!("file {}, ", units::bytes(b)),
        _ => String::new(),
    };
    if let Some(pre) = &m.preprocess {
        file += &format!("input {pre}, ");
    }
    format!(
        "{file}session init {} ms, first inference {} ms, {arena}",
        ms(m.init_ms),
        ms(m.first_inference_ms)
    )
}

/// What a share above 100% of the GEMM peak says, in every format.
pub(crate) const PEAK_STALE: &str = "peak stale: run `edgebench hw --remeasure`";

/// `peak stale: run `edgebench hw --remeasure` (heavy reached 138% of the GEMM peak)`
/// when some model's share is above 100%: the cached peak understates this machine.
pub(crate) fn peak_stale_note(r: &Report) -> Option<String> {
    let over: Vec<String> = r
        .models
        .iter()
        .filter(|m| m.compute.shows_stale_peak())
        .map(|m| format!("{} reached {}", m.name, peak_share(m.compute.share_of_peak)))
        .collect();
    (!over.is_empty()).then(|| format!("{PEAK_STALE} ({} of the GEMM peak)", over.join(", ")))
}

/// A share of the GEMM peak as a whole percentage (`84%`), `-` when unknown.
pub(crate) fn peak_share(share: Option<f64>) -> String {
    share.map_or("-".into(), |s| format!("{:.0}%", s * 100.0))
}

/// A top-1 accuracy as a percentage with one decimal (`93.4%`), `-` when unknown.
pub(crate) fn accuracy_pct(accuracy: Option<f64>) -> String {
    accuracy.map_or("-".into(), |a| format!("{:.1}%", a * 100.0))
}

/// One line of `--data` figures: loader alone, engine alone, end to end, stall, top-1
/// (and for a `MODEL@int8` variant, the change against `MODEL`).
pub(crate) fn pipeline_line(m: &ModelResult, p: &crate::report::schema::Pipeline) -> String {
    let mut line = format!(
        "loader {} images/s, engine {} images/s, end to end {} images/s ({:.0}% of the slower stage alone), \
         engine stalled {:.1}% of the time waiting for data; batch {}, {} loader workers, pool {}",
        num(p.loader_ips),
        num(p.engine_ips),
        num(p.end_to_end_ips),
        p.efficiency * 100.0,
        p.stall_fraction * 100.0,
        p.batch,
        p.workers,
        units::bytes(p.pool_bytes)
    );
    if p.errors > 0 {
        line.push_str(&format!(
            "; {} unreadable image{} skipped (first: {})",
            p.errors,
            if p.errors == 1 { "" } else { "s" },
            p.first_errors.first().map_or("", String::as_str)
        ));
    }
    if let Some(t) = p.top1 {
        line.push_str(&format!(
            "; top-1 {:.1}% over {} labelled images",
            t * 100.0,
            p.top1_images
        ));
    }
    if let (Some(d), Some((parent, _))) = (m.top1_change_points, m.name.rsplit_once('@')) {
        line.push_str(&format!(" ({d:+.2} points against {parent})"));
    }
    line
}

/// `p90 latency` for `p90_latency`.
pub(crate) fn budget_label(v: &Verdict) -> String {
    v.budget.replace('_', " ")
}

/// `ort/cpu`: the engine and the provider that really ran.
/// Every engine fallback of the report as (model, fallback), in model order.
pub(crate) fn fallback_lines(r: &Report) -> Vec<(&str, &str)> {
    r.models
        .iter()
        .flat_map(|m| {
            let name = m.name.as_str();
            m.engine.fallbacks.iter().map(move |f| (name, f.as_str()))
        })
        .collect()
}

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

/// Whether an engine operator is a convolution or matrix product (the nodes whose
/// precision decides a CNN's speed), or a whole subgraph TensorRT compiled.
fn is_compute(op: &str) -> bool {
    [
        "Conv",
        "Gemm",
        "MatMul",
        "TRTKernel",
        "TensorrtExecutionProvider",
    ]
    .iter()
    .any(|k| op.contains(k))
}

/// Where one provider ran compute nodes in one precision (see [`compute_groups`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComputeGroup {
    /// The execution provider, e.g. `CUDAExecutionProvider`.
    pub provider: String,
    /// The precision (`fp32`, `fp16`, `uint8`, …; `?` when the profile gave no type).
    pub precision: String,
    /// How many compute nodes.
    pub nodes: usize,
    /// Their share of the summed node time, in [0, 1].
    pub share: f64,
}

impl std::fmt::Display for ComputeGroup {
    /// `CUDAExecutionProvider fp16: 3 nodes, 92.0 % of node time`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.nodes == 1 { "" } else { "s" };
        write!(
            f,
            "{} {}: {} node{s}, {:.1} % of node time",
            self.provider,
            self.precision,
            self.nodes,
            self.share * 100.0
        )
    }
}

/// Where the compute nodes ran and in what precision, from the engine's own record
/// (ONNX Runtime's profile): one group per provider and precision, the longest first.
/// Empty when the engine does not say (tract). A TensorRT subgraph's precision is that
/// of its inputs: inside, TensorRT picks per layer among the precisions it was allowed
/// (`--trt-fp16`, int8 from a QDQ model).
pub fn compute_groups(nodes: &[NodeTime]) -> Vec<ComputeGroup> {
    let total: f64 = nodes.iter().map(|n| n.mean_ms).sum();
    let mut groups: Vec<(ComputeGroup, f64)> = Vec::new();
    for n in nodes.iter().filter(|n| is_compute(&n.op)) {
        let Some(provider) = &n.provider else {
            continue;
        };
        let precision = n.precision.as_deref().unwrap_or("?");
        match groups
            .iter_mut()
            .find(|(g, _)| g.provider == *provider && g.precision == precision)
        {
            Some((g, ms)) => {
                g.nodes += 1;
                *ms += n.mean_ms;
            }
            None => groups.push((
                ComputeGroup {
                    provider: provider.clone(),
                    precision: precision.to_string(),
                    nodes: 1,
                    share: 0.0,
                },
                n.mean_ms,
            )),
        }
    }
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    groups
        .into_iter()
        .map(|(mut g, ms)| {
            g.share = if total > 0.0 { ms / total } else { 0.0 };
            g
        })
        .collect()
}

/// [`compute_groups`] in words, e.g. `CUDAExecutionProvider fp16: 3 nodes, 92.0 % of
/// node time`.
pub fn compute_ran_as(nodes: &[NodeTime]) -> Vec<String> {
    compute_groups(nodes)
        .iter()
        .map(|g| g.to_string())
        .collect()
}
