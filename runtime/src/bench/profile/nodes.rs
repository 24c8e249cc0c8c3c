//! Per-node figures from an engine's node events: the mapping of engine nodes back to
//! ONNX nodes (see the [parent module](super) for the rules), the per-ONNX-node rows
//! with MACs, shares and GFLOP/s, and the per-engine-node rows.

use std::collections::HashMap;

use crate::engine::NodeEvent;
use crate::model::analysis::Analysis;
use crate::report::schema::NodeTime;

/// An ONNX node as the mapping sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceNode {
    pub name: String,
    pub op: String,
    pub macs: u64,
}

impl SourceNode {
    /// The nodes of an analysis, in topological order.
    pub fn from_analysis(a: &Analysis) -> Vec<Self> {
        a.nodes
            .iter()
            .map(|n| Self {
                name: n.name.clone(),
                op: n.op.clone(),
                macs: n.macs,
            })
            .collect()
    }
}

/// Mean time of one engine node (before grouping by ONNX node).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KernelTime {
    /// The engine's node name.
    pub name: String,
    /// The engine's operator.
    pub op: String,
    /// The ONNX node it was mapped to, if any.
    pub source: Option<String>,
    /// Mean time per inference, ms.
    pub mean_ms: f64,
    /// The execution provider that ran it (ONNX Runtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The precision it computed in (its first input's element type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
}

/// The ONNX node an engine node `name` running operator `op` came from: [`source_of`],
/// then, when that node's operator is not `op` (or `op` without a `Fused` prefix) but
/// one of the three nodes before it in topological order has it, that node. ONNX
/// Runtime names a Conv with a fused Relu after the Relu's output
/// (`l1_conv_relu_out_nchwc`); this brings it back to the Conv and its MACs.
pub fn map_kernel<'a>(name: &str, op: &str, sources: &'a [SourceNode]) -> Option<&'a SourceNode> {
    let found = source_of(name, sources)?;
    let want = op.strip_prefix("Fused").unwrap_or(op);
    if found.op == want {
        return Some(found);
    }
    let idx = sources.iter().position(|s| std::ptr::eq(s, found))?;
    let earlier = sources[idx.saturating_sub(3)..idx]
        .iter()
        .rev()
        .find(|s| s.op == want);
    Some(earlier.unwrap_or(found))
}

/// The ONNX node an engine node named `name` came from: the longest source name equal
/// to `name` or a prefix of it followed by a non-alphanumeric character.
pub fn source_of<'a>(name: &str, sources: &'a [SourceNode]) -> Option<&'a SourceNode> {
    sources
        .iter()
        .filter(|s| {
            !s.name.is_empty()
                && name
                    .strip_prefix(s.name.as_str())
                    .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_alphanumeric()))
        })
        .max_by_key(|s| s.name.len())
}

/// Per-ONNX-node rows and per-engine-node rows, each sorted longest first.
pub fn summarise(
    events: &[NodeEvent],
    runs: usize,
    sources: &[SourceNode],
) -> (Vec<NodeTime>, Vec<KernelTime>) {
    struct Group<'a> {
        name: String,
        source: Option<&'a SourceNode>,
        ops: Vec<String>,
        providers: Vec<String>,
        precisions: Vec<String>,
        us: f64,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<String, usize> = HashMap::new();
    let mut kernels: Vec<KernelTime> = Vec::new();
    // Engine node name → (index in `kernels`, its source), mapped once per name.
    let mut kernel_of: HashMap<&str, (usize, Option<&SourceNode>)> = HashMap::new();
    for ev in events {
        let (k, source) = *kernel_of.entry(ev.name.as_str()).or_insert_with(|| {
            let source = map_kernel(&ev.name, &ev.op, sources);
            kernels.push(KernelTime {
                name: ev.name.clone(),
                op: ev.op.clone(),
                source: source.map(|s| s.name.clone()),
                mean_ms: 0.0,
                provider: ev.provider.clone(),
                precision: ev.precision.clone(),
            });
            (kernels.len() - 1, source)
        });
        kernels[k].mean_ms += ev.dur_us;
        let key = source.map_or_else(|| format!("engine:{}", ev.name), |s| s.name.clone());
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push(Group {
                name: source.map_or_else(|| ev.name.clone(), |s| s.name.clone()),
                source,
                ops: Vec::new(),
                providers: Vec::new(),
                precisions: Vec::new(),
                us: 0.0,
            });
            groups.len() - 1
        });
        let g = &mut groups[g];
        g.us += ev.dur_us;
        push_new(&mut g.ops, Some(&ev.op));
        push_new(&mut g.providers, ev.provider.as_ref());
        push_new(&mut g.precisions, ev.precision.as_ref());
    }
    let per_run_ms = |us: f64| us / 1e3 / runs as f64;
    let sum_ms: f64 = groups.iter().map(|g| per_run_ms(g.us)).sum();
    let mut nodes: Vec<NodeTime> = groups
        .into_iter()
        .map(|g| {
            let mean_ms = per_run_ms(g.us);
            let engine_ops = g.ops.join("+");
            let (op, macs) = match g.source {
                Some(s) if engine_ops == s.op => (s.op.clone(), s.macs),
                Some(s) => (format!("{} ({engine_ops})", s.op), s.macs),
                None => (engine_ops, 0),
            };
            NodeTime {
                name: g.name,
                op,
                mean_ms,
                share: if sum_ms > 0.0 { mean_ms / sum_ms } else { 0.0 },
                macs,
                gflops: gflops(macs, mean_ms),
                provider: joined(&g.providers),
                precision: joined(&g.precisions),
            }
        })
        .collect();
    nodes.sort_by(|a, b| b.mean_ms.total_cmp(&a.mean_ms));
    for k in &mut kernels {
        k.mean_ms = per_run_ms(k.mean_ms);
    }
    kernels.sort_by(|a, b| b.mean_ms.total_cmp(&a.mean_ms));
    (nodes, kernels)
}

