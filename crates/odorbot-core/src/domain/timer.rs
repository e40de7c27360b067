//! The scheduler's decisions, as values: which timers it takes on first and how many, how
//! often it renews a timer's lease, how long it sleeps, and where a message meant for an
//! incident's thread goes when that thread may not exist yet.
//!
//! Each claimed timer has its own lease, renewed while its firing runs; pages
//! (escalations, storm summaries) never wait for free room behind routine timers
//! (announcements, status updates, maintenance reminders), because routine ones leave a
//! reserve of slots free. Announcements are routine: in a burst each holds its slot while
//! its root waits for the channel's pacing, and an escalation of an incident whose thread
//! exists must not wait behind them.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The root message and the opening page of a new incident.
pub const ANNOUNCE: &str = "announce";
/// The next step along the roster.
pub const ESCALATE: &str = "escalate";
/// The periodic status update in the incident's thread.
pub const STATUS: &str = "status";
/// A maintenance checklist's next occurrence.
pub const MAINTENANCE: &str = "maintenance";
/// A storm's summary edit and its pages for severities newly among its members.
pub const STORM: &str = "storm";

/// `t + d`, saturating at the end of time instead of failing.
pub fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

/// How urgent a kind of timer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Pages a person: taken on first, and never kept waiting by routine timers.
    Urgent,
    /// Everything else (announcements, status updates, maintenance reminders, unknown
    /// kinds).
    Routine,
}

/// The kinds that page someone.
pub const URGENT_KINDS: [&str; 2] = [ESCALATE, STORM];

impl Class {
    pub fn of(kind: &str) -> Class {
        if URGENT_KINDS.contains(&kind) {
            Class::Urgent
        } else {
            Class::Routine
        }
    }
}

/// How many more timers of each class the scheduler takes on right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    pub urgent: usize,
    pub routine: usize,
}

/// Free slots under `bound` concurrent firings. Routine timers never take the last
/// quarter of the slots (at least one, when there are two or more), so a due escalation
/// always finds room however many slow status updates run; urgent ones may take all.
pub fn free_slots(bound: usize, running_urgent: usize, running_routine: usize) -> Slots {
    let running = running_urgent + running_routine;
    let free = bound.saturating_sub(running);
    let reserve = (bound / 4).max(1).min(bound.saturating_sub(1));
    Slots {
        urgent: free,
        routine: (bound - reserve).saturating_sub(running).min(free),
    }
}

/// How often a held lease is renewed: three times per lease, so one slow or failed
/// renewal still leaves time for the next before the lease lapses.
pub fn renew_every(lease: Duration) -> Duration {
    (lease / 3).max(Duration::from_millis(50))
}

/// How long the scheduler sleeps: until the earliest time a timer can be claimed (due and
/// not held under a live lease), but never longer than `poll`, so timers set by other
/// replicas are seen.
pub fn sleep_for(next_claimable: Option<Timestamp>, now: Timestamp, poll: Duration) -> Duration {
    match next_claimable {
        None => poll,
        Some(at) => {
            let ms = (at.as_millisecond() - now.as_millisecond()).max(0) as u64;
            Duration::from_millis(ms).min(poll)
        }
    }
}

/// What the incident behind a queued thread message looks like at send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadState<'a> {
    /// The root message's `ts`, once it is posted.
    pub root: Option<&'a str>,
    /// Resolved incidents post no root any more.
    pub resolved: bool,
}

/// Where a queued message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Post now, in this thread (`None`: in the channel itself).
    Post { thread: Option<String> },
    /// The incident's root message is not posted yet: try again at this time.
    AwaitRoot { retry_at: Timestamp },
}

/// How often a message waiting for its incident's root looks again.
pub const ROOT_RECHECK: Duration = Duration::from_secs(1);

/// How long a message waits for its incident's root before it goes into the channel
/// itself: a page is never dropped because the root could not be posted.
pub const ROOT_PATIENCE: Duration = Duration::from_secs(600);

