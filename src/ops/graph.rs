//! `plancd graph`: a plan's dependency graph as Mermaid or Graphviz dot.

use std::path::PathBuf;

use crate::config::Config;
use crate::render::{Dag, dot, mermaid};
use crate::spec::{Diagnostic, DirSource, PlanFile, load_specs};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// A Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// The repository.
    pub root: PathBuf,
    /// One workflow, or all of them.
    pub workflow: Option<String>,
    /// The format.
    pub format: GraphFormat,
}

/// Why no graph could be drawn.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The plans have errors.
    #[error("the plans have {} error(s)", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>),
    /// No such workflow.
    #[error("no workflow `{id}`; workflows here: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    UnknownWorkflow {
        /// The id asked for.
        id: String,
        /// The ids that exist.
        known: Vec<String>,
    },
    /// Reading the repository failed.
    #[error("cannot read the repository")]
    Io(#[from] std::io::Error),
}

/// Draws the graph of one workflow or of all.
pub fn graph(opts: &GraphOptions) -> Result<String, GraphError> {
    let source = DirSource::new(&opts.root);
    let config = Config::load(&source).map_err(GraphError::Invalid)?.0;
    let specs = load_specs(&source, &config)?;
    if specs.has_errors() {
        return Err(GraphError::Invalid(specs.diagnostics));
    }
    let plans: Vec<&PlanFile> = match &opts.workflow {
        Some(id) => vec![specs.workflow(id).ok_or_else(|| GraphError::UnknownWorkflow {
            id: id.clone(),
            known: specs.plans.iter().map(|p| p.list.todo_list_id.clone()).collect(),
        })?],
        None => specs.plans.iter().collect(),
    };
    let dag = Dag::from_plans(&plans);
    Ok(match opts.format {
        GraphFormat::Mermaid => mermaid(&dag),
        GraphFormat::Dot => dot(&dag),
    })
}
