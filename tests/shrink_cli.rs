//! `edgebench shrink` through the binary, with real measurements (worker processes, ONNX
//! Runtime or tract) and real training on a tiny space: the report files, the chosen
//! model, resume of a finished search, and one-line errors for bad input.

mod common;

use common::{TINY_ONE_CONV, fails, fails_stderr, ok, p, read_json, synth_seeded, write_spec};

#[test]
fn finds_a_model_on_a_tiny_space_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), TINY_ONE_CONV);
    let train = p(&synth_seeded(dir.path(), "train", 3, 48, 16, 1)).to_string();
    let val = p(&synth_seeded(dir.path(), "val", 3, 24, 16, 2)).to_string();
    let out = dir.path().join("search");
    let args = [
        "shrink",
        "--model",
        p(&spec),
        "--data",
        &train,
        "--val",
        &val,
        "--target",
        "jetson-nano",
        "--widths",
        "0.5,1",
        "--sizes",
        "8,16",
        "--precisions",
        "fp32",
        "--rung-images",
        "32",
        "--batch",
        "16",
        "--min-duration",
        "0.05",
        "--out",
        p(&out),
        "--quiet",
    ];
    let text = ok(&args);
    assert!(
        text.contains("space: widths 0.5,1 × sizes 8,16 × precisions fp32 = 4 candidates"),
        "{text}"
    );
    let rep = read_json(&out.join("shrink.json"));
    assert_eq!(rep["schema"], "edgebench-shrink");
    let cands = rep["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 4);
    // Every candidate was measured here, on a real engine, and fits the Nano's budgets.
    for c in cands {
        assert!(c["p90_ms"].as_f64().unwrap() > 0.0, "{c}");
        assert_eq!(c["fits"], true, "{c}");
    }
    assert!(
        rep["measured_on"].as_str().unwrap().contains("cores"),
        "{rep}"
    );
    // Four archs: rung 1 with four, rung 2 with the better two, one chosen.
    assert_eq!(rep["schedule"]["counts"], serde_json::json!([4, 2]));
    let chosen = &rep["chosen"];
    let model = out.join(chosen["model_file"].as_str().unwrap());
    assert!(model.is_file(), "{chosen}");
    assert_eq!(chosen["images_trained"], 64);
    let acc = chosen["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{chosen}");
    assert!(text.contains(&format!("chosen: {}", chosen["name"].as_str().unwrap())));
    for f in [
        "shrink.html",
        "final-compare.html",
        "final-compare.json",
        "shrink-state.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The chosen model is a normal ONNX file: `run` takes it.
    let inspect = ok(&["inspect", p(&model)]);
    assert!(inspect.contains("Conv"), "{inspect}");
    // Resuming a finished search redoes nothing and says the same.
    let mut again: Vec<&str> = args.to_vec();
    again.push("--resume");
    let text2 = ok(&again);
    assert!(!text2.contains("measuring "), "{text2}");
    assert!(text2.contains(&format!("chosen: {}", chosen["name"].as_str().unwrap())));
    // A new search into the same folder is refused, naming --resume.
    let e = fails(&args, 2);
    assert!(e.contains("continue it with --resume"), "{e}");
}

#[test]
fn bad_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), TINY_ONE_CONV);
    let train = p(&synth_seeded(dir.path(), "train", 3, 12, 16, 1)).to_string();
    let val = p(&synth_seeded(dir.path(), "val", 3, 6, 16, 2)).to_string();
    let out = dir.path().join("o");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "shrink",
            "--model",
            p(&spec),
            "--data",
            &train,
            "--val",
            &val,
            "--min-duration",
            "0.05",
            "--precisions",
            "fp32",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        if !extra.contains(&"--out") {
            v.extend(["--out".to_string(), p(&out).to_string()]);
        }
        v
    };
    let run = |extra: &[&str], code: i32| {
        let v = base(extra);
        let a: Vec<&str> = v.iter().map(String::as_str).collect();
        fails(&a, code)
    };
    let refused = |extra: &[&str]| {
        let v = base(extra);
        let a: Vec<&str> = v.iter().map(String::as_str).collect();
        fails_stderr(&a, 2)
    };
    // No target on a machine that is no Jetson.
    let e = run(&[], 2);
    assert!(e.contains("give --target"), "{e}");
    let e = run(&["--target", "jetson-nope"], 2);
    assert!(e.contains("jetson-nope"), "{e}");
    // Bad space values and durations are refused by the flag parser.
    let e = refused(&["--target", "jetson-nano", "--widths", "0,1"]);
    assert!(e.contains("invalid width"), "{e}");
    let e = refused(&["--target", "jetson-nano", "--depths", "-9"]);
    assert!(e.contains("invalid depth"), "{e}");
    let e = refused(&["--target", "jetson-nano", "--precisions", "bf16"]);
    assert!(e.contains("no engine here runs it"), "{e}");
    let e = refused(&["--target", "jetson-nano", "--time", "0s"]);
    assert!(e.contains("invalid duration"), "{e}");
    // --out inside the data.
    let inside = format!("{train}/out");
    let e = run(&["--target", "jetson-nano", "--out", &inside], 2);
    assert!(e.contains("overlap"), "{e}");
    // A target nothing fits: the binding budget is named.
    let board = dir.path().join("tiny-board.toml");
    std::fs::write(
        &board,
        "name = \"tiny-board\"\ndescription = \"x\"\ntriple = \"x86_64-unknown-linux-gnu\"\nep = [\"cpu\"]\n[budget]\np90_latency_ms = 0.000001\n",
    )
    .unwrap();
    let e = run(
        &["--target", p(&board), "--widths", "1", "--sizes", "16"],
        1,
    );
    assert!(
        e.contains("no candidate fits target tiny-board")
            && e.contains("binding budget is p90 latency"),
        "{e}"
    );
    // A time budget too short for one step of each.
    let e = run(
        &[
            "--target",
            "jetson-nano",
            "--widths",
            "1",
            "--sizes",
            "16",
            "--time",
            "1s",
            "--out",
            p(&dir.path().join("o2")),
        ],
        2,
    );
    assert!(e.contains("is too short"), "{e}");
}
