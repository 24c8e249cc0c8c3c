//! Tensor values seen by the analysis: a static shape, an element type and, for small
//! tensors whose contents are known (initializers, `Constant` nodes, folded shape
//! arithmetic), the contents themselves.

use crate::onnx::pb::{TensorProto, data_type};

/// Largest tensor (in elements) whose contents are decoded or folded. Shape tensors are
/// tiny; this only keeps a hostile file from making the analysis allocate gigabytes.
pub(super) const MAX_FOLD: usize = 1 << 16;

/// Known contents of a small tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Data {
    /// Integer and boolean element types.
    Int(Vec<i64>),
    /// Floating-point element types.
    Float(Vec<f64>),
}

impl Data {
    pub(super) fn len(&self) -> usize {
        match self {
            Data::Int(v) => v.len(),
            Data::Float(v) => v.len(),
        }
    }
}

/// One tensor of the graph.
#[derive(Debug, Clone)]
pub(super) struct Value {
    pub shape: Vec<usize>,
    /// ONNX `TensorProto.DataType`; 0 when unknown (counted as float32).
    pub dtype: i32,
    /// Contents, when known; always `numel(shape)` long when present.
    pub data: Option<Data>,
}

impl Value {
    /// A tensor of unknown contents.
    pub(super) fn new(shape: Vec<usize>, dtype: i32) -> Self {
        Value {
            shape,
            dtype,
            data: None,
        }
    }

    /// A tensor with contents; the contents are dropped (not an error) when they do not
    /// match the shape or the tensor is too big to fold.
    pub(super) fn with_data(shape: Vec<usize>, dtype: i32, data: Option<Data>) -> Self {
        let n = numel_usize(&shape);
        let data = data.filter(|d| n.is_some_and(|n| n <= MAX_FOLD && d.len() == n));
        Value { shape, dtype, data }
    }

    /// A 1-D int64 tensor with known contents (a shape, axes, ...).
    pub(super) fn int64_vec(v: Vec<i64>) -> Self {
        Value::with_data(vec![v.len()], data_type::INT64, Some(Data::Int(v)))
    }

    /// Number of elements, saturating.
    pub(super) fn numel(&self) -> u64 {
        numel(&self.shape)
    }

    /// Bytes of the tensor; unknown element types count as float32.
    pub(super) fn bytes(&self) -> u64 {
        let size = data_type::size_of(self.dtype).unwrap_or(4) as u64;
        self.numel().saturating_mul(size)
    }

    /// Integer contents, when known.
    pub(super) fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            Some(Data::Int(v)) => Some(v),
            _ => None,
        }
    }

    /// Contents as floats (integers converted), when known.
    pub(super) fn floats(&self) -> Option<Vec<f64>> {
        match &self.data {
            Some(Data::Float(v)) => Some(v.clone()),
            Some(Data::Int(v)) => Some(v.iter().map(|&x| x as f64).collect()),
            None => None,
        }
    }

    /// The shape and type of an initializer or `Constant` tensor, with its contents when
    /// small and stored inline. Weights need no data: only their dims are used.
    pub(super) fn from_tensor(t: &TensorProto) -> Result<Self, String> {
        let shape = t
            .dims
            .iter()
            .map(|&d| {
                usize::try_from(d).map_err(|_| format!("tensor {:?} has dimension {d}", t.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let data = numel_usize(&shape)
            .filter(|&n| n <= MAX_FOLD)
            .and_then(|n| decode(t, n));
        Ok(Value::with_data(shape, t.data_type, data))
    }
}

/// Product of dims, saturating at `u64::MAX`.
pub(super) fn numel(shape: &[usize]) -> u64 {
    shape
        .iter()
        .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
}

/// Product of dims, `None` on overflow.
pub(super) fn numel_usize(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Whether an element type is floating point.
pub(super) fn is_float(dtype: i32) -> bool {
    matches!(
        dtype,
        data_type::FLOAT | data_type::DOUBLE | data_type::FLOAT16 | data_type::BFLOAT16
    )
}

/// Decode `n` elements of a tensor stored inline (raw little-endian bytes or the typed
/// repeated fields). `None` when the data is external, missing, or of a type not folded.
fn decode(t: &TensorProto, n: usize) -> Option<Data> {
    const EXTERNAL: i32 = 1;
    if t.data_location == EXTERNAL {
        return None;
    }
    let raw = &t.raw_data;
    let data = if raw.is_empty() {
        typed_fields(t)?
    } else {
        decode_raw(t.data_type, raw)?
    };
    (data.len() == n).then_some(data)
}

fn typed_fields(t: &TensorProto) -> Option<Data> {
    use data_type::*;
    Some(match t.data_type {
        FLOAT => Data::Float(t.float_data.iter().map(|&x| f64::from(x)).collect()),
        DOUBLE => Data::Float(t.double_data.clone()),
        INT64 => Data::Int(t.int64_data.clone()),
        INT32 | INT16 | INT8 | UINT16 | UINT8 | BOOL => {
            Data::Int(t.int32_data.iter().map(|&x| i64::from(x)).collect())
        }
        UINT32 | UINT64 => Data::Int(
            t.uint64_data
                .iter()
                .map(|&x| i64::try_from(x).ok())
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

fn decode_raw(dtype: i32, raw: &[u8]) -> Option<Data> {
    use data_type::*;
    let size = size_of(dtype)?;
    if !raw.len().is_multiple_of(size) {
        return None;
    }
    // Each element zero-extended to 64 bits, then reinterpreted per type below.
    let words = raw.chunks_exact(size).map(|c| {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(c);
        u64::from_le_bytes(b)
    });
    // The `as` casts below reinterpret the zero-extended little-endian bits.
    Some(match dtype {
        FLOAT => Data::Float(words.map(|w| f64::from(f32::from_bits(w as u32))).collect()),
        DOUBLE => Data::Float(words.map(f64::from_bits).collect()),
        INT64 => Data::Int(words.map(|w| w as i64).collect()),
        INT32 => Data::Int(words.map(|w| i64::from(w as u32 as i32)).collect()),
        INT16 => Data::Int(words.map(|w| i64::from(w as u16 as i16)).collect()),
        INT8 => Data::Int(words.map(|w| i64::from(w as u8 as i8)).collect()),
        UINT8 | UINT16 | UINT32 | BOOL => Data::Int(words.map(|w| w as i64).collect()),
        UINT64 => Data::Int(
            words
                .map(|w| i64::try_from(w).ok())
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}
