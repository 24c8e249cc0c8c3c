//! Tests of the Winograd paths against the nested loops: forward (with bias, ReLU and
//! the fused max-pool), input and weight gradients from plain and pooled `dy`, on
//! several shapes and thread counts; workspace sizes and short workspaces.

use super::*;
use crate::train::kernels::conv::{conv2d_backward_naive, conv2d_forward_naive};
use crate::train::kernels::sgemm::pack_len;
use crate::train::kernels::tests::{close, pooled_case, vals};
use crate::train::kernels::workers::Workers;

/// Forward, input and weight gradients against the nested loops, on odd and even
/// sizes, rows wider than a panel, several chunks and 1–3 threads.
#[test]
fn matches_naive_loops() {
    for &(n, c_in, c_out, h, w) in &[
        (2, 8, 8, 6, 6),
        (1, 9, 13, 7, 5),
        (3, 8, 10, 5, 40),
        (2, 16, 8, 34, 3),
        (1, 8, 8, 1, 1),
        (1, 8, 9, 10, 70),
    ] {
        let s = Conv2dShape {
            n,
            c_in,
            h,
            w,
            c_out,
            kh: 3,
            kw: 3,
            stride: 1,
            pad: 1,
        };
        let x = vals(s.input_len(), 1);
        let wt = vals(s.weight_len(), 2);
        let b = vals(c_out, 3);
        let dy = vals(n * c_out * h * w, 4);
        let mut y0 = vec![0.0; dy.len()];
        conv2d_forward_naive(s, &x, &wt, Some(&b), &mut y0).unwrap();
        let (mut dx0, mut dw0) = (vec![0.0; x.len()], vec![0.0; wt.len()]);
        conv2d_backward_naive(s, &x, &wt, &dy, &mut dx0, &mut dw0, None).unwrap();
        for threads in [1, 2, 3] {
            let workers = Workers::new(threads - 1).unwrap();
            for use_workers in [false, true] {
                let mut pack = vec![0.0; threads * pack_len()];
                let mut g = Gemm {
                    threads,
                    pack: &mut pack,
                    workers: use_workers.then_some(&workers),
                };
                let mut ws = vec![
                    0.0;
                    forward_workspace_len(&s, threads)
                        .max(backward_workspace_len(&s, threads, true, true))
                ];
                let mut y = vec![f32::NAN; dy.len()];
                forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, false).unwrap();
                close("y", &y, &y0, "winograd");
                forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, true).unwrap();
                let relu0: Vec<f32> = y0.iter().map(|v| v.max(0.0)).collect();
                close("relu(y)", &y, &relu0, "winograd");
                if h % 2 == 0 && w % 2 == 0 {
                    // Pooled in the output transform: bit-identical to pooling the
                    // ReLU output just computed.
                    let ps = crate::train::kernels::pooling::PoolShape {
                        n,
                        c: c_out,
                        h,
                        w,
                        k: 2,
                        stride: 2,
                    };
                    let out = ps.output_len().unwrap();
                    let (mut want, mut want_arg) = (vec![0.0; out], vec![0u32; out]);
                    crate::train::kernels::pooling::maxpool_forward(
                        ps,
                        &y,
                        &mut want,
                        &mut want_arg,
                    )
                    .unwrap();
                    let (mut got, mut got_arg) = (vec![f32::NAN; out], vec![0u32; out]);
                    let a = Some(&mut got_arg[..]);
                    forward_relu_pool(&s, &x, &wt, Some(&b), &mut got, a, &mut ws, &mut g).unwrap();
                    assert_eq!(got, want, "pooled {n}×{c_in}→{c_out} {h}×{w}");
                    assert_eq!(got_arg, want_arg, "argmax {n}×{c_in}→{c_out} {h}×{w}");
                    // Backward from the pool's gradient, expanded row by row: the
                    // same dx and dW as from the expanded tensor, bit for bit.
                    let (dyp, full, bad_arg) = pooled_case(ps, &want, &want_arg, dy.len());
                    let pooled = Dy::Pooled {
                        dy: &dyp,
                        argmax: &want_arg,
                        y: &want,
                    };
                    let mut grads = Vec::new();
                    for src in [Dy::Plain(&full), pooled] {
                        let (mut dx, mut dw) = (vec![f32::NAN; x.len()], vec![0.5; wt.len()]);
                        let (dxs, dws) = (Some(&mut dx[..]), Some(&mut dw[..]));
                        backward(&s, &x, &wt, src, dxs, dws, true, &mut ws, &mut g).unwrap();
                        grads.push((dx, dw));
                    }
                    assert!(grads[0] == grads[1], "pooled {n}×{c_in}→{c_out} {h}×{w}");
                    let bad = Dy::Pooled {
                        dy: &dyp,
                        argmax: &bad_arg,
                        y: &want,
                    };
                    let mut dx = vec![0.0; x.len()];
                    for (dx, dw) in [(Some(&mut dx[..]), None), (None, Some(&mut grads[0].1[..]))] {
                        let e = backward(&s, &x, &wt, bad, dx, dw, false, &mut ws, &mut g)
                            .unwrap_err()
                            .to_string();
                        assert!(e.contains("outside its window"), "{e}");
                    }
                }
                let mut dx = vec![f32::NAN; x.len()];
                let mut dw = vec![1.0; wt.len()];
                backward(
                    &s,
                    &x,
                    &wt,
                    Dy::Plain(&dy),
                    Some(&mut dx),
                    Some(&mut dw),
                    true,
                    &mut ws,
                    &mut g,
                )
                .unwrap();
                close("dx", &dx, &dx0, "winograd");
                let dw1: Vec<f32> = dw0.iter().map(|v| v + 1.0).collect();
                close("dw (added)", &dw, &dw1, "winograd");
                backward(
                    &s,
                    &x,
                    &wt,
                    Dy::Plain(&dy),
                    None,
                    Some(&mut dw),
                    false,
                    &mut ws,
                    &mut g,
                )
                .unwrap();
                close("dw", &dw, &dw0, "winograd");
            }
        }
    }
}

