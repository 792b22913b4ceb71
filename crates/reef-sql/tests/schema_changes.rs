//! Schema changes racing writers on one node, through real sessions over RocksDB: a writer
//! planned against a table's older descriptor cannot commit past an index backfill or a
//! write fence unseen, writers wait for a fence, and an online index ends up with exactly one
//! entry per row while writers keep changing the table. Two SQL layers over one store stand for
//! two nodes where the rules concern several; `reef-node`'s `sql_bank` test builds an index
//! online across processes while every node writes the table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_sql::{Database, ExecResult, Session, SqlConfig, SqlError, Value};

fn open() -> (tempfile::TempDir, Database) {
    open_with(true)
}

/// A database whose node runs SQL `alone`, or believes other nodes may (so every schema
/// change waits out the whole schema lease, as in a cluster).
fn open_with(alone: bool) -> (tempfile::TempDir, Database) {
    open_config(SqlConfig {
        alone: Arc::new(move || alone),
        ..SqlConfig::default()
    })
}

/// A database over a fresh store with the given settings.
fn open_config(config: SqlConfig) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let engine =
        reef_storage::RocksEngine::open(&dir.path().join("db"), &Default::default()).unwrap();
    let client = reef_txn::TxnClient::local(Arc::new(engine)).unwrap();
    let db = Database::open(client, config).unwrap();
    (dir, db)
}

/// Another SQL layer with its own catalog cache over `db`'s store: a second node.
fn second_node(db: &Database) -> Database {
    let config = SqlConfig {
        alone: Arc::new(|| false),
        ..SqlConfig::default()
    };
    Database::open(db.client().clone(), config).unwrap()
}

/// Between checks of the catalog version key a node plans with its cached catalog: a run of
/// statements reads the key once per trust window, not once per transaction.
#[test]
fn a_node_trusts_its_cached_catalog_between_checks() {
    let (_dir, db) = open();
    let mut s = db.session("reef", "reef").unwrap();
    ok(&mut s, "CREATE TABLE t (k int PRIMARY KEY, v text)");
    ok(&mut s, "INSERT INTO t VALUES (1, 'a')");
    let before = db.catalog_checks();
    for _ in 0..100 {
        assert_eq!(count(&mut s, "SELECT count(*) FROM t WHERE k = 1"), 1);
    }
    let checks = db.catalog_checks() - before;
    // One check per 250 ms of statements: 100 of them would have to take 12 s to reach 50.
    assert!(checks <= 50, "{checks} checks for 100 transactions");
}

/// A schema change another node made is in force for this node's next transaction, even
/// while this node trusts its cached catalog: the change's commit waits out that trust.
#[test]
fn another_nodes_schema_change_is_seen_at_once() {
    let (_dir, db) = open_with(false);
    let other = second_node(&db);
    let mut a = db.session("reef", "reef").unwrap();
    let mut b = other.session("reef", "reef").unwrap();
    ok(&mut a, "CREATE TABLE t (k int PRIMARY KEY)");
    for round in 0..3 {
        // This node checks the catalog and trusts it for a while.
        assert_eq!(count(&mut a, "SELECT count(*) FROM t"), 0);
        ok(&mut b, "CREATE TABLE u (k int PRIMARY KEY)");
        ok(&mut b, &format!("INSERT INTO u VALUES ({round})"));
        assert_eq!(count(&mut a, "SELECT count(*) FROM u"), 1, "round {round}");
        ok(&mut b, "DROP TABLE u");
        let err = run(&mut a, "SELECT count(*) FROM u").expect_err("u is gone");
        assert_eq!(err.code, "42P01", "round {round}: {err}");
    }
}

