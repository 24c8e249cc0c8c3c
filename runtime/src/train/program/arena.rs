//! One allocation for every buffer of a training step (firmware style).
//!
//! An [`ArenaLayout`] hands out [`Region`]s (byte ranges, each starting on a 64-byte
//! boundary so any `f32`/`u32`/`usize` view is aligned and SIMD loads start on a cache
//! line); [`Arena::new`] then makes the one zeroed allocation. Regions may overlap on
//! purpose (the forward ping-pong buffers and the activation-gradient buffers share one
//! scratch region, as the memory plan says): [`Arena::views`] lends several regions at
//! once as mutable views and refuses any two that overlap, so the borrow checker's
//! guarantee (no aliasing `&mut`) holds at run time for every lending. Sub-ranges
//! (the trainable tail of the parameters) need only their element type's alignment.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// Alignment of every region and of the arena itself.
pub const ALIGN: usize = 64;

/// A byte range of the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Region {
    /// Offset from the start of the arena (a multiple of [`ALIGN`]).
    pub offset: usize,
    /// Length in bytes.
    pub bytes: usize,
}

impl Region {
    /// The empty region (lends empty slices).
    pub const EMPTY: Region = Region {
        offset: 0,
        bytes: 0,
    };

    /// A sub-range starting `offset` bytes in (rounded up to [`ALIGN`]), `bytes` long.
    pub fn sub(&self, offset: usize, bytes: usize) -> Region {
        let offset = offset.next_multiple_of(ALIGN);
        debug_assert!(offset + bytes <= self.bytes.next_multiple_of(ALIGN));
        Region {
            offset: self.offset + offset,
            bytes,
        }
    }

    fn overlaps(&self, other: &Region) -> bool {
        self.bytes > 0
            && other.bytes > 0
            && self.offset < other.offset + other.bytes
            && other.offset < self.offset + self.bytes
    }
}

/// Builds the layout of an arena: regions placed one after the other.
#[derive(Debug, Default)]
pub struct ArenaLayout {
    bytes: usize,
}

impl ArenaLayout {
    /// A region of `count` elements of `T`.
    pub fn push<T>(&mut self, count: usize) -> Region {
        let r = Region {
            offset: self.bytes,
            bytes: count * std::mem::size_of::<T>(),
        };
        self.bytes = (self.bytes + r.bytes).next_multiple_of(ALIGN);
        r
    }

    /// Bytes laid out so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Element types a region may be viewed as: plain numbers, every bit pattern valid.
pub trait Plain: Copy + sealed::Sealed {}
impl Plain for f32 {}
impl Plain for u32 {}
impl Plain for usize {}
mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for u32 {}
    impl Sealed for usize {}
}

/// The arena: one zeroed, 64-byte aligned allocation.
pub struct Arena {
    ptr: NonNull<u8>,
    layout: Layout,
}

// Safety: the arena owns its allocation exclusively (like a `Vec<u8>`); views borrow it
// through `&mut self`, so moving it to or sharing `&Arena` with another thread is sound.
unsafe impl Send for Arena {}
// Safety: `&Arena` gives no access to the bytes (every view needs `&mut Arena`).
unsafe impl Sync for Arena {}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({} bytes)", self.layout.size())
    }
}

impl Arena {
    /// Allocates `layout.bytes()` zeroed bytes (at least one [`ALIGN`] block).
    pub fn new(layout: &ArenaLayout) -> Result<Arena> {
        let size = layout.bytes.max(ALIGN);
        let layout = Layout::from_size_align(size, ALIGN)
            .map_err(|e| Error::Invalid(format!("training arena of {size} bytes: {e}")))?;
        // Safety: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or_else(|| {
            Error::Invalid(format!(
                "out of memory allocating the {} training arena",
                crate::units::bytes(size as u64)
            ))
        })?;
        Ok(Arena { ptr, layout })
    }

    /// Size of the allocation in bytes.
    pub fn bytes(&self) -> usize {
        self.layout.size()
    }

    /// Lends `N` regions at once as mutable views; an error when two overlap or one
    /// lies outside the arena (a layout bug, never input-driven).
    pub fn views<const N: usize>(&mut self, regions: [Region; N]) -> Result<[View<'_>; N]> {
        for (i, a) in regions.iter().enumerate() {
            if a.offset % 4 != 0 || a.offset + a.bytes > self.layout.size() {
                return Err(Error::Invalid(format!(
                    "training arena: region {a:?} outside the {}-byte arena",
                    self.layout.size()
                )));
            }
            if let Some(b) = regions[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(Error::Invalid(format!(
                    "training arena: regions {a:?} and {b:?} overlap"
                )));
            }
        }
        Ok(regions.map(|r| View {
            // Safety: the region lies inside the allocation (checked above).
            ptr: unsafe { self.ptr.as_ptr().add(r.offset) },
            bytes: r.bytes,
            _borrow: PhantomData,
        }))
    }

    /// One region, read-only, as a slice of `T`.
    pub fn read<T: Plain>(&self, r: Region) -> Result<&[T]> {
        if !r.offset.is_multiple_of(std::mem::align_of::<T>())
            || r.offset + r.bytes > self.layout.size()
        {
            return Err(Error::Invalid(format!(
                "training arena: region {r:?} outside the {}-byte arena",
                self.layout.size()
            )));
        }
        // Safety: the region is inside the allocation and aligned for `T` (checked
        // above); `&self` excludes every mutable view (they need `&mut self`) for the
        // returned borrow's life; the bytes are initialised and valid for `Plain` `T`.
        Ok(unsafe {
            std::slice::from_raw_parts(
                self.ptr.as_ptr().add(r.offset).cast::<T>(),
                r.bytes / std::mem::size_of::<T>(),
            )
        })
    }

    /// One region as a slice of `T`.
    pub fn slice<T: Plain>(&mut self, r: Region) -> Result<&mut [T]> {
        let [v] = self.views([r])?;
        Ok(v.as_mut())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // Safety: `ptr` came from `alloc_zeroed` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A mutable view of one region, borrowed from the arena.
pub struct View<'a> {
    ptr: *mut u8,
    bytes: usize,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> View<'a> {
    /// The region as `&mut [T]` (its bytes divided by `T`'s size).
    ///
    /// Regions from [`ArenaLayout`] are 64-byte aligned; a sub-range at an offset that
    /// is not a multiple of `T`'s alignment is a layout bug and panics.
    pub fn as_mut<T: Plain>(self) -> &'a mut [T] {
        assert!(
            self.ptr.align_offset(std::mem::align_of::<T>()) == 0,
            "training arena: misaligned view"
        );
        let len = self.bytes / std::mem::size_of::<T>();
        // Safety: the pointer is aligned for `T` (asserted above), the region lies inside the
        // allocation, disjoint from every other view lent by the same call and borrowed
        // mutably from the arena for 'a; the bytes were zero-initialised and every bit
        // pattern is a valid `T` (`Plain`: f32, u32, usize).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<T>(), len) }
    }
}
