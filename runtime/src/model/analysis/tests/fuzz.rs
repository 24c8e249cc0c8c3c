//! The `onnx_analysis` fuzz target's body ([`fuzz_one`]) over 20,000 mutations of
//! small valid models, so CI exercises it without nightly or cargo-fuzz.

use rand::{RngExt, SeedableRng};

use super::builder::{Seq, a_ints, ints_tensor, model, node, vi, vi_fixed, weight};
use crate::model::analysis::fuzz_one;
use crate::onnx::encode_model;

/// A small CNN, and a torch-style graph whose Reshape shape is folded from Shape/Gather/
/// Concat: the two paths (plain shape rules and constant folding) mutations should reach.
fn seeds() -> Vec<Vec<u8>> {
    let mut s = Seq::new("x");
    s.conv(3, 4, 3, false)
        .pool()
        .flatten()
        .dense_softmax(4 * 4 * 4, 5);
    let out = s.output().to_string();
    let cnn = model(
        s.nodes,
        s.inits,
        vec![vi("x", &[None, Some(3), Some(8), Some(8)])],
        &[&out],
        13,
    );
    let chain = model(
        vec![
            node(
                "Conv",
                &["x", "w"],
                &["c"],
                vec![a_ints("pads", &[1, 1, 1, 1])],
            ),
            node("Shape", &["c"], &["s"], vec![]),
            node("Gather", &["s", "i0"], &["n"], vec![]),
            node("Unsqueeze", &["n", "ax"], &["n1"], vec![]),
            node(
                "Concat",
                &["n1", "m1"],
                &["shape"],
                vec![a_ints("axis", &[0])],
            ),
            node("Reshape", &["c", "shape"], &["r"], vec![]),
        ],
        vec![
            weight("w", &[2, 3, 3, 3]),
            ints_tensor("i0", &[], &[0]),
            ints_tensor("ax", &[1], &[0]),
            ints_tensor("m1", &[1], &[-1]),
        ],
        vec![vi_fixed("x", &[1, 3, 8, 8])],
        &["r"],
        13,
    );
    vec![encode_model(&cnn), encode_model(&chain)]
}

#[test]
fn mutations_never_panic() {
    let seeds = seeds();
    for s in &seeds {
        let path = std::path::Path::new("seed.onnx");
        let m = crate::onnx::decode_model(s, path).unwrap();
        crate::model::analysis::analyze(&m, path, None).unwrap();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
    for round in 0..20_000 {
        let mut b = seeds[round % seeds.len()].clone();
        match round % 5 {
            k @ 0..crate::mutate::BASIC => crate::mutate::basic(&mut rng, &mut b, k),
            3 => {
                // Protobuf varints: large values in dims, attributes and lengths.
                let i = rng.random_range(0..b.len());
                let v = [0x7f, 0x80, 0xff, 0x01, 0x00][rng.random_range(0..5)];
                b[i] = v;
            }
            _ => {
                // A chunk of the model repeated: duplicated fields and nodes.
                let (i, j) = (rng.random_range(0..b.len()), rng.random_range(0..b.len()));
                let (lo, hi) = (i.min(j), i.max(j).min(i.min(j) + 64));
                let chunk = b[lo..hi].to_vec();
                b.splice(hi..hi, chunk);
            }
        }
        fuzz_one(&b);
    }
}

/// Inputs the fuzzer once crashed on, kept as regressions.
#[test]
fn past_fuzzer_crashes_are_handled() {
    // Two initializers whose element counts add past u64::MAX (an overflow panic in the
    // parameter sum).
    crate::model::analysis::fuzz_one(include_bytes!("crashes/params-sum-overflow.onnx"));
}
