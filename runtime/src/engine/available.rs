//! Which engines this build can use (`edgebench engines`): whether the ONNX Runtime
//! library loads (where it is, its version, its execution providers, or why not), and
//! whether tract is compiled in.

use std::path::PathBuf;

use super::{EngineOptions, ort};

/// What [`probe`] found.
#[derive(Debug, Clone)]
pub struct Available {
    /// The ONNX Runtime library found, if any.
    pub ort_library: Option<PathBuf>,
    /// Its version and execution providers, or why it cannot be used.
    pub ort: std::result::Result<(String, Vec<String>), String>,
    /// tract is compiled in.
    pub tract: bool,
}

/// Look for the ONNX Runtime library (`ort_library`, else the default places) and load
/// it.
pub fn probe(ort_library: Option<PathBuf>) -> Available {
    let mut opts = EngineOptions::for_shape(vec![]);
    opts.settings.ort_library = ort_library;
    let (library, ort) = match ort::library_path(&opts) {
        Err(e) => (None, Err(e.to_string())),
        Ok(path) => {
            let ort = ort::probe(&opts)
                .map_err(|e| e.to_string())
                .map(|version| (version, ort::available_providers().unwrap_or_default()));
            (Some(path), ort)
        }
    };
    Available {
        ort_library: library,
        ort,
        tract: cfg!(feature = "tract"),
    }
}

impl Available {
    /// The JSON object of `edgebench engines --json`.
    pub fn to_json(&self) -> serde_json::Value {
        let ort = match (&self.ort, &self.ort_library) {
            (Ok((version, providers)), path) => serde_json::json!({
                "available": true,
                "library": path,
                "version": version,
                "providers": providers,
            }),
            (Err(reason), None) => serde_json::json!({ "available": false, "reason": reason }),
            (Err(reason), Some(path)) => {
                serde_json::json!({ "available": false, "library": path, "reason": reason })
            }
        };
        serde_json::json!({ "ort": ort, "tract": { "available": self.tract } })
    }

    /// A line or two per engine.
    pub fn text(&self) -> String {
        let mut s = match (&self.ort, &self.ort_library) {
            (Ok((version, providers)), path) => format!(
                "ort    ONNX Runtime {version} at {}\n       execution providers in this library: {}\n",
                path.as_ref()
                    .map_or("?".into(), |p| p.display().to_string()),
                providers.join(", ")
            ),
            (Err(reason), _) => format!("ort    unavailable: {reason}\n"),
        };
        s.push_str(if self.tract {
            "tract  compiled in (pure-Rust CPU engine)\n"
        } else {
            "tract  not compiled in (rebuild with --features tract)\n"
        });
        s
    }
}
