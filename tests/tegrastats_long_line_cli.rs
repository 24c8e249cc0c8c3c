//! A `tegrastats` that prints a 300 MB line without a line feed must not make
//! edgebench hold it: lines are capped at 64 KiB, the rest of a longer one is
//! discarded and counted as unreadable. The test stands alone in its binary so that the
//! largest resident size of its children is edgebench's (and its workers').

mod common;

use common::{ok_env, orin_nano_line, tegrastats_script};
use edgebench_runtime::report::schema::Report;

/// The largest resident size of any waited-for child (and its descendants), bytes.
fn children_max_rss() -> u64 {
    // Safety: getrusage only writes the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(r, 0);
    u64::try_from(usage.ru_maxrss).unwrap() * 1024
}

#[test]
fn a_300_mb_line_is_discarded_and_counted_without_growing_memory() {
    let dir = tempfile::tempdir().unwrap();
    let real = orin_nano_line();
    let fake = tegrastats_script(
        dir.path(),
        &format!(
            "head -c 300000000 /dev/zero | tr '\\0' 7\n\
             while true; do echo; echo '{real}'; sleep 0.02; done\n"
        ),
    );
    let args = [
        "bench",
        "lean",
        "--json",
        "-",
        "--size",
        "32x32x3",
        "--scenario",
        "single-stream",
        "--min-duration",
        "3",
        "--warmup-time",
        "0",
        "--tegrastats-interval",
        "20",
        "--quiet",
    ];
    let (out, _) = ok_env(&args, &[("EDGEBENCH_TEGRASTATS", &fake)]);
    let rss = children_max_rss();
    assert!(
        rss < 200 << 20,
        "edgebench or a child reached {} MiB",
        rss >> 20
    );
    let r: Report = serde_json::from_str(&out).unwrap();
    let p = r.models[0].power.as_ref().unwrap();
    assert_eq!(p.unparsed_lines, 1, "{p:?}");
    assert!(
        p.first_unparsed
            .as_deref()
            .unwrap()
            .contains("longer than 64 KiB"),
        "{p:?}"
    );
    // The lines after it are read as usual (whether any arrived within the timed runs
    // depends on how fast the 300 MB went through the pipe).
    assert!(p.samples == 0 || p.total_avg_mw == Some(4742.0), "{p:?}");
}
