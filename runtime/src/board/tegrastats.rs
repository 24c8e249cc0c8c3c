//! A parser for the lines NVIDIA's `tegrastats` prints on a Jetson, one per interval,
//! across the L4T generations:
//!
//! - R32 (JetPack 4: Nano, TX2, Xavier): `RAM 2207/3956MB (lfb 1x4MB) ... CPU
//!   [12%@1479,...] EMC_FREQ 0%@1600 GR3D_FREQ 0%@921 ... CPU@36C ... POM_5V_IN
//!   2389/2389` — power rails without a unit (mW);
//! - R35 (JetPack 5: Xavier, Orin): `EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] ... CPU@40.25C
//!   ... VDD_IN 4867mW/4867mW`, often after a `MM-DD-YYYY HH:MM:SS` time stamp;
//! - R36 (JetPack 6: Orin): `GR3D_FREQ 0% cpu@50.5C soc2@48.2C ... VDD_IN
//!   4811mW/4811mW`; R39 adds a third figure per rail (`now/avg/max`) and `now/max`
//!   temperatures.
//!
//! [`parse_line`] reads RAM and SWAP, per-core CPU load and frequency (`off` for a core
//! that is powered down), EMC and GR3D (GPU) load, every temperature sensor and every
//! power rail (current and average, mW). Tokens it does not know (engines such as
//! `NVENC`, `APE 25`, `MTS fg 0% bg 0%`) are kept in [`TegraLine::unknown`]; a line in
//! which nothing is recognised is an error. [`TegraLine::implausible`] says why a line
//! that parses cannot be a real reading (a rail of 10²³ mW, `RAM 5/0MB`). The parser
//! never panics on any input ([`fuzz_one`], the body of the `tegrastats` fuzz target,
//! runs over random mutations of real lines in a test).
//!
//! The background sampler that runs `tegrastats` during a benchmark is in
//! `tegrastats_sampler`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Used and total memory, MiB (tegrastats prints `MB`, meaning MiB).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemUse {
    pub used_mib: u64,
    pub total_mib: u64,
}

/// One CPU core: its load at its current frequency, or powered down.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum CpuCore {
    /// Load in percent; frequency in MHz when printed (`12%@1479`; R28's `[12%,..]@1479`).
    Online {
        load_pct: f64,
        freq_mhz: Option<u32>,
    },
    /// `off`: the core is powered down.
    Off,
}

/// One power rail: current and average power, mW (R32's unitless figures are mW too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rail {
    pub name: String,
    pub current_mw: f64,
    pub average_mw: f64,
}

/// Everything read from one tegrastats line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TegraLine {
    pub ram: Option<MemUse>,
    pub swap: Option<MemUse>,
    /// Every core, in order (`off` ones included).
    pub cpus: Vec<CpuCore>,
    /// External memory controller load, percent.
    pub emc_pct: Option<f64>,
    /// GR3D (the integrated GPU) load, percent. Thor's `GR3D_FREQ @[f,f,f]` has none.
    pub gr3d_pct: Option<f64>,
    /// `(sensor, °C)` in the order printed; the current figure of `now/max` pairs.
    pub temps: Vec<(String, f64)>,
    /// Power rails in the order printed.
    pub rails: Vec<Rail>,
    /// Tokens not understood (kept, not an error).
    pub unknown: Vec<String>,
}

/// Rails that measure the whole module's input, in order of preference: `VDD_IN`
/// (Xavier, Orin Nano/NX, TX2) and `POM_5V_IN` (Nano).
pub const INPUT_RAILS: [&str; 2] = ["VDD_IN", "POM_5V_IN"];

