//! Conversions between the protocol's messages and the replication core's types, including
//! the typed errors a client acts on.

use protobuf::Message as _;
use reef_raft::{Envelope, Epoch, Partition, RaftError, RaftMessage, Replica};
use reef_txn::{LockInfo, LockKind, Mutation, MutationOp, TxnError, TxnStatus};

use crate::pb;

pub(crate) fn replica_to_pb(r: &Replica) -> pb::Replica {
    pb::Replica {
        id: r.id,
        node_id: r.node_id,
        learner: r.learner,
    }
}

pub(crate) fn replica_from_pb(r: Option<&pb::Replica>) -> Replica {
    r.map(|r| Replica {
        id: r.id,
        node_id: r.node_id,
        learner: r.learner,
    })
    .unwrap_or(Replica {
        id: 0,
        node_id: 0,
        learner: false,
    })
}

pub(crate) fn epoch_to_pb(e: Epoch) -> pb::Epoch {
    pb::Epoch {
        conf_ver: e.conf_ver,
        version: e.version,
    }
}

pub(crate) fn epoch_from_pb(e: Option<&pb::Epoch>) -> Epoch {
    e.map(|e| Epoch {
        conf_ver: e.conf_ver,
        version: e.version,
    })
    .unwrap_or_default()
}

/// Converts a partition descriptor to its protocol form.
pub fn partition_to_pb(p: &Partition) -> pb::Partition {
    pb::Partition {
        id: p.id,
        start: p.start.clone().into(),
        end: p.end.clone().into(),
        epoch: Some(epoch_to_pb(p.epoch)),
        replicas: p.replicas.iter().map(replica_to_pb).collect(),
    }
}

/// Converts a partition descriptor from its protocol form.
pub fn partition_from_pb(p: &pb::Partition) -> Partition {
    Partition {
        id: p.id,
        start: p.start.to_vec(),
        end: p.end.to_vec(),
        epoch: epoch_from_pb(p.epoch.as_ref()),
        replicas: p
            .replicas
            .iter()
            .map(|r| replica_from_pb(Some(r)))
            .collect(),
    }
}

/// Encodes an envelope; `message` is the raft-rs message's protobuf bytes.
impl pb::Partition {
    /// Returns true if `key` lies in the partition (an empty end is no end).
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_ref() <= key && (self.end.is_empty() || key < self.end.as_ref())
    }

    /// Returns true if the partition and `other` share a key.
    pub fn overlaps(&self, other: &pb::Partition) -> bool {
        (other.end.is_empty() || self.start < other.end)
            && (self.end.is_empty() || other.start < self.end)
    }
}

pub(crate) fn envelope_to_pb(env: &Envelope, message: Vec<u8>) -> pb::RaftEnvelope {
    pb::RaftEnvelope {
        partition_id: env.partition_id,
        from: Some(replica_to_pb(&env.from)),
        to: Some(replica_to_pb(&env.to)),
        epoch: Some(epoch_to_pb(env.epoch)),
        start: env.start.clone().into(),
        end: env.end.clone().into(),
        message: message.into(),
        removed: env.removed,
    }
}

pub(crate) fn encode_message(message: &RaftMessage) -> Vec<u8> {
    message
        .write_to_bytes()
        .expect("a raft-rs message always encodes")
}

/// Decodes an envelope, refusing a malformed Raft message.
pub(crate) fn envelope_from_pb(env: &pb::RaftEnvelope) -> Result<Envelope, String> {
    let message = RaftMessage::parse_from_carllerche_bytes(&env.message)
        .map_err(|err| format!("malformed Raft message: {err}"))?;
    Ok(Envelope {
        partition_id: env.partition_id,
        from: replica_from_pb(env.from.as_ref()),
        to: replica_from_pb(env.to.as_ref()),
        epoch: epoch_from_pb(env.epoch.as_ref()),
        start: env.start.to_vec(),
        end: env.end.to_vec(),
        message,
        removed: env.removed,
    })
}

pub(crate) fn mutation_from_pb(m: &pb::Mutation) -> Mutation {
    let op = match pb::mutation::Op::try_from(m.op).unwrap_or(pb::mutation::Op::Put) {
        pb::mutation::Op::Put => MutationOp::Put(m.value.to_vec()),
        pb::mutation::Op::Delete => MutationOp::Delete,
        pb::mutation::Op::Insert => MutationOp::Insert(m.value.to_vec()),
        pb::mutation::Op::Lock => MutationOp::Lock,
    };
    Mutation {
        op,
        key: m.key.to_vec(),
        conflict_ts: (m.conflict_ts != 0).then_some(m.conflict_ts),
    }
}

