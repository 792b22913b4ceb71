//! Placement and repair decisions: a pure function of what the root leader knows, so the rules
//! are tested without a cluster.
//!
//! Each partition gets at most one operation per decision, given to its leader in the reply to
//! the leader node's heartbeat; the leader carries it out as a Raft membership change or a
//! leadership transfer. An operation names the epoch it was decided at, so a stale or repeated
//! one fails harmlessly on an epoch mismatch, and the next heartbeat decides again from the new
//! state. Membership grows one replica at a time (a learner first, promoted once it caught up)
//! and shrinks one at a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use reef_raft::{Epoch, Partition, Replica, ReplicaChange};

use crate::meta::{NodeDesc, NodeState, Settings, ROOT_PARTITION_ID};

/// The most replicas the root group gets.
pub const ROOT_REPLICAS: u64 = 3;
/// How many log entries behind the leader's commit index a learner may be and still be
/// promoted.
pub const PROMOTE_LAG: u64 = 100;
/// How long a learner may take to catch up before it is removed (and another placement
/// tried), so a learner that cannot catch up does not block the partition's repair forever.
pub const LEARNER_TIMEOUT: Duration = Duration::from_secs(300);

/// What the root leader thinks of a node's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It sent a heartbeat recently.
    Up,
    /// It has been silent a while: it gets no new replicas.
    Suspect,
    /// It has been silent too long: its replicas are re-created elsewhere.
    Dead,
}

impl Liveness {
    /// Returns the lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Up => "up",
            Liveness::Suspect => "suspect",
            Liveness::Dead => "dead",
        }
    }
}

/// An operation for a partition's leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A membership change.
    Change {
        /// The partition.
        partition_id: u64,
        /// The epoch it was decided at.
        epoch: Epoch,
        /// The change.
        change: ReplicaChange,
    },
    /// A leadership transfer.
    TransferLeader {
        /// The partition.
        partition_id: u64,
        /// The voter to hand leadership to.
        to_replica_id: u64,
    },
}

/// How far a replica got, as its node reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// True once the replica holds the partition's data (it received a snapshot).
    pub initialised: bool,
    /// Its applied index.
    pub applied: u64,
}

/// A replica move an operator asked for: the partition's replica on `from` goes to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    /// The node that gives its replica up.
    pub from: u64,
    /// The node that gets one.
    pub to: u64,
}

/// What a decision looks at.
pub struct View<'a> {
    /// The member nodes.
    pub nodes: &'a BTreeMap<u64, NodeDesc>,
    /// Their health.
    pub liveness: &'a HashMap<u64, Liveness>,
    /// The settings.
    pub settings: &'a Settings,
    /// How many replicas each node holds, by node id.
    pub replica_counts: &'a HashMap<u64, usize>,
    /// How many partitions each node leads, by node id.
    pub leader_counts: &'a HashMap<u64, usize>,
    /// The nodes heard from recently (within half the suspect time): balancing moves go only
    /// to them. A node that stopped answering a moment ago still counts as up, and handing
    /// it leadership would stall the partition until the transfer times out.
    pub fresh: &'a HashSet<u64>,
    /// Whether balancing moves are allowed now: only when no other membership change is under
    /// way anywhere, so decisions taken on the same stale counts cannot pile up.
    pub balance: bool,
    /// Replica moves operators asked for, by partition id.
    pub moves: &'a HashMap<u64, Move>,
}

/// How much more loaded (in replicas or leaders) a node must be than another before a
/// balancing move: a difference of one is as balanced as the counts allow.
pub const BALANCE_MARGIN: usize = 2;

/// Returns how many voters partition `id` should have.
pub fn target(id: u64, settings: &Settings) -> u64 {
    if id == ROOT_PARTITION_ID {
        ROOT_REPLICAS
    } else {
        settings.replicas.max(1)
    }
}

