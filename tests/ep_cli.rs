//! Execution providers through the binary, on this repository's CPU-only ONNX Runtime
//! library (the PyPI `onnxruntime` wheel): every GPU provider asked for alone ends with
//! exit code 3 and a reason naming it; a chain ending in `cpu` falls back, and the reason
//! reaches stderr and every report. No GPU is needed, and none is assumed.

mod common;

use common::{eb, fails, ok};
use edgebench_runtime::report::schema::Report;

const TINY: [&str; 2] = ["--size", "32x32x3"];
const SHORT: [&str; 8] = [
    "--size",
    "32x32x3",
    "--min-duration",
    "0.2",
    "--warmup-time",
    "0",
    "--min-queries",
    "3",
];

/// `run lean` with the given engine and `--ep` list.
fn run_args<'a>(engine: &'a str, ep: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "run", "lean", "--input", "random", "--engine", engine, "--ep", ep,
    ];
    a.extend(TINY);
    a.extend(extra);
    a
}

#[test]
fn the_library_has_no_gpu_provider() {
    // The premise of the tests below: this library offers the CPU provider only.
    let out = ok(&["engines", "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["ort"]["available"], true, "{out}");
    let eps: Vec<&str> = j["ort"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(eps.contains(&"CPUExecutionProvider"), "{eps:?}");
    assert!(!eps.contains(&"CUDAExecutionProvider"), "{eps:?}");
    assert!(!eps.contains(&"TensorrtExecutionProvider"), "{eps:?}");
}

#[test]
fn each_gpu_provider_alone_exits_3_naming_it() {
    for (ep, names) in [
        ("cuda", &["CUDAExecutionProvider"][..]),
        ("tensorrt", &["TensorrtExecutionProvider"][..]),
        (
            "tensorrt,cuda",
            &["TensorrtExecutionProvider", "CUDAExecutionProvider"][..],
        ),
    ] {
        // Both `--engine ort` and `auto`: auto never swaps a GPU request for tract.
        for engine in ["ort", "auto"] {
            let err = fails(&run_args(engine, ep, &[]), 3);
            for n in names {
                assert!(err.contains(n), "--engine {engine} --ep {ep}: {err}");
            }
            assert!(err.contains("not enabled in this build"), "{err}");
        }
        // bench: the worker's error crosses the process boundary with its exit code,
        // naming the model too.
        let mut args = vec!["bench", "lean", "--ep", ep, "--quiet"];
        args.extend(SHORT);
        let err = fails(&args, 3);
        assert!(err.contains(names[0]) && err.contains("for lean"), "{err}");
    }
    // tract is a CPU engine: asking it for a GPU provider alone is refused too.
    let err = fails(&run_args("tract", "cuda", &[]), 3);
    assert!(
        err.contains("CUDAExecutionProvider") && err.contains("CPU only"),
        "{err}"
    );
}

#[test]
fn a_chain_ending_in_cpu_falls_back_in_order_and_says_why() {
    let out = ok(&run_args(
        "ort",
        "tensorrt,cuda,cpu",
        &["--trt-fp16", "--cuda-device", "0"],
    ));
    assert!(out.contains("provider CPUExecutionProvider"), "{out}");
    let t = out
        .find("fallback: TensorrtExecutionProvider")
        .expect("tensorrt fallback");
    let c = out
        .find("fallback: CUDAExecutionProvider")
        .expect("cuda fallback");
    assert!(t < c, "in the order asked: {out}");

    // bench --json -: the reasons are in the report, and on stderr.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("trt-cache");
    let mut args = vec![
        "bench",
        "lean",
        "--engine",
        "ort",
        "--ep",
        "cuda,cpu",
        "--json",
        "-",
        "--scenario",
        "single-stream",
    ];
    args.extend(SHORT);
    let out = eb(&args);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lean: ran on ort/CPUExecutionProvider"),
        "{stderr}"
    );
    assert!(
        stderr.contains("fallback: CUDAExecutionProvider: CUDA execution provider is not enabled"),
        "{stderr}"
    );
    let r: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.settings.ep, ["cuda", "cpu"]);
    let e = &r.models[0].engine;
    assert_eq!(
        (e.engine.as_str(), e.provider.as_str()),
        ("ort", "CPUExecutionProvider")
    );
    assert_eq!(e.fallbacks.len(), 1, "{:?}", e.fallbacks);
    assert!(
        e.fallbacks[0].starts_with("CUDAExecutionProvider: ")
            && e.fallbacks[0].contains("not enabled in this build"),
        "{:?}",
        e.fallbacks
    );

    // The table and Markdown carry the same reason.
    let md = dir.path().join("r.md");
    let mut args = vec![
        "bench",
        "lean",
        "--ep",
        "tensorrt,cuda,cpu",
        "--trt-cache",
        cache.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
        "--scenario",
        "single-stream",
    ];
    args.extend(SHORT);
    let table = ok(&args);
    assert!(table.contains("engine fallbacks:"), "{table}");
    assert!(
        table.contains("lean: TensorrtExecutionProvider: "),
        "{table}"
    );
    assert!(table.contains("lean: CUDAExecutionProvider: "), "{table}");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("- lean: TensorrtExecutionProvider: "), "{md}");
}

#[test]
fn tensorrt_options_and_device_ids_are_checked() {
    // An engine cache that cannot be a directory: the reason names it and the provider.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = fails(
        &run_args("ort", "tensorrt", &["--trt-cache", file.to_str().unwrap()]),
        3,
    );
    assert!(
        err.contains("TensorrtExecutionProvider") && err.contains("cannot create engine cache"),
        "{err}"
    );
    assert!(err.contains("not-a-dir"), "{err}");
    // TensorRT options without tensorrt in the list are said, not dropped silently.
    let out = ok(&run_args("ort", "cuda,cpu", &["--trt-fp16"]));
    assert!(
        out.contains("--trt-fp16/--trt-cache not used: tensorrt is not in the provider list"),
        "{out}"
    );
    // A negative device id is a bad argument.
    let out = eb(&run_args("ort", "cuda,cpu", &["--cuda-device=-1"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cuda-device"));
    // tract with GPU providers before cpu: runs on the CPU and says they were not used.
    let out = ok(&run_args("tract", "cuda,cpu", &[]));
    assert!(out.contains("provider tract-cpu"), "{out}");
    assert!(
        out.contains("fallback: CUDAExecutionProvider: not used: tract runs on the CPU only"),
        "{out}"
    );
}
