//! Golden training steps from PyTorch (`scripts/make-train-golden.py`,
//! `tests/fixtures/train-golden/steps.json`): a tiny conv → ReLU → max-pool → conv → ReLU
//! → global-average-pool → dense net with fixed weights takes two steps on one fixed batch
//! with SGD momentum + weight decay, Nesterov, Adam (coupled decay) and AdamW; our
//! losses and parameters after each step must match PyTorch's to 1e-5.
//!
//! The steps are replayed twice: with the layer kernels and [`Optimizer`] wired by hand
//! (what each kernel computes), and through the [`Trainer`] built from the same net as a
//! spec (what `edgebench train` runs: arena, fused loss, accumulation, schedule).

use std::collections::HashMap;
use std::path::PathBuf;

use edgebench_runtime::model::onnx_write::{LayerParams, Weights};
use edgebench_runtime::model::spec::{InputShape, Spec, SpecFile};
use edgebench_runtime::train::kernels::conv::{Conv2dShape, conv2d_backward, conv2d_forward};
use edgebench_runtime::train::kernels::dense::{
    DenseShape, dense_backward, dense_forward, softmax_cross_entropy,
};
use edgebench_runtime::train::kernels::pooling::{
    PoolShape, gap_backward, gap_forward, maxpool_backward, maxpool_forward, relu_backward,
    relu_forward,
};
use edgebench_runtime::train::optim::{Optimizer, OptimizerConfig};
use edgebench_runtime::train::schedule::Schedule;
use edgebench_runtime::train::trainer::{Trainer, TrainerConfig};
use serde_json::Value;

const TOL: f32 = 1e-5;
const N: usize = 4;
const CLASSES: usize = 3;
/// Parameter order: the one PyTorch's optimizer saw (and our flat vector).
const NAMES: [&str; 6] = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "dense.weight",
    "dense.bias",
];

struct Golden {
    input: Vec<f32>,
    labels: Vec<usize>,
    initial: HashMap<String, Vec<f32>>,
    cases: Vec<Value>,
}

fn floats(v: &Value) -> Vec<f32> {
    v["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn load() -> Golden {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/train-golden/steps.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture"))
        .expect("fixture JSON");
    let initial = NAMES
        .iter()
        .map(|n| (n.to_string(), floats(&doc["initial"][n])))
        .collect();
    Golden {
        input: floats(&doc["input"]),
        labels: doc["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect(),
        initial,
        cases: doc["cases"].as_array().unwrap().clone(),
    }
}

fn optimizer(case: &Value) -> OptimizerConfig {
    let f = |k: &str| case[k].as_f64().unwrap_or_else(|| panic!("{k}")) as f32;
    match case["optimizer"].as_str().unwrap() {
        "sgd" | "nesterov" => OptimizerConfig::Sgd {
            momentum: f("momentum"),
            nesterov: case["optimizer"] == "nesterov",
            weight_decay: f("weight_decay"),
        },
        "adam" => OptimizerConfig::Adam {
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
        },
        "adamw" => OptimizerConfig::AdamW {
            beta1: f("beta1"),
            beta2: f("beta2"),
            eps: f("eps"),
            weight_decay: f("weight_decay"),
        },
        other => panic!("unknown optimizer {other}"),
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL * (1.0 + w.abs()),
            "{what}[{i}]: ours {g}, PyTorch {w}"
        );
    }
}

const CONV1: Conv2dShape = Conv2dShape {
    n: N,
    c_in: 3,
    h: 8,
    w: 8,
    c_out: 4,
    kh: 3,
    kw: 3,
    stride: 1,
    pad: 1,
};
const POOL: PoolShape = PoolShape {
    n: N,
    c: 4,
    h: 8,
    w: 8,
    k: 2,
    stride: 2,
};
const CONV2: Conv2dShape = Conv2dShape {
    n: N,
    c_in: 4,
    h: 4,
    w: 4,
    c_out: 6,
    kh: 3,
    kw: 3,
    stride: 1,
    pad: 1,
};
const DENSE: DenseShape = DenseShape {
    n: N,
    inputs: 6,
    outputs: CLASSES,
};

/// Offsets of each named parameter in the flat vector.
fn offsets(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut at = 0;
    sizes
        .iter()
        .map(|&s| {
            at += s;
            at - s..at
        })
        .collect()
}

