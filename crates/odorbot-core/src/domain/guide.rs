//! Guided procedures: a runbook procedure followed step by step in a Slack thread. The
//! state is a value kept in the store; every decision (what to do next, what a click or a
//! request's outcome changes) is a function of it, so the engine only carries them out and
//! a replica that takes a run over after a restart continues where it stood.

use serde::{Deserialize, Serialize};

use super::approval::ApprovalState;
use super::view::{Block, Button, ButtonStyle, Message, escape};
use crate::runbook::{Catalog, Procedure};

/// Where one step stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState {
    Pending,
    /// A change step whose approval request exists: it waits for the request's outcome.
    Requested {
        request: String,
    },
    Done {
        at_ms: i64,
        note: String,
    },
    Failed {
        at_ms: i64,
        why: String,
    },
}

/// Where the run as a whole stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    /// Stopped by a person, or by a failed step, until someone resumes it.
    Paused,
    Abandoned,
    Finished,
}

impl RunState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Abandoned => "abandoned",
            Self::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Paused, Self::Abandoned, Self::Finished]
            .into_iter()
            .find(|r| r.name() == s)
    }

    /// Abandoned and finished runs change no more.
    pub fn is_over(self) -> bool {
        matches!(self, Self::Abandoned | Self::Finished)
    }
}

/// One step as the run shows it: its title and whether it changes anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub title: String,
    pub change: bool,
}

/// One line of the run's history, for the thread and the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at_ms: i64,
    pub who: String,
    pub what: String,
}

/// A procedure being followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    /// The catalog procedure's id.
    pub procedure: String,
    pub title: String,
    /// The procedure's parameters as the starter gave them, by name.
    pub params: Vec<(String, String)>,
    pub reason: String,
    pub starter: String,
    /// The id of the incident the run works on, if any: its evidence is kept under it.
    #[serde(default)]
    pub incident: Option<String>,
    pub steps: Vec<StepInfo>,
    pub states: Vec<StepState>,
    pub state: RunState,
    pub history: Vec<Event>,
}

/// What the engine does next for a running run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Run read-only step `i` and record its findings.
    Query(usize),
    /// Ask for change step `i` through the two-person flow.
    Request(usize),
    /// Step `i` waits for approval request `request`.
    Await { step: usize, request: String },
    /// Every step is done.
    Finish,
    /// Paused, abandoned or finished: nothing to do.
    Idle,
}

/// A person's control of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Abandon,
}

impl Control {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Abandon => "abandon",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pause, Self::Resume, Self::Abandon]
            .into_iter()
            .find(|c| c.name() == s)
    }
}

/// The button id of control `c` on run `id`: `run:<control>:<id>`.
/// The prefix of `/odor help`'s procedure buttons: `runhelp:<procedure>`.
pub const HELP_BUTTON: &str = "runhelp:";

/// `/odor help`'s buttons: one per procedure a button can start (no parameter to give),
/// each opening the form that asks why, since every change step's request carries it.
pub fn help_buttons(catalog: &Catalog) -> Vec<Block> {
    let buttons: Vec<Button> = catalog
        .procedures()
        .iter()
        .filter(|p| p.starts_without_params())
        // Slack's limit for one actions block.
        .take(25)
        .map(|p| {
            Button::new(
                format!("Run: {}", p.title),
                format!("{HELP_BUTTON}{}", p.id),
                ButtonStyle::Default,
            )
        })
        .collect();
    if buttons.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Section(
            "*Follow a procedure step by step* (the others take parameters: `/odor run <procedure> name=value … --reason \"…\"`):".into(),
        ),
        Block::Actions(buttons),
    ]
}

pub fn button_id(c: Control, id: &str) -> String {
    format!("run:{}:{id}", c.name())
}

/// Parses a run button id.
pub fn parse_button(action_id: &str) -> Option<(Control, &str)> {
    let rest = action_id.strip_prefix("run:")?;
    let (control, id) = rest.split_once(':')?;
    let control = Control::parse(control)?;
    (!id.is_empty()).then_some((control, id))
}

