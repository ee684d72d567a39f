//! `decide(desired, actual) -> actions`: the pure heart of reconciliation. It reads nothing
//! and writes nothing; the executor performs what it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use jiff::Timestamp;

use super::preflight::AgentUnavailable;
use crate::spec::{Role, SpecHash};
use crate::state::{Phase, Reason, TaskKey, TaskState};

/// What the plans ask for: each workflow's tasks in topological order.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Workflows by id.
    pub workflows: Vec<DesiredWorkflow>,
    /// The key of every role's environment as of the watched commit: a branch todo's failed
    /// environment holds it while its key is among them.
    pub environments: BTreeSet<String>,
    /// The roles whose agent cannot start in this process (see `preflight`): their tasks wait
    /// instead of being claimed.
    pub unavailable: BTreeMap<Role, AgentUnavailable>,
}

/// One workflow's tasks.
#[derive(Debug, Clone)]
pub struct DesiredWorkflow {
    /// The workflow id.
    pub id: String,
    /// Its tasks, dependencies first.
    pub tasks: Vec<DesiredTask>,
}

/// What one task needs to be satisfied.
#[derive(Debug, Clone)]
pub struct DesiredTask {
    /// The task id.
    pub id: String,
    /// Its spec hash.
    pub spec_hash: SpecHash,
    /// Its direct dependencies.
    pub dependencies: Vec<String>,
    /// Whether a person must approve it first.
    pub requires_approval: bool,
    /// Attempts before it fails for good.
    pub max_attempts: u32,
    /// Attempts of each of its branch todos before it is escalated.
    pub max_debug_attempts: u32,
    /// The key of the environment it runs in (see `environment::key`), as of the watched commit.
    pub environment: Option<String>,
    /// The role that plays it.
    pub role: Role,
}

/// What the refs say, plus what the caller learned about holders.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// Every task's state.
    pub tasks: BTreeMap<TaskKey, TaskState>,
    /// Suspended workflows.
    pub suspended: HashSet<String>,
    /// Holders known to be dead (their process is gone on this host).
    pub dead_holders: HashSet<String>,
}

/// Settings that shape decisions.
#[derive(Debug, Clone)]
pub struct Context {
    /// The time to judge leases by.
    pub now: Timestamp,
    /// Delete the refs of orphaned tasks.
    pub prune: bool,
}

/// What to do about one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start an attempt.
    Run {
        /// The task.
        key: TaskKey,
        /// The attempt's number.
        attempt: u32,
        /// The attempt number that starts this spec's (or this retry's) count.
        attempts_base: u32,
        /// The tip the claim must replace.
        expected: Option<git2::Oid>,
        /// A claim being taken over from a dead or expired holder.
        takeover: Option<String>,
        /// For a branch todo: the task it debugs.
        branch_of: Option<String>,
        /// Why it runs.
        why: RunReason,
    },
    /// Nothing to do until something else happens.
    Wait {
        /// The task.
        key: TaskKey,
        /// What it waits for.
        blocker: Blocker,
    },
    /// Satisfied.
    UpToDate {
        /// The task.
        key: TaskKey,
    },
    /// Waits for `plancd approve`.
    NeedsApproval {
        /// The task.
        key: TaskKey,
    },
    /// Out of attempts; needs `plancd retry` or a plan change.
    Failed {
        /// The task.
        key: TaskKey,
        /// Attempts spent.
        attempts: u32,
    },
    /// Handed to a person.
    Escalated {
        /// The task.
        key: TaskKey,
    },
    /// Its workflow is suspended.
    Suspended {
        /// The task.
        key: TaskKey,
    },
    /// A branch todo that is no longer at work (resolved, escalated, or superseded).
    BranchClosed {
        /// The branch todo.
        key: TaskKey,
        /// Its last phase.
        phase: Phase,
    },
    /// In the refs but in no plan.
    Orphaned {
        /// The task.
        key: TaskKey,
        /// Whether to delete its refs.
        prune: bool,
        /// Whether its status does not say Orphaned yet.
        mark: bool,
    },
}

/// Why a task runs: what `diff` and progress displays say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunReason {
    /// It never ran.
    FirstRun,
    /// Its spec (the task, its contract, its tests or an upstream spec) changed.
    SpecChanged,
    /// A dependency has a new result that the last one was not built on.
    DependencyChanged {
        /// The dependency.
        id: String,
        /// The dependency's attempt that produced it.
        attempt: u32,
    },
    /// A person asked for another attempt (`plancd retry`, `/plancd retry`).
    RetryRequested,
    /// A reviewer asked for changes.
    RevisionRequested,
    /// A person approved it.
    Approved,
    /// The last attempt failed and attempts are left.
    AttemptFailed {
        /// Attempts used.
        used: u32,
        /// Attempts allowed.
        max: u32,
    },
    /// The last claim was given back unfinished (a signal, the sandbox, the remote).
    Released,
    /// Its last attempt was stopped by a part outside the work (a model's key not set, the
    /// sandbox engine); the attempt did not count.
    Stopped {
        /// What stopped it, as its record says.
        reason: Reason,
    },
    /// Its holder died or its lease ran out.
    TakeOver {
        /// The holder.
        holder: String,
    },
    /// A branch todo debugging its parent.
    Debugging {
        /// The parent.
        parent: String,
    },
    /// Its workflow was resumed, or no earlier reason is known.
    Pending,
}

impl fmt::Display for RunReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunReason::FirstRun => f.write_str("never ran"),
            RunReason::SpecChanged => f.write_str("its spec changed"),
            RunReason::DependencyChanged { id, attempt } => write!(f, "{id} has a new result (attempt {attempt})"),
            RunReason::RetryRequested => f.write_str("a retry was requested"),
            RunReason::RevisionRequested => f.write_str("a reviewer asked for changes"),
            RunReason::Approved => f.write_str("approved"),
            RunReason::AttemptFailed { used, max } => write!(f, "attempt {used} of {max} failed; trying again"),
            RunReason::Released => f.write_str("the last attempt was interrupted"),
            RunReason::Stopped { reason } => {
                let what = match reason {
                    Reason::ModelError => "the model's API failed, or its key is not set",
                    Reason::SandboxError => "the sandbox failed",
                    Reason::GitError => "git failed",
                    Reason::RemoteError => "the remote failed",
                    Reason::EnvironmentFailed => "its environment failed to build",
                    _ => "a part outside the work failed",
                };
                write!(f, "the last attempt was stopped: {what} (see its message in plancd describe)")
            }
            RunReason::TakeOver { holder } => write!(f, "taking over from {holder}"),
            RunReason::Debugging { parent } => write!(f, "debugging {parent}"),
            RunReason::Pending => f.write_str("pending"),
        }
    }
}

