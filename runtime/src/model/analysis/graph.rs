//! Graph structure: node names, topological order, and the liveness walk that gives
//! the peak of live activation memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::onnx::pb::{GraphProto, NodeProto};

/// A node's display name: its name, else its first output, else its position.
pub(super) fn node_label(node: &NodeProto, index: usize) -> String {
    if !node.name.is_empty() {
        node.name.clone()
    } else if let Some(out) = node.output.iter().find(|o| !o.is_empty()) {
        out.clone()
    } else {
        format!("#{index} ({})", node.op_type)
    }
}

fn invalid(path: &Path, reason: String) -> Error {
    Error::InvalidOnnx {
        path: path.to_path_buf(),
        reason,
    }
}

/// Node indices in a topological order, as close to file order as dependencies allow
/// (Kahn's algorithm, lowest index first). `available` holds the graph inputs and
/// initializers. Errors name the node with a missing input or caught in a cycle.
pub(super) fn topo_order(
    graph: &GraphProto,
    path: &Path,
    available: &HashSet<&str>,
) -> Result<Vec<usize>> {
    let nodes = &graph.node;
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if available.contains(out.as_str()) || producer.insert(out, i).is_some() {
                return Err(invalid(
                    path,
                    format!(
                        "tensor {out:?} is defined twice (again by node {:?})",
                        node_label(node, i)
                    ),
                ));
            }
        }
    }
    let mut waiting = vec![0usize; nodes.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        for input in node.input.iter().filter(|n| !n.is_empty()) {
            if available.contains(input.as_str()) {
                continue;
            }
            let &p = producer.get(input.as_str()).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "node {:?} ({}): input {input:?} is not a graph input, an initializer or any node's output",
                        node_label(node, i),
                        node.op_type
                    ),
                )
            })?;
            waiting[i] += 1;
            consumers[p].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..nodes.len())
        .filter(|&i| waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &c in &consumers[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(Reverse(c));
            }
        }
    }
    if let Some(stuck) = (0..nodes.len()).find(|&i| waiting[i] > 0) {
        return Err(invalid(
            path,
            format!(
                "node {:?} ({}) depends on its own output (the graph has a cycle)",
                node_label(&nodes[stuck], stuck),
                nodes[stuck].op_type
            ),
        ));
    }
    Ok(order)
}

/// Peak bytes of live activations while running `order`.
///
/// `inputs` are live from the start; each node's outputs are allocated while its inputs
/// are still live; a tensor is freed after its last consumer (or right after it is made
/// when nothing consumes it); graph outputs are never freed. Only tensors in `sizes` are
/// tracked: initializers and constants are left out by the caller.
pub(super) fn peak_live(
    graph: &GraphProto,
    order: &[usize],
    inputs: &[&str],
    sizes: &HashMap<&str, u64>,
) -> u64 {
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (pos, &i) in order.iter().enumerate() {
        for input in &graph.node[i].input {
            last_use.insert(input.as_str(), pos);
        }
    }
    // Position after which each tracked tensor is freed (None: never).
    let free_at = |name: &str, born: usize| -> Option<usize> {
        (!outputs.contains(name)).then(|| last_use.get(name).copied().unwrap_or(born).max(born))
    };
    let mut frees: Vec<Vec<u64>> = vec![Vec::new(); order.len()];
    let mut live: u64 = 0;
    for &name in inputs {
        let size = sizes.get(name).copied().unwrap_or(0);
        live = live.saturating_add(size);
        if let Some(p) = free_at(name, 0).filter(|&p| p < order.len()) {
            frees[p].push(size);
        }
    }
    let mut peak = live;
    for (pos, &i) in order.iter().enumerate() {
        for out in &graph.node[i].output {
            if let Some(&size) = sizes.get(out.as_str()) {
                live = live.saturating_add(size);
                if let Some(p) = free_at(out, pos) {
                    frees[p].push(size);
                }
            }
        }
        peak = peak.max(live);
        for size in frees[pos].drain(..) {
            live = live.saturating_sub(size);
        }
    }
    peak
}
