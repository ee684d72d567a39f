//! Beyond the local repository: a published result's branch and tag pushed to the remote and its
//! pull request opened or brought up to date (before the task's `Succeeded` record, so that a
//! re-run adopts both); at a pass's start and end, the workflows' commit statuses, the task refs
//! pushed in one batch, and an issue for each escalated task.

pub mod facts;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, Env};
use crate::forge::{self, CommitStatus, Forge, ForgeError, IssueSpec, NoForge, PullRequestSpec, StatusState};
use crate::publish::Published;
use crate::reconcile::UpstreamPart;
use crate::reconcile::{Action, AttemptEnd, PassContext, PassReport, Snapshot};
use crate::remote::{RefUpdate, Remote, RemoteError};
use crate::state::{StateError, TaskKey};

/// What became of a published result's pull request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullRequest {
    /// Its address, once open.
    pub url: Option<String>,
    /// Why it is not open yet (the forge's cap, or a failure): a later pass opens it.
    pub pending: Option<String>,
}

/// The ref prefixes pushed at the end of a pass: chains that only grow, fast-forward only.
pub const STATE_PREFIXES: [&str; 2] = ["refs/ai/tasks/", "refs/ai/workflows/"];

/// Why publishing beyond the repository failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The remote could not be reached, or git failed.
    #[error("remote: {0}")]
    Remote(#[from] RemoteError),
    /// The remote refused refs.
    #[error("the remote refused {}", .0.iter().map(|(r, why)| format!("{r} ({why})")).collect::<Vec<_>>().join(", "))]
    Rejected(Vec<(String, String)>),
    /// The forge failed.
    #[error("forge: {0}")]
    Forge(#[from] ForgeError),
    /// The refs could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// Git failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

impl UpstreamError {
    /// The outside part at fault, if one is.
    pub fn part(&self) -> Option<UpstreamPart> {
        match self {
            UpstreamError::Remote(_) | UpstreamError::Rejected(_) => Some(UpstreamPart::Remote),
            UpstreamError::Forge(_) => Some(UpstreamPart::Forge),
            UpstreamError::State(_) | UpstreamError::Git(_) => None,
        }
    }
}

/// Tells the pass's listeners (metrics) that an outside part failed.
fn count_failure(cx: &PassContext, e: &UpstreamError) {
    if let Some(part) = e.part() {
        cx.emit(crate::reconcile::Event::UpstreamFailed { part });
    }
}

/// The remote (if the repository has the one plancd.yaml names) and the forge.
pub struct Upstream {
    remote: Option<Remote>,
    forge: Arc<dyn Forge>,
    labels: Vec<String>,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream { remote: None, forge: Arc::new(NoForge), labels: Vec::new() }
    }
}

impl Upstream {
    /// The forge `config` names, and the repository's remote `config.remote` (with the forge's
    /// token for https), if it has one.
    pub async fn open(repo: &Path, config: &Config, env: &Env) -> Result<Upstream, UpstreamError> {
        let forge: Arc<dyn Forge> = match &config.forge.github {
            Some(github) => Arc::new(forge::github::GitHub::connect(github, env).await?),
            None => Arc::new(NoForge),
        };
        let token = forge.git_token().await?;
        let remote = Remote::open(repo, &config.remote, token)?;
        let labels = config.forge.github.as_ref().map(|g| g.labels.clone()).unwrap_or_default();
        Ok(Upstream { remote, forge, labels })
    }

    /// Built from parts.
    pub fn new(remote: Option<Remote>, forge: Arc<dyn Forge>, labels: Vec<String>) -> Upstream {
        Upstream { remote, forge, labels }
    }

    /// The remote, if any.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// The forge.
    pub fn forge(&self) -> &Arc<dyn Forge> {
        &self.forge
    }

    /// After `key`'s result got its branch and tag: both go to the remote in one atomic push (the
    /// branch by a lease on what the remote holds), then the pull request from that branch to the
    /// watched branch is opened or updated, with the task's sticky comment. A push that fails is
    /// an error (the attempt gives its claim back); a forge that does not take the pull request
    /// (its cap, a failure) leaves the result published and its pull request pending.
    pub async fn result_published(&self, cx: &PassContext, key: &TaskKey, published: &Published) -> Result<PullRequest, UpstreamError> {
        let result = self.push_result(cx, key, published).await;
        if let Err(e) = &result {
            count_failure(cx, e);
        }
        result
    }

    async fn push_result(&self, cx: &PassContext, key: &TaskKey, published: &Published) -> Result<PullRequest, UpstreamError> {
        let Some(remote) = &self.remote else { return Ok(PullRequest::default()) };
        let branch = format!("refs/heads/{}", published.branch);
        let tag = format!("refs/tags/{}", published.tag);
        let tag_object = cx.store.repo().find_reference(&tag)?.target().ok_or_else(|| git2::Error::from_str("the tag is symbolic"))?;
        let remote_branch = remote.ls_remote(&[&branch]).await?.get(&branch).copied();
        let updates = [RefUpdate::lease(branch, published.commit, remote_branch), RefUpdate::fast_forward(tag, tag_object)];
        let report = remote.push(&updates, true).await?;
        let rejected: Vec<(String, String)> = report.rejected().into_iter().map(|(r, why)| (r.to_owned(), why.to_owned())).collect();
        if !rejected.is_empty() {
            return Err(UpstreamError::Rejected(rejected));
        }
        match self.pull_request(cx, key, published).await {
            Ok(url) => Ok(PullRequest { url, pending: None }),
            Err(UpstreamError::Forge(e)) => {
                cx.emit(crate::reconcile::Event::UpstreamFailed { part: UpstreamPart::Forge });
                tracing::warn!(task = %key, error = %e, "the result is published; its pull request waits for the forge");
                Ok(PullRequest { url: None, pending: Some(e.to_string()) })
            }
            Err(e) => Err(e),
        }
    }

    async fn pull_request(&self, cx: &PassContext, key: &TaskKey, published: &Published) -> Result<Option<String>, UpstreamError> {
        let facts = facts::pr_facts(&cx.store, &cx.snapshot, key, published)?;
        let spec = PullRequestSpec {
            head: published.branch.clone(),
            base: cx.snapshot.branch.clone(),
            title: forge::body::title(&facts),
            body: forge::body::render(&facts),
            labels: self.labels.clone(),
        };
        let Some(pr) = self.forge.ensure_pull_request(&spec).await? else { return Ok(None) };
        let note = format!(
            "**plancd** · `{key}` · attempt {} accepted: tag `{}`, commit `{}`, {} of {} acceptance test(s) passed.",
            facts.attempt,
            published.tag,
            facts::short(published.commit),
            facts.tests.iter().filter(|t| t.passed).count(),
            facts.tests.len()
        );
        self.forge.upsert_comment(pr.number, &forge::marker(&format!("task:{key}")), &note).await?;
        Ok(Some(pr.url))
    }

    /// At a pass's start: `pending` on the plan commit for each workflow with work to do.
    pub async fn pass_started(&self, snapshot: &Snapshot, actions: &[Action]) -> Result<(), UpstreamError> {
        let busy: Vec<&str> = snapshot
            .plans
            .iter()
            .map(|p| p.list.todo_list_id.as_str())
            .filter(|wf| actions.iter().any(|a| a.key().workflow == *wf && matches!(a, Action::Run { .. })))
            .collect();
        let wanted = busy
            .into_iter()
            .map(|wf| CommitStatus { context: context(wf), state: StatusState::Pending, description: "reconciling".into() })
            .collect();
        self.set_statuses(&snapshot.plan_commit.to_string(), wanted).await
    }

    /// At a pass's end: the task and workflow refs pushed in one batch (when the remote is
    /// shared they are there already: only the model response cache goes), an issue for each
    /// escalated task, and each workflow's commit status. Returns what went wrong, in words;
    /// each step runs whatever the others did.
    pub async fn pass_ended(&self, cx: &PassContext, report: &PassReport) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(remote) = &self.remote {
            let prefixes: &[&str] = if cx.store.is_shared() { &[crate::agent::model::cache::CACHE_REFS] } else { &STATE_PREFIXES };
            match remote.push_prefixes(prefixes).await {
                Ok(pushed) => {
                    // A cache entry another controller stored first is as good as this one.
                    let refused: Vec<String> = pushed
                        .rejected()
                        .into_iter()
                        .filter(|(r, _)| !r.starts_with(crate::agent::model::cache::CACHE_REFS))
                        .map(|(r, why)| format!("{r} ({why})"))
                        .collect();
                    if !refused.is_empty() {
                        cx.emit(crate::reconcile::Event::UpstreamFailed { part: UpstreamPart::Remote });
                        problems.push(format!("the remote refused {}", refused.join(", ")));
                    }
                }
                Err(e) => {
                    cx.emit(crate::reconcile::Event::UpstreamFailed { part: UpstreamPart::Remote });
                    problems.push(format!("pushing task refs: {e}"));
                }
            }
        }
        for action in report.actions.iter().filter(|a| matches!(a, Action::Escalated { .. })) {
            if let Err(e) = self.escalated(cx, action.key()).await {
                count_failure(cx, &e);
                problems.push(format!("reporting the escalation of {}: {e}", action.key()));
            }
        }
        for key in succeeded(cx, report) {
            if let Err(e) = self.resolved(cx, &key).await {
                count_failure(cx, &e);
                problems.push(format!("closing the escalation issue of {key}: {e}"));
            }
        }
        let wanted = cx
            .snapshot
            .plans
            .iter()
            .map(|p| final_status(&p.list.todo_list_id, report))
            .chain(report.stalled.iter().filter_map(stalled_status))
            .collect();
        if let Err(e) = self.set_statuses(&cx.snapshot.plan_commit.to_string(), wanted).await {
            count_failure(cx, &e);
            problems.push(format!("setting commit statuses: {e}"));
        }
        problems
    }

    async fn escalated(&self, cx: &PassContext, key: &TaskKey) -> Result<(), UpstreamError> {
        if self.forge.name() == "none" {
            return Ok(());
        }
        let Some((_, status)) = cx.store.status(key)? else { return Ok(()) };
        let body = facts::escalation_body(&cx.store, &cx.snapshot, key, &status)?;
        let title = cx.snapshot.task(key).map_or_else(|| key.task.clone(), |t| t.title.clone());
        let labels = if self.labels.is_empty() { vec!["plancd".to_owned()] } else { self.labels.clone() };
        let spec = IssueSpec {
            marker: forge::marker(&format!("escalation:{key}")),
            title: format!("plancd: {key} needs a person: {title}"),
            body,
            labels,
        };
        self.forge.ensure_issue(&spec).await?;
        Ok(())
    }

    /// After `key` succeeded: its escalation issue, if one is open, says so and is closed.
    async fn resolved(&self, cx: &PassContext, key: &TaskKey) -> Result<(), UpstreamError> {
        if self.forge.name() == "none" {
            return Ok(());
        }
        if !escalated_since_last_success(&cx.store, key)? {
            return Ok(());
        }
        let Some((_, status)) = cx.store.status(key)? else { return Ok(()) };
        let result = status.result.as_ref();
        let mut comment = format!("**plancd** · `{key}` succeeded (attempt {})", status.attempt);
        if let Some(tag) = result.and_then(|r| r.tag.as_ref()) {
            comment.push_str(&format!(": tag `{tag}`"));
        }
        if let Some(pr) = result.and_then(|r| r.pull_request.as_ref()) {
            comment.push_str(&format!(", pull request {pr}"));
        }
        comment.push_str(". Closing this issue.");
        self.forge.close_issue(&forge::marker(&format!("escalation:{key}")), &comment).await?;
        Ok(())
    }

    /// Sets the statuses in `wanted` that the commit does not already carry.
    async fn set_statuses(&self, sha: &str, wanted: Vec<CommitStatus>) -> Result<(), UpstreamError> {
        if wanted.is_empty() || self.forge.name() == "none" {
            return Ok(());
        }
        let current: BTreeMap<String, CommitStatus> = self.forge.statuses(sha).await?.into_iter().map(|s| (s.context.clone(), s)).collect();
        for status in wanted {
            if current.get(&status.context) != Some(&status) {
                self.forge.set_status(sha, &status).await?;
            }
        }
        Ok(())
    }
}