impl TegraLine {
    /// The total input power of this line, mW, and where it came from: the input rail
    /// when the board has one, else the sum of every rail (AGX Orin, Thor), as
    /// jetson-stats does. `None` when the line has no rail.
    pub fn total_power_mw(&self) -> Option<(f64, String)> {
        for name in INPUT_RAILS {
            if let Some(r) = self.rails.iter().find(|r| r.name == name) {
                return Some((r.current_mw, name.to_string()));
            }
        }
        if self.rails.is_empty() {
            return None;
        }
        Some((
            self.rails.iter().map(|r| r.current_mw).sum(),
            "sum of rails".to_string(),
        ))
    }

    /// Whether anything at all was recognised.
    fn recognised(&self) -> bool {
        self.ram.is_some()
            || self.swap.is_some()
            || !self.cpus.is_empty()
            || self.emc_pct.is_some()
            || self.gr3d_pct.is_some()
            || !self.temps.is_empty()
            || !self.rails.is_empty()
    }
}

/// The largest reading of one power rail taken as real, mW: no Jetson module draws
/// anywhere near a kilowatt, so a larger figure is a garbled line.
pub const MAX_RAIL_MW: f64 = 1_000_000.0;
/// The largest memory size taken as real, MiB (1 PiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 30;
/// Temperatures taken as real, °C: powered-down sensors print -256 °C on some boards (a
/// placeholder, left out of the hottest sensor), and nothing reads above 250 °C.
pub const TEMPERATURE_RANGE_C: std::ops::RangeInclusive<f64> = -300.0..=250.0;
/// The highest CPU frequency taken as real, MHz.
pub const MAX_CPU_MHZ: u32 = 100_000;

impl TegraLine {
    /// Why this line cannot be a real reading (a rail above [`MAX_RAIL_MW`], more RAM
    /// used than there is, an impossible temperature or frequency); `None` when every
    /// figure is plausible. Samples that are not are dropped, and counted.
    pub fn implausible(&self) -> Option<String> {
        for r in &self.rails {
            for v in [r.current_mw, r.average_mw] {
                if !(v.is_finite() && (0.0..=MAX_RAIL_MW).contains(&v)) {
                    return Some(format!(
                        "{} {v:e} mW is not a plausible power reading",
                        r.name
                    ));
                }
            }
        }
        for (what, m, zero_total_ok) in [("RAM", self.ram, false), ("SWAP", self.swap, true)] {
            let Some(m) = m else { continue };
            if (m.total_mib == 0 && !zero_total_ok)
                || m.used_mib > m.total_mib
                || m.total_mib > MAX_MEMORY_MIB
            {
                return Some(format!(
                    "{what} {}/{}MB is not a plausible memory reading",
                    m.used_mib, m.total_mib
                ));
            }
        }
        for (name, t) in &self.temps {
            if !TEMPERATURE_RANGE_C.contains(t) {
                return Some(format!("{name}@{t}C is not a plausible temperature"));
            }
        }
        for c in &self.cpus {
            if let CpuCore::Online {
                freq_mhz: Some(f), ..
            } = c
                && *f > MAX_CPU_MHZ
            {
                return Some(format!(
                    "a CPU core at {f} MHz is not a plausible frequency"
                ));
            }
        }
        None
    }
}

