//! Training memory planner: every buffer a training step needs, in bytes, before any is
//! allocated, and the largest micro-batch that fits a memory budget.
//!
//! [`plan`] walks the layers of a [`Spec`] (shapes from [`Spec::plan`]) and adds up, for a
//! micro-batch of `n` images (all `f32` = 4 bytes unless said otherwise):
//!
//! - **parameters**: every layer's weights and biases, trainable or frozen;
//! - **gradients**: one slot per *trainable* parameter: the whole layer for a fully
//!   trainable layer, only the bias for [`Trainable::BiasOnly`], nothing for a frozen one;
//! - **optimizer state**: `optimizer_state_factor ×` the gradient bytes (SGD 0, SGD with
//!   momentum 1, Adam/AdamW 2; see
//!   [`OptimizerConfig::state_per_param`](crate::train::optim::OptimizerConfig::state_per_param));
//!   frozen parameters keep none;
//! - **saved activations** (kept from forward to backward), per layer:
//!   - conv / depthwise / dense: the layer *input* when its weights train (for `dW`);
//!     bias-only or frozen layers need no input (`db = Σ dy`, `dx = Wᵀ·dy` need only `W`);
//!   - a fused or standalone ReLU: its *output*, when a gradient flows through it;
//!   - max-pool: the argmax (`u32`, 4 bytes per output element), when a gradient flows;
//!   - global average pool, flatten: nothing (flatten's output is its input's memory);
//!   - softmax as the last layer (or a last dense with softmax activation): fused into the
//!     softmax cross-entropy loss, which keeps `n × classes` dlogits (the `loss` row);
//!     a softmax elsewhere keeps its output;
//!   - a tensor needed twice (a ReLU output that is also the next conv's input) is counted
//!     once, on the first layer that needs it; the network input is never counted here
//!     (it is the input batch, below);
//! - **forward buffers**: the activations that are *not* saved go through two ping-pong
//!   buffers, each as large as the largest such tensor written to it. A fused pass
//!   writes only its last output: a conv followed by its ReLU writes the ReLU's output
//!   (never the pre-activation), and conv → ReLU → 2×2 max-pool on the fast paths writes
//!   only the pooled output;
//! - **activation gradients**: two ping-pong buffers for the gradients of the activations
//!   during backward, each as large as the largest gradient written to it (they
//!   alternate pass by pass). A first conv whose weight gradient comes straight from its
//!   pool's gradient writes neither its ReLU's nor its own output gradient. Forward
//!   buffers and activation gradients never live at the same time, so they share one
//!   region and the total counts only the larger of the two ([`MemoryPlan::scratch`]);
//! - **workspace**: one shared buffer for the largest per-layer need: for a 3×3 stride-1
//!   "same" conv, Winograd's transformed weights and one thread's tile scratch (a few
//!   MiB at most; each further thread adds its own, like its GEMM packing buffer);
//!   for other convs an im2col matrix (per image, see
//!   [`Conv2dShape`](crate::train::kernels::conv::Conv2dShape)`::forward_workspace_len`)
//!   or, when the conv runs backward, one such matrix for `dW` and one for `dx` (each
//!   only when computed);
//! - **input batch** `n × C × H × W` and **labels** `n × size_of::<usize>()`.
//!
//! The forward buffers, activation gradients and workspace are read from the trainer's
//! own lowering of the spec (`Program::lower`, on one thread), so plan and arena agree.
//!
//! A gradient *flows* through layer `i` when some trainable layer sits at or before `i`;
//! layers before the first trainable one run forward only and save nothing (the
//! TinyEngine/PockEngine partial update), and the first trainable layer computes no `dx`.
//! With [`Trainable::BiasOnly`] every layer with parameters is trainable (bias only), so
//! gradients flow back to the first layer with parameters but almost nothing is saved.
//!
//! [`fit`] finds the largest micro-batch `m ≤ effective` whose plan fits the budget, takes
//! `steps = ⌈effective / m⌉` accumulation steps, then balances the micro-batch to
//! `⌈effective / steps⌉ ≤ m` (same number of steps, less memory); when `steps` does not
//! divide `effective` the last step is smaller ([`Fit::last_micro_batch`]). When not even
//! one image fits, the error says what would: a smaller input (H×W halved), a partial
//! update (`last:N`, `bias-only`) or an optimizer without state, with their figures.
//!
//! The plan describes the buffers a trainer lays out in one arena; the figures do not
//! include the process itself (code, allocator slack, thread stacks).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::model::spec::{Activation, InputShape, Layer, Shape, Spec};
use crate::train::program::Program;
use crate::units;

