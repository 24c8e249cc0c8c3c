//! The trainer's helper threads: started once at set-up, woken for each parallel GEMM,
//! and allocating nothing per call (a futex-backed `Mutex`/`Condvar` pair hands over a
//! borrowed closure; the caller runs part 0 itself and waits for the others).
//!
//! rayon would do the same work, but a `join` from outside its pool pushes the job onto
//! a global injector queue that allocates a new block every 63 jobs, so a training step
//! would not be allocation-free.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// A borrowed `Fn(part)` with its lifetime erased (see [`Workers::run`]).
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync + 'static),
    parts: usize,
}

// Safety: the closure behind `f` is `Sync` and outlives every use: `run` does not return
// before each helper has finished calling it and dropped its copy of the pointer.
unsafe impl Send for Job {}

struct State {
    generation: u64,
    job: Option<Job>,
    pending: usize,
    panicked: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a part panicked, which `panicked` reports.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fixed set of helper threads.
pub struct Workers {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workers({} helpers)", self.handles.len())
    }
}

impl Workers {
    /// Starts `helpers` threads (0: every call runs on the caller's thread).
    pub fn new(helpers: usize) -> Result<Workers> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                pending: 0,
                panicked: false,
                shutdown: false,
            }),
            start: Condvar::new(),
            done: Condvar::new(),
        });
        let mut handles = Vec::with_capacity(helpers);
        for index in 0..helpers {
            let shared = Arc::clone(&shared);
            let h = std::thread::Builder::new()
                .name(format!("edgebench-train-{}", index + 1))
                .spawn(move || helper(&shared, index + 1))
                .map_err(|e| Error::Invalid(format!("cannot start a training thread: {e}")))?;
            handles.push(h);
        }
        Ok(Workers { shared, handles })
    }

    /// Threads a call can use: the helpers and the caller.
    pub fn threads(&self) -> usize {
        self.handles.len() + 1
    }

    /// Runs `f(0)`, …, `f(parts − 1)`, part 0 on the caller's thread and part `i` on
    /// helper `i`; returns when all have finished. `parts` must not exceed
    /// [`Workers::threads`] (extra parts run on the caller's thread).
    pub fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        let helpers = parts.saturating_sub(1).min(self.handles.len());
        if helpers > 0 {
            // Safety: only the lifetime is erased; the pointer is used by helpers while
            // `pending > 0`, and this function waits for `pending == 0` below.
            let f_static = unsafe {
                std::mem::transmute::<
                    *const (dyn Fn(usize) + Sync + '_),
                    *const (dyn Fn(usize) + Sync + 'static),
                >(f)
            };
            let mut st = self.shared.lock();
            st.job = Some(Job {
                f: f_static,
                parts: helpers + 1,
            });
            st.pending = helpers;
            st.generation += 1;
            drop(st);
            self.shared.start.notify_all();
        }
        f(0);
        for p in helpers + 1..parts {
            f(p);
        }
        if helpers > 0 {
            let mut st = self.shared.lock();
            while st.pending > 0 {
                st = self.shared.done.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.job = None;
            let panicked = std::mem::take(&mut st.panicked);
            drop(st);
            assert!(!panicked, "a training helper thread panicked");
        }
    }
}

/// A mutable buffer that the parts of one [`Workers::run`] call write in disjoint ranges.
pub(crate) struct SharedMut<T = f32> {
    ptr: *mut T,
    len: usize,
}

// Safety: the parts of a call only take disjoint ranges (the contract of `range`), and
// `run` returns before the borrow the pointer came from ends.
unsafe impl<T: Send> Send for SharedMut<T> {}
// Safety: as above.
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// Wraps `buf` for one `run` call.
    pub(crate) fn new(buf: &mut [T]) -> SharedMut<T> {
        SharedMut {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        }
    }

    /// The elements `start..start + len`.
    ///
    /// # Safety
    /// No other live slice from this buffer may overlap the range, and the buffer passed
    /// to [`SharedMut::new`] must still be borrowed (the enclosing `run` not returned).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn range(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.len, "SharedMut range out of bounds");
        // Safety: in bounds (asserted); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Runs `f(lo, hi)` over `items` split in contiguous ranges across `workers` (or all on
/// the caller's thread without helpers).
pub(crate) fn split(workers: Option<&Workers>, items: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    match workers {
        Some(w) if w.threads() > 1 && items > 1 => {
            let parts = w.threads().min(items);
            w.run(parts, &|p| f(items * p / parts, items * (p + 1) / parts));
        }
        _ => f(0, items),
    }
}

fn helper(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    let mut st = shared.lock();
    loop {
        if st.shutdown {
            return;
        }
        if st.generation != seen {
            seen = st.generation;
            if let Some(job) = st.job
                && index < job.parts
            {
                drop(st);
                // Safety: `run` keeps the closure alive until `pending` reaches 0, which
                // happens only after this call returns.
                let f = unsafe { &*job.f };
                let ok = catch_unwind(AssertUnwindSafe(|| f(index))).is_ok();
                st = shared.lock();
                st.panicked |= !ok;
                st.pending -= 1;
                if st.pending == 0 {
                    shared.done.notify_all();
                }
                continue;
            }
        }
        st = shared.start.wait(st).unwrap_or_else(|e| e.into_inner());
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.start.notify_all();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_part_runs_once_per_call() {
        let w = Workers::new(2).unwrap();
        assert_eq!(w.threads(), 3);
        for parts in [1, 2, 3, 5] {
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..50 {
                w.run(parts, &|p| {
                    hits[p].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 50),
                "{parts}"
            );
        }
    }
}
