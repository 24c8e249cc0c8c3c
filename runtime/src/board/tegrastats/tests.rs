//! Tests of the tegrastats parser on real lines of every L4T generation
//! (`tests/fixtures/tegrastats/`, sources in its README), on garbage, and on random
//! mutations of the real lines (never a panic).

use super::*;

const R32_NANO: &str = include_str!("../../../../tests/fixtures/tegrastats/r32-nano.txt");
const R32_XAVIER_NX: &str = include_str!("../../../../tests/fixtures/tegrastats/r32-xavier-nx.txt");
const R32_TX2: &str = include_str!("../../../../tests/fixtures/tegrastats/r32-tx2.txt");
const R35_XAVIER_NX: &str = include_str!("../../../../tests/fixtures/tegrastats/r35-xavier-nx.txt");
const R35_ORIN_NANO: &str = include_str!("../../../../tests/fixtures/tegrastats/r35-orin-nano.txt");
const R36_ORIN_NANO: &str = include_str!("../../../../tests/fixtures/tegrastats/r36-orin-nano.txt");
const R36_ORIN_NX: &str = include_str!("../../../../tests/fixtures/tegrastats/r36-orin-nx.txt");
const R36_AGX_ORIN: &str = include_str!("../../../../tests/fixtures/tegrastats/r36-agx-orin.txt");
const R39_AGX_ORIN: &str = include_str!("../../../../tests/fixtures/tegrastats/r39-agx-orin.txt");
const R38_THOR: &str = include_str!("../../../../tests/fixtures/tegrastats/r38-thor.txt");

const ALL: [&str; 10] = [
    R32_NANO,
    R32_XAVIER_NX,
    R32_TX2,
    R35_XAVIER_NX,
    R35_ORIN_NANO,
    R36_ORIN_NANO,
    R36_ORIN_NX,
    R36_AGX_ORIN,
    R39_AGX_ORIN,
    R38_THOR,
];

fn line(file: &str, n: usize) -> TegraLine {
    let text = file.lines().nth(n).expect("fixture line");
    parse_line(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn rail<'a>(l: &'a TegraLine, name: &str) -> &'a Rail {
    l.rails
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no rail {name} in {:?}", l.rails))
}

fn temp(l: &TegraLine, name: &str) -> f64 {
    l.temps
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no sensor {name} in {:?}", l.temps))
}

fn online(load_pct: f64, freq_mhz: u32) -> CpuCore {
    CpuCore::Online {
        load_pct,
        freq_mhz: Some(freq_mhz),
    }
}

#[test]
fn r32_nano_rails_without_unit_are_mw() {
    let l = line(R32_NANO, 0);
    assert_eq!(
        l.ram,
        Some(MemUse {
            used_mib: 1923,
            total_mib: 3964
        })
    );
    assert_eq!(
        l.swap,
        Some(MemUse {
            used_mib: 191,
            total_mib: 1982
        })
    );
    assert_eq!(
        l.cpus,
        vec![
            online(5.0, 1224),
            online(4.0, 1224),
            online(3.0, 1224),
            online(6.0, 1224)
        ]
    );
    assert_eq!((l.emc_pct, l.gr3d_pct), (Some(0.0), Some(0.0)));
    assert_eq!(temp(&l, "CPU"), 40.0);
    assert_eq!(temp(&l, "thermal"), 40.0);
    assert_eq!(l.temps.len(), 6);
    let r = rail(&l, "POM_5V_IN");
    assert_eq!((r.current_mw, r.average_mw), (1750.0, 1628.0));
    assert_eq!(rail(&l, "POM_5V_CPU").average_mw, 406.0);
    assert_eq!(l.total_power_mw(), Some((1750.0, "POM_5V_IN".into())));
    // IRAM and APE are kept as unknown tokens, not errors.
    assert!(l.unknown.iter().any(|t| t == "IRAM"), "{:?}", l.unknown);
    assert!(l.unknown.iter().any(|t| t == "APE"), "{:?}", l.unknown);

    let l = line(R32_NANO, 1);
    assert_eq!(l.emc_pct, Some(10.0));
    assert_eq!(temp(&l, "CPU"), 60.5);
    assert_eq!(l.total_power_mw().map(|p| p.0), Some(4520.0));
    // `EMC_FREQ 0% GR3D_FREQ 0%`: load without a frequency.
    let l = line(R32_NANO, 2);
    assert_eq!((l.emc_pct, l.gr3d_pct), (Some(0.0), Some(0.0)));
    assert_eq!(rail(&l, "POM_5V_CPU").current_mw, 549.0);
}

