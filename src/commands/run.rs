//! `edgebench run`: one model on one input (a .npy, an image, or a seeded random tensor),
//! output written as .npy; `--repeat` times it.

use std::path::Path;

use edgebench_runtime::bench::single::{self, Input, RunLatency};
use edgebench_runtime::data::npy;
use edgebench_runtime::engine;
use edgebench_runtime::fsutil::IoPaths;

use super::engine_options;
use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut io = IoPaths::new()
        .input("MODEL", &args.model)
        .input_opt("--calibrate", args.model_input.calibrate.as_deref());
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
    let prepared = edgebench_runtime::quant::variant::prepare(
        &args.model,
        &args.model_input.prepare_options(batch),
    )?;
    // Before any input is built or engine started: an input or activation larger than
    // memory is an error here, not an abort in the allocator.
    engine::check_memory(&prepared.path, &prepared.input_shape).map_err(|e| e.at(&args.model))?;
    let input = match npy {
        Some(array) => Input::Npy {
            array,
            path: &args.input,
        },
        None if args.input == "random" => Input::Random(args.model_input.seed),
        None => Input::Image(Path::new(&args.input)),
    };
    let (input, warning) = single::input_tensor(&prepared, input)?;
    if let Some(w) = warning {
        eprintln!("edgebench: warning: {w}");
    }
    let opts = engine_options(&args.engine, prepared.input_shape.clone());
    let t = single::time(
        &prepared,
        args.engine.engine,
        &opts,
        &input,
        args.warmup,
        args.repeat,
    )?;
    if let Some(out) = &args.output {
        npy::write_npy(out, &t.output)?;
    }
    let (info, lat) = (&t.info, &t.latencies_ms);
    let stats = RunLatency::of(lat);
    let top = single::top_k(&t.output, 5);
    if args.json {
        let j = serde_json::json!({
            "model": prepared.name,
            "input_shape": prepared.input_shape,
            "preprocess": edgebench_runtime::model::describe_preprocess(&prepared.preprocess, prepared.layout),
            "engine": info,
            "init_ms": t.init_ms,
            "first_inference_ms": t.first_inference_ms,
            "latency_ms": stats,
            "output_shape": t.output.shape(),
            "top": top,
            "output_file": args.output,
        });
        super::print_json("the run summary", &j)?;
        return Ok(());
    }
    let dims: Vec<String> = prepared.input_shape.iter().map(|d| d.to_string()).collect();
    println!(
        "{}: engine {} {} (input {}), provider {}",
        prepared.name,
        info.engine,
        info.version,
        dims.join("x"),
        info.provider
    );
    for f in &info.fallbacks {
        println!("  fallback: {f}");
    }
    if !args.input.to_ascii_lowercase().ends_with(".npy") && args.input != "random" {
        println!(
            "  image input: {}",
            edgebench_runtime::model::describe_preprocess(&prepared.preprocess, prepared.layout)
        );
    }
    println!(
        "  init {:.1} ms, first inference {:.2} ms",
        t.init_ms, t.first_inference_ms
    );
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
    let top: Vec<String> = top.iter().map(|(i, p)| format!("{i}:{p:.4}")).collect();
    println!(
        "  output {:?}; top classes (image 0): {}",
        t.output.shape(),
        top.join(" ")
    );
    if let Some(out) = &args.output {
        println!("  wrote {}", out.display());
    }
    Ok(())
}
