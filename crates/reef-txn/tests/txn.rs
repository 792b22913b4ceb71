//! Tests of the client side: transactions, lock resolution, GC and the timestamp oracle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use reef_common::{compose_ts, ts_physical_ms, ErrorCode, Timestamp};
use reef_storage::{Cf, Engine, EngineOptions, RocksEngine, WriteBatch};
use reef_txn::{
    IsolationLevel, LocalStore, LocalTso, Mutation, MutationOp, Store, TimestampOracle,
    Transaction, TxnClient, TxnError,
};

use IsolationLevel::{ReadCommitted, RepeatableRead};

struct Env {
    _dir: tempfile::TempDir,
    engine: Arc<dyn Engine>,
    client: TxnClient,
    store: Arc<LocalStore>,
    tso: Arc<LocalTso>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn Engine> =
        Arc::new(RocksEngine::open(dir.path(), &EngineOptions::default()).unwrap());
    let store = Arc::new(LocalStore::new(engine.clone()));
    let tso = Arc::new(LocalTso::open(engine.clone()).unwrap());
    let client = TxnClient::new(store.clone(), tso.clone());
    Env {
        _dir: dir,
        engine,
        client,
        store,
        tso,
    }
}

fn put(env: &Env, key: &[u8], value: &[u8]) -> Timestamp {
    let txn = env.client.begin(RepeatableRead).unwrap();
    txn.put(key.to_vec(), value.to_vec());
    txn.commit().unwrap().unwrap()
}