/// Decides the next operation for `partition`, whose leader (on node `leader_node`) reported
/// `leader_commit` as its commit index; `progress` gives what a replica's node last reported
/// for it, and `learner_age` how long a learner has been one.
pub fn next_operation(
    view: &View<'_>,
    partition: &Partition,
    leader_node: u64,
    leader_commit: u64,
    progress: impl Fn(&Replica) -> Option<Progress>,
    learner_age: impl Fn(&Replica) -> Duration,
) -> Option<Operation> {
    let is_root = partition.id == ROOT_PARTITION_ID;
    let eligible = |node: &NodeDesc| !is_root || node.root;
    let liveness = |node_id: u64| {
        view.liveness
            .get(&node_id)
            .copied()
            .unwrap_or(Liveness::Dead)
    };
    let change = |change| {
        Some(Operation::Change {
            partition_id: partition.id,
            epoch: partition.epoch,
            change,
        })
    };
    let target = target(partition.id, view.settings);
    let state = |node_id: u64| {
        view.nodes
            .get(&node_id)
            .map_or(NodeState::Active, |n| n.state)
    };
    // A decommissioning node's replicas all move elsewhere.
    let leaving = |node_id: u64| state(node_id) == NodeState::Decommissioning;
    // Nodes that may get a new replica, and voters that may lead.
    let placeable = |n: &NodeDesc| {
        eligible(n) && liveness(n.id) == Liveness::Up && n.state == NodeState::Active
    };
    let may_lead =
        |node_id: u64| liveness(node_id) == Liveness::Up && state(node_id) == NodeState::Active;
    let count =
        |counts: &HashMap<u64, usize>, node_id: u64| counts.get(&node_id).copied().unwrap_or(0);
    let preferred = |node_id: u64| view.settings.prefers_leader(node_id);
    // Leadership to the voter whose node may lead and leads the fewest partitions, on a
    // preferred node if one qualifies.
    let new_leader = || {
        partition
            .replicas
            .iter()
            .filter(|r| !r.learner && r.node_id != leader_node && may_lead(r.node_id))
            .min_by_key(|r| {
                (
                    !preferred(r.node_id),
                    count(view.leader_counts, r.node_id),
                    r.node_id,
                )
            })
            .map(|r| Operation::TransferLeader {
                partition_id: partition.id,
                to_replica_id: r.id,
            })
    };

    // A learner is promoted once it caught up, or removed if its node died or is leaving, or
    // it took too long.
    if let Some(learner) = partition.replicas.iter().find(|r| r.learner) {
        let caught_up = progress(learner).is_some_and(|p| {
            p.initialised && p.applied.saturating_add(PROMOTE_LAG) >= leader_commit
        });
        let remove = liveness(learner.node_id) == Liveness::Dead
            || leaving(learner.node_id)
            || (!caught_up && learner_age(learner) >= LEARNER_TIMEOUT);
        if remove {
            return change(ReplicaChange::Remove {
                replica_id: learner.id,
            });
        }
        return caught_up
            .then(|| {
                change(ReplicaChange::Promote {
                    replica_id: learner.id,
                })
            })
            .flatten();
    }

    let voters: Vec<_> = partition.replicas.iter().filter(|r| !r.learner).collect();
    // Only voters on eligible nodes count towards the target (root-role nodes for the root
    // group).
    let live_voters = voters
        .iter()
        .filter(|r| liveness(r.node_id) != Liveness::Dead && !leaving(r.node_id))
        .filter(|r| view.nodes.get(&r.node_id).is_some_and(eligible))
        .count() as u64;

    // Too few live replicas (a leaving node's do not count): add one on the least loaded
    // healthy active node that has none.
    if live_voters < target {
        let candidate = view
            .nodes
            .values()
            .filter(|n| placeable(n))
            .filter(|n| partition.replica_on(n.id).is_none())
            .min_by_key(|n| (view.replica_counts.get(&n.id).copied().unwrap_or(0), n.id));
        if let Some(node) = candidate {
            return change(ReplicaChange::AddLearner { node_id: node.id });
        }
    }

    // A dead or leaving node's replica goes once enough live ones replace it; until then it
    // stays, so a node that comes back still counts towards the quorum. A leader cannot
    // remove itself: leadership moves first.
    if live_voters >= target {
        if let Some(gone) = voters
            .iter()
            .find(|r| liveness(r.node_id) == Liveness::Dead || leaving(r.node_id))
        {
            if gone.node_id == leader_node {
                return new_leader();
            }
            return change(ReplicaChange::Remove {
                replica_id: gone.id,
            });
        }
    }

    // An operator's move: a learner on the target first (promoted by the rule above), then
    // the source's replica goes (its leadership first, to the target). Balancing waits.
    if let Some(wanted) = view.moves.get(&partition.id) {
        let source = partition.replica_on(wanted.from).filter(|r| !r.learner);
        match (source, partition.replica_on(wanted.to)) {
            (Some(_), None) => {
                if view.nodes.get(&wanted.to).is_some_and(placeable) {
                    return change(ReplicaChange::AddLearner { node_id: wanted.to });
                }
            }
            (Some(source), Some(target)) if !target.learner => {
                if source.node_id != leader_node {
                    return change(ReplicaChange::Remove {
                        replica_id: source.id,
                    });
                }
                if may_lead(target.node_id) {
                    return Some(Operation::TransferLeader {
                        partition_id: partition.id,
                        to_replica_id: target.id,
                    });
                }
                return new_leader();
            }
            _ => {}
        }
    }

    // A draining or leaving node leads nothing.
    if state(leader_node) != NodeState::Active {
        if let Some(op) = new_leader() {
            return Some(op);
        }
    }
    // Operators' leader preference: a partition led off the preferred nodes goes to its voter
    // on the preferred node leading the fewest partitions, when that node is healthy and was
    // heard from recently. The root group too: its leader is the timestamp oracle, which
    // every transaction asks twice. Not held back like balancing: it is what operators asked
    // for, and each partition moves once.
    if !view.settings.preferred_leaders.is_empty() && !preferred(leader_node) {
        let target = voters
            .iter()
            .filter(|r| preferred(r.node_id) && may_lead(r.node_id))
            .filter(|r| view.fresh.contains(&r.node_id))
            .min_by_key(|r| (count(view.leader_counts, r.node_id), r.node_id));
        if let Some(voter) = target {
            return Some(Operation::TransferLeader {
                partition_id: partition.id,
                to_replica_id: voter.id,
            });
        }
    }
    // More live voters than the target (a balancing move half done, or a lower target): remove
    // the one on the most loaded node, never the leader's.
    if live_voters > target {
        if let Some(excess) = voters
            .iter()
            .filter(|r| r.node_id != leader_node)
            .max_by_key(|r| (count(view.replica_counts, r.node_id), r.node_id))
        {
            return change(ReplicaChange::Remove {
                replica_id: excess.id,
            });
        }
    }
    if !view.balance || live_voters != target || voters.len() as u64 != target {
        return None;
    }

    // Replica balance: a replica moves from the most loaded node holding one to the least
    // loaded healthy node without one (a learner there first; the excess rule then removes
    // the most loaded voter).
    // Only a voter the excess rule may remove counts: never the leader's. Counting the
    // leader's node would keep moving replicas among the others while the leader's node, the
    // heaviest, never sheds one, and leader balance (which comes after) would never run.
    let heaviest = voters
        .iter()
        .filter(|r| r.node_id != leader_node)
        .map(|r| count(view.replica_counts, r.node_id))
        .max()
        .unwrap_or(0);
    let lightest = view
        .nodes
        .values()
        .filter(|n| placeable(n) && view.fresh.contains(&n.id))
        .filter(|n| partition.replica_on(n.id).is_none())
        .min_by_key(|n| (count(view.replica_counts, n.id), n.id));
    if let Some(node) = lightest {
        if heaviest >= count(view.replica_counts, node.id) + BALANCE_MARGIN {
            return change(ReplicaChange::AddLearner { node_id: node.id });
        }
    }

    // Leader balance: leadership moves to the voter whose node leads the fewest partitions
    // (among the preferred nodes, when the leader's is one). Not the root group's: each move
    // of it hands the oracle to a new leader and stalls every transaction in the cluster for
    // a moment, which an even count is not worth; the other partitions' leaders move around
    // it instead.
    if is_root {
        return None;
    }
    let led = count(view.leader_counts, leader_node);
    let among_preferred = preferred(leader_node);
    let lightest = voters
        .iter()
        .filter(|r| r.node_id != leader_node && may_lead(r.node_id))
        .filter(|r| !among_preferred || preferred(r.node_id))
        .filter(|r| view.fresh.contains(&r.node_id))
        .min_by_key(|r| (count(view.leader_counts, r.node_id), r.node_id));
    if let Some(voter) = lightest {
        if led >= count(view.leader_counts, voter.node_id) + BALANCE_MARGIN {
            return Some(Operation::TransferLeader {
                partition_id: partition.id,
                to_replica_id: voter.id,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use reef_raft::Replica;

    use super::*;

    struct Fixture {
        nodes: BTreeMap<u64, NodeDesc>,
        liveness: HashMap<u64, Liveness>,
        settings: Settings,
        counts: HashMap<u64, usize>,
        leaders: HashMap<u64, usize>,
        fresh: HashSet<u64>,
        balance: bool,
        learner_age: Duration,
        moves: HashMap<u64, Move>,
    }

    impl Fixture {
        fn new(n: u64) -> Fixture {
            Fixture {
                nodes: (1..=n)
                    .map(|id| {
                        (
                            id,
                            NodeDesc {
                                id,
                                addr: format!("127.0.0.1:{id}"),
                                pg_addr: String::new(),
                                root: id <= 3,
                                token: id,
                                state: NodeState::Active,
                            },
                        )
                    })
                    .collect(),
                liveness: (1..=n).map(|id| (id, Liveness::Up)).collect(),
                settings: Settings::default(),
                counts: HashMap::new(),
                leaders: HashMap::new(),
                fresh: (1..=n).collect(),
                balance: false,
                learner_age: Duration::ZERO,
                moves: HashMap::new(),
            }
        }

        fn decide(&self, p: &Partition, progress: &[(u64, Progress)]) -> Option<Operation> {
            let view = View {
                nodes: &self.nodes,
                liveness: &self.liveness,
                settings: &self.settings,
                replica_counts: &self.counts,
                leader_counts: &self.leaders,
                fresh: &self.fresh,
                balance: self.balance,
                moves: &self.moves,
            };
            next_operation(
                &view,
                p,
                1,
                500,
                |replica| {
                    progress
                        .iter()
                        .find(|(n, _)| *n == replica.node_id)
                        .map(|(_, p)| *p)
                },
                |_| self.learner_age,
            )
        }
    }

    fn partition(id: u64, replicas: Vec<Replica>) -> Partition {
        Partition {
            id,
            start: b"a".to_vec(),
            end: Vec::new(),
            epoch: Epoch {
                conf_ver: 4,
                version: 2,
            },
            replicas,
        }
    }

    fn change(op: Option<Operation>) -> Option<ReplicaChange> {
        match op {
            Some(Operation::Change { change, .. }) => Some(change),
            _ => None,
        }
    }

    #[test]
    fn grows_to_the_replication_factor_one_learner_at_a_time() {
        let mut f = Fixture::new(4);
        f.counts.insert(2, 5);
        let p = partition(2, vec![Replica::voter(1, 1)]);
        // Node 3 holds fewer replicas than node 2.
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::AddLearner { node_id: 3 })
        );
        let learner = Replica {
            id: 10,
            node_id: 3,
            learner: true,
        };
        let p = partition(2, vec![Replica::voter(1, 1), learner]);
        // Not caught up yet: wait.
        assert_eq!(f.decide(&p, &[]), None);
        let behind = Progress {
            initialised: true,
            applied: 500 - PROMOTE_LAG - 1,
        };
        assert_eq!(f.decide(&p, &[(3, behind)]), None);
        let caught_up = Progress {
            initialised: true,
            applied: 450,
        };
        assert_eq!(
            change(f.decide(&p, &[(3, caught_up)])),
            Some(ReplicaChange::Promote { replica_id: 10 })
        );
        // A learner that does not catch up in time is removed, so another placement can be
        // tried.
        f.learner_age = LEARNER_TIMEOUT;
        assert_eq!(
            change(f.decide(&p, &[(3, behind)])),
            Some(ReplicaChange::Remove { replica_id: 10 })
        );
        f.learner_age = Duration::ZERO;
        // Enough voters: nothing to do.
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(5, 2),
                Replica::voter(6, 3),
            ],
        );
        assert_eq!(f.decide(&p, &[]), None);
    }

    #[test]
    fn an_operators_move_adds_the_target_then_removes_the_source() {
        let mut f = Fixture::new(4);
        // Node 4 holds the most replicas, so balancing alone would never pick it.
        f.counts.insert(4, 9);
        f.moves.insert(2, Move { from: 2, to: 4 });
        let voters = vec![
            Replica::voter(1, 1),
            Replica::voter(2, 2),
            Replica::voter(3, 3),
        ];
        let p = partition(2, voters.clone());
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::AddLearner { node_id: 4 })
        );
        // The learner is promoted as any other; then four voters, and the source goes, not
        // the most loaded one.
        let mut four = voters.clone();
        four.push(Replica::voter(7, 4));
        let p = partition(2, four.clone());
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::Remove { replica_id: 2 })
        );
        // A source that leads hands leadership to the target first.
        f.moves.insert(2, Move { from: 1, to: 4 });
        assert_eq!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader {
                partition_id: 2,
                to_replica_id: 7
            })
        );
        // A target that may not take replicas gets none.
        f.moves.insert(2, Move { from: 2, to: 4 });
        f.nodes.get_mut(&4).unwrap().state = NodeState::Draining;
        assert_eq!(f.decide(&partition(2, voters), &[]), None);
    }

    #[test]
    fn decommissioning_moves_every_replica_and_leadership_off_the_node() {
        let mut f = Fixture::new(4);
        f.nodes.get_mut(&1).unwrap().state = NodeState::Decommissioning;
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
            ],
        );
        // The leaving node's replica does not count: a learner on the spare first.
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::AddLearner { node_id: 4 })
        );
        // It never gets a new replica itself.
        let p = partition(2, vec![Replica::voter(2, 2), Replica::voter(3, 3)]);
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::AddLearner { node_id: 4 })
        );
        // Once replaced, its voter goes; it leads (the fixture's leader is node 1), so
        // leadership moves first.
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
                Replica::voter(4, 4),
            ],
        );
        assert!(matches!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader { to_replica_id, .. }) if to_replica_id != 1
        ));
        // With no spare node, nothing moves: the replica stays rather than losing one.
        let mut f = Fixture::new(3);
        f.nodes.get_mut(&3).unwrap().state = NodeState::Decommissioning;
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
            ],
        );
        assert_eq!(f.decide(&p, &[]), None);
    }

    #[test]
    fn draining_moves_leadership_only() {
        let mut f = Fixture::new(3);
        f.nodes.get_mut(&1).unwrap().state = NodeState::Draining;
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
            ],
        );
        assert!(matches!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader { to_replica_id, .. }) if to_replica_id != 1
        ));
        // A draining node gets no new replica and no leadership from balancing.
        f.nodes.get_mut(&1).unwrap().state = NodeState::Active;
        f.nodes.get_mut(&2).unwrap().state = NodeState::Draining;
        f.balance = true;
        f.leaders.insert(1, 10);
        assert!(matches!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader {
                to_replica_id: 3,
                ..
            })
        ));
    }

    #[test]
    fn replaces_a_dead_node_only_when_a_spare_exists() {
        let mut f = Fixture::new(3);
        f.liveness.insert(3, Liveness::Dead);
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
            ],
        );
        // Three nodes, one dead: the dead voter stays (it may come back).
        assert_eq!(f.decide(&p, &[]), None);
        // A suspect node gets no replica either.
        let mut f = Fixture::new(4);
        f.liveness.insert(3, Liveness::Dead);
        f.liveness.insert(4, Liveness::Suspect);
        assert_eq!(f.decide(&p, &[]), None);
        // With a healthy spare, a learner goes there first, then the dead voter is removed.
        f.liveness.insert(4, Liveness::Up);
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::AddLearner { node_id: 4 })
        );
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
                Replica::voter(4, 4),
            ],
        );
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::Remove { replica_id: 3 })
        );
        // A learner on a dead node is removed.
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica {
                    id: 9,
                    node_id: 3,
                    learner: true,
                },
            ],
        );
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::Remove { replica_id: 9 })
        );
    }

    #[test]
    fn balances_replicas_and_leaders_only_when_settled() {
        let mut f = Fixture::new(4);
        f.counts = HashMap::from([(1, 5), (2, 5), (3, 5), (4, 0)]);
        f.leaders = HashMap::from([(1, 3), (2, 1), (3, 1), (4, 0)]);
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
            ],
        );
        // Not while other changes are under way.
        assert_eq!(f.decide(&p, &[]), None);
        f.balance = true;
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::AddLearner { node_id: 4 })
        );
        // Once promoted, the excess voter on the most loaded node goes, never the leader's
        // (node 1 leads here).
        f.counts = HashMap::from([(1, 6), (2, 5), (3, 5), (4, 1)]);
        let moved = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
                Replica::voter(4, 4),
            ],
        );
        assert_eq!(
            change(f.decide(&moved, &[])),
            Some(ReplicaChange::Remove { replica_id: 3 })
        );
        // Replicas balanced within the margin: leadership moves off the node leading most.
        f.counts = HashMap::from([(1, 4), (2, 4), (3, 4), (4, 3)]);
        assert_eq!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader {
                partition_id: 2,
                to_replica_id: 2
            })
        );
        f.leaders = HashMap::from([(1, 2), (2, 1), (3, 1), (4, 1)]);
        assert_eq!(f.decide(&p, &[]), None);
        // The leader's node is the heaviest only because it leads everything: no replica can
        // leave it, so leadership moves first.
        f.counts = HashMap::from([(1, 7), (2, 5), (3, 4), (4, 5)]);
        f.leaders = HashMap::from([(1, 6), (2, 0), (3, 0), (4, 1)]);
        assert_eq!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader {
                partition_id: 2,
                to_replica_id: 2
            })
        );
        // The root group's leadership is not balanced: moving it moves the oracle. (Two new
        // root leaders each counting the other as idle once handed it back and forth.)
        f.leaders = HashMap::from([(1, 3), (2, 0), (3, 0), (4, 1)]);
        let root = partition(ROOT_PARTITION_ID, p.replicas.clone());
        assert_eq!(f.decide(&root, &[]), None);
        assert!(matches!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader { .. })
        ));
        // Nor to a node that has just gone quiet (a paused process still looks up).
        f.fresh.remove(&2);
        assert!(matches!(
            f.decide(&p, &[]),
            Some(Operation::TransferLeader {
                to_replica_id: 3,
                ..
            })
        ));
        f.fresh.remove(&3);
        assert_eq!(f.decide(&p, &[]), None);
    }

    #[test]
    fn preferred_nodes_lead() {
        let mut f = Fixture::new(4);
        let p = partition(
            2,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
            ],
        );
        let to = |replica_id| {
            Some(Operation::TransferLeader {
                partition_id: 2,
                to_replica_id: replica_id,
            })
        };
        // Node 1 leads; node 3 is preferred: leadership moves there, even while balancing
        // waits, and for the root group too.
        f.settings.preferred_leaders = vec![3];
        assert_eq!(f.decide(&p, &[]), to(3));
        let root = partition(ROOT_PARTITION_ID, p.replicas.clone());
        assert!(matches!(
            f.decide(&root, &[]),
            Some(Operation::TransferLeader {
                to_replica_id: 3,
                ..
            })
        ));
        // Of two preferred nodes, the one leading fewer partitions.
        f.settings.preferred_leaders = vec![2, 3];
        f.leaders = HashMap::from([(1, 1), (2, 4), (3, 2)]);
        assert_eq!(f.decide(&p, &[]), to(3));
        // Not to a preferred node that went quiet, is draining, or holds no voter.
        f.fresh.remove(&3);
        assert_eq!(f.decide(&p, &[]), to(2));
        f.nodes.get_mut(&2).unwrap().state = NodeState::Draining;
        assert_eq!(f.decide(&p, &[]), None);
        f.settings.preferred_leaders = vec![4];
        assert_eq!(f.decide(&p, &[]), None);
        f.fresh.insert(3);
        f.nodes.get_mut(&2).unwrap().state = NodeState::Active;
        // A preferred leader stays although it leads the most: balancing moves leadership
        // only among the preferred nodes.
        f.balance = true;
        f.settings.preferred_leaders = vec![1];
        f.leaders = HashMap::from([(1, 6), (2, 0), (3, 0)]);
        assert_eq!(f.decide(&p, &[]), None);
        f.settings.preferred_leaders = vec![1, 2];
        assert_eq!(f.decide(&p, &[]), to(2));
        // A draining leader hands leadership to a preferred node before a less loaded one.
        f.balance = false;
        f.settings.preferred_leaders = vec![3];
        f.leaders = HashMap::from([(1, 1), (2, 0), (3, 5)]);
        f.nodes.get_mut(&1).unwrap().state = NodeState::Draining;
        assert_eq!(f.decide(&p, &[]), to(3));
        f.settings.preferred_leaders.clear();
        assert_eq!(f.decide(&p, &[]), to(2));
    }

    #[test]
    fn root_group_stays_on_root_nodes() {
        let f = Fixture::new(5);
        let p = partition(
            ROOT_PARTITION_ID,
            vec![
                Replica::voter(1, 1),
                Replica::voter(2, 2),
                Replica::voter(3, 3),
            ],
        );
        assert_eq!(f.decide(&p, &[]), None);
        let p = partition(
            ROOT_PARTITION_ID,
            vec![Replica::voter(1, 1), Replica::voter(2, 2)],
        );
        assert_eq!(
            change(f.decide(&p, &[])),
            Some(ReplicaChange::AddLearner { node_id: 3 })
        );
        let mut f = Fixture::new(5);
        f.nodes.get_mut(&3).unwrap().root = false;
        // Nodes 4 and 5 are not root nodes either.
        assert_eq!(f.decide(&p, &[]), None);
    }
}
