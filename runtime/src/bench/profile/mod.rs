//! Per-node time of one model (`edgebench profile`, and per-layer bars in reports).
//!
//! Each engine is asked for its own per-node record over `runs` timed inferences after
//! `warmup` untimed ones:
//! - tract: the optimised plan runs with a timer around every node's eval
//!   ([`crate::engine::NodeEvent`]); names are those after tract's optimisations;
//! - ONNX Runtime: its own profiler (`SessionOptions::EnableProfiling`), whose JSON is
//!   read by [`ort_json`] and deleted; names are those after ONNX Runtime's graph
//!   transformations.
//!
//! Engine nodes are mapped back to the ONNX node they came from by name: the longest
//! ONNX node name that is the whole engine name or a prefix of it followed by a
//! separator (`l1_conv.im2col` → `l1_conv`; `l1_conv_relu` stays the Relu). Every
//! engine piece of one ONNX node is summed into one [`NodeTime`] row, which carries that
//! ONNX node's MACs from [`crate::model::analysis`]; engine nodes that match no ONNX
//! node (layout reorders, inserted casts) keep their own row with 0 MACs. A piece
//! fused into another (a Relu folded into a Conv) has no time of its own: its time is
//! in the row of the node it was fused into.
//!
//! [`write_chrome_trace`] writes the timed runs as a Chrome trace (Perfetto,
//! chrome://tracing).

mod nodes;
pub mod ort_json;
mod trace;

use std::path::{Path, PathBuf};

pub use crate::report::{ComputeGroup, compute_groups, compute_ran_as};
pub use nodes::{KernelTime, SourceNode, gflops, map_kernel, source_of, summarise};
pub use trace::{chrome_trace, write_chrome_trace};

use crate::engine::{
    self, EngineChoice, EngineOptions, EngineTrace, NodeEvent, ProfiledRuns, SessionInfo,
};
use crate::error::{Error, Result};
use crate::model::analysis;
use crate::report::schema::NodeTime;

/// How many inferences to profile, and the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileOptions {
    /// Untimed inferences first (not in the profile).
    pub warmup: usize,
    /// Timed inferences (≥ 1); per-node times are means over these.
    pub runs: usize,
    /// Seed of the uniform [0, 1) input tensor.
    pub seed: u64,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            warmup: 3,
            runs: 20,
            seed: 0,
        }
    }
}

/// The per-node profile of one model on one engine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Profile {
    /// The ONNX file profiled.
    pub model: PathBuf,
    /// Engine, provider, version and the fallbacks taken.
    pub engine: SessionInfo,
    pub warmup: usize,
    pub runs: usize,
    /// One row per ONNX node (engine pieces summed), longest first.
    pub nodes: Vec<NodeTime>,
    /// One row per engine node, longest first.
    pub kernels: Vec<KernelTime>,
    /// Sum of the node rows' mean times, ms per inference.
    pub node_sum_ms: f64,
    /// Mean end-to-end wall time per inference as measured around the engine call, ms
    /// (includes the profiler's own overhead and what happens between nodes).
    pub total_ms: f64,
    /// Wall time of each timed run, ms.
    pub run_ms: Vec<f64>,
    /// Start of each timed run, µs since the first timed run started.
    pub run_start_us: Vec<f64>,
    /// Every engine node execution of the timed runs (times on the same clock as
    /// `run_start_us`).
    pub events: Vec<NodeEvent>,
    /// MACs of the model per inference (from the analysis; 0 when unknown).
    pub total_macs: u64,
    /// Anything that limits the figures (e.g. MACs unknown because the analysis failed).
    pub notes: Vec<String>,
}

/// Profile `model` (an ONNX file) with the engine `choice` (the `--engine` rules of
/// [`engine::open`]), on a seeded random input of `opts.input_shape`.
pub fn profile(
    model: &Path,
    choice: EngineChoice,
    opts: &EngineOptions,
    p: &ProfileOptions,
) -> Result<Profile> {
    if p.runs == 0 {
        return Err(Error::Invalid("profile: --runs must be ≥ 1".into()));
    }
    let mut notes = Vec::new();
    let sources = match analysis::analyze_file(model, Some(&opts.input_shape)) {
        Ok(a) => SourceNode::from_analysis(&a),
        Err(e) => {
            notes.push(format!("MACs unknown (the analysis failed: {e})"));
            Vec::new()
        }
    };
    let input =
        crate::tensor_io::seeded_input(&opts.input_shape, p.seed).map_err(|e| e.at(model))?;
    let raw = engine::select::dispatch(
        choice,
        opts,
        || engine::ort::profile_runs(model, opts, input.view(), p.warmup, p.runs),
        |fallbacks| {
            engine::tract::profile_with(model, opts, fallbacks, input.view(), p.warmup, p.runs)
        },
    )?;
    let mut prof = from_runs(model, raw, &sources)?;
    prof.warmup = p.warmup;
    prof.notes.splice(0..0, notes);
    Ok(prof)
}

