//! The store on both backends: migrations, idempotency claims across processes'
//! worth of pools, pruning, the open-work counts and concurrent incident openings.

use std::future::Future;

use odorbot::domain::escalation::Severity;
use odorbot::domain::incident::NewIncident;
use odorbot::domain::timer::Class;
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
    // Claimed under a live lease it is being fired, not overdue; once the lease lapsed it is.
    let lease_ms = 30_000;
    let claimed = a
        .claim_due("replica-a", now, lease_ms, 8, Class::Urgent)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let held = b.backlog(now, Duration::from_secs(60)).await.unwrap();
    assert_eq!(held.timers_overdue, 0, "held under a live lease");
    let later = now + jiff::SignedDuration::from_secs(31);
    let lapsed = b.backlog(later, Duration::from_secs(60)).await.unwrap();
    assert_eq!(lapsed.timers_overdue, 1, "its lease lapsed");
}

/// A message that failed (due again later), waits for its root, or is claimed elsewhere
/// holds back the later messages of its thread — same channel and thread, same incident,
/// or same approval request (whose card comes first) — and nothing else.
async fn a_pending_message_is_never_overtaken_in_its_thread(a: Store, b: Store) {
    use odorbot::domain::view::Message;
    use odorbot::store::outbox::Belongs;
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let at = |s: i64| now + jiff::SignedDuration::from_secs(s);
    let incident = Belongs::Incident("inc-1".into());
    let queued: [(&str, Option<Belongs>, Option<&str>); 7] = [
        ("m1", None, Some("1.1")),
        ("m2", None, Some("1.1")),
        ("other thread", None, Some("2.2")),
        ("i1", Some(incident.clone()), None),
        ("i2", Some(incident), Some("3.3")),
        ("card", Some(Belongs::CardOf("req-1".into())), None),
        ("r1", Some(Belongs::Request("req-1".into())), None),
    ];
    for (i, (text, belongs, thread)) in queued.iter().enumerate() {
        a.enqueue_for(
            "C1",
            belongs.as_ref(),
            *thread,
            &Message::text(*text),
            at(i as i64 - 10),
            odorbot::domain::outbox::Priority::Routine,
        )
        .await
        .unwrap();
    }
    // What `owner` claims at `when`, by text, with the ids.
    let claim = async |store: &Store, owner: &str, when: jiff::Timestamp| {
        let claimed = store.claim_outgoing(owner, when, 30_000, 10).await.unwrap();
        claimed
            .into_iter()
            .map(|o| {
                let (text, ..) = queued
                    .iter()
                    .find(|(t, ..)| Message::text(*t) == o.message)
                    .unwrap();
                ((*text).to_owned(), o.id)
            })
            .collect::<Vec<_>>()
    };
    let label = |claimed: &[(String, String)]| -> Vec<String> {
        claimed.iter().map(|(t, _)| t.clone()).collect()
    };
    let first = claim(&a, "replica-a", now).await;
    assert_eq!(label(&first), ["m1", "other thread", "i1", "card"]);
    let id = |name: &str| first.iter().find(|(t, _)| t == name).unwrap().1.clone();
    // m1 failed and is due in a minute, i1 waits for its root, the card is being sent.
    a.retry_at(&id("m1"), at(60)).await.unwrap();
    a.await_root(&id("i1"), at(1)).await.unwrap();
    a.sent(&id("other thread")).await.unwrap();
    assert!(
        claim(&b, "replica-b", now).await.is_empty(),
        "each thread waits for its oldest"
    );
    a.sent(&id("card")).await.unwrap();
    let r1 = claim(&b, "replica-b", now).await;
    assert_eq!(label(&r1), ["r1"], "the card went first");
    b.sent(&r1[0].1).await.unwrap();
    let later = claim(&b, "replica-b", at(61)).await;
    assert_eq!(label(&later), ["m1", "i1"], "the retried ones go first");
    b.sent(&id("m1")).await.unwrap();
    b.sent(&id("i1")).await.unwrap();
    assert_eq!(label(&claim(&a, "replica-a", at(120)).await), ["m2", "i2"]);
}

