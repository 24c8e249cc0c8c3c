//! Training checkpoints: a versioned binary file with everything a run needs to go on
//! bit-identically, written atomically (temp file + rename: a crash mid-write leaves the
//! last good checkpoint in place).
//!
//! Layout (little-endian): the magic `EBTRAIN\0`, the format version (`u32`), then
//! - identity: model name, a 64-bit FNV-1a hash of the spec's layers, the input shape
//!   and the trainable set (each also stored as text, so a mismatch names what differs),
//!   the optimizer and the schedule (text);
//! - position: optimizer updates (the schedule position), micro-batches stepped,
//!   micro-batches and samples pending in the current accumulation;
//! - the caller's [`Progress`]: epoch, position in the epoch, the seed of its orders (opaque bytes);
//! - the parameters, the accumulated gradients and the optimizer state (`f32` arrays,
//!   each with its length);
//! - a CRC-32C of everything before it.
//!
//! Strings and arrays carry a `u64` length. Loading checks the magic, the length, the
//! checksum, the version and the identity before touching the trainer.

use std::path::Path;

use super::trainer::Trainer;
use crate::crc32c::crc32c;
use crate::error::{Error, Result};

/// File magic.
pub const MAGIC: &[u8; 8] = b"EBTRAIN\0";
/// Format version written (and the only one read).
pub const VERSION: u32 = 1;

/// The caller's position in its data, stored in the checkpoint as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Epoch (0-based) the run is in.
    pub epoch: u64,
    /// Samples (or batches) of that epoch already consumed.
    pub position: u64,
    /// What seeds the caller's shuffling and augmentation, as bytes the caller chose
    /// ([`fit`](crate::train::fit::fit) stores its `u64` seed, little-endian).
    pub seed: Vec<u8>,
}

/// What makes a checkpoint belong to a trainer, field by field.
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    model: String,
    spec_hash: u64,
    input: String,
    trainable: String,
    optimizer: String,
    schedule: String,
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn identity(t: &Trainer) -> Identity {
    let cfg = t.config();
    Identity {
        model: t.spec().name.clone(),
        spec_hash: fnv1a(
            format!("{:?}|{}|{}", t.spec().layers, t.input(), cfg.trainable).as_bytes(),
        ),
        input: t.input().to_string(),
        trainable: cfg.trainable.to_string(),
        optimizer: format!("{:?}", cfg.optimizer),
        schedule: cfg.schedule.to_string(),
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// Writes `t`'s state and `progress` to `path` atomically.
pub(crate) fn save(t: &Trainer, path: &Path, progress: &Progress) -> Result<()> {
    let id = identity(t);
    let mut w = Writer(Vec::new());
    w.0.extend_from_slice(MAGIC);
    w.u32(VERSION);
    w.bytes(id.model.as_bytes());
    w.u64(id.spec_hash);
    for s in [&id.input, &id.trainable, &id.optimizer, &id.schedule] {
        w.bytes(s.as_bytes());
    }
    for v in [
        t.updates,
        t.micro_steps,
        t.pending as u64,
        t.pending_samples,
        progress.epoch,
        progress.position,
    ] {
        w.u64(v);
    }
    w.bytes(&progress.seed);
    let p = &t.prog;
    for r in [p.params_r, p.grads_r, p.state_r] {
        w.f32s(t.arena.read(r)?);
    }
    let crc = crc32c(&w.0);
    w.u32(crc);
    crate::fsutil::write_atomic(path, &w.0)
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Checkpoint {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.data.len() - self.at < n {
            return Err(self.err(format!("is truncated (in the {what})")));
        }
        let s = &self.data[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.u64(what)?;
        let n = usize::try_from(n).map_err(|_| self.err(format!("has a bad {what} length")))?;
        self.take(n, what)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err(format!("has a bad {what}")))
    }
    /// An `f32` array of exactly `into.len()` values, copied into `into`.
    fn f32s(&mut self, what: &str, into: &mut [f32]) -> Result<()> {
        let n = self.u64(what)?;
        if n != into.len() as u64 {
            return Err(self.err(format!(
                "holds {n} {what} values, this trainer has {}",
                into.len()
            )));
        }
        let b = self.take(into.len() * 4, what)?;
        for (v, c) in into.iter_mut().zip(b.chunks_exact(4)) {
            *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }
}

/// Restores `t` from `path` (see the module docs for what is checked).
pub(crate) fn load(t: &mut Trainer, path: &Path) -> Result<Progress> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut r = Reader {
        data: &data,
        at: 0,
        path,
    };
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return Err(r.err("is not an edgebench training checkpoint (bad magic)"));
    }
    if data.len() < MAGIC.len() + 8 {
        return Err(r.err("is truncated"));
    }
    let (body, tail) = data.split_at(data.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32c(body) != stored {
        return Err(r.err("is corrupt or truncated (checksum mismatch)"));
    }
    r.data = body;
    r.take(MAGIC.len(), "magic")?;
    let version = r.u32("version")?;
    if version != VERSION {
        return Err(r.err(format!(
            "has format version {version}; this edgebench reads version {VERSION}"
        )));
    }
    let found = Identity {
        model: r.string("model name")?,
        spec_hash: r.u64("spec hash")?,
        input: r.string("input shape")?,
        trainable: r.string("trainable set")?,
        optimizer: r.string("optimizer")?,
        schedule: r.string("schedule")?,
    };
    let want = identity(t);
    let differs = [
        ("model", &found.model, &want.model),
        ("input shape", &found.input, &want.input),
        ("trainable layers", &found.trainable, &want.trainable),
        ("optimizer", &found.optimizer, &want.optimizer),
        ("learning-rate schedule", &found.schedule, &want.schedule),
    ]
    .into_iter()
    .find(|(_, a, b)| a != b);
    if let Some((what, a, b)) = differs {
        return Err(r.err(format!(
            "is for another model: its {what} is `{a}`, this run's is `{b}`"
        )));
    }
    if found.spec_hash != want.spec_hash {
        return Err(r.err(format!(
            "is for another model: model `{}` has different layers in it",
            found.model
        )));
    }
    let mut v = [0u64; 6];
    for (x, what) in v.iter_mut().zip([
        "updates",
        "micro-steps",
        "pending micro-batches",
        "pending samples",
        "epoch",
        "position",
    ]) {
        *x = r.u64(what)?;
    }
    let seed = r.bytes("seed")?.to_vec();
    // Read into the arena only once everything above is valid; a failure below leaves
    // the trainer's buffers partly overwritten, which the error reports.
    let p = &t.prog;
    let [params, grads, state] = t.arena.views([p.params_r, p.grads_r, p.state_r])?;
    let prm = params.as_mut::<f32>();
    r.f32s("parameter", prm)?;
    r.f32s("gradient", grads.as_mut())?;
    r.f32s("optimizer state", state.as_mut())?;
    if r.at != r.data.len() {
        return Err(r.err("has trailing bytes"));
    }
    if let Some(j) = prm.iter().position(|v| !v.is_finite()) {
        let v = prm[j];
        return Err(r.err(format!(
            "holds a non-finite parameter: {} is {v}",
            t.param_name(j)
        )));
    }
    t.updates = v[0];
    t.micro_steps = v[1];
    t.pending = usize::try_from(v[2]).map_err(|_| r.err("has a bad pending count"))?;
    t.pending_samples = v[3];
    Ok(Progress {
        epoch: v[4],
        position: v[5],
        seed,
    })
}
