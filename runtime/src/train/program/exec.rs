//! The trainer's passes: forward, the fused loss, backward, run op by op on arena
//! views (see [`super`] for where each tensor lives and
//! [`crate::train::trainer`] for the step they make up).

use super::arena::Arena;
use super::arena::Region;
use super::plan::LayerMode;
use super::{Kind, Op, Pass, Program, backward_passes, prefix};
use crate::error::Result;
use crate::train::kernels::Gemm;
use crate::train::kernels::conv::{self, conv_relu_pool};
use crate::train::kernels::conv::{Conv2dShape, Grads, conv2d_backward_hw, conv2d_forward_act};
use crate::train::kernels::dense::softmax_cross_entropy;
use crate::train::kernels::dense::{DenseShape, dense_backward_into, dense_forward_with};
use crate::train::kernels::depthwise::{depthwise_backward_hw, depthwise_forward_hw};
use crate::train::kernels::pooling::{PoolShape, maxpool_relu_backward};
use crate::train::kernels::pooling::{
    gap_backward, gap_forward, maxpool_backward, maxpool_forward_opt,
};
use crate::train::kernels::pooling::{relu_backward, relu_forward};
use crate::train::kernels::workers::{SharedMut, Workers, split};
use crate::train::trainer::Trainer;

impl Trainer {
    /// Softmax cross-entropy on the logits: mean loss, correct count; writes `dlogits`
    /// as the per-sample gradient *sum* (`softmax − onehot`, not divided by `n`).
    pub(crate) fn loss(&mut self, n: usize) -> Result<(f32, usize)> {
        let c = self.prog.classes;
        let logits = self.prog.tensor(self.prog.logits, n);
        let d = prefix(self.prog.dlogits, n * c);
        let lab = Region {
            offset: self.prog.labels.offset,
            bytes: n * std::mem::size_of::<usize>(),
        };
        let [l, d, lab] = self.arena.views([logits, d, lab])?;
        let (l, d, lab) = (l.as_mut::<f32>(), d.as_mut::<f32>(), lab.as_mut::<usize>());
        let loss = softmax_cross_entropy(l, lab, c, d)?;
        let scale = n as f32;
        d.iter_mut().for_each(|v| *v *= scale);
        let correct = l
            .chunks_exact(c)
            .zip(lab.iter())
            .filter(|&(row, &label)| argmax(row) == label)
            .count();
        Ok((loss, correct))
    }

