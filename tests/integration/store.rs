//! The store on both backends: migrations, idempotency claims across processes'
//! worth of pools, pruning and the open-work counts.

use std::future::Future;

use odorbot::store::{Backend, Store};
use secrecy::SecretString;

use crate::support::pg::TempDb;

async fn on_sqlite<F, Fut>(test: F)
where
    F: Fn(Store, Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = SecretString::from(format!(
        "sqlite://{}",
        dir.path().join("odorbot.db").display()
    ));
    let a = Store::open(&url, 4).await.unwrap();
    let b = Store::open(&url, 4).await.unwrap();
    assert_eq!(a.backend(), Backend::Sqlite);
    test(a, b).await;
}

async fn on_postgres<F, Fut>(test: F)
where
    F: Fn(Store, Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let db = TempDb::create().await;
    let url = SecretString::from(db.url.clone());
    let a = Store::open(&url, 4).await.unwrap();
    let b = Store::open(&url, 4).await.unwrap();
    assert_eq!(a.backend(), Backend::Postgres);
    test(a.clone(), b.clone()).await;
    a.close().await;
    b.close().await;
    db.drop_db().await;
}

/// Two handles (as two replicas would have) race to claim each key: exactly one wins.
async fn each_event_is_claimed_once(a: Store, b: Store) {
    assert!(
        a.claim_event("cmd:t1", "slash_commands", "e1", 1_000)
            .await
            .unwrap()
    );
    assert!(
        !a.claim_event("cmd:t1", "slash_commands", "e1", 1_001)
            .await
            .unwrap()
    );
    assert!(
        !b.claim_event("cmd:t1", "slash_commands", "e2", 1_002)
            .await
            .unwrap()
    );
    let mut racers = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        racers.push(tokio::spawn(async move {
            store
                .claim_event("act:1.2:U1:approve", "interactive", &format!("e{i}"), 2_000)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn old_keys_are_pruned_and_recent_kept(a: Store, _b: Store) {
    a.claim_event("old", "slash_commands", "e", 10)
        .await
        .unwrap();
    a.claim_event("new", "slash_commands", "e", 5_000)
        .await
        .unwrap();
    assert_eq!(a.prune_events(1_000).await.unwrap(), 1);
    assert!(
        a.claim_event("old", "slash_commands", "e", 6_000)
            .await
            .unwrap()
    );
    assert!(
        !a.claim_event("new", "slash_commands", "e", 6_000)
            .await
            .unwrap()
    );
}

async fn reopening_is_a_no_op_and_counts_start_at_zero(a: Store, b: Store) {
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    let open = a.open_work().await.unwrap();
    assert_eq!((open.approvals, open.incidents), (0, 0));
}

/// What the metrics read at each scrape: the outbox and its oldest message, timers past
/// the grace, and nothing else counted as overdue.
async fn the_backlog_counts_the_outbox_and_overdue_timers(a: Store, b: Store) {
    use std::time::Duration;
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let ago = |secs: i64| now - jiff::SignedDuration::from_secs(secs);
    let empty = a.backlog(now, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        (
            empty.outbox_pending,
            empty.outbox_oldest_age,
            empty.timers_overdue
        ),
        (0, Duration::ZERO, 0)
    );
    let msg = odorbot::domain::view::Message::text("page");
    a.enqueue("C1", None, &msg, ago(120)).await.unwrap();
    b.enqueue("C1", Some("1.2"), &msg, ago(30)).await.unwrap();
    a.schedule("escalate", "inc-1", ago(300)).await.unwrap();
    a.schedule("status", "inc-1", ago(10)).await.unwrap();
    a.schedule("status", "inc-2", now + jiff::SignedDuration::from_secs(60))
        .await
        .unwrap();
    let backlog = b.backlog(now, Duration::from_secs(60)).await.unwrap();
    assert_eq!(backlog.outbox_pending, 2);
    assert_eq!(backlog.outbox_oldest_age, Duration::from_secs(120));
    assert_eq!(backlog.timers_overdue, 1, "only the one 5 minutes late");
    assert_eq!(backlog.incidents_open, 0);
    assert!(backlog.approvals.is_empty());
}

#[tokio::test]
async fn sqlite_backlog_for_the_metrics() {
    on_sqlite(the_backlog_counts_the_outbox_and_overdue_timers).await;
}

#[tokio::test]
async fn postgres_backlog_for_the_metrics() {
    on_postgres(the_backlog_counts_the_outbox_and_overdue_timers).await;
}

#[tokio::test]
async fn sqlite_claims_each_event_once() {
    on_sqlite(each_event_is_claimed_once).await;
}

#[tokio::test]
async fn postgres_claims_each_event_once() {
    on_postgres(each_event_is_claimed_once).await;
}

#[tokio::test]
async fn sqlite_prunes_old_keys() {
    on_sqlite(old_keys_are_pruned_and_recent_kept).await;
}

#[tokio::test]
async fn postgres_prunes_old_keys() {
    on_postgres(old_keys_are_pruned_and_recent_kept).await;
}

#[tokio::test]
async fn sqlite_migrations_are_idempotent() {
    on_sqlite(reopening_is_a_no_op_and_counts_start_at_zero).await;
}

#[tokio::test]
async fn postgres_migrations_are_idempotent() {
    on_postgres(reopening_is_a_no_op_and_counts_start_at_zero).await;
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    let err = Store::open(&SecretString::from("mysql://x".to_owned()), 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sqlite: or postgres://"), "{err}");
}
