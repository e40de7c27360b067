use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use odorbot::app;
use odorbot::config::Config;

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
    /// Validate the configuration; with --online also reach Slack, the store and Kubernetes.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        online: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("odorbot: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Cmd::Run { config } => {
            let config = match Config::from_env(config.as_deref()) {
                Ok(c) => c,
                Err(errors) => {
                    eprint!("odorbot: {errors}");
                    return ExitCode::from(2);
                }
            };
            app::init_logging(&config);
            match runtime.block_on(app::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "odorbot stopped");
                    eprintln!("odorbot: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Check { config, online } => runtime.block_on(check(config, online)),
    }
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