#[test]
fn r32_xavier_and_tx2() {
    let l = line(R32_XAVIER_NX, 0);
    assert_eq!(l.cpus.len(), 6);
    assert_eq!(l.cpus[5], online(96.0, 1420));
    assert_eq!(l.emc_pct, Some(2.0));
    assert_eq!(rail(&l, "VDD_CPU_GPU_CV").current_mw, 2706.0);
    assert_eq!(l.total_power_mw(), Some((6140.0, "VDD_IN".into())));
    // `MTS fg 1% bg 9%` is unknown, and does not hide what follows it.
    assert!(l.unknown.iter().any(|t| t == "MTS"));
    assert_eq!(temp(&l, "AO"), 29.0);

    let l = line(R32_TX2, 0);
    assert_eq!(l.gr3d_pct, Some(37.0));
    assert_eq!(temp(&l, "BCPU"), -45.0);
    assert_eq!(temp(&l, "Tdiode"), 46.75);
    assert_eq!(l.rails.len(), 6);
    assert_eq!(rail(&l, "VDD_DDR").average_mw, 2702.0);
    assert_eq!(l.total_power_mw().map(|p| p.0), Some(14025.0));
}

#[test]
fn r35_time_stamp_units_and_bracketed_frequency() {
    let l = line(R35_XAVIER_NX, 0);
    assert_eq!(l.ram.map(|m| m.used_mib), Some(3168));
    assert_eq!(l.cpus[0], online(23.0, 1397));
    assert_eq!((l.emc_pct, l.gr3d_pct), (Some(2.0), Some(0.0)));
    let r = rail(&l, "VDD_IN");
    assert_eq!((r.current_mw, r.average_mw), (2763.0, 2846.0));
    assert_eq!(temp(&l, "CPU"), 46.5);
    assert!(
        !l.unknown.iter().any(|t| t.contains(':')),
        "{:?}",
        l.unknown
    );

    let l = line(R35_ORIN_NANO, 0);
    assert_eq!(l.cpus[4], CpuCore::Off);
    assert_eq!(l.cpus.iter().filter(|c| **c == CpuCore::Off).count(), 2);
    assert_eq!(temp(&l, "tj"), 46.968);
    assert_eq!(l.total_power_mw().map(|p| p.0), Some(4915.0));
    let l = line(R35_ORIN_NANO, 1);
    assert_eq!((l.emc_pct, l.gr3d_pct), (Some(43.0), Some(63.0)));
    assert_eq!(rail(&l, "VDD_SOC").current_mw, 2817.0);
}

#[test]
fn r36_orin_load_without_frequency_and_lower_case_sensors() {
    let l = line(R36_ORIN_NANO, 0);
    assert_eq!(l.gr3d_pct, Some(0.0));
    assert_eq!(l.emc_pct, None);
    assert_eq!(temp(&l, "cpu"), 46.125);
    assert_eq!(temp(&l, "soc1"), 46.0);
    assert_eq!(l.temps.len(), 6);
    assert_eq!(
        l.rails.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    );
    assert_eq!(l.total_power_mw(), Some((4742.0, "VDD_IN".into())));
    assert!(l.unknown.is_empty(), "{:?}", l.unknown);

    let l = line(R36_ORIN_NX, 0);
    assert_eq!(l.cpus.len(), 8);
    assert_eq!(temp(&l, "cv2"), 43.781);
    assert_eq!(rail(&l, "VDD_SOC").current_mw, 2464.0);
}

