//! The root group's records and where they live: every record is a raw value under the
//! `\x00root/` prefix of the root partition, which owns the system key range `["", "\x01")`
//! that no SQL key can take (SQL keys start at `\x01`).

use std::collections::BTreeMap;

use reef_common::codec::{
    decode_len_prefixed, decode_var_u64, encode_len_prefixed, encode_var_u64,
};
use reef_common::Timestamp;
use reef_raft::{Epoch, Partition, Replica};
use reef_txn::{MvccStore, RawBatch};

use crate::error::{Result, RootError};

/// The root group's partition id.
pub const ROOT_PARTITION_ID: u64 = 1;
/// The id of the partition a new cluster starts its data in (every SQL key).
pub const FIRST_DATA_PARTITION_ID: u64 = 2;
pub use reef_common::keys::SYSTEM_END;

const PREFIX: &[u8] = b"\x00root/";
const TSO_KEY: &[u8] = b"\x00root/tso";
const NEXT_NODE_KEY: &[u8] = b"\x00root/next-node";
const SETTINGS_KEY: &[u8] = b"\x00root/settings";
const GC_KEY: &[u8] = b"\x00root/gc";
const NODE_PREFIX: &[u8] = b"\x00root/node/";
const PARTITION_PREFIX: &[u8] = b"\x00root/part/";
const VERSION: u8 = 1;

fn id_key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Returns the root partition of a new cluster, with one voter on `node_id`.
pub fn root_partition(node_id: u64) -> Partition {
    Partition {
        id: ROOT_PARTITION_ID,
        start: Vec::new(),
        end: SYSTEM_END.to_vec(),
        epoch: Epoch {
            conf_ver: 1,
            version: 1,
        },
        replicas: vec![Replica::voter(node_id, node_id)],
    }
}

/// Returns the first data partition of a new cluster (every key from [`SYSTEM_END`] on), with
/// one voter on `node_id`.
pub fn first_data_partition(node_id: u64) -> Partition {
    Partition {
        id: FIRST_DATA_PARTITION_ID,
        start: SYSTEM_END.to_vec(),
        end: Vec::new(),
        ..root_partition(node_id)
    }
}

/// A member node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDesc {
    /// The node id.
    pub id: u64,
    /// Its gRPC address, `host:port`.
    pub addr: String,
    /// Its PostgreSQL address, `host:port` (empty: it serves no SQL).
    pub pg_addr: String,
    /// True if it may hold a replica of the root group.
    pub root: bool,
    /// The random token it joined with: a retried join with the same token gets the same id,
    /// while a node that lost its data directory joins again as a new node.
    pub token: u64,
    /// What operators asked of it (kept by the root service; a node's own report never
    /// changes it).
    pub state: NodeState,
}

/// What operators asked of a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// A full member: it holds replicas and leads partitions.
    #[default]
    Active,
    /// Leaders move off it (before a planned restart); it keeps its replicas.
    Draining,
    /// Every replica moves off it (before it leaves the cluster).
    Decommissioning,
}

impl NodeState {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Decommissioning => "decommissioning",
        }
    }

    /// Parses a name given by [`NodeState::as_str`].
    pub fn parse(name: &str) -> Option<NodeState> {
        match name {
            "active" | "" => Some(NodeState::Active),
            "draining" => Some(NodeState::Draining),
            "decommissioning" => Some(NodeState::Decommissioning),
            _ => None,
        }
    }

    fn code(self) -> u64 {
        match self {
            NodeState::Active => 0,
            NodeState::Draining => 1,
            NodeState::Decommissioning => 2,
        }
    }

    fn from_code(code: u64) -> Result<NodeState> {
        match code {
            0 => Ok(NodeState::Active),
            1 => Ok(NodeState::Draining),
            2 => Ok(NodeState::Decommissioning),
            other => Err(RootError::Corruption(format!("unknown node state {other}"))),
        }
    }
}

impl NodeDesc {
    fn encode(&self) -> Vec<u8> {
        let mut buf = vec![VERSION];
        encode_var_u64(&mut buf, self.id);
        encode_len_prefixed(&mut buf, self.addr.as_bytes());
        encode_len_prefixed(&mut buf, self.pg_addr.as_bytes());
        encode_var_u64(&mut buf, self.root as u64);
        encode_var_u64(&mut buf, self.token);
        encode_var_u64(&mut buf, self.state.code());
        buf
    }

