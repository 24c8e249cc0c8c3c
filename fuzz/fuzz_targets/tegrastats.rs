//! Arbitrary bytes as `tegrastats` output into the sampler's line reader (64 KiB cap,
//! here 256 bytes, the rest of a longer line discarded), the line parser and the
//! plausibility check: every line must end in a reading, an error or a dropped sample,
//! never a panic, and a reading that passes the check has every figure in range.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    edgebench_runtime::board::tegrastats::fuzz_one(data);
});