/// The tasks whose attempt (or branch todo) succeeded in this pass and that are satisfied at
/// its end: the ones whose escalation issue, if any, is resolved.
fn succeeded(cx: &PassContext, report: &PassReport) -> Vec<TaskKey> {
    let mut keys: Vec<TaskKey> = report
        .attempts
        .iter()
        .filter(|(_, _, end)| matches!(end, AttemptEnd::Succeeded { .. } | AttemptEnd::Adopted { .. }))
        .map(|(key, _, _)| match cx.store.status(key) {
            Ok(Some((_, s))) => s.branch.map_or_else(|| key.clone(), |b| TaskKey::new(&key.workflow, &b.parent_id)),
            _ => key.clone(),
        })
        .filter(|key| report.actions.iter().any(|a| matches!(a, Action::UpToDate { key: k } if k == key)))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Whether `key`'s chain, below its tip, has an `Escalated` record after its previous
/// `Succeeded` one: only then can an escalation issue be open (read from git, not the forge).
fn escalated_since_last_success(store: &crate::state::Store, key: &TaskKey) -> Result<bool, UpstreamError> {
    let repo = store.repo();
    let Some(tip) = repo.find_reference(&key.ref_name()).ok().and_then(|r| r.target()) else { return Ok(false) };
    let mut next = repo.find_commit(tip)?.parent_id(0).ok();
    for _ in 0..facts::HISTORY {
        let Some(oid) = next else { break };
        let commit = repo.find_commit(oid)?;
        match crate::state::TaskState::from_message(oid, &String::from_utf8_lossy(commit.message_bytes())).map(|s| s.phase) {
            Some(crate::state::Phase::Escalated) => return Ok(true),
            Some(crate::state::Phase::Succeeded) => return Ok(false),
            _ => next = commit.parent_id(0).ok(),
        }
    }
    Ok(false)
}

/// `plancd/<workflow>`.
pub fn context(workflow: &str) -> String {
    format!("plancd/{workflow}")
}

/// A stalled workflow's status: a failure that says why and where, as far as 140 characters go
/// (the rest is in `plancd status` and the job's log).
pub fn stalled_status(stalled: &crate::reconcile::StalledWorkflow) -> Option<CommitStatus> {
    let workflow = stalled.plan.workflow.as_deref()?;
    let first = stalled.plan.diagnostics.iter().find(|d| d.is_error()).map(|d| format!("; {}:{}: {}", d.file, d.line, d.message));
    let text = format!("Stalled ({}): {} error(s){}", stalled.reason, stalled.plan.errors(), first.unwrap_or_default());
    let description = match text.char_indices().nth(139) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    };
    Some(CommitStatus { context: context(workflow), state: StatusState::Failure, description })
}

/// A workflow's status once the pass is over.
fn final_status(workflow: &str, report: &PassReport) -> CommitStatus {
    let mine: Vec<&Action> = report
        .actions
        .iter()
        .filter(|a| a.key().workflow == workflow && !matches!(a, Action::Orphaned { .. } | Action::BranchClosed { .. }))
        .collect();
    let count = |f: fn(&Action) -> bool| mine.iter().filter(|a| f(a)).count();
    let done = count(|a| matches!(a, Action::UpToDate { .. }));
    let failed = count(|a| matches!(a, Action::Failed { .. } | Action::Escalated { .. }));
    let approval = count(|a| matches!(a, Action::NeedsApproval { .. }));
    let mut description = format!("{done}/{} tasks satisfied", mine.len());
    if failed > 0 {
        description.push_str(&format!(", {failed} failed or escalated"));
    }
    if approval > 0 {
        description.push_str(&format!(", {approval} waiting for approval"));
    }
    let state = if failed > 0 {
        StatusState::Failure
    } else if report.infrastructure.is_some() || report.cancelled {
        StatusState::Error
    } else if done + approval == mine.len() {
        StatusState::Success
    } else {
        StatusState::Pending
    };
    CommitStatus { context: context(workflow), state, description }
}
