//! `edgebench models list|show|export`.

use anyhow::Context;
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::model::{onnx_write, spec::Spec, zoo};

use super::{bytes, si};
use crate::cli::ModelsCmd;

pub fn run(cmd: ModelsCmd) -> anyhow::Result<()> {
    match cmd {
        ModelsCmd::List { input, json } => list(input, json),
        ModelsCmd::Show { model, input } => show(&model, input),
        ModelsCmd::Export {
            model,
            output,
            input,
            seed,
        } => {
            let spec = spec_of(&model)?;
            let input = input.unwrap_or(spec.input);
            IoPaths::new()
                .input("MODEL", &model)
                .output("--output", &output)
                .check()?;
            let s = onnx_write::export(&spec, input, seed, &output)
                .with_context(|| format!("exporting {model}"))?;
            println!(
                "wrote {} ({}, input {}, {} params, {} MACs, seed {seed}, {})",
                output.display(),
                s.model,
                s.input,
                s.params,
                si(s.macs),
                bytes(s.bytes)
            );
            Ok(())
        }
    }
}

fn spec_of(model: &str) -> anyhow::Result<Spec> {
    match zoo::resolve(model)? {
        zoo::ModelRef::Spec(s) => Ok(s),
        zoo::ModelRef::Onnx(p) => anyhow::bail!(
            "{} is already an ONNX file; `models` works on built-in names and spec .toml files",
            p.display()
        ),
    }
}

fn list(
    input: Option<edgebench_runtime::model::spec::InputShape>,
    json: bool,
) -> anyhow::Result<()> {
    let rows = zoo::summaries(input)?;
    if json {
        return super::print_json("the model list", &rows);
    }
    print!("{}", zoo::list_text(&rows));
    Ok(())
}

fn show(
    model: &str,
    input: Option<edgebench_runtime::model::spec::InputShape>,
) -> anyhow::Result<()> {
    let spec = spec_of(model)?;
    print!("{}", zoo::layers_text(&spec, input.unwrap_or(spec.input))?);
    Ok(())
}
