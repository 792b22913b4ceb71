//! Tests of `RocksEngine` on a real RocksDB database in a temporary directory.

use std::sync::Arc;

use reef_storage::{Cf, Cursor, Engine, EngineOptions, RocksEngine, WriteBatch};

fn open(dir: &tempfile::TempDir) -> RocksEngine {
    RocksEngine::open(dir.path(), &EngineOptions::default()).unwrap()
}

fn collect_forward(cursor: &mut dyn Cursor) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while cursor.valid() {
        out.push((cursor.key().to_vec(), cursor.value().to_vec()));
        cursor.next();
    }
    cursor.status().unwrap();
    out
}

fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.as_bytes().to_vec())
}

#[test]
fn put_get_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir);
    assert_eq!(engine.path(), dir.path());
    let mut batch = WriteBatch::new();
    batch.put(Cf::Write, b"a", b"1");
    batch.put(Cf::Lock, b"a", b"lock");
    batch.put(Cf::Write, b"b", b"2");
    engine.write(&batch, true).unwrap();

    assert_eq!(engine.get(Cf::Write, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(engine.get(Cf::Lock, b"a").unwrap(), Some(b"lock".to_vec()));
    assert_eq!(engine.get(Cf::Default, b"a").unwrap(), None);
    let mut buf = b"garbage".to_vec();
    assert!(engine.get_into(Cf::Write, b"b", &mut buf).unwrap());
    assert_eq!(buf, b"2");
    assert!(!engine.get_into(Cf::Write, b"c", &mut buf).unwrap());
    assert!(buf.is_empty());

    let mut batch = WriteBatch::new();
    batch.delete(Cf::Write, b"a");
    engine.write(&batch, false).unwrap();
    assert_eq!(engine.get(Cf::Write, b"a").unwrap(), None);
    assert_eq!(engine.get(Cf::Lock, b"a").unwrap(), Some(b"lock".to_vec()));
}

#[test]
fn delete_range_is_half_open() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir);
    let mut batch = WriteBatch::new();
    for k in ["a", "b", "c", "d", "e"] {
        batch.put(Cf::Default, k.as_bytes(), b"v");
    }
    engine.write(&batch, false).unwrap();
    let mut batch = WriteBatch::new();
    batch.delete_range(Cf::Default, b"b", b"d");
    engine.write(&batch, false).unwrap();
    let mut cursor = engine.cursor(Cf::Default, None, None);
    cursor.seek_to_first();
    let keys: Vec<_> = collect_forward(cursor.as_mut())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"d".to_vec(), b"e".to_vec()]);
}

#[test]
fn cursor_bounds_and_directions() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir);
    let mut batch = WriteBatch::new();
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")] {
        batch.put(Cf::Write, k.as_bytes(), v.as_bytes());
    }
    // Another column family must not leak into the cursor.
    batch.put(Cf::Lock, b"bb", b"x");
    engine.write(&batch, false).unwrap();

    let mut cursor = engine.cursor(Cf::Write, Some(b"b"), Some(b"e"));
    cursor.seek_to_first();
    assert_eq!(
        collect_forward(cursor.as_mut()),
        vec![kv("b", "2"), kv("c", "3"), kv("d", "4")]
    );
    assert!(cursor.key().is_empty());

    cursor.seek_to_last();
    assert_eq!(cursor.key(), b"d");
    cursor.prev();
    assert_eq!(cursor.key(), b"c");

    cursor.seek(b"bb");
    assert_eq!(cursor.key(), b"c");
    cursor.seek(b"a");
    assert_eq!(
        cursor.key(),
        b"b",
        "seek below the lower bound clamps to it"
    );

    cursor.seek_for_prev(b"cc");
    assert_eq!((cursor.key(), cursor.value()), (&b"c"[..], &b"3"[..]));
    cursor.seek_for_prev(b"c");
    assert_eq!(cursor.key(), b"c");
    cursor.seek_for_prev(b"zz");
    assert_eq!(cursor.key(), b"d", "seek_for_prev respects the upper bound");
    cursor.seek_for_prev(b"a");
    assert!(!cursor.valid());
    cursor.status().unwrap();

    // An unbounded cursor sees everything.
    let mut cursor = engine.cursor(Cf::Write, None, None);
    cursor.seek_to_last();
    assert_eq!(cursor.key(), b"e");
    cursor.seek_for_prev(b"0");
    assert!(!cursor.valid());
}