    /// Runs every op forward for `n` images (`train`: keep the max-pool argmaxes).
    pub(crate) fn forward(&mut self, n: usize, train: bool) -> Result<()> {
        let threads = self.cfg.threads;
        let mut next = 0;
        while next < self.prog.ops.len() {
            let op = &self.prog.ops[next];
            next += 1;
            // A conv followed by its ReLU writes the ReLU's output directly (its own
            // output, the pre-activation, is read by nothing else) ...
            let relu_out = op.fuse_relu.then(|| self.prog.ops[next].output);
            // ... and when a 2×2 max-pool follows and nothing reads the ReLU output
            // later, the pooled output (and argmax) come out of the same pass.
            let pool = op.fuse_pool.then_some(next + 1);
            next += usize::from(op.fuse_relu) + usize::from(op.fuse_pool);
            let x = self.prog.tensor(op.input, n);
            let y = match (pool, relu_out) {
                (Some(p), _) => self.prog.tensor(self.prog.ops[p].output, n),
                (None, Some(t)) => self.prog.tensor(t, n),
                (None, None) => self.prog.tensor(op.output, n),
            };
            let arg = match (train, pool) {
                (false, _) => Region::EMPTY,
                (true, Some(p)) => {
                    let p = &self.prog.ops[p];
                    prefix(p.argmax, self.prog.tensors[p.output].elems * n)
                }
                (true, None) => op.argmax,
            };
            let [x, y, prm, ws, arg, pack] = self.arena.views([
                x,
                y,
                self.prog.params_r,
                self.prog.workspace,
                arg,
                self.prog.pack,
            ])?;
            let mut gemm = Gemm {
                threads,
                pack: pack.as_mut(),
                workers: Some(&self.workers),
            };
            let (x, y, prm) = (x.as_mut::<f32>(), y.as_mut::<f32>(), prm.as_mut::<f32>());
            let (w, b) = param_slices(&self.prog, op, prm);
            match op.kind {
                Kind::Conv { s, hw } => {
                    let s = Conv2dShape { n, ..s };
                    let relu = relu_out.is_some();
                    if pool.is_some() {
                        let a = arg.as_mut::<u32>();
                        let a = (!a.is_empty()).then_some(a);
                        conv_relu_pool(&s, hw, x, w, Some(b), y, a, ws.as_mut(), &mut gemm)?;
                    } else {
                        conv2d_forward_act(s, hw, x, w, Some(b), y, ws.as_mut(), &mut gemm, relu)?;
                    }
                }
                Kind::Depthwise { s, hw } => {
                    let s = Conv2dShape { n, ..s };
                    depthwise_forward_hw(s, hw, x, w, Some(b), y)?;
                }
                Kind::Dense { inputs, outputs } => {
                    let s = DenseShape { n, inputs, outputs };
                    dense_forward_with(s, x, w, Some(b), y, &mut gemm)?;
                }
                Kind::Relu => {
                    let (e, out) = (x.len() / n, SharedMut::new(y));
                    par_images(&self.workers, n, &|i0, i1| {
                        // Safety: image ranges of one split are disjoint.
                        let y = unsafe { out.range(i0 * e, (i1 - i0) * e) };
                        relu_forward(&x[i0 * e..i1 * e], y)
                    })?;
                }
                Kind::MaxPool { s } => {
                    let a = arg.as_mut::<u32>();
                    let keep = !a.is_empty();
                    let (e_in, e_out) = (x.len() / n, y.len() / n);
                    let (out, args) = (SharedMut::new(y), SharedMut::new(a));
                    par_images(&self.workers, n, &|i0, i1| {
                        let m = i1 - i0;
                        // Safety: image ranges of one split are disjoint.
                        let y = unsafe { out.range(i0 * e_out, m * e_out) };
                        // Safety: as above (the argmax has one entry per output).
                        let a = keep.then(|| unsafe { args.range(i0 * e_out, m * e_out) });
                        let s = PoolShape { n: m, ..s };
                        maxpool_forward_opt(s, &x[i0 * e_in..i1 * e_in], y, a)
                    })?;
                }
                Kind::Gap { c, hw } => gap_forward(n, c, hw, x, y)?,
            }
        }
        Ok(())
    }

