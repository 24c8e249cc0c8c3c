//! Calibration: the range an activation is quantized over, chosen from the values it
//! took on calibration images.
//!
//! A [`Histogram`] gathers |x| in fixed bins over [0, range), widening the range by
//! powers of two (neighbouring bins merged, so nothing is counted twice) as larger values
//! arrive, and keeps the signed extremes. [`Histogram::threshold`] then chooses the
//! symmetric clipping threshold `t` (the int8 range is [−t, t]) by one of four methods:
//! - [`Method::MinMax`]: the largest |x| seen;
//! - [`Method::Percentile`]: the P-th percentile of |x| (outliers beyond it clipped);
//! - [`Method::Entropy`]: the threshold whose 128-level quantized distribution is
//!   closest to the observed one in KL divergence (TensorRT's calibration);
//! - [`Method::Mse`]: the threshold with the least squared error of quantizing the
//!   observed values (rounding inside, clipping outside).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Bins of a calibration histogram.
pub const BINS: usize = 2048;

/// Levels of the positive half of the int8 range that [`Method::Entropy`] compares.
const LEVELS: usize = 128;

/// How the clipping threshold is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    MinMax,
    /// The percentile of |x|, in (0, 100].
    Percentile(f64),
    Entropy,
    Mse,
}

impl FromStr for Method {
    type Err = Error;
    /// `minmax`, `percentile:P` (e.g. `percentile:99.99`), `entropy` or `mse`.
    fn from_str(s: &str) -> Result<Method> {
        let bad = || {
            Error::Invalid(format!(
                "unknown calibration method {s:?}: minmax, percentile:P (0 < P ≤ 100), entropy or mse"
            ))
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "minmax" => Ok(Method::MinMax),
            "entropy" => Ok(Method::Entropy),
            "mse" => Ok(Method::Mse),
            other => {
                let p = other.strip_prefix("percentile:").ok_or_else(bad)?;
                match p.parse::<f64>() {
                    Ok(p) if p > 0.0 && p <= 100.0 => Ok(Method::Percentile(p)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::MinMax => write!(f, "minmax"),
            Method::Percentile(p) => write!(f, "percentile:{p}"),
            Method::Entropy => write!(f, "entropy"),
            Method::Mse => write!(f, "mse"),
        }
    }
}

/// |x| of every value seen, in [`BINS`] bins over [0, range), and the signed extremes.
#[derive(Debug, Clone)]
pub struct Histogram {
    bins: Vec<u64>,
    /// Upper edge of the last bin; 0 until a nonzero value arrives.
    range: f64,
    /// Zeros seen before the range was set (they go into bin 0 then).
    zeros: u64,
    min: f32,
    max: f32,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            bins: vec![0; BINS],
            range: 0.0,
            zeros: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
        }
    }

    /// Values seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest and largest value seen (`None` before any).
    pub fn min_max(&self) -> Option<(f32, f32)> {
        (self.count > 0).then_some((self.min, self.max))
    }

    /// Add `xs`; a non-finite value is an error (nothing of `xs` is added then).
    pub fn add(&mut self, xs: &[f32]) -> Result<()> {
        let mut amax = 0f32;
        for (i, &x) in xs.iter().enumerate() {
            if !x.is_finite() {
                return Err(Error::Invalid(format!(
                    "value {i} of a calibration batch is {x}: only finite activations can be calibrated"
                )));
            }
            amax = amax.max(x.abs());
        }
        if amax > 0.0 {
            self.widen(f64::from(amax));
        }
        for &x in xs {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            let a = f64::from(x.abs());
            if self.range == 0.0 {
                self.zeros += 1;
            } else {
                let b = ((a / self.range) * BINS as f64) as usize;
                self.bins[b.min(BINS - 1)] += 1;
            }
        }
        self.count += xs.len() as u64;
        Ok(())
    }

    /// Make the range hold `amax`: the first time, exactly `amax`; later, doubled (bins
    /// merged pairwise) until it does.
    fn widen(&mut self, amax: f64) {
        if self.range == 0.0 {
            self.range = amax;
            self.bins[0] += std::mem::take(&mut self.zeros);
            return;
        }
        while amax > self.range {
            for i in 0..BINS / 2 {
                self.bins[i] = self.bins[2 * i] + self.bins[2 * i + 1];
            }
            self.bins[BINS / 2..].fill(0);
            self.range *= 2.0;
        }
    }

    fn width(&self) -> f64 {
        self.range / BINS as f64
    }

    /// The clipping threshold `t` by `method` (the int8 range is [−t, t]); 0 for a
    /// histogram of zeros only; an error before any value.
    pub fn threshold(&self, method: Method) -> Result<f32> {
        if self.count == 0 {
            return Err(Error::Invalid(
                "no calibration values: the range cannot be chosen".into(),
            ));
        }
        let amax = self.min.abs().max(self.max.abs());
        if self.range == 0.0 {
            return Ok(0.0);
        }
        let t = match method {
            Method::MinMax => return Ok(amax),
            Method::Percentile(p) => self.percentile(p),
            Method::Entropy => self.entropy(),
            Method::Mse => self.mse(),
        };
        // Never beyond what was seen (the last bin's edge can be).
        Ok((t as f32).min(amax))
    }

    /// The upper edge of the first bin at which the share of values reaches `p` %.
    fn percentile(&self, p: f64) -> f64 {
        let want = (p / 100.0 * self.count as f64).ceil() as u64;
        let mut seen = 0;
        for (i, &c) in self.bins.iter().enumerate() {
            seen += c;
            if seen >= want {
                return (i + 1) as f64 * self.width();
            }
        }
        self.range
    }

    /// Keep `i` bins (`i` from [`LEVELS`] to [`BINS`], the rest clipped into the last
    /// kept bin) and compare that distribution P with its [`LEVELS`]-level quantization
    /// Q; the `i` with the least KL(P‖Q) gives the threshold `i · width`.
    fn entropy(&self) -> f64 {
        // The first bin holds every exact zero: after a ReLU, half of all values or more.
        // Counted as they are, they dominate the divergence and pull the threshold far
        // in; like TensorRT's calibrator, take the first bin as its neighbour's count.
        let mut bins = self.bins.clone();
        bins[0] = bins[1];
        let last_used = bins.iter().rposition(|&c| c > 0).unwrap_or(0) + 1;
        let end = last_used.max(LEVELS);
        let mut best = (f64::INFINITY, end);
        let mut p = vec![0f64; end];
        let mut q = vec![0f64; end];
        for i in LEVELS..=end {
            let kept = &bins[..i];
            let outliers: u64 = bins[i..].iter().sum();
            for (dst, &c) in p.iter_mut().zip(kept) {
                *dst = c as f64;
            }
            p[i - 1] += outliers as f64;
            // Q: each of LEVELS groups of kept bins spread evenly over its nonzero bins.
            for level in 0..LEVELS {
                let (a, b) = (
                    level * i / LEVELS,
                    ((level + 1) * i / LEVELS).max(level * i / LEVELS + 1),
                );
                let group = &kept[a..b.min(i)];
                let total: u64 = group.iter().sum();
                let nonzero = group.iter().filter(|&&c| c > 0).count();
                for (k, &c) in group.iter().enumerate() {
                    q[a + k] = if c > 0 {
                        total as f64 / nonzero as f64
                    } else {
                        0.0
                    };
                }
            }
            let kl = kl_divergence(&p[..i], &q[..i]);
            if kl < best.0 {
                best = (kl, i);
            }
        }
        best.1 as f64 * self.width()
    }

    /// The threshold at a bin edge with the least total squared error of quantizing
    /// every bin's centre to int8 over [−t, t] and back (clipped beyond t).
    fn mse(&self) -> f64 {
        let w = self.width();
        let centres: Vec<(f64, f64)> = self
            .bins
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, &c)| ((b as f64 + 0.5) * w, c as f64))
            .collect();
        let mut best = (f64::INFINITY, self.range);
        for i in 1..=BINS {
            let t = i as f64 * w;
            let scale = t / 127.0;
            let err: f64 = centres
                .iter()
                .map(|&(x, c)| {
                    let back = (x / scale).round_ties_even().min(127.0) * scale;
                    c * (x - back) * (x - back)
                })
                .sum();
            if err < best.0 {
                best = (err, t);
            }
        }
        best.1
    }
}

