//! The outbox's decisions, as values: when a message that Slack did not take is tried again.

use std::time::Duration;

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
