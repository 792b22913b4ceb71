//! [`Shunned`]: nodes that just failed to answer, avoided for a moment.
//!
//! A node that is stopped, overloaded or cut off keeps looking like the place to go: the
//! partition map names it as leader until the new leader reports in, and a `NotLeader` hint
//! from a replica that has not heard of the election names it too. Each attempt on it costs a
//! request timeout. After a transport failure the clients shun the node for [`SHUN_FOR`]: they
//! ask another replica (which answers with the new leader once there is one) or another root
//! address, unless every choice is shunned. An answer from the node ends the shunning early.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a node that failed to answer is avoided.
pub const SHUN_FOR: Duration = Duration::from_secs(3);

/// The nodes (by id or address) that recently failed to answer.
#[derive(Debug)]
pub struct Shunned<K> {
    until: Mutex<HashMap<K, Instant>>,
}

impl<K> Default for Shunned<K> {
    fn default() -> Self {
        Shunned {
            until: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> Shunned<K> {
    /// Notes that `node` failed to answer.
    pub fn failed(&self, node: &K) {
        self.until
            .lock()
            .insert(node.clone(), Instant::now() + SHUN_FOR);
    }

    /// Notes that `node` answered.
    pub fn answered(&self, node: &K) {
        let mut until = self.until.lock();
        if !until.is_empty() {
            until.remove(node);
        }
    }

    /// Whether `node` is being avoided now.
    pub fn is_shunned(&self, node: &K) -> bool {
        let mut until = self.until.lock();
        match until.get(node) {
            Some(at) if *at > Instant::now() => true,
            Some(_) => {
                until.remove(node);
                false
            }
            None => false,
        }
    }

    /// The first of `candidates`, starting at `turn` and going round, that is not shunned;
    /// `None` if all are.
    pub fn pick<'a>(&self, candidates: &'a [K], turn: usize) -> Option<&'a K> {
        (0..candidates.len())
            .map(|i| &candidates[(turn + i) % candidates.len()])
            .find(|c| !self.is_shunned(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_node_is_passed_over_until_it_answers() {
        let shunned = Shunned::default();
        let nodes = [1u64, 2, 3];
        assert_eq!(shunned.pick(&nodes, 0), Some(&1));
        shunned.failed(&1);
        assert!(shunned.is_shunned(&1));
        assert_eq!(shunned.pick(&nodes, 0), Some(&2));
        assert_eq!(shunned.pick(&nodes, 2), Some(&3));
        shunned.failed(&2);
        shunned.failed(&3);
        assert_eq!(shunned.pick(&nodes, 0), None);
        shunned.answered(&2);
        assert_eq!(shunned.pick(&nodes, 0), Some(&2));
    }
}
