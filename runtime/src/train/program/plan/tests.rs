//! Tests of the memory planner.
use super::*;
use crate::model::zoo;

fn lean() -> (Spec, InputShape) {
    let spec = zoo::builtin("lean").unwrap();
    let input: InputShape = "256x256x3".parse().unwrap();
    (spec, input)
}

// Lean at 256x256x3, per image: conv_1 out 32x256x256 = 2,097,152; maxpool_2 out
// 32x128x128 = 524,288; conv_3 out 64x128x128 = 1,048,576; maxpool_4 out 64x64x64 =
// 262,144; conv_5 out 128x64x64 = 524,288; maxpool_6 out 128x32x32 = 131,072 (= flatten);
// dense 10. Params: 896 + 18,496 + 73,856 + 1,310,730 = 1,403,978; biases 32+64+128+10 =
// 234.

#[test]
fn lean_all_parameters_gradients_and_adam_state() {
    let (spec, input) = lean();
    let p = plan(&spec, input, 16, 2, Trainable::All).unwrap();
    assert_eq!(p.parameters, 1_403_978 * 4); // 5,615,912
    assert_eq!(p.gradients, p.parameters);
    assert_eq!(p.optimizer_state, 2 * p.parameters);
    // Saved per image: pool_2 out 524,288 + pool_4 out 262,144 + pool_6 out (dense
    // input) 131,072 = 917,504 f32 (each pool also does its ReLU's backward, so no ReLU
    // output is kept); argmax 524,288 + 262,144 + 131,072 = 917,504 u32; dlogits 10.
    // Total 1,835,018 × 4 bytes × 16 images = 117,441,152.
    assert_eq!(p.saved_activations, 1_835_018 * 4 * 16);
    // Workspace: no im2col matrix. conv_1 runs the direct path (a few rows of
    // panels), conv_3 and conv_5 Winograd; the largest is conv_5's weight gradient:
    // F(4×4, 3×3) has 36 transformed positions: 8 groups' 3×3 gradients 8·73,728 =
    // 589,824 + one thread's scratch: accumulators 36·128·66 = 304,128 (input channels
    // padded to blocks of 3), a chunk of 64 tiles 36·(128 + 66)·64 = 446,976 and 10
    // padded rows·66 = 660; together 1,341,588 f32.
    assert_eq!(p.workspace, 1_341_588 * 4);
    // Gradients written backward, alternating buffers: dense dx 131,072 (0), then each
    // pool hands its gradient to its conv's pass, which expands it row by row: conv_5
    // dx 262,144 (1), conv_3 dx 524,288 (0); conv_1 computes no dx. No conv output
    // gradient (up to 2,097,152) is ever written. Buffers 524,288 + 262,144.
    assert_eq!(p.activation_gradients, (524_288 + 262_144) * 4 * 16);
    // Forward: each conv → ReLU → pool pass writes only the (saved) pooled output; the
    // logits are the only transient.
    assert_eq!(p.forward_buffers, 10 * 4 * 16);
    assert_eq!(p.input_batch, 196_608 * 4 * 16);
    assert_eq!(p.labels, 16 * std::mem::size_of::<usize>() as u64);
    // Total: 5,615,912 × 4 (params, grads, Adam) + 117,441,152 saved + 50,331,648
    // scratch + 5,366,352 workspace + 12,582,912 input + labels = 208,185,712 + labels.
    assert_eq!(p.scratch(), 50_331_648);
    assert_eq!(
        p.total(),
        208_185_712 + 16 * std::mem::size_of::<usize>() as u64
    );
    assert_eq!(p.layers.len(), 9);
    let sum: u64 = p.layers.iter().map(|r| r.saved_bytes).sum();
    assert_eq!(sum, p.saved_activations);
    let table = p.to_table();
    assert!(
        table.contains("conv_1") && table.contains("total"),
        "{table}"
    );
}

