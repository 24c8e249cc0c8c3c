//! Which Jetson board this is: `/proc/device-tree/model` names the board, and
//! `/etc/nv_tegra_release` gives the L4T release. The mapping is a pure function
//! ([`detect_board`]) so it is tested with fixture strings; [`detect_in`] reads the two
//! files under any root, and `$EDGEBENCH_SYSROOT` points [`detect`] (hence every
//! command) at a fixture root instead of `/`.

use std::path::{Path, PathBuf};

/// Environment variable: a directory used instead of `/` to read the board's files.
pub const SYSROOT_ENV: &str = "EDGEBENCH_SYSROOT";

/// Device-tree model substrings (lower case) → built-in target, most specific first
/// ("orin nano" must win over "nano").
const BOARDS: [(&str, Option<&str>); 7] = [
    ("orin nano", Some("jetson-orin-nano")),
    ("orin nx", None),
    ("agx orin", Some("jetson-agx-orin")),
    ("xavier nx", Some("jetson-xavier-nx")),
    ("agx xavier", None),
    ("tx2", None),
    ("nano", Some("jetson-nano")),
];

/// Map the device-tree model and the `nv_tegra_release` line to a board description and,
/// when edgebench has a built-in target for it, the target's name. `None` when neither
/// says this is a Jetson.
///
/// `"NVIDIA Jetson Orin Nano Developer Kit"` → `("NVIDIA Jetson Orin Nano Developer Kit
/// (L4T R36.3.0)", Some("jetson-orin-nano"))`.
pub fn detect_board(
    device_tree_model: Option<&str>,
    nv_tegra_release: Option<&str>,
) -> Option<(String, Option<String>)> {
    let model = device_tree_model
        .map(|m| m.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
        .filter(|m| !m.is_empty());
    let l4t = nv_tegra_release.and_then(l4t_release);
    let lower = model.map(str::to_lowercase);
    let is_jetson = lower
        .as_deref()
        .is_some_and(|m| m.contains("jetson") || m.contains("tegra"));
    let target = if is_jetson {
        let m = lower.as_deref().unwrap_or_default();
        BOARDS
            .iter()
            .find(|(key, _)| m.contains(key))
            .and_then(|(_, t)| *t)
    } else if l4t.as_deref().is_some_and(|r| r.starts_with("R32"))
        && nv_tegra_release.is_some_and(|r| r.contains("t210ref"))
    {
        // No readable model, but L4T R32 on a t210 board: a Jetson Nano (or TX1).
        Some("jetson-nano")
    } else {
        None
    };
    let board = match (model.filter(|_| is_jetson), &l4t) {
        (Some(m), Some(r)) => format!("{m} (L4T {r})"),
        (Some(m), None) => m.to_string(),
        (None, Some(r)) => format!("NVIDIA Jetson (L4T {r})"),
        (None, None) => return None,
    };
    Some((board, target.map(str::to_string)))
}

/// `# R36 (release), REVISION: 3.0, GCID: ...` → `R36.3.0`.
fn l4t_release(line: &str) -> Option<String> {
    let line = line.lines().find(|l| l.contains("release"))?;
    let major = line
        .trim_start_matches(|c: char| c == '#' || c.is_whitespace())
        .split_whitespace()
        .next()
        .filter(|r| r.starts_with('R'))?;
    let revision = line
        .split(',')
        .find_map(|f| f.trim().strip_prefix("REVISION:"))
        .map(str::trim);
    Some(match revision {
        Some(r) => format!("{major}.{r}"),
        None => major.to_string(),
    })
}

/// Detect the board this process runs on (under `$EDGEBENCH_SYSROOT` when set); `None`
/// off a Jetson.
pub fn detect() -> Option<(String, Option<String>)> {
    let root = std::env::var_os(SYSROOT_ENV)
        .filter(|r| !r.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from);
    detect_in(&root)
}

/// Detect the board from `root/proc/device-tree/model` and `root/etc/nv_tegra_release`
/// (unreadable files count as absent; the device-tree file may be binary-padded).
pub fn detect_in(root: &Path) -> Option<(String, Option<String>)> {
    let read = |rel: &str| {
        std::fs::read(root.join(rel))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let model = read("proc/device-tree/model");
    let release = read("etc/nv_tegra_release");
    detect_board(model.as_deref(), release.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R36: &str = "# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, \
                       EABI: aarch64, DATE: Fri Jul 19 23:24:25 UTC 2024\n\
                       # KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n";
    const R32: &str = "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, \
                       EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n";

    fn target(model: &str, release: Option<&str>) -> Option<String> {
        detect_board(Some(model), release).and_then(|(_, t)| t)
    }

    #[test]
    fn maps_device_tree_models_to_targets() {
        assert_eq!(
            detect_board(Some("NVIDIA Jetson Orin Nano Developer Kit\0"), Some(R36)),
            Some((
                "NVIDIA Jetson Orin Nano Developer Kit (L4T R36.3.0)".into(),
                Some("jetson-orin-nano".into())
            ))
        );
        assert_eq!(
            target("NVIDIA Jetson Nano Developer Kit\0", Some(R32)).as_deref(),
            Some("jetson-nano")
        );
        assert_eq!(
            target("NVIDIA Jetson Xavier NX Developer Kit", None).as_deref(),
            Some("jetson-xavier-nx")
        );
        assert_eq!(
            target("Jetson AGX Orin Developer Kit", None).as_deref(),
            Some("jetson-agx-orin")
        );
        assert_eq!(
            target(
                "NVIDIA Orin Nano Developer Kit with Jetson Orin Nano 8GB",
                None
            )
            .as_deref(),
            Some("jetson-orin-nano")
        );
    }

    #[test]
    fn known_jetson_without_a_target() {
        let (board, t) = detect_board(Some("NVIDIA Jetson Orin NX Developer Kit"), None).unwrap();
        assert_eq!(board, "NVIDIA Jetson Orin NX Developer Kit");
        assert_eq!(t, None);
        assert_eq!(target("Jetson-AGX Xavier", None), None);
    }

    #[test]
    fn release_file_alone_and_not_a_jetson() {
        assert_eq!(
            detect_board(None, Some(R32)),
            Some((
                "NVIDIA Jetson (L4T R32.7.1)".into(),
                Some("jetson-nano".into())
            ))
        );
        assert_eq!(
            detect_board(None, Some(R36)),
            Some(("NVIDIA Jetson (L4T R36.3.0)".into(), None))
        );
        assert_eq!(
            detect_board(Some("Raspberry Pi 4 Model B Rev 1.4\0"), None),
            None
        );
        assert_eq!(detect_board(None, None), None);
        assert_eq!(detect_board(Some("\0"), Some("garbage")), None);
    }

    #[test]
    fn reads_a_fixture_root() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(detect_in(root.path()), None);
        std::fs::create_dir_all(root.path().join("proc/device-tree")).unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("proc/device-tree/model"),
            b"NVIDIA Jetson Orin Nano Developer Kit\0",
        )
        .unwrap();
        std::fs::write(root.path().join("etc/nv_tegra_release"), R36).unwrap();
        assert_eq!(
            detect_in(root.path()),
            Some((
                "NVIDIA Jetson Orin Nano Developer Kit (L4T R36.3.0)".into(),
                Some("jetson-orin-nano".into())
            ))
        );
        // Bytes that are not UTF-8 do not stop detection.
        std::fs::write(
            root.path().join("proc/device-tree/model"),
            b"NVIDIA Jetson Nano Developer Kit\xff\0",
        )
        .unwrap();
        let (board, _) = detect_in(root.path()).unwrap();
        assert!(
            board.starts_with("NVIDIA Jetson Nano Developer Kit"),
            "{board}"
        );
    }
}
