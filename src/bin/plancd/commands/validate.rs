//! `plancd validate [PATH..]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plancd::ops::validate::{ValidateError, ValidateOptions, ValidateReport, validate};
use plancd::spec::FileKind;

use super::{EXIT_INPUT, Failure, Output};

/// Arguments of `plancd validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or folders to check. A folder with a plancd.yaml is checked as a repository (its
    /// plan and contract globs); any other folder by all its YAML and JSON files. Default: the
    /// repository around the current directory.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Runs the command.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let opts = ValidateOptions { paths: args.paths, cwd: cwd.to_path_buf() };
    let report = validate(&opts).map_err(|e| match e {
        ValidateError::NotFound(_) => Failure::input(e),
        ValidateError::Io { .. } => Failure::input(e),
    })?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report).expect("a report always serialises")),
        Output::Text => print_text(&report),
    }
    Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::from(EXIT_INPUT) })
}

fn print_text(report: &ValidateReport) {
    for d in &report.diagnostics {
        println!("{d}");
    }
    let count = |kind| report.files.iter().filter(|f| f.kind == kind).count();
    let mut kinds = Vec::new();
    for (kind, one, many) in [
        (FileKind::Plan, "plan", "plans"),
        (FileKind::Contract, "contract", "contracts"),
        (FileKind::Config, "config", "configs"),
        (FileKind::Scripted, "replies file", "replies files"),
    ] {
        match count(kind) {
            0 => {}
            1 => kinds.push(format!("1 {one}")),
            n => kinds.push(format!("{n} {many}")),
        }
    }
    let files = if kinds.is_empty() { "no plan files found".to_owned() } else { kinds.join(", ") };
    let warnings = match report.warnings() {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    if report.valid {
        println!("valid: {files}{warnings}");
    } else {
        let errors = report.errors();
        println!("invalid: {errors} error{}{warnings} in {files}", if errors == 1 { "" } else { "s" });
    }
}
