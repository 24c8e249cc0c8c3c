//! The trainer's layer program: a [`Spec`] lowered to kernel calls on arena regions.
//!
//! [`Program::build`] turns the spec's layers into ops (a conv/depthwise/dense with a
//! fused activation becomes two ops: the layer, then its ReLU; a flatten becomes nothing,
//! its output is its input's memory; a final softmax is fused into the loss) and places
//! every buffer the memory plan ([`super::plan`]) lists in one [`ArenaLayout`]:
//!
//! - parameters, frozen segments first, then the trainable ones, so that the trainable
//!   parameters, their gradients and the optimizer state are three contiguous slices
//!   (one optimizer call updates them all);
//! - a region per *saved* tensor (a trained layer's input, a ReLU output a gradient
//!   flows through), the max-pool argmaxes, the loss's `dlogits`;
//! - one scratch region shared by two forward ping-pong buffers (the tensors not saved)
//!   and, once forward is done, two activation-gradient ping-pong buffers; each buffer
//!   is as large as the largest tensor that is really *written* to it: a conv that
//!   writes its ReLU's output (or the pooled output, see [`Op::fuse_pool`]) never writes
//!   its pre-activation, and a conv whose backward reads its pool's gradient
//!   ([`Op::into_conv`]) never needs its own output gradient;
//! - the largest per-layer workspace (im2col), the input batch and the labels;
//! - beyond the plan: the GEMM's packing buffers,
//!   [`sgemm::pack_len`](crate::train::kernels::sgemm::pack_len) floats (≈2.1 MiB) per
//!   thread.
//!
//! Every region is sized for the full micro-batch; a smaller batch uses a prefix.

use super::arena::{ArenaLayout, Region};
use super::plan::{LayerMode, MemoryPlan};
use super::{Home, Kind, Op, ParamSlot, Program, Tensor, backward_passes};
use crate::error::{Error, Result};
use crate::model::spec::{Activation, InputShape, Layer, PlannedLayer, Shape, Spec};
use crate::train::kernels::Gemm;
use crate::train::kernels::conv::{self, Conv2dShape};
use crate::train::kernels::pooling::PoolShape;

fn unsupported(spec: &Spec, i: usize, layer: &Layer, what: &str) -> Error {
    Error::Spec {
        source_name: spec.name.clone(),
        reason: format!(
            "layer {} ({}): the trainer does not support {what}",
            i + 1,
            layer.kind()
        ),
    }
}

impl Program {
    /// Lowers `spec` at `input` for micro-batches of up to `plan.micro_batch` images,
    /// with the layer modes of `plan` and `state_per_param` optimizer floats per
    /// trainable parameter.
    pub fn build(
        spec: &Spec,
        input: InputShape,
        plan: &MemoryPlan,
        state_per_param: usize,
        threads: usize,
    ) -> Result<Program> {
        let modes: Vec<LayerMode> = plan.layers.iter().map(|r| r.mode).collect();
        Self::lower(
            spec,
            input,
            &modes,
            plan.micro_batch,
            state_per_param,
            threads,
        )
    }

