//! Script-style trace tests of the replication core on a simulated network.
//!
//! Each `tests/traces/*.trace` file is a list of commands, each followed by its output (inline
//! after ` -> ` when it is one line, otherwise on the following lines indented by two spaces).
//! The test replays the commands against real hosts, each on its own RocksDB in a temporary
//! directory, all driven from this one thread: messages travel through an in-memory network
//! that can cut links and drop messages with a seeded generator, and time advances only by
//! `tick`. Election timeouts differ per node (node i waits `10 + i` ticks) so elections are
//! deterministic. Run with `REEF_TRACE_UPDATE=1` to rewrite the files with the actual output.
//!
//! Commands:
//!
//! ```text
//! cluster N [gc=ENTRIES] [split=BYTES]  start N nodes sharing partition 1 (all keys)
//! node N                                start an empty node N
//! tick [N]                              N ticks (default 1) on every live node, stabilizing after each
//! stabilize                             deliver messages and run persist rounds until quiet
//! status                                every live node's replicas
//! txn NODE k=v ... [del:k]              a whole transaction through NODE (prewrite, commit)
//! prewrite NODE start=TS k=v ...        only the prewrite, results printed when they arrive
//! commit NODE start=TS commit=TS k ...  only the commit
//! onepc NODE start=TS max=TS k=v ...    a one-phase commit through NODE, printed when it
//!                                       arrives: its commit ts, or "declined"
//! sync_ts NODE TS                       NODE marks its leaders and hands them oracle ts TS
//! get NODE KEY                          a linearizable read on NODE
//! read NODE KEY ts=TS                   a linearizable MVCC read of KEY at TS on NODE
//! scan NODE START                       a linearizable scan from START to the partition's end
//! cut A B... | C D...                   drop every message between the two groups
//! drop RATIO                            drop this share of all messages (seeded)
//! delay RATIO                           hold this share back to the next tick, reversed (reorders)
//! heal                                  undo cut, drop and delay
//! crash NODE / restart NODE             close a node's host and engine / reopen them from disk
//! split NODE PARTITION KEY              split through NODE (the leader)
//! add_learner NODE PARTITION TARGET     membership changes through NODE
//! promote NODE PARTITION REPLICA
//! remove NODE PARTITION REPLICA
//! transfer NODE PARTITION REPLICA       leadership transfer
//! check                                 every replica of every partition holds the same data
//! data NODE                             the MVCC data NODE's replicas hold, at the latest ts,
//!                                       and any data outside them
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reef_raft::{
    Clock, Envelope, Epoch, Host, Partition, RaftConfig, RaftError, RaftMessage, ReplicaChange,
    StateRole, StoreIdent, Transport,
};
use reef_storage::{Cf, Engine, EngineOptions, RocksEngine};
use reef_txn::{data_bounds, Command, Mutation, MutationOp};

const TICK: Duration = Duration::from_millis(100);

struct ManualClock(Mutex<Instant>);

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

#[derive(Default)]
struct Net {
    queue: VecDeque<Envelope>,
    cut: BTreeSet<(u64, u64)>,
    drop_ratio: f64,
    delay_ratio: f64,
    /// Messages held back until the next tick (delayed, and so reordered).
    delayed: Vec<Envelope>,
}

struct SimTransport(Arc<Mutex<Net>>);

impl Transport for SimTransport {
    fn send(&mut self, envelope: Envelope) {
        self.0.lock().unwrap().queue.push_back(envelope);
    }
}

/// Callback outputs, printed after the command that produced them.
type Outputs = Arc<Mutex<Vec<String>>>;

struct Sim {
    dir: tempfile::TempDir,
    config: RaftConfig,
    net: Arc<Mutex<Net>>,
    clock: Arc<ManualClock>,
    rng: StdRng,
    hosts: BTreeMap<u64, Host>,
    crashed: BTreeSet<u64>,
    outputs: Outputs,
    next_ts: u64,
}

