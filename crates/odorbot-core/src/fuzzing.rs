//! Fuzz bodies for the core's parsers, and the check that text bound for Slack is safe.
//!
//! Each `pub fn <target>(data: &[u8])` is what the libFuzzer target of the same name in
//! `fuzz/` runs; the tests below run the same bodies over the committed corpora and over
//! random inputs, so a finding stays fixed without cargo-fuzz. A body panics only when a
//! property fails (or the code under test panics), which is what the fuzzer reports.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jiff::Timestamp;

use crate::domain::alert;
use crate::domain::args::tokenize;
use crate::domain::command::{self, Context};
use crate::domain::incident::{self, Incident, IncidentState};
use crate::domain::intake::{self, AlertStep, EntryFacts};
use crate::domain::view::{Block, Message, escape};
use crate::runbook::{self, Catalog};

/// A fixed clock: bodies must be deterministic for the fuzzer to minimise a finding.
const NOW: &str = "2026-12-02T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("a valid timestamp")
}

/// The shipped catalog, compiled once: parsing it per input would dominate the run.
pub fn shipped_catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| runbook::load_default().expect("the shipped catalog compiles"))
}

/// The `/odor` parser against the shipped catalog. A refusal is a reply in Slack, so its
/// text must be safe mrkdwn and short; simple words survive tokenising when re-joined.
pub fn command(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = Context {
        catalog: shipped_catalog(),
        now_unix: now().as_second(),
    };
    match command::parse(text, &ctx) {
        Ok(cmd) => {
            let _ = (cmd.verb(), cmd.scope(), cmd.to_string());
        }
        Err(e) => {
            let reply = e.to_string();
            if let Some(problem) = mrkdwn_problem(&reply) {
                panic!("unsafe reply to {text:?}: {problem}: {reply:?}");
            }
            assert!(
                reply.chars().count() <= 2000,
                "reply of {} chars to {text:?}",
                reply.chars().count()
            );
        }
    }
    if let Ok(tokens) = tokenize(text) {
        let plain = |t: &String| {
            !t.is_empty()
                && !t.starts_with(['"', '\'', '“', '‘'])
                && !t.chars().any(char::is_whitespace)
        };
        if tokens.iter().all(plain) {
            assert_eq!(
                tokenize(&tokens.join(" ")).as_ref(),
                Ok(&tokens),
                "re-joined tokens of {text:?}"
            );
        }
    }
}