/// The `tegrastats` fuzz target's body: `data` read as the sampler reads tegrastats'
/// output (lines capped, here at 256 bytes so that the discarding of the rest of a
/// longer line is exercised), every line parsed and checked for plausibility. Panics only
/// when a figure that passed both is out of its range (errors are fine; a panic inside
/// the parser is the bug a fuzzer looks for).
pub fn fuzz_one(data: &[u8]) {
    use super::tegrastats_sampler::{CappedLines, LineKind};
    let mut lines = CappedLines::new(data, 256);
    let mut buf = Vec::new();
    while let Ok(Some(kind)) = lines.next_line(&mut buf) {
        assert!(buf.len() <= 256, "a line past the cap was kept");
        if kind == LineKind::TooLong {
            assert!(buf.is_empty());
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let Ok(l) = parse_line(&text) else { continue };
        for c in &l.cpus {
            if let CpuCore::Online { load_pct, .. } = c {
                assert!((0.0..=100.0).contains(load_pct), "{text}");
            }
        }
        for p in [l.gr3d_pct, l.emc_pct].into_iter().flatten() {
            assert!((0.0..=100.0).contains(&p), "{text}");
        }
        if l.implausible().is_some() {
            continue;
        }
        for r in &l.rails {
            assert!((0.0..=MAX_RAIL_MW).contains(&r.current_mw), "{text}");
            assert!((0.0..=MAX_RAIL_MW).contains(&r.average_mw), "{text}");
        }
        if let Some(m) = l.ram {
            assert!(m.used_mib <= m.total_mib && m.total_mib > 0, "{text}");
        }
        for (_, t) in &l.temps {
            assert!(t.is_finite(), "{text}");
        }
        if let Some((mw, _)) = l.total_power_mw() {
            assert!(mw.is_finite() && mw >= 0.0, "{text}");
        }
    }
}

/// Parse one tegrastats line. An error names what is wrong and quotes the start of the
/// line; unknown tokens are not errors.
pub fn parse_line(line: &str) -> Result<TegraLine> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let mut out = TegraLine::default();
    let mut i = 0;
    // An optional `MM-DD-YYYY HH:MM:SS` time stamp (R35 and later).
    while i < tokens.len() && i < 2 && is_timestamp_part(tokens[i]) {
        i += 1;
    }
    while i < tokens.len() {
        let tok = tokens[i];
        let next = tokens.get(i + 1).copied();
        let used = match (tok, next) {
            ("RAM", Some(v)) => mem(v).map(|m| {
                out.ram = Some(m);
                2 + parenthesised(&tokens[i + 2..])
            }),
            ("SWAP", Some(v)) => mem(v).map(|m| {
                out.swap = Some(m);
                2 + parenthesised(&tokens[i + 2..])
            }),
            ("CPU" | "cpu", Some(v)) if v.starts_with('[') => cpus(v).map(|c| {
                out.cpus = c;
                2
            }),
            ("EMC_FREQ" | "EMC", Some(v)) => load(v).map(|p| {
                out.emc_pct = p;
                2
            }),
            ("GR3D_FREQ" | "GR3D", Some(v)) => load(v).map(|p| {
                out.gr3d_pct = p;
                2
            }),
            (name, Some(v)) if is_rail_name(name) => rail(name, v).map(|r| {
                out.rails.push(r);
                2
            }),
            _ => temperature(tok).map(|t| {
                out.temps.push(t);
                1
            }),
        };
        match used {
            Some(n) => i += n,
            None => {
                out.unknown.push(tok.to_string());
                i += 1;
            }
        }
    }
    if !out.recognised() {
        let shown: String = line.trim().chars().take(60).collect();
        return Err(Error::Invalid(format!(
            "not a tegrastats line (no RAM, CPU, EMC, GR3D, temperature or power figure): {shown:?}"
        )));
    }
    Ok(out)
}

/// `07-09-2024` or `13:31:31`.
fn is_timestamp_part(t: &str) -> bool {
    let digits_with = |sep: char| {
        t.len() >= 5 && t.contains(sep) && t.chars().all(|c| c.is_ascii_digit() || c == sep)
    };
    digits_with('-') || digits_with(':')
}

/// How many of `rest` form a parenthesised group such as `(lfb 2x4MB)`,
/// `(cached 6MB)`: 0 when `rest` does not start with `(`.
fn parenthesised(rest: &[&str]) -> usize {
    if !rest.first().is_some_and(|t| t.starts_with('(')) {
        return 0;
    }
    rest.iter()
        .position(|t| t.ends_with(')'))
        .map_or(0, |end| (end + 1).min(3))
}

