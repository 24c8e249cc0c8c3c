//! Constant folding of small integer tensors, so that the shape arithmetic exporters
//! emit (`Shape → Gather → Unsqueeze → Concat → Reshape`, `Shape → Slice → Concat`)
//! resolves to static shapes. Every function returns `None` rather than fail: a tensor
//! that cannot be folded is simply of unknown contents.

use super::value::{MAX_FOLD, numel_usize};

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// Output size, when small enough to fold.
fn foldable(shape: &[usize]) -> Option<usize> {
    numel_usize(shape).filter(|&n| n <= MAX_FOLD)
}

/// For each element of `out` (row-major), the flat index of the element of a tensor of
/// shape `shape` it reads under numpy broadcasting.
pub(super) fn broadcast_map(shape: &[usize], out: &[usize]) -> Option<Vec<usize>> {
    let n = foldable(out)?;
    let offset = out.len().checked_sub(shape.len())?;
    let in_strides = strides(shape);
    let out_strides = strides(out);
    (0..n)
        .map(|flat| {
            let mut idx = 0usize;
            for (k, (&d, &s)) in shape.iter().zip(&in_strides).enumerate() {
                let coord = (flat / out_strides.get(k + offset)?) % out.get(k + offset)?;
                if d != 1 {
                    idx += coord * s;
                }
            }
            Some(idx)
        })
        .collect()
}

/// Elementwise integer arithmetic with broadcasting.
pub(super) fn binary(
    op: &str,
    a: (&[i64], &[usize]),
    b: (&[i64], &[usize]),
    out: &[usize],
) -> Option<Vec<i64>> {
    let f: fn(i64, i64) -> Option<i64> = match op {
        "Add" => |x, y| Some(x.wrapping_add(y)),
        "Sub" => |x, y| Some(x.wrapping_sub(y)),
        "Mul" => |x, y| Some(x.wrapping_mul(y)),
        "Div" => |x, y| x.checked_div(y),
        "Max" => |x, y| Some(x.max(y)),
        "Min" => |x, y| Some(x.min(y)),
        _ => return None,
    };
    let ma = broadcast_map(a.1, out)?;
    let mb = broadcast_map(b.1, out)?;
    ma.iter()
        .zip(&mb)
        .map(|(&i, &j)| f(*a.0.get(i)?, *b.0.get(j)?))
        .collect()
}

/// `Gather` along `axis` with (already validated, non-negative) `indices`.
pub(super) fn gather(
    data: &[i64],
    shape: &[usize],
    axis: usize,
    indices: &[usize],
) -> Option<Vec<i64>> {
    let outer = numel_usize(shape.get(..axis)?)?;
    let dim = *shape.get(axis)?;
    let inner = numel_usize(shape.get(axis + 1..)?)?;
    foldable(&[outer, indices.len(), inner])?;
    let mut out = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in indices {
            let start = (o * dim + i) * inner;
            out.extend_from_slice(data.get(start..start + inner)?);
        }
    }
    Some(out)
}

/// `Concat` along `axis` of tensors given as (data, shape).
pub(super) fn concat(parts: &[(&[i64], &[usize])], axis: usize) -> Option<Vec<i64>> {
    let first = parts.first()?.1;
    let outer = numel_usize(first.get(..axis)?)?;
    let chunks: Vec<usize> = parts
        .iter()
        .map(|(_, s)| numel_usize(s.get(axis..)?))
        .collect::<Option<_>>()?;
    let total = chunks.iter().try_fold(0usize, |a, &c| a.checked_add(c))?;
    foldable(&[outer, total])?;
    let mut out = Vec::with_capacity(outer * total);
    for o in 0..outer {
        for ((data, _), &c) in parts.iter().zip(&chunks) {
            out.extend_from_slice(data.get(o * c..(o + 1) * c)?);
        }
    }
    Some(out)
}

/// `Slice`: output element at coordinate `c` reads input coordinate
/// `start[k] + c[k] * step[k]` on every axis.
pub(super) fn slice(
    data: &[i64],
    shape: &[usize],
    start: &[i64],
    step: &[i64],
    out: &[usize],
) -> Option<Vec<i64>> {
    let n = foldable(out)?;
    let in_strides = strides(shape);
    let out_strides = strides(out);
    (0..n)
        .map(|flat| {
            let mut idx = 0i64;
            for k in 0..out.len() {
                let coord = (flat / out_strides.get(k)?) % out.get(k)?;
                let c = start
                    .get(k)?
                    .checked_add((coord as i64).checked_mul(*step.get(k)?)?)?;
                idx = idx.checked_add(c.checked_mul(*in_strides.get(k)? as i64)?)?;
            }
            data.get(usize::try_from(idx).ok()?).copied()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_gather_concat_slice_and_broadcast() {
        // [[1,2,3],[4,5,6]] gathered on axis 1 at [2,0]
        let d = [1, 2, 3, 4, 5, 6];
        assert_eq!(gather(&d, &[2, 3], 1, &[2, 0]), Some(vec![3, 1, 6, 4]));
        assert_eq!(gather(&d, &[6], 0, &[5]), Some(vec![6]));
        assert_eq!(
            concat(&[(&[1, 2], &[2]), (&[7], &[1])], 0),
            Some(vec![1, 2, 7])
        );
        assert_eq!(
            concat(&[(&[1, 2, 3, 4], &[2, 2]), (&[9, 8], &[2, 1])], 1),
            Some(vec![1, 2, 9, 3, 4, 8])
        );
        // reverse a 1-D tensor: start 5, step -2 → 6, 4, 2
        assert_eq!(slice(&d, &[6], &[5], &[-2], &[3]), Some(vec![6, 4, 2]));
        assert_eq!(
            binary("Mul", (&[2, 3], &[2]), (&[10], &[]), &[2]),
            Some(vec![20, 30])
        );
        assert_eq!(binary("Div", (&[1], &[1]), (&[0], &[1]), &[1]), None);
        assert_eq!(
            broadcast_map(&[2, 1], &[2, 3]),
            Some(vec![0, 0, 0, 1, 1, 1])
        );
    }
}
