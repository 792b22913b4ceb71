//! The register workload: each key holds one integer register that clients read, write and
//! compare-and-set. The history of every key must be linearizable: there is one order of the
//! operations that took effect, consistent with real time (an operation that completed before
//! another was invoked comes first), in which every read returns the latest write.
//!
//! Linearizability is local, so each key is checked on its own, by Wing and Gong's search with
//! Lowe's memoization: walk the operations in invocation order, linearize any operation whose
//! effect the register allows next, backtrack when an operation's completion is reached before
//! it was linearized, and never revisit a (set of linearized operations, register value) pair.
//! An operation with an unknown outcome completes at infinity and may stay unlinearized (it
//! never took effect); a failed operation never took effect and is left out.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::Anomaly;
use crate::history::{History, Op, Outcome};

/// A register operation on `key`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RegisterOp {
    /// Reads the register; `value` is what it read once completed (`Some(None)`: no value yet).
    Read {
        /// The key.
        key: u64,
        /// What was read.
        value: Option<Option<i64>>,
    },
    /// Writes `value`.
    Write {
        /// The key.
        key: u64,
        /// The value written.
        value: i64,
    },
    /// Sets the register to `to` if it holds `from`; `swapped` says whether it did, once known.
    Cas {
        /// The key.
        key: u64,
        /// The value expected.
        from: i64,
        /// The value set.
        to: i64,
        /// Whether the swap happened.
        swapped: Option<bool>,
    },
}

impl RegisterOp {
    fn key(&self) -> u64 {
        match self {
            RegisterOp::Read { key, .. }
            | RegisterOp::Write { key, .. }
            | RegisterOp::Cas { key, .. } => *key,
        }
    }
}

/// The register's value: `None` before the first write.
type State = Option<i64>;

/// An operation as the search sees it.
#[derive(Clone, Copy, Debug)]
enum Effect {
    /// Must see this value.
    Read(State),
    /// Sets the value.
    Write(i64),
    /// Swapped: must see `from`, sets `to`.
    Swap(i64, i64),
    /// Did not swap: must see anything but `from`.
    NoSwap(i64),
}

impl Effect {
    /// The register after this operation, if the operation may come next in state `state`.
    fn step(self, state: State) -> Option<State> {
        match self {
            Effect::Read(seen) => (seen == state).then_some(state),
            Effect::Write(v) => Some(Some(v)),
            Effect::Swap(from, to) => (state == Some(from)).then_some(Some(to)),
            Effect::NoSwap(from) => (state != Some(from)).then_some(state),
        }
    }
}

/// One operation of one key's history, for the search.
#[derive(Clone, Copy, Debug)]
struct Call {
    /// Its index in the whole history.
    index: usize,
    invoke: u64,
    /// `u64::MAX` for an unknown outcome.
    complete: u64,
    effect: Effect,
}

/// How far the search goes before it gives up on one key (each step linearizes or backtracks
/// one operation).
const SEARCH_BUDGET: u64 = 20_000_000;

/// Checks every key's history; an anomaly names the key and the operation no linearization
/// could place.
pub fn check(history: &History<RegisterOp>) -> Vec<Anomaly> {
    let mut keys: BTreeMap<u64, Vec<Call>> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        if let Some(call) = to_call(index, op) {
            keys.entry(op.value.key()).or_default().push(call);
        }
    }
    let mut anomalies = Vec::new();
    for (key, calls) in keys {
        match search(&calls) {
            Verdict::Linearizable => {}
            Verdict::Stuck(index) => {
                let op = &history[index];
                anomalies.push(Anomaly::new(
                    "nonlinearizable",
                    format!(
                        "key {key}: no order of its {} operations places {:?} (process {}, \
                         invoked {} ns, completed {} ns) consistently with real time",
                        calls.len(),
                        op.value,
                        op.process,
                        op.invoke_ns,
                        op.complete_ns
                    ),
                ));
            }
            Verdict::GaveUp => anomalies.push(Anomaly::new(
                "unchecked",
                format!(
                    "key {key}: the search gave up after {SEARCH_BUDGET} steps over {} \
                     operations; use fewer operations per key",
                    calls.len()
                ),
            )),
        }
    }
    anomalies
}

fn to_call(index: usize, op: &Op<RegisterOp>) -> Option<Call> {
    let complete = match op.outcome {
        Outcome::Fail => return None,
        Outcome::Ok => op.complete_ns,
        Outcome::Info => u64::MAX,
    };
    let effect = match (&op.value, op.outcome) {
        (RegisterOp::Read { value: Some(v), .. }, Outcome::Ok) => Effect::Read(*v),
        // An unanswered read constrains nothing.
        (RegisterOp::Read { .. }, _) => return None,
        (RegisterOp::Write { value, .. }, _) => Effect::Write(*value),
        (
            RegisterOp::Cas {
                from,
                swapped: Some(false),
                ..
            },
            Outcome::Ok,
        ) => Effect::NoSwap(*from),
        // A swap that may have happened is linearized only where it did.
        (RegisterOp::Cas { from, to, .. }, _) => Effect::Swap(*from, *to),
    };
    Some(Call {
        index,
        invoke: op.invoke_ns,
        complete,
        effect,
    })
}

