//! `plancd completions bash|zsh|fish|...`

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Failure;

/// Arguments of `plancd completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    shell: Shell,
}

/// Prints the completion script.
pub fn run(args: Args) -> Result<ExitCode, Failure> {
    let mut cmd = crate::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "plancd", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
