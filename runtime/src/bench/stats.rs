//! Latency statistics: min, mean, median, p90/p95/p99, max and standard deviation.
//!
//! Percentiles interpolate linearly between order statistics, as numpy's default
//! (`np.percentile(x, q)`, method "linear"): for a sorted sample `s` of `n` values the
//! q-th percentile sits at position `q/100 · (n − 1)`. The standard deviation is the
//! sample one (divisor `n − 1`; 0 for a single value).

use crate::report::schema::LatencyStats;

/// The `q`-th percentile (0 ≤ q ≤ 100) of an ascending, non-empty sample.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let pos = (q.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Images per second of queries of `batch` images that took `latencies_ms` in all
/// (time spent inside the queries, not wall time around them).
pub fn throughput_ips(latencies_ms: &[f64], batch: usize) -> f64 {
    let seconds = latencies_ms.iter().sum::<f64>() / 1e3;
    (latencies_ms.len() * batch) as f64 / seconds.max(1e-12)
}

impl LatencyStats {
    /// Statistics of `samples`; `None` for an empty sample or one with a non-finite value.
    pub fn from_samples(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() || samples.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        let mean = s.iter().sum::<f64>() / n;
        let var = if s.len() > 1 {
            s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Some(Self {
            count: s.len() as u64,
            min: s[0],
            mean,
            median: percentile_sorted(&s, 50.0),
            p90: percentile_sorted(&s, 90.0),
            p95: percentile_sorted(&s, 95.0),
            p99: percentile_sorted(&s, 99.0),
            max: s[s.len() - 1],
            std: var.sqrt(),
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp, Normal};

    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn matches_numpy_on_small_samples() {
        // np.percentile([1, 2, 3, 4], [50, 90, 95, 99]) = 2.5, 3.7, 3.85, 3.97
        let s = LatencyStats::from_samples(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.min, s.max, s.count), (1.0, 4.0, 4));
        assert!(close(s.median, 2.5, 1e-12));
        assert!(close(s.p90, 3.7, 1e-12));
        assert!(close(s.p95, 3.85, 1e-12));
        assert!(close(s.p99, 3.97, 1e-12));
        // np.std([1, 2, 3, 4], ddof=1) = 1.2909944487358056
        assert!(close(s.std, 1.290_994_448_735_805_6, 1e-12));
        assert!(close(s.mean, 2.5, 1e-12));
    }

    #[test]
    fn uniform_grid_percentiles_are_exact() {
        // 0, 1, ..., 100: the q-th percentile is q.
        let v: Vec<f64> = (0..=100).rev().map(f64::from).collect();
        let s = LatencyStats::from_samples(&v).unwrap();
        assert_eq!((s.median, s.p90, s.p95, s.p99), (50.0, 90.0, 95.0, 99.0));
    }

    #[test]
    fn throughput_of_batches() {
        // Four batches of 8 in 10 ms each: 32 images in 40 ms.
        assert!(close(throughput_ips(&[10.0; 4], 8), 800.0, 1e-9));
        assert_eq!(throughput_ips(&[], 8), 0.0);
    }

    #[test]
    fn single_value_and_degenerate_input() {
        let s = LatencyStats::from_samples(&[7.5]).unwrap();
        assert_eq!(
            (s.min, s.median, s.p99, s.max, s.std),
            (7.5, 7.5, 7.5, 7.5, 0.0)
        );
        assert!(LatencyStats::from_samples(&[]).is_none());
        assert!(LatencyStats::from_samples(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn normal_distribution_quantiles() {
        // N(10, 2): median 10, p90 = 10 + 1.2816·2, p99 = 10 + 2.3263·2, std 2.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let d = Normal::new(10.0, 2.0).unwrap();
        let v: Vec<f64> = (0..200_000).map(|_| d.sample(&mut rng)).collect();
        let s = LatencyStats::from_samples(&v).unwrap();
        assert!(close(s.median, 10.0, 0.03), "{s:?}");
        assert!(close(s.p90, 10.0 + 1.281_552 * 2.0, 0.04), "{s:?}");
        assert!(close(s.p95, 10.0 + 1.644_854 * 2.0, 0.05), "{s:?}");
        assert!(close(s.p99, 10.0 + 2.326_348 * 2.0, 0.08), "{s:?}");
        assert!(close(s.std, 2.0, 0.02), "{s:?}");
    }

    #[test]
    fn exponential_tail() {
        // Exp(λ=1): q-th quantile = −ln(1 − q); a long right tail like real latencies.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let d = Exp::new(1.0).unwrap();
        let v: Vec<f64> = (0..200_000).map(|_| d.sample(&mut rng)).collect();
        let s = LatencyStats::from_samples(&v).unwrap();
        assert!(close(s.median, std::f64::consts::LN_2, 0.02), "{s:?}");
        assert!(close(s.p90, 10f64.ln(), 0.04), "{s:?}");
        assert!(close(s.p99, 100f64.ln(), 0.15), "{s:?}");
        assert!(close(s.mean, 1.0, 0.02) && close(s.std, 1.0, 0.03), "{s:?}");
    }
}
