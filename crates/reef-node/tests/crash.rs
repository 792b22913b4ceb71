//! Crash recovery: every acknowledged write survives `kill -9`, and nothing else does.
//!
//! Each cycle writes through the wire protocol in several ways (autocommit statements, committed
//! and rolled back transactions, updates and deletes, a transaction left open, and a background
//! writer racing the kill), kills the server with SIGKILL, restarts it on the same data directory
//! and compares the table with what the clients were told. Rows written by an open or rolled back
//! transaction must be gone; the one statement in flight at the kill may go either way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reef_testkit::TestServer;
use tokio_postgres::{Client, SimpleQueryMessage};

/// The `reef` binary under test: `$REEF_BIN` if set, else the one cargo built for this test.
fn reef_bin() -> std::path::PathBuf {
    std::env::var_os("REEF_BIN")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_reef")))
}

/// Cycles of write, kill, restart, check.
const CYCLES: i32 = 3;

/// The longest any single statement may take, including resolving locks a killed transaction
/// left behind.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a statement with the simple query protocol, failing the test on error or timeout.
async fn exec(client: &Client, sql: &str) {
    match tokio::time::timeout(STATEMENT_TIMEOUT, client.batch_execute(sql)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{sql}: {e}"),
        Err(_) => panic!("{sql}: no answer within {STATEMENT_TIMEOUT:?}"),
    }
}