/// Turn an engine's record into a [`Profile`], mapping engine nodes onto `sources`.
pub fn from_runs(model: &Path, raw: ProfiledRuns, sources: &[SourceNode]) -> Result<Profile> {
    let runs = raw.run_ms.len();
    let mut notes = Vec::new();
    let mut run_start_us = raw.run_start_us;
    let (events, warmup) = match raw.trace {
        EngineTrace::Events(ev) => (ev, 0),
        EngineTrace::OrtJson { json, warmup } => {
            let parsed = ort_json::parse(&json, Path::new("ONNX Runtime profile"))?;
            let parsed = parsed.after_warmup(warmup);
            for p in parsed
                .providers
                .iter()
                .filter(|p| *p != "CPUExecutionProvider")
            {
                notes.push(format!(
                    "nodes on {p} are timed on the host by ONNX Runtime's profiler; device \
                     work can run asynchronously, so compare their sum with the end-to-end time"
                ));
            }
            if parsed.runs.len() == runs {
                // Node events and runs on ONNX Runtime's clock.
                run_start_us = parsed.runs.iter().map(|r| r.ts_us).collect();
            } else {
                notes.push(format!(
                    "ONNX Runtime's profile holds {} timed runs, edgebench made {runs}",
                    parsed.runs.len()
                ));
            }
            (parsed.nodes, warmup)
        }
    };
    if events.is_empty() {
        notes.push(format!("{} recorded no node times", raw.info.engine));
    }
    let (nodes, kernels) = summarise(&events, runs.max(1), sources);
    let node_sum_ms = nodes.iter().map(|n| n.mean_ms).sum();
    let total_ms = if runs == 0 {
        0.0
    } else {
        raw.run_ms.iter().sum::<f64>() / runs as f64
    };
    Ok(Profile {
        model: model.to_path_buf(),
        engine: raw.info,
        warmup,
        runs,
        nodes,
        kernels,
        node_sum_ms,
        total_ms,
        run_ms: raw.run_ms,
        run_start_us,
        events,
        total_macs: sources.iter().map(|s| s.macs).sum(),
        notes,
    })
}

impl Profile {
    /// The JSON object of `edgebench profile --json` for model `name` at `input_shape`,
    /// with the Chrome trace written to `trace_file` and the Jetson `board` and its
    /// built-in target, if any.
    pub fn to_json(
        &self,
        name: &str,
        input_shape: &[usize],
        trace_file: Option<&std::path::Path>,
        board: Option<&(String, Option<String>)>,
    ) -> serde_json::Value {
        let p = self;
        serde_json::json!({
            "model": name,
            "input_shape": input_shape,
            "engine": p.engine,
            "warmup": p.warmup,
            "runs": p.runs,
            "total_ms": p.total_ms,
            "node_sum_ms": p.node_sum_ms,
            "total_macs": p.total_macs,
            "nodes": p.nodes,
            "compute_ran_as": compute_groups(&p.nodes),
            "kernels": p.kernels,
            "run_ms": p.run_ms,
            "notes": p.notes,
            "trace_file": trace_file,
            "board": board.map(|(b, _)| b),
            "target": board.and_then(|(_, t)| t.as_ref()),
        })
    }

