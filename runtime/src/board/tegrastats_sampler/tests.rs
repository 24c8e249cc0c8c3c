//! Tests of the tegrastats sampler: summaries, a fake tegrastats run and cut into
//! windows, capped lines, implausible samples, a tegrastats that fails.

use super::*;

const ORIN_NANO: &str = include_str!("../../../../tests/fixtures/tegrastats/r36-orin-nano.txt");
const AGX_ORIN: &str = include_str!("../../../../tests/fixtures/tegrastats/r36-agx-orin.txt");
const TX2: &str = include_str!("../../../../tests/fixtures/tegrastats/r32-tx2.txt");

fn lines(text: &str) -> Vec<TegraLine> {
    text.lines().map(|l| parse_line(l).unwrap()).collect()
}

#[test]
fn summary_averages_and_peaks() {
    let l = lines(ORIN_NANO);
    let p = summarise(l.iter(), 100);
    assert_eq!(p.samples, 2);
    assert_eq!(p.total_source, "VDD_IN");
    assert_eq!(p.total_avg_mw, Some((4742.0 + 2957.0) / 2.0));
    assert_eq!(p.total_peak_mw, Some(4742.0));
    assert_eq!(p.rails.len(), 3);
    assert_eq!(p.rails[2].name, "VDD_SOC");
    assert_eq!(p.rails[2].peak_mw, 1446.0);
    assert_eq!(p.ram_used_mib.map(|r| r.peak), Some(3645.0));
    assert_eq!(p.ram_total_mib, Some(7620));
    assert_eq!(p.gpu_load_pct.map(|g| g.avg), Some(0.0));
    // EMC only in the second line.
    assert_eq!(p.emc_load_pct.map(|e| e.avg), Some(0.0));
    // cpu and tj tie at 46.125 °C; the last one printed is named.
    assert_eq!(p.max_temp_sensor.as_deref(), Some("tj"));
    assert_eq!(p.max_temp_c, Some(46.125));
    assert!(p.note.is_empty());
    assert_eq!(p.energy_per_item_mj(2.0, 100), Some(3849.5 * 2.0 / 100.0));
}

#[test]
fn summed_rails_and_placeholder_sensors() {
    let p = summarise(lines(AGX_ORIN).iter(), 1000);
    assert_eq!(p.total_source, "sum of rails");
    let sums = [
        2412.0 + 1607.0 + 4707.0,
        2412.0 + 1607.0 + 4607.0,
        2412.0 + 1607.0 + 4707.0,
    ];
    assert_eq!(p.total_avg_mw, Some(sums.iter().sum::<f64>() / 3.0));
    // TX2: PMIC@100C is a placeholder, BCPU@-45C a sensor that is off.
    let p = summarise(lines(TX2).iter(), 1000);
    assert_eq!(p.max_temp_sensor.as_deref(), Some("AO"));
    assert_eq!(p.max_temp_c, Some(47.5));
    assert!(p.temperatures.iter().any(|s| s.sensor == "PMIC"));
    let empty = summarise(std::iter::empty(), 100);
    assert!(
        empty.note.contains("no tegrastats sample"),
        "{}",
        empty.note
    );
    assert_eq!(empty.energy_per_item_mj(1.0, 1), None);
}

#[test]
fn sampler_runs_a_fake_tegrastats_and_cuts_windows() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tegrastats");
    let first = ORIN_NANO.lines().next().unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = --interval ] || exit 2\necho 'not a stats line'\n\
             while true; do echo '{first}'; sleep 0.02; done\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = Tegrastats { path: script };
    let sampler = t.spawn(Duration::from_millis(20)).unwrap();
    let start = Instant::now();
    while sampler.samples_so_far() < 5 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mid = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    let rec = sampler.finish();
    assert!(rec.samples.len() >= 5, "{}", rec.samples.len());
    assert_eq!(rec.unparsed, 1);
    assert!(
        rec.first_error
            .as_deref()
            .unwrap()
            .contains("not a tegrastats line")
    );
    let all = rec.summary();
    assert_eq!(all.total_avg_mw, Some(4742.0));
    assert_eq!(all.unparsed_lines, 1);
    let before = rec.between(&[(start - Duration::from_secs(60), mid)]);
    let after = rec.between(&[(mid, Instant::now())]);
    assert_eq!(before.samples + after.samples, all.samples);
    assert!(before.samples >= 5);
    assert_eq!(rec.exited_early, None);
}

