//! Measuring models: [`compare::compare`] from models to report; the models measured
//! side by side in worker processes, in interleaved rounds ([`interleave`]); scenarios
//! (SingleStream latency, Offline throughput), statistics, process memory, the machine's
//! GEMM peak, per-node profiles; the input pipeline alone ([`input::measure`]); one
//! model on one input ([`single::time`]). The figures land in [`crate::report::schema`], the one
//! report schema every format renders.

pub mod compare;
pub mod hw;
pub mod input;
pub mod interleave;
pub mod machine;
pub mod memory;
pub mod pipeline;
pub mod profile;
pub mod runner;
pub mod single;
pub mod stats;
pub mod sweep;
pub mod worker;