fn v(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn collect(txn: &Transaction, start: &[u8], end: &[u8], reverse: bool) -> Vec<(String, String)> {
    let scanner = if reverse {
        txn.scan_reverse(start, end)
    } else {
        txn.scan(start, end)
    };
    scanner
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn snapshot_reads_ignore_newer_commits() {
    let env = env();
    put(&env, b"k", b"v1");
    let reader = env.client.begin(RepeatableRead).unwrap();
    let commit_ts = put(&env, b"k", b"v2");
    assert!(commit_ts > reader.start_ts());
    assert_eq!(reader.get(b"k").unwrap(), v("v1"));
    reader.new_statement().unwrap();
    assert_eq!(
        reader.read_ts(),
        reader.start_ts(),
        "REPEATABLE READ keeps its snapshot"
    );
    assert_eq!(reader.get(b"k").unwrap(), v("v1"));
    assert_eq!(
        reader.commit().unwrap(),
        None,
        "a read-only commit has no timestamp"
    );
    assert_eq!(
        env.client.begin(RepeatableRead).unwrap().get(b"k").unwrap(),
        v("v2")
    );
}

/// `get_newest` answers with the key's newest commit even above the reader's snapshot, and
/// with nothing while any transaction (even one that began later) holds the key locked.
#[test]
fn get_newest_sees_past_the_snapshot_and_refuses_while_locked() {
    let env = env();
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get_newest(b"k").unwrap(), Some((0, None)));
    let first = put(&env, b"k", b"v1");
    let second = put(&env, b"k", b"v2");
    assert!(first > reader.start_ts() && second > first);
    assert_eq!(reader.get(b"k").unwrap(), None, "the snapshot is older");
    assert_eq!(reader.get_newest(b"k").unwrap(), Some((second, v("v2"))));

    // A later transaction's lock: a snapshot read ignores it, the newest read does not.
    let writer = env.client.begin(RepeatableRead).unwrap();
    let mutation = Mutation {
        key: b"k".to_vec(),
        op: MutationOp::Delete,
        conflict_ts: None,
    };
    env.store
        .prewrite(&[mutation], b"k", writer.start_ts(), 10_000)
        .unwrap();
    assert_eq!(reader.get(b"k").unwrap(), None);
    assert_eq!(reader.get_newest(b"k").unwrap(), None);
    let commit_ts = env.tso.get_ts().unwrap();
    env.store
        .commit(&[b"k".to_vec()], writer.start_ts(), commit_ts)
        .unwrap();
    assert_eq!(reader.get_newest(b"k").unwrap(), Some((commit_ts, None)));
}

/// A commit wait keeps the key locked after the prewrite and lands the commit at least its
/// time past a timestamp taken then; when its hook says no, the commit does not wait.
#[test]
fn a_commit_wait_holds_the_commit_past_its_prewrite() {
    let env = env();
    let observed = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let txn = env.client.begin(RepeatableRead).unwrap();
    txn.put(b"k".to_vec(), b"v".to_vec());
    let (store, tso, seen) = (env.store.clone(), env.tso.clone(), observed.clone());
    txn.set_commit_wait(reef_txn::CommitWait {
        ms: 200,
        after_prewrite: Box::new(move || {
            // The prewrite is done: the key is locked, and the commit lands later than this.
            let now = tso.get_ts().unwrap();
            let locked = matches!(store.get_newest(b"k", now), Err(TxnError::KeyIsLocked(_)));
            seen.lock().push((now, locked));
            true
        }),
    })
    .unwrap();
    let commit_ts = txn.commit().unwrap().unwrap();
    let (after_prewrite, locked) = observed.lock()[0];
    assert!(locked, "the key is locked while the commit waits");
    assert!(
        ts_physical_ms(commit_ts) >= ts_physical_ms(after_prewrite) + 200,
        "the commit at {commit_ts} is not 200 ms past {after_prewrite}"
    );

    let txn = env.client.begin(RepeatableRead).unwrap();
    txn.put(b"k".to_vec(), b"w".to_vec());
    let tso = env.tso.clone();
    let seen = observed.clone();
    txn.set_commit_wait(reef_txn::CommitWait {
        ms: 60_000,
        after_prewrite: Box::new(move || {
            seen.lock().push((tso.get_ts().unwrap(), true));
            false
        }),
    })
    .unwrap();
    let commit_ts = txn.commit().unwrap().unwrap();
    let (after_prewrite, _) = observed.lock()[1];
    assert!(
        ts_physical_ms(commit_ts) < ts_physical_ms(after_prewrite) + 60_000,
        "a commit whose hook declined waited anyway"
    );
}

#[test]
fn read_committed_takes_a_new_snapshot_per_statement() {
    let env = env();
    put(&env, b"k", b"v1");
    let txn = env.client.begin(ReadCommitted).unwrap();
    assert_eq!(txn.isolation(), ReadCommitted);
    assert_eq!(txn.get(b"k").unwrap(), v("v1"));
    put(&env, b"k", b"v2");
    assert_eq!(
        txn.get(b"k").unwrap(),
        v("v1"),
        "same statement, same snapshot"
    );
    txn.new_statement().unwrap();
    assert!(txn.read_ts() > txn.start_ts());
    assert_eq!(txn.get(b"k").unwrap(), v("v2"));
    // A write after the new statement does not conflict with the commit it has seen.
    txn.put(b"k".to_vec(), b"v3".to_vec());
    txn.commit().unwrap().unwrap();
    assert_eq!(
        env.client.begin(RepeatableRead).unwrap().get(b"k").unwrap(),
        v("v3")
    );
}

#[test]
fn concurrent_writers_conflict() {
    let env = env();
    let t1 = env.client.begin(RepeatableRead).unwrap();
    let t2 = env.client.begin(RepeatableRead).unwrap();
    t1.put(b"k".to_vec(), b"t1".to_vec());
    t2.put(b"k".to_vec(), b"t2".to_vec());
    let c1 = t1.commit().unwrap().unwrap();
    let err = t2.commit().unwrap_err();
    assert_eq!(err.code(), ErrorCode::WriteConflict);
    match &err {
        TxnError::WriteConflict {
            key,
            start_ts,
            conflict_commit_ts,
            conflict_start_ts,
        } => {
            assert_eq!(key, b"k");
            assert_eq!(*start_ts, t2.start_ts());
            assert_eq!(*conflict_commit_ts, c1);
            assert_eq!(*conflict_start_ts, t1.start_ts());
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("write conflict on key 'k'"),
        "{err}"
    );
    // The failed transaction left no locks behind.
    assert_eq!(
        env.client.begin(RepeatableRead).unwrap().get(b"k").unwrap(),
        v("t1")
    );
    assert!(
        t2.commit().is_err(),
        "a finished transaction cannot commit again"
    );
}

#[test]
fn own_writes_and_scans_merge_the_buffer() {
    let env = env();
    for (k, val) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        put(&env, k.as_bytes(), val.as_bytes());
    }
    let txn = env.client.begin(RepeatableRead).unwrap();
    assert!(txn.is_read_only());
    txn.put(b"b".to_vec(), b"22".to_vec());
    txn.delete(b"c".to_vec());
    txn.put(b"bb".to_vec(), b"new".to_vec());
    txn.put(b"e".to_vec(), b"5".to_vec());
    assert!(!txn.is_read_only());
    // Keys and values, and a fixed cost for each of the four entries.
    let payload = 1 + 2 + 1 + 2 + 3 + 1 + 1;
    let per_entry = (txn.buffer_bytes() - payload) / 4;
    assert_eq!(txn.buffer_bytes(), payload + 4 * per_entry);
    assert!(per_entry > 0);
    txn.put(b"b".to_vec(), b"2222".to_vec());
    assert_eq!(txn.buffer_bytes(), payload + 2 + 4 * per_entry);
    txn.put(b"b".to_vec(), b"22".to_vec());
    assert_eq!(txn.get(b"b").unwrap(), v("22"));
    assert_eq!(txn.get(b"c").unwrap(), None);
    let scanner = txn.scan(b"a", b"").unwrap();
    // Writes after the scanner was created are not seen by it.
    txn.put(b"aa".to_vec(), b"later".to_vec());
    let all: Vec<_> = scanner.map(|r| r.unwrap()).collect();
    let keys: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![&b"a"[..], b"b", b"bb", b"d", b"e"]);
    assert_eq!(
        collect(&txn, b"aa", b"d", false),
        pairs(&[("aa", "later"), ("b", "22"), ("bb", "new")])
    );
    assert_eq!(
        collect(&txn, b"", b"", true),
        pairs(&[
            ("e", "5"),
            ("d", "4"),
            ("bb", "new"),
            ("b", "22"),
            ("aa", "later"),
            ("a", "1")
        ])
    );
    assert!(collect(&txn, b"d", b"a", false).is_empty());
    txn.commit().unwrap().unwrap();
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(
        collect(&reader, b"", b"", false),
        pairs(&[
            ("a", "1"),
            ("aa", "later"),
            ("b", "22"),
            ("bb", "new"),
            ("d", "4"),
            ("e", "5")
        ])
    );
}

#[test]
fn scans_fetch_in_growing_batches() {
    let env = env();
    let txn = env.client.begin(RepeatableRead).unwrap();
    for i in 0..1000u32 {
        txn.put(format!("k{i:04}").into_bytes(), i.to_string().into_bytes());
    }
    txn.commit().unwrap();
    let txn = env.client.begin(RepeatableRead).unwrap();
    // Delete every third key in the buffer.
    for i in (0..1000u32).step_by(3) {
        txn.delete(format!("k{i:04}").into_bytes());
    }
    let forward: Vec<_> = txn
        .scan(b"k", b"l")
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    let expected: Vec<_> = (0..1000u32)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("k{i:04}").into_bytes())
        .collect();
    assert_eq!(forward, expected);
    let mut backward: Vec<_> = txn
        .scan_reverse(b"k", b"l")
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    backward.reverse();
    assert_eq!(backward, expected);
}

