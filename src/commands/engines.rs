//! `edgebench engines`: which engines and execution providers this build can use.

use edgebench_runtime::engine::available;

use crate::cli::EnginesArgs;

pub fn run(args: EnginesArgs) -> anyhow::Result<()> {
    let found = available::probe(args.ort_lib);
    if args.json {
        return super::print_json("the engine list", &found.to_json());
    }
    print!("{}", found.text());
    Ok(())
}
