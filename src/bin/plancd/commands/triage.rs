//! `plancd triage [LOGFILE|-]`

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plancd::ops::triage::{TriageError, TriageOptions, triage};

use super::{Failure, Output};

/// Arguments of `plancd triage`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The failure's output; `-` or nothing reads standard input.
    #[arg(value_name = "LOGFILE")]
    log: Option<PathBuf>,

    /// The exit code the command had.
    #[arg(long, allow_hyphen_values = true)]
    exit_code: Option<i32>,

    /// How long it ran, seconds.
    #[arg(long, requires = "timeout")]
    duration: Option<f64>,

    /// Its deadline, seconds.
    #[arg(long)]
    timeout: Option<f64>,

    /// An immediate re-run of the same command passed.
    #[arg(long)]
    rerun_passed: bool,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Prints the classification.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let mut bytes = Vec::new();
    match args.log.as_deref() {
        None => std::io::stdin().read_to_end(&mut bytes).map(drop),
        Some(p) if p == Path::new("-") => std::io::stdin().read_to_end(&mut bytes).map(drop),
        Some(p) => std::fs::read(cwd.join(p)).map(|b| bytes = b),
    }
    .map_err(|e| Failure::input(anyhow::anyhow!("cannot read the log: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    let opts = TriageOptions { exit_code: args.exit_code, duration: args.duration, timeout: args.timeout, rerun_passed: args.rerun_passed };
    let c = triage(cwd, &text, &opts).map_err(|e| match e {
        TriageError::Config(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            Failure::input(anyhow::anyhow!("plancd.yaml is invalid"))
        }
        other => Failure::input(other),
    })?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&c).expect("a classification always serialises")),
        Output::Text => {
            println!(
                "failure_type: {}\ntarget_agent: {}\nauto_fixable: {}\nsummary: {}",
                c.failure_type, c.target_agent, c.auto_fixable, c.summary
            );
            if let Some(m) = &c.missing {
                println!("missing: {m}");
            }
            if !c.evidence.is_empty() {
                println!("evidence:");
                for line in &c.evidence {
                    println!("  {line}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
