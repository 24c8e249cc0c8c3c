//! Power while training, on a Jetson: `tegrastats` sampled in the background over the
//! run (the same `--tegrastats-interval` and `$EDGEBENCH_TEGRASTATS` as bench/compare),
//! summed up over the epochs' training parts only (validation, checkpoints and export
//! left out): average and peak power per rail, GPU load, RAM, the hottest sensor, and
//! energy per trained image. Off a Jetson it is one "not available" line, not an error.

use std::time::Instant;

use serde::Serialize;

use crate::board::{self, Sampler, Tegrastats};
use crate::report::schema::{PowerSummary, TegrastatsStatus};

/// tegrastats running (or why not) and the training windows seen so far.
pub struct Monitor {
    sampler: Option<Sampler>,
    status: TegrastatsStatus,
    board: Option<String>,
    windows: Vec<(Instant, Instant)>,
    seconds: f64,
    images: u64,
}

impl Monitor {
    /// Starts tegrastats every `interval_ms` (0: off) when it is there.
    pub fn start(interval_ms: u64) -> Monitor {
        let board = board::detect().map(|(b, _)| b);
        let (sampler, status) = Tegrastats::start_reported(interval_ms, board.as_deref());
        Monitor {
            sampler,
            status,
            board,
            windows: Vec::new(),
            seconds: 0.0,
            images: 0,
        }
    }

    /// One stretch of training (an epoch's training part): `images` trained from
    /// `start` to `end`.
    pub fn record(&mut self, start: Instant, end: Instant, images: u64) {
        self.windows.push((start, end));
        self.seconds += end.duration_since(start).as_secs_f64();
        self.images += images;
    }

    /// Stops tegrastats and sums up the samples taken while training.
    pub fn finish(self) -> TrainPower {
        let summary = self.sampler.map(|s| {
            let rec = s.finish();
            let mut p = rec.between(&self.windows);
            if p.samples == 0 {
                // The summariser's note speaks of bench's timed runs; say it for training.
                p.note = format!(
                    "no tegrastats sample fell within training ({:.2} s; a shorter --tegrastats-interval samples more often)",
                    self.seconds
                );
                if let Some(why) = &rec.exited_early {
                    p.note = format!("{}; {why}", p.note);
                }
            }
            p
        });
        let mj_per_image = summary
            .as_ref()
            .and_then(|p| p.energy_per_item_mj(self.seconds, self.images));
        TrainPower {
            status: self.status,
            board: self.board,
            train_seconds: self.seconds,
            images: self.images,
            summary,
            mj_per_image,
        }
    }
}

/// The `power` object of the `--metrics` JSON and the text summary's lines.
#[derive(Debug, Clone, Serialize)]
pub struct TrainPower {
    /// available, path, interval_ms, note (`not available (...)` off a Jetson).
    #[serde(flatten)]
    pub status: TegrastatsStatus,
    /// The Jetson board this ran on, when detected.
    pub board: Option<String>,
    /// Wall time of the training parts the figures cover, s.
    pub train_seconds: f64,
    /// Images trained in that time (this run; a resumed run's skipped part not counted).
    pub images: u64,
    /// tegrastats' figures over the training parts.
    pub summary: Option<PowerSummary>,
    /// Average total input power × `train_seconds` ÷ `images`, mJ.
    pub mj_per_image: Option<f64>,
}

fn watts(mw: f64) -> String {
    format!("{:.2} W", mw / 1000.0)
}

impl TrainPower {
    /// `tegrastats: not available (...)`, or the power figures, a few lines.
    pub fn text(&self) -> String {
        let Some(p) = &self.summary else {
            return format!("tegrastats: {}\n", self.status.note);
        };
        let mut out = format!(
            "tegrastats: {} samples every {} ms during training ({:.1} s, {} images){}\n",
            p.samples,
            p.interval_ms,
            self.train_seconds,
            self.images,
            self.board
                .as_ref()
                .map(|b| format!(" on {b}"))
                .unwrap_or_default()
        );
        if let (Some(avg), Some(peak)) = (p.total_avg_mw, p.total_peak_mw) {
            out += &format!(
                "  power: {} avg, {} peak ({})\n",
                watts(avg),
                watts(peak),
                p.total_source
            );
        }
        for r in &p.rails {
            out += &format!(
                "  rail {}: {:.0} mW avg, {:.0} mW peak\n",
                r.name, r.avg_mw, r.peak_mw
            );
        }
        let mut loads = Vec::new();
        if let Some(g) = p.gpu_load_pct {
            loads.push(format!("GPU {:.0}% avg, {:.0}% peak", g.avg, g.peak));
        }
        if let Some(r) = p.ram_used_mib {
            let total = p.ram_total_mib.map_or(String::new(), |t| format!(" / {t}"));
            loads.push(format!("RAM {:.0}{total} MiB peak", r.peak));
        }
        if let (Some(t), Some(s)) = (p.max_temp_c, &p.max_temp_sensor) {
            loads.push(format!("hottest {s} {t:.1} °C"));
        }
        if !loads.is_empty() {
            out += &format!("  {}\n", loads.join("; "));
        }
        if let Some(e) = self.mj_per_image {
            out += &format!("  energy: {e:.3} mJ per trained image\n");
        }
        if !p.note.is_empty() {
            out += &format!("  note: {}\n", p.note);
        }
        if p.unparsed_lines > 0 {
            out += &format!(
                "  note: {} tegrastats line(s) not understood: {}\n",
                p.unparsed_lines,
                p.first_unparsed.as_deref().unwrap_or("?")
            );
        }
        out
    }
}