#[test]
fn insert_detects_duplicates() {
    let env = env();
    put(&env, b"k", b"v");
    let txn = env.client.begin(RepeatableRead).unwrap();
    let err = txn.insert(b"k".to_vec(), b"x".to_vec()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::DuplicateKey);
    txn.insert(b"new".to_vec(), b"1".to_vec()).unwrap();
    assert_eq!(
        txn.insert(b"new".to_vec(), b"2".to_vec())
            .unwrap_err()
            .code(),
        ErrorCode::DuplicateKey
    );
    // Deleting and re-inserting within the transaction is allowed.
    txn.delete(b"k".to_vec());
    txn.insert(b"k".to_vec(), b"again".to_vec()).unwrap();
    txn.commit().unwrap();
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"k").unwrap(), v("again"));
    assert_eq!(reader.get(b"new").unwrap(), v("1"));

    // Two transactions insert the same key concurrently: the second fails at commit.
    let t1 = env.client.begin(ReadCommitted).unwrap();
    let t2 = env.client.begin(ReadCommitted).unwrap();
    t1.insert(b"u".to_vec(), b"1".to_vec()).unwrap();
    t2.insert(b"u".to_vec(), b"2".to_vec()).unwrap();
    t1.commit().unwrap();
    let code = t2.commit().unwrap_err().code();
    assert!(
        matches!(code, ErrorCode::WriteConflict | ErrorCode::DuplicateKey),
        "{code}"
    );

    // The insert assertion itself: an RC statement that read before the commit but writes at a
    // later statement ts fails with DuplicateKey at prewrite.
    let t3 = env.client.begin(ReadCommitted).unwrap();
    t3.insert(b"w".to_vec(), b"3".to_vec()).unwrap();
    put(&env, b"w", b"other");
    t3.new_statement().unwrap();
    t3.put(b"w".to_vec(), b"3b".to_vec()); // Keeps the insert assertion, now checked at a new ts.
    assert_eq!(t3.commit().unwrap_err().code(), ErrorCode::DuplicateKey);
}

#[test]
fn dropped_and_rolled_back_transactions_leave_nothing() {
    let env = env();
    {
        let txn = env.client.begin(RepeatableRead).unwrap();
        txn.put(b"k".to_vec(), b"dropped".to_vec());
        assert_eq!(env.client.min_active_start_ts(), Some(txn.start_ts()));
    }
    assert_eq!(env.client.min_active_start_ts(), None);
    let txn = env.client.begin(RepeatableRead).unwrap();
    txn.put(b"k".to_vec(), b"rolled back".to_vec());
    txn.rollback().unwrap();
    assert_eq!(
        txn.get(b"k").unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"k").unwrap(), None);
    // Nothing reached the lock column family.
    let mut cursor = env.engine.cursor(Cf::Lock, None, None);
    cursor.seek_to_first();
    assert!(!cursor.valid());
}

#[test]
fn reader_commits_secondary_of_committed_primary() {
    let env = env();
    let start_ts = env.tso.get_ts().unwrap();
    let mutations = vec![
        Mutation::new(MutationOp::Put(b"P".to_vec()), b"p".to_vec()),
        Mutation::new(MutationOp::Put(b"S".to_vec()), b"s".to_vec()),
    ];
    env.store
        .prewrite(&mutations, b"p", start_ts, 60_000)
        .unwrap();
    let commit_ts = env.tso.get_ts().unwrap();
    env.store
        .commit(&[b"p".to_vec()], start_ts, commit_ts)
        .unwrap();
    // The writer "crashed" before committing s; a reader resolves it.
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"s").unwrap(), v("S"));
    assert_eq!(
        env.store.get(b"s", reader.start_ts()).unwrap(),
        v("S"),
        "the lock is gone"
    );
    assert_eq!(env.store.get(b"s", commit_ts - 1).unwrap(), None);
}

#[test]
fn expired_lock_is_rolled_back_by_a_reader() {
    let env = env();
    put(&env, b"k", b"old");
    let start_ts = env.tso.get_ts().unwrap();
    let m = vec![Mutation::new(
        MutationOp::Put(b"new".to_vec()),
        b"k".to_vec(),
    )];
    env.store.prewrite(&m, b"k", start_ts, 100).unwrap();
    let reader = env.client.begin(RepeatableRead).unwrap();
    let started = Instant::now();
    assert_eq!(reader.get(b"k").unwrap(), v("old"));
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "the reader waited for the TTL"
    );
    // The writer's commit now fails: it was rolled back.
    let commit_ts = env.tso.get_ts().unwrap();
    let err = env
        .store
        .commit(&[b"k".to_vec()], start_ts, commit_ts)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TxnAborted);
}

#[test]
fn lock_wait_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn Engine> =
        Arc::new(RocksEngine::open(dir.path(), &EngineOptions::default()).unwrap());
    let store = Arc::new(LocalStore::new(engine.clone()));
    let tso = Arc::new(LocalTso::open(engine).unwrap());
    let config = reef_txn::TxnConfig {
        lock_wait_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let client = TxnClient::with_config(store.clone(), tso.clone(), config);
    let start_ts = tso.get_ts().unwrap();
    let m = vec![Mutation::new(MutationOp::Put(b"x".to_vec()), b"k".to_vec())];
    store.prewrite(&m, b"k", start_ts, 60_000).unwrap();
    let reader = client.begin(RepeatableRead).unwrap();
    assert_eq!(
        reader.get(b"k").unwrap_err().code(),
        ErrorCode::LockWaitTimeout
    );
    // A snapshot older than the lock is not blocked.
    assert_eq!(store.get(b"k", start_ts - 1).unwrap(), None);
}

