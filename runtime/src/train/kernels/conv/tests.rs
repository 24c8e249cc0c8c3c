//! Convolution tests: fast (im2col + GEMM) against naive on many shapes, finite
//! differences for convolution and depthwise convolution, bad shapes, and a tiny
//! end-to-end training run (conv → ReLU → max-pool → GAP → dense → cross-entropy).

use super::*;
use crate::train::kernels::dense::*;
use crate::train::kernels::depthwise::*;
use crate::train::kernels::pooling::*;
use crate::train::kernels::tests::{assert_close, dot, fd_check, rand_vec, rng};

fn shape(kh: usize, kw: usize, stride: usize, pad: usize) -> Conv2dShape {
    Conv2dShape {
        n: 2,
        c_in: 3,
        h: 7,
        w: 6,
        c_out: 4,
        kh,
        kw,
        stride,
        pad,
    }
}

/// (kh, kw, stride, pad): kernel 1/3/5, stride 1/2, padding 0/1/"same".
const CASES: [(usize, usize, usize, usize); 8] = [
    (1, 1, 1, 0),
    (1, 1, 2, 0),
    (3, 3, 1, 1),
    (3, 3, 2, 0),
    (3, 3, 2, 1),
    (5, 5, 1, 2),
    (5, 5, 2, 1),
    (3, 1, 1, 0),
];

#[test]
fn conv_fast_matches_naive() {
    let mut r = rng(10);
    for (kh, kw, stride, pad) in CASES {
        let s = shape(kh, kw, stride, pad);
        let out = s.output_len().unwrap();
        let (x, w, b) = (
            rand_vec(&mut r, s.input_len()),
            rand_vec(&mut r, s.weight_len()),
            rand_vec(&mut r, 4),
        );
        let dy = rand_vec(&mut r, out);
        let mut ws = vec![0.0; s.backward_workspace_len().unwrap()];
        for (bias, threads) in [(None, 1), (Some(&b[..]), 1), (Some(&b[..]), 2)] {
            let what = format!(
                "conv k{kh}x{kw} s{stride} p{pad} bias {} threads {threads}",
                bias.is_some()
            );
            let (mut y1, mut y2) = (vec![7.0; out], vec![0.0; out]);
            conv2d_forward(s, &x, &w, bias, &mut y1, &mut ws, threads).unwrap();
            conv2d_forward_naive(s, &x, &w, bias, &mut y2).unwrap();
            assert_close(&format!("{what} y"), &y1, &y2, 1e-5);
            let mut g1 = (vec![7.0; x.len()], vec![7.0; w.len()], vec![7.0; 4]);
            let mut g2 = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; 4]);
            conv2d_backward(
                s,
                &x,
                &w,
                &dy,
                &mut g1.0,
                &mut g1.1,
                Some(&mut g1.2),
                &mut ws,
                threads,
            )
            .unwrap();
            conv2d_backward_naive(s, &x, &w, &dy, &mut g2.0, &mut g2.1, Some(&mut g2.2)).unwrap();
            assert_close(&format!("{what} dx"), &g1.0, &g2.0, 1e-5);
            assert_close(&format!("{what} dw"), &g1.1, &g2.1, 1e-5);
            assert_close(&format!("{what} db"), &g1.2, &g2.2, 1e-5);
        }
    }
}

#[test]
fn conv_gradients_match_finite_differences() {
    let mut r = rng(11);
    for (kh, kw, stride, pad) in [(3, 3, 2, 1), (5, 5, 1, 2), (1, 1, 1, 0)] {
        let s = shape(kh, kw, stride, pad);
        let out = s.output_len().unwrap();
        let (x, w, b) = (
            rand_vec(&mut r, s.input_len()),
            rand_vec(&mut r, s.weight_len()),
            rand_vec(&mut r, 4),
        );
        let dy = rand_vec(&mut r, out);
        let mut ws = vec![0.0; s.backward_workspace_len().unwrap()];
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; 4]);
        conv2d_backward(s, &x, &w, &dy, &mut dx, &mut dw, Some(&mut db), &mut ws, 1).unwrap();
        let mut y = vec![0.0; out];
        let mut f = |x: &[f32], w: &[f32], b: &[f32]| {
            conv2d_forward(s, x, w, Some(b), &mut y, &mut ws, 1).unwrap();
            dot(&y, &dy)
        };
        fd_check("conv dx", &x, &dx, |v| f(v, &w, &b));
        fd_check("conv dw", &w, &dw, |v| f(&x, v, &b));
        fd_check("conv db", &b, &db, |v| f(&x, &w, v));
    }
}

#[test]
fn depthwise_gradients_match_finite_differences() {
    let mut r = rng(12);
    for (k, stride, pad) in [(3, 1, 1), (3, 2, 0), (5, 2, 2)] {
        let s = Conv2dShape {
            n: 2,
            c_in: 3,
            h: 7,
            w: 6,
            c_out: 3,
            kh: k,
            kw: k,
            stride,
            pad,
        };
        let out = s.output_len().unwrap();
        let (x, w, b) = (
            rand_vec(&mut r, s.input_len()),
            rand_vec(&mut r, 3 * k * k),
            rand_vec(&mut r, 3),
        );
        let dy = rand_vec(&mut r, out);
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; 3]);
        depthwise_backward(s, &x, &w, &dy, &mut dx, &mut dw, Some(&mut db)).unwrap();
        let mut y = vec![0.0; out];
        let mut f = |x: &[f32], w: &[f32], b: &[f32]| {
            depthwise_forward(s, x, w, Some(b), &mut y).unwrap();
            dot(&y, &dy)
        };
        fd_check("depthwise dx", &x, &dx, |v| f(v, &w, &b));
        fd_check("depthwise dw", &w, &dw, |v| f(&x, v, &b));
        fd_check("depthwise db", &b, &db, |v| f(&x, &w, v));
        // A depthwise conv is a full conv whose weights are zero off the diagonal.
        let mut full = vec![0.0; 9 * k * k];
        for c in 0..3 {
            full[(c * 3 + c) * k * k..(c * 3 + c + 1) * k * k]
                .copy_from_slice(&w[c * k * k..(c + 1) * k * k]);
        }
        let mut y2 = vec![0.0; out];
        depthwise_forward(s, &x, &w, Some(&b), &mut y).unwrap();
        conv2d_forward_naive(s, &x, &full, Some(&b), &mut y2).unwrap();
        assert_close("depthwise vs full conv", &y, &y2, 1e-5);
    }
}

