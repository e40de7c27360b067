//! Fuzz bodies for the adapters' parsers: socket-mode frames and the configuration.
//!
//! Like `odorbot_core::fuzzing` (which holds the command, alert and catalog bodies and the
//! mrkdwn check): each `pub fn <target>(data: &[u8])` is what the libFuzzer target of the
//! same name in `fuzz/` runs, and the tests run it over the committed corpus and random
//! inputs without cargo-fuzz.

use std::time::SystemTime;

use odorbot_core::fuzzing::mrkdwn_problem;

use crate::config::{Config, env_from};
use crate::domain::inbound::InboundEvent;
use crate::slack::wire::{self, FrameMeaning};

/// A socket-mode frame. Whatever it holds, an envelope's ack names exactly its envelope
/// id, and the busy reply a slash command gets back in its ack is safe mrkdwn.
pub fn frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (id, ack) = match wire::read_frame(text, SystemTime::UNIX_EPOCH) {
        Ok(FrameMeaning::Event(inbound)) => {
            if let InboundEvent::SlashCommand(cmd) = &inbound.event {
                assert!(cmd.user.as_str().starts_with(['U', 'W']));
            }
            let answer = wire::busy_answer(&inbound);
            (inbound.envelope_id, answer.ack)
        }
        Ok(FrameMeaning::Ignored { envelope_id, why }) => {
            let _ = why;
            let ack = wire::ack_frame(&envelope_id);
            (envelope_id, ack)
        }
        Ok(FrameMeaning::Hello | FrameMeaning::Disconnect(_)) | Err(_) => return,
    };
    let ack: serde_json::Value = serde_json::from_str(&ack).expect("an ack is JSON");
    assert_eq!(
        ack["envelope_id"].as_str(),
        Some(id.as_str()),
        "ack of {text:?}"
    );
    if let Some(reply) = ack["payload"]["text"].as_str()
        && let Some(problem) = mrkdwn_problem(reply)
    {
        panic!("busy reply to {text:?}: {problem}: {reply:?}");
    }
}

/// Secrets the configuration body is given through the environment, so that it reads no
/// secret file; each holds [`MARK`], so a leak into `Debug` output or an error shows.
const SECRETS: &[(&str, &str)] = &[
    ("SLACK_APP_TOKEN", "xapp-1-fuzzsecret1"),
    ("SLACK_BOT_TOKEN", "xoxb-fuzzsecret2"),
    ("ODORBOT_ALERTS_TOKEN", "fuzzsecret3"),
    (
        "ODORBOT_POSTGRES_URL",
        "postgres://u:fuzzsecret4@db/odordiff",
    ),
    (
        "ODORBOT_PGBOUNCER_URL",
        "postgres://u:fuzzsecret5@pgb/pgbouncer",
    ),
    ("ODORBOT_REDIS_URL", "redis://:fuzzsecret6@redis"),
];
const MARK: &str = "fuzzsecret";

/// The configuration loader on YAML text. A secret from the environment never shows in
/// the compiled configuration's `Debug` nor in an error, unless the input itself held it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut pairs = SECRETS.to_vec();
    // A path that exists nowhere: the body reads no file a fuzzed input names.
    pairs.push(("ODORBOT_REDIS_CA_FILE", "/nonexistent/odorbot-fuzz/ca.pem"));
    let env = env_from(&pairs);
    let shown = match Config::load_str("fuzz.yaml", text, &env) {
        Ok(c) => format!("{c:?}"),
        Err(e) => {
            assert!(!e.0.is_empty(), "a refusal without a reason");
            e.to_string()
        }
    };
    assert!(
        text.contains(MARK) || !shown.contains(MARK),
        "a secret leaked: {shown}"
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    /// Every prefix and every single-byte deletion of a seed at a few hundred points: the
    /// truncated and nearly valid documents a parser meets most.
    fn near(seed: &[u8]) -> Vec<Vec<u8>> {
        let step = (seed.len() / 150).max(1);
        let mut out = Vec::new();
        for at in (0..seed.len()).step_by(step) {
            out.push(seed[..at].to_vec());
            let mut dropped = seed.to_vec();
            dropped.remove(at);
            out.push(dropped);
        }
        out
    }

    #[test]
    fn fuzzing_frame_corpus_and_mutations() {
        for seed in corpus("frame") {
            frame(&seed);
            near(&seed).iter().for_each(|i| frame(i));
        }
    }

    #[test]
    fn fuzzing_config_corpus_and_mutations() {
        for seed in corpus("config") {
            config(&seed);
            near(&seed).iter().for_each(|i| config(i));
        }
    }

    /// Frames built from parts that matter to the reader: kinds, ids and payload fields,
    /// with hostile text where a person types.
    fn frame_text() -> impl Strategy<Value = String> {
        let kind = prop_oneof![
            Just("slash_commands"),
            Just("interactive"),
            Just("hello"),
            Just("disconnect"),
            Just("events_api"),
        ];
        let typed = prop_oneof![
            Just("<!channel> \u{202e}x`y".to_owned()),
            Just("status".to_owned()),
            any::<String>(),
        ];
        (kind, any::<String>(), typed, "[UWC][A-Z0-9]{0,4}").prop_map(|(kind, id, typed, user)| {
            serde_json::json!({
                "type": kind,
                "envelope_id": id,
                "payload": {
                    "type": "block_actions",
                    "user_id": user, "channel_id": "C1", "text": typed,
                    "response_url": "https://hooks.example/x", "trigger_id": "t",
                    "user": {"id": user}, "actions": [{"action_id": typed, "action_ts": "1"}],
                },
            })
            .to_string()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn fuzzing_frame_random(text in frame_text()) {
            frame(text.as_bytes());
        }

        #[test]
        fn fuzzing_frame_random_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
            frame(&data);
        }

        #[test]
        fn fuzzing_config_random_text(text in "([a-z_]{1,12}:( [a-z0-9:/._-]{0,20})?\n {0,4}){0,8}") {
            config(text.as_bytes());
        }
    }
}
