//! The context of one node during inference: its inputs, attributes, and errors that
//! name the file, the node and the operator.

use std::fmt::Display;
use std::path::Path;

use super::value::Value;
use crate::error::Error;
use crate::onnx::pb::{AttributeProto, NodeProto};

pub(super) type Result<T> = std::result::Result<T, Error>;

/// One node being inferred.
pub(super) struct Cx<'a> {
    pub path: &'a Path,
    pub node: &'a NodeProto,
    /// The node's display name (its name, else its first output).
    pub name: &'a str,
    /// Inputs by position; `None` for an omitted optional input (empty name).
    pub ins: Vec<Option<&'a Value>>,
}

impl<'a> Cx<'a> {
    pub fn op(&self) -> &'a str {
        &self.node.op_type
    }

    /// A required input.
    pub fn input(&self, i: usize) -> Result<&'a Value> {
        self.opt(i)
            .ok_or_else(|| self.invalid(format!("missing required input #{i}")))
    }

    /// An optional input.
    pub fn opt(&self, i: usize) -> Option<&'a Value> {
        self.ins.get(i).copied().flatten()
    }

    /// An optional input that counts as absent when empty (exporters write empty
    /// tensors for "not given", e.g. `Resize` roi/scales).
    pub fn opt_nonempty(&self, i: usize) -> Option<&'a Value> {
        self.opt(i).filter(|v| v.numel() > 0)
    }

    /// Integer contents of input `i`, which must be known (a constant or folded).
    pub fn const_ints(&self, i: usize, what: &str) -> Result<&'a [i64]> {
        let v = self.input(i)?;
        v.ints().ok_or_else(|| {
            self.unsupported(format!(
                "{what} (input #{i}) is not a constant; the analysis needs it to infer shapes"
            ))
        })
    }

    /// Integer list from attribute `attr` or, when absent, from input `i` (ONNX moved
    /// many attributes to inputs across opsets). `None` when neither is given.
    pub fn ints_attr_or_input(&self, attr: &str, i: usize) -> Result<Option<Vec<i64>>> {
        if let Some(v) = self.ints(attr) {
            return Ok(Some(v.to_vec()));
        }
        match self.opt(i) {
            Some(_) => Ok(Some(self.const_ints(i, attr)?.to_vec())),
            None => Ok(None),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map_or(default, |a| a.i)
    }

    pub fn ints(&self, name: &str) -> Option<&'a [i64]> {
        self.attr(name).map(|a| a.ints.as_slice())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// Normalize a possibly negative `axis` against `rank` (valid: `-rank..rank`).
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        let r = rank as i128;
        let a = i128::from(axis);
        let a = if a < 0 { a + r } else { a };
        if (0..r).contains(&a) {
            Ok(a as usize)
        } else {
            Err(self.invalid(format!("axis {axis} is out of range for rank {rank}")))
        }
    }

    /// Convert a computed dimension, which must be non-negative.
    pub fn dim(&self, d: i128, what: &str) -> Result<usize> {
        usize::try_from(d).map_err(|_| self.invalid(format!("{what} would be {d}")))
    }

    pub fn unsupported(&self, detail: impl Into<String>) -> Error {
        Error::UnsupportedOp {
            path: self.path.to_path_buf(),
            node: self.name.to_string(),
            op: self.op().to_string(),
            detail: Some(detail.into()),
        }
    }

    pub fn invalid(&self, reason: impl Display) -> Error {
        Error::InvalidOnnx {
            path: self.path.to_path_buf(),
            reason: format!("node {:?} ({}): {reason}", self.name, self.op()),
        }
    }

    pub fn shape_err(&self, what: &str, expected: impl Display, got: impl Display) -> Error {
        Error::Shape {
            what: format!(
                "{}: node {:?} ({}): {what}",
                self.path.display(),
                self.name,
                self.op()
            ),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

/// `[1, 3, 256, 256]`.
pub(super) fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}