/// Each timer's lease is its own: claimed by class, renewed only by its holder while the
/// timer is unchanged, and the scheduler's next wake-up counts it.
async fn each_timer_has_its_own_renewable_lease(a: Store, b: Store) {
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let secs = |s: i64| now + jiff::SignedDuration::from_secs(s);
    a.schedule("status", "inc-1", secs(-5)).await.unwrap();
    a.schedule("escalate", "inc-1", secs(-1)).await.unwrap();
    a.schedule("storm", "inc-2", secs(-2)).await.unwrap();
    let urgent = a
        .claim_due("replica-a", now, 2_000, 8, Class::Urgent)
        .await
        .unwrap();
    let mut kinds: Vec<&str> = urgent.iter().map(|t| t.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["escalate", "storm"],
        "pages are claimed on their own"
    );
    // The routine timer is still due; the pages are held for 2 s.
    assert_eq!(b.next_due(Class::Routine).await.unwrap(), Some(secs(-5)));
    assert_eq!(
        b.next_due(Class::Urgent).await.unwrap(),
        Some(now + jiff::SignedDuration::from_millis(2_001))
    );
    let escalate = urgent.iter().find(|t| t.kind == "escalate").unwrap();
    // Renewed by its holder it stays held past the first lease; nobody else can renew it.
    assert!(a.renew(escalate, "replica-a", secs(10)).await.unwrap());
    assert!(!b.renew(escalate, "replica-b", secs(20)).await.unwrap());
    assert!(
        b.claim_due("replica-b", secs(5), 2_000, 8, Class::Urgent)
            .await
            .unwrap()
            .iter()
            .all(|t| t.kind != "escalate"),
        "a renewed lease is not taken over"
    );
    // Moved by a reschedule, the claim is gone and the holder's renewal says so.
    a.schedule("escalate", "inc-1", secs(60)).await.unwrap();
    assert!(!a.renew(escalate, "replica-a", secs(30)).await.unwrap());
    let routine = b
        .claim_due("replica-b", now, 2_000, 8, Class::Routine)
        .await
        .unwrap();
    assert_eq!(routine.len(), 1);
    assert_eq!(routine[0].kind, "status");
}

/// A status update's period is taken once: two replicas (or a timer re-armed from a stale
/// read) that reach the same period post one update between them.
async fn each_status_period_is_taken_once(a: Store, b: Store) {
    let t = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
    let (incident, _) = a
        .open_incident(&new_incident("slow".into(), None), t(0))
        .await
        .unwrap();
    let id = incident.id.as_str();
    assert!(a.claim_status_update(id, None, t(900)).await.unwrap());
    assert!(!b.claim_status_update(id, None, t(901)).await.unwrap());
    assert!(!b.claim_status_update(id, Some(t(0)), t(901)).await.unwrap());
    assert!(
        b.claim_status_update(id, Some(t(900)), t(1800))
            .await
            .unwrap()
    );
    assert!(
        !a.claim_status_update(id, Some(t(900)), t(1801))
            .await
            .unwrap()
    );
    let now = b.incident_by_id(id).await.unwrap().unwrap();
    assert_eq!(now.last_status_at, Some(t(1800)));
}

#[tokio::test]
async fn sqlite_takes_each_status_period_once() {
    on_sqlite(each_status_period_is_taken_once).await;
}

#[tokio::test]
async fn postgres_takes_each_status_period_once() {
    on_postgres(each_status_period_is_taken_once).await;
}

#[tokio::test]
async fn sqlite_backlog_for_the_metrics() {
    on_sqlite(the_backlog_counts_the_outbox_and_overdue_timers).await;
}

#[tokio::test]
async fn postgres_backlog_for_the_metrics() {
    on_postgres(the_backlog_counts_the_outbox_and_overdue_timers).await;
}

