//! Shared helpers of the trainer tests: a tiny spec and labelled synthetic batches.
#![allow(dead_code)]

use edgebench_runtime::data::synth;
use edgebench_runtime::model::spec::{InputShape, Spec, SpecFile};
use edgebench_runtime::train::optim::OptimizerConfig;
use edgebench_runtime::train::program::plan::Trainable;
use edgebench_runtime::train::schedule::Schedule;
use edgebench_runtime::train::trainer::TrainerConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A small CNN with every kind the lean model has (conv+relu, max-pool, flatten, dense
/// with softmax) plus a standalone ReLU, a depthwise conv and a global average pool
/// when `depthwise` (with strided, asymmetrically padded convolutions).
pub fn tiny_spec(classes: usize, depthwise: bool) -> Spec {
    let middle = if depthwise {
        "[[layers]]\ntype = \"depthwise\"\nkernel = 3\nstride = 2\n\n[[layers]]\ntype = \"relu\"\n\n\
         [[layers]]\ntype = \"conv\"\nfilters = 6\nkernel = 1\nactivation = \"relu\"\n\n\
         [[layers]]\ntype = \"global_avg_pool\"\n"
    } else {
        "[[layers]]\ntype = \"conv\"\nfilters = 6\nkernel = 3\npadding = \"same\"\n\n\
         [[layers]]\ntype = \"relu\"\n\n[[layers]]\ntype = \"maxpool\"\nsize = 2\n\n\
         [[layers]]\ntype = \"flatten\"\n"
    };
    // The depthwise variant's first conv has stride 2: Keras `same` padding then puts
    // the extra row and column at the end (asymmetric), as in the `mobile` model.
    let stride = if depthwise { 2 } else { 1 };
    let text = format!(
        "name = \"tiny\"\ninput = \"8x8x3\"\n\n[[layers]]\ntype = \"conv\"\nfilters = 4\n\
         kernel = 3\nstride = {stride}\npadding = \"same\"\nactivation = \"relu\"\n\n\
         [[layers]]\ntype = \"maxpool\"\nsize = 2\n\n{middle}\n[[layers]]\ntype = \
         \"dense\"\nunits = {classes}\nactivation = \"softmax\"\n"
    );
    let file = SpecFile::parse(&text, "tiny.toml").unwrap();
    Spec::resolve(file, &|n| panic!("no base {n}")).unwrap()
}

/// Lean's structure (conv + ReLU → 2×2 max-pool three times, then a dense softmax) at
/// 16×16×3, small enough for finite differences yet with 8 channels, so that conv_3 and
/// conv_5 run Winograd and every conv → ReLU → pool runs as one fused pass, forward
/// and backward (the pooled gradient expanded inside the conv's backward).
pub fn lean_like_spec(classes: usize) -> Spec {
    let conv = "[[layers]]\ntype = \"conv\"\nfilters = 8\nkernel = 3\npadding = \"same\"\n\
                activation = \"relu\"\n\n[[layers]]\ntype = \"maxpool\"\nsize = 2\n\n";
    let text = format!(
        "name = \"lean_like\"\ninput = \"16x16x3\"\n\n{conv}{conv}{conv}[[layers]]\n\
         type = \"flatten\"\n\n[[layers]]\ntype = \"dense\"\nunits = {classes}\n\
         activation = \"softmax\"\n"
    );
    let file = SpecFile::parse(&text, "lean_like.toml").unwrap();
    Spec::resolve(file, &|n| panic!("no base {n}")).unwrap()
}

/// `n` synthetic images (edgebench's `data synth` renderer) of `size`², scaled to
/// [0, 1], NCHW, with labels cycling over `classes`.
pub fn synth_batch(classes: usize, n: usize, size: u32, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plane = (size * size) as usize;
    let mut x = vec![0.0f32; n * 3 * plane];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (i + seed as usize) % classes;
        let img = synth::render(class, size, &mut rng);
        for (p, px) in img.pixels().enumerate() {
            for c in 0..3 {
                x[(i * 3 + c) * plane + p] = f32::from(px.0[c]) / 255.0;
            }
        }
        labels.push(class);
    }
    (x, labels)
}

/// Input shape `size`×`size`×3.
pub fn square(size: usize) -> InputShape {
    InputShape {
        height: size,
        width: size,
        channels: 3,
    }
}

/// A config: micro-batch, accumulation, trainable set, optimizer, constant rate.
pub fn config(
    micro_batch: usize,
    accumulation_steps: usize,
    trainable: Trainable,
    optimizer: OptimizerConfig,
    lr: f32,
) -> TrainerConfig {
    TrainerConfig {
        micro_batch,
        accumulation_steps,
        trainable,
        optimizer,
        schedule: Schedule::Constant { lr },
        threads: 1,
        seed: 7,
    }
}

/// Every parameter, flattened in layer order (weights then bias).
pub fn flat(w: &edgebench_runtime::model::onnx_write::Weights) -> Vec<f32> {
    w.layers
        .iter()
        .flatten()
        .flat_map(|l| l.weight.iter().chain(&l.bias).copied())
        .collect()
}
