//! A per-channel pacing of outgoing messages (Slack allows about one per second per
//! channel, with short bursts), as a generic cell rate algorithm: each channel keeps
//! the time its next message is due; time is a parameter, so it is tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct ChannelLimiter {
    interval: Duration,
    /// How far ahead of its schedule a channel may run: `(burst - 1)` intervals.
    tolerance: Duration,
    due: Mutex<HashMap<String, Instant>>,
}

/// Beyond this many channels, stale entries are swept on the next reservation.
const SWEEP_AT: usize = 1024;

impl ChannelLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate_per_sec.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            due: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves the next slot for `channel` and returns how long to wait before sending.
    pub fn reserve(&self, channel: &str, now: Instant) -> Duration {
        let mut due = self
            .due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if due.len() >= SWEEP_AT {
            due.retain(|_, t| *t > now);
        }
        let theoretical = due
            .get(channel)
            .copied()
            .filter(|t| *t > now)
            .unwrap_or(now);
        let wait = theoretical.saturating_duration_since(now + self.tolerance);
        due.insert(channel.to_owned(), theoretical + self.interval);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_pass_then_one_per_interval() {
        let l = ChannelLimiter::new(1, 3);
        let t0 = Instant::now();
        let waits: Vec<_> = (0..5).map(|_| l.reserve("C1", t0)).collect();
        assert_eq!(waits, [0, 0, 0, 1, 2].map(Duration::from_secs).to_vec());
        // Another channel is independent.
        assert_eq!(l.reserve("C2", t0), Duration::ZERO);
    }

    #[test]
    fn the_budget_refills_with_time() {
        let l = ChannelLimiter::new(1, 1);
        let t0 = Instant::now();
        assert_eq!(l.reserve("C1", t0), Duration::ZERO);
        assert_eq!(l.reserve("C1", t0), Duration::from_secs(1));
        assert_eq!(l.reserve("C1", t0 + Duration::from_secs(5)), Duration::ZERO);
    }
}
