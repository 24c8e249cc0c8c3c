//! Train a model within a memory budget on a folder of images, from your own program,
//! and export it as ONNX for the inference engines: the runtime as a library, doing
//! what `edgebench train --memory-budget … --export …` does.
//!
//! ```text
//! cargo run --release -p edgebench-runtime --example finetune -- MODEL IMAGES BUDGET OUT.onnx [EPOCHS]
//! ```
//!
//! `MODEL` is a built-in name (`lean`, `lean-w0.5`, …) or a spec `.toml`; `IMAGES` an
//! image folder (one sub-folder per class) or TFRecord shards; `BUDGET` the memory the
//! training step may use (`256MiB`): the largest micro-batch that fits it is chosen and
//! gradients are accumulated up to the effective batch of 32. Prints one line per epoch
//! and the exported file.

use std::path::Path;

use edgebench_runtime::model::zoo;
use edgebench_runtime::train::fit::{self, Data, EpochRow, FitConfig, Fitted, Observer};
use edgebench_runtime::train::program::plan::{self, Trainable};
use edgebench_runtime::train::trainer::{Trainer, TrainerConfig};
use edgebench_runtime::{Error, Result, units};

/// Images per optimizer step.
const BATCH: usize = 32;

/// Prints each finished epoch.
struct Lines;

impl Observer for Lines {
    fn epoch_finished(&mut self, row: &EpochRow, epochs: u64) {
        println!("{}", row.line(epochs));
    }
}

/// Train `model` on `images` for `epochs` within `budget` bytes per training step, and
/// write the trained model to `out` (ONNX).
pub fn finetune(
    model: &str,
    images: &Path,
    budget: u64,
    epochs: u64,
    out: &Path,
    obs: &mut dyn Observer,
) -> Result<Fitted> {
    let zoo::ModelRef::Spec(spec) = zoo::resolve(model)? else {
        return Err(Error::Invalid(format!(
            "{model}: give a built-in model or a spec .toml (an ONNX file is not trainable)"
        )));
    };
    let input = spec.input;
    let classes = spec.classes(input)?;
    let data = Data::open(images, None, &spec, classes)?;

    // The micro-batch is the largest that fits the budget; the trainer is built for it.
    let mut cfg = TrainerConfig::new(BATCH);
    let factor = cfg.optimizer.state_per_param();
    let split = plan::split(
        &spec,
        input,
        BATCH,
        None,
        Some(budget),
        factor,
        Trainable::All,
    )?;
    cfg.micro_batch = split.micro;
    cfg.accumulation_steps = split.steps;
    println!(
        "{}: batch {BATCH} = {} × micro-batch {} within {}",
        spec.name,
        split.steps,
        split.micro,
        units::bytes(budget)
    );
    let mut trainer = Trainer::new(&spec, input, cfg)?;
    let fit_cfg = FitConfig {
        export: Some(out.to_path_buf()),
        tegrastats_interval_ms: 0,
        ..FitConfig::new(epochs, split)
    };
    fit::fit(&mut trainer, &data, None, &fit_cfg, obs)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage: finetune MODEL IMAGES BUDGET OUT.onnx [EPOCHS]");
        std::process::ExitCode::from(2)
    };
    let (model, images, budget, out, epochs) = match args.as_slice() {
        [m, i, b, o] => (m, i, b, o, "3"),
        [m, i, b, o, e] => (m, i, b, o, e.as_str()),
        _ => return usage(),
    };
    let (Ok(budget), Ok(epochs @ 1..)) = (units::parse_bytes(budget), epochs.parse::<u64>()) else {
        return usage();
    };
    match finetune(
        model,
        Path::new(images),
        budget,
        epochs,
        Path::new(out),
        &mut Lines,
    ) {
        Ok(done) => {
            if let Some(e) = &done.exported {
                println!(
                    "exported {} ({} parameters) to {out}",
                    e.model,
                    units::thousands(e.params)
                );
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("finetune: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgebench_runtime::data::synth::{SynthFormat, SynthOptions, generate};
    use edgebench_runtime::model::onnx_read;
    use edgebench_runtime::train::program::plan::plan;

    /// A tiny spec: one 3×3 conv of 4 filters, global pooling, 2 classes, at 16×16.
    const TINY: &str = r#"
name = "tiny"
input = "16x16x3"
[[layers]]
type = "conv"
filters = 4
kernel = 3
padding = "same"
activation = "relu"
[[layers]]
type = "global_avg_pool"
[[layers]]
type = "dense"
units = 2
activation = "softmax"
"#;

    /// 12 images of 2 classes, 2 epochs within a budget that fits micro-batches of 8 but
    /// not 9: one optimizer step per epoch (12 images < the batch of 32), fed in
    /// micro-batches of at most 8, and the exported ONNX holds the trained weights.
    #[test]
    fn trains_within_the_budget_and_exports_the_trained_model() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("imgs");
        generate(
            &SynthOptions {
                out: images.clone(),
                classes: 2,
                count: 12,
                size: 16,
                seed: 5,
                format: SynthFormat::Png,
                quality: 90,
                threads: 1,
            },
            &|_, _| {},
        )
        .unwrap();
        let spec_file = dir.path().join("tiny.toml");
        std::fs::write(&spec_file, TINY).unwrap();
        let zoo::ModelRef::Spec(spec) = zoo::resolve(spec_file.to_str().unwrap()).unwrap() else {
            panic!("not a spec")
        };
        let factor = TrainerConfig::new(1).optimizer.state_per_param();
        let need = |micro| {
            plan(&spec, spec.input, micro, factor, Trainable::All)
                .unwrap()
                .total()
        };
        // A budget between what 8 and 9 images need.
        let budget = (need(8) + need(9)) / 2;

        let out = dir.path().join("tiny.onnx");
        let (mut rows, mut fed) = (Vec::new(), Vec::new());
        struct Keep<'a>(&'a mut Vec<EpochRow>, &'a mut Vec<usize>);
        impl Observer for Keep<'_> {
            fn epoch_finished(&mut self, row: &EpochRow, _: u64) {
                self.0.push(row.clone());
            }
            fn fed(&mut self, images: usize) {
                self.1.push(images);
            }
        }
        let done = finetune(
            spec_file.to_str().unwrap(),
            &images,
            budget,
            2,
            &out,
            &mut Keep(&mut rows, &mut fed),
        )
        .unwrap();
        assert_eq!(done.updates, 2);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.iter().map(|r| r.steps).collect::<Vec<_>>(), [1, 2]);
        assert!(rows.iter().all(|r| r.loss.is_finite()), "{rows:?}");
        assert_eq!(fed.iter().sum::<usize>(), 24, "{fed:?}");
        assert!(fed.iter().all(|&n| (1..=8).contains(&n)), "{fed:?}");

        let exported = onnx_read::read_weights(&out, &spec, spec.input).unwrap();
        let initial = Trainer::new(&spec, spec.input, TrainerConfig::new(BATCH))
            .unwrap()
            .weights()
            .unwrap();
        assert_eq!(exported.layers.len(), initial.layers.len());
        assert_ne!(exported, initial, "the export holds the initial weights");
    }
}