/// The trainer sizes workspaces for one image and runs micro-batches: the lengths
/// must not grow with the batch, or a larger batch would fall back to im2col.
#[test]
fn workspace_does_not_grow_with_the_batch() {
    for &(c_in, c_out, hw) in &[(32, 64, 128), (64, 128, 64), (8, 8, 5)] {
        let one = Conv2dShape {
            n: 1,
            c_in,
            h: hw,
            w: hw,
            c_out,
            kh: 3,
            kw: 3,
            stride: 1,
            pad: 1,
        };
        for n in [2, 16, 64] {
            let s = Conv2dShape { n, ..one };
            for t in [1, 2, 3] {
                assert_eq!(forward_workspace_len(&s, t), forward_workspace_len(&one, t));
                for (dw, dx) in [(true, true), (true, false), (false, true)] {
                    assert_eq!(
                        backward_workspace_len(&s, t, dw, dx),
                        backward_workspace_len(&one, t, dw, dx)
                    );
                }
            }
        }
    }
}

#[test]
fn short_workspace_is_an_error() {
    let s = Conv2dShape {
        n: 1,
        c_in: 8,
        h: 4,
        w: 4,
        c_out: 8,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    };
    let x = vals(s.input_len(), 1);
    let wt = vals(s.weight_len(), 2);
    let mut y = vec![0.0; 8 * 16];
    let mut pack = vec![0.0; pack_len()];
    let mut g = Gemm {
        threads: 1,
        pack: &mut pack,
        workers: None,
    };
    let mut ws = vec![0.0; forward_workspace_len(&s, 1) - 1];
    let err = forward(&s, &x, &wt, None, &mut y, &mut ws, &mut g, false).unwrap_err();
    assert!(err.to_string().contains("winograd workspace"), "{err}");
}
