use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use odorbot::config::Config;
use odorbot::{app, os, runbook};

/// odorbot: the OdorDiff-2 runbook from Slack, with a second person for every
/// destructive step.
#[derive(Parser)]
#[command(name = "odorbot", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Connect to Slack in socket mode and serve.
    Run {
        /// YAML configuration file; environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate the configuration and the runbook; with --online also reach Slack, the
    /// store and Kubernetes.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        online: bool,
    },
    /// Read the runbook catalog.
    Runbook {
        #[command(subcommand)]
        command: RunbookCmd,
    },
    /// Print manifests generated from the action set.
    Manifests {
        #[command(subcommand)]
        command: ManifestsCmd,
    },
}

#[derive(Subcommand)]
enum ManifestsCmd {
    /// The Role the actions need, pinned to the catalog's objects (manifests/base/role.yaml).
    Role {
        /// A catalog file instead of the one built in.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RunbookCmd {
    /// Every entry: kind, id, title, severity and how many steps.
    List {
        /// A catalog file instead of the one built in.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Everything about one entry, or the emergency-response, escalation or contacts
    /// section.
    Show {
        id: String,
        /// A catalog file instead of the one built in.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run { config } => serve(config),
        Cmd::Check { config, online } => match runtime() {
            Ok(runtime) => runtime.block_on(check(config, online)),
            Err(code) => code,
        },
        Cmd::Runbook { command } => runbook_command(command),
        Cmd::Manifests {
            command: ManifestsCmd::Role { file },
        } => match runbook::load_from(file.as_deref()) {
            Ok(catalog) => {
                print!("{}", runbook::rbac::role_yaml(&catalog));
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprint!("odorbot: {errors}");
                ExitCode::FAILURE
            }
        },
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("odorbot: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    // Before any thread exists, so that every thread meets the cap.
    os::cap_malloc_arenas();
    let config = match Config::from_env(path.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("odorbot: {errors}");
            return ExitCode::from(2);
        }
    };
    app::init_logging(&config);
    // Started before the priority drops: every thread started after it, the runtime's
    // among them, runs below the acks.
    let acks = match os::AckThread::start() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("odorbot: cannot start the socket-mode thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    os::lower_priority();
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(app::run(config, acks)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "odorbot stopped");
            eprintln!("odorbot: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runbook_command(command: RunbookCmd) -> ExitCode {
    let (RunbookCmd::List { file } | RunbookCmd::Show { file, .. }) = &command;
    let catalog = match runbook::load_from(file.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("odorbot: {errors}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        RunbookCmd::List { .. } => print!("{}", runbook::render::list(&catalog)),
        RunbookCmd::Show { id, .. } => match runbook::render::show(&catalog, &id) {
            Some(text) => print!("{text}"),
            None => {
                eprintln!(
                    "odorbot: the runbook has no entry {id:?}; `odorbot runbook list` shows the ids"
                );
                return ExitCode::FAILURE;
            }
        },
    }
    ExitCode::SUCCESS
}

async fn check(path: Option<PathBuf>, online: bool) -> ExitCode {
    let config = match Config::from_env(path.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            print!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    println!("configuration: ok");
    let source = config.runbook.path.as_deref();
    match runbook::load_from(source) {
        Ok(catalog) => println!(
            "runbook: ok ({}: {})",
            runbook::describe_source(source),
            runbook::render::summary(&catalog)
        ),
        Err(errors) => {
            print!("{errors}");
            return ExitCode::FAILURE;
        }
    }
    if !config.slack.resend_check {
        println!(
            "note: slack.resend_check is off: a message whose send outcome was lost (a crash \
             mid-send) is posted again, so it may appear twice (at least once, not exactly once)"
        );
    }
    if !online {
        return ExitCode::SUCCESS;
    }
    let mut failed = false;
    for line in app::check_online(&config).await {
        match line.result {
            Ok(detail) => println!("{}: ok ({detail})", line.what),
            Err(reason) => {
                failed = true;
                println!("{}: FAILED: {reason}", line.what);
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
