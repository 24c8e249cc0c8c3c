//! `edgebench`: run, inspect and compare lean CNNs on edge devices.
//!
//! This binary only parses arguments and prints; the work lives in `edgebench-runtime`.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::Cli::parse();
    // A bad decoder or kernel-path choice is refused before any work, not silently
    // replaced.
    let choices = [
        edgebench_runtime::data::decode::Jpeg::from_env().map(|_| ()),
        edgebench_runtime::simd::Simd::from_env().map(|_| ()),
    ];
    if let Some(Err(e)) = choices.into_iter().find(Result::is_err) {
        eprintln!("edgebench: error: {e}");
        return ExitCode::from(2);
    }
    match commands::dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // An interruption ends the process from its clean-up thread (exit 128 + the
            // signal); errors it caused on the way (workers it killed) are not reported.
            if edgebench_runtime::scratch::interrupted() {
                loop {
                    std::thread::park();
                }
            }
            // One line: the whole context chain, outermost first.
            eprintln!("edgebench: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// Exit codes: 2 for bad arguments or unknown names (as clap uses), 3 for a missing or
/// unusable engine/provider, 1 for everything else.
fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<edgebench_runtime::Error>()
        .map_or(1, runtime_exit_code)
}

/// The exit code of a library error (one with context: that of its cause).
fn runtime_exit_code(err: &edgebench_runtime::Error) -> u8 {
    use edgebench_runtime::Error as E;
    match err.root() {
        E::Invalid(_) | E::UnknownModel { .. } | E::Output { .. } => 2,
        E::OrtLibrary { .. } | E::Provider { .. } | E::NotCompiledIn { .. } => 3,
        _ => 1,
    }
}

/// Let `edgebench … | head` end quietly, as other Unix tools do, instead of panicking on
/// a closed stdout (Rust ignores SIGPIPE by default).
fn restore_sigpipe() {
    #[cfg(unix)]
    // Safety: called first thing in main, before any thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgebench_runtime::Error;

    #[test]
    fn usage_errors_exit_2_and_failed_serialisations_exit_1() {
        let map = std::collections::BTreeMap::from([((1, 2), 3)]);
        let json = serde_json::to_string(&map).expect_err("JSON object keys must be strings");
        let json = Error::json("the report", json);
        assert_eq!(runtime_exit_code(&json), 1);
        assert_eq!(runtime_exit_code(&json.context("writing r.json")), 1);
        let usage = Error::Invalid("--max-batch must be ≥ 1".into());
        assert_eq!(runtime_exit_code(&usage), 2);
        assert_eq!(runtime_exit_code(&usage.context("bench")), 2);
        // Through anyhow, as `main` sees it.
        let any = anyhow::Error::from(Error::json(
            "the report",
            serde_json::Error::io(std::io::Error::other("x")),
        ));
        assert_eq!(exit_code(&any), 1);
    }
}
