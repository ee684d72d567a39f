//! `plancd logs WF/TASK [--attempt N] [-f]`

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use plancd::ops::logs::{follow, logs};

use super::{Failure, manage_failure, task_key};

/// Arguments of `plancd logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task, as WF/TASK.
    #[arg(value_name = "WF/TASK")]
    task: String,

    /// The attempt (default: the latest).
    #[arg(long, conflicts_with = "follow")]
    attempt: Option<u32>,

    /// Follow the attempt that runs now (by any plancd in this repository): print its agent,
    /// checks and tests output as it comes, until it ends. Without one, print the latest logs.
    #[arg(short = 'f', long)]
    follow: bool,

    /// With -f: follow the attempt at the controller (`plancd serve`) listening at URL, e.g.
    /// http://plancd:8080, instead of in this repository.
    #[arg(long, value_name = "URL", requires = "follow")]
    server: Option<String>,
}

/// Prints the attempt's logs.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let key = task_key(&args.task)?;
    if let Some(server) = &args.server {
        return follow_server(server, &key);
    }
    if args.follow && follow_live(cwd, &key)? {
        return Ok(ExitCode::SUCCESS);
    }
    if args.attempt.is_none() && print_live_so_far(cwd, &key)? {
        return Ok(ExitCode::SUCCESS);
    }
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

/// Follows `key`'s running attempt to its end; false when none runs.
fn follow_live(cwd: &Path, key: &plancd::state::TaskKey) -> Result<bool, Failure> {
    let mut current: Option<String> = None;
    let mut header = |name: &str, attempt: &str| {
        let mut out = std::io::stdout().lock();
        if current.as_deref() != Some(name) {
            let _ = writeln!(out, "==> {key} attempt {attempt} {name} (live) <==");
            current = Some(name.to_owned());
        }
    };
    let attempt = plancd::ops::logs::running_attempt(cwd, key).map_err(manage_failure)?.map(|v| v.attempt.to_string());
    let Some(attempt) = attempt else { return Ok(false) };
    let ended = follow(cwd, key, &mut |name, data| {
        header(name, &attempt);
        let mut out = std::io::stdout().lock();
        // Escaped as it was written; escaped again in case the file is not plancd's own.
        let _ = out.write_all(plancd_sandbox::escape::controls(data).as_bytes());
        let _ = out.flush();
    })
    .map_err(manage_failure)?;
    if let Some(view) = ended {
        eprintln!("attempt {} of {key} ended (last step: {}); `plancd logs {key}` shows its recorded logs", view.attempt, view.marker.step);
    }
    Ok(true)
}

/// Follows `key`'s running attempt at the controller at `server` to its end.
fn follow_server(server: &str, key: &plancd::state::TaskKey) -> Result<ExitCode, Failure> {
    let runtime = super::runtime()?;
    let mut current: Option<String> = None;
    let mut on = |name: &str, text: &str| {
        let mut out = std::io::stdout().lock();
        if current.as_deref() != Some(name) {
            let _ = writeln!(out, "==> {key} {name} (live at {server}) <==");
            current = Some(name.to_owned());
        }
        let _ = out.write_all(plancd_sandbox::escape::controls(text.as_bytes()).as_bytes());
        let _ = out.flush();
    };
    match runtime.block_on(plancd::ops::logs::follow_remote(server, key, &mut on)) {
        Ok(Some((attempt, step))) => {
            eprintln!("attempt {attempt} of {key} ended (last step: {step})");
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            eprintln!("no attempt of {key} runs at {server}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(Failure::outside(e)),
    }
}

/// Prints what `key`'s running attempt has written so far; false when none runs.
fn print_live_so_far(cwd: &Path, key: &plancd::state::TaskKey) -> Result<bool, Failure> {
    let Some(chunk) = plancd::ops::logs::live_so_far(cwd, key).map_err(manage_failure)? else { return Ok(false) };
    let mut out = std::io::stdout().lock();
    for log in chunk.logs.iter().filter(|l| !l.text.is_empty()) {
        let _ = writeln!(out, "==> {key} attempt {} {} (live, so far) <==", chunk.attempt, log.name);
        let _ = out.write_all(plancd_sandbox::escape::controls(log.text.as_bytes()).as_bytes());
    }
    eprintln!("attempt {} of {key} is running ({}); `plancd logs {key} -f` follows it", chunk.attempt, chunk.step);
    Ok(true)
}
