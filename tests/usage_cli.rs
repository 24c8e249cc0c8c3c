//! Bad flag values are usage errors: exit 2 (as clap's own), with a first stderr line
//! that names the flag and what is wrong with the value, and no panic. Covers the flags
//! whose bad values are checked when parsed, before any data is opened.

mod common;
use common::eb;

/// Run `args`, which must fail with exit 2 and no panic; stderr's first line.
fn usage_error(args: &[&str]) -> String {
    let out = eb(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "edgebench {args:?}: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    err.lines().next().unwrap_or_default().to_string()
}

#[test]
fn loader_counts_of_zero_are_usage_errors() {
    // The data set need not exist: the values are refused when the flags are parsed.
    for (flag, shown) in [
        ("--batch", "--batch <BATCH>"),
        ("--epochs", "--epochs <EPOCHS>"),
        ("--images", "--images <IMAGES>"),
    ] {
        let line = usage_error(&["loader", "no-such-set", flag, "0"]);
        assert_eq!(
            line,
            format!("error: invalid value '0' for '{shown}': must be at least 1"),
            "{flag}"
        );
    }
}

#[test]
fn loader_count_that_is_not_a_number_is_a_usage_error() {
    let line = usage_error(&["loader", "no-such-set", "--batch", "-3"]);
    assert!(line.starts_with("error: "), "{line}");
    let line = usage_error(&["loader", "no-such-set", "--batch", "x"]);
    assert_eq!(
        line,
        "error: invalid value 'x' for '--batch <BATCH>': not a whole number"
    );
}

#[test]
fn measuring_counts_and_durations_are_checked_when_parsed() {
    // The model need not exist: the values are refused before it is looked up.
    for (args, shown) in [
        (
            ["bench", "no-such-model", "--max-batch", "0"],
            "--max-batch <N>",
        ),
        (
            ["compare", "no-such-model", "--min-queries", "0"],
            "--min-queries <N>",
        ),
        (
            ["run", "no-such-model", "--repeat", "0"],
            "--repeat <REPEAT>",
        ),
    ] {
        let line = usage_error(&args);
        assert_eq!(
            line,
            format!("error: invalid value '0' for '{shown}': must be at least 1"),
            "{args:?}"
        );
    }
    for flag in ["--warmup-time", "--min-duration", "--max-duration"] {
        for bad in ["nan", "inf", "-1"] {
            let arg = format!("{flag}={bad}");
            let line = usage_error(&["bench", "no-such-model", &arg]);
            assert_eq!(
                line,
                format!(
                    "error: invalid value '{bad}' for '{flag} <SECONDS>': \
                     must be a finite number of seconds ≥ 0"
                ),
            );
        }
    }
}
