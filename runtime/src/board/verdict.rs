//! Budget verdicts: one [`Verdict`] per budget (memory, p90 latency, throughput) for
//! one model. Memory and latency are maxima; throughput is a minimum, so "over" means
//! below it by `over_pct`.

use crate::report::schema::{ModelResult, TargetBudget, Verdict, VerdictStatus};

use super::MIB;

/// Check `m` against every budget of the target, in the order memory, p90 latency,
/// throughput. A budget the target lacks gives [`VerdictStatus::NoBudget`]; a figure
/// that was not measured gives [`VerdictStatus::NotMeasured`].
pub fn verdicts(budget: &TargetBudget, m: &ModelResult) -> Vec<Verdict> {
    let rss = m.memory.peak_rss_bytes;
    let memory = (rss > 0).then(|| rss as f64 / MIB as f64);
    vec![
        check(
            "memory",
            "MiB",
            budget.memory_bytes.map(|b| b as f64 / MIB as f64),
            memory,
            false,
        ),
        check(
            "p90_latency",
            "ms",
            budget.p90_latency_ms,
            m.single_stream.as_ref().map(|s| s.latency_ms.p90),
            false,
        ),
        check(
            "throughput",
            "images/s",
            budget.min_throughput_ips,
            m.offline.as_ref().map(|o| o.throughput_ips),
            true,
        ),
    ]
}

fn check(
    name: &str,
    unit: &str,
    limit: Option<f64>,
    measured: Option<f64>,
    minimum: bool,
) -> Verdict {
    let status = match (limit, measured) {
        (None, _) => VerdictStatus::NoBudget,
        (Some(_), None) => VerdictStatus::NotMeasured,
        (Some(l), Some(v)) if l > 0.0 && v.is_finite() => {
            // Signed headroom as a share of the limit: positive = within the budget.
            let headroom = if minimum { v - l } else { l - v } / l * 100.0;
            if headroom >= 0.0 {
                VerdictStatus::Fits {
                    margin_pct: headroom,
                }
            } else {
                VerdictStatus::Over {
                    over_pct: -headroom,
                }
            }
        }
        (Some(_), Some(_)) => VerdictStatus::NotMeasured,
    };
    Verdict {
        budget: name.to_string(),
        limit,
        measured,
        unit: unit.to_string(),
        status,
    }
}

/// One phrase for a verdict: `fits (12% headroom)`, `over by 34%`, `below by 20%`,
/// `no budget`, `not measured`.
pub fn describe(v: &Verdict) -> String {
    match v.status {
        VerdictStatus::Fits { margin_pct } => format!("fits ({margin_pct:.0}% headroom)"),
        VerdictStatus::Over { over_pct } if v.budget == "throughput" => {
            format!("below by {over_pct:.0}%")
        }
        VerdictStatus::Over { over_pct } => format!("over by {over_pct:.0}%"),
        VerdictStatus::NoBudget => "no budget".into(),
        VerdictStatus::NotMeasured => "not measured".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::{LatencyStats, Memory, Offline, SingleStream};

    fn model(rss_mib: u64, p90: Option<f64>, ips: Option<f64>) -> ModelResult {
        ModelResult {
            name: "m".into(),
            memory: Memory {
                peak_rss_bytes: rss_mib * MIB,
                ..Memory::default()
            },
            single_stream: p90.map(|p90| SingleStream {
                latency_ms: LatencyStats {
                    p90,
                    ..LatencyStats::default()
                },
                ..SingleStream::default()
            }),
            offline: ips.map(|throughput_ips| Offline {
                batch: 8,
                throughput_ips,
                ..Offline::default()
            }),
            ..ModelResult::default()
        }
    }

    fn budget(mem_mib: Option<u64>, p90: Option<f64>, ips: Option<f64>) -> TargetBudget {
        TargetBudget {
            name: "b".into(),
            memory_bytes: mem_mib.map(|m| m * MIB),
            p90_latency_ms: p90,
            min_throughput_ips: ips,
            ..TargetBudget::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn fits_everywhere() {
        let v = verdicts(
            &budget(Some(2048), Some(40.0), Some(30.0)),
            &model(1536, Some(30.0), Some(45.0)),
        );
        assert_eq!(v.len(), 3);
        let m: Vec<f64> = v
            .iter()
            .map(|v| match v.status {
                VerdictStatus::Fits { margin_pct } => margin_pct,
                s => panic!("{s:?}"),
            })
            .collect();
        assert!(
            close(m[0], 25.0) && close(m[1], 25.0) && close(m[2], 50.0),
            "{m:?}"
        );
        assert_eq!(v[0].limit, Some(2048.0));
        assert_eq!(v[0].measured, Some(1536.0));
        assert_eq!(v[0].unit, "MiB");
        assert_eq!(describe(&v[0]), "fits (25% headroom)");
    }

    #[test]
    fn over_and_throughput_as_a_minimum() {
        let v = verdicts(
            &budget(Some(1000), Some(20.0), Some(50.0)),
            &model(1340, Some(30.0), Some(40.0)),
        );
        let over: Vec<f64> = v
            .iter()
            .map(|v| match v.status {
                VerdictStatus::Over { over_pct } => over_pct,
                s => panic!("{s:?}"),
            })
            .collect();
        // 1340 MiB vs 1000 MiB budget (MiB limits convert exactly).
        assert!(close(over[0], 34.0), "{over:?}");
        assert!(close(over[1], 50.0), "{over:?}");
        // 40 images/s against a 50 images/s minimum: 20% short.
        assert!(close(over[2], 20.0), "{over:?}");
        assert_eq!(describe(&v[1]), "over by 50%");
        assert_eq!(describe(&v[2]), "below by 20%");
        // Throughput exactly at the minimum fits with no headroom.
        let v = verdicts(&budget(None, None, Some(40.0)), &model(1, None, Some(40.0)));
        assert_eq!(v[2].status, VerdictStatus::Fits { margin_pct: 0.0 });
    }

    #[test]
    fn missing_budget_and_not_measured() {
        let v = verdicts(
            &budget(Some(512), None, Some(10.0)),
            &model(0, Some(5.0), None),
        );
        assert_eq!(v[0].status, VerdictStatus::NotMeasured);
        assert_eq!(v[0].measured, None);
        assert_eq!(v[1].status, VerdictStatus::NoBudget);
        assert_eq!(v[1].measured, Some(5.0));
        assert_eq!(v[1].limit, None);
        assert_eq!(v[2].status, VerdictStatus::NotMeasured);
        assert_eq!(describe(&v[1]), "no budget");
        assert_eq!(describe(&v[2]), "not measured");
    }
}
