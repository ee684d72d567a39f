//! The task dependency graph of one plan: execution order, readiness, critical path and
//! named cycles. Edges point from a dependency to the task that needs it.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::spec::TodoList;

/// A plan's tasks and their dependencies. Node order is plan order, which makes every
/// ordering this type returns deterministic.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    graph: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

/// A dependency cycle, as the task ids along it: `[a, b, c]` reads `a -> b -> c -> a`,
/// each task depending on the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for id in &self.0 {
            write!(f, "{id} -> ")?;
        }
        f.write_str(self.0.first().map_or("", String::as_str))
    }
}

impl TaskGraph {
    /// Builds the graph from `(task id, its dependencies)` pairs. Dependencies on unknown
    /// tasks and repeated ids are ignored here; validation reports them.
    pub fn new<'a, I, D>(tasks: I) -> TaskGraph
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let tasks: Vec<(&str, Vec<&str>)> = tasks.into_iter().map(|(id, deps)| (id, deps.into_iter().collect())).collect();
        let mut graph = DiGraph::with_capacity(tasks.len(), tasks.len());
        let mut index = HashMap::with_capacity(tasks.len());
        for (id, _) in &tasks {
            index.entry((*id).to_owned()).or_insert_with(|| graph.add_node((*id).to_owned()));
        }
        let mut seen = HashSet::new();
        for (id, deps) in &tasks {
            let to = index[*id];
            for dep in deps {
                if let Some(&from) = index.get(*dep)
                    && seen.insert((from, to))
                {
                    graph.add_edge(from, to, ());
                }
            }
        }
        TaskGraph { graph, index }
    }

    /// The graph of a plan.
    pub fn from_list(list: &TodoList) -> TaskGraph {
        TaskGraph::new(list.tasks.iter().map(|t| (t.id.as_str(), t.dependencies.iter().map(String::as_str))))
    }

    /// How many tasks.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether there are no tasks.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    fn id(&self, n: NodeIndex) -> &str {
        &self.graph[n]
    }

    /// The known direct dependencies of `id`, in plan order.
    pub fn dependencies(&self, id: &str) -> Vec<&str> {
        self.neighbours(id, Direction::Incoming)
    }

    /// The tasks that depend directly on `id`, in plan order.
    pub fn dependents(&self, id: &str) -> Vec<&str> {
        self.neighbours(id, Direction::Outgoing)
    }

    fn neighbours(&self, id: &str, dir: Direction) -> Vec<&str> {
        let Some(&n) = self.index.get(id) else { return Vec::new() };
        let mut ns: Vec<NodeIndex> = self.graph.neighbors_directed(n, dir).collect();
        ns.sort();
        ns.into_iter().map(|n| self.id(n)).collect()
    }

    /// Every task downstream of `id` (not `id` itself), in plan order.
    pub fn downstream(&self, id: &str) -> Vec<&str> {
        self.reachable(id, Direction::Outgoing)
    }

    /// Every task `id` depends on, directly or not (not `id` itself), in plan order.
    pub fn upstream(&self, id: &str) -> Vec<&str> {
        self.reachable(id, Direction::Incoming)
    }

    fn reachable(&self, id: &str, dir: Direction) -> Vec<&str> {
        let Some(&start) = self.index.get(id) else { return Vec::new() };
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for next in self.graph.neighbors_directed(n, dir) {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        seen.into_iter().map(|n| self.id(n)).collect()
    }

    /// Dependency cycles, one per strongly connected set of tasks, each the shortest cycle
    /// through its task that comes first in the plan. Self-dependencies are cycles of one.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut cycles: Vec<Cycle> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1 || self.graph.contains_edge(scc[0], scc[0]))
            .map(|scc| self.shortest_cycle(&scc))
            .collect();
        cycles.sort_by_key(|c| self.index[&c.0[0]]);
        cycles
    }

    /// Breadth-first along "depends on" edges from the SCC's first task back to itself.
    fn shortest_cycle(&self, scc: &[NodeIndex]) -> Cycle {
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc.iter().min().expect("an SCC is never empty");
        let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let mut deps: Vec<NodeIndex> = self.graph.neighbors_directed(n, Direction::Incoming).filter(|d| members.contains(d)).collect();
            deps.sort();
            for d in deps {
                if d == start {
                    let mut path = vec![n];
                    while let Some(&p) = parent.get(path.last().expect("path starts non-empty")) {
                        path.push(p);
                    }
                    path.reverse();
                    return Cycle(path.into_iter().map(|n| self.id(n).to_owned()).collect());
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(d) {
                    e.insert(n);
                    queue.push_back(d);
                }
            }
        }
        Cycle(vec![self.id(start).to_owned()])
    }

    /// Every task with its dependencies before it; ties go in plan order. Fails on the first
    /// cycle.
    pub fn topological_order(&self) -> Result<Vec<&str>, Cycle> {
        let mut missing: Vec<usize> =
            self.graph.node_indices().map(|n| self.graph.neighbors_directed(n, Direction::Incoming).count()).collect();
        let mut ready: BTreeSet<NodeIndex> = self.graph.node_indices().filter(|n| missing[n.index()] == 0).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(n) = ready.pop_first() {
            order.push(self.id(n));
            for next in self.graph.neighbors_directed(n, Direction::Outgoing) {
                missing[next.index()] -= 1;
                if missing[next.index()] == 0 {
                    ready.insert(next);
                }
            }
        }
        if order.len() < self.len() {
            return Err(self.cycles().into_iter().next().expect("an unordered remainder holds a cycle"));
        }
        Ok(order)
    }

    /// Tasks not in `satisfied` whose dependencies all are, in plan order.
    pub fn ready(&self, satisfied: &HashSet<&str>) -> Vec<&str> {
        self.graph
            .node_indices()
            .filter(|&n| !satisfied.contains(self.id(n)))
            .filter(|&n| self.graph.neighbors_directed(n, Direction::Incoming).all(|d| satisfied.contains(self.id(d))))
            .map(|n| self.id(n))
            .collect()
    }

    /// For every task, the number of tasks on the longest chain from it to the end of the plan
    /// (itself included): list schedulers start the highest first, as the critical path runs
    /// through them. Empty when the graph has a cycle.
    pub fn heights(&self) -> HashMap<&str, usize> {
        let Ok(order) = self.topological_order() else { return HashMap::new() };
        let mut height: HashMap<&str, usize> = HashMap::with_capacity(order.len());
        for id in order.into_iter().rev() {
            let h = 1 + self.dependents(id).iter().map(|d| height[d]).max().unwrap_or(0);
            height.insert(id, h);
        }
        height
    }

    /// The heaviest chain of dependent tasks, by `weight` per task: its total and its tasks
    /// from first to last. `None` when the graph has a cycle.
    pub fn critical_path(&self, weight: impl Fn(&str) -> u64) -> Option<(u64, Vec<&str>)> {
        let order = self.topological_order().ok()?;
        let mut best: HashMap<&str, (u64, Option<&str>)> = HashMap::with_capacity(order.len());
        for id in &order {
            let before = self
                .dependencies(id)
                .into_iter()
                .map(|d| (best[d].0, d))
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| self.index[b.1].cmp(&self.index[a.1])));
            let total = before.map_or(0, |b| b.0) + weight(id);
            best.insert(id, (total, before.map(|b| b.1)));
        }
        let (&last, &(total, _)) = order
            .iter()
            .map(|id| (id, &best[id]))
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| self.index[*b.0].cmp(&self.index[*a.0])))?;
        let mut path = vec![last];
        while let Some(prev) = best[path.last().expect("non-empty")].1 {
            path.push(prev);
        }
        path.reverse();
        Some((total, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn graph(edges: &[(&'static str, &[&'static str])]) -> TaskGraph {
        TaskGraph::new(edges.iter().map(|(id, deps)| (*id, deps.iter().copied())))
    }

    #[test]
    fn orders_dependencies_first_and_ties_in_plan_order() {
        let g = graph(&[("d", &["b", "c"]), ("b", &["a"]), ("c", &["a"]), ("a", &[])]);
        assert_eq!(g.topological_order().unwrap(), vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn names_cycles_by_their_path() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["d"]), ("e", &[])]);
        let cycles: Vec<String> = g.cycles().iter().map(ToString::to_string).collect();
        assert_eq!(cycles, vec!["a -> b -> c -> a", "d -> d"]);
        assert_eq!(g.topological_order().unwrap_err().to_string(), "a -> b -> c -> a");
    }

    #[test]
    fn readiness_follows_the_satisfied_set() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b"]), ("x", &[])]);
        assert_eq!(g.ready(&HashSet::new()), vec!["a", "x"]);
        assert_eq!(g.ready(&HashSet::from(["a"])), vec!["b", "x"]);
        assert_eq!(g.ready(&HashSet::from(["a", "b", "x"])), vec!["c"]);
        assert_eq!(g.downstream("a"), vec!["b", "c"]);
        assert_eq!(g.upstream("c"), vec!["a", "b"]);
    }

    #[test]
    fn critical_path_takes_the_heaviest_chain() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]);
        let w = |id: &str| match id {
            "c" => 10,
            _ => 1,
        };
        assert_eq!(g.critical_path(w), Some((12, vec!["a", "c", "d"])));
        let h = g.heights();
        assert_eq!((h["a"], h["b"], h["c"], h["d"]), (3, 2, 2, 1));
    }

    /// A random DAG: task i may depend only on tasks before it.
    fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1usize..40).prop_flat_map(|n| {
            (0..n)
                .map(|i| proptest::collection::vec(0..i.max(1), 0..i.min(4) + 1).prop_map(move |d| if i == 0 { vec![] } else { d }))
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        #[test]
        fn any_acyclic_plan_is_ordered_with_every_edge_respected(deps in dag(), shuffle in any::<u64>()) {
            let n = deps.len();
            let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            // Present the tasks in a scrambled order: the order must not rely on plan order.
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|i| (*i as u64).wrapping_mul(shuffle | 1).rotate_left(7));
            let g = TaskGraph::new(order.iter().map(|&i| (names[i].as_str(), deps[i].iter().map(|&d| names[d].as_str()))));
            let topo = g.topological_order().unwrap();
            prop_assert_eq!(topo.len(), n);
            let pos: HashMap<&str, usize> = topo.iter().enumerate().map(|(p, id)| (*id, p)).collect();
            for (i, ds) in deps.iter().enumerate() {
                for &d in ds {
                    prop_assert!(pos[names[d].as_str()] < pos[names[i].as_str()]);
                }
            }
            prop_assert!(g.cycles().is_empty());
        }

        #[test]
        fn any_cycle_is_reported_with_its_path(deps in dag(), from in any::<prop::sample::Index>(), to in any::<prop::sample::Index>()) {
            let n = deps.len();
            prop_assume!(n >= 2);
            // Add a back edge from an earlier task to a later one that reaches it.
            let (lo, hi) = { let a = from.index(n); let b = to.index(n); (a.min(b), a.max(b)) };
            let mut deps = deps;
            deps[hi].push(lo);
            deps[lo].push(hi);
            let names: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            let g = TaskGraph::new((0..n).map(|i| (names[i].as_str(), deps[i].iter().map(|&d| names[d].as_str()))));
            let cycles = g.cycles();
            prop_assert!(!cycles.is_empty());
            prop_assert!(g.topological_order().is_err());
            for cycle in cycles {
                // Each step of the reported path is a real dependency, and it closes.
                let ids = &cycle.0;
                for (k, id) in ids.iter().enumerate() {
                    let next = &ids[(k + 1) % ids.len()];
                    prop_assert!(g.dependencies(id).contains(&next.as_str()), "{} does not depend on {}", id, next);
                }
            }
        }
    }
}
