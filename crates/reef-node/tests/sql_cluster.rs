//! SQL over a cluster of three `reef start` processes, each with its own data directory,
//! started as a user would (`--grpc-addr`, and `--join` for all but the first): a table created
//! on one node is visible and writable on the others, and money moved between accounts by SQL
//! transactions on every node, while one node is killed with SIGKILL and restarted, leaves the
//! total unchanged on every node.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, start_node};

const ACCOUNTS: i64 = 20;

async fn total(url: &str) -> i64 {
    let client = reef_testkit::connect(url).await.unwrap();
    let row = client
        .query_one("SELECT sum(bal)::bigint, count(*) FROM accounts", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(1), ACCOUNTS, "every account is there");
    row.get(0)
}

/// Moves `amount` from account `from` to account `to` in one SQL transaction.
async fn transfer(url: &str, from: i64, to: i64, amount: i64) -> Result<(), String> {
    let client = reef_testkit::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let sql = format!(
        "BEGIN; UPDATE accounts SET bal = bal - {amount} WHERE id = {from}; \
         UPDATE accounts SET bal = bal + {amount} WHERE id = {to}; COMMIT"
    );
    client.batch_execute(&sql).await.map_err(|e| e.to_string())
}

#[test]
fn sql_sees_the_same_data_on_every_node_and_keeps_totals_through_a_kill() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let grpc: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut nodes = vec![start_node(grpc[0], None)];
    for port in &grpc[1..] {
        nodes.push(start_node(*port, Some(grpc[0])));
    }
    let urls: Vec<String> = nodes.iter().map(|n| n.pg_url()).collect();

    runtime.block_on(async {
        // A node may fail only once every partition has three replicas.
        let roots = reef_client::RootClient::new(
            0,
            grpc.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            Duration::from_secs(10),
        );
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(status) = roots.cluster().await {
                let replicated = status.partitions.iter().all(|p| {
                    p.partition
                        .as_ref()
                        .is_some_and(|p| p.replicas.iter().filter(|r| !r.learner).count() == 3)
                });
                if replicated && status.partitions.len() >= 2 {
                    break;
                }
            }
            assert!(
                Instant::now() < until,
                "the cluster did not reach three replicas"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // DDL on one node, DML on another, reads on the third.
        let first = reef_testkit::connect(&urls[0]).await.unwrap();
        first
            .batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, bal int NOT NULL)")
            .await
            .unwrap();
        let second = reef_testkit::connect(&urls[1]).await.unwrap();
        second
            .batch_execute(&format!(
                "INSERT INTO accounts SELECT g, 100 FROM generate_series(1, {ACCOUNTS}) g"
            ))
            .await
            .unwrap();
        assert_eq!(total(&urls[2]).await, 100 * ACCOUNTS);
        // A table created on the third node is usable on the first.
        let third = reef_testkit::connect(&urls[2]).await.unwrap();
        third
            .batch_execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
            .await
            .unwrap();
        first
            .batch_execute("INSERT INTO notes VALUES (1, 'written on node 1')")
            .await
            .unwrap();
        let row = second
            .query_one("SELECT body FROM notes WHERE id = 1", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "written on node 1");
    });

    // Transfers on every node while node 1 (the founder) is killed and restarted.
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for (w, url) in urls.iter().enumerate() {
        let (url, stop, committed) = (url.clone(), stop.clone(), committed.clone());
        workers.push(runtime.spawn(async move {
            let mut i = w as i64;
            while !stop.load(Ordering::SeqCst) {
                i += 7;
                let from = 1 + i % ACCOUNTS;
                let to = 1 + (i * 3 + 1) % ACCOUNTS;
                if from == to {
                    continue;
                }
                match transfer(&url, from, to, 1 + i % 5).await {
                    Ok(()) => {
                        committed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(err) => {
                        if std::env::var_os("SQL_CLUSTER_DEBUG").is_some() {
                            eprintln!("transfer on {url} failed: {err}");
                        }
                        // The node may be down: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    let wait_for = |n: u64, phase: &str| {
        let target = committed.load(Ordering::SeqCst) + n;
        let until = Instant::now() + Duration::from_secs(60);
        while committed.load(Ordering::SeqCst) < target {
            assert!(
                Instant::now() < until,
                "transfers stopped committing {phase} ({} so far)",
                committed.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(20, "before the kill");
    nodes[0].kill9().unwrap();
    wait_for(20, "while node 1 is down");
    nodes[0].restart().unwrap();
    wait_for(20, "after node 1 restarted");
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for w in workers {
            w.await.unwrap();
        }
        for url in &urls {
            assert_eq!(total(url).await, 100 * ACCOUNTS, "total on {url}");
        }
    });
}
