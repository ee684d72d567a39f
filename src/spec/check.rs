//! Semantic checks of a plan that passed its schema: ids, dependencies, cycles, paths,
//! failure routing. Every problem is reported, each at its own field.

use std::collections::{BTreeMap, HashMap};

use super::diagnostic::{Diagnostic, did_you_mean};
use super::document::Document;
use super::ids::{is_branch_todo_id, ref_component_problem, relative_path_problem};
use super::model::{BUILTIN_FAILURE_TYPES, Role, TodoList};
use super::path::FieldPath;
use super::source::FileSource;
use crate::graph::TaskGraph;

/// What semantic checks need beyond the plan itself.
pub struct CheckContext<'a> {
    /// The repository's files, for contract and test paths.
    pub source: &'a dyn FileSource,
    /// Failure types the configuration's `failure_patterns` adds to the built-in ones.
    pub extra_failure_types: Vec<String>,
    /// The roles no agent plays, each with why; `None` when the configuration is unknown (it
    /// is itself broken), and roles are not checked.
    pub unplayable: Option<BTreeMap<Role, String>>,
}

impl<'a> CheckContext<'a> {
    /// Checks against `config`: the failure types it adds, and the roles its agents play.
    pub fn new(source: &'a dyn FileSource, config: &crate::config::Config) -> CheckContext<'a> {
        let unplayable = Role::ALL.into_iter().filter_map(|role| Some((role, config.agent_problem(role)?))).collect();
        CheckContext { source, extra_failure_types: config.extra_failure_types(), unplayable: Some(unplayable) }
    }

    /// Checks without a configuration: only the built-in failure types, and no role checks.
    pub fn without_config(source: &'a dyn FileSource) -> CheckContext<'a> {
        CheckContext { source, extra_failure_types: Vec::new(), unplayable: None }
    }
}

/// Checks `list` (parsed from `doc`, read from `file`).
pub fn check_plan(list: &TodoList, doc: &Document, file: &str, cx: &CheckContext<'_>) -> Vec<Diagnostic> {
    let mut c = Checker { doc, file, out: Vec::new() };
    c.ids(list);
    c.dependencies(list);
    c.cycles(list);
    for (i, task) in list.tasks.iter().enumerate() {
        let at = FieldPath::root().key("tasks").index(i);
        c.paths(list, &at, task, cx.source);
        c.agent(&at, task, cx);
        c.routing(&at, task, cx);
        c.tests(&at, task);
    }
    c.out.sort_by_key(|d| (d.line, d.column));
    c.out
}

struct Checker<'a> {
    doc: &'a Document,
    file: &'a str,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn error(&mut self, path: FieldPath, code: &'static str, message: String, help: Option<String>) {
        let d = Diagnostic::error(self.file, self.doc.locate(&path), code, message).field(path).maybe_help(help);
        self.out.push(d);
    }

    fn warning(&mut self, path: FieldPath, code: &'static str, message: String, help: Option<String>) {
        let d = Diagnostic::warning(self.file, self.doc.locate(&path), code, message).field(path).maybe_help(help);
        self.out.push(d);
    }

    fn ids(&mut self, list: &TodoList) {
        if let Some(why) = ref_component_problem(&list.todo_list_id) {
            self.error(
                FieldPath::root().key("todo_list_id"),
                "unsafe-id",
                format!("workflow id `{}` {why}", list.todo_list_id),
                Some(ID_HELP.into()),
            );
        }
        let mut first: HashMap<&str, usize> = HashMap::new();
        for (i, task) in list.tasks.iter().enumerate() {
            let at = FieldPath::root().key("tasks").index(i).key("id");
            if let Some(why) = ref_component_problem(&task.id) {
                self.error(at.clone(), "unsafe-id", format!("task id `{}` {why}", task.id), Some(ID_HELP.into()));
            }
            if is_branch_todo_id(&task.id) && task.parent_id.is_none() {
                self.error(
                    at.clone(),
                    "reserved-id",
                    format!("task id `{}` has the form plancd gives branch todos (`<task>_branch_NN`)", task.id),
                    Some("rename the task, or set `parent_id` if it really is a branch todo".into()),
                );
            }
            if let Some(&j) = first.get(task.id.as_str()) {
                let line = self.doc.locate(&FieldPath::root().key("tasks").index(j).key("id")).line;
                self.error(
                    at,
                    "duplicate-id",
                    format!("task id `{}` is already used by tasks[{j}] (line {line})", task.id),
                    Some("give each task its own id".into()),
                );
            } else {
                first.insert(&task.id, i);
            }
        }
    }

    fn dependencies(&mut self, list: &TodoList) {
        let ids: Vec<&str> = list.tasks.iter().map(|t| t.id.as_str()).collect();
        for (i, task) in list.tasks.iter().enumerate() {
            for (k, dep) in task.dependencies.iter().enumerate() {
                let at = FieldPath::root().key("tasks").index(i).key("dependencies").index(k);
                if *dep == task.id {
                    self.error(at, "self-dependency", format!("task `{dep}` depends on itself"), Some("remove this dependency".into()));
                } else if !ids.contains(&dep.as_str()) {
                    let help = did_you_mean(dep, ids.iter().copied()).unwrap_or_else(|| format!("tasks in this plan: {}", ids.join(", ")));
                    self.error(at, "unknown-dependency", format!("no task `{dep}` in this plan"), Some(help));
                }
            }
            if let Some(parent) = &task.parent_id
                && (parent == &task.id || !ids.contains(&parent.as_str()))
            {
                let at = FieldPath::root().key("tasks").index(i).key("parent_id");
                self.error(at, "unknown-parent", format!("`parent_id` names `{parent}`, which is not another task of this plan"), None);
            }
        }
    }