enum Verdict {
    Linearizable,
    /// No linearization: the operation whose completion the deepest attempt could not pass.
    Stuck(usize),
    GaveUp,
}

const NIL: usize = usize::MAX;

/// Wing–Gong–Lowe search over one key's operations.
fn search(calls: &[Call]) -> Verdict {
    // Events: each operation's invocation and completion, in time order (invocations first
    // on a tie, so touching operations count as concurrent). Slot 0 is the list's head.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(calls.len() * 2);
    for (i, c) in calls.iter().enumerate() {
        events.push((c.invoke, false, i));
        events.push((c.complete, true, i));
    }
    events.sort_by_key(|&(time, is_return, i)| (time, is_return, i));
    let n = events.len();
    // Slot s (1..=n) holds events[s - 1]; `partner` links an invocation and its completion.
    let mut next: Vec<usize> = (0..=n).map(|s| if s < n { s + 1 } else { NIL }).collect();
    let mut prev: Vec<usize> = (0..=n).map(|s| s.wrapping_sub(1)).collect();
    let mut partner = vec![0usize; n + 1];
    let mut invocation_of = vec![0usize; calls.len()];
    for (s, &(_, is_return, i)) in events.iter().enumerate() {
        if !is_return {
            invocation_of[i] = s + 1;
        }
    }
    for (s, &(_, is_return, i)) in events.iter().enumerate() {
        if is_return {
            partner[s + 1] = invocation_of[i];
            partner[invocation_of[i]] = s + 1;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, s: usize| {
        next[prev[s]] = next[s];
        if next[s] != NIL {
            prev[next[s]] = prev[s];
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, s: usize| {
        next[prev[s]] = s;
        if next[s] != NIL {
            prev[next[s]] = s;
        }
    };

    let words = calls.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut entry = next[0];
    let mut deepest = (0usize, 0usize);
    let mut steps = 0u64;
    loop {
        steps += 1;
        if steps > SEARCH_BUDGET {
            return Verdict::GaveUp;
        }
        if entry == NIL {
            return Verdict::Linearizable;
        }
        let (_, is_return, i) = events[entry - 1];
        if !is_return {
            if let Some(after) = calls[i].effect.step(state) {
                linearized[i / 64] |= 1 << (i % 64);
                if seen.insert((linearized.clone(), after)) {
                    stack.push((entry, state));
                    state = after;
                    // Lifts the operation out of the list: its invocation, then completion.
                    unlink(&mut next, &mut prev, entry);
                    unlink(&mut next, &mut prev, partner[entry]);
                    entry = next[0];
                    continue;
                }
                linearized[i / 64] &= !(1 << (i % 64));
            }
            entry = next[entry];
            continue;
        }
        // A completion reached before its operation was linearized.
        if calls[i].complete == u64::MAX {
            // Only unknown outcomes are left: they may never have taken effect.
            return Verdict::Linearizable;
        }
        if stack.len() >= deepest.0 {
            deepest = (stack.len(), calls[i].index);
        }
        let Some((top, before)) = stack.pop() else {
            return Verdict::Stuck(deepest.1);
        };
        let j = events[top - 1].2;
        linearized[j / 64] &= !(1 << (j % 64));
        state = before;
        relink(&mut next, &mut prev, partner[top]);
        relink(&mut next, &mut prev, top);
        entry = next[top];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        process: u64,
        invoke: u64,
        complete: u64,
        outcome: Outcome,
        value: RegisterOp,
    ) -> Op<RegisterOp> {
        Op {
            process,
            invoke_ns: invoke,
            complete_ns: complete,
            outcome,
            value,
        }
    }
    fn w(value: i64) -> RegisterOp {
        RegisterOp::Write { key: 1, value }
    }
    fn r(value: Option<i64>) -> RegisterOp {
        RegisterOp::Read {
            key: 1,
            value: Some(value),
        }
    }
    fn cas(from: i64, to: i64, swapped: Option<bool>) -> RegisterOp {
        RegisterOp::Cas {
            key: 1,
            from,
            to,
            swapped,
        }
    }
    use Outcome::{Fail, Info, Ok};

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let history = vec![
            op(1, 0, 10, Ok, w(1)),
            // Overlaps the write: may read before or after it.
            op(2, 5, 15, Ok, r(None)),
            op(3, 6, 16, Ok, r(Some(1))),
            op(1, 20, 30, Ok, cas(1, 2, Some(true))),
            op(2, 21, 31, Ok, cas(1, 3, Some(false))),
            op(3, 40, 50, Ok, r(Some(2))),
        ];
        assert!(check(&history).is_empty(), "{:?}", check(&history));
    }

    #[test]
    fn a_stale_read_is_found() {
        let history = vec![
            op(1, 0, 10, Ok, w(1)),
            op(1, 20, 30, Ok, w(2)),
            // Invoked after the second write completed, yet it reads the first.
            op(2, 40, 50, Ok, r(Some(1))),
        ];
        let anomalies = check(&history);
        assert_eq!(anomalies.len(), 1, "{anomalies:?}");
        assert_eq!(anomalies[0].kind, "nonlinearizable");
    }

    #[test]
    fn two_swaps_from_one_value_cannot_both_succeed() {
        let history = vec![
            op(1, 0, 10, Ok, w(0)),
            op(1, 20, 30, Ok, cas(0, 1, Some(true))),
            op(2, 21, 31, Ok, cas(0, 2, Some(true))),
        ];
        assert_eq!(check(&history).len(), 1);
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_have_taken_effect() {
        let taken = vec![op(1, 0, 10, Info, w(7)), op(2, 100, 110, Ok, r(Some(7)))];
        assert!(check(&taken).is_empty());
        let not_taken = vec![op(1, 0, 10, Info, w(7)), op(2, 100, 110, Ok, r(None))];
        assert!(check(&not_taken).is_empty());
        // A failed write never happened: reading its value is an anomaly.
        let failed = vec![op(1, 0, 10, Fail, w(7)), op(2, 100, 110, Ok, r(Some(7)))];
        assert_eq!(check(&failed).len(), 1);
        // An unknown write took effect at most once, and not before it was invoked.
        let too_early = vec![op(2, 0, 5, Ok, r(Some(7))), op(1, 10, 20, Info, w(7))];
        assert_eq!(check(&too_early).len(), 1);
    }

    #[test]
    fn keys_are_checked_apart() {
        let mut history = vec![
            op(1, 0, 10, Ok, RegisterOp::Write { key: 2, value: 5 }),
            op(
                2,
                20,
                30,
                Ok,
                RegisterOp::Read {
                    key: 3,
                    value: Some(None),
                },
            ),
        ];
        assert!(check(&history).is_empty());
        history.push(op(
            2,
            40,
            50,
            Ok,
            RegisterOp::Read {
                key: 2,
                value: Some(Some(4)),
            },
        ));
        assert_eq!(check(&history).len(), 1);
        assert!(check(&history)[0].detail.starts_with("key 2:"));
    }

    /// A concurrent history that is linearizable by construction: each operation takes
    /// effect at a chosen point inside its interval, and reads return what the register held
    /// there.
    fn concurrent_history(seed: u64, processes: u64, per_process: u64) -> History<RegisterOp> {
        let mut rng = seed | 1;
        let mut next = move |bound: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % bound
        };
        // (effect point, process, invoke, complete, op kind 0 read / 1 write / 2 cas, value)
        let mut planned = Vec::new();
        for p in 0..processes {
            let mut t = next(50);
            for _ in 0..per_process {
                let invoke = t;
                let complete = invoke + 1 + next(200);
                let point = invoke + next(complete - invoke);
                planned.push((point, p, invoke, complete, next(3), next(5) as i64));
                t = complete + 1 + next(30);
            }
        }
        planned.sort();
        let mut state: State = None;
        let mut history = Vec::new();
        for (_, p, invoke, complete, kind, v) in planned {
            let value = match kind {
                0 => r(state),
                1 => {
                    state = Some(v);
                    w(v)
                }
                _ => {
                    let swapped = state == Some(v);
                    if swapped {
                        state = Some(v + 1);
                    }
                    cas(v, v + 1, Some(swapped))
                }
            };
            history.push(op(p, invoke, complete, Ok, value));
        }
        history.sort_by_key(|o| o.invoke_ns);
        history
    }

    #[test]
    fn concurrent_linearizable_histories_pass_and_a_planted_read_fails() {
        for seed in 1..40 {
            let mut history = concurrent_history(seed, 5, 30);
            assert!(
                check(&history).is_empty(),
                "seed {seed}: {:?}",
                check(&history)
            );
            // A read of a value no write ever wrote.
            let at = history
                .iter()
                .position(|o| matches!(o.value, RegisterOp::Read { .. }))
                .unwrap();
            history[at].value = r(Some(99));
            assert_eq!(check(&history).len(), 1, "seed {seed}");
        }
    }
}
