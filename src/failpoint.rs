//! Failpoints: faults injected at named steps, for the fault-injection tests. Compiled
//! into debug builds only; in a release build [`failpoint!`](crate::failpoint!) expands to
//! nothing and this module does not exist.
//!
//! A step marks itself with `failpoint!("outbox.tick")` (or, where it can fail,
//! `failpoint!("store.enqueue", e => return Err(e.into()))`). A test arms points with
//! `ODORBOT_FAILPOINTS` at start, or at run time with `PUT /debug/failpoints` on the admin
//! port (same syntax; `GET` lists what is armed):
//!
//! ```text
//! ODORBOT_FAILPOINTS='outbox.tick=panic;scheduler.tick=2*panic;approvals.tick=delay(500)'
//! ```
//!
//! Faults: `panic`; `error` (the step returns [`Injected`]); `crash` (abort the process:
//! nothing finishes or is flushed, as with `kill -9`); `delay(<ms>)`; `hold` (the step
//! waits until the point is configured again, e.g. `off`: a stall the test ends when it
//! chooses); `off`. `<n>*<fault>` injects it the next `n` times, then the point is off
//! again. Step names are
//! `<component>.<step>`, so a test matrix is step × fault.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::Notify;

/// The error an `error` fault makes the step return.
#[derive(Debug, Error)]
#[error("failpoint {0}: injected error")]
pub struct Injected(pub String);

