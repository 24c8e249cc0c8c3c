//! A counting global allocator for the zero-allocation tests: every allocation
//! (`alloc`, `alloc_zeroed`, `realloc`) bumps one global counter, for all threads, and
//! one counter of the allocating thread's own; frees are not counted. Declaring
//! `mod alloc_support;` installs it as the test binary's allocator.
//!
//! The global counter sees every thread, so tests in one file that read [`count`] take
//! turns through [`serial`]; tests that read [`thread_count`] need not.
#![allow(dead_code)] // each test file uses its own subset

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // `const`, with no destructor: reading it never allocates.
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// Count one allocation, globally and on this thread (not at all while the thread's
/// locals are being torn down).
fn counted() {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// Safety: every call is forwarded unchanged to the system allocator; the counters are a
// relaxed atomic and a thread-local cell, with no other effect.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // Safety: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        // Safety: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
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

/// Allocations so far on the calling thread.
pub fn thread_count() -> u64 {
    THREAD_ALLOCS.with(|c| c.get())
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Hold this for the whole of a test that reads [`count`]: the counter is
/// global, so such tests take turns. A panic in another test does not poison it.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
