//! The search on a tiny space (two widths × two sizes of a one-conv model, 8×8 and
//! 16×16 images), with measurements made up from each candidate's MACs so that the budget
//! filtering is exact: which candidates are dropped and why, the halving order,
//! determinism under a fixed seed, and resume after an interruption at every step.

use std::path::{Path, PathBuf};

use super::phases::score_at;
use super::schedule::Score;
use super::space::{Precision, Space};
use super::state::{ArchState, Measured, State};
use super::*;
use crate::data::synth::{self, SynthFormat, SynthOptions};
use crate::model::spec::SpecFile;
use crate::model::zoo;
use crate::report::schema::TargetBudget;

/// conv 8@3×3 → max-pool → flatten → dense 4, at 16×16.
const TINY: &str = include_str!("../../../tests/fixtures/specs/tiny-one-conv.toml");

/// Latency from MACs: 1 ms per 1,000 MACs in fp32, half that in int8.
struct Fake {
    measured: Vec<String>,
}

impl Measure for Fake {
    fn measure(
        &mut self,
        arch: &str,
        spec_file: &Path,
        precisions: &[Precision],
        budget: &TargetBudget,
    ) -> Result<Vec<Measured>> {
        self.measured.push(arch.to_string());
        let text = std::fs::read_to_string(spec_file).unwrap();
        let spec = Spec::resolve(SpecFile::parse(&text, "x").unwrap(), &zoo::builtin)?;
        let macs = spec.macs(spec.input)? as f64;
        Ok(precisions
            .iter()
            .map(|&p| {
                let p90 = macs / 1000.0 / if p == Precision::Int8 { 2.0 } else { 1.0 };
                let limit = budget.p90_latency_ms.unwrap();
                let over = if p90 > limit {
                    vec![format!("p90 latency {p90:.1} > {limit:.1} ms")]
                } else {
                    vec![]
                };
                Measured {
                    precision: p,
                    p90_ms: Some(p90),
                    throughput_ips: Some(1000.0 / p90),
                    peak_rss_bytes: (macs as u64) << 10,
                    file_bytes: None,
                    fits: over.is_empty(),
                    over,
                    measured_on: "made up from MACs".into(),
                }
            })
            .collect())
    }

    fn compare(
        &mut self,
        models: &[String],
        _val: &Path,
        _budget: &TargetBudget,
    ) -> Result<(Vec<Option<f64>>, Option<Report>)> {
        for m in models {
            let file = m.split('@').next().unwrap();
            assert!(Path::new(file).is_file(), "{m}");
        }
        Ok((
            models
                .iter()
                .map(|m| Some(if m.ends_with("@int8") { 0.5 } else { 0.9 }))
                .collect(),
            None,
        ))
    }
}

/// Stops after `stop_at` saves (never when `None`); keeps the lines.
struct Obs {
    stop_at: Option<usize>,
    lines: Vec<String>,
}

impl Observer for Obs {
    fn say(&mut self, line: &str) {
        self.lines.push(line.to_string());
    }
    fn saved(&mut self, steps: usize) -> bool {
        self.stop_at != Some(steps)
    }
}

fn images(dir: &Path, name: &str, count: usize, seed: u64) -> PathBuf {
    let out = dir.join(name);
    synth::generate(
        &SynthOptions {
            out: out.clone(),
            classes: 3,
            count,
            size: 16,
            seed,
            format: SynthFormat::Png,
            quality: 90,
            threads: 1,
        },
        &|_, _| {},
    )
    .unwrap();
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    train: PathBuf,
    val: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    Fixture {
        train: images(&root, "train", 48, 1),
        val: images(&root, "val", 24, 2),
        root,
        _dir: dir,
    }
}

fn config(f: &Fixture, out: &str) -> ShrinkConfig {
    let base = Spec::resolve(SpecFile::parse(TINY, "tiny.toml").unwrap(), &zoo::builtin).unwrap();
    ShrinkConfig {
        base,
        space: Space {
            widths: vec![0.5, 1.0],
            depths: vec![0],
            sizes: vec![8, 16],
            precisions: vec![Precision::Fp32, Precision::Int8],
        },
        train: f.train.clone(),
        labels: None,
        val: f.val.clone(),
        val_labels: None,
        budget: TargetBudget {
            name: "tiny-board".into(),
            description: String::new(),
            memory_bytes: Some(64 << 20),
            p90_latency_ms: Some(15.0),
            min_throughput_ips: None,
            chosen_by: "test".into(),
        },
        time_s: 3600.0,
        rung_images: Some(32),
        batch: 16,
        optimizer: OptimizerConfig::sgd(0.9),
        lr: None,
        seed: 7,
        threads: 1,
        workers: 1,
        out: f.root.join(out),
        resume: false,
    }
}

