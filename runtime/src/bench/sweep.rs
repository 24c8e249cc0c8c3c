//! `--batch auto`: sweep Offline batch sizes, each in a worker process of its own, and
//! pick the throughput knee that stays inside the memory budget.
//!
//! The knee is the smallest batch whose throughput is within [`KNEE_SHARE`] of the best
//! batch that fits: larger batches past it cost memory and latency for little gain.

use std::path::Path;

use super::interleave::Job;
use super::runner::Scenario;
use super::worker::Worker;
use crate::error::{Error, Result};
use crate::report::schema::{BatchSweep, SweepPoint};

/// Batches tried, in order.
pub const BATCHES: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 128];
/// A batch within this share of the best throughput counts as the knee.
pub const KNEE_SHARE: f64 = 0.95;

/// Sweep `job` over [`BATCHES`] up to `max_batch`, `seconds` of timed Offline per batch.
/// Stops early when a batch exceeds the budget or throughput stops growing (< 2% for two
/// batches in a row).
pub fn sweep(
    exe: &Path,
    job: &Job,
    memory_budget: Option<u64>,
    max_batch: usize,
    seconds: f64,
    progress: &mut dyn FnMut(usize),
) -> Result<BatchSweep> {
    let mut points: Vec<SweepPoint> = Vec::new();
    let mut flat = 0;
    for &b in BATCHES.iter().filter(|&&b| b <= max_batch.max(1)) {
        progress(b);
        let mut cfg = job.cfg.clone();
        let mut shape = cfg.single_shape.clone();
        shape[0] = b;
        cfg.offline_shape = Some(shape);
        // The sweep times the engine alone: opening `--data` (for TFRecord, a read of
        // every shard) in each batch's worker would be wasted.
        cfg.data = None;
        let mut w = Worker::spawn(exe, &cfg)?;
        w.run(Scenario::Offline, 1, 0.0, 0.0)?;
        let ms = w.run(Scenario::Offline, 2, seconds, 0.0)?;
        let mem = w.memory()?;
        w.finish()?;
        let ips = super::stats::throughput_ips(&ms, b);
        let fits = memory_budget.is_none_or(|m| mem.peak_rss_bytes <= m);
        let best = points.iter().map(|p| p.throughput_ips).fold(0.0, f64::max);
        points.push(SweepPoint {
            batch: b,
            throughput_ips: ips,
            peak_rss_bytes: mem.peak_rss_bytes,
            fits,
        });
        if !fits {
            break;
        }
        flat = if ips < best * 1.02 { flat + 1 } else { 0 };
        if flat >= 2 {
            break;
        }
    }
    choose(points, memory_budget)
}

/// Pick the knee among measured points (pure: tested with fixed figures).
pub fn choose(points: Vec<SweepPoint>, memory_budget: Option<u64>) -> Result<BatchSweep> {
    let best = points
        .iter()
        .filter(|p| p.fits)
        .map(|p| p.throughput_ips)
        .fold(0.0, f64::max);
    let Some(knee) = points
        .iter()
        .find(|p| p.fits && p.throughput_ips >= KNEE_SHARE * best)
    else {
        let budget = memory_budget.map_or("none".into(), crate::units::bytes);
        return Err(Error::Invalid(format!(
            "no batch size fits the memory budget ({budget}); batch 1 needs {}",
            points
                .first()
                .map_or("unknown".into(), |p| crate::units::bytes(p.peak_rss_bytes))
        )));
    };
    let chosen = knee.batch;
    let reason = format!(
        "smallest batch within {:.0}% of the best throughput ({best:.1} images/s){}",
        KNEE_SHARE * 100.0,
        match memory_budget {
            Some(m) => format!(" that fits {}", crate::units::bytes(m)),
            None => String::new(),
        }
    );
    Ok(BatchSweep {
        points,
        chosen,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(batch: usize, ips: f64, mib: u64, fits: bool) -> SweepPoint {
        SweepPoint {
            batch,
            throughput_ips: ips,
            peak_rss_bytes: mib << 20,
            fits,
        }
    }

    #[test]
    fn knee_is_the_smallest_batch_near_the_best() {
        let s = choose(
            vec![
                p(1, 100.0, 100, true),
                p(2, 150.0, 110, true),
                p(4, 190.0, 130, true),
                p(8, 196.0, 170, true),
                p(16, 197.0, 250, true),
            ],
            None,
        )
        .unwrap();
        assert_eq!(s.chosen, 4);
        assert!(s.reason.contains("95%"), "{}", s.reason);
    }

    #[test]
    fn budget_excludes_the_faster_batches() {
        let s = choose(
            vec![
                p(1, 100.0, 100, true),
                p(2, 150.0, 200, true),
                p(4, 190.0, 400, false),
            ],
            Some(300 << 20),
        )
        .unwrap();
        assert_eq!(s.chosen, 2);
        assert!(s.reason.contains("300.0 MiB"), "{}", s.reason);
    }

    #[test]
    fn nothing_fits_is_an_error_saying_what_batch_1_needs() {
        let e = choose(vec![p(1, 100.0, 900, false)], Some(512 << 20)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("512.0 MiB") && msg.contains("900.0 MiB"),
            "{msg}"
        );
    }
}
