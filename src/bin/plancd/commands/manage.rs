//! `plancd approve|retry WF/TASK` and `plancd suspend|resume WF`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::{approve, retry, suspend};

use super::{Failure, manage_failure, task_key};

/// A task, as WF/TASK.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// The task.
    #[arg(value_name = "WF/TASK")]
    task: String,

    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,
}

/// A workflow.
#[derive(Debug, clap::Args)]
pub struct WorkflowArgs {
    /// The workflow id.
    #[arg(value_name = "WF")]
    workflow: String,
}

fn who() -> String {
    std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "a user".into())
}

/// Approves a task's current spec.
pub fn approve(args: TaskArgs, cwd: &Path) -> Result<ExitCode, Failure> {
    let key = task_key(&args.task)?;
    plancd::ops::reconcile::check_branch(cwd, args.branch.as_deref(), &Env::process()).map_err(super::reconcile::failure)?;
    let hash = approve::approve(cwd, args.branch.as_deref(), &Env::process(), &key, &who()).map_err(manage_failure)?;
    println!("approved {key} for spec {}; the next reconcile runs it", &hash[..12]);
    Ok(ExitCode::SUCCESS)
}

/// Re-opens a failed or escalated task.
pub fn retry(args: TaskArgs, cwd: &Path) -> Result<ExitCode, Failure> {
    let key = task_key(&args.task)?;
    let next = retry::retry(cwd, &key, &who()).map_err(manage_failure)?;
    println!("re-opened {key}; the next reconcile runs attempt {next}");
    Ok(ExitCode::SUCCESS)
}

/// Suspends or resumes a workflow.
pub fn suspend(args: WorkflowArgs, cwd: &Path, suspended: bool) -> Result<ExitCode, Failure> {
    let changed = suspend::set_suspended(cwd, &args.workflow, suspended, &who()).map_err(manage_failure)?;
    let state = if suspended { "suspended" } else { "active" };
    println!("{} {}", args.workflow, if changed { format!("is now {state}") } else { format!("was already {state}") });
    Ok(ExitCode::SUCCESS)
}
