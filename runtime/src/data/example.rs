//! `tf.train.Example` (tensorflow/core/example/{example,feature}.proto), declared by hand
//! with `prost` derives, plus a zero-copy scanner over its wire format for the hot path.
//!
//! The image keys are the ones TensorFlow's own data sets and the TF Object Detection /
//! slim converters use: `image/encoded` (bytes), `image/class/label` (int64), and the
//! optional `image/format` (bytes), `image/height`, `image/width` (int64) and
//! `image/class/text` (bytes).
//!
//! [`scan`] finds those keys in an encoded Example without allocating: a loader reads a
//! record into its buffer, asks [`scan`] where the image bytes are, and moves them to the
//! front of the same buffer. [`ImageExample`] goes through `prost` (writer, tests).

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::ops::Range;

/// Key of the encoded image bytes.
pub const KEY_ENCODED: &str = "image/encoded";
/// Key of the class index.
pub const KEY_LABEL: &str = "image/class/label";
/// Key of the class name.
pub const KEY_TEXT: &str = "image/class/text";
/// Key of the image format (`jpeg`, `png`, ...).
pub const KEY_FORMAT: &str = "image/format";
/// Key of the image height in pixels.
pub const KEY_HEIGHT: &str = "image/height";
/// Key of the image width in pixels.
pub const KEY_WIDTH: &str = "image/width";

#[derive(Clone, PartialEq, prost::Message)]
pub struct Example {
    #[prost(message, optional, tag = "1")]
    pub features: Option<Features>,
}

/// `map<string, Feature>`; a BTreeMap so that encoding is deterministic (sorted keys).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Features {
    #[prost(btree_map = "string, message", tag = "1")]
    pub feature: BTreeMap<String, Feature>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Feature {
    #[prost(oneof = "Kind", tags = "1, 2, 3")]
    pub kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(message, tag = "1")]
    BytesList(BytesList),
    #[prost(message, tag = "2")]
    FloatList(FloatList),
    #[prost(message, tag = "3")]
    Int64List(Int64List),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BytesList {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub value: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FloatList {
    #[prost(float, repeated, packed = "true", tag = "1")]
    pub value: Vec<f32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Int64List {
    #[prost(int64, repeated, packed = "true", tag = "1")]
    pub value: Vec<i64>,
}

/// One labelled image as stored in a `tf.train.Example`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageExample {
    pub encoded: Vec<u8>,
    pub label: Option<i64>,
    pub class_text: Option<String>,
    pub format: Option<String>,
    pub height: Option<i64>,
    pub width: Option<i64>,
}

fn bytes_feature(v: &[u8]) -> Feature {
    Feature {
        kind: Some(Kind::BytesList(BytesList {
            value: vec![v.to_vec()],
        })),
    }
}

fn int_feature(v: i64) -> Feature {
    Feature {
        kind: Some(Kind::Int64List(Int64List { value: vec![v] })),
    }
}

impl ImageExample {
    /// The `tf.train.Example` message.
    pub fn to_example(&self) -> Example {
        let mut f = BTreeMap::new();
        f.insert(KEY_ENCODED.to_string(), bytes_feature(&self.encoded));
        let ints = [
            (KEY_LABEL, self.label),
            (KEY_HEIGHT, self.height),
            (KEY_WIDTH, self.width),
        ];
        for (k, v) in ints {
            if let Some(v) = v {
                f.insert(k.to_string(), int_feature(v));
            }
        }
        for (k, v) in [(KEY_TEXT, &self.class_text), (KEY_FORMAT, &self.format)] {
            if let Some(v) = v {
                f.insert(k.to_string(), bytes_feature(v.as_bytes()));
            }
        }
        Example {
            features: Some(Features { feature: f }),
        }
    }

    /// Serialized `tf.train.Example` bytes.
    pub fn encode(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&self.to_example())
    }

    /// Parse a serialized Example (through `prost`). Errors are plain reasons; callers
    /// add the file and record.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let ex: Example =
            prost::Message::decode(bytes).map_err(|e| format!("not a tf.train.Example: {e}"))?;
        let feats = ex.features.map(|f| f.feature).unwrap_or_default();
        let bytes_of = |k: &str| match feats.get(k).and_then(|f| f.kind.as_ref()) {
            Some(Kind::BytesList(b)) => b.value.first().cloned(),
            _ => None,
        };
        let int_of = |k: &str| match feats.get(k).and_then(|f| f.kind.as_ref()) {
            Some(Kind::Int64List(l)) => l.value.first().copied(),
            _ => None,
        };
        let text = |k: &str| bytes_of(k).map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(ImageExample {
            encoded: bytes_of(KEY_ENCODED).ok_or("no image/encoded bytes feature")?,
            label: int_of(KEY_LABEL),
            class_text: text(KEY_TEXT),
            format: text(KEY_FORMAT),
            height: int_of(KEY_HEIGHT),
            width: int_of(KEY_WIDTH),
        })
    }
}

