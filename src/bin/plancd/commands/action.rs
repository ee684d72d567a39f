//! `plancd action`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::action::{ActionOptions, action, summary};
use plancd::ops::reconcile::default_sandbox_opener;
use tokio::sync::watch;

use super::progress::Progress;
use super::{EXIT_INPUT, Failure};

/// Arguments of `plancd action`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file in the repository (default: plancd.yaml), read from the watched
    /// commit, or from a pull request's base.
    #[arg(long, value_name = "PATH")]
    config: Option<String>,
}

/// Runs the step: annotations on stdout, the summary and outputs in GitHub's files. Exit codes
/// are those of `plancd reconcile`; invalid plans exit 2.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let mut env = Env::process();
    if let Some(config) = args.config {
        env = env.with("PLANCD_CONFIG", &config);
    }
    let runtime = super::runtime()?;
    let progress = Progress::new();
    let (cancel_tx, cancel) = watch::channel(false);
    runtime.spawn(super::stop_on_signals(cancel_tx));
    let opts = ActionOptions {
        repo: cwd.to_path_buf(),
        env: env.clone(),
        sandbox: default_sandbox_opener(),
        events: Some(progress.sink()),
        cancel,
    };
    let result = runtime.block_on(action(opts));
    progress.finish();
    let report = result.map_err(|e| if e.is_bad_input() { Failure::input(e) } else { Failure::outside(e) })?;
    for line in summary::annotations(&report.diagnostics) {
        println!("{line}");
    }
    summary::write_files(&report, &env)
        .map_err(|e| Failure::outside(anyhow::anyhow!("cannot write GITHUB_OUTPUT or GITHUB_STEP_SUMMARY: {e}")))?;
    println!("{}", report.headline);
    if report.invalid() {
        return Ok(ExitCode::from(EXIT_INPUT));
    }
    Ok(match &report.pass {
        Some(pass) => super::reconcile::summarise(pass),
        None => ExitCode::SUCCESS,
    })
}
