//! The `.npy` header: magic string, format version (1.0, 2.0 or 3.0), header length and
//! the Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
//!
//! The header is parsed here so that the data size it declares can be checked against
//! the file's length and the machine's memory before anything is allocated. The parser
//! takes the literals `numpy.lib.format` writes (strings in either quote, `True`/`False`,
//! integers, tuples and lists), bounded in length and nesting depth.

use std::io::Read;

/// Longest header accepted (numpy itself refuses headers over 10,000 bytes by default).
pub(super) const MAX_HEADER: u64 = 1 << 20;
/// Deepest nesting of tuples and lists in the dict (structured dtypes nest a few levels).
const MAX_DEPTH: usize = 16;

/// Kind of element, from the `descr` type character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Float,
    Int,
    Uint,
}

/// An element type the readers can decode: kind, size in bytes and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dtype {
    pub kind: Kind,
    pub size: usize,
    pub big_endian: bool,
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    /// The element type, `Err(descr)` when it is not one the readers decode.
    pub dtype: Result<Dtype, String>,
    /// The `descr` as written, for messages.
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Bytes before the data (magic, version, length field and dict).
    pub len: u64,
}

/// Why a header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HeaderError {
    /// The file ends inside the header.
    Truncated,
    /// Not the `\x93NUMPY` magic string.
    Magic,
    /// Anything else, as one line.
    Bad(String),
}

/// Read a header from `r`, a file of `file_len` bytes.
pub(super) fn read(r: &mut impl Read, file_len: u64) -> Result<Header, HeaderError> {
    let mut prefix = [0u8; 8];
    read_exact(r, &mut prefix)?;
    if &prefix[..6] != b"\x93NUMPY" {
        return Err(HeaderError::Magic);
    }
    let (major, minor) = (prefix[6], prefix[7]);
    let (field, utf8) = match major {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        _ => {
            return Err(HeaderError::Bad(format!(
                "unsupported .npy format version {major}.{minor}"
            )));
        }
    };
    let mut len_bytes = [0u8; 4];
    read_exact(r, &mut len_bytes[..field])?;
    let dict_len = u64::from(u32::from_le_bytes(len_bytes));
    let len = 8 + field as u64 + dict_len;
    if len > file_len {
        return Err(HeaderError::Truncated);
    }
    if dict_len > MAX_HEADER {
        return Err(HeaderError::Bad(format!(
            "the header is {dict_len} bytes long, over the limit of {MAX_HEADER}"
        )));
    }
    let mut dict = vec![0u8; dict_len as usize];
    read_exact(r, &mut dict)?;
    let text = if utf8 {
        String::from_utf8(dict).map_err(|_| bad("the header is not UTF-8"))?
    } else if dict.is_ascii() {
        String::from_utf8(dict).map_err(|_| bad("the header is not ASCII"))?
    } else {
        return Err(bad("the header is not ASCII"));
    };
    let mut header = parse_dict(&text)?;
    header.len = len;
    Ok(header)
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), HeaderError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => HeaderError::Truncated,
        _ => HeaderError::Bad(format!("cannot read the header: {e}")),
    })
}

fn bad(reason: &str) -> HeaderError {
    HeaderError::Bad(format!("bad .npy header: {reason}"))
}

/// A Python literal as found in the header dict.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(i128),
    Seq(Vec<Lit>),
}