/// What [`scan`] found in an encoded Example. Ranges index the scanned slice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scanned {
    /// First value of `image/encoded`.
    pub encoded: Option<Range<usize>>,
    /// First value of `image/class/label`.
    pub label: Option<i64>,
    /// First value of `image/class/text`.
    pub text: Option<Range<usize>>,
}

/// Protobuf wire types.
const VARINT: u64 = 0;
const I64: u64 = 1;
const LEN: u64 = 2;
const I32: u64 = 5;

/// One field: (field number, wire type, payload range, varint value).
type Field = (u64, u64, Range<usize>, u64);

/// A cursor over protobuf wire format that never allocates and never panics.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8], range: Range<usize>) -> Self {
        Wire {
            buf,
            pos: range.start,
            end: range.end,
        }
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .filter(|_| self.pos < self.end)
                .ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    /// Next field: (field number, wire type, range of a LEN payload or the value).
    fn field(&mut self) -> Result<Option<Field>, &'static str> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        let start = self.pos;
        let (range, value) = match wt {
            VARINT => {
                let v = self.varint()?;
                (start..self.pos, v)
            }
            I64 | I32 => {
                let n = if wt == I64 { 8 } else { 4 };
                self.skip(n)?;
                (start..self.pos, 0)
            }
            LEN => {
                let n = self.varint()?;
                let s = self.pos;
                self.skip(usize::try_from(n).map_err(|_| "length too large")?)?;
                (s..self.pos, 0)
            }
            _ => return Err("unsupported protobuf wire type"),
        };
        Ok(Some((num, wt, range, value)))
    }

    fn skip(&mut self, n: usize) -> Result<(), &'static str> {
        match self.pos.checked_add(n) {
            Some(p) if p <= self.end => {
                self.pos = p;
                Ok(())
            }
            _ => Err("field runs past the end of the message"),
        }
    }
}

/// Apply one encoded `Feature` to `found`, the first `bytes` value of its `bytes_list`.
/// Protobuf merge semantics: a repeated Feature merges (lists concatenate, so the first
/// value stays), another oneof member replaces the list.
fn first_bytes(
    buf: &[u8],
    feature: Range<usize>,
    found: &mut Option<Range<usize>>,
) -> Result<(), &'static str> {
    let mut w = Wire::new(buf, feature);
    while let Some((num, wt, r, _)) = w.field()? {
        if num == 1 && wt == LEN {
            let mut list = Wire::new(buf, r);
            while let Some((n, t, v, _)) = list.field()? {
                if n == 1 && t == LEN && found.is_none() {
                    *found = Some(v);
                }
            }
        } else if num == 2 || num == 3 {
            *found = None;
        }
    }
    Ok(())
}

