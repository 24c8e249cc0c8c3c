//! Human-readable numbers for tables and reports: thousands separators, decimal counts
//! (MACs, FLOP/s) and binary byte sizes; and the aligned text table ([`columns`]) every
//! terminal table is drawn with. One place, so every table prints alike.

/// `1403978` → `1,403,978`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Counts in decimal units: `950`, `56.6 K`, `1.40 M`, `19.49 G`.
pub fn count(n: u64) -> String {
    let v = n as f64;
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} K", v / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} M", v / 1e6),
        _ => format!("{:.2} G", v / 1e9),
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `4.0 MiB`, `1.25 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds as `45s`, `15m`, `15m 30s`, `1h 5m` (whole seconds, rounded up).
pub fn duration(secs: f64) -> String {
    let t = if secs.is_finite() && secs > 0.0 {
        secs.ceil() as u64
    } else {
        0
    };
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Parse a duration: `90s`, `15m`, `1.5h`, `1h30m`, `20` (minutes). At most a week.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let bad = || format!("invalid duration {s:?}: expected e.g. 90s, 15m, 1h30m");
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if t.is_empty() {
        return Err(bad());
    }
    let (mut total, mut num) = (0.0f64, String::new());
    for c in t.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => return Err(bad()),
        };
        let v: f64 = num.parse().map_err(|_| bad())?;
        total += v * mult;
        num.clear();
    }
    if !num.is_empty() {
        if total > 0.0 {
            return Err(bad());
        }
        total = num.parse::<f64>().map_err(|_| bad())? * 60.0;
    }
    if !(total.is_finite() && total > 0.0 && total <= 7.0 * 86400.0) {
        return Err(format!(
            "invalid duration {s:?}: more than 0 and at most a week"
        ));
    }
    Ok(total)
}

/// Parse a byte size: `512MiB`, `2 GiB`, `1.5GB`, `800M`, `4096` (bytes). Binary units
/// (KiB/MiB/GiB, and the bare K/M/G) are powers of 1024; KB/MB/GB are powers of 1000.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 512MiB or 2GiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {other:?} (use KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    let bytes = v * mult;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(format!("invalid size {s:?}: must be at least 1 byte"));
    }
    Ok(bytes.round() as u64)
}

/// How a table's header is set off from its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Nothing.
    None,
    /// Dashes under each column.
    PerColumn,
    /// One line of dashes across the whole table.
    Full,
}

/// A text table: `head` and every row in columns as wide as their widest cell (in
/// characters), two spaces apart; the columns marked in `right` aligned right (figures),
/// the others left; no trailing spaces.
pub fn columns<R: AsRef<[String]>>(
    head: &[&str],
    right: &[bool],
    rows: &[R],
    rule: Rule,
) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (j, (cell, w)) in cells.zip(&width).enumerate() {
            if j > 0 {
                s.push_str("  ");
            }
            let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
            if right.get(j).copied().unwrap_or(false) {
                s.push_str(&pad);
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&pad);
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut head.iter().copied());
    match rule {
        Rule::None => {}
        Rule::PerColumn => {
            let dashes: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&line(&mut dashes.iter().map(String::as_str)));
        }
        Rule::Full => {
            let len = width.iter().sum::<usize>() + 2 * width.len().saturating_sub(1);
            out.push_str(&"-".repeat(len));
            out.push('\n');
        }
    }
    for row in rows {
        out.push_str(&line(&mut row.as_ref().iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("15m"), Ok(900.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("1.5h"), Ok(5400.0));
        assert_eq!(parse_duration("20"), Ok(1200.0));
        for bad in ["", "0s", "10x", "m", "5m3", "-5m", "9999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(duration(45.2), "46s");
        assert_eq!(duration(900.0), "15m");
        assert_eq!(duration(930.0), "15m 30s");
        assert_eq!(duration(3900.0), "1h 5m");
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2 GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("800M"), Ok(800 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("12 parsecs").unwrap_err().contains("parsecs"));
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("0").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_403_978), "1,403,978");
        assert_eq!(thousands(7_261_450), "7,261,450");
        assert_eq!(count(950), "950");
        assert_eq!(count(1_403_978), "1.40 M");
        assert_eq!(count(19_490_000_000), "19.49 G");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(4 << 20), "4.0 MiB");
    }

    #[test]
    fn columns_align_by_characters() {
        let rows = [
            ["conv1".to_string(), "1,024".to_string(), "—".to_string()],
            ["c".to_string(), "7".to_string(), "ü".to_string()],
        ];
        let t = columns(
            &["layer", "params", "x"],
            &[false, true, false],
            &rows,
            Rule::PerColumn,
        );
        assert_eq!(
            t,
            "layer  params  x\n-----  ------  -\nconv1   1,024  —\nc           7  ü\n"
        );
        let t = columns(
            &["a", "bb"],
            &[true, false],
            &[["xyz".to_string(), String::new()]],
            Rule::Full,
        );
        assert_eq!(t, "  a  bb\n-------\nxyz\n");
        assert_eq!(
            columns::<[String; 0]>(&["only"], &[], &[], Rule::None),
            "only\n"
        );
    }
}
