//! `plancd graph [WF] -o mermaid|dot`

use std::path::Path;
use std::process::ExitCode;

use plancd::ops::graph::{GraphError, GraphFormat, GraphOptions, graph};
use plancd::ops::validate::repository_root;

use super::Failure;

/// Arguments of `plancd graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow (its `todo_list_id`); all workflows when left out.
    #[arg(value_name = "WF")]
    workflow: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Mermaid)]
    output: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Mermaid,
    Dot,
}

/// Runs the command.
pub fn run(args: Args, cwd: &Path) -> Result<ExitCode, Failure> {
    let format = match args.output {
        Format::Mermaid => GraphFormat::Mermaid,
        Format::Dot => GraphFormat::Dot,
    };
    let opts = GraphOptions { root: repository_root(cwd), workflow: args.workflow, format };
    match graph(&opts) {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(GraphError::Invalid(diags)) => {
            for d in diags.iter().filter(|d| d.is_error()) {
                eprintln!("{d}");
            }
            Err(Failure::input(anyhow::anyhow!("the plans are invalid; `plancd validate` shows the problems")))
        }
        Err(e @ GraphError::UnknownWorkflow { .. }) => Err(Failure::input(e)),
        Err(e @ GraphError::Io(_)) => Err(Failure::input(e)),
    }
}
