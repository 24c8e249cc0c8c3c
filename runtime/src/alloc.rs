//! Fallible allocation for buffers whose size comes from outside the program: a `.npy`
//! header, `--input-shape`, a model's declared input, `--batch`.
//!
//! Every such size is computed with checked arithmetic ([`numel`], [`bytes_of`]),
//! compared with this machine's physical memory ([`check`]) and only then allocated, with
//! the allocator's failure turned into an error ([`try_zeroed`], [`try_with_capacity`]).
//! A request that cannot be met is a [`TooLarge`] saying what was asked for and what the
//! machine has — never an abort in the allocator or an overflow panic.
//!
//! The limit is physical memory (`MemTotal`, else `sysconf`): a buffer larger than all
//! of RAM can never be used, whatever overcommit lets `malloc` promise.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::error::Error;
use crate::units;

/// A buffer that cannot be allocated: what it was for, the bytes it needs and the
/// machine's physical memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// What the buffer is for, e.g. `a 100000x100000x3x3 f32 tensor`.
    pub what: String,
    /// Bytes needed; `None` when the size overflows 64 bits.
    pub needed: Option<u64>,
    /// Physical memory of this machine, when known.
    pub available: Option<u64>,
    /// The size was within the limit but the allocator refused it.
    pub refused: bool,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.needed, self.refused) {
            (None, _) => write!(
                f,
                "{} is too large: its size in bytes overflows 64 bits",
                self.what
            )?,
            (Some(n), false) => write!(f, "needs {} for {}", units::bytes(n), self.what)?,
            (Some(n), true) => write!(
                f,
                "cannot allocate {} for {}: out of memory",
                units::bytes(n),
                self.what
            )?,
        }
        match self.available {
            Some(m) => write!(f, "; this machine has {}", units::bytes(m)),
            None => Ok(()),
        }
    }
}

impl std::error::Error for TooLarge {}

impl TooLarge {
    /// The library error for an input named by `path` (a file, a model).
    pub fn at(self, path: impl Into<PathBuf>) -> Error {
        Error::Input {
            path: path.into(),
            reason: self.to_string(),
        }
    }
}

/// Physical memory in bytes (`MemTotal` of /proc/meminfo, else
/// `sysconf(_SC_PHYS_PAGES) × page size`); `None` when neither is known.
pub fn physical_memory() -> Option<u64> {
    static MEM: OnceLock<Option<u64>> = OnceLock::new();
    *MEM.get_or_init(|| {
        let total = crate::bench::memory::total_memory();
        if total > 0 {
            return Some(total);
        }
        // Safety: sysconf only reads system configuration; it has no preconditions.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let (pages, page) = (u64::try_from(pages).ok()?, u64::try_from(page).ok()?);
        pages.checked_mul(page).filter(|&b| b > 0)
    })
}

/// Product of `shape`, `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Bytes of `elems` elements of `elem_size` bytes, `None` on overflow (or when `elems`
/// already overflowed).
pub fn bytes_of(elems: Option<usize>, elem_size: usize) -> Option<u64> {
    u64::try_from(elems?.checked_mul(elem_size)?).ok()
}

/// `a 100000x100000x3x3 f32 tensor`: a shape and element type for messages.
pub fn tensor(shape: &[usize], dtype: &str) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("a {} {dtype} tensor", dims.join("x"))
}

/// Number of elements of `shape`, or the error that it overflows (naming `what`).
pub fn elements(shape: &[usize], what: impl FnOnce() -> String) -> Result<usize, TooLarge> {
    numel(shape).ok_or_else(|| TooLarge {
        what: what(),
        needed: None,
        available: physical_memory(),
        refused: false,
    })
}

/// Check that `needed` bytes (`None`: overflowed) fit in physical memory; the bytes.
pub fn check(needed: Option<u64>, what: impl FnOnce() -> String) -> Result<u64, TooLarge> {
    check_against(needed, physical_memory(), what)
}

/// [`check`] against an explicit limit (`None`: unknown, anything that fits in the
/// address space passes).
pub fn check_against(
    needed: Option<u64>,
    limit: Option<u64>,
    what: impl FnOnce() -> String,
) -> Result<u64, TooLarge> {
    let fits = |n: u64| usize::try_from(n).is_ok() && limit.is_none_or(|m| n <= m);
    match needed {
        Some(n) if fits(n) => Ok(n),
        _ => Err(TooLarge {
            what: what(),
            needed,
            available: limit,
            refused: false,
        }),
    }
}

