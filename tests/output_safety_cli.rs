//! Outputs never destroy what the user owns, through the binary: devices and FIFOs are
//! written through, symlinks followed (the link stays), read-only files refused without
//! `--force` and permissions kept, and an output that is one of the command's inputs is
//! refused before any work. Device nodes are made in a private folder (as root), never
//! the machine's own `/dev`; the unprivileged cases run as `nobody` through `setpriv`.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::{fails, ok};

fn is_root() -> bool {
    // Safety: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `models export` of a tiny model: the quickest command that writes a file.
fn export(out: &Path) -> Vec<String> {
    ["models", "export", "lean", "--input", "16x16x3", "-o"]
        .iter()
        .map(|s| s.to_string())
        .chain([out.to_str().unwrap().to_string()])
        .collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn is_link(p: &Path) -> bool {
    fs::symlink_metadata(p).unwrap().file_type().is_symlink()
}

#[test]
fn a_symlink_to_a_device_is_written_through_and_stays_a_link() {
    let d = tempfile::tempdir().unwrap();
    let null = d.path().join("null.onnx");
    symlink("/dev/null", &null).unwrap();
    ok(&args(&export(&null)));
    assert!(is_link(&null), "the link to /dev/null was replaced");

    let full = d.path().join("full.json");
    symlink("/dev/full", &full).unwrap();
    let line = fails(&args(&export(&full)), 1);
    assert!(line.contains("No space left on device"), "{line}");
    assert!(is_link(&full), "the link to /dev/full was replaced");
    assert!(
        fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn a_report_through_a_link_to_stdout_goes_to_stdout() {
    let d = tempfile::tempdir().unwrap();
    let link = d.path().join("out.json");
    symlink("/dev/stdout", &link).unwrap();
    let link_s = link.to_str().unwrap();
    let out = ok(&[
        "bench",
        "lean",
        "--size",
        "16x16x3",
        "--scenario",
        "single-stream",
        "--warmup",
        "0",
        "--warmup-time",
        "0",
        "--min-duration",
        "0",
        "--min-queries",
        "2",
        "--engine",
        "tract",
        "--quiet",
        "--json",
        link_s,
    ]);
    assert!(is_link(&link), "the link to /dev/stdout was replaced");
    let json: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON on stdout");
    assert!(json["models"].is_array(), "{out}");
}

#[test]
fn a_symlinked_output_replaces_its_target_in_the_target_folder() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("real")).unwrap();
    let target = d.path().join("real/m.onnx");
    fs::write(&target, b"old").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
    let link = d.path().join("m.onnx");
    symlink("real/m.onnx", &link).unwrap();
    ok(&args(&export(&link)));
    assert!(is_link(&link));
    let bytes = fs::read(&target).unwrap();
    assert!(bytes.len() > 1000, "the target holds the model");
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o640);
    assert_eq!(fs::read_dir(d.path().join("real")).unwrap().count(), 1);
}

#[test]
fn a_read_only_output_is_refused_unless_forced_and_keeps_its_mode() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ro.onnx");
    fs::write(&p, b"keep me").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
    let line = fails(&args(&export(&p)), 2);
    assert!(
        line.contains("read-only") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(fs::read(&p).unwrap(), b"keep me");
    let mut forced = export(&p);
    forced.push("--force".into());
    ok(&args(&forced));
    assert!(fs::read(&p).unwrap().len() > 1000);
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o444);
}

