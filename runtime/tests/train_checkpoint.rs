//! Checkpoints: resuming is bit-identical to an uninterrupted run; checkpoints of another
//! model, truncated or corrupt files are errors naming the file and the problem.

mod train_common;

use edgebench_runtime::train::checkpoint::Progress;
use edgebench_runtime::train::optim::OptimizerConfig;
use edgebench_runtime::train::program::plan::Trainable;
use edgebench_runtime::train::schedule::Schedule;
use edgebench_runtime::train::trainer::{Trainer, TrainerConfig};
use train_common::{config, flat, square, synth_batch, tiny_spec};

fn cfg(opt: OptimizerConfig) -> TrainerConfig {
    let mut c = config(4, 3, Trainable::All, opt, 0.05);
    c.schedule = Schedule::parse("warmup:2+cosine:10", 0.05).unwrap();
    c
}

/// Train 5 micro-batches (mid-accumulation), checkpoint, resume in a new trainer and
/// continue: parameters and losses bit-identical to an uninterrupted run.
#[test]
fn resume_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let spec = tiny_spec(3, false);
    let (x, y) = synth_batch(3, 4 * 12, 8, 11);
    let img = 3 * 64;
    let batches: Vec<(&[f32], &[usize])> = x.chunks(4 * img).zip(y.chunks(4)).collect();
    for opt in [OptimizerConfig::sgd(0.9), OptimizerConfig::adamw()] {
        let mut straight = Trainer::new(&spec, square(8), cfg(opt)).unwrap();
        let losses: Vec<f32> = batches
            .iter()
            .map(|(xb, yb)| straight.step(xb, yb).unwrap().loss)
            .collect();

        let mut first = Trainer::new(&spec, square(8), cfg(opt)).unwrap();
        for (xb, yb) in &batches[..5] {
            first.step(xb, yb).unwrap();
        }
        let progress = Progress {
            epoch: 1,
            position: 20,
            seed: vec![1, 2, 3, 4, 5],
        };
        first.save_checkpoint(&path, &progress).unwrap();
        drop(first);

        let mut resumed = Trainer::new(&spec, square(8), cfg(opt)).unwrap();
        assert_eq!(resumed.load_checkpoint(&path).unwrap(), progress);
        assert_eq!(
            (resumed.updates(), resumed.pending(), resumed.micro_steps()),
            (1, 2, 5)
        );
        let rest: Vec<f32> = batches[5..]
            .iter()
            .map(|(xb, yb)| resumed.step(xb, yb).unwrap().loss)
            .collect();
        assert_eq!(rest, losses[5..], "{opt:?}");
        let (a, b) = (
            flat(&straight.weights().unwrap()),
            flat(&resumed.weights().unwrap()),
        );
        assert!(
            a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{opt:?}: parameters differ"
        );
        assert_eq!(straight.updates(), resumed.updates());
    }
}

/// Another model, truncated or corrupt files: clear errors naming the file.
#[test]
fn bad_checkpoints_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.ckpt");
    let spec = tiny_spec(3, false);
    let (x, y) = synth_batch(3, 4, 8, 1);
    let mut t = Trainer::new(&spec, square(8), cfg(OptimizerConfig::sgd(0.9))).unwrap();
    t.step(&x, &y).unwrap();
    t.save_checkpoint(&path, &Progress::default()).unwrap();
    let name = path.display().to_string();

    // Another input shape, trainable set, spec.
    let other = Trainer::new(&spec, square(16), cfg(OptimizerConfig::sgd(0.9)));
    let e = other
        .unwrap()
        .load_checkpoint(&path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&name) && e.contains("input shape") && e.contains("8x8x3"),
        "{e}"
    );
    let mut c = cfg(OptimizerConfig::sgd(0.9));
    c.trainable = Trainable::LastLayers(1);
    let e = Trainer::new(&spec, square(8), c)
        .unwrap()
        .load_checkpoint(&path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("trainable layers") && e.contains("last:1"),
        "{e}"
    );
    let e = Trainer::new(
        &tiny_spec(4, false),
        square(8),
        cfg(OptimizerConfig::sgd(0.9)),
    )
    .unwrap()
    .load_checkpoint(&path)
    .unwrap_err()
    .to_string();
    assert!(e.contains("different layers"), "{e}");
    let e = Trainer::new(&spec, square(8), cfg(OptimizerConfig::adam()))
        .unwrap()
        .load_checkpoint(&path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("optimizer"), "{e}");

    // Truncated, corrupt, not a checkpoint, missing.
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.ckpt");
    let bad_name = bad.display().to_string();
    for (content, want) in [
        (bytes[..bytes.len() / 2].to_vec(), "corrupt or truncated"),
        (bytes[..10].to_vec(), "truncated"),
        (
            {
                let mut b = bytes.clone();
                b[bytes.len() / 2] ^= 0x40;
                b
            },
            "checksum",
        ),
        (
            b"hello world, not a checkpoint".to_vec(),
            "not an edgebench training checkpoint",
        ),
    ] {
        std::fs::write(&bad, content).unwrap();
        let e = t.load_checkpoint(&bad).unwrap_err().to_string();
        assert!(e.contains(&bad_name) && e.contains(want), "{want}: {e}");
    }
    let e = t
        .load_checkpoint(&dir.path().join("missing.ckpt"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.ckpt"), "{e}");
    // A failed load left the trainer usable; the good checkpoint still loads.
    t.load_checkpoint(&path).unwrap();
    t.step(&x, &y).unwrap();
}

/// A save into a missing directory fails without leaving anything behind; a save over
/// an existing checkpoint replaces it whole.
#[test]
fn saves_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(3, false);
    let mut t = Trainer::new(&spec, square(8), cfg(OptimizerConfig::sgd(0.9))).unwrap();
    let e = t
        .save_checkpoint(&dir.path().join("no/such/dir.ckpt"), &Progress::default())
        .unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let path = dir.path().join("c.ckpt");
    t.save_checkpoint(&path, &Progress::default()).unwrap();
    let (x, y) = synth_batch(3, 4, 8, 1);
    t.step(&x, &y).unwrap();
    t.save_checkpoint(
        &path,
        &Progress {
            epoch: 2,
            position: 0,
            seed: vec![],
        },
    )
    .unwrap();
    assert_eq!(t.load_checkpoint(&path).unwrap().epoch, 2);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}
