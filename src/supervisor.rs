//! Supervision of the background loops: a loop that dies (panics, or returns while odorbot
//! is still running) is restarted with a backoff, or ends the process with a clear log
//! line, and `/readyz` names every loop that is down.
//!
//! Which fate a loop gets is the caller's choice ([`Supervisor::restart`] or
//! [`Supervisor::critical`]): a loop whose work lives in the store (outbox, replies,
//! timers, approval recovery, pruning) loses nothing by being restarted, since its claims lapse
//! and a fresh loop takes them again; a loop that owns what cannot be rebuilt in place
//! (the engine's queue, the admin listener) ends the process, so the orchestrator
//! restarts it whole; what it had queued but not begun is lost with it, as in any crash.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

/// The first wait before a restart; doubled for each death before the loop completed a
/// round again, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Health {
    /// Why it last died, while it is down; `None` while it runs.
    down: Option<(String, Instant)>,
    deaths: u32,
    /// For critical loops: it never comes back.
    fatal: bool,
}

#[derive(Debug, Default)]
struct Inner {
    loops: Mutex<BTreeMap<&'static str, Health>>,
    fatal: Mutex<Option<String>>,
    fatal_set: Notify,
}

/// Owns the supervised loops' health; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

/// Handed to a restartable loop, which calls [`Beat::alive`] after each round it
/// completed: what marks a restarted loop as up again (being spawned is not enough: a
/// loop that dies in every round would otherwise look up between its deaths).
#[derive(Debug, Clone)]
pub struct Beat {
    supervisor: Supervisor,
    name: &'static str,
}

impl Beat {
    /// A round completed.
    pub fn alive(&self) {
        let mut loops = self.supervisor.loops();
        if let Some(h) = loops.get_mut(self.name)
            && let Some((why, since)) = h.down.take()
        {
            info!(
                loop_name = self.name,
                down_ms = since.elapsed().as_millis() as u64,
                after = %why,
                "background loop is running again"
            );
        }
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    fn loops(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Health>> {
        // Panics inside loops never happen while this lock is held; poisoning is moot.
        self.inner.loops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The loops that are down, one line each, for `/readyz`.
    pub fn down(&self) -> Vec<String> {
        self.loops()
            .iter()
            .filter_map(|(name, h)| {
                let (why, since) = h.down.as_ref()?;
                let fate = if h.fatal {
                    "odorbot is ending"
                } else {
                    "restarting"
                };
                Some(format!(
                    "loop {name}: down for {}s after it {why} ({} deaths); {fate}",
                    since.elapsed().as_secs(),
                    h.deaths
                ))
            })
            .collect()
    }

    /// Resolves once a critical loop died, with the reason; the process should end.
    pub async fn fatal(&self) -> String {
        loop {
            let notified = self.inner.fatal_set.notified();
            if let Some(why) = self
                .inner
                .fatal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                return why;
            }
            notified.await;
        }
    }

    /// Records a death; returns whether the loop had been up since its last start.
    fn died(&self, name: &'static str, why: &str, fatal: bool) -> (bool, u32) {
        let mut loops = self.loops();
        let h = loops.entry(name).or_default();
        let was_up = h.down.is_none();
        h.down = Some((why.to_owned(), Instant::now()));
        h.deaths += 1;
        h.fatal = fatal;
        (was_up, h.deaths)
    }

    fn register(&self, name: &'static str) {
        self.loops().entry(name).or_default();
    }

    /// Runs the loop `make` builds under `tasks`, building and starting a new one after
    /// a backoff whenever it dies, until `cancel` fires.
    pub fn restart<F, Fut>(
        &self,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
        name: &'static str,
        mut make: F,
    ) where
        F: FnMut(Beat) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(name);
        let this = self.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let beat = Beat {
                    supervisor: this.clone(),
                    name,
                };
                let Some(why) = death(tokio::spawn(make(beat)).await, &cancel) else {
                    return;
                };
                let (was_up, deaths) = this.died(name, &why, false);
                if was_up {
                    backoff = FIRST_BACKOFF;
                }
                error!(
                    loop_name = name,
                    deaths,
                    restart_in_ms = backoff.as_millis() as u64,
                    "background loop died: it {why}; restarting it"
                );
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// Runs `run` under `tasks`; if it dies while odorbot is running, [`Supervisor::fatal`]
    /// resolves so the process ends.
    pub fn critical<Fut>(
        &self,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
        name: &'static str,
        run: Fut,
    ) where
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.register(name);
        let this = self.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let Some(why) = death(tokio::spawn(run).await, &cancel) else {
                return;
            };
            this.died(name, &why, true);
            let reason = format!("critical loop {name} died: it {why}; ending the process");
            error!(loop_name = name, "{reason}");
            let mut fatal = this.inner.fatal.lock().unwrap_or_else(|p| p.into_inner());
            fatal.get_or_insert(reason);
            drop(fatal);
            this.inner.fatal_set.notify_waiters();
        });
    }
}

