//! Post-training quantization: int8 (below) and fp16 ([`fp16`]). The int8 arithmetic: quantization parameters as ONNX's
//! `QuantizeLinear`/`DequantizeLinear` define them (`x ≈ scale · (q − zero_point)`,
//! rounding half to even, saturating), symmetric per-output-channel weights, and the
//! ranges calibration chooses for activations ([`calib`]).
//!
//! Weights are int8 with zero point 0 and `scale = max|w| / 127` per output channel (the
//! range −127…127, as ONNX Runtime's symmetric weights and TensorRT's explicit int8
//! expect). Activations are int8 symmetric too (zero point 0, the form TensorRT accepts)
//! or uint8 over a range widened to hold 0 exactly (zero padding must stay exact).

pub mod calib;
pub mod fp16;
pub mod ptq;
pub mod qdq;
mod text;
pub mod variant;

use crate::error::{Error, Result};

/// Quantization parameters of one tensor (or one channel of it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Positive and finite.
    pub scale: f32,
    /// The integer that stands for 0.0: 0 for int8 symmetric, 0…255 for uint8.
    pub zero_point: i32,
    /// The integer range values saturate to: −128…127 (int8) or 0…255 (uint8).
    pub qmin: i32,
    pub qmax: i32,
}

impl QParams {
    /// int8, zero point 0, for values in [−amax, amax]: `scale = amax / 127`. A zero
    /// range (a tensor that is all zeros) gets scale 1, so every value is exactly 0.
    pub fn symmetric_i8(amax: f32) -> Result<QParams> {
        let amax = finite("range", amax)?.abs();
        Ok(QParams {
            scale: if amax > 0.0 { amax / 127.0 } else { 1.0 },
            zero_point: 0,
            qmin: -128,
            qmax: 127,
        })
    }

    /// uint8 for values in [lo, hi], the range first widened to hold 0.0 (so 0.0 is
    /// the zero point exactly).
    pub fn asymmetric_u8(lo: f32, hi: f32) -> Result<QParams> {
        let (lo, hi) = (finite("range", lo)?.min(0.0), finite("range", hi)?.max(0.0));
        if lo > hi {
            return Err(Error::Invalid(format!(
                "quantization range [{lo}, {hi}] is empty"
            )));
        }
        let span = hi - lo;
        if span == 0.0 {
            return Ok(QParams {
                scale: 1.0,
                zero_point: 0,
                qmin: 0,
                qmax: 255,
            });
        }
        let scale = span / 255.0;
        let zero_point = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as i32;
        Ok(QParams {
            scale,
            zero_point,
            qmin: 0,
            qmax: 255,
        })
    }

    /// int8 for values in [lo, hi], the range first widened to hold 0.0: `scale =
    /// (hi − lo) / 255`, the zero point where 0.0 lands (−128 for a range that starts
    /// at 0, so a ReLU's output uses the whole int8 range). ONNX Runtime's default form
    /// of int8 activations.
    pub fn asymmetric_i8(lo: f32, hi: f32) -> Result<QParams> {
        let u = QParams::asymmetric_u8(lo, hi)?;
        Ok(QParams {
            scale: u.scale,
            zero_point: u.zero_point - 128,
            qmin: -128,
            qmax: 127,
        })
    }

    /// `QuantizeLinear`: `saturate(round_half_even(x / scale) + zero_point)`.
    pub fn quantize(&self, x: f32) -> i32 {
        let q = (x / self.scale).round_ties_even() + self.zero_point as f32;
        // NaN maps to the zero point (it cannot occur: inputs are checked finite).
        if q.is_nan() {
            return self.zero_point;
        }
        q.clamp(self.qmin as f32, self.qmax as f32) as i32
    }

    /// `DequantizeLinear`: `(q − zero_point) · scale`.
    pub fn dequantize(&self, q: i32) -> f32 {
        (q - self.zero_point) as f32 * self.scale
    }

    /// The largest error of a round trip for a value inside the range: half a step.
    pub fn max_rounding_error(&self) -> f32 {
        self.scale / 2.0
    }
}

