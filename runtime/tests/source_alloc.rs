//! `Source::read` allocates nothing once the caller's buffer has grown to the largest
//! item: image folders (`File::open` + `read_to_end`) and TFRecord shards (`pread` +
//! the zero-copy Example scanner). Counted on the reading thread by the shared counting
//! allocator (`alloc_support`).

mod alloc_support;

use alloc_support::thread_count as allocs;
use edgebench_runtime::data::example::ImageExample;
use edgebench_runtime::data::{Source, source, tfrecord};

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