/// A node that trusts its cached catalog writes with an index another node has just begun
/// building: the build's first step (the write-only index) waits out that trust like any
/// catalog change. Had the trusting node planned without the index, its update would leave
/// the entry the builder's node wrote for the row's old value behind.
#[test]
fn a_trusting_node_maintains_an_index_another_node_began_building() {
    let (_dir, db) = open_with(false);
    let other = second_node(&db);
    let mut b = db.session("reef", "reef").unwrap();
    let mut a = other.session("reef", "reef").unwrap();
    ok(&mut b, "CREATE TABLE t (id int PRIMARY KEY, k int)");
    ok(&mut b, "INSERT INTO t VALUES (1, 10)");
    // Node A checks the catalog and trusts it for a while.
    assert_eq!(count(&mut a, "SELECT count(*) FROM t"), 1);
    let builder = in_background(&db, "CREATE INDEX t_k ON t (k)");
    // Node B writes the row through the write-only index as soon as it has one.
    let until = Instant::now() + Duration::from_secs(30);
    while index_entries(&db, "t").is_empty() {
        assert!(Instant::now() < until, "the index build never began");
        std::thread::sleep(Duration::from_millis(1));
    }
    ok(&mut b, "UPDATE t SET k = 93 WHERE id = 1");
    ok(&mut a, "UPDATE t SET k = 94 WHERE id = 1");
    builder.join().unwrap();
    assert_eq!(
        index_entries(&db, "t"),
        vec![("t_k".to_string(), reef_sql::catalog::IndexState::Public, 1)]
    );
    assert_eq!(count(&mut b, "SELECT count(*) FROM t WHERE k = 93"), 0);
    assert_eq!(count(&mut b, "SELECT count(*) FROM t WHERE k = 94"), 1);
}

