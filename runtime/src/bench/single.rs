//! One model on one input (`edgebench run`): the input tensor from a `.npy`, an image or
//! a seed; the engine opened; the first inference and, after `warmup` more, `repeat`
//! timed ones; the output and its top classes.

use std::path::Path;
use std::time::Instant;

use ndarray::ArrayD;
use serde::Serialize;

use crate::engine::{self, EngineChoice, EngineOptions, SessionInfo};
use crate::error::{Error, Result, ResultExt};
use crate::model::{Layout, Prepared};
use crate::tensor_io;

/// Where the input tensor comes from.
#[derive(Debug)]
pub enum Input<'a> {
    /// A `.npy` array, already read: its shape must be the model's.
    Npy { array: ArrayD<f32>, path: &'a str },
    /// An image file, decoded and preprocessed as the model expects (batch 1 only).
    Image(&'a Path),
    /// A seeded random tensor of the model's input shape.
    Random(u64),
}

/// The input tensor for `prepared`, and a warning to show (a truncated JPEG).
pub fn input_tensor(prepared: &Prepared, input: Input) -> Result<(ArrayD<f32>, Option<String>)> {
    match input {
        Input::Npy { array, path } => {
            tensor_io::expect_shape(&array, &prepared.input_shape, path)?;
            Ok((array, None))
        }
        Input::Random(seed) => {
            let t = tensor_io::seeded_input(&prepared.input_shape, seed)
                .map_err(|e| e.at(&prepared.name))?;
            Ok((t, None))
        }
        Input::Image(path) => image_input(path, prepared),
    }
}

fn image_input(path: &Path, prepared: &Prepared) -> Result<(ArrayD<f32>, Option<String>)> {
    let (h, w, c) = prepared.image_hwc()?;
    if prepared.input_shape[0] != 1 {
        return Err(Error::Input {
            path: path.to_path_buf(),
            reason: format!(
                "an image input feeds batch 1; use a .npy for batch {}",
                prepared.input_shape[0]
            ),
        });
    }
    let t = tensor_io::load_image(path, h, w, c, &prepared.preprocess)?;
    let warning = crate::data::decode::truncated_jpeg_file(path).then(|| {
        format!(
            "{}: truncated JPEG: the missing part decodes as grey",
            path.display()
        )
    });
    let t = match prepared.layout {
        Layout::Nchw => t,
        Layout::Nhwc => t
            .permuted_axes(vec![0, 2, 3, 1])
            .as_standard_layout()
            .into_owned(),
    };
    Ok((t, warning))
}

/// What [`time`] measured.
#[derive(Debug)]
pub struct Timed {
    /// Opening the session, ms.
    pub init_ms: f64,
    pub first_inference_ms: f64,
    /// The timed runs (the first inference alone when nothing more was asked).
    pub latencies_ms: Vec<f64>,
    /// The last run's output.
    pub output: ArrayD<f32>,
    pub info: SessionInfo,
}

/// Open `prepared` on `choice`, run it once, `warmup` more times, then `repeat` timed
/// times (with no warm-up and at most one repeat, the first inference is the timing).
pub fn time(
    prepared: &Prepared,
    choice: EngineChoice,
    opts: &EngineOptions,
    input: &ArrayD<f32>,
    warmup: usize,
    repeat: usize,
) -> Result<Timed> {
    let t0 = Instant::now();
    let mut session = engine::open(&prepared.path, choice, opts)
        .context(|| format!("preparing {}", prepared.name))?;
    let init_ms = ms(t0);
    let t1 = Instant::now();
    let mut output = session.run(input.view())?;
    let first_inference_ms = ms(t1);
    for _ in 0..warmup {
        output = session.run(input.view())?;
    }
    let mut latencies_ms = Vec::with_capacity(repeat.max(1));
    if repeat > 1 || warmup > 0 {
        for _ in 0..repeat {
            let t = Instant::now();
            output = session.run(input.view())?;
            latencies_ms.push(ms(t));
        }
    } else {
        latencies_ms.push(first_inference_ms);
    }
    Ok(Timed {
        init_ms,
        first_inference_ms,
        latencies_ms,
        output,
        info: session.info().clone(),
    })
}

impl Timed {
    /// The JSON summary of `edgebench run --json` for `prepared`, whose output went to
    /// `output_file`.
    pub fn to_json(&self, prepared: &Prepared, output_file: Option<&Path>) -> serde_json::Value {
        serde_json::json!({
            "model": prepared.name,
            "input_shape": prepared.input_shape,
            "preprocess": crate::model::describe_preprocess(&prepared.preprocess, prepared.layout),
            "engine": self.info,
            "init_ms": self.init_ms,
            "first_inference_ms": self.first_inference_ms,
            "latency_ms": RunLatency::of(&self.latencies_ms),
            "output_shape": self.output.shape(),
            "top": top_k(&self.output, 5),
            "output_file": output_file,
        })
    }

    /// What `edgebench run` prints: engine and provider (and fallbacks), the image
    /// preprocessing when the input was an image, times, the output's shape and top
    /// classes, and `output_file`.
    pub fn text(&self, prepared: &Prepared, image: bool, output_file: Option<&Path>) -> String {
        let (info, lat) = (&self.info, &self.latencies_ms);
        let dims: Vec<String> = prepared.input_shape.iter().map(|d| d.to_string()).collect();
        let mut s = format!(
            "{}: engine {} {} (input {}), provider {}\n",
            prepared.name,
            info.engine,
            info.version,
            dims.join("x"),
            info.provider
        );
        for f in &info.fallbacks {
            s.push_str(&format!("  fallback: {f}\n"));
        }
        if image {
            s.push_str(&format!(
                "  image input: {}\n",
                crate::model::describe_preprocess(&prepared.preprocess, prepared.layout)
            ));
        }
        s.push_str(&format!(
            "  init {:.1} ms, first inference {:.2} ms\n",
            self.init_ms, self.first_inference_ms
        ));
        if lat.len() > 1 {
            let st = RunLatency::of(lat);
            s.push_str(&format!(
                "  latency over {} runs: min {:.2} ms, median {:.2} ms, mean {:.2} ms, max {:.2} ms\n",
                lat.len(),
                st.min,
                st.median,
                st.mean,
                st.max
            ));
        }
        let top: Vec<String> = top_k(&self.output, 5)
            .iter()
            .map(|(i, p)| format!("{i}:{p:.4}"))
            .collect();
        s.push_str(&format!(
            "  output {:?}; top classes (image 0): {}\n",
            self.output.shape(),
            top.join(" ")
        ));
        if let Some(out) = output_file {
            s.push_str(&format!("  wrote {}\n", out.display()));
        }
        s
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Min, median, mean and max of a run's latencies, ms.
#[derive(Debug, Clone, Serialize)]
pub struct RunLatency {
    pub runs: usize,
    pub min: f64,
    pub median: f64,
    pub mean: f64,
    pub max: f64,
}

impl RunLatency {
    /// Of a non-empty sample (an empty one gives zeros).
    pub fn of(v: &[f64]) -> Self {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n == 0 {
            return Self {
                runs: 0,
                min: 0.0,
                median: 0.0,
                mean: 0.0,
                max: 0.0,
            };
        }
        Self {
            runs: n,
            min: s[0],
            // The middle value, or the mean of the middle two (numpy's median).
            median: super::stats::percentile_sorted(&s, 50.0),
            mean: s.iter().sum::<f64>() / n as f64,
            max: s[n - 1],
        }
    }
}

/// The `k` largest (class, value) of the first row of an `[N, K]` (or `[K]`) output.
pub fn top_k(out: &ArrayD<f32>, k: usize) -> Vec<(usize, f32)> {
    let row: Vec<f32> = match out.shape() {
        [_, n] | [n] => out.iter().take(*n).copied().collect(),
        _ => return Vec::new(),
    };
    let mut idx: Vec<(usize, f32)> = row.into_iter().enumerate().collect();
    idx.sort_by(|a, b| b.1.total_cmp(&a.1));
    idx.truncate(k);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary_and_top_classes() {
        let l = RunLatency::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(
            (l.runs, l.min, l.median, l.mean, l.max),
            (4, 1.0, 2.5, 2.5, 4.0)
        );
        assert_eq!(RunLatency::of(&[3.0, 1.0, 2.0]).median, 2.0);
        let out = ArrayD::from_shape_vec(vec![2, 4], vec![0.1, 0.5, 0.3, 0.1, 9.0, 9.0, 9.0, 9.0])
            .unwrap();
        assert_eq!(top_k(&out, 2), [(1, 0.5), (2, 0.3)]);
        assert!(top_k(&ArrayD::zeros(vec![1, 2, 3]), 5).is_empty());
    }
}