/// A weight tensor quantized per output channel (the first axis).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelQuant {
    /// One scale per output channel (zero points are all 0).
    pub scales: Vec<f32>,
    /// The int8 values, in the tensor's own order.
    pub values: Vec<i8>,
}

impl ChannelQuant {
    /// The weights back as f32 (what `DequantizeLinear` with `axis = 0` gives).
    pub fn dequantize(&self) -> Vec<f32> {
        let per = self.values.len() / self.scales.len().max(1);
        self.values
            .iter()
            .enumerate()
            .map(|(i, &q)| f32::from(q) * self.scales[i / per.max(1)])
            .collect()
    }
}

/// Largest weight magnitude of full-range int8 weights.
pub const FULL_RANGE: i32 = 127;
/// Largest weight magnitude of reduced-range (7-bit) weights: an 8-bit activation times
/// a weight, summed in pairs, then fits in 16 bits (2 · 255 · 64 = 32,640), which ONNX
/// Runtime's int8 kernels on x86-64 without VNNI need to be exact (`vpmaddubsw`
/// saturates at 32,767); ONNX Runtime's own quantizer calls this `reduce_range`.
pub const REDUCED_RANGE: i32 = 64;

/// Whether ONNX Runtime's CPU int8 kernels saturate on this machine with full-range
/// weights: an x86-64 CPU without VNNI (AVX-512 VNNI or AVX-VNNI). Elsewhere (VNNI,
/// AArch64's dot products, TensorRT) products accumulate in 32 bits.
pub fn int8_saturates_here() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !(std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Quantize `w`, laid out with `channels` output channels first (`[C_out, …]`), to
/// symmetric int8 per channel: each channel's `scale = max|w| / 127`, values in −127…127.
/// Non-finite weights and a length that `channels` does not divide are errors.
pub fn quantize_per_channel(w: &[f32], channels: usize) -> Result<ChannelQuant> {
    quantize_per_channel_to(w, channels, FULL_RANGE)
}

/// [`quantize_per_channel`] to values in −`qmax`…`qmax` (`scale = max|w| / qmax`):
/// [`FULL_RANGE`] or [`REDUCED_RANGE`].
pub fn quantize_per_channel_to(w: &[f32], channels: usize, qmax: i32) -> Result<ChannelQuant> {
    if channels == 0 || !w.len().is_multiple_of(channels) {
        return Err(Error::Invalid(format!(
            "{} weights do not split into {channels} output channels",
            w.len()
        )));
    }
    let per = w.len() / channels;
    let mut scales = Vec::with_capacity(channels);
    let mut values = Vec::with_capacity(w.len());
    for (c, ch) in w.chunks(per.max(1)).enumerate() {
        if let Some(bad) = ch.iter().find(|v| !v.is_finite()) {
            return Err(Error::Invalid(format!(
                "weight of output channel {c} is {bad}: only finite weights can be quantized"
            )));
        }
        let amax = ch.iter().fold(0f32, |m, v| m.max(v.abs()));
        let mut p = QParams::symmetric_i8(amax)?;
        if amax > 0.0 {
            p.scale = amax / qmax as f32;
        }
        scales.push(p.scale);
        // Within ±amax every value lands in −qmax…qmax.
        values.extend(ch.iter().map(|&v| p.quantize(v).clamp(-qmax, qmax) as i8));
    }
    Ok(ChannelQuant { scales, values })
}

/// Write `model`, converted from `prepared`, to `out` (atomically; nothing written on
/// failure) with `prepared`'s preprocessing in its metadata, so that it travels with the
/// model; the sizes of `prepared`'s file and of the written one, in bytes.
pub(crate) fn write_variant(
    model: &mut crate::onnx::pb::ModelProto,
    prepared: &crate::model::Prepared,
    out: &std::path::Path,
) -> Result<(u64, u64)> {
    crate::model::write_preprocess_metadata(model, &prepared.preprocess, prepared.layout);
    let bytes = crate::onnx::encode_model(model);
    crate::fsutil::Destination::resolve(out)?.write(out, |w| w.write_all(&bytes))?;
    let source = std::fs::metadata(&prepared.path)
        .map(|m| m.len())
        .map_err(|e| Error::io(&prepared.path, e))?;
    Ok((source, bytes.len() as u64))
}

/// The precision of a model's weights, for reports: `int8` when it has int8/uint8
/// weight initializers or integer ops (QDQ or QOperator form), `fp16` when its float
/// weights are float16, else `fp32`.
pub fn precision_of(model: &crate::onnx::pb::ModelProto) -> &'static str {
    use crate::onnx::pb::data_type;
    let Some(g) = model.graph.as_ref() else {
        return "fp32";
    };
    let integer_ops = [
        "QuantizeLinear",
        "DequantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
    ];
    if g.node
        .iter()
        .any(|n| integer_ops.contains(&n.op_type.as_str()))
        || g.initializer
            .iter()
            .any(|t| matches!(t.data_type, data_type::INT8 | data_type::UINT8))
    {
        "int8"
    } else if g
        .initializer
        .iter()
        .any(|t| t.data_type == data_type::FLOAT16)
    {
        "fp16"
    } else {
        "fp32"
    }
}

