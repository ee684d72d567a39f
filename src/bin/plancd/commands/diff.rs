//! `plancd diff`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::drift::diff_work_tree;
use plancd::ops::reconcile::diff;
use plancd::reconcile::{Action, Blocker};

use super::Failure;
use super::reconcile::failure;

/// Arguments of `plancd diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,
    /// Decide on the plans in the work tree, uncommitted edits included (the configuration
    /// still comes from the watched commit).
    #[arg(long)]
    work_tree: bool,
}

/// Prints each task with what a reconcile would do and why: exit 0 nothing to do, 1 work to do,
/// 2 when a workflow's plan is invalid (after what the valid ones would do).
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let env = Env::process();
    let report = if args.work_tree {
        diff_work_tree(cwd, args.branch.as_deref(), &env).map_err(failure)?
    } else {
        let report = diff(cwd, args.branch.as_deref(), &env).map_err(failure)?;
        super::reconcile::warn_of_drift(cwd, args.branch.as_deref(), &env);
        report
    };
    let width = report.actions.iter().map(|a| a.key().to_string().len()).max().unwrap_or(0);
    for action in &report.actions {
        let mark = if action.is_work() { "~" } else { " " };
        println!("{mark} {:<width$}  {:<13}  {action}", action.key().to_string(), action.name());
    }
    for broken in &report.broken {
        eprintln!("error: {broken}");
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
    // What starts now, and what waits on it: a pass goes on with those as their work ends.
    let starts = report.actions.iter().filter(|a| matches!(a, Action::Run { .. })).count();
    let branches = report.actions.iter().filter(|a| matches!(a, Action::Run { branch_of: Some(_), .. })).count();
    let marks = report.actions.iter().filter(|a| a.is_work() && !matches!(a, Action::Run { .. })).count();
    let behind = report.actions.iter().filter(|a| matches!(a, Action::Wait { blocker: Blocker::Dependency { .. }, .. })).count();
    let mut line = format!("{starts} to start at {}", &report.plan_commit[..12]);
    if branches > 0 {
        line.push_str(&format!(" ({branches} branch todo(s))"));
    }
    if behind > 0 {
        line.push_str(&format!(", {behind} waiting on them"));
    }
    if marks > 0 {
        line.push_str(&format!(", {marks} record(s) to mark or prune"));
    }
    println!("{line}");
    if !report.stalled.is_empty() {
        super::reconcile::print_stalled(&report.stalled);
        return Ok(ExitCode::from(super::EXIT_INPUT));
    }
    Ok(if report.has_work() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
