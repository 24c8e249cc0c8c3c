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
mod tests;
