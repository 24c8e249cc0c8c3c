//! Learning-rate schedules: constant, step decay, cosine annealing and linear warm-up,
//! composable, and parsed from command-line strings.
//!
//! A [`Schedule`] is a pure function of the optimizer step (counted from 0), so a
//! checkpoint needs only the step and the spec string ([`Schedule`]'s `Display` writes
//! back a string that [`Schedule::parse`] reads). Grammar (parts joined by `+`, every
//! part but the last a warm-up wrapping the rest):
//!
//! - `constant`: the base learning rate throughout;
//! - `step:N[:GAMMA]`: multiply by `GAMMA` (default 0.1) every `N` steps;
//! - `cosine:T[:MIN]`: cosine annealing from the base rate to `MIN` (default 0) over
//!   `T` steps, then `MIN`;
//! - `warmup:W+REST`: for the first `W` steps a linear ramp `(s+1)/W` times `REST`'s
//!   first rate, then `REST` starting at its own step 0 (so `warmup:100+cosine:1000`
//!   lasts 1,100 steps). `warmup:W` alone warms up to a constant rate.

use std::fmt;

use crate::error::{Error, Result};

/// A learning-rate schedule (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// The same rate at every step.
    Constant {
        /// The rate.
        lr: f32,
    },
    /// `lr · gamma^⌊step / every⌋`.
    Step {
        /// Initial rate.
        lr: f32,
        /// Steps between decays (> 0).
        every: u64,
        /// Decay factor.
        gamma: f32,
    },
    /// `min + (lr − min)·(1 + cos(π·min(step, steps)/steps))/2`.
    Cosine {
        /// Initial rate.
        lr: f32,
        /// Final rate, reached at `steps` and kept after.
        min_lr: f32,
        /// Length of the annealing (> 0).
        steps: u64,
    },
    /// A linear ramp over `steps` steps into `inner`, which then starts at its step 0.
    Warmup {
        /// Length of the ramp (> 0).
        steps: u64,
        /// The schedule after the ramp.
        inner: Box<Schedule>,
    },
}

impl Schedule {
    /// The learning rate at optimizer step `step` (0-based).
    pub fn lr(&self, step: u64) -> f32 {
        match self {
            Schedule::Constant { lr } => *lr,
            Schedule::Step { lr, every, gamma } => {
                let k = step / (*every).max(1);
                let k = i32::try_from(k).unwrap_or(i32::MAX);
                (f64::from(*lr) * f64::from(*gamma).powi(k)) as f32
            }
            Schedule::Cosine { lr, min_lr, steps } => {
                let t = (*steps).max(1);
                let frac = step.min(t) as f64 / t as f64;
                let (lr, min) = (f64::from(*lr), f64::from(*min_lr));
                (min + (lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())) as f32
            }
            Schedule::Warmup { steps, inner } => {
                if step < *steps {
                    let ramp = (step + 1) as f64 / *steps as f64;
                    (f64::from(inner.lr(0)) * ramp) as f32
                } else {
                    inner.lr(step - steps)
                }
            }
        }
    }

    /// The base learning rate (the rate after any warm-up, at the schedule's start).
    pub fn base_lr(&self) -> f32 {
        match self {
            Schedule::Constant { lr } | Schedule::Step { lr, .. } | Schedule::Cosine { lr, .. } => {
                *lr
            }
            Schedule::Warmup { inner, .. } => inner.base_lr(),
        }
    }

    /// Parses a command-line spec (`constant`, `step:30:0.1`, `cosine:1000`,
    /// `warmup:100+cosine:1000`, …) with base learning rate `base_lr`.
    pub fn parse(spec: &str, base_lr: f32) -> Result<Schedule> {
        if !(base_lr.is_finite() && base_lr >= 0.0) {
            return Err(Error::Invalid(format!(
                "learning rate {base_lr} must be finite and not negative"
            )));
        }
        let err = |part: &str, why: String| {
            Error::Invalid(format!(
                "learning-rate schedule {spec:?}: part {part:?}: {why}"
            ))
        };
        let parts: Vec<&str> = spec.split('+').map(str::trim).collect();
        let (last, wrappers) = parts.split_last().unwrap_or((&"", &[]));
        let mut schedule = parse_part(last, base_lr, &err)?;
        for part in wrappers.iter().rev() {
            match parse_part(part, base_lr, &err)? {
                Schedule::Warmup { steps, .. } => {
                    schedule = Schedule::Warmup {
                        steps,
                        inner: Box::new(schedule),
                    };
                }
                _ => {
                    return Err(err(
                        part,
                        "only warmup:W can come before a '+' (it wraps the schedule after it)"
                            .into(),
                    ));
                }
            }
        }
        Ok(schedule)
    }
}

