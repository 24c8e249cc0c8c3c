//! Reader for the profile JSON that ONNX Runtime's profiler writes
//! (`SessionOptions::EnableProfiling`, ended with `SessionEndProfiling`).
//!
//! The file is a JSON array of Chrome-trace events (some builds wrap it as
//! `{"traceEvents": [...]}`, also accepted). What matters here:
//! - `{"cat": "Session", "name": "model_run", "ts": µs, "dur": µs}`: one per `Run` call;
//! - `{"cat": "Node", "name": "<node>_kernel_time", "ts", "dur", "args": {"op_name",
//!   "provider", ...}}`: one per node execution; `<node>_fence_before/after` and other
//!   node events are ignored.
//!
//! Timestamps are µs since the profiler started. Node events are assigned to the
//! `model_run` that contains them; those outside any run (session set-up) are dropped.

use std::path::Path;

use serde_json::Value;

use crate::engine::NodeEvent;
use crate::error::{Error, Result};

/// Suffix ONNX Runtime puts on a node's kernel event.
const KERNEL_SUFFIX: &str = "_kernel_time";

/// One `Run` call seen by the profiler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrtRun {
    /// µs since the profiler started.
    pub ts_us: f64,
    pub dur_us: f64,
}

/// A parsed ONNX Runtime profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrtProfile {
    /// Every `model_run`, in time order.
    pub runs: Vec<OrtRun>,
    /// Node kernel events, `run` = index into `runs`, times as in the file (µs since the
    /// profiler started).
    pub nodes: Vec<NodeEvent>,
    /// Execution providers seen on node events, in order of first appearance.
    pub providers: Vec<String>,
}

impl OrtProfile {
    /// Keep the runs after the first `skip` (warm-up), renumbered from 0, with times
    /// rebased to the first kept run's start.
    pub fn after_warmup(mut self, skip: usize) -> Self {
        let origin = self.runs.get(skip).map(|r| r.ts_us).unwrap_or(0.0);
        self.runs = self.runs.split_off(skip.min(self.runs.len()));
        for r in &mut self.runs {
            r.ts_us -= origin;
        }
        self.nodes.retain(|n| n.run >= skip);
        for n in &mut self.nodes {
            n.run -= skip;
            n.start_us -= origin;
        }
        self
    }
}

/// The element type of the first input in ONNX Runtime's `input_type_shape`
/// (`[{"float": [1, 3, 8, 8]}, …]`).
fn first_input_type(v: &Value) -> Option<&str> {
    v.as_array()?
        .first()?
        .as_object()?
        .keys()
        .next()
        .map(String::as_str)
}

/// ONNX Runtime's element type name as a precision: `float` → `fp32`, `float16` →
/// `fp16`, `bfloat16` → `bf16`; integer types keep their names.
fn precision_name(t: &str) -> String {
    match t {
        "float" => "fp32",
        "float16" | "MLFloat16" => "fp16",
        "bfloat16" | "BFloat16" => "bf16",
        "double" => "fp64",
        other => other,
    }
    .to_string()
}