/// How a loop's task ended: `None` for a normal stop at shutdown, else what killed it.
fn death(ended: Result<(), tokio::task::JoinError>, cancel: &CancellationToken) -> Option<String> {
    match ended {
        Ok(()) if cancel.is_cancelled() => None,
        Ok(()) => Some("returned while odorbot was running".to_owned()),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".to_owned());
            Some(format!("panicked: {text}"))
        }
        Err(e) => Some(format!("was cancelled: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_panicking_loop_is_down_until_a_restarted_one_completes_a_round() {
        let sup = Supervisor::new();
        let (tasks, cancel) = (TaskTracker::new(), CancellationToken::new());
        let starts = Arc::new(AtomicU32::new(0));
        let (to_loop, rounds) = tokio::sync::mpsc::unbounded_channel::<()>();
        let rounds = Arc::new(tokio::sync::Mutex::new(rounds));
        let s = starts.clone();
        let stop = cancel.clone();
        sup.restart(&tasks, &cancel, "outbox", move |beat| {
            let n = s.fetch_add(1, Ordering::SeqCst);
            let rounds = rounds.clone();
            let stop = stop.clone();
            async move {
                // The first two incarnations die in their first round.
                assert!(n >= 2, "injected death {n}");
                let mut rounds = rounds.lock().await;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        Some(()) = rounds.recv() => beat.alive(),
                    }
                }
            }
        });
        assert!(sup.down().is_empty(), "up until it dies");
        while starts.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Started a third time, but down until it completed a round.
        let down = sup.down();
        assert_eq!(down.len(), 1, "{down:?}");
        assert!(
            down[0].starts_with("loop outbox: down")
                && down[0].contains("panicked: injected death 1 (2 deaths); restarting"),
            "{down:?}"
        );
        to_loop.send(()).unwrap();
        while !sup.down().is_empty() {
            tokio::task::yield_now().await;
        }
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
        assert_eq!(starts.load(Ordering::SeqCst), 3, "no restart at shutdown");
    }

    #[tokio::test]
    async fn a_dead_critical_loop_ends_the_process_and_a_stopped_one_does_not() {
        let sup = Supervisor::new();
        let (tasks, cancel) = (TaskTracker::new(), CancellationToken::new());
        let stop = cancel.clone();
        sup.critical(
            &tasks,
            &cancel,
            "admin",
            async move { stop.cancelled().await },
        );
        sup.critical(&tasks, &cancel, "dispatcher", async {});
        let why = sup.fatal().await;
        assert_eq!(
            why,
            "critical loop dispatcher died: it returned while odorbot was running; ending the process"
        );
        assert_eq!(sup.down().len(), 1);
        assert!(
            sup.down()[0].ends_with("odorbot is ending"),
            "{:?}",
            sup.down()
        );
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
        assert_eq!(
            sup.down().len(),
            1,
            "a loop stopped by shutdown is no death"
        );
    }
}
