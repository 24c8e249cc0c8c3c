//! Figures across models: ratios against the first model and the Pareto front. Pure
//! functions of the results, so `compare` and every output format agree.

use crate::report::schema::{ModelResult, Ratios};

/// Ratios of every model against the first (`value / first's value`; 1.0 for the first).
/// A ratio is `None` when either figure is missing or the first's is zero.
pub fn ratios(models: &[ModelResult]) -> Vec<Ratios> {
    let Some(first) = models.first() else {
        return Vec::new();
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    };
    models
        .iter()
        .map(|m| Ratios {
            p90_latency: ratio(p90(m), p90(first)),
            throughput: ratio(throughput(m), throughput(first)),
            peak_rss: ratio(rss(m), rss(first)),
            macs: ratio(nonzero(m.macs_per_image), nonzero(first.macs_per_image)),
            params: ratio(nonzero(m.params), nonzero(first.params)),
            file_bytes: ratio(
                m.file_bytes.and_then(nonzero),
                first.file_bytes.and_then(nonzero),
            ),
        })
        .collect()
}

/// The latency a model is ranked on: SingleStream p90, or its median when the p90 is
/// absent (zero or not a number, as in a report written by hand or by another tool).
pub fn ranking_latency_ms(m: &ModelResult) -> Option<f64> {
    let l = &m.single_stream.as_ref()?.latency_ms;
    let usable = |v: f64| (v.is_finite() && v > 0.0).then_some(v);
    usable(l.p90).or_else(|| usable(l.median))
}

fn p90(m: &ModelResult) -> Option<f64> {
    m.single_stream.as_ref().map(|s| s.latency_ms.p90)
}

fn throughput(m: &ModelResult) -> Option<f64> {
    m.offline.as_ref().map(|o| o.throughput_ips)
}

fn rss(m: &ModelResult) -> Option<f64> {
    nonzero(m.memory.peak_rss_bytes)
}

fn nonzero(v: u64) -> Option<f64> {
    (v > 0).then_some(v as f64)
}

/// Indices of the non-dominated models, in order: lower latency
/// ([`ranking_latency_ms`]) and lower peak RSS, plus higher accuracy when every model
/// has one. A missing figure ranks worst on its axis. Models with identical figures are
/// all on the front.
pub fn pareto_front(models: &[ModelResult]) -> Vec<usize> {
    let with_accuracy = !models.is_empty() && models.iter().all(|m| m.accuracy.is_some());
    // Every objective as "lower is better".
    let objectives: Vec<Vec<f64>> = models
        .iter()
        .map(|m| {
            let mut o = vec![
                ranking_latency_ms(m).unwrap_or(f64::INFINITY),
                rss(m).unwrap_or(f64::INFINITY),
            ];
            if with_accuracy {
                o.push(-m.accuracy.unwrap_or(f64::NEG_INFINITY));
            }
            o
        })
        .collect();
    let dominates = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
    };
    (0..models.len())
        .filter(|&i| {
            !(0..models.len()).any(|j| j != i && dominates(&objectives[j], &objectives[i]))
        })
        .collect()
}

/// What the Pareto front is computed over, for captions.
pub fn pareto_axes(models: &[ModelResult]) -> &'static str {
    if !models.is_empty() && models.iter().all(|m| m.accuracy.is_some()) {
        "p90 latency × peak RSS × accuracy"
    } else {
        "p90 latency × peak RSS"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{heavy, lean, with_figures};

    #[test]
    fn ratios_against_the_first() {
        let r = ratios(&[heavy(), lean()]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].p90_latency, Some(1.0));
        assert_eq!(r[0].params, Some(1.0));
        let l = r[1];
        let (h, n) = (heavy(), lean());
        let expect = n.single_stream.as_ref().unwrap().latency_ms.p90
            / h.single_stream.as_ref().unwrap().latency_ms.p90;
        assert!((l.p90_latency.unwrap() - expect).abs() < 1e-12);
        assert!(l.macs.unwrap() < 0.2 && l.params.unwrap() < 0.3);
        assert!(l.throughput.unwrap() > 1.0 && l.peak_rss.unwrap() < 1.0);
        // A missing scenario gives no ratio, not a zero.
        let mut n = lean();
        n.offline = None;
        assert_eq!(ratios(&[heavy(), n])[1].throughput, None);
        assert!(ratios(&[]).is_empty());
    }

    #[test]
    fn pareto_on_latency_and_memory() {
        // a: fast and big, b: slow and small, c: slower and bigger than a (dominated),
        // d: the same figures as b (kept: not strictly dominated).
        let models = [
            with_figures("a", 10.0, 500, None),
            with_figures("b", 30.0, 100, None),
            with_figures("c", 12.0, 600, None),
            with_figures("d", 30.0, 100, None),
        ];
        assert_eq!(pareto_front(&models), vec![0, 1, 3]);
        assert_eq!(pareto_axes(&models), "p90 latency × peak RSS");
        assert_eq!(pareto_front(&[heavy(), lean()]), vec![1]);
        assert!(pareto_front(&[]).is_empty());
    }

    #[test]
    fn pareto_uses_accuracy_only_when_every_model_has_it() {
        let mut models = vec![
            with_figures("a", 10.0, 100, Some(0.70)),
            with_figures("b", 20.0, 200, Some(0.90)),
        ];
        assert_eq!(pareto_front(&models), vec![0, 1]);
        assert!(pareto_axes(&models).contains("accuracy"));
        models[1].accuracy = None;
        assert_eq!(pareto_front(&models), vec![0]);
    }

    #[test]
    fn missing_latency_ranks_worst() {
        let mut b = with_figures("b", 5.0, 100, None);
        b.single_stream = None;
        let models = [with_figures("a", 10.0, 100, None), b];
        assert_eq!(pareto_front(&models), vec![0]);
    }
}