/// Element types whose all-zero bit pattern is a valid value (`0` / `0.0`), so a
/// zero-filled allocation can be handed out as initialised.
///
/// # Safety
/// Implement only for types for which every byte being 0 is a valid value.
pub unsafe trait Zeroable: Copy {}

// Safety: all-zero bits are 0 for every integer type and +0.0 for IEEE floats.
unsafe impl Zeroable for f32 {}
// Safety: as above.
unsafe impl Zeroable for f64 {}
// Safety: as above.
unsafe impl Zeroable for u8 {}
// Safety: as above.
unsafe impl Zeroable for i8 {}
// Safety: as above.
unsafe impl Zeroable for u16 {}
// Safety: as above.
unsafe impl Zeroable for i16 {}
// Safety: as above.
unsafe impl Zeroable for u32 {}
// Safety: as above.
unsafe impl Zeroable for i32 {}
// Safety: as above.
unsafe impl Zeroable for u64 {}
// Safety: as above.
unsafe impl Zeroable for i64 {}
// Safety: as above.
unsafe impl Zeroable for usize {}

/// `n` zeros, checked against physical memory and allocated fallibly. Zeroed pages come
/// from the allocator as `vec![0; n]` does (untouched pages cost no RAM until written).
pub fn try_zeroed<T: Zeroable>(n: usize, what: impl Fn() -> String) -> Result<Vec<T>, TooLarge> {
    let bytes = check(bytes_of(Some(n), std::mem::size_of::<T>()), &what)?;
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| refused(bytes, what()))?;
    // Safety: `layout` has a non-zero size (`bytes` > 0).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(refused(bytes, what()));
    }
    // Safety: `ptr` comes from the global allocator with the layout of `[T; n]`, so
    // capacity `n` matches it; its `n` elements are zero bytes, a valid `T` (`Zeroable`).
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// An empty vector with room for `n` elements, checked against physical memory and
/// reserved with [`Vec::try_reserve_exact`].
pub fn try_with_capacity<T>(n: usize, what: impl Fn() -> String) -> Result<Vec<T>, TooLarge> {
    let bytes = check(bytes_of(Some(n), std::mem::size_of::<T>()), &what)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| refused(bytes, what()))?;
    Ok(v)
}

/// The allocator refused `bytes` although they are within the limit.
fn refused(bytes: u64, what: String) -> TooLarge {
    TooLarge {
        what,
        needed: Some(bytes),
        available: physical_memory(),
        refused: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_and_named() {
        assert_eq!(numel(&[2, 3, 4]), Some(24));
        assert_eq!(numel(&[]), Some(1));
        assert_eq!(numel(&[usize::MAX, 2]), None);
        assert_eq!(bytes_of(Some(6), 4), Some(24));
        assert_eq!(bytes_of(Some(usize::MAX), 4), None);
        assert_eq!(bytes_of(None, 4), None);
        let what = || tensor(&[100000, 100000, 3, 3], "f32");
        let e = check_against(bytes_of(Some(9 * 10usize.pow(10)), 4), Some(25 << 30), what)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "needs 335.3 GiB for a 100000x100000x3x3 f32 tensor; this machine has 25.0 GiB"
        );
        let e = check_against(None, Some(1 << 30), || "the pool".into()).unwrap_err();
        assert!(e.to_string().contains("the pool is too large"), "{e}");
        assert_eq!(check_against(Some(10), Some(10), String::new), Ok(10));
        assert_eq!(
            check_against(Some(u64::MAX), None, String::new).is_err(),
            usize::BITS < 64
        );
    }

    #[test]
    fn impossible_requests_are_errors_not_aborts() {
        let e = try_zeroed::<f32>(usize::MAX / 2, || "a huge tensor".into()).unwrap_err();
        assert!(e.to_string().contains("a huge tensor"), "{e}");
        let e = try_with_capacity::<u64>(usize::MAX / 4, || "a huge list".into()).unwrap_err();
        assert!(e.to_string().contains("a huge list"), "{e}");
        let v = try_zeroed::<f32>(1000, String::new).unwrap();
        assert_eq!((v.len(), v.iter().sum::<f32>()), (1000, 0.0));
        assert!(try_zeroed::<i64>(0, String::new).unwrap().is_empty());
        assert!(try_with_capacity::<u8>(64, String::new).unwrap().capacity() >= 64);
    }

    #[test]
    fn physical_memory_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(physical_memory().is_some_and(|m| m > 1 << 20));
        }
    }
}
