//! A spec's family: the same network at another width ([`Spec::with_width`]) or depth
//! ([`Spec::with_depth`], over the convs marked `optional`), and the spec written back
//! as a spec file ([`Spec::to_toml`]) — what `edgebench shrink` searches and saves.

use super::{Activation, Layer, Padding, Spec, scale_filters};
use crate::error::{Error, Result};

impl Spec {
    /// This spec with every conv's filters scaled by `width` (rounded, at least 1) and
    /// the new `name`: the width family `base` + `width` spec files describe. The
    /// result is validated at the spec's input.
    pub fn with_width(&self, width: f64, name: &str) -> Result<Spec> {
        if !(width.is_finite() && width > 0.0) {
            return Err(Error::Spec {
                source_name: name.to_string(),
                reason: format!("width must be a positive number, got {width}"),
            });
        }
        let mut s = self.clone();
        s.name = name.to_string();
        scale_filters(&mut s.layers, width);
        s.plan(s.input)?;
        Ok(s)
    }

    /// Numbers of the layers marked `optional` (convs), in order.
    pub fn optional_convs(&self) -> Vec<usize> {
        (0..self.layers.len())
            .filter(|&i| matches!(self.layers[i], Layer::Conv { optional: true, .. }))
            .collect()
    }

    /// This spec `depth` blocks shallower or deeper, named `name`: −k drops the last k
    /// optional convs, each with the ReLU and pooling layers right after it; +k repeats
    /// each of the last k optional convs once (a copy of it right after it, stride 1,
    /// `same` padding, its filters in and out, so shapes stay). Refused when the spec
    /// marks fewer than k convs optional.
    pub fn with_depth(&self, depth: i32, name: &str) -> Result<Spec> {
        let optional = self.optional_convs();
        let k = depth.unsigned_abs() as usize;
        if k > optional.len() {
            return Err(Error::Spec {
                source_name: name.to_string(),
                reason: format!(
                    "depth {depth:+}: the spec marks {} conv layer(s) optional",
                    optional.len()
                ),
            });
        }
        let mut s = self.clone();
        s.name = name.to_string();
        for &i in optional.iter().rev().take(k) {
            if depth < 0 {
                let mut end = i + 1;
                while matches!(s.layers.get(end), Some(Layer::Relu | Layer::Maxpool { .. })) {
                    end += 1;
                }
                s.layers.drain(i..end);
            } else if let Layer::Conv {
                filters,
                kernel,
                activation,
                ..
            } = s.layers[i]
            {
                s.layers.insert(
                    i + 1,
                    Layer::Conv {
                        filters,
                        kernel,
                        stride: 1,
                        padding: Padding::Same,
                        activation,
                        optional: false,
                    },
                );
            }
        }
        s.plan(s.input)?;
        Ok(s)
    }

    /// The spec as a spec file (TOML, every layer written out, no `base`) that
    /// [`SpecFile::parse`](super::SpecFile::parse) + [`Spec::resolve`] read back into this spec.
    pub fn to_toml(&self) -> String {
        use std::fmt::Write;
        let q = |s: &str| {
            let mut o = String::from("\"");
            for ch in s.chars() {
                match ch {
                    '"' => o.push_str("\\\""),
                    '\\' => o.push_str("\\\\"),
                    c if c.is_control() => {
                        let _ = write!(o, "\\u{:04X}", c as u32);
                    }
                    c => o.push(c),
                }
            }
            o.push('"');
            o
        };
        let list = |v: &[f32]| {
            let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
            format!("[{}]", items.join(", "))
        };
        let pad = |p: Padding| match p {
            Padding::Same => "\"same\"".to_string(),
            Padding::Valid => "\"valid\"".to_string(),
            Padding::Explicit(n) => n.to_string(),
        };
        let act = |a: Activation| match a {
            Activation::None => None,
            Activation::Relu => Some("relu"),
            Activation::Softmax => Some("softmax"),
        };
        let mut t = String::new();
        let _ = writeln!(t, "name = {}", q(&self.name));
        let _ = writeln!(t, "description = {}", q(&self.description));
        let _ = writeln!(t, "input = \"{}\"", self.input);
        let p = &self.preprocess;
        let _ = writeln!(t, "\n[preprocess]\nscale = {:?}", p.scale);
        if !p.mean.is_empty() {
            let _ = writeln!(t, "mean = {}", list(&p.mean));
        }
        if !p.std.is_empty() {
            let _ = writeln!(t, "std = {}", list(&p.std));
        }
        for l in &self.layers {
            let _ = writeln!(t, "\n[[layers]]\ntype = \"{}\"", l.kind());
            let mut field = |k: &str, v: String| {
                let _ = writeln!(t, "{k} = {v}");
            };
            match *l {
                Layer::Conv {
                    filters,
                    kernel,
                    stride,
                    padding,
                    optional,
                    ..
                } => {
                    field("filters", filters.to_string());
                    field("kernel", kernel.to_string());
                    field("stride", stride.to_string());
                    field("padding", pad(padding));
                    if optional {
                        field("optional", "true".into());
                    }
                }
                Layer::Depthwise {
                    kernel,
                    stride,
                    padding,
                    multiplier,
                    ..
                } => {
                    field("kernel", kernel.to_string());
                    field("stride", stride.to_string());
                    field("padding", pad(padding));
                    field("multiplier", multiplier.to_string());
                }
                Layer::Maxpool {
                    size,
                    stride,
                    padding,
                } => {
                    field("size", size.to_string());
                    if let Some(s) = stride {
                        field("stride", s.to_string());
                    }
                    field("padding", pad(padding));
                }
                Layer::Dense { units, .. } => field("units", units.to_string()),
                Layer::Relu | Layer::Softmax | Layer::GlobalAvgPool | Layer::Flatten => {}
            }
            if let Some(a) = act(l.activation()) {
                field("activation", format!("\"{a}\""));
            }
        }
        t
    }
}
