//! Jetson boards and their budgets (`targets/*.toml`), the verdicts of a model against
//! them ([`verdicts`]), detection of the board edgebench runs on ([`detect`]), and
//! `tegrastats`: its line parser ([`tegrastats::parse_line`]) and the background
//! sampler that reports power, loads and temperatures ([`Tegrastats`]).
//!
//! The built-in targets are compiled in from the repository's `targets/` folder; any
//! other `.toml` file in the same format can be given by path. Unknown keys are
//! rejected, naming the key and the file, so a typo cannot silently drop a budget.

mod detect;
pub mod tegrastats;
pub mod tegrastats_sampler;
pub mod text;
mod verdict;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::report::schema::TargetBudget;

pub use detect::{SYSROOT_ENV, detect, detect_board, detect_in};
pub use tegrastats_sampler::{Recording, Sampler, Tegrastats};
pub use verdict::{describe, verdicts};

/// Bytes in one MiB: budgets are written in MiB, reports carry bytes.
pub const MIB: u64 = 1024 * 1024;

/// One board: what to build for, what runs on it, and what a model must fit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Name given to `--target`.
    pub name: String,
    /// One line for tables and reports.
    pub description: String,
    /// Rust target triple to build for.
    pub triple: String,
    /// Newest glibc of the board's OS (binaries must link against it or older).
    pub glibc: Option<String>,
    /// JetPack release.
    pub jetpack: Option<String>,
    /// Linux for Tegra release.
    pub l4t: Option<String>,
    /// CUDA version shipped with that JetPack.
    pub cuda: Option<String>,
    /// Memory of the board, MiB (shared by CPU and GPU on a Jetson).
    pub memory_total_mib: Option<u64>,
    /// Preferred ONNX Runtime execution providers, in order.
    pub ep: Vec<String>,
    /// Budgets one model must fit.
    #[serde(default)]
    pub budget: Budget,
}

/// The `[budget]` table; every budget is optional.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Peak RSS of one model's process, MiB.
    pub memory_mib: Option<u64>,
    /// p90 SingleStream latency, ms.
    pub p90_latency_ms: Option<f64>,
    /// Minimum Offline throughput, images/s.
    pub min_throughput_ips: Option<f64>,
}

/// The built-in targets' names and TOML sources.
const BUILTIN: [(&str, &str); 5] = [
    (
        "jetson-nano",
        include_str!("../../../targets/jetson-nano.toml"),
    ),
    (
        "jetson-xavier-nx",
        include_str!("../../../targets/jetson-xavier-nx.toml"),
    ),
    (
        "jetson-orin-nano",
        include_str!("../../../targets/jetson-orin-nano.toml"),
    ),
    (
        "jetson-agx-orin",
        include_str!("../../../targets/jetson-agx-orin.toml"),
    ),
    ("host", include_str!("../../../targets/host.toml")),
];

impl Board {
    /// Parse a target from TOML text; `source_name` (a file name) goes into errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Board> {
        let t: Board = toml::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "{source_name}: invalid target file: {}",
                one_line(&e.to_string())
            ))
        })?;
        t.check(source_name)?;
        Ok(t)
    }

    /// Read and parse a target file.
    pub fn from_file(path: &Path) -> Result<Board> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Board::parse(&text, &path.display().to_string())
    }

    fn check(&self, source_name: &str) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(format!("{source_name}: {what}")));
        if self.name.trim().is_empty() {
            return bad("`name` is empty".into());
        }
        if self.ep.is_empty() {
            return bad("`ep` is empty: list at least one execution provider".into());
        }
        let b = &self.budget;
        if b.memory_mib == Some(0) {
            return bad("budget.memory_mib must be > 0".into());
        }
        for (key, v) in [
            ("p90_latency_ms", b.p90_latency_ms),
            ("min_throughput_ips", b.min_throughput_ips),
        ] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return bad(format!("budget.{key} must be a positive number, got {v}"));
            }
        }
        Ok(())
    }

    /// Whether this target is a Jetson board (rather than the host).
    pub fn is_jetson(&self) -> bool {
        self.jetpack.is_some() || self.name.starts_with("jetson")
    }

    /// The budgets as they go into a report; `chosen_by` says how the target was chosen
    /// (`--target`, or `detected: <board>`).
    pub fn budget(&self, chosen_by: &str) -> TargetBudget {
        TargetBudget {
            name: self.name.clone(),
            description: self.description.clone(),
            memory_bytes: self.budget.memory_mib.map(|m| m.saturating_mul(MIB)),
            p90_latency_ms: self.budget.p90_latency_ms,
            min_throughput_ips: self.budget.min_throughput_ips,
            chosen_by: chosen_by.to_string(),
        }
    }
}

/// toml's errors span several lines (the source line, a caret under the key); keep the
/// position and the message on one line: `TOML parse error at line 6, column 1: unknown
/// field ...`.
fn one_line(msg: &str) -> String {
    let is_excerpt = |l: &str| {
        l.split_once('|')
            .is_some_and(|(gutter, _)| gutter.trim().chars().all(|c| c.is_ascii_digit()))
    };
    let parts: Vec<&str> = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_excerpt(l))
        .collect();
    parts.join(": ")
}

