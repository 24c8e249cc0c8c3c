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
    let onnx = edgebench_runtime::onnx::read_model(&prepared.path)
        .with_context(|| format!("analysing {}", args.model))?;
    let missing = analysis::missing_external_data(&onnx, &prepared.path);
    if !missing.is_empty() {
        eprintln!(
            "edgebench: warning: {}: external data file{} {} missing; the analysis needs \
             only shapes, but no engine can load this model",
            args.model,
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ") + if missing.len() == 1 { " is" } else { " are" },
        );
    }
    let a = analysis::analyze(&onnx, &prepared.path, Some(&prepared.input_shape))
        .with_context(|| format!("analysing {}", args.model))?;
    if args.json {
        super::print_json("the analysis", &a)?;
    } else {
        print!("{}", a.to_table());
    }
    Ok(())
}
