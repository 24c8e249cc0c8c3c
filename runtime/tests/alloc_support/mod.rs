//! A counting global allocator for the zero-allocation tests: every allocation on any
//! thread (`alloc`, `alloc_zeroed`, `realloc`) bumps one global counter; frees are not
//! counted. Declaring `mod alloc_support;` installs it as the test binary's allocator.
//!
//! The counter is global, so tests in one file take turns through [`serial`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// Safety: every call is forwarded unchanged to the system allocator; the counter is a
// relaxed atomic with no other effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // Safety: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // Safety: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // Safety: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations so far, on all threads.
pub fn count() -> u64 {
    ALLOCS.load(Ordering::SeqCst)
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Hold this for the whole of a test that reads [`count`]: the counter is
/// global, so such tests take turns. A panic in another test does not poison it.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
