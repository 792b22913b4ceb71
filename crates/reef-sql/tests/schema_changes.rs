//! Schema changes racing writers on one node, through real sessions over RocksDB: a writer
//! planned against a table's older descriptor cannot commit past an index backfill or a
//! write fence unseen, writers wait for a fence, and an online index ends up with exactly one
//! entry per row while writers keep changing the table. (The same rules across processes are
//! tested in `reef-node`'s `sql_cluster` test.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_sql::{Database, ExecResult, Session, SqlConfig, SqlError, Value};

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let engine =
        reef_storage::RocksEngine::open(&dir.path().join("db"), &Default::default()).unwrap();
    let client = reef_txn::TxnClient::local(Arc::new(engine)).unwrap();
    let db = Database::open(client, SqlConfig::default()).unwrap();
    (dir, db)
}

fn run(s: &mut Session, sql: &str) -> Result<ExecResult, SqlError> {
    let mut results = s.execute_simple(sql);
    assert_eq!(results.len(), 1, "one statement: {sql}");
    results.pop().unwrap()
}

fn ok(s: &mut Session, sql: &str) -> ExecResult {
    run(s, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int64(n) => *n,
        Value::Int32(n) => *n as i64,
        other => panic!("not an integer: {other:?}"),
    }
}

fn count(s: &mut Session, sql: &str) -> i64 {
    int(&ok(s, sql).rows[0][0])
}

/// A transaction that wrote a table before CREATE INDEX published the index write-only, and
/// commits after the backfill snapshot, past its schema lease: its commit fence refuses it,
/// since its row would have no index entry.
#[test]
fn writer_planned_before_an_index_cannot_commit_past_its_backfill() {
    let (_dir, db) = open();
    let mut a = db.session("reef", "reef").unwrap();
    let mut b = db.session("reef", "reef").unwrap();
    ok(&mut a, "CREATE TABLE t (id int PRIMARY KEY, k int)");
    ok(&mut a, "INSERT INTO t VALUES (1, 10), (2, 20)");
    ok(&mut a, "BEGIN");
    ok(&mut a, "INSERT INTO t VALUES (3, 30)");
    // B waits for A's transaction (older than the index) or the lease, whichever ends first:
    // A stays open, so B waits out the lease and backfills without A's row.
    let started = Instant::now();
    ok(&mut b, "CREATE INDEX t_k ON t (k)");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "CREATE INDEX waited out the schema lease of the open writer"
    );
    let err = run(&mut a, "COMMIT").expect_err("the writer's commit is fenced");
    assert_eq!(err.code, "40001", "{err}");
    assert!(err.message.contains("changed schema"), "{err}");
    // Retried, the writer plans with the index and maintains it.
    ok(&mut a, "INSERT INTO t VALUES (3, 30)");
    assert_eq!(count(&mut b, "SELECT count(*) FROM t WHERE k = 30"), 1);
    let plan = ok(&mut b, "EXPLAIN SELECT id FROM t WHERE k = 30");
    assert!(
        format!("{:?}", plan.rows).contains("t_k"),
        "the index is public: {:?}",
        plan.rows
    );
}