/// What a waiting task waits for. Words are made only when shown: a pass decides often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Another holder's live claim on the task itself.
    Held {
        /// Its phase.
        phase: Phase,
        /// Its attempt.
        attempt: u32,
        /// The holder.
        holder: String,
        /// The lease's end.
        until: Option<Timestamp>,
    },
    /// A branch todo is debugging the task.
    Debugging {
        /// The branch todo.
        branch: String,
    },
    /// A dependency that is not satisfied.
    Dependency {
        /// The dependency's id.
        id: String,
        /// Its phase, `None` when it never ran.
        phase: Option<Phase>,
        /// Its latest attempt.
        attempt: u32,
    },
    /// The environment the task runs in failed for another task (or for this one): nothing
    /// runs in it until `environment.setup` or its cache files change, or that task is retried.
    Environment {
        /// The environment's key.
        env: String,
        /// The task whose record reports the failure.
        reporter: TaskKey,
        /// `EnvironmentFailed` or `EnvironmentIncomplete`.
        reason: Reason,
    },
    /// The task's agent cannot start in this process (its model's key is missing): nothing is
    /// claimed until it can.
    Agent {
        /// The role.
        role: Role,
        /// Why.
        why: AgentUnavailable,
    },
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Held { phase, attempt, holder, until } => {
                let until = until.map(|t| t.to_string()).unwrap_or_default();
                write!(f, "{phase}, attempt {attempt}, held by {holder} until {until}")
            }
            Blocker::Debugging { branch } => write!(f, "debugging in branch todo {branch}"),
            Blocker::Dependency { id, phase: None, .. } => write!(f, "waiting on {id}: Pending"),
            Blocker::Dependency { id, phase: Some(p), attempt } if p.is_held() || *p == Phase::Failed => {
                write!(f, "waiting on {id}: {p}, attempt {attempt}")
            }
            Blocker::Dependency { id, phase: Some(Phase::Succeeded), .. } => {
                write!(f, "waiting on {id}: Succeeded, but it runs again first")
            }
            Blocker::Dependency { id, phase: Some(p), .. } => write!(f, "waiting on {id}: {p}"),
            Blocker::Environment { env, reporter, reason } => {
                let what = if *reason == Reason::EnvironmentIncomplete { "lacks what the tests need" } else { "failed to build" };
                write!(f, "environment {env} {what} (see plancd describe {reporter}); change environment.setup")?;
                // A branch todo is not retried on its own (its parent is, once it is over).
                match is_branch_id(&reporter.task) {
                    true => Ok(()),
                    false => write!(f, ", or plancd retry {reporter}"),
                }
            }
            Blocker::Agent { role, why } => write!(f, "the {role} agent cannot start: {why}"),
        }
    }
}

impl Action {
    /// The task concerned.
    pub fn key(&self) -> &TaskKey {
        match self {
            Action::Run { key, .. }
            | Action::Wait { key, .. }
            | Action::UpToDate { key }
            | Action::NeedsApproval { key }
            | Action::Failed { key, .. }
            | Action::Escalated { key }
            | Action::Suspended { key }
            | Action::BranchClosed { key, .. }
            | Action::Orphaned { key, .. } => key,
        }
    }

    /// A short name for tables: Run, Wait, UpToDate, ...
    pub fn name(&self) -> &'static str {
        match self {
            Action::Run { .. } => "Run",
            Action::Wait { .. } => "Wait",
            Action::UpToDate { .. } => "UpToDate",
            Action::NeedsApproval { .. } => "NeedsApproval",
            Action::Failed { .. } => "Failed",
            Action::Escalated { .. } => "Escalated",
            Action::Suspended { .. } => "Suspended",
            Action::BranchClosed { .. } => "BranchClosed",
            Action::Orphaned { prune: true, .. } => "Prune",
            Action::Orphaned { .. } => "Orphaned",
        }
    }

    /// Whether the action is about a task of a plan (not a branch todo, not an orphan): what
    /// counts in "N/M tasks satisfied".
    pub fn is_task(&self) -> bool {
        match self {
            Action::Orphaned { .. } | Action::BranchClosed { .. } | Action::Run { branch_of: Some(_), .. } => false,
            // A branch todo that waits (held by another controller, for its environment or its
            // agent): its id is `<task>_branch_NN`.
            Action::Wait { key, .. } => !is_branch_id(&key.task),
            _ => true,
        }
    }

    /// Whether a reconcile would change something for this task.
    pub fn is_work(&self) -> bool {
        matches!(self, Action::Run { .. } | Action::Orphaned { prune: true, .. } | Action::Orphaned { mark: true, .. })
    }
}

impl fmt::Display for Action {
    /// Why, in words: "waiting on t1: Running, attempt 2".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Run { attempt, why: RunReason::FirstRun, .. } => write!(f, "run attempt {attempt}"),
            Action::Run { attempt, why, .. } => write!(f, "run attempt {attempt}: {why}"),
            Action::Wait { blocker, .. } => blocker.fmt(f),
            Action::UpToDate { .. } => f.write_str("up to date"),
            Action::NeedsApproval { key } => write!(f, "needs approval: plancd approve {key}"),
            Action::Failed { key, attempts } => write!(f, "failed after {attempts} attempt(s): plancd retry {key}"),
            Action::Escalated { .. } => f.write_str("escalated to a person"),
            Action::Suspended { key } => write!(f, "workflow suspended: plancd resume {}", key.workflow),
            Action::BranchClosed { phase, .. } => write!(f, "branch todo closed ({phase})"),
            Action::Orphaned { prune: true, .. } => f.write_str("no longer in any plan: its refs will be deleted"),
            Action::Orphaned { .. } => f.write_str("no longer in any plan (set prune: true to delete its refs)"),
        }
    }
}