/// Parses one `+`-separated part; a `warmup` part gets a constant inner schedule.
fn parse_part(part: &str, base_lr: f32, err: &dyn Fn(&str, String) -> Error) -> Result<Schedule> {
    let fields: Vec<&str> = part.split(':').map(str::trim).collect();
    let count = |s: &str, what: &str| -> Result<u64> {
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(err(part, format!("{what} {s:?} is not a positive integer"))),
        }
    };
    let number = |s: &str, what: &str| -> Result<f32> {
        match s.parse::<f32>() {
            Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(err(
                part,
                format!("{what} {s:?} is not a finite non-negative number"),
            )),
        }
    };
    let arity = |min: usize, max: usize, usage: &str| -> Result<()> {
        let args = fields.len() - 1;
        if (min..=max).contains(&args) {
            Ok(())
        } else {
            Err(err(part, format!("expected {usage}")))
        }
    };
    match fields[0] {
        "constant" => {
            arity(0, 0, "`constant` with no arguments")?;
            Ok(Schedule::Constant { lr: base_lr })
        }
        "step" => {
            arity(1, 2, "step:N[:GAMMA]")?;
            let every = count(fields[1], "step interval")?;
            let gamma = match fields.get(2) {
                Some(g) => number(g, "decay factor")?,
                None => 0.1,
            };
            Ok(Schedule::Step {
                lr: base_lr,
                every,
                gamma,
            })
        }
        "cosine" => {
            arity(1, 2, "cosine:T[:MIN]")?;
            let steps = count(fields[1], "annealing length")?;
            let min_lr = match fields.get(2) {
                Some(m) => number(m, "minimum learning rate")?,
                None => 0.0,
            };
            if min_lr > base_lr {
                return Err(err(
                    part,
                    format!("minimum learning rate {min_lr} is above the base rate {base_lr}"),
                ));
            }
            Ok(Schedule::Cosine {
                lr: base_lr,
                min_lr,
                steps,
            })
        }
        "warmup" => {
            arity(1, 1, "warmup:W")?;
            let steps = count(fields[1], "warm-up length")?;
            Ok(Schedule::Warmup {
                steps,
                inner: Box::new(Schedule::Constant { lr: base_lr }),
            })
        }
        other => Err(err(
            part,
            format!("unknown schedule {other:?} (expected constant, step, cosine or warmup)"),
        )),
    }
}

impl fmt::Display for Schedule {
    /// Writes the spec string (without the base rate) that [`Schedule::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant { .. } => write!(f, "constant"),
            Schedule::Step { every, gamma, .. } => write!(f, "step:{every}:{gamma}"),
            Schedule::Cosine { min_lr, steps, .. } => write!(f, "cosine:{steps}:{min_lr}"),
            Schedule::Warmup { steps, inner } => match inner.as_ref() {
                Schedule::Constant { .. } => write!(f, "warmup:{steps}"),
                inner => write!(f, "warmup:{steps}+{inner}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f32, want: f32) {
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "got {got}, want {want}"
        );
    }