impl Run {
    /// A run of `procedure` as `starter` starts it.
    pub fn start(
        id: String,
        procedure: &Procedure,
        params: Vec<(String, String)>,
        reason: &str,
        starter: &str,
        at_ms: i64,
    ) -> Self {
        let steps: Vec<StepInfo> = procedure
            .steps
            .iter()
            .map(|s| StepInfo {
                title: s.title.clone(),
                change: s.action.is_destructive(),
            })
            .collect();
        let states = vec![StepState::Pending; steps.len()];
        let mut run = Self {
            id,
            procedure: procedure.id.to_string(),
            title: procedure.title.clone(),
            params,
            reason: reason.to_owned(),
            starter: starter.to_owned(),
            incident: None,
            steps,
            states,
            state: RunState::Running,
            history: Vec::new(),
        };
        run.log(at_ms, starter, format!("started — reason: {reason}"));
        run
    }

    fn log(&mut self, at_ms: i64, who: &str, what: String) {
        self.history.push(Event {
            at_ms,
            who: who.to_owned(),
            what,
        });
    }

    /// The decision: the first step not done, and what it needs.
    pub fn next(&self) -> Next {
        if self.state != RunState::Running {
            return Next::Idle;
        }
        match self
            .states
            .iter()
            .position(|s| !matches!(s, StepState::Done { .. }))
        {
            None => Next::Finish,
            Some(i) => match &self.states[i] {
                StepState::Requested { request } => Next::Await {
                    step: i,
                    request: request.clone(),
                },
                // A failed step pauses the run; resuming sets it pending again.
                StepState::Failed { .. } => Next::Idle,
                _ if self.steps[i].change => Next::Request(i),
                _ => Next::Query(i),
            },
        }
    }

    /// Step `i` ran (a query) or its change succeeded, with a one-line note.
    #[must_use]
    pub fn done(mut self, i: usize, at_ms: i64, note: &str) -> Self {
        if let Some(s) = self.states.get_mut(i) {
            *s = StepState::Done {
                at_ms,
                note: note.to_owned(),
            };
            let title = self.steps[i].title.clone();
            self.log(
                at_ms,
                "odorbot",
                format!("step {} “{title}” done: {note}", i + 1),
            );
        }
        self
    }

    /// Step `i`'s approval request `request` was made.
    #[must_use]
    pub fn requested(mut self, i: usize, at_ms: i64, request: &str) -> Self {
        if let Some(s) = self.states.get_mut(i) {
            *s = StepState::Requested {
                request: request.to_owned(),
            };
            let title = self.steps[i].title.clone();
            self.log(
                at_ms,
                "odorbot",
                format!("step {} “{title}” requested as {request}", i + 1),
            );
        }
        self
    }

    /// Step `i` could not be carried out: the run pauses until a person resumes (retrying
    /// the step) or abandons it.
    #[must_use]
    pub fn failed(mut self, i: usize, at_ms: i64, why: &str) -> Self {
        if let Some(s) = self.states.get_mut(i) {
            *s = StepState::Failed {
                at_ms,
                why: why.to_owned(),
            };
            self.state = RunState::Paused;
            let title = self.steps[i].title.clone();
            self.log(
                at_ms,
                "odorbot",
                format!("step {} “{title}” failed, run paused: {why}", i + 1),
            );
        }
        self
    }

    /// What the outcome of step `i`'s request means for the run: `None` while it is still
    /// pending, approved or executing.
    #[must_use]
    pub fn on_request(&self, i: usize, at_ms: i64, state: ApprovalState) -> Option<Self> {
        let run = self.clone();
        match state {
            ApprovalState::Succeeded => Some(run.done(i, at_ms, "approved and executed")),
            ApprovalState::Pending | ApprovalState::Approved | ApprovalState::Executing => None,
            other => Some(run.failed(i, at_ms, &format!("its request ended {}", other.name()))),
        }
    }

    /// Every step done: the run is finished.
    #[must_use]
    pub fn finished(mut self, at_ms: i64) -> Self {
        self.state = RunState::Finished;
        self.log(at_ms, "odorbot", "finished: every step done".into());
        self
    }

