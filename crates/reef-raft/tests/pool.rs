//! The replication thread pool: three nodes, each running three hosts on their own threads
//! (real RocksDB, real threads and time), connected by an in-process transport that hands
//! envelopes to the receiving node's router. Splits spread the partitions over the threads,
//! so partitions created by a split on one thread are adopted by another; writers then commit
//! into every partition from several threads at once, every write is read back through the
//! leaders, the nodes restart and recover each partition on the thread that owns it, and every
//! acknowledged write is found in all three nodes' RocksDB.
//!
//! The simulated-network traces (`traces.rs`) cover the replication core step by step; this
//! test covers what only the pool does: routing, handoffs between threads and the shared
//! registry.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use reef_raft::{
    Driver, Envelope, Host, HostMsg, Partition, ProposeCallback, RaftConfig, Registry, Router,
    Shard, StoreIdent, SystemClock, Transport,
};
use reef_storage::{Engine, EngineOptions, RocksEngine};
use reef_txn::{Command, CommandResponse, Mutation, MutationOp, MvccStore};

const NODES: u64 = 3;
const THREADS: usize = 3;

/// Every node's router, filled in as the nodes start.
type Routers = Arc<Mutex<HashMap<u64, Router>>>;

/// Delivers envelopes to the destination node's router (dropped while that node is down).
struct LocalTransport(Routers);

impl Transport for LocalTransport {
    fn send(&mut self, envelope: Envelope) {
        let router = self.0.lock().unwrap().get(&envelope.to.node_id).cloned();
        if let Some(router) = router {
            let _ = router.send(HostMsg::Raft(envelope));
        }
    }
}

struct Node {
    engine: Arc<dyn Engine>,
    driver: Option<Driver>,
}

struct Cluster {
    _dir: tempfile::TempDir,
    routers: Routers,
    nodes: HashMap<u64, Node>,
}

