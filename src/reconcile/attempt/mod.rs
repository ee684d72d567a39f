//! One attempt at a task or at a branch todo. A task's attempt: claim -> adopt a result an
//! interrupted run already published, or: workspace -> agent -> checks -> pinned files
//! restored -> acceptance tests -> publish -> `Succeeded` (the commit point); when the tests
//! fail, triage opens a branch todo (the task goes `Debugging`) or the task is `Failed`. A
//! branch todo's attempt works on the failing work and, when the task's tests pass, publishes
//! the task's result; otherwise it opens a deeper branch or escalates the task to a person.
//! Logs go into the refs of the task or branch todo that ran.

mod branch;
mod steps;
mod task;

use std::sync::Arc;

use git2::Oid;
use jiff::Timestamp;
use plancd_sandbox::Sandbox;
use tokio::sync::watch;

use super::snapshot::Snapshot;
use super::workspace;
use crate::publish::{self, Provenance, Published};
use crate::spec::Role;
use crate::state::{BranchInfo, Phase, ResultRef, StateError, Store, TaskKey, TaskStatus, TestSummary};
use crate::triage::Triage;

/// What every attempt of one pass shares.
pub struct PassContext {
    /// The state store.
    pub store: Arc<Store>,
    /// Where agents and tests run.
    pub sandbox: Arc<dyn Sandbox>,
    /// The desired state.
    pub snapshot: Arc<Snapshot>,
    /// This process as a claim holder.
    pub holder: String,
    /// Ties the pass's writes together.
    pub correlation_id: String,
    /// Flips to true when the pass must stop (Ctrl-C, SIGTERM).
    pub cancel: watch::Receiver<bool>,
    /// Upstream results' own changes, shared by the pass's attempts.
    pub changes: workspace::ChangeCache,
    /// Classifies failures (built-in rules plus the configuration's patterns).
    pub triage: Triage,
    /// The remote and the forge that results go to.
    pub upstream: super::Upstream,
    /// Progress, for displays and metrics.
    pub events: Option<super::EventSink>,
    /// Model access shared by the pass's model agents: keys, response cache, spending.
    pub models: Arc<crate::agent::Models>,
}

impl PassContext {
    /// Reports `event` to whoever listens.
    pub fn emit(&self, event: super::Event) {
        if let Some(sink) = &self.events {
            sink(&event);
        }
    }
}

/// What the executor asks for.
#[derive(Debug, Clone)]
pub struct AttemptPlan {
    /// The task (or branch todo).
    pub key: TaskKey,
    /// The attempt's number.
    pub attempt: u32,
    /// See [`TaskStatus::attempts_base`].
    pub attempts_base: u32,
    /// The tip the claim replaces.
    pub expected: Option<Oid>,
    /// A dead or expired holder being replaced.
    pub takeover: Option<String>,
    /// Every upstream task's result, dependencies first (of the parent, for a branch todo).
    pub upstream: Vec<(String, Oid)>,
    /// The direct dependencies' results (of the parent, for a branch todo).
    pub direct: Vec<(String, Oid)>,
    /// For a branch todo: its parent and what the branch is for.
    pub branch: Option<BranchPlan>,
}

/// A branch todo's parent and purpose.
#[derive(Debug, Clone)]
pub struct BranchPlan {
    /// The task being debugged.
    pub parent: TaskKey,
    /// What the parent's status says of the branch.
    pub info: BranchInfo,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    /// Accepted and published.
    Succeeded {
        /// The result commit.
        commit: Oid,
        /// Its tag.
        tag: String,
    },
    /// A result published by an earlier, interrupted run was recorded.
    Adopted {
        /// The result commit.
        commit: Oid,
        /// Its tag.
        tag: String,
    },
    /// The work did not pass, and a branch todo now debugs it.
    Debugging {
        /// The branch todo opened.
        branch: String,
        /// The failure's type.
        failure_type: String,
        /// What failed.
        message: String,
    },
    /// The work did not pass.
    Failed {
        /// The failure's type.
        failure_type: String,
        /// What failed.
        message: String,
    },
    /// The task was handed to a person.
    Escalated {
        /// Why.
        message: String,
    },
    /// Another holder moved the ref first; nothing was published by this attempt.
    LostClaim,
    /// Stopped by a signal; the claim was released.
    Cancelled,
    /// The sandbox failed; the claim was released and the attempt does not count.
    Infrastructure(String),
}

/// Errors that end the pass (git failures), as opposed to outcomes of the attempt.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// Reading or writing state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Git failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// Runs one attempt end to end.
pub async fn run(cx: Arc<PassContext>, plan: AttemptPlan) -> Result<AttemptEnd, AttemptError> {
    match plan.branch.clone() {
        Some(branch) => branch::run(cx, plan, branch).await,
        None => task::run(cx, plan).await,
    }
}