#[test]
fn agx_orin_and_thor_have_no_input_rail_so_rails_are_summed() {
    let l = line(R36_AGX_ORIN, 1);
    assert_eq!(l.cpus.len(), 12);
    assert_eq!(l.gr3d_pct, Some(0.0));
    assert_eq!(rail(&l, "VIN_SYS_5V0").average_mw, 4657.0);
    assert_eq!(
        l.total_power_mw(),
        Some((2412.0 + 1607.0 + 4607.0, "sum of rails".into()))
    );
    // R39: `now/avg/max` rails and `now/max` temperatures.
    let l = line(R39_AGX_ORIN, 0);
    let r = rail(&l, "VDD_CPU_CV");
    assert_eq!((r.current_mw, r.average_mw), (2643.0, 2643.0));
    assert_eq!(temp(&l, "soc1"), 49.0);
    assert_eq!(l.cpus.iter().filter(|c| **c == CpuCore::Off).count(), 4);
    // Thor: `GR3D_FREQ @[0,0,0]` prints no load.
    let l = line(R38_THOR, 0);
    assert_eq!(l.gr3d_pct, None);
    assert_eq!(l.emc_pct, Some(0.0));
    assert_eq!(l.cpus.len(), 14);
    assert_eq!(temp(&l, "soc345"), 34.5);
    let l = line(R38_THOR, 1);
    assert_eq!(temp(&l, "gpu"), 35.906);
    assert_eq!(
        l.total_power_mw().map(|p| p.0),
        Some(4925.0 + 8710.0 + 6767.0)
    );
}

#[test]
fn every_fixture_line_parses_with_ram_cpu_and_power() {
    for file in ALL {
        for text in file.lines().filter(|l| !l.trim().is_empty()) {
            let l = parse_line(text).unwrap_or_else(|e| panic!("{e}"));
            assert!(l.ram.is_some() && !l.cpus.is_empty(), "{text}");
            assert!(l.total_power_mw().is_some(), "{text}");
            assert!(!l.temps.is_empty(), "{text}");
        }
    }
}

#[test]
fn agx_xavier_short_rail_names_are_summed() {
    // AGX Xavier's rails as a power logger's docstring quotes them (`sudo tegrastats`).
    let l =
        parse_line("GPU 0mW/0mW CPU 465mW/465mW SOC 1242mW/1242mW CV 0mW/0mW SYS5V 2760mW/2760mW")
            .unwrap();
    let names: Vec<&str> = l.rails.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["GPU", "CPU", "SOC", "CV", "SYS5V"]);
    assert_eq!(
        l.total_power_mw(),
        Some((465.0 + 1242.0 + 2760.0, "sum of rails".into()))
    );
    assert!(l.cpus.is_empty());
}

#[test]
fn r28_shared_frequency_form() {
    let l = parse_line(
        "RAM 3468/3983MB (lfb 48x4MB) SWAP 873/8192MB (cached 295MB) cpu [17%,13%,29%,5%]@408 EMC 1%@408 APE 25 GR3D 3%@76",
    )
    .unwrap();
    assert_eq!(l.cpus[2], online(29.0, 408));
    assert_eq!((l.emc_pct, l.gr3d_pct), (Some(1.0), Some(3.0)));
    assert_eq!(l.total_power_mw(), None);
}