    fn decode(raw: &[u8]) -> Result<NodeDesc> {
        let input = &mut versioned(raw, "node")?;
        let desc = NodeDesc {
            id: var(input)?,
            addr: string(input)?,
            pg_addr: string(input)?,
            root: var(input)? == 1,
            token: var(input)?,
            // Records written before node states existed end here.
            state: if input.is_empty() {
                NodeState::Active
            } else {
                NodeState::from_code(var(input)?)?
            },
        };
        end(input, "node")?;
        Ok(desc)
    }
}

/// Cluster-wide settings, kept in the root group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How many replicas each data partition should have (the root group has up to 3, on
    /// root-role nodes).
    pub replicas: u64,
    /// A node silent for this long is suspect: it gets no new replicas.
    pub suspect_after_ms: u64,
    /// A node silent for this long is dead: its replicas are re-created elsewhere.
    pub dead_after_ms: u64,
    /// MVCC versions stay readable for at least this long after they were overwritten; the
    /// GC safe point trails the clock by it (and stays below every live transaction).
    pub gc_life_ms: u64,
    /// The nodes that should lead every partition they hold a voter of, sorted (empty:
    /// leadership spreads evenly over the nodes). Operators name the nodes their
    /// applications connect to, so that reads, timestamps and commits start where the
    /// leaders are instead of one network hop away.
    pub preferred_leaders: Vec<u64>,
}

/// The default of [`Settings::gc_life_ms`]: ten minutes.
pub const DEFAULT_GC_LIFE_MS: u64 = 600_000;

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            replicas: 3,
            suspect_after_ms: 5_000,
            dead_after_ms: 60_000,
            gc_life_ms: DEFAULT_GC_LIFE_MS,
            preferred_leaders: Vec::new(),
        }
    }
}

impl Settings {
    /// Returns true if operators prefer node `node_id` for leadership.
    pub fn prefers_leader(&self, node_id: u64) -> bool {
        self.preferred_leaders.contains(&node_id)
    }

    fn encode(&self) -> Vec<u8> {
        let mut buf = vec![VERSION];
        for v in [
            self.replicas,
            self.suspect_after_ms,
            self.dead_after_ms,
            self.gc_life_ms,
        ] {
            encode_var_u64(&mut buf, v);
        }
        encode_var_u64(&mut buf, self.preferred_leaders.len() as u64);
        for &node_id in &self.preferred_leaders {
            encode_var_u64(&mut buf, node_id);
        }
        buf
    }

    fn decode(raw: &[u8]) -> Result<Settings> {
        let input = &mut versioned(raw, "settings")?;
        let mut settings = Settings {
            replicas: var(input)?,
            suspect_after_ms: var(input)?,
            dead_after_ms: var(input)?,
            gc_life_ms: DEFAULT_GC_LIFE_MS,
            preferred_leaders: Vec::new(),
        };
        // Settings written before the GC life time existed end here, and those written
        // before leader preferences end after it.
        if !input.is_empty() {
            settings.gc_life_ms = var(input)?;
        }
        if !input.is_empty() {
            let count = var(input)?;
            for _ in 0..count {
                settings.preferred_leaders.push(var(input)?);
            }
        }
        end(input, "settings")?;
        Ok(settings)
    }
}

/// Everything the root group stores, as a new leader loads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RootData {
    /// The timestamp oracle's persisted limit: every timestamp handed out is below it.
    pub tso_limit: Timestamp,
    /// The MVCC garbage collection safe point (0: none yet): no snapshot below it is served.
    pub gc_safe_point: Timestamp,
    /// The id the next joining node gets.
    pub next_node_id: u64,
    /// The settings (`None` until the bootstrapping node wrote them).
    pub settings: Option<Settings>,
    /// The member nodes by id.
    pub nodes: BTreeMap<u64, NodeDesc>,
    /// The partition map by id: ranges, epochs and replicas, as last reported by leaders.
    pub partitions: BTreeMap<u64, Partition>,
}

impl RootData {
    /// Reads the root group's records from the root partition's raw values.
    pub fn load(mvcc: &MvccStore) -> Result<RootData> {
        let mut end = PREFIX.to_vec();
        *end.last_mut().expect("non-empty prefix") += 1;
        let mut data = RootData::default();
        for (key, value) in mvcc.raw_scan(PREFIX, &end, usize::MAX)? {
            if key == TSO_KEY {
                data.tso_limit = be_u64(&value, "timestamp limit")?;
            } else if key == GC_KEY {
                data.gc_safe_point = be_u64(&value, "GC safe point")?;
            } else if key == NEXT_NODE_KEY {
                data.next_node_id = be_u64(&value, "next node id")?;
            } else if key == SETTINGS_KEY {
                data.settings = Some(Settings::decode(&value)?);
            } else if key.starts_with(NODE_PREFIX) {
                let node = NodeDesc::decode(&value)?;
                data.nodes.insert(node.id, node);
            } else if key.starts_with(PARTITION_PREFIX) {
                let input = &mut versioned(&value, "partition")?;
                let partition = Partition::decode_from(input)
                    .map_err(|err| RootError::Corruption(format!("partition record: {err}")))?;
                data.partitions.insert(partition.id, partition);
            } else {
                return Err(RootError::Corruption(format!(
                    "unknown root key '{}'",
                    key.escape_ascii()
                )));
            }
        }
        Ok(data)
    }

