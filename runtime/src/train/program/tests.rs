//! Tests of the program's backward sweep: the passes of lean, lowered at 16×16×3, in
//! the order and on the gradient buffers worked out by hand (on the fast convolution
//! paths, as the trainer runs by default).

use super::plan::{LayerMode, Trainable, plan};
use super::{BackwardPass, Pass, Program, backward_passes};
use crate::model::spec::InputShape;
use crate::model::zoo;

/// Lean's ops: 0 conv_1, 1 its ReLU, 2 maxpool_2, 3 conv_3, 4 its ReLU, 5 maxpool_4,
/// 6 conv_5, 7 its ReLU, 8 maxpool_6, 9 dense (flatten is no op; the softmax is the
/// loss's).
fn lean(trainable: Trainable) -> Program {
    let spec = zoo::builtin("lean").unwrap();
    let input: InputShape = "16x16x3".parse().unwrap();
    let p = plan(&spec, input, 2, 0, trainable).unwrap();
    let modes: Vec<LayerMode> = p.layers.iter().map(|r| r.mode).collect();
    Program::lower(&spec, input, &modes[..spec.layers.len()], 2, 0, 1).unwrap()
}

fn pass(pass: Pass, dy: Option<usize>, dx: Option<usize>) -> BackwardPass {
    BackwardPass { pass, dy, dx }
}

#[test]
fn every_layer_trained_runs_each_conv_with_its_relu_and_pool() {
    let prog = lean(Trainable::All);
    assert_eq!(prog.ops.len(), 10);
    let passes: Vec<BackwardPass> = backward_passes(&prog.ops).collect();
    assert_eq!(
        passes,
        [
            // dense writes its input gradient first, to buffer 0; conv_5 (Winograd) and
            // conv_3 read their pools' gradients and alternate; conv_1 (direct path) has
            // no input gradient.
            pass(Pass::Op(9), None, Some(0)),
            pass(Pass::ConvPool { conv: 6, pool: 8 }, Some(0), Some(1)),
            pass(Pass::ConvPool { conv: 3, pool: 5 }, Some(1), Some(0)),
            pass(Pass::ConvPool { conv: 0, pool: 2 }, Some(0), None),
        ]
    );
    // Buffer 0 holds dense's input gradient (128·2·2 = 512 per image) and conv_3's
    // (32·8·8 = 2,048); buffer 1 conv_5's (64·4·4 = 1,024); two images, 4 bytes each.
    assert_eq!(prog.grad[0].bytes, 2048 * 2 * 4);
    assert_eq!(prog.grad[1].bytes, 1024 * 2 * 4);
}

#[test]
fn bias_only_runs_the_first_pool_alone_and_a_frozen_front_runs_nothing() {
    let prog = lean(Trainable::BiasOnly);
    let passes: Vec<BackwardPass> = backward_passes(&prog.ops).collect();
    assert_eq!(
        passes,
        [
            pass(Pass::Op(9), None, Some(0)),
            pass(Pass::ConvPool { conv: 6, pool: 8 }, Some(0), Some(1)),
            pass(Pass::ConvPool { conv: 3, pool: 5 }, Some(1), Some(0)),
            // conv_1 computes no weight gradient, so the direct path takes nothing from
            // the pool: maxpool_2 does its ReLU's backward (op 1 is skipped) and writes
            // conv_1's output gradient, which conv_1 reads for its bias alone.
            pass(Pass::Op(2), Some(0), Some(1)),
            pass(Pass::Op(0), Some(1), None),
        ]
    );
    let last = lean(Trainable::LastLayers(1));
    let passes: Vec<BackwardPass> = backward_passes(&last.ops).collect();
    assert_eq!(passes, [pass(Pass::Op(9), None, None)]);
    assert_eq!(last.grad[0].bytes + last.grad[1].bytes, 0);
}