/// The most urgent message is claimed first (a page, then a status update, then routine
/// messages, then findings), ahead of its thread's older, less urgent messages too, but
/// never ahead of an older one of its thread that is at least as urgent.
async fn the_most_urgent_message_is_claimed_first(a: Store, _b: Store) {
    use odorbot::domain::outbox::Priority::{Findings, Page, Routine, Status};
    use odorbot::domain::view::Message;
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let queued = [
        ("routine", "1.1", Routine),
        ("findings", "2.2", Findings),
        ("page", "3.3", Page),
        ("status", "4.4", Status),
        ("page ahead of routine", "1.1", Page),
        ("routine behind page", "3.3", Routine),
    ];
    for (i, (text, thread, priority)) in queued.iter().enumerate() {
        let at = now + jiff::SignedDuration::from_secs(i as i64 - 10);
        a.enqueue_for(
            "C1",
            None,
            Some(*thread),
            &Message::text(*text),
            at,
            *priority,
        )
        .await
        .unwrap();
    }
    let texts = |claimed: &[odorbot::store::outbox::Outgoing]| {
        claimed
            .iter()
            .map(|o| o.message.text.clone())
            .collect::<Vec<_>>()
    };
    let one = a.claim_outgoing("r", now, 30_000, 1).await.unwrap();
    assert_eq!(texts(&one), ["page"]);
    assert_eq!(one[0].priority, Page);
    let rest = a.claim_outgoing("r", now, 30_000, 10).await.unwrap();
    assert_eq!(
        texts(&rest),
        ["page ahead of routine", "status", "routine", "findings"]
    );
    a.sent(&one[0].id).await.unwrap();
    let last = a.claim_outgoing("r", now, 30_000, 10).await.unwrap();
    assert_eq!(texts(&last), ["routine behind page"]);
}

#[tokio::test]
async fn sqlite_outbox_claims_the_most_urgent_first() {
    on_sqlite(the_most_urgent_message_is_claimed_first).await;
}

#[tokio::test]
async fn postgres_outbox_claims_the_most_urgent_first() {
    on_postgres(the_most_urgent_message_is_claimed_first).await;
}

/// The shared pacing books only the slots at hand, and a sender told to wait with a more
/// urgent message keeps the next slot from less urgent senders of every replica until it
/// has had it, or its claim lapsed two intervals after it last asked.
async fn a_waiting_page_keeps_the_next_slot_from_less_urgent_senders(a: Store, b: Store) {
    use odorbot::domain::outbox::Priority::{Findings, Page, Routine};
    let t = |ms: i64| jiff::Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap();
    let step = std::time::Duration::from_secs(1);
    let burst = std::time::Duration::ZERO;
    let book = async |store: &Store, at: i64, priority| {
        store
            .book_slot("C1", t(at), step, burst, priority)
            .await
            .unwrap()
    };
    assert_eq!(book(&a, 0, Routine).await, None);
    // The next slot is at 1 s: the page asks then, and waits.
    assert_eq!(book(&b, 500, Page).await, Some(t(1000)));
    // At 1 s the other replica's routine message is told to wait: the slot is the page's.
    assert_eq!(book(&a, 1000, Routine).await, Some(t(2000)));
    assert_eq!(book(&b, 1001, Page).await, None);
    // Having booked, the page no longer holds the channel.
    assert_eq!(book(&a, 2001, Routine).await, None);
    // A page that waits and never asks again holds the channel two intervals at most.
    assert_eq!(book(&b, 2500, Page).await, Some(t(3001)));
    assert_eq!(book(&a, 3001, Routine).await, Some(t(4001)));
    assert_eq!(book(&a, 4501, Routine).await, None);
    // A less urgent waiter leaves a more urgent one's claim alone.
    assert_eq!(book(&b, 5000, Page).await, Some(t(5501)));
    assert_eq!(book(&a, 5100, Findings).await, Some(t(6100)));
    assert_eq!(book(&a, 5501, Findings).await, Some(t(6501)));
    assert_eq!(book(&b, 5501, Page).await, None);
}

#[tokio::test]
async fn sqlite_pacing_leaves_the_next_slot_to_the_most_urgent_waiter() {
    on_sqlite(a_waiting_page_keeps_the_next_slot_from_less_urgent_senders).await;
}

#[tokio::test]
async fn postgres_pacing_leaves_the_next_slot_to_the_most_urgent_waiter() {
    on_postgres(a_waiting_page_keeps_the_next_slot_from_less_urgent_senders).await;
}

#[tokio::test]
async fn sqlite_outbox_keeps_thread_order() {
    on_sqlite(a_pending_message_is_never_overtaken_in_its_thread).await;
}

#[tokio::test]
async fn postgres_outbox_keeps_thread_order() {
    on_postgres(a_pending_message_is_never_overtaken_in_its_thread).await;
}