/// An unreadable failpoint specification.
#[derive(Debug, Error)]
#[error("failpoint spec {spec:?}: {why} (expected name=[n*]panic|error|crash|delay(ms)|hold|off)")]
pub struct SpecError {
    spec: String,
    why: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Panic,
    Error,
    Crash,
    Delay(Duration),
    Hold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Armed {
    fault: Fault,
    /// `None`: every time.
    remaining: Option<u32>,
}

static POINTS: LazyLock<Mutex<BTreeMap<String, Armed>>> = LazyLock::new(Default::default);
/// How often each point was configured: a held step waits for its point's count to move.
static CONFIGURED: LazyLock<Mutex<BTreeMap<String, u64>>> = LazyLock::new(Default::default);
static RECONFIGURED: Notify = Notify::const_new();

fn configured(name: &str) -> u64 {
    let counts = CONFIGURED.lock().unwrap_or_else(|p| p.into_inner());
    counts.get(name).copied().unwrap_or_default()
}

fn points() -> std::sync::MutexGuard<'static, BTreeMap<String, Armed>> {
    // A panic injected elsewhere never holds this lock, so poisoning means nothing here.
    POINTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Arms (or, with `off`, disarms) the points in `spec`; the others stay as they are.
///
/// # Errors
/// [`SpecError`] naming the first unreadable entry; nothing is changed then.
pub fn configure(spec: &str) -> Result<(), SpecError> {
    let mut parsed = Vec::new();
    for entry in spec
        .split([';', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let bad = |why| SpecError {
            spec: entry.to_owned(),
            why,
        };
        let (name, action) = entry.split_once('=').ok_or_else(|| bad("no '='"))?;
        let name = name.trim();
        let well_formed = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !well_formed {
            return Err(bad("a name is letters, digits, '.', '_' and '-'"));
        }
        let action = action.trim();
        let (remaining, fault) = match action.split_once('*') {
            Some((n, f)) => (
                Some(n.trim().parse::<u32>().map_err(|_| bad("bad count"))?),
                f.trim(),
            ),
            None => (None, action),
        };
        let fault = match fault {
            "off" => None,
            "panic" => Some(Fault::Panic),
            "error" => Some(Fault::Error),
            "crash" => Some(Fault::Crash),
            "hold" => Some(Fault::Hold),
            f => {
                let ms = f
                    .strip_prefix("delay(")
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad("unknown fault"))?;
                Some(Fault::Delay(Duration::from_millis(
                    ms.trim().parse().map_err(|_| bad("bad delay"))?,
                )))
            }
        };
        parsed.push((
            name.to_owned(),
            fault.map(|fault| Armed { fault, remaining }),
        ));
    }
    let mut points = points();
    let mut counts = CONFIGURED.lock().unwrap_or_else(|p| p.into_inner());
    for (name, armed) in parsed {
        *counts.entry(name.clone()).or_default() += 1;
        match armed {
            Some(a) => points.insert(name, a),
            None => points.remove(&name),
        };
    }
    drop((points, counts));
    RECONFIGURED.notify_waiters();
    Ok(())
}

/// Arms what `ODORBOT_FAILPOINTS` says.
///
/// # Errors
/// [`SpecError`] when the variable cannot be read as a specification.
pub fn configure_from_env() -> Result<(), SpecError> {
    match std::env::var("ODORBOT_FAILPOINTS") {
        Ok(spec) => configure(&spec),
        Err(_) => Ok(()),
    }
}

/// What is armed, one `name=fault` per line.
pub fn list() -> String {
    points()
        .iter()
        .map(|(name, a)| {
            let count = a.remaining.map(|n| format!("{n}*")).unwrap_or_default();
            let fault = match a.fault {
                Fault::Panic => "panic".to_owned(),
                Fault::Error => "error".to_owned(),
                Fault::Crash => "crash".to_owned(),
                Fault::Delay(d) => format!("delay({})", d.as_millis()),
                Fault::Hold => "hold".to_owned(),
            };
            format!("{name}={count}{fault}\n")
        })
        .collect()
}

/// Takes one shot of the fault armed at `name`, if any.
fn take(name: &str) -> Option<Fault> {
    let mut points = points();
    let armed = points.get_mut(name)?;
    let fault = armed.fault;
    match &mut armed.remaining {
        None => {}
        Some(0) => {
            points.remove(name);
            return None;
        }
        Some(n) => {
            *n -= 1;
            if *n == 0 {
                points.remove(name);
            }
        }
    }
    Some(fault)
}

/// The step `name` is reached: injects its armed fault. Use [`failpoint!`](crate::failpoint!).
///
/// # Errors
/// [`Injected`] when the point is armed with `error`.
///
/// # Panics
/// When the point is armed with `panic`: that is the fault.
pub async fn hit(name: &str) -> Result<(), Injected> {
    // Read before the shot is taken, so a configuration racing with it still releases it.
    let before = configured(name);
    match take(name) {
        None => Ok(()),
        Some(Fault::Panic) => panic!("failpoint {name}: injected panic"),
        Some(Fault::Crash) => {
            eprintln!("failpoint {name}: injected crash");
            std::process::abort()
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Some(Fault::Error) => Err(Injected(name.to_owned())),
        Some(Fault::Hold) => loop {
            let changed = RECONFIGURED.notified();
            if configured(name) != before {
                return Ok(());
            }
            changed.await;
        },
    }
}

/// Marks a step that a test can make fail (see [`crate::failpoint`]). `failpoint!("a.b")`
/// injects a panic, a crash or a delay; `failpoint!("a.b", e => return Err(e.into()))`
/// also lets an `error` fault take the step's error path. Nothing in release builds.
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        if let Err(e) = $crate::failpoint::hit($name).await {
            ::tracing::warn!(error = %e, "this step has no error path; the injected error is ignored");
        }
    };
    ($name:literal, $err:ident => $on_error:expr) => {
        if let Err($err) = $crate::failpoint::hit($name).await {
            $on_error
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    // The table is process-wide and unit tests run in parallel: each test uses its own
    // point names.

    #[tokio::test]
    async fn a_counted_fault_fires_that_many_times_then_the_point_is_off() {
        configure("t1.step = 2*error").unwrap();
        assert!(hit("t1.step").await.is_err());
        assert!(hit("t1.step").await.is_err());
        assert!(hit("t1.step").await.is_ok());
        assert!(!list().contains("t1.step"));
    }

    #[tokio::test]
    async fn off_disarms_and_unarmed_points_do_nothing() {
        configure("t2.a=error;t2.b=delay(1)").unwrap();
        assert!(list().contains("t2.a=error\n"));
        assert!(list().contains("t2.b=delay(1)\n"));
        configure("t2.a=off").unwrap();
        assert!(hit("t2.a").await.is_ok());
        assert!(hit("t2.b").await.is_ok());
        assert!(hit("t2.never-armed").await.is_ok());
    }

    #[tokio::test]
    async fn the_error_fault_takes_the_steps_error_path() {
        #[derive(Debug)]
        struct StepError(String);
        async fn step() -> Result<u8, StepError> {
            failpoint!("t3.step", e => return Err(StepError(e.to_string())));
            Ok(1)
        }
        assert_eq!(step().await.unwrap(), 1);
        configure("t3.step=1*error").unwrap();
        assert_eq!(
            step().await.unwrap_err().0,
            "failpoint t3.step: injected error"
        );
        assert_eq!(step().await.unwrap(), 1);
    }

    #[tokio::test]
    #[should_panic(expected = "failpoint t4.step: injected panic")]
    async fn the_panic_fault_panics_with_the_points_name() {
        configure("t4.step=panic").unwrap();
        failpoint!("t4.step");
    }

    #[tokio::test]
    async fn a_held_step_waits_until_its_point_is_configured_again() {
        configure("t6.step=hold").unwrap();
        let held = tokio::spawn(hit("t6.step"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        configure("t6.other=off").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!held.is_finished(), "another point does not release it");
        configure("t6.step=off").unwrap();
        tokio::time::timeout(Duration::from_secs(5), held)
            .await
            .expect("released")
            .unwrap()
            .unwrap();
        assert!(hit("t6.step").await.is_ok(), "off now");
    }

    #[test]
    fn bad_specs_are_refused_whole() {
        for bad in [
            "t5.a",
            "t5.a=explode",
            "t5.a=x*panic",
            "t5.a=delay(soon)",
            "=panic",
            "t5 a=panic",
        ] {
            assert!(configure(&format!("t5.ok=panic;{bad}")).is_err(), "{bad}");
        }
        assert!(
            !list().contains("t5.ok"),
            "nothing armed from a refused spec"
        );
    }
}
