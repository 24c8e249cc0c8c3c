//! The instruction-set path of edgebench's own kernels (the trainer's SGEMM, Winograd and
//! direct convolutions, the loader's normalisation), chosen once per process: the best
//! this CPU runs, or the one `EDGEBENCH_SIMD` names (`portable`, `avx2`, `neon`), for
//! measurement and tests. Every kernel asks [`active`] instead of detecting CPU features
//! itself, so a new path is one more variant here and one more kernel body, not edits at
//! every call site. `edgebench hw`, `train`'s header and every JSON report name the path
//! that ran.
//!
//! The hand-written bodies (the SGEMM micro-kernel, the direct and Winograd weight-gradient
//! dot products, the loader's normalisation) exist for x86-64 AVX2 + FMA and for AArch64
//! NEON (ARMv8.0 Advanced SIMD only, so they run on the Jetson Nano's Cortex-A57; NEON is
//! part of every AArch64 CPU, so nothing is detected). The rest of the kernels are plain
//! Rust that the compiler vectorises: for the build's baseline (NEON on AArch64) and, on
//! x86-64, once more with AVX2 + FMA enabled.

use std::sync::OnceLock;

/// A kernel path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// Plain Rust, auto-vectorised for the build's baseline: on every CPU.
    Portable,
    /// x86-64 AVX2 + FMA, detected at run time.
    Avx2,
    /// AArch64 Advanced SIMD (ARMv8.0 NEON, fused multiply-add): on every AArch64 CPU.
    Neon,
}

/// The environment variable that forces a path.
pub const SIMD_ENV: &str = "EDGEBENCH_SIMD";

impl Simd {
    /// `portable`, `avx2` or `neon`: what `EDGEBENCH_SIMD` takes and reports show.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Avx2 => "avx2",
            Simd::Neon => "neon",
        }
    }

    /// The paths this CPU runs, fastest first.
    pub fn available() -> Vec<Simd> {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        if avx2 {
            vec![Simd::Avx2, Simd::Portable]
        } else if cfg!(target_arch = "aarch64") {
            vec![Simd::Neon, Simd::Portable]
        } else {
            vec![Simd::Portable]
        }
    }

    /// Parse a path name; one this CPU cannot run is refused, saying which it can.
    pub fn parse(name: &str) -> Result<Simd, String> {
        let avail = Simd::available();
        let names = avail
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ");
        let simd = match name.trim().to_ascii_lowercase().as_str() {
            "portable" | "scalar" => Simd::Portable,
            "avx2" => Simd::Avx2,
            "neon" => Simd::Neon,
            other => {
                return Err(format!(
                    "unknown kernel path '{other}' (this CPU runs: {names})"
                ));
            }
        };
        if !avail.contains(&simd) {
            return Err(format!(
                "{} kernels cannot run on this CPU (it runs: {names})",
                simd.name()
            ));
        }
        Ok(simd)
    }

    /// The path `EDGEBENCH_SIMD` names, else the fastest available; an error names the
    /// variable and its bad value.
    pub fn from_env() -> Result<Simd, String> {
        match std::env::var(SIMD_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                Simd::parse(&v).map_err(|e| format!("{SIMD_ENV}={v}: {e}"))
            }
            _ => Ok(Simd::available()[0]),
        }
    }
}

/// The process's path: [`Simd::from_env`], read once; a bad value (which the CLI refuses
/// at start-up) falls back to the fastest available.
pub fn active() -> Simd {
    static ACTIVE: OnceLock<Simd> = OnceLock::new();
    *ACTIVE.get_or_init(|| Simd::from_env().unwrap_or(Simd::available()[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unavailable_paths_are_refused() {
        assert_eq!(Simd::parse("portable"), Ok(Simd::Portable));
        assert_eq!(Simd::parse(" Scalar "), Ok(Simd::Portable));
        assert!(Simd::available().ends_with(&[Simd::Portable]));
        let e = Simd::parse("sse9").unwrap_err();
        assert!(e.contains("unknown kernel path 'sse9'"), "{e}");
        for name in ["avx2", "neon"] {
            match Simd::parse(name) {
                Ok(s) => assert!(Simd::available().contains(&s) && s.name() == name),
                Err(e) => assert!(
                    e.contains(&format!("{name} kernels cannot run on this CPU")),
                    "{e}"
                ),
            }
        }
        assert_eq!(
            Simd::available()[0] == Simd::Neon,
            cfg!(target_arch = "aarch64")
        );
        if std::env::var_os(SIMD_ENV).is_none() {
            assert_eq!(active(), Simd::available()[0]);
        }
    }
}
