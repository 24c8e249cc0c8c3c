//! `edgebench run`: one model on one input (a .npy, an image, or a seeded random tensor),
//! output written as .npy; `--repeat` times it.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use edgebench_runtime::data::npy;
use edgebench_runtime::engine;
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::model::{self, Layout};
use edgebench_runtime::tensor_io;
use ndarray::ArrayD;

use super::engine_options;
use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut io = IoPaths::new().input("MODEL", &args.model);
    if args.input != "random" {
        io = io.input("--input", &args.input);
    }
    io.output_opt("--output", args.output.as_deref()).check()?;
    let is_npy = args.input.to_ascii_lowercase().ends_with(".npy");
    let npy = if is_npy {
        Some(npy::read_npy(Path::new(&args.input))?)
    } else {
        None
    };
    // A .npy decides the batch; its other dimensions must match the model's.
    let batch = npy.as_ref().filter(|a| a.ndim() == 4).map(|a| a.shape()[0]);
    let prepared = model::prepare(&args.model, &args.model_input.prepare_options(batch))?;
    // Before any input is built or engine started: an input or activation larger than
    // memory is an error here, not an abort in the allocator.
    engine::check_memory(&prepared.path, &prepared.input_shape).map_err(|e| e.at(&args.model))?;
    let input = match npy {
        Some(a) => {
            tensor_io::expect_shape(&a, &prepared.input_shape, &args.input)?;
            a
        }
        None if args.input == "random" => {
            tensor_io::seeded_input(&prepared.input_shape, args.model_input.seed)
                .map_err(|e| e.at(&args.model))?
        }
        None => image_input(&args.input, &prepared)?,
    };

    let opts = engine_options(&args.engine, prepared.input_shape.clone());
    let t0 = Instant::now();
    let mut session = engine::open(&prepared.path, args.engine.engine, &opts)
        .with_context(|| format!("preparing {}", prepared.name))?;
    let init_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t1 = Instant::now();
    let mut output = session.run(input.view())?;
    let first_ms = t1.elapsed().as_secs_f64() * 1e3;
    for _ in 0..args.warmup {
        output = session.run(input.view())?;
    }
    let mut lat = Vec::with_capacity(args.repeat);
    if args.repeat > 1 || args.warmup > 0 {
        for _ in 0..args.repeat {
            let t = Instant::now();
            output = session.run(input.view())?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
    } else {
        lat.push(first_ms);
    }
    if let Some(out) = &args.output {
        npy::write_npy(out, &output)?;
    }
    let info = session.info().clone();
    let stats = Stats::of(&lat);
    if args.json {
        let j = serde_json::json!({
            "model": prepared.name,
            "input_shape": prepared.input_shape,
            "engine": info,
            "init_ms": init_ms,
            "first_inference_ms": first_ms,
            "latency_ms": stats,
            "output_shape": output.shape(),
            "top": top_k(&output, 5),
            "output_file": args.output,
        });
        super::print_json("the run summary", &j)?;
        return Ok(());
    }
    println!(
        "{}: engine {} {} ({}), provider {}",
        prepared.name,
        info.engine,
        info.version,
        describe_shape(&prepared.input_shape),
        info.provider
    );
    for f in &info.fallbacks {
        println!("  fallback: {f}");
    }
    println!("  init {init_ms:.1} ms, first inference {first_ms:.2} ms");
    if lat.len() > 1 {
        println!(
            "  latency over {} runs: min {:.2} ms, median {:.2} ms, mean {:.2} ms, max {:.2} ms",
            lat.len(),
            stats.min,
            stats.median,
            stats.mean,
            stats.max
        );
    }
    let top: Vec<String> = top_k(&output, 5)
        .iter()
        .map(|(i, p)| format!("{i}:{p:.4}"))
        .collect();
    println!(
        "  output {:?}; top classes (image 0): {}",
        output.shape(),
        top.join(" ")
    );
    if let Some(out) = &args.output {
        println!("  wrote {}", out.display());
    }
    Ok(())
}

fn describe_shape(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("input {}", dims.join("x"))
}

fn image_input(path: &str, prepared: &model::Prepared) -> anyhow::Result<ArrayD<f32>> {
    let (h, w, c) = prepared.image_hwc()?;
    if prepared.input_shape[0] != 1 {
        anyhow::bail!(
            "an image input feeds batch 1; use a .npy for batch {}",
            prepared.input_shape[0]
        );
    }
    let t = tensor_io::load_image(Path::new(path), h, w, c, &prepared.preprocess)?;
    if edgebench_runtime::data::decode::truncated_jpeg_file(Path::new(path)) {
        eprintln!("edgebench: warning: {path}: truncated JPEG: the missing part decodes as grey");
    }
    Ok(match prepared.layout {
        Layout::Nchw => t,
        Layout::Nhwc => t
            .permuted_axes(vec![0, 2, 3, 1])
            .as_standard_layout()
            .into_owned(),
    })
}

/// Top-k (class, value) of the first row of a [N, K] output.
fn top_k(out: &ArrayD<f32>, k: usize) -> Vec<(usize, f32)> {
    let row: Vec<f32> = match out.shape() {
        [_, n] => out.iter().take(*n).copied().collect(),
        [n] => out.iter().take(*n).copied().collect(),
        _ => return Vec::new(),
    };
    let mut idx: Vec<(usize, f32)> = row.into_iter().enumerate().collect();
    idx.sort_by(|a, b| b.1.total_cmp(&a.1));
    idx.truncate(k);
    idx
}

#[derive(Debug, serde::Serialize)]
struct Stats {
    runs: usize,
    min: f64,
    median: f64,
    mean: f64,
    max: f64,
}

impl Stats {
    fn of(v: &[f64]) -> Self {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Self {
            runs: n,
            min: s[0],
            median,
            mean: s.iter().sum::<f64>() / n as f64,
            max: s[n - 1],
        }
    }
}
