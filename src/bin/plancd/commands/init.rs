//! `plancd init [--dry-run] [--force]`

use std::path::Path;
use std::process::ExitCode;

use plancd::ops::init::{InitError, InitOptions, InitReport, init};

use super::Failure;

/// Arguments of `plancd init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the files that would be written, and write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Replace plancd.yaml, the example plan and the replies file if they exist.
    #[arg(long)]
    force: bool,
}

/// Runs the command: exit 0 with valid files written (or printed), 1 when they do not
/// validate, 2 when there is no project or a file exists without `--force`.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let opts = InitOptions { cwd: cwd.to_path_buf(), dry_run: args.dry_run, force: args.force };
    let report = init(&opts).map_err(|e| match e {
        InitError::NoProject { .. } | InitError::Exists { .. } | InitError::Io { .. } => Failure::input(e),
    })?;
    print_report(&report);
    Ok(if report.validation.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_report(report: &InitReport) {
    let project = &report.project;
    println!("detected: a {} project, tested with `{}`", project.language, project.test_command);
    for reason in &project.reasons {
        println!("  {reason}");
    }
    if let Some(found) = &report.conventions {
        println!("found {}:", found.source);
        for note in &found.notes {
            println!("  {note}");
        }
    }
    println!("environment: from {}", report.environment.source);
    for command in &report.environment.setup {
        println!("  setup: {command}");
    }
    if report.written {
        for file in &report.files {
            println!("{} {}", if file.exists { "replaced" } else { "wrote" }, file.path);
        }
    } else {
        for file in &report.files {
            println!("--- {} (not written: --dry-run){}", file.path, if file.exists { ", would replace the file there" } else { "" });
            print!("{}", file.content);
        }
    }
    for d in &report.validation.diagnostics {
        println!("{d}");
    }
    if !report.validation.valid {
        let verb = if report.written { "were written but do not" } else { "would not" };
        println!("invalid: the files {verb} validate (see above)");
        return;
    }
    println!("valid: plancd.yaml and {} check as `plancd validate` checks them", plancd::init::files::PLAN_FILE);
    let paths: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    println!("next: git add {} && git commit -m \"plancd: first plan\" && plancd reconcile", paths.join(" "));
}
