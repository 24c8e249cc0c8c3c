//! The search space of `edgebench shrink`: width multipliers × input sizes ×
//! precisions around a base spec. An [`Arch`] is one width at one size (what is
//! trained); a candidate is an arch in one [`Precision`] (what is measured and shipped).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::spec::{InputShape, Spec};

/// The numeric precision a candidate runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    Fp16,
    Int8,
}

impl Precision {
    /// The model-argument suffix that makes this variant (`""`, `"@fp16"`, `"@int8"`).
    pub fn suffix(self) -> &'static str {
        match self {
            Precision::Fp32 => "",
            Precision::Fp16 => "@fp16",
            Precision::Int8 => "@int8",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            "int8" => Ok(Precision::Int8),
            "bf16" => Err(Error::Invalid(
                "precision bf16: no engine here runs it (fp32, fp16, int8)".into(),
            )),
            other => Err(Error::Invalid(format!(
                "unknown precision {other:?}: expected fp32, fp16 or int8"
            ))),
        }
    }
}

/// Width multipliers, square input sizes (pixels per side) and precisions to search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub widths: Vec<f64>,
    pub sizes: Vec<usize>,
    pub precisions: Vec<Precision>,
}

/// Widths searched unless `--widths` narrows them.
pub const DEFAULT_WIDTHS: [f64; 6] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0];

impl Space {
    /// The default space around `base`: [`DEFAULT_WIDTHS`], half, three quarters and
    /// all of the base's input side (multiples of 8), fp32 and int8.
    pub fn default_for(base: &Spec) -> Space {
        let side = base.input.height.min(base.input.width);
        let mut sizes: Vec<usize> = [0.5, 0.75, 1.0]
            .iter()
            .map(|f| (((side as f64 * f) / 8.0).round() as usize * 8).max(8))
            .collect();
        sizes.dedup();
        Space {
            widths: DEFAULT_WIDTHS.to_vec(),
            sizes,
            precisions: vec![Precision::Fp32, Precision::Int8],
        }
    }

    /// Sorts and de-duplicates every axis; an empty axis or a bad value is a usage error
    /// naming the flag.
    pub fn normalized(mut self) -> Result<Space> {
        if let Some(w) = self.widths.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(Error::Invalid(format!(
                "--widths: {w} is not a positive number"
            )));
        }
        if let Some(s) = self.sizes.iter().find(|s| **s == 0) {
            return Err(Error::Invalid(format!("--sizes: {s} is not a size ≥ 1")));
        }
        self.widths.sort_by(f64::total_cmp);
        self.widths.dedup();
        self.sizes.sort_unstable();
        self.sizes.dedup();
        self.precisions.sort_unstable();
        self.precisions.dedup();
        for (flag, empty) in [
            ("--widths", self.widths.is_empty()),
            ("--sizes", self.sizes.is_empty()),
            ("--precisions", self.precisions.is_empty()),
        ] {
            if empty {
                return Err(Error::Invalid(format!(
                    "the search space is empty: {flag} names no value"
                )));
            }
        }
        Ok(self)
    }

    /// Number of candidates (archs × precisions).
    pub fn len(&self) -> usize {
        self.widths.len() * self.sizes.len() * self.precisions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One line: the axes and the count.
    pub fn describe(&self) -> String {
        let widths: Vec<String> = self.widths.iter().map(|w| fmt_width(*w)).collect();
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        let precs: Vec<&str> = self.precisions.iter().map(|p| p.name()).collect();
        format!(
            "widths {} × sizes {} × precisions {} = {} candidates ({} to train)",
            widths.join(","),
            sizes.join(","),
            precs.join(","),
            self.len(),
            self.widths.len() * self.sizes.len()
        )
    }

    /// Every width at every size, in order (width, then size). A width or size at which
    /// the base does not plan (an input too small for its layers) is left out with the
    /// reason in the second list.
    pub fn arches(&self, base: &Spec) -> (Vec<Arch>, Vec<(String, String)>) {
        let (mut ok, mut skipped) = (Vec::new(), Vec::new());
        for &w in &self.widths {
            for &s in &self.sizes {
                let name = arch_name(&base.name, w, s);
                let made = base.with_width(w, &name).and_then(|mut spec| {
                    spec.input = InputShape {
                        height: s,
                        width: s,
                        channels: base.input.channels,
                    };
                    spec.plan(spec.input)?;
                    Ok(spec)
                });
                match made {
                    Ok(spec) => ok.push(Arch {
                        name,
                        width: w,
                        size: s,
                        spec,
                    }),
                    Err(e) => skipped.push((name, e.to_string())),
                }
            }
        }
        (ok, skipped)
    }
}

/// One width of the base at one input size: what is trained.
#[derive(Debug, Clone)]
pub struct Arch {
    pub name: String,
    pub width: f64,
    pub size: usize,
    /// The base's spec at this width, its input `size`×`size`.
    pub spec: Spec,
}

/// `lean-w0.75-96`: base, width, size.
pub fn arch_name(base: &str, width: f64, size: usize) -> String {
    format!("{base}-w{}-{size}", fmt_width(width))
}

/// A width as written in names: `0.75`, `1`, `2`.
pub fn fmt_width(w: f64) -> String {
    format!("{w}")
}

/// One width multiplier of `--widths` (clap splits the list at commas).
pub fn parse_width(t: &str) -> std::result::Result<f64, String> {
    match t.trim().parse::<f64>() {
        Ok(w) if w.is_finite() && w > 0.0 && w <= 16.0 => Ok(w),
        _ => Err(format!(
            "invalid width {t:?}: a multiplier in (0, 16], e.g. 0.5,0.75,1"
        )),
    }
}

/// One size of `--sizes`, in pixels per side.
pub fn parse_size(t: &str) -> std::result::Result<usize, String> {
    match t.trim().parse::<usize>() {
        Ok(n) if (8..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "invalid size {t:?}: pixels per side in 8..=4096, e.g. 96,128,160"
        )),
    }
}

/// One precision of `--precisions`.
pub fn parse_precision(t: &str) -> std::result::Result<Precision, String> {
    t.parse::<Precision>().map_err(|e| e.to_string())
}