fn config() -> RaftConfig {
    RaftConfig {
        tick_interval: Duration::from_millis(10),
        log_gc_threshold: 50,
        check_ticks: 5,
        ..RaftConfig::default()
    }
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let opts = EngineOptions {
            block_cache_bytes: 8 << 20,
            write_buffer_bytes: 4 << 20,
            max_background_jobs: 2,
            ..EngineOptions::default()
        };
        let mut nodes = HashMap::new();
        for id in 1..=NODES {
            let path = dir.path().join(format!("node{id}"));
            let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(&path, &opts).unwrap());
            nodes.insert(
                id,
                Node {
                    engine,
                    driver: None,
                },
            );
        }
        let mut cluster = Cluster {
            _dir: dir,
            routers: Arc::default(),
            nodes,
        };
        let first = Partition::first(&(1..=NODES).collect::<Vec<_>>());
        for id in 1..=NODES {
            cluster.start_node(id, Some(first.clone()));
        }
        cluster
    }

    /// Opens the node's hosts over its engine (bootstrapping `first` on a fresh one) and
    /// starts its threads.
    fn start_node(&mut self, id: u64, first: Option<Partition>) {
        let node = self.nodes.get_mut(&id).unwrap();
        let registry = Arc::new(Registry::new());
        let mut hosts: Vec<Host> = (0..THREADS)
            .map(|index| {
                Host::open_shard(
                    node.engine.clone(),
                    StoreIdent {
                        cluster_id: 1,
                        node_id: id,
                    },
                    config(),
                    Box::new(LocalTransport(self.routers.clone())),
                    Arc::new(SystemClock),
                    Shard {
                        index,
                        count: THREADS,
                    },
                    registry.clone(),
                )
                .unwrap()
            })
            .collect();
        if let Some(first) = first {
            assert!(hosts[Shard::of(first.id, THREADS)]
                .bootstrap(first)
                .unwrap());
        }
        let driver = Driver::start(hosts, config().tick_interval);
        self.routers.lock().unwrap().insert(id, driver.router());
        node.driver = Some(driver);
    }

    fn stop_node(&mut self, id: u64) {
        self.routers.lock().unwrap().remove(&id);
        if let Some(driver) = self.nodes.get_mut(&id).unwrap().driver.take() {
            driver.stop();
        }
    }

    fn router(&self, id: u64) -> Router {
        self.routers.lock().unwrap()[&id].clone()
    }

    /// Returns the leader's router and the partition holding `key`, waiting for one.
    fn leader_for(&self, key: &[u8]) -> (Router, Partition) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            for id in 1..=NODES {
                let router = self.router(id);
                for status in router.status().unwrap() {
                    if status.role != reef_raft::StateRole::Leader {
                        continue;
                    }
                    if let Some(p) = status.partition.filter(|p| p.contains(key)) {
                        return (router, p);
                    }
                }
            }
            assert!(Instant::now() < until, "no leader for {key:?} within 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends the request `make` builds for the partition holding `key` to that partition's
    /// leader until it succeeds, through leader changes and splits.
    fn until_done(
        &self,
        key: &[u8],
        make: impl Fn(&Partition, ProposeCallback) -> HostMsg,
    ) -> CommandResponse {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (router, partition) = self.leader_for(key);
            let (tx, rx) = bounded(1);
            router.send_or_fail(make(
                &partition,
                Box::new(move |result| {
                    let _ = tx.send(result);
                }),
            ));
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(response)) => return response,
                Ok(Err(err)) => assert!(Instant::now() < until, "request kept failing: {err}"),
                Err(_) => panic!("request on partition {} got no answer", partition.id),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Proposes `cmd` on the partition holding `key` until it is applied.
    fn propose(&self, key: &[u8], cmd: &Command) -> CommandResponse {
        self.until_done(key, |partition, cb| HostMsg::Propose {
            partition_id: partition.id,
            epoch: partition.epoch,
            cmd: cmd.clone(),
            cb,
        })
    }

    /// Commits `key = value` in a one-key transaction at `start_ts`.
    fn put(&self, key: &[u8], value: &[u8], start_ts: u64) {
        let prewrite = Command::Prewrite {
            mutations: vec![Mutation::new(MutationOp::Put(value.to_vec()), key.to_vec())],
            primary: key.to_vec(),
            start_ts,
            lock_ttl_ms: 60_000,
            min_commit_ts: 0,
        };
        self.propose(key, &prewrite);
        let commit = Command::Commit {
            keys: vec![key.to_vec()],
            start_ts,
            commit_ts: start_ts + 1,
        };
        self.propose(key, &commit);
    }

    /// Reads `key` through its leader.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let (router, partition) = self.leader_for(key);
            let (tx, rx) = bounded(1);
            let read_key = key.to_vec();
            let mut end = key.to_vec();
            end.push(0);
            router.read(
                partition.id,
                partition.epoch,
                key.to_vec(),
                end,
                0,
                Box::new(move |result| {
                    let _ = tx.send(result.map(|view| view.mvcc.get(&read_key, u64::MAX >> 1)));
                }),
            );
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok(value)) => return value.unwrap(),
                Ok(Err(err)) => assert!(Instant::now() < until, "read kept failing: {err}"),
                Err(_) => panic!("read on partition {} got no answer", partition.id),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Splits the partition holding `key` at `key`, unless a partition already starts there.
    fn split(&self, key: &[u8]) {
        if self.leader_for(key).1.start == key {
            return;
        }
        self.until_done(key, |partition, cb| HostMsg::Split {
            partition_id: partition.id,
            epoch: partition.epoch,
            split_key: key.to_vec(),
            cb,
        });
    }

    /// Waits until every replica of every partition has applied its leader's commit index.
    fn wait_applied(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let mut applied: HashMap<u64, BTreeSet<u64>> = HashMap::new();
            let mut commits: HashMap<u64, u64> = HashMap::new();
            for id in 1..=NODES {
                for status in self.router(id).status().unwrap() {
                    let Some(p) = status.partition else { continue };
                    applied.entry(p.id).or_default().insert(status.applied);
                    if status.role == reef_raft::StateRole::Leader {
                        commits.insert(p.id, status.commit);
                    }
                }
            }
            let done = applied.iter().all(|(id, set)| {
                set.len() == 1 && commits.get(id).is_some_and(|c| set.contains(c))
            });
            if done {
                return;
            }
            assert!(
                Instant::now() < until,
                "replicas did not catch up: {applied:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Returns the partitions every node hosts, once all nodes agree on them.
    fn agreed_partitions(&self) -> Vec<Partition> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let views: Vec<Vec<Partition>> = (1..=NODES)
                .map(|id| self.router(id).partitions().unwrap())
                .collect();
            // A partition a split created shows once its owner thread adopted it: until then
            // the list has a gap.
            let covers = |v: &Vec<Partition>| {
                let mut sorted: Vec<&Partition> = v.iter().collect();
                sorted.sort_by(|a, b| a.start.cmp(&b.start));
                sorted.first().is_some_and(|p| p.start.is_empty())
                    && sorted.last().is_some_and(|p| p.end.is_empty())
                    && sorted.windows(2).all(|w| w[0].end == w[1].start)
            };
            if views.iter().all(|v| *v == views[0] && covers(v)) {
                return views[0].clone();
            }
            assert!(
                Instant::now() < until,
                "nodes disagree on partitions: {views:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn key(i: u64) -> Vec<u8> {
    // Spread over the alphabet so every partition gets keys.
    format!("{}{i:04}", (b'a' + (i % 26) as u8) as char).into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("value{i}").into_bytes()
}

#[test]
fn partitions_spread_over_threads_and_survive_restart() {
    let cluster = Cluster::start();
    cluster.put(b"m0", b"before", 10);

    // Split until the partitions are owned by every thread of the pool, so some splits are
    // handed from the parent's thread to another one.
    let split_keys: Vec<Vec<u8>> = (b'b'..=b'y').map(|c| vec![c]).collect();
    let mut used = 0;
    loop {
        let partitions = cluster.agreed_partitions();
        let owners: BTreeSet<usize> = partitions
            .iter()
            .map(|p| Shard::of(p.id, THREADS))
            .collect();
        if owners.len() == THREADS {
            break;
        }
        assert!(
            used < split_keys.len(),
            "24 splits left a thread without partitions"
        );
        cluster.split(&split_keys[used]);
        used += 1;
    }
    let partitions = cluster.agreed_partitions();
    assert_eq!(partitions.len(), used + 1);
    eprintln!(
        "{} partitions over {THREADS} threads: {:?}",
        partitions.len(),
        partitions
            .iter()
            .map(|p| (p.to_string(), Shard::of(p.id, THREADS)))
            .collect::<Vec<_>>()
    );
    assert_eq!(cluster.get(b"m0").as_deref(), Some(&b"before"[..]));

    // Four writers commit into every partition at once.
    let total = 400u64;
    let cluster = Arc::new(cluster);
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let cluster = cluster.clone();
            std::thread::spawn(move || {
                for i in (w..total).step_by(4) {
                    cluster.put(&key(i), &value(i), 1000 + i * 10);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    for i in 0..total {
        assert_eq!(
            cluster.get(&key(i)),
            Some(value(i)),
            "write {i} not read back"
        );
    }

    // Restart every node: each partition comes back on the thread that owns it.
    let mut cluster = Arc::into_inner(cluster).expect("writers finished");
    for id in 1..=NODES {
        cluster.stop_node(id);
    }
    for id in 1..=NODES {
        cluster.start_node(id, None);
    }
    assert_eq!(cluster.agreed_partitions(), partitions);
    for i in (0..total).step_by(7) {
        assert_eq!(cluster.get(&key(i)), Some(value(i)), "write {i} lost");
    }
    cluster.put(b"z9999", b"after", 100_000);

    // Every acknowledged write is in every node's RocksDB once the followers have applied.
    cluster.wait_applied();
    for id in 1..=NODES {
        cluster.stop_node(id);
    }
    for (id, node) in &cluster.nodes {
        let mvcc = MvccStore::new(node.engine.clone());
        for i in 0..total {
            assert_eq!(
                mvcc.get(&key(i), u64::MAX >> 1).unwrap(),
                Some(value(i)),
                "node {id} lacks write {i}"
            );
        }
    }
}

/// Reads `key` at `read_ts` through `router`; returns the thread the read ran on and what it
/// got, or None if it had not run when `Router::read` returned.
fn read_here(
    router: &Router,
    partition: &Partition,
    key: &[u8],
    read_ts: u64,
) -> Option<(std::thread::ThreadId, reef_raft::Result<Option<Vec<u8>>>)> {
    let seen = Arc::new(Mutex::new(None));
    let (answer, read_key) = (seen.clone(), key.to_vec());
    let mut end = key.to_vec();
    end.push(0);
    router.read(
        partition.id,
        partition.epoch,
        key.to_vec(),
        end,
        read_ts,
        Box::new(move |view| {
            let got = view.map(|v| v.mvcc.get(&read_key, read_ts).unwrap());
            *answer.lock().unwrap() = Some((std::thread::current().id(), got));
        }),
    );
    let answered = seen.lock().unwrap().take();
    answered
}

#[test]
fn leaseholder_reads_run_on_the_calling_thread() {
    let cluster = Cluster::start();
    let here = std::thread::current().id();
    // A write renews the leader's lease; the read right after it runs on this thread, before
    // `Router::read` returns. A stall past the lease (80 ms here) sends it to the replication
    // thread instead, so the write and read repeat a few times.
    let mut inline = 0;
    for round in 0..20u64 {
        let value = format!("v{round}").into_bytes();
        cluster.put(b"k", &value, 100 + round * 10);
        let (router, partition) = cluster.leader_for(b"k");
        if let Some((thread, got)) = read_here(&router, &partition, b"k", 105 + round * 10) {
            assert_eq!(
                thread, here,
                "an answer before `read` returned ran on this thread"
            );
            assert_eq!(got.unwrap(), Some(value));
            inline += 1;
        }
    }
    assert!(inline > 0, "no read ran on the calling thread in 20 rounds");

    // A follower, and a leader asked with another epoch, hand the read to the replication
    // thread, which answers why it cannot serve it.
    let (leader, partition) = cluster.leader_for(b"k");
    let follower = (1..=NODES)
        .map(|id| cluster.router(id))
        .find(|r| {
            r.status().unwrap().iter().any(|s| {
                s.partition.as_ref().is_some_and(|p| p.id == partition.id)
                    && s.role != reef_raft::StateRole::Leader
            })
        })
        .expect("a follower");
    let (tx, rx) = bounded(1);
    follower.read(
        partition.id,
        partition.epoch,
        b"k".to_vec(),
        b"k\0".to_vec(),
        0,
        Box::new(move |view| {
            let _ = tx.send((std::thread::current().id(), view.map(|_| ())));
        }),
    );
    let (thread, got) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_ne!(thread, here);
    assert!(
        matches!(got, Err(reef_raft::RaftError::NotLeader { .. })),
        "{got:?}"
    );
    let mut stale = partition.clone();
    stale.epoch.version += 1;
    let (tx, rx) = bounded(1);
    leader.read(
        stale.id,
        stale.epoch,
        b"k".to_vec(),
        b"k\0".to_vec(),
        0,
        Box::new(move |view| {
            let _ = tx.send(view.map(|_| ()));
        }),
    );
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        matches!(got, Err(reef_raft::RaftError::EpochMismatch { .. })),
        "{got:?}"
    );
}
