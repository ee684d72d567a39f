//! `plancd sandbox run [..] -- CMD..` and `plancd sandbox check [--backend ..]`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use plancd::ops::sandbox::{Backend, CheckOptions, RUN_COPY_LIMITS, RunOptions, SandboxOpError, check, run as run_command, run_exit_code};
use plancd_sandbox::escape;

use super::{Failure, Output};

/// Arguments of `plancd sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    /// Run one command in a fresh sandbox. Exits 0 when the command exited 0, 1 when it exited
    /// with another code (printed on stderr), 124 when killed at its deadline, 125 when killed
    /// otherwise; 2 and 3 are plancd's own (bad input; the sandbox failed).
    Run(RunArgs),
    /// Run the adversarial suite: exit 0 when every attack is contained, 1 otherwise, 3 when
    /// the backend is unavailable.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BackendArg {
    /// bubblewrap, cgroups and seccomp; no daemon.
    Process,
    /// A local Docker engine.
    Docker,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Process => Backend::Process,
            BackendArg::Docker => Backend::Docker,
        }
    }
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Which sandbox.
    #[arg(long, value_enum, default_value = "process")]
    backend: BackendArg,
    /// Deadline, seconds; past it every process of the command is killed.
    #[arg(long, value_name = "S", default_value_t = 300.0)]
    timeout: f64,
    /// Memory limit, MiB.
    #[arg(long, value_name = "N")]
    memory_mb: Option<u64>,
    /// Workspace size, MiB.
    #[arg(long, value_name = "N")]
    disk_mb: Option<u64>,
    /// A folder copied into the workspace first; the files the command leaves are copied back.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Docker: the image.
    #[arg(long)]
    image: Option<String>,
    /// Process: a root folder to use instead of the host's (e.g. the image's root).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Which sandbox.
    #[arg(long, value_enum, default_value = "process")]
    backend: BackendArg,
    /// Docker: the image.
    #[arg(long)]
    image: Option<String>,
    /// Process: a root folder to use instead of the host's.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Only the cases whose names contain this (repeatable).
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Runs the command.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::outside(anyhow::anyhow!("cannot start the async runtime: {e}")))?;
    match args.command {
        Verb::Run(a) => runtime.block_on(run_one(a)),
        Verb::Check(a) => runtime.block_on(run_check(a)),
    }
}

fn failure(e: SandboxOpError) -> Failure {
    match e {
        SandboxOpError::Workspace { .. } => Failure::input(e),
        SandboxOpError::Unavailable { .. } | SandboxOpError::Sandbox(_) => Failure::outside(e),
    }
}

async fn run_one(a: RunArgs) -> Result<ExitCode, Failure> {
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        return Err(Failure::input(anyhow::anyhow!("--timeout must be a positive number of seconds")));
    }
    let opts = RunOptions {
        backend: a.backend.into(),
        argv: a.command,
        timeout: Duration::from_secs_f64(a.timeout),
        memory_mb: a.memory_mb,
        disk_mb: a.disk_mb,
        workspace: a.workspace,
        copy_limits: RUN_COPY_LIMITS,
        image: a.image,
        root: a.root,
        output_limit: 16 << 20,
    };
    let report = run_command(&opts).await.map_err(failure)?;
    let out = &report.outcome;
    // The command's output is shown, never interpreted: escapes are made visible, and a line
    // that would pass for one of plancd's own starts with `\`.
    let _ = std::io::stdout().write_all(escape::output(&out.stdout).as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(escape::output(&out.stderr).as_bytes());
    let ends_open = |b: &[u8]| !b.is_empty() && !b.ends_with(b"\n");
    if ends_open(&out.stdout) || ends_open(&out.stderr) {
        eprintln!();
    }
    status_lines(&report, opts.workspace.is_some());
    Ok(ExitCode::from(run_exit_code(out)))
}

/// plancd's own lines after a command's output, each starting with [`escape::STATUS_MARKER`].
fn status_lines(report: &plancd::ops::sandbox::RunReport, workspace: bool) {
    let out = &report.outcome;
    let marker = escape::STATUS_MARKER;
    let mut notes = Vec::new();
    if out.stdout_truncated || out.stderr_truncated {
        notes.push("output truncated".to_owned());
    }
    if workspace {
        notes.push(format!("{} files copied back, {} not", report.copied_back, report.skipped.len()));
    }
    let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
    let code = out.exit_code.map(|c| format!("; command exit code {c}")).unwrap_or_default();
    eprintln!("{marker} sandbox ({}): {out}{code}{notes}; plancd exits {}", report.backend, run_exit_code(out));
    const SHOWN: usize = 20;
    for (path, why) in report.skipped.iter().take(SHOWN) {
        eprintln!("{marker} not copied back: {} ({why})", escape::name(path));
    }
    if report.skipped.len() > SHOWN {
        eprintln!("{marker} ... and {} more not copied back", report.skipped.len() - SHOWN);
    }
}

async fn run_check(a: CheckArgs) -> Result<ExitCode, Failure> {
    // This very program holds the session that the `killed-owner` case kills.
    let holder = std::env::current_exe().ok();
    let opts = CheckOptions { backend: a.backend.into(), image: a.image, root: a.root, only: a.only, holder };
    let report = check(&opts).await.map_err(failure)?;
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report).expect("a report always serialises")),
        Output::Text => {
            let width = report.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for c in &report.cases {
                let mark = if c.contained { "contained" } else { "ESCAPED  " };
                println!("{mark}  {:<width$}  {}", c.name, escape::name(&c.detail));
            }
            println!("{}/{} attacks contained ({} backend, suite {})", report.contained(), report.total(), report.backend, report.version);
        }
    }
    Ok(if report.all_contained() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