    /// Returns the partition holding `key`, if the map has one.
    pub fn locate(&self, key: &[u8]) -> Option<&Partition> {
        self.partitions.values().find(|p| p.contains(key))
    }

    /// Returns the partition holding the keys just below `end` (empty: the last partition),
    /// if the map has one: the one that starts before `end` and reaches it.
    pub fn locate_before(&self, end: &[u8]) -> Option<&Partition> {
        self.partitions.values().find(|p| {
            if end.is_empty() {
                p.end.is_empty()
            } else {
                p.start.as_slice() < end && (p.end.is_empty() || p.end.as_slice() >= end)
            }
        })
    }

    /// Records a partition as a leader reported it, if it is newer than what the map holds:
    /// it replaces the record of the same id and drops records of other partitions whose
    /// range it overlaps with an older version (the halves of a split replace their parent's
    /// old range). Returns the writes that persist the change, or `None` if the report is not
    /// news or is stale.
    pub fn observe(&mut self, partition: &Partition) -> Option<RawBatch> {
        if let Some(old) = self.partitions.get(&partition.id) {
            if !newer(partition.epoch, old.epoch) {
                return None;
            }
        }
        let overlapping: Vec<u64> = self
            .partitions
            .values()
            .filter(|p| p.id != partition.id && p.overlaps(&partition.start, &partition.end))
            .map(|p| p.id)
            .collect();
        if overlapping
            .iter()
            .any(|id| self.partitions[id].epoch.version >= partition.epoch.version)
        {
            // A newer partition already covers part of the range: this report is stale.
            return None;
        }
        let mut batch = RawBatch::default();
        for id in overlapping {
            self.partitions.remove(&id);
            batch = batch.delete(id_key(PARTITION_PREFIX, id));
        }
        self.partitions.insert(partition.id, partition.clone());
        Some(batch.put(
            id_key(PARTITION_PREFIX, partition.id),
            partition_record(partition),
        ))
    }
}

fn partition_record(partition: &Partition) -> Vec<u8> {
    let mut buf = vec![VERSION];
    partition.encode(&mut buf);
    buf
}

/// Returns true if `a` is a later epoch of the same partition than `b`.
pub fn newer(a: Epoch, b: Epoch) -> bool {
    (a.version, a.conf_ver) > (b.version, b.conf_ver)
}

/// The writes that set up the root group of a new cluster: the settings, the bootstrapping
/// node, the first partitions and the next node id. They apply only to an empty root group.
pub fn bootstrap_batch(node: &NodeDesc, settings: &Settings) -> RawBatch {
    let root = root_partition(node.id);
    let data = first_data_partition(node.id);
    RawBatch::default()
        .expect(SETTINGS_KEY, None)
        .put(SETTINGS_KEY, settings.encode())
        .put(NEXT_NODE_KEY, (node.id + 1).to_be_bytes())
        .put(id_key(NODE_PREFIX, node.id), node.encode())
        .put(id_key(PARTITION_PREFIX, root.id), partition_record(&root))
        .put(id_key(PARTITION_PREFIX, data.id), partition_record(&data))
}

/// The write that persists the timestamp oracle's limit.
pub fn tso_batch(limit: Timestamp) -> RawBatch {
    RawBatch::default().put(TSO_KEY, limit.to_be_bytes())
}

/// Returns the batch that records a new GC safe point.
pub fn gc_batch(safe_point: Timestamp) -> RawBatch {
    RawBatch::default().put(GC_KEY, safe_point.to_be_bytes())
}

/// The writes that register `node` and move the next node id past it.
pub fn join_batch(node: &NodeDesc) -> RawBatch {
    RawBatch::default()
        .put(NEXT_NODE_KEY, (node.id + 1).to_be_bytes())
        .put(id_key(NODE_PREFIX, node.id), node.encode())
}