/// Claims `key` by appending a `Running` record built by `shape` from the current one, if the
/// tip is still `expected`. `None` when another writer got there first.
fn claim(
    cx: &PassContext,
    plan: &AttemptPlan,
    timeout_seconds: u32,
    shape: impl FnOnce(&mut TaskStatus),
) -> Result<Option<(Oid, TaskStatus)>, AttemptError> {
    let now = Timestamp::now();
    let previous = cx.store.status(&plan.key)?;
    if previous.as_ref().map(|(tip, _)| *tip) != plan.expected {
        return Ok(None);
    }
    let mut s = match previous {
        Some((_, prev)) => prev.next(Phase::Running, now),
        None => TaskStatus::new(&plan.key.workflow, &plan.key.task, Phase::Running, now),
    };
    s.attempt = plan.attempt;
    s.attempts_base = plan.attempts_base;
    s.holder = Some(cx.holder.clone());
    let lease = jiff::SignedDuration::from_secs(i64::from(timeout_seconds) + i64::from(cx.snapshot.config.lease_grace_seconds));
    s.lease_expires_at = now.checked_add(lease).ok();
    s.started_at = Some(now);
    s.finished_at = None;
    s.plan_commit = Some(cx.snapshot.plan_commit.to_string());
    s.reason = Some(if plan.takeover.is_some() { "TakenOver" } else { "Claimed" }.into());
    s.message = plan.takeover.as_ref().map(|h| format!("claim taken over from {h}")).unwrap_or_default();
    shape(&mut s);
    match cx.store.append(&plan.key, plan.expected, &s, &[]) {
        Ok(tip) => Ok(Some((tip, s))),
        Err(StateError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// What passed, ready to publish.
struct Accepted {
    /// The result's tree and the commit it goes on.
    tree: Oid,
    base: Oid,
    /// The files the task's work changed.
    files: Vec<String>,
    tests: TestSummary,
    prov: Provenance,
    title: String,
    body: String,
}

/// Publishes an accepted result of `result_key`. The logs go into `owner`'s ref first (the
/// task's own, or the branch todo's), so that a crash between publishing and the commit point
/// loses none: the run that adopts the result finds them. That write also proves the claim is
/// still `owner_tip`'s right before publishing. The result then goes upstream (remote and pull
/// request). Returns the owner's new tip, or how the attempt ended when the claim was lost or the
/// upstream failed.
async fn verify_and_publish(
    cx: &PassContext,
    owner: (&TaskKey, Oid, &TaskStatus),
    logs: &steps::Logs,
    result_key: &TaskKey,
    accepted_before: u32,
    accepted: &Accepted,
) -> Result<Result<(Oid, Published), AttemptEnd>, AttemptError> {
    let (owner_key, owner_tip, owner_claim) = owner;
    let commit = publish::result_commit(&cx.store.repo(), accepted.base, accepted.tree, &accepted.title, &accepted.body, &accepted.prov)?;
    let mut verified = owner_claim.clone();
    verified.updated_at = Timestamp::now();
    verified.reason = Some("Verified".into());
    verified.message = format!("{} acceptance test(s) passed; publishing {}", accepted.tests.passed, &commit.to_string()[..12]);
    verified.tests = Some(accepted.tests.clone());
    verified.add_cost(logs.cost);
    let tip = match cx.store.append(owner_key, Some(owner_tip), &verified, &logs.files) {
        Ok(tip) => tip,
        Err(StateError::Conflict { .. }) => return Ok(Err(AttemptEnd::LostClaim)),
        Err(e) => return Err(e.into()),
    };
    let published = publish::publish(&cx.store.repo(), result_key, commit, accepted_before)?;
    Ok(upstream(cx, (owner_key, tip, &verified), result_key, published).await?.map(|p| (tip, p)))
}

/// Sends a published result upstream (remote, pull request) and notes the pull request. When
/// that fails, the owner's claim is released: the attempt does not count, and the next pass
/// adopts the published result and tries again.
async fn upstream(
    cx: &PassContext,
    (owner_key, owner_tip, owner_claim): (&TaskKey, Oid, &TaskStatus),
    result_key: &TaskKey,
    mut published: Published,
) -> Result<Result<Published, AttemptEnd>, AttemptError> {
    match cx.upstream.result_published(cx, result_key, &published).await {
        Ok(pull_request) => {
            published.pull_request = pull_request;
            Ok(Ok(published))
        }
        Err(e) => {
            let stop = steps::Stop::Infrastructure(format!("publishing {result_key} upstream: {e}"));
            task::released(cx, owner_key, owner_tip, owner_claim, stop, &steps::Logs::new(owner_claim.attempt)).map(Err)
        }
    }
}

/// The `Succeeded` record of a task whose result is `published`.
fn succeeded(prev: &TaskStatus, published: &Published, files: Vec<String>, tests: Option<TestSummary>, message: String) -> TaskStatus {
    let now = Timestamp::now();
    let mut s = prev.next(Phase::Succeeded, now);
    s.accepted = published.n;
    s.reason = Some("Succeeded".into());
    s.message = message;
    s.tests = tests;
    s.finished_at = Some(now);
    s.result = Some(ResultRef {
        commit: published.commit.to_string(),
        branch: published.branch.clone(),
        tag: Some(published.tag.clone()),
        files,
        pull_request: published.pull_request.clone(),
    });
    s
}

/// Appends `status` with `logs` and the attempt's work tree, answering `LostClaim` on a
/// conflict. What the logs say the attempt's model calls cost is added to the status.
fn finish_with(
    cx: &PassContext,
    key: &TaskKey,
    tip: Oid,
    status: &TaskStatus,
    logs: &steps::Logs,
    work: Option<Oid>,
    end: AttemptEnd,
) -> Result<AttemptEnd, AttemptError> {
    let trees: Vec<(String, Oid)> = work.map(|w| (format!("{}/work", logs.dir()), w)).into_iter().collect();
    let mut status = status.clone();
    status.add_cost(logs.cost);
    match cx.store.append_with_trees(key, Some(tip), &status, &logs.files, &trees) {
        Ok(_) => Ok(end),
        Err(StateError::Conflict { .. }) => Ok(AttemptEnd::LostClaim),
        Err(e) => Err(e.into()),
    }
}

/// The role a branch todo for `failure_type` goes to: the task's `failure_routing`, else the
/// triage's choice; a role without an agent in plancd.yaml gives way to the debugger, then to the
/// role that did the work.
pub(super) fn route(cx: &PassContext, task: &crate::spec::Task, failure_type: &str, suggested: Role) -> Role {
    let wanted = task.failure_routing.get(failure_type).copied().unwrap_or(suggested);
    let has_agent = |r: Role| cx.snapshot.config.roles.get(&r).is_some_and(|c| c.command.is_some() || c.model.is_some());
    [wanted, Role::Debugger, task.agent_role].into_iter().find(|r| has_agent(*r)).unwrap_or(task.agent_role)
}

/// A branch todo for `task`, the next of `parent_status`'s, starting from `work`.
fn new_branch(
    cx: &PassContext,
    task: &crate::spec::Task,
    parent_status: &TaskStatus,
    failure: &steps::Failure,
    classification: &crate::triage::Classification,
    work: Oid,
    (depth, parent_attempt): (u32, u32),
) -> BranchInfo {
    let role = route(cx, task, &classification.failure_type, classification.target_agent);
    BranchInfo {
        id: format!("{}_branch_{:02}", task.id, parent_status.branch_todos.len() + 1),
        parent_id: task.id.clone(),
        parent_attempt,
        branch_reason: branch_reason(&classification.failure_type).into(),
        failure_type: classification.failure_type.clone(),
        depth,
        role: role.to_string(),
        debug_instructions: format!("{}\n{}", failure.message, classification.instructions(&failure.output)),
        max_debug_attempts: task.max_debug_attempts,
        base_tree: work.to_string(),
        missing: classification.missing.clone(),
    }
}

/// The `Debugging` record of a task whose branch todo `info` is now at work.
fn debugging(prev: &TaskStatus, info: &BranchInfo, message: String) -> TaskStatus {
    let now = Timestamp::now();
    let mut s = prev.next(Phase::Debugging, now);
    s.reason = Some("BranchTodoOpened".into());
    s.failure_type = Some(info.failure_type.clone());
    s.message = message;
    s.finished_at = Some(now);
    s.branch_todos.push(info.id.clone());
    s.open_branch = Some(info.clone());
    s
}

/// The seed's `branch_reason` for a failure type (its finer types folded into `test_failure`).
fn branch_reason(failure_type: &str) -> &'static str {
    match failure_type {
        "spec_mismatch" => "spec_mismatch",
        "timeout" => "timeout",
        "implementation_bug" => "implementation_bug",
        "missing_dependency" => "missing_dependency",
        "flaky_test" => "flaky_test",
        _ => "test_failure",
    }
}

/// Interface and method names of the task's contract: a missing one is a spec mismatch.
fn contract_names(input: &[plancd_sandbox::FileEntry], contract: Option<&String>) -> Vec<String> {
    let Some(path) = contract else { return Vec::new() };
    let Some(file) = input.iter().find(|f| &f.path == path) else { return Vec::new() };
    let Ok(doc) = crate::spec::Document::parse(&file.data, crate::spec::Format::from_path(path), &Default::default()) else {
        return Vec::new();
    };
    let Ok(contract) = serde_json::from_value::<crate::spec::Contract>(doc.value) else { return Vec::new() };
    contract.interfaces.iter().flat_map(|i| std::iter::once(i.name.clone()).chain(i.methods.iter().map(|m| m.name.clone()))).collect()
}
