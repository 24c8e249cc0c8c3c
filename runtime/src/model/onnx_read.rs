//! The ONNX weight reader: the parameters of an ONNX file, loaded into [`Weights`] for a
//! given [`Spec`] and input (`edgebench train --init FROM.onnx`, fine-tuning).
//!
//! The graph's parameterised nodes are taken in graph order: `Conv` (weight and
//! optional bias initializers, `group` telling a depthwise conv), `Gemm` (`transB`,
//! `alpha` and `beta` applied) and `MatMul` by a constant matrix with the `Add` of a
//! constant vector that follows it (torch.onnx's and Keras' dense layers). They are
//! matched one to one with the spec's layers that have parameters; the first layer whose
//! kind or weight shape differs is named in the error (1-based spec index, kind, expected
//! and found shape, the ONNX node), so an architecture mismatch never loads silently.
//! A missing bias reads as zeros.
//!
//! Dense weights are taken as they are: the file must flatten in NCHW order, as our own
//! writer and torch.onnx do (a tf2onnx NHWC model flattens in another order).

use std::collections::HashMap;
use std::path::Path;

use super::onnx_write::{LayerParams, Weights, weight_shape};
use super::spec::{InputShape, Layer, Shape, Spec};
use crate::error::{Error, Result};
use crate::onnx::pb::{self, data_type};

/// One parameterised node of the ONNX graph, its weight in our layout.
#[derive(Debug)]
struct OnnxParams {
    /// The node's name (or op type and position when unnamed).
    node: String,
    /// `conv`, `depthwise` or `dense` as the node reads.
    kind: &'static str,
    /// Conv `[M, C/group, kh, kw]`, dense `[units, in]`.
    weight_shape: Vec<usize>,
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
}

/// Read `path` and load its parameters for `spec` at `input`.
pub fn read_weights(path: &Path, spec: &Spec, input: InputShape) -> Result<Weights> {
    let model = crate::onnx::read_model(path)?;
    weights_from_model(&model, path, spec, input)
}

/// Load the parameters of a decoded model (`path` names it in errors).
pub fn weights_from_model(
    model: &pb::ModelProto,
    path: &Path,
    spec: &Spec,
    input: InputShape,
) -> Result<Weights> {
    let found = collect(model, path)?;
    let plan = spec.plan(input)?;
    let mut found = found.into_iter();
    let mut layers = Vec::with_capacity(plan.len());
    for (i, pl) in plan.iter().enumerate() {
        let Some((expected, _)) = weight_shape(pl) else {
            layers.push(None);
            continue;
        };
        let kind = pl.layer.kind();
        let what = format!(
            "{}: layer {} ({kind}) of {} at {input}",
            path.display(),
            i + 1,
            spec.name
        );
        let Some(got) = found.next() else {
            return Err(Error::Shape {
                what,
                expected: format!("{expected:?}"),
                got: "no more Conv/Gemm/MatMul nodes in the file".into(),
            });
        };
        let kind_ok = got.kind == kind
            || (got.kind == "conv" && kind == "depthwise" && is_depthwise_of(&got, pl));
        if !kind_ok || got.weight_shape != expected {
            return Err(Error::Shape {
                what,
                expected: format!("{kind} weight {expected:?}"),
                got: format!(
                    "{} weight {:?} (node {:?})",
                    got.kind, got.weight_shape, got.node
                ),
            });
        }
        let bias = match got.bias {
            Some(b) if b.len() == expected[0] => b,
            Some(b) => {
                return Err(Error::Shape {
                    what,
                    expected: format!("bias [{}]", expected[0]),
                    got: format!("bias [{}] (node {:?})", b.len(), got.node),
                });
            }
            None => vec![0.0; expected[0]],
        };
        layers.push(Some(LayerParams {
            weight_shape: expected,
            weight: got.weight,
            bias,
        }));
    }
    if let Some(extra) = found.next() {
        return Err(Error::Invalid(format!(
            "{}: node {:?} ({} weight {:?}) has no layer in {} (the file has more layers with parameters than the spec)",
            path.display(),
            extra.node,
            extra.kind,
            extra.weight_shape,
            spec.name
        )));
    }
    Ok(Weights { layers })
}

/// A depthwise conv on one channel has `group` 1, so it reads as a plain conv.
fn is_depthwise_of(got: &OnnxParams, pl: &super::spec::PlannedLayer) -> bool {
    let in_c = match pl.input {
        Shape::Chw(c, _, _) => c,
        Shape::Flat(n) => n,
    };
    matches!(pl.layer, Layer::Depthwise { .. }) && got.weight_shape.get(1) == Some(&1) && in_c == 1
}