#[test]
fn cursor_is_a_point_in_time_view() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir);
    let mut batch = WriteBatch::new();
    batch.put(Cf::Write, b"a", b"1");
    engine.write(&batch, false).unwrap();
    let mut cursor = engine.cursor(Cf::Write, None, None);
    let mut batch = WriteBatch::new();
    batch.put(Cf::Write, b"b", b"2");
    engine.write(&batch, false).unwrap();
    cursor.seek_to_first();
    assert_eq!(collect_forward(cursor.as_mut()), vec![kv("a", "1")]);
}

#[test]
fn snapshot_cursors_read_one_view_of_every_column_family() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir);
    let mut batch = WriteBatch::new();
    batch.put(Cf::Lock, b"k", b"lock");
    engine.write(&batch, false).unwrap();
    let snapshot = engine.snapshot();
    // A commit after the snapshot: the lock goes, the record comes.
    let mut batch = WriteBatch::new();
    batch.delete(Cf::Lock, b"k");
    batch.put(Cf::Write, b"k", b"record");
    engine.write(&batch, false).unwrap();
    // A cursor opened on the snapshot later still sees the lock and not the record.
    let mut writes = snapshot.cursor(Cf::Write, None, None);
    writes.seek_to_first();
    assert_eq!(collect_forward(writes.as_mut()), vec![]);
    let mut locks = snapshot.cursor(Cf::Lock, None, None);
    locks.seek_to_first();
    assert_eq!(collect_forward(locks.as_mut()), vec![kv("k", "lock")]);
    // The engine itself reads the new state.
    let mut writes = engine.cursor(Cf::Write, None, None);
    writes.seek_to_first();
    assert_eq!(collect_forward(writes.as_mut()), vec![kv("k", "record")]);
}

#[test]
fn reopen_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Arc::new(open(&dir));
        let mut batch = WriteBatch::new();
        batch.put(Cf::Meta, b"m", b"meta");
        batch.put(Cf::Write, b"w", b"write");
        engine.write(&batch, true).unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Cf::Lock, b"l", b"lock");
        engine.write(&batch, false).unwrap();
        engine.sync_wal().unwrap();
        engine.compact_range(Cf::Write, None, None).unwrap();
    }
    let engine = open(&dir);
    assert_eq!(engine.get(Cf::Meta, b"m").unwrap(), Some(b"meta".to_vec()));
    assert_eq!(
        engine.get(Cf::Write, b"w").unwrap(),
        Some(b"write".to_vec())
    );
    assert_eq!(engine.get(Cf::Lock, b"l").unwrap(), Some(b"lock".to_vec()));
}

#[test]
fn approximate_size_sees_flushed_data() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(&dir);
    let value = vec![7u8; 1000];
    for chunk in 0..10u32 {
        let mut batch = WriteBatch::new();
        for i in 0..100u32 {
            // Vary values so LZ4 cannot shrink them to nothing.
            let mut v = value.clone();
            v[..4].copy_from_slice(&(chunk * 100 + i).to_be_bytes());
            v[500..504].copy_from_slice(&(i * 7919).to_be_bytes());
            batch.put(Cf::Write, &(chunk * 100 + i).to_be_bytes(), &v);
        }
        engine.write(&batch, false).unwrap();
    }
    engine.compact_range(Cf::Write, None, None).unwrap();
    let size = engine
        .approximate_size(Cf::Write, &0u32.to_be_bytes(), &2000u32.to_be_bytes())
        .unwrap();
    assert!(size > 0, "size {size}");
    let empty = engine
        .approximate_size(Cf::Write, &5000u32.to_be_bytes(), &6000u32.to_be_bytes())
        .unwrap();
    assert!(empty < size);
}

#[test]
fn engine_is_shareable_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn Engine> = Arc::new(open(&dir));
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for i in 0..50u8 {
                    let mut batch = WriteBatch::new();
                    batch.put(Cf::Default, &[t, i], &[i]);
                    engine.write(&batch, i % 10 == 0).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let mut cursor = engine.cursor(Cf::Default, None, None);
    cursor.seek_to_first();
    assert_eq!(collect_forward(cursor.as_mut()).len(), 200);
}

#[test]
fn open_error_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = RocksEngine::open(&file, &EngineOptions::default()).unwrap_err();
    assert_eq!(err.code(), reef_common::ErrorCode::Storage);
}