/// Alone on a node with no older transaction, a schema change does not wait for the lease.
#[test]
fn schema_change_without_older_transactions_does_not_wait() {
    let (_dir, db) = open();
    let mut s = db.session("reef", "reef").unwrap();
    ok(&mut s, "CREATE TABLE t (id int PRIMARY KEY, k int)");
    ok(&mut s, "INSERT INTO t VALUES (1, 10)");
    let started = Instant::now();
    for i in 0..5 {
        ok(&mut s, &format!("CREATE INDEX t_k{i} ON t (k)"));
    }
    // Five waits of the lease would take five seconds.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

/// ALTER TABLE ... SET NOT NULL holds writers off with a fence: a writer in a transaction
/// block that planned before it cannot commit a NULL past the check.
#[test]
fn not_null_check_fences_older_writers() {
    let (_dir, db) = open();
    let mut a = db.session("reef", "reef").unwrap();
    let mut b = db.session("reef", "reef").unwrap();
    ok(&mut a, "CREATE TABLE t (id int PRIMARY KEY, v int)");
    ok(&mut a, "INSERT INTO t VALUES (1, 1)");
    ok(&mut a, "BEGIN");
    ok(&mut a, "INSERT INTO t VALUES (2, NULL)");
    ok(&mut b, "ALTER TABLE t ALTER COLUMN v SET NOT NULL");
    let err = run(&mut a, "COMMIT").expect_err("the NULL must not land");
    assert_eq!(err.code, "40001", "{err}");
    let err = run(&mut a, "INSERT INTO t VALUES (2, NULL)").expect_err("NOT NULL holds");
    assert_eq!(err.code, "23502", "{err}");
    assert_eq!(count(&mut b, "SELECT count(*) FROM t WHERE v IS NULL"), 0);
}

/// A writer that meets a table behind a write fence waits for the schema change, then writes
/// under the new schema.
#[test]
fn writers_wait_for_a_fence_then_plan_again() {
    let (_dir, db) = open();
    let mut a = db.session("reef", "reef").unwrap();
    ok(&mut a, "CREATE TABLE t (id int PRIMARY KEY, v int)");
    ok(&mut a, "INSERT INTO t VALUES (1, 1)");
    // An open transaction of a third session keeps the ALTER waiting out the whole lease,
    // so the writer below meets the fence.
    let mut idle = db.session("reef", "reef").unwrap();
    ok(&mut idle, "BEGIN");
    ok(&mut idle, "SELECT count(*) FROM t");
    let alter = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut b = db.session("reef", "reef").unwrap();
            ok(&mut b, "ALTER TABLE t ADD COLUMN w int DEFAULT 7");
        })
    };
    // Wait until the fence is published.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fenced = db.catalog().objects().iter().any(|o| match &**o {
            reef_sql::catalog::Object::Table(t) => t.name == "t" && t.fence.is_some(),
            _ => false,
        });
        if fenced {
            break;
        }
        assert!(Instant::now() < deadline, "the fence never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Planned against the fenced table: waits, then writes the new column's default too.
    ok(&mut a, "INSERT INTO t (id, v) VALUES (2, 2)");
    alter.join().unwrap();
    ok(&mut idle, "COMMIT");
    assert_eq!(count(&mut a, "SELECT count(*) FROM t WHERE w = 7"), 2);
    let fence_left = db.catalog().objects().iter().any(|o| match &**o {
        reef_sql::catalog::Object::Table(t) => t.fence.is_some(),
        _ => false,
    });
    assert!(!fence_left, "the schema change lifted its fence");
}

/// CREATE UNIQUE INDEX built online while writers insert, update and delete rows: every row
/// ends up with exactly one entry, found through the index, and no other entry exists.
#[test]
fn online_index_build_keeps_up_with_writers() {
    let (_dir, db) = open();
    let mut s = db.session("reef", "reef").unwrap();
    ok(
        &mut s,
        "CREATE TABLE t (id int PRIMARY KEY, k int, pad text)",
    );
    ok(
        &mut s,
        "INSERT INTO t SELECT g, g * 10, repeat('x', 50) FROM generate_series(1, 3000) g",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(3001));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (db, stop, next) = (db.clone(), stop.clone(), next.clone());
            std::thread::spawn(move || {
                let mut s = db.session("reef", "reef").unwrap();
                let mut done = 0;
                let mut i = w;
                while !stop.load(Ordering::SeqCst) {
                    i += 7;
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    let sqls = [
                        format!("INSERT INTO t VALUES ({id}, {}, 'n')", id * 10),
                        format!("UPDATE t SET k = -k WHERE id = {}", i % 3000 + 1),
                        format!("DELETE FROM t WHERE id = {}", (i * 13) % 3000 + 1),
                    ];
                    for sql in &sqls {
                        match run(&mut s, sql) {
                            Ok(_) => done += 1,
                            // Conflicts with the other writer or a fenced commit: retryable.
                            Err(e) if e.code == "40001" => {}
                            Err(e) => panic!("{sql}: {e}"),
                        }
                    }
                }
                done
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    ok(&mut s, "CREATE UNIQUE INDEX t_k ON t (k)");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        assert!(w.join().unwrap() > 0, "the writers made progress");
    }
    let rows = ok(&mut s, "SELECT id, k FROM t ORDER BY id").rows;
    assert!(rows.len() > 2000);
    for row in &rows {
        let (id, k) = (int(&row[0]), int(&row[1]));
        let found = ok(&mut s, &format!("SELECT id FROM t WHERE k = {k}")).rows;
        assert_eq!(found.len(), 1, "k = {k} through the index");
        assert_eq!(int(&found[0][0]), id);
    }
    // No stale entries either: the index holds exactly one entry per row.
    let table = match db.catalog().get_by_name("t").as_deref() {
        Some(reef_sql::catalog::Object::Table(t)) => t.clone(),
        other => panic!("no table t: {other:?}"),
    };
    let index = table.indexes.iter().find(|i| i.name == "t_k").unwrap();
    assert_eq!(index.state, reef_sql::catalog::IndexState::Public);
    let prefix = reef_sql::catalog::index_prefix(table.id, index.id);
    let end = reef_sql::exec::prefix_end(&prefix);
    let txn = db
        .client()
        .begin(reef_txn::IsolationLevel::RepeatableRead)
        .unwrap();
    let entries = txn.scan(&prefix, &end).unwrap().count();
    assert_eq!(entries, rows.len(), "one index entry per row");
}
