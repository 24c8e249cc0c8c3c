//! Phrases for the `tegrastats` figures (power, loads, temperatures, energy per
//! inference), built once so that the table, Markdown and HTML say the same thing.

use crate::report::schema::{PowerSummary, Report};

use super::num;

/// `tegrastats: sampled every 100 ms by /usr/bin/tegrastats` or `tegrastats: not
/// available (not a Jetson)`; `None` for reports written before tegrastats support.
pub(crate) fn status_line(r: &Report) -> Option<String> {
    r.tegrastats
        .as_ref()
        .map(|t| format!("tegrastats: {}", t.note))
}

/// Milliwatts as watts with 2 decimals: `4.74 W`.
fn watts(mw: f64) -> String {
    format!("{:.2} W", mw / 1000.0)
}

/// `4.74 W avg, 5.10 W peak (VDD_IN) · GPU 12% avg, 40% peak · EMC 3% avg · RAM 1905 /
/// 7620 MiB peak · hottest tj 46.1 °C · 9 samples`.
pub(crate) fn power_line(p: &PowerSummary) -> String {
    let mut parts = Vec::new();
    if let (Some(avg), Some(peak)) = (p.total_avg_mw, p.total_peak_mw) {
        parts.push(format!(
            "{} avg, {} peak ({})",
            watts(avg),
            watts(peak),
            p.total_source
        ));
    }
    if let Some(g) = p.gpu_load_pct {
        parts.push(format!("GPU {:.0}% avg, {:.0}% peak", g.avg, g.peak));
    }
    if let Some(e) = p.emc_load_pct {
        parts.push(format!("EMC {:.0}% avg, {:.0}% peak", e.avg, e.peak));
    }
    if let Some(r) = p.ram_used_mib {
        let total = p.ram_total_mib.map_or(String::new(), |t| format!(" / {t}"));
        parts.push(format!("RAM {:.0}{total} MiB peak", r.peak));
    }
    if let (Some(t), Some(s)) = (p.max_temp_c, &p.max_temp_sensor) {
        parts.push(format!("hottest {s} {t:.1} °C"));
    }
    parts.push(format!(
        "{} sample{} every {} ms",
        p.samples,
        if p.samples == 1 { "" } else { "s" },
        p.interval_ms
    ));
    if !p.note.is_empty() {
        parts.push(p.note.clone());
    }
    if p.unparsed_lines > 0 {
        parts.push(format!(
            "{} unreadable line{}",
            p.unparsed_lines,
            if p.unparsed_lines == 1 { "" } else { "s" }
        ));
    }
    if p.implausible_samples > 0 {
        parts.push(format!(
            "{} implausible sample{} dropped (first: {})",
            p.implausible_samples,
            if p.implausible_samples == 1 { "" } else { "s" },
            p.first_implausible.as_deref().unwrap_or("?")
        ));
    }
    parts.join(" · ")
}

/// `5.46 mJ/inference single-stream, 3.80 mJ/inference offline`; empty without energy.
pub(crate) fn energy_line(p: &PowerSummary) -> String {
    p.energy
        .iter()
        .map(|e| {
            format!(
                "{} mJ/inference {} ({} inferences in {} s at {})",
                num(e.mj_per_inference),
                e.scenario.replace('_', "-"),
                e.inferences,
                num(e.duration_s),
                watts(e.avg_power_mw)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `VDD_IN 4742 / 5100 mW, VDD_SOC 1446 / 1446 mW` (average / peak).
pub(crate) fn rails_line(p: &PowerSummary) -> String {
    p.rails
        .iter()
        .map(|r| format!("{} {:.0} / {:.0} mW", r.name, r.avg_mw, r.peak_mw))
        .collect::<Vec<_>>()
        .join(", ")
}

/// mJ per inference of one scenario, for tables: `5.46`, or `-`.
pub(crate) fn energy_cell(p: Option<&PowerSummary>, scenario: &str) -> Option<f64> {
    p?.energy
        .iter()
        .find(|e| e.scenario == scenario)
        .map(|e| e.mj_per_inference)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::schema::{
        AvgPeak, Energy, ModelResult, RailPower, SensorMax, TegrastatsStatus,
    };

    /// A power summary as an Orin Nano would give, for every format's tests.
    pub(crate) fn orin_power() -> PowerSummary {
        PowerSummary {
            samples: 42,
            interval_ms: 100,
            total_source: "VDD_IN".into(),
            total_avg_mw: Some(6120.0),
            total_peak_mw: Some(7010.0),
            rails: vec![
                RailPower {
                    name: "VDD_IN".into(),
                    avg_mw: 6120.0,
                    peak_mw: 7010.0,
                },
                RailPower {
                    name: "VDD_CPU_GPU_CV".into(),
                    avg_mw: 1480.0,
                    peak_mw: 2100.0,
                },
            ],
            gpu_load_pct: Some(AvgPeak {
                avg: 0.0,
                peak: 0.0,
            }),
            emc_load_pct: Some(AvgPeak {
                avg: 12.0,
                peak: 20.0,
            }),
            ram_used_mib: Some(AvgPeak {
                avg: 1900.0,
                peak: 1950.0,
            }),
            ram_total_mib: Some(7620),
            temperatures: vec![SensorMax {
                sensor: "tj".into(),
                max_c: 51.25,
            }],
            max_temp_c: Some(51.25),
            max_temp_sensor: Some("tj".into()),
            energy: vec![Energy {
                scenario: "single_stream".into(),
                avg_power_mw: 6120.0,
                duration_s: 2.0,
                inferences: 200,
                mj_per_inference: 61.2,
            }],
            ..PowerSummary::default()
        }
    }

    /// The fixture report measured on an Orin Nano with tegrastats, power on `lean`.
    pub(crate) fn on_orin(r: &mut Report) {
        r.machine.board = Some("NVIDIA Jetson Orin Nano Developer Kit (L4T R36.4.3)".into());
        r.tegrastats = Some(TegrastatsStatus {
            available: true,
            path: Some("/usr/bin/tegrastats".into()),
            interval_ms: 100,
            note: "sampled every 100 ms by /usr/bin/tegrastats".into(),
        });
        let lean: &mut ModelResult = &mut r.models[1];
        lean.power = Some(orin_power());
    }

    #[test]
    fn phrases() {
        let p = orin_power();
        let l = power_line(&p);
        assert!(
            l.starts_with("6.12 W avg, 7.01 W peak (VDD_IN) · GPU 0% avg"),
            "{l}"
        );
        assert!(l.contains("RAM 1950 / 7620 MiB peak"), "{l}");
        assert!(l.contains("hottest tj 51.2 °C"), "{l}");
        assert!(l.ends_with("42 samples every 100 ms"), "{l}");
        assert_eq!(
            energy_line(&p),
            "61.2 mJ/inference single-stream (200 inferences in 2.00 s at 6.12 W)"
        );
        assert_eq!(
            rails_line(&p),
            "VDD_IN 6120 / 7010 mW, VDD_CPU_GPU_CV 1480 / 2100 mW"
        );
        assert_eq!(energy_cell(Some(&p), "single_stream"), Some(61.2));
        assert_eq!(energy_cell(Some(&p), "offline"), None);
    }
}