/// KL(P‖Q) of two histograms over the same bins, each normalised; bins where Q is 0
/// but P is not get a small share taken evenly from Q's other bins (smoothing), so that
/// a candidate is never infinitely far.
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    if sp == 0.0 || sq == 0.0 {
        return f64::INFINITY;
    }
    const EPS: f64 = 1e-4;
    let holes = p
        .iter()
        .zip(q)
        .filter(|&(&pi, &qi)| pi > 0.0 && qi == 0.0)
        .count() as f64;
    let filled = q.iter().filter(|&&qi| qi > 0.0).count() as f64;
    let take = if filled > 0.0 {
        EPS * holes / filled
    } else {
        0.0
    };
    p.iter()
        .zip(q)
        .filter(|&(&pi, _)| pi > 0.0)
        .map(|(&pi, &qi)| {
            let pn = pi / sp;
            let qn = if qi > 0.0 { qi / sq - take } else { EPS };
            pn * (pn / qn.max(1e-12)).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100,000 values over [0, 1) with a density falling linearly to 0 at 1 (as ReLU
    /// outputs thin out), signs alternating, and one outlier at 2.0.
    fn bulk_and_outlier() -> Histogram {
        let n = 100_000;
        let mut h = Histogram::new();
        let bulk: Vec<f32> = (0..n)
            .map(|i| {
                let u = (i as f64 + 0.5) / n as f64;
                let v = (1.0 - (1.0 - u).sqrt()) as f32;
                if i % 2 == 0 { v } else { -v }
            })
            .collect();
        h.add(&bulk).unwrap();
        h.add(&[2.0]).unwrap();
        h
    }

    #[test]
    fn minmax_and_percentile_on_known_values() {
        let mut h = Histogram::new();
        h.add(&[-1.0, 0.5, 3.0]).unwrap();
        assert_eq!(h.min_max(), Some((-1.0, 3.0)));
        assert_eq!(h.threshold(Method::MinMax).unwrap(), 3.0);
        // 1, 2, …, 1000 in bins of width 1000/2048: the 99th percentile is value 990,
        // whose bin ends just above it.
        let mut h = Histogram::new();
        h.add(&(1..=1000).map(|v| v as f32).collect::<Vec<_>>())
            .unwrap();
        let t = h.threshold(Method::Percentile(99.0)).unwrap();
        assert!((990.0..=990.0 + 1000.0 / 2048.0).contains(&t), "{t}");
        assert_eq!(h.threshold(Method::Percentile(100.0)).unwrap(), 1000.0);
    }

    #[test]
    fn widening_keeps_every_count() {
        let mut h = Histogram::new();
        h.add(&[0.0, 0.0, 0.25]).unwrap();
        h.add(&[1.0, -3.0]).unwrap();
        h.add(&[100.0]).unwrap();
        assert_eq!(h.bins.iter().sum::<u64>(), 6);
        assert_eq!(h.count(), 6);
        // 0.25 × 2^9 = 128 ≥ 100: nine doublings.
        assert_eq!(h.range, 128.0);
        assert_eq!(h.threshold(Method::MinMax).unwrap(), 100.0);
    }

    #[test]
    fn outlier_robust_methods_clip_the_lone_outlier() {
        let h = bulk_and_outlier();
        assert_eq!(h.threshold(Method::MinMax).unwrap(), 2.0);
        // |x| ≤ 1 − √(1 − 0.9999) = 0.99 for 99.99% of the bulk.
        let p = h.threshold(Method::Percentile(99.99)).unwrap();
        assert!((0.985..=1.0).contains(&p), "percentile {p}");
        // Resolving the outlier would need twice the bins per int8 level over the
        // sloped bulk; KL divergence keeps the bulk (its edge is 1.0) and clips it.
        let e = h.threshold(Method::Entropy).unwrap();
        assert!((0.85..=1.05).contains(&e), "entropy {e}");
        // Squared error: clipping the outlier costs (2 − t)², rounding the bulk about
        // 100,000 · (t/127)² / 12 = 0.517 t²; the sum is least at t = 4 / 3.033 = 1.32.
        let m = h.threshold(Method::Mse).unwrap();
        assert!((1.2..=1.45).contains(&m), "mse {m}");
    }

    #[test]
    fn a_uniform_distribution_keeps_its_whole_range() {
        let mut h = Histogram::new();
        h.add(
            &(0..50_000)
                .map(|i| i as f32 / 50_000.0 * 4.0)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let amax = h.threshold(Method::MinMax).unwrap();
        for m in [Method::Entropy, Method::Mse, Method::Percentile(100.0)] {
            let t = h.threshold(m).unwrap();
            assert!(t >= 0.97 * amax, "{m}: {t} of {amax}");
        }
    }

    #[test]
    fn entropy_is_not_pulled_in_by_the_zeros_of_a_relu() {
        // A ReLU's output: 70% exact zeros, the rest uniform over (0, 4]. Counting the
        // zeros as they are put the threshold at 0.49 (lean at 64×64: −6 points top-1).
        let mut h = Histogram::new();
        let mut xs = vec![0.0f32; 70_000];
        xs.extend((1..=30_000).map(|i| i as f32 / 30_000.0 * 4.0));
        h.add(&xs).unwrap();
        let t = h.threshold(Method::Entropy).unwrap();
        assert!(t >= 0.9 * 4.0, "entropy threshold {t} of 4");
    }

    #[test]
    fn bad_input_and_method_names() {
        let mut h = Histogram::new();
        assert!(h.threshold(Method::MinMax).is_err());
        let e = h.add(&[1.0, f32::NAN]).unwrap_err().to_string();
        assert!(e.contains("value 1") && e.contains("NaN"), "{e}");
        assert_eq!(h.count(), 0);
        h.add(&[0.0, 0.0]).unwrap();
        assert_eq!(h.threshold(Method::Entropy).unwrap(), 0.0);
        assert_eq!(
            "percentile:99.9".parse::<Method>().unwrap(),
            Method::Percentile(99.9)
        );
        assert_eq!("Entropy".parse::<Method>().unwrap(), Method::Entropy);
        for bad in ["percentile:0", "percentile:101", "kl", "percentile"] {
            assert!(bad.parse::<Method>().is_err(), "{bad}");
        }
        assert_eq!(Method::Percentile(99.9).to_string(), "percentile:99.9");
    }
}
