//! Who may do what, through the binary: every command has an access rule; a refusal names
//! the role or channel needed, changes nothing and is audited.

use std::time::Duration;

use crate::support::bot::Bot;
use crate::support::fake_slack::{Delivery, FakeSlack};

const WAIT: Duration = Duration::from_secs(20);
const OPS: &str = "C0OPS";
const INCIDENTS: &str = "C0INCIDENT";

async fn bot(fake: &FakeSlack) -> Bot {
    let bot = Bot::start_config(
        fake,
        None,
        &[],
        &format!(
            "approvals:\n  roles:\n    operator: [U0OPS]\n    approver: [U0APPROVER]\n\
             incidents:\n  channel: {INCIDENTS}\n  roster:\n    primary: [U0PRIMARY]\n\
             access:\n  channels: [{OPS}, {INCIDENTS}]\n"
        ),
    )
    .await;
    assert!(fake.wait_connections(2, WAIT).await, "{}", bot.logs());
    bot
}

async fn ask(fake: &FakeSlack, user: &str, channel: &str, text: &str) -> String {
    let d: Delivery = fake.slash_command(user, channel, text).await;
    fake.reply_to(&d, WAIT)
        .await
        .unwrap_or_else(|| panic!("no reply to {text:?}"))
        .body
        .to_string()
}

/// A user with no role reads the service's state, and is refused everything that can hold
/// secrets or personal data, with the role named; each refusal is in the audit log.
#[tokio::test]
async fn a_user_without_a_role_reads_state_but_not_sensitive_data() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake).await;
    let sensitive = [
        ("logs odordiff-api", "logs"),
        ("describe odordiff-api", "describe"),
        ("db slow-queries", "db"),
        ("cache stats --pattern 'session:*'", "cache"),
        ("diagnose api-service-down", "diagnose"),
        ("audit --json", "audit"),
        ("access-review", "access-review"),
    ];
    for (text, verb) in sensitive {
        let reply = ask(&fake, "U0NOBODY", OPS, text).await;
        assert!(reply.contains(":no_entry:"), "{text}: {reply}");
        assert!(reply.contains(&format!("`{verb}`")), "{text}: {reply}");
        assert!(reply.contains("`operator`"), "{text}: {reply}");
        assert!(reply.contains("Nothing was done"), "{text}: {reply}");
    }
    for text in ["status", "pods", "help", "oncall", "db connections"] {
        let reply = ask(&fake, "U0NOBODY", OPS, text).await;
        assert!(!reply.contains(":no_entry:"), "{text}: {reply}");
    }
    // An operator may read what was refused, and the audit export lists every refusal.
    let audit = ask(&fake, "U0OPS", OPS, "audit --since 1h --json").await;
    assert!(!audit.contains(":no_entry:"), "{audit}");
    for (_, verb) in sensitive {
        let needle = format!("{verb} in {OPS}: scope sensitive needs one of operator");
        assert!(audit.contains(&needle), "missing {needle:?} in {audit}");
    }
    assert!(audit.contains("U0NOBODY"), "{audit}");
}

/// Opening pages the on-call and resolving stops the escalation: neither is for anyone.
#[tokio::test]
async fn incidents_are_opened_by_operators_and_resolved_by_the_on_call() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake).await;
    let refused = ask(
        &fake,
        "U0NOBODY",
        INCIDENTS,
        "incident open high checkout slow",
    )
    .await;
    assert!(refused.contains("`roster`, `operator`"), "{refused}");
    let opened = ask(
        &fake,
        "U0OPS",
        INCIDENTS,
        "incident open high checkout slow",
    )
    .await;
    assert!(opened.contains("Opened INC-1"), "{opened}");
    let refused = ask(&fake, "U0NOBODY", INCIDENTS, "resolve INC-1").await;
    assert!(refused.contains(":no_entry:"), "{refused}");
    assert!(
        refused.contains("`incident_commander`, `oncall`, `approver`"),
        "{refused}"
    );
    // An operator is not thereby someone who may resolve.
    let refused = ask(&fake, "U0OPS", INCIDENTS, "resolve INC-1").await;
    assert!(refused.contains(":no_entry:"), "{refused}");
    let timeline = ask(&fake, "U0NOBODY", INCIDENTS, "timeline INC-1").await;
    assert!(!timeline.contains("resolved"), "{timeline}");
    let resolved = ask(&fake, "U0PRIMARY", INCIDENTS, "resolve INC-1").await;
    assert!(!resolved.contains(":no_entry:"), "{resolved}");
    assert!(resolved.to_lowercase().contains("resolved"), "{resolved}");
}

/// Commands are taken in the configured channels only, and the refusal names them.
#[tokio::test]
async fn commands_outside_the_configured_channels_are_refused() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake).await;
    let reply = ask(&fake, "U0OPS", "C0RANDOM", "status").await;
    assert!(reply.contains(":no_entry:"), "{reply}");
    assert!(reply.contains(&format!("<#{OPS}>")), "{reply}");
    assert!(reply.contains(&format!("<#{INCIDENTS}>")), "{reply}");
}

/// A guided run whose read-only check cannot be made (there is no Kubernetes here) pauses
/// on it instead of passing over it, and *Abandon* on its message ends it; a user who may
/// not read sensitive data cannot start one.
#[tokio::test]
async fn a_guided_run_pauses_on_a_check_it_cannot_make_and_can_be_abandoned() {
    let fake = FakeSlack::start().await;
    let bot = bot(&fake).await;
    let command = "run user-access-review --reason \"quarterly review\"";
    let refused = ask(&fake, "U0NOBODY", OPS, command).await;
    assert!(!refused.contains("Started"), "{refused}");
    let started = ask(&fake, "U0OPS", OPS, command).await;
    assert!(
        started.contains("Started *User Access Review*"),
        "{started}"
    );
    let posted = |what: &'static str| {
        let fake = &fake;
        async move {
            fake.wait_until(WAIT, |f| {
                f.calls_to("chat.postMessage")
                    .iter()
                    .any(|c| c.body.to_string().contains(what))
            })
            .await
        }
    };
    assert!(
        posted("🔴 Step 1: List service accounts and review RBAC permissions failed: its check could not be made").await,
        "{}",
        bot.logs()
    );
    assert!(posted("Kubernetes is not available").await);
    let root = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .find(|c| c.body.to_string().contains("Procedure: User Access Review"))
        .expect("the run's message");
    let abandon = root.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["elements"].as_array())
        .flatten()
        .filter_map(|e| e["action_id"].as_str())
        .find(|id| id.starts_with("run:abandon:"))
        .expect("an Abandon button")
        .to_owned();
    let d = fake
        .block_action("U0OPS", OPS, &abandon, "", "1700000000.000100")
        .await;
    let answer = fake
        .reply_to(&d, WAIT)
        .await
        .expect("a reply")
        .body
        .to_string();
    assert!(answer.contains("Recorded: abandon"), "{answer}");
    assert!(
        fake.wait_until(WAIT, |f| f
            .calls_to("chat.update")
            .iter()
            .any(|c| c.body.to_string().contains("(0/2 steps, abandoned)")))
            .await
    );
}
