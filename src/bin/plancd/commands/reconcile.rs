//! `plancd reconcile [--once]`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::reconcile::{ReconcileError, ReconcileOptions, default_sandbox_opener, reconcile};
use plancd::reconcile::PassReport;
use tokio::sync::watch;

use super::progress::Progress;
use super::{Failure, print_status_table};

/// Arguments of `plancd reconcile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run one pass to its fixed point and exit (the default).
    #[arg(long, conflicts_with_all = ["watch", "request"])]
    once: bool,

    /// Keep running: a pass whenever the watched branch moves or a request comes in, and a
    /// full pass every few minutes; stop with Ctrl-C.
    #[arg(long, conflicts_with = "request")]
    watch: bool,

    /// Ask a running controller (`plancd serve` or `reconcile --watch`) for a pass now, and
    /// wait until it says it ran one.
    #[arg(long)]
    request: bool,

    /// How long `--request` waits, in seconds.
    #[arg(long, default_value_t = 120, requires = "request")]
    timeout: u64,

    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,

    /// Share the task state with other plancd processes through the remote (`remote:` in
    /// plancd.yaml): every claim and status is a compare-and-swap push to it, so that several
    /// machines reconcile one repository without doing a task twice.
    /// With `--request`: ask the controllers that serve the remote.
    #[arg(long, conflicts_with = "watch")]
    shared: bool,
}

/// Runs the command: exit 0 when every task is satisfied or waits on a person, 1 when a task
/// failed or was escalated, a workflow's plan is invalid or a task ref is broken (the others
/// run), 2 for bad input that stops every workflow (plancd.yaml), 3 when an outside part failed,
/// 130 when stopped.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    if args.request {
        return request(cwd, args.timeout, args.shared);
    }
    if args.watch {
        return watch_mode(cwd);
    }
    warn_of_drift(cwd, args.branch.as_deref(), &Env::process());
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
        shared: args.shared,
        remote: None,
    };
    let result = runtime.block_on(reconcile(opts));
    progress.finish();
    let report = result.map_err(failure)?;
    print_status_table(cwd, args.branch.as_deref());
    Ok(summarise(&report))
}

/// The exit code of a pass (decided by [`PassReport::exit_code`]), with a one-line summary.
pub fn summarise(report: &PassReport) -> ExitCode {
    let c = report.counts();
    let mut line = format!("{}/{} tasks satisfied, {} attempt(s) run", c.satisfied, c.total, report.attempts.len());
    if c.failed > 0 {
        line.push_str(&format!(", {} failed, escalated or held for a person", c.failed));
    }
    if c.approval > 0 {
        line.push_str(&format!(", {} waiting for approval", c.approval));
    }
    if !report.stalled.is_empty() {
        line.push_str(&format!(", {} workflow(s) stalled", report.stalled.len()));
        print_stalled(&report.stalled);
    }
    for broken in &report.broken {
        eprintln!("error: {broken}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if report.superseded {
        line.push_str("; the remote's branch moved meanwhile: pull, and reconcile again for its plans");
    }
    let code = report.exit_code();
    match (code, &report.infrastructure) {
        (130, _) => eprintln!("{line}\nstopped by a signal; claims were released"),
        (3, Some(why)) => eprintln!("{line}\nerror: an outside part failed: {why}"),
        _ => println!("{line}"),
    }
    ExitCode::from(code)
}

/// Warns when plan or contract files in the work tree differ from the watched commit: a
/// reconcile reads the commit, so those edits do nothing until they are committed.
pub fn warn_of_drift(cwd: &Path, branch: Option<&str>, env: &Env) {
    let Ok(snapshot) = plancd::reconcile::Snapshot::load(cwd, branch, env) else { return };
    if let Some((from, notes)) = &snapshot.environment_from {
        eprintln!("environment: taken from {from} (plancd.yaml declares none)");
        for note in notes {
            eprintln!("  note: {note}");
        }
    }
    let Ok(files) = plancd::ops::drift::drift(cwd, snapshot.plan_commit, &snapshot.config) else { return };
    if !files.is_empty() {
        eprintln!(
            "warning: {} differ(s) from the watched commit of `{}`; plancd reads the commit: commit them (or see `plancd diff --work-tree`)",
            files.join(", "),
            snapshot.branch
        );
    }
}

/// Each stalled workflow, why, and its plan's errors, on stderr.
pub fn print_stalled(stalled: &[plancd::reconcile::StalledWorkflow]) {
    for s in stalled {
        eprintln!("workflow {} is Stalled ({}): nothing of it ran; the other workflows did", s.plan.name(), s.reason);
        for d in s.plan.diagnostics.iter().filter(|d| d.is_error()) {
            eprintln!("{d}");
        }
    }
}

/// Maps a pass that could not run to its exit code, printing plan problems.
pub fn failure(e: ReconcileError) -> Failure {
    if let ReconcileError::Load(plancd::reconcile::LoadError::Invalid(diags)) = &e {
        for d in diags.iter().filter(|d| d.is_error()) {
            eprintln!("{d}");
        }
    }
    if e.is_bad_input() { Failure::input(e) } else { Failure::outside(e) }
}

fn request(cwd: &Path, timeout: u64, shared: bool) -> Result<ExitCode, Failure> {
    let who = std::env::var("USER").unwrap_or_else(|_| "a user".into());
    let remote = if shared { Some(shared_remote(cwd)?) } else { None };
    let runtime = super::runtime()?;
    let done = runtime.block_on(plancd::ops::serve::request_and_wait(cwd, &who, std::time::Duration::from_secs(timeout), remote));
    match done {
        Ok(r) => {
            println!(
                "handled by {} at {}: {}",
                r.handled_by.unwrap_or_default(),
                r.handled_at.map(|t| t.to_string()).unwrap_or_default(),
                r.outcome
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ plancd::ops::serve::RequestError::Timeout(_)) => Err(Failure::outside(e)),
        Err(e) => Err(Failure::input(e)),
    }
}

/// The remote plancd.yaml (in the working tree) names, which must exist.
fn shared_remote(cwd: &Path) -> Result<plancd::remote::Remote, Failure> {
    let source = plancd::spec::DirSource::new(cwd);
    let config = match plancd::config::Config::load_env(&source, &Env::process()) {
        Ok(config) => config,
        Err(diagnostics) => {
            for d in diagnostics.iter().filter(|d| d.is_error()) {
                eprintln!("{d}");
            }
            return Err(Failure::input(anyhow::anyhow!("plancd.yaml is invalid")));
        }
    };
    match plancd::remote::Remote::open(cwd, &config.remote, None) {
        Ok(Some(remote)) => Ok(remote),
        Ok(None) => Err(Failure::input(anyhow::anyhow!(
            "the repository has no remote `{}` to share (`remote:` in plancd.yaml names it)",
            config.remote
        ))),
        Err(e) => Err(Failure::outside(e)),
    }
}

fn watch_mode(cwd: &Path) -> Result<ExitCode, Failure> {
    let config = plancd::ops::serve::load_config(None, cwd).map_err(super::serve::config_failure)?;
    let runtime = super::runtime()?;
    let progress = Progress::new();
    let (cancel_tx, cancel) = watch::channel(false);
    runtime.spawn(super::stop_on_signals(cancel_tx));
    let opts = plancd::ops::serve::ServeOptions {
        config,
        env: Env::process(),
        sandbox: default_sandbox_opener(),
        cancel,
        http: false,
        events: Some(progress.sink()),
    };
    runtime.block_on(plancd::ops::serve::serve(opts)).map_err(super::serve::config_failure)?;
    progress.finish();
    Ok(ExitCode::SUCCESS)
}
