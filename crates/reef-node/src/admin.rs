//! Operators' commands, `reef cluster ...`: they ask any node for the cluster's state (the
//! root leader answers), render it as a table or as JSON, and carry out changes (splits,
//! leader transfers, replica moves, decommissioning, draining) through the root service and
//! the partitions' leaders. A change that waits (decommission, drain) shows its progress and,
//! when it stops moving, says which partitions are stuck and why.
//!
//! Every failure is an [`AdminError`]: one line saying what went wrong and what to do, and an
//! exit code scripts can tell apart ([`EXIT_UNREACHABLE`], [`EXIT_REFUSED`], [`EXIT_STUCK`]).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reef_client::{Client, ClientError, RootClient};
use reef_rpc::pb;
use reef_sql::catalog::{self, Object, TableDesc};
use serde_json::{json, Value as Json};

/// Exit code: the cluster could not be reached.
pub const EXIT_UNREACHABLE: i32 = 3;
/// Exit code: the request was refused (unknown partition or node, a change that would lose
/// replicas, ...).
pub const EXIT_REFUSED: i32 = 4;
/// Exit code: a change that was waited for stopped making progress.
pub const EXIT_STUCK: i32 = 5;

/// How long a replica move may stay at one step (adding, catching up, removing) before the
/// command reports it stuck.
const MOVE_STALL: Duration = Duration::from_secs(120);

/// A failed command: one line for the operator, and an exit code.
#[derive(Debug)]
pub struct AdminError {
    /// The process exit code.
    pub code: i32,
    /// What went wrong and what to do, in one line.
    pub message: String,
}