#[test]
fn prewrite_waits_for_a_live_lock_then_conflicts() {
    let env = env();
    let t2 = env.client.begin(RepeatableRead).unwrap();
    let start_ts = env.tso.get_ts().unwrap();
    let m = vec![Mutation::new(
        MutationOp::Put(b"first".to_vec()),
        b"k".to_vec(),
    )];
    env.store.prewrite(&m, b"k", start_ts, 60_000).unwrap();
    let (store, tso) = (env.store.clone(), env.tso.clone());
    let committer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        let commit_ts = tso.get_ts().unwrap();
        store.commit(&[b"k".to_vec()], start_ts, commit_ts).unwrap();
    });
    t2.put(b"k".to_vec(), b"second".to_vec());
    let started = Instant::now();
    let err = t2.commit().unwrap_err();
    committer.join().unwrap();
    assert_eq!(err.code(), ErrorCode::WriteConflict);
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[test]
fn gc_keeps_what_snapshots_can_see() {
    let env = env();
    put(&env, b"k", b"v1");
    let ts2 = put(&env, b"k", b"v2");
    let old_reader = env.client.begin(RepeatableRead).unwrap();
    let ts3 = put(&env, b"k", b"v3");
    put(&env, b"gone", b"x");
    let txn = env.client.begin(RepeatableRead).unwrap();
    txn.delete(b"gone".to_vec());
    txn.commit().unwrap();
    let safe_point = env.tso.get_ts().unwrap();

    // The live old reader holds the safe point back.
    let progress = env.client.run_gc(safe_point).unwrap();
    assert_eq!(
        progress.versions_deleted, 1,
        "only v1 is below the old reader: {progress:?}"
    );
    assert_eq!(old_reader.get(b"k").unwrap(), v("v2"));
    drop(old_reader);

    let progress = env.client.run_gc(safe_point).unwrap();
    assert_eq!(
        progress.versions_deleted, 3,
        "v2 and both versions of 'gone': {progress:?}"
    );
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"k").unwrap(), v("v3"));
    assert_eq!(reader.get(b"gone").unwrap(), None);
    assert_eq!(env.store.get(b"k", ts3).unwrap(), v("v3"));
    assert_eq!(
        env.store.get(b"k", ts2).unwrap(),
        None,
        "versions below the safe point are gone"
    );
    let mut cursor = env.engine.cursor(Cf::Write, None, None);
    cursor.seek_to_first();
    let mut count = 0;
    while cursor.valid() {
        count += 1;
        cursor.next();
    }
    assert_eq!(count, 1);
}

/// A transaction whose client died after committing its primary leaves a secondary lock. Once
/// the primary is overwritten, its commit record is garbage below the safe point: GC must
/// settle the lock first, or a later reader would find no record, roll the secondary back and
/// see half of a committed transaction.
#[test]
fn gc_settles_abandoned_locks_before_collecting() {
    let env = env();
    let start_ts = env.tso.get_ts().unwrap();
    let m = |key: &[u8], value: &str| Mutation {
        op: MutationOp::Put(value.as_bytes().to_vec()),
        key: key.to_vec(),
        conflict_ts: None,
    };
    env.store
        .prewrite(&[m(b"p", "p1"), m(b"s", "s1")], b"p", start_ts, 60_000)
        .unwrap();
    let commit_ts = env.tso.get_ts().unwrap();
    env.store
        .commit(&[b"p".to_vec()], start_ts, commit_ts)
        .unwrap();
    // The client is gone; the primary is overwritten by a later transaction.
    put(&env, b"p", b"p2");
    // A live transaction that started before the abandoned one committed holds the safe point
    // below it: its lock is left alone.
    let progress = env.client.run_gc(start_ts - 1).unwrap();
    assert_eq!(progress.locks_resolved, 0, "{progress:?}");

    let safe_point = env.tso.get_ts().unwrap();
    let progress = env.client.run_gc(safe_point).unwrap();
    assert_eq!(progress.locks_resolved, 1, "{progress:?}");
    assert!(progress.versions_deleted >= 1, "{progress:?}");
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"p").unwrap(), v("p2"));
    assert_eq!(
        reader.get(b"s").unwrap(),
        v("s1"),
        "the committed transaction's secondary survives GC"
    );

    // A lock whose transaction may still commit (its TTL has not run out) holds the safe point
    // below its start: nothing it might need is collected.
    let live_ts = env.tso.get_ts().unwrap();
    env.store
        .prewrite(&[m(b"q", "q1")], b"q", live_ts, 600_000)
        .unwrap();
    put(&env, b"s", b"s2");
    let progress = env.client.run_gc(env.tso.get_ts().unwrap()).unwrap();
    assert_eq!(progress.locks_resolved, 0, "{progress:?}");
    assert_eq!(env.store.get(b"s", live_ts).unwrap(), v("s1"));
}

#[test]
fn counter_increments_are_never_lost() {
    let env = env();
    put(&env, b"counter", b"0");
    let client = env.client.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                let mut committed = 0;
                while committed < 20 {
                    let txn = client.begin(RepeatableRead).unwrap();
                    let value: u64 = String::from_utf8(txn.get(b"counter").unwrap().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    txn.put(b"counter".to_vec(), (value + 1).to_string().into_bytes());
                    match txn.commit() {
                        Ok(_) => committed += 1,
                        Err(err) if err.code().is_retryable() => {}
                        Err(err) => panic!("{err}"),
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"counter").unwrap(), v("80"));
}

#[test]
fn transaction_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Transaction>();
    assert_send_sync::<TxnClient>();
    fn assert_send<T: Send + 'static>() {}
    assert_send::<reef_txn::Scanner>();
}

