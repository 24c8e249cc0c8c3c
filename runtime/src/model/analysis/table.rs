//! The human-readable table of an [`Analysis`]: one row per node, then totals.

use std::fmt::Write;

use super::{Analysis, TensorDesc};

/// `1234567` → `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `4.0 MiB`.
pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Counts in decimal units: `950`, `56.6 M`, `19.49 G`.
pub(super) fn human_count(n: u64) -> String {
    let v = n as f64;
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} K", v / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} M", v / 1e6),
        _ => format!("{:.2} G", v / 1e9),
    }
}

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
        "output shape",
        "params",
        "MACs",
        "activations",
    ];
    let rows: Vec<[String; 6]> = a
        .nodes
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.op.clone(),
                shape(&n.output_shape),
                thousands(n.params),
                human_count(n.macs),
                human_bytes(n.activation_bytes),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{} (producer {:?}, opset {})",
        a.path, a.producer, a.opset
    );
    let _ = writeln!(out, "inputs:  {}", tensors(&a.inputs));
    let _ = writeln!(out, "outputs: {}", tensors(&a.outputs));
    let line = |out: &mut String, cells: [&str; 6]| {
        let [w0, w1, w2, w3, w4, w5] = width;
        let [c0, c1, c2, c3, c4, c5] = cells;
        let _ = writeln!(
            out,
            "{c0:<w0$}  {c1:<w1$}  {c2:<w2$}  {c3:>w3$}  {c4:>w4$}  {c5:>w5$}"
        );
    };
    line(&mut out, header);
    for row in &rows {
        line(&mut out, row.each_ref().map(String::as_str));
    }
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
