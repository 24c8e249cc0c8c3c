//! Tests of the training loop on tiny data (eight 8×8 images, the built-in `lean`
//! model) and of the batch split it runs at. Expected counts are worked out by hand in
//! the comments.

use std::path::{Path, PathBuf};

use super::*;
use crate::data::npy;
use crate::model::spec::Spec;
use crate::model::zoo;
use crate::train::program::plan::{self, Trainable};
use crate::train::trainer::TrainerConfig;

const INPUT: InputShape = InputShape {
    height: 8,
    width: 8,
    channels: 3,
};

fn lean() -> Spec {
    match zoo::resolve("lean") {
        Ok(zoo::ModelRef::Spec(s)) => s,
        _ => panic!("lean is a built-in spec"),
    }
}

/// Eight 3×8×8 images (class 1: bright left half, class 0: bright right half) and
/// their labels, as `.npy` files in `dir`.
fn tiny_set(dir: &Path) -> (PathBuf, PathBuf) {
    let labels: Vec<usize> = (0..8).map(|i| i % 2).collect();
    let x = ndarray::Array4::from_shape_fn((8, 3, 8, 8), |(i, c, _, col)| {
        let left = col < 4;
        let on = left == (labels[i] == 1);
        if on { 0.8 + 0.02 * c as f32 } else { 0.1 }
    });
    let (xp, yp) = (dir.join("x.npy"), dir.join("y.npy"));
    npy::write_npy(&xp, &x.into_dyn()).unwrap();
    npy::write_labels(&yp, &labels).unwrap();
    (xp, yp)
}

/// Effective batch 3 in micro-batches of 2 (2 + 1), as the CLI's `--batch 3
/// --micro-batch 2` resolves.
fn split_3_by_2(spec: &Spec) -> Split {
    plan::split(spec, INPUT, 3, Some(2), None, 1, Trainable::All).unwrap()
}

fn trainer(spec: &Spec, split: Split) -> Trainer {
    let cfg = TrainerConfig {
        accumulation_steps: split.steps,
        ..TrainerConfig::new(split.micro)
    };
    Trainer::new(spec, INPUT, cfg).unwrap()
}

fn config(epochs: u64, split: Split) -> FitConfig {
    FitConfig {
        tegrastats_interval_ms: 0,
        ..FitConfig::new(epochs, split)
    }
}

/// Counts what an observer is told.
#[derive(Default)]
struct Counts {
    started: Vec<u64>,
    fed: usize,
    trained: usize,
    finished: Vec<u64>,
    stopped: Option<(u64, u64)>,
}

impl Observer for Counts {
    fn epoch_started(&mut self, epoch: u64, _epochs: u64, items: usize) {
        assert_eq!(items, 8);
        self.started.push(epoch);
    }
    fn fed(&mut self, images: usize) {
        self.fed += images;
    }
    fn trained(&mut self, r: &Running) {
        assert!(r.loss.is_finite() && (0.0..=1.0).contains(&r.acc));
        self.trained += 1;
    }
    fn epoch_finished(&mut self, row: &EpochRow, _epochs: u64) {
        self.finished.push(row.epoch);
    }
    fn stopped(&mut self, steps: u64, epoch: u64) {
        self.stopped = Some((steps, epoch));
    }
}

#[test]
fn split_balances_without_a_budget_and_caps_with_one() {
    let spec = lean();
    let s = |micro, budget| plan::split(&spec, INPUT, 10, micro, budget, 1, Trainable::All);
    let whole = s(None, None).unwrap();
    assert_eq!((whole.micro, whole.steps, whole.last), (10, 1, 10));
    // --micro-batch 6 of 10: 2 steps, balanced to 5 + 5.
    let balanced = s(Some(6), None).unwrap();
    assert_eq!((balanced.micro, balanced.steps, balanced.last), (5, 2, 5));
    assert_eq!(balanced.max_micro, None);
    // --micro-batch 3 of 10: 4 steps of ⌈10/4⌉ = 3, the last 10 − 9 = 1.
    let three = s(Some(3), None).unwrap();
    assert_eq!((three.micro, three.steps, three.last), (3, 4, 1));
    // A budget everything fits: the whole batch fits, so --micro-batch 6 stays 6 and
    // the last micro-batch takes the other 4 (not balanced).
    let capped = s(Some(6), Some(u64::MAX)).unwrap();
    assert_eq!((capped.micro, capped.steps, capped.last), (6, 2, 4));
    assert_eq!(capped.max_micro, Some(10));
    // A micro-batch above the batch is the batch.
    let over = s(Some(50), None).unwrap();
    assert_eq!((over.micro, over.steps, over.last), (10, 1, 10));
    assert!(matches!(s(Some(0), None), Err(Error::Invalid(_))));
}