mod budget;

#[cfg(test)]
mod tests;

pub use budget::{Fit, Split, fit, split};

/// Bytes per `f32`.
const F32: u64 = 4;

/// Which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trainable {
    /// Every layer with parameters (weights and biases).
    All,
    /// Only the last `N` layers with parameters (weights and biases); the rest are frozen.
    LastLayers(usize),
    /// Only the biases of every layer with parameters.
    BiasOnly,
}

impl fmt::Display for Trainable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trainable::All => write!(f, "all"),
            Trainable::LastLayers(n) => write!(f, "last:{n}"),
            Trainable::BiasOnly => write!(f, "bias-only"),
        }
    }
}

impl FromStr for Trainable {
    type Err = Error;

    /// `all`, `last:N` (N ≥ 1) or `bias-only`.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        match t {
            "all" => Ok(Trainable::All),
            "bias-only" | "bias" => Ok(Trainable::BiasOnly),
            _ => match t.strip_prefix("last:").map(|n| n.trim().parse::<usize>()) {
                Some(Ok(n)) if n >= 1 => Ok(Trainable::LastLayers(n)),
                _ => Err(Error::Invalid(format!(
                    "trainable layers `{s}`: expected `all`, `last:N` (N ≥ 1) or `bias-only`"
                ))),
            },
        }
    }
}

/// How one layer's parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerMode {
    /// No parameters, or parameters that do not train.
    Frozen,
    /// Only the bias trains.
    Bias,
    /// Weights and bias train.
    Full,
}

/// One row of a [`MemoryPlan`]: a spec layer (or the fused loss).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// `conv_1`, `maxpool_2`, … (kind and 1-based position in the spec), or `loss`.
    pub name: String,
    /// Layer kind as in spec files (`softmax_cross_entropy` for the loss row).
    pub kind: &'static str,
    /// Output shape per image.
    pub output: Shape,
    /// Parameters (weights + bias).
    pub params: u64,
    /// How the parameters train.
    pub mode: LayerMode,
    /// Gradient bytes of this layer's parameters (0 when frozen).
    pub gradient_bytes: u64,
    /// Bytes this layer keeps from forward to backward for the whole micro-batch.
    pub saved_bytes: u64,
}

/// Every buffer of one training step, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    /// Model name.
    pub model: String,
    /// Input shape planned for.
    pub input: InputShape,
    /// Images per micro-batch.
    pub micro_batch: usize,
    /// Which parameters train.
    pub trainable: Trainable,
    /// Optimizer state per trainable parameter, in parameter sizes.
    pub optimizer_state_factor: usize,
    /// All parameters, trainable or not.
    pub parameters: u64,
    /// Gradients of the trainable parameters.
    pub gradients: u64,
    /// Optimizer state of the trainable parameters.
    pub optimizer_state: u64,
    /// Activations kept from forward to backward (the sum of the rows' `saved_bytes`).
    pub saved_activations: u64,
    /// Ping-pong buffers for the activations that are not saved.
    pub forward_buffers: u64,
    /// Ping-pong buffers for the activation gradients during backward.
    pub activation_gradients: u64,
    /// Shared per-layer workspace (im2col), the largest any layer needs.
    pub workspace: u64,
    /// The input batch.
    pub input_batch: u64,
    /// The labels (`usize` each).
    pub labels: u64,
    /// Per-layer rows, the loss last.
    pub layers: Vec<LayerRow>,
}

impl MemoryPlan {
    /// The region shared by the forward buffers and, once forward is done, the
    /// activation gradients: the larger of the two.
    pub fn scratch(&self) -> u64 {
        self.forward_buffers.max(self.activation_gradients)
    }

