//! `plancd logs WF/TASK [--attempt N]`

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use plancd::ops::logs::logs;

use super::{Failure, manage_failure, task_key};

/// Arguments of `plancd logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task, as WF/TASK.
    #[arg(value_name = "WF/TASK")]
    task: String,

    /// The attempt (default: the latest).
    #[arg(long)]
    attempt: Option<u32>,
}

/// Prints the attempt's logs.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let key = task_key(&args.task)?;
    let found = logs(cwd, &key, args.attempt).map_err(manage_failure)?;
    let mut out = std::io::stdout().lock();
    if found.files.is_empty() {
        let _ = writeln!(out, "attempt {} of {key} left no logs", found.attempt);
    }
    for (name, data) in found.files.iter().filter(|(n, _)| n.ends_with(".log")) {
        let _ = writeln!(out, "==> {key} attempt {} {name} <==", found.attempt);
        // Logs hold what sandboxed commands printed: shown, never interpreted by the terminal.
        let _ = out.write_all(plancd_sandbox::escape::controls(data).as_bytes());
        let _ = writeln!(out);
    }
    Ok(ExitCode::SUCCESS)
}