#[test]
fn garbage_is_an_error_naming_the_line() {
    for bad in [
        "",
        "   ",
        "hello world",
        "tegrastats: command not found",
        "RAM lots SWAP none",
        "Error: failed to open /sys/devices/...",
    ] {
        let e = parse_line(bad).unwrap_err().to_string();
        assert!(e.contains("not a tegrastats line"), "{bad:?}: {e}");
        assert!(!e.contains('\n'));
    }
    // Recognised figures next to garbage: kept, garbage listed as unknown.
    let l = parse_line("@@@ VDD_IN 100mW/90mW ~~~ x@yC").unwrap();
    assert_eq!(l.total_power_mw().map(|p| p.0), Some(100.0));
    assert_eq!(l.unknown, ["@@@", "~~~", "x@yC"]);
}

#[test]
fn out_of_range_and_malformed_figures_are_not_taken() {
    let l = parse_line("GR3D_FREQ 250% EMC_FREQ 5%@ VDD_IN 5/6/7/8 CPU [x%@1] cpu@1e999C tj@40C")
        .unwrap();
    assert_eq!((l.gr3d_pct, l.emc_pct), (None, None));
    assert!(l.rails.is_empty() && l.cpus.is_empty());
    assert_eq!(l.temps, vec![("tj".to_string(), 40.0)]);
}

#[test]
fn implausible_readings_are_named() {
    let why = |l: &str| parse_line(l).unwrap().implausible();
    for l in ALL.iter().flat_map(|f| f.lines()) {
        assert_eq!(why(l), None, "a real line: {l}");
    }
    let huge = why("VDD_IN 99999999999999999999999mW/99999999999999999999999mW").unwrap();
    assert!(huge.contains("VDD_IN") && huge.contains("mW"), "{huge}");
    assert!(why("RAM 5/0MB").unwrap().contains("RAM 5/0MB"));
    assert!(why("RAM 9000/7620MB").unwrap().contains("RAM"));
    assert_eq!(why("RAM 0/7620MB SWAP 0/0MB"), None, "no swap is fine");
    assert!(why("SWAP 10/0MB").is_some());
    assert!(why("cpu@1e300C").unwrap().contains("cpu@"));
    assert_eq!(
        why("CV0@-256C tj@50C"),
        None,
        "a powered-down sensor's placeholder"
    );
    assert!(why("CPU [5%@4000000]").unwrap().contains("4000000 MHz"));
    assert_eq!(why("VDD_IN 1000000mW/1000000mW"), None);
    assert!(why("VDD_IN 1000001mW/1000mW").is_some());
}

#[test]
fn fuzz_body_on_long_and_broken_output() {
    fuzz_one(b"");
    fuzz_one(&[b'9'; 1000]);
    fuzz_one(b"RAM 1/2MB\n\xff\xfe\nVDD_IN 5mW/5mW\r\n\n\n");
    let mut long = vec![b'a'; 300];
    long.extend_from_slice(b"\nRAM 1/2MB VDD_IN 99999999999999999999999mW/1mW\n");
    fuzz_one(&long);
}

/// xorshift64*: a fixed-seed generator, so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_mutations_of_real_lines_never_panic() {
    const ALPHABET: &[u8] = b"0123456789%@[],/()xC mW-.:offRAMVDD_IN\t\xc3\xa9";
    let lines: Vec<&str> = ALL.iter().flat_map(|f| f.lines()).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut bytes = lines[rng.below(lines.len())].as_bytes().to_vec();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                2 if at < bytes.len() => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                _ => bytes.truncate(at),
            }
        }
        // The fuzz target's body: parsing, the plausibility check and the line cap.
        fuzz_one(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(l) = parse_line(&text) {
            parsed += 1;
            for r in &l.rails {
                assert!(r.current_mw.is_finite() && r.current_mw >= 0.0, "{text}");
            }
            for c in &l.cpus {
                if let CpuCore::Online { load_pct, .. } = c {
                    assert!((0.0..=100.0).contains(load_pct), "{text}");
                }
            }
        }
    }
    // Most mutations keep some recognisable figure.
    assert!(parsed > 10_000, "{parsed}");
}