/// The state without its timings (the only part a rerun may change).
fn timeless(mut st: State) -> State {
    st.elapsed_s = 0.0;
    for a in &mut st.arches {
        a.measure_s = None;
        a.step_s = None;
        a.eval_s = None;
        for r in &mut a.rungs {
            r.seconds = 0.0;
        }
    }
    if let Some(s) = &mut st.schedule {
        s.estimated_s = 0.0;
    }
    st
}

fn run_to_end(cfg: &ShrinkConfig, stop_at: Option<usize>) -> (Outcome, Obs, Fake) {
    let mut fake = Fake {
        measured: Vec::new(),
    };
    let mut obs = Obs {
        stop_at,
        lines: Vec::new(),
    };
    let out = search(cfg, &mut fake, &mut obs).unwrap();
    (out, obs, fake)
}

fn load(cfg: &ShrinkConfig) -> State {
    let text = std::fs::read_to_string(cfg.out.join(state::FILE)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn budgets_filter_then_halving_picks_one() {
    let f = fixture();
    let cfg = config(&f, "a");
    let (out, obs, fake) = run_to_end(&cfg, None);
    let Outcome::Done(rep, _) = out else {
        panic!("stopped")
    };
    let st = load(&cfg);
    let arch = |n: &str| st.arch(n).unwrap();
    // Every arch measured once, in order.
    assert_eq!(
        fake.measured,
        ["tiny-w0.5-8", "tiny-w0.5-16", "tiny-w1-8", "tiny-w1-16"]
    );
    // tiny-w1-16: 16²·8·27 + 8²·8·4 = 57,344 MACs: 57.3 ms fp32, 28.7 int8, both over 15.
    let big = arch("tiny-w1-16");
    assert!(
        big.dropped
            .as_deref()
            .unwrap()
            .starts_with("over the budget in every precision"),
        "{:?}",
        big.dropped
    );
    assert!(big.rungs.is_empty() && big.step_s.is_none());
    // tiny-w0.5-16 is over in fp32 (28.7 ms) but fits in int8 (14.3): it trains.
    let half16 = arch("tiny-w0.5-16");
    let fits: Vec<Precision> = half16.fitting().map(|m| m.precision).collect();
    assert_eq!(fits, [Precision::Int8]);
    assert!(!half16.rungs.is_empty());
    // Three archs train: rung 1 has three at 2 steps, rung 2 the better two at 4.
    let sched = st.schedule.as_ref().unwrap();
    assert_eq!(sched.counts, [3, 2]);
    assert_eq!(sched.steps, [2, 4]);
    let trained: Vec<&ArchState> = st.arches.iter().filter(|a| !a.rungs.is_empty()).collect();
    assert_eq!(trained.len(), 3);
    let mut first: Vec<Score> = trained.iter().map(|a| score_at(a, 0)).collect();
    first.sort_by(schedule::better);
    let last = &first[2].name;
    assert!(
        arch(last)
            .dropped
            .as_deref()
            .unwrap()
            .starts_with("rung 1: ranked 3 of 3"),
        "{:?}",
        arch(last).dropped
    );
    assert_eq!(arch(last).rungs.len(), 1);
    for s in &first[..2] {
        let a = arch(&s.name);
        assert_eq!(a.rungs.len(), 2, "{}", s.name);
        assert_eq!(a.rungs[1].steps, 4);
        assert_eq!(a.rungs[1].images, 64);
    }
    // The winner is the better of the two at rung 2, in the precision the final
    // comparison found most accurate (fp32 where it fits).
    let mut second: Vec<Score> = first[..2]
        .iter()
        .map(|s| score_at(arch(&s.name), 1))
        .collect();
    second.sort_by(schedule::better);
    let done = st.done.as_ref().unwrap();
    assert_eq!(done.arch, second[0].name);
    let winner_fits: Vec<Precision> = arch(&done.arch).fitting().map(|m| m.precision).collect();
    let expect = if winner_fits.contains(&Precision::Fp32) {
        Precision::Fp32
    } else {
        Precision::Int8
    };
    assert_eq!(done.precision, expect);
    assert!(cfg.out.join(&done.model_file).is_file());
    // The report: every candidate, the chosen one, a front of fitting candidates.
    assert_eq!(rep.candidates.len(), 8);
    let chosen = rep.chosen.as_ref().unwrap();
    assert_eq!(
        chosen.name,
        format!("{}{}", done.arch, done.precision.suffix())
    );
    assert_eq!(chosen.images_trained, 64);
    assert!(!rep.front.is_empty());
    assert!(rep.front.iter().all(|&i| rep.candidates[i].fits));
    assert!(rep.text().contains(&format!("chosen: {}", chosen.name)));
    assert!(rep.html().unwrap().contains("<svg"));
    assert!(
        obs.lines
            .iter()
            .any(|l| l.starts_with("space: widths 0.5,1 × sizes 8,16"))
    );
}

#[test]
fn same_seed_same_search_and_resume_after_every_step() {
    let f = fixture();
    let whole = config(&f, "whole");
    run_to_end(&whole, None);
    let reference = timeless(load(&whole));
    assert!(reference.done.is_some());
    // A second search with the same seed: the same in everything but timings.
    let again = config(&f, "again");
    run_to_end(&again, None);
    assert_eq!(timeless(load(&again)), reference);
    // Interrupted after each step, then resumed.
    let total = {
        // Count the saves of an uninterrupted search.
        let cfg = config(&f, "count");
        let mut fake = Fake {
            measured: Vec::new(),
        };
        struct Count(usize);
        impl Observer for Count {
            fn say(&mut self, _: &str) {}
            fn saved(&mut self, n: usize) -> bool {
                self.0 = n;
                true
            }
        }
        let mut c = Count(0);
        search(&cfg, &mut fake, &mut c).unwrap();
        c.0
    };
    assert!(total >= 10, "{total} saves");
    for k in 1..total {
        let mut cfg = config(&f, &format!("stop{k}"));
        let (out, _, _) = run_to_end(&cfg, Some(k));
        assert!(matches!(out, Outcome::Stopped), "stop at {k}");
        let before = load(&cfg);
        cfg.resume = true;
        let (out, _, fake) = run_to_end(&cfg, None);
        assert!(matches!(out, Outcome::Done(..)), "resume after {k}");
        // Nothing measured twice.
        let measured_before = before
            .arches
            .iter()
            .filter(|a| a.measured.is_some())
            .count();
        assert_eq!(fake.measured.len(), 4 - measured_before, "after {k}");
        assert_eq!(timeless(load(&cfg)), reference, "resumed after step {k}");
    }
}

#[test]
fn bad_searches_are_one_line_errors() {
    let f = fixture();
    // Nothing fits: the binding budget is named, and the fastest candidate.
    let mut cfg = config(&f, "tight");
    cfg.budget.p90_latency_ms = Some(0.5);
    let mut fake = Fake {
        measured: Vec::new(),
    };
    let mut obs = Obs {
        stop_at: None,
        lines: Vec::new(),
    };
    let e = search(&cfg, &mut fake, &mut obs).unwrap_err().to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("no candidate fits target tiny-board"), "{e}");
    assert!(
        e.contains("binding budget is p90 latency (8 candidates over it)"),
        "{e}"
    );
    assert!(e.contains("the fastest, tiny-w0.5-8@int8"), "{e}");
    // An empty space after narrowing.
    let mut cfg = config(&f, "empty");
    cfg.space.widths.clear();
    let e = search(&cfg, &mut fake, &mut obs).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)));
    // Validation data without labels: an image folder with no class folders.
    let unlabelled = f.root.join("unlabelled");
    std::fs::create_dir_all(&unlabelled).unwrap();
    std::fs::copy(
        std::fs::read_dir(f.val.join(synth::class_name(0, 3)))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        unlabelled.join("a.png"),
    )
    .unwrap();
    let mut cfg = config(&f, "nolabels");
    cfg.val = unlabelled;
    let e = search(&cfg, &mut fake, &mut obs).unwrap_err().to_string();
    assert!(
        e.starts_with("--val: ") && e.contains("has no label"),
        "{e}"
    );
    // A time budget too short for one step of each.
    let mut cfg = config(&f, "short");
    cfg.rung_images = None;
    cfg.time_s = 0.001;
    let e = search(&cfg, &mut fake, &mut obs).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)));
    assert!(e.to_string().contains("is too short"), "{e}");
    // A search in a folder that holds one already.
    let cfg = config(&f, "twice");
    run_to_end(&cfg, Some(1));
    let e = search(&cfg, &mut fake, &mut obs).unwrap_err().to_string();
    assert!(e.contains("continue it with --resume"), "{e}");
    // Resuming with other settings.
    let mut other = config(&f, "twice");
    other.resume = true;
    other.seed = 8;
    let e = search(&other, &mut fake, &mut obs).unwrap_err().to_string();
    assert!(
        e.contains("was started with --seed \"7\", this run has 8"),
        "{e}"
    );
}
