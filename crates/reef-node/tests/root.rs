//! The root service against real `reef store` processes that found and join a cluster: the
//! root group and the first data partition grow to three replicas as nodes join; the
//! timestamp oracle never goes back and never hands out a timestamp twice, for concurrent
//! callers, across root leader changes, `kill -9` of the root leader and a restart of every
//! node; and the replicas of a dead node are re-created on a spare node from the survivors,
//! with the data they hold.
//!
//! The processes share one machine clock, which keeps moving forward, so these tests cannot
//! show that a new leader resumes above the persisted limit rather than at its own clock; the
//! `TsoWindow` unit tests in `reef-txn` do, with a clock that stalls and goes back.

use std::path::Path;
use std::time::{Duration, Instant};

use reef_client::{Client, RootClient};
use reef_rpc::pb;
use reef_testkit::store_cluster::{Membership, StoreCluster};

const ROOT_KEY: &[u8] = b"\x00";
const DATA_KEY: &[u8] = b"\x02k";

fn start(n: u64, extra: &[&str]) -> StoreCluster {
    StoreCluster::start_as(
        Path::new(env!("CARGO_BIN_EXE_reef")),
        n,
        Membership::Joined { heartbeat_ms: 200 },
        50,
        extra,
    )
    .unwrap()
}

fn roots(cluster: &StoreCluster) -> RootClient {
    RootClient::new(
        cluster.cluster_id,
        cluster.nodes.iter().map(|n| n.addr.clone()).collect(),
        Duration::from_secs(30),
    )
}

/// The voters' node ids of partition `id` in the root leader's map.
fn voters(status: &pb::ClusterResponse, id: u64) -> Vec<u64> {
    let mut nodes: Vec<u64> = status
        .partitions
        .iter()
        .filter_map(|p| p.partition.as_ref())
        .filter(|p| p.id == id)
        .flat_map(|p| p.replicas.iter().filter(|r| !r.learner).map(|r| r.node_id))
        .collect();
    nodes.sort_unstable();
    nodes
}