#[test]
fn an_output_that_is_an_input_is_refused_before_any_work() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let s = |p: &str| dir.join(p).to_str().unwrap().to_string();
    // An ONNX model and a .npy input for it.
    ok(&args(&export(&dir.join("m.onnx"))));
    let x = ndarray::Array4::<f32>::zeros((1, 3, 16, 16));
    ndarray_npy::write_npy(dir.join("x.npy"), &x).unwrap();
    let x_before = fs::read(dir.join("x.npy")).unwrap();
    symlink("x.npy", dir.join("x-link.npy")).unwrap();
    fs::hard_link(dir.join("x.npy"), dir.join("x-hard.npy")).unwrap();
    fs::create_dir(dir.join("sub")).unwrap();
    for out in ["x.npy", "x-link.npy", "x-hard.npy", "sub/../x.npy"] {
        let line = fails(
            &[
                "run",
                &s("m.onnx"),
                "--input",
                &s("x.npy"),
                "-o",
                &s(out),
                "--engine",
                "tract",
            ],
            2,
        );
        assert!(line.contains("the same file as --input"), "{out}: {line}");
    }
    assert_eq!(fs::read(dir.join("x.npy")).unwrap(), x_before);

    // An image given as input and as output.
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 9, y as u8 * 9, 7]));
    img.save(dir.join("a.png")).unwrap();
    let png = fs::read(dir.join("a.png")).unwrap();
    let line = fails(
        &[
            "run",
            "lean",
            "--size",
            "16x16x3",
            "--input",
            &s("a.png"),
            "-o",
            &s("a.png"),
        ],
        2,
    );
    assert!(line.contains("--output"), "{line}");
    assert_eq!(fs::read(dir.join("a.png")).unwrap(), png);

    // train: labels as the export, a checkpoint as the metrics.
    let y = ndarray::Array1::<i64>::zeros(2);
    ndarray_npy::write_npy(dir.join("y.npy"), &y).unwrap();
    let xs = ndarray::Array4::<f32>::zeros((2, 3, 16, 16));
    ndarray_npy::write_npy(dir.join("xs.npy"), &xs).unwrap();
    let y_before = fs::read(dir.join("y.npy")).unwrap();
    let line = fails(
        &[
            "train",
            "--data",
            &s("xs.npy"),
            "--labels",
            &s("y.npy"),
            "--epochs",
            "1",
            "--export",
            &s("y.npy"),
        ],
        2,
    );
    assert!(
        line.contains("--export") && line.contains("--labels"),
        "{line}"
    );
    assert_eq!(fs::read(dir.join("y.npy")).unwrap(), y_before);
    let line = fails(
        &[
            "train",
            "--data",
            &s("xs.npy"),
            "--labels",
            &s("y.npy"),
            "--epochs",
            "1",
            "--checkpoint",
            &s("c.json"),
            "--metrics",
            &s("c.json"),
        ],
        2,
    );
    assert!(
        line.contains("--metrics") && line.contains("--checkpoint"),
        "{line}"
    );
    assert!(!dir.join("c.json").exists());
}

#[test]
fn private_device_nodes_stay_devices() {
    if !is_root() {
        eprintln!("skipped: making device nodes needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut made = true;
    for (name, minor) in [("null", 3), ("full", 7)] {
        let c = std::ffi::CString::new(d.path().join(name).to_str().unwrap()).unwrap();
        // Safety: a valid path; (1, minor) are the memory devices null and full.
        let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, minor)) };
        made &= r == 0;
    }
    if !made {
        eprintln!("skipped: mknod failed here (no CAP_MKNOD or a nodev mount)");
        return;
    }
    let null = d.path().join("null");
    let full = d.path().join("full");
    ok(&args(&export(&null)));
    let line = fails(&args(&export(&full)), 1);
    assert!(line.contains("No space left on device"), "{line}");
    for p in [&null, &full] {
        assert!(
            fs::symlink_metadata(p)
                .unwrap()
                .file_type()
                .is_char_device(),
            "{} became a regular file",
            p.display()
        );
    }
}

/// Run edgebench as `nobody` (uid 65534), if this machine can.
fn as_nobody(args: &[&str]) -> Option<std::process::Output> {
    if !is_root() || Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: running as another user needs root and setpriv");
        return None;
    }
    Some(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_edgebench"))
            .args(args)
            .env("XDG_CACHE_HOME", "/nonexistent")
            .output()
            .expect("setpriv runs"),
    )
}

#[test]
fn unprivileged_outputs_to_dev_null_and_own_read_only_files() {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let Some(out) = as_nobody(&args(&export(Path::new("/dev/null")))) else {
        return;
    };
    assert!(
        out.status.success(),
        "as nobody, -o /dev/null: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = d.path().join("mine.onnx");
    fs::write(&p, b"keep me").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
    std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    let out = as_nobody(&args(&export(&p))).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(fs::read(&p).unwrap(), b"keep me");
    let mut forced = export(&p);
    forced.push("--force".into());
    let out = as_nobody(&args(&forced)).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = fs::metadata(&p).unwrap();
    assert_eq!(m.mode() & 0o777, 0o444);
    assert_eq!(m.uid(), 65534);
}
