//! The human-readable table of an [`Analysis`]: one row per node, then totals.

use std::fmt::Write;

use super::{Analysis, TensorDesc};

pub(super) use crate::units::{bytes as human_bytes, count as human_count, thousands};

fn shape(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

fn tensors(list: &[TensorDesc]) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|t| format!("{} {} {}", t.name, shape(&t.shape), t.dtype))
        .collect();
    parts.join("; ")
}

pub(super) fn render(a: &Analysis) -> String {
    let header = [
        "node",
        "op",
        "precision",
        "output shape",
        "params",
        "MACs",
        "activations",
    ];
    let rows: Vec<[String; 7]> = a
        .nodes
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.op.clone(),
                n.precision.clone(),
                shape(&n.output_shape),
                thousands(n.params),
                human_count(n.macs),
                human_bytes(n.activation_bytes),
            ]
        })
        .collect();
    let mut out = String::new();
    // Writing to a String cannot fail.
    let size = a
        .file_bytes
        .map_or_else(String::new, |b| format!(", {} on disk", human_bytes(b)));
    let _ = writeln!(
        out,
        "{} (producer {:?}, opset {}, {}{size})",
        a.path, a.producer, a.opset, a.precision
    );
    let _ = writeln!(out, "inputs:  {}", tensors(&a.inputs));
    let _ = writeln!(out, "outputs: {}", tensors(&a.outputs));
    out.push_str(&crate::units::columns(
        &header,
        &[false, false, false, false, true, true, true],
        &rows,
        crate::units::Rule::None,
    ));
    let _ = writeln!(out, "total params:      {}", thousands(a.total_params));
    let _ = writeln!(
        out,
        "total MACs:        {} ({})",
        thousands(a.total_macs),
        human_count(a.total_macs)
    );
    let _ = writeln!(
        out,
        "total activations: {}",
        human_bytes(a.total_activation_bytes)
    );
    let _ = writeln!(
        out,
        "peak live activations: {}",
        human_bytes(a.peak_activation_bytes)
    );
    out
}