/// Every built-in target, in the order of [`builtin_names`].
pub fn builtin() -> Vec<Board> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            // The built-in files are checked by a test; a broken one is a build bug.
            Board::parse(text, &format!("targets/{name}.toml"))
                .unwrap_or_else(|e| panic!("built-in target {name}: {e}"))
        })
        .collect()
}

/// The built-in targets' names.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// The board whose budgets apply, and how it was chosen (`--target`, or `detected:
/// <board>`): `arg` when given, else the built-in target of the Jetson this runs on
/// (`detected`, as [`detect`] returns it), else none.
pub fn choose(
    arg: Option<&str>,
    detected: Option<&(String, Option<String>)>,
) -> Result<Option<(Board, String)>> {
    if let Some(name) = arg {
        return Ok(Some((resolve(name)?, "--target".into())));
    }
    match detected {
        Some((b, Some(t))) => Ok(Some((resolve(t)?, format!("detected: {b}")))),
        _ => Ok(None),
    }
}

/// A built-in target by name, or a target file by path.
pub fn resolve(name_or_path: &str) -> Result<Board> {
    if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
        return Board::parse(text, &format!("targets/{name_or_path}.toml"));
    }
    let path = Path::new(name_or_path);
    if path.is_file() {
        return Board::from_file(path);
    }
    if name_or_path.ends_with(".toml") {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "target file not found"),
        ));
    }
    Err(Error::Invalid(format!(
        "unknown target {name_or_path:?}: not a built-in target ({}) nor an existing .toml file",
        builtin_names().join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_target_is_chosen_by_the_flag_and_a_bad_one_is_an_error() {
        let orin = (
            "NVIDIA Jetson Orin Nano".to_string(),
            Some("jetson-orin-nano".into()),
        );
        let (b, how) = choose(Some("jetson-nano"), Some(&orin)).unwrap().unwrap();
        assert_eq!((b.name.as_str(), how.as_str()), ("jetson-nano", "--target"));
        let (b, how) = choose(None, Some(&orin)).unwrap().unwrap();
        assert_eq!(b.name, "jetson-orin-nano");
        assert_eq!(how, "detected: NVIDIA Jetson Orin Nano");
        assert!(choose(None, None).unwrap().is_none());
        let e = choose(Some("jetson-nope"), None).unwrap_err().to_string();
        assert!(e.contains("unknown target \"jetson-nope\""), "{e}");
    }

    #[test]
    fn every_builtin_parses_with_its_own_name() {
        let all = builtin();
        assert_eq!(all.len(), 5);
        for (t, name) in all.iter().zip(builtin_names()) {
            assert_eq!(t.name, name);
            assert!(!t.ep.is_empty());
            assert!(t.budget.memory_mib.is_some(), "{name}");
        }
        let nano = resolve("jetson-nano").unwrap();
        assert_eq!(nano.glibc.as_deref(), Some("2.27"));
        assert_eq!(nano.triple, "aarch64-unknown-linux-gnu");
        let orin = resolve("jetson-orin-nano").unwrap();
        assert_eq!(orin.budget.p90_latency_ms, Some(33.3));
        assert!(orin.is_jetson());
        let host = resolve("host").unwrap();
        assert!(!host.is_jetson());
        assert_eq!(host.budget.p90_latency_ms, None);
        assert_eq!(host.triple, "x86_64-unknown-linux-gnu");
    }

    #[test]
    fn budget_converts_mib_to_bytes() {
        let b = resolve("jetson-nano").unwrap().budget("--target");
        assert_eq!(b.memory_bytes, Some(1024 * MIB));
        assert_eq!(b.chosen_by, "--target");
        assert_eq!(b.min_throughput_ips, Some(10.0));
    }

    #[test]
    fn unknown_target_lists_the_known_ones() {
        let e = resolve("jetson-tx9").unwrap_err().to_string();
        assert!(
            e.contains("jetson-tx9") && e.contains("jetson-orin-nano"),
            "{e}"
        );
        assert!(matches!(resolve("nope"), Err(Error::Invalid(_))));
        let e = resolve("/nonexistent/board.toml").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/board.toml"), "{e}");
    }

    #[test]
    fn typo_in_budget_is_rejected_naming_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("myboard.toml");
        std::fs::write(
            &p,
            "name = \"b\"\ndescription = \"d\"\ntriple = \"aarch64-unknown-linux-gnu\"\n\
             ep = [\"cpu\"]\n[budget]\nmemroy_mib = 512\n",
        )
        .unwrap();
        let e = resolve(p.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("memroy_mib"), "{e}");
        assert!(e.contains("myboard.toml"), "{e}");
        assert!(!e.contains('\n') && !e.contains(" | "), "{e}");
    }

    #[test]
    fn typo_at_top_level_and_bad_values_are_rejected() {
        let base = "name = \"b\"\ndescription = \"d\"\ntriple = \"x\"\nep = [\"cpu\"]\n";
        let e = Board::parse(&format!("{base}glibcc = \"2.31\"\n"), "b.toml").unwrap_err();
        assert!(e.to_string().contains("glibcc"), "{e}");
        let e = Board::parse(
            &format!("{base}[budget]\np90_latency_ms = -1.0\n"),
            "b.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("p90_latency_ms"), "{e}");
        let t = Board::parse(base, "b.toml").unwrap();
        assert_eq!(t.budget, Budget::default());
    }
}