/// The write that updates a node's record.
pub fn node_batch(node: &NodeDesc) -> RawBatch {
    RawBatch::default().put(id_key(NODE_PREFIX, node.id), node.encode())
}

/// The write that replaces the settings.
pub fn settings_batch(settings: &Settings) -> RawBatch {
    RawBatch::default().put(SETTINGS_KEY, settings.encode())
}

fn versioned<'a>(raw: &'a [u8], what: &str) -> Result<&'a [u8]> {
    match raw.split_first() {
        Some((&VERSION, rest)) => Ok(rest),
        _ => Err(RootError::Corruption(format!("bad {what} record header"))),
    }
}

fn end(input: &[u8], what: &str) -> Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(RootError::Corruption(format!(
            "trailing bytes in a {what} record"
        )))
    }
}

fn var(input: &mut &[u8]) -> Result<u64> {
    decode_var_u64(input).map_err(|err| RootError::Corruption(err.to_string()))
}

fn string(input: &mut &[u8]) -> Result<String> {
    let raw = decode_len_prefixed(input).map_err(|err| RootError::Corruption(err.to_string()))?;
    String::from_utf8(raw.to_vec()).map_err(|_| RootError::Corruption("non-UTF-8 address".into()))
}

fn be_u64(raw: &[u8], what: &str) -> Result<u64> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| RootError::Corruption(format!("{what} has {} bytes", raw.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u64, start: &str, end: &str, version: u64, conf_ver: u64) -> Partition {
        Partition {
            id,
            start: start.as_bytes().to_vec(),
            end: end.as_bytes().to_vec(),
            epoch: Epoch { conf_ver, version },
            replicas: vec![Replica::voter(1, 1)],
        }
    }

    #[test]
    fn records_roundtrip() {
        let node = NodeDesc {
            id: 7,
            addr: "127.0.0.1:1".into(),
            pg_addr: String::new(),
            root: true,
            token: 99,
            state: NodeState::Decommissioning,
        };
        assert_eq!(NodeDesc::decode(&node.encode()).unwrap(), node);
        // A record from before node states decodes as an active node.
        let mut old = node.encode();
        old.pop();
        assert_eq!(
            NodeDesc::decode(&old).unwrap(),
            NodeDesc {
                state: NodeState::Active,
                ..node.clone()
            }
        );
        let settings = Settings::default();
        assert_eq!(Settings::decode(&settings.encode()).unwrap(), settings);
        let preferring = Settings {
            preferred_leaders: vec![1, 300],
            ..Settings::default()
        };
        let raw = preferring.encode();
        assert_eq!(Settings::decode(&raw).unwrap(), preferring);
        // Settings from before leader preferences (the count and ids cut off) prefer none.
        assert_eq!(Settings::decode(&raw[..raw.len() - 4]).unwrap(), settings);
        // A list cut short is an error, not a shorter list.
        assert!(Settings::decode(&raw[..raw.len() - 1]).is_err());
        assert!(NodeDesc::decode(&node.encode()[..3]).is_err());
        assert!(Settings::decode(b"").is_err());
    }

    #[test]
    fn observe_keeps_the_newest_view_of_each_range() {
        let mut data = RootData::default();
        assert!(data.observe(&part(2, "a", "", 1, 1)).is_some());
        // The same epoch again is not news; an older one is stale.
        assert!(data.observe(&part(2, "a", "", 1, 1)).is_none());
        // A split: the new right half arrives first and replaces its parent's old record.
        let batch = data.observe(&part(9, "m", "", 2, 1)).unwrap();
        assert_eq!(
            batch.writes.len(),
            2,
            "deletes the parent, writes the child"
        );
        assert_eq!(data.partitions.len(), 1);
        // The parent's late report of its old range is stale now.
        assert!(data.observe(&part(2, "a", "", 1, 2)).is_none());
        // Its report of its new range is news.
        assert!(data.observe(&part(2, "a", "m", 2, 1)).is_some());
        assert_eq!(data.locate(b"b").unwrap().id, 2);
        assert_eq!(data.locate(b"x").unwrap().id, 9);
        assert_eq!(data.locate_before(b"m").unwrap().id, 2);
        assert_eq!(data.locate_before(b"").unwrap().id, 9);
        assert_eq!(data.locate_before(b"n").unwrap().id, 9);
        // A membership change bumps conf_ver only.
        assert!(data.observe(&part(9, "m", "", 2, 2)).is_some());
        assert!(data.observe(&part(9, "m", "", 2, 1)).is_none());
        assert_eq!(data.partitions[&9].epoch.conf_ver, 2);
    }
}
