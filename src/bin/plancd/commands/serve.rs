//! `plancd serve [--listen ADDR] [--config FILE]`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::reconcile::default_sandbox_opener;
use plancd::ops::serve::{ServeError, ServeOptions, load_config, serve};
use tokio::sync::watch;

use super::Failure;

/// Arguments of `plancd serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the HTTP server listens (webhooks, /healthz, /readyz, /metrics).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// The controller's configuration: its sources (repositories), listen address, webhook.
    /// Without one, plancd serves the repository it is started in.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs the controller until SIGTERM or SIGINT, then releases its claims and exits 0.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let mut config = load_config(args.config.as_deref(), cwd).map_err(config_failure)?;
    if args.listen.is_some() {
        config.listen = args.listen;
    }
    let runtime = super::runtime()?;
    let (cancel_tx, cancel) = watch::channel(false);
    runtime.spawn(super::stop_on_signals(cancel_tx));
    let opts = ServeOptions { config, env: Env::process(), sandbox: default_sandbox_opener(), cancel, http: true, events: None };
    runtime.block_on(serve(opts)).map_err(config_failure)?;
    Ok(ExitCode::SUCCESS)
}

/// Bad configuration is bad input; anything else an outside failure.
pub fn config_failure(e: ServeError) -> Failure {
    match e {
        ServeError::Config(_, ref diags) => {
            for d in diags.iter().filter(|d| d.is_error()) {
                eprintln!("{d}");
            }
            Failure::input(e)
        }
        ServeError::Read(..) | ServeError::State(_) => Failure::input(e),
        other => Failure::outside(other),
    }
}
