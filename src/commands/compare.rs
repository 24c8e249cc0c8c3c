//! `edgebench compare [MODEL...]`: the same measurement for every model, interleaved in
//! rounds (A B A B …), each model in its own process; ratios against the first model and
//! the Pareto front. With no models it compares the built-in `heavy` and `lean`.

use clap::Args;

use super::measure::{self, MeasureArgs};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Models to compare (built-in names, spec .toml or .onnx files); default: heavy lean.
    pub models: Vec<String>,
    #[command(flatten)]
    pub measure: MeasureArgs,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let models = if args.models.is_empty() {
        vec!["heavy".to_string(), "lean".to_string()]
    } else {
        args.models
    };
    measure::run("compare", &models, &args.measure)
}
