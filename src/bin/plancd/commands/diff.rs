//! `plancd diff`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::reconcile::diff;

use super::Failure;
use super::reconcile::failure;

/// Arguments of `plancd diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,
}

/// Prints each task with what a reconcile would do and why: exit 0 nothing to do, 1 work to do,
/// 2 when a workflow's plan is invalid (after what the valid ones would do).
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let report = diff(cwd, args.branch.as_deref(), &Env::process()).map_err(failure)?;
    let width = report.actions.iter().map(|a| a.key().to_string().len()).max().unwrap_or(0);
    for action in &report.actions {
        let mark = if action.is_work() { "~" } else { " " };
        println!("{mark} {:<width$}  {:<13}  {action}", action.key().to_string(), action.name());
    }
    for s in &report.stalled {
        println!(
            "! {:<width$}  {:<13}  {} error(s) in {}: nothing of it would run",
            s.plan.name(),
            "Stalled",
            s.plan.errors(),
            s.plan.path
        );
    }
    let work = report.actions.iter().filter(|a| a.is_work()).count();
    println!("{work} task(s) to change at {}", &report.plan_commit[..12]);
    if !report.stalled.is_empty() {
        super::reconcile::print_stalled(&report.stalled);
        return Ok(ExitCode::from(super::EXIT_INPUT));
    }
    Ok(if report.has_work() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
