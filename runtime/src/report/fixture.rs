//! Test fixtures: a realistic heavy-vs-lean `compare` report on a 2-core x86 host with
//! the Orin Nano target, built without running anything.

use crate::board;
use crate::report::schema::*;

const MIB: u64 = 1024 * 1024;

/// `n` deterministic latencies (ms) around `center` with a right tail.
fn samples(center: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            center * (0.93 + 0.1 * u + 0.25 * u.powi(12))
        })
        .collect()
}

fn stats(s: &[f64]) -> LatencyStats {
    let mut v = s.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let r = p * (v.len() - 1) as f64;
        let (lo, hi) = (r.floor() as usize, r.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (r - lo as f64)
    };
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    LatencyStats {
        count: v.len() as u64,
        min: v[0],
        mean,
        median: q(0.5),
        p90: q(0.9),
        p95: q(0.95),
        p99: q(0.99),
        max: v[v.len() - 1],
        std: var.sqrt(),
    }
}

fn profile(total_ms: f64, macs: u64) -> Vec<NodeTime> {
    let ops = [
        "Conv",
        "Relu",
        "MaxPool",
        "Conv",
        "Relu",
        "BatchNormalization",
    ];
    let weights: Vec<f64> = (0..20).map(|i| 1.0 / (1.0 + i as f64)).collect();
    let sum: f64 = weights.iter().sum();
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let op = ops[i % ops.len()];
            let mean_ms = total_ms * w / sum;
            let node_macs = if op == "Conv" {
                (macs as f64 * w / sum) as u64
            } else {
                0
            };
            NodeTime {
                name: format!("/features/{op}_{i}"),
                op: op.into(),
                mean_ms,
                share: w / sum,
                macs: node_macs,
                gflops: node_macs as f64 * 2.0 / (mean_ms * 1e6),
                provider: None,
                precision: None,
            }
        })
        .collect()
}

/// A model with the given p90 (ms) and peak RSS (MiB), other figures plausible.
pub fn with_figures(name: &str, p90_ms: f64, rss_mib: u64, accuracy: Option<f64>) -> ModelResult {
    let s = samples(p90_ms / 1.05, 200, name.len() as u64 + 7);
    let mut latency = stats(&s);
    latency.p90 = p90_ms;
    let macs = 300_000_000;
    let ips = 1000.0 / p90_ms * 1.3;
    ModelResult {
        name: name.into(),
        source: name.into(),
        input_shape: vec![1, 3, 224, 224],
        params: 1_403_978,
        macs_per_image: macs,
        engine: EngineUsed {
            engine: "ort".into(),
            provider: "cpu".into(),
            version: "1.23.2".into(),
            fallbacks: vec![],
        },
        init_ms: 40.0,
        first_inference_ms: p90_ms * 2.0,
        single_stream: Some(SingleStream {
            latency_ms: latency,
            samples_ms: s,
            duration_s: 5.0,
        }),
        offline: Some(Offline {
            batch: 8,
            queries: 100,
            images: 800,
            duration_s: 800.0 / ips,
            throughput_ips: ips,
            batch_latency_ms: stats(&samples(8000.0 / ips, 100, 3)),
        }),
        memory: Memory {
            baseline_rss_bytes: 40 * MIB,
            peak_rss_bytes: rss_mib * MIB,
            growth_bytes: (rss_mib - 40.min(rss_mib)) * MIB,
            arena_bytes: None,
            arena_note: "not exposed by this engine".into(),
        },
        compute: Compute::against(macs as f64 * 2.0 * ips / 1e9, Some(95.0)),
        accuracy,
        pipeline: None,
        batch_sweep: None,
        verdicts: vec![],
        ratios: None,
        profile: None,
        power: None,
        file_bytes: Some(5_617_654),
        precision: Some("fp32".into()),
        top1_change_points: None,
        preprocess: Some("x/255, nchw".into()),
    }
}

/// The seed's heavy CNN: slow, big, with an engine fallback.
pub fn heavy() -> ModelResult {
    let mut m = with_figures("heavy", 68.4, 612, None);
    m.params = 7_261_450;
    m.macs_per_image = 2_310_000_000;
    m.engine.fallbacks = vec![
        "tensorrt: not available in this ONNX Runtime library".into(),
        "cuda: libcudart.so.12: cannot open shared object file".into(),
    ];
    let ips = 17.6;
    let o = m.offline.as_mut().expect("fixture has offline");
    o.throughput_ips = ips;
    o.duration_s = 800.0 / ips;
    m.compute.gflops = 2.31 * 2.0 * ips;
    m.compute.share_of_peak = Some(m.compute.gflops / 95.0);
    m.profile = Some(profile(60.0, m.macs_per_image));
    m
}

/// The downsized CNN: fast and small.
pub fn lean() -> ModelResult {
    let mut m = with_figures("lean", 9.7, 148, None);
    m.macs_per_image = 310_000_000;
    m.profile = Some(profile(8.5, m.macs_per_image));
    m.batch_sweep = Some(BatchSweep {
        points: [
            (1, 103.0, 120),
            (2, 121.0, 128),
            (4, 130.5, 138),
            (8, 134.0, 148),
            (16, 135.2, 170),
        ]
        .iter()
        .map(|&(batch, throughput_ips, rss)| SweepPoint {
            batch,
            throughput_ips,
            peak_rss_bytes: rss * MIB,
            fits: true,
        })
        .collect(),
        chosen: 8,
        reason: "smallest batch within 5% of the best throughput that fits".into(),
    });
    m
}

/// A `compare heavy lean --target jetson-orin-nano` report, with ratios, verdicts and
/// the Pareto front filled in as `compare` does.
pub fn report() -> Report {
    let budget = board::resolve("jetson-orin-nano")
        .expect("built-in target")
        .budget("--target");
    let mut models = vec![heavy(), lean()];
    let ratios = super::cross_model::ratios(&models);
    for (m, r) in models.iter_mut().zip(ratios) {
        m.ratios = Some(r);
        m.verdicts = board::verdicts(&budget, m);
    }
    Report {
        schema: SCHEMA_NAME.into(),
        schema_version: SCHEMA_VERSION,
        command: "compare".into(),
        edgebench_version: "0.1.0".into(),
        created_unix_s: 1_764_000_000,
        machine: Machine {
            cpu: "AMD EPYC 7B13 64-Core Processor".into(),
            cores: 2,
            simd: "avx2+fma".into(),
            arch: "x86_64".into(),
            memory_bytes: 8 << 30,
            board: None,
            gemm_peak_gflops: Some(95.0),
            kernels: "avx2".into(),
        },
        settings: Settings {
            engine: "auto".into(),
            ep: vec!["cpu".into()],
            threads: None,
            warmup_queries: 10,
            warmup_s: 1.0,
            min_duration_s: 5.0,
            min_queries: 100,
            batch: 8,
            interleaved: true,
        },
        target: Some(budget),
        pareto: super::cross_model::pareto_front(&models),
        models,
        tegrastats: None,
    }
}