impl AdminError {
    fn refused(message: impl Into<String>) -> AdminError {
        AdminError {
            code: EXIT_REFUSED,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdminError {}

type Result<T> = std::result::Result<T, AdminError>;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// One JSON document.
    Json,
}

/// An operator's command.
#[derive(Clone, Debug)]
pub enum Command {
    /// Nodes and health.
    Status,
    /// Partitions, optionally only those holding a table's rows.
    Partitions {
        /// A table name.
        table: Option<String>,
    },
    /// Splits a partition at a raw key (hex) or, without one, in the middle.
    Split {
        /// The partition.
        partition: u64,
        /// The key to split at, as hex.
        at: Option<String>,
    },
    /// Moves a partition's leadership.
    TransferLeader {
        /// The partition.
        partition: u64,
        /// The node to lead it.
        to: u64,
    },
    /// Moves a partition's replica from one node to another.
    MoveReplica {
        /// The partition.
        partition: u64,
        /// The node that gives up its replica.
        from: u64,
        /// The node that gets one.
        to: u64,
    },
    /// Moves every replica off a node.
    Decommission {
        /// The node.
        node: u64,
        /// Return once asked instead of waiting until the node is empty.
        no_wait: bool,
        /// Give up after this long without progress.
        stall: Duration,
    },
    /// Makes a decommissioning or draining node a full member again.
    Recommission {
        /// The node.
        node: u64,
    },
    /// Names the nodes that should lead every partition they hold a voter of (none: spread
    /// leadership evenly again).
    PreferLeaders {
        /// The nodes; empty clears the preference.
        nodes: Vec<u64>,
        /// Return once asked instead of waiting until the preferred nodes lead.
        no_wait: bool,
        /// Give up after this long without progress.
        stall: Duration,
    },
    /// Moves every leadership off a node.
    Drain {
        /// The node.
        node: u64,
        /// Return once asked instead of waiting.
        no_wait: bool,
        /// Give up after this long without progress.
        stall: Duration,
    },
}

/// A connection to a cluster for operators' commands.
pub struct Admin {
    roots: Arc<RootClient>,
    client: Client,
    hosts: Vec<String>,
}

impl Admin {
    /// Connects through any of `hosts` (gRPC addresses of nodes); `cluster_id` 0 means
    /// whichever cluster answers.
    pub fn new(hosts: Vec<String>, cluster_id: u64) -> Admin {
        let roots = Arc::new(RootClient::new(
            cluster_id,
            hosts.clone(),
            Duration::from_secs(5),
        ));
        let client = Client::with_root(roots.clone(), Duration::from_secs(20));
        Admin {
            roots,
            client,
            hosts,
        }
    }

    fn unreachable(&self, err: impl std::fmt::Display) -> AdminError {
        let err = err.to_string();
        let reason = if err.contains("Connection refused") {
            "connection refused".to_string()
        } else if err.contains("deadline") || err.contains("timed out") {
            "no answer in time".to_string()
        } else {
            err.chars().take(160).collect()
        };
        AdminError {
            code: EXIT_UNREACHABLE,
            message: format!(
                "cannot reach the cluster at {} ({reason}); is a node running there? Pass \
                 --host with the gRPC address of any node",
                self.hosts.join(",")
            ),
        }
    }

    /// The cluster as the root leader sees it.
    async fn cluster(&self) -> Result<pb::ClusterResponse> {
        self.roots
            .cluster()
            .await
            .map_err(|err| self.unreachable(err))
    }

    /// The tables of the catalog the cluster stores, by id.
    async fn tables(&self) -> Result<BTreeMap<u32, TableDesc>> {
        let (start, end) = catalog::object_key_range();
        let ts = self
            .roots
            .tso(1)
            .await
            .map_err(|err| self.unreachable(err))?;
        let objects = self
            .client
            .scan(&start, &end, ts, 100_000)
            .await
            .map_err(|err| self.client_error(err))?;
        Ok(objects
            .iter()
            .filter_map(|(_, raw)| match catalog::decode_object(raw) {
                Ok(Object::Table(t)) => Some((t.id, t)),
                _ => None,
            })
            .collect())
    }

    fn client_error(&self, err: ClientError) -> AdminError {
        match err {
            ClientError::Admin(message) | ClientError::Refused(message) => {
                AdminError::refused(message)
            }
            other => self.unreachable(other),
        }
    }

    /// Runs `command` and returns what to print.
    pub async fn run(&self, command: Command, format: Format) -> Result<String> {
        match command {
            Command::Status => {
                let status = self.cluster().await?;
                Ok(render_status(&status, format))
            }
            Command::Partitions { table } => {
                let status = self.cluster().await?;
                let tables = self.tables().await?;
                let filter = match &table {
                    Some(name) => Some(
                        tables
                            .values()
                            .find(|t| &t.name == name)
                            .map(|t| catalog::table_range(t.id))
                            .ok_or_else(|| {
                                AdminError::refused(format!(
                                    "no table \"{name}\"; `reef cluster partitions` lists every \
                                     partition"
                                ))
                            })?,
                    ),
                    None => None,
                };
                Ok(render_partitions(&status, &tables, filter, format))
            }
            Command::Split { partition, at } => {
                let at = match at {
                    Some(hex) => Some(parse_hex(&hex)?),
                    None => None,
                };
                let before = self.cluster().await?;
                let part = find_partition(&before, partition)?;
                self.client
                    .split_at(&part.start, at.as_deref())
                    .await
                    .map_err(|err| self.client_error(err))?;
                let after = self
                    .wait_for(|s| s.partitions.len() > before.partitions.len())
                    .await?;
                let tables = self.tables().await.unwrap_or_default();
                // The partitions that now cover what the split one did.
                let halves: Vec<&pb::PartitionStatus> = after
                    .partitions
                    .iter()
                    .filter(|p| {
                        p.partition
                            .as_ref()
                            .is_some_and(|q| part.contains(&q.start))
                    })
                    .collect();
                Ok(match format {
                    Format::Json => json!({
                        "split": partition,
                        "partitions": halves.iter().map(|p| partition_json(p, &tables)).collect::<Vec<_>>(),
                    })
                    .to_string(),
                    Format::Table => {
                        let mut out = format!("partition {partition} split:\n");
                        out.push_str(&partition_table(halves.into_iter(), &tables));
                        out
                    }
                })
            }
            Command::TransferLeader { partition, to } => {
                let status = self.cluster().await?;
                let part = find_partition(&status, partition)?;
                find_node(&status, to)?;
                self.client
                    .transfer_leader(&part.start, to)
                    .await
                    .map_err(|err| self.client_error(err))?;
                Ok(done(
                    format,
                    json!({"partition": partition, "leader": to}),
                    || format!("node {to} now leads partition {partition}"),
                ))
            }
            Command::MoveReplica {
                partition,
                from,
                to,
            } => self.move_replica(partition, from, to, format).await,
            Command::Decommission {
                node,
                no_wait,
                stall,
            } => self.decommission(node, no_wait, stall, format).await,
            Command::Recommission { node } => {
                let status = self.cluster().await?;
                find_node(&status, node)?;
                self.roots
                    .set_node_state(node, "active")
                    .await
                    .map_err(|err| self.client_error(err))?;
                Ok(done(
                    format,
                    json!({"node": node, "state": "active"}),
                    || format!("node {node} is active again: it gets replicas and leaders"),
                ))
            }
            Command::Drain {
                node,
                no_wait,
                stall,
            } => self.drain(node, no_wait, stall, format).await,
            Command::PreferLeaders {
                nodes,
                no_wait,
                stall,
            } => self.prefer_leaders(nodes, no_wait, stall, format).await,
        }
    }

    /// Polls the cluster status until `ready` holds (up to 30 s).
    async fn wait_for(
        &self,
        ready: impl Fn(&pb::ClusterResponse) -> bool,
    ) -> Result<pb::ClusterResponse> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.cluster().await?;
            if ready(&status) || Instant::now() > until {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn move_replica(
        &self,
        partition: u64,
        from: u64,
        to: u64,
        format: Format,
    ) -> Result<String> {
        let status = self.cluster().await?;
        let part = find_partition(&status, partition)?;
        find_node(&status, from)?;
        find_node(&status, to)?;
        if from == to {
            return Err(AdminError::refused(format!(
                "--from and --to both name node {from}"
            )));
        }
        // A replica on the target while the source still holds one is a move under way (this
        // command interrupted, or stuck before): asking again carries it on.
        let on = |node: u64| part.replicas.iter().find(|r| r.node_id == node);
        // A voter on the target is a move under way only while the partition holds more
        // replicas than it should.
        let target = if partition == reef_root::ROOT_PARTITION_ID {
            reef_root::schedule::ROOT_REPLICAS
        } else {
            status.replicas.max(1)
        };
        match (on(from), on(to)) {
            (None, Some(_)) => {
                return Err(AdminError::refused(format!(
                    "node {from} holds no replica of partition {partition} and node {to} holds \
                     one: nothing to move"
                )))
            }
            (None, None) => {
                return Err(AdminError::refused(format!(
                    "node {from} holds no replica of partition {partition}"
                )))
            }
            (Some(_), Some(r)) if !r.learner && part.replicas.len() as u64 <= target => {
                return Err(AdminError::refused(format!(
                    "node {to} already holds a replica of partition {partition}"
                )))
            }
            (Some(_), _) => {}
        }
        // The root service carries the move out (a learner on the target, promoted once it
        // caught up, then the source's replica goes, its leadership first). Asking again on
        // every poll is harmless and survives a change of root leader.
        let (mut progress, mut moved_at) = (None, Instant::now());
        loop {
            self.roots
                .move_replica(partition, from, to)
                .await
                .map_err(|err| self.client_error(err))?;
            let status = self.cluster().await?;
            let part = find_partition(&status, partition)?;
            let target = part.replicas.iter().find(|r| r.node_id == to);
            let source_left = part.replicas.iter().all(|r| r.node_id != from);
            if source_left && target.is_some_and(|r| !r.learner) {
                break;
            }
            let step = (target.map(|r| !r.learner), source_left);
            if progress != Some(step) {
                (progress, moved_at) = (Some(step), Instant::now());
            }
            if moved_at.elapsed() >= MOVE_STALL {
                let why = match target {
                    None => "no replica was added on the target yet (is it up and active?)",
                    Some(r) if r.learner => "the new replica is still catching up",
                    Some(_) => "the source's replica has not been removed yet",
                };
                return Err(AdminError {
                    code: EXIT_STUCK,
                    message: format!(
                        "moving partition {partition} from node {from} to node {to} made no \
                         progress for {}s: {why}; the root service keeps trying (`reef cluster \
                         partitions` shows where it is)",
                        MOVE_STALL.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(done(
            format,
            json!({"partition": partition, "from": from, "to": to}),
            || format!("partition {partition} moved from node {from} to node {to}"),
        ))
    }

    async fn decommission(
        &self,
        node: u64,
        no_wait: bool,
        stall: Duration,
        format: Format,
    ) -> Result<String> {
        let status = self.cluster().await?;
        find_node(&status, node)?;
        // Refuse what cannot finish: every partition needs `replicas` voters on other nodes
        // that take replicas (up and active), and the root group its voters on root-role ones.
        let others = placeable(&status, false)
            .into_iter()
            .filter(|id| *id != node)
            .count() as u64;
        let needed = status.replicas.max(1);
        if others < needed {
            return Err(AdminError::refused(format!(
                "refused: without node {node} the cluster has {others} up, active node(s) for \
                 {needed} replicas of each partition, so its replicas have nowhere to go; add a \
                 node (or recommission or restart one) first"
            )));
        }
        let holds_root = status.partitions.iter().any(|p| {
            p.partition.as_ref().is_some_and(|q| {
                q.id == reef_root::ROOT_PARTITION_ID && q.replicas.iter().any(|r| r.node_id == node)
            })
        });
        let root_others = placeable(&status, true)
            .into_iter()
            .filter(|id| *id != node)
            .count() as u64;
        if holds_root && root_others < reef_root::schedule::ROOT_REPLICAS {
            return Err(AdminError::refused(format!(
                "refused: node {node} holds a replica of the root group, which needs {} other \
                 up, active nodes with the root role to move to; the cluster has {root_others}; \
                 add a node with the root role first",
                reef_root::schedule::ROOT_REPLICAS
            )));
        }
        self.roots
            .set_node_state(node, "decommissioning")
            .await
            .map_err(|err| self.client_error(err))?;
        if no_wait {
            return Ok(done(
                format,
                json!({"node": node, "state": "decommissioning", "replicas": held(&status, node)}),
                || {
                    format!("node {node} is decommissioning; `reef cluster status` shows its replicas going")
                },
            ));
        }
        self.watch(
            &format!("node {node}"),
            "replicas",
            stall,
            |s| held(s, node),
            |s| stuck_reasons(s, node, "replicas"),
            format,
        )
        .await?;
        Ok(done(
            format,
            json!({"node": node, "state": "decommissioning", "replicas": 0}),
            || format!("node {node} holds no replicas any more: it can be stopped"),
        ))
    }

    async fn drain(
        &self,
        node: u64,
        no_wait: bool,
        stall: Duration,
        format: Format,
    ) -> Result<String> {
        let status = self.cluster().await?;
        find_node(&status, node)?;
        self.roots
            .set_node_state(node, "draining")
            .await
            .map_err(|err| self.client_error(err))?;
        let leading = |s: &pb::ClusterResponse| {
            s.partitions
                .iter()
                .filter(|p| p.leader_node_id == node)
                .count()
        };
        if !no_wait {
            self.watch(
                &format!("node {node}"),
                "leaders",
                stall,
                leading,
                |s| stuck_reasons(s, node, "leaders"),
                format,
            )
            .await?;
        }
        Ok(done(
            format,
            json!({"node": node, "state": "draining", "leaders": if no_wait { leading(&status) } else { 0 }}),
            || {
                format!(
                    "node {node} is draining{}; `reef cluster recommission {node}` makes it a \
                     full member again",
                    if no_wait {
                        ""
                    } else {
                        " and leads no partition"
                    }
                )
            },
        ))
    }

    async fn prefer_leaders(
        &self,
        mut nodes: Vec<u64>,
        no_wait: bool,
        stall: Duration,
        format: Format,
    ) -> Result<String> {
        nodes.sort_unstable();
        nodes.dedup();
        let status = self.cluster().await?;
        for &node in &nodes {
            find_node(&status, node)?;
        }
        self.roots
            .set_preferred_leaders(&nodes)
            .await
            .map_err(|err| self.client_error(err))?;
        let list = nodes
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if nodes.is_empty() {
            return Ok(done(format, json!({"preferred_leaders": nodes}), || {
                "no leader preference: leadership spreads evenly over the nodes".to_string()
            }));
        }
        if !no_wait {
            self.watch(
                &format!("node(s) {list}"),
                "leaders",
                stall,
                |s| led_elsewhere(s, &nodes).len(),
                |s| {
                    led_elsewhere(s, &nodes)
                        .iter()
                        .map(|p| {
                            format!(
                                "partition {}: still led by node {}; waiting for the root \
                                 service to move its leadership",
                                p.partition.as_ref().map_or(0, |q| q.id),
                                p.leader_node_id
                            )
                        })
                        .collect()
                },
                format,
            )
            .await?;
        }
        Ok(done(format, json!({"preferred_leaders": nodes}), || {
            if no_wait {
                format!(
                    "node(s) {list} preferred for leadership; `reef cluster status` shows the \
                     leaders moving"
                )
            } else {
                format!(
                    "node(s) {list} preferred for leadership and leading every partition they \
                     hold an up replica of"
                )
            }
        }))
    }

    /// Waits until `left` reaches zero, showing progress on stderr (a bar on a terminal), and
    /// fails with the stuck partitions when it stops going down for `stall`.
    async fn watch(
        &self,
        subject: &str,
        what: &str,
        stall: Duration,
        left: impl Fn(&pb::ClusterResponse) -> usize,
        reasons: impl Fn(&pb::ClusterResponse) -> Vec<String>,
        format: Format,
    ) -> Result<()> {
        let first = left(&self.cluster().await?);
        let tty = std::io::stderr().is_terminal() && format == Format::Table;
        let (mut best, mut moved_at) = (first, Instant::now());
        loop {
            let status = self.cluster().await?;
            let now = left(&status);
            if tty {
                let done = first.saturating_sub(now);
                let width = 30;
                let filled = if first == 0 {
                    width
                } else {
                    done * width / first
                };
                eprint!(
                    "\r[{}{}] {subject}: {done}/{first} {what} moved",
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
            }
            if now == 0 {
                if tty {
                    eprintln!();
                }
                return Ok(());
            }
            if now < best {
                best = now;
                moved_at = Instant::now();
            }
            if moved_at.elapsed() >= stall {
                if tty {
                    eprintln!();
                }
                let reasons = reasons(&status);
                return Err(AdminError {
                    code: EXIT_STUCK,
                    message: format!(
                        "{subject} still has {now} {what} after {}s without progress: {}",
                        stall.as_secs(),
                        reasons.join("; ")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The partitions led off the `preferred` nodes although one of them holds a voter of it and
/// is up and active (so placement should move the leadership there).
fn led_elsewhere<'a>(
    status: &'a pb::ClusterResponse,
    preferred: &[u64],
) -> Vec<&'a pb::PartitionStatus> {
    let healthy = placeable(status, false);
    status
        .partitions
        .iter()
        .filter(|p| !preferred.contains(&p.leader_node_id))
        .filter(|p| {
            p.partition.as_ref().is_some_and(|q| {
                q.replicas.iter().any(|r| {
                    !r.learner && preferred.contains(&r.node_id) && healthy.contains(&r.node_id)
                })
            })
        })
        .collect()
}

/// How many replicas node `node` holds.
fn held(status: &pb::ClusterResponse, node: u64) -> usize {
    status
        .partitions
        .iter()
        .filter(|p| {
            p.partition
                .as_ref()
                .is_some_and(|q| q.replicas.iter().any(|r| r.node_id == node))
        })
        .count()
}

/// Why the partitions still on `node` have not moved, one reason per partition.
/// The nodes placement may give replicas to: up and active (with `root_only`, also holding
/// the root role).
fn placeable(status: &pb::ClusterResponse, root_only: bool) -> Vec<u64> {
    status
        .nodes
        .iter()
        .filter(|n| n.liveness == "up")
        .filter_map(|n| n.node.as_ref())
        .filter(|n| n.state == "active" || n.state.is_empty())
        .filter(|n| n.root || !root_only)
        .map(|n| n.id)
        .collect()
}

/// Why each partition that keeps `node` from finishing (`what`: "replicas" it holds, or
/// "leaders" it leads) has not moved.
fn stuck_reasons(status: &pb::ClusterResponse, node: u64, what: &str) -> Vec<String> {
    status
        .partitions
        .iter()
        .filter_map(|p| {
            let part = p.partition.as_ref()?;
            if what == "leaders" {
                if p.leader_node_id != node {
                    return None;
                }
            } else {
                part.replicas.iter().find(|r| r.node_id == node)?;
            }
            let is_root = part.id == reef_root::ROOT_PARTITION_ID;
            let healthy = placeable(status, is_root);
            let why = if p.leader_node_id == 0 {
                "no leader is known (is a majority of its replicas down?)".to_string()
            } else if let Some(l) = part.replicas.iter().find(|r| r.learner) {
                format!("a new replica on node {} is still catching up", l.node_id)
            } else if what == "leaders" {
                if part
                    .replicas
                    .iter()
                    .any(|r| r.node_id != node && !r.learner && healthy.contains(&r.node_id))
                {
                    "waiting for the root service to move its leadership".to_string()
                } else {
                    "no other replica is on an up, active node to take the leadership".to_string()
                }
            } else if !healthy
                .iter()
                .any(|id| part.replicas.iter().all(|r| r.node_id != *id))
            {
                if is_root {
                    "no up, active root-role node without a replica of it to move to".to_string()
                } else {
                    "no up, active node without a replica of it to move to".to_string()
                }
            } else if p.leader_node_id == node {
                "its leadership has not moved off the node yet".to_string()
            } else {
                "waiting for the root service to move it".to_string()
            };
            Some(format!("partition {}: {why}", part.id))
        })
        .collect()
}

/// A one-line answer, or its JSON form.
fn done(format: Format, json: Json, text: impl FnOnce() -> String) -> String {
    match format {
        Format::Json => json.to_string(),
        Format::Table => text(),
    }
}

fn parse_hex(hex: &str) -> Result<Vec<u8>> {
    let hex = hex.trim_start_matches("0x");
    if hex.len() % 2 != 0 {
        return Err(AdminError::refused(format!("{hex:?} is not a hex key")));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16)
                .map_err(|_| AdminError::refused(format!("{hex:?} is not a hex key")))
        })
        .collect()
}

fn find_partition(status: &pb::ClusterResponse, id: u64) -> Result<pb::Partition> {
    status
        .partitions
        .iter()
        .filter_map(|p| p.partition.clone())
        .find(|p| p.id == id)
        .ok_or_else(|| {
            AdminError::refused(format!(
                "no partition {id}; `reef cluster partitions` lists them"
            ))
        })
}

fn find_node(status: &pb::ClusterResponse, id: u64) -> Result<()> {
    if status
        .nodes
        .iter()
        .any(|n| n.node.as_ref().is_some_and(|d| d.id == id))
    {
        Ok(())
    } else {
        Err(AdminError::refused(format!(
            "no node {id}; `reef cluster status` lists them"
        )))
    }
}

/// The partitions that have fewer live voters than they should, and those that cannot serve
/// (no live majority of voters).
fn health(status: &pb::ClusterResponse) -> (Vec<u64>, Vec<u64>) {
    let live: HashMap<u64, bool> = status
        .nodes
        .iter()
        .filter_map(|n| Some((n.node.as_ref()?.id, n.liveness != "dead")))
        .collect();
    let root_nodes = status
        .nodes
        .iter()
        .filter(|n| n.node.as_ref().is_some_and(|d| d.root))
        .count() as u64;
    let (mut under, mut unavailable) = (Vec::new(), Vec::new());
    for p in &status.partitions {
        let Some(part) = p.partition.as_ref() else {
            continue;
        };
        let target = if part.id == reef_root::ROOT_PARTITION_ID {
            root_nodes.clamp(1, reef_root::schedule::ROOT_REPLICAS)
        } else {
            status.replicas.max(1)
        };
        let voters: Vec<&pb::Replica> = part.replicas.iter().filter(|r| !r.learner).collect();
        let live_voters = voters
            .iter()
            .filter(|r| live.get(&r.node_id).copied().unwrap_or(false))
            .count() as u64;
        // A leader not reported yet (a root leader that just took over hears from every
        // partition's leader within a heartbeat) is not unavailability; a lost quorum is.
        if live_voters * 2 <= voters.len() as u64 {
            unavailable.push(part.id);
        } else if live_voters < target {
            under.push(part.id);
        }
    }
    (under, unavailable)
}

pub(crate) fn roles(desc: &pb::NodeDesc) -> Vec<&'static str> {
    let mut roles = vec!["storage"];
    if desc.root {
        roles.push("root");
    }
    if !desc.pg_addr.is_empty() {
        roles.push("sql");
    }
    roles
}

pub(crate) fn uptime_s(n: &pb::NodeStatus) -> Option<u64> {
    (n.started_ms != 0).then(|| reef_txn::now_ms().saturating_sub(n.started_ms) / 1000)
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn render_status(status: &pb::ClusterResponse, format: Format) -> String {
    let (under, unavailable) = health(status);
    let up = status.nodes.iter().filter(|n| n.liveness == "up").count();
    match format {
        Format::Json => json!({
            "cluster_id": status.cluster_id,
            "root_leader": status.root_leader,
            "replicas": status.replicas,
            "nodes": status.nodes.iter().map(|n| {
                let desc = n.node.clone().unwrap_or_default();
                json!({
                    "id": desc.id,
                    "address": desc.addr,
                    "sql_address": desc.pg_addr,
                    "roles": roles(&desc),
                    "state": if desc.state.is_empty() { "active".to_string() } else { desc.state.clone() },
                    "liveness": n.liveness,
                    "silent_ms": n.silent_ms,
                    "uptime_s": uptime_s(n),
                    "replicas": n.replicas,
                    "leaders": n.leaders,
                    "disk_bytes": n.disk_bytes,
                })
            }).collect::<Vec<_>>(),
            "partitions": status.partitions.len(),
            "preferred_leaders": status.preferred_leaders,
            "health": {
                "ok": under.is_empty() && unavailable.is_empty(),
                "under_replicated": under,
                "unavailable": unavailable,
            },
            "gc_safe_point": status.gc_safe_point,
        })
        .to_string(),
        Format::Table => {
            use std::fmt::Write as _;
            let mut out = String::new();
            let _ = writeln!(
                out,
                "cluster {} · root leader: node {} · {} nodes ({up} up) · {} partitions · {} replicas each",
                status.cluster_id,
                status.root_leader,
                status.nodes.len(),
                status.partitions.len(),
                status.replicas
            );
            let health = if under.is_empty() && unavailable.is_empty() {
                "ok: every partition has its replicas".to_string()
            } else {
                let list = |ids: &[u64]| {
                    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
                    ids.join(", ")
                };
                let mut parts = Vec::new();
                if !unavailable.is_empty() {
                    parts.push(format!("unavailable partitions: {}", list(&unavailable)));
                }
                if !under.is_empty() {
                    parts.push(format!("under-replicated partitions: {}", list(&under)));
                }
                let placeable = status
                    .nodes
                    .iter()
                    .filter(|n| {
                        n.liveness != "dead"
                            && n.node.as_ref().is_some_and(|d| d.state.is_empty() || d.state == "active")
                    })
                    .count() as u64;
                if placeable < status.replicas {
                    parts.push(format!(
                        "{placeable} active node(s) for {} replicas of each partition; add nodes",
                        status.replicas
                    ));
                }
                format!("DEGRADED: {}", parts.join("; "))
            };
            let _ = writeln!(out, "health: {health}");
            if !status.preferred_leaders.is_empty() {
                let ids: Vec<String> = status.preferred_leaders.iter().map(u64::to_string).collect();
                let _ = writeln!(out, "leaders preferred on: node(s) {}", ids.join(","));
            }
            out.push('\n');
            let _ = writeln!(
                out,
                "{:<5} {:<22} {:<22} {:<18} {:<16} {:<8} {:>8} {:>8} {:>8} {:>10}",
                "NODE", "ADDRESS", "SQL", "ROLES", "STATE", "LIVENESS", "UPTIME", "REPLICAS",
                "LEADERS", "DISK"
            );
            for n in &status.nodes {
                let desc = n.node.clone().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{:<5} {:<22} {:<22} {:<18} {:<16} {:<8} {:>8} {:>8} {:>8} {:>10}",
                    desc.id,
                    desc.addr,
                    if desc.pg_addr.is_empty() { "-" } else { &desc.pg_addr },
                    roles(&desc).join(","),
                    if desc.state.is_empty() { "active" } else { &desc.state },
                    n.liveness,
                    uptime_s(n).map_or("?".into(), human_duration),
                    n.replicas,
                    n.leaders,
                    human_bytes(n.disk_bytes)
                );
            }
            out
        }
    }
}

/// Renders a key as `table/index (values)` where the catalog knows it.
pub fn describe_key(key: &[u8], tables: &BTreeMap<u32, TableDesc>, is_end: bool) -> String {
    if key.is_empty() {
        return if is_end { "end".into() } else { "start".into() };
    }
    match key[0] {
        0x00 => return "system".into(),
        0x01 => return "metadata".into(),
        0x02 if key.len() >= 9 => {}
        _ => return format!("0x{}", hex(key)),
    }
    let table_id = u32::from_be_bytes(key[1..5].try_into().expect("4 bytes"));
    let index_id = u32::from_be_bytes(key[5..9].try_into().expect("4 bytes"));
    let Some(table) = tables.get(&table_id) else {
        return format!("table#{table_id}/index#{index_id} 0x{}", hex(&key[9..]));
    };
    let (index_name, columns): (String, Vec<u32>) = if index_id == 0 {
        ("primary".into(), table.primary_key.clone())
    } else {
        match table.indexes.iter().find(|i| i.id == index_id) {
            Some(i) => (
                i.name.clone(),
                i.columns
                    .iter()
                    .chain(&table.primary_key)
                    .copied()
                    .collect(),
            ),
            None => (format!("index#{index_id}"), Vec::new()),
        }
    };
    let mut rest = &key[9..];
    let mut values = Vec::new();
    for id in columns {
        if rest.is_empty() {
            break;
        }
        let Some(pos) = table.column_pos(id) else {
            break;
        };
        match reef_sql::codec::decode_key_value(&mut rest, &table.columns[pos].ty) {
            Ok(v) => values.push(reef_sql::types::text::format_text(&v)),
            Err(_) => break,
        }
    }
    if !rest.is_empty() {
        values.push(format!("0x{}", hex(rest)));
    }
    if values.is_empty() {
        format!("{}/{index_name}", table.name)
    } else {
        format!("{}/{index_name} ({})", table.name, values.join(", "))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn replicas_text(p: &pb::PartitionStatus) -> String {
    let Some(part) = p.partition.as_ref() else {
        return String::new();
    };
    part.replicas
        .iter()
        .map(|r| {
            let mark = if r.node_id == p.leader_node_id {
                "*"
            } else if r.learner {
                "~"
            } else {
                ""
            };
            format!("{}{mark}", r.node_id)
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn partition_json(p: &pb::PartitionStatus, tables: &BTreeMap<u32, TableDesc>) -> Json {
    let part = p.partition.clone().unwrap_or_default();
    let epoch = part.epoch.unwrap_or_default();
    json!({
        "id": part.id,
        "start": describe_key(&part.start, tables, false),
        "end": describe_key(&part.end, tables, true),
        "start_key": hex(&part.start),
        "end_key": hex(&part.end),
        "bytes": p.bytes,
        "leader": (p.leader_node_id != 0).then_some(p.leader_node_id),
        "replicas": part.replicas.iter().map(|r| json!({
            "node": r.node_id, "replica": r.id, "learner": r.learner,
        })).collect::<Vec<_>>(),
        "epoch": {"conf_ver": epoch.conf_ver, "version": epoch.version},
    })
}

fn partition_table<'a>(
    partitions: impl Iterator<Item = &'a pb::PartitionStatus>,
    tables: &BTreeMap<u32, TableDesc>,
) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<14} {:<36} {:<36} {:>10} {:<14} {:<7} {:<7}\n",
        "PARTITION", "FROM", "TO", "SIZE", "REPLICAS", "LEADER", "EPOCH"
    );
    for p in partitions {
        let Some(part) = p.partition.as_ref() else {
            continue;
        };
        let epoch = part.epoch.unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<14} {:<36} {:<36} {:>10} {:<14} {:<7} {:<7}",
            part.id,
            describe_key(&part.start, tables, false),
            describe_key(&part.end, tables, true),
            human_bytes(p.bytes),
            replicas_text(p),
            if p.leader_node_id == 0 {
                "?".to_string()
            } else {
                p.leader_node_id.to_string()
            },
            format!("{}/{}", epoch.conf_ver, epoch.version)
        );
    }
    out.push_str("(replicas: node ids, * the leader, ~ a learner; sizes count flushed data)\n");
    out
}

fn render_partitions(
    status: &pb::ClusterResponse,
    tables: &BTreeMap<u32, TableDesc>,
    filter: Option<(Vec<u8>, Vec<u8>)>,
    format: Format,
) -> String {
    let mut partitions: Vec<&pb::PartitionStatus> = status
        .partitions
        .iter()
        .filter(|p| {
            let Some(part) = p.partition.as_ref() else {
                return false;
            };
            match &filter {
                Some((start, end)) => part.overlaps(&pb::Partition {
                    start: start.clone().into(),
                    end: end.clone().into(),
                    ..Default::default()
                }),
                None => true,
            }
        })
        .collect();
    partitions.sort_by(|a, b| {
        let key = |p: &pb::PartitionStatus| p.partition.as_ref().map(|q| q.start.clone());
        key(a).cmp(&key(b))
    });
    match format {
        Format::Json => Json::Array(
            partitions
                .iter()
                .map(|p| partition_json(p, tables))
                .collect(),
        )
        .to_string(),
        Format::Table => partition_table(partitions.into_iter(), tables),
    }
}