/// Parse the dict (with its trailing padding) into a header of length 0.
fn parse_dict(text: &str) -> Result<Header, HeaderError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let entries = p.dict()?;
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(bad("unexpected text after the dict"));
    }
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| HeaderError::Bad(format!("bad .npy header: no {key:?} key")))
    };
    let fortran_order = match get("fortran_order")? {
        Lit::Bool(b) => *b,
        _ => return Err(bad("'fortran_order' is not True or False")),
    };
    let shape = match get("shape")? {
        Lit::Seq(dims) => dims
            .iter()
            .map(|d| match d {
                Lit::Int(v) => usize::try_from(*v)
                    .map_err(|_| HeaderError::Bad(format!("bad .npy header: dimension {v}"))),
                _ => Err(bad("'shape' holds something other than integers")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("'shape' is not a tuple")),
    };
    let (dtype, descr) = match get("descr")? {
        Lit::Str(s) => (parse_descr(s).ok_or_else(|| s.clone()), s.clone()),
        other => {
            let d = format!("{other:?}");
            (Err(d.clone()), d)
        }
    };
    Ok(Header {
        dtype,
        descr,
        fortran_order,
        shape,
        len: 0,
    })
}

/// `<f4`, `>i8`, `|u1`, `=f8` …; `None` for types the readers do not decode.
fn parse_descr(s: &str) -> Option<Dtype> {
    let b = s.as_bytes();
    let (order, rest) = match b.first()? {
        c @ (b'<' | b'>' | b'|' | b'=') => (*c, &b[1..]),
        _ => (b'=', b),
    };
    let (&t, digits) = rest.split_first()?;
    let size: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let kind = match (t, size) {
        (b'f', 4 | 8) => Kind::Float,
        (b'i', 1 | 2 | 4 | 8) => Kind::Int,
        (b'u', 1 | 2 | 4 | 8) => Kind::Uint,
        _ => return None,
    };
    let big_endian = match order {
        b'>' => true,
        b'=' => cfg!(target_endian = "big"),
        _ => false,
    };
    Some(Dtype {
        kind,
        size,
        big_endian,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\0'))
        {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), HeaderError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(HeaderError::Bad(format!(
                "bad .npy header: expected {:?} at byte {}",
                c as char, self.i
            )))
        }
    }

    fn dict(&mut self) -> Result<Vec<(String, Lit)>, HeaderError> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(entries);
            }
            let key = match self.lit(0)? {
                Lit::Str(k) => k,
                _ => return Err(bad("a dict key is not a string")),
            };
            self.expect(b':')?;
            let value = self.lit(0)?;
            entries.push((key, value));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(bad("expected ',' or '}' in the dict")),
            }
        }
    }

    fn lit(&mut self, depth: usize) -> Result<Lit, HeaderError> {
        if depth > MAX_DEPTH {
            return Err(bad("nested too deeply"));
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.s.get(self.i).is_some_and(|&c| c != q) {
                    if self.s[self.i] == b'\\' {
                        return Err(bad("escapes in strings are not supported"));
                    }
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err(bad("unterminated string"));
                }
                let s = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Lit::Str(s))
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        return Ok(Lit::Seq(items));
                    }
                    items.push(self.lit(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(c) if c == close => {}
                        _ => return Err(bad("expected ',' or the end of a tuple")),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = self.i;
                self.i += 1;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                let v = text
                    .parse::<i128>()
                    .map_err(|_| HeaderError::Bad(format!("bad .npy header: integer {text}")))?;
                // Python 2 wrote long integers with an `L` suffix.
                if matches!(self.s.get(self.i), Some(b'L' | b'l')) {
                    self.i += 1;
                }
                Ok(Lit::Int(v))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_alphanumeric) {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Lit::Bool(true)),
                    b"False" => Ok(Lit::Bool(false)),
                    other => Err(HeaderError::Bad(format!(
                        "bad .npy header: unexpected {:?}",
                        String::from_utf8_lossy(other)
                    ))),
                }
            }
            _ => Err(bad("expected a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(s: &str) -> Result<Header, HeaderError> {
        parse_dict(s)
    }

    #[test]
    fn numpy_headers_parse() {
        let h = dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }    \n").unwrap();
        assert_eq!(h.shape, vec![2, 3]);
        assert!(!h.fortran_order);
        assert_eq!(
            h.dtype,
            Ok(Dtype {
                kind: Kind::Float,
                size: 4,
                big_endian: false
            })
        );
        let h = dict(r#"{"shape": (), "fortran_order": True, "descr": ">i8"}"#).unwrap();
        assert_eq!((h.shape.len(), h.fortran_order), (0, true));
        assert!(h.dtype.unwrap().big_endian);
        let h = dict("{'descr': '|u1', 'fortran_order': False, 'shape': (7L,), }").unwrap();
        assert_eq!(h.shape, vec![7]);
        let h = dict("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}").unwrap();
        assert!(h.dtype.is_err(), "{h:?}");
        assert!(
            dict("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}")
                .unwrap()
                .dtype
                .is_err()
        );
    }

    #[test]
    fn bad_dicts_are_errors() {
        for s in [
            "",
            "{",
            "{'descr': '<f4'}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} trailing",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999,)}",
            "{'descr: '<f4'}",
            &format!("{{'x': {}", "(".repeat(100)),
        ] {
            assert!(dict(s).is_err(), "{s}");
        }
    }
}