    /// A person pauses, resumes or abandons the run; the refusal says why not.
    ///
    /// # Errors
    /// A sentence for the person when the control does not apply in the run's state.
    pub fn control(mut self, c: Control, who: &str, at_ms: i64) -> Result<Self, String> {
        let refuse = |why: &str| Err(format!("The run is {}; {why}", self.state.name()));
        match (c, self.state) {
            (_, s) if s.is_over() => return refuse("it changes no more."),
            (Control::Pause, RunState::Paused) => return refuse("resume or abandon it."),
            (Control::Resume, RunState::Running) => return refuse("there is nothing to resume."),
            (Control::Pause, _) => self.state = RunState::Paused,
            (Control::Resume, _) => {
                self.state = RunState::Running;
                // A failed step is tried again.
                for s in &mut self.states {
                    if matches!(s, StepState::Failed { .. }) {
                        *s = StepState::Pending;
                    }
                }
            }
            (Control::Abandon, _) => self.state = RunState::Abandoned,
        }
        let verb = match c {
            Control::Pause => "paused",
            Control::Resume => "resumed",
            Control::Abandon => "abandoned",
        };
        self.log(at_ms, who, verb.to_owned());
        Ok(self)
    }

    /// The run's root message: each step with its state, and the controls that apply.
    pub fn render(&self) -> Message {
        let done = self
            .states
            .iter()
            .filter(|s| matches!(s, StepState::Done { .. }))
            .count();
        let title = format!(
            "Procedure: {} ({done}/{} steps, {})",
            self.title,
            self.steps.len(),
            self.state.name()
        );
        let mut blocks = vec![Block::Header(title.clone())];
        let params = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        blocks.push(Block::Context(format!(
            "Started by <@{}> — reason: {}{}",
            self.starter,
            escape(&self.reason),
            if params.is_empty() {
                String::new()
            } else {
                format!(" — {}", escape(&params))
            }
        )));
        let lines: Vec<String> = self
            .steps
            .iter()
            .zip(&self.states)
            .enumerate()
            .map(|(i, (step, state))| {
                let kind = if step.change { " (two-person)" } else { "" };
                let (mark, tail) = match state {
                    StepState::Pending => ("◻️", String::new()),
                    StepState::Requested { request } => (
                        "⏳",
                        format!(" — awaiting approval of `{}`", escape(request)),
                    ),
                    StepState::Done { note, .. } => ("✅", format!(" — {}", escape(note))),
                    StepState::Failed { why, .. } => ("🔴", format!(" — {}", escape(why))),
                };
                format!("{mark} {}. {}{kind}{tail}", i + 1, escape(&step.title))
            })
            .collect();
        blocks.push(Block::Section(lines.join("\n")));
        let controls: &[Control] = match self.state {
            RunState::Running => &[Control::Pause, Control::Abandon],
            RunState::Paused => &[Control::Resume, Control::Abandon],
            RunState::Abandoned | RunState::Finished => &[],
        };
        if !controls.is_empty() {
            blocks.push(Block::Actions(
                controls
                    .iter()
                    .map(|c| {
                        let (label, style) = match c {
                            Control::Pause => ("Pause", ButtonStyle::Default),
                            Control::Resume => ("Resume", ButtonStyle::Primary),
                            Control::Abandon => ("Abandon", ButtonStyle::Danger),
                        };
                        Button::new(label, button_id(*c, &self.id), style)
                    })
                    .collect(),
            ));
        }
        Message {
            text: title,
            blocks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_offers_a_button_for_each_procedure_that_needs_no_value() {
        let catalog = crate::runbook::load_default().unwrap();
        let blocks = help_buttons(&catalog);
        let Some(Block::Actions(buttons)) = blocks.last() else {
            panic!("no buttons: {blocks:?}");
        };
        let ids: Vec<&str> = buttons.iter().map(|b| b.action_id.as_str()).collect();
        assert!(ids.contains(&"runhelp:database-maintenance"), "{ids:?}");
        assert!(ids.contains(&"runhelp:backup-verification"), "{ids:?}");
        // A tag, replicas or a pod cannot come from a button.
        for needs in [
            "standard-deployment",
            "manual-scaling",
            "suspected-security-breach",
        ] {
            assert!(
                !ids.contains(&format!("runhelp:{needs}").as_str()),
                "{needs}"
            );
        }
        assert!(buttons.iter().all(|b| b.text.starts_with("Run: ")));
    }

    /// The first two steps of the shipped database maintenance: a change, then a query
    /// (the steps are cut so the tests stay short).
    fn run() -> Run {
        let catalog = crate::runbook::load_default().unwrap();
        let mut procedure = catalog.procedure("database-maintenance").unwrap().clone();
        procedure.steps = vec![procedure.steps[0].clone(), procedure.steps[3].clone()];
        Run::start(
            "run-1".into(),
            &procedure,
            vec![],
            "weekly <!channel>",
            "U0ALICE",
            1,
        )
    }

    #[test]
    fn steps_go_in_order_changes_through_requests_queries_at_once() {
        let r = run();
        assert_eq!(r.next(), Next::Request(0));
        let r = r.requested(0, 2, "req-1");
        assert_eq!(
            r.next(),
            Next::Await {
                step: 0,
                request: "req-1".into()
            }
        );
        assert!(
            r.clone()
                .on_request(0, 3, ApprovalState::Approved)
                .is_none()
        );
        let r = r.on_request(0, 3, ApprovalState::Succeeded).unwrap();
        assert_eq!(r.next(), Next::Query(1));
        let r = r.done(1, 4, "a note");
        assert_eq!(r.next(), Next::Finish);
        let r = r.finished(5);
        assert_eq!(r.next(), Next::Idle);
        assert_eq!(r.history.len(), 5, "{:?}", r.history);
    }

    #[test]
    fn a_denied_request_pauses_the_run_and_resuming_asks_again() {
        let r = run()
            .requested(0, 2, "req-1")
            .on_request(0, 3, ApprovalState::Denied)
            .unwrap();
        assert_eq!(r.state, RunState::Paused);
        assert_eq!(r.next(), Next::Idle);
        assert!(
            matches!(&r.states[0], StepState::Failed { why, .. } if why == "its request ended denied")
        );
        let r = r.control(Control::Resume, "U0BOB", 4).unwrap();
        assert_eq!(r.next(), Next::Request(0));
    }

    #[test]
    fn controls_apply_only_where_they_mean_something() {
        let r = run().control(Control::Pause, "U0BOB", 2).unwrap();
        assert_eq!(r.next(), Next::Idle);
        assert_eq!(
            r.clone().control(Control::Pause, "U0BOB", 3).unwrap_err(),
            "The run is paused; resume or abandon it."
        );
        let r = r.control(Control::Abandon, "U0BOB", 3).unwrap();
        assert!(r.state.is_over());
        assert!(r.clone().control(Control::Resume, "U0BOB", 4).is_err());
        assert!(run().control(Control::Resume, "U0BOB", 2).is_err());
        assert!(
            r.render()
                .blocks
                .iter()
                .all(|b| !matches!(b, Block::Actions(_)))
        );
    }

    #[test]
    fn the_root_shows_each_step_escaped_with_its_controls() {
        let m = run().requested(0, 2, "req-1").render();
        assert_eq!(
            m.text,
            "Procedure: Database Maintenance (0/2 steps, running)"
        );
        assert_eq!(
            m.blocks[1],
            Block::Context("Started by <@U0ALICE> — reason: weekly &lt;!channel&gt;".into())
        );
        assert_eq!(
            m.blocks[2],
            Block::Section(
                "⏳ 1. Create maintenance window (two-person) — awaiting approval of `req-1`\n◻️ 2. Update statistics"
                    .into()
            )
        );
        let Block::Actions(buttons) = &m.blocks[3] else {
            panic!("{m:?}")
        };
        let ids: Vec<&str> = buttons.iter().map(|b| b.action_id.as_str()).collect();
        assert_eq!(ids, ["run:pause:run-1", "run:abandon:run-1"]);
        assert_eq!(
            parse_button("run:pause:run-1"),
            Some((Control::Pause, "run-1"))
        );
        assert_eq!(parse_button("run:stop:run-1"), None);
        assert_eq!(parse_button("run:pause:"), None);
    }

    #[test]
    fn a_run_survives_the_store() {
        let r = run().requested(0, 2, "req-1");
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Run>(&json).unwrap(), r);
    }
}
