//! When a socket-mode slot opens its next connection, decided from why the last one
//! ended. Pure: the caller passes the attempt count and the jitter in, so the policy is
//! tested without clocks or randomness.
//!
//! Slack's reasons, as its socket-mode documentation gives them: `refresh_requested` and
//! `warning` mean "replace this connection soon", so the replacement opens at once (the
//! old one keeps acknowledging until Slack closes it); `too_many_websockets` means the app
//! already has Slack's maximum open, so opening another at once would only be refused
//! again; `link_disabled` means socket mode is off for the app and no reconnect can help.
//! Drops and failed connects back off exponentially with jitter, so several replicas
//! (or slots) that lost Slack together do not return in lockstep.

use std::time::Duration;

/// The first backoff step; it doubles per consecutive failure up to the configured cap.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// How a slot's connection (or its attempt to connect) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `disconnect` with `refresh_requested` or `warning`: Slack wants a replacement.
    Refresh,
    /// `disconnect` with `too_many_websockets`: the app is at Slack's connection limit.
    TooManyWebsockets,
    /// `disconnect` with `link_disabled`: socket mode was turned off for the app.
    LinkDisabled,
    /// A `disconnect` with a reason odorbot does not know: treated as a drop.
    UnknownReason,
    /// The socket closed, stopped answering pings or failed to read or write.
    Dropped,
    /// `apps.connections.open` or the WebSocket handshake failed.
    ConnectFailed,
}

/// What the slot does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Open the next connection now.
    Now,
    /// Wait this long, then open the next connection.
    After(Duration),
    /// Do not reconnect.
    Stop,
}

/// The decision, and the failure count to carry into the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub next: Next,
    /// Consecutive failures so far; 0 after a normal end.
    pub attempt: u32,
}

/// A connection open at least this long had worked: its drop starts the backoff afresh.
/// Shorter lives keep counting, so a connection that says `hello` and drops at once
/// cannot make a tight reconnect loop.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Decides what follows `ended`, after `attempt` consecutive failures before it.
/// `open_for` is how long the connection was open after Slack's `hello` (`None`: it
/// never got one). `too_many_websockets` always keeps counting, however long the
/// connection lived. `jitter` in `[0, 1)` picks the wait within the upper half of the
/// step (equal jitter), so it never collapses to zero yet spreads reconnects out.
pub fn plan(
    ended: Ended,
    attempt: u32,
    open_for: Option<Duration>,
    max_backoff: Duration,
    jitter: f64,
) -> Plan {
    let stable = open_for.is_some_and(|d| d >= STABLE_AFTER);
    let failures = match ended {
        Ended::Refresh => {
            return Plan {
                next: Next::Now,
                attempt: 0,
            };
        }
        Ended::LinkDisabled => {
            return Plan {
                next: Next::Stop,
                attempt,
            };
        }
        Ended::TooManyWebsockets => attempt,
        Ended::Dropped | Ended::UnknownReason if stable => 0,
        Ended::Dropped | Ended::UnknownReason | Ended::ConnectFailed => attempt,
    };
    Plan {
        next: Next::After(backoff(failures, max_backoff, jitter)),
        attempt: failures.saturating_add(1),
    }
}

/// Step `attempt` of the exponential backoff (500 ms, 1 s, 2 s, … capped at `max`),
/// jittered into its upper half.
fn backoff(attempt: u32, max: Duration, jitter: f64) -> Duration {
    let max = max.max(FIRST_BACKOFF);
    let step = FIRST_BACKOFF
        .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    step / 2 + step.mul_f64(jitter / 2.0)
}

/// A jitter value in `[0, 1)` from the operating system's randomness; 0.5 if it has none.
pub fn random_jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(30);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn refresh_and_warning_open_the_replacement_at_once_and_reset_the_count() {
        for attempt in [0, 3, 40] {
            assert_eq!(
                plan(Ended::Refresh, attempt, Some(ms(10)), MAX, 0.7),
                Plan {
                    next: Next::Now,
                    attempt: 0
                }
            );
        }
    }

    #[test]
    fn link_disabled_stops_reconnecting() {
        let lived = Some(STABLE_AFTER * 10);
        assert_eq!(
            plan(Ended::LinkDisabled, 2, lived, MAX, 0.0).next,
            Next::Stop
        );
        assert_eq!(
            plan(Ended::LinkDisabled, 0, None, MAX, 0.9).next,
            Next::Stop
        );
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        // (attempt, lowest wait at jitter 0, wait at jitter just under 1)
        let table = [
            (0, ms(250), ms(500)),
            (1, ms(500), ms(1000)),
            (2, ms(1000), ms(2000)),
            (5, ms(8000), ms(16_000)),
            (6, ms(15_000), ms(30_000)),
            (20, ms(15_000), ms(30_000)),
            (u32::MAX, ms(15_000), ms(30_000)),
        ];
        for ended in [Ended::ConnectFailed, Ended::TooManyWebsockets] {
            for (attempt, low, high) in table {
                let at = |j| plan(ended, attempt, None, MAX, j);
                assert_eq!(
                    at(0.0).next,
                    Next::After(low),
                    "{ended:?} attempt {attempt}"
                );
                let Next::After(top) = at(0.999_999).next else {
                    panic!("{ended:?} must wait");
                };
                assert!(
                    top <= high && top > high - ms(1),
                    "{ended:?} {attempt}: {top:?}"
                );
                assert_eq!(at(0.0).attempt, attempt.saturating_add(1));
            }
        }
    }

    #[test]
    fn too_many_websockets_keeps_growing_however_long_the_connection_was_open() {
        let mut attempt = 0;
        let mut waits = Vec::new();
        for _ in 0..4 {
            let p = plan(
                Ended::TooManyWebsockets,
                attempt,
                Some(STABLE_AFTER * 2),
                MAX,
                0.0,
            );
            attempt = p.attempt;
            waits.push(p.next);
        }
        assert_eq!(
            waits,
            [ms(250), ms(500), ms(1000), ms(2000)].map(Next::After)
        );
    }

    #[test]
    fn a_drop_after_a_working_connection_starts_the_backoff_afresh() {
        for ended in [Ended::Dropped, Ended::UnknownReason] {
            let p = plan(ended, 7, Some(STABLE_AFTER), MAX, 0.0);
            assert_eq!(
                p,
                Plan {
                    next: Next::After(ms(250)),
                    attempt: 1
                },
                "{ended:?}"
            );
            // One that never said hello, or dropped soon after, keeps counting.
            for open_for in [None, Some(STABLE_AFTER - ms(1))] {
                let p = plan(ended, 7, open_for, MAX, 0.0);
                assert_eq!(p.attempt, 8, "{ended:?}");
                assert_eq!(p.next, Next::After(MAX / 2), "{ended:?}");
            }
        }
    }

    #[test]
    fn a_cap_below_the_first_step_and_odd_jitter_stay_sane() {
        assert_eq!(
            plan(Ended::Dropped, 9, None, ms(100), 0.0).next,
            Next::After(ms(250))
        );
        for j in [f64::NAN, -3.0, 7.0, f64::INFINITY] {
            let Next::After(d) = plan(Ended::ConnectFailed, 1, None, MAX, j).next else {
                panic!()
            };
            assert!((ms(500)..=ms(1000)).contains(&d), "{j}: {d:?}");
        }
    }

    #[test]
    fn random_jitter_is_in_range() {
        for _ in 0..100 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}