    /// Sum of every buffer (forward buffers and activation gradients counted once, as
    /// [`MemoryPlan::scratch`]).
    pub fn total(&self) -> u64 {
        [
            self.parameters,
            self.gradients,
            self.optimizer_state,
            self.saved_activations,
            self.scratch(),
            self.workspace,
            self.input_batch,
            self.labels,
        ]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// The breakdown as a text table (for `edgebench train --plan`).
    pub fn to_table(&self) -> String {
        let mut rows: Vec<[String; 7]> = Vec::with_capacity(self.layers.len());
        for r in &self.layers {
            rows.push([
                r.name.clone(),
                r.kind.to_string(),
                r.output.to_string(),
                if r.params == 0 {
                    "-".into()
                } else {
                    units::thousands(r.params)
                },
                match (r.mode, r.params) {
                    (_, 0) => "-".into(),
                    (LayerMode::Frozen, _) => "frozen".into(),
                    (LayerMode::Bias, _) => "bias".into(),
                    (LayerMode::Full, _) => "yes".into(),
                },
                if r.gradient_bytes == 0 {
                    "-".into()
                } else {
                    units::bytes(r.gradient_bytes)
                },
                if r.saved_bytes == 0 {
                    "-".into()
                } else {
                    units::bytes(r.saved_bytes)
                },
            ]);
        }
        let mut out = format!(
            "{} at {}, micro-batch {}, trainable: {}, optimizer state ×{}\n\n",
            self.model, self.input, self.micro_batch, self.trainable, self.optimizer_state_factor
        );
        out.push_str(&units::columns(
            &[
                "layer",
                "kind",
                "output",
                "params",
                "trains",
                "gradients",
                "saved",
            ],
            &[false, false, true, true, false, true, true],
            &rows,
            units::Rule::Full,
        ));
        out.push('\n');
        let items = [
            ("parameters", self.parameters),
            ("gradients", self.gradients),
            ("optimizer state", self.optimizer_state),
            ("saved activations", self.saved_activations),
            ("forward buffers", self.forward_buffers),
            ("activation gradients", self.activation_gradients),
            ("  shared, counted once", self.scratch()),
            ("workspace", self.workspace),
            ("input batch", self.input_batch),
            ("labels", self.labels),
            ("total", self.total()),
        ];
        for (name, v) in items {
            out.push_str(&format!("{name:<22}{:>12}\n", units::bytes(v)));
        }
        out
    }
}

/// Bytes of `elems` f32 values for `n` images, saturating.
fn f32_bytes(elems: usize, n: usize) -> u64 {
    (elems as u64).saturating_mul(n as u64).saturating_mul(F32)
}

/// Bias elements of a layer with parameters (its output channels or units).
fn bias_elems(layer: &Layer, output: Shape) -> u64 {
    match (layer, output) {
        (Layer::Conv { .. } | Layer::Depthwise { .. }, Shape::Chw(c, _, _)) => c as u64,
        (Layer::Dense { units, .. }, _) => *units as u64,
        _ => 0,
    }
}

/// The memory plan of one training step; see the module docs for what is counted.
pub fn plan(
    spec: &Spec,
    input: InputShape,
    micro_batch: usize,
    optimizer_state_factor: usize,
    trainable: Trainable,
) -> Result<MemoryPlan> {
    if micro_batch == 0 {
        return Err(Error::Invalid("the micro-batch must be at least 1".into()));
    }
    let planned = spec.plan(input)?;
    let count = planned.len();
    if count == 0 {
        return Err(Error::Invalid(format!(
            "{}: the spec has no layers",
            spec.name
        )));
    }
    let n = micro_batch;
    let with_params: Vec<usize> = (0..count).filter(|&i| planned[i].params > 0).collect();
    if with_params.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the model has no parameters to train",
            spec.name
        )));
    }
    let mut mode = vec![LayerMode::Frozen; count];
    match trainable {
        Trainable::All => with_params.iter().for_each(|&i| mode[i] = LayerMode::Full),
        Trainable::BiasOnly => with_params.iter().for_each(|&i| mode[i] = LayerMode::Bias),
        Trainable::LastLayers(k) => {
            if k == 0 || k > with_params.len() {
                return Err(Error::Invalid(format!(
                    "last:{k}: {} has {} layers with parameters (use last:1 to last:{})",
                    spec.name,
                    with_params.len(),
                    with_params.len()
                )));
            }
            for &i in &with_params[with_params.len() - k..] {
                mode[i] = LayerMode::Full;
            }
        }
    }
    let first = mode
        .iter()
        .position(|&m| m != LayerMode::Frozen)
        .unwrap_or(count);
    let last = count - 1;

    // Tensor t is the output of layer t - 1; tensor 0 is the input batch. A flatten's
    // output shares its input's memory, so tensors resolve to a storage id.
    let mut storage = vec![0usize; count + 1];
    for t in 1..=count {
        storage[t] = if matches!(planned[t - 1].layer, Layer::Flatten) {
            storage[t - 1]
        } else {
            t
        };
    }
    let elems = |t: usize| {
        if t == 0 {
            input.channels * input.height * input.width
        } else {
            planned[t - 1].output.elems()
        }
    };

    // A max-pool right after a ReLU output that flows backward does that ReLU's backward
    // too (masking with its own output): it saves its output, the ReLU saves nothing.
    let relu_out = |i: usize| {
        matches!(planned[i].layer, Layer::Relu) || planned[i].layer.activation() == Activation::Relu
    };
    let takes_relu: Vec<bool> = (0..count)
        .map(|i| {
            i > 0
                && first < i
                && matches!(planned[i].layer, Layer::Maxpool { .. })
                && relu_out(i - 1)
        })
        .collect();
    let mut saved = vec![false; count + 1];
    let mut rows = Vec::with_capacity(count + 1);
    let (mut parameters, mut gradients) = (0u64, 0u64);

    for (i, pl) in planned.iter().enumerate() {
        let flows = first <= i;
        let is_last = i == last;
        let out_elems = pl.output.elems();
        let mut need_input = false;
        let mut need_output = false;
        let mut extra = 0u64;
        match &pl.layer {
            Layer::Conv { .. } | Layer::Depthwise { .. } | Layer::Dense { .. } => {
                need_input = mode[i] == LayerMode::Full
            }
            Layer::Relu => need_output = flows,
            Layer::Maxpool { .. } => {
                need_output = takes_relu[i];
                if flows {
                    extra = (out_elems as u64)
                        .saturating_mul(n as u64)
                        .saturating_mul(4);
                }
            }
            Layer::GlobalAvgPool | Layer::Flatten => {}
            Layer::Softmax => need_output = flows && !is_last,
        }
        match pl.layer.activation() {
            Activation::Relu => need_output |= flows,
            Activation::Softmax => need_output |= flows && !is_last,
            Activation::None => {}
        }
        if relu_out(i) && takes_relu.get(i + 1) == Some(&true) {
            need_output = false;
        }
        let mut saved_bytes = extra;
        for (need, t) in [(need_input, i), (need_output, i + 1)] {
            let s = storage[t];
            if need && s != 0 && !saved[s] {
                saved[s] = true;
                saved_bytes = saved_bytes.saturating_add(f32_bytes(elems(s), n));
            }
        }
        let bias = bias_elems(&pl.layer, pl.output);
        let grad_elems = match mode[i] {
            LayerMode::Frozen => 0,
            LayerMode::Bias => bias,
            LayerMode::Full => pl.params,
        };
        parameters = parameters.saturating_add(pl.params.saturating_mul(F32));
        gradients = gradients.saturating_add(grad_elems.saturating_mul(F32));
        rows.push(LayerRow {
            name: format!("{}_{}", pl.layer.kind(), i + 1),
            kind: pl.layer.kind(),
            output: pl.output,
            params: pl.params,
            mode: mode[i],
            gradient_bytes: grad_elems.saturating_mul(F32),
            saved_bytes,
        });
    }
    let classes = planned[last].output.elems();
    rows.push(LayerRow {
        name: "loss".into(),
        kind: "softmax_cross_entropy",
        output: Shape::Flat(classes),
        params: 0,
        mode: LayerMode::Frozen,
        gradient_bytes: 0,
        saved_bytes: f32_bytes(classes, n),
    });
    // The ping-pong buffers and the workspace as the trainer lays them out (one thread:
    // the fusions do not depend on it; later threads' workspace, like their GEMM packing
    // buffers, is beyond the plan).
    let prog = Program::lower(spec, input, &mode, n, 0, 1)?;
    let pair = |r: [super::arena::Region; 2]| (r[0].bytes as u64).saturating_add(r[1].bytes as u64);
    let saved_activations = rows
        .iter()
        .fold(0u64, |a, r| a.saturating_add(r.saved_bytes));
    let factor = optimizer_state_factor as u64;
    Ok(MemoryPlan {
        model: spec.name.clone(),
        input,
        micro_batch,
        trainable,
        optimizer_state_factor,
        parameters,
        gradients,
        optimizer_state: gradients.saturating_mul(factor),
        saved_activations,
        forward_buffers: pair(prog.fwd),
        activation_gradients: pair(prog.grad),
        workspace: prog.workspace.bytes as u64,
        input_batch: f32_bytes(elems(0), n),
        labels: (n as u64).saturating_mul(std::mem::size_of::<usize>() as u64),
        layers: rows,
    })
}
