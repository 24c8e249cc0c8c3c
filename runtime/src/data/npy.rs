//! `.npy` files: tensors for `edgebench run` and training sets as plain arrays (inputs
//! `N×C×H×W` f32, labels `N` integers), so a step can be reproduced in another framework.
//!
//! Reading goes through `ndarray-npy`, which understands format versions 1, 2 and 3,
//! either byte order and C or Fortran order; this module picks the element types we
//! accept and turns every failure into one line naming the file: not a `.npy` file (bad
//! magic), an unsupported dtype, a shape that does not fit, or a truncated file.
//! Writes are atomic ([`crate::fsutil`]).

use std::io::BufReader;
use std::path::Path;

use ndarray::{Array4, ArrayD, Ix4};
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};

use crate::error::{Error, Result};

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

/// One line for a reading error; `WrongDescriptor` is handled by the callers.
fn describe(path: &Path, e: ReadNpyError) -> Error {
    let reason = match e {
        ReadNpyError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated .npy file (the header ends early)".to_string()
        }
        ReadNpyError::Io(e) => return Error::io(path, e),
        // `ParseHeaderError` is not exported; its magic-string variant reads as below.
        ReadNpyError::ParseHeader(h) if h.to_string().contains("magic string") => {
            "not a .npy file (bad magic string)".to_string()
        }
        ReadNpyError::ParseHeader(h) => format!("bad .npy header: {h}"),
        ReadNpyError::MissingData => {
            "truncated .npy file (fewer data bytes than its shape needs)".to_string()
        }
        ReadNpyError::ExtraBytes(n) => {
            format!(".npy file has {n} bytes after the data its shape describes")
        }
        other => format!("not a usable .npy file: {other}"),
    };
    input_error(path, reason)
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>> {
    Ok(BufReader::new(
        std::fs::File::open(path).map_err(|e| Error::io(path, e))?,
    ))
}

/// Read a `.npy` file of float32 (float64 is converted) as a dynamic-rank array.
pub fn read_npy(path: &Path) -> Result<ArrayD<f32>> {
    match ArrayD::<f32>::read_npy(open(path)?) {
        Ok(a) => Ok(a),
        Err(ReadNpyError::WrongDescriptor(d)) => match ArrayD::<f64>::read_npy(open(path)?) {
            Ok(a) => Ok(a.mapv(|v| v as f32)),
            Err(ReadNpyError::WrongDescriptor(_)) => Err(input_error(
                path,
                format!("unsupported .npy dtype {d} (expected float32 or float64)"),
            )),
            Err(e) => Err(describe(path, e)),
        },
        Err(e) => Err(describe(path, e)),
    }
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

/// Converts one stored label to a class index, naming the item when it is negative.
fn to_index(path: &Path, i: usize, v: i128) -> Result<usize> {
    usize::try_from(v).map_err(|_| input_error(path, format!("label {v} of item {i} is negative")))
}

/// Read labels: a 1-D `.npy` of int64, int32, uint8 (or int16, uint16, uint32, uint64).
pub fn read_labels(path: &Path) -> Result<Vec<usize>> {
    macro_rules! try_type {
        ($t:ty) => {
            match ArrayD::<$t>::read_npy(open(path)?) {
                Ok(a) => {
                    if a.ndim() != 1 {
                        return Err(input_error(
                            path,
                            format!("labels must have shape [N], got {:?}", a.shape()),
                        ));
                    }
                    return a
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| to_index(path, i, v as i128))
                        .collect();
                }
                Err(ReadNpyError::WrongDescriptor(_)) => {}
                Err(e) => return Err(describe(path, e)),
            }
        };
    }
    try_type!(i64);
    try_type!(i32);
    try_type!(u8);
    try_type!(u16);
    try_type!(i16);
    try_type!(u32);
    try_type!(u64);
    Err(input_error(
        path,
        "unsupported label dtype (expected int64, int32 or uint8)",
    ))
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
    pub fn for_each_batch<E>(
        &self,
        order: &[usize],
        batch: usize,
        flip_seed: Option<u64>,
        mut f: impl FnMut(&[f32], &[usize]) -> Result<(), E>,
    ) -> Result<(), E> {
        use rand::{RngExt, SeedableRng};
        let (img, w) = (self.image_len(), self.images.shape()[3]);
        let batch = batch.max(1);
        let mut x = vec![0.0f32; batch.min(order.len()) * img];
        let mut y = Vec::with_capacity(batch);
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