/// Routes a queued message. `stored` is the thread it was queued with; `incident` is its
/// incident's state now (`None`: the message belongs to no incident, or the incident is
/// gone). A message for an incident whose root is not there yet waits for it — up to
/// [`ROOT_PATIENCE`] after it was queued — and then goes into that thread.
pub fn route(
    stored: Option<&str>,
    incident: Option<ThreadState<'_>>,
    queued_at: Timestamp,
    now: Timestamp,
) -> Route {
    if let Some(thread) = stored {
        return Route::Post {
            thread: Some(thread.to_owned()),
        };
    }
    let Some(state) = incident else {
        return Route::Post { thread: None };
    };
    if let Some(root) = state.root {
        return Route::Post {
            thread: Some(root.to_owned()),
        };
    }
    let waited = now.duration_since(queued_at);
    let patience = SignedDuration::try_from(ROOT_PATIENCE).unwrap_or(SignedDuration::MAX);
    if state.resolved || waited >= patience {
        return Route::Post { thread: None };
    }
    Route::AwaitRoot {
        retry_at: plus(now, ROOT_RECHECK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn pages_are_urgent_and_everything_else_is_routine() {
        for (kind, class) in [
            (ESCALATE, Class::Urgent),
            (STORM, Class::Urgent),
            (ANNOUNCE, Class::Routine),
            (STATUS, Class::Routine),
            (MAINTENANCE, Class::Routine),
            ("something-new", Class::Routine),
        ] {
            assert_eq!(Class::of(kind), class, "{kind}");
        }
    }

    #[test]
    fn routine_timers_leave_a_reserve_that_only_pages_may_take() {
        // (bound, running urgent, running routine) -> (urgent, routine)
        let table = [
            ((8, 0, 0), (8, 6)),
            ((8, 0, 6), (2, 0)),
            ((8, 1, 5), (2, 0)),
            ((8, 2, 6), (0, 0)),
            ((8, 8, 0), (0, 0)),
            ((8, 3, 0), (5, 3)),
            ((4, 0, 0), (4, 3)),
            ((4, 0, 3), (1, 0)),
            ((2, 0, 0), (2, 1)),
            ((2, 0, 1), (1, 0)),
            ((1, 0, 0), (1, 1)),
            ((1, 1, 0), (0, 0)),
            ((0, 0, 0), (0, 0)),
        ];
        for ((bound, u, r), (want_u, want_r)) in table {
            assert_eq!(
                free_slots(bound, u, r),
                Slots {
                    urgent: want_u,
                    routine: want_r
                },
                "bound {bound}, running {u} urgent and {r} routine"
            );
        }
    }

    #[test]
    fn a_lease_is_renewed_three_times_per_term() {
        assert_eq!(
            renew_every(Duration::from_secs(30)),
            Duration::from_secs(10)
        );
        assert_eq!(renew_every(Duration::from_secs(1)).as_millis(), 333);
        assert_eq!(renew_every(Duration::ZERO), Duration::from_millis(50));
    }

    #[test]
    fn the_scheduler_sleeps_until_the_next_claimable_timer_or_the_poll() {
        let poll = Duration::from_secs(5);
        assert_eq!(sleep_for(None, at(0), poll), poll);
        assert_eq!(sleep_for(Some(at(2)), at(0), poll), Duration::from_secs(2));
        assert_eq!(sleep_for(Some(at(60)), at(0), poll), poll);
        assert_eq!(sleep_for(Some(at(-3)), at(0), poll), Duration::ZERO);
    }

    #[test]
    fn a_message_queued_with_its_thread_goes_there() {
        let open = ThreadState {
            root: Some("9.9"),
            resolved: false,
        };
        assert_eq!(
            route(Some("1.1"), Some(open), at(0), at(0)),
            Route::Post {
                thread: Some("1.1".into())
            }
        );
        assert_eq!(
            route(None, None, at(0), at(0)),
            Route::Post { thread: None }
        );
    }

    #[test]
    fn a_message_for_an_incident_without_a_root_waits_for_it_then_goes_into_its_thread() {
        let pending = ThreadState {
            root: None,
            resolved: false,
        };
        assert_eq!(
            route(None, Some(pending), at(0), at(5)),
            Route::AwaitRoot { retry_at: at(6) }
        );
        let posted = ThreadState {
            root: Some("1700000000.000100"),
            resolved: false,
        };
        assert_eq!(
            route(None, Some(posted), at(0), at(7)),
            Route::Post {
                thread: Some("1700000000.000100".into())
            }
        );
    }

    #[test]
    fn a_message_whose_root_never_comes_is_posted_in_the_channel_not_dropped() {
        let pending = ThreadState {
            root: None,
            resolved: false,
        };
        let patience = ROOT_PATIENCE.as_secs() as i64;
        assert!(matches!(
            route(None, Some(pending), at(0), at(patience - 1)),
            Route::AwaitRoot { .. }
        ));
        assert_eq!(
            route(None, Some(pending), at(0), at(patience)),
            Route::Post { thread: None }
        );
        let resolved = ThreadState {
            root: None,
            resolved: true,
        };
        assert_eq!(
            route(None, Some(resolved), at(0), at(1)),
            Route::Post { thread: None }
        );
    }
}
