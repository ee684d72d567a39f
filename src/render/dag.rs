//! What a drawing shows: workflows of tasks and branch todos, each with what it runs after, and
//! what is known of it (role, title, phase, critical path, the task a pull request is about).

use std::collections::HashMap;

use crate::graph::TaskGraph;
use crate::spec::PlanFile;

/// The workflows to draw, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dag {
    /// One entry per workflow; several are drawn as subgraphs (Mermaid) or clusters (dot).
    pub workflows: Vec<Workflow>,
}

/// One workflow's tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workflow {
    /// Its id (`todo_list_id`).
    pub id: String,
    /// Its title, when known.
    pub title: Option<String>,
    /// Its tasks and branch todos, in the order they are listed.
    pub nodes: Vec<Node>,
}

/// A task or branch todo to draw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Its id.
    pub id: String,
    /// The role that plays it, when known.
    pub role: Option<String>,
    /// Its title, when known.
    pub title: Option<String>,
    /// Its phase, when the drawing shows state (`None` for a plan's bare graph).
    pub phase: Option<String>,
    /// What it depends on; for a branch todo, the task it debugs.
    pub after: Vec<String>,
    /// Whether it is a branch todo (drawn on a dashed edge).
    pub branch: bool,
    /// Whether it is on the critical path.
    pub critical: bool,
    /// Whether it is the task the drawing is about (a pull request's).
    pub marked: bool,
}

impl Dag {
    /// The bare graphs of `plans`: tasks, roles, titles and dependencies.
    pub fn from_plans(plans: &[&PlanFile]) -> Dag {
        Dag { workflows: plans.iter().map(|p| Workflow::from_plan(p)).collect() }
    }

    /// Gives `task` of workflow `wf` its `phase` (and `role` when the plan named none); a node
    /// not drawn yet (a branch todo, or a task whose plan is gone) is added, after `parent` when
    /// it has one, in a workflow added when there is none.
    pub fn set_phase(&mut self, wf: &str, task: &str, phase: &str, role: Option<&str>, parent: Option<&str>) {
        let at = match self.workflows.iter().position(|w| w.id == wf) {
            Some(i) => i,
            None => {
                self.workflows.push(Workflow { id: wf.to_owned(), ..Workflow::default() });
                self.workflows.len() - 1
            }
        };
        let nodes = &mut self.workflows[at].nodes;
        let node = match nodes.iter().position(|n| n.id == task) {
            Some(i) => &mut nodes[i],
            None => {
                nodes.push(Node {
                    id: task.to_owned(),
                    after: parent.map(str::to_owned).into_iter().collect(),
                    branch: parent.is_some(),
                    ..Node::default()
                });
                nodes.last_mut().expect("a node was just pushed")
            }
        };
        node.phase = Some(phase.to_owned());
        if node.role.is_none() {
            node.role = role.map(str::to_owned);
        }
    }
}

impl Workflow {
    /// The bare graph of one plan.
    pub fn from_plan(plan: &PlanFile) -> Workflow {
        let graph = TaskGraph::from_list(&plan.list);
        let nodes = plan
            .list
            .tasks
            .iter()
            .map(|t| Node {
                id: t.id.clone(),
                role: Some(t.agent_role.to_string()),
                title: Some(t.title.clone()),
                after: graph.dependencies(&t.id).into_iter().map(str::to_owned).collect(),
                ..Node::default()
            })
            .collect();
        Workflow { id: plan.list.todo_list_id.clone(), title: Some(plan.list.title.clone()), nodes }
    }

    /// Marks `task` as the one the drawing is about.
    pub fn mark(&mut self, task: &str) {
        for n in &mut self.nodes {
            n.marked = n.id == task;
        }
    }
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A plan with tasks `a` and `b.c` (after `a`) in workflow `w-1`.
    pub(crate) fn plan() -> PlanFile {
        let text = "todo_list_id: w-1\ntitle: The \"W\"\ntasks:\n  - {id: a, title: A, agent_role: architect}\n  - {id: b.c, title: B, agent_role: coder, dependencies: [a]}\n";
        let list = serde_json::from_value(
            crate::spec::Document::parse(text.as_bytes(), crate::spec::Format::Yaml, &Default::default()).unwrap().value,
        )
        .unwrap();
        PlanFile { path: "plans/w.yaml".into(), list }
    }

    fn node(id: &str, after: &[&str]) -> Node {
        Node { id: id.into(), after: after.iter().map(|s| (*s).to_owned()).collect(), ..Node::default() }
    }

    #[test]
    fn depth_is_the_longest_chain_before_a_task() {
        let nodes = vec![node("a", &[]), node("b", &["a"]), node("c", &["a", "b"]), node("x", &["nowhere"]), node("loop", &["loop"])];
        assert_eq!(depths(&nodes), vec![0, 1, 2, 0, 0]);
    }

    #[test]
    fn phases_land_on_plan_tasks_and_bring_branch_todos_and_lost_tasks_along() {
        let p = plan();
        let mut dag = Dag::from_plans(&[&p]);
        dag.set_phase("w-1", "a", "Succeeded", Some("coder"), None);
        dag.set_phase("w-1", "a_branch_01", "Running", Some("debugger"), Some("a"));
        dag.set_phase("gone", "x", "Orphaned", None, None);
        let w = &dag.workflows[0];
        assert_eq!(
            (w.nodes[0].phase.as_deref(), w.nodes[0].role.as_deref()),
            (Some("Succeeded"), Some("architect")),
            "the plan's role stays"
        );
        assert_eq!(w.nodes[1].phase, None);
        let branch = &w.nodes[2];
        assert_eq!((branch.id.as_str(), branch.branch, branch.after.as_slice()), ("a_branch_01", true, ["a".to_owned()].as_slice()));
        assert_eq!(branch.role.as_deref(), Some("debugger"));
        assert_eq!((dag.workflows[1].id.as_str(), dag.workflows[1].nodes[0].phase.as_deref()), ("gone", Some("Orphaned")));
    }
}
