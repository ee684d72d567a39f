//! `plancd reconcile [--once]`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::reconcile::{ReconcileError, ReconcileOptions, default_sandbox_opener, reconcile};
use plancd::reconcile::{Action, PassReport};
use tokio::sync::watch;

use super::progress::Progress;
use super::{Failure, print_status_table};

/// Arguments of `plancd reconcile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run one pass to its fixed point and exit (the default).
    #[arg(long)]
    once: bool,

    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,
}

/// Runs the command: exit 0 when every task is satisfied or waits on a person, 1 when a task
/// failed or was escalated, 2 for bad input, 3 when an outside part failed, 130 when stopped.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let _ = args.once;
    let runtime = super::runtime()?;
    let progress = Progress::new();
    let (cancel_tx, cancel) = watch::channel(false);
    runtime.spawn(super::stop_on_signals(cancel_tx));
    let opts = ReconcileOptions {
        repo: cwd.to_path_buf(),
        branch: args.branch.clone(),
        env: Env::process(),
        sandbox: default_sandbox_opener(),
        events: Some(progress.sink()),
        cancel,
    };
    let result = runtime.block_on(reconcile(opts));
    progress.finish();
    let report = result.map_err(failure)?;
    print_status_table(cwd, args.branch.as_deref());
    Ok(summarise(&report))
}

/// The exit code of a pass, with a one-line summary.
pub fn summarise(report: &PassReport) -> ExitCode {
    let count = |f: fn(&Action) -> bool| report.actions.iter().filter(|a| f(a)).count();
    let done = count(|a| matches!(a, Action::UpToDate { .. }));
    let failed = count(|a| matches!(a, Action::Failed { .. } | Action::Escalated { .. }));
    let approval = count(|a| matches!(a, Action::NeedsApproval { .. }));
    let total = report.actions.iter().filter(|a| !matches!(a, Action::Orphaned { .. })).count();
    let mut line = format!("{done}/{total} tasks satisfied, {} attempt(s) run", report.attempts.len());
    if failed > 0 {
        line.push_str(&format!(", {failed} failed or escalated"));
    }
    if approval > 0 {
        line.push_str(&format!(", {approval} waiting for approval"));
    }
    if let Some(why) = &report.infrastructure {
        eprintln!("{line}\nerror: an outside part failed: {why}");
        return ExitCode::from(3);
    }
    if report.cancelled {
        eprintln!("{line}\nstopped by a signal; claims were released");
        return ExitCode::from(130);
    }
    println!("{line}");
    if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Maps a pass that could not run to its exit code, printing plan problems.
pub fn failure(e: ReconcileError) -> Failure {
    match &e {
        ReconcileError::Load(plancd::reconcile::LoadError::Invalid(diags)) | ReconcileError::NoAgents(diags) => {
            for d in diags.iter().filter(|d| d.is_error()) {
                eprintln!("{d}");
            }
        }
        _ => {}
    }
    if e.is_bad_input() { Failure::input(e) } else { Failure::outside(e) }
}
