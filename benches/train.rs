//! Training throughput: the lean model at 256×256×3, micro-batch 16, SGD with momentum
//! (REFERENCE.md: Keras on TF-CPU does 31 images/s at 1,458 MiB peak RSS), and the
//! GEMM rate of convolution forward and backward passes (lean's second conv, 32→64
//! channels at 128×128, batch 16), reported as elements = floating-point operations, so
//! criterion's "Gelem/s" reads as GFLOP/s. Those are the direct convolution's FLOPs: the
//! trainer runs this shape with Winograd F(4×4, 3×3), which does 36/144 of them, so the
//! rate can pass the machine's GEMM peak; `EDGEBENCH_CONV=im2col` measures the im2col +
//! GEMM path instead.
//!
//! Before measuring it prints the trainer's arena size and, after the step benchmark,
//! the process's peak RSS (`VmHWM`). `EDGEBENCH_TRAIN_BENCH_THREADS=N` sets the GEMM
//! threads (default 0: every core).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgebench_runtime::model::spec::InputShape;
use edgebench_runtime::model::zoo;
use edgebench_runtime::train::kernels::Gemm;
use edgebench_runtime::train::kernels::conv::{
    Conv2dShape, Grads, conv2d_backward_hw, conv2d_forward_hw,
};
use edgebench_runtime::train::kernels::workers::Workers;
use edgebench_runtime::train::optim::OptimizerConfig;
use edgebench_runtime::train::trainer::{Trainer, TrainerConfig};

fn threads() -> usize {
    std::env::var("EDGEBENCH_TRAIN_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Deterministic pseudo-random values in [-0.5, 0.5).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn train_step(c: &mut Criterion) {
    let spec = zoo::builtin("lean").expect("built-in lean");
    let input = InputShape {
        height: 256,
        width: 256,
        channels: 3,
    };
    let batch = 16;
    let mut cfg = TrainerConfig::new(batch);
    cfg.optimizer = OptimizerConfig::sgd(0.9);
    cfg.threads = threads();
    let mut t = Trainer::new(&spec, input, cfg).expect("trainer");
    eprintln!(
        "lean 256x256x3 batch {batch}: arena {:.1} MiB (plan {:.1} MiB)",
        t.arena_bytes() as f64 / 1048576.0,
        t.plan().total() as f64 / 1048576.0
    );
    let x: Vec<f32> = values(batch * 3 * 256 * 256, 1)
        .iter()
        .map(|v| v + 0.5)
        .collect();
    let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);
    g.throughput(Throughput::Elements(batch as u64));
    g.bench_function("lean_256_b16_sgd_momentum", |b| {
        b.iter(|| t.step(&x, &labels).expect("step"))
    });
    g.finish();
    if let Some(mib) = peak_rss_mib() {
        eprintln!("peak RSS after the training step: {mib:.0} MiB");
    }
}

fn conv_gemm(c: &mut Criterion) {
    let n = 16;
    let s = Conv2dShape {
        n,
        c_in: 32,
        h: 128,
        w: 128,
        c_out: 64,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    };
    let hw = (128, 128);
    let x = values(s.input_len(), 2);
    let w = values(s.weight_len(), 3);
    let b = values(s.c_out, 4);
    let mut y = vec![0.0; n * s.c_out * 128 * 128];
    let col = s.c_in * 9 * 128 * 128;
    let mut ws = vec![0.0; 2 * col * n.max(1)];
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; s.c_out]);
    let macs = (n * 128 * 128 * s.c_out * s.c_in * 9) as u64;
    let threads = Gemm::resolve_threads(threads());
    let workers = Workers::new(threads - 1).expect("threads");
    let mut pack = vec![0.0; Gemm::pack_len(threads)];
    let mut gemm = Gemm {
        threads,
        pack: &mut pack,
        workers: Some(&workers),
    };
    // On a shared machine wall time includes other processes' turns: the process CPU
    // time of one pass gives the rate the cores deliver while running it.
    let cpu = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // Safety: `ts` is a valid, writable timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    };
    let (t0, w0) = (cpu(), std::time::Instant::now());
    conv2d_forward_hw(s, hw, &x, &w, Some(&b), &mut y, &mut ws, &mut gemm).expect("fwd");
    let (t1, w1) = (cpu(), w0.elapsed().as_secs_f64());
    let rate = 2.0 * macs as f64 / (t1 - t0) / 1e9 * threads as f64;
    // 3×3 stride-1 convs run Winograd F(4×4, 3×3) unless EDGEBENCH_CONV=im2col: 36 of
    // every 144 multiplies of the direct convolution are done.
    let im2col = std::env::var("EDGEBENCH_CONV").is_ok_and(|v| v == "im2col");
    let (algo, done) = if im2col {
        ("im2col + GEMM", 1.0)
    } else {
        ("Winograd F(4x4,3x3)", 36.0 / 144.0)
    };
    eprintln!(
        "conv forward ({algo}): {rate:.1} GFLOP/s per CPU-second counting the direct \
         convolution's FLOPs, {:.1} GFLOP/s of arithmetic done ({threads} threads, wall \
         {:.0} ms)",
        rate * done,
        w1 * 1e3
    );
    let mut g = c.benchmark_group("conv_gemm");
    g.sample_size(10);
    g.throughput(Throughput::Elements(2 * macs));
    g.bench_function("forward_32to64_128x128_b16", |bch| {
        bch.iter(|| {
            conv2d_forward_hw(s, hw, &x, &w, Some(&b), &mut y, &mut ws, &mut gemm).expect("fwd")
        })
    });
    g.throughput(Throughput::Elements(4 * macs));
    g.bench_function("backward_32to64_128x128_b16", |bch| {
        bch.iter(|| {
            let grads = Grads {
                dx: Some(&mut dx),
                dw: Some(&mut dw),
                db: Some(&mut db),
                accumulate: false,
            };
            conv2d_backward_hw(s, hw, &x, &w, &y, grads, &mut ws, &mut gemm).expect("bwd")
        })
    });
    g.finish();
}

criterion_group!(benches, train_step, conv_gemm);
criterion_main!(benches);
