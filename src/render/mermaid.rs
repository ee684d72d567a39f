//! Mermaid flowcharts (they render in GitHub markdown): a plan's graph, the same coloured by
//! phase, and a pull request's workflow with its task marked.

use std::fmt::Write;

use super::dag::{Dag, Node};
use super::node_id;

/// How each phase is coloured, by its class (the phase in lower case).
const PHASE_STYLES: [(&str, &str); 14] = [
    ("pending", "fill:#f8f9fa,stroke:#6c757d"),
    ("claimed", "fill:#fff3cd,stroke:#ffc107"),
    ("running", "fill:#fff3cd,stroke:#ffc107"),
    ("debugging", "fill:#fff3cd,stroke:#fd7e14"),
    ("succeeded", "fill:#d4edda,stroke:#28a745"),
    ("failed", "fill:#f8d7da,stroke:#dc3545"),
    ("escalated", "fill:#f8d7da,stroke:#dc3545,stroke-width:3px"),
    ("budgetexceeded", "fill:#f8d7da,stroke:#dc3545"),
    ("broken", "fill:#f8d7da,stroke:#dc3545,stroke-dasharray:3"),
    ("needsapproval", "fill:#cce5ff,stroke:#004085"),
    ("approved", "fill:#cce5ff,stroke:#004085"),
    ("suspended", "fill:#e2e3e5,stroke:#6c757d"),
    ("released", "fill:#e2e3e5,stroke:#6c757d"),
    ("orphaned", "fill:#e2e3e5,stroke:#6c757d,stroke-dasharray:3"),
];
const CURRENT_STYLE: &str = "fill:#fff3cd,stroke:#d39e00,stroke-width:3px";

/// A flowchart of `dag`: one subgraph per workflow when there are several; nodes with a phase
/// coloured by it, branch todos on dashed edges, the marked task outlined.
pub fn mermaid(dag: &Dag) -> String {
    let mut out = String::from("flowchart TD\n");
    let nested = dag.workflows.len() > 1;
    let indent = if nested { "    " } else { "  " };
    let mut classes: Vec<String> = Vec::new();
    let mut marked = false;
    for w in &dag.workflows {
        if nested {
            let _ = writeln!(out, "  subgraph {}[\"{}\"]", node_id(&w.id, ""), text(w.title.as_deref().unwrap_or(&w.id)));
        }
        for n in &w.nodes {
            let class = n.phase.as_deref().map(class_of);
            let _ = writeln!(
                out,
                "{indent}{}[\"{}\"]{}",
                node_id(&w.id, &n.id),
                label(n),
                class.as_ref().map(|c| format!(":::{c}")).unwrap_or_default()
            );
            classes.extend(class);
        }
        for n in &w.nodes {
            let arrow = if n.branch { "-.->" } else { "-->" };
            for a in n.after.iter().filter(|a| w.nodes.iter().any(|m| &m.id == *a)) {
                let _ = writeln!(out, "{indent}{} {arrow} {}", node_id(&w.id, a), node_id(&w.id, &n.id));
            }
        }
        for n in w.nodes.iter().filter(|n| n.marked) {
            let _ = writeln!(out, "{indent}class {} current", node_id(&w.id, &n.id));
            marked = true;
        }
        if nested {
            out.push_str("  end\n");
        }
    }
    for (class, style) in PHASE_STYLES.iter().filter(|(c, _)| classes.iter().any(|u| u == c)) {
        let _ = writeln!(out, "  classDef {class} {style}");
    }
    if marked {
        let _ = writeln!(out, "  classDef current {CURRENT_STYLE}");
    }
    out
}

/// `id<br/><i>role</i>: title<br/>Phase`, each part when known.
fn label(n: &Node) -> String {
    let mut out = text(&n.id);
    match (&n.role, &n.title) {
        (Some(role), Some(title)) => {
            let _ = write!(out, "<br/><i>{}</i>: {}", text(role), text(title));
        }
        (Some(role), None) => {
            let _ = write!(out, "<br/><i>{}</i>", text(role));
        }
        (None, Some(title)) => {
            let _ = write!(out, "<br/>{}", text(title));
        }
        (None, None) => {}
    }
    if let Some(phase) = &n.phase {
        let _ = write!(out, "<br/>{}", text(phase));
    }
    out
}

/// A phase's class: its letters and digits in lower case.
fn class_of(phase: &str) -> String {
    phase.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// `s` safe inside a quoted Mermaid label.
fn text(s: &str) -> String {
    s.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
}

#[cfg(test)]
mod tests {
    use super::super::dag::tests::plan;
    use super::super::{Dag, Workflow};
    use super::*;

    #[test]
    fn a_plan_is_its_nodes_and_edges() {
        let p = plan();
        assert_eq!(
            mermaid(&Dag::from_plans(&[&p])),
            "flowchart TD\n  n_w_2d_1__a[\"a<br/><i>architect</i>: A\"]\n  n_w_2d_1__b_2e_c[\"b.c<br/><i>coder</i>: B\"]\n  n_w_2d_1__a --> n_w_2d_1__b_2e_c\n"
        );
    }

    #[test]
    fn phases_colour_nodes_branch_todos_hang_dashed_and_the_marked_task_is_outlined() {
        let p = plan();
        let mut dag = Dag::from_plans(&[&p]);
        dag.set_phase("w-1", "a", "Succeeded", None, None);
        dag.set_phase("w-1", "b.c", "Debugging", None, None);
        dag.set_phase("w-1", "b.c_branch_01", "Running", Some("debugger"), Some("b.c"));
        dag.workflows[0].mark("b.c");
        let m = mermaid(&dag);
        for line in [
            "  n_w_2d_1__a[\"a<br/><i>architect</i>: A<br/>Succeeded\"]:::succeeded\n",
            "  n_w_2d_1__b_2e_c_branch_01[\"b.c_branch_01<br/><i>debugger</i><br/>Running\"]:::running\n",
            "  n_w_2d_1__b_2e_c -.-> n_w_2d_1__b_2e_c_branch_01\n",
            "  class n_w_2d_1__b_2e_c current\n",
            "  classDef running fill:#fff3cd,stroke:#ffc107\n",
            "  classDef current fill:#fff3cd,stroke:#d39e00,stroke-width:3px\n",
        ] {
            assert!(m.contains(line), "{line} in\n{m}");
        }
        assert!(!m.contains("classDef failed"), "only the classes used are defined:\n{m}");
    }

    #[test]
    fn several_workflows_are_subgraphs_and_labels_are_escaped() {
        let p = plan();
        let mut other = Workflow { id: "x".into(), title: None, nodes: Vec::new() };
        other.nodes.push(Node { id: "t".into(), title: Some("say \"<hi>\"".into()), ..Node::default() });
        let dag = Dag { workflows: vec![Workflow::from_plan(&p), other] };
        let m = mermaid(&dag);
        assert!(m.contains("  subgraph n_w_2d_1__[\"The #quot;W#quot;\"]\n    n_w_2d_1__a["), "{m}");
        assert!(m.contains("  subgraph n_x__[\"x\"]\n    n_x__t[\"t<br/>say #quot;#lt;hi#gt;#quot;\"]\n  end\n"), "{m}");
    }
}