    /// [`Program::build`] from the layer modes (one per spec layer) and the micro-batch
    /// `n`; the planner lowers with it too, so plan and arena agree on the scratch.
    pub fn lower(
        spec: &Spec,
        input: InputShape,
        modes: &[LayerMode],
        n: usize,
        state_per_param: usize,
        threads: usize,
    ) -> Result<Program> {
        let planned = spec.plan(input)?;
        let first = modes
            .iter()
            .position(|&m| m != LayerMode::Frozen)
            .unwrap_or(planned.len());
        let input_elems = input.channels * input.height * input.width;
        let mut tensors = vec![Tensor {
            elems: input_elems,
            home: Home::Transient(0),
        }];
        let mut ops: Vec<Op> = Vec::new();
        let mut slots: Vec<ParamSlot> = Vec::new();
        let mut cur = 0usize;
        let last = planned.len() - 1;
        let mut softmax = false;
        for (i, pl) in planned.iter().enumerate() {
            let backward = i >= first;
            let mut push = |kind: Kind, params: Option<usize>, dx: bool, elems: usize| {
                tensors.push(Tensor {
                    elems,
                    home: Home::Transient(0),
                });
                ops.push(Op {
                    kind,
                    input: cur,
                    output: tensors.len() - 1,
                    params,
                    backward,
                    dx,
                    argmax: Region::EMPTY,
                    takes_relu: false,
                    fuse_relu: false,
                    fuse_pool: false,
                    into_conv: false,
                });
                cur = tensors.len() - 1;
            };
            let out = pl.output.elems();
            match &pl.layer {
                Layer::Conv { .. } | Layer::Depthwise { .. } | Layer::Dense { .. } => {
                    let kind = param_kind(spec, i, pl)?;
                    slots.push(param_slot(i, pl, modes[i])?);
                    push(kind, Some(slots.len() - 1), i > first, out);
                    match pl.layer.activation() {
                        Activation::None => {}
                        Activation::Relu => push(Kind::Relu, None, backward, out),
                        Activation::Softmax if i == last => softmax = true,
                        Activation::Softmax => {
                            return Err(unsupported(
                                spec,
                                i,
                                &pl.layer,
                                "a softmax before the last layer",
                            ));
                        }
                    }
                }
                Layer::Relu => push(Kind::Relu, None, backward, out),
                Layer::Maxpool { size, stride, .. } => {
                    let (Shape::Chw(c, h, w), Shape::Chw(_, oh, ow)) = (pl.input, pl.output) else {
                        return Err(unsupported(spec, i, &pl.layer, "a flat input"));
                    };
                    let s = PoolShape {
                        n: 1,
                        c,
                        h,
                        w,
                        k: *size,
                        stride: stride.unwrap_or(*size),
                    };
                    if pl.pads != [0; 4] || s.output_hw().ok() != Some((oh, ow)) {
                        return Err(unsupported(spec, i, &pl.layer, "padded max-pooling"));
                    }
                    push(Kind::MaxPool { s }, None, backward, out);
                }
                Layer::GlobalAvgPool => {
                    let Shape::Chw(c, h, w) = pl.input else {
                        return Err(unsupported(spec, i, &pl.layer, "a flat input"));
                    };
                    push(Kind::Gap { c, hw: h * w }, None, backward, out);
                }
                Layer::Flatten => {}
                Layer::Softmax if i == last => softmax = true,
                Layer::Softmax => {
                    return Err(unsupported(
                        spec,
                        i,
                        &pl.layer,
                        "a softmax before the last layer",
                    ));
                }
            }
        }
        let logits = cur;
        let classes = tensors[logits].elems;
        for j in 1..ops.len() {
            let (r, p) = (&ops[j - 1], &ops[j]);
            ops[j].takes_relu = matches!((r.kind, p.kind), (Kind::Relu, Kind::MaxPool { .. }))
                && p.input == r.output
                && r.backward
                && r.dx
                && p.dx;
        }
        // Saved tensors: a fully trained layer's input, the output of a ReLU that runs
        // backward, or instead the output of the max-pool that takes its backward (the
        // same tensor may be needed twice: counted once).
        let mut saved = vec![false; tensors.len()];
        saved[0] = true;
        for (j, op) in ops.iter().enumerate() {
            match (op.kind, ops.get(j + 1)) {
                (Kind::Relu, Some(p)) if p.takes_relu => saved[p.output] = true,
                (Kind::Relu, _) if op.backward => saved[op.output] = true,
                _ => {}
            }
            if let Some(p) = op.params
                && slots[p].mode == LayerMode::Full
            {
                saved[op.input] = true;
            }
        }
        let mut ws = fuse(&mut ops, &saved, &slots, threads);
        let mut layout = ArenaLayout::default();
        // Parameters: frozen segments first, then trainable ones.
        let mut segments: Vec<(bool, usize, bool)> = Vec::new(); // (trains, slot, is_bias)
        for (k, s) in slots.iter().enumerate() {
            segments.push((s.mode == LayerMode::Full, k, false));
            segments.push((s.mode != LayerMode::Frozen, k, true));
        }
        segments.sort_by_key(|&(t, k, b)| (t, k, b));
        let mut off = 0usize;
        let mut trainable_start = None;
        for &(trains, k, is_bias) in &segments {
            if trains && trainable_start.is_none() {
                trainable_start = Some(off);
            }
            let s = &mut slots[k];
            let len = if is_bias {
                s.bias.len()
            } else {
                s.weight.len()
            };
            let r = off..off + len;
            if is_bias {
                s.bias = r
            } else {
                s.weight = r
            }
            off += len;
        }
        let param_len = off;
        let trainable_start = trainable_start.unwrap_or(param_len);
        let trainable = param_len - trainable_start;
        let params_r = layout.push::<f32>(param_len);
        let grads_r = layout.push::<f32>(trainable);
        let state_r = layout.push::<f32>(trainable * state_per_param);
        for (t, tensor) in tensors.iter_mut().enumerate() {
            if saved[t] {
                tensor.home = Home::Saved(layout.push::<f32>(tensor.elems * n));
            }
        }
        let dlogits = layout.push::<f32>(classes * n);
        // Forward ping-pong, pass by pass (a fused pass writes only its last output): an
        // output goes to the buffer its pass's input is not in.
        let mut fwd_max = [0usize; 2];
        let mut j = 0;
        while j < ops.len() {
            let last = j + usize::from(ops[j].fuse_relu) + usize::from(ops[j].fuse_pool);
            for op in &ops[j..last] {
                tensors[op.output].home = Home::Unwritten;
            }
            let out = ops[last].output;
            if !saved[out] {
                let b = match tensors[ops[j].input].home {
                    Home::Transient(b) => 1 - b,
                    _ => 0,
                };
                tensors[out].home = Home::Transient(b);
                fwd_max[b] = fwd_max[b].max(tensors[out].elems);
            }
            j = last + 1;
        }
        let grad_max = gradient_sizes(&ops, &tensors);
        for op in ops.iter_mut() {
            match op.kind {
                Kind::Conv { s, hw } => {
                    let full = op.params.is_some_and(|p| slots[p].mode == LayerMode::Full);
                    ws = ws.max(conv::train_workspace_len(
                        &s,
                        hw,
                        threads,
                        op.backward.then_some((full, op.dx)),
                    ));
                }
                Kind::MaxPool { s } if op.backward => {
                    let (oh, ow) = s.output_hw()?;
                    op.argmax = layout.push::<u32>(s.c * oh * ow * n);
                }
                _ => {}
            }
        }
        let bytes = |elems: usize| elems * n * 4;
        let aligned = |elems: usize| bytes(elems).next_multiple_of(super::arena::ALIGN);
        let scratch_bytes = (aligned(fwd_max[0]) + aligned(fwd_max[1]))
            .max(aligned(grad_max[0]) + aligned(grad_max[1]));
        let scratch = layout.push::<u8>(scratch_bytes);
        let fwd = [
            scratch.sub(0, bytes(fwd_max[0])),
            scratch.sub(aligned(fwd_max[0]), bytes(fwd_max[1])),
        ];
        let grad = [
            scratch.sub(0, bytes(grad_max[0])),
            scratch.sub(aligned(grad_max[0]), bytes(grad_max[1])),
        ];
        let workspace = layout.push::<f32>(ws);
        let pack = layout.push::<f32>(Gemm::pack_len(threads));
        let labels = layout.push::<usize>(n);
        Ok(Program {
            ops,
            tensors,
            params: slots,
            layers: planned.len(),
            logits,
            classes,
            softmax,
            input_elems,
            batch: n,
            param_len,
            trainable_start,
            params_r,
            grads_r,
            state_r,
            fwd,
            grad,
            dlogits,
            workspace,
            pack,
            labels,
            arena_bytes: layout.bytes(),
        })
    }
}

