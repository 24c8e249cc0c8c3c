//! Classify a folder of images with any ONNX model, from your own program: the runtime
//! as a library, doing what `edgebench run` does for one image, for a whole folder.
//!
//! ```text
//! cargo run -p edgebench-runtime --example classify -- MODEL IMAGES [BATCH]
//! ```
//!
//! `MODEL` is an `.onnx` file, a spec `.toml` or a built-in name (`lean`); `IMAGES` an
//! image folder (one sub-folder per class, or loose files), a TFRecord file or a folder
//! of shards. The engine is chosen automatically (ONNX Runtime when its library loads,
//! else tract); the streaming loader decodes straight into its fixed pool of batch
//! slots, and each batch is handed to the engine as a view of its slot. A short last
//! batch is padded in one buffer allocated up front, so the loop allocates nothing of
//! its own per batch (the engine returns its output tensor). Prints one line per image:
//! its index, the top-1 class and its score, and the item's label when it has one.

use std::path::Path;
use std::sync::Arc;

use edgebench_runtime::Error;
use edgebench_runtime::data::decode::Target;
use edgebench_runtime::data::loader::{Loader, LoaderConfig, OnError};
use edgebench_runtime::data::{Source, source};
use edgebench_runtime::engine::{self, EngineSettings};
use edgebench_runtime::model::{self, Layout, PrepareOptions};
use ndarray::{ArrayViewD, IxDyn};

/// One image's prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The item's position in the source.
    pub item: usize,
    /// The class with the highest score, and that score.
    pub class: usize,
    pub score: f32,
    /// The item's label, when the source has one.
    pub label: Option<u32>,
}

/// Classify every image of `images` with `model`, `batch` images per engine run, calling
/// `each` with every prediction in the source's order.
pub fn classify(
    model: &str,
    images: &Path,
    batch: usize,
    each: &mut dyn FnMut(&Prediction),
) -> edgebench_runtime::Result<()> {
    let prepared = model::prepare(
        model,
        &PrepareOptions {
            batch: Some(batch),
            ..Default::default()
        },
    )?;
    let shape = prepared.input_shape.clone();
    let (h, w) = match (prepared.layout, shape.as_slice()) {
        (Layout::Nchw, [_, 3, h, w]) | (Layout::Nhwc, [_, h, w, 3]) => (*h, *w),
        _ => {
            return Err(Error::Invalid(format!(
                "{model}: input {shape:?} is not an RGB image batch"
            )));
        }
    };
    let size = |v: usize| u32::try_from(v).map_err(|_| Error::Invalid(format!("size {v}")));
    let mut target = Target::new(size(h)?, size(w)?, prepared.layout);
    target.preprocess = prepared.preprocess.clone();
    let image_len = target.image_len();

    let src: Arc<dyn Source> = Arc::from(source::open(images)?);
    let settings = EngineSettings::default();
    let mut session = engine::open(
        &prepared.path,
        settings.engine,
        &settings.options(shape.clone()),
    )?;
    let info = session.info();
    eprintln!(
        "{}: {} on {} ({}), batch {batch}",
        prepared.name,
        info.engine,
        info.provider,
        images.display()
    );

    let mut cfg = LoaderConfig::new(target, batch);
    // In order, and an unreadable image ends the run: batch k holds items k·batch….
    cfg.on_error = OnError::Fail;
    let mut loader = Loader::new(Arc::clone(&src), cfg)?;
    // The one buffer a short last batch is padded in (zeros after its images).
    let mut padded = vec![0f32; batch * image_len];
    let mut item = 0;
    while let Some(b) = loader.next_batch() {
        let b = b?;
        let pixels = if b.len == batch {
            b.images()
        } else {
            padded[..b.images().len()].copy_from_slice(b.images());
            padded[b.images().len()..].fill(0.0);
            &padded
        };
        let input = ArrayViewD::from_shape(IxDyn(&shape), pixels)
            .map_err(|e| Error::Invalid(format!("batch of {}: {e}", b.len)))?;
        let scores = session.run(input)?;
        let per_image = scores.len() / batch;
        let flat = scores
            .as_slice()
            .ok_or_else(|| Error::Invalid("the output is not contiguous".into()))?;
        for row in flat.chunks(per_image).take(b.len) {
            let (class, &score) = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .ok_or_else(|| Error::Invalid("the model has no outputs".into()))?;
            if !score.is_finite() {
                return Err(Error::Invalid(format!("item {item}: score {score}")));
            }
            each(&Prediction {
                item,
                class,
                score,
                label: src.label(item),
            });
            item += 1;
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model, images, batch) = match args.as_slice() {
        [m, i] => (m, i, 8),
        [m, i, b] => match b.parse::<usize>() {
            Ok(b) if b >= 1 => (m, i, b),
            _ => {
                eprintln!("classify: BATCH must be a number ≥ 1, not {b:?}");
                return std::process::ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: classify MODEL IMAGES [BATCH]");
            return std::process::ExitCode::from(2);
        }
    };
    let mut print = |p: &Prediction| match p.label {
        Some(l) => println!(
            "{:>6}  class {:>3}  score {:.4}  label {l}",
            p.item, p.class, p.score
        ),
        None => println!("{:>6}  class {:>3}  score {:.4}", p.item, p.class, p.score),
    };
    match classify(model, Path::new(images), batch, &mut print) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("classify: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgebench_runtime::data::synth::{SynthFormat, SynthOptions, generate};

    /// 7 images of 2 classes, classified in batches of 3 (the last one short and padded),
    /// give the same top-1 and scores as one image at a time.
    #[test]
    fn batches_and_a_padded_last_batch_match_one_image_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("imgs");
        generate(
            &SynthOptions {
                out: images.clone(),
                classes: 2,
                count: 7,
                size: 40,
                seed: 3,
                format: SynthFormat::Png,
                quality: 90,
                threads: 1,
            },
            &|_, _| {},
        )
        .unwrap();
        let run = |batch| {
            let mut got = Vec::new();
            classify("lean", &images, batch, &mut |p| got.push(*p)).unwrap();
            got
        };
        let (batched, single) = (run(3), run(1));
        assert_eq!(batched.len(), 7);
        assert_eq!(
            batched.iter().map(|p| p.item).collect::<Vec<_>>(),
            (0..7).collect::<Vec<_>>()
        );
        // Labels as the folders give them: 4 of class 0 (the remainder), 3 of class 1.
        let mut labels: Vec<u32> = batched.iter().filter_map(|p| p.label).collect();
        labels.sort_unstable();
        assert_eq!(labels, [0, 0, 0, 0, 1, 1, 1]);
        for (b, s) in batched.iter().zip(&single) {
            assert_eq!((b.item, b.class, b.label), (s.item, s.class, s.label));
            assert!((b.score - s.score).abs() <= 1e-5, "{b:?} vs {s:?}");
            // lean ends in a softmax over 10 classes.
            assert!(b.class < 10 && b.score > 0.1 && b.score <= 1.0, "{b:?}");
        }
    }
}