/// Forward + backward with the kernels: the mean loss and the flat gradient.
fn loss_and_grads(
    p: &[f32],
    r: &[std::ops::Range<usize>],
    x: &[f32],
    labels: &[usize],
) -> (f32, Vec<f32>) {
    let ws = CONV1
        .backward_workspace_len()
        .unwrap()
        .max(CONV2.backward_workspace_len().unwrap());
    let mut work = vec![0.0; ws];
    let mut a1 = vec![0.0; N * 4 * 64];
    conv2d_forward(
        CONV1,
        x,
        &p[r[0].clone()],
        Some(&p[r[1].clone()]),
        &mut a1,
        &mut work,
        1,
    )
    .unwrap();
    let mut r1 = vec![0.0; a1.len()];
    relu_forward(&a1, &mut r1).unwrap();
    let mut pooled = vec![0.0; N * 4 * 16];
    let mut argmax = vec![0u32; pooled.len()];
    maxpool_forward(POOL, &r1, &mut pooled, &mut argmax).unwrap();
    let mut a2 = vec![0.0; N * 6 * 16];
    conv2d_forward(
        CONV2,
        &pooled,
        &p[r[2].clone()],
        Some(&p[r[3].clone()]),
        &mut a2,
        &mut work,
        1,
    )
    .unwrap();
    let mut r2 = vec![0.0; a2.len()];
    relu_forward(&a2, &mut r2).unwrap();
    let mut g = vec![0.0; N * 6];
    gap_forward(N, 6, 16, &r2, &mut g).unwrap();
    let mut logits = vec![0.0; N * CLASSES];
    dense_forward(
        DENSE,
        &g,
        &p[r[4].clone()],
        Some(&p[r[5].clone()]),
        &mut logits,
        1,
    )
    .unwrap();
    let mut dlogits = vec![0.0; logits.len()];
    let loss = softmax_cross_entropy(&logits, labels, CLASSES, &mut dlogits).unwrap();

    let mut grads = vec![0.0; p.len()];
    let (mut dg, mut dr2, mut da2) = (vec![0.0; g.len()], vec![0.0; r2.len()], vec![0.0; a2.len()]);
    let (mut dpooled, mut dr1, mut da1) = (
        vec![0.0; pooled.len()],
        vec![0.0; r1.len()],
        vec![0.0; a1.len()],
    );
    let mut dx = vec![0.0; x.len()];
    {
        let (gw, gb) = grads[r[4].start..r[5].end].split_at_mut(r[4].len());
        dense_backward(
            DENSE,
            &g,
            &p[r[4].clone()],
            &dlogits,
            &mut dg,
            gw,
            Some(gb),
            1,
        )
        .unwrap();
    }
    gap_backward(N, 6, 16, &dg, &mut dr2).unwrap();
    relu_backward(&r2, &dr2, &mut da2).unwrap();
    {
        let (gw, gb) = grads[r[2].start..r[3].end].split_at_mut(r[2].len());
        conv2d_backward(
            CONV2,
            &pooled,
            &p[r[2].clone()],
            &da2,
            &mut dpooled,
            gw,
            Some(gb),
            &mut work,
            1,
        )
        .unwrap();
    }
    maxpool_backward(POOL, &argmax, &dpooled, &mut dr1).unwrap();
    relu_backward(&r1, &dr1, &mut da1).unwrap();
    {
        let (gw, gb) = grads[r[0].start..r[1].end].split_at_mut(r[0].len());
        conv2d_backward(
            CONV1,
            x,
            &p[r[0].clone()],
            &da1,
            &mut dx,
            gw,
            Some(gb),
            &mut work,
            1,
        )
        .unwrap();
    }
    (loss, grads)
}

#[test]
fn kernels_and_optimizers_match_pytorch() {
    let golden = load();
    let sizes: Vec<usize> = NAMES.iter().map(|n| golden.initial[*n].len()).collect();
    let r = offsets(&sizes);
    for case in &golden.cases {
        let name = case["optimizer"].as_str().unwrap();
        let lr = case["lr"].as_f64().unwrap() as f32;
        let mut params: Vec<f32> = NAMES
            .iter()
            .flat_map(|n| golden.initial[*n].clone())
            .collect();
        let mut opt = Optimizer::new(optimizer(case), params.len()).unwrap();
        for (s, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let (loss, grads) = loss_and_grads(&params, &r, &golden.input, &golden.labels);
            let want_loss = step["loss"].as_f64().unwrap() as f32;
            assert_close(
                &format!("{name} step {} loss", s + 1),
                &[loss],
                &[want_loss],
            );
            opt.step(&mut params, &grads, lr).unwrap();
            for (k, range) in NAMES.iter().zip(&r) {
                let want = floats(&step["params"][k]);
                assert_close(
                    &format!("{name} step {} {k}", s + 1),
                    &params[range.clone()],
                    &want,
                );
            }
        }
    }
}

