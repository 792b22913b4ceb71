//! The list-append workload, checked the way Elle does: transactions append unique values to
//! lists and read whole lists. Because every value is unique and lists only grow, the longest
//! read of a key gives that key's version order, and every read names exactly which
//! transaction's append it saw last. From that come the dependencies between committed
//! transactions:
//!
//! - `ww`: T1's append to a key comes right before T2's in the version order;
//! - `wr`: T2 read a list whose last value T1 appended;
//! - `rw`: T1 read a list that T2's append (the next value of the key) is missing from.
//!
//! Snapshot isolation forbids G0 (a cycle of `ww` edges), G1c (a cycle of `ww` and `wr` edges),
//! and G-single (a cycle with exactly one `rw` edge, read skew), and also G1a (reading an
//! aborted transaction's value) and G1b (reading a value its transaction later overwrote in
//! the same key). It allows cycles with two or more `rw` edges (write skew). Also checked:
//! no read contains a value no transaction appended or the same value twice, the reads of a key
//! are prefixes of each other, a transaction sees its own appends, and no acknowledged append is
//! missing from a read of its key that began after the append's transaction finished.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::Anomaly;
use crate::history::{History, Outcome};

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Micro {
    /// Appends `value` (unique across the run) to the list at `key`.
    Append {
        /// The key.
        key: u64,
        /// The value.
        value: i64,
    },
    /// Reads the list at `key` (`None` until known).
    Read {
        /// The key.
        key: u64,
        /// What was read.
        value: Option<Vec<i64>>,
    },
}

/// A transaction: its steps, in order.
pub type Txn = Vec<Micro>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Edge {
    Ww,
    Wr,
    Rw,
}

impl Edge {
    fn name(self) -> &'static str {
        match self {
            Edge::Ww => "ww",
            Edge::Wr => "wr",
            Edge::Rw => "rw",
        }
    }
}

