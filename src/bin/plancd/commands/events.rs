//! `plancd events [WF[/TASK]] [--since DURATION|TIME] [-o json]`

use std::path::Path;
use std::process::ExitCode;

use plancd::ops::events::{EventsOptions, events, parse_since, table};

use super::{Failure, Output};

/// Arguments of `plancd events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workflow, or one task as WF/TASK (its branch todos included); everything when left out.
    #[arg(value_name = "WF[/TASK]")]
    target: Option<String>,

    /// Only the changes since a duration ago (90s, 10m, 2h, 1d) or a time (2026-12-02T14:00:00Z).
    #[arg(long, value_name = "DURATION|TIME")]
    since: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Prints the audit trail.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let now = jiff::Timestamp::now();
    let since =
        args.since.as_deref().map(|s| parse_since(s, now)).transpose().map_err(|e| Failure::input(anyhow::anyhow!("--since: {e}")))?;
    let opts = EventsOptions { target: args.target.as_deref(), since };
    let rows = events(cwd, &opts).map_err(Failure::outside)?;
    if let Some(target) = &args.target
        && rows.is_empty()
        && events(cwd, &EventsOptions { target: Some(target), since: None }).map_err(Failure::outside)?.is_empty()
    {
        return Err(Failure::input(anyhow::anyhow!("no records of `{target}` (plancd status lists the tasks)")));
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rows).expect("events always serialise")),
        Output::Text if rows.is_empty() => println!("no events{}", args.since.map(|s| format!(" since {s}")).unwrap_or_default()),
        Output::Text => print!("{}", table(&rows, now)),
    }
    Ok(ExitCode::SUCCESS)
}
