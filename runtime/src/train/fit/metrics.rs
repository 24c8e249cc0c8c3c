//! Per-epoch training metrics: the line printed after each epoch and the metrics
//! file (CSV or JSON by extension), rewritten atomically after every epoch so that it
//! is complete up to the last finished epoch even if training stops. At the end the
//! JSON also gets the `power` object (tegrastats over the training, [`TrainPower`]);
//! the CSV stays one row per epoch (the power figures are for the whole run).

use std::path::{Path, PathBuf};

use super::power::TrainPower;
use crate::error::{Error, Result};
use crate::fsutil;

/// One epoch's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: u64,
    /// Optimizer steps done by the end of the epoch.
    pub steps: u64,
    /// Mean training loss over the epoch's images.
    pub loss: f64,
    /// Training accuracy (0–1) over the epoch's images.
    pub acc: f64,
    /// Validation loss and accuracy after the epoch.
    pub val_loss: Option<f64>,
    pub val_acc: Option<f64>,
    /// Training images per second (forward + backward + update, data feeding included).
    pub images_per_s: f64,
    /// Achieved GFLOP/s, estimated as images/s × 3 × the forward pass's FLOPs (2 per
    /// MAC; the backward pass costs about twice the forward), as papers count.
    pub gflops: f64,
    /// Learning rate of the epoch's last optimizer step.
    pub lr: Option<f64>,
    /// Wall time of the epoch's training part.
    pub seconds: f64,
}

impl EpochRow {
    /// The line printed after the epoch.
    pub fn line(&self, epochs: u64) -> String {
        let mut s = format!(
            "epoch {}/{epochs}: loss {:.4}, acc {:.1}%",
            self.epoch,
            self.loss,
            100.0 * self.acc
        );
        if let (Some(l), Some(a)) = (self.val_loss, self.val_acc) {
            s.push_str(&format!(", val loss {l:.4}, val acc {:.1}%", 100.0 * a));
        }
        s.push_str(&format!(
            ", {:.1} images/s (≈ {:.1} GFLOP/s), {:.1} s",
            self.images_per_s, self.gflops, self.seconds
        ));
        if let Some(lr) = self.lr {
            if (1e-4..1e4).contains(&lr) {
                s.push_str(&format!(", lr {lr}"));
            } else {
                s.push_str(&format!(", lr {lr:e}"));
            }
        }
        s
    }
}

/// File format of `--metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// From the file's extension.
    pub fn of(path: &Path) -> Result<Format> {
        match path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .as_deref()
        {
            Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            _ => Err(Error::Train(format!(
                "--metrics {}: give a .csv or .json file",
                path.display()
            ))),
        }
    }
}

/// A `--metrics` file and its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFile {
    pub path: PathBuf,
    pub format: Format,
}

impl MetricsFile {
    /// `path`, in the format its extension names.
    pub fn new(path: &Path) -> Result<MetricsFile> {
        Ok(MetricsFile {
            format: Format::of(path)?,
            path: path.to_path_buf(),
        })
    }

    /// Writes every row so far ([`write()`]).
    pub fn write(&self, model: &str, rows: &[EpochRow], power: Option<&TrainPower>) -> Result<()> {
        write(&self.path, self.format, model, rows, power)
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Writes every row so far, atomically; `power` (at the end of the run) goes into the
/// JSON only.
pub fn write(
    path: &Path,
    format: Format,
    model: &str,
    rows: &[EpochRow],
    power: Option<&TrainPower>,
) -> Result<()> {
    let text = match format {
        Format::Csv => {
            let mut s =
                String::from("epoch,steps,loss,acc,val_loss,val_acc,images_per_s,lr,seconds\n");
            for r in rows {
                s.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{}\n",
                    r.epoch,
                    r.steps,
                    r.loss,
                    r.acc,
                    opt(r.val_loss),
                    opt(r.val_acc),
                    r.images_per_s,
                    opt(r.lr),
                    r.seconds
                ));
            }
            s
        }
        Format::Json => {
            let mut doc = serde_json::json!({ "model": model, "epochs": rows });
            if let Some(p) = power {
                doc["power"] = serde_json::to_value(p).map_err(json)?;
            }
            serde_json::to_string_pretty(&doc).map_err(json)? + "\n"
        }
    };
    fsutil::write_atomic(path, text.as_bytes())
}

/// A JSON encoding failure (not expected: every figure is a number or null).
fn json(e: serde_json::Error) -> Error {
    Error::json("the metrics", e)
}