/// Reads the whole table as id -> v.
async fn table(client: &Client) -> BTreeMap<i32, String> {
    let sql = "SELECT id, v FROM crash ORDER BY id";
    let messages = tokio::time::timeout(STATEMENT_TIMEOUT, client.simple_query(sql))
        .await
        .unwrap_or_else(|_| panic!("{sql}: no answer within {STATEMENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((
                row.get(0)
                    .expect("id is not null")
                    .parse()
                    .expect("id is an integer"),
                row.get(1).unwrap_or("NULL").to_string(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill9() {
    let mut server = TestServer::builder()
        .bin(reef_bin())
        .start()
        .expect("reef starts");
    {
        let client = server.connect().await.expect("connect");
        exec(
            &client,
            "CREATE TABLE crash (id integer PRIMARY KEY, v text NOT NULL)",
        )
        .await;
    }

    // What the table must hold: every acknowledged write, nothing else.
    let mut expected: BTreeMap<i32, String> = BTreeMap::new();
    for cycle in 0..CYCLES {
        let base = cycle * 100_000;
        let client = server.connect().await.expect("connect");

        // Autocommit inserts, one statement each and one multi-row statement.
        for i in 0..10 {
            let id = base + i;
            exec(
                &client,
                &format!("INSERT INTO crash VALUES ({id}, 'auto-{id}')"),
            )
            .await;
            expected.insert(id, format!("auto-{id}"));
        }
        let values: Vec<String> = (10..20)
            .map(|i| format!("({}, 'multi-{}')", base + i, base + i))
            .collect();
        exec(
            &client,
            &format!("INSERT INTO crash VALUES {}", values.join(", ")),
        )
        .await;
        for i in 10..20 {
            expected.insert(base + i, format!("multi-{}", base + i));
        }

        // A committed transaction that inserts, updates and deletes.
        exec(&client, "BEGIN").await;
        for i in 20..30 {
            let id = base + i;
            exec(
                &client,
                &format!("INSERT INTO crash VALUES ({id}, 'txn-{id}')"),
            )
            .await;
            expected.insert(id, format!("txn-{id}"));
        }
        exec(
            &client,
            &format!("UPDATE crash SET v = 'updated' WHERE id = {}", base + 1),
        )
        .await;
        expected.insert(base + 1, "updated".to_string());
        exec(
            &client,
            &format!("DELETE FROM crash WHERE id = {}", base + 2),
        )
        .await;
        expected.remove(&(base + 2));
        exec(&client, "COMMIT").await;

        // A rolled back transaction: none of it may survive.
        exec(&client, "BEGIN").await;
        for i in 30..40 {
            exec(
                &client,
                &format!("INSERT INTO crash VALUES ({}, 'rolled-back')", base + i),
            )
            .await;
        }
        exec(
            &client,
            &format!("UPDATE crash SET v = 'rolled-back' WHERE id = {}", base + 3),
        )
        .await;
        exec(
            &client,
            &format!("DELETE FROM crash WHERE id = {}", base + 4),
        )
        .await;
        exec(&client, "ROLLBACK").await;

        // Rows of earlier cycles: the previous cycle's open transaction touched these keys, so
        // writing them again checks that the locks it left behind are resolved after restart.
        if cycle > 0 {
            let prev = base - 100_000;
            exec(
                &client,
                &format!("UPDATE crash SET v = 'after-crash' WHERE id = {}", prev + 5),
            )
            .await;
            expected.insert(prev + 5, "after-crash".to_string());
            exec(
                &client,
                &format!("INSERT INTO crash VALUES ({}, 'reused')", prev + 50),
            )
            .await;
            expected.insert(prev + 50, "reused".to_string());
        }

        // A transaction still open at the kill: it must vanish.
        let open = server.connect().await.expect("connect");
        exec(&open, "BEGIN").await;
        for i in 50..60 {
            exec(
                &open,
                &format!("INSERT INTO crash VALUES ({}, 'open')", base + i),
            )
            .await;
        }
        exec(
            &open,
            &format!("UPDATE crash SET v = 'open' WHERE id = {}", base + 5),
        )
        .await;
        exec(&open, &format!("DELETE FROM crash WHERE id = {}", base + 6)).await;

        // A writer racing the kill: rows it was told about must survive; the one in flight
        // may or may not.
        let acked: Arc<Mutex<Vec<i32>>> = Arc::new(Mutex::new(Vec::new()));
        let in_flight: Arc<Mutex<Option<i32>>> = Arc::new(Mutex::new(None));
        let writer_client = server.connect().await.expect("connect");
        let writer = {
            let acked = Arc::clone(&acked);
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move {
                for i in 1000..100_000 {
                    let id = base + i;
                    *in_flight.lock().unwrap() = Some(id);
                    let sql = format!("INSERT INTO crash VALUES ({id}, 'racer-{id}')");
                    if writer_client.batch_execute(&sql).await.is_err() {
                        return;
                    }
                    acked.lock().unwrap().push(id);
                }
                *in_flight.lock().unwrap() = None;
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.kill9().expect("kill -9");
        let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
        drop(open);
        drop(client);

        for id in acked.lock().unwrap().iter() {
            expected.insert(*id, format!("racer-{id}"));
        }
        let maybe = *in_flight.lock().unwrap();

        server
            .restart()
            .expect("reef restarts on the same data directory");
        let client = server.connect().await.expect("connect after restart");
        let mut actual = table(&client).await;
        if let Some(id) = maybe {
            if !expected.contains_key(&id) {
                // The statement in flight at the kill may have committed or not.
                if actual.get(&id).is_some_and(|v| *v == format!("racer-{id}")) {
                    actual.remove(&id);
                }
            }
        }
        let missing: Vec<_> = expected
            .iter()
            .filter(|(id, v)| actual.get(id) != Some(v))
            .map(|(id, v)| format!("{id}={v} (found {:?})", actual.get(id)))
            .collect();
        let unexpected: Vec<_> = actual
            .iter()
            .filter(|(id, _)| !expected.contains_key(id))
            .map(|(id, v)| format!("{id}={v}"))
            .collect();
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "cycle {cycle}: {} acknowledged rows lost or wrong: {:?}; {} rows that were never \
             acknowledged: {:?}\nserver log:\n{}",
            missing.len(),
            &missing[..missing.len().min(20)],
            unexpected.len(),
            &unexpected[..unexpected.len().min(20)],
            server.log_tail(30)
        );
        // Resolve the racer's row for the next cycle's bookkeeping.
        if let Some(id) = maybe {
            if let Some(v) = table(&client).await.get(&id) {
                expected.insert(id, v.clone());
            }
        }
    }

    let status = server.stop().expect("reef stops on SIGTERM");
    assert!(status.success(), "reef exited with {status} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_keeps_data() {
    let mut server = TestServer::builder()
        .bin(reef_bin())
        .start()
        .expect("reef starts");
    let client = server.connect().await.expect("connect");
    exec(
        &client,
        "CREATE TABLE crash (id integer PRIMARY KEY, v text NOT NULL)",
    )
    .await;
    exec(
        &client,
        "INSERT INTO crash SELECT g, 'v' || g FROM generate_series(1, 500) AS g",
    )
    .await;
    drop(client);
    let status = server.stop().expect("reef stops on SIGTERM");
    assert!(status.success(), "reef exited with {status} after SIGTERM");

    server.restart().expect("reef restarts");
    let client = server.connect().await.expect("connect after restart");
    let rows = table(&client).await;
    assert_eq!(rows.len(), 500);
    assert_eq!(rows.get(&500).map(String::as_str), Some("v500"));
}