#[test]
fn conv_rejects_bad_shapes() {
    let s = shape(3, 3, 1, 1);
    let mut y = vec![0.0; s.output_len().unwrap()];
    let mut ws = vec![0.0; s.forward_workspace_len().unwrap()];
    let w = vec![0.0; s.weight_len()];
    let err = conv2d_forward(s, &[0.0; 5], &w, None, &mut y, &mut ws, 1).unwrap_err();
    assert!(err.to_string().contains("conv input"), "{err}");
    let x = vec![0.0; s.input_len()];
    let err = conv2d_forward(s, &x, &w, None, &mut y, &mut ws[..3], 1).unwrap_err();
    assert!(err.to_string().contains("conv workspace"), "{err}");
    assert!(shape(9, 9, 1, 0).output_hw().is_err());
    assert!(shape(3, 3, 0, 0).output_hw().is_err());
    let err = depthwise_forward(s, &x, &w, None, &mut y).unwrap_err();
    assert!(err.to_string().contains("depthwise conv channels"), "{err}");
}

/// conv(3→4, 3×3, pad 1) → ReLU → max-pool 2 → GAP → dense(4→3) → cross-entropy:
/// 20 plain SGD steps on one fixed batch bring the loss well down.
#[test]
fn tiny_network_loss_decreases_under_sgd() {
    let mut r = rng(13);
    let cs = Conv2dShape {
        n: 4,
        c_in: 3,
        h: 8,
        w: 8,
        c_out: 4,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    };
    let ps = PoolShape {
        n: 4,
        c: 4,
        h: 8,
        w: 8,
        k: 2,
        stride: 2,
    };
    let ds = DenseShape {
        n: 4,
        inputs: 4,
        outputs: 3,
    };
    let labels = [0usize, 1, 2, 1];
    let x = rand_vec(&mut r, cs.input_len());
    let mut cw: Vec<f32> = rand_vec(&mut r, cs.weight_len())
        .iter()
        .map(|v| v * 0.5)
        .collect();
    let mut cb = vec![0.1f32; 4];
    let mut dw = rand_vec(&mut r, 12);
    let mut db = vec![0.0f32; 3];
    let (conv_out, pool_out) = (cs.output_len().unwrap(), ps.output_len().unwrap());
    let mut ws = vec![0.0; cs.backward_workspace_len().unwrap()];
    let (mut a1, mut a2, mut a3, mut arg) = (
        vec![0.0; conv_out],
        vec![0.0; conv_out],
        vec![0.0; pool_out],
        vec![0u32; pool_out],
    );
    let (mut a4, mut logits, mut dlogits) = (vec![0.0; 16], vec![0.0; 12], vec![0.0; 12]);
    let (mut g4, mut g3, mut g2, mut g1, mut gx) = (
        vec![0.0; 16],
        vec![0.0; pool_out],
        vec![0.0; conv_out],
        vec![0.0; conv_out],
        vec![0.0; x.len()],
    );
    let (mut gcw, mut gcb, mut gdw, mut gdb) = (
        vec![0.0; cw.len()],
        vec![0.0; 4],
        vec![0.0; 12],
        vec![0.0; 3],
    );
    let mut losses = Vec::new();
    for _ in 0..20 {
        conv2d_forward(cs, &x, &cw, Some(&cb), &mut a1, &mut ws, 1).unwrap();
        relu_forward(&a1, &mut a2).unwrap();
        maxpool_forward(ps, &a2, &mut a3, &mut arg).unwrap();
        gap_forward(4, 4, 16, &a3, &mut a4).unwrap();
        dense_forward(ds, &a4, &dw, Some(&db), &mut logits, 1).unwrap();
        let loss = softmax_cross_entropy(&logits, &labels, 3, &mut dlogits).unwrap();
        assert!(loss.is_finite());
        losses.push(loss);
        dense_backward(ds, &a4, &dw, &dlogits, &mut g4, &mut gdw, Some(&mut gdb), 1).unwrap();
        gap_backward(4, 4, 16, &g4, &mut g3).unwrap();
        maxpool_backward(ps, &arg, &g3, &mut g2).unwrap();
        relu_backward(&a2, &g2, &mut g1).unwrap();
        conv2d_backward(
            cs,
            &x,
            &cw,
            &g1,
            &mut gx,
            &mut gcw,
            Some(&mut gcb),
            &mut ws,
            1,
        )
        .unwrap();
        for (p, g) in [
            (&mut cw, &gcw),
            (&mut cb, &gcb),
            (&mut dw, &gdw),
            (&mut db, &gdb),
        ] {
            for (v, d) in p.iter_mut().zip(g.iter()) {
                *v -= 0.5 * d;
            }
        }
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(last < 0.8 * first, "loss went {first} → {last}: {losses:?}");
}