    /// The terminal table for model `name`: a header (what ran, on which Jetson `board` and
    /// its built-in target, if any), the `top` longest nodes (0: all) with MACs and GFLOP/s,
    /// and a footer comparing the summed node times with the measured end-to-end time.
    pub fn text(&self, name: &str, top: usize, board: Option<&(String, Option<String>)>) -> String {
        let p = self;
        let shape: Vec<String> = p.engine.input_shape.iter().map(|d| d.to_string()).collect();
        let mut out = format!(
            "{name} (input {}): engine {} {}, provider {}; {} warm-up + {} timed runs\n",
            shape.join("x"),
            p.engine.engine,
            p.engine.version,
            p.engine.provider,
            p.warmup,
            p.runs
        );
        match board {
            Some((b, Some(t))) => out += &format!("  board: {b} (target {t})\n"),
            Some((b, None)) => out += &format!("  board: {b} (no matching built-in target)\n"),
            None => {}
        }
        for f in &p.engine.fallbacks {
            out += &format!("  fallback: {f}\n");
        }
        for n in &p.notes {
            out += &format!("  note: {n}\n");
        }
        let ran = compute_ran_as(&p.nodes);
        if !ran.is_empty() {
            out += &format!("  compute ran as: {}\n", ran.join("; "));
        }
        let shown = if top == 0 {
            p.nodes.len()
        } else {
            top.min(p.nodes.len())
        };
        let rows: Vec<[String; 6]> = p.nodes[..shown]
            .iter()
            .map(|n| {
                [
                    n.name.clone(),
                    n.op.clone(),
                    format!("{:.3}", n.mean_ms),
                    format!("{:.1}", n.share * 100.0),
                    if n.macs == 0 {
                        "-".into()
                    } else {
                        crate::units::count(n.macs)
                    },
                    if n.gflops == 0.0 {
                        "-".into()
                    } else {
                        format!("{:.1}", n.gflops)
                    },
                ]
            })
            .collect();
        out += &crate::units::columns(
            &["node", "op", "mean ms", "share %", "MACs", "GFLOP/s"],
            &[false, false, true, true, true, true],
            &rows,
            crate::units::Rule::None,
        );
        if shown < p.nodes.len() {
            let rest = &p.nodes[shown..];
            let ms: f64 = rest.iter().map(|n| n.mean_ms).sum();
            out += &format!(
                "  … {} more nodes: {ms:.3} ms ({:.1} %); --top 0 shows all\n",
                rest.len(),
                if p.node_sum_ms > 0.0 {
                    ms / p.node_sum_ms * 100.0
                } else {
                    0.0
                }
            );
        }
        let all_gflops = gflops(p.total_macs, p.total_ms);
        out += &format!(
            "sum of node times {:.3} ms per inference; measured end to end {:.3} ms \
         (nodes {:.1} % of it); {} MACs, {:.1} GFLOP/s end to end\n",
            p.node_sum_ms,
            p.total_ms,
            if p.total_ms > 0.0 {
                p.node_sum_ms / p.total_ms * 100.0
            } else {
                0.0
            },
            crate::units::count(p.total_macs),
            all_gflops
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_ran_as_groups_compute_nodes_by_provider_and_precision() {
        let node = |op: &str, ms: f64, provider: Option<&str>, precision: Option<&str>| NodeTime {
            name: op.into(),
            op: op.into(),
            mean_ms: ms,
            provider: provider.map(Into::into),
            precision: precision.map(Into::into),
            ..NodeTime::default()
        };
        let cuda = Some("CUDAExecutionProvider");
        let nodes = [
            node("Conv", 4.0, cuda, Some("fp16")),
            node("FusedConv", 3.0, cuda, Some("fp16")),
            node("Relu", 1.0, cuda, Some("fp16")),
            node("Gemm", 2.0, Some("CPUExecutionProvider"), Some("fp32")),
            node("Conv", 9.0, None, None),
        ];
        assert_eq!(
            compute_ran_as(&nodes),
            [
                "CUDAExecutionProvider fp16: 2 nodes, 36.8 % of node time",
                "CPUExecutionProvider fp32: 1 node, 10.5 % of node time"
            ]
        );
        assert!(compute_ran_as(&nodes[4..]).is_empty(), "tract says nothing");
    }

    fn src(name: &str, op: &str, macs: u64) -> SourceNode {
        SourceNode {
            name: name.into(),
            op: op.into(),
            macs,
        }
    }

    #[test]
    fn ort_profiles_skip_warm_up_and_note_gpu_providers() {
        let json = r#"[
{"cat":"Session","name":"model_run","ts":10,"dur":50},
{"cat":"Node","name":"c_kernel_time","ts":20,"dur":30,"args":{"op_name":"Conv","provider":"CPUExecutionProvider"}},
{"cat":"Session","name":"model_run","ts":100,"dur":50},
{"cat":"Node","name":"c_kernel_time","ts":110,"dur":40,"args":{"op_name":"Conv","provider":"CUDAExecutionProvider"}}
]"#;
        let raw = ProfiledRuns {
            info: SessionInfo {
                engine: "ort",
                provider: "CUDAExecutionProvider".into(),
                version: "1.31.1".into(),
                fallbacks: Vec::new(),
                input_shape: vec![1, 3, 8, 8],
            },
            run_ms: vec![0.06],
            run_start_us: vec![0.0],
            trace: EngineTrace::OrtJson {
                json: json.into(),
                warmup: 1,
            },
        };
        let p = from_runs(Path::new("m.onnx"), raw, &[src("c", "Conv", 1000)]).unwrap();
        assert_eq!((p.warmup, p.runs), (1, 1));
        assert_eq!(p.events.len(), 1);
        assert_eq!((p.events[0].start_us, p.events[0].dur_us), (10.0, 40.0));
        assert!((p.nodes[0].mean_ms - 0.04).abs() < 1e-12);
        assert_eq!(p.nodes[0].macs, 1000);
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
        assert!(p.notes[0].contains("CUDAExecutionProvider"));
    }
}
