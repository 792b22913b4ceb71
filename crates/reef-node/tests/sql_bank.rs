//! SQL transactions over clusters of three and five `reef start` processes, as a user runs
//! them: money moves between accounts stored in different partitions through PostgreSQL
//! connections to every node, while an index is built online on the table being written,
//! each node in turn is killed with SIGKILL and restarted, partitions split and a leader
//! moves. Every snapshot any node serves holds the same total, so does the end state, and the
//! index has exactly the rows' entries: each transfer happened completely or not at all, and
//! no write slipped past the index build.
//!
//! `SQL_BANK_DEBUG=1` prints failed transfers and each fault.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::SqlCluster;
use reef_sql::Value;

const ACCOUNTS: i64 = 40;
const INITIAL: i64 = 100;

fn debug() -> bool {
    std::env::var_os("SQL_BANK_DEBUG").is_some()
}

#[derive(Default)]
struct Counts {
    committed: AtomicU64,
    failed: AtomicU64,
    audits: AtomicU64,
}

/// Moves `amount` between two accounts in one SQL transaction.
async fn transfer(
    client: &tokio_postgres::Client,
    from: i64,
    to: i64,
    amount: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "BEGIN; UPDATE accounts SET bal = bal - {amount} WHERE id = {from}; \
             UPDATE accounts SET bal = bal + {amount} WHERE id = {to}; COMMIT"
        ))
        .await
}

