//! [`PartitionCache`]: the client's picture of which partition holds a key and which node
//! leads it. It may be stale; the nodes' typed errors correct it.

use std::collections::BTreeMap;

use reef_rpc::pb;

/// A cached partition and the node last known to lead it.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// The partition as last seen.
    pub partition: pb::Partition,
    /// The node id of its leader, if known.
    pub leader: Option<u64>,
}

impl Route {
    /// Returns true if `key` lies in the partition.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.partition.contains(key)
    }
}

fn version(partition: &pb::Partition) -> u64 {
    partition.epoch.map_or(0, |e| e.version)
}

fn conf_ver(partition: &pb::Partition) -> u64 {
    partition.epoch.map_or(0, |e| e.conf_ver)
}

/// Partitions by their first key, none overlapping.
#[derive(Debug, Default)]
pub struct PartitionCache {
    by_start: BTreeMap<Vec<u8>, Route>,
}

impl PartitionCache {
    /// Returns the cached route for `key`, if any.
    pub fn locate(&self, key: &[u8]) -> Option<&Route> {
        self.by_start
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .next_back()
            .map(|(_, route)| route)
            .filter(|route| route.contains(key))
    }

    /// Returns the cached route of the partition holding the keys just below `end` (empty:
    /// the last partition), if any: the one that starts before `end` and reaches it.
    pub fn locate_before(&self, end: &[u8]) -> Option<&Route> {
        let route = if end.is_empty() {
            self.by_start.values().next_back()
        } else {
            self.by_start
                .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(end)))
                .next_back()
                .map(|(_, route)| route)
        };
        route.filter(|r| {
            let p_end = &r.partition.end;
            if end.is_empty() {
                p_end.is_empty()
            } else {
                p_end.is_empty() || p_end.as_ref() >= end
            }
        })
    }

    /// Records a partition, dropping the cached ones it overlaps, unless a cached partition
    /// with the same id is newer (a late answer must not undo a fresher one).
    pub fn insert(&mut self, partition: pb::Partition, leader: Option<u64>) {
        let overlapping: Vec<Vec<u8>> = self
            .by_start
            .iter()
            .filter(|(_, r)| r.partition.overlaps(&partition))
            .map(|(start, _)| start.clone())
            .collect();
        for start in &overlapping {
            let old = &self.by_start[start].partition;
            if old.id == partition.id
                && (version(old), conf_ver(old)) > (version(&partition), conf_ver(&partition))
            {
                return;
            }
        }
        for start in overlapping {
            self.by_start.remove(&start);
        }
        self.by_start
            .insert(partition.start.to_vec(), Route { partition, leader });
    }

    /// Records the leader of a cached partition.
    pub fn set_leader(&mut self, partition_id: u64, leader: Option<u64>) {
        if let Some(route) = self
            .by_start
            .values_mut()
            .find(|r| r.partition.id == partition_id)
        {
            route.leader = leader;
        }
    }

    /// Forgets a partition, so the next request for its keys looks it up again.
    pub fn invalidate(&mut self, partition_id: u64) {
        self.by_start.retain(|_, r| r.partition.id != partition_id);
    }

    /// Returns the number of cached partitions.
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// Returns true if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u64, start: &str, end: &str, version: u64) -> pb::Partition {
        pb::Partition {
            id,
            start: start.as_bytes().to_vec().into(),
            end: end.as_bytes().to_vec().into(),
            epoch: Some(pb::Epoch {
                conf_ver: 1,
                version,
            }),
            replicas: Vec::new(),
        }
    }

    #[test]
    fn locate_before_finds_the_partition_reaching_a_bound() {
        let mut cache = PartitionCache::default();
        cache.insert(part(1, "", "m", 2), Some(1));
        cache.insert(part(2, "m", "", 2), Some(2));
        assert_eq!(cache.locate_before(b"").unwrap().partition.id, 2);
        assert_eq!(cache.locate_before(b"z").unwrap().partition.id, 2);
        // Keys just below "m" are in the first partition.
        assert_eq!(cache.locate_before(b"m").unwrap().partition.id, 1);
        assert_eq!(cache.locate_before(b"c").unwrap().partition.id, 1);
        cache.invalidate(1);
        assert!(cache.locate_before(b"m").is_none());
    }

    #[test]
    fn splits_replace_their_parent_and_stale_answers_do_not_undo_them() {
        let mut cache = PartitionCache::default();
        cache.insert(part(1, "", "", 1), Some(1));
        assert_eq!(cache.locate(b"x").unwrap().partition.id, 1);
        // Partition 1 split at "m": the new right half replaces the cached parent.
        cache.insert(part(2, "m", "", 2), Some(2));
        assert!(cache.locate(b"a").is_none(), "the parent is gone");
        assert_eq!(cache.locate(b"m").unwrap().partition.id, 2);
        cache.insert(part(1, "", "m", 2), Some(1));
        assert_eq!(cache.locate(b"a").unwrap().partition.id, 1);
        assert_eq!(cache.len(), 2);
        // A late answer with the pre-split partition 1 is ignored.
        cache.insert(part(1, "", "", 1), Some(3));
        assert_eq!(cache.locate(b"a").unwrap().leader, Some(1));
        assert_eq!(cache.locate(b"z").unwrap().partition.id, 2);
        cache.set_leader(2, Some(3));
        assert_eq!(cache.locate(b"z").unwrap().leader, Some(3));
        cache.invalidate(2);
        assert!(cache.locate(b"z").is_none());
        assert_eq!(cache.len(), 1);
    }
}