fn show_err(err: &RaftError) -> String {
    match err {
        RaftError::NotLeader { leader, .. } => format!(
            "error NOT_LEADER (leader {})",
            leader.map_or("unknown".to_string(), |l| format!(
                "replica {} on node {}",
                l.id, l.node_id
            ))
        ),
        other => format!("error {}: {other}", other.code()),
    }
}

impl Sim {
    fn new() -> Sim {
        Sim {
            dir: tempfile::tempdir().unwrap(),
            config: RaftConfig::default(),
            net: Arc::default(),
            clock: Arc::new(ManualClock(Mutex::new(Instant::now()))),
            rng: StdRng::seed_from_u64(7),
            hosts: BTreeMap::new(),
            crashed: BTreeSet::new(),
            outputs: Arc::default(),
            next_ts: 100,
        }
    }

    fn open_host(&self, node_id: u64) -> Host {
        let opts = EngineOptions {
            block_cache_bytes: 8 << 20,
            write_buffer_bytes: 4 << 20,
            max_background_jobs: 2,
            ..EngineOptions::default()
        };
        let path = self.dir.path().join(format!("node{node_id}"));
        let engine: Arc<dyn Engine> = Arc::new(RocksEngine::open(&path, &opts).unwrap());
        let mut config = self.config.clone();
        config.min_election_ticks = 10 + node_id as usize;
        config.max_election_ticks = 11 + node_id as usize;
        Host::open(
            engine,
            StoreIdent {
                cluster_id: 1,
                node_id,
            },
            config,
            Box::new(SimTransport(self.net.clone())),
            self.clock.clone(),
        )
        .unwrap()
    }

    fn cluster(&mut self, n: u64) {
        let partition = Partition::first(&(1..=n).collect::<Vec<_>>());
        for node in 1..=n {
            let mut host = self.open_host(node);
            host.bootstrap(partition.clone()).unwrap();
            self.hosts.insert(node, host);
        }
    }