/// Every index of table `name`: (index name, state, entries stored).
fn index_entries(db: &Database, name: &str) -> Vec<(String, reef_sql::catalog::IndexState, usize)> {
    let table = match db.catalog().get_by_name(name).as_deref() {
        Some(reef_sql::catalog::Object::Table(t)) => t.clone(),
        other => panic!("no table {name}: {other:?}"),
    };
    let txn = db
        .client()
        .begin(reef_txn::IsolationLevel::RepeatableRead)
        .unwrap();
    table
        .indexes
        .iter()
        .map(|index| {
            let prefix = reef_sql::catalog::index_prefix(table.id, index.id);
            let end = reef_sql::exec::prefix_end(&prefix);
            let entries = txn.scan(&prefix, &end).unwrap().count();
            (index.name.clone(), index.state, entries)
        })
        .collect()
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

/// Runs `sql` in a session of its own on `db`, on a thread of its own; it must succeed.
fn in_background(db: &Database, sql: &'static str) -> std::thread::JoinHandle<()> {
    let db = db.clone();
    std::thread::spawn(move || {
        let mut s = db.session("reef", "reef").unwrap();
        ok(&mut s, sql);
    })
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
    let alter = in_background(&db, "ALTER TABLE t ADD COLUMN w int DEFAULT 7");
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
    // Planned against the fenced table: waits for the ALTER, which waits out the lease (the
    // idle transaction is older), then writes the new column's default too.
    let started = Instant::now();
    ok(&mut a, "INSERT INTO t (id, v) VALUES (2, 2)");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the writer waited for the fence ({:?})",
        started.elapsed()
    );
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
/// ends up with exactly one entry, found through the index, and no other entry exists. Alone,
/// and as one node of several (the whole lease waited out while writers run).
#[test]
fn online_index_build_keeps_up_with_writers() {
    online_index_build(true);
}

#[test]
fn online_index_build_keeps_up_with_writers_among_nodes() {
    online_index_build(false);
}

fn online_index_build(alone: bool) {
    let (_dir, db) = open_with(alone);
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
    assert_eq!(
        index_entries(&db, "t"),
        vec![(
            "t_k".to_string(),
            reef_sql::catalog::IndexState::Public,
            rows.len()
        )]
    );
}

/// Two indexes built at once on one table from two nodes (two SQL layers with their own
/// catalog caches over one store): neither overwrites the other's descriptor, and both end up
/// public and complete.
#[test]
fn concurrent_index_builds_on_one_table_both_land() {
    let (_dir, db) = open_with(false);
    let other_node = second_node(&db);
    let mut s = db.session("reef", "reef").unwrap();
    ok(&mut s, "CREATE TABLE t (id int PRIMARY KEY, a int, b int)");
    ok(
        &mut s,
        "INSERT INTO t SELECT g, g, -g FROM generate_series(1, 500) g",
    );
    let builds = [
        in_background(&db, "CREATE INDEX t_a ON t (a)"),
        in_background(&other_node, "CREATE INDEX t_b ON t (b)"),
    ];
    for b in builds {
        b.join().unwrap();
    }
    ok(&mut s, "INSERT INTO t VALUES (501, 501, -501)");
    let mut indexes = index_entries(&db, "t");
    indexes.sort_by(|x, y| x.0.cmp(&y.0));
    let public = reef_sql::catalog::IndexState::Public;
    assert_eq!(
        indexes,
        vec![
            ("t_a".to_string(), public, 501),
            ("t_b".to_string(), public, 501)
        ]
    );
}

/// A one-step schema change that another node commits while an index build waits out the
/// lease is not lost when the build makes its index public.
#[test]
fn schema_change_during_an_index_build_is_kept() {
    let (_dir, db) = open_with(false);
    let other_node = second_node(&db);
    let mut s = db.session("reef", "reef").unwrap();
    ok(&mut s, "CREATE TABLE t (id int PRIMARY KEY, a int)");
    ok(&mut s, "INSERT INTO t VALUES (1, 1)");
    let build = in_background(&db, "CREATE INDEX t_a ON t (a)");
    // Inside the build's lease wait (it lasts a second).
    std::thread::sleep(Duration::from_millis(300));
    let mut o = other_node.session("reef", "reef").unwrap();
    ok(&mut o, "ALTER TABLE t ADD COLUMN c int");
    ok(&mut o, "INSERT INTO t VALUES (2, 2, 20)");
    build.join().unwrap();
    let rows = ok(&mut s, "SELECT id, c FROM t ORDER BY id").rows;
    assert_eq!(
        rows,
        vec![
            vec![Value::Int32(1), Value::Null],
            vec![Value::Int32(2), Value::Int32(20)]
        ]
    );
    let public = reef_sql::catalog::IndexState::Public;
    assert_eq!(
        index_entries(&db, "t"),
        vec![("t_a".to_string(), public, 2)]
    );
}

/// Schema changes that fence one table twice in one transaction block reuse the block's
/// fence instead of waiting for it.
#[test]
fn a_block_fencing_a_table_twice_does_not_wait_for_itself() {
    let (_dir, db) = open_with(false);
    let mut s = db.session("reef", "reef").unwrap();
    ok(&mut s, "CREATE TABLE t (id int PRIMARY KEY, v int)");
    ok(&mut s, "INSERT INTO t VALUES (1, 1), (2, 2)");
    let started = Instant::now();
    ok(&mut s, "BEGIN");
    ok(&mut s, "ALTER TABLE t ADD COLUMN a int DEFAULT 10");
    ok(&mut s, "ALTER TABLE t ADD COLUMN b int DEFAULT 20");
    ok(&mut s, "CREATE INDEX t_a ON t (a)");
    ok(&mut s, "TRUNCATE t");
    ok(&mut s, "INSERT INTO t VALUES (3, 3)");
    ok(&mut s, "COMMIT");
    // One lease wait (about a second), not a minute per statement.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let rows = ok(&mut s, "SELECT id, a, b FROM t").rows;
    assert_eq!(
        rows,
        vec![vec![Value::Int32(3), Value::Int32(10), Value::Int32(20)]]
    );
    let fenced = db.catalog().objects().iter().any(|o| match &**o {
        reef_sql::catalog::Object::Table(t) => t.fence.is_some(),
        _ => false,
    });
    assert!(!fenced, "the block's commit lifted its fence");
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// Executes a prepared statement, panicking on an error.
fn exec(s: &mut Session, p: &reef_sql::Prepared, params: &[Value]) -> ExecResult {
    s.execute_prepared(p, params)
        .unwrap_or_else(|e| panic!("{}: {e}", p.sql))
}

/// A prepared statement keeps its plan between executions, but not past a schema change: one
/// committed by another node (seen when a transaction reloads the catalog) or by another
/// session of this node makes the next execution plan again, against the new tables.
#[test]
fn a_prepared_statement_plans_again_after_a_schema_change() {
    let (_dir, db) = open_with(false);
    let other = second_node(&db);
    let mut a = db.session("reef", "reef").unwrap();
    let mut b = other.session("reef", "reef").unwrap();
    ok(&mut a, "CREATE TABLE t (k int PRIMARY KEY, v text)");
    ok(&mut a, "INSERT INTO t VALUES (1, 'old')");
    let select = a.prepare("SELECT v FROM t WHERE k = $1", &[]).unwrap();
    let update = a.prepare("UPDATE t SET v = $2 WHERE k = $1", &[]).unwrap();
    let one = Value::Int32(1);
    for _ in 0..3 {
        assert_eq!(
            exec(&mut a, &select, &[one.clone()]).rows,
            vec![vec![text("old")]]
        );
    }

    // Another node replaces the table: the cached plan names a table that is gone.
    ok(&mut b, "DROP TABLE t");
    ok(&mut b, "CREATE TABLE t (k int PRIMARY KEY, v text)");
    ok(&mut b, "INSERT INTO t VALUES (1, 'new')");
    assert_eq!(
        exec(&mut a, &select, &[one.clone()]).rows,
        vec![vec![text("new")]]
    );

    // Another node adds an index: the cached UPDATE must maintain it once it is public.
    exec(&mut a, &update, &[one.clone(), text("before")]);
    ok(&mut b, "CREATE INDEX t_v ON t (v)");
    exec(&mut a, &update, &[one.clone(), text("after")]);
    let public = reef_sql::catalog::IndexState::Public;
    assert_eq!(
        index_entries(&db, "t"),
        vec![("t_v".to_string(), public, 1)]
    );
    assert_eq!(count(&mut a, "SELECT count(*) FROM t WHERE v = 'after'"), 1);

    // Another session of this node adds a column with a default: the cached INSERT fills it.
    let insert = a
        .prepare("INSERT INTO t (k, v) VALUES ($1, $2)", &[])
        .unwrap();
    exec(&mut a, &insert, &[Value::Int32(2), text("x")]);
    let mut c = db.session("reef", "reef").unwrap();
    ok(&mut c, "ALTER TABLE t ADD COLUMN n int DEFAULT 7");
    exec(&mut a, &insert, &[Value::Int32(3), text("y")]);
    assert_eq!(
        ok(&mut a, "SELECT k, n FROM t ORDER BY k").rows,
        vec![
            vec![Value::Int32(1), Value::Int32(7)],
            vec![Value::Int32(2), Value::Int32(7)],
            vec![Value::Int32(3), Value::Int32(7)],
        ]
    );
}

/// Inside a transaction block that changed the schema, a prepared statement plans against the
/// block's own catalog, and after a rollback against the committed one again.
#[test]
fn a_prepared_statement_sees_its_own_blocks_schema_changes() {
    let (_dir, db) = open();
    let mut s = db.session("reef", "reef").unwrap();
    ok(&mut s, "CREATE TABLE t (k int PRIMARY KEY, v text)");
    let insert = s.prepare("INSERT INTO t (k) VALUES ($1)", &[]).unwrap();
    let select = s.prepare("SELECT * FROM t WHERE k = $1", &[]).unwrap();
    exec(&mut s, &insert, &[Value::Int32(1)]);
    assert_eq!(
        exec(&mut s, &select, &[Value::Int32(1)]).rows,
        vec![vec![Value::Int32(1), Value::Null]]
    );

    ok(&mut s, "BEGIN");
    let generation = db.catalog().generation();
    ok(&mut s, "ALTER TABLE t ALTER COLUMN v SET DEFAULT 'd'");
    // The change is the block's alone: the committed catalog did not move, so only the
    // block's uncommitted changes tell the cached plans apart.
    assert_eq!(db.catalog().generation(), generation);
    exec(&mut s, &insert, &[Value::Int32(2)]);
    assert_eq!(
        exec(&mut s, &select, &[Value::Int32(2)]).rows,
        vec![vec![Value::Int32(2), text("d")]]
    );
    ok(&mut s, "ROLLBACK");

    // The plans made inside the block were not kept: the committed column has no default.
    exec(&mut s, &insert, &[Value::Int32(3)]);
    assert_eq!(
        exec(&mut s, &select, &[Value::Int32(3)]).rows,
        vec![vec![Value::Int32(3), Value::Null]]
    );
    assert_eq!(count(&mut s, "SELECT count(*) FROM t"), 2);
}

/// A query over a system view reads the view's rows at every execution, not once at the
/// first: its plan holds them as literal rows, so it is never cached.
#[test]
fn a_prepared_query_over_a_system_view_is_planned_every_time() {
    struct Counter(AtomicU64);
    impl reef_sql::system::SystemViews for Counter {
        fn rows(&self, name: &str) -> reef_sql::Result<Vec<Vec<Value>>> {
            let shape = reef_sql::system::find(reef_sql::system::SCHEMA, name).unwrap();
            let n = self.0.fetch_add(1, Ordering::SeqCst) as i64;
            Ok(vec![shape
                .columns
                .iter()
                .map(|(_, ty)| match ty {
                    reef_sql::DataType::Int64 => Value::Int64(n),
                    reef_sql::DataType::Int32 => Value::Int32(n as i32),
                    _ => Value::Null,
                })
                .collect()])
        }
    }
    let counter = Arc::new(Counter(AtomicU64::new(0)));
    let (_dir, db) = open_config(SqlConfig {
        system: counter.clone(),
        ..SqlConfig::default()
    });
    let mut s = db.session("reef", "reef").unwrap();
    let view = reef_sql::system::VIEWS[0].name;
    let p = s
        .prepare(&format!("SELECT * FROM reef_catalog.{view}"), &[])
        .unwrap();
    let before = counter.0.load(Ordering::SeqCst);
    for _ in 0..3 {
        exec(&mut s, &p, &[]);
    }
    assert_eq!(counter.0.load(Ordering::SeqCst) - before, 3);
}

/// A prepared query whose result columns a schema change altered fails as PostgreSQL's does
/// (the client was told the old columns), and works again once prepared anew.
#[test]
fn a_prepared_query_refuses_to_change_its_result_type() {
    let (_dir, db) = open();
    let mut s = db.session("reef", "reef").unwrap();
    ok(&mut s, "CREATE TABLE t (k int PRIMARY KEY, v text)");
    ok(&mut s, "INSERT INTO t VALUES (1, 'a')");
    let select = s.prepare("SELECT * FROM t", &[]).unwrap();
    assert_eq!(
        exec(&mut s, &select, &[]).rows,
        vec![vec![Value::Int32(1), text("a")]]
    );
    ok(&mut s, "ALTER TABLE t ADD COLUMN n int DEFAULT 7");
    for _ in 0..2 {
        let err = s
            .execute_prepared(&select, &[])
            .expect_err("the result type changed");
        assert_eq!(err.code, "0A000", "{err}");
        assert!(
            err.message
                .contains("cached plan must not change result type"),
            "{err}"
        );
    }
    // A schema change that leaves the columns alone does not disturb it.
    let again = s.prepare("SELECT * FROM t", &[]).unwrap();
    assert_eq!(again.columns.as_ref().map(Vec::len), Some(3));
    exec(&mut s, &again, &[]);
    ok(&mut s, "CREATE INDEX t_v ON t (v)");
    assert_eq!(
        exec(&mut s, &again, &[]).rows,
        vec![vec![Value::Int32(1), text("a"), Value::Int32(7)]]
    );
}
