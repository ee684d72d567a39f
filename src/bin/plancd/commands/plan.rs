//! `plancd plan "<request>" [-o plans/] [--model NAME] [--force]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plancd::config::Env;
use plancd::ops::plan::{PlanError, PlanOptions, PlanReport, plan};

use super::Failure;

/// Arguments of `plancd plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What the plan is for, in words, e.g. "Create momentum strategy".
    #[arg(value_name = "REQUEST")]
    request: String,

    /// A folder for the plan (named after its workflow id), or the plan file's path.
    #[arg(short = 'o', long = "out", value_name = "PATH", default_value = "plans")]
    out: PathBuf,

    /// The model (default: roles.planner.model, else the model named `default`).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,

    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

/// Runs the command: exit 0 with a valid plan written, 1 when the model produced none, 2 for
/// bad input, 3 when the model's API failed.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let opts = PlanOptions {
        request: args.request,
        cwd: cwd.to_path_buf(),
        out: args.out,
        model: args.model,
        env: Env::process(),
        force: args.force,
    };
    let runtime = super::runtime()?;
    match runtime.block_on(plan(&opts)) {
        Ok(report) => {
            print_report(&report, cwd);
            Ok(ExitCode::SUCCESS)
        }
        Err(PlanError::Invalid { tries, diagnostics }) => {
            for d in diagnostics.iter().filter(|d| d.is_error()) {
                eprintln!("{d}");
            }
            eprintln!("error: the model produced no valid plan in {tries} tries; nothing was written");
            Ok(ExitCode::from(1))
        }
        Err(PlanError::Config(diags)) => {
            for d in diags.iter().filter(|d| d.is_error()) {
                eprintln!("{d}");
            }
            Err(Failure::input(PlanError::Config(diags)))
        }
        Err(e) if e.is_bad_input() => Err(Failure::input(e)),
        Err(e) if e.is_outside() => Err(Failure::outside(e)),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn print_report(report: &PlanReport, cwd: &Path) {
    let rows: Vec<[String; 4]> = report
        .list
        .tasks
        .iter()
        .map(|t| {
            let deps = if t.dependencies.is_empty() { "-".to_owned() } else { t.dependencies.join(", ") };
            [t.id.clone(), t.agent_role.to_string(), deps, t.title.clone()]
        })
        .collect();
    let header = ["TASK", "ROLE", "DEPENDS ON", "TITLE"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    println!("{}: {}", report.list.todo_list_id, report.list.title);
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    let shown = report.path.strip_prefix(cwd).unwrap_or(&report.path);
    let tokens = report.cost.tokens();
    println!(
        "wrote {} ({} task(s), model {}, {} tr{}, {tokens} tokens, ${:.4})",
        shown.display(),
        report.list.tasks.len(),
        report.model,
        report.tries,
        if report.tries == 1 { "y" } else { "ies" },
        report.cost.usd
    );
}
