//! `plancd graph`: a plan's dependency graph as Mermaid or Graphviz dot.

use std::path::PathBuf;

use crate::config::Config;
use crate::graph::TaskGraph;
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
    Ok(match opts.format {
        GraphFormat::Mermaid => mermaid(&plans),
        GraphFormat::Dot => dot(&plans),
    })
}

/// A Mermaid flowchart of `plans`, one subgraph per workflow when there are several.
pub fn mermaid(plans: &[&PlanFile]) -> String {
    let mut out = String::from("flowchart TD\n");
    let nested = plans.len() > 1;
    for plan in plans {
        let wf = &plan.list.todo_list_id;
        let indent = if nested { "    " } else { "  " };
        if nested {
            out.push_str(&format!("  subgraph {}[\"{}\"]\n", node_id(wf, ""), mermaid_text(&plan.list.title)));
        }
        for task in &plan.list.tasks {
            out.push_str(&format!(
                "{indent}{}[\"{}<br/><i>{}</i>: {}\"]\n",
                node_id(wf, &task.id),
                mermaid_text(&task.id),
                task.agent_role,
                mermaid_text(&task.title)
            ));
        }
        let graph = TaskGraph::from_list(&plan.list);
        for task in &plan.list.tasks {
            for dep in graph.dependencies(&task.id) {
                out.push_str(&format!("{indent}{} --> {}\n", node_id(wf, dep), node_id(wf, &task.id)));
            }
        }
        if nested {
            out.push_str("  end\n");
        }
    }
    out
}

/// Graphviz dot of `plans`, one cluster per workflow.
pub fn dot(plans: &[&PlanFile]) -> String {
    let mut out = String::from("digraph plancd {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for plan in plans {
        let wf = &plan.list.todo_list_id;
        out.push_str(&format!("  subgraph {} {{\n    label={};\n", dot_str(&format!("cluster_{wf}")), dot_str(&plan.list.title)));
        for task in &plan.list.tasks {
            out.push_str(&format!(
                "    {} [label={}];\n",
                dot_str(&format!("{wf}/{}", task.id)),
                dot_str(&format!("{}\n({})", task.id, task.agent_role))
            ));
        }
        let graph = TaskGraph::from_list(&plan.list);
        for task in &plan.list.tasks {
            for dep in graph.dependencies(&task.id) {
                out.push_str(&format!("    {} -> {};\n", dot_str(&format!("{wf}/{dep}")), dot_str(&format!("{wf}/{}", task.id))));
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

/// A task's Mermaid node id: letters, digits and `_`, anything else encoded.
pub fn node_id(wf: &str, task: &str) -> String {
    let mut id = String::from("n_");
    for c in wf.chars().chain("__".chars()).chain(task.chars()) {
        if c.is_ascii_alphanumeric() || c == '_' {
            id.push(c);
        } else {
            id.push_str(&format!("_{:x}_", u32::from(c)));
        }
    }
    id
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
}

fn dot_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PlanFile {
        let text = "todo_list_id: w-1\ntitle: The \"W\"\ntasks:\n  - {id: a, title: A, agent_role: architect}\n  - {id: b.c, title: B, agent_role: coder, dependencies: [a]}\n";
        let list = serde_json::from_value(
            crate::spec::Document::parse(text.as_bytes(), crate::spec::Format::Yaml, &Default::default()).unwrap().value,
        )
        .unwrap();
        PlanFile { path: "plans/w.yaml".into(), list }
    }

    #[test]
    fn mermaid_draws_nodes_and_edges() {
        let p = plan();
        let m = mermaid(&[&p]);
        assert_eq!(
            m,
            "flowchart TD\n  n_w_2d_1__a[\"a<br/><i>architect</i>: A\"]\n  n_w_2d_1__b_2e_c[\"b.c<br/><i>coder</i>: B\"]\n  n_w_2d_1__a --> n_w_2d_1__b_2e_c\n"
        );
    }

    #[test]
    fn dot_escapes_labels() {
        let p = plan();
        let d = dot(&[&p]);
        assert!(d.contains("label=\"The \\\"W\\\"\";"), "{d}");
        assert!(d.contains("\"w-1/a\" -> \"w-1/b.c\";"), "{d}");
    }
}
