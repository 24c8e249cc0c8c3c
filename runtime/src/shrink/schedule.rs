//! Successive halving: how many candidates train in each round ("rung"), how far, and
//! which half goes on. Every candidate of rung `r` has trained `s0 · 2^r` optimizer
//! steps in all when the rung ends; then the better half (rounded up) goes on, until
//! one is left. `s0` comes from the time budget, estimated conservatively from each
//! candidate's measured step time (later rungs are costed as if the most expensive
//! candidates survive), or is given.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// The rungs of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Optimizer steps each candidate of rung `r` has trained when it ends (cumulative).
    pub steps: Vec<u64>,
    /// Candidates trained in rung `r`.
    pub counts: Vec<usize>,
    /// How the first rung's steps were chosen.
    pub basis: String,
    /// Estimated seconds of training and validation for the whole schedule.
    pub estimated_s: f64,
}

/// Candidates per rung for `n` starting ones: n, ⌈n/2⌉, … while at least 2 are left
/// (one rung when `n` is 1).
pub fn counts(n: usize) -> Vec<usize> {
    if n <= 1 {
        return vec![n];
    }
    let mut c = vec![n];
    let mut k = n;
    while k > 2 {
        k = keep(k);
        c.push(k);
    }
    c
}

/// How many of `n` ranked candidates go on.
pub fn keep(n: usize) -> usize {
    n.div_ceil(2)
}

/// Cost terms of a schedule over candidates whose step and evaluation times are
/// `costs` (seconds per optimizer step, seconds per validation pass): `(A, E)` with
/// total = `s0 · A + E`. Rung `r ≥ 1` is costed with its `counts[r]` most expensive.
fn terms(costs: &[(f64, f64)], counts: &[usize]) -> (f64, f64) {
    let mut by_step: Vec<(f64, f64)> = costs.to_vec();
    by_step.sort_by(|a, b| (b.0 + b.1).total_cmp(&(a.0 + a.1)));
    let (mut a, mut e) = (0.0, 0.0);
    for (r, &n) in counts.iter().enumerate() {
        let top = &by_step[..n.min(by_step.len())];
        let step: f64 = top.iter().map(|c| c.0).sum();
        e += top.iter().map(|c| c.1).sum::<f64>();
        // Rung r adds s0·2^r − s0·2^(r−1) = s0·2^(r−1) steps (s0 in rung 0).
        a += step
            * if r == 0 {
                1.0
            } else {
                (1u64 << (r - 1)) as f64
            };
    }
    (a, e)
}

/// The largest first-rung step count whose whole schedule fits `available_s`
/// seconds, or `None` when not even one step each does (with the seconds one step of
/// each would need).
pub fn fit_steps(costs: &[(f64, f64)], available_s: f64) -> std::result::Result<u64, f64> {
    let c = counts(costs.len());
    let (a, e) = terms(costs, &c);
    let need_one = a + e;
    if a <= 0.0 || !available_s.is_finite() || available_s < need_one {
        return Err(need_one);
    }
    Ok((((available_s - e) / a).floor() as u64).max(1))
}

/// The schedule for `s0` first-rung steps.
pub fn schedule(costs: &[(f64, f64)], s0: u64, basis: String) -> Schedule {
    let c = counts(costs.len());
    let (a, e) = terms(costs, &c);
    Schedule {
        steps: (0..c.len()).map(|r| s0.saturating_mul(1 << r)).collect(),
        estimated_s: s0 as f64 * a + e,
        counts: c,
        basis,
    }
}

/// What a candidate is ranked by after a rung.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub name: String,
    /// Held-out accuracy (0–1) and loss.
    pub val_acc: f64,
    pub val_loss: f64,
    /// The candidate's best p90 latency among its precisions that fit.
    pub latency_ms: f64,
}

/// Best first: higher accuracy, then lower loss, then lower latency, then name.
pub fn better(a: &Score, b: &Score) -> Ordering {
    b.val_acc
        .total_cmp(&a.val_acc)
        .then(a.val_loss.total_cmp(&b.val_loss))
        .then(a.latency_ms.total_cmp(&b.latency_ms))
        .then(a.name.cmp(&b.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_counts() {
        assert_eq!(counts(1), vec![1]);
        assert_eq!(counts(2), vec![2]);
        assert_eq!(counts(3), vec![3, 2]);
        assert_eq!(counts(4), vec![4, 2]);
        assert_eq!(counts(6), vec![6, 3, 2]);
        assert_eq!(counts(18), vec![18, 9, 5, 3, 2]);
    }

    #[test]
    fn steps_fill_the_time_and_no_more() {
        // Four candidates, 1 s per step each, no validation: rung 0 4·s0, rung 1 2·s0.
        let costs = vec![(1.0, 0.0); 4];
        assert_eq!(fit_steps(&costs, 60.0), Ok(10));
        let s = schedule(&costs, 10, "t".into());
        assert_eq!(s.steps, vec![10, 20]);
        assert_eq!(s.counts, vec![4, 2]);
        assert_eq!(s.estimated_s, 60.0);
        // Later rungs are costed with the most expensive candidates.
        let costs = vec![(1.0, 0.0), (1.0, 0.0), (1.0, 0.0), (5.0, 1.0)];
        let (a, e) = terms(&costs, &counts(4));
        assert_eq!((a, e), (8.0 + 6.0, 1.0 + 1.0));
        assert_eq!(fit_steps(&costs, 13.0), Err(16.0));
    }

    #[test]
    fn ranking() {
        let s = |n: &str, acc, loss, lat| Score {
            name: n.into(),
            val_acc: acc,
            val_loss: loss,
            latency_ms: lat,
        };
        let mut v = [
            s("d", 0.9, 0.3, 1.0),
            s("c", 0.9, 0.3, 2.0),
            s("b", 0.9, 0.2, 9.0),
            s("a", 0.95, 0.9, 9.0),
            s("e", 0.9, 0.3, 1.0),
        ];
        v.sort_by(better);
        let names: Vec<&str> = v.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "d", "e", "c"]);
    }
}