/// Sets the fusion flags of `ops` ([`Op::fuse_relu`], [`Op::fuse_pool`],
/// [`Op::into_conv`]); returns the workspace floats the fused passes need on `threads`
/// threads (none depends on the batch).
fn fuse(ops: &mut [Op], saved: &[bool], slots: &[ParamSlot], threads: usize) -> usize {
    let mut ws = 0;
    for j in 0..ops.len() {
        let Kind::Conv { s, hw } = ops[j].kind else {
            continue;
        };
        let (conv, relu, pool) = (&ops[j], ops.get(j + 1), ops.get(j + 2));
        let Some(r) = relu.filter(|r| {
            matches!(r.kind, Kind::Relu) && r.input == conv.output && !saved[conv.output]
        }) else {
            continue;
        };
        let two_by_two = |p: &Op| {
            matches!(p.kind, Kind::MaxPool { s } if s.k == 2 && s.stride == 2)
                && p.input == r.output
        };
        // Forward: conv → ReLU → pool in one pass when the ReLU output is read by
        // nothing later (its backward is the pool's, or it has none).
        let pool_ws = pool
            .filter(|p| two_by_two(p) && (!r.backward || p.takes_relu) && !saved[r.output])
            .and_then(|_| conv::relu_pool_workspace_len(&s, hw, threads));
        // Backward: the conv's gradients straight from the pool's gradient.
        let full = conv
            .params
            .is_some_and(|k| slots[k].mode == LayerMode::Full);
        let asked = (full, conv.dx);
        let into = pool.is_some_and(|p| p.takes_relu && two_by_two(p))
            && conv.backward
            && conv::pool_backward_applies(&s, hw, asked);
        ops[j].fuse_relu = true;
        if let Some(len) = pool_ws {
            ops[j].fuse_pool = true;
            ws = ws.max(len);
        }
        if into {
            ops[j + 2].into_conv = true;
            ws = ws.max(conv::pool_backward_workspace_len(&s, hw, threads, asked));
        }
    }
    ws
}