fn finite(what: &str, v: f32) -> Result<f32> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::Invalid(format!("quantization {what} bound is {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_linear_rounds_half_to_even_and_saturates() {
        let p = QParams::symmetric_i8(127.0).unwrap();
        assert_eq!(p.scale, 1.0);
        assert_eq!(
            [0.5, 1.5, 2.5, -0.5, -1.5, 126.6, 300.0, -300.0].map(|x| p.quantize(x)),
            [0, 2, 2, 0, -2, 127, 127, -128]
        );
        let u = QParams::asymmetric_u8(-1.0, 3.0).unwrap();
        // scale 4/255, zero point round(255/4) = 64 (63.75).
        assert_eq!(u.zero_point, 64);
        assert_eq!(u.quantize(0.0), 64);
        assert_eq!(u.dequantize(64), 0.0);
        assert_eq!((u.quantize(-10.0), u.quantize(10.0)), (0, 255));
        // A range that excludes 0 is widened to hold it.
        let w = QParams::asymmetric_u8(2.0, 4.0).unwrap();
        assert_eq!(
            (w.zero_point, w.quantize(0.0), w.dequantize(0)),
            (0, 0, 0.0)
        );
    }

    #[test]
    fn round_trips_stay_within_half_a_step() {
        for (lo, hi) in [(-1.0f32, 1.0), (-0.1, 6.0), (0.0, 255.0), (-3.0, 0.0)] {
            for p in [
                QParams::asymmetric_u8(lo, hi).unwrap(),
                QParams::symmetric_i8(lo.abs().max(hi.abs())).unwrap(),
            ] {
                for i in 0..=1000 {
                    let x = lo + (hi - lo) * i as f32 / 1000.0;
                    let err = (p.dequantize(p.quantize(x)) - x).abs();
                    assert!(
                        err <= p.max_rounding_error() * 1.0001 + 1e-7,
                        "{p:?}: {x} comes back off by {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn per_channel_weights_use_each_channel_range() {
        // Channel 0 spans ±127/64 (scale 1/64), channel 1 ±127/1024 (scale 1/1024),
        // channel 2 is all zeros (scale 1): exact in binary, so exact expectations.
        let w = [
            1.984375,
            -0.5,
            0.0,
            127.0 / 1024.0,
            -127.0 / 1024.0,
            0.0625,
            0.0,
            0.0,
            0.0,
        ];
        let q = quantize_per_channel(&w, 3).unwrap();
        assert_eq!(q.scales, [1.0 / 64.0, 1.0 / 1024.0, 1.0]);
        assert_eq!(q.values, [127, -32, 0, 127, -127, 64, 0, 0, 0]);
        for (i, (a, b)) in q.dequantize().iter().zip(w).enumerate() {
            assert!((a - b).abs() <= q.scales[i / 3] / 2.0, "{a} vs {b}");
        }
        let e = quantize_per_channel(&[1.0, f32::NAN], 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("output channel 1") && e.contains("NaN"), "{e}");
        assert!(quantize_per_channel(&[1.0, 2.0, 3.0], 2).is_err());
        assert!(QParams::symmetric_i8(f32::INFINITY).is_err());
    }
}
