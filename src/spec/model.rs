//! The plan and contract model: what `schemas/todo_list.schema.json` and
//! `schemas/contract.schema.json` describe, as Rust types with their defaults applied.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An agent role: who plays a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Turns a request into a plan.
    Planner,
    /// Writes contracts: interfaces, data models, test skeletons.
    Architect,
    /// Implements against a contract.
    Coder,
    /// Writes and runs tests.
    Tester,
    /// Works on branch todos: diagnoses failures and fixes them.
    Debugger,
}

impl Role {
    /// Every role, in the order people list them.
    pub const ALL: [Role; 5] = [Role::Planner, Role::Architect, Role::Coder, Role::Tester, Role::Debugger];

    /// The name used in plans and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::Architect => "architect",
            Role::Coder => "coder",
            Role::Tester => "tester",
            Role::Debugger => "debugger",
        }
    }

    /// The role named `name` (as [`Role::as_str`] writes it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a branch todo was created (the seed's `branch_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchReason {
    /// Tests failed for a reason not narrowed down further.
    TestFailure,
    /// The code does not match its contract.
    SpecMismatch,
    /// A test or the task ran out of time.
    Timeout,
    /// The code is wrong.
    ImplementationBug,
    /// A module or package is missing.
    MissingDependency,
    /// A test passes and fails on the same code.
    FlakyTest,
}

/// The failure types plancd classifies on its own; `failure_patterns` in the configuration
/// may add more.
pub const BUILTIN_FAILURE_TYPES: [&str; 10] = [
    "missing_dependency",
    "spec_mismatch",
    "implementation_bug",
    "timeout",
    "flaky_test",
    "test_failure",
    "stuck",
    "budget_exceeded",
    "infrastructure",
    "unknown",
];

/// A plan: one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TodoList {
    /// The workflow id.
    pub todo_list_id: String,
    /// A short title.
    pub title: String,
    /// What the workflow is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The tasks, in the order written.
    pub tasks: Vec<Task>,
}

impl TodoList {
    /// The task with `id`.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// The task upstream of `id` (a direct or indirect dependency) that lists `path` among
    /// its outputs: a file the plan produces rather than one committed with it.
    pub fn produced_upstream(&self, id: &str, path: &str) -> Option<&Task> {
        let graph = crate::graph::TaskGraph::from_list(self);
        let path = super::normalize_relative(path);
        graph
            .upstream(id)
            .into_iter()
            .filter_map(|up| self.task(up))
            .find(|t| t.outputs.iter().any(|o| super::normalize_relative(o) == path))
    }
}

/// One task (a TodoItem).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Unique in the plan; one git ref component.
    pub id: String,
    /// A short title.
    pub title: String,
    /// What to do; the agent's instructions.
    #[serde(default)]
    pub description: String,
    /// Who does it.
    pub agent_role: Role,
    /// Tasks that must succeed first; their results are in this task's workspace.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// The contract the work must meet (a repository path).
    #[serde(default)]
    pub contract: Option<String>,
    /// Files the task reads.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Files the task produces.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// What must hold for the task to succeed.
    #[serde(default)]
    pub acceptance_criteria: AcceptanceCriteria,
    /// The whole attempt's time limit.
    #[serde(default = "default_task_timeout")]
    pub timeout_seconds: u32,
    /// Attempts before the task fails for good (infrastructure errors excluded).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Wait for `plancd approve` before running.
    #[serde(default)]
    pub requires_approval: bool,
    /// Failure type -> the role that handles it in a branch todo.
    #[serde(default)]
    pub failure_routing: BTreeMap<String, Role>,
    /// Branch todos: the task being debugged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// Branch todos: why the branch exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_reason: Option<BranchReason>,
    /// Branch todos: diagnostics and hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_instructions: Option<String>,
    /// Branch todos: removed once resolved.
    #[serde(default)]
    pub is_temporary: bool,
    /// Branch todos: attempts before escalation.
    #[serde(default = "default_attempts")]
    pub max_debug_attempts: u32,
}

fn default_task_timeout() -> u32 {
    1800
}

fn default_attempts() -> u32 {
    3
}

fn default_test_timeout() -> u32 {
    300
}

/// The acceptance criteria of a task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AcceptanceCriteria {
    /// Commands that must exit 0.
    #[serde(default)]
    pub tests: Vec<AcceptanceTest>,
    /// Pinned test files: restored before the tests run; agents may not change them.
    #[serde(default)]
    pub files: Vec<String>,
    /// The least line coverage (percent) the acceptance tests must reach, as plancd measures it
    /// (see [`crate::quality`]); below it, or unmeasurable, the work fails as
    /// `coverage_below_minimum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage_min: Option<f64>,
}

/// One acceptance test command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptanceTest {
    /// A name for reports; defaults to the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A shell command, run in the workspace.
    pub cmd: String,
    /// Its time limit.
    #[serde(default = "default_test_timeout")]
    pub timeout_seconds: u32,
    /// A JUnit XML report the command writes, relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
}

/// A contract: the interfaces a task's code must provide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    /// Its id.
    pub contract_id: String,
    /// What it covers.
    #[serde(default)]
    pub description: String,
    /// Classes, functions and modules.
    pub interfaces: Vec<Interface>,
    /// Data shapes.
    #[serde(default)]
    pub data_models: Vec<DataModel>,
    /// Tests to write.
    #[serde(default)]
    pub test_skeletons: Vec<TestSkeleton>,
}

/// A class, function or module of a contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// `class`, `function` or `module`.
    #[serde(rename = "type")]
    pub kind: InterfaceKind,
    /// Where it lives, e.g. a Python module path.
    #[serde(default)]
    pub module: Option<String>,
    /// Its signature.
    pub signature: String,
    /// For classes, the methods.
    #[serde(default)]
    pub methods: Vec<Method>,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// How it is used.
    #[serde(default)]
    pub example: Option<String>,
}

/// What an interface is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterfaceKind {
    /// A class.
    Class,
    /// A function.
    Function,
    /// A module.
    Module,
}

/// A method of a class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    /// Its name.
    pub name: String,
    /// Its signature.
    pub signature: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
}

/// A data model of a contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataModel {
    /// Its name.
    pub name: String,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// A field of a data model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// Its type, as the language writes it.
    #[serde(rename = "type")]
    pub ty: String,
}

/// A test a contract asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSkeleton {
    /// Its name.
    pub name: String,
    /// What it tests.
    #[serde(default)]
    pub target: Option<String>,
    /// Its code, if given.
    #[serde(default)]
    pub code: Option<String>,
}
