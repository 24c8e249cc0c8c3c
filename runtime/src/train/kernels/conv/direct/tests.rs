//! Tests of the direct path against the nested loops: forward (with ReLU and the fused
//! max-pool) and the weight gradient from plain and pooled `dy`, on several shapes,
//! thread counts and with or without helper threads.

use super::*;
use crate::train::kernels::conv::{Dy, conv2d_backward_naive, conv2d_forward_naive};
use crate::train::kernels::tests::{close, pooled_case, vals};
use crate::train::kernels::workers::Workers;

/// Forward and weight gradient against the nested loops: rows narrower and wider
/// than a panel, widths not a multiple of 8, channel counts not a multiple of 6 or
/// 4, 1–3 threads on helper threads and on rayon.
#[test]
fn matches_naive_loops() {
    for &(n, c_in, c_out, h, w) in &[
        (2, 3, 32, 6, 6),
        (2, 3, 8, 8, 34),
        (1, 1, 7, 5, 19),
        (3, 7, 13, 4, 40),
        (2, 3, 5, 9, 1),
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
        assert!(applies(&s, (h, w)));
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
                let mut g = Gemm {
                    threads,
                    pack: &mut [],
                    workers: use_workers.then_some(&workers),
                };
                let len =
                    forward_workspace_len(&s, threads).max(weight_grad_workspace_len(&s, threads));
                let mut ws = vec![f32::NAN; len];
                let mut y = vec![f32::NAN; dy.len()];
                forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, false).unwrap();
                close("y", &y, &y0, "direct");
                forward(&s, &x, &wt, Some(&b), &mut y, &mut ws, &mut g, true).unwrap();
                let relu0: Vec<f32> = y0.iter().map(|v| v.max(0.0)).collect();
                close("relu(y)", &y, &relu0, "direct");
                if h.is_multiple_of(2) && w.is_multiple_of(2) {
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
                    crate::train::kernels::pooling::maxpool_forward_opt(
                        ps,
                        &y,
                        &mut want,
                        Some(&mut want_arg),
                    )
                    .unwrap();
                    let mut big = vec![f32::NAN; relu_pool_workspace_len(&s, threads)];
                    let (mut got, mut got_arg) = (vec![f32::NAN; out], vec![0u32; out]);
                    forward_relu_pool(
                        &s,
                        &x,
                        &wt,
                        Some(&b),
                        &mut got,
                        Some(&mut got_arg),
                        &mut big,
                        &mut g,
                    )
                    .unwrap();
                    assert_eq!(got, want, "pooled {n}×{c_in}→{c_out} {h}×{w}");
                    assert_eq!(got_arg, want_arg, "argmax {n}×{c_in}→{c_out} {h}×{w}");
                    // The weight gradient from the pool's gradient equals the one
                    // from the expanded gradient, bit for bit.
                    let (dyp, full, bad_arg) = pooled_case(ps, &want, &want_arg, dy.len());
                    let (mut dwa, mut dwb) = (vec![0.5; wt.len()], vec![0.5; wt.len()]);
                    weight_grad(&s, &x, Dy::Plain(&full), &mut dwa, true, &mut ws, &mut g).unwrap();
                    let pooled = Dy::Pooled {
                        dy: &dyp,
                        argmax: &want_arg,
                        y: &want,
                    };
                    weight_grad(&s, &x, pooled, &mut dwb, true, &mut ws, &mut g).unwrap();
                    assert_eq!(dwa, dwb, "pooled dW {n}×{c_in}→{c_out} {h}×{w}");
                    let bad = Dy::Pooled {
                        dy: &dyp,
                        argmax: &bad_arg,
                        y: &want,
                    };
                    let e = weight_grad(&s, &x, bad, &mut dwb, true, &mut ws, &mut g)
                        .unwrap_err()
                        .to_string();
                    assert!(e.contains("outside its window"), "{e}");
                }
                let mut dw = vec![1.0; wt.len()];
                weight_grad(&s, &x, Dy::Plain(&dy), &mut dw, true, &mut ws, &mut g).unwrap();
                let dw1: Vec<f32> = dw0.iter().map(|v| v + 1.0).collect();
                close("dw (added)", &dw, &dw1, "direct");
                weight_grad(&s, &x, Dy::Plain(&dy), &mut dw, false, &mut ws, &mut g).unwrap();
                close("dw", &dw, &dw0, "direct");
            }
        }
    }
}