/// The float data of a constant tensor, in our `f32`.
pub(crate) fn floats(t: &pb::TensorProto, path: &Path) -> Result<Vec<f32>> {
    let bad = |reason: String| Error::InvalidOnnx {
        path: path.to_path_buf(),
        reason: format!("initializer {:?}: {reason}", t.name),
    };
    const EXTERNAL: i32 = 1;
    if t.data_location == EXTERNAL {
        return Err(bad(
            "external data is not supported; save the model with its weights inside".into(),
        ));
    }
    let n = t
        .dims
        .iter()
        .try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
        .ok_or_else(|| bad(format!("bad dims {:?}", t.dims)))?;
    let data: Vec<f32> = match (t.data_type, t.raw_data.is_empty()) {
        (data_type::FLOAT, true) => t.float_data.clone(),
        (data_type::FLOAT, false) => t
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        (data_type::DOUBLE, true) => t.double_data.iter().map(|&v| v as f32).collect(),
        (data_type::DOUBLE, false) => t
            .raw_data
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect(),
        (dt, _) => {
            return Err(bad(format!(
                "element type {} (expected float32 or float64)",
                data_type::name(dt)
            )));
        }
    };
    if data.len() != n {
        return Err(bad(format!("{} values for dims {:?}", data.len(), t.dims)));
    }
    Ok(data)
}

fn dims(t: &pb::TensorProto) -> Vec<usize> {
    t.dims
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect()
}