#[test]
fn activations_grow_linearly_parameters_do_not() {
    let (spec, input) = lean();
    let p1 = plan(&spec, input, 1, 1, Trainable::All).unwrap();
    let p8 = plan(&spec, input, 8, 1, Trainable::All).unwrap();
    let p16 = plan(&spec, input, 16, 1, Trainable::All).unwrap();
    assert_eq!(p8.saved_activations, 8 * p1.saved_activations);
    assert_eq!(p16.saved_activations, 16 * p1.saved_activations);
    assert_eq!(p16.activation_gradients, 16 * p1.activation_gradients);
    assert_eq!(p16.input_batch, 16 * p1.input_batch);
    for p in [&p8, &p16] {
        assert_eq!(p.parameters, p1.parameters);
        assert_eq!(p.gradients, p1.gradients);
        assert_eq!(p.optimizer_state, p1.optimizer_state);
        assert_eq!(p.workspace, p1.workspace);
    }
    // Total is affine in the micro-batch: equal steps from 1 to 8 to 15... to 16.
    assert_eq!(p16.total() - p8.total(), (p8.total() - p1.total()) / 7 * 8);
}

#[test]
fn last_layer_only_trains_the_dense_and_saves_no_conv_activations() {
    let (spec, input) = lean();
    let p = plan(&spec, input, 16, 1, Trainable::LastLayers(1)).unwrap();
    // Dense 131,072·10 + 10 = 1,310,730 parameters.
    assert_eq!(p.gradients, 1_310_730 * 4);
    assert_eq!(p.optimizer_state, 1_310_730 * 4);
    for r in &p.layers[..6] {
        assert_eq!(r.gradient_bytes, 0, "{}", r.name);
        assert_eq!(r.saved_bytes, 0, "{}", r.name);
    }
    // Saved: the dense input (pool_6 via flatten) 131,072 + dlogits 10, × 16 × 4.
    assert_eq!(p.saved_activations, 131_082 * 4 * 16);
    // No gradient below the first trainable layer: the dense computes no dx.
    assert_eq!(p.activation_gradients, 0);
    // Forward only for the convs: no backward workspace. The largest is conv_5's
    // Winograd forward: weights 36·132·64 = 304,128 + one thread's scratch for 32 tiles
    // 36·(64 + 132)·32 + 6·66 = 226,188 = 530,316 f32.
    assert_eq!(p.workspace, 530_316 * 4);
    let all = plan(&spec, input, 16, 1, Trainable::All).unwrap();
    assert!(p.total() < all.total());
    assert!(p.saved_activations * 10 < all.saved_activations);
}

#[test]
fn bias_only_keeps_bias_gradients_and_flows_to_the_first_conv() {
    let (spec, input) = lean();
    let p = plan(&spec, input, 16, 2, Trainable::BiasOnly).unwrap();
    assert_eq!(p.gradients, 234 * 4);
    assert_eq!(p.optimizer_state, 2 * 234 * 4);
    // Gradients still reach conv_1's pre-activation: the pool outputs (which mask the
    // ReLU gradients) and argmaxes are saved (917,504 f32 + 917,504 u32 + dlogits 10
    // per image), but no conv or dense input.
    assert_eq!(p.saved_activations, (917_504 + 917_504 + 10) * 4 * 16);
    // conv_1 trains only its bias (the direct path has no pooled pass for that), so its
    // pool writes the whole pre-activation gradient (2,097,152, buffer 1) that conv_1's
    // bias sums; buffer 0's largest is conv_3's dx, 524,288.
    assert_eq!(p.activation_gradients, (2_097_152 + 524_288) * 4 * 16);
}

#[test]
fn last_layers_out_of_range_is_an_error() {
    let (spec, input) = lean();
    let e = plan(&spec, input, 1, 0, Trainable::LastLayers(5))
        .unwrap_err()
        .to_string();
    assert!(e.contains("4 layers with parameters"), "{e}");
    assert!(plan(&spec, input, 0, 0, Trainable::All).is_err());
    assert_eq!(
        "last:2".parse::<Trainable>().unwrap(),
        Trainable::LastLayers(2)
    );
    assert_eq!(
        "bias-only".parse::<Trainable>().unwrap(),
        Trainable::BiasOnly
    );
    assert!("last:0".parse::<Trainable>().is_err());
    assert_eq!(
        crate::train::optim::OptimizerConfig::adam().state_per_param(),
        2
    );
}