/// Append `v` to `list` unless it is `None` or already there.
fn push_new(list: &mut Vec<String>, v: Option<&String>) {
    if let Some(v) = v
        && !list.contains(v)
    {
        list.push(v.clone());
    }
}

/// `list` joined with `+`; `None` when empty.
fn joined(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join("+"))
}

/// MACs × 2 / time, in GFLOP/s; 0 when either is 0.
pub fn gflops(macs: u64, ms: f64) -> f64 {
    if macs == 0 || ms <= 0.0 {
        0.0
    } else {
        macs as f64 * 2.0 / (ms * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str, op: &str, macs: u64) -> SourceNode {
        SourceNode {
            name: name.into(),
            op: op.into(),
            macs,
        }
    }

    fn ev(run: usize, name: &str, op: &str, dur_us: f64) -> NodeEvent {
        NodeEvent {
            run,
            name: name.into(),
            op: op.into(),
            start_us: 0.0,
            dur_us,
            provider: None,
            precision: None,
        }
    }

    #[test]
    fn longest_prefix_at_a_separator() {
        let s = [
            src("l1_conv", "Conv", 10),
            src("l1_conv_relu", "Relu", 0),
            src("l10_conv", "Conv", 99),
        ];
        let of = |n: &str| source_of(n, &s).map(|s| s.name.as_str());
        assert_eq!(of("l1_conv"), Some("l1_conv"));
        assert_eq!(of("l1_conv.im2col"), Some("l1_conv"));
        assert_eq!(of("l1_conv_relu"), Some("l1_conv_relu"));
        assert_eq!(of("l1_conv_relu.fused"), Some("l1_conv_relu"));
        assert_eq!(of("l10_conv#1"), Some("l10_conv"));
        assert_eq!(of("l1_convx"), None);
        assert_eq!(of("ReorderInput"), None);
    }

    #[test]
    fn a_fused_kernel_named_after_its_activation_maps_to_its_conv() {
        let s = [
            src("l1_conv", "Conv", 10),
            src("l1_conv_relu", "Relu", 0),
            src("l2_pool", "MaxPool", 0),
        ];
        let map = |n: &str, op: &str| map_kernel(n, op, &s).map(|s| s.name.as_str());
        assert_eq!(map("l1_conv_relu_out_nchwc", "Conv"), Some("l1_conv"));
        assert_eq!(map("l1_conv_relu", "FusedConv"), Some("l1_conv"));
        // tract's own operator names are not ONNX's: the name decides.
        assert_eq!(
            map("l1_conv_relu.low", "OptMaxByScalar"),
            Some("l1_conv_relu")
        );
        assert_eq!(map("l2_pool", "OptMaxPool"), Some("l2_pool"));
        // Never forward, never further than three nodes back.
        assert_eq!(map("l2_pool", "Relu"), Some("l1_conv_relu"));
        assert_eq!(map("l1_conv", "MaxPool"), Some("l1_conv"));
    }

    #[test]
    fn pieces_are_summed_with_macs_once() {
        let s = [src("c", "Conv", 1_000_000), src("fc", "Gemm", 500_000)];
        let events = [
            ev(0, "c.im2col", "Im2col", 100.0),
            ev(0, "c", "OptMatMul", 300.0),
            ev(0, "fc", "Gemm", 100.0),
            ev(0, "reorder_0", "ReorderOutput", 100.0),
            ev(1, "c.im2col", "Im2col", 100.0),
            ev(1, "c", "OptMatMul", 300.0),
            ev(1, "fc", "Gemm", 100.0),
            ev(1, "reorder_0", "ReorderOutput", 100.0),
        ];
        let (nodes, kernels) = summarise(&events, 2, &s);
        assert_eq!(nodes.len(), 3);
        let c = &nodes[0];
        assert_eq!(
            (c.name.as_str(), c.op.as_str()),
            ("c", "Conv (Im2col+OptMatMul)")
        );
        assert!((c.mean_ms - 0.4).abs() < 1e-12);
        assert_eq!(c.macs, 1_000_000);
        assert!((c.gflops - 5.0).abs() < 1e-9, "{}", c.gflops);
        assert!((c.share - 0.4 / 0.6).abs() < 1e-12);
        assert_eq!(nodes[1].op, "Gemm");
        assert_eq!((nodes[2].name.as_str(), nodes[2].macs), ("reorder_0", 0));
        let share: f64 = nodes.iter().map(|n| n.share).sum();
        assert!((share - 1.0).abs() < 1e-12);
        assert_eq!(kernels.len(), 4);
        assert_eq!(kernels[0].name, "c");
        assert_eq!(kernels[0].source.as_deref(), Some("c"));
    }

    #[test]
    fn gflops_guards_zero() {
        assert_eq!(gflops(0, 1.0), 0.0);
        assert_eq!(gflops(10, 0.0), 0.0);
        assert!((gflops(1_000_000, 1.0) - 2.0).abs() < 1e-12);
    }
}
