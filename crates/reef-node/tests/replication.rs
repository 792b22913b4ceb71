//! Multi-process replication tests: three real `reef store` processes on loopback, talking
//! gRPC. A client drives transactions through the leader while the leader is killed with
//! SIGKILL; the survivors elect a new leader and keep committing, the killed node restarts and
//! catches up, and every acknowledged write is then found in all three nodes' RocksDB.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
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
    let (total, kill_after) = (150u64, 40u64);
    let ts = |i: u64| 1000 + i * 10;
    let leader = runtime
        .block_on(cluster.leader(Duration::from_secs(20)))
        .unwrap()
        .0;
    // A second thread SIGKILLs the leader once 40 writes are acknowledged, while the writer
    // keeps going: the writes in flight then ride out the election.
    let acked = Arc::new(AtomicU64::new(0));
    let pid = cluster.pid(leader).unwrap();
    let killer = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            while acked.load(Ordering::SeqCst) < kill_after {
                std::thread::sleep(Duration::from_millis(1));
            }
            // SAFETY: kill(2) on the pid of a child process the cluster still owns.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            Instant::now()
        })
    };
    let mut acked_at = Vec::new();
    runtime.block_on(async {
        for i in 0..total {
            cluster.write(&key(i), &value(i), ts(i)).await.unwrap();
            acked.fetch_add(1, Ordering::SeqCst);
            acked_at.push(Instant::now());
        }
    });
    let killed_at = killer.join().unwrap();
    cluster.reap(leader).unwrap();
    if let Some(first) = acked_at.iter().find(|&&t| t > killed_at) {
        eprintln!(
            "first write acknowledged {:?} after the leader was killed",
            *first - killed_at
        );
    }
    runtime.block_on(async {
        let (now_leader, _) = cluster.leader(Duration::from_secs(5)).await.unwrap();
        assert_ne!(now_leader, leader, "a killed node cannot lead");
    });
    // The killed node restarts from its data directory and catches up.
    cluster.spawn(leader).unwrap();
    runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (now_leader, _) = cluster.leader(Duration::from_secs(10)).await.unwrap();
            let target = cluster.applied(now_leader).await.unwrap();
            if cluster.applied(leader).await.unwrap_or(0) >= target {
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