#[test]
fn local_tso_is_monotonic_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let engine: Arc<dyn Engine> =
        Arc::new(RocksEngine::open(dir.path(), &EngineOptions::default()).unwrap());
    let tso = Arc::new(LocalTso::open(engine.clone()).unwrap());
    // Strictly increasing across threads.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let tso = tso.clone();
            std::thread::spawn(move || (0..2000).map(|_| tso.get_ts().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let mut all: Vec<Timestamp> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "timestamps are unique");
    let last = *all.last().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        ts_physical_ms(last).abs_diff(now_ms) < 5_000,
        "close to the wall clock"
    );
    drop(tso);

    // Reopened, it starts above everything handed out before.
    let tso = LocalTso::open(engine.clone()).unwrap();
    assert!(tso.get_ts().unwrap() > last);

    // A persisted bound in the future (the clock went back) is respected.
    let future = compose_ts(now_ms + 3_600_000, 0);
    let mut batch = WriteBatch::new();
    batch.put(Cf::Meta, LocalTso::META_KEY, &future.to_be_bytes());
    engine.write(&batch, true).unwrap();
    let tso = LocalTso::open(engine.clone()).unwrap();
    let first = tso.get_ts().unwrap();
    assert!(first > future);
    assert!(tso.get_ts().unwrap() > first);
    drop(tso);
    let tso = LocalTso::open(engine.clone()).unwrap();
    assert!(tso.get_ts().unwrap() > first);

    // A corrupted bound is an error, not a panic.
    let mut batch = WriteBatch::new();
    batch.put(Cf::Meta, LocalTso::META_KEY, b"bad");
    engine.write(&batch, true).unwrap();
    assert_eq!(
        LocalTso::open(engine).err().unwrap().code(),
        ErrorCode::Corruption
    );
}

// ----- Model-based test of snapshot isolation -----

#[derive(Clone, Debug)]
enum Action {
    Begin(usize),
    Read(usize, u8),
    Write(usize, u8, u8),
    Delete(usize, u8),
    Commit(usize),
    Rollback(usize),
}

fn action() -> impl Strategy<Value = Action> {
    let t = 0..3usize;
    let k = 0..4u8;
    prop_oneof![
        2 => t.clone().prop_map(Action::Begin),
        3 => (t.clone(), k.clone()).prop_map(|(t, k)| Action::Read(t, k)),
        3 => (t.clone(), k.clone(), any::<u8>()).prop_map(|(t, k, v)| Action::Write(t, k, v)),
        1 => (t.clone(), k).prop_map(|(t, k)| Action::Delete(t, k)),
        2 => t.clone().prop_map(Action::Commit),
        1 => t.prop_map(Action::Rollback),
    ]
}

/// A committed version in the model: (commit_ts, key, value or deletion).
type Version = (Timestamp, u8, Option<Vec<u8>>);

fn model_read(history: &[Version], key: u8, ts: Timestamp) -> Option<Vec<u8>> {
    history
        .iter()
        .filter(|(c, k, _)| *k == key && *c <= ts)
        .max_by_key(|(c, _, _)| *c)
        .and_then(|(_, _, v)| v.clone())
}

struct ModelTxn {
    txn: Transaction,
    writes: BTreeMap<u8, Option<Vec<u8>>>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_isolation_matches_model(actions in prop::collection::vec(action(), 1..40)) {
        let env = env();
        let mut history: Vec<Version> = Vec::new();
        let mut live: Vec<Option<ModelTxn>> = vec![None, None, None];
        for action in actions {
            match action {
                Action::Begin(t) => {
                    if live[t].is_none() {
                        let txn = env.client.begin(RepeatableRead).unwrap();
                        live[t] = Some(ModelTxn { txn, writes: BTreeMap::new() });
                    }
                }
                Action::Read(t, k) => {
                    if let Some(m) = &live[t] {
                        let expected = match m.writes.get(&k) {
                            Some(own) => own.clone(),
                            None => model_read(&history, k, m.txn.start_ts()),
                        };
                        prop_assert_eq!(m.txn.get(&[k]).unwrap(), expected);
                    }
                }
                Action::Write(t, k, value) => {
                    if let Some(m) = &mut live[t] {
                        m.txn.put(vec![k], vec![value]);
                        m.writes.insert(k, Some(vec![value]));
                    }
                }
                Action::Delete(t, k) => {
                    if let Some(m) = &mut live[t] {
                        m.txn.delete(vec![k]);
                        m.writes.insert(k, None);
                    }
                }
                Action::Rollback(t) => {
                    if let Some(m) = live[t].take() {
                        m.txn.rollback().unwrap();
                    }
                }
                Action::Commit(t) => {
                    if let Some(m) = live[t].take() {
                        let start_ts = m.txn.start_ts();
                        // First committer wins: a conflict iff a written key has a newer commit.
                        let conflict = m.writes.keys().any(|k| {
                            history.iter().any(|(c, hk, _)| hk == k && *c > start_ts)
                        });
                        match m.txn.commit() {
                            Ok(Some(commit_ts)) => {
                                prop_assert!(!conflict, "commit should have conflicted");
                                prop_assert!(commit_ts > start_ts);
                                for (k, v) in m.writes {
                                    history.push((commit_ts, k, v));
                                }
                            }
                            Ok(None) => prop_assert!(m.writes.is_empty()),
                            Err(err) => {
                                prop_assert!(conflict, "unexpected error {}", err);
                                prop_assert_eq!(err.code(), ErrorCode::WriteConflict);
                            }
                        }
                    }
                }
            }
        }
        // Every committed write is visible exactly to snapshots at or after its commit ts.
        let mut points: Vec<Timestamp> = history.iter().flat_map(|(c, _, _)| [*c - 1, *c]).collect();
        points.push(env.tso.get_ts().unwrap());
        for ts in points {
            for k in 0..4u8 {
                prop_assert_eq!(env.store.get(&[k], ts).unwrap(), model_read(&history, k, ts));
            }
            let scanned = env.store.scan(&[], &[], ts, usize::MAX).unwrap();
            let expected: Vec<(Vec<u8>, Vec<u8>)> = (0..4u8)
                .filter_map(|k| model_read(&history, k, ts).map(|v| (vec![k], v)))
                .collect();
            prop_assert_eq!(scanned, expected);
        }
    }
}