/// The Alertmanager webhook body, and what an accepted one puts in Slack: the incident's
/// root message and the notes, escaped as the engine escapes them.
pub fn alert(data: &[u8]) {
    let n = match alert::parse(data) {
        Ok(n) => n,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert!(!n.alerts.is_empty() && n.alerts.len() <= 1000);
    for a in &n.alerts {
        assert!(!a.name().is_empty());
        assert!(!a.fingerprint.is_empty() && a.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let catalog = shipped_catalog();
    let policy = catalog.escalation_policy();
    let plans = intake::plan(&n, |labels: &BTreeMap<String, String>| {
        catalog.alert_for_labels(labels).map(|e| EntryFacts {
            id: e.id.to_string(),
            severity: e.severity,
        })
    });
    assert_eq!(plans.len(), n.alerts.len());
    for plan in plans {
        let note = match plan.step {
            AlertStep::Fire { new, note } => {
                let i = Incident {
                    title: new.title,
                    severity: new.severity,
                    entry: new.entry,
                    group_key: new.group_key,
                    opened_by: new.opened_by,
                    ..incident_template()
                };
                check_message(&incident::root_message(&i, &policy, now()))
                    .unwrap_or_else(|p| panic!("root message: {p}"));
                note
            }
            AlertStep::Resolve { note } => note,
        };
        if let Some(p) = mrkdwn_problem(&escape(&note)) {
            panic!("note {note:?}: {p}");
        }
    }
}

/// An open incident whose fields a test or body overrides.
pub fn incident_template() -> Incident {
    let t = now();
    Incident {
        id: "i1".into(),
        number: 7,
        state: IncidentState::Open,
        severity: crate::domain::escalation::Severity::High,
        title: "title".into(),
        entry: None,
        group_key: None,
        opened_by: "alertmanager".into(),
        opened_at: t,
        channel: None,
        thread_ts: None,
        owner: None,
        acked_at: None,
        acked_by: None,
        resolved_at: None,
        resolved_by: None,
        step: 0,
        step_at: t,
        last_status_at: None,
        last_human_update_at: None,
        storm: None,
        detached_at: None,
    }
}

/// The runbook catalog: YAML in, a compiled catalog or every error with its location.
pub fn catalog(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match runbook::load_str("fuzz.yaml", text) {
        Ok(c) => {
            let _ = c.escalation_policy();
            for e in c.entries() {
                let _ = e;
            }
            for step in c.all_steps() {
                let _ = step;
            }
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "a refusal without a reason");
            let _ = e.to_string();
        }
    }
}

/// Why `text`, read by Slack as mrkdwn, is unsafe, or `None`.
///
/// Safe means: every `&` starts one of the entities [`escape`] writes; every `<` opens one of the forms
/// odorbot writes itself (a user, user-group or channel mention by valid id, an http(s)
/// link) and none of those mentions the `evil` sentinel the hostile inputs carry; no `>`
/// stands alone; no bidirectional control or zero-width character is left.
pub fn mrkdwn_problem(text: &str) -> Option<String> {
    if let Some(c) = text.chars().find(|c| is_invisible(*c)) {
        return Some(format!("format character U+{:04X}", c as u32));
    }
    let mut rest = text;
    while let Some(i) = rest.find(['&', '<', '>']) {
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix('&') {
            if !["amp;", "lt;", "gt;"].iter().any(|e| after.starts_with(e)) {
                return Some(format!("bare & at {:?}", head(tail)));
            }
            rest = after;
        } else if tail.starts_with('>') {
            return Some(format!("bare > at {:?}", head(tail)));
        } else {
            let Some(end) = tail.find('>') else {
                return Some(format!("unclosed < at {:?}", head(tail)));
            };
            let inner = &tail[1..end];
            if !odorbot_form(inner) {
                return Some(format!("control <{inner}>"));
            }
            if inner.to_ascii_lowercase().contains("evil") {
                return Some(format!("hostile input reached a control: <{inner}>"));
            }
            rest = &tail[end + 1..];
        }
    }
    None
}

/// A message's text checked by what Slack makes of it: the fallback and mrkdwn blocks as
/// mrkdwn; headers and buttons are plain text, where only invisible characters matter.
///
/// # Errors
/// The first problem, naming the block.
pub fn check_message(m: &Message) -> Result<(), String> {
    let mrkdwn = |what: &str, t: &str| match mrkdwn_problem(t) {
        Some(p) => Err(format!("{what}: {p} in {t:?}")),
        None => Ok(()),
    };
    let plain = |what: &str, t: &str| match t.chars().find(|c| is_invisible(*c)) {
        Some(c) => Err(format!(
            "{what}: format character U+{:04X} in {t:?}",
            c as u32
        )),
        None => Ok(()),
    };
    mrkdwn("fallback text", &m.text)?;
    for b in &m.blocks {
        match b {
            Block::Header(t) => plain("header", t)?,
            Block::Section(t) => mrkdwn("section", t)?,
            Block::Context(t) => mrkdwn("context", t)?,
            Block::Fields(pairs) => {
                for (k, v) in pairs {
                    mrkdwn("field name", k)?;
                    mrkdwn("field value", v)?;
                }
            }
            Block::Actions(buttons) => {
                for button in buttons {
                    plain("button", &button.text)?;
                }
            }
            Block::Divider => {}
        }
    }
    Ok(())
}

fn head(s: &str) -> String {
    s.chars().take(24).collect()
}

/// Mentions by id and http(s) links: what odorbot's own code writes between `<` and `>`.
fn odorbot_form(inner: &str) -> bool {
    let id = |s: &str, prefixes: &str| {
        s.len() > 1
            && s.starts_with(|c| prefixes.contains(c))
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    if let Some(u) = inner.strip_prefix('@') {
        return id(u, "UW");
    }
    if let Some(g) = inner.strip_prefix("!subteam^") {
        return id(g, "S");
    }
    if let Some(c) = inner.strip_prefix('#') {
        return id(c, "CGD");
    }
    let (url, label) = inner.split_once('|').unwrap_or((inner, ""));
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(|c: char| c.is_whitespace() || c == '<')
        && !label.contains('<')
}

/// Bidirectional controls and zero-width or otherwise invisible format characters.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    /// Every file of a committed corpus; the corpora live in `fuzz/corpus/<target>/`.
    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    /// Bytes that are syntax to one of the formats.
    const INSERTS: &[u8] = b"<>&\"'{}[]:-\n \\`*";

    /// One byte flipped, inserted or dropped per step: cheap mutations of the corpus that
    /// reach the parsers' error paths near valid input.
    fn mutations(seed: &[u8], rounds: usize, mut state: u64) -> Vec<Vec<u8>> {
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Vec::with_capacity(rounds);
        let mut input = seed.to_vec();
        for _ in 0..rounds {
            let r = next();
            let at = if input.is_empty() {
                0
            } else {
                (r as usize >> 8) % input.len()
            };
            match r % 3 {
                0 if !input.is_empty() => input[at] ^= 1 << ((r >> 4) % 8),
                1 => input.insert(at, INSERTS[(r >> 5) as usize % INSERTS.len()]),
                _ if !input.is_empty() => {
                    input.remove(at);
                }
                _ => input.push(b'x'),
            }
            out.push(input.clone());
        }
        out
    }

    fn smoke(target: &str, body: fn(&[u8]), per_seed: usize) {
        for (n, seed) in corpus(target).iter().enumerate() {
            body(seed);
            for input in mutations(seed, per_seed, 0x9e37_79b9_7f4a_7c15 ^ n as u64) {
                body(&input);
            }
        }
    }

    #[test]
    fn fuzzing_command_corpus_and_mutations() {
        smoke("command", command, 200);
    }

    #[test]
    fn fuzzing_alert_corpus_and_mutations() {
        smoke("alert", alert, 100);
    }

    #[test]
    fn fuzzing_catalog_corpus_and_mutations() {
        smoke("catalog", catalog, 20);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn fuzzing_command_random_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
            command(&data);
        }

        #[test]
        fn fuzzing_alert_random_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
            alert(&data);
        }

        #[test]
        fn fuzzing_catalog_random_text(text in ".{0,200}") {
            catalog(text.as_bytes());
        }
    }

    #[test]
    fn fuzzing_checker_flags_controls_and_passes_odorbot_forms() {
        for bad in [
            "<!channel>",
            "<!here|here>",
            "<@UEVIL>",
            "<#C1|x>",
            "<http://evil.example|x>",
            "<mailto:a@b>",
            "a > b",
            "a & b",
            "x\u{202e}y",
            "x\u{061c}y",
        ] {
            assert!(mrkdwn_problem(bad).is_some(), "{bad:?}");
        }
        for good in [
            "plain *bold* `code`",
            "&lt;!channel&gt; &amp;",
            "<@U1> <!subteam^S2> <#C3>",
            "<https://grafana.example|Dashboard>",
        ] {
            assert_eq!(mrkdwn_problem(good), None, "{good:?}");
        }
    }
}
