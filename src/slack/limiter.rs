//! A per-channel pacing of outgoing messages (Slack allows about one per second per
//! channel, with short bursts), as a generic cell rate algorithm: each channel keeps the
//! time its next message is due. Senders wait in line by priority, so each free slot goes
//! to the most urgent message waiting for it (a page before a backlog of announcements),
//! not to whoever asked first. With replicas, the first in line also books the slot in
//! the schedule they share ([`SharedPace`]), which takes only slots at hand, so the
//! replicas together keep the channel's rate and each one's line still picks its next
//! message.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::domain::outbox::Priority;

#[derive(Debug)]
pub struct ChannelLimiter {
    interval: Duration,
    /// How far ahead of its schedule a channel may run: `(burst - 1)` intervals.
    tolerance: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    channels: HashMap<String, Channel>,
    seq: u64,
}

#[derive(Debug)]
struct Channel {
    /// When the channel's next message is due on its schedule.
    due: Instant,
    /// Who waits, most urgent first, then in order of arrival.
    line: BTreeSet<(Priority, u64)>,
    /// Woken when a slot is taken or a waiter leaves or arrives: the line has changed.
    /// Per channel, so a change wakes only those waiting for that channel.
    changed: Arc<Notify>,
}

/// A per-channel schedule shared with other replicas.
pub trait SharedPace: Send + Sync {
    /// Books `channel`'s next slot for a message of `priority` if it starts within
    /// `tolerance` of now and no other replica waits with a more urgent one: `None` when
    /// booked (or when booking failed, so this process's pacing stands alone), else how
    /// long until asking again is worth it. A sender told to wait is remembered as
    /// waiting, so the other replicas leave the next slot to it if it is more urgent.
    fn book<'a>(
        &'a self,
        channel: &'a str,
        interval: Duration,
        tolerance: Duration,
        priority: Priority,
    ) -> futures_util::future::BoxFuture<'a, Option<Duration>>;
}

/// Beyond this many channels, idle entries are swept on the next arrival.
const SWEEP_AT: usize = 1024;