    /// Runs the ops backward from `dlogits`, adding parameter gradients: the passes of
    /// [`backward_passes`] in order.
    pub(crate) fn backward(&mut self, n: usize) -> Result<()> {
        let threads = self.cfg.threads;
        let accumulate = self.pending > 0;
        let (p, arena, workers) = (&self.prog, &mut self.arena, &self.workers);
        for pass in backward_passes(&p.ops) {
            let dy_r = match pass.dy {
                None => prefix(p.dlogits, n * p.classes),
                Some(b) => p.grad[b],
            };
            let j = match pass.pass {
                // The conv takes its ReLU's and max-pool's backward along, expanding the
                // pool's gradient row by row (its own is never written whole).
                Pass::ConvPool { conv, pool } => {
                    let (ops, dy) = ((conv, pool), (dy_r, pass.dx));
                    conv_pool_backward(p, arena, workers, threads, ops, n, dy, accumulate)?;
                    continue;
                }
                Pass::Op(j) => j,
            };
            let op = &p.ops[j];
            // A max-pool right after a ReLU takes the ReLU's backward along (see
            // `maxpool_relu_backward`); the ReLU output was not even kept.
            let fused = op.takes_relu;
            let out_elems = p.tensors[op.output].elems * n;
            let in_elems = p.tensors[op.input].elems * n;
            let dx_r = match pass.dx {
                Some(b) => prefix(p.grad[b], in_elems),
                None => Region::EMPTY,
            };
            let dy = prefix(dy_r, out_elems);
            let needs_x = op
                .params
                .is_some_and(|k| p.params[k].mode == LayerMode::Full);
            let x_r = if needs_x {
                p.tensor(op.input, n)
            } else {
                Region::EMPTY
            };
            let y_r = if matches!(op.kind, Kind::Relu) || fused {
                p.tensor(op.output, n)
            } else {
                Region::EMPTY
            };
            let arg = prefix(op.argmax, out_elems);
            let [x, y, dy, dx, prm, grd, ws, arg, pack] = arena.views([
                x_r,
                y_r,
                dy,
                dx_r,
                p.params_r,
                p.grads_r,
                p.workspace,
                arg,
                p.pack,
            ])?;
            let mut gemm = Gemm {
                threads,
                pack: pack.as_mut(),
                workers: Some(workers),
            };
            let (x, y, dy) = (x.as_mut::<f32>(), y.as_mut::<f32>(), dy.as_mut::<f32>());
            let dx = dx.as_mut::<f32>();
            let prm = prm.as_mut::<f32>();
            let (w, _) = param_slices(p, op, prm);
            let (dw, db) = grad_slices(p, op, grd.as_mut());
            let g = Grads {
                dx: op.dx.then_some(dx),
                dw,
                db,
                accumulate,
            };
            match op.kind {
                Kind::Conv { s, hw } => {
                    let s = Conv2dShape { n, ..s };
                    conv2d_backward_hw(s, hw, x, w, dy, g, ws.as_mut(), &mut gemm)?;
                }
                Kind::Depthwise { s, hw } => {
                    let s = Conv2dShape { n, ..s };
                    depthwise_backward_hw(s, hw, x, w, dy, g)?;
                }
                Kind::Dense { inputs, outputs } => {
                    let s = DenseShape { n, inputs, outputs };
                    dense_backward_into(s, x, w, dy, g, &mut gemm)?;
                }
                Kind::Relu => {
                    let (e, out) = (y.len() / n, SharedMut::new(dx));
                    par_images(workers, n, &|i0, i1| {
                        // Safety: image ranges of one split are disjoint.
                        let dx = unsafe { out.range(i0 * e, (i1 - i0) * e) };
                        let r = i0 * e..i1 * e;
                        relu_backward(&y[r.clone()], &dy[r], dx)
                    })?;
                }
                Kind::MaxPool { s } => {
                    let arg: &[u32] = arg.as_mut();
                    let (e_in, e_out) = (dx.len() / n, dy.len() / n);
                    let out = SharedMut::new(dx);
                    par_images(workers, n, &|i0, i1| {
                        // Safety: image ranges of one split are disjoint.
                        let dx = unsafe { out.range(i0 * e_in, (i1 - i0) * e_in) };
                        let s = PoolShape { n: i1 - i0, ..s };
                        let r = i0 * e_out..i1 * e_out;
                        if fused {
                            maxpool_relu_backward(s, &arg[r.clone()], &y[r.clone()], &dy[r], dx)
                        } else {
                            maxpool_backward(s, &arg[r.clone()], &dy[r], dx)
                        }
                    })?;
                }
                Kind::Gap { c, hw } => gap_backward(n, c, hw, dy, dx)?,
            }
        }
        Ok(())
    }
}

