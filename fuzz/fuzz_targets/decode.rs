//! Arbitrary bytes into the loader's image decoder (JPEG fast path, PNG and the others
//! through `image`, the pixel limit read from headers, resize, normalise): every input
//! must end in `Ok` or a named `Error::Input`, never a panic, a hang or an allocation
//! beyond the documented limit.
#![no_main]

use edgebench_runtime::data::decode::{Augment, Decoder, Target};
use edgebench_runtime::model::Layout;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let target = Target::new(16, 16, Layout::Nchw);
    let mut out = vec![0f32; target.image_len()];
    let mut dec = Decoder::new(&target);
    let _ = dec.decode_into(data, Augment::default(), &mut out, || "fuzz input".into());
});
