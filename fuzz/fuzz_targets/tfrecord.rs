//! Arbitrary bytes into the TFRecord reader (framing, both CRCs, the 64 MiB length
//! limit) and the `tf.train.Example` decoders (zero-copy scanner and prost), which must
//! agree on the image bytes and label whenever both succeed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    edgebench_runtime::data::tfrecord::fuzz_one(data);
});