/// Decides every task of `desired`, then every orphan of `actual`.
pub fn decide(desired: &Desired, actual: &Actual, cx: &Context) -> Vec<Action> {
    // Borrowed views, so that deciding allocates only the actions: a pass decides often.
    let mut states: HashMap<&str, HashMap<&str, &TaskState>> = HashMap::new();
    for (key, state) in &actual.tasks {
        states.entry(key.workflow.as_str()).or_default().insert(key.task.as_str(), state);
    }
    let empty = HashMap::new();
    let failed_envs = failed_environments(actual);
    let mut out = Vec::with_capacity(actual.tasks.len().max(desired.workflows.iter().map(|w| w.tasks.len()).sum()));
    let mut known: HashMap<&str, HashSet<&str>> = HashMap::new();
    for wf in &desired.workflows {
        let wf_states = states.get(wf.id.as_str()).unwrap_or(&empty);
        let mut satisfied: HashMap<&str, bool> = HashMap::with_capacity(wf.tasks.len());
        for task in &wf.tasks {
            let state = wf_states.get(task.id.as_str()).copied();
            let view = View {
                wf,
                states: wf_states,
                satisfied: &satisfied,
                actual,
                cx,
                failed_envs: &failed_envs,
                unavailable: &desired.unavailable,
            };
            let action = view.decide(task, state);
            satisfied.insert(&task.id, matches!(action, Action::UpToDate { .. }));
            known.entry(wf.id.as_str()).or_default().insert(&task.id);
            out.push(action);
        }
    }
    let mut open: HashMap<(&str, &str), &str> = HashMap::new();
    for wf in &desired.workflows {
        let wf_states = states.get(wf.id.as_str()).unwrap_or(&empty);
        for task in &wf.tasks {
            let Some(s) = wf_states.get(task.id.as_str()) else { continue };
            let current = s.spec_hash.as_ref() == Some(&task.spec_hash) && s.changed_input(&inputs(task, wf_states)).is_none();
            if let (Phase::Debugging, Some(b), true) = (s.phase, &s.branch_todo, current) {
                open.insert((wf.id.as_str(), b.as_str()), task.id.as_str());
                if !wf_states.contains_key(b.as_str()) {
                    // Opened, not yet claimed: its first attempt, once its agent can start.
                    let key = TaskKey::new(&wf.id, b);
                    if let Some((role, why)) = s.branch_todo_role.and_then(|r| Some((r, desired.unavailable.get(&r)?))) {
                        out.push(Action::Wait { key, blocker: Blocker::Agent { role, why: why.clone() } });
                        continue;
                    }
                    out.push(Action::Run {
                        key,
                        attempt: 1,
                        attempts_base: 0,
                        expected: None,
                        takeover: None,
                        branch_of: Some(task.id.clone()),
                        why: RunReason::Debugging { parent: task.id.clone() },
                    });
                }
            }
        }
    }
    for (key, state) in &actual.tasks {
        if known.get(key.workflow.as_str()).is_some_and(|k| k.contains(key.task.as_str())) {
            continue;
        }
        let parent_known = state.parent.as_deref().is_some_and(|p| known.get(key.workflow.as_str()).is_some_and(|k| k.contains(p)));
        match open.get(&(key.workflow.as_str(), key.task.as_str())) {
            Some(parent) => out.push(decide_branch(key.clone(), parent, state, actual, cx, desired)),
            None if parent_known => out.push(Action::BranchClosed { key: key.clone(), phase: state.phase }),
            None => out.push(Action::Orphaned { key: key.clone(), prune: cx.prune, mark: state.phase != Phase::Orphaned }),
        }
    }
    out
}

/// A branch todo at work: run it, wait for the holder of its claim, or wait for its environment
/// (the desired keys) when its last attempt found that environment failed, or for its agent
/// when that cannot start here (a model key not set): no agent can fix either, and running it
/// again would only spend the parent's debugging.
fn decide_branch(key: TaskKey, parent: &str, s: &TaskState, actual: &Actual, cx: &Context, desired: &Desired) -> Action {
    let mut takeover = None;
    if s.phase.is_held() {
        let holder = s.holder.clone().unwrap_or_default();
        if s.lease_expires_at.is_some_and(|t| t > cx.now) && !actual.dead_holders.contains(&holder) {
            return Action::Wait { key, blocker: Blocker::Held { phase: s.phase, attempt: s.attempt, holder, until: s.lease_expires_at } };
        }
        takeover = Some(holder);
    }
    if let (Some(env), Some(reason), None) = (s.environment_failure(), &s.reason, &takeover)
        && desired.environments.contains(env)
    {
        let blocker = Blocker::Environment { env: env.to_owned(), reporter: key.clone(), reason: reason.clone() };
        return Action::Wait { key, blocker };
    }
    if let Some((role, why)) = s.role.and_then(|r| Some((r, desired.unavailable.get(&r)?))) {
        return Action::Wait { key, blocker: Blocker::Agent { role, why: why.clone() } };
    }
    // A branch out of attempts still gets a run: it escalates its parent without working (an
    // interrupted run may have stopped between its two writes).
    let why = match takeover.clone() {
        Some(holder) => RunReason::TakeOver { holder },
        None => RunReason::Debugging { parent: parent.to_owned() },
    };
    Action::Run {
        key,
        attempt: s.attempt + 1,
        attempts_base: s.attempts_base,
        expected: Some(s.tip),
        takeover,
        branch_of: Some(parent.to_owned()),
        why,
    }
}

