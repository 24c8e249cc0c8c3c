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

/// Width multipliers, depths, square input sizes (pixels per side) and precisions to
/// search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub widths: Vec<f64>,
    /// Blocks dropped (−k) or repeated (+k) where the spec marks convs optional
    /// ([`Spec::with_depth`]); `[0]` for the spec's own depth.
    pub depths: Vec<i32>,
    pub sizes: Vec<usize>,
    pub precisions: Vec<Precision>,
}

/// Widths searched unless `--widths` narrows them.
pub const DEFAULT_WIDTHS: [f64; 6] = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0];

impl Space {
    /// The default space around `base`: [`DEFAULT_WIDTHS`], one block less and more
    /// where the spec marks convs optional (else its own depth), half, three quarters
    /// and all of the base's input side (multiples of 8), fp32 and int8.
    pub fn default_for(base: &Spec) -> Space {
        let side = base.input.height.min(base.input.width);
        let mut sizes: Vec<usize> = [0.5, 0.75, 1.0]
            .iter()
            .map(|f| (((side as f64 * f) / 8.0).round() as usize * 8).max(8))
            .collect();
        sizes.dedup();
        Space {
            widths: DEFAULT_WIDTHS.to_vec(),
            depths: if base.optional_convs().is_empty() {
                vec![0]
            } else {
                vec![-1, 0, 1]
            },
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
        self.depths.sort_unstable();
        self.depths.dedup();
        self.sizes.sort_unstable();
        self.sizes.dedup();
        self.precisions.sort_unstable();
        self.precisions.dedup();
        for (flag, empty) in [
            ("--widths", self.widths.is_empty()),
            ("--depths", self.depths.is_empty()),
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

    /// Number of archs (widths × depths × sizes).
    pub fn arch_count(&self) -> usize {
        self.widths.len() * self.depths.len() * self.sizes.len()
    }

    /// Number of candidates (archs × precisions).
    pub fn len(&self) -> usize {
        self.arch_count() * self.precisions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One line: the axes and the count.
    pub fn describe(&self) -> String {
        let widths: Vec<String> = self.widths.iter().map(|w| fmt_width(*w)).collect();
        let depths: Vec<String> = self.depths.iter().map(|d| format!("{d:+}")).collect();
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        let precs: Vec<&str> = self.precisions.iter().map(|p| p.name()).collect();
        let depth = if self.depths == [0] {
            String::new()
        } else {
            format!(" × depths {}", depths.join(","))
        };
        format!(
            "widths {}{depth} × sizes {} × precisions {} = {} candidates ({} to train)",
            widths.join(","),
            sizes.join(","),
            precs.join(","),
            self.len(),
            self.arch_count()
        )
    }

    /// Every width at every depth and size, in order (width, depth, size). One the
    /// base cannot make (a depth beyond its optional convs, an input too small for its
    /// layers) is left out with the reason in the second list.
    pub fn arches(&self, base: &Spec) -> (Vec<Arch>, Vec<(String, String)>) {
        let (mut ok, mut skipped) = (Vec::new(), Vec::new());
        for &w in &self.widths {
            for &d in &self.depths {
                for &s in &self.sizes {
                    let name = arch_name(&base.name, w, d, s);
                    let made = base
                        .with_width(w, &name)
                        .and_then(|spec| spec.with_depth(d, &name))
                        .and_then(|mut spec| {
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
                            depth: d,
                            size: s,
                            spec,
                        }),
                        Err(e) => skipped.push((name, e.to_string())),
                    }
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
    /// Blocks dropped (< 0) or repeated (> 0).
    pub depth: i32,
    pub size: usize,
    /// The base's spec at this width, its input `size`×`size`.
    pub spec: Spec,
}

/// `lean-w0.75-96`: base, width, size; `lean-w1-drop1-64`, `lean-w1-rep1-64` at
/// another depth.
pub fn arch_name(base: &str, width: f64, depth: i32, size: usize) -> String {
    let d = match depth {
        0 => String::new(),
        d if d < 0 => format!("-drop{}", -d),
        d => format!("-rep{d}"),
    };
    format!("{base}-w{}{d}-{size}", fmt_width(width))
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

/// One depth of `--depths`: blocks dropped (−k) or repeated (+k).
pub fn parse_depth(t: &str) -> std::result::Result<i32, String> {
    match t.trim().parse::<i32>() {
        Ok(d) if (-8..=8).contains(&d) => Ok(d),
        _ => Err(format!(
            "invalid depth {t:?}: blocks dropped (−k) or repeated (+k), −8..=8, e.g. -1,0,1"
        )),
    }
}

/// One precision of `--precisions`.
pub fn parse_precision(t: &str) -> std::result::Result<Precision, String> {
    t.parse::<Precision>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::{Layer, SpecFile};
    use crate::model::zoo;

    /// conv 8 → pool → conv 16 (optional) → pool → flatten → dense 4, at 16×16.
    fn tiny_with_optional_conv() -> Spec {
        let text = include_str!("../../../tests/fixtures/specs/tiny.toml").replacen(
            "filters = 16\n",
            "filters = 16\noptional = true\n",
            1,
        );
        Spec::resolve(SpecFile::parse(&text, "tiny.toml").unwrap(), &zoo::builtin).unwrap()
    }

    #[test]
    fn depths_drop_and_repeat_the_optional_blocks() {
        let base = tiny_with_optional_conv();
        assert_eq!(base.optional_convs(), [2]);
        let space = Space::default_for(&base);
        assert_eq!(space.depths, [-1, 0, 1]);
        let space = Space {
            widths: vec![1.0],
            depths: vec![-2, -1, 0, 1],
            sizes: vec![16],
            precisions: vec![Precision::Fp32],
        }
        .normalized()
        .unwrap();
        assert!(
            space.describe().contains("× depths -2,-1,+0,+1 ×"),
            "{}",
            space.describe()
        );
        let (arches, skipped) = space.arches(&base);
        let names: Vec<&str> = arches.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["tiny-w1-drop1-16", "tiny-w1-16", "tiny-w1-rep1-16"]);
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].0 == "tiny-w1-drop2-16"
                && skipped[0].1.contains("marks 1 conv layer(s) optional"),
            "{skipped:?}"
        );
        let kinds = |s: &Spec| {
            s.layers
                .iter()
                .map(Layer::kind)
                .collect::<Vec<_>>()
                .join(" ")
        };
        // Dropped: the optional conv and its pool; flatten now sees 8×8×8.
        assert_eq!(kinds(&arches[0].spec), "conv maxpool flatten dense");
        assert_eq!(
            arches[0].spec.params(arches[0].spec.input).unwrap(),
            224 + 2_052
        );
        // Repeated: a 16 → 16 conv right after it, shapes unchanged.
        assert_eq!(
            kinds(&arches[2].spec),
            "conv maxpool conv conv maxpool flatten dense"
        );
        let own = arches[1].spec.params(arches[1].spec.input).unwrap();
        assert_eq!(
            arches[2].spec.params(arches[2].spec.input).unwrap(),
            own + 16 * 16 * 9 + 16
        );
        // A spec without optional convs searches its own depth only, and says why not more.
        let lean = zoo::builtin("lean").unwrap();
        assert_eq!(Space::default_for(&lean).depths, [0]);
        assert!(lean.with_depth(1, "x").is_err());
        // The marker survives the spec file the search writes.
        let text = base.to_toml();
        assert!(text.contains("optional = true"), "{text}");
    }
}
