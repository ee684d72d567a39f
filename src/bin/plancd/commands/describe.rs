//! `plancd describe WF/TASK [-o json]`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::describe::{describe, text};

use super::{Failure, Output, manage_failure, task_key};

/// Arguments of `plancd describe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task, as WF/TASK (a branch todo too).
    #[arg(value_name = "WF/TASK")]
    task: String,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,

    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,
}

/// Prints everything about one task.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let key = task_key(&args.task)?;
    let d = describe(cwd, args.branch.as_deref(), &Env::process(), &key).map_err(manage_failure)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&d).expect("a description always serialises")),
        Output::Text => print!("{}", text(&d, jiff::Timestamp::now())),
    }
    Ok(ExitCode::SUCCESS)
}