/// Parse the profile JSON `text`; `source` names the file in errors.
pub fn parse(text: &str, source: &Path) -> Result<OrtProfile> {
    let bad = |reason: String| Error::Input {
        path: source.to_path_buf(),
        reason: format!("ONNX Runtime profile: {reason}"),
    };
    let root: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let events = match &root {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("traceEvents") {
            Some(Value::Array(a)) => a,
            _ => {
                return Err(bad(
                    "expected an array of events or {\"traceEvents\": [...]}".into(),
                ));
            }
        },
        _ => return Err(bad("expected an array of events".into())),
    };
    let mut runs = Vec::new();
    let mut kernels = Vec::new();
    let mut providers: Vec<String> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        let obj = ev
            .as_object()
            .ok_or_else(|| bad(format!("event {i} is not an object")))?;
        let cat = obj.get("cat").and_then(Value::as_str).unwrap_or("");
        let name = obj.get("name").and_then(Value::as_str);
        let is_run = cat == "Session" && name == Some("model_run");
        let kernel = (cat == "Node")
            .then(|| name.and_then(|n| n.strip_suffix(KERNEL_SUFFIX)))
            .flatten();
        if !is_run && kernel.is_none() {
            continue;
        }
        let num = |key: &str| -> Result<f64> {
            obj.get(key).and_then(Value::as_f64).ok_or_else(|| {
                bad(format!(
                    "event {i} ({}) has no numeric {key:?}",
                    name.unwrap_or("?")
                ))
            })
        };
        let (ts, dur) = (num("ts")?, num("dur")?);
        if is_run {
            runs.push(OrtRun {
                ts_us: ts,
                dur_us: dur,
            });
            continue;
        }
        let args = obj.get("args");
        let arg = |k: &str| args.and_then(|a| a.get(k)).and_then(Value::as_str);
        let op = arg("op_name").ok_or_else(|| {
            bad(format!(
                "event {i} ({}) has no args.op_name",
                name.unwrap_or("?")
            ))
        })?;
        if let Some(p) = arg("provider")
            && !providers.iter().any(|q| q == p)
        {
            providers.push(p.to_string());
        }
        kernels.push(NodeEvent {
            run: usize::MAX,
            name: kernel.unwrap_or_default().to_string(),
            op: op.to_string(),
            start_us: ts,
            dur_us: dur,
            provider: arg("provider").map(str::to_string),
            precision: args
                .and_then(|a| a.get("input_type_shape"))
                .and_then(first_input_type)
                .map(precision_name),
        });
    }
    runs.sort_by(|a, b| a.ts_us.total_cmp(&b.ts_us));
    let mut nodes = Vec::with_capacity(kernels.len());
    for mut k in kernels {
        // The run whose span holds the kernel's start (runs do not overlap).
        let idx = runs.partition_point(|r| r.ts_us <= k.start_us);
        if idx == 0 {
            continue;
        }
        let r = runs[idx - 1];
        if k.start_us <= r.ts_us + r.dur_us {
            k.run = idx - 1;
            nodes.push(k);
        }
    }
    nodes.sort_by(|a, b| a.start_us.total_cmp(&b.start_us));
    Ok(OrtProfile {
        runs,
        nodes,
        providers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In the shape ONNX Runtime's profiler writes for a Conv → Relu → Gemm model
    /// (hand-made, not a captured file): session set-up, two runs, fence events, and
    /// thread-pool statistics in `args`.
    const FIXTURE: &str = r#"[
{"cat":"Session","pid":1,"tid":1,"dur":1200,"ts":3,"ph":"X","name":"model_loading_uri","args":{}},
{"cat":"Session","pid":1,"tid":1,"dur":5400,"ts":1210,"ph":"X","name":"session_initialization","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":7,"ts":1300,"ph":"X","name":"w_init_kernel_time","args":{"op_name":"Constant"}},
{"cat":"Node","pid":1,"tid":1,"dur":0,"ts":7000,"ph":"X","name":"conv_fence_before","args":{"op_name":"Conv"}},
{"cat":"Node","pid":1,"tid":1,"dur":120,"ts":7001,"ph":"X","name":"conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider","thread_scheduling_stats":{"main_thread":{"thread_pool_name":"session-1-intra-op"}}}},
{"cat":"Node","pid":1,"tid":1,"dur":0,"ts":7122,"ph":"X","name":"conv_fence_after","args":{"op_name":"Conv"}},
{"cat":"Node","pid":1,"tid":1,"dur":30,"ts":7125,"ph":"X","name":"fc_kernel_time","args":{"op_name":"Gemm","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":160,"ts":6990,"ph":"X","name":"SequentialExecutor::Execute","args":{}},
{"cat":"Session","pid":1,"tid":1,"dur":200,"ts":6980,"ph":"X","name":"model_run","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":100,"ts":8001,"ph":"X","name":"conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider"}},
{"cat":"Node","pid":1,"tid":1,"dur":20,"ts":8110,"ph":"X","name":"fc_kernel_time","args":{"op_name":"Gemm","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":150,"ts":7990,"ph":"X","name":"model_run","args":{}}
]"#;

    #[test]
    fn parses_runs_and_kernels() {
        let p = parse(FIXTURE, Path::new("prof.json")).unwrap();
        assert_eq!(p.runs.len(), 2);
        assert_eq!(p.runs[0].ts_us, 6980.0);
        // The set-up Constant kernel is outside every run; fences are not kernels.
        let names: Vec<_> = p.nodes.iter().map(|n| (n.run, n.name.as_str())).collect();
        assert_eq!(names, [(0, "conv"), (0, "fc"), (1, "conv"), (1, "fc")]);
        assert_eq!(p.nodes[0].op, "FusedConv");
        assert_eq!(p.nodes[0].dur_us, 120.0);
        assert_eq!(p.providers, ["CPUExecutionProvider"]);

        let timed = p.after_warmup(1);
        assert_eq!(
            timed.runs,
            [OrtRun {
                ts_us: 0.0,
                dur_us: 150.0
            }]
        );
        assert_eq!(timed.nodes.len(), 2);
        assert_eq!((timed.nodes[0].run, timed.nodes[0].start_us), (0, 11.0));
    }

    #[test]
    fn node_provider_and_precision_come_from_its_args() {
        // As ONNX Runtime 1.31 writes them: a QLinearConv fused from a QDQ model on
        // the CPU, an fp16 Conv on CUDA, and a node without input types.
        let text = r#"[
{"cat":"Session","dur":100,"ts":0,"name":"model_run","args":{}},
{"cat":"Node","dur":5,"ts":1,"name":"q_kernel_time","args":{"op_name":"QLinearConv","provider":"CPUExecutionProvider","input_type_shape":[{"uint8":[1,8,8,3]},{"float":[]}]}},
{"cat":"Node","dur":5,"ts":10,"name":"c_kernel_time","args":{"op_name":"Conv","provider":"CUDAExecutionProvider","input_type_shape":[{"float16":[1,3,8,8]},{"float16":[4,3,3,3]}]}},
{"cat":"Node","dur":5,"ts":20,"name":"r_kernel_time","args":{"op_name":"Relu","provider":"CUDAExecutionProvider"}}
]"#;
        let p = parse(text, Path::new("p.json")).unwrap();
        let got: Vec<_> = p
            .nodes
            .iter()
            .map(|n| (n.provider.as_deref(), n.precision.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Some("CPUExecutionProvider"), Some("uint8")),
                (Some("CUDAExecutionProvider"), Some("fp16")),
                (Some("CUDAExecutionProvider"), None)
            ]
        );
        assert_eq!(
            p.providers,
            ["CPUExecutionProvider", "CUDAExecutionProvider"]
        );
    }

    #[test]
    fn accepts_the_trace_events_wrapper() {
        let wrapped = format!("{{\"traceEvents\": {FIXTURE}}}");
        let p = parse(&wrapped, Path::new("prof.json")).unwrap();
        assert_eq!(p.nodes.len(), 4);
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        let path = Path::new("/tmp/onnxruntime_profile_x.json");
        let cases = [
            ("[{\"cat\":", "not JSON"),
            ("{\"a\": 1}", "expected an array"),
            ("42", "expected an array"),
            ("[1]", "event 0 is not an object"),
            (
                r#"[{"cat":"Node","name":"c_kernel_time","ts":1,"args":{"op_name":"Conv"}}]"#,
                "event 0 (c_kernel_time) has no numeric \"dur\"",
            ),
            (
                r#"[{"cat":"Node","name":"c_kernel_time","ts":1,"dur":2,"args":{}}]"#,
                "has no args.op_name",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text, path).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("onnxruntime_profile_x.json"), "{e}");
        }
    }

    #[test]
    fn no_runs_means_no_nodes() {
        let p = parse("[]", Path::new("p.json")).unwrap();
        assert!(p.runs.is_empty() && p.nodes.is_empty());
        assert!(p.after_warmup(3).runs.is_empty());
    }
}