/// Checks a list-append history.
pub fn check(history: &History<Txn>) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let describe = |t: usize| {
        let op = &history[t];
        format!(
            "txn {t} (process {}, {:?}) {:?}",
            op.process, op.outcome, op.value
        )
    };

    // Who appended each value, and in which position among its transaction's appends to
    // the key.
    let mut writer: HashMap<(u64, i64), usize> = HashMap::new();
    let mut appends: HashMap<(usize, u64), Vec<i64>> = HashMap::new();
    for (t, op) in history.iter().enumerate() {
        for micro in &op.value {
            if let Micro::Append { key, value } = micro {
                if writer.insert((*key, *value), t).is_some() {
                    anomalies.push(Anomaly::new(
                        "duplicate-append",
                        format!("value {value} of key {key} is appended twice; the workload must use unique values"),
                    ));
                }
                appends.entry((t, *key)).or_default().push(*value);
            }
        }
    }

    // Every read, and each key's version order: its longest read, which every other read
    // must be a prefix of.
    let mut order: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    let mut reads: Vec<(usize, u64, &Vec<i64>)> = Vec::new();
    for (t, op) in history.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        for micro in &op.value {
            if let Micro::Read {
                key,
                value: Some(list),
            } = micro
            {
                reads.push((t, *key, list));
                let longest = order.entry(*key).or_default();
                if list.len() > longest.len() {
                    *longest = list.clone();
                }
            }
        }
    }
    for &(t, key, list) in &reads {
        let longest = &order[&key];
        if longest[..list.len()] != list[..] {
            anomalies.push(Anomaly::new(
                "incompatible-order",
                format!(
                    "key {key}: {} read {list:?}, not a prefix of {longest:?}",
                    describe(t)
                ),
            ));
        }
        let mut seen = HashSet::new();
        for v in list {
            if !seen.insert(*v) {
                anomalies.push(Anomaly::new(
                    "duplicate-elements",
                    format!("key {key}: {} read {v} twice", describe(t)),
                ));
            }
            match writer.get(&(key, *v)) {
                None => anomalies.push(Anomaly::new(
                    "garbage-read",
                    format!(
                        "key {key}: {} read {v}, which no transaction appended",
                        describe(t)
                    ),
                )),
                Some(&w) if history[w].outcome == Outcome::Fail => anomalies.push(Anomaly::new(
                    "G1a",
                    format!(
                        "key {key}: {} read {v}, appended by the aborted {}",
                        describe(t),
                        describe(w)
                    ),
                )),
                Some(_) => {}
            }
        }
        // G1b: the last value seen was not its transaction's last append to the key.
        if let Some(last) = list.last() {
            if let Some(&w) = writer.get(&(key, *last)) {
                let own = &appends[&(w, key)];
                if w != t && own.last() != Some(last) {
                    anomalies.push(Anomaly::new(
                        "G1b",
                        format!(
                            "key {key}: {} read {list:?}, an intermediate state of {}",
                            describe(t),
                            describe(w)
                        ),
                    ));
                }
            }
        }
    }

    // Inside a transaction: a read reflects the transaction's earlier appends and reads.
    let mut external: Vec<(usize, u64, Vec<i64>)> = Vec::new();
    for (t, op) in history.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let mut known: HashMap<u64, (bool, Vec<i64>)> = HashMap::new();
        for micro in &op.value {
            match micro {
                Micro::Append { key, value } => known
                    .entry(*key)
                    .or_insert((false, Vec::new()))
                    .1
                    .push(*value),
                Micro::Read {
                    key,
                    value: Some(list),
                } => match known.get(key) {
                    None => {
                        external.push((t, *key, list.clone()));
                        known.insert(*key, (true, list.clone()));
                    }
                    Some((read_before, expected)) => {
                        let fits = if *read_before {
                            list == expected
                        } else {
                            list.ends_with(expected)
                        };
                        if !fits {
                            anomalies.push(Anomaly::new(
                                "internal",
                                format!(
                                    "key {key}: {} read {list:?}, inconsistent with its own \
                                     earlier steps ({expected:?})",
                                    describe(t)
                                ),
                            ));
                        }
                        known.insert(*key, (true, list.clone()));
                    }
                },
                Micro::Read { .. } => {}
            }
        }
    }

    // Lost appends: acknowledged, yet missing from a read of the key that began after the
    // appending transaction finished.
    for (&(key, value), &w) in &writer {
        if history[w].outcome != Outcome::Ok {
            continue;
        }
        let later = reads.iter().find(|&&(t, k, list)| {
            k == key && history[t].invoke_ns > history[w].complete_ns && !list.contains(&value)
        });
        if let Some(&(t, _, list)) = later {
            anomalies.push(Anomaly::new(
                "lost-append",
                format!(
                    "key {key}: {} was acknowledged, but {} began after it and read {list:?} \
                     without {value}",
                    describe(w),
                    describe(t)
                ),
            ));
        }
    }

    // The dependency graph over transactions that committed: acknowledged ones, and those of
    // unknown outcome whose appends someone read.
    let committed = |t: usize| match history[t].outcome {
        Outcome::Ok => true,
        Outcome::Fail => false,
        Outcome::Info => true,
    };
    let mut edges: BTreeMap<(usize, usize), Vec<Edge>> = BTreeMap::new();
    let mut add = |from: usize, to: usize, edge: Edge| {
        if from != to && committed(from) && committed(to) {
            let kinds = edges.entry((from, to)).or_default();
            if !kinds.contains(&edge) {
                kinds.push(edge);
            }
        }
    };
    for (key, versions) in &order {
        for pair in versions.windows(2) {
            if let (Some(&a), Some(&b)) =
                (writer.get(&(*key, pair[0])), writer.get(&(*key, pair[1])))
            {
                add(a, b, Edge::Ww);
            }
        }
    }
    for (t, key, list) in &external {
        let versions = &order[key];
        if let Some(&w) = list.last().and_then(|v| writer.get(&(*key, *v))) {
            add(w, *t, Edge::Wr);
        }
        if let Some(&w) = versions
            .get(list.len())
            .and_then(|v| writer.get(&(*key, *v)))
        {
            add(*t, w, Edge::Rw);
        }
    }
    let describe_cycle = |cycle: &[(usize, Edge)]| {
        cycle
            .iter()
            .map(|(t, e)| format!("{} -{}->", describe(*t), e.name()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let graph = |allowed: &[Edge]| {
        let mut g: HashMap<usize, Vec<(usize, Edge)>> = HashMap::new();
        for (&(a, b), kinds) in &edges {
            if let Some(&e) = kinds.iter().find(|k| allowed.contains(k)) {
                g.entry(a).or_default().push((b, e));
            }
        }
        g
    };
    let ww = graph(&[Edge::Ww]);
    let wwr = graph(&[Edge::Ww, Edge::Wr]);
    // An edge closes a cycle of a graph only inside one of its strongly connected components:
    // most histories have none, and no path is searched.
    let ww_components = components(&ww);
    let wwr_components = components(&wwr);
    let same = |c: &HashMap<usize, usize>, a: usize, b: usize| {
        c.get(&a).is_some() && c.get(&a) == c.get(&b)
    };
    let mut reported = 0;
    // G0, then G1c: a cycle through each edge that closes one.
    for (kind, g, comps) in [("G0", &ww, &ww_components), ("G1c", &wwr, &wwr_components)] {
        for (&a, outs) in g.iter() {
            for &(b, e) in outs {
                if !same(comps, a, b) {
                    continue;
                }
                if kind == "G1c" && e == Edge::Ww && same(&ww_components, a, b) {
                    continue;
                }
                if let Some(mut cycle) = path(g, b, a, |_| true) {
                    cycle.insert(0, (a, e));
                    if reported < 8 {
                        anomalies.push(Anomaly::new(kind, describe_cycle(&cycle)));
                    }
                    reported += 1;
                }
            }
        }
    }
    // G-single: an rw edge a -> b closed by a ww/wr path from b back to a. Such a path climbs
    // the topological order of the ww/wr graph with its cycles (G1c, reported above)
    // contracted, so the search from b never needs a node ranked above a, and none at all when
    // b ranks above a, as it usually does (a read that missed a later write).
    let rank = ranks(&wwr, &wwr_components);
    let rank_of = |t: usize| {
        rank.get(&wwr_components.get(&t).copied().unwrap_or(t))
            .copied()
            .unwrap_or(0)
    };
    for (&(a, b), kinds) in &edges {
        if !kinds.contains(&Edge::Rw) || rank_of(b) > rank_of(a) {
            continue;
        }
        let limit = rank_of(a);
        if let Some(mut cycle) = path(&wwr, b, a, |t| rank_of(t) <= limit) {
            cycle.insert(0, (a, Edge::Rw));
            if reported < 8 {
                anomalies.push(Anomaly::new("G-single", describe_cycle(&cycle)));
            }
            reported += 1;
        }
    }
    anomalies
}

/// A topological rank of every node of `graph` with each strongly connected component of
/// `components` contracted to its representative (Kahn's algorithm): an edge between two
/// contracted nodes always goes from a lower rank to a higher one. Keys are representatives.
fn ranks(
    graph: &HashMap<usize, Vec<(usize, Edge)>>,
    components: &HashMap<usize, usize>,
) -> HashMap<usize, usize> {
    let rep = |t: usize| components.get(&t).copied().unwrap_or(t);
    let mut outs: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut indegree: HashMap<usize, usize> = HashMap::new();
    for (&a, edges) in graph {
        indegree.entry(rep(a)).or_insert(0);
        for &(b, _) in edges {
            let (ra, rb) = (rep(a), rep(b));
            indegree.entry(rb).or_insert(0);
            if ra != rb {
                outs.entry(ra).or_default().push(rb);
                *indegree.get_mut(&rb).expect("inserted above") += 1;
            }
        }
    }
    let mut ready: Vec<usize> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    ready.sort_unstable();
    let mut queue = VecDeque::from(ready);
    let mut rank = HashMap::new();
    while let Some(n) = queue.pop_front() {
        rank.insert(n, rank.len());
        for &m in outs.get(&n).map(Vec::as_slice).unwrap_or_default() {
            let d = indegree.get_mut(&m).expect("every target has a degree");
            *d -= 1;
            if *d == 0 {
                queue.push_back(m);
            }
        }
    }
    rank
}

/// The strongly connected components of `graph` with more than one node (Tarjan's
/// algorithm, iterative): node → component number.
fn components(graph: &HashMap<usize, Vec<(usize, Edge)>>) -> HashMap<usize, usize> {
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut low: HashMap<usize, usize> = HashMap::new();
    let mut on_stack: HashSet<usize> = HashSet::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut result: HashMap<usize, usize> = HashMap::new();
    let mut counter = 0;
    let mut roots: Vec<usize> = graph.keys().copied().collect();
    roots.sort_unstable();
    for root in roots {
        if index.contains_key(&root) {
            continue;
        }
        // Frames: (node, position in its out-edges).
        let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
        index.insert(root, counter);
        low.insert(root, counter);
        counter += 1;
        stack.push(root);
        on_stack.insert(root);
        while let Some(&mut (node, ref mut at)) = frames.last_mut() {
            let outs = graph.get(&node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&(next, _)) = outs.get(*at) {
                *at += 1;
                if !index.contains_key(&next) {
                    index.insert(next, counter);
                    low.insert(next, counter);
                    counter += 1;
                    stack.push(next);
                    on_stack.insert(next);
                    frames.push((next, 0));
                } else if on_stack.contains(&next) {
                    let l = low[&node].min(index[&next]);
                    low.insert(node, l);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                let l = low[&parent].min(low[&node]);
                low.insert(parent, l);
            }
            if low[&node] == index[&node] {
                let mut members = Vec::new();
                loop {
                    let member = stack.pop().expect("the component's nodes are stacked");
                    on_stack.remove(&member);
                    members.push(member);
                    if member == node {
                        break;
                    }
                }
                if members.len() > 1 {
                    for member in members {
                        result.insert(member, node);
                    }
                }
            }
        }
    }
    result
}

/// A path from `from` to `to` in `graph` (breadth first): the nodes from `from` on, each with
/// the edge leaving it, ending just before `to`.
fn path(
    graph: &HashMap<usize, Vec<(usize, Edge)>>,
    from: usize,
    to: usize,
    allowed: impl Fn(usize) -> bool,
) -> Option<Vec<(usize, Edge)>> {
    let mut parent: HashMap<usize, (usize, Edge)> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut visited = HashSet::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            let mut steps = Vec::new();
            let mut at = to;
            while at != from {
                let (p, e) = parent[&at];
                steps.push((p, e));
                at = p;
            }
            steps.reverse();
            return Some(steps);
        }
        for &(next, e) in graph.get(&node).map(Vec::as_slice).unwrap_or_default() {
            if allowed(next) && visited.insert(next) {
                parent.insert(next, (node, e));
                queue.push_back(next);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn txn(process: u64, t: u64, outcome: Outcome, steps: Vec<Micro>) -> Op<Txn> {
        Op {
            process,
            invoke_ns: t,
            complete_ns: t + 5,
            outcome,
            value: steps,
        }
    }
    fn a(key: u64, value: i64) -> Micro {
        Micro::Append { key, value }
    }
    fn r(key: u64, list: &[i64]) -> Micro {
        Micro::Read {
            key,
            value: Some(list.to_vec()),
        }
    }
    fn kinds(history: &History<Txn>) -> Vec<String> {
        let mut kinds: Vec<String> = check(history).into_iter().map(|x| x.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
    use Outcome::{Fail, Info, Ok};

    #[test]
    fn a_serial_history_has_no_anomaly() {
        let history = vec![
            txn(1, 0, Ok, vec![a(1, 1), a(2, 1)]),
            txn(2, 10, Ok, vec![r(1, &[1]), a(1, 2)]),
            txn(1, 20, Ok, vec![r(1, &[1, 2]), r(2, &[1])]),
            txn(2, 30, Fail, vec![a(2, 9)]),
            txn(3, 40, Info, vec![a(2, 3)]),
            txn(1, 50, Ok, vec![r(2, &[1, 3]), a(2, 4), r(2, &[1, 3, 4])]),
        ];
        assert_eq!(
            kinds(&history),
            Vec::<String>::new(),
            "{:?}",
            check(&history)
        );
    }

    #[test]
    fn write_skew_is_allowed_at_snapshot_isolation() {
        // Each reads both keys empty, then appends to a different one: two rw edges.
        let history = vec![
            txn(1, 0, Ok, vec![r(1, &[]), r(2, &[]), a(1, 1)]),
            txn(2, 0, Ok, vec![r(1, &[]), r(2, &[]), a(2, 1)]),
            txn(3, 100, Ok, vec![r(1, &[1]), r(2, &[1])]),
        ];
        assert_eq!(kinds(&history), Vec::<String>::new());
    }

    #[test]
    fn aborted_and_intermediate_reads_are_found() {
        let g1a = vec![
            txn(1, 0, Fail, vec![a(1, 1)]),
            txn(2, 10, Ok, vec![r(1, &[1])]),
        ];
        assert_eq!(kinds(&g1a), ["G1a"]);
        let g1b = vec![
            txn(1, 0, Ok, vec![a(1, 1), a(1, 2)]),
            txn(2, 3, Ok, vec![r(1, &[1])]),
            txn(3, 20, Ok, vec![r(1, &[1, 2])]),
        ];
        assert!(
            kinds(&g1b).contains(&"G1b".to_string()),
            "{:?}",
            check(&g1b)
        );
    }

    #[test]
    fn circular_information_flow_is_found() {
        // G1c: T1 wrote x then read T2's y; T2 wrote y then read T1's x.
        let history = vec![
            txn(1, 0, Ok, vec![a(1, 1), r(2, &[1])]),
            txn(2, 0, Ok, vec![a(2, 1), r(1, &[1])]),
        ];
        assert!(
            kinds(&history).contains(&"G1c".to_string()),
            "{:?}",
            check(&history)
        );
    }

    #[test]
    fn write_cycles_are_g0() {
        // T1 appends before T2 on key 1, after it on key 2.
        let history = vec![
            txn(1, 0, Ok, vec![a(1, 1), a(2, 2)]),
            txn(2, 0, Ok, vec![a(1, 2), a(2, 1)]),
            txn(3, 100, Ok, vec![r(1, &[1, 2]), r(2, &[1, 2])]),
        ];
        assert!(
            kinds(&history).contains(&"G0".to_string()),
            "{:?}",
            check(&history)
        );
    }

    #[test]
    fn read_skew_is_g_single() {
        // T2 appends to both keys; T1 sees its append to key 1 but not to key 2.
        let history = vec![
            txn(1, 0, Ok, vec![a(1, 1), a(2, 1)]),
            txn(2, 10, Ok, vec![a(1, 2), a(2, 2)]),
            txn(3, 10, Ok, vec![r(1, &[1, 2]), r(2, &[1])]),
            txn(4, 100, Ok, vec![r(1, &[1, 2]), r(2, &[1, 2])]),
        ];
        assert_eq!(kinds(&history), ["G-single"], "{:?}", check(&history));
    }

    #[test]
    fn components_hold_exactly_the_cycles() {
        let mut g: HashMap<usize, Vec<(usize, Edge)>> = HashMap::new();
        for (a, b) in [(1, 2), (2, 3), (3, 1), (3, 4), (4, 5), (5, 4), (6, 1)] {
            g.entry(a).or_default().push((b, Edge::Ww));
        }
        let c = components(&g);
        assert_eq!(c[&1], c[&2]);
        assert_eq!(c[&2], c[&3]);
        assert_eq!(c[&4], c[&5]);
        assert_ne!(c[&1], c[&4]);
        assert!(!c.contains_key(&6));
    }

    #[test]
    fn lost_appends_and_bad_reads_are_found() {
        let lost = vec![
            txn(1, 0, Ok, vec![a(1, 1)]),
            txn(2, 10, Ok, vec![a(1, 2)]),
            txn(3, 100, Ok, vec![r(1, &[2])]),
        ];
        assert!(
            kinds(&lost).contains(&"lost-append".to_string()),
            "{:?}",
            check(&lost)
        );
        let bad = vec![
            txn(1, 0, Ok, vec![a(1, 1), a(1, 2)]),
            txn(2, 10, Ok, vec![r(1, &[2, 1])]),
            txn(3, 20, Ok, vec![r(1, &[1, 2, 7])]),
            txn(4, 30, Ok, vec![r(1, &[1, 1])]),
        ];
        let found = kinds(&bad);
        for kind in ["incompatible-order", "garbage-read", "duplicate-elements"] {
            assert!(found.contains(&kind.to_string()), "{kind}: {found:?}");
        }
        let internal = vec![txn(1, 0, Ok, vec![a(1, 1), r(1, &[])])];
        assert_eq!(kinds(&internal), ["internal"]);
    }
}
