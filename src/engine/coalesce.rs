//! Identical reads asked while one is running share its answer: during an incident many
//! people type `/odor status` at once, and each would otherwise query Prometheus,
//! PostgreSQL, Redis, the health URL and the API server again.
//!
//! Nothing is cached: an answer serves only those who asked while it was being computed,
//! so nobody gets an answer older than their question.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::watch;

/// One read at a time, its answer shared by everyone who asked meanwhile.
pub struct Coalesce<T> {
    running: Mutex<Option<watch::Receiver<Option<T>>>>,
}

impl<T> Default for Coalesce<T> {
    fn default() -> Self {
        Self {
            running: Mutex::new(None),
        }
    }
}

/// Clears the running slot when the computing caller finishes or is dropped midway, so a
/// cancelled read never leaves the others waiting on nothing.
struct Leading<'a, T: Clone> {
    shared: &'a Coalesce<T>,
    /// Off once the answer is out: by then the slot may hold a newer read's.
    armed: bool,
}

impl<T: Clone> Drop for Leading<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            *self.shared.slot() = None;
        }
    }
}

impl<T: Clone> Coalesce<T> {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<watch::Receiver<Option<T>>>> {
        // Nothing panics while holding it; poisoning would mean nothing.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `read`'s answer, or the answer of the identical read already running. Whoever
    /// runs `read` is the first caller; should it be dropped before answering, the callers
    /// waiting on it run their own.
    pub async fn run<F: Future<Output = T>>(&self, read: impl FnOnce() -> F) -> T {
        // Decided under the lock, acted on after it: the guard must not live across an await.
        let joined = {
            let mut slot = self.slot();
            match slot.as_ref() {
                Some(rx) => Err(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    *slot = Some(rx);
                    Ok(tx)
                }
            }
        };
        let mut rx = match joined {
            Ok(tx) => return self.lead(tx, read).await,
            Err(rx) => rx,
        };
        if let Ok(answer) = rx.wait_for(Option::is_some).await
            && let Some(answer) = answer.clone()
        {
            return answer;
        }
        read().await
    }

    async fn lead<F: Future<Output = T>>(
        &self,
        tx: watch::Sender<Option<T>>,
        read: impl FnOnce() -> F,
    ) -> T {
        let mut leading = Leading {
            shared: self,
            armed: true,
        };
        let answer = read().await;
        // Later callers start a read of their own from here on.
        *self.slot() = None;
        leading.armed = false;
        tx.send_replace(Some(answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn counted(reads: &Arc<AtomicUsize>, took: Duration) -> impl Future<Output = usize> {
        let reads = reads.clone();
        async move {
            let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(took).await;
            n
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_read_and_later_ones_read_again() {
        let (shared, reads) = (Coalesce::default(), Arc::new(AtomicUsize::new(0)));
        let many = (0..10).map(|_| shared.run(|| counted(&reads, Duration::from_secs(1))));
        let answers = futures_util::future::join_all(many).await;
        assert_eq!(answers, vec![1; 10]);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Asked after the answer: a fresh read, never a cached answer.
        assert_eq!(shared.run(|| counted(&reads, Duration::ZERO)).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_first_caller_leaves_the_others_reading_for_themselves() {
        let (shared, reads) = (Arc::new(Coalesce::default()), Arc::new(AtomicUsize::new(0)));
        let first = {
            let (shared, reads) = (shared.clone(), reads.clone());
            tokio::spawn(async move {
                shared
                    .run(|| counted(&reads, Duration::from_secs(60)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = {
            let (shared, reads) = (shared.clone(), reads.clone());
            tokio::spawn(
                async move { shared.run(|| counted(&reads, Duration::from_secs(1))).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        first.abort();
        assert_eq!(second.await.unwrap(), 2, "the waiter ran its own read");
        assert_eq!(shared.run(|| counted(&reads, Duration::ZERO)).await, 3);
    }
}