/// Backward of conv op `conv` → ReLU → max-pool op `pool` (a [`Pass::ConvPool`]): the
/// conv's gradients from the pool's gradient `dy_r`; its input gradient, when it has
/// one, goes to gradient buffer `dx`.
#[allow(clippy::too_many_arguments)]
fn conv_pool_backward(
    p: &Program,
    arena: &mut Arena,
    workers: &Workers,
    threads: usize,
    (conv, pool): (usize, usize),
    n: usize,
    (dy_r, dx): (Region, Option<usize>),
    accumulate: bool,
) -> Result<()> {
    let (c, po) = (&p.ops[conv], &p.ops[pool]);
    let Kind::Conv { s, hw } = c.kind else {
        return Err(crate::error::Error::Invalid(
            "conv + pool backward on an op that is not a conv".into(),
        ));
    };
    let s = Conv2dShape { n, ..s };
    let out_elems = p.tensors[po.output].elems * n;
    let full = c
        .params
        .is_some_and(|k| p.params[k].mode == LayerMode::Full);
    let x_r = if full {
        p.tensor(c.input, n)
    } else {
        Region::EMPTY
    };
    let dx_r = match dx {
        Some(b) => prefix(p.grad[b], p.tensors[c.input].elems * n),
        None => Region::EMPTY,
    };
    let [x, y, dy, arg, dx, prm, grd, ws, pack] = arena.views([
        x_r,
        p.tensor(po.output, n),
        prefix(dy_r, out_elems),
        prefix(po.argmax, out_elems),
        dx_r,
        p.params_r,
        p.grads_r,
        p.workspace,
        p.pack,
    ])?;
    let mut gemm = Gemm {
        threads,
        pack: pack.as_mut(),
        workers: Some(workers),
    };
    let pooled = (
        &*dy.as_mut::<f32>(),
        &*arg.as_mut::<u32>(),
        &*y.as_mut::<f32>(),
    );
    let prm = prm.as_mut::<f32>();
    let (w, _) = param_slices(p, c, prm);
    let (dw, db) = grad_slices(p, c, grd.as_mut());
    let g = Grads {
        dx: c.dx.then_some(dx.as_mut::<f32>()),
        dw,
        db,
        accumulate,
    };
    let (x, ws) = (x.as_mut::<f32>(), ws.as_mut());
    conv::conv_pool_backward(&s, hw, x, w, pooled, g, ws, &mut gemm)
}

/// Runs `f` over image ranges split across the helper threads; the first error wins.
fn par_images(
    workers: &Workers,
    n: usize,
    f: &(dyn Fn(usize, usize) -> Result<()> + Sync),
) -> Result<()> {
    let failed = std::sync::Mutex::new(None);
    split(Some(workers), n, &|i0, i1| {
        if let Err(e) = f(i0, i1) {
            let mut slot = failed.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(e);
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Index of the largest value (the first on ties).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Weight and bias of an op's layer (empty for ops without parameters).
fn param_slices<'a>(p: &Program, op: &Op, prm: &'a [f32]) -> (&'a [f32], &'a [f32]) {
    match op.params {
        Some(k) => {
            let s = &p.params[k];
            (&prm[s.weight.clone()], &prm[s.bias.clone()])
        }
        None => (&[], &[]),
    }
}

/// Gradient slices of an op's trainable weight and bias.
#[allow(clippy::type_complexity)]
fn grad_slices<'a>(
    p: &Program,
    op: &Op,
    grads: &'a mut [f32],
) -> (Option<&'a mut [f32]>, Option<&'a mut [f32]>) {
    let Some(k) = op.params else {
        return (None, None);
    };
    let s = &p.params[k];
    let t0 = p.trainable_start;
    match s.mode {
        LayerMode::Frozen => (None, None),
        LayerMode::Bias => (None, Some(&mut grads[s.bias.start - t0..s.bias.end - t0])),
        LayerMode::Full => {
            // Trainable segments are laid out weight then bias, adjacent.
            let (w0, b0) = (s.weight.start - t0, s.bias.start - t0);
            let (a, rest) = grads[w0..].split_at_mut(b0 - w0);
            (
                Some(&mut a[..s.weight.len()]),
                Some(&mut rest[..s.bias.len()]),
            )
        }
    }
}