/// Waits until `done` holds for the root leader's view of the cluster.
async fn wait_for(
    roots: &RootClient,
    what: &str,
    done: impl Fn(&pb::ClusterResponse) -> bool,
) -> pb::ClusterResponse {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(status) = roots.cluster().await {
            if done(&status) {
                return status;
            }
            if Instant::now() > until {
                panic!("timed out waiting for {what}; the cluster is {status:#?}");
            }
        } else if Instant::now() > until {
            panic!("timed out waiting for {what}; the root service does not answer");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes `rounds` timestamp batches of varying sizes from each of three concurrent callers.
/// Each caller checks that every batch starts above everything handed out before it asked
/// (`last`, then its own previous batch); every batch is recorded in `taken`.
async fn take_timestamps(
    roots: &RootClient,
    last: &mut u64,
    taken: &mut Vec<(u64, u64)>,
    rounds: u32,
) {
    async fn caller(roots: &RootClient, floor: u64, rounds: u32, seed: u32) -> Vec<(u64, u64)> {
        let mut previous = floor;
        let mut out = Vec::new();
        for round in 0..rounds {
            let count = 1 + (round + seed) % 7;
            let first = roots.tso(count).await.unwrap();
            assert!(
                first > previous,
                "timestamp {first} is not above {previous}, handed out before it"
            );
            previous = first + (count as u64 - 1) * reef_common::TSO_STEP;
            out.push((first, previous));
        }
        out
    }
    let floor = *last;
    let (a, b, c) = tokio::join!(
        caller(roots, floor, rounds, 0),
        caller(roots, floor, rounds, 3),
        caller(roots, floor, rounds, 5)
    );
    for batch in a.into_iter().chain(b).chain(c) {
        *last = (*last).max(batch.1);
        taken.push(batch);
    }
}

/// Asserts that no timestamp was handed out twice.
fn assert_disjoint(taken: &mut [(u64, u64)]) {
    taken.sort_unstable();
    for pair in taken.windows(2) {
        assert!(
            pair[0].1 < pair[1].0,
            "batches {:?} and {:?} share timestamps",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn timestamps_never_go_back_across_root_leader_changes_and_restarts() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = start(3, &[]);
    let roots = roots(&cluster);
    runtime.block_on(async {
        let status = wait_for(&roots, "three root and data replicas", |s| {
            voters(s, 1) == [1, 2, 3] && voters(s, 2) == [1, 2, 3]
        })
        .await;
        assert_eq!(status.nodes.len(), 3);
        assert!(status.nodes.iter().all(|n| n.liveness == "up"));
        let (mut last, mut taken) = (0u64, Vec::new());
        take_timestamps(&roots, &mut last, &mut taken, 20).await;

        // Leadership moves around and back: a leader that regains leadership in a later term
        // must not serve from the window it had before.
        for i in [1, 2, 0, 1] {
            cluster.move_leader(ROOT_KEY, i).await.unwrap();
            take_timestamps(&roots, &mut last, &mut taken, 10).await;
        }

        // The root leader is killed; a new one takes over above every handed-out timestamp.
        for _ in 0..2 {
            let leader = roots.cluster().await.unwrap().root_leader;
            let i = cluster.nodes.iter().position(|n| n.id == leader).unwrap();
            cluster.kill(i).unwrap();
            take_timestamps(&roots, &mut last, &mut taken, 10).await;
            cluster.spawn(i).unwrap();
            take_timestamps(&roots, &mut last, &mut taken, 5).await;
        }

        // Every node stops and starts again.
        cluster.stop_all().unwrap();
        for i in 0..3 {
            cluster.spawn(i).unwrap();
        }
        take_timestamps(&roots, &mut last, &mut taken, 10).await;
        assert_eq!(taken.len(), 3 * (20 + 4 * 10 + 2 * (10 + 5) + 10));
        assert_disjoint(&mut taken);
    });
}

fn put(key: &[u8], value: &[u8]) -> pb::Mutation {
    pb::Mutation {
        op: pb::mutation::Op::Put as i32,
        key: key.to_vec().into(),
        value: value.to_vec().into(),
        conflict_ts: 0,
    }
}

fn data_key(i: u32) -> Vec<u8> {
    let mut key = DATA_KEY.to_vec();
    key.extend_from_slice(format!("{i:03}").as_bytes());
    key
}

#[test]
fn dead_node_replicas_are_recreated_on_a_spare_node() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = start(
        4,
        &["--suspect-after-ms", "1000", "--dead-after-ms", "3000"],
    );
    let roots = roots(&cluster);
    let nodes: Vec<(u64, String)> = cluster
        .nodes
        .iter()
        .map(|n| (n.id, n.addr.clone()))
        .collect();
    let client = Client::new(cluster.cluster_id, &nodes, Duration::from_secs(30));
    runtime.block_on(async {
        wait_for(&roots, "three replicas of each partition", |s| {
            voters(s, 1).len() == 3 && voters(s, 2).len() == 3
        })
        .await;

        // Data written through the routing client with timestamps from the oracle.
        let keys: Vec<Vec<u8>> = (0..50).map(data_key).collect();
        let start_ts = roots.tso(1).await.unwrap();
        let mutations = keys.iter().map(|k| put(k, k)).collect();
        client
            .prewrite(mutations, &keys[0], start_ts, 60_000)
            .await
            .unwrap();
        let commit_ts = roots.tso(1).await.unwrap();
        client
            .commit(keys.clone(), start_ts, commit_ts)
            .await
            .unwrap();

        // A node holding a data replica, and not the root leader, dies (once no balancing
        // move is under way).
        let status = wait_for(&roots, "a settled cluster", |s| {
            s.partitions.iter().all(|p| {
                p.partition
                    .as_ref()
                    .is_some_and(|p| p.replicas.len() == 3 && p.replicas.iter().all(|r| !r.learner))
            })
        })
        .await;
        assert_eq!(status.nodes.len(), 4);
        let holders = voters(&status, 2);
        let spare = (1..=4).find(|id| !holders.contains(id)).unwrap();
        let victim = *holders
            .iter()
            .find(|&&id| id != status.root_leader)
            .unwrap();
        cluster.kill(victim as usize - 1).unwrap();

        // Once it is declared dead, its replicas move to the spare node.
        let status = wait_for(&roots, "the dead node's replicas re-created", |s| {
            let dead = s
                .nodes
                .iter()
                .any(|n| n.node.as_ref().is_some_and(|d| d.id == victim) && n.liveness == "dead");
            dead && [1, 2].iter().all(|&p| {
                let v = voters(s, p);
                v.len() == 3 && !v.contains(&victim)
            })
        })
        .await;
        assert!(voters(&status, 2).contains(&spare), "{status:#?}");

        // The new replica holds the data: it leads the partition and serves every key.
        cluster
            .move_leader(DATA_KEY, spare as usize - 1)
            .await
            .unwrap();
        let read_ts = roots.tso(1).await.unwrap();
        let mut end = DATA_KEY.to_vec();
        end.push(0xff);
        let pairs = client.scan(DATA_KEY, &end, read_ts, 1000).await.unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> =
            keys.iter().map(|k| (k.clone(), k.clone())).collect();
        assert_eq!(pairs, expected);
    });
}

/// How many replicas each node holds and how many partitions it leads, by node id.
fn loads(status: &pb::ClusterResponse) -> Vec<(u64, u64, u64)> {
    status
        .nodes
        .iter()
        .map(|n| (n.node.as_ref().map_or(0, |d| d.id), n.replicas, n.leaders))
        .collect()
}

#[test]
fn replicas_and_leaders_spread_over_nodes_as_they_join() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = start(4, &[]);
    let roots = roots(&cluster);
    runtime.block_on(async {
        wait_for(&roots, "three replicas of each partition", |s| {
            voters(s, 1).len() == 3 && voters(s, 2).len() == 3
        })
        .await;
        // Seven partitions (the root group and six data partitions), 21 replicas over four
        // nodes.
        for i in [10, 20, 30, 40, 50] {
            cluster.split(&data_key(i)).await.unwrap();
        }
        let status = wait_for(&roots, "replicas and leaders spread over every node", |s| {
            s.partitions.len() == 7
                && s.partitions.iter().all(|p| p.leader_node_id != 0)
                && loads(s)
                    .iter()
                    .all(|&(_, replicas, leaders)| replicas >= 4 && leaders >= 1)
        })
        .await;
        let total: u64 = loads(&status).iter().map(|l| l.1).sum();
        assert!(total >= 21, "{:?}", loads(&status));
    });
}

/// Counts, in a stopped node's data directory, the write records and locks of `key`, with the
/// values of its committed puts.
fn on_disk(data_dir: &Path, key: &[u8]) -> (usize, Vec<Vec<u8>>, usize) {
    use reef_storage::{Cf, Engine, EngineOptions, RocksEngine};
    let engine = RocksEngine::open(data_dir, &EngineOptions::default()).unwrap();
    let (mut records, mut puts, mut locks) = (0, Vec::new(), 0);
    for cf in [Cf::Write, Cf::Lock] {
        let mut cursor = engine.cursor(cf, None, None);
        cursor.seek_to_first();
        while cursor.valid() {
            let mut input = cursor.key();
            if reef_common::codec::decode_bytes(&mut input).ok().as_deref() == Some(key) {
                if cf == Cf::Lock {
                    locks += 1;
                } else {
                    records += 1;
                    let write = reef_txn::WriteRef::decode(cursor.value()).unwrap();
                    if write.kind == reef_txn::WriteKind::Put {
                        puts.push(write.value.to_vec());
                    }
                }
            }
            cursor.next();
        }
    }
    (records, puts, locks)
}

/// MVCC garbage collection over the cluster, with a three-second GC life time: the root leader
/// moves the safe point and names its own node the collector, which settles a dead client's
/// leftover lock by its primary, destroys registered ranges and removes old versions on every
/// replica of both partitions; reads below the safe point are refused.
#[test]
fn garbage_is_collected_on_every_replica_below_the_safe_point() {
    use reef_client::{ClusterStore, RemoteTso};
    use reef_txn::{IsolationLevel, Mutation, MutationOp, Store, TimestampOracle, TxnClient};
    use std::sync::Arc;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut cluster = start(3, &["--gc-life-ms", "3000", "--gc-interval-ms", "200"]);
    let roots = Arc::new(roots(&cluster));
    runtime.block_on(async {
        wait_for(&roots, "three replicas of everything", |s| {
            voters(s, 1).len() == 3 && voters(s, 2).len() == 3
        })
        .await;
        cluster.split(b"\x02m").await.unwrap();
    });
    let client = Arc::new(Client::with_root(roots.clone(), Duration::from_secs(20)));
    let store = Arc::new(ClusterStore::new(client, runtime.handle().clone()));
    let tso = Arc::new(RemoteTso::new(roots.clone(), runtime.handle()));
    let txns = TxnClient::new(store.clone(), tso.clone());
    let write = |key: &[u8], value: &str| {
        let txn = txns.begin(IsolationLevel::RepeatableRead).unwrap();
        txn.put(key.to_vec(), value.as_bytes().to_vec());
        txn.commit().unwrap().unwrap()
    };
    let destroy = |start: &[u8], end: &[u8]| {
        let txn = txns.begin(IsolationLevel::RepeatableRead).unwrap();
        txn.destroy_range(start, end);
        txn.commit().unwrap();
    };
    let gone = |start: &[u8], end: &[u8]| {
        let txn = txns.begin(IsolationLevel::RepeatableRead).unwrap();
        let empty = txn.scan(start, end).unwrap().next().is_none();
        txn.rollback().unwrap();
        empty
    };
    let wait_until_gone = |start: &[u8], end: &[u8]| {
        let until = Instant::now() + Duration::from_secs(60);
        while !gone(start, end) {
            assert!(
                Instant::now() < until,
                "the registered range was never destroyed"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Twenty versions of a key on each side of the split.
    for i in 0..20 {
        write(b"\x02a", &format!("a{i}"));
        write(b"\x02z", &format!("z{i}"));
    }
    // A client that died after committing its primary (left of the split) leaves its
    // secondary (right of it) locked; then the primary is overwritten, which makes its commit
    // record garbage. Nothing reads the secondary before GC.
    let start_ts = tso.get_ts().unwrap();
    let put = |key: &[u8], value: &str| Mutation {
        op: MutationOp::Put(value.as_bytes().to_vec()),
        key: key.to_vec(),
        conflict_ts: None,
    };
    store
        .prewrite(
            &[put(b"\x02b", "b1"), put(b"\x02y", "y1")],
            b"\x02b",
            start_ts,
            100,
        )
        .unwrap();
    let commit_ts = tso.get_ts().unwrap();
    store
        .commit(&[b"\x02b".to_vec()], start_ts, commit_ts)
        .unwrap();
    write(b"\x02b", "b2");
    // A dropped table's range, spanning both partitions.
    for key in [&b"\x02d1"[..], b"\x02d2", b"\x02n1", b"\x02n2"] {
        write(key, "x");
    }
    let before = tso.get_ts().unwrap();
    destroy(b"\x02d", b"\x02o");
    wait_until_gone(b"\x02d", b"\x02o");
    // Rounds run one after another: once a range registered now is gone too, the round that
    // destroyed the first one has finished collecting versions.
    write(b"\x02q1", "x");
    destroy(b"\x02q", b"\x02r");
    wait_until_gone(b"\x02q", b"\x02r");

    // Below the safe point, reads are refused rather than answered from collected versions.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get(b"\x02a", before) {
            Err(reef_txn::TxnError::SnapshotTooOld { ts, safe_point }) => {
                assert_eq!(ts, before);
                assert!(safe_point > before);
                break;
            }
            other => assert!(
                Instant::now() < until,
                "a read below the safe point: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = runtime.block_on(roots.cluster()).unwrap();
    assert_eq!(status.gc_life_ms, 3000);
    assert!(status.gc_safe_point > before, "{}", status.gc_safe_point);

    // Every replica kept only the newest version, committed the secondary and destroyed the
    // ranges.
    for i in 0..3 {
        cluster.kill(i).unwrap();
    }
    for node in &cluster.nodes {
        let (records, puts, _) = on_disk(&node.data_dir, b"\x02a");
        assert_eq!(
            (records, puts),
            (1, vec![b"a19".to_vec()]),
            "node {}",
            node.id
        );
        let (records, puts, _) = on_disk(&node.data_dir, b"\x02z");
        assert_eq!(
            (records, puts),
            (1, vec![b"z19".to_vec()]),
            "node {}",
            node.id
        );
        let (_, puts, locks) = on_disk(&node.data_dir, b"\x02y");
        assert_eq!((puts, locks), (vec![b"y1".to_vec()], 0), "node {}", node.id);
        for key in [&b"\x02d1"[..], b"\x02n2", b"\x02q1"] {
            assert_eq!(on_disk(&node.data_dir, key).0, 0, "node {}", node.id);
        }
    }
}
