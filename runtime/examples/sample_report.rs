//! Sample reports for a look in a browser: the made-up heavy-vs-lean comparison in every
//! format, and a crowded one (six models close together, long names, no target).
//!
//! `cargo run -p edgebench-runtime --example sample_report -- [OUT.html]` writes
//! OUT.html (default `target/sample-report/compare.html`), the same stem with `.txt`,
//! `.md`, `.csv`, `.json`, and `.crowded.html`.

use std::path::PathBuf;

use edgebench_runtime::report::schema::Report;
use edgebench_runtime::report::{Format, cross_model, fixture, write};

fn main() -> edgebench_runtime::Result<()> {
    let out = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from("target/sample-report/compare.html"),
        PathBuf::from,
    );
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| edgebench_runtime::Error::io(dir, e))?;
    }
    let r = fixture::report();
    write(&r, Format::Html, &out)?;
    for f in [Format::Table, Format::Markdown, Format::Csv, Format::Json] {
        write(&r, f, &out.with_extension(f.extension()))?;
    }
    let mut models: Vec<_> = (0..6)
        .map(|i| {
            let name = format!("mobilenet-v2-width-{}-very-long-name", 10 + i);
            fixture::with_figures(&name, 20.0 + i as f64, 300 + 10 * i, None)
        })
        .collect();
    let ratios = cross_model::ratios(&models);
    for (m, q) in models.iter_mut().zip(ratios) {
        m.ratios = Some(q);
    }
    let crowded = Report {
        target: None,
        pareto: cross_model::pareto_front(&models),
        models,
        ..r
    };
    let crowded_path = out.with_extension("crowded.html");
    write(&crowded, Format::Html, &crowded_path)?;
    println!(
        "wrote {} (and .txt .md .csv .json), {}",
        out.display(),
        crowded_path.display()
    );
    Ok(())
}
