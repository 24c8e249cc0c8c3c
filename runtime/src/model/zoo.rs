//! The built-in model zoo (the specs in `models/*.toml`, compiled into the binary so a
//! deployed `edgebench` needs no files beside it) and resolution of a user's MODEL
//! argument: a zoo name, a spec `.toml`, or an `.onnx` file.

use std::path::{Path, PathBuf};

use super::spec::{Spec, SpecFile};
use crate::error::{Error, Result};

/// The built-in specs: (name, TOML text), in display order.
pub const BUILTIN: &[(&str, &str)] = &[
    ("heavy", include_str!("../../../models/heavy.toml")),
    ("lean", include_str!("../../../models/lean.toml")),
    ("lean-w0.5", include_str!("../../../models/lean-w0.5.toml")),
    ("lean-w2", include_str!("../../../models/lean-w2.toml")),
    ("mobile", include_str!("../../../models/mobile.toml")),
];

/// Names of the built-in models.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A built-in spec by name.
pub fn builtin(name: &str) -> Result<Spec> {
    let (_, text) = BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| unknown(name))?;
    let file = SpecFile::parse(text, &format!("models/{name}.toml"))?;
    Spec::resolve(file, &builtin)
}

/// All built-in specs.
pub fn all() -> Result<Vec<Spec>> {
    names().into_iter().map(builtin).collect()
}

/// One line of `edgebench models list` (fields in the order the JSON prints them).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub description: String,
    /// The input size the figures are for.
    pub input: String,
    pub layers: usize,
    /// Multiply-accumulates per image.
    pub macs: u64,
    pub name: String,
    pub params: u64,
}

/// Every built-in model's parameters and MACs at `input` (each model's own when `None`).
pub fn summaries(input: Option<super::spec::InputShape>) -> Result<Vec<Summary>> {
    all()?
        .into_iter()
        .map(|spec| {
            let inp = input.unwrap_or(spec.input);
            Ok(Summary {
                description: spec.description.clone(),
                input: inp.to_string(),
                layers: spec.layers.len(),
                macs: spec.macs(inp)?,
                name: spec.name.clone(),
                params: spec.params(inp)?,
            })
        })
        .collect()
}

/// The table of `edgebench models list`: one row per summary.
pub fn list_text(rows: &[Summary]) -> String {
    use crate::units::{count, thousands};
    let mut s = format!(
        "{:<10} {:>11} {:>14} {:>10}  description\n",
        "model", "input", "params", "MACs"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<10} {:>11} {:>14} {:>10}  {}\n",
            r.name,
            r.input,
            thousands(r.params),
            count(r.macs),
            r.description
        ));
    }
    s
}

/// The table of `edgebench models show`: `spec`'s layers at `input` with their output
/// shapes, parameters and MACs, and the totals.
pub fn layers_text(spec: &Spec, input: super::spec::InputShape) -> Result<String> {
    use crate::units::{count, thousands};
    let plan = spec.plan(input)?;
    let mut s = format!("{} — {} (input {input})\n", spec.name, spec.description);
    s.push_str(&format!(
        "{:>3} {:<16} {:>14} {:>12} {:>10}\n",
        "#", "layer", "output", "params", "MACs"
    ));
    for (i, l) in plan.iter().enumerate() {
        s.push_str(&format!(
            "{:>3} {:<16} {:>14} {:>12} {:>10}\n",
            i + 1,
            l.layer.kind(),
            l.output.to_string(),
            thousands(l.params),
            count(l.macs)
        ));
    }
    s.push_str(&format!(
        "total: {} params, {} MACs per image\n",
        thousands(plan.iter().map(|l| l.params).sum()),
        count(plan.iter().map(|l| l.macs).sum())
    ));
    Ok(s)
}

/// Load a spec from a TOML file; `base` may name a built-in model.
pub fn load_spec_file(path: &Path) -> Result<Spec> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file = SpecFile::parse(&text, &path.display().to_string())?;
    Spec::resolve(file, &builtin)
}

/// What a MODEL argument names.
#[derive(Debug, Clone)]
pub enum ModelRef {
    /// A spec (built-in or from a `.toml` file): exported to ONNX before it runs.
    Spec(Spec),
    /// An existing ONNX file.
    Onnx(PathBuf),
}

/// Resolve a MODEL argument: a built-in name, a `.toml` spec file, or an `.onnx` file.
pub fn resolve(arg: &str) -> Result<ModelRef> {
    if BUILTIN.iter().any(|(n, _)| *n == arg) {
        return builtin(arg).map(ModelRef::Spec);
    }
    let path = Path::new(arg);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("toml") => load_spec_file(path).map(ModelRef::Spec),
        Some("onnx") => {
            if !path.exists() {
                return Err(Error::io(
                    path,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                ));
            }
            Ok(ModelRef::Onnx(path.to_path_buf()))
        }
        _ if path.is_file() => Ok(ModelRef::Onnx(path.to_path_buf())),
        _ => Err(unknown(arg)),
    }
}