/// `2207/3956MB` (also `kB`/`GB`) → MiB.
fn mem(v: &str) -> Option<MemUse> {
    let (used, total) = v.split_once('/')?;
    let (digits, unit) = total.split_at(total.find(|c: char| !c.is_ascii_digit())?);
    let scale = |n: u64| -> Option<u64> {
        match unit {
            "MB" => Some(n),
            "GB" => n.checked_mul(1024),
            "kB" | "KB" => Some(n / 1024),
            _ => None,
        }
    };
    Some(MemUse {
        used_mib: scale(used.parse().ok()?)?,
        total_mib: scale(digits.parse().ok()?)?,
    })
}

/// `[12%@1479,3%@1479,off,off]` or R28's `[12%,3%]@1479`.
fn cpus(v: &str) -> Option<Vec<CpuCore>> {
    let inner_end = v.find(']')?;
    let inner = &v[1..inner_end];
    let shared_freq = match v[inner_end + 1..].strip_prefix('@') {
        Some(f) => Some(f.parse::<u32>().ok()?),
        None if v.len() == inner_end + 1 => None,
        None => return None,
    };
    let mut cores = Vec::new();
    for c in inner.split(',') {
        let c = c.trim();
        if c == "off" {
            cores.push(CpuCore::Off);
            continue;
        }
        let (load, freq) = match c.split_once('@') {
            Some((l, f)) => (l, Some(f.parse::<u32>().ok()?)),
            None => (c, shared_freq),
        };
        cores.push(CpuCore::Online {
            load_pct: percent(load)?,
            freq_mhz: freq,
        });
    }
    (!cores.is_empty()).then_some(cores)
}

/// `37%`, `37%@921`, `37%@[305,305]`: the load; `@[0,0,0]` or `@665` (no load printed):
/// `Some(None)`. Anything else: `None` (not this field).
fn load(v: &str) -> Option<Option<f64>> {
    let (pct, freq) = match v.split_once('@') {
        Some((p, f)) => (p, Some(f)),
        None => (v, None),
    };
    if let Some(f) = freq {
        let f = f.trim_start_matches('[').trim_end_matches(']');
        if f.is_empty() || !f.split(',').all(|x| x.parse::<u32>().is_ok()) {
            return None;
        }
    }
    if pct.is_empty() {
        return freq.map(|_| None);
    }
    percent(pct).map(Some)
}

/// `37%` → 37.0 (0–100).
fn percent(p: &str) -> Option<f64> {
    let v: f64 = p.strip_suffix('%')?.parse().ok()?;
    (0.0..=100.0).contains(&v).then_some(v)
}

/// Upper-case rail names: `VDD_IN`, `POM_5V_GPU`, `VIN_SYS_5V0`, `VDDQ_VDD2_1V8AO`, and
/// AGX Xavier's short ones (`GPU`, `CPU`, `SOC`, `CV`, `VDDRQ`, `SYS5V`).
fn is_rail_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `4867mW/4867mW`, `2389/2389` (R32: mW without a unit), `9761mW/9761mW/9761mW` (R39:
/// now/avg/max).
fn rail(name: &str, v: &str) -> Option<Rail> {
    let figures: Vec<f64> = v
        .split('/')
        .map(|f| {
            let f = f.strip_suffix("mW").unwrap_or(f);
            if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            f.parse::<f64>().ok()
        })
        .collect::<Option<_>>()?;
    if !(2..=3).contains(&figures.len()) {
        return None;
    }
    Some(Rail {
        name: name.to_string(),
        current_mw: figures[0],
        average_mw: figures[1],
    })
}

/// `CPU@36C`, `cpu@50.5C`, `BCPU@-45C`, `cpu@50C/50C` (R39: now/max) → (sensor, °C).
fn temperature(tok: &str) -> Option<(String, f64)> {
    let (name, value) = tok.split_once('@')?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let now = value.split('/').next()?.strip_suffix('C')?;
    let t: f64 = now.parse().ok()?;
    t.is_finite().then(|| (name.to_string(), t))
}

#[cfg(test)]
mod tests;