#[test]
fn lines_are_capped_and_the_rest_of_a_long_line_discarded() {
    let input: &[u8] = b"short\n0123456789abcdef\nnext\n\nlast";
    let mut lines = CappedLines::new(input, 8);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    while let Some(kind) = lines.next_line(&mut buf).unwrap() {
        got.push((kind, String::from_utf8_lossy(&buf).into_owned()));
    }
    let c = |t: &str| (LineKind::Complete, t.to_string());
    assert_eq!(
        got,
        [
            c("short"),
            (LineKind::TooLong, String::new()),
            c("next"),
            c(""),
            c("last")
        ]
    );
}

#[test]
fn a_300_mb_line_without_a_line_feed_keeps_memory_bounded() {
    // Read through an 8 KiB BufReader, as the pipe is: nothing holds the line.
    let long = std::io::Read::take(std::io::repeat(b'7'), 300 << 20);
    let tail: &[u8] = b"\nRAM 1905/7620MB VDD_IN 4742mW/4742mW\n";
    let reader = BufReader::new(std::io::Read::chain(long, tail));
    let mut lines = CappedLines::new(reader, MAX_LINE_BYTES);
    let mut buf = Vec::new();
    assert_eq!(lines.next_line(&mut buf).unwrap(), Some(LineKind::TooLong));
    assert!(
        buf.capacity() <= MAX_LINE_BYTES + 8192,
        "{}",
        buf.capacity()
    );
    assert_eq!(lines.next_line(&mut buf).unwrap(), Some(LineKind::Complete));
    assert!(
        buf.capacity() <= MAX_LINE_BYTES + 8192,
        "{}",
        buf.capacity()
    );
    let l = parse_line(&String::from_utf8_lossy(&buf)).unwrap();
    assert_eq!(l.total_power_mw().map(|p| p.0), Some(4742.0));
    assert_eq!(lines.next_line(&mut buf).unwrap(), None);
}

#[test]
fn implausible_samples_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tegrastats");
    let first = ORIN_NANO.lines().next().unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho 'RAM 5/0MB VDD_IN 4000mW/4000mW'\n\
             echo 'VDD_IN 99999999999999999999999mW/1mW'\n\
             while true; do echo '{first}'; sleep 0.02; done\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sampler = Tegrastats { path: script }
        .spawn(Duration::from_millis(20))
        .unwrap();
    let start = Instant::now();
    while sampler.samples_so_far() < 3 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let p = sampler.stop();
    assert!(p.samples >= 3, "{p:?}");
    assert_eq!(p.implausible_samples, 2, "{p:?}");
    assert!(
        p.first_implausible
            .as_deref()
            .unwrap()
            .contains("RAM 5/0MB"),
        "{p:?}"
    );
    // Only the real readings count.
    assert_eq!(p.total_peak_mw, Some(4742.0));
    assert_eq!(p.ram_total_mib, Some(7620));
    assert_eq!(p.unparsed_lines, 0);
}

#[test]
fn a_tegrastats_that_fails_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tegrastats");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'Error: must be run as root' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sampler = Tegrastats { path: script }
        .spawn(Duration::from_millis(20))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let p = sampler.stop();
    assert_eq!(p.samples, 0);
    assert!(p.note.contains("no tegrastats sample"), "{}", p.note);
    assert!(p.note.contains("tegrastats ended early"), "{}", p.note);
    assert!(p.note.contains("must be run as root"), "{}", p.note);
}