fn unknown(name: &str) -> Error {
    Error::UnknownModel {
        name: name.to_string(),
        known: names().join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_param_counts_and_macs() {
        let heavy = builtin("heavy").unwrap();
        let lean = builtin("lean").unwrap();
        assert_eq!(heavy.params(heavy.input).unwrap(), 7_261_450);
        assert_eq!(lean.params(lean.input).unwrap(), 1_403_978);
        // 256²·128·147 + 128²·256·3200 + 64²·512·2304 + 524288·10
        assert_eq!(heavy.macs(heavy.input).unwrap(), 19_491_979_264);
        // 256²·32·27 + 128²·64·288 + 64²·128·576 + 131072·10
        assert_eq!(lean.macs(lean.input).unwrap(), 661_913_600);
    }

    #[test]
    fn width_family_scales_filters() {
        let half = builtin("lean-w0.5").unwrap();
        let double = builtin("lean-w2").unwrap();
        let filters = |s: &Spec| {
            s.layers
                .iter()
                .filter_map(|l| match l {
                    super::super::spec::Layer::Conv { filters, .. } => Some(*filters),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(filters(&half), vec![16, 32, 64]);
        assert_eq!(filters(&double), vec![64, 128, 256]);
        // flatten 32·32·64 → dense 10: 655,370 + convs (448 + 4,640 + 18,496)
        assert_eq!(
            half.params(half.input).unwrap(),
            448 + 4_640 + 18_496 + 655_370
        );
    }

    #[test]
    fn specs_write_back_as_spec_files() {
        let mut specs = all().unwrap();
        let mut odd = builtin("mobile")
            .unwrap()
            .with_width(0.75, "m \"q\"")
            .unwrap();
        odd.preprocess.mean = vec![0.485, 0.456, 0.406];
        odd.preprocess.std = vec![0.229, 0.224, 0.225];
        odd.description = "tab\there".into();
        odd.layers.insert(
            1,
            super::super::spec::Layer::Maxpool {
                size: 3,
                stride: Some(1),
                padding: super::super::spec::Padding::Explicit(1),
            },
        );
        specs.push(odd);
        for spec in specs {
            let text = spec.to_toml();
            let back = Spec::resolve(SpecFile::parse(&text, "x.toml").unwrap(), &builtin)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", spec.name));
            assert_eq!(back, spec, "{text}");
        }
    }

    #[test]
    fn with_width_is_the_width_family() {
        let lean = builtin("lean").unwrap();
        assert_eq!(lean.with_width(0.5, "lean-w0.5").unwrap(), {
            let mut h = builtin("lean-w0.5").unwrap();
            h.description = lean.description.clone();
            h
        });
        assert!(lean.with_width(0.0, "x").is_err());
        assert!(lean.with_width(f64::NAN, "x").is_err());
    }

    #[test]
    fn every_builtin_resolves_and_ends_in_ten_classes() {
        for spec in all().unwrap() {
            assert_eq!(spec.classes(spec.input).unwrap(), 10, "{}", spec.name);
        }
    }

    #[test]
    fn unknown_model_lists_the_zoo() {
        let e = resolve("nope").unwrap_err().to_string();
        assert!(e.contains("unknown model \"nope\""), "{e}");
        assert!(e.contains("heavy, lean"), "{e}");
    }

    #[test]
    fn bad_specs_are_named() {
        let e = SpecFile::parse("name = \"x\"\nlayer = []", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml: invalid model spec"), "{e}");
        assert!(e.contains("layer"), "{e}");
        let f = SpecFile::parse(
            "name = \"x\"\ninput = \"8x8x3\"\n[[layers]]\ntype = \"dense\"\nunits = 3\n",
            "x.toml",
        )
        .unwrap();
        let e = Spec::resolve(f, &builtin).unwrap_err().to_string();
        assert!(e.contains("layer 1 (dense): needs a flat input"), "{e}");
        let f = SpecFile::parse(
            "name = \"x\"\ninput = \"4x4x3\"\n[[layers]]\ntype = \"conv\"\nfilters = 3\nkernel = 7\npadding = \"valid\"\n",
            "x.toml",
        )
        .unwrap();
        let e = Spec::resolve(f, &builtin).unwrap_err().to_string();
        assert!(e.contains("kernel 7 does not fit the 4x4 input"), "{e}");
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        use super::super::spec::Padding;
        // TF: out = ceil(in/s); the odd pad goes after.
        assert_eq!(Padding::Same.resolve(256, 3, 2), Some((128, 0, 1)));
        assert_eq!(Padding::Same.resolve(256, 7, 1), Some((256, 3, 3)));
        assert_eq!(Padding::Valid.resolve(256, 2, 2), Some((128, 0, 0)));
        assert_eq!(Padding::Valid.resolve(1, 2, 2), None);
    }
}