#[test]
fn scan_batches_see_locks_inside_what_they_return() {
    let env = env();
    let txn = env.client.begin(RepeatableRead).unwrap();
    for i in 0..100u32 {
        txn.put(format!("k{i:03}").into_bytes(), b"v".to_vec());
    }
    txn.commit().unwrap();
    // A live lock on a committed key (k050) and one on a key with no committed value (k0705).
    let start_ts = env.tso.get_ts().unwrap();
    let m = vec![
        Mutation::new(MutationOp::Put(b"x".to_vec()), b"k050".to_vec()),
        Mutation::new(MutationOp::Put(b"x".to_vec()), b"k0705".to_vec()),
    ];
    env.store.prewrite(&m, b"k050", start_ts, 60_000).unwrap();
    let read_ts = env.tso.get_ts().unwrap();
    let locked = |r: reef_txn::Result<Vec<(Vec<u8>, Vec<u8>)>>| match r {
        Err(e) => e.code() == ErrorCode::KeyIsLocked,
        Ok(_) => false,
    };
    // Batches that end before the lock return their rows.
    assert_eq!(env.store.scan(b"k", b"l", read_ts, 50).unwrap().len(), 50);
    assert_eq!(
        env.store.scan(b"k051", b"l", read_ts, 20).unwrap().len(),
        20
    );
    // Batches that reach a lock, forward and backward, report it.
    assert!(locked(env.store.scan(b"k", b"l", read_ts, 51)));
    assert!(locked(env.store.scan(b"k051", b"l", read_ts, 21)));
    assert!(locked(env.store.scan_reverse(b"k", b"l", read_ts, 30)));
    assert_eq!(
        env.store
            .scan_reverse(b"k", b"l", read_ts, 29)
            .unwrap()
            .len(),
        29
    );
    assert!(locked(env.store.scan(b"k0705", b"k0706", read_ts, 10)));
    // A snapshot older than the locks reads around them.
    assert_eq!(
        env.store
            .scan(b"k", b"l", start_ts - 1, 1000)
            .unwrap()
            .len(),
        100
    );
}