    #[test]
    fn constant_and_step_decay() {
        let c = Schedule::parse("constant", 0.5).unwrap();
        for s in [0, 1, 1000, u64::MAX] {
            assert_eq!(c.lr(s), 0.5);
        }
        // lr · 0.1^⌊s/30⌋: 0.1 for steps 0..29, 0.01 for 30..59, 0.001 from 60.
        let s = Schedule::parse("step:30:0.1", 0.1).unwrap();
        close(s.lr(0), 0.1);
        close(s.lr(29), 0.1);
        close(s.lr(30), 0.01);
        close(s.lr(59), 0.01);
        close(s.lr(60), 0.001);
        // Default gamma 0.1; gamma 0.5 halves.
        assert_eq!(Schedule::parse("step:30", 0.1).unwrap(), s);
        let h = Schedule::parse("step:10:0.5", 1.0).unwrap();
        close(h.lr(25), 0.25);
    }

    #[test]
    fn cosine_annealing() {
        // min + (lr − min)(1 + cos(π s/T))/2 with lr = 0.1, T = 1000.
        let c = Schedule::parse("cosine:1000", 0.1).unwrap();
        close(c.lr(0), 0.1); // cos 0 = 1
        close(c.lr(500), 0.05); // cos π/2 = 0
        close(
            c.lr(250),
            0.1 * (1.0 + std::f32::consts::FRAC_1_SQRT_2) / 2.0,
        );
        close(c.lr(1000), 0.0); // cos π = −1
        close(c.lr(5000), 0.0); // stays at the minimum
        let m = Schedule::parse("cosine:100:0.01", 0.1).unwrap();
        close(m.lr(0), 0.1);
        close(m.lr(50), 0.055);
        close(m.lr(100), 0.01);
        close(m.lr(200), 0.01);
    }

    #[test]
    fn warmup_ramps_then_hands_over() {
        // warmup:4 → (s+1)/4 · lr for s < 4, then the inner schedule from its step 0.
        let w = Schedule::parse("warmup:4+cosine:100", 0.2).unwrap();
        close(w.lr(0), 0.05);
        close(w.lr(1), 0.1);
        close(w.lr(2), 0.15);
        close(w.lr(3), 0.2);
        close(w.lr(4), 0.2); // cosine's step 0
        close(w.lr(54), 0.1); // cosine's step 50
        close(w.lr(104), 0.0); // cosine's step 100
        let wc = Schedule::parse("warmup:10", 1.0).unwrap();
        close(wc.lr(4), 0.5);
        close(wc.lr(9), 1.0);
        close(wc.lr(1000), 1.0);
        let ws = Schedule::parse("warmup:2 + step:5:0.5", 1.0).unwrap();
        close(ws.lr(0), 0.5);
        close(ws.lr(7), 0.5); // step schedule's step 5
        assert_eq!(ws.base_lr(), 1.0);
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "constant",
            "step:30:0.1",
            "cosine:1000:0",
            "cosine:50:0.001",
            "warmup:100",
            "warmup:100+cosine:1000:0",
            "warmup:10+warmup:5+step:3:0.5",
        ] {
            let s = Schedule::parse(spec, 0.1).unwrap();
            assert_eq!(s.to_string(), spec);
            assert_eq!(Schedule::parse(&s.to_string(), 0.1).unwrap(), s);
        }
    }

    #[test]
    fn bad_specs_name_the_bad_part() {
        let msg = |spec: &str| match Schedule::parse(spec, 0.1) {
            Err(Error::Invalid(m)) => m,
            other => panic!("{spec}: expected Error::Invalid, got {other:?}"),
        };
        for (spec, part) in [
            ("", "\"\""),
            ("cosine", "\"cosine\""),
            ("cosine:abc", "\"abc\""),
            ("cosine:0", "\"0\""),
            ("cosine:10:1.0", "above the base rate"),
            ("step:30:-1", "\"-1\""),
            ("step:30:0.1:7", "step:N[:GAMMA]"),
            ("warmup:x+cosine:1000", "\"warmup:x\""),
            ("warmup:10+linear:5", "\"linear\""),
            ("cosine:100+warmup:10", "only warmup:W"),
            ("constant:3", "no arguments"),
            ("step:nan", "\"nan\""),
        ] {
            let m = msg(spec);
            assert!(m.contains(part), "{spec}: {m}");
        }
        assert!(Schedule::parse("constant", f32::NAN).is_err());
        assert!(Schedule::parse("constant", -1.0).is_err());
    }
}