#[test]
fn fit_counts_steps_writes_metrics_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = tiny_set(dir.path());
    let spec = lean();
    let data = Data::open(&x, Some(&y), &spec, 10).unwrap();
    let split = split_3_by_2(&spec);
    assert_eq!((split.micro, split.steps, split.last), (2, 2, 1));
    let mut t = trainer(&spec, split);
    let ck = dir.path().join("ck");
    let csv = dir.path().join("m.csv");
    let cfg = FitConfig {
        checkpoint: Some(ck.clone()),
        metrics: Some(MetricsFile::new(&csv).unwrap()),
        ..config(2, split)
    };
    let mut seen = Counts::default();
    let done = fit(&mut t, &data, Some(&data), &cfg, &mut seen).unwrap();
    // 8 images in steps of 3: ⌈8/3⌉ = 3 optimizer steps an epoch (3 + 3 + 2), each of
    // micro-batches 2 + 1 (the last step: one of 2), so 5 micro-batches an epoch.
    assert_eq!(done.updates, 6);
    assert_eq!(done.rows.len(), 2);
    assert_eq!((done.rows[0].steps, done.rows[1].steps), (3, 6));
    assert!(done.rows.iter().all(|r| r.val_loss.is_some()));
    assert_eq!(seen.started, [1, 2]);
    assert_eq!(seen.finished, [1, 2]);
    assert_eq!(seen.fed, 16);
    assert_eq!(seen.trained, 10);
    assert_eq!(seen.stopped, None);
    assert_eq!(done.power.status.note, "off (--tegrastats-interval 0)");
    assert!(done.exported.is_none());
    // The CSV: a header and one row per epoch, steps in the second column.
    let text = std::fs::read_to_string(&csv).unwrap();
    let steps: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(steps, ["3", "6"]);
    // The checkpoint is the end of epoch 2: 0-based epoch 2, position 0.
    let mut again = trainer(&spec, split);
    let p = resume(&mut again, &ck, 0).unwrap();
    assert_eq!((p.epoch, p.position, again.updates()), (2, 0, 6));
    let e = resume(&mut again, &ck, 7).unwrap_err().to_string();
    assert!(
        e.ends_with("checkpoint was written with --seed 0, this run has --seed 7"),
        "{e}"
    );
}

#[test]
fn max_steps_stops_and_resume_ends_where_an_uninterrupted_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = tiny_set(dir.path());
    let spec = lean();
    let data = Data::open(&x, Some(&y), &spec, 10).unwrap();
    let split = split_3_by_2(&spec);

    let whole_ck = dir.path().join("whole");
    let mut whole = trainer(&spec, split);
    let cfg = FitConfig {
        checkpoint: Some(whole_ck.clone()),
        ..config(3, split)
    };
    assert_eq!(
        fit(&mut whole, &data, None, &cfg, &mut NoObserver)
            .unwrap()
            .updates,
        9
    );

    let ck = dir.path().join("parts");
    let mut first = trainer(&spec, split);
    let cfg = FitConfig {
        checkpoint: Some(ck.clone()),
        max_steps: Some(4),
        ..config(3, split)
    };
    let mut seen = Counts::default();
    let done = fit(&mut first, &data, None, &cfg, &mut seen).unwrap();
    // Step 4 is the first of epoch 2, after its micro-batches 1 and 2.
    assert_eq!(seen.stopped, Some((4, 2)));
    assert_eq!(done.rows.len(), 1);
    let mut second = trainer(&spec, split);
    let start = resume(&mut second, &ck, 0).unwrap();
    assert_eq!((start.epoch, start.position), (1, 2));
    let e = fit(&mut second, &data, None, &cfg, &mut NoObserver).unwrap_err();
    assert_eq!(e.to_string(), "--max-steps 4: the run is already at step 4");
    let cfg = FitConfig {
        start,
        max_steps: None,
        ..cfg
    };
    let done = fit(&mut second, &data, None, &cfg, &mut NoObserver).unwrap();
    assert_eq!(done.updates, 9);
    assert_eq!((done.rows[0].epoch, done.rows[0].steps), (2, 6));
    assert_eq!(second.weights().unwrap(), whole.weights().unwrap());
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        std::fs::read(&whole_ck).unwrap()
    );
}

#[test]
fn data_that_cannot_be_fed_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = tiny_set(dir.path());
    let spec = lean();
    let data = Data::open(&x, Some(&y), &spec, 10).unwrap();
    let split = split_3_by_2(&spec);
    let cfg = FitConfig {
        crop_min_scale: 0.5,
        ..config(1, split)
    };
    let e = cfg.check_data(&data, None, INPUT).unwrap_err().to_string();
    assert_eq!(
        e,
        "--crop-min-scale applies to image sets; .npy inputs are fed as they are"
    );
    let big = InputShape {
        height: 16,
        width: 16,
        channels: 3,
    };
    let e = config(1, split).check_data(&data, None, big).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("--data: the arrays hold 3×8×8 images"),
        "{e}"
    );
    // Two labels of class 12 against lean's 10 classes: the first is named.
    let bad = dir.path().join("bad.npy");
    npy::write_labels(&bad, &[0, 1, 12, 0, 12, 1, 0, 1]).unwrap();
    let Err(e) = Data::open(&x, Some(&bad), &spec, 10) else {
        panic!("a label outside the classes was accepted");
    };
    assert!(
        matches!(&e, Error::Input { path, .. } if path == &bad),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with("label 12 of item 2 is outside lean's 10 classes")
    );
    // A split of the trainer's other than the config's is refused.
    let mut t = trainer(&spec, split);
    let whole = plan::split(&spec, INPUT, 3, None, None, 1, Trainable::All).unwrap();
    let e = fit(&mut t, &data, None, &config(1, whole), &mut NoObserver).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
}
