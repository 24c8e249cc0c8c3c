//! The boards as `edgebench targets` prints them: a table of every target with its
//! budgets and provider order ([`table`]), and every field of one ([`Board::text`]).

use std::fmt::Write as _;

use super::Board;
use crate::units;

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// One row per target, then which board this machine is (`detected`, as
/// [`super::detect`] returns it).
pub fn table(targets: &[Board], detected: Option<&(String, Option<String>)>) -> String {
    let header = [
        "target",
        "JetPack",
        "glibc",
        "CUDA",
        "memory",
        "p90 ms",
        "min img/s",
        "EP order",
    ];
    let rows: Vec<[String; 8]> = targets
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                or_dash(t.jetpack.as_deref()),
                or_dash(t.glibc.as_deref()),
                or_dash(t.cuda.as_deref()),
                or_dash(t.budget.memory_mib.map(|m| format!("{m} MiB"))),
                or_dash(t.budget.p90_latency_ms),
                or_dash(t.budget.min_throughput_ips),
                t.ep.join(","),
            ]
        })
        .collect();
    // Name and EP order read left to right; the figures line up on the right.
    let right = [false, true, true, true, true, true, true, false];
    let mut s = units::columns(&header, &right, &rows, units::Rule::None);
    s.push('\n');
    s.push_str(&match detected {
        Some((board, Some(t))) => format!("this machine: {board} → --target {t}\n"),
        Some((board, None)) => {
            format!("this machine: {board} (no built-in target; pass a .toml)\n")
        }
        None => "this machine is not a Jetson: figures measured here are the host's\n".into(),
    });
    s.push_str("budgets are per model process; `edgebench targets show NAME` for every field\n");
    s
}

impl Board {
    /// Every field, one per line under the name and description.
    pub fn text(&self) -> String {
        let b = &self.budget;
        let mut s = format!("{} — {}\n", self.name, self.description);
        for (k, v) in [
            ("triple", self.triple.clone()),
            ("glibc", or_dash(self.glibc.as_deref())),
            ("JetPack", or_dash(self.jetpack.as_deref())),
            ("L4T", or_dash(self.l4t.as_deref())),
            ("CUDA", or_dash(self.cuda.as_deref())),
            (
                "memory",
                or_dash(self.memory_total_mib.map(|m| format!("{m} MiB"))),
            ),
            ("EP order", self.ep.join(", ")),
            (
                "budget: memory",
                b.memory_mib.map_or("none".into(), |m| {
                    format!("{m} MiB peak RSS per model process")
                }),
            ),
            (
                "budget: p90",
                b.p90_latency_ms
                    .map_or("none".into(), |l| format!("{l} ms (SingleStream, batch 1)")),
            ),
            (
                "budget: throughput",
                b.min_throughput_ips.map_or("none".into(), |i| {
                    format!("at least {i} images/s (Offline)")
                }),
            ),
        ] {
            let _ = writeln!(s, "  {k:<19} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_target_and_names_the_machine() {
        let targets = super::super::builtin();
        let t = table(&targets, None);
        assert!(t.starts_with("target "), "{t}");
        for b in &targets {
            assert!(
                t.lines().any(|l| l.starts_with(&b.name)),
                "{} in {t}",
                b.name
            );
        }
        assert!(t.contains("not a Jetson"), "{t}");
        let detected = (
            "NVIDIA Jetson Orin Nano".to_string(),
            Some("jetson-orin-nano".into()),
        );
        let t = table(&targets, Some(&detected));
        assert!(
            t.contains("this machine: NVIDIA Jetson Orin Nano → --target jetson-orin-nano"),
            "{t}"
        );
    }

    #[test]
    fn one_target_shows_every_budget_or_none() {
        let mut b = super::super::resolve("jetson-orin-nano").unwrap();
        let t = b.text();
        assert!(
            t.contains("  budget: p90         33.3 ms (SingleStream, batch 1)"),
            "{t}"
        );
        b.budget = Default::default();
        b.glibc = None;
        let t = b.text();
        assert!(t.contains("  budget: memory      none"), "{t}");
        assert!(t.contains("  glibc               -\n"), "{t}");
    }
}