/// Like [`first_bytes`] for the first value of an `int64_list` (packed or not).
fn first_int64(
    buf: &[u8],
    feature: Range<usize>,
    found: &mut Option<i64>,
) -> Result<(), &'static str> {
    let mut w = Wire::new(buf, feature);
    while let Some((num, wt, r, _)) = w.field()? {
        if num == 3 && wt == LEN {
            let mut list = Wire::new(buf, r);
            while let Some((n, t, v, value)) = list.field()? {
                match (n, t) {
                    (1, VARINT) if found.is_none() => *found = Some(value as i64),
                    (1, LEN) if found.is_none() => {
                        let mut packed = Wire::new(buf, v.clone());
                        if v.start < v.end {
                            *found = Some(packed.varint()? as i64);
                        }
                    }
                    _ => {}
                }
            }
        } else if num == 1 || num == 2 {
            *found = None;
        }
    }
    Ok(())
}

/// Find the image bytes, label and class text in an encoded `tf.train.Example` without
/// allocating. As with protobuf map semantics, a key that appears twice takes its last
/// value. Errors are plain reasons (malformed wire format); callers add file and record.
pub fn scan(buf: &[u8]) -> Result<Scanned, &'static str> {
    let mut out = Scanned::default();
    let mut ex = Wire::new(buf, 0..buf.len());
    while let Some((num, wt, feats, _)) = ex.field()? {
        if num != 1 || wt != LEN {
            continue;
        }
        let mut fs = Wire::new(buf, feats);
        while let Some((n, t, entry, _)) = fs.field()? {
            if n != 1 || t != LEN {
                continue;
            }
            // A map entry: the last key wins; repeated values merge in order.
            let mut key = None;
            let mut e = Wire::new(buf, entry.clone());
            while let Some((en, et, r, _)) = e.field()? {
                if (en, et) == (1, LEN) {
                    key = Some(r);
                }
            }
            let Some(key) = key else { continue };
            let k = &buf[key];
            let mut e = Wire::new(buf, entry);
            let (mut enc, mut label, mut text) = (None, None, None);
            while let Some((en, et, value, _)) = e.field()? {
                if (en, et) != (2, LEN) {
                    continue;
                }
                if k == KEY_ENCODED.as_bytes() {
                    first_bytes(buf, value, &mut enc)?;
                } else if k == KEY_LABEL.as_bytes() {
                    first_int64(buf, value, &mut label)?;
                } else if k == KEY_TEXT.as_bytes() {
                    first_bytes(buf, value, &mut text)?;
                }
            }
            if k == KEY_ENCODED.as_bytes() {
                out.encoded = enc;
            } else if k == KEY_LABEL.as_bytes() {
                out.label = label;
            } else if k == KEY_TEXT.as_bytes() {
                out.text = text;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageExample {
        ImageExample {
            encoded: vec![0xff, 0xd8, 1, 2, 3, 0xff, 0xd9],
            label: Some(3),
            class_text: Some("cat".into()),
            format: Some("jpeg".into()),
            height: Some(4),
            width: Some(5),
        }
    }

    #[test]
    fn prost_round_trip() {
        let e = sample();
        assert_eq!(ImageExample::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn scanner_agrees_with_prost() {
        let e = sample();
        let bytes = e.encode();
        let s = scan(&bytes).unwrap();
        assert_eq!(&bytes[s.encoded.unwrap()], &e.encoded[..]);
        assert_eq!(s.label, Some(3));
        assert_eq!(&bytes[s.text.unwrap()], b"cat");
        let neg = ImageExample {
            label: Some(-1),
            ..sample()
        };
        assert_eq!(scan(&neg.encode()).unwrap().label, Some(-1));
    }

    #[test]
    fn missing_encoded_and_garbage() {
        let e = ImageExample {
            encoded: vec![],
            ..sample()
        }
        .to_example();
        let mut e2 = e.clone();
        if let Some(f) = e2.features.as_mut() {
            f.feature.remove(KEY_ENCODED);
        }
        let bytes = prost::Message::encode_to_vec(&e2);
        assert_eq!(scan(&bytes).unwrap().encoded, None);
        assert!(ImageExample::decode(&bytes).is_err());
        assert!(scan(&[0x0a, 0xff, 0xff]).is_err());
        assert!(scan(&[0x0b]).is_err());
    }
}