impl ChannelLimiter {
    pub fn new(rate_per_sec: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate_per_sec.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for `channel`'s next slot that no more urgent (or earlier, equally urgent)
    /// sender is waiting for, booked in `shared` too when given, and takes it. Dropping
    /// the future leaves the line.
    pub async fn acquire(
        &self,
        channel: &str,
        priority: Priority,
        shared: Option<&dyn SharedPace>,
    ) {
        let (place, changed) = {
            let mut st = self.state();
            let now = Instant::now();
            if st.channels.len() >= SWEEP_AT {
                st.channels.retain(|_, c| !c.line.is_empty() || c.due > now);
            }
            st.seq += 1;
            let place = (priority, st.seq);
            let c = st
                .channels
                .entry(channel.to_owned())
                .or_insert_with(|| Channel {
                    due: now,
                    line: BTreeSet::new(),
                    changed: Arc::new(Notify::new()),
                });
            c.line.insert(place);
            (place, c.changed.clone())
        };
        // A newcomer may now be first in line: whoever was first looks again.
        changed.notify_waiters();
        let mut waiting = InLine {
            limiter: self,
            channel,
            place: Some(place),
            changed: &changed,
        };
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = {
                let mut st = self.state();
                let c = st.channels.get_mut(channel).expect("a waiter's channel");
                if c.line.first() == Some(&place) {
                    let now = Instant::now();
                    let due = c.due.max(now);
                    let wait = due.saturating_duration_since(now + self.tolerance);
                    if wait.is_zero() && shared.is_none() {
                        self.take(&mut st, channel, place);
                        waiting.place = None;
                        drop(st);
                        changed.notify_waiters();
                        return;
                    }
                    if wait.is_zero() { None } else { Some(wait) }
                } else {
                    None
                }
            };
            let wait = match (wait, shared) {
                (Some(wait), _) => Some(wait),
                (None, Some(shared)) if self.first(channel, place) => {
                    match shared
                        .book(channel, self.interval, self.tolerance, priority)
                        .await
                    {
                        None => {
                            // Booked: the slot is this sender's, whoever arrived meanwhile.
                            let mut st = self.state();
                            self.take(&mut st, channel, place);
                            waiting.place = None;
                            drop(st);
                            changed.notify_waiters();
                            return;
                        }
                        Some(later) => Some(later.max(Duration::from_millis(1))),
                    }
                }
                _ => None,
            };
            match wait {
                Some(wait) => {
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    fn first(&self, channel: &str, place: (Priority, u64)) -> bool {
        self.state()
            .channels
            .get(channel)
            .is_some_and(|c| c.line.first() == Some(&place))
    }

    /// Takes the channel's next slot for the waiter at `place`.
    fn take(&self, st: &mut State, channel: &str, place: (Priority, u64)) {
        if let Some(c) = st.channels.get_mut(channel) {
            c.due = c.due.max(Instant::now()) + self.interval;
            c.line.remove(&place);
        }
    }
}

/// A place in a channel's line, given up if the waiter is dropped before its slot.
struct InLine<'a> {
    limiter: &'a ChannelLimiter,
    channel: &'a str,
    place: Option<(Priority, u64)>,
    changed: &'a Notify,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        if let Some(place) = self.place.take() {
            if let Some(c) = self.limiter.state().channels.get_mut(self.channel) {
                c.line.remove(&place);
            }
            self.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// When each of `sends` (channel, priority), started in this order, got its slot.
    async fn slots(l: Arc<ChannelLimiter>, sends: &[(&'static str, Priority)]) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for (channel, priority) in sends.iter().copied() {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire(channel, priority, None).await;
                t0.elapsed()
            }));
            // Arrival order is the order of the list.
            tokio::task::yield_now().await;
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    fn secs(s: &[u64]) -> Vec<Duration> {
        s.iter().map(|s| Duration::from_secs(*s)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_pass_then_one_per_interval_and_channels_are_independent() {
        let l = Arc::new(ChannelLimiter::new(1, 3));
        let r = Priority::Routine;
        let got = slots(
            l,
            &[
                ("C1", r),
                ("C1", r),
                ("C1", r),
                ("C1", r),
                ("C1", r),
                ("C2", r),
            ],
        )
        .await;
        assert_eq!(got, secs(&[0, 0, 0, 1, 2, 0]));
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_refills_with_time() {
        let l = Arc::new(ChannelLimiter::new(1, 1));
        let r = Priority::Routine;
        assert_eq!(
            slots(l.clone(), &[("C1", r), ("C1", r)]).await,
            secs(&[0, 1])
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(slots(l, &[("C1", r)]).await, secs(&[0]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_takes_the_next_slot_ahead_of_a_backlog() {
        let l = Arc::new(ChannelLimiter::new(1, 1));
        let (r, f, p, s) = (
            Priority::Routine,
            Priority::Findings,
            Priority::Page,
            Priority::Status,
        );
        // Five routine messages and a finding queue first; a status update and a page
        // come last, and the page goes at the first free slot, then the status update.
        let got = slots(
            l,
            &[
                ("C1", r),
                ("C1", r),
                ("C1", f),
                ("C1", r),
                ("C1", s),
                ("C1", p),
            ],
        )
        .await;
        assert_eq!(got, secs(&[0, 3, 5, 4, 2, 1]));
    }

    /// Another replica's view of one channel's schedule, kept as the store keeps it
    /// (without the priorities of waiters, which the store's tests cover).
    struct Schedule(Mutex<Instant>);

    impl SharedPace for Schedule {
        fn book<'a>(
            &'a self,
            _channel: &'a str,
            interval: Duration,
            tolerance: Duration,
            _priority: Priority,
        ) -> futures_util::future::BoxFuture<'a, Option<Duration>> {
            Box::pin(async move {
                let mut due = self.0.lock().unwrap();
                let now = Instant::now();
                if *due <= now + tolerance {
                    *due = (*due).max(now) + interval;
                    None
                } else {
                    Some(*due - tolerance - now)
                }
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn two_replicas_sharing_a_schedule_keep_the_channels_rate_together() {
        let shared = Arc::new(Schedule(Mutex::new(Instant::now())));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for replica in 0..2 {
            let l = Arc::new(ChannelLimiter::new(1, 1));
            for _ in 0..3 {
                let (l, shared) = (l.clone(), shared.clone());
                tasks.push(tokio::spawn(async move {
                    l.acquire("C1", Priority::Routine, Some(shared.as_ref()))
                        .await;
                    (replica, t0.elapsed())
                }));
                tokio::task::yield_now().await;
            }
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap().1);
        }
        got.sort_unstable();
        // Alone each would send at 0, 1, 2 s: together they take one slot a second.
        assert_eq!(got, secs(&[0, 1, 2, 3, 4, 5]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_gives_up_leaves_the_line() {
        let l = Arc::new(ChannelLimiter::new(1, 1));
        l.acquire("C1", Priority::Routine, None).await;
        // It would get the slot at 1 s, but leaves at 0.5 s: the next one gets it.
        let gave_up = tokio::time::timeout(
            Duration::from_millis(500),
            l.acquire("C1", Priority::Page, None),
        )
        .await;
        assert!(gave_up.is_err());
        let t0 = Instant::now();
        l.acquire("C1", Priority::Routine, None).await;
        assert_eq!(t0.elapsed(), Duration::from_millis(500));
    }
}
