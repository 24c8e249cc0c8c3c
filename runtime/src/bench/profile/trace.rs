//! Chrome trace export of a [`Profile`]: the JSON object format
//! (`{"traceEvents": [...], "displayTimeUnit": "ms"}`) with complete events
//! (`"ph": "X"`, `ts`/`dur` in µs), which Perfetto and chrome://tracing open.
//!
//! Thread 1 holds one event per timed run (`run 0`, `run 1`, …); thread 2 holds the
//! engine's nodes, each with its operator, the ONNX node it maps to and the run in
//! `args`. Metadata events (`"ph": "M"`) name the process and both threads.

use std::path::Path;

use serde_json::{Value, json};

use super::Profile;
use crate::error::Result;
use crate::fsutil;

const PID: u32 = 1;
const RUN_TID: u32 = 1;
const NODE_TID: u32 = 2;

/// The profile as a Chrome trace JSON value.
pub fn chrome_trace(p: &Profile) -> Value {
    let process = format!(
        "{} on {} ({})",
        p.model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.model.display().to_string()),
        p.engine.engine,
        p.engine.provider
    );
    let meta = |name: &str, tid: u32, value: &str| json!({"name": name, "ph": "M", "pid": PID, "tid": tid, "args": {"name": value}});
    let mut events = vec![
        meta("process_name", RUN_TID, &process),
        meta("thread_name", RUN_TID, "runs"),
        meta("thread_name", NODE_TID, "nodes"),
    ];
    for (i, (&start, &ms)) in p.run_start_us.iter().zip(&p.run_ms).enumerate() {
        events.push(json!({
            "name": format!("run {i}"),
            "cat": "run",
            "ph": "X",
            "ts": start,
            "dur": ms * 1e3,
            "pid": PID,
            "tid": RUN_TID,
            "args": {"run": i, "wall_ms": ms},
        }));
    }
    let source_of: std::collections::HashMap<&str, Option<&str>> = p
        .kernels
        .iter()
        .map(|k| (k.name.as_str(), k.source.as_deref()))
        .collect();
    for e in &p.events {
        let source = source_of.get(e.name.as_str()).copied().flatten();
        events.push(json!({
            "name": e.name,
            "cat": e.op,
            "ph": "X",
            "ts": e.start_us,
            "dur": e.dur_us,
            "pid": PID,
            "tid": NODE_TID,
            "args": {"op": e.op, "onnx_node": source, "run": e.run},
        }));
    }
    json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "model": p.model.display().to_string(),
            "engine": p.engine.engine,
            "provider": p.engine.provider,
            "version": p.engine.version,
            "warmup": p.warmup,
            "runs": p.runs,
        },
    })
}

/// Write [`chrome_trace`] to `path` atomically (nothing is left at `path` on error).
pub fn write_chrome_trace(path: &Path, p: &Profile) -> Result<()> {
    let value = chrome_trace(p);
    fsutil::write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        serde_json::to_writer(&mut w, &value).map_err(std::io::Error::other)?;
        std::io::Write::flush(&mut w)
    })
}
