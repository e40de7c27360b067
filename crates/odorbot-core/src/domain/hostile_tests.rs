//! Hostile text through every renderer that puts outside text into a Slack message: what
//! users type, alert labels and annotations, log lines, Kubernetes objects and probe
//! results. Whatever it holds, the message may mention nobody, link nowhere, and carry no
//! bidirectional control or zero-width character (`fuzzing::check_message`).

use jiff::Timestamp;
use proptest::prelude::*;

use super::approval::{self, ApprovalState, Request, Verification};
use super::diagnostics::{self, CertInfo};
use super::incident::{self, StatusUpdate, TimelineEntry};
use super::k8s::{
    ContainerState, EventInfo, HelmRevision, LogsReport, PodDescription, PodInfo, PodLogs,
};
use super::k8s_view;
use super::signals::{Links, Verdict};
use super::view::{Message, code_span, escape};
use crate::fuzzing::{self, check_message, incident_template, mrkdwn_problem};

/// Text built from the pieces that would do harm if they reached Slack as written, mixed
/// with arbitrary text. `evil` marks what the checker must never find inside a control.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<!channel>"),
        Just("<!here>"),
        Just("<!everyone>"),
        Just("<!subteam^SEVIL>"),
        Just("<@UEVIL>"),
        Just("<@WEVIL|boss>"),
        Just("<#CEVIL>"),
        Just("<http://evil.example|click here>"),
        Just("<https://evil.example>"),
        Just("<mailto:evil@example.com|mail>"),
        Just("UEVIL> <!channel"),
        Just("&"),
        Just("&lt;"),
        Just("<"),
        Just(">"),
        Just("`"),
        Just("```"),
        Just("*"),
        Just("_"),
        Just("~"),
        Just("\n"),
        Just("\u{202e}"),
        Just("\u{2066}"),
        Just("\u{200b}"),
        Just("\u{061c}"),
        Just("\u{2060}"),
        Just("\u{feff}"),
        Just("odordiff-api"),
    ];
    prop::collection::vec(
        prop_oneof![4 => piece.prop_map(str::to_owned), 1 => any::<String>()],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn safe(what: &str, m: &Message) -> Result<(), TestCaseError> {
    check_message(m).map_err(|p| TestCaseError::fail(format!("{what}: {p}")))
}

fn safe_text(what: &str, t: &str) -> Result<(), TestCaseError> {
    match mrkdwn_problem(t) {
        Some(p) => Err(TestCaseError::fail(format!("{what}: {p} in {t:?}"))),
        None => Ok(()),
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn pod(name: String, phase: String, reason: Option<String>) -> PodInfo {
    PodInfo {
        name,
        phase,
        ready: false,
        ready_containers: 0,
        containers: 1,
        restarts: 3,
        reason,
        created: None,
        terminating: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn escape_and_code_span_leave_no_control(text in hostile()) {
        safe_text("escape", &escape(&text))?;
        let span = code_span(&text);
        safe_text("code_span", &span)?;
        // Only the span's own two backticks: the input cannot close it early.
        prop_assert!(span == "(empty)" || span.matches('`').count() == 2, "{span:?}");
    }

    #[test]
    fn an_incident_from_any_alert_or_person_renders_safely(
        title in hostile(), entry in hostile(), who in hostile(), text in hostile(),
    ) {
        let i = incident::Incident {
            title,
            entry: Some(entry),
            owner: Some(who.clone()),
            opened_by: who.clone(),
            acked_at: Some(at("2026-12-02T12:01:00Z")),
            acked_by: Some(who.clone()),
            ..incident_template()
        };
        let policy = fuzzing::shipped_catalog().escalation_policy();
        safe("root message", &incident::root_message(&i, &policy, at("2026-12-02T12:30:00Z")))?;
        let update = StatusUpdate {
            incident: &i,
            now: at("2026-12-02T12:30:00Z"),
            signals: vec![diagnostics::verdict_line("Error rate", "2%", &Verdict::Unknown(text.clone()))],
            since_last: vec![TimelineEntry {
                at: at("2026-12-02T12:10:00Z"),
                kind: "update".into(),
                actor: who,
                text,
            }],
            nudge: None,
        };
        safe("status update", &update.render())?;
    }

    #[test]
    fn alertmanager_labels_and_annotations_reach_slack_escaped(
        name in hostile(), summary in hostile(), severity in hostile(), common in hostile(),
    ) {
        let body = serde_json::json!({
            "version": "4", "groupKey": "g", "status": "firing", "receiver": "odorbot",
            "commonLabels": {"severity": severity},
            "commonAnnotations": {"summary": common},
            "alerts": [
                {"status": "firing", "labels": {"alertname": format!("x{name}")},
                 "annotations": {"summary": summary}, "startsAt": "2026-12-02T11:00:00Z",
                 "fingerprint": "ab12"},
                {"status": "firing", "labels": {"alertname": format!("y{name}")},
                 "startsAt": "2026-12-02T11:00:00Z", "fingerprint": "cd34"},
                {"status": "resolved", "labels": {"alertname": format!("z{name}")},
                 "startsAt": "2026-12-02T11:00:00Z", "fingerprint": "ef56"},
            ],
        });
        // The alert body checks the root message and the notes of each alert.
        fuzzing::alert(body.to_string().as_bytes());
    }

    #[test]
    fn kubernetes_objects_and_log_lines_render_safely(
        a in hostile(), b in hostile(), c in hostile(), lines in prop::collection::vec(hostile(), 0..6),
    ) {
        let p = pod(a.clone(), b.clone(), Some(c.clone()));
        safe("pods", &k8s_view::render_pods("app=odordiff-api", std::slice::from_ref(&p)))?;
        let event = EventInfo {
            time: Some(a.clone()),
            kind: b.clone(),
            reason: c.clone(),
            object: a.clone(),
            message: b.clone(),
            count: 2,
        };
        safe("events", &k8s_view::render_events(std::slice::from_ref(&event)))?;
        let description = PodDescription {
            pod: p,
            conditions: vec![a.clone(), b.clone()],
            containers: vec![ContainerState {
                name: a.clone(),
                image: b.clone(),
                state: c.clone(),
                restarts: 1,
                last_termination: Some(a.clone()),
                ready: false,
            }],
            events: vec![event],
        };
        safe("describe", &k8s_view::render_descriptions("app=odordiff-api", &[description]))?;
        let logs = LogsReport {
            pods: vec![
                PodLogs { pod: a.clone(), container: b.clone(), lines, truncated: true, error: None },
                PodLogs { pod: a.clone(), container: b.clone(), lines: vec![], truncated: false, error: Some(c.clone()) },
            ],
            omitted_pods: 0,
        };
        let rendered = k8s_view::render_logs("app=odordiff-api", &logs);
        safe("logs", &rendered)?;
        let helm = HelmRevision {
            revision: 4,
            status: a,
            chart: b.clone(),
            app_version: c.clone(),
            description: b,
            updated: c,
        };
        safe("helm history", &k8s_view::render_helm_history("odordiff-2", &[helm]))?;
    }

    #[test]
    fn probe_results_render_safely(host in hostile(), issuer in hostile(), name in hostile(), why in hostile()) {
        let cert = CertInfo { issuer, names: vec![name], not_after_unix: 0, seconds_left: 86_400 * 3 };
        safe("tls", &diagnostics::render_tls(&host, &Ok(cert), &Links::default()))?;
        safe_text("verdict", &diagnostics::verdict_line("Redis", "up", &Verdict::Unknown(why.clone())))?;
        safe_text("verdict", &diagnostics::verdict_line("Redis", "up", &Verdict::Breach(why)))?;
    }

    #[test]
    fn approval_cards_show_requests_safely(
        command in hostile(), reason in hostile(), preview in hostile(), outcome in hostile(), finding in hostile(),
    ) {
        let t = at("2026-12-02T12:00:00Z");
        let r = Request {
            id: "a1".into(),
            state: ApprovalState::Failed,
            verb: "rollback".into(),
            command,
            action: "{}".into(),
            requester: "UA1".into(),
            reason,
            preview,
            fingerprint: String::new(),
            approvals: vec!["UB2".into()],
            required: 1,
            created_at: t,
            expires_at: t,
            channel: "C1".into(),
            message_ts: None,
            outcome: Some(outcome),
            verification: Some(Verification { ok: false, findings: vec![finding] }),
            lease_until: None,
            updated_at: t,
        };
        safe("approval card", &approval::card(&r))?;
        safe_text("what became of it", &approval::what_became_of(&r))?;
    }

    #[test]
    fn refusals_of_any_command_are_safe(words in prop::collection::vec(hostile(), 0..6)) {
        // The command body checks the reply to a refused command.
        fuzzing::command(words.join(" ").as_bytes());
    }
}

#[test]
fn a_user_field_that_only_starts_like_an_id_is_not_a_mention() {
    let i = incident::Incident {
        owner: Some("U1> <!channel".into()),
        opened_by: "UEVIL|x".into(),
        ..incident_template()
    };
    let policy = fuzzing::shipped_catalog().escalation_policy();
    let m = incident::root_message(&i, &policy, at("2026-12-02T12:30:00Z"));
    check_message(&m).unwrap();
    let fields = format!("{:?}", m.blocks);
    assert!(fields.contains("U1&gt; &lt;!channel"), "{fields}");
}

#[test]
fn an_alert_summary_cannot_reorder_the_incident_header() {
    let i = incident::Incident {
        title: "API down \u{202e}gnp.exe".into(),
        ..incident_template()
    };
    let policy = fuzzing::shipped_catalog().escalation_policy();
    let m = incident::root_message(&i, &policy, at("2026-12-02T12:30:00Z"));
    check_message(&m).unwrap();
}

#[test]
fn incident_hints_show_the_placeholder_escaped() {
    let policy = fuzzing::shipped_catalog().escalation_policy();
    let m = incident::root_message(&incident_template(), &policy, at("2026-12-02T12:30:00Z"));
    check_message(&m).unwrap();
    assert!(format!("{:?}", m.blocks).contains("/odor update INC-7 &lt;text&gt;"));
}
