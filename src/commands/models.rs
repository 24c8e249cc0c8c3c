//! `edgebench models list|show|export`.

use anyhow::Context;
use edgebench_runtime::fsutil::IoPaths;
use edgebench_runtime::model::{onnx_write, spec::Spec, zoo};

use super::{bytes, group, si};
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
        super::print_json("the model list", &rows)?;
        return Ok(());
    }
    println!(
        "{:<10} {:>11} {:>14} {:>10}  description",
        "model", "input", "params", "MACs"
    );
    for r in &rows {
        println!(
            "{:<10} {:>11} {:>14} {:>10}  {}",
            r.name,
            r.input,
            group(r.params),
            si(r.macs),
            r.description
        );
    }
    Ok(())
}

fn show(
    model: &str,
    input: Option<edgebench_runtime::model::spec::InputShape>,
) -> anyhow::Result<()> {
    let spec = spec_of(model)?;
    let inp = input.unwrap_or(spec.input);
    let plan = spec.plan(inp)?;
    println!("{} — {} (input {inp})", spec.name, spec.description);
    println!(
        "{:>3} {:<16} {:>14} {:>12} {:>10}",
        "#", "layer", "output", "params", "MACs"
    );
    for (i, l) in plan.iter().enumerate() {
        println!(
            "{:>3} {:<16} {:>14} {:>12} {:>10}",
            i + 1,
            l.layer.kind(),
            l.output.to_string(),
            group(l.params),
            si(l.macs)
        );
    }
    println!(
        "total: {} params, {} MACs per image",
        group(plan.iter().map(|l| l.params).sum()),
        si(plan.iter().map(|l| l.macs).sum())
    );
    Ok(())
}
