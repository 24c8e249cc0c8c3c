//! Measuring models: scenarios (SingleStream latency, Offline throughput), statistics,
//! process memory, the machine's GEMM peak, per-node profiles, and the [`result`] types
//! every report renders.

pub mod profile;
pub mod result;