    fn cycles(&mut self, list: &TodoList) {
        let graph = TaskGraph::from_list(list);
        for cycle in graph.cycles() {
            if cycle.0.len() == 1 {
                continue; // a self-dependency, reported on its own
            }
            // Point at the dependency entry that starts the cycle.
            let (i, task) = list.tasks.iter().enumerate().find(|(_, t)| t.id == cycle.0[0]).expect("cycle ids come from the plan");
            let k = task.dependencies.iter().position(|d| *d == cycle.0[1]).unwrap_or(0);
            let at = FieldPath::root().key("tasks").index(i).key("dependencies").index(k);
            self.error(
                at,
                "cycle",
                format!("dependency cycle: {cycle}"),
                Some("each task depends on the next; remove one of these dependencies".into()),
            );
        }
    }

    fn paths(&mut self, list: &TodoList, at: &FieldPath, task: &super::Task, source: &dyn FileSource) {
        if let Some(contract) = &task.contract {
            let p = at.key("contract");
            if let Some(why) = relative_path_problem(contract) {
                self.error(p, "unsafe-path", format!("contract path `{contract}` {why}"), None);
            } else if !source.is_file(contract) && list.produced_upstream(&task.id, contract).is_none() {
                self.error(
                    p,
                    "missing-file",
                    format!("contract `{contract}` does not exist in the repository and no task upstream lists it in `outputs`"),
                    Some("commit the contract, or depend on the (architect) task that writes it".into()),
                );
            }
        }
        for (k, file) in task.acceptance_criteria.files.iter().enumerate() {
            let p = at.key("acceptance_criteria").key("files").index(k);
            if let Some(why) = relative_path_problem(file) {
                self.error(p, "unsafe-path", format!("test file path `{file}` {why}"), None);
            } else if !source.is_file(file) {
                self.error(
                    p,
                    "missing-file",
                    format!("pinned test file `{file}` does not exist in the repository"),
                    Some("pinned test files are committed with the plan".into()),
                );
            }
        }
        for key in ["inputs", "outputs"] {
            let list = if key == "inputs" { &task.inputs } else { &task.outputs };
            for (k, file) in list.iter().enumerate() {
                if let Some(why) = relative_path_problem(file) {
                    self.error(at.key(key).index(k), "unsafe-path", format!("path `{file}` {why}"), None);
                }
            }
        }
        for (k, test) in task.acceptance_criteria.tests.iter().enumerate() {
            if let Some(junit) = &test.junit
                && let Some(why) = relative_path_problem(junit)
            {
                self.error(
                    at.key("acceptance_criteria").key("tests").index(k).key("junit"),
                    "unsafe-path",
                    format!("report path `{junit}` {why}"),
                    None,
                );
            }
        }
    }

    /// A task whose role no agent plays would fail at run time: it is an error of the plan,
    /// found before anything runs, at the task's `agent_role`.
    fn agent(&mut self, at: &FieldPath, task: &super::Task, cx: &CheckContext<'_>) {
        let role = task.agent_role;
        let Some(problem) = cx.unplayable.as_ref().and_then(|u| u.get(&role)) else { return };
        self.error(
            at.key("agent_role"),
            "no-agent",
            format!("task `{}`: {problem}", task.id),
            Some(format!("add roles.{role} to plancd.yaml, with a `command:` or a `model:` that `models:` defines")),
        );
    }

    fn routing(&mut self, at: &FieldPath, task: &super::Task, cx: &CheckContext<'_>) {
        let known: Vec<&str> = BUILTIN_FAILURE_TYPES.iter().copied().chain(cx.extra_failure_types.iter().map(String::as_str)).collect();
        for failure in task.failure_routing.keys() {
            if !known.contains(&failure.as_str()) {
                let p = at.key("failure_routing").key(failure);
                let d = Diagnostic::error(
                    self.file,
                    self.doc.locate_key(&p),
                    "unknown-failure-type",
                    format!("unknown failure type `{failure}`"),
                )
                .field(p)
                .help(
                    did_you_mean(failure, known.iter().copied())
                        .unwrap_or_else(|| format!("known types: {} (add more under `failure_patterns` in plancd.yaml)", known.join(", "))),
                );
                self.out.push(d);
            }
        }
    }

    fn tests(&mut self, at: &FieldPath, task: &super::Task) {
        if task.acceptance_criteria.tests.is_empty() && task.parent_id.is_none() {
            self.warning(
                at.key("id"),
                "no-acceptance-tests",
                format!("task `{}` has no acceptance tests: it succeeds whenever its agent finishes", task.id),
                Some("add `acceptance_criteria.tests`".into()),
            );
        }
        for (k, test) in task.acceptance_criteria.tests.iter().enumerate() {
            if test.timeout_seconds > task.timeout_seconds {
                self.warning(
                    at.key("acceptance_criteria").key("tests").index(k).key("timeout_seconds"),
                    "timeout-exceeds-task",
                    format!(
                        "test timeout {}s is longer than the task's {}s; the task's limit wins",
                        test.timeout_seconds, task.timeout_seconds
                    ),
                    None,
                );
            }
        }
    }
}

const ID_HELP: &str = "ids become git ref names: use letters, digits, `-`, `_` and `.`";