/// `[r, c]` row-major → `[c, r]` row-major.
fn transpose(data: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = data[i * c + j];
        }
    }
    out
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// Every parameterised node of the main graph, in graph order.
fn collect(model: &pb::ModelProto, path: &Path) -> Result<Vec<OnnxParams>> {
    let Some(g) = model.graph.as_ref() else {
        return Err(Error::InvalidOnnx {
            path: path.to_path_buf(),
            reason: "no graph".into(),
        });
    };
    let inits: HashMap<&str, &pb::TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let init = |name: Option<&String>| name.and_then(|n| inits.get(n.as_str()).copied());
    let mut out = Vec::new();
    for (idx, n) in g.node.iter().enumerate() {
        let node = if n.name.is_empty() {
            format!("{}#{idx}", n.op_type)
        } else {
            n.name.clone()
        };
        match n.op_type.as_str() {
            "Conv" => {
                let Some(w) = init(n.input.get(1)) else {
                    continue;
                };
                let group = attr(n, "group").map_or(1, |a| a.i);
                let shape = dims(w);
                out.push(OnnxParams {
                    node,
                    kind: if group > 1 { "depthwise" } else { "conv" },
                    weight: floats(w, path)?,
                    weight_shape: shape,
                    bias: init(n.input.get(2)).map(|b| floats(b, path)).transpose()?,
                });
            }
            "Gemm" => {
                let Some(w) = init(n.input.get(1)) else {
                    continue;
                };
                let (alpha, beta) = (
                    attr(n, "alpha").map_or(1.0, |a| a.f),
                    attr(n, "beta").map_or(1.0, |a| a.f),
                );
                let trans_b = attr(n, "transB").is_some_and(|a| a.i != 0);
                let trans_a = attr(n, "transA").is_some_and(|a| a.i != 0);
                let shape = dims(w);
                if trans_a || shape.len() != 2 {
                    continue;
                }
                let mut weight = floats(w, path)?;
                let weight_shape = if trans_b {
                    shape
                } else {
                    weight = transpose(&weight, shape[0], shape[1]);
                    vec![shape[1], shape[0]]
                };
                weight.iter_mut().for_each(|v| *v *= alpha);
                let bias = init(n.input.get(2))
                    .map(|b| floats(b, path))
                    .transpose()?
                    .map(|b| b.into_iter().map(|v| v * beta).collect());
                out.push(OnnxParams {
                    node,
                    kind: "dense",
                    weight_shape,
                    weight,
                    bias,
                });
            }
            "MatMul" => {
                let Some(w) = init(n.input.get(1)) else {
                    continue;
                };
                let shape = dims(w);
                if shape.len() != 2 {
                    continue;
                }
                let weight = transpose(&floats(w, path)?, shape[0], shape[1]);
                // The bias: an Add of this MatMul's output and a constant vector.
                let out_name = n.output.first();
                let bias = g
                    .node
                    .iter()
                    .filter(|a| a.op_type == "Add" && out_name.is_some_and(|o| a.input.contains(o)))
                    .find_map(|a| a.input.iter().find_map(|i| inits.get(i.as_str())))
                    .map(|b| floats(b, path))
                    .transpose()?;
                out.push(OnnxParams {
                    node,
                    kind: "dense",
                    weight_shape: vec![shape[1], shape[0]],
                    weight,
                    bias,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::onnx_write::{export_weights, he_init, to_onnx};
    use crate::model::zoo;

    fn input() -> InputShape {
        "32x32x3".parse().unwrap()
    }

    #[test]
    fn export_then_read_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["lean", "mobile"] {
            let spec = zoo::builtin(name).unwrap();
            let w = he_init(&spec, input(), 3).unwrap();
            let p = dir.path().join(format!("{name}.onnx"));
            export_weights(&spec, input(), &w, &p).unwrap();
            assert_eq!(read_weights(&p, &spec, input()).unwrap(), w, "{name}");
        }
    }

    #[test]
    fn another_architecture_names_the_first_mismatching_layer() {
        let dir = tempfile::tempdir().unwrap();
        let half = zoo::builtin("lean-w0.5").unwrap();
        let p = dir.path().join("half.onnx");
        export_weights(&half, input(), &he_init(&half, input(), 1).unwrap(), &p).unwrap();
        let lean = zoo::builtin("lean").unwrap();
        let e = read_weights(&p, &lean, input()).unwrap_err().to_string();
        assert!(e.contains("half.onnx: layer 1 (conv) of lean"), "{e}");
        assert!(
            e.contains("[32, 3, 3, 3]") && e.contains("[16, 3, 3, 3]"),
            "{e}"
        );
        assert!(e.contains("l1_conv"), "{e}");
    }

    #[test]
    fn missing_and_extra_layers_are_named() {
        let lean = zoo::builtin("lean").unwrap();
        let w = he_init(&lean, input(), 2).unwrap();
        let mut m = to_onnx(&lean, input(), &w).unwrap();
        let g = m.graph.as_mut().unwrap();
        g.node.retain(|n| n.op_type != "Gemm");
        let e = weights_from_model(&m, Path::new("cut.onnx"), &lean, input())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(dense)") && e.contains("no more Conv/Gemm/MatMul"),
            "{e}"
        );
        let mut m = to_onnx(&lean, input(), &w).unwrap();
        let g = m.graph.as_mut().unwrap();
        let gemm = g.node.iter().find(|n| n.op_type == "Gemm").unwrap().clone();
        g.node.push(gemm);
        let e = weights_from_model(&m, Path::new("extra.onnx"), &lean, input())
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no layer in lean"), "{e}");
    }

    /// A dense layer written as MatMul by `[in, units]` plus Add (torch.onnx, Keras), or
    /// as Gemm without transB, reads into the same `[units, in]` weights.
    #[test]
    fn matmul_add_and_untransposed_gemm_read_alike() {
        let lean = zoo::builtin("lean").unwrap();
        let w = he_init(&lean, input(), 4).unwrap();
        for as_matmul in [true, false] {
            let mut m = to_onnx(&lean, input(), &w).unwrap();
            let g = m.graph.as_mut().unwrap();
            let pos = g.node.iter().position(|n| n.op_type == "Gemm").unwrap();
            let gemm = g.node[pos].clone();
            let wt = g
                .initializer
                .iter_mut()
                .find(|t| t.name == gemm.input[1])
                .unwrap();
            let (units, inputs) = (wt.dims[0] as usize, wt.dims[1] as usize);
            let vals: Vec<f32> = floats(wt, Path::new("m")).unwrap();
            let t = transpose(&vals, units, inputs);
            wt.raw_data.clear();
            wt.float_data = t;
            wt.dims = vec![inputs as i64, units as i64];
            if as_matmul {
                let mm = pb::NodeProto {
                    name: "dense_mm".into(),
                    op_type: "MatMul".into(),
                    input: vec![gemm.input[0].clone(), gemm.input[1].clone()],
                    output: vec!["mm_out".into()],
                    ..Default::default()
                };
                let add = pb::NodeProto {
                    name: "dense_add".into(),
                    op_type: "Add".into(),
                    input: vec!["mm_out".into(), gemm.input[2].clone()],
                    output: gemm.output.clone(),
                    ..Default::default()
                };
                g.node.splice(pos..=pos, [mm, add]);
            } else {
                g.node[pos].attribute.retain(|a| a.name != "transB");
            }
            let back = weights_from_model(&m, Path::new("t.onnx"), &lean, input()).unwrap();
            assert_eq!(back, w, "as_matmul {as_matmul}");
        }
    }
}
