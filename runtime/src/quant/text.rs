//! The `quantize` reports as text (the CLI prints them; `--json` prints the reports).

use super::fp16::Fp16Report;
use super::ptq::QuantizeReport;
use crate::units::{Rule, bytes, columns};

impl Fp16Report {
    /// The report as text: what was converted, the rounding, the casts, the sizes.
    pub fn text(&self) -> String {
        let r = self;
        let c = &r.converted;
        let mut s = format!(
            "{} → {}: fp16 ({} initializers converted; inputs and outputs stay fp32)\n",
            r.model,
            r.output.display(),
            c.initializers
        );
        s += &format!(
            "rounding: largest relative weight error {:.2e}; {} weights in fp16's subnormal range (below 6.1e-5, fewer bits); {} below its smallest subnormal became 0\n",
            c.max_relative_error, c.subnormal, c.flushed_to_zero
        );
        if !c.gemm_as_matmul.is_empty() {
            s += &format!(
                "Gemm as MatMul + Add (same arithmetic; tract has no fp16 Gemm): {}\n",
                c.gemm_as_matmul.join(", ")
            );
        }
        s += &format!(
            "cast to fp16 where they enter: {}; back to fp32 where they leave: {}\n",
            list(&c.cast_inputs),
            list(&c.cast_outputs)
        );
        if c.kept_fp32.is_empty() {
            s += "kept fp32: none\n";
        } else {
            s += "kept fp32:\n";
            for (t, why) in &c.kept_fp32 {
                s += &format!("  {t}: {why}\n");
            }
        }
        s += &size_line(r.fp32_bytes, r.fp16_bytes);
        s
    }
}

/// `size: 5.4 MiB → 1.3 MiB (×0.25)`: the fp32 model's file against the converted one.
fn size_line(fp32: u64, converted: u64) -> String {
    format!(
        "size: {} → {} (×{:.2})\n",
        bytes(fp32),
        bytes(converted),
        converted as f64 / fp32.max(1) as f64
    )
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl QuantizeReport {
    /// The report as text: what was quantized, what stayed fp32 and why, the sizes, and
    /// the activation ranges (the 8 widest, or all with `all_ranges`).
    pub fn text(&self, all_ranges: bool) -> String {
        let r = self;
        let mut s = String::new();
        let ops: Vec<String> = r
            .quantized
            .iter()
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        s += &format!(
            "{} → {}: int8 QDQ (weights per channel, symmetric{}; activations {}, {} over {} images, run on {})\n",
            r.model,
            r.output.display(),
            if r.reduce_range { ", 7-bit" } else { "" },
            r.activations,
            r.method,
            r.calibration_images,
            r.calibration_engine
        );
        s += &format!(
            "calibration input: {} (written into the model)\n",
            r.preprocess
        );
        s += &format!("quantized: {}\n", ops.join(", "));
        if !r.folded_relus.is_empty() {
            s += &format!(
                "ReLU folded into the QuantizeLinear before it: {}\n",
                r.folded_relus.len()
            );
        }
        if r.kept_fp32.is_empty() {
            s += "kept fp32: none\n";
        } else {
            s += "kept fp32:\n";
            for k in &r.kept_fp32 {
                s += &format!("  {} ({}): {}\n", k.node, k.op, k.reason);
            }
        }
        s += &size_line(r.fp32_bytes, r.int8_bytes);
        let mut ranges: Vec<_> = r.ranges.iter().collect();
        let shown = if all_ranges {
            ranges.len()
        } else {
            // The widest ranges are where int8 resolution is coarsest.
            ranges.sort_by(|a, b| (b.hi - b.lo).total_cmp(&(a.hi - a.lo)));
            ranges.len().min(8)
        };
        let rows: Vec<Vec<String>> = ranges[..shown]
            .iter()
            .map(|t| {
                vec![
                    t.tensor.clone(),
                    format!("{:.4}", t.lo),
                    format!("{:.4}", t.hi),
                    format!("{:.3e}", t.scale),
                    t.zero_point.to_string(),
                ]
            })
            .collect();
        s += &format!(
            "activation ranges ({} of {}{}):\n",
            shown,
            ranges.len(),
            if all_ranges {
                ""
            } else {
                ", widest first; --ranges for all"
            }
        );
        s += &columns(
            &["tensor", "lo", "hi", "scale", "zero point"],
            &[false, true, true, true, true],
            &rows,
            Rule::PerColumn,
        );
        s
    }
}
