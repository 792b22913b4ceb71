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

/// Four real nodes, three founding: a split, then a replica added on the fourth node (it
/// catches up by a streamed snapshot, since the logs are compacted), promoted, given the
/// leadership, and killed; another replica removed. Writes go on between every step, each
/// routed to the partition holding its key, and at the end every node holds exactly the
/// acknowledged writes of the partitions it hosts.
#[test]
fn split_membership_and_snapshot_across_processes() {
    use reef_rpc::pb::change_replica_request::Change;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = StoreCluster::start_with(
        Path::new(env!("CARGO_BIN_EXE_reef")),
        4,
        3,
        50,
        &["--raft-threads", "2", "--log-gc-threshold", "20"],
    )
    .unwrap();
    let mut writes = Writes::default();
    let (key_lo, key_hi) = (Writes::lo(0), Writes::hi(0));
    runtime.block_on(async {
        writes.add(&mut cluster, 30).await;
        cluster.split(b"m").await.unwrap();
        let (_, upper) = cluster
            .leader_for(&key_hi, Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(upper.start.as_ref(), b"m", "the split made [m, end)");
        assert_ne!(upper.id, 1);
        writes.add(&mut cluster, 30).await;

        // Node 4 joins both partitions: a learner, caught up by snapshot, then a voter.
        for key in [&key_lo, &key_hi] {
            cluster
                .change_replica(key, Change::AddLearnerOnNode(4))
                .await
                .unwrap();
        }
        let until = Instant::now() + Duration::from_secs(30);
        let node4 = loop {
            let parts = cluster.partitions(3).await.unwrap_or_default();
            if parts.len() == 2 {
                break parts;
            }
            assert!(Instant::now() < until, "node 4 got no snapshots: {parts:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        writes.add(&mut cluster, 10).await;
        for (key, part) in [(&key_lo, &node4[0]), (&key_hi, &node4[1])] {
            let replica = part.replicas.iter().find(|r| r.node_id == 4).unwrap().id;
            cluster
                .change_replica(key, Change::PromoteReplica(replica))
                .await
                .unwrap();
        }
        writes.add(&mut cluster, 10).await;

        // Node 1 leaves the upper partition (leadership moves off it first if it leads).
        let (leader, upper) = cluster
            .leader_for(&key_hi, Duration::from_secs(20))
            .await
            .unwrap();
        if leader == 0 {
            cluster.move_leader(&key_hi, 1).await.unwrap();
        }
        let node1 = upper.replicas.iter().find(|r| r.node_id == 1).unwrap().id;
        cluster
            .change_replica(&key_hi, Change::RemoveReplica(node1))
            .await
            .unwrap();
        writes.add(&mut cluster, 10).await;

        // Node 4 takes the lower partition's leadership, then is killed with SIGKILL.
        cluster.move_leader(&key_lo, 3).await.unwrap();
        writes.add(&mut cluster, 5).await;
        cluster.kill(3).unwrap();
        writes.add(&mut cluster, 10).await;
        cluster.spawn(3).unwrap();
        writes.add(&mut cluster, 5).await;
    });

    // Every node catches up, then holds exactly the writes of the partitions it hosts.
    let hosted = runtime.block_on(async {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let mut hosted = Vec::new();
            // Partition id -> (replicas in its descriptor, applied index of each hosted one).
            let mut applied = std::collections::HashMap::<u64, (usize, Vec<u64>)>::new();
            for i in 0..cluster.nodes.len() {
                let status = cluster.status(i).await.unwrap();
                let mut parts = Vec::new();
                for r in status.replicas {
                    if let Some(p) = r.partition {
                        let entry = applied.entry(p.id).or_default();
                        entry.0 = p.replicas.len();
                        entry.1.push(r.applied);
                        parts.push(p);
                    }
                }
                hosted.push(parts);
            }
            let converged = applied
                .values()
                .all(|(n, a)| a.len() == *n && a.iter().all(|x| *x == a[0]));
            if converged {
                break hosted;
            }
            assert!(
                Instant::now() < until,
                "replicas did not converge: {applied:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    cluster.stop_all().unwrap();
    for (node, parts) in cluster.nodes.iter().zip(&hosted) {
        let engine: Arc<dyn Engine> =
            Arc::new(RocksEngine::open(&node.data_dir, &EngineOptions::default()).unwrap());
        let mvcc = MvccStore::new(engine);
        for (key, value) in &writes.done {
            let got = mvcc.get(key, u64::MAX >> 1).unwrap();
            if parts.iter().any(|p| p.contains(key)) {
                assert_eq!(
                    got.as_deref(),
                    Some(value.as_slice()),
                    "node {} lacks an acknowledged write of {}",
                    node.id,
                    String::from_utf8_lossy(key)
                );
            } else {
                assert_eq!(
                    got, None,
                    "node {} kept data of a partition it left",
                    node.id
                );
            }
        }
    }
    assert_eq!(hosted[0].len(), 1, "node 1 hosts only the lower partition");
    assert!(hosted[1..].iter().all(|parts| parts.len() == 2));
}

/// The writes of [`split_membership_and_snapshot_across_processes`]: pairs of keys, one below
/// the split key `m` and one above.
#[derive(Default)]
struct Writes {
    next: u64,
    done: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Writes {
    fn lo(i: u64) -> Vec<u8> {
        format!("a{i:04}").into_bytes()
    }

    fn hi(i: u64) -> Vec<u8> {
        format!("n{i:04}").into_bytes()
    }

    /// Commits `n` more pairs, each acknowledged before the next starts.
    async fn add(&mut self, cluster: &mut StoreCluster, n: u64) {
        for i in self.next..self.next + n {
            for (key, ts) in [(Writes::lo(i), 100 + 10 * i), (Writes::hi(i), 105 + 10 * i)] {
                cluster.write(&key, &value(i), ts).await.unwrap();
                self.done.push((key, value(i)));
            }
        }
        self.next += n;
    }
}
