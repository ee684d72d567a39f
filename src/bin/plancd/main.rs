//! The `plancd` command line: parses arguments, calls `plancd::ops`, prints, and maps outcomes
//! to exit codes (0 success, 1 work failed or found, 2 bad input, 3 an outside part failed).

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Declarative GitOps for AI agent work: plans in git, agents in sandboxes, results as
/// branches, tags and pull requests.
#[derive(Debug, Parser)]
#[command(name = "plancd", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Run as if plancd was started in PATH.
    #[arg(short = 'C', long = "repo", global = true, value_name = "PATH")]
    repo: Option<PathBuf>,

    /// Log more on stderr: -v what plancd does, -vv details (RUST_LOG also works; `serve`
    /// logs JSON lines).
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start in an existing repository: detect the project, write plancd.yaml and a first plan.
    Init(commands::init::Args),
    /// Check plan, contract and configuration files (exit 0 valid, 2 invalid).
    Validate(commands::validate::Args),
    /// Turn a request into a plan with the planner model, and write it under plans/.
    Plan(commands::plan::Args),
    /// Draw a workflow's dependency graph as Mermaid or Graphviz dot.
    Graph(commands::graph::Args),
    /// Run one reconcile pass: every task not yet satisfied is run, checked and published.
    Reconcile(commands::reconcile::Args),
    /// Show what a reconcile would do (exit 0 nothing, 1 work to do).
    Diff(commands::diff::Args),
    /// Show every task's phase, attempt, duration, result and why it waits.
    Status(commands::status::Args),
    /// Print an attempt's logs.
    Logs(commands::logs::Args),
    /// Show the audit trail: every state change of every task, oldest first.
    Events(commands::events::Args),
    /// Show everything about one task: spec, attempts, branch todos, tests, environment, result.
    Describe(commands::describe::Args),
    /// Approve a task that waits for approval.
    Approve(commands::manage::TaskArgs),
    /// Re-open a failed or escalated task with a fresh count of attempts, or ask for changes (-m).
    Retry(commands::manage::RetryArgs),
    /// Stop reconciling a workflow.
    Suspend(commands::manage::WorkflowArgs),
    /// Reconcile a suspended workflow again.
    Resume(commands::manage::WorkflowArgs),
    /// Reconcile the sma-crossover example in a temporary repository, offline.
    Demo(commands::demo::Args),
    /// Print a shell completion script.
    Completions(commands::completions::Args),
    /// Run a command in a sandbox, or check a sandbox against the adversarial suite.
    Sandbox(commands::sandbox::Args),
    /// Classify a failure log: failure type, the role to route it to, and the evidence.
    Triage(commands::triage::Args),
    /// Run as a controller: watch repositories, answer webhooks, serve health and metrics.
    Serve(commands::serve::Args),
    /// Act on the GitHub Actions event of this job: reconcile, preview a plan pull request, or retry a task.
    Action(commands::action::Args),
}

fn main() -> ExitCode {
    // Inside a sandbox with port forwards, plancd is the forwarder (not a user-facing command).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == plancd_sandbox::forward::SUBCOMMAND) {
        std::process::exit(plancd_sandbox::forward::main(&args[2..]));
    }
    let cli = Cli::parse();
    let format = match cli.command {
        Command::Serve(_) => plancd::telemetry::LogFormat::Json,
        _ => plancd::telemetry::LogFormat::Human,
    };
    let traces = plancd::telemetry::init_logs_to(format, cli.verbose, commands::progress::LogWriter);
    let code = run(cli);
    // A one-shot command's spans are still queued: send them, for a bounded time.
    traces.shutdown();
    code
}

/// Runs the command and maps its outcome to the exit code.
fn run(cli: Cli) -> ExitCode {
    let cwd = match cli.repo.clone().map_or_else(std::env::current_dir, Ok) {
        Ok(dir) => dir,
        Err(e) => return commands::fail(&commands::Failure::input(anyhow::anyhow!("cannot read the current directory: {e}"))),
    };
    let result = match cli.command {
        Command::Init(args) => commands::init::run(args, &cwd),
        Command::Validate(args) => commands::validate::run(args, &cwd),
        Command::Plan(args) => commands::plan::run(args, &cwd),
        Command::Graph(args) => commands::graph::run(args, &cwd),
        Command::Reconcile(args) => commands::reconcile::run(args, &cwd),
        Command::Diff(args) => commands::diff::run(args, &cwd),
        Command::Status(args) => commands::status::run(args, &cwd),
        Command::Logs(args) => commands::logs::run(args, &cwd),
        Command::Events(args) => commands::events::run(args, &cwd),
        Command::Describe(args) => commands::describe::run(args, &cwd),
        Command::Approve(args) => commands::manage::approve(args, &cwd),
        Command::Retry(args) => commands::manage::retry(args, &cwd),
        Command::Suspend(args) => commands::manage::suspend(args, &cwd, true),
        Command::Resume(args) => commands::manage::suspend(args, &cwd, false),
        Command::Demo(args) => commands::demo::run(args),
        Command::Triage(args) => commands::triage::run(args, &cwd),
        Command::Serve(args) => commands::serve::run(args, &cwd),
        Command::Completions(args) => commands::completions::run(args),
        Command::Sandbox(args) => commands::sandbox::run(args),
        Command::Action(args) => commands::action::run(args, &cwd),
    };
    match result {
        Ok(code) => code,
        Err(failure) => commands::fail(&failure),
    }
}