    /// Delivers queued messages and runs persist rounds until nothing moves.
    fn stabilize(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for host in self.hosts.values_mut() {
                if host.has_ready() {
                    host.handle_ready();
                    moved = true;
                }
            }
            let queue: Vec<Envelope> = self.net.lock().unwrap().queue.drain(..).collect();
            for env in queue {
                moved = true;
                let (from, to) = (env.from.node_id, env.to.node_id);
                let is_snapshot =
                    env.message.get_msg_type() == raft::prelude::MessageType::MsgSnapshot;
                let (cut, ratio, delay) = {
                    let net = self.net.lock().unwrap();
                    (
                        net.cut.contains(&(from, to)),
                        net.drop_ratio,
                        net.delay_ratio,
                    )
                };
                if delay > 0.0 && self.rng.random_bool(delay) {
                    self.net.lock().unwrap().delayed.push(env);
                    continue;
                }
                let lost = cut
                    || !self.hosts.contains_key(&to)
                    || (ratio > 0.0 && self.rng.random_bool(ratio));
                let (partition, to_replica) = (env.partition_id, env.to.id);
                if !lost {
                    self.hosts.get_mut(&to).unwrap().step(env);
                }
                if is_snapshot {
                    if let Some(sender) = self.hosts.get_mut(&from) {
                        sender.report_snapshot(partition, to_replica, !lost);
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the cluster did not stabilize");
    }

    fn tick(&mut self, n: usize) {
        for _ in 0..n {
            *self.clock.0.lock().unwrap() += TICK;
            {
                // Held-back messages rejoin the queue in reverse order.
                let mut net = self.net.lock().unwrap();
                let mut delayed = std::mem::take(&mut net.delayed);
                delayed.reverse();
                net.queue.extend(delayed);
            }
            for host in self.hosts.values_mut() {
                host.tick();
            }
            self.stabilize();
        }
    }

    fn host(&mut self, node: u64) -> &mut Host {
        self.hosts
            .get_mut(&node)
            .unwrap_or_else(|| panic!("node {node} is not running"))
    }

    /// Returns the partition containing `key` as `node` knows it.
    fn partition_for(&mut self, node: u64, key: &[u8]) -> Partition {
        self.host(node)
            .partitions()
            .into_iter()
            .find(|p| p.contains(key))
            .expect("a partition holds every key")
    }

    fn propose(&mut self, node: u64, cmd: Command, key: &[u8], label: String) {
        let partition = self.partition_for(node, key);
        let cb = self.callback(label);
        self.host(node)
            .propose(partition.id, partition.epoch, cmd, cb);
    }

    /// Stabilizes, then ticks until a callback reports (at most 100 ticks).
    fn wait_output(&mut self) -> Vec<String> {
        self.stabilize();
        for _ in 0..100 {
            let out = self.take_outputs();
            if !out.is_empty() {
                return out;
            }
            self.tick(1);
        }
        self.take_outputs()
    }

    fn take_outputs(&mut self) -> Vec<String> {
        std::mem::take(&mut *self.outputs.lock().unwrap())
    }

    /// Returns a callback that records `label: ok` or `label: <error>`.
    fn callback(&self, label: String) -> reef_raft::ProposeCallback {
        let outputs = self.outputs.clone();
        Box::new(move |result| {
            let line = match result {
                Ok(_) => format!("{label}: ok"),
                Err(err) => format!("{label}: {}", show_err(&err)),
            };
            outputs.lock().unwrap().push(line);
        })
    }

    fn epoch_of(&mut self, node: u64, partition_id: u64) -> Epoch {
        self.host(node)
            .partitions()
            .into_iter()
            .find(|p| p.id == partition_id)
            .map(|p| p.epoch)
            .unwrap_or_default()
    }

    fn status(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (node, host) in &self.hosts {
            for s in host.status() {
                let role = match s.role {
                    StateRole::Leader => "leader",
                    StateRole::Follower => "follower",
                    StateRole::Candidate => "candidate",
                    StateRole::PreCandidate => "precandidate",
                };
                let what = match &s.partition {
                    Some(p) => format!(
                        "p{} [{}, {}) v{}/{} replicas {}",
                        short_id(p.id),
                        show(&p.start),
                        if p.end.is_empty() {
                            "+inf".into()
                        } else {
                            show(&p.end)
                        },
                        p.epoch.conf_ver,
                        p.epoch.version,
                        p.replicas
                            .iter()
                            .map(|r| format!(
                                "{}@n{}{}",
                                short_id(r.id),
                                r.node_id,
                                if r.learner { "(learner)" } else { "" }
                            ))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    None => "uninitialised".to_string(),
                };
                out.push(format!(
                    "n{node} {what}: {role} term={} leader={} commit={} applied={} log=[{}, {}]",
                    s.term,
                    short_id(s.leader_id),
                    s.commit,
                    s.applied,
                    s.first_index,
                    s.last_index
                ));
            }
        }
        for node in &self.crashed {
            out.push(format!("n{node} down"));
        }
        out
    }

    /// Returns the raw lock and write records of a partition on one node.
    fn records(host: &Host, p: &Partition) -> Vec<(Cf, Vec<u8>, Vec<u8>)> {
        let engine = host.mvcc().engine();
        let (lower, upper) = data_bounds(&p.start, &p.end);
        let mut out = Vec::new();
        for cf in [Cf::Lock, Cf::Write] {
            let mut cursor = engine.cursor(cf, Some(&lower), upper.as_deref());
            cursor.seek_to_first();
            while cursor.valid() {
                out.push((cf, cursor.key().to_vec(), cursor.value().to_vec()));
                cursor.next();
            }
        }
        out
    }

    fn check(&self) -> Vec<String> {
        let mut by_partition: BTreeMap<u64, Vec<(u64, Partition)>> = BTreeMap::new();
        for (node, host) in &self.hosts {
            for p in host.partitions() {
                by_partition.entry(p.id).or_default().push((*node, p));
            }
        }
        let mut out = Vec::new();
        for (id, replicas) in by_partition {
            let (first_node, first) = &replicas[0];
            let reference = Sim::records(&self.hosts[first_node], first);
            let mut same = true;
            for (node, p) in &replicas[1..] {
                if p != first {
                    out.push(format!(
                        "p{}: n{node} has descriptor {p}, n{first_node} has {first}",
                        short_id(id)
                    ));
                    same = false;
                } else if Sim::records(&self.hosts[node], p) != reference {
                    out.push(format!(
                        "p{}: n{node} and n{first_node} hold different data",
                        short_id(id)
                    ));
                    same = false;
                }
            }
            if same {
                let nodes: Vec<String> = replicas.iter().map(|(n, _)| format!("n{n}")).collect();
                out.push(format!(
                    "p{}: {} records identical on {}",
                    short_id(id),
                    reference.len(),
                    nodes.join(" ")
                ));
            }
        }
        out
    }

    fn data(&self, node: u64) -> Vec<String> {
        let host = &self.hosts[&node];
        let mut out = Vec::new();
        for p in host.partitions() {
            let end = p.end.clone();
            match host.mvcc().scan(&p.start, &end, u64::MAX >> 1, usize::MAX) {
                Ok(pairs) => {
                    let body: Vec<String> = pairs
                        .iter()
                        .map(|(k, v)| format!("{}={}", show(k), show(v)))
                        .collect();
                    out.push(format!("p{}: {}", short_id(p.id), body.join(" ")));
                }
                Err(err) => out.push(format!("p{}: error {err}", short_id(p.id))),
            }
        }
        // Data no hosted partition covers (a destroyed replica must leave none).
        let partitions = host.partitions();
        let stray: Vec<String> = host
            .mvcc()
            .scan(&[], &[], u64::MAX >> 1, usize::MAX)
            .expect("scan the engine")
            .iter()
            .filter(|(k, _)| !partitions.iter().any(|p| p.contains(k)))
            .map(|(k, v)| format!("{}={}", show(k), show(v)))
            .collect();
        if !stray.is_empty() {
            out.push(format!("outside hosted partitions: {}", stray.join(" ")));
        }
        if out.is_empty() {
            out.push("(no data)".into());
        }
        out
    }

    fn run(&mut self, line: &str) -> Vec<String> {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> u64 {
            parse_id(
                tokens
                    .get(i)
                    .unwrap_or_else(|| panic!("{line}: missing argument {i}")),
            )
        };
        let opt = |name: &str| -> Option<u64> {
            tokens.iter().find_map(|t| {
                t.strip_prefix(&format!("{name}=")[..])
                    .map(|v| v.parse().unwrap())
            })
        };
        let mut out = Vec::new();
        match tokens[0] {
            "cluster" => {
                if let Some(gc) = opt("gc") {
                    self.config.log_gc_threshold = gc;
                    self.config.check_ticks = 5;
                }
                if let Some(split) = opt("split") {
                    self.config.split_size = split;
                    self.config.check_ticks = 5;
                }
                self.cluster(num(1));
                self.stabilize();
            }
            "node" => {
                let node = num(1);
                let host = self.open_host(node);
                self.hosts.insert(node, host);
            }
            "tick" => {
                let n = if tokens.len() > 1 { num(1) as usize } else { 1 };
                self.tick(n);
            }
            "stabilize" => self.stabilize(),
            "status" => out.extend(self.status()),
            "txn" => {
                let node = num(1);
                let start_ts = self.next_ts;
                let commit_ts = start_ts + 1;
                self.next_ts += 10;
                let mutations: Vec<Mutation> =
                    tokens[2..].iter().map(|t| parse_mutation(t)).collect();
                let keys: Vec<Vec<u8>> = mutations.iter().map(|m| m.key.clone()).collect();
                let primary = keys[0].clone();
                self.propose(
                    node,
                    prewrite(mutations, start_ts),
                    &primary,
                    "prewrite".into(),
                );
                let prewrite = self.wait_output();
                if prewrite != ["prewrite: ok"] {
                    out.extend(prewrite);
                    return out;
                }
                self.propose(
                    node,
                    Command::Commit {
                        keys,
                        start_ts,
                        commit_ts,
                    },
                    &primary,
                    "commit".into(),
                );
                let commit = self.wait_output();
                if commit == ["commit: ok"] {
                    out.push(format!("committed at {commit_ts}"));
                } else {
                    out.extend(commit);
                }
                return out;
            }
            "prewrite" => {
                let node = num(1);
                let start_ts = opt("start").expect("start=");
                let mutations: Vec<Mutation> =
                    tokens[3..].iter().map(|t| parse_mutation(t)).collect();
                let primary = mutations[0].key.clone();
                self.propose(
                    node,
                    prewrite(mutations, start_ts),
                    &primary,
                    format!("prewrite {start_ts}"),
                );
            }
            "commit" => {
                let node = num(1);
                let start_ts = opt("start").expect("start=");
                let commit_ts = opt("commit").expect("commit=");
                let keys: Vec<Vec<u8>> =
                    tokens[4..].iter().map(|t| t.as_bytes().to_vec()).collect();
                let first = keys[0].clone();
                self.propose(
                    node,
                    Command::Commit {
                        keys,
                        start_ts,
                        commit_ts,
                    },
                    &first,
                    format!("commit {start_ts}"),
                );
            }
            "onepc" => {
                let node = num(1);
                let start_ts = opt("start").expect("start=");
                let max_commit_ts = opt("max").expect("max=");
                let mutations: Vec<Mutation> =
                    tokens[4..].iter().map(|t| parse_mutation(t)).collect();
                let partition = self.partition_for(node, &mutations[0].key);
                let outputs = self.outputs.clone();
                self.host(node).propose_one_pc(
                    partition.id,
                    partition.epoch,
                    mutations,
                    start_ts,
                    max_commit_ts,
                    Box::new(move |result| {
                        let line = match result {
                            Ok(Some(commit_ts)) => {
                                format!("onepc {start_ts}: committed at {commit_ts}")
                            }
                            Ok(None) => format!("onepc {start_ts}: declined"),
                            Err(err) => format!("onepc {start_ts}: {}", show_err(&err)),
                        };
                        outputs.lock().unwrap().push(line);
                    }),
                );
            }
            "sync_ts" => {
                let node = num(1);
                let host = self.host(node);
                host.mark_read_ts(1);
                host.sync_read_ts(1, num(2));
            }
            "read" => {
                let node = num(1);
                let key = tokens[2].as_bytes().to_vec();
                let read_ts = opt("ts").expect("ts=");
                let partition = self.partition_for(node, &key);
                let outputs = self.outputs.clone();
                let mut end = key.clone();
                end.push(0);
                let label = format!("read {}@{read_ts}", tokens[2]);
                let read_key = key.clone();
                self.host(node).read(
                    partition.id,
                    partition.epoch,
                    &key,
                    &end,
                    read_ts,
                    Box::new(move |result| {
                        let line = match result {
                            Ok(view) => match view.mvcc.get(&read_key, read_ts) {
                                Ok(Some(v)) => format!("{label}: {}", show(&v)),
                                Ok(None) => format!("{label}: (none)"),
                                Err(err) => format!("{label}: error {err}"),
                            },
                            Err(err) => format!("{label}: {}", show_err(&err)),
                        };
                        outputs.lock().unwrap().push(line);
                    }),
                );
                self.stabilize();
            }
            "get" => {
                let node = num(1);
                let key = tokens[2].as_bytes().to_vec();
                let partition = self.partition_for(node, &key);
                let outputs = self.outputs.clone();
                let mut end = key.clone();
                end.push(0);
                let label = format!("get {}", tokens[2]);
                let read_key = key.clone();
                self.host(node).read(
                    partition.id,
                    partition.epoch,
                    &key,
                    &end,
                    0,
                    Box::new(move |result| {
                        let line = match result {
                            Ok(view) => match view.mvcc.get(&read_key, u64::MAX >> 1) {
                                Ok(Some(v)) => format!("{label}: {}", show(&v)),
                                Ok(None) => format!("{label}: (none)"),
                                Err(err) => format!("{label}: error {err}"),
                            },
                            Err(err) => format!("{label}: {}", show_err(&err)),
                        };
                        outputs.lock().unwrap().push(line);
                    }),
                );
                self.stabilize();
            }
            "scan" => {
                let node = num(1);
                let start = tokens[2].as_bytes().to_vec();
                let partition = self.partition_for(node, &start);
                let outputs = self.outputs.clone();
                let label = format!("scan p{} from {}", short_id(partition.id), tokens[2]);
                let from = start.clone();
                self.host(node).read(
                    partition.id,
                    partition.epoch,
                    &start,
                    &[],
                    0,
                    Box::new(move |result| {
                        let line = match result {
                            Ok(view) => {
                                let end = view.clip_end(&[]).to_vec();
                                match view.mvcc.scan(&from, &end, u64::MAX >> 1, 1000) {
                                    Ok(pairs) => format!(
                                        "{label}: {}",
                                        pairs
                                            .iter()
                                            .map(|(k, v)| format!("{}={}", show(k), show(v)))
                                            .collect::<Vec<_>>()
                                            .join(" ")
                                    ),
                                    Err(err) => format!("{label}: error {err}"),
                                }
                            }
                            Err(err) => format!("{label}: {}", show_err(&err)),
                        };
                        outputs.lock().unwrap().push(line);
                    }),
                );
                self.stabilize();
            }
            "cut" => {
                let bar = tokens.iter().position(|t| *t == "|").expect("cut A | B");
                let left: Vec<u64> = tokens[1..bar].iter().map(|t| t.parse().unwrap()).collect();
                let right: Vec<u64> = tokens[bar + 1..]
                    .iter()
                    .map(|t| t.parse().unwrap())
                    .collect();
                let mut net = self.net.lock().unwrap();
                for &a in &left {
                    for &b in &right {
                        net.cut.insert((a, b));
                        net.cut.insert((b, a));
                    }
                }
            }
            "drop" => self.net.lock().unwrap().drop_ratio = tokens[1].parse().unwrap(),
            "delay" => self.net.lock().unwrap().delay_ratio = tokens[1].parse().unwrap(),
            "heal" => {
                let mut net = self.net.lock().unwrap();
                net.cut.clear();
                net.drop_ratio = 0.0;
                net.delay_ratio = 0.0;
            }
            "crash" => {
                let node = num(1);
                self.hosts.remove(&node).expect("running");
                self.crashed.insert(node);
            }
            "restart" => {
                let node = num(1);
                assert!(self.crashed.remove(&node), "node {node} is not down");
                let host = self.open_host(node);
                self.hosts.insert(node, host);
            }
            "split" => {
                let (node, id) = (num(1), num(2));
                let epoch = self.epoch_of(node, id);
                let cb = self.callback(format!("split p{}", short_id(id)));
                self.host(node)
                    .split(id, epoch, tokens[3].as_bytes().to_vec(), cb);
            }
            "add_learner" | "promote" | "remove" => {
                let (node, id, arg) = (num(1), num(2), num(3));
                let change = match tokens[0] {
                    "add_learner" => ReplicaChange::AddLearner { node_id: arg },
                    "promote" => ReplicaChange::Promote {
                        replica_id: full_id(self, node, id, arg),
                    },
                    _ => ReplicaChange::Remove {
                        replica_id: full_id(self, node, id, arg),
                    },
                };
                let epoch = self.epoch_of(node, id);
                let cb = self.callback(format!("{} p{}", tokens[0], short_id(id)));
                self.host(node).change_replica(id, epoch, change, cb);
            }
            "transfer" => {
                let (node, id, to) = (num(1), num(2), num(3));
                let to = full_id(self, node, id, to);
                if let Err(err) = self.host(node).transfer_leader(id, to) {
                    out.push(show_err(&err));
                }
            }
            "check" => out.extend(self.check()),
            "data" => out.extend(self.data(num(1))),
            other => panic!("unknown command {other}"),
        }
        out.extend(self.take_outputs());
        out
    }
}

/// Replica ids allocated by nodes carry the node id in their high bits; traces name them by
/// their low bits plus the node (`short_id`), and commands accept the node's replica by node id.
fn short_id(id: u64) -> String {
    if id >> 40 == 0 {
        id.to_string()
    } else {
        format!("{}.{}", id >> 40, id & ((1 << 40) - 1))
    }
}

/// Resolves the replica of partition `id` on node `target_node`.
fn full_id(sim: &mut Sim, node: u64, id: u64, target_node: u64) -> u64 {
    sim.host(node)
        .partitions()
        .into_iter()
        .find(|p| p.id == id)
        .and_then(|p| p.replica_on(target_node).map(|r| r.id))
        .unwrap_or_else(|| panic!("partition {id} has no replica on node {target_node}"))
}

/// Parses an id written as `N` or, for ids a node allocated, `NODE.N`.
fn parse_id(text: &str) -> u64 {
    let bad = || panic!("{text:?} is not an id");
    match text.split_once('.') {
        Some((node, n)) => {
            (node.parse::<u64>().unwrap_or_else(|_| bad()) << 40)
                | n.parse::<u64>().unwrap_or_else(|_| bad())
        }
        None => text.parse().unwrap_or_else(|_| bad()),
    }
}

fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A prewrite whose primary is its first key.
fn prewrite(mutations: Vec<Mutation>, start_ts: u64) -> Command {
    Command::Prewrite {
        primary: mutations[0].key.clone(),
        mutations,
        start_ts,
        lock_ttl_ms: 3000,
        min_commit_ts: 0,
    }
}

fn parse_mutation(token: &str) -> Mutation {
    if let Some(key) = token.strip_prefix("del:") {
        return Mutation::new(MutationOp::Delete, key.as_bytes().to_vec());
    }
    let (k, v) = token
        .split_once('=')
        .unwrap_or_else(|| panic!("bad mutation {token}"));
    Mutation::new(
        MutationOp::Put(v.as_bytes().to_vec()),
        k.as_bytes().to_vec(),
    )
}

fn run_file(path: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut sim = Sim::new();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("  ") {
            continue;
        }
        let command = line.split(" -> ").next().unwrap();
        if command.trim().is_empty() || command.starts_with('#') {
            out.push_str(command);
            out.push('\n');
            continue;
        }
        let lines = sim.run(command.trim());
        match lines.as_slice() {
            [] => out.push_str(&format!("{command}\n")),
            [one] => out.push_str(&format!("{command} -> {one}\n")),
            many => {
                out.push_str(command);
                out.push('\n');
                for l in many {
                    out.push_str(&format!("  {l}\n"));
                }
            }
        }
    }
    (text, out)
}

#[test]
fn traces() {
    let _ = RaftMessage::default();
    let dir =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("tests/traces");
    let update = std::env::var_os("REEF_TRACE_UPDATE").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failed = Vec::new();
    for file in files {
        let (expected, actual) = run_file(&file);
        if update {
            std::fs::write(&file, &actual).unwrap();
        } else if expected != actual {
            let diff: Vec<String> = expected
                .lines()
                .zip(actual.lines())
                .filter(|(e, a)| e != a)
                .take(5)
                .map(|(e, a)| format!("  expected: {e}\n  actual:   {a}"))
                .collect();
            failed.push(format!("{}:\n{}", file.display(), diff.join("\n")));
        }
    }
    assert!(
        failed.is_empty(),
        "trace mismatches (REEF_TRACE_UPDATE=1 rewrites):\n{}",
        failed.join("\n")
    );
}
