//! The desired state of one pass: the watched commit, its configuration and plans (read from
//! the commit's tree, not the work tree), checked, with every task's spec hash.

use std::collections::HashMap;
use std::path::Path;

use git2::{Oid, Repository};

use super::decide::{Desired, DesiredTask, DesiredWorkflow};
use super::guard::Guard;
use crate::config::{Config, Env, EnvError};
use crate::graph::TaskGraph;
use crate::spec::{Diagnostic, HashError, PlanFile, SpecHash, Task, TreeSource, load_specs, spec_hashes};
use crate::state::TaskKey;

/// What a pass works from.
pub struct Snapshot {
    /// The watched branch.
    pub branch: String,
    /// Its tip: the plan commit.
    pub plan_commit: Oid,
    /// The configuration at that commit, with the environment applied.
    pub config: Config,
    /// The commit's files.
    pub source: TreeSource,
    /// The valid plans.
    pub plans: Vec<PlanFile>,
    /// Each task's spec hash.
    pub hashes: HashMap<TaskKey, SpecHash>,
    /// Each workflow's graph.
    pub graphs: HashMap<String, TaskGraph>,
    /// Warnings found while loading.
    pub warnings: Vec<Diagnostic>,
}

/// Why the desired state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The watched branch does not exist.
    #[error("branch `{0}` does not exist in the repository (set `branch:` in plancd.yaml, or PLANCD_BRANCH)")]
    NoBranch(String),
    /// The configuration or a plan is invalid.
    #[error("{} error(s) in the plans or plancd.yaml at the watched commit", .0.iter().filter(|d| d.is_error()).count())]
    Invalid(Vec<Diagnostic>),
    /// A `PLANCD_*` variable is wrong.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// Spec hashes could not be computed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Git failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// Reading the tree failed.
    #[error("reading the watched commit: {0}")]
    Io(#[from] std::io::Error),
}

impl Snapshot {
    /// Loads the snapshot of the repository at `repo_path`. The watched branch is `branch`, else
    /// `PLANCD_BRANCH`, else the `branch:` of the plancd.yaml at HEAD, else `main`.
    pub fn load(repo_path: &Path, branch: Option<&str>, env: &Env) -> Result<Snapshot, LoadError> {
        let repo = Repository::open(repo_path)?;
        let branch = match branch.map(str::to_owned).or_else(|| env.get("PLANCD_BRANCH").map(str::to_owned)) {
            Some(b) => b,
            None => branch_from_head(&repo, repo_path, env).unwrap_or_else(|| "main".into()),
        };
        let plan_commit = repo
            .find_branch(&branch, git2::BranchType::Local)
            .ok()
            .and_then(|b| b.get().target())
            .ok_or_else(|| LoadError::NoBranch(branch.clone()))?;
        Snapshot::load_at(repo_path, &branch, plan_commit, plan_commit, env)
    }

    /// The snapshot of the plans at `plan_commit`, with the configuration of `config_commit`
    /// (the same commit for a reconcile; a pull request's base for its preview, so that a pull
    /// request never configures its own run).
    pub fn load_at(repo_path: &Path, branch: &str, plan_commit: Oid, config_commit: Oid, env: &Env) -> Result<Snapshot, LoadError> {
        let branch = branch.to_owned();
        let source = TreeSource::new(repo_path, plan_commit)?;
        let mut config = Config::load_env(&TreeSource::new(repo_path, config_commit)?, env).map_err(LoadError::Invalid)?;
        config.apply_env(env)?;
        config.branch = branch.clone();
        let specs = load_specs(&source, &config)?;
        if specs.has_errors() {
            return Err(LoadError::Invalid(specs.diagnostics));
        }
        let mut hashes = HashMap::new();
        let mut graphs = HashMap::new();
        let per_plan = crate::par::map(&specs.plans, |plan| spec_hashes(&plan.list, &source));
        for (plan, plan_hashes) in specs.plans.iter().zip(per_plan) {
            let wf = &plan.list.todo_list_id;
            for (task, hash) in plan_hashes? {
                hashes.insert(TaskKey::new(wf, &task), hash);
            }
            graphs.insert(wf.clone(), TaskGraph::from_list(&plan.list));
        }
        Ok(Snapshot { branch, plan_commit, config, source, plans: specs.plans, hashes, graphs, warnings: specs.diagnostics })
    }

    /// The task behind `key`.
    pub fn task(&self, key: &TaskKey) -> Option<&Task> {
        self.plans.iter().find(|p| p.list.todo_list_id == key.workflow)?.list.task(&key.task)
    }

    /// The plan of a workflow.
    pub fn plan(&self, workflow: &str) -> Option<&PlanFile> {
        self.plans.iter().find(|p| p.list.todo_list_id == workflow)
    }

    /// Whether `task` waits for a person's approval of its spec: the plan says so, or its
    /// outputs name protected paths or files that decide how tests run.
    pub fn requires_approval(&self, task: &Task) -> bool {
        task.requires_approval || !Guard::new(&self.config).held_outputs(task).is_empty()
    }

    /// What the plans ask for, each workflow's tasks in dependency order.
    pub fn desired(&self) -> Desired {
        let guard = Guard::new(&self.config);
        let workflows = self
            .plans
            .iter()
            .map(|plan| {
                let wf = &plan.list.todo_list_id;
                let order = self.graphs[wf].topological_order().expect("valid plans have no cycles");
                let tasks = order
                    .into_iter()
                    .map(|id| {
                        let task = plan.list.task(id).expect("graph ids come from the plan");
                        DesiredTask {
                            id: id.to_owned(),
                            spec_hash: self.hashes[&TaskKey::new(wf, id)].clone(),
                            dependencies: task.dependencies.clone(),
                            requires_approval: task.requires_approval || !guard.held_outputs(task).is_empty(),
                            max_attempts: task.max_attempts,
                            max_debug_attempts: task.max_debug_attempts,
                        }
                    })
                    .collect();
                DesiredWorkflow { id: wf.clone(), tasks }
            })
            .collect();
        Desired { workflows }
    }
}

/// The `branch:` of the plancd.yaml in HEAD's commit, when it can be read.
fn branch_from_head(repo: &Repository, repo_path: &Path, env: &Env) -> Option<String> {
    let head = repo.head().ok()?.peel_to_commit().ok()?.id();
    let source = TreeSource::new(repo_path, head).ok()?;
    Config::load_env(&source, env).ok().map(|c| c.branch)
}
