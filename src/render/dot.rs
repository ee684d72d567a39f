//! Graphviz dot: one cluster per workflow.

use std::fmt::Write;

use super::dag::Dag;

/// The dot source of `dag`; a node's label is its id, role and phase as far as known.
pub fn dot(dag: &Dag) -> String {
    let mut out = String::from("digraph plancd {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for w in &dag.workflows {
        let _ = writeln!(
            out,
            "  subgraph {} {{\n    label={};",
            quoted(&format!("cluster_{}", w.id)),
            quoted(w.title.as_deref().unwrap_or(&w.id))
        );
        for n in &w.nodes {
            let mut label = n.id.clone();
            if let Some(role) = &n.role {
                let _ = write!(label, "\n({role})");
            }
            if let Some(phase) = &n.phase {
                let _ = write!(label, "\n{phase}");
            }
            let _ = writeln!(out, "    {} [label={}];", quoted(&format!("{}/{}", w.id, n.id)), quoted(&label));
        }
        for n in &w.nodes {
            let style = if n.branch { " [style=dashed]" } else { "" };
            for a in &n.after {
                let _ = writeln!(out, "    {} -> {}{style};", quoted(&format!("{}/{a}", w.id)), quoted(&format!("{}/{}", w.id, n.id)));
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

#[cfg(test)]
mod tests {
    use super::super::dag::tests::plan;
    use super::*;

    #[test]
    fn dot_escapes_labels() {
        let p = plan();
        let d = dot(&Dag::from_plans(&[&p]));
        assert!(d.contains("label=\"The \\\"W\\\"\";"), "{d}");
        assert!(d.contains("\"w-1/b.c\" [label=\"b.c\\n(coder)\"];"), "{d}");
        assert!(d.contains("\"w-1/a\" -> \"w-1/b.c\";"), "{d}");
    }
}