/// Reads every balance in one snapshot: (sum, count).
async fn audit(client: &tokio_postgres::Client) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = client
        .query_one("SELECT sum(bal)::bigint, count(*) FROM accounts", &[])
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Runs transfers and audits against one node until `stop`; reconnects when the node is down.
async fn worker(url: String, seed: u64, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut client = None;
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        if client.is_none() {
            match reef_testkit::connect(&url).await {
                Ok(c) => client = Some(c),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let c = client.as_ref().unwrap();
        if round.is_multiple_of(4) {
            match audit(c).await {
                Ok((total, count)) => {
                    assert_eq!(count, ACCOUNTS, "an account went missing on {url}");
                    assert_eq!(
                        total,
                        ACCOUNTS * INITIAL,
                        "a snapshot on {url} saw a partial transfer"
                    );
                    counts.audits.fetch_add(1, Ordering::SeqCst);
                }
                Err(err) => {
                    if c.is_closed() {
                        client = None;
                    } else if debug() {
                        eprintln!("audit on {url} failed: {}", reef_testkit::error_chain(&err));
                    }
                }
            }
            continue;
        }
        let from = 1 + (next() % ACCOUNTS as u64) as i64;
        let to = 1 + (from + (next() % (ACCOUNTS as u64 - 1)) as i64) % ACCOUNTS;
        let amount = 1 + (next() % 10) as i64;
        match transfer(c, from, to, amount).await {
            Ok(()) => {
                counts.committed.fetch_add(1, Ordering::SeqCst);
            }
            Err(err) => {
                counts.failed.fetch_add(1, Ordering::SeqCst);
                if debug() {
                    eprintln!(
                        "transfer on {url} failed: {}",
                        reef_testkit::error_chain(&err)
                    );
                }
                if c.is_closed() {
                    client = None;
                } else {
                    // A failed statement leaves the block aborted: end it.
                    let _ = c.batch_execute("ROLLBACK").await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn wait_for_commits(counts: &Counts, more: u64, phase: &str) {
    let target = counts.committed.load(Ordering::SeqCst) + more;
    let until = Instant::now() + Duration::from_secs(90);
    while counts.committed.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < until,
            "transfers stopped committing {phase} ({} committed, {} failed)",
            counts.committed.load(Ordering::SeqCst),
            counts.failed.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sql_transfers_keep_the_total_on_three_nodes() {
    sql_bank(3);
}

#[test]
fn sql_transfers_keep_the_total_on_five_nodes() {
    sql_bank(5);
}

fn sql_bank(n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = SqlCluster::start(n);
    let urls = cluster.urls();

    let key = |cluster: &SqlCluster, id: i64| {
        runtime.block_on(cluster.row_key("accounts", Value::Int32(id as i32)))
    };
    runtime.block_on(async {
        cluster.wait_replicated(2).await;
        let first = reef_testkit::connect(&urls[0]).await.unwrap();
        first
            .batch_execute(&format!(
                "CREATE TABLE accounts (id int PRIMARY KEY, bal int NOT NULL); \
                 INSERT INTO accounts SELECT g, {INITIAL} FROM generate_series(1, {ACCOUNTS}) g"
            ))
            .await
            .unwrap();
    });
    // The accounts spread over four partitions.
    for at in [10, 20, 30] {
        let k = key(&cluster, at);
        runtime.block_on(cluster.client.split(&k)).unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let workers: Vec<_> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            runtime.spawn(worker(
                url.clone(),
                0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1),
                stop.clone(),
                counts.clone(),
            ))
        })
        .collect();
    wait_for_commits(&counts, 20, "at the start");

    // An index on the balances, built online while every node updates them.
    runtime.block_on(async {
        let c = reef_testkit::connect(&urls[n - 1]).await.unwrap();
        c.batch_execute("CREATE INDEX accounts_bal ON accounts (bal)")
            .await
            .unwrap();
    });
    wait_for_commits(&counts, 20, "after the index build");

    // SIGKILL each node in turn; transfers commit while it is down and after it is back.
    for i in 0..n {
        if debug() {
            eprintln!("killing node {}", i + 1);
        }
        cluster.nodes[i].kill9().unwrap();
        wait_for_commits(&counts, 20, &format!("while node {} is down", i + 1));
        cluster.nodes[i].restart().unwrap();
        wait_for_commits(&counts, 10, &format!("after node {} restarted", i + 1));
    }

    // Partitions split between accounts, and a leader moves, under load.
    for at in [5, 15, 25, 35] {
        let k = key(&cluster, at);
        runtime.block_on(cluster.client.split(&k)).unwrap();
    }
    let k = key(&cluster, 1);
    runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let status = cluster.roots.cluster().await.unwrap();
            // The map follows splits as their leaders report them: it may lack the range for a
            // moment.
            let Some((partition, leader)) = status.partitions.iter().find_map(|p| {
                p.partition
                    .as_ref()
                    .filter(|part| part.contains(&k))
                    .map(|part| (part.clone(), p.leader_node_id))
            }) else {
                assert!(Instant::now() < until, "no partition holds account 1");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let other = partition
                .replicas
                .iter()
                .find(|r| !r.learner && r.node_id != leader)
                .expect("another voter")
                .node_id;
            match cluster.client.transfer_leader(&k, other).await {
                Ok(()) => break,
                // The balancer may move replicas meanwhile: choose again.
                Err(err) => assert!(Instant::now() < until, "the leader did not move: {err}"),
            }
        }
    });
    wait_for_commits(&counts, 20, "after the splits and the leader move");
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        for w in workers {
            w.await.unwrap();
        }
    });

    runtime.block_on(async {
        for url in &urls {
            let c = reef_testkit::connect(url).await.unwrap();
            assert_eq!(
                audit(&c).await.unwrap(),
                (ACCOUNTS * INITIAL, ACCOUNTS),
                "on {url}"
            );
        }
        // The index holds exactly the rows: every balance finds its accounts through it, and
        // a count through the index matches the table's.
        let c = reef_testkit::connect(&urls[0]).await.unwrap();
        let plan: Vec<String> = c
            .query("EXPLAIN SELECT id FROM accounts WHERE bal = 1", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            plan.iter().any(|l| l.contains("accounts_bal")),
            "the index is used: {plan:?}"
        );
        let rows = c
            .query("SELECT id, bal FROM accounts ORDER BY id", &[])
            .await
            .unwrap();
        for row in &rows {
            let (id, bal): (i32, i32) = (row.get(0), row.get(1));
            let found: Vec<i32> = c
                .query("SELECT id FROM accounts WHERE bal = $1", &[&bal])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert!(found.contains(&id), "account {id} ({bal}) is in the index");
            let by_scan: i64 = c
                .query_one("SELECT count(*) FROM accounts WHERE bal + 0 = $1", &[&bal])
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                found.len() as i64,
                by_scan,
                "balance {bal}: index and table agree"
            );
        }
    });
    eprintln!(
        "{n} nodes: transfers committed {}, failed {}, audits {}",
        counts.committed.load(Ordering::SeqCst),
        counts.failed.load(Ordering::SeqCst),
        counts.audits.load(Ordering::SeqCst)
    );
    assert!(counts.audits.load(Ordering::SeqCst) > 0);

    // The accounts really are spread: eight partitions hold them.
    let keys: Vec<Vec<u8>> = (1..=ACCOUNTS).map(|i| key(&cluster, i)).collect();
    let partitions: std::collections::BTreeSet<u64> = runtime.block_on(async {
        let status = cluster.roots.cluster().await.unwrap();
        status
            .partitions
            .iter()
            .filter_map(|p| p.partition.as_ref())
            .filter(|p| keys.iter().any(|k| p.contains(k)))
            .map(|p| p.id)
            .collect()
    });
    assert!(partitions.len() >= 8, "{partitions:?}");
}
