//! A workflow's graph as SVG, drawn on the server: tasks in columns by depth (the longest chain
//! of dependencies before them), each box coloured by its phase and a link; branch todos beside
//! the task they debug, on a dashed edge; the critical path drawn heavier.

use std::collections::HashMap;
use std::fmt::Write;

use super::dag::{Workflow, depths};
use super::esc;

/// The most tasks drawn; a larger workflow is listed in its table only.
pub const MAX_NODES: usize = 600;

const BOX_W: usize = 180;
const BOX_H: usize = 40;
const GAP_X: usize = 60;
const GAP_Y: usize = 16;
const PAD: usize = 10;

/// The SVG of workflow `w`, each box a link to `href(task)`.
pub fn svg(w: &Workflow, href: &dyn Fn(&str) -> String) -> String {
    let nodes = &w.nodes;
    let depth = depths(nodes);
    let mut rows_in: Vec<usize> = Vec::new();
    let mut at: Vec<(usize, usize)> = Vec::with_capacity(nodes.len());
    for &d in &depth {
        if rows_in.len() <= d {
            rows_in.resize(d + 1, 0);
        }
        at.push((PAD + d * (BOX_W + GAP_X), PAD + rows_in[d] * (BOX_H + GAP_Y)));
        rows_in[d] += 1;
    }
    let width = PAD * 2 + rows_in.len().max(1) * (BOX_W + GAP_X) - GAP_X;
    let height = PAD * 2 + rows_in.iter().copied().max().unwrap_or(1).max(1) * (BOX_H + GAP_Y) - GAP_Y;
    let mut out = format!(
        "<svg class=\"dag\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"task graph of {}\">\n",
        esc(&w.id)
    );
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    for (i, n) in nodes.iter().enumerate() {
        for a in &n.after {
            let Some(&j) = index.get(a.as_str()) else { continue };
            let (x1, y1) = (at[j].0 + BOX_W, at[j].1 + BOX_H / 2);
            let (x2, y2) = (at[i].0, at[i].1 + BOX_H / 2);
            let mid = (x1 + x2) / 2;
            let class = match (n.branch, n.critical && nodes[j].critical) {
                (true, _) => "edge branch",
                (false, true) => "edge crit",
                _ => "edge",
            };
            let _ = writeln!(out, "<path class=\"{class}\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\"/>");
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        let (x, y) = at[i];
        let phase = n.phase.as_deref().unwrap_or_default();
        let crit = if n.critical { " crit" } else { "" };
        let label = if n.id.chars().count() > 22 { format!("{}…", n.id.chars().take(21).collect::<String>()) } else { n.id.clone() };
        let _ = writeln!(
            out,
            "<a href=\"{href}\" class=\"node phase-{class}{crit}\" data-task=\"{id}\" data-phase=\"{p}\"><title>{id}: {p}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\"/>\
             <text x=\"{tx}\" y=\"{ty1}\" class=\"id\">{label}</text><text x=\"{tx}\" y=\"{ty2}\" class=\"ph\">{p}</text></a>",
            href = esc(&href(&n.id)),
            class = esc(&phase.to_ascii_lowercase()),
            id = esc(&n.id),
            p = esc(phase),
            label = esc(&label),
            tx = x + 8,
            ty1 = y + 16,
            ty2 = y + 32,
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::dag::Node;
    use super::*;

    fn node(id: &str, after: &[&str]) -> Node {
        Node { id: id.into(), phase: Some("Pending".into()), after: after.iter().map(|s| (*s).to_owned()).collect(), ..Node::default() }
    }

    #[test]
    fn every_task_is_a_box_with_its_phase_and_a_link_and_names_are_escaped() {
        let mut nodes = vec![node("a", &[]), node("<b>", &["a"])];
        nodes[1].phase = Some("Escalated".into());
        nodes[1].critical = true;
        let w = Workflow { id: "wf".into(), title: None, nodes };
        let svg = svg(&w, &|t| format!("/tasks/{t}?x&y"));
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(svg.contains("class=\"node phase-escalated crit\" data-task=\"&lt;b&gt;\" data-phase=\"Escalated\""), "{svg}");
        assert!(svg.contains("href=\"/tasks/&lt;b&gt;?x&amp;y\""), "{svg}");
        assert!(!svg.contains("<b>"));
    }
}
