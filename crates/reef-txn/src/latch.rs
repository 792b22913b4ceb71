//! Latches: short-lived, in-memory mutual exclusion of commands that touch the same keys.

use std::hash::{DefaultHasher, Hash, Hasher};

use parking_lot::{Mutex, MutexGuard};

/// A fixed array of mutexes ("slots"); a key maps to a slot by hash.
///
/// A command locks the slots of all its keys in ascending slot order, so two commands can never
/// wait for each other in a cycle, and commands on disjoint keys (almost always disjoint slots)
/// run concurrently.
pub struct Latches {
    slots: Box<[Mutex<()>]>,
}

/// The slots held by one command; they are released when the guard is dropped.
pub struct LatchGuard<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl Latches {
    /// Creates latches with `slots` slots (rounded up to a power of two, at least 1).
    pub fn new(slots: usize) -> Latches {
        let n = slots.max(1).next_power_of_two();
        Latches {
            slots: (0..n).map(|_| Mutex::new(())).collect(),
        }
    }

    fn slot(&self, key: &[u8]) -> usize {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        (hasher.finish() as usize) & (self.slots.len() - 1)
    }

    /// Blocks until the slots of all `keys` are held.
    pub fn acquire<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> LatchGuard<'_> {
        let mut slots: Vec<usize> = keys.into_iter().map(|key| self.slot(key)).collect();
        slots.sort_unstable();
        slots.dedup();
        LatchGuard {
            _guards: slots
                .into_iter()
                .map(|slot| self.slots[slot].lock())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn overlapping_commands_are_serialised() {
        let latches = Arc::new(Latches::new(16));
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (latches, inside) = (latches.clone(), inside.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        // Every command shares key "k", in different orders.
                        let other = format!("x{t}{i}");
                        let keys: Vec<&[u8]> = if i % 2 == 0 {
                            vec![b"k", other.as_bytes()]
                        } else {
                            vec![other.as_bytes(), b"k", b"k"]
                        };
                        let _guard = latches.acquire(keys);
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    }
}
