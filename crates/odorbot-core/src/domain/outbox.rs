//! The outbox's decisions, as values: which message goes first, and when a message that
//! Slack did not take is tried again.

use std::time::Duration;

/// What a message is, for the order of sends within Slack's per-channel pacing: a page to
/// a person goes before a status update, which goes before the announcement of one more
/// incident and everything else, which go before findings. Within one thread a message
/// waits only for the older ones at least as urgent: a page overtakes the thread's notes,
/// never an earlier page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Pings, pages and escalations: someone must act.
    Page,
    /// The periodic status updates.
    Status,
    /// Root messages, notes, cards, replies: the default.
    Routine,
    /// Investigation findings and recovery offers: long, and read after the page.
    Findings,
}

impl Priority {
    /// The stored rank; lower goes first.
    pub fn rank(self) -> i64 {
        match self {
            Self::Page => 0,
            Self::Status => 1,
            Self::Routine => 2,
            Self::Findings => 3,
        }
    }

    /// Every priority, most urgent first.
    pub const ALL: [Self; 4] = [Self::Page, Self::Status, Self::Routine, Self::Findings];

    /// The name in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Status => "status",
            Self::Routine => "routine",
            Self::Findings => "findings",
        }
    }

    /// A stored rank; an unknown one (a newer replica's) is routine.
    pub fn from_rank(rank: i64) -> Self {
        match rank {
            0 => Self::Page,
            1 => Self::Status,
            3 => Self::Findings,
            _ => Self::Routine,
        }
    }
}

/// The longest an outbox message waits between attempts on its own account.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How long to wait before the next attempt, after `attempts` failed ones: doubling from
/// one second up to [`MAX_BACKOFF`], and never sooner than Slack's `Retry-After`, which
/// may be longer than that ceiling (trying earlier only earns another 429).
pub fn retry_wait(attempts: i64, retry_after: Option<Duration>) -> Duration {
    doubling(attempts, Duration::from_secs(1), MAX_BACKOFF).max(retry_after.unwrap_or_default())
}

/// `first` doubled once per failed attempt (`attempts`, none below zero), up to `ceiling`.
pub fn doubling(attempts: i64, first: Duration, ceiling: Duration) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(attempts.clamp(0, 31) as u32))
        .min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_rank_first_and_ranks_round_trip() {
        let all = [
            Priority::Page,
            Priority::Status,
            Priority::Routine,
            Priority::Findings,
        ];
        let mut sorted = all;
        sorted.sort_by_key(|p| std::cmp::Reverse(p.rank()));
        sorted.sort_by_key(|p| p.rank());
        assert_eq!(sorted, all);
        for p in all {
            assert_eq!(Priority::from_rank(p.rank()), p);
        }
        assert_eq!(Priority::from_rank(99), Priority::Routine);
    }

    #[test]
    fn failed_attempts_back_off_exponentially_up_to_a_ceiling() {
        for (attempts, secs) in [
            (-1, 1),
            (0, 1),
            (1, 2),
            (3, 8),
            (8, 256),
            (9, 300),
            (60, 300),
        ] {
            assert_eq!(
                retry_wait(attempts, None),
                Duration::from_secs(secs),
                "{attempts}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_even_beyond_the_backoff_ceiling() {
        let s = Duration::from_secs;
        assert_eq!(retry_wait(0, Some(s(30))), s(30));
        assert_eq!(retry_wait(9, Some(s(900))), s(900));
        // A short Retry-After does not make a long backoff shorter.
        assert_eq!(retry_wait(5, Some(s(1))), s(32));
    }
}
