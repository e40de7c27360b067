//! The reply queue's decisions, as values: whether a reply to a slash command or a click
//! is tried again through its `response_url`, when, or given up.
//!
//! A `response_url` takes up to five POSTs within 30 minutes of Slack issuing it. Each
//! queued reply is one POST when it goes through; a failed attempt is tried again while
//! the URL lives, and given up on a refusal (any 4xx but 429: a bad or used-up URL stays
//! bad). A timed-out attempt may have reached Slack and used one of the five; should a
//! retry then find the URL used up, Slack refuses it and that is the end of it too.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::outbox::doubling;

/// How long Slack accepts POSTs to a `response_url` after issuing it.
pub const RESPONSE_URL_LIFE: Duration = Duration::from_secs(30 * 60);
/// The first wait after a failed attempt. Shorter than the outbox's: someone is looking
/// at the screen for this answer.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest a reply waits between attempts on its own account; short, for the same
/// reason, and far below the URL's life, so a long outage costs few tries of the URL.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How one attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Slack took the reply.
    Delivered,
    /// Slack refused it for good (a 4xx other than 429, an unusable URL).
    Refused,
    /// Anything passing: 5xx, 429, timeout, network. `retry_after` is Slack's
    /// `Retry-After` when it rate limited the attempt.
    Failed { retry_after: Option<Duration> },
}

/// Why a reply is dropped without reaching Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    Refused,
    /// The URL is dead (or will be before the next attempt is due).
    Expired,
}

/// What becomes of a reply after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It reached Slack: it leaves the queue.
    Done,
    /// It leaves the queue undelivered; worth a warning.
    GiveUp(GiveUp),
    /// It is tried again at this time.
    RetryAt(Timestamp),
}

/// When the `response_url` issued at `issued` stops taking POSTs.
pub fn expires_at(issued: Timestamp) -> Timestamp {
    issued
        .checked_add(SignedDuration::from_secs(RESPONSE_URL_LIFE.as_secs() as i64))
        .unwrap_or(Timestamp::MAX)
}

/// Whether a reply whose URL was issued at `issued` is still worth an attempt at `now`.
pub fn alive(issued: Timestamp, now: Timestamp) -> bool {
    now < expires_at(issued)
}

/// How long to wait before the next attempt, after `attempts` failed ones: doubling from
/// [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`], never sooner than Slack's `Retry-After`
/// (trying earlier only earns another 429).
pub fn retry_wait(attempts: i64, retry_after: Option<Duration>) -> Duration {
    doubling(attempts, FIRST_BACKOFF, MAX_BACKOFF).max(retry_after.unwrap_or_default())
}

/// What to do after `attempt`, the reply's attempt number `attempts + 1`, made at `now`
/// for a URL issued at `issued`.
pub fn after(attempt: Attempt, attempts: i64, issued: Timestamp, now: Timestamp) -> Next {
    match attempt {
        Attempt::Delivered => Next::Done,
        Attempt::Refused => Next::GiveUp(GiveUp::Refused),
        Attempt::Failed { retry_after } => {
            let wait = SignedDuration::try_from(retry_wait(attempts, retry_after))
                .unwrap_or(SignedDuration::MAX);
            match now.checked_add(wait) {
                Ok(at) if alive(issued, at) => Next::RetryAt(at),
                _ => Next::GiveUp(GiveUp::Expired),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    const FAILED: Attempt = Attempt::Failed { retry_after: None };

    #[test]
    fn a_failed_reply_backs_off_from_half_a_second_up_to_thirty() {
        let ms = Duration::from_millis;
        for (attempts, wait) in [
            (-1, ms(500)),
            (0, ms(500)),
            (1, ms(1000)),
            (3, ms(4000)),
            (5, ms(16_000)),
            (6, ms(30_000)),
            (40, ms(30_000)),
        ] {
            assert_eq!(retry_wait(attempts, None), wait, "{attempts}");
        }
    }

    #[test]
    fn retry_after_is_honoured_beyond_the_ceiling_but_never_shortens_the_backoff() {
        let s = Duration::from_secs;
        assert_eq!(retry_wait(0, Some(s(3))), s(3));
        assert_eq!(retry_wait(9, Some(s(120))), s(120));
        assert_eq!(retry_wait(5, Some(s(1))), s(16));
    }

    #[test]
    fn a_failed_attempt_is_retried_while_the_url_lives() {
        let issued = at(0);
        assert_eq!(
            after(FAILED, 0, issued, at(1)),
            Next::RetryAt(Timestamp::from_millisecond(at(1).as_millisecond() + 500).unwrap())
        );
        assert_eq!(after(FAILED, 9, issued, at(600)), Next::RetryAt(at(630)));
        let limited = Attempt::Failed {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(after(limited, 0, issued, at(10)), Next::RetryAt(at(70)));
    }

    #[test]
    fn a_retry_that_would_fall_after_the_urls_thirty_minutes_is_given_up() {
        let issued = at(0);
        // The last retry that still fits, then the first that does not.
        assert_eq!(after(FAILED, 9, issued, at(1769)), Next::RetryAt(at(1799)));
        assert_eq!(
            after(FAILED, 9, issued, at(1770)),
            Next::GiveUp(GiveUp::Expired)
        );
        // A Retry-After beyond the URL's life: waiting it out would be pointless.
        let limited = Attempt::Failed {
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(
            after(limited, 0, issued, at(5)),
            Next::GiveUp(GiveUp::Expired)
        );
        assert!(alive(issued, at(1799)));
        assert!(!alive(issued, at(1800)));
    }

    #[test]
    fn delivery_ends_it_and_a_refusal_gives_it_up_at_once() {
        let issued = at(0);
        assert_eq!(after(Attempt::Delivered, 3, issued, at(9)), Next::Done);
        assert_eq!(
            after(Attempt::Refused, 0, issued, at(1)),
            Next::GiveUp(GiveUp::Refused)
        );
        // Even an expired URL's successful attempt counts as delivered.
        assert_eq!(after(Attempt::Delivered, 0, issued, at(4000)), Next::Done);
    }
}
