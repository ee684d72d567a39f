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

/// Prints each task with what a reconcile would do and why: exit 0 nothing to do, 1 work to do.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let report = diff(cwd, args.branch.as_deref(), &Env::process()).map_err(failure)?;
    let width = report.actions.iter().map(|a| a.key().to_string().len()).max().unwrap_or(0);
    for action in &report.actions {
        let mark = if action.is_work() { "~" } else { " " };
        println!("{mark} {:<width$}  {:<13}  {action}", action.key().to_string(), action.name());
    }
    for broken in &report.broken {
        eprintln!("error: {broken}");
    }
    let work = report.actions.iter().filter(|a| a.is_work()).count();
    println!("{work} task(s) to change at {}", &report.plan_commit[..12]);
    Ok(if report.has_work() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