#[test]
fn registered_ranges_are_destroyed_once_no_snapshot_can_read_them() {
    let env = env();
    let txn = env.client.begin(RepeatableRead).unwrap();
    for i in 0..100u32 {
        txn.put(format!("t/{i:03}").into_bytes(), b"row".to_vec());
    }
    txn.put(b"u/1".to_vec(), b"kept".to_vec());
    txn.commit().unwrap();
    let old_reader = env.client.begin(RepeatableRead).unwrap();
    let dropper = env.client.begin(RepeatableRead).unwrap();
    dropper.destroy_range(b"t/", b"t0");
    dropper.commit().unwrap();
    // A rolled-back request destroys nothing.
    let undone = env.client.begin(RepeatableRead).unwrap();
    undone.destroy_range(b"u/", b"u0");
    undone.rollback().unwrap();

    let count_raw = |start: &[u8], end: &[u8]| {
        let mut c = env.engine.cursor(Cf::Write, Some(start), Some(end));
        c.seek_to_first();
        let mut n = 0;
        while c.valid() {
            n += 1;
            c.next();
        }
        n
    };
    // The old reader holds the safe point below the drop: nothing is destroyed.
    let progress = env.client.run_gc(env.tso.get_ts().unwrap()).unwrap();
    assert_eq!(progress.ranges_destroyed, 0, "{progress:?}");
    assert_eq!(old_reader.scan(b"t/", b"t0").unwrap().count(), 100);
    assert_eq!(count_raw(b"t", b"u"), 100);
    drop(old_reader);

    let progress = env.client.run_gc(env.tso.get_ts().unwrap()).unwrap();
    assert_eq!(progress.ranges_destroyed, 1, "{progress:?}");
    assert_eq!(
        count_raw(b"t", b"u"),
        0,
        "no version of the range is left in the write CF"
    );
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"u/1").unwrap(), v("kept"));
    assert_eq!(
        reader
            .scan(reef_txn::DESTROY_REGISTRY, &[0x01, 0x00, b'e'])
            .unwrap()
            .count(),
        0
    );
    drop(reader);
    // The record is gone, so a later round has nothing to do.
    assert_eq!(
        env.client
            .run_gc(env.tso.get_ts().unwrap())
            .unwrap()
            .ranges_destroyed,
        0
    );
    // Unbounded or empty ranges are refused.
    assert_eq!(
        env.store.destroy_range(b"a", b"").unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn secondaries_commit_in_the_background_and_readers_never_wait_on_them() {
    let env = env();
    let config = reef_txn::TxnConfig {
        async_secondaries: true,
        ..Default::default()
    };
    let client = TxnClient::with_config(env.store.clone(), env.tso.clone(), config);
    for round in 0..20 {
        let value = format!("v{round}");
        let txn = client.begin(RepeatableRead).unwrap();
        for key in ["a", "b", "c", "d"] {
            txn.put(key.as_bytes().to_vec(), value.as_bytes().to_vec());
        }
        txn.commit().unwrap().unwrap();
        // Right after commit returns, every key reads the new value: a secondary still locked
        // is committed by the reader through its committed primary.
        let reader = client.begin(RepeatableRead).unwrap();
        for key in ["a", "b", "c", "d"] {
            assert_eq!(reader.get(key.as_bytes()).unwrap(), v(&value), "{key}");
        }
    }
    // The background committers clear every lock, and say when they are done.
    assert_eq!(client.drain_secondaries(Duration::from_secs(10)), 0);
    let mut cursor = env.engine.cursor(Cf::Lock, None, None);
    cursor.seek_to_first();
    assert!(!cursor.valid(), "secondary locks were left behind");
}

// ----- Transactions that spill their writes to disk -----

/// A client over `env`'s store that spills every transaction's writes past `spill_bytes`
/// (each write, with 1) to a scratch engine in `dir`, and prewrites and commits in requests of
/// at most `batch_keys` keys.
fn spilling_client(
    env: &Env,
    dir: &std::path::Path,
    spill_bytes: usize,
    batch_keys: usize,
) -> (TxnClient, Arc<dyn Engine>) {
    let scratch: Arc<dyn Engine> = Arc::new(
        RocksEngine::open(
            dir,
            &EngineOptions {
                wal: false,
                ..EngineOptions::default()
            },
        )
        .unwrap(),
    );
    let config = reef_txn::TxnConfig {
        spill: Some(reef_txn::SpillEngine::new(scratch.clone())),
        spill_bytes,
        max_batch_keys: batch_keys,
        scan_batch_min: 1,
        scan_batch_max: 16,
        ..Default::default()
    };
    let client = TxnClient::with_config(env.store.clone(), env.tso.clone(), config);
    (client, scratch)
}

/// Returns true if the engine holds no visible key.
fn is_empty(engine: &dyn Engine) -> bool {
    let mut cursor = engine.cursor(Cf::Write, None, None);
    cursor.seek_to_first();
    !cursor.valid()
}

#[derive(Clone, Debug)]
enum BufOp {
    Put(u8, u8),
    Insert(u8, u8),
    Delete(u8),
    Lock(u8),
    Get(u8),
    Scan(u8, u8, bool),
    /// Scans `a..b`, writing key `c` after the first pair: the scan must not see the write.
    ScanWhileWriting(u8, u8, u8),
}

fn buf_op() -> impl Strategy<Value = BufOp> {
    let k = 0..12u8;
    prop_oneof![
        4 => (k.clone(), any::<u8>()).prop_map(|(k, v)| BufOp::Put(k, v)),
        2 => (k.clone(), any::<u8>()).prop_map(|(k, v)| BufOp::Insert(k, v)),
        2 => k.clone().prop_map(BufOp::Delete),
        1 => k.clone().prop_map(BufOp::Lock),
        3 => k.clone().prop_map(BufOp::Get),
        2 => (k.clone(), k.clone(), any::<bool>()).prop_map(|(a, b, r)| BufOp::Scan(a, b, r)),
        1 => (k.clone(), k.clone(), k).prop_map(|(a, b, c)| BufOp::ScanWhileWriting(a, b, c)),
    ]
}

/// The key of `k`: keys of different lengths, so the spilled encoding's ordering matters.
fn spill_key(k: u8) -> Vec<u8> {
    let mut key = vec![b'k'; 1 + (k % 3) as usize];
    key.push(k);
    key
}

/// Runs `op` on `txn` and describes what it returned.
fn run_buf_op(txn: &Transaction, op: &BufOp) -> String {
    let range = |a: u8, b: u8| (spill_key(a.min(b)), spill_key(a.max(b)));
    let scan = |start: &[u8], end: &[u8], reverse: bool| {
        let scanner = if reverse {
            txn.scan_reverse(start, end)
        } else {
            txn.scan(start, end)
        };
        match scanner {
            Ok(scanner) => format!("{:?}", scanner.collect::<Result<Vec<_>, _>>()),
            Err(err) => format!("error {:?}", err.code()),
        }
    };
    match op {
        BufOp::Put(k, v) => {
            txn.put(spill_key(*k), vec![*v; 1 + (*v % 40) as usize]);
            String::new()
        }
        BufOp::Insert(k, v) => format!(
            "{:?}",
            txn.insert(spill_key(*k), vec![*v]).map_err(|e| e.code())
        ),
        BufOp::Delete(k) => {
            txn.delete(spill_key(*k));
            String::new()
        }
        BufOp::Lock(k) => {
            txn.lock_key(spill_key(*k));
            String::new()
        }
        BufOp::Get(k) => format!("{:?}", txn.get(&spill_key(*k)).map_err(|e| e.code())),
        BufOp::Scan(a, b, reverse) => {
            let (start, end) = range(*a, *b);
            scan(&start, &end, *reverse)
        }
        BufOp::ScanWhileWriting(a, b, c) => {
            let (start, end) = range(*a, *b);
            let mut scanner = txn.scan(&start, &end).unwrap();
            let first = scanner.next().map(|r| r.map_err(|e| e.code()));
            txn.put(spill_key(*c), b"during".to_vec());
            let rest: Vec<_> = scanner.map(|r| r.map_err(|e| e.code())).collect();
            format!("{first:?} {rest:?}")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A transaction that spills every write answers every read, scan and commit exactly as
    /// one that keeps its writes in memory, and leaves nothing in the scratch engine.
    #[test]
    fn spilled_transactions_match_in_memory_ones(
        committed in prop::collection::vec((0..12u8, any::<u8>()), 0..8),
        ops in prop::collection::vec(buf_op(), 1..40),
        roll_back in any::<bool>(),
    ) {
        let (memory_env, spill_env) = (env(), env());
        let scratch_dir = tempfile::tempdir().unwrap();
        let (spilling, scratch) = spilling_client(&spill_env, scratch_dir.path(), 1, 3);
        let memory = TxnClient::with_config(
            memory_env.store.clone(),
            memory_env.tso.clone(),
            reef_txn::TxnConfig {
                max_batch_keys: 3,
                scan_batch_min: 1,
                scan_batch_max: 16,
                ..Default::default()
            },
        );
        for (k, v) in &committed {
            put(&memory_env, &spill_key(*k), &[*v]);
            put(&spill_env, &spill_key(*k), &[*v]);
        }
        let a = memory.begin(RepeatableRead).unwrap();
        let b = spilling.begin(RepeatableRead).unwrap();
        for op in &ops {
            prop_assert_eq!(run_buf_op(&a, op), run_buf_op(&b, op), "{:?}", op);
        }
        prop_assert!(b.buffer_bytes() <= 64, "memory held {} bytes", b.buffer_bytes());
        if roll_back {
            a.rollback().unwrap();
            b.rollback().unwrap();
        } else {
            let (ra, rb) = (a.commit(), b.commit());
            prop_assert_eq!(ra.is_ok(), rb.is_ok());
        }
        prop_assert!(is_empty(&*scratch), "spilled writes were left behind");
        let (a, b) = (memory.begin(RepeatableRead).unwrap(), spilling.begin(RepeatableRead).unwrap());
        let all = |txn: &Transaction| txn.scan(b"", b"").unwrap().map(|r| r.unwrap()).collect::<Vec<_>>();
        prop_assert_eq!(all(&a), all(&b));
        let mut locks = spill_env.engine.cursor(Cf::Lock, None, None);
        locks.seek_to_first();
        prop_assert!(!locks.valid(), "a lock was left behind");
    }
}

#[test]
fn a_spilled_transaction_commits_thousands_of_keys_in_bounded_memory() {
    let env = env();
    let scratch_dir = tempfile::tempdir().unwrap();
    let (client, scratch) = spilling_client(&env, scratch_dir.path(), 4096, 256);
    let txn = client.begin(RepeatableRead).unwrap();
    for i in 0..20_000u32 {
        txn.insert(format!("row{i:06}").into_bytes(), vec![b'x'; 100])
            .unwrap();
        assert!(txn.buffer_bytes() <= 4096 + 200);
    }
    // The transaction reads its own spilled rows, and refuses a duplicate among them.
    assert_eq!(txn.get(b"row000007").unwrap(), Some(vec![b'x'; 100]));
    assert_eq!(
        txn.insert(b"row000007".to_vec(), b"again".to_vec())
            .unwrap_err()
            .code(),
        ErrorCode::DuplicateKey
    );
    txn.delete(b"row000008".to_vec());
    // An update of every row while scanning them sees each row once, as it was, and not a
    // row written ahead of the scan.
    let mut seen = 0;
    for pair in txn.scan(b"row", b"rox").unwrap() {
        let (key, value) = pair.unwrap();
        assert_eq!(value, vec![b'x'; 100]);
        txn.put(key, b"updated".to_vec());
        if seen == 0 {
            txn.put(b"row_ahead".to_vec(), b"updated".to_vec());
        }
        seen += 1;
    }
    assert_eq!(seen, 19_999);
    let other = client.begin(RepeatableRead).unwrap();
    assert_eq!(other.get(b"row000007").unwrap(), None);
    txn.commit().unwrap().unwrap();
    assert!(is_empty(&*scratch));
    let reader = client.begin(RepeatableRead).unwrap();
    let rows: Vec<_> = reader
        .scan(b"row", b"rox")
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 20_000);
    assert!(rows.iter().all(|(_, v)| v == b"updated"));
    assert_eq!(reader.get(b"row000008").unwrap(), None);
}

#[test]
fn a_spilled_transaction_that_conflicts_leaves_no_lock() {
    let env = env();
    let scratch_dir = tempfile::tempdir().unwrap();
    let (client, scratch) = spilling_client(&env, scratch_dir.path(), 64, 4);
    let txn = client.begin(RepeatableRead).unwrap();
    for i in 0..100u32 {
        txn.put(format!("key{i:03}").into_bytes(), b"mine".to_vec());
    }
    // A later transaction commits one of the keys in the last request first.
    put(&env, b"key098", b"theirs");
    assert_eq!(txn.commit().unwrap_err().code(), ErrorCode::WriteConflict);
    assert!(is_empty(&*scratch));
    let mut locks = env.engine.cursor(Cf::Lock, None, None);
    locks.seek_to_first();
    assert!(!locks.valid(), "a lock was left behind");
    let reader = client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"key000").unwrap(), None);
    assert_eq!(reader.get(b"key098").unwrap(), v("theirs"));
    // Dropping a transaction without ending it removes its spilled writes too.
    let dropped = client.begin(RepeatableRead).unwrap();
    for i in 0..100u32 {
        dropped.put(format!("key{i:03}").into_bytes(), b"dropped".to_vec());
    }
    assert!(!is_empty(&*scratch));
    drop(dropped);
    assert!(is_empty(&*scratch));
}

#[test]
fn put_absent_refuses_only_the_transactions_own_values() {
    let env = env();
    put(&env, b"committed", b"old");
    let txn = env.client.begin(RepeatableRead).unwrap();
    // The store is not read: a committed value is the caller's to have deleted.
    txn.delete(b"committed".to_vec());
    txn.put_absent(b"committed".to_vec(), b"new".to_vec())
        .unwrap();
    txn.put_absent(b"fresh".to_vec(), b"1".to_vec()).unwrap();
    for key in [&b"committed"[..], b"fresh"] {
        assert_eq!(
            txn.put_absent(key.to_vec(), b"again".to_vec())
                .unwrap_err()
                .code(),
            ErrorCode::DuplicateKey
        );
    }
    txn.lock_key(b"locked".to_vec());
    txn.put_absent(b"locked".to_vec(), b"2".to_vec()).unwrap();
    txn.commit().unwrap().unwrap();
    let reader = env.client.begin(RepeatableRead).unwrap();
    assert_eq!(reader.get(b"committed").unwrap(), v("new"));
    assert_eq!(reader.get(b"fresh").unwrap(), v("1"));
    assert_eq!(reader.get(b"locked").unwrap(), v("2"));
}
