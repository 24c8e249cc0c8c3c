//! Byte mutations shared by the tests that run a fuzz target's body without a fuzzer
//! (`mutations_never_panic` of the TFRecord, `.npy` and ONNX readers): each test adds
//! the mutations that reach its own format's parser.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// How many [`basic`] mutations there are.
pub(crate) const BASIC: usize = 3;

/// Mutation `kind` (< [`BASIC`]) of `b`: 0 flips one bit, 1 cuts the end off, 2
/// overwrites up to seven bytes with random ones. `b` must not be empty.
pub(crate) fn basic(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, kind: usize) {
    match kind {
        0 => {
            let i = rng.random_range(0..b.len());
            b[i] ^= 1 << rng.random_range(0..8);
        }
        1 => b.truncate(rng.random_range(0..b.len())),
        _ => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
        }
    }
}
