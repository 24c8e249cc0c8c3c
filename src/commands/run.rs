//! `edgebench run`: one model on one input (a .npy, an image, or a seeded random tensor),
//! output written as .npy; `--repeat` times it.

use std::path::Path;

use edgebench_runtime::bench::single::{self, Input};
use edgebench_runtime::data::npy;
use edgebench_runtime::engine;
use edgebench_runtime::fsutil::IoPaths;

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
    let opts = args.engine.settings().options(prepared.input_shape.clone());
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
    if args.json {
        return super::print_json(
            "the run summary",
            &t.to_json(&prepared, args.output.as_deref()),
        );
    }
    let image = !is_npy && args.input != "random";
    print!("{}", t.text(&prepared, image, args.output.as_deref()));
    Ok(())
}