#[test]
fn fit_picks_the_largest_balanced_micro_batch() {
    let (spec, input) = lean();
    let p8 = plan(&spec, input, 8, 1, Trainable::All).unwrap();
    let p9 = plan(&spec, input, 9, 1, Trainable::All).unwrap();
    let p16 = plan(&spec, input, 16, 1, Trainable::All).unwrap();
    // Between plan(8) and plan(9): 8 images, 2 steps of 8.
    let f = fit(&spec, input, p9.total() - 1, 16, 1, Trainable::All).unwrap();
    assert_eq!(
        (f.micro_batch, f.accumulation_steps, f.last_micro_batch),
        (8, 2, 8)
    );
    assert!(!f.uneven());
    assert_eq!(f.plan, p8);
    // Anywhere below plan(16): up to 15 fit, but 2 steps of 8 need less memory.
    let f = fit(&spec, input, p16.total() - 1, 16, 1, Trainable::All).unwrap();
    assert_eq!(
        (f.max_micro_batch, f.micro_batch, f.accumulation_steps),
        (15, 8, 2)
    );
    // Effective 20 with 8 fitting: 3 steps of 7, 7, 6.
    let f = fit(&spec, input, p9.total() - 1, 20, 1, Trainable::All).unwrap();
    assert_eq!(
        (f.micro_batch, f.accumulation_steps, f.last_micro_batch),
        (7, 3, 6)
    );
    assert!(f.uneven());
    // A big budget: the whole batch at once.
    let f = fit(&spec, input, u64::MAX, 16, 1, Trainable::All).unwrap();
    assert_eq!((f.micro_batch, f.accumulation_steps), (16, 1));
}

#[test]
fn impossible_budget_names_what_would_fit() {
    let (spec, input) = lean();
    let one = plan(&spec, input, 1, 2, Trainable::All).unwrap();
    let e = fit(&spec, input, one.total() - 1, 16, 2, Trainable::All)
        .unwrap_err()
        .to_string();
    assert!(e.contains("input 128x128x3"), "{e}");
    assert!(e.contains("last:"), "{e}");
    assert!(e.contains("bias-only"), "{e}");
    let e = fit(&spec, input, 1024, 16, 2, Trainable::All)
        .unwrap_err()
        .to_string();
    assert!(e.contains("raise the budget"), "{e}");
}

#[test]
fn a_tensor_saved_twice_is_counted_once() {
    let text = r#"
name = "tiny"
input = "8x8x2"
[[layers]]
type = "conv"
filters = 4
kernel = 3
[[layers]]
type = "relu"
[[layers]]
type = "conv"
filters = 6
kernel = 3
[[layers]]
type = "global_avg_pool"
[[layers]]
type = "dense"
units = 3
"#;
    let file = crate::model::spec::SpecFile::parse(text, "tiny.toml").unwrap();
    let spec = Spec::resolve(file, &zoo::builtin).unwrap();
    let p = plan(&spec, spec.input, 1, 0, Trainable::All).unwrap();
    // relu_2 keeps its output 4x8x8 = 256, which is also conv_3's input: counted on
    // relu_2 only. dense_5 keeps its input (6), the loss its dlogits (3).
    let saved: Vec<u64> = p.layers.iter().map(|r| r.saved_bytes).collect();
    assert_eq!(saved, vec![0, 256 * 4, 0, 0, 6 * 4, 3 * 4]);
    // Gradients backward: dense dx 6 (buffer 0), gap's dx 6x8x8 = 384 (1), conv_3's dx
    // 4x8x8 = 256 (0), relu_2's dx 256 (1). Forward: conv_1 writes relu_2's (saved)
    // output itself; conv_3's output 384 goes to buffer 0, the pooled 6 is the dense's
    // saved input, so the logits (3) go to buffer 0 as well.
    assert_eq!(p.activation_gradients, (256 + 384) * 4);
    assert_eq!(p.forward_buffers, 384 * 4);
    // Workspace: conv_1's direct weight gradient, 8 groups of 4·18·8 lane sums + one
    // thread's padded rows 3·2·10 and two dy rows per output channel 2·4·8 = 4,732,
    // beats conv_3's im2col 4·9·8·8 = 2,304 doubled for backward (it computes dx, which
    // the direct path does not).
    assert_eq!(p.workspace, (8 * 576 + 60 + 64) * 4);
}
