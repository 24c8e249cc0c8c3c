//! Arbitrary bytes into the `.npy` reader (magic, version, header dict, the declared data
//! size checked against the length, every dtype and byte order, as tensor and as labels):
//! every input must end in `Ok` or a named error, never a panic or an allocation larger
//! than the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    edgebench_runtime::data::npy::fuzz_one(data);
});
