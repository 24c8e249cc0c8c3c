//! What every CLI test file shares: running the built `edgebench` binary and checking
//! how it ended.
#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};

/// Run `edgebench args…`. The GEMM-peak cache goes to cargo's test scratch folder, away
/// from the user's own.
pub fn eb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgebench"))
        .args(args)
        .env("XDG_CACHE_HOME", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("the edgebench binary runs")
}

/// Run a command that must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = eb(args);
    assert!(
        out.status.success(),
        "edgebench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command that must fail with `code`, without a panic, its last stderr line
/// being edgebench's error; that line.
pub fn fails(args: &[&str], code: i32) -> String {
    let out = eb(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "edgebench {args:?}: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let last = err
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.starts_with("edgebench: error: "), "{err}");
    last
}

/// Like [`fails`], and stderr is that one line only.
pub fn fails_one_line(args: &[&str], code: i32) -> String {
    let out = eb(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    fails(args, code)
}
