//! `plancd status [WF[/TASK]] [-o table|json|yaml|mermaid]`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::status::{StatusReport, mermaid, stalled_text, status, table};
use plancd::reconcile::Snapshot;

use super::Failure;

/// Arguments of `plancd status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workflow, or one task as WF/TASK; everything when left out.
    #[arg(value_name = "WF[/TASK]")]
    target: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,

    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
    Mermaid,
}

/// Prints the status.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let env = Env::process();
    let report = status(cwd, args.branch.as_deref(), &env, args.target.as_deref()).map_err(Failure::outside)?;
    if let Some(target) = &args.target
        && report.tasks.is_empty()
        && report.stalled.is_empty()
    {
        return Err(Failure::input(anyhow::anyhow!("no workflow or task `{target}`")));
    }
    match args.output {
        Format::Table => print_table(&report),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).expect("a report always serialises")),
        Format::Yaml => print!("{}", serde_saphyr::to_string(&report).map_err(|e| Failure::outside(anyhow::anyhow!("{e}")))?),
        Format::Mermaid => {
            let snapshot = Snapshot::load(cwd, args.branch.as_deref(), &env).ok();
            print!("{}", mermaid(&report, snapshot.as_ref()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The table, with a note when the plans could not be read.
pub fn print_table(report: &StatusReport) {
    if let Some(why) = &report.plans_error {
        eprintln!("note: the plans could not be read ({why}); showing the refs only");
    }
    if report.tasks.is_empty() {
        println!("no tasks yet");
    } else {
        print!("{}", table(report));
    }
    print!("{}", stalled_text(report));
}