/// Whether `id` has the form of a branch todo's id, `<task>_branch_NN`.
fn is_branch_id(id: &str) -> bool {
    id.rsplit_once("_branch_").is_some_and(|(task, n)| !task.is_empty() && n.len() >= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The dependency results a task would be built on now (dependency id -> result commit).
fn inputs(task: &DesiredTask, states: &HashMap<&str, &TaskState>) -> BTreeMap<String, String> {
    task.dependencies.iter().filter_map(|d| Some((d.clone(), states.get(d.as_str())?.result?.to_string()))).collect()
}

/// The environments whose failure a record reports: key -> the reporting task and its reason.
/// One report holds every task with that environment (the first reporter, in key order, names it).
fn failed_environments(actual: &Actual) -> HashMap<&str, (&TaskKey, &Reason)> {
    let mut failed = HashMap::new();
    for (key, state) in &actual.tasks {
        if let (Some(env), Some(reason)) = (state.environment_failure(), state.reason.as_ref()) {
            failed.entry(env).or_insert((key, reason));
        }
    }
    failed
}

/// What deciding one task of a workflow looks at.
struct View<'a> {
    /// Environments that failed, by key (see [`failed_environments`]).
    failed_envs: &'a HashMap<&'a str, (&'a TaskKey, &'a Reason)>,
    /// Roles whose agent cannot start here.
    unavailable: &'a BTreeMap<Role, AgentUnavailable>,
    wf: &'a DesiredWorkflow,
    states: &'a HashMap<&'a str, &'a TaskState>,
    satisfied: &'a HashMap<&'a str, bool>,
    actual: &'a Actual,
    cx: &'a Context,
}

impl View<'_> {
    fn decide(&self, task: &DesiredTask, state: Option<&TaskState>) -> Action {
        let key = TaskKey::new(&self.wf.id, &task.id);
        decide_task(self, task, state, key)
    }
}

