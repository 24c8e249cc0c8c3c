//! Tests of the `.npy` reader and writer.

use super::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A hand-made header of format `major`.0 followed by `data`.
fn raw_npy(major: u8, descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let prefix = if major == 1 { 10 } else { 12 };
    let mut header = dict.into_bytes();
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([major, 0]);
    if major == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header);
    out.extend(data);
    out
}

#[test]
fn images_and_labels_round_trip() {
    let d = tmp();
    let x = Array4::from_shape_fn((3, 2, 4, 5), |(n, c, h, w)| {
        (n * 1000 + c * 100 + h * 10 + w) as f32
    });
    let (xp, yp) = (d.path().join("x.npy"), d.path().join("y.npy"));
    write_npy(&xp, &x.clone().into_dyn()).unwrap();
    write_labels(&yp, &[2, 0, 7]).unwrap();
    let set = read_set(&xp, &yp).unwrap();
    assert_eq!(set.images, x);
    assert_eq!(set.labels, vec![2, 0, 7]);
}

#[test]
fn v1_and_v2_headers_and_label_dtypes() {
    let d = tmp();
    let f: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    for major in [1, 2] {
        let p = d.path().join(format!("f{major}.npy"));
        std::fs::write(&p, raw_npy(major, "<f4", "(2,)", &f)).unwrap();
        assert_eq!(
            read_npy(&p).unwrap().into_raw_vec_and_offset().0,
            vec![1.5, -2.0]
        );
    }
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "<i8",
            [3i64, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        (
            "<i4",
            [3i32, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        ("|u1", vec![3u8, 1]),
    ];
    for (descr, data) in cases {
        let p = d.path().join("y.npy");
        std::fs::write(&p, raw_npy(1, descr, "(2,)", &data)).unwrap();
        assert_eq!(read_labels(&p).unwrap(), vec![3, 1], "{descr}");
    }
}

#[test]
fn bad_files_name_the_file_and_the_problem() {
    let d = tmp();
    let p = d.path().join("bad.npy");
    let err = |bytes: &[u8], read: &dyn Fn(&Path) -> Result<()>| {
        std::fs::write(&p, bytes).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("bad.npy"), "{e}");
        e
    };
    let images = |p: &Path| read_images(p).map(|_| ());
    let labels = |p: &Path| read_labels(p).map(|_| ());
    assert!(err(b"PK\x03\x04 not numpy at all", &images).contains("bad magic"));
    let f: Vec<u8> = [1.0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let e = err(&raw_npy(1, "<f4", "(1, 1, 2, 2)", &f[..10]), &images);
    assert!(e.contains("truncated"), "{e}");
    assert!(err(&raw_npy(1, "<f4", "(4,)", &f), &images).contains("N×C×H×W"));
    assert!(err(&raw_npy(1, "<c8", "(2,)", &f), &images).contains("dtype"));
    assert!(err(&raw_npy(1, "<f4", "(4,)", &f), &labels).contains("label dtype"));
    let neg: Vec<u8> = [0i64, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let e = err(&raw_npy(1, "<i8", "(2,)", &neg), &labels);
    assert!(e.contains("label -1 of item 1"), "{e}");
    assert!(err(b"\x93NUMPY\x01\x00\x40", &images).contains("truncated"));
    let e = err(&raw_npy(1, "<f4", "(2,)", &[0; 12]), &images);
    assert!(e.contains("4 bytes after the data"), "{e}");
}

/// A header declaring far more data than the file holds is refused from the file's
/// length, before any allocation, with both sizes.
#[test]
fn declared_size_is_checked_against_the_file() {
    let d = tmp();
    let p = d.path().join("x.npy");
    std::fs::write(&p, raw_npy(1, "<f4", "(100000, 100000, 3, 3)", &[])).unwrap();
    let e = read_images(&p).unwrap_err().to_string();
    assert!(
        e.contains("x.npy")
            && e.contains("declares 360,000,000,000 bytes of data")
            && e.contains("the file has 0"),
        "{e}"
    );
    let huge = "(4611686018427387904, 4611686018427387904, 1, 1)";
    std::fs::write(&p, raw_npy(1, "<f4", huge, &[])).unwrap();
    let e = read_npy(&p).unwrap_err().to_string();
    assert!(e.contains("overflows 64 bits"), "{e}");
    std::fs::write(&p, raw_npy(2, "<i8", "(3000000000,)", &[])).unwrap();
    let e = read_labels(&p).unwrap_err().to_string();
    assert!(e.contains("declares 24,000,000,000 bytes"), "{e}");
}

#[test]
fn byte_orders_fortran_order_and_float64() {
    let d = tmp();
    let p = d.path().join("a.npy");
    let be: Vec<u8> = [1.5f32, -2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    std::fs::write(&p, raw_npy(1, ">f4", "(2, 2)", &be)).unwrap();
    assert_eq!(
        read_npy(&p).unwrap().iter().copied().collect::<Vec<_>>(),
        [1.5, -2.0, 3.0, 4.0]
    );
    // Column-major data: logical [[1, 2], [3, 4]] is stored 1, 3, 2, 4.
    let f: Vec<u8> = [1.0f64, 3.0, 2.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let dict = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }";
    let mut bytes = b"\x93NUMPY\x03\x00".to_vec();
    bytes.extend((dict.len() as u32 + 1).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes.push(b'\n');
    bytes.extend(&f);
    std::fs::write(&p, bytes).unwrap();
    let a = read_npy(&p).unwrap();
    assert_eq!(a[[0, 1]], 2.0);
    assert_eq!(a[[1, 0]], 3.0);
    let labels: Vec<u8> = [-1i16, 5].iter().flat_map(|v| v.to_be_bytes()).collect();
    std::fs::write(&p, raw_npy(1, ">i2", "(2,)", &labels)).unwrap();
    let e = read_labels(&p).unwrap_err().to_string();
    assert!(e.contains("label -1 of item 0 is negative"), "{e}");
    std::fs::write(&p, raw_npy(1, "|i1", "(2,)", &[4, 9])).unwrap();
    assert_eq!(read_labels(&p).unwrap(), vec![4, 9]);
}

/// The `npy` fuzz target's body over 20,000 mutations of valid files and random byte
/// strings: never a panic, never an allocation beyond the input's length.
#[test]
fn mutations_never_panic() {
    use rand::{RngExt, SeedableRng};
    let f: Vec<u8> = (0..24u32).flat_map(|v| (v as f32).to_le_bytes()).collect();
    let valid = [
        raw_npy(1, "<f4", "(2, 3, 2, 2)", &f),
        raw_npy(2, "<i8", "(3,)", &f),
        raw_npy(1, ">f8", "(3, 4)", &f),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    for round in 0..20_000 {
        let mut b = valid[round % valid.len()].clone();
        match round % 5 {
            k @ 0..2 => crate::mutate::basic(&mut rng, &mut b, k),
            2 => {
                // Mutations inside the header dict, where the parser works.
                for _ in 0..rng.random_range(1..8) {
                    let i = rng.random_range(10..64);
                    b[i] = *b"(),:'0123456789 xTF{}[]"
                        .get(rng.random_range(0..23))
                        .unwrap_or(&b'9');
                }
            }
            3 => crate::mutate::basic(&mut rng, &mut b, 2),
            _ => {
                let n = rng.random_range(0..96);
                b = (0..n).map(|_| rng.random()).collect();
                if round % 2 == 0 {
                    b.splice(0..0, *b"\x93NUMPY\x01\x00");
                }
            }
        }
        fuzz_one(&b);
    }
}

#[test]
fn batches_follow_the_order_and_flip_rows() {
    let images = Array4::from_shape_fn((3, 1, 2, 2), |(n, _, h, w)| (n * 10 + h * 2 + w) as f32);
    let set = NpySet {
        images,
        labels: vec![0, 1, 2],
    };
    let mut seen = Vec::new();
    set.for_each_batch(&[2, 0, 1], 2, None, |x, y| {
        seen.push((x.to_vec(), y.to_vec()));
        Ok::<(), Error>(())
    })
    .unwrap();
    assert_eq!(
        seen[0],
        (vec![20., 21., 22., 23., 0., 1., 2., 3.], vec![2, 0])
    );
    assert_eq!(seen[1], (vec![10., 11., 12., 13.], vec![1]));
    let mut flipped = 0;
    set.for_each_batch(&[0; 64], 64, Some(3), |x, _| {
        for img in x.chunks(4) {
            assert!(
                img == [0., 1., 2., 3.] || img == [1., 0., 3., 2.],
                "{img:?}"
            );
            flipped += usize::from(img[0] == 1.0);
        }
        Ok::<(), Error>(())
    })
    .unwrap();
    assert!((16..48).contains(&flipped), "{flipped} of 64 flipped");
}

#[test]
fn mismatched_counts_name_both_files() {
    let d = tmp();
    let (xp, yp) = (d.path().join("x.npy"), d.path().join("y.npy"));
    write_npy(&xp, &Array4::<f32>::zeros((2, 1, 2, 2)).into_dyn()).unwrap();
    write_labels(&yp, &[0, 1, 1]).unwrap();
    let e = read_set(&xp, &yp).unwrap_err().to_string();
    assert!(
        e.contains("y.npy") && e.contains("3 labels for the 2 inputs of"),
        "{e}"
    );
    assert!(e.contains("x.npy"), "{e}");
}
