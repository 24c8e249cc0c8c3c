//! Human-readable numbers for tables and reports: thousands separators, decimal counts
//! (MACs, FLOP/s) and binary byte sizes. One place, so every table prints alike.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