fn decide_task(view: &View<'_>, task: &DesiredTask, state: Option<&TaskState>, key: TaskKey) -> Action {
    let (wf, actual, cx) = (view.wf, view.actual, view.cx);
    let hash = &task.spec_hash;
    let inputs = inputs(task, view.states);
    // Satisfied means built on satisfied dependencies' current results: while one of them runs
    // again, what was built on it waits too.
    let deps_satisfied = task.dependencies.iter().all(|d| view.satisfied.get(d.as_str()).copied().unwrap_or(false));
    if deps_satisfied && state.is_some_and(|s| s.satisfied(hash, &inputs)) {
        return Action::UpToDate { key };
    }
    if actual.suspended.contains(&wf.id) {
        return Action::Suspended { key };
    }
    let mut takeover = None;
    if let Some(s) = state.filter(|s| s.phase.is_held()) {
        let holder = s.holder.clone().unwrap_or_default();
        let expired = s.lease_expires_at.is_none_or(|t| t <= cx.now);
        if !expired && !actual.dead_holders.contains(&holder) {
            return Action::Wait { key, blocker: Blocker::Held { phase: s.phase, attempt: s.attempt, holder, until: s.lease_expires_at } };
        }
        takeover = Some(holder);
    }
    if let Some(dep) = task.dependencies.iter().find(|d| !view.satisfied.get(d.as_str()).copied().unwrap_or(false)) {
        let dep_state = view.states.get(dep.as_str()).copied();
        let blocker =
            Blocker::Dependency { id: dep.clone(), phase: dep_state.map(|s| s.phase), attempt: dep_state.map_or(0, |s| s.attempt) };
        return Action::Wait { key, blocker };
    }
    if let Some((env, (reporter, reason))) = task.environment.as_deref().and_then(|env| Some((env, view.failed_envs.get(env)?))) {
        let blocker = Blocker::Environment { env: env.to_owned(), reporter: (*reporter).clone(), reason: (*reason).clone() };
        return Action::Wait { key, blocker };
    }
    let same_spec = state.is_some_and(|s| s.spec_hash.as_ref() == Some(hash));
    // A new result upstream counts like a new spec: the work so far was built on the old one.
    let changed_input = state.and_then(|s| s.changed_input(&inputs));
    let current = same_spec && changed_input.is_none();
    if let Some(s) = state.filter(|s| current && s.phase == Phase::Debugging) {
        // Its branch todo's agent cannot start here: that, not the debugging, is what it waits on.
        if let Some((role, why)) = s.branch_todo_role.and_then(|r| Some((r, view.unavailable.get(&r)?))) {
            return Action::Wait { key, blocker: Blocker::Agent { role, why: why.clone() } };
        }
        return Action::Wait { key, blocker: Blocker::Debugging { branch: s.branch_todo.clone().unwrap_or_default() } };
    }
    if task.requires_approval && state.is_none_or(|s| s.approved_spec_hash.as_ref() != Some(hash)) {
        return Action::NeedsApproval { key };
    }
    if let Some(s) = state.filter(|_| current) {
        if s.phase == Phase::Escalated {
            return Action::Escalated { key };
        }
        if s.phase == Phase::Failed && s.attempts_used() >= task.max_attempts {
            return Action::Failed { key, attempts: s.attempts_used() };
        }
        // A spent budget is not retried on its own: more attempts would spend more.
        if s.phase == Phase::BudgetExceeded {
            return Action::Failed { key, attempts: s.attempts_used() };
        }
    }
    if let Some(why) = view.unavailable.get(&task.role) {
        return Action::Wait { key, blocker: Blocker::Agent { role: task.role, why: why.clone() } };
    }
    let last = state.map_or(0, |s| s.attempt);
    // A new spec, a new upstream result (or a first run) gets a fresh count of attempts; a retry
    // already moved the base.
    let attempts_base = match state {
        Some(s) if current || s.phase == Phase::Pending => s.attempts_base,
        _ => last,
    };
    let why = match (state, changed_input, takeover.clone()) {
        (_, _, Some(holder)) => RunReason::TakeOver { holder },
        (None, ..) => RunReason::FirstRun,
        (Some(_), Some(id), _) => RunReason::DependencyChanged { id: id.to_owned(), attempt: view.states.get(id).map_or(0, |d| d.attempt) },
        (Some(_), None, _) if !same_spec => RunReason::SpecChanged,
        (Some(s), None, _) => match (s.phase, s.reason.as_ref()) {
            (Phase::Pending, Some(Reason::RetryRequested)) => RunReason::RetryRequested,
            (Phase::Pending, Some(Reason::RevisionRequested)) => RunReason::RevisionRequested,
            (Phase::Approved, _) => RunReason::Approved,
            (Phase::Released, Some(Reason::Cancelled) | None) => RunReason::Released,
            (Phase::Released, Some(reason)) => RunReason::Stopped { reason: reason.clone() },
            (Phase::Failed, _) => RunReason::AttemptFailed { used: s.attempts_used(), max: task.max_attempts },
            _ => RunReason::Pending,
        },
    };
    Action::Run { key, attempt: last + 1, attempts_base, expected: state.map(|s| s.tip), takeover, branch_of: None, why }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Oid;

    fn hash(c: char) -> SpecHash {
        SpecHash::parse(&c.to_string().repeat(64)).unwrap()
    }

    fn now() -> Timestamp {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    fn task(id: &str, h: char, deps: &[&str]) -> DesiredTask {
        DesiredTask {
            id: id.into(),
            spec_hash: hash(h),
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
            requires_approval: false,
            max_attempts: 3,
            max_debug_attempts: 3,
            environment: Some("env1".into()),
            role: Role::Coder,
        }
    }

    fn state(phase: Phase, h: char, attempt: u32) -> TaskState {
        TaskState {
            tip: Oid::from_str(&"1".repeat(40)).unwrap(),
            phase,
            spec_hash: Some(hash(h)),
            attempt,
            attempts_base: 0,
            accepted: 0,
            holder: None,
            lease_expires_at: None,
            approved_spec_hash: None,
            result: None,
            reason: None,
            inputs: None,
            branch_todo: None,
            branch_todo_role: None,
            role: None,
            parent: None,
            max_attempts: None,
            environment: None,
            subject: String::new(),
        }
    }

    #[test]
    fn a_released_task_runs_again_saying_what_stopped_it() {
        let released = |reason: Option<Reason>| TaskState { reason, ..state(Phase::Released, 'a', 1) };
        let rows: [(Option<Reason>, &str); 4] = [
            (Some(Reason::Cancelled), "Run: run attempt 2: the last attempt was interrupted"),
            (None, "Run: run attempt 2: the last attempt was interrupted"),
            (
                Some(Reason::ModelError),
                "Run: run attempt 2: the last attempt was stopped: the model's API failed, or its key is not set (see its message in plancd describe)",
            ),
            (
                Some(Reason::SandboxError),
                "Run: run attempt 2: the last attempt was stopped: the sandbox failed (see its message in plancd describe)",
            ),
        ];
        for (reason, expected) in rows {
            let out = run(vec![task("a", 'a', &[])], &[("a", released(reason.clone()))], |_| {});
            assert_eq!(out[0].1, expected, "{reason:?}");
        }
    }

    fn env_failed(h: char, env: &str, reason: Reason) -> TaskState {
        TaskState { reason: Some(reason), environment: Some(env.into()), ..state(Phase::Failed, h, 1) }
    }

    #[test]
    fn one_environment_failure_holds_every_task_of_that_environment() {
        let mut other = task("c", 'c', &[]);
        other.environment = Some("env2".into());
        let tasks = || vec![task("a", 'a', &[]), task("b", 'b', &[]), other.clone(), task("d", 'd', &["a"])];
        let held = "Wait: environment env1 failed to build (see plancd describe wf/a); change environment.setup, or plancd retry wf/a";
        let rows = run(tasks(), &[("a", env_failed('a', "env1", Reason::EnvironmentFailed))], |_| {});
        assert_eq!(
            table(&rows),
            [format!("a {held}"), format!("b {held}"), "c Run: run attempt 1".into(), "d Wait: waiting on a: Failed, attempt 1".into()]
        );
        let rows = run(tasks(), &[("b", env_failed('b', "env1", Reason::EnvironmentIncomplete))], |_| {});
        assert_eq!(
            rows[0].1,
            "Wait: environment env1 lacks what the tests need (see plancd describe wf/b); change environment.setup, or plancd retry wf/b"
        );
        // A changed environment (another key) lifts the hold: the task runs again.
        let rows = run(tasks(), &[("a", env_failed('a', "env0", Reason::EnvironmentFailed))], |_| {});
        assert_eq!(rows[0].1, "Run: run attempt 2: attempt 1 of 3 failed; trying again");
        assert_eq!(rows[1].1, "Run: run attempt 1");
        // So does a retry of the reporter: its record no longer reports the failure.
        let retried =
            TaskState { phase: Phase::Pending, reason: Some(Reason::RetryRequested), ..env_failed('a', "env1", Reason::RetryRequested) };
        let rows = run(tasks(), &[("a", retried)], |_| {});
        assert_eq!(rows[0].1, "Run: run attempt 2: a retry was requested");
        // A failure that is not the environment's holds nothing.
        let rows = run(tasks(), &[("a", env_failed('a', "env1", Reason::AttemptFailed))], |_| {});
        assert_eq!(rows[1].1, "Run: run attempt 1");
        // A released attempt that met the failed environment reports it too.
        let released = TaskState { phase: Phase::Released, ..env_failed('b', "env1", Reason::EnvironmentFailed) };
        let rows = run(tasks(), &[("b", released)], |_| {});
        assert!(rows[0].1.contains("plancd retry wf/b"), "{rows:?}");
    }

    #[test]
    fn a_branch_todo_whose_environment_failed_waits_for_it_like_the_tasks_of_that_environment() {
        let debugging = TaskState { branch_todo: Some("a_branch_01".into()), ..state(Phase::Debugging, 'a', 1) };
        let branch = |env: &str| TaskState { parent: Some("a".into()), ..env_failed('a', env, Reason::EnvironmentFailed) };
        let mut other = task("b", 'b', &[]);
        other.environment = Some("env-debug".into());
        let decide_with = |branch_state: TaskState, current: &[&str]| {
            let desired = Desired {
                workflows: vec![DesiredWorkflow { id: "wf".into(), tasks: vec![task("a", 'a', &[]), other.clone()] }],
                environments: current.iter().map(|e| (*e).to_owned()).collect(),
                ..Default::default()
            };
            let mut actual = Actual::default();
            for (id, s) in [("a", debugging.clone()), ("a_branch_01", branch_state)] {
                actual.tasks.insert(TaskKey::new("wf", id), s);
            }
            let actions = decide(&desired, &actual, &Context { now: now(), prune: false });
            actions.iter().map(|a| format!("{} {}: {a}", a.key().task, a.name())).collect::<Vec<_>>()
        };
        let held = "Wait: environment env-debug failed to build (see plancd describe wf/a_branch_01); change environment.setup";
        assert_eq!(
            decide_with(branch("env-debug"), &["env1", "env-debug"]),
            ["a Wait: debugging in branch todo a_branch_01".to_owned(), format!("b {held}"), format!("a_branch_01 {held}"),]
        );
        // A fixed environment (no role has the failed key any more) lifts the hold.
        let rows = decide_with(branch("env-debug"), &["env1", "env-debug-fixed"]);
        assert_eq!(rows[2], "a_branch_01 Run: run attempt 2: debugging a");
    }

    #[test]
    fn a_task_whose_agent_cannot_start_here_waits_unclaimed_and_a_finished_one_stays_as_it_is() {
        let missing = AgentUnavailable::KeyNotSet { model: "default".into(), var: "OPENAI_API_KEY".into() };
        let mut tester = task("c", 'c', &[]);
        tester.role = Role::Tester;
        let tasks = vec![task("a", 'a', &[]), task("b", 'b', &[]), tester, task("d", 'd', &["a"]), task("e", 'e', &[])];
        let desired = Desired {
            workflows: vec![DesiredWorkflow { id: "wf".into(), tasks }],
            unavailable: [(Role::Coder, missing)].into(),
            ..Default::default()
        };
        let mut actual = Actual::default();
        actual.tasks.insert(TaskKey::new("wf", "b"), TaskState { reason: Some(Reason::ModelError), ..state(Phase::Released, 'b', 1) });
        actual.tasks.insert(TaskKey::new("wf", "e"), state(Phase::Escalated, 'e', 2));
        let rows: Vec<String> = decide(&desired, &actual, &Context { now: now(), prune: false })
            .iter()
            .map(|a| format!("{} {}: {a}", a.key().task, a.name()))
            .collect();
        let held = "Wait: the coder agent cannot start: model `default` needs its key: OPENAI_API_KEY is not set in plancd's environment (plancd.yaml models.default.api_key_env); set it and reconcile again";
        assert_eq!(
            rows,
            [
                format!("a {held}"),
                format!("b {held}"),
                "c Run: run attempt 1".to_owned(),
                "d Wait: waiting on a: Pending".to_owned(),
                "e Escalated: escalated to a person".to_owned(),
            ]
        );
    }

    #[test]
    fn a_branch_todo_whose_agent_cannot_start_here_waits_opened_or_under_way() {
        let missing = AgentUnavailable::KeyNotSet { model: "cloud".into(), var: "CLOUD_KEY".into() };
        let debugging = |role: Option<Role>| TaskState {
            branch_todo: Some("a_branch_01".into()),
            branch_todo_role: role,
            ..state(Phase::Debugging, 'a', 1)
        };
        let branch = |role: Option<Role>| TaskState { parent: Some("a".into()), role, ..state(Phase::Failed, 'a', 1) };
        let decide_with = |states: Vec<(&str, TaskState)>, unavailable: Role| {
            let desired = Desired {
                workflows: vec![DesiredWorkflow { id: "wf".into(), tasks: vec![task("a", 'a', &[])] }],
                unavailable: [(unavailable, missing.clone())].into(),
                ..Default::default()
            };
            let mut actual = Actual::default();
            for (id, s) in states {
                actual.tasks.insert(TaskKey::new("wf", id), s);
            }
            let actions = decide(&desired, &actual, &Context { now: now(), prune: false });
            actions.iter().map(|a| format!("{} {}: {a}", a.key().task, a.name())).collect::<Vec<_>>()
        };
        let held = "a_branch_01 Wait: the debugger agent cannot start: model `cloud` needs its key: CLOUD_KEY is not set in plancd's environment (plancd.yaml models.cloud.api_key_env); set it and reconcile again";
        // (what the records say, whose agent cannot start, what is decided for the branch todo)
        type Records<'a> = Vec<(&'a str, TaskState)>;
        let rows: [(Records, Role, &str); 6] = [
            (vec![("a", debugging(Some(Role::Debugger)))], Role::Debugger, held),
            (vec![("a", debugging(Some(Role::Debugger)))], Role::Coder, "a_branch_01 Run: run attempt 1: debugging a"),
            (vec![("a", debugging(Some(Role::Debugger))), ("a_branch_01", branch(Some(Role::Debugger)))], Role::Debugger, held),
            (
                vec![("a", debugging(Some(Role::Coder))), ("a_branch_01", branch(Some(Role::Coder)))],
                Role::Debugger,
                "a_branch_01 Run: run attempt 2: debugging a",
            ),
            // Records from before the role was written run as they did.
            (vec![("a", debugging(None))], Role::Debugger, "a_branch_01 Run: run attempt 1: debugging a"),
            (vec![("a", debugging(None)), ("a_branch_01", branch(None))], Role::Debugger, "a_branch_01 Run: run attempt 2: debugging a"),
        ];
        for (i, (states, unavailable, want)) in rows.into_iter().enumerate() {
            let rows = decide_with(states, unavailable);
            assert_eq!(rows[1], want, "row {i}");
            // The parent says what its branch todo waits on.
            let parent =
                if want == held { held.replace("a_branch_01 ", "a ") } else { "a Wait: debugging in branch todo a_branch_01".to_owned() };
            assert_eq!(rows[0], parent, "row {i}");
        }
    }

    fn held(phase: Phase, h: char, attempt: u32, holder: &str, minutes: i64) -> TaskState {
        TaskState {
            holder: Some(holder.into()),
            lease_expires_at: Some(now().checked_add(jiff::SignedDuration::from_mins(minutes)).unwrap()),
            ..state(phase, h, attempt)
        }
    }

    fn run(tasks: Vec<DesiredTask>, states: &[(&str, TaskState)], tweak: impl FnOnce(&mut Actual)) -> Vec<(String, String)> {
        let desired = Desired { workflows: vec![DesiredWorkflow { id: "wf".into(), tasks }], ..Default::default() };
        let mut actual = Actual::default();
        for (id, s) in states {
            actual.tasks.insert(TaskKey::new("wf", id), s.clone());
        }
        tweak(&mut actual);
        decide(&desired, &actual, &Context { now: now(), prune: false })
            .iter()
            .map(|a| (a.key().task.clone(), format!("{}: {a}", a.name())))
            .collect()
    }

    fn table(rows: &[(String, String)]) -> Vec<String> {
        rows.iter().map(|(t, a)| format!("{t} {a}")).collect()
    }

    #[test]
    fn first_run_runs_roots_and_waits_for_the_rest() {
        let rows = run(vec![task("a", 'a', &[]), task("b", 'b', &["a"])], &[], |_| {});
        assert_eq!(table(&rows), ["a Run: run attempt 1", "b Wait: waiting on a: Pending"]);
    }

    #[test]
    fn satisfied_tasks_are_up_to_date_and_unblock_dependents() {
        let rows = run(vec![task("a", 'a', &[]), task("b", 'b', &["a"])], &[("a", state(Phase::Succeeded, 'a', 1))], |_| {});
        assert_eq!(table(&rows), ["a UpToDate: up to date", "b Run: run attempt 1"]);
    }

    #[test]
    fn a_changed_spec_reruns_the_task_and_holds_back_dependents() {
        let rows = run(
            // A's new hash flows into b's (spec hashes include the dependencies' hashes).
            vec![task("a", 'e', &[]), task("b", 'c', &["a"])],
            &[("a", state(Phase::Succeeded, 'a', 1)), ("b", state(Phase::Succeeded, 'b', 1))],
            |_| {},
        );
        assert_eq!(table(&rows), ["a Run: run attempt 2: its spec changed", "b Wait: waiting on a: Succeeded, but it runs again first"]);
    }

    #[test]
    fn a_live_claim_is_waited_for_and_named() {
        let rows = run(vec![task("a", 'a', &[]), task("b", 'b', &["a"])], &[("a", held(Phase::Running, 'a', 2, "h1:1:1:x", 5))], |_| {});
        assert_eq!(rows[0].1, "Wait: Running, attempt 2, held by h1:1:1:x until 2026-06-01T12:05:00Z");
        assert_eq!(rows[1].1, "Wait: waiting on a: Running, attempt 2");
    }

    #[test]
    fn expired_or_dead_claims_are_taken_over() {
        let rows = run(vec![task("a", 'a', &[])], &[("a", held(Phase::Running, 'a', 2, "h1:1:1:x", -1))], |_| {});
        assert_eq!(rows[0].1, "Run: run attempt 3: taking over from h1:1:1:x");
        let rows = run(vec![task("a", 'a', &[])], &[("a", held(Phase::Running, 'a', 2, "h1:1:1:x", 30))], |a| {
            a.dead_holders.insert("h1:1:1:x".into());
        });
        assert_eq!(rows[0].1, "Run: run attempt 3: taking over from h1:1:1:x");
    }

    #[test]
    fn failures_retry_until_max_attempts_then_stay_failed() {
        let rows = run(vec![task("a", 'a', &[])], &[("a", state(Phase::Failed, 'a', 2))], |_| {});
        assert_eq!(rows[0].1, "Run: run attempt 3: attempt 2 of 3 failed; trying again");
        let rows = run(vec![task("a", 'a', &[]), task("b", 'b', &["a"])], &[("a", state(Phase::Failed, 'a', 3))], |_| {});
        assert_eq!(table(&rows), ["a Failed: failed after 3 attempt(s): plancd retry wf/a", "b Wait: waiting on a: Failed, attempt 3"]);
        // A retry moves the base; a changed spec starts a fresh count.
        let retried =
            TaskState { attempts_base: 3, phase: Phase::Pending, reason: Some(Reason::RetryRequested), ..state(Phase::Failed, 'a', 3) };
        assert_eq!(run(vec![task("a", 'a', &[])], &[("a", retried)], |_| {})[0].1, "Run: run attempt 4: a retry was requested");
        let desired =
            Desired { workflows: vec![DesiredWorkflow { id: "wf".into(), tasks: vec![task("a", 'f', &[])] }], ..Default::default() };
        let mut actual = Actual::default();
        actual.tasks.insert(TaskKey::new("wf", "a"), state(Phase::Failed, 'a', 3));
        match &decide(&desired, &actual, &Context { now: now(), prune: false })[0] {
            Action::Run { attempt: 4, attempts_base: 3, .. } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_spent_budget_stops_the_task_until_a_retry_or_a_new_spec() {
        let over = state(Phase::BudgetExceeded, 'a', 1);
        let rows = run(vec![task("a", 'a', &[]), task("b", 'b', &["a"])], &[("a", over.clone())], |_| {});
        assert_eq!(table(&rows), ["a Failed: failed after 1 attempt(s): plancd retry wf/a", "b Wait: waiting on a: BudgetExceeded"]);
        let retried = TaskState { attempts_base: 1, phase: Phase::Pending, reason: Some(Reason::RetryRequested), ..over.clone() };
        assert_eq!(run(vec![task("a", 'a', &[])], &[("a", retried)], |_| {})[0].1, "Run: run attempt 2: a retry was requested");
        assert_eq!(run(vec![task("a", 'b', &[])], &[("a", over)], |_| {})[0].1, "Run: run attempt 2: its spec changed");
    }

    #[test]
    fn approval_gates_the_run_for_the_approved_spec_only() {
        let mut t = task("a", 'a', &[]);
        t.requires_approval = true;
        assert_eq!(run(vec![t.clone()], &[], |_| {})[0].1, "NeedsApproval: needs approval: plancd approve wf/a");
        let approved = TaskState { approved_spec_hash: Some(hash('a')), ..state(Phase::Approved, 'a', 0) };
        assert_eq!(run(vec![t.clone()], &[("a", approved.clone())], |_| {})[0].1, "Run: run attempt 1: approved");
        let mut changed = t;
        changed.spec_hash = hash('b');
        assert_eq!(run(vec![changed], &[("a", approved)], |_| {})[0].0, "a");
    }

    #[test]
    fn escalated_tasks_wait_for_a_person_until_the_spec_changes() {
        assert_eq!(
            run(vec![task("a", 'a', &[])], &[("a", state(Phase::Escalated, 'a', 1))], |_| {})[0].1,
            "Escalated: escalated to a person"
        );
        assert_eq!(
            run(vec![task("a", 'b', &[])], &[("a", state(Phase::Escalated, 'a', 1))], |_| {})[0].1,
            "Run: run attempt 2: its spec changed"
        );
    }

    #[test]
    fn suspended_workflows_run_nothing_but_keep_what_is_done() {
        let rows = run(vec![task("a", 'a', &[]), task("b", 'b', &[])], &[("a", state(Phase::Succeeded, 'a', 1))], |a| {
            a.suspended.insert("wf".into());
        });
        assert_eq!(table(&rows), ["a UpToDate: up to date", "b Suspended: workflow suspended: plancd resume wf"]);
    }

    #[test]
    fn tasks_in_no_plan_are_orphaned_and_pruned_when_asked() {
        let desired =
            Desired { workflows: vec![DesiredWorkflow { id: "wf".into(), tasks: vec![task("a", 'a', &[])] }], ..Default::default() };
        let mut actual = Actual::default();
        actual.tasks.insert(TaskKey::new("wf", "a"), state(Phase::Succeeded, 'a', 1));
        actual.tasks.insert(TaskKey::new("wf", "gone"), state(Phase::Succeeded, '9', 1));
        actual.tasks.insert(TaskKey::new("old", "x"), state(Phase::Orphaned, '8', 1));
        let keep = decide(&desired, &actual, &Context { now: now(), prune: false });
        let names: Vec<String> = keep.iter().map(|a| format!("{} {}", a.key(), a.name())).collect();
        assert_eq!(names, ["wf/a UpToDate", "old/x Orphaned", "wf/gone Orphaned"]);
        // Only the one not yet marked is work: marking it.
        let work: Vec<String> = keep.iter().filter(|a| a.is_work()).map(|a| a.key().to_string()).collect();
        assert_eq!(work, ["wf/gone"]);
        let prune = decide(&desired, &actual, &Context { now: now(), prune: true });
        assert_eq!(prune.iter().filter(|a| a.is_work()).count(), 2);
    }

    fn built_on(s: TaskState, inputs: &[(&str, char)]) -> TaskState {
        TaskState { inputs: Some(inputs.iter().map(|(id, c)| ((*id).to_owned(), c.to_string().repeat(40))).collect()), ..s }
    }

    fn with_result(s: TaskState, c: char) -> TaskState {
        TaskState { result: Some(Oid::from_str(&c.to_string().repeat(40)).unwrap()), ..s }
    }

    #[test]
    fn a_new_result_upstream_reruns_every_dependent_and_says_why() {
        let a = with_result(state(Phase::Succeeded, 'a', 3), '2');
        let tasks = || vec![task("a", 'a', &[]), task("b", 'b', &["a"]), task("c", 'c', &["b"])];
        // b was built on a's first result; a now has another (a retry, a review).
        let b = with_result(built_on(state(Phase::Succeeded, 'b', 1), &[("a", '1')]), '3');
        let c = built_on(state(Phase::Succeeded, 'c', 1), &[("b", '3')]);
        let rows = run(tasks(), &[("a", a.clone()), ("b", b.clone()), ("c", c.clone())], |_| {});
        assert_eq!(
            table(&rows),
            [
                "a UpToDate: up to date",
                "b Run: run attempt 2: a has a new result (attempt 3)",
                "c Wait: waiting on b: Succeeded, but it runs again first"
            ]
        );
        // Built on the current result: satisfied. A record older than recorded inputs counts as such.
        let current = built_on(state(Phase::Succeeded, 'b', 1), &[("a", '2')]);
        assert_eq!(run(tasks(), &[("a", a.clone()), ("b", current)], |_| {})[1].1, "UpToDate: up to date");
        assert_eq!(run(tasks(), &[("a", a.clone()), ("b", state(Phase::Succeeded, 'b', 1))], |_| {})[1].1, "UpToDate: up to date");
        // Escalated or out of attempts on the old result: the new one deserves a fresh start.
        let escalated = built_on(state(Phase::Escalated, 'b', 2), &[("a", '1')]);
        assert_eq!(run(tasks(), &[("a", a.clone()), ("b", escalated)], |_| {})[1].1, "Run: run attempt 3: a has a new result (attempt 3)");
        let failed = built_on(state(Phase::Failed, 'b', 3), &[("a", '1')]);
        match &decide(
            &Desired { workflows: vec![DesiredWorkflow { id: "wf".into(), tasks: tasks() }], ..Default::default() },
            &Actual {
                tasks: [(TaskKey::new("wf", "a"), a.clone()), (TaskKey::new("wf", "b"), failed)].into_iter().collect(),
                ..Actual::default()
            },
            &Context { now: now(), prune: false },
        )[1]
        {
            Action::Run { attempt: 4, attempts_base: 3, .. } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_debugging_task_whose_inputs_changed_runs_again_and_its_branch_closes() {
        let a = with_result(state(Phase::Succeeded, 'a', 2), '2');
        let mut b = built_on(state(Phase::Debugging, 'b', 1), &[("a", '1')]);
        b.branch_todo = Some("b_branch_01".into());
        let branch = TaskState { parent: Some("b".into()), ..state(Phase::Failed, 'b', 1) };
        let tasks = vec![task("a", 'a', &[]), task("b", 'b', &["a"])];
        let rows = run(tasks, &[("a", a), ("b", b), ("b_branch_01", branch)], |_| {});
        assert_eq!(
            table(&rows),
            [
                "a UpToDate: up to date",
                "b Run: run attempt 2: a has a new result (attempt 2)",
                "b_branch_01 BranchClosed: branch todo closed (Failed)"
            ]
        );
    }
}