pub(crate) fn txn_status_to_pb(status: TxnStatus) -> pb::TxnStatus {
    use pb::txn_status::Status;
    pb::TxnStatus {
        status: Some(match status {
            TxnStatus::Committed(ts) => Status::CommittedTs(ts),
            TxnStatus::Locked { ttl_ms } => Status::LockedTtlMs(ttl_ms),
            TxnStatus::RolledBack => Status::RolledBack(true),
        }),
    }
}

/// Returns the typed routing error of `err`, if it is one.
pub fn partition_error(err: &RaftError) -> Option<pb::PartitionError> {
    use pb::partition_error::Error;
    let error = match err {
        RaftError::NotLeader {
            partition_id,
            leader,
        } => Error::NotLeader(pb::NotLeader {
            partition_id: *partition_id,
            leader: leader.as_ref().map(replica_to_pb),
        }),
        RaftError::EpochMismatch { current, .. } => Error::EpochMismatch(pb::EpochMismatch {
            current: current.iter().map(partition_to_pb).collect(),
        }),
        RaftError::PartitionNotFound(id) => Error::PartitionNotFound(*id),
        RaftError::KeyNotInPartition { key, .. } => Error::KeyNotInPartition(key.clone().into()),
        RaftError::ServerBusy(reason) => Error::ServerBusy(pb::ServerBusy {
            reason: reason.clone(),
            backoff_ms: 10,
        }),
        RaftError::StaleCommand(_) => Error::StaleCommand(true),
        RaftError::Unavailable(_) => Error::Unavailable(true),
        _ => return None,
    };
    Some(pb::PartitionError {
        message: err.to_string(),
        error: Some(error),
    })
}

/// Converts a lock's description to its wire form.
pub fn lock_info_to_pb(lock: &LockInfo) -> pb::LockInfo {
    pb::LockInfo {
        key: lock.key.clone().into(),
        primary: lock.primary.clone().into(),
        start_ts: lock.start_ts,
        ttl_ms: lock.ttl_ms,
        kind: match lock.kind {
            LockKind::Put => 0,
            LockKind::Delete => 1,
            LockKind::Lock => 2,
        },
        min_commit_ts: lock.min_commit_ts,
    }
}

/// Converts a lock's description from its wire form.
pub fn lock_info_from_pb(lock: &pb::LockInfo) -> LockInfo {
    LockInfo {
        key: lock.key.to_vec(),
        primary: lock.primary.to_vec(),
        start_ts: lock.start_ts,
        ttl_ms: lock.ttl_ms,
        kind: match lock.kind {
            0 => LockKind::Put,
            1 => LockKind::Delete,
            _ => LockKind::Lock,
        },
        min_commit_ts: lock.min_commit_ts,
    }
}

/// Returns the typed transaction error of `err`, if it is one.
pub(crate) fn key_error(err: &RaftError) -> Option<pb::KeyError> {
    use pb::key_error::Error;
    let RaftError::Txn(txn) = err else {
        return None;
    };
    let error = match txn {
        TxnError::KeyIsLocked(lock) => Error::Locked(lock_info_to_pb(lock)),
        TxnError::WriteConflict {
            key,
            start_ts,
            conflict_start_ts,
            conflict_commit_ts,
        } => Error::Conflict(pb::WriteConflict {
            key: key.clone().into(),
            start_ts: *start_ts,
            conflict_start_ts: *conflict_start_ts,
            conflict_commit_ts: *conflict_commit_ts,
        }),
        TxnError::DuplicateKey { key } => Error::DuplicateKey(key.clone().into()),
        TxnError::TxnAborted => Error::Aborted(true),
        TxnError::TxnNotFound { key, .. } => Error::TxnNotFound(key.clone().into()),
        TxnError::AlreadyCommitted {
            key,
            start_ts,
            commit_ts,
        } => Error::AlreadyCommitted(pb::AlreadyCommitted {
            key: key.clone().into(),
            start_ts: *start_ts,
            commit_ts: *commit_ts,
        }),
        TxnError::InvalidArgument(msg) => Error::InvalidArgument(msg.clone()),
        TxnError::SnapshotTooOld { ts, safe_point } => Error::SnapshotTooOld(pb::SnapshotTooOld {
            ts: *ts,
            safe_point: *safe_point,
        }),
        _ => return None,
    };
    Some(pb::KeyError {
        message: txn.to_string(),
        error: Some(error),
    })
}
