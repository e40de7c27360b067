//! Row and request ids that stay unique across processes sharing one store.
//!
//! An id is `{prefix}{ms:013}-{node}-{seq:08x}`: the creation time in Unix milliseconds,
//! this process's node (48 bits drawn from the operating system's random source at
//! start), and a per-process sequence. The process id is deliberately not part of it:
//! two replicas in containers are both PID 1. Ids sort by creation time, and within one
//! process by creation order (the outbox relies on that to keep a thread's messages in
//! order); they are ASCII lowercase letters, digits and `-`, so they fit Slack's
//! `action_id` and `value` fields and the `:`-separated button ids.

use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;

/// Random bits per node: two live processes share a node with odds of 2^-48, and even
/// then collide only on the same millisecond and sequence number.
const NODE_BITS: u32 = 48;

/// Makes ids for one process (or, in tests, one simulated process).
#[derive(Debug)]
pub struct IdGen {
    node: u64,
    seq: AtomicU64,
}

impl IdGen {
    /// A generator with a fixed node, for tests that need to know it.
    pub const fn with_node(node: u64) -> Self {
        Self {
            node: node & ((1 << NODE_BITS) - 1),
            seq: AtomicU64::new(0),
        }
    }

    /// A generator with a node from the operating system's random source.
    pub fn from_os() -> Self {
        // getrandom is already a dependency (secret rotation); should the OS refuse,
        // std's RandomState is seeded from the same source by other means.
        let node = getrandom::u64().unwrap_or_else(|_| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(Timestamp::now().as_nanosecond().unsigned_abs());
            h.finish()
        });
        Self::with_node(node)
    }

    /// This process's generator; every id the process makes comes from it.
    pub fn process() -> &'static IdGen {
        static PROCESS: LazyLock<IdGen> = LazyLock::new(IdGen::from_os);
        &PROCESS
    }

    /// The node, as it appears in ids: also a name for this process in leases.
    pub fn node(&self) -> String {
        format!("{:012x}", self.node)
    }

    /// A new id created at `at`, starting with `prefix`.
    pub fn next(&self, prefix: &str, at: Timestamp) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let ms = at.as_millisecond().max(0);
        let mut id = String::with_capacity(prefix.len() + 36);
        id.push_str(prefix);
        let _ = write!(id, "{ms:013}-{:012x}-{seq:08x}", self.node);
        id
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap()
    }

    #[test]
    fn two_processes_with_the_same_pid_and_clock_never_collide() {
        // Two replicas started as PID 1 in the same millisecond, each making ids as fast
        // as it can: their generators differ only in what the OS gave each at start.
        let (a, b) = (IdGen::from_os(), IdGen::from_os());
        let now = at(1_800_000_000_000);
        let from_a: HashSet<String> = (0..5000).map(|_| a.next("req", now)).collect();
        let from_b: HashSet<String> = (0..5000).map(|_| b.next("req", now)).collect();
        assert_eq!((from_a.len(), from_b.len()), (5000, 5000));
        assert!(from_a.is_disjoint(&from_b));
    }

    #[test]
    fn the_node_is_what_keeps_processes_apart() {
        // Same node, same clock, same sequence: the same id. So nothing else (pid,
        // thread) is needed, and the node must differ, which from_os makes it.
        let now = at(1_800_000_000_000);
        assert_eq!(
            IdGen::with_node(7).next("cl", now),
            IdGen::with_node(7).next("cl", now)
        );
        assert_ne!(
            IdGen::with_node(7).next("cl", now),
            IdGen::with_node(8).next("cl", now)
        );
    }

    #[test]
    fn ids_sort_by_time_then_by_creation_within_a_process() {
        let g = IdGen::with_node(0xabc);
        let ids: Vec<String> = [5, 5, 5, 1_000, 1_000, 1_799_999_999_999, 1_800_000_000_000]
            .into_iter()
            .map(|ms| g.next("", at(ms)))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        // And across processes, time still orders them.
        assert!(IdGen::with_node(u64::MAX).next("", at(1)) < g.next("", at(2)));
    }

    #[test]
    fn ids_are_short_and_safe_for_slack_fields_and_button_ids() {
        let id = IdGen::with_node(u64::MAX).next("req", at(1_800_000_000_000));
        assert_eq!(id, "req1800000000000-ffffffffffff-00000000");
        assert!(id.len() <= 40);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id}"
        );
        assert_eq!(IdGen::with_node(0x1f).node(), "00000000001f");
    }
}