/// Two replicas racing for the same due replies each get different ones; a live claim
/// keeps a reply from the other, a lapsed one (its sender died) lets the other take it
/// over, and a failed attempt makes it due again later with its attempt counted.
async fn each_reply_is_claimed_once_and_a_lapsed_claim_is_taken_over(a: Store, b: Store) {
    use odorbot::domain::view::Message;
    let at = |ms: i64| jiff::Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap();
    let issued = at(-2_000);
    for i in 0..6 {
        let store = if i % 2 == 0 { &a } else { &b };
        store
            .enqueue_reply(
                &format!("https://hooks.example/r{i}"),
                &Message::text(format!("reply {i}")),
                i == 5,
                issued,
                at(0),
            )
            .await
            .unwrap();
    }
    let (from_a, from_b) = tokio::join!(
        a.claim_replies("replica-a", at(0), 15_000, 4),
        b.claim_replies("replica-b", at(0), 15_000, 4)
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    let mut urls: Vec<&str> = from_a
        .iter()
        .chain(&from_b)
        .map(|r| r.response_url.as_str())
        .collect();
    urls.sort_unstable();
    let all: Vec<String> = (0..6)
        .map(|i| format!("https://hooks.example/r{i}"))
        .collect();
    assert_eq!(urls, all, "each reply claimed by exactly one replica");
    let last = from_a
        .iter()
        .chain(&from_b)
        .find(|r| r.response_url.ends_with("r5"))
        .unwrap();
    assert!(last.replace_original);
    assert_eq!(last.message, Message::text("reply 5"));
    assert_eq!((last.attempts, last.issued_at), (0, issued));

    // Under the claims' lease nobody else gets them; once it lapsed, the other does.
    assert!(
        b.claim_replies("replica-b", at(14_000), 15_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let taken_over = b
        .claim_replies("replica-b", at(15_001), 15_000, 10)
        .await
        .unwrap();
    assert_eq!(taken_over.len(), 6);

    // A failed attempt: due again later, claimable at once then, attempts counted.
    let failed = &taken_over[0];
    b.reply_retry_at(&failed.id, at(60_000)).await.unwrap();
    for r in &taken_over[1..] {
        b.reply_done(&r.id).await.unwrap();
    }
    assert_eq!(a.replies_len().await.unwrap(), 1);
    assert!(
        a.claim_replies("replica-a", at(59_000), 15_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let again = a
        .claim_replies("replica-a", at(60_000), 15_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id.as_str(), again[0].attempts),
        (failed.id.as_str(), 1)
    );
    a.reply_done(&again[0].id).await.unwrap();
    assert_eq!(b.replies_len().await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_reply_claims() {
    on_sqlite(each_reply_is_claimed_once_and_a_lapsed_claim_is_taken_over).await;
}

#[tokio::test]
async fn postgres_reply_claims() {
    on_postgres(each_reply_is_claimed_once_and_a_lapsed_claim_is_taken_over).await;
}

#[tokio::test]
async fn sqlite_timer_leases() {
    on_sqlite(each_timer_has_its_own_renewable_lease).await;
}

#[tokio::test]
async fn postgres_timer_leases() {
    on_postgres(each_timer_has_its_own_renewable_lease).await;
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

/// `n` handles on one store, opened one after the other (each migrates), as `n` processes
/// sharing the file or server would hold them.
async fn handles(url: &SecretString, n: usize) -> Vec<Store> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Store::open(url, 4).await.unwrap());
    }
    out
}

fn new_incident(title: String, group_key: Option<&str>) -> NewIncident {
    NewIncident {
        severity: Severity::High,
        title,
        entry: None,
        group_key: group_key.map(str::to_owned),
        opened_by: "alertmanager".into(),
    }
}

/// Many writers on several pools open incidents at the same moment: every opening
/// succeeds (none fails with SQLITE_BUSY or runs out of retries), and the numbers are
/// 1..=n, each once; racers for one Alertmanager group all get its single incident.
async fn concurrent_openings_all_succeed_with_gapless_numbers(stores: Vec<Store>) {
    const OPENINGS: usize = 48;
    const SAME_GROUP: usize = 16;
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(OPENINGS + SAME_GROUP));
    let mut racers = Vec::new();
    for i in 0..OPENINGS + SAME_GROUP {
        let store = stores[i % stores.len()].clone();
        let start = start.clone();
        racers.push(tokio::spawn(async move {
            let new = if i < OPENINGS {
                new_incident(format!("by hand {i}"), None)
            } else {
                new_incident("from alertmanager".into(), Some("{}:{alertname=\"X\"}"))
            };
            start.wait().await;
            (i, store.open_incident(&new, now).await)
        }));
    }
    let (mut numbers, mut group) = (Vec::new(), Vec::new());
    for r in racers {
        let (i, opened) = r.await.unwrap();
        let (incident, created) = opened.unwrap_or_else(|e| panic!("opening {i} failed: {e}"));
        if i < OPENINGS {
            assert!(created, "opening {i} made a new incident");
            numbers.push(incident.number);
        } else {
            group.push((incident.number, created));
        }
    }
    let group_number = group[0].0;
    assert!(group.iter().all(|(n, _)| *n == group_number), "{group:?}");
    assert_eq!(group.iter().filter(|(_, created)| *created).count(), 1);
    numbers.push(group_number);
    numbers.sort_unstable();
    let expected: Vec<i64> = (1..=(OPENINGS as i64 + 1)).collect();
    assert_eq!(numbers, expected, "unique and without gaps");
    // Each opening wrote its timeline entry in the same transaction.
    for n in [1, OPENINGS as i64 + 1] {
        let incident = stores[0].incident_by_number(n).await.unwrap().unwrap();
        let timeline = stores[0].timeline(&incident.id).await.unwrap();
        assert_eq!(timeline.len(), 1, "{timeline:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_incident_openings_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let url = SecretString::from(format!(
        "sqlite://{}",
        dir.path().join("odorbot.db").display()
    ));
    concurrent_openings_all_succeed_with_gapless_numbers(handles(&url, 4).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_incident_openings_all_succeed() {
    let db = TempDb::create().await;
    let url = SecretString::from(db.url.clone());
    let stores = handles(&url, 4).await;
    concurrent_openings_all_succeed_with_gapless_numbers(stores.clone()).await;
    for s in stores {
        s.close().await;
    }
    db.drop_db().await;
}

/// Writers on several pools open 40 alert incidents at once with storm admission: the
/// first `threshold` stay alone, exactly one storm starts (racing replicas never start
/// two), every other incident joins it, and the storm counts them all.
async fn racing_openings_start_one_storm(stores: Vec<Store>) {
    use odorbot::domain::storm::StormPolicy;
    const OPENINGS: usize = 40;
    let policy = StormPolicy::default();
    let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(OPENINGS));
    let mut racers = Vec::new();
    for i in 0..OPENINGS {
        let store = stores[i % stores.len()].clone();
        let start = start.clone();
        racers.push(tokio::spawn(async move {
            let group = format!("{{}}:{{alertname=\"S{i}\"}}");
            let new = new_incident(format!("storm {i}"), Some(&group));
            start.wait().await;
            store.open_in_storm(&new, now, Some(&policy)).await
        }));
    }
    let (mut alone, mut storms, mut started) = (0, std::collections::BTreeSet::new(), 0);
    for r in racers {
        let opened = r.await.unwrap().expect("every opening succeeds");
        assert!(opened.created);
        match opened.storm {
            None => alone += 1,
            Some((storm, first)) => {
                assert!(storm.is_storm(), "{storm:?}");
                assert!(opened.incident.held_by_storm());
                storms.insert(storm.id);
                started += usize::from(first);
            }
        }
    }
    assert_eq!(alone, policy.threshold);
    assert_eq!((storms.len(), started), (1, 1), "one storm, started once");
    let storm = storms.pop_first().unwrap();
    let members = stores[0].storm_members(&storm).await.unwrap();
    assert_eq!(members.len(), OPENINGS - policy.threshold);
    // A member's own thread is given once.
    assert!(stores[0].detach(&members[0].id, now).await.unwrap());
    assert!(!stores[0].detach(&members[0].id, now).await.unwrap());
    assert!(
        !stores[0].detach(&storm, now).await.unwrap(),
        "a storm is no member"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_openings_start_one_storm() {
    let dir = tempfile::tempdir().unwrap();
    let url = SecretString::from(format!(
        "sqlite://{}",
        dir.path().join("odorbot.db").display()
    ));
    racing_openings_start_one_storm(handles(&url, 4).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_openings_start_one_storm() {
    let db = TempDb::create().await;
    let url = SecretString::from(db.url.clone());
    let stores = handles(&url, 4).await;
    racing_openings_start_one_storm(stores.clone()).await;
    for s in stores {
        s.close().await;
    }
    db.drop_db().await;
}

/// The alert inbox keeps a group's notifications in order and lets groups pass each
/// other: of A1, A2 (group A) and B1, the first claim gets A1 and B1, never A2, which
/// becomes claimable once A1 is finished; a failure makes a row due later with its error
/// kept; a lapsed lease lets another replica take a row over, and the old owner can then
/// no longer finish it; ids are never reused.
async fn the_alert_inbox_applies_each_group_in_order(a: Store, b: Store) {
    use std::time::Duration;
    let at = |ms: i64| jiff::Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap();
    let a1 = a.enqueue_alert("group-a", "A1", at(0)).await.unwrap();
    let a2 = b.enqueue_alert("group-a", "A2", at(10)).await.unwrap();
    let b1 = a.enqueue_alert("group-b", "B1", at(20)).await.unwrap();
    assert!(a1 < a2 && a2 < b1, "ids in arrival order: {a1} {a2} {b1}");
    let backlog = b.backlog(at(1_020), Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        (backlog.alert_inbox.pending, backlog.alert_inbox.oldest_age),
        (3, Duration::from_millis(1_020))
    );

    let first = a
        .claim_alerts("replica-a", at(100), 30_000, 10)
        .await
        .unwrap();
    let bodies: Vec<&str> = first.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["A1", "B1"], "one per group, the group's oldest");
    assert_eq!(
        (
            first[0].group_key.as_str(),
            first[0].attempts,
            first[0].received_at
        ),
        ("group-a", 0, at(0))
    );
    assert!(
        b.claim_alerts("replica-b", at(200), 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "A2 waits while A1 is in the inbox, claimed or not"
    );
    assert!(
        !b.finish_alert(a1, "replica-b").await.unwrap(),
        "only the owner of a claim finishes it"
    );
    assert!(a.finish_alert(a1, "replica-a").await.unwrap());
    let next = b
        .claim_alerts("replica-b", at(300), 30_000, 10)
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        ["A2"]
    );

    // B1 failed: due again in 5 s, its error kept, its attempt counted.
    assert!(
        a.retry_alert(b1, "replica-a", "store hiccup", at(5_300))
            .await
            .unwrap()
    );
    assert!(
        b.claim_alerts("replica-b", at(5_299), 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let errors = a.inbox_errors().await.unwrap();
    assert_eq!(
        errors,
        vec![(a2, 0, None), (b1, 1, Some("store hiccup".to_owned()))]
    );
    let again = b
        .claim_alerts("replica-b", at(5_300), 30_000, 10)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|r| (r.id, r.attempts)).collect::<Vec<_>>(),
        [(b1, 1)]
    );

    // replica-b dies holding A2 (claimed at 300, lease 30 s, renewed to 40 s) and B1
    // (claimed at 5.3 s, to 35.3 s): renewed, A2 stays b's past its first lease; once both
    // leases lapsed, replica-a takes both over and b's late finish removes nothing.
    assert!(b.renew_alert(a2, "replica-b", at(40_000)).await.unwrap());
    assert!(
        a.claim_alerts("replica-a", at(35_000), 30_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "held under a live, renewed lease"
    );
    let taken = a
        .claim_alerts("replica-a", at(40_001), 30_000, 10)
        .await
        .unwrap();
    let mut taken: Vec<i64> = taken.iter().map(|r| r.id).collect();
    taken.sort_unstable();
    assert_eq!(taken, [a2, b1], "both of b's lapsed claims");
    assert!(!b.finish_alert(a2, "replica-b").await.unwrap());
    assert!(!b.renew_alert(a2, "replica-b", at(90_000)).await.unwrap());
    assert!(a.finish_alert(a2, "replica-a").await.unwrap());
    assert!(a.finish_alert(b1, "replica-a").await.unwrap());
    let empty = b
        .backlog(at(41_000), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        (empty.alert_inbox.pending, empty.alert_inbox.oldest_age),
        (0, Duration::ZERO)
    );

    // An empty inbox does not start its ids again.
    let later = b.enqueue_alert("group-a", "A3", at(50_000)).await.unwrap();
    assert!(later > b1, "{later} after {b1}");
}

/// Sixteen writers on two handles store 60 notifications in 20 groups at once (three
/// each), and eight claimers on the two handles drain the inbox racing each other: no
/// notification is claimed twice, each group's in order, and none is lost.
async fn racing_replicas_store_and_claim_each_notification_once(a: Store, b: Store) {
    let at = |ms: i64| jiff::Timestamp::from_millisecond(1_800_000_000_000 + ms).unwrap();
    let mut writers = Vec::new();
    for w in 0..16 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..60 {
                if k % 16 != w {
                    continue;
                }
                let group = format!("g{}", k % 20);
                ids.push((
                    k,
                    store
                        .enqueue_alert(&group, &format!("n{k}"), at(0))
                        .await
                        .unwrap(),
                ));
            }
            ids
        }));
    }
    let mut stored = Vec::new();
    for w in writers {
        stored.extend(w.await.unwrap());
    }
    let mut ids: Vec<i64> = stored.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60, "every notification stored with its own id");

    let claimed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let mut claimers = Vec::new();
    for c in 0..8 {
        let store = if c % 2 == 0 { a.clone() } else { b.clone() };
        let claimed = claimed.clone();
        claimers.push(tokio::spawn(async move {
            let owner = format!("replica-{c}");
            let mut idle = 0;
            while idle < 20 {
                let rows = store
                    .claim_alerts(&owner, at(1_000), 30_000, 3)
                    .await
                    .unwrap();
                if rows.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                for row in rows {
                    claimed
                        .lock()
                        .unwrap()
                        .push((row.group_key.clone(), row.id));
                    assert!(store.finish_alert(row.id, &owner).await.unwrap());
                }
            }
        }));
    }
    for c in claimers {
        c.await.unwrap();
    }
    let claimed = claimed.lock().unwrap().clone();
    let mut once: Vec<i64> = claimed.iter().map(|(_, id)| *id).collect();
    once.sort_unstable();
    assert_eq!(once, ids, "each notification claimed exactly once");
    // Within a group, claims happened in id order (each was finished before the next
    // of its group could be claimed, so the record's order is the claim order).
    for g in 0..20 {
        let group = format!("g{g}");
        let seq: Vec<i64> = claimed
            .iter()
            .filter(|(k, _)| *k == group)
            .map(|(_, id)| *id)
            .collect();
        let mut sorted = seq.clone();
        sorted.sort_unstable();
        assert_eq!(seq, sorted, "{group} in order");
    }
    let left = a
        .backlog(at(2_000), std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(left.alert_inbox.pending, 0);
}

#[tokio::test]
async fn sqlite_alert_inbox_keeps_group_order() {
    on_sqlite(the_alert_inbox_applies_each_group_in_order).await;
}

#[tokio::test]
async fn postgres_alert_inbox_keeps_group_order() {
    on_postgres(the_alert_inbox_applies_each_group_in_order).await;
}

#[tokio::test]
async fn sqlite_alert_inbox_racing_replicas() {
    on_sqlite(racing_replicas_store_and_claim_each_notification_once).await;
}

#[tokio::test]
async fn postgres_alert_inbox_racing_replicas() {
    on_postgres(racing_replicas_store_and_claim_each_notification_once).await;
}

/// A guided run is driven by one replica at a time (the other takes it only once the claim
/// lapsed), and a write made on a stale read is applied again to the fresh run, so a
/// person's pause and the driver's step both land.
async fn a_run_is_driven_by_one_replica_and_no_write_is_lost(a: Store, b: Store) {
    use odorbot::domain::guide::{Control, Run, RunState, StepState};
    let t = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
    let catalog = odorbot::runbook::load_default().unwrap();
    let procedure = catalog.procedure("database-maintenance").unwrap();
    let run = Run::start("run-1".into(), procedure, vec![], "weekly", "U0ALICE", 0);
    a.create_run(&run, "C0OPS", t(0)).await.unwrap();
    // Not driven before its message is posted: its thread does not exist yet.
    assert!(a.claim_runs("A", t(1), t(31)).await.unwrap().is_empty());
    a.set_run_ts("run-1", "1700000000.000100").await.unwrap();
    assert_eq!(a.claim_runs("A", t(1), t(31)).await.unwrap().len(), 1);
    assert!(b.claim_runs("B", t(2), t(32)).await.unwrap().is_empty());
    // The holder renews; the other replica takes over only after the claim lapsed.
    assert_eq!(a.claim_runs("A", t(10), t(40)).await.unwrap().len(), 1);
    assert!(b.claim_runs("B", t(39), t(69)).await.unwrap().is_empty());
    assert_eq!(b.claim_runs("B", t(41), t(71)).await.unwrap().len(), 1);
    let (step, pause) = tokio::join!(
        a.update_run("run-1", t(42), |r| Ok(r.requested(0, 42, "req-1"))),
        b.update_run("run-1", t(42), |r| r.control(Control::Pause, "U0BOB", 42)),
    );
    assert!(matches!(step, Ok(Some(Ok(_)))), "{step:?}");
    assert!(matches!(pause, Ok(Some(Ok(_)))), "{pause:?}");
    let stored = a.run("run-1").await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.run.state, RunState::Paused);
    assert_eq!(
        stored.run.states[0],
        StepState::Requested {
            request: "req-1".into()
        }
    );
    // A refusal writes nothing.
    let again = b
        .update_run("run-1", t(43), |r| r.control(Control::Pause, "U0BOB", 43))
        .await
        .unwrap();
    assert!(matches!(again, Some(Err(_))), "{again:?}");
    assert_eq!(a.run("run-1").await.unwrap().unwrap().version, 2);
    // A paused run is driven by nobody.
    assert!(a.claim_runs("A", t(100), t(130)).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_runs_are_driven_once_and_lose_no_write() {
    on_sqlite(a_run_is_driven_by_one_replica_and_no_write_is_lost).await;
}

#[tokio::test]
async fn postgres_runs_are_driven_once_and_lose_no_write() {
    on_postgres(a_run_is_driven_by_one_replica_and_no_write_is_lost).await;
}

/// Evidence is kept whole, byte for byte, with its hash; a collection written again (a
/// step retried by the replica that took the run over) keeps the first copy and doubles
/// nothing, even when both write at once.
async fn evidence_is_kept_whole_once_per_collection(a: Store, b: Store) {
    use odorbot::domain::evidence::{Collection, Kind, Read, sha256_hex};
    let read = |name: &str, content: &str| Read {
        name: name.into(),
        kind: Kind::Log,
        content: content.into(),
        truncated: false,
    };
    let big = "ü→ line\n".repeat(50_000);
    let first = Collection::keep(
        vec![read("log/p/app", &big), read("events", "[]\u{0}")],
        "U0ALICE",
        1,
    );
    let again = Collection::keep(vec![read("log/p/app", "other")], "U0BOB", 2);
    let (x, y) = tokio::join!(
        a.keep_evidence("inc-1", "run-1.1", &first.kept),
        b.keep_evidence("inc-1", "run-1.1", &again.kept),
    );
    assert_eq!(
        x.unwrap() + y.unwrap(),
        2,
        "one of the log copies is kept, never both"
    );
    let later = Collection::keep(vec![read("log/p/app", "later")], "U0ALICE", 3);
    assert_eq!(
        a.keep_evidence("inc-1", "run-2.1", &later.kept)
            .await
            .unwrap(),
        1
    );
    assert!(a.evidence("inc-2").await.unwrap().is_empty());
    let kept = b.evidence("inc-1").await.unwrap();
    assert_eq!(kept.len(), 3, "{kept:?}");
    // The listing has the same items and hashes, without the megabytes.
    let listed = a.evidence_list("inc-1").await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|i| (&i.name, &i.sha256, i.bytes))
            .collect::<Vec<_>>(),
        kept.iter()
            .map(|i| (&i.name, &i.sha256, i.bytes))
            .collect::<Vec<_>>()
    );
    assert!(listed.iter().all(|i| i.content.is_empty()));
    for item in &kept {
        assert_eq!(item.sha256, sha256_hex(item.content.as_bytes()));
        assert_eq!(item.bytes, item.content.len());
    }
    let events = kept.iter().find(|i| i.name == "events").unwrap();
    assert_eq!(events.content, "[]\u{fffd}");
    assert_eq!(events.collected_by, "U0ALICE");
    let logs: Vec<&str> = kept
        .iter()
        .filter(|i| i.name == "log/p/app")
        .map(|i| i.content.as_str())
        .collect();
    assert_eq!(logs.len(), 2);
    assert!(
        logs[0] == big || logs[0] == "other",
        "the first collection's copy"
    );
    assert_eq!(logs[1], "later");
}

#[tokio::test]
async fn sqlite_evidence_is_kept_whole_once_per_collection() {
    on_sqlite(evidence_is_kept_whole_once_per_collection).await;
}

#[tokio::test]
async fn postgres_evidence_is_kept_whole_once_per_collection() {
    on_postgres(evidence_is_kept_whole_once_per_collection).await;
}
