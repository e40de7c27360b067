//! Sends the reply queue: the answer to a slash command or a click goes through its
//! `response_url` from here, not from the worker that made it. The worker only stores it
//! (a store write), so a slow or failing Slack holds no worker, and a reply that fails or
//! whose process dies is sent later, by this process or another replica.
//!
//! Unlike the outbox there is no per-channel pacing to respect (a `response_url` is not a
//! channel post), so several replies are in flight at once; each gets one attempt per
//! claim, and [`crate::domain::reply::after`] decides what follows a failure.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

use crate::domain::reply::{self, Attempt, GiveUp, Next};
use crate::domain::view::Message;
use crate::idgen::IdGen;
use crate::slack::api::{ApiError, SlackApi};
use crate::store::Store;
use crate::store::replies::PendingReply;
use crate::supervisor::Beat;

/// Replies in flight at once. Enough that a few slow URLs (Slack answering in seconds)
/// do not delay the others much, few enough that a Slack outage costs a handful of open
/// connections; a reply beyond them waits in the store, not in memory.
const IN_FLIGHT: usize = 8;
/// One attempt's budget. Long enough for a slow Slack (a timed-out attempt may still
/// have arrived, and its retry would then be a second copy), short next to the URL's life.
const ATTEMPT: Duration = Duration::from_secs(5);
/// A claim outlasts an attempt and its bookkeeping, so no other replica sends the reply
/// meanwhile; short, so a reply whose sender died waits little.
const LEASE: Duration = Duration::from_secs(15);
/// How often the store is looked at for replies due again, when nothing woke the sender.
const POLL: Duration = Duration::from_secs(1);
/// Tries of the bookkeeping after an attempt (100 ms, doubling, between them).
const BOOKKEEPING_TRIES: usize = 3;

/// What became of a reply handed to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// In the store: it is sent as soon as Slack takes it.
    InStore,
    /// The store could not take it, so one attempt is made at once, off the caller.
    TriedOnce,
}

pub struct Replies {
    store: Store,
    api: Arc<SlackApi>,
    /// Unique per instance: claims are held by name.
    owner: String,
    wake: Notify,
    slots: Arc<Semaphore>,
    /// Owns the sends in flight, so shutdown lets them finish.
    tasks: TaskTracker,
}

impl Replies {
    pub fn new(store: Store, api: Arc<SlackApi>, tasks: TaskTracker) -> Self {
        Self {
            store,
            api,
            owner: IdGen::process().next("replies-", Timestamp::now()),
            wake: Notify::new(),
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
            tasks,
        }
    }

    /// Queues `message` for `response_url` (which Slack issued with the event received
    /// at `issued`) and wakes the sender. Never waits on Slack: when the store cannot take
    /// the reply, one bounded attempt is made from a task of its own.
    pub async fn send(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
        issued: SystemTime,
    ) -> Queued {
        let now = Timestamp::now();
        let issued = Timestamp::try_from(issued).unwrap_or(now);
        match self
            .store_reply(response_url, message, replace_original, issued, now)
            .await
        {
            Ok(()) => {
                self.wake.notify_one();
                Queued::InStore
            }
            Err(e) => {
                warn!(error = %e, "reply queue unavailable; trying the reply once directly");
                let (api, url, message) =
                    (self.api.clone(), response_url.to_owned(), message.clone());
                self.tasks.spawn(async move {
                    if let Err(e) = api
                        .respond_once(&url, &message, replace_original, ATTEMPT)
                        .await
                    {
                        error!(error = %e, "reply lost: neither the queue nor Slack took it");
                    }
                });
                Queued::TriedOnce
            }
        }
    }

    async fn store_reply(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
        issued: Timestamp,
        now: Timestamp,
    ) -> Result<(), Failed> {
        crate::failpoint!("replies.enqueue", e => return Err(e.into()));
        self.store
            .enqueue_reply(response_url, message, replace_original, issued, now)
            .await?;
        Ok(())
    }

    /// One attempt at a claimed reply, and its bookkeeping.
    async fn deliver(&self, r: PendingReply) {
        let now = Timestamp::now();
        let next = if reply::alive(r.issued_at, now) {
            crate::failpoint!("replies.before_send");
            let attempt = match self
                .api
                .respond_once(&r.response_url, &r.message, r.replace_original, ATTEMPT)
                .await
            {
                Ok(()) => Attempt::Delivered,
                Err(ApiError::Refused { code, .. }) => {
                    warn!(id = %r.id, code, "Slack refused a reply through its response_url; dropped");
                    Attempt::Refused
                }
                Err(e) => {
                    let retry_after = match &e {
                        ApiError::GaveUp { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    debug!(id = %r.id, attempts = r.attempts + 1, error = %e, "reply attempt failed");
                    Attempt::Failed { retry_after }
                }
            };
            reply::after(attempt, r.attempts, r.issued_at, Timestamp::now())
        } else {
            Next::GiveUp(GiveUp::Expired)
        };
        if next == Next::GiveUp(GiveUp::Expired) {
            warn!(id = %r.id, attempts = r.attempts, "reply not delivered: its response_url expired first");
        }
        self.record(&r, next).await;
    }

    /// Records the outcome, retrying a failed write a few times; should it still fail,
    /// the claim lapses and the reply is tried again (a delivered one then comes twice).
    async fn record(&self, r: &PendingReply, next: Next) {
        let mut wait = Duration::from_millis(100);
        for _ in 0..BOOKKEEPING_TRIES {
            match self.bookkeep(r, next).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(id = %r.id, error = %e, "reply outcome not recorded; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        error!(id = %r.id, ?next, "reply outcome not recorded; it is tried again once its claim lapses");
    }

    async fn bookkeep(&self, r: &PendingReply, next: Next) -> Result<(), Failed> {
        crate::failpoint!("replies.after_send", e => return Err(e.into()));
        match next {
            Next::Done | Next::GiveUp(_) => self.store.reply_done(&r.id).await?,
            Next::RetryAt(at) => self.store.reply_retry_at(&r.id, at).await?,
        }
        Ok(())
    }

    /// Free slots, at least one (waited for); `None` once cancelled.
    async fn slots(&self, cancel: &CancellationToken) -> Option<Vec<OwnedSemaphorePermit>> {
        let first = tokio::select! {
            () = cancel.cancelled() => return None,
            permit = self.slots.clone().acquire_owned() => permit.ok()?,
        };
        let mut slots = vec![first];
        while let Ok(more) = self.slots.clone().try_acquire_owned() {
            slots.push(more);
        }
        Some(slots)
    }

    /// Sends due replies until cancelled, up to [`IN_FLIGHT`] at once; `beat` hears of
    /// every completed round.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, beat: Beat) {
        loop {
            crate::failpoint!("replies.tick");
            // Only as many claims as there are free slots: a claimed reply is sent at once.
            let Some(mut slots) = self.slots(&cancel).await else {
                return;
            };
            let batch = self
                .store
                .claim_replies(
                    &self.owner,
                    Timestamp::now(),
                    LEASE.as_millis() as i64,
                    slots.len() as i64,
                )
                .await
                .unwrap_or_else(|e| {
                    warn!(error = %e, "cannot read the reply queue");
                    Vec::new()
                });
            let full = batch.len() == slots.len();
            for r in batch {
                let (this, slot) = (self.clone(), slots.pop());
                self.tasks.spawn(async move {
                    this.deliver(r).await;
                    drop(slot);
                });
            }
            drop(slots);
            beat.alive();
            if full {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Why storing a reply or its outcome failed.
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[cfg(debug_assertions)]
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
}
