//! Batch-1 inference latency of the built-in models on each engine (criterion).
//!
//! Names are `<engine>/<model>`; throughput is set in images so criterion reports
//! images/s beside the time. `EDGEBENCH_BENCH_MODELS=lean,heavy` picks the models
//! (default: lean and heavy). Engines that cannot be opened (no ONNX Runtime library,
//! feature compiled out) are reported on stderr and skipped.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgebench_runtime::engine::{self, EngineChoice, EngineOptions};
use edgebench_runtime::model::{self, PrepareOptions};
use edgebench_runtime::tensor_io::seeded_input;

fn engines(c: &mut Criterion) {
    let models = std::env::var("EDGEBENCH_BENCH_MODELS").unwrap_or_else(|_| "lean,heavy".into());
    for name in models.split(',') {
        let prepared = match model::prepare(name, &PrepareOptions::default()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipping {name}: {e}");
                continue;
            }
        };
        let input = seeded_input(&prepared.input_shape, 0).expect("a built-in model's input fits");
        let mut group = c.benchmark_group("batch1");
        group.throughput(Throughput::Elements(1));
        group.sample_size(if name == "heavy" { 10 } else { 30 });
        for (label, choice) in [("ort", EngineChoice::Ort), ("tract", EngineChoice::Tract)] {
            let opts = EngineOptions::for_shape(prepared.input_shape.clone());
            let mut session = match engine::open(&prepared.path, choice, &opts) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("skipping {label}/{name}: {e}");
                    continue;
                }
            };
            group.bench_function(format!("{label}/{name}"), |b| {
                b.iter(|| session.run(input.view()).expect("inference runs"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, engines);
criterion_main!(benches);