/// The largest activation gradient written to each backward ping-pong buffer, in floats
/// per image, over the passes of [`backward_passes`].
fn gradient_sizes(ops: &[Op], tensors: &[Tensor]) -> [usize; 2] {
    let mut max = [0usize; 2];
    for pass in backward_passes(ops) {
        if let Some(b) = pass.dx {
            let written = tensors[ops[pass.pass.writer()].input].elems;
            max[b] = max[b].max(written);
        }
    }
    max
}

/// The op of a conv, depthwise or dense layer.
fn param_kind(spec: &Spec, i: usize, pl: &PlannedLayer) -> Result<Kind> {
    match (&pl.layer, pl.input, pl.output) {
        (
            Layer::Conv { kernel, stride, .. } | Layer::Depthwise { kernel, stride, .. },
            Shape::Chw(c, h, w),
            Shape::Chw(co, oh, ow),
        ) => {
            let [top, left, bottom, right] = pl.pads;
            if top != left || bottom < top || right < left || bottom > top + 1 {
                return Err(unsupported(spec, i, &pl.layer, "this padding"));
            }
            let s = Conv2dShape {
                n: 1,
                c_in: c,
                h,
                w,
                c_out: co,
                kh: *kernel,
                kw: *kernel,
                stride: *stride,
                pad: top,
            };
            if let Layer::Depthwise { multiplier, .. } = pl.layer {
                if multiplier != 1 {
                    return Err(unsupported(
                        spec,
                        i,
                        &pl.layer,
                        "a depth multiplier above 1",
                    ));
                }
                return Ok(Kind::Depthwise { s, hw: (oh, ow) });
            }
            Ok(Kind::Conv { s, hw: (oh, ow) })
        }
        (Layer::Dense { units, .. }, Shape::Flat(inputs), _) => Ok(Kind::Dense {
            inputs,
            outputs: *units,
        }),
        (layer, ..) => Err(unsupported(spec, i, layer, "these shapes")),
    }
}

/// Weight shape and lengths of a layer with parameters (ranges set by the caller).
fn param_slot(i: usize, pl: &PlannedLayer, mode: LayerMode) -> Result<ParamSlot> {
    let in_c = pl.input.elems()
        / match pl.input {
            Shape::Chw(_, h, w) => (h * w).max(1),
            Shape::Flat(_) => 1,
        };
    let (shape, bias) = match (&pl.layer, pl.output) {
        (
            Layer::Conv {
                filters, kernel, ..
            },
            _,
        ) => (vec![*filters, in_c, *kernel, *kernel], *filters),
        (Layer::Depthwise { kernel, .. }, _) => (vec![in_c, 1, *kernel, *kernel], in_c),
        (Layer::Dense { units, .. }, _) => (vec![*units, in_c], *units),
        _ => {
            return Err(Error::Invalid(format!("layer {} has no parameters", i + 1)));
        }
    };
    let w: usize = shape.iter().product();
    Ok(ParamSlot {
        layer: i,
        weight_shape: shape,
        weight: 0..w,
        bias: 0..bias,
        mode,
    })
}
