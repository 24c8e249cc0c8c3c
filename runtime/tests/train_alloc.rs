//! Zero heap allocations per training step after set-up: a counting global allocator
//! (all threads) around `Trainer::step` over several micro-batches, across accumulation
//! boundaries and optimizer updates, plus `evaluate`, on one thread and on the GEMM's
//! rayon threads.
//!
//! The first steps are a warm-up: the `gemm` crate sizes its packing buffers once per
//! thread (thread-local, kept for the thread's life) and rayon starts its pool on first
//! use. After that the count must not move at all.

mod alloc_support;
mod train_common;

use alloc_support::serial;
use edgebench_runtime::train::optim::OptimizerConfig;
use edgebench_runtime::train::program::plan::Trainable;
use edgebench_runtime::train::schedule::Schedule;
use edgebench_runtime::train::trainer::Trainer;
use train_common::{config, square, synth_batch, tiny_spec};

/// Allocations during `steps` steps (micro-batches of 4, then a smaller one of 3, so
/// both sizes and the update at each boundary are covered) after `warmup` steps.
fn allocations(threads: usize, opt: OptimizerConfig, depthwise: bool) -> u64 {
    let spec = tiny_spec(3, depthwise);
    let mut cfg = config(4, 2, Trainable::All, opt, 0.05);
    cfg.threads = threads;
    cfg.schedule = Schedule::parse("warmup:2+cosine:20", 0.05).unwrap();
    let mut t = Trainer::new(&spec, square(8), cfg).unwrap();
    let (x, y) = synth_batch(3, 7, 8, 1);
    let img = 3 * 64;
    let (x4, y4, x3, y3) = (&x[..4 * img], &y[..4], &x[4 * img..], &y[4..]);
    for _ in 0..3 {
        t.step(x4, y4).unwrap();
        t.step(x3, y3).unwrap();
    }
    t.evaluate(x4, y4).unwrap();
    let before = alloc_support::count();
    let mut updates = 0;
    for _ in 0..5 {
        updates += usize::from(t.step(x4, y4).unwrap().lr.is_some());
        updates += usize::from(t.step(x3, y3).unwrap().lr.is_some());
        t.evaluate(x3, y3).unwrap();
    }
    t.predict(x4).unwrap();
    let after = alloc_support::count();
    assert_eq!(updates, 5, "one optimizer update per two micro-batches");
    after - before
}

/// One test, not several: the counter is global, and the test harness allocates on its
/// own thread when another test in this binary finishes, which would land in a count.
#[test]
fn steps_allocate_nothing() {
    let _g = serial();
    for opt in [OptimizerConfig::sgd(0.9), OptimizerConfig::adamw()] {
        for depthwise in [false, true] {
            assert_eq!(
                allocations(1, opt, depthwise),
                0,
                "one thread: {opt:?} depthwise {depthwise}"
            );
        }
    }
    let n = allocations(2, OptimizerConfig::sgd(0.9), false);
    assert_eq!(n, 0, "allocations in 10 steps with 2 GEMM threads");
}
