//! What people read, drawn in one place: a workflow's task graph as Mermaid (plan graphs,
//! `plancd status -o mermaid`, pull request bodies, job summaries), Graphviz dot and SVG (the
//! dashboard), all from one [`Dag`] and with one node-id scheme, [`node_id`].
//!
//! Callers above build a [`Dag`] from what they hold (plan files, status rows, the dashboard's
//! rows) and pick a drawing; nothing here reads refs or files.

mod dag;
mod dot;
mod mermaid;
mod svg;

pub use dag::{Dag, Node, Workflow, depths};
pub use dot::dot;
pub use mermaid::mermaid;
pub use svg::{MAX_NODES, svg};

/// A task's (or branch todo's) node id in every drawing: `n_<workflow>__<task>`, letters and
/// digits kept and anything else encoded as `_<hex>_`; `_` is kept in the task, where ids use it
/// most, and encoded in the workflow, so that where the workflow ends is never in doubt.
pub fn node_id(wf: &str, task: &str) -> String {
    let mut id = String::from("n_");
    let separator = "__".chars().map(|c| (c, true));
    for (c, underscore_kept) in wf.chars().map(|c| (c, false)).chain(separator).chain(task.chars().map(|c| (c, true))) {
        if c.is_ascii_alphanumeric() || (underscore_kept && c == '_') {
            id.push(c);
        } else {
            id.push_str(&format!("_{:x}_", u32::from(c)));
        }
    }
    id
}

/// `text` safe inside an HTML or SVG element or a quoted attribute: `& < > " '` escaped.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_keep_safe_characters_and_encode_the_rest() {
        let cases = [
            ("wf", "a", "n_wf__a"),
            ("w-1", "b.c", "n_w_2d_1__b_2e_c"),
            ("w_1", "a_branch_01", "n_w_5f_1__a_branch_01"),
            ("wf", "ü", "n_wf___fc_"),
        ];
        for (wf, task, want) in cases {
            assert_eq!(node_id(wf, task), want, "{wf}/{task}");
        }
        // What a lossy scheme (every odd character to `_`) would merge stays apart.
        assert_ne!(node_id("a-b", "c"), node_id("a_b", "c"));
        assert_ne!(node_id("a", "b.c"), node_id("a", "b_c"));
        assert_ne!(node_id("a_", "b"), node_id("a", "_b"));
    }
}
