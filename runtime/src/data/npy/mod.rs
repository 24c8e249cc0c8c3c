//! `.npy` files: tensors for `edgebench run` and training sets as plain arrays (inputs
//! `N×C×H×W` f32, labels `N` integers), so a step can be reproduced in another framework.
//!
//! Reading parses the header here (module `header`: format versions 1, 2 and 3, either byte
//! order, C or Fortran order) and checks the data size it declares against the file's
//! length and the machine's memory before allocating anything, through
//! [`crate::alloc`]; a header cannot make the reader allocate more than the file holds.
//! Every failure is one line naming the file: not a `.npy` file (bad magic), an
//! unsupported dtype, a shape that does not fit, a truncated file. Writes go through
//! `ndarray-npy` and are atomic ([`crate::fsutil`]).

mod header;

use std::io::{BufReader, Read};
use std::path::Path;

use ndarray::{Array4, ArrayD, Ix4, IxDyn, ShapeBuilder};
use ndarray_npy::WriteNpyExt;

use crate::alloc::{self, Zeroable};
use crate::error::{Error, Result};
use header::{Dtype, Header, HeaderError, Kind};

/// A training set held as arrays: images `[N, C, H, W]` and one label per image.
#[derive(Debug, Clone)]
pub struct NpySet {
    /// Inputs, NCHW, already preprocessed (fed to the model as they are).
    pub images: Array4<f32>,
    /// Class index of each image.
    pub labels: Vec<usize>,
}

fn input_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// An open `.npy` file: its header, checked against the file's length, and the reader
/// positioned at the data.
struct Opened<R> {
    header: Header,
    reader: R,
    /// Elements the shape declares (their bytes are in the file).
    numel: usize,
}

/// Read the header of `r` (a file of `file_len` bytes named `path`) and check that the
/// data it declares is exactly what follows it.
fn open_reader<R: Read>(mut reader: R, file_len: u64, path: &Path) -> Result<Opened<R>> {
    let header = header::read(&mut reader, file_len).map_err(|e| {
        input_error(
            path,
            match e {
                HeaderError::Truncated => "truncated .npy file (the header ends early)".into(),
                HeaderError::Magic => "not a .npy file (bad magic string)".into(),
                HeaderError::Bad(reason) => reason,
            },
        )
    })?;
    let have = file_len - header.len;
    let numel = alloc::numel(&header.shape);
    let size = header.dtype.as_ref().map_or(1, |d| d.size);
    let Some(need) = alloc::bytes_of(numel, size) else {
        return Err(input_error(
            path,
            format!(
                "the header declares shape {:?} of {}, whose size in bytes overflows 64 bits",
                header.shape, header.descr
            ),
        ));
    };
    if need > have {
        return Err(input_error(
            path,
            format!(
                "truncated .npy file: the header declares {} bytes of data (shape {:?} of {}), \
                 the file has {}",
                crate::units::thousands(need),
                header.shape,
                header.descr,
                crate::units::thousands(have)
            ),
        ));
    }
    if need < have && header.dtype.is_ok() {
        return Err(input_error(
            path,
            format!(
                ".npy file has {} bytes after the data its shape describes",
                have - need
            ),
        ));
    }
    Ok(Opened {
        numel: numel.unwrap_or(0),
        header,
        reader,
    })
}

fn open(path: &Path) -> Result<Opened<BufReader<std::fs::File>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    open_reader(BufReader::new(file), len, path)
}

/// Decode `n` elements of `dtype` from `r` into a fallibly allocated vector, converting
/// each with `conv` (which receives the element's bytes in little-endian order).
fn decode<T: Zeroable>(
    r: &mut impl Read,
    n: usize,
    dtype: Dtype,
    path: &Path,
    what: impl Fn() -> String,
    mut conv: impl FnMut(&[u8]) -> T,
) -> Result<Vec<T>> {
    let mut out = alloc::try_zeroed::<T>(n, what).map_err(|e| e.at(path))?;
    // Whole elements per read; the buffer is fixed, whatever the file's size.
    let mut buf = [0u8; 1 << 16];
    let per = buf.len() / dtype.size;
    for chunk in out.chunks_mut(per) {
        let bytes = &mut buf[..chunk.len() * dtype.size];
        r.read_exact(bytes).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => input_error(
                path,
                "truncated .npy file (fewer data bytes than its shape needs)",
            ),
            _ => Error::io(path, e),
        })?;
        for (dst, src) in chunk.iter_mut().zip(bytes.chunks_exact_mut(dtype.size)) {
            if dtype.big_endian {
                src.reverse();
            }
            *dst = conv(src);
        }
    }
    Ok(out)
}

