//! `Source::read` allocates nothing once the caller's buffer has grown to the largest
//! item: image folders (`File::open` + `read_to_end`) and TFRecord shards (`pread` +
//! the zero-copy Example scanner). Counted with a global allocator, per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use edgebench_runtime::data::example::ImageExample;
use edgebench_runtime::data::{Source, source, tfrecord};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// Safety: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // Safety: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // Safety: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

/// Read every item twice; the second pass must not allocate.
fn assert_no_alloc_after_warmup(src: &dyn Source) {
    let mut buf = Vec::new();
    for i in 0..src.len() {
        src.read(i, &mut buf).unwrap();
    }
    let before = allocs();
    let mut total = 0;
    for _ in 0..3 {
        for i in (0..src.len()).rev() {
            src.read(i, &mut buf).unwrap();
            total += buf.len();
        }
    }
    assert!(total > 0);
    assert_eq!(allocs() - before, 0, "{}", src.describe());
}

#[test]
fn reads_do_not_allocate_after_warmup() {
    let d = tempfile::tempdir().unwrap();
    let sizes = [10usize, 5000, 300, 70_000, 1];
    for (i, n) in sizes.iter().enumerate() {
        let dir = d.path().join(format!("c{}", i % 2));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{i}.jpg")), vec![i as u8 + 1; *n]).unwrap();
    }
    let folder = source::open(d.path()).unwrap();
    assert_eq!(folder.len(), sizes.len());
    assert_no_alloc_after_warmup(folder.as_ref());

    let mut w = tfrecord::Writer::new(Vec::new());
    for (i, n) in sizes.iter().enumerate() {
        let ex = ImageExample {
            encoded: vec![i as u8; *n],
            label: Some(i as i64 % 3),
            class_text: Some(format!("class {}", i % 3)),
            ..Default::default()
        };
        w.write(&ex.encode()).unwrap();
    }
    let shard = d.path().join("x.tfrecord");
    std::fs::write(&shard, w.into_inner().unwrap()).unwrap();
    let tf = source::open(&shard).unwrap();
    assert_eq!(tf.len(), sizes.len());
    assert_no_alloc_after_warmup(tf.as_ref());
}
