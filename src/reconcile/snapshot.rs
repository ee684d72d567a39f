//! The desired state of one pass: the watched commit, its configuration and plans (read from
//! the commit's tree, not the work tree), checked, with every task's spec hash. A plan with
//! errors stalls its own workflow only; an error of the configuration stops the pass.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use git2::{Oid, Repository};

use super::decide::{Actual, Desired, DesiredTask, DesiredWorkflow};
use super::guard::Guard;
use crate::config::{Config, Env, EnvError};
use crate::graph::TaskGraph;
use crate::spec::{Diagnostic, HashError, InvalidPlan, PlanFile, SpecHash, Task, TreeSource, load_specs, spec_hashes};
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
    /// The workflows whose plans cannot run, with why: nothing of theirs runs, is marked or
    /// pruned, and every other workflow goes on.
    pub stalled: Vec<StalledWorkflow>,
    /// Where the environment came from when plancd.yaml declares none and the repository has a
    /// dev container or Copilot setup steps: the file(s), and what was not taken and why.
    pub environment_from: Option<(String, Vec<String>)>,
    /// The roles whose agent cannot start with the environment the snapshot was loaded with
    /// (a model's key is missing): their tasks wait unclaimed.
    pub unavailable: BTreeMap<crate::spec::Role, super::preflight::AgentUnavailable>,
}

/// Why a workflow is stalled: no pass gets further until a person changes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum StallReason {
    /// Its plan (or a contract the plan names) has errors.
    PlanInvalid,
}

impl StallReason {
    /// The CamelCase reason for status, commit statuses and metric labels.
    pub fn reason(self) -> &'static str {
        match self {
            StallReason::PlanInvalid => "PlanInvalid",
        }
    }
}

impl std::fmt::Display for StallReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// A workflow that cannot run, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StalledWorkflow {
    /// Why.
    pub reason: StallReason,
    /// The plan and its diagnostics.
    #[serde(flatten)]
    pub plan: InvalidPlan,
}

impl StalledWorkflow {
    /// One line for people: `momentum (plans/momentum.yaml): PlanInvalid, 1 error(s), first: ...`.
    pub fn summary(&self) -> String {
        let first =
            self.plan.diagnostics.iter().find(|d| d.is_error()).map(|d| format!(": {}:{}:{}: {}", d.file, d.line, d.column, d.message));
        let name = match &self.plan.workflow {
            Some(wf) => format!("{wf} ({})", self.plan.path),
            None => self.plan.path.clone(),
        };
        format!("{name}: {}, {} error(s){}", self.reason, self.plan.errors(), first.unwrap_or_default())
    }
}

/// Why the desired state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The watched branch does not exist.
    #[error("branch `{0}` does not exist in the repository (set `branch:` in plancd.yaml, or PLANCD_BRANCH)")]
    NoBranch(String),
    /// The configuration is invalid (a plan's own errors stall its workflow instead).
    #[error("{} error(s) in plancd.yaml at the watched commit", .0.iter().filter(|d| d.is_error()).count())]
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
        let environment_from = adopt_conventions(&mut config, &TreeSource::new(repo_path, config_commit)?);
        let specs = load_specs(&source, &config)?;
        let global = specs.global_errors();
        if !global.is_empty() {
            return Err(LoadError::Invalid(global));
        }
        let stalled: Vec<StalledWorkflow> =
            specs.invalid.iter().map(|plan| StalledWorkflow { reason: StallReason::PlanInvalid, plan: plan.clone() }).collect();
        let invalid: Vec<&Diagnostic> = specs.invalid.iter().flat_map(|p| &p.diagnostics).collect();
        let warnings = specs.diagnostics.iter().filter(|d| !d.is_error() && !invalid.contains(d)).cloned().collect();
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
        let unavailable = super::preflight::unavailable_agents(&config, env);
        Ok(Snapshot {
            branch,
            plan_commit,
            config,
            source,
            plans: specs.plans,
            hashes,
            graphs,
            warnings,
            stalled,
            environment_from,
            unavailable,
        })
    }

    /// `actual` without the tasks of stalled workflows, so that no decision touches them: an
    /// invalid plan is no reason to mark its tasks orphaned, let alone prune them. When a plan
    /// too broken to name its workflow is among them, no task outside the valid plans is touched.
    pub fn screen(&self, mut actual: Actual) -> Actual {
        let stalled: Vec<&str> = self.stalled.iter().filter_map(|s| s.plan.workflow.as_deref()).collect();
        let unnamed = self.stalled.iter().any(|s| s.plan.workflow.is_none());
        let planned = |wf: &str| self.plans.iter().any(|p| p.list.todo_list_id == wf);
        actual.tasks.retain(|key, _| !stalled.contains(&key.workflow.as_str()) && (!unnamed || planned(&key.workflow)));
        actual
    }

    /// The stalled workflow `workflow`, if it is one.
    pub fn stalled(&self, workflow: &str) -> Option<&StalledWorkflow> {
        self.stalled.iter().find(|s| s.plan.workflow.as_deref() == Some(workflow))
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

    /// The key of each role's environment as of the watched commit (the cache files read from
    /// its tree): what holds tasks when an environment failed.
    pub fn environment_keys(&self) -> HashMap<crate::spec::Role, String> {
        use crate::spec::FileSource;
        // Every role: branch todos run in the roles they are routed to.
        let roles = crate::spec::Role::ALL;
        let paths = self.source.files().unwrap_or_default();
        roles
            .into_iter()
            .map(|role| {
                let basis = super::environment::Basis::of(&self.config, role);
                let files: Vec<(&str, Vec<u8>)> = basis
                    .cache_paths(paths.iter().map(String::as_str))
                    .into_iter()
                    .filter_map(|p| Some((p, self.source.read(p).ok().flatten()?)))
                    .collect();
                let keyed: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (*p, d.as_slice())).collect();
                (role, basis.key(&keyed))
            })
            .collect()
    }

    /// What the plans ask for, each workflow's tasks in dependency order.
    pub fn desired(&self) -> Desired {
        let guard = Guard::new(&self.config);
        let environments = self.environment_keys();
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
                            environment: environments.get(&task.agent_role).cloned(),
                            role: task.agent_role,
                        }
                    })
                    .collect();
                DesiredWorkflow { id: wf.clone(), tasks }
            })
            .collect();
        Desired { workflows, environments: environments.into_values().collect(), unavailable: self.unavailable.clone() }
    }
}

/// The `branch:` of the plancd.yaml in HEAD's commit, when it can be read.
fn branch_from_head(repo: &Repository, repo_path: &Path, env: &Env) -> Option<String> {
    let head = repo.head().ok()?.peel_to_commit().ok()?.id();
    let source = TreeSource::new(repo_path, head).ok()?;
    Config::load_env(&source, env).ok().map(|c| c.branch)
}

/// Without an `environment:` in plancd.yaml, the environment the repository's own conventions
/// describe (a dev container, Copilot setup steps) when they have setup commands: taken into
/// `config`, and where it came from returned, with what was not taken.
fn adopt_conventions(config: &mut Config, source: &TreeSource) -> Option<(String, Vec<String>)> {
    if config.environment.is_some() {
        return None;
    }
    use crate::spec::FileSource;
    let found = crate::init::conventions::from_conventions(|path| source.read(path).ok().flatten())?;
    if found.setup.is_empty() {
        return None;
    }
    config.environment = Some(crate::config::EnvironmentConfig {
        setup: found.setup,
        cache: found.cache,
        image: found.image,
        network: (!found.network.is_empty()).then_some(found.network),
        timeout_seconds: None,
    });
    Some((found.source, found.notes))
}
