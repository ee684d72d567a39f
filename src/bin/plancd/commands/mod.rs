//! One module per verb: argument types, a call into `plancd::ops`, and printing.

pub mod action;
pub mod completions;
pub mod demo;
pub mod describe;
pub mod diff;
pub mod events;
pub mod graph;
pub mod init;
pub mod logs;
pub mod manage;
pub mod plan;
pub mod progress;
pub mod reconcile;
pub mod sandbox;
pub mod serve;
pub mod status;
pub mod triage;
pub mod validate;

use std::process::ExitCode;

/// Exit code: bad input (plan, configuration, arguments).
pub const EXIT_INPUT: u8 = 2;
/// Exit code: an outside part (git remote, sandbox engine, model API, forge) failed.
pub const EXIT_OUTSIDE: u8 = 3;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// Bad input: exit 2.
    pub fn input(error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: EXIT_INPUT, error: error.into() }
    }

    /// An outside part failed: exit 3.
    pub fn outside(error: impl Into<anyhow::Error>) -> Failure {
        Failure { code: EXIT_OUTSIDE, error: error.into() }
    }
}

/// Prints `failure` with its causes and returns its exit code.
pub fn fail(failure: &Failure) -> ExitCode {
    eprintln!("error: {:#}", failure.error);
    ExitCode::from(failure.code)
}

/// How command output is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// Parses `WF/TASK`.
pub fn task_key(text: &str) -> Result<plancd::state::TaskKey, Failure> {
    plancd::state::TaskKey::parse(text).ok_or_else(|| Failure::input(anyhow::anyhow!("`{text}` is not WF/TASK")))
}

/// Maps a management error to its exit code.
pub fn manage_failure(e: plancd::ops::manage::ManageError) -> Failure {
    if e.is_bad_input() { Failure::input(e) } else { Failure::outside(e) }
}

/// A runtime for the commands that need one.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::outside(anyhow::anyhow!("cannot start the runtime: {e}")))
}

/// Flips `cancel` on the first SIGINT or SIGTERM; a second one exits at once (claims then
/// expire, or are taken over as soon as this process is gone).
pub async fn stop_on_signals(cancel: tokio::sync::watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else { return };
    for round in 0..2 {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if round == 0 {
            eprintln!("stopping: releasing claims (press Ctrl-C again to quit at once)");
            let _ = cancel.send(true);
        } else {
            std::process::exit(130);
        }
    }
}

/// Prints the status table of the repository, or a note when it cannot be read.
pub fn print_status_table(cwd: &std::path::Path, branch: Option<&str>) {
    match plancd::ops::status::status(cwd, branch, &plancd::config::Env::process(), None) {
        Ok(report) => status::print_table(&report),
        Err(e) => eprintln!("note: cannot read the status: {e}"),
    }
}
