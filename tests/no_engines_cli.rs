//! A build without engines, through the binary. CI runs this file in a build without
//! default features (`cargo test --workspace --no-default-features --test no_engines_cli`): both
//! engines are compiled out (the stubs of `engine::{ort, tract}`), every command that
//! needs one ends with exit code 3 and "engine X is not compiled in (rebuild with
//! `--features X`)" on one line before measuring anything, and the commands that need
//! none still work. `engines_say_what_this_build_has` runs in every build and checks the
//! engines the build does have; the rest only exists in a build without any.

mod common;

#[cfg(not(any(feature = "ort", feature = "tract")))]
use common::fails_one_line;
use common::ok;

/// The message of [`Error::NotCompiledIn`](edgebench_runtime::Error) for `engine`.
fn not_compiled_in(engine: &str) -> String {
    format!("engine {engine} is not compiled in (rebuild with `--features {engine}`)")
}

/// `engines` (text and JSON) says which engines are compiled in. A build without `ort`
/// says so even when an ONNX Runtime library is around or one is named that does not
/// exist: "not found" would send the user to fetch a library that cannot help.
#[test]
fn engines_say_what_this_build_has() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("libonnxruntime.so");
    for extra in [&[][..], &["--ort-lib", common::p(&nowhere)][..]] {
        let mut args = vec!["engines", "--json"];
        args.extend_from_slice(extra);
        let out = ok(&args);
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(j["tract"]["available"], cfg!(feature = "tract"), "{out}");
        if !cfg!(feature = "ort") {
            assert_eq!(j["ort"]["available"], false, "{out}");
            assert_eq!(j["ort"]["reason"], not_compiled_in("ort"), "{out}");
        }
        let mut args = vec!["engines"];
        args.extend_from_slice(extra);
        let text = ok(&args);
        let tract = if cfg!(feature = "tract") {
            "tract  compiled in (pure-Rust CPU engine)"
        } else {
            "tract  not compiled in (rebuild with --features tract)"
        };
        assert!(text.contains(tract), "{text}");
        if !cfg!(feature = "ort") {
            let line = format!("ort    unavailable: {}", not_compiled_in("ort"));
            assert!(text.contains(&line), "{text}");
        }
    }
    // Without --ort-lib in the build with engines: the default build finds the
    // repository's library (as `ep_cli` requires) and runs a model with each engine.
    #[cfg(all(feature = "ort", feature = "tract"))]
    for engine in ["ort", "tract"] {
        let out = ok(&[
            "run", "lean", "--input", "random", "--size", "16x16x3", "--engine", engine,
        ]);
        assert!(out.contains(&format!("engine {engine}")), "{out}");
    }
}

/// `run` with each `--engine`: exit 3 naming the engine; `auto` reports ort's reason
/// (tract is compiled out too).
#[cfg(not(any(feature = "ort", feature = "tract")))]
#[test]
fn run_with_any_engine_exits_3_naming_it() {
    for (engine, named) in [("ort", "ort"), ("tract", "tract"), ("auto", "ort")] {
        let err = fails_one_line(
            &[
                "run", "lean", "--input", "random", "--size", "16x16x3", "--engine", engine,
            ],
            3,
        );
        // "edgebench: error: preparing lean: engine …": one line, the engine's reason.
        assert!(
            err.starts_with("edgebench: error: ") && err.ends_with(&not_compiled_in(named)),
            "--engine {engine}: {err}"
        );
    }
}

/// `bench` (`--engine tract` too), `compare` and `profile`: exit 3 with the engine's
/// reason as the only line, so before anything is measured. The GEMM-peak cache is an
/// empty folder: a command that measured first would say so on stderr.
#[cfg(not(any(feature = "ort", feature = "tract")))]
#[test]
fn bench_compare_and_profile_exit_3_before_measuring() {
    let fast = ["--size", "16x16x3", "--min-duration", "0.05"];
    let cache = tempfile::tempdir().unwrap();
    for (args, engine) in [
        (&["bench", "lean"][..], "ort"),
        (&["bench", "lean", "--engine", "tract"][..], "tract"),
        (&["compare"][..], "ort"),
        (&["profile", "lean", "--size", "16x16x3"][..], "ort"),
    ] {
        let mut args = args.to_vec();
        if args[0] != "profile" {
            args.extend_from_slice(&fast);
        }
        let out = common::eb_env(&args, &[("XDG_CACHE_HOME", cache.path())]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        let lines: Vec<&str> = err.trim_end().lines().collect();
        assert!(
            lines.len() == 1
                && lines[0].starts_with("edgebench: error: ")
                && lines[0].ends_with(&not_compiled_in(engine)),
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

/// What needs no engine still works: the built-in models, their ONNX export and its
/// analysis, a synthetic data set, and training on it (the trainer is edgebench's own).
#[cfg(not(any(feature = "ort", feature = "tract")))]
#[test]
fn commands_without_an_engine_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("lean.onnx");
    assert!(ok(&["models", "list"]).contains("lean"));
    ok(&[
        "models",
        "export",
        "lean",
        "-o",
        common::p(&onnx),
        "--input",
        "16x16x3",
    ]);
    let out = ok(&["inspect", common::p(&onnx)]);
    assert!(out.contains("MACs"), "{out}");
    assert!(ok(&["targets"]).contains("jetson-nano"));

    let (data, spec) = (
        dir.path().join("set"),
        common::write_spec(dir.path(), common::TINY_ONE_CONV),
    );
    #[rustfmt::skip]
    ok(&["data", "synth", "-o", common::p(&data), "--classes", "4", "--count", "16", "--size", "16"]);
    let trained = dir.path().join("tiny.onnx");
    #[rustfmt::skip]
    let out = ok(&[
        "train", "--model", common::p(&spec), "--data", common::p(&data), "--epochs", "1",
        "--batch", "8", "--export", common::p(&trained),
    ]);
    assert!(out.contains("epoch 1/1"), "{out}");
    assert!(ok(&["inspect", common::p(&trained)]).contains("MACs"));
}
