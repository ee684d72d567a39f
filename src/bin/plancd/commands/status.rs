//! `plancd status [WF[/TASK]] [-o table|json|yaml|mermaid]`, `plancd status -o html [DIR]`

use std::path::Path;
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::status::{StatusReport, dag, network_text, quality_text, stalled_text, status, table};
use plancd::reconcile::Snapshot;

use super::Failure;

/// Arguments of `plancd status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A workflow, or one task as WF/TASK; everything when left out. With `-o html`: the folder
    /// to write the pages to (default `plancd-html`).
    #[arg(value_name = "WF[/TASK]")]
    target: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,

    /// The watched branch (default: `branch:` in plancd.yaml, or PLANCD_BRANCH).
    #[arg(long)]
    branch: Option<String>,

    /// Keep watching: print the table again whenever it changes (Ctrl-C stops).
    #[arg(short, long)]
    watch: bool,

    /// With --watch: seconds between looks at the refs.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    interval: f64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
    Mermaid,
    /// The dashboard's pages as static files.
    Html,
}

/// Prints the status.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let env = Env::process();
    if let Format::Html = args.output {
        let dir = cwd.join(args.target.as_deref().unwrap_or("plancd-html"));
        let site = plancd::ui::static_site::write_site(cwd, args.branch.as_deref(), &env, &dir).map_err(Failure::outside)?;
        println!("wrote {} page(s); open {}", site.pages, site.index.display());
        return Ok(ExitCode::SUCCESS);
    }
    let report = status(cwd, args.branch.as_deref(), &env, args.target.as_deref()).map_err(Failure::outside)?;
    if let Some(target) = &args.target
        && report.tasks.is_empty()
        && report.stalled.is_empty()
    {
        return Err(Failure::input(anyhow::anyhow!("no workflow or task `{target}`")));
    }
    if args.watch {
        return watch(&args, cwd, &env, report);
    }
    match args.output {
        Format::Table => print_table(&report),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).expect("a report always serialises")),
        Format::Yaml => print!("{}", serde_saphyr::to_string(&report).map_err(|e| Failure::outside(anyhow::anyhow!("{e}")))?),
        Format::Mermaid => {
            let snapshot = Snapshot::load(cwd, args.branch.as_deref(), &env).ok();
            print!("{}", plancd::render::mermaid(&dag(&report, snapshot.as_ref())));
        }
        Format::Html => {} // written above
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
    print!("{}", quality_text(report));
    print!("{}", network_text(report));
    print!("{}", stalled_text(report));
}

/// Prints the table, then again each time it changes: on a terminal over the last one, else
/// after it with the time of the change. Durations of running tasks are left out of the
/// comparison, so that only a change of state redraws.
fn watch(args: &Args, cwd: &Path, env: &Env, mut report: StatusReport) -> Result<ExitCode, Failure> {
    use std::io::{IsTerminal, Write};
    let every = std::time::Duration::from_secs_f64(args.interval.clamp(0.05, 3600.0));
    let terminal = std::io::stdout().is_terminal();
    let mut last: Option<String> = None;
    loop {
        let key = report
            .tasks
            .iter()
            .map(|r| format!("{}/{} {} {} {:?}", r.workflow, r.task, r.phase, r.attempt, r.why))
            .collect::<Vec<_>>()
            .join("\n");
        if last.as_deref() != Some(key.as_str()) {
            let mut out = std::io::stdout().lock();
            if terminal {
                let _ = write!(out, "\x1b[H\x1b[2J");
            } else if last.is_some() {
                let _ = writeln!(out, "\n--- {}", jiff::Timestamp::now().strftime("%H:%M:%S"));
            }
            drop(out);
            print_table(&report);
            let _ = std::io::stdout().flush();
            last = Some(key);
        }
        std::thread::sleep(every);
        report = status(cwd, args.branch.as_deref(), env, args.target.as_deref()).map_err(Failure::outside)?;
    }
}
