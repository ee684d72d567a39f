//! A workflow's graph as SVG, drawn on the server: tasks in columns by depth (the longest chain
//! of dependencies before them), each box coloured by its phase and linked to its page; branch
//! todos beside the task they debug, on a dashed edge; the critical path drawn heavier.

use std::collections::HashMap;
use std::fmt::Write;

use super::html::{Links, esc};

/// The most tasks drawn; a larger workflow is listed in its table only.
pub const MAX_NODES: usize = 600;

const BOX_W: usize = 180;
const BOX_H: usize = 40;
const GAP_X: usize = 60;
const GAP_Y: usize = 16;
const PAD: usize = 10;

/// A task to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its id.
    pub id: String,
    /// Its phase.
    pub phase: String,
    /// What it depends on (for a branch todo: the task it debugs).
    pub after: Vec<String>,
    /// Whether it is a branch todo.
    pub branch: bool,
    /// Whether it is on the critical path.
    pub critical: bool,
}

/// Each node's column: 0 for a task without dependencies, else one more than its deepest
/// dependency's (unknown ids and cycles count as nothing).
pub fn depths(nodes: &[Node]) -> Vec<usize> {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let mut depth: Vec<Option<usize>> = vec![None; nodes.len()];
    // `None` for a node on the current chain: an edge that closes a cycle counts as nothing.
    fn visit(i: usize, nodes: &[Node], index: &HashMap<&str, usize>, depth: &mut Vec<Option<usize>>, on: &mut Vec<bool>) -> Option<usize> {
        if let Some(d) = depth[i] {
            return Some(d);
        }
        if on[i] {
            return None;
        }
        on[i] = true;
        let d = nodes[i]
            .after
            .iter()
            .filter_map(|a| index.get(a.as_str()))
            .filter_map(|&j| visit(j, nodes, index, depth, on))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        on[i] = false;
        depth[i] = Some(d);
        Some(d)
    }
    let mut on = vec![false; nodes.len()];
    (0..nodes.len()).map(|i| visit(i, nodes, &index, &mut depth, &mut on).unwrap_or(0)).collect()
}

/// The SVG of `nodes` in workflow `wf`, each box a link to its task's page.
pub fn svg(wf: &str, nodes: &[Node], links: &Links) -> String {
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
        esc(wf)
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
        let phase = n.phase.to_ascii_lowercase();
        let crit = if n.critical { " crit" } else { "" };
        let label = if n.id.chars().count() > 22 { format!("{}…", n.id.chars().take(21).collect::<String>()) } else { n.id.clone() };
        let _ = writeln!(
            out,
            "<a href=\"{href}\" class=\"node phase-{phase}{crit}\" data-task=\"{id}\" data-phase=\"{p}\"><title>{id}: {p}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\"/>\
             <text x=\"{tx}\" y=\"{ty1}\" class=\"id\">{label}</text><text x=\"{tx}\" y=\"{ty2}\" class=\"ph\">{p}</text></a>",
            href = esc(&links.task(wf, &n.id)),
            id = esc(&n.id),
            p = esc(&n.phase),
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
    use super::*;

    fn node(id: &str, after: &[&str]) -> Node {
        Node {
            id: id.into(),
            phase: "Pending".into(),
            after: after.iter().map(|s| (*s).to_owned()).collect(),
            branch: false,
            critical: false,
        }
    }

    #[test]
    fn depth_is_the_longest_chain_before_a_task() {
        let nodes = vec![node("a", &[]), node("b", &["a"]), node("c", &["a", "b"]), node("x", &["nowhere"]), node("loop", &["loop"])];
        assert_eq!(depths(&nodes), vec![0, 1, 2, 0, 0]);
    }

    #[test]
    fn every_task_is_a_box_with_its_phase_and_a_link_and_names_are_escaped() {
        let mut nodes = vec![node("a", &[]), node("<b>", &["a"])];
        nodes[1].phase = "Escalated".into();
        nodes[1].critical = true;
        let svg = svg("wf", &nodes, &Links::Served);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(svg.contains("class=\"node phase-escalated crit\" data-task=\"&lt;b&gt;\" data-phase=\"Escalated\""), "{svg}");
        assert!(svg.contains("href=\"/ui/workflows/wf/tasks/%3Cb%3E\""), "{svg}");
        assert!(!svg.contains("<b>"));
    }
}
