//! The output-path policy (`fsutil::Destination`, `fsutil::IoPaths`) on real files,
//! links, devices and FIFOs, and a property test: whatever combination of input and
//! output paths a command is given (the same file by symlink, hard link or `./a/../a`),
//! no input is ever changed.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use edgebench_runtime::Error;
use edgebench_runtime::fsutil::{self, Destination, IoPaths, write_atomic};
use proptest::prelude::*;

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().mode() & 0o7777
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_symlink_is_followed_and_its_target_replaced_in_place() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("t.json"), b"old").unwrap();
    symlink("real/t.json", d.path().join("link.json")).unwrap();
    write_atomic(&d.path().join("link.json"), b"new").unwrap();
    let link = fs::symlink_metadata(d.path().join("link.json")).unwrap();
    assert!(link.file_type().is_symlink(), "the link stays a link");
    assert_eq!(fs::read(real.join("t.json")).unwrap(), b"new");
    assert_eq!(entries(&real), ["t.json"], "no temporary file is left");
}

#[test]
fn a_dangling_symlink_creates_its_target() {
    let d = tempfile::tempdir().unwrap();
    symlink("made.json", d.path().join("link.json")).unwrap();
    write_atomic(&d.path().join("link.json"), b"x").unwrap();
    assert!(
        fs::symlink_metadata(d.path().join("link.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(d.path().join("made.json")).unwrap(), b"x");
}

#[test]
fn character_devices_are_written_through_not_replaced() {
    write_atomic(Path::new("/dev/null"), b"nothing").unwrap();
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // /dev/full fails every write with ENOSPC: the error is reported and the device
    // stays a device (a rename would have made it a regular file).
    let e = write_atomic(Path::new("/dev/full"), b"x").unwrap_err();
    assert!(e.to_string().contains("/dev/full"), "{e}");
    assert!(
        fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A link to a device is followed to the device.
    let d = tempfile::tempdir().unwrap();
    symlink("/dev/full", d.path().join("link.json")).unwrap();
    assert!(write_atomic(&d.path().join("link.json"), b"x").is_err());
    assert!(
        fs::symlink_metadata(d.path().join("link.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn stdout_names_are_the_process_stream() {
    for p in ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
        assert_eq!(
            Destination::resolve(Path::new(p)).unwrap(),
            Destination::Stdout,
            "{p}"
        );
    }
    assert_eq!(
        Destination::resolve(Path::new("/dev/stderr")).unwrap(),
        Destination::Stderr
    );
}

#[test]
fn a_fifo_is_streamed_to_its_reader() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // Safety: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            fs::File::open(fifo)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            s
        })
    };
    write_atomic(&fifo, b"through the pipe").unwrap();
    assert_eq!(reader.join().unwrap(), "through the pipe");
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn permissions_are_kept_and_read_only_files_need_force() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("a.json");
    fs::write(&p, b"old").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&p, b"new").unwrap();
    assert_eq!(mode(&p), 0o640);

    fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
    let e = write_atomic(&p, b"newer").unwrap_err();
    assert!(matches!(e, Error::Output { .. }), "{e:?}");
    assert!(e.to_string().contains("read-only") && e.to_string().contains("--force"));
    assert_eq!(fs::read(&p).unwrap(), b"new");
    fsutil::allow_read_only_replacement(true);
    let forced = write_atomic(&p, b"newer");
    fsutil::allow_read_only_replacement(false);
    forced.unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"newer");
    assert_eq!(mode(&p), 0o444, "a forced replacement keeps the mode");
}

#[test]
fn folders_and_missing_folders_are_refused_by_name() {
    let d = tempfile::tempdir().unwrap();
    let e = write_atomic(d.path(), b"x").unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = write_atomic(&d.path().join("no/such/x.json"), b"x").unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(e.to_string().contains("no/such"), "{e}");
    let file = d.path().join("f");
    fs::write(&file, b"").unwrap();
    let e = write_atomic(&file.join("x.json"), b"x").unwrap_err();
    assert!(e.to_string().contains("not a folder"), "{e}");
}

#[test]
fn an_output_that_is_an_input_is_refused_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    let x = d.path().join("x.npy");
    fs::write(&x, b"input").unwrap();
    fs::hard_link(&x, d.path().join("hard.npy")).unwrap();
    symlink("x.npy", d.path().join("soft.npy")).unwrap();
    fs::create_dir(d.path().join("sub")).unwrap();
    for out in ["x.npy", "hard.npy", "soft.npy", "sub/../x.npy", "./x.npy"] {
        let e = IoPaths::new()
            .input("--input", &x)
            .output("--output", d.path().join(out))
            .check()
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("--output ") && msg.contains("the same file as --input"),
            "{out}: {msg}"
        );
    }
    assert_eq!(fs::read(&x).unwrap(), b"input");
    // A checkpoint continued with --resume is read, then rewritten on purpose.
    IoPaths::new()
        .input("--resume", &x)
        .output("--checkpoint", &x)
        .updates("--checkpoint", "--resume")
        .check()
        .unwrap();
    // Two outputs on one file, new or existing.
    let e = IoPaths::new()
        .output("--json", d.path().join("r.json"))
        .output("--csv", d.path().join("sub/../r.json"))
        .check()
        .unwrap_err();
    assert!(e.to_string().contains("the same file as --json"), "{e}");
    // Streams may be shared.
    IoPaths::new()
        .output("--json", "-")
        .output("--csv", "/dev/stdout")
        .check()
        .unwrap();
}

/// Names in a fixture folder: `a` and `b` are inputs' files; `la` links to `a`, `ha` is a
/// hard link to `a`, `d/up` links back to the folder, `new` does not exist.
const NAMES: &[&str] = &[
    "a", "b", "la", "ha", "./a", "d/../a", "d/up/a", "d/up/la", "d/up/ha", "new", "d/new",
    "d/up/new", "b2",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]
    #[test]
    fn no_combination_of_paths_changes_an_input(
        ins in proptest::collection::vec(0..NAMES.len(), 1..4),
        outs in proptest::collection::vec(0..NAMES.len(), 1..4),
    ) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::write(root.join("a"), b"A").unwrap();
        fs::write(root.join("b"), b"B").unwrap();
        fs::write(root.join("b2"), b"B2").unwrap();
        symlink("a", root.join("la")).unwrap();
        fs::hard_link(root.join("a"), root.join("ha")).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        symlink("..", root.join("d/up")).unwrap();
        let mut io = IoPaths::new();
        let mut inputs = Vec::new();
        for (k, &i) in ins.iter().enumerate() {
            let p = root.join(NAMES[i]);
            if p.exists() {
                inputs.push((p.clone(), fs::read(&p).unwrap()));
                io = io.input(&format!("--in{k}"), &p);
            }
        }
        let outputs: Vec<_> = outs.iter().map(|&o| root.join(NAMES[o])).collect();
        for (k, p) in outputs.iter().enumerate() {
            io = io.output(&format!("--out{k}"), p);
        }
        if let Ok(dests) = io.check() {
            for (dest, p) in dests.iter().zip(&outputs) {
                dest.write(p, |w| w.write_all(b"OUTPUT")).unwrap();
            }
        }
        for (p, before) in &inputs {
            prop_assert_eq!(&fs::read(p).unwrap(), before, "input {} changed", p.display());
        }
    }
}