/// The golden net as a spec: the layers `edgebench train` would read from a `.toml`.
const SPEC: &str = r#"
name = "golden"
input = "8x8x3"
[[layers]]
type = "conv"
filters = 4
kernel = 3
padding = "same"
activation = "relu"
[[layers]]
type = "maxpool"
size = 2
[[layers]]
type = "conv"
filters = 6
kernel = 3
padding = "same"
activation = "relu"
[[layers]]
type = "global_avg_pool"
[[layers]]
type = "dense"
units = 3
"#;

/// PyTorch's parameters (by name) as the spec's per-layer weights.
fn weights_of(get: &dyn Fn(&str) -> Vec<f32>) -> Weights {
    let layer = |w: &str, b: &str, shape: Vec<usize>| {
        Some(LayerParams {
            weight_shape: shape,
            weight: get(w),
            bias: get(b),
        })
    };
    Weights {
        layers: vec![
            layer("conv1.weight", "conv1.bias", vec![4, 3, 3, 3]),
            None,
            layer("conv2.weight", "conv2.bias", vec![6, 4, 3, 3]),
            None,
            layer("dense.weight", "dense.bias", vec![3, 6]),
        ],
    }
}

#[test]
fn trainer_matches_pytorch() {
    let golden = load();
    let file = SpecFile::parse(SPEC, "golden.toml").unwrap();
    let spec = Spec::resolve(file, &|name| panic!("no base {name}")).unwrap();
    let input: InputShape = "8x8x3".parse().unwrap();
    let init = weights_of(&|k| golden.initial[k].clone());
    for case in &golden.cases {
        let name = case["optimizer"].as_str().unwrap();
        let lr = case["lr"].as_f64().unwrap() as f32;
        // Once as one batch of 4, once as two accumulated micro-batches of 2.
        for micro in [N, N / 2] {
            let mut cfg = TrainerConfig::new(micro);
            cfg.accumulation_steps = N / micro;
            cfg.optimizer = optimizer(case);
            cfg.schedule = Schedule::Constant { lr };
            let mut t = Trainer::new(&spec, input, cfg).unwrap();
            t.set_weights(&init).unwrap();
            let img = golden.input.len() / N;
            for (s, step) in case["steps"].as_array().unwrap().iter().enumerate() {
                let mut loss = 0.0;
                for m in 0..N / micro {
                    let (a, b) = (m * micro, (m + 1) * micro);
                    let st = t
                        .step(&golden.input[a * img..b * img], &golden.labels[a..b])
                        .unwrap();
                    loss += st.loss * micro as f32 / N as f32;
                }
                let what = format!("trainer {name} micro-batch {micro} step {}", s + 1);
                let want_loss = step["loss"].as_f64().unwrap() as f32;
                assert_close(&format!("{what} loss"), &[loss], &[want_loss]);
                assert_eq!(t.updates(), s as u64 + 1, "{what}");
                let got = t.weights().unwrap();
                let want = weights_of(&|k| floats(&step["params"][k]));
                assert_eq!(got.layers.len(), want.layers.len(), "{what}: layers");
                for (i, (g, w)) in got.layers.iter().zip(&want.layers).enumerate() {
                    match (g, w) {
                        (Some(g), Some(w)) => {
                            assert_eq!(g.weight_shape, w.weight_shape, "{what} layer {}", i + 1);
                            assert_close(
                                &format!("{what} layer {} weight", i + 1),
                                &g.weight,
                                &w.weight,
                            );
                            assert_close(&format!("{what} layer {} bias", i + 1), &g.bias, &w.bias);
                        }
                        (None, None) => {}
                        (g, w) => panic!(
                            "{what} layer {}: the trainer has parameters: {}, PyTorch has: {}",
                            i + 1,
                            g.is_some(),
                            w.is_some()
                        ),
                    }
                }
            }
        }
    }
}