/// Little-endian bytes of one element as a fixed-size array (`src.len()` is the size the
/// caller matched on).
fn le<const N: usize>(src: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&src[..N]);
    b
}

/// Read float32 (float64 is converted) from an opened file.
fn read_f32_from<R: Read>(o: Opened<R>, path: &Path) -> Result<ArrayD<f32>> {
    let Opened {
        header,
        mut reader,
        numel,
    } = o;
    let dtype = match header.dtype {
        Ok(d) if d.kind == Kind::Float => d,
        _ => {
            return Err(input_error(
                path,
                format!(
                    "unsupported .npy dtype {} (expected float32 or float64)",
                    header.descr
                ),
            ));
        }
    };
    let what = || alloc::tensor(&header.shape, "f32");
    let data = if dtype.size == 4 {
        decode(&mut reader, numel, dtype, path, what, |b| {
            f32::from_le_bytes(le(b))
        })?
    } else {
        decode(&mut reader, numel, dtype, path, what, |b| {
            f64::from_le_bytes(le(b)) as f32
        })?
    };
    let shape = IxDyn(&header.shape);
    let shaped = if header.fortran_order {
        ArrayD::from_shape_vec(shape.f(), data)
    } else {
        ArrayD::from_shape_vec(shape, data)
    };
    shaped.map_err(|e| input_error(path, format!("shape {:?}: {e}", header.shape)))
}

/// Read labels (any integer type) from an opened file.
fn read_labels_from<R: Read>(o: Opened<R>, path: &Path) -> Result<Vec<usize>> {
    let Opened {
        header,
        mut reader,
        numel,
    } = o;
    let dtype = match header.dtype {
        Ok(d) if d.kind != Kind::Float => d,
        _ => {
            return Err(input_error(
                path,
                "unsupported label dtype (expected int64, int32 or uint8)",
            ));
        }
    };
    if header.shape.len() != 1 {
        return Err(input_error(
            path,
            format!("labels must have shape [N], got {:?}", header.shape),
        ));
    }
    let what = || alloc::tensor(&header.shape, "label");
    let (signed, bits) = (dtype.kind == Kind::Int, 8 * dtype.size as u32);
    // The first label that is not a class index, reported after the read.
    let mut first_bad = None;
    let mut i = 0;
    let labels = decode(&mut reader, numel, dtype, path, what, |b| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        let raw = u64::from_le_bytes(w);
        let v = if signed && bits < 64 && (raw >> (bits - 1)) & 1 == 1 {
            // Sign-extend a negative narrower integer.
            i128::from((raw | (u64::MAX << bits)) as i64)
        } else if signed {
            i128::from(raw as i64)
        } else {
            i128::from(raw)
        };
        i += 1;
        usize::try_from(v).unwrap_or_else(|_| {
            first_bad.get_or_insert((i - 1, v));
            0
        })
    })?;
    match first_bad {
        Some((i, v)) => Err(bad_label(path, i, v)),
        None => Ok(labels),
    }
}

/// Read a `.npy` file of float32 (float64 is converted) as a dynamic-rank array.
pub fn read_npy(path: &Path) -> Result<ArrayD<f32>> {
    read_f32_from(open(path)?, path)
}

/// Write an f32 array as `.npy` (format 1.0, little-endian float32), atomically.
pub fn write_npy(path: &Path, a: &ArrayD<f32>) -> Result<()> {
    crate::fsutil::write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        a.write_npy(&mut w).map_err(std::io::Error::other)?;
        std::io::Write::flush(&mut w)
    })
}

/// Read training inputs: a float32/float64 `.npy` of shape `[N, C, H, W]`.
pub fn read_images(path: &Path) -> Result<Array4<f32>> {
    let a = read_npy(path)?;
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix4>().map_err(|_| {
        input_error(
            path,
            format!("inputs must have shape N×C×H×W, got {shape:?}"),
        )
    })
}

