//! `edgebench engines`: which engines and execution providers this build can use.

use edgebench_runtime::engine::{self, EngineOptions};

use crate::cli::EnginesArgs;

pub fn run(args: EnginesArgs) -> anyhow::Result<()> {
    let mut opts = EngineOptions::for_shape(vec![]);
    opts.ort_library = args.ort_lib;
    let ort = match engine::ort::library_path(&opts) {
        Err(e) => serde_json::json!({ "available": false, "reason": e.to_string() }),
        Ok(path) => match engine::ort::probe(&opts) {
            Err(e) => {
                serde_json::json!({ "available": false, "library": path, "reason": e.to_string() })
            }
            Ok(version) => serde_json::json!({
                "available": true,
                "library": path,
                "version": version,
                "providers": engine::ort::available_providers().unwrap_or_default(),
            }),
        },
    };
    let tract = serde_json::json!({ "available": cfg!(feature = "tract") });
    if args.json {
        super::print_json(
            "the engine list",
            &serde_json::json!({ "ort": ort, "tract": tract }),
        )?;
        return Ok(());
    }
    if ort["available"].as_bool().unwrap_or(false) {
        println!(
            "ort    ONNX Runtime {} at {}",
            ort["version"].as_str().unwrap_or("?"),
            ort["library"].as_str().unwrap_or("?")
        );
        let eps: Vec<&str> = ort["providers"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        println!(
            "       execution providers in this library: {}",
            eps.join(", ")
        );
    } else {
        println!(
            "ort    unavailable: {}",
            ort["reason"].as_str().unwrap_or("?")
        );
    }
    if cfg!(feature = "tract") {
        println!("tract  compiled in (pure-Rust CPU engine)");
    } else {
        println!("tract  not compiled in (rebuild with --features tract)");
    }
    Ok(())
}
