//! Process memory from `/proc/self/status`: resident set size now (VmRSS) and its peak
//! (VmHWM). The peak can be reset to the current RSS (`/proc/self/clear_refs`, value 5,
//! Linux ≥ 4.0) so a phase's own peak can be read. On other systems every figure is 0
//! and [`supported`] says so.

use std::fs;

/// Current and peak resident set size, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rss {
    pub current: u64,
    pub peak: u64,
}

/// Whether RSS can be read on this system.
pub fn supported() -> bool {
    fs::metadata("/proc/self/status").is_ok()
}

/// Read the current and peak RSS of this process (zeros where unsupported).
pub fn rss() -> Rss {
    fs::read_to_string("/proc/self/status")
        .map(|s| parse_status(&s))
        .unwrap_or_default()
}

/// Reset the peak (VmHWM) to the current RSS. Returns false where the kernel refuses.
pub fn reset_peak() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Parse `VmRSS` and `VmHWM` (kB) out of a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Rss {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    let current = field("VmRSS:");
    Rss {
        current,
        peak: field("VmHWM:").max(current),
    }
}

/// Total physical memory in bytes (`MemTotal` of /proc/meminfo; 0 when unknown).
pub fn total_memory() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fixture() {
        let text =
            "Name:\tedgebench\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            parse_status(text),
            Rss {
                current: 10 << 20,
                peak: 20 << 20
            }
        );
        assert_eq!(parse_status("garbage"), Rss::default());
    }

    #[test]
    fn live_process_grows_with_a_touched_buffer() {
        if !supported() {
            return;
        }
        let before = rss();
        assert!(before.current > 0 && before.peak >= before.current);
        let mut v = vec![0u8; 64 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        let during = rss();
        assert!(
            during.peak >= before.current + (60 << 20),
            "{before:?} {during:?}"
        );
        std::hint::black_box(&v);
    }
}