/// A stored label `v` of item `i` that is not a class index.
fn bad_label(path: &Path, i: usize, v: i128) -> Error {
    let why = if v < 0 { "negative" } else { "too large" };
    input_error(path, format!("label {v} of item {i} is {why}"))
}

/// Read labels: a 1-D `.npy` of int64, int32, uint8 or any other integer type.
pub fn read_labels(path: &Path) -> Result<Vec<usize>> {
    read_labels_from(open(path)?, path)
}

/// Write labels as a 1-D int64 `.npy`, atomically.
pub fn write_labels(path: &Path, labels: &[usize]) -> Result<()> {
    let a = ndarray::Array1::from_iter(labels.iter().map(|&l| l as i64));
    crate::fsutil::write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        a.write_npy(&mut w).map_err(std::io::Error::other)?;
        std::io::Write::flush(&mut w)
    })
}

impl NpySet {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Floats per image (`C·H·W`).
    pub fn image_len(&self) -> usize {
        let s = self.images.shape();
        s[1] * s[2] * s[3]
    }

    /// Calls `f` with the items `order`, `batch` at a time (the last batch may be
    /// smaller), copied into one reusable buffer; with `flip_seed` each image is mirrored
    /// left-right with probability ½ (seeded per position in `order`).
    pub fn for_each_batch<E: From<Error>>(
        &self,
        order: &[usize],
        batch: usize,
        flip_seed: Option<u64>,
        mut f: impl FnMut(&[f32], &[usize]) -> Result<(), E>,
    ) -> Result<(), E> {
        use rand::{RngExt, SeedableRng};
        let (img, w) = (self.image_len(), self.images.shape()[3]);
        let batch = batch.max(1);
        let rows = batch.min(order.len());
        let mut x = alloc::try_zeroed::<f32>(rows.saturating_mul(img), || {
            format!("a batch of {rows} images of {img} values")
        })
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut y = Vec::with_capacity(rows);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(flip_seed.unwrap_or(0));
        // Items are addressed in the array's logical order (any memory layout).
        let all = self.images.as_standard_layout();
        let flat = all.as_slice().unwrap_or(&[]);
        for chunk in order.chunks(batch) {
            y.clear();
            for (k, &i) in chunk.iter().enumerate() {
                let dst = &mut x[k * img..(k + 1) * img];
                dst.copy_from_slice(&flat[i * img..(i + 1) * img]);
                if flip_seed.is_some() && rng.random_bool(0.5) {
                    dst.chunks_exact_mut(w.max(1)).for_each(<[f32]>::reverse);
                }
                y.push(self.labels[i]);
            }
            f(&x[..chunk.len() * img], &y)?;
        }
        Ok(())
    }
}

/// Read inputs and labels and check that they hold the same number of items.
pub fn read_set(images: &Path, labels: &Path) -> Result<NpySet> {
    let x = read_images(images)?;
    let y = read_labels(labels)?;
    if x.shape()[0] != y.len() {
        return Err(input_error(
            labels,
            format!(
                "{} labels for the {} inputs of {}",
                y.len(),
                x.shape()[0],
                images.display()
            ),
        ));
    }
    Ok(NpySet {
        images: x,
        labels: y,
    })
}

/// The `npy` fuzz target's body: `data` read as a float tensor and as labels, as it is
/// and after a valid magic string and version (so that a fuzzer without a corpus reaches
/// the header dict at once). Errors are expected; a panic, or an allocation larger than
/// the input (the declared size is checked against the length first), is the bug.
pub fn fuzz_one(data: &[u8]) {
    let read_both = |bytes: &[u8]| {
        let (path, len) = (Path::new("<fuzz>"), bytes.len() as u64);
        if let Ok(o) = open_reader(bytes, len, path) {
            let _ = read_f32_from(o, path);
        }
        if let Ok(o) = open_reader(bytes, len, path) {
            let _ = read_labels_from(o, path);
        }
    };
    read_both(data);
    let mut wrapped = b"\x93NUMPY\x01\x00".to_vec();
    wrapped.extend_from_slice(data);
    read_both(&wrapped);
}

#[cfg(test)]
mod tests {
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
        let images =
            Array4::from_shape_fn((3, 1, 2, 2), |(n, _, h, w)| (n * 10 + h * 2 + w) as f32);
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
}
