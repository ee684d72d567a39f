//! `plancd approve|retry WF/TASK` and `plancd suspend|resume WF`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::manage::{ManageOptions, Recorded};
use plancd::ops::{approve, retry, suspend};
use plancd::reconcile::operations::Record;

use super::{Failure, manage_failure, task_key};

/// Where a record goes and who it is from.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// Who asks, recorded with it (default: git's user.email, else GITHUB_ACTOR, else USER).
    #[arg(long = "as", value_name = "NAME")]
    by: Option<String>,

    /// Record it in this repository only, even when it has the remote plancd.yaml names (by
    /// default the record is pushed there first, where the controllers look).
    #[arg(long)]
    local: bool,

    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,
}

impl RecordArgs {
    fn options(&self, cwd: &Path) -> ManageOptions {
        ManageOptions { repo: cwd.to_path_buf(), branch: self.branch.clone(), env: Env::process(), by: self.by.clone(), local: self.local }
    }
}

/// A task, as WF/TASK.
#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    /// The task.
    #[arg(value_name = "WF/TASK")]
    task: String,

    #[command(flatten)]
    record: RecordArgs,
}

/// A task to retry, with instructions.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    #[command(flatten)]
    task: TaskArgs,

    /// What the next attempt should do differently (handed to the agent). With it, a task that
    /// succeeded can be asked for changes too.
    #[arg(short = 'm', long = "instructions", value_name = "TEXT")]
    instructions: Option<String>,
}

/// A workflow.
#[derive(Debug, clap::Args)]
pub struct WorkflowArgs {
    /// The workflow id.
    #[arg(value_name = "WF")]
    workflow: String,

    #[command(flatten)]
    record: RecordArgs,
}

/// Approves a task's current spec.
pub fn approve(args: TaskArgs, cwd: &Path) -> Result<ExitCode, Failure> {
    let key = task_key(&args.task)?;
    let done = approve::approve(&args.record.options(cwd), &key).map_err(manage_failure)?;
    let spec = task_record(&done).and_then(|s| s.approved_spec_hash.as_ref()).map(|h| h.short()).unwrap_or_default();
    println!("approved {key} for spec {spec}; the next reconcile runs it\n{done}");
    Ok(ExitCode::SUCCESS)
}

/// Re-opens a failed or escalated task, or asks a task for changes.
pub fn retry(args: RetryArgs, cwd: &Path) -> Result<ExitCode, Failure> {
    let key = task_key(&args.task.task)?;
    let done = retry::retry(&args.task.record.options(cwd), &key, args.instructions.as_deref()).map_err(manage_failure)?;
    let next = task_record(&done).map_or(0, |s| s.attempt + 1);
    println!("re-opened {key}; the next reconcile runs attempt {next}\n{done}");
    Ok(ExitCode::SUCCESS)
}

/// Suspends or resumes a workflow.
pub fn suspend(args: WorkflowArgs, cwd: &Path, suspended: bool) -> Result<ExitCode, Failure> {
    let done = suspend::set_suspended(&args.record.options(cwd), &args.workflow, suspended).map_err(manage_failure)?;
    let state = if suspended { "suspended" } else { "active" };
    println!("{} is now {state}\n{done}", args.workflow);
    Ok(ExitCode::SUCCESS)
}

fn task_record(done: &Recorded) -> Option<&plancd::state::TaskStatus> {
    match &done.record {
        Record::Task(s) => Some(s),
        Record::Workflow(_) => None,
    }
}
