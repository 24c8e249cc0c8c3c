//! `edgebench inspect`: analysis of any ONNX file (or a built-in model).

use anyhow::Context;
use edgebench_runtime::model::{self, analysis};

use crate::cli::InspectArgs;

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let prepared = model::prepare(
        &args.model,
        &model::PrepareOptions {
            input: args.input,
            input_shape: args.input_shape.clone().map(|d| d.0),
            ..Default::default()
        },
    );
    // An ONNX file whose shape is not fixed is still analysed when --input-shape is given;
    // `prepare` errors the same way analysis would otherwise, so report its error.
    let prepared = prepared?;
    let a = analysis::analyze_file(&prepared.path, Some(&prepared.input_shape))
        .with_context(|| format!("analysing {}", args.model))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&a)?);
    } else {
        print!("{}", a.to_table());
    }
    Ok(())
}
