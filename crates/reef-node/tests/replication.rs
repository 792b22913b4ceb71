//! Multi-process replication tests: three real `reef store` processes on loopback, talking
//! gRPC. A client drives transactions through the leader while the leader is killed with
//! SIGKILL; the survivors elect a new leader and keep committing, the killed node restarts and
//! catches up, and every acknowledged write is then found in all three nodes' RocksDB.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_storage::{Engine, EngineOptions, RocksEngine};
use reef_testkit::store_cluster::StoreCluster;
use reef_txn::MvccStore;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("value{i}").into_bytes()
}

#[test]
fn leader_kill_during_writes_loses_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = StoreCluster::start(Path::new(env!("CARGO_BIN_EXE_reef")), 3, 50).unwrap();
    let (total, kill_after) = (120u64, 40u64);
    let ts = |i: u64| 1000 + i * 10;
    let killed = runtime.block_on(async {
        let (leader, _) = cluster.leader(Duration::from_secs(20)).await.unwrap();
        for i in 0..kill_after {
            cluster.write(&key(i), &value(i), ts(i)).await.unwrap();
        }
        leader
    });
    // SIGKILL the leader, then keep writing: the first write waits for the new leader.
    cluster.kill(killed).unwrap();
    let killed_at = Instant::now();
    runtime.block_on(async {
        cluster
            .write(&key(kill_after), &value(kill_after), ts(kill_after))
            .await
            .unwrap();
        eprintln!(
            "first write acknowledged {:?} after the leader was killed",
            killed_at.elapsed()
        );
        let (leader, _) = cluster.leader(Duration::from_secs(5)).await.unwrap();
        assert_ne!(leader, killed, "a killed node cannot lead");
        for i in kill_after + 1..total {
            cluster.write(&key(i), &value(i), ts(i)).await.unwrap();
        }
    });
    // The killed node restarts from its data directory and catches up.
    cluster.spawn(killed).unwrap();
    runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (leader, _) = cluster.leader(Duration::from_secs(10)).await.unwrap();
            let target = cluster.applied(leader).await.unwrap();
            if cluster.applied(killed).await.unwrap_or(0) >= target {
                break;
            }
            assert!(
                Instant::now() < until,
                "the restarted node did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    cluster.stop_all().unwrap();
    // Every acknowledged write is in every node's RocksDB.
    for node in &cluster.nodes {
        let engine: Arc<dyn Engine> =
            Arc::new(RocksEngine::open(&node.data_dir, &EngineOptions::default()).unwrap());
        let mvcc = MvccStore::new(engine);
        for i in 0..total {
            let got = mvcc.get(&key(i), u64::MAX >> 1).unwrap();
            assert_eq!(
                got.as_deref(),
                Some(value(i).as_slice()),
                "node {} lacks acknowledged write {i}",
                node.id
            );
        }
    }
}
