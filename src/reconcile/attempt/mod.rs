//! One attempt at a task or at a branch todo, performing what the [`lifecycle`] decides: claim ->
//! (a takeover of a verified attempt goes straight to publishing) -> workspace -> agent ->
//! checks -> pinned files restored -> acceptance tests -> `Verified` -> publish -> `Succeeded`
//! (the commit point); when the work fails, the lifecycle opens a branch todo, fails the
//! attempt, or escalates the task. A branch todo's attempt works on its parent's failing work and
//! publishes the parent's result when the parent's tests pass. Logs go into the refs of the task
//! or branch todo that ran.

mod measure;
mod steps;
mod work;

use std::collections::BTreeMap;
use std::sync::Arc;

use git2::Oid;
use jiff::Timestamp;
use plancd_sandbox::Sandbox;
use tokio::sync::watch;
use tracing::Instrument;

use super::lifecycle::{self, Candidate, Claim, Event, Next, Publication, Routing, Rules, Step, Subject, Whom};
use super::snapshot::Snapshot;
use super::workspace;
use crate::live::{LiveAttempt, Step as LiveStep};
use crate::publish::{self, Provenance};
use crate::spec::{Role, Task};
use crate::state::{BranchInfo, FailureType, Phase, Reason, StateError, Store, TaskKey, TaskStatus};
use crate::triage::Triage;
use steps::{Logs, Stop};
use work::Verdict;

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
    /// Built environments, shared by the pass's attempts (and, on disk, by later passes).
    pub environments: Arc<super::environment::Environments>,
}

impl PassContext {
    /// Reports `event` to whoever listens.
    pub fn emit(&self, event: super::Event) {
        if let Some(sink) = &self.events {
            sink(&event);
        }
    }

    /// The lifecycle's rules for `task`.
    fn rules(&self, key: &TaskKey, task: &Task) -> Rules {
        let config = &self.snapshot.config;
        Rules {
            spec_hash: self.snapshot.hashes[key].clone(),
            max_attempts: task.max_attempts,
            max_debug_attempts: task.max_debug_attempts,
            max_branch_depth: config.max_branch_depth,
            outputs: task.outputs.clone(),
            tests: task.acceptance_criteria.tests.len(),
            routing: Routing {
                task_role: Some(task.agent_role),
                routes: task.failure_routing.clone(),
                available: config.roles.iter().filter(|(_, c)| c.command.is_some() || c.model.is_some()).map(|(r, _)| *r).collect(),
            },
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
    /// A result this same attempt verified and published before an interruption was recorded.
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
        failure_type: FailureType,
        /// What failed.
        message: String,
    },
    /// The work did not pass.
    Failed {
        /// The failure's type.
        failure_type: FailureType,
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
    /// Something outside the work failed (the sandbox, the model API, git, the remote); the claim
    /// was released and the attempt does not count.
    Infrastructure(String),
}

impl AttemptEnd {
    /// How it ended, as a metric label and a log field.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptEnd::Succeeded { .. } => "succeeded",
            AttemptEnd::Adopted { .. } => "adopted",
            AttemptEnd::Debugging { .. } => "debugging",
            AttemptEnd::Failed { .. } => "failed",
            AttemptEnd::Escalated { .. } => "escalated",
            AttemptEnd::LostClaim => "lost_claim",
            AttemptEnd::Cancelled => "cancelled",
            AttemptEnd::Infrastructure(_) => "infrastructure",
        }
    }
}

/// Errors that end the pass (the state cannot be read or written), as opposed to outcomes of the
/// attempt.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// Reading or writing state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Git failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// The lifecycle refused an event: a bug, reported rather than written.
    #[error("{key}: {refusal}")]
    Lifecycle {
        /// The task.
        key: TaskKey,
        /// What was refused.
        refusal: lifecycle::Refusal,
    },
}

/// Runs one attempt end to end.
pub async fn run(cx: Arc<PassContext>, plan: AttemptPlan) -> Result<AttemptEnd, AttemptError> {
    let task_key = plan.branch.as_ref().map_or_else(|| plan.key.clone(), |b| b.parent.clone());
    let task = cx.snapshot.task(&task_key).expect("the executor only plans tasks of the snapshot").clone();
    let rules = cx.rules(&task_key, &task);
    let span = tracing::info_span!("attempt", workflow = %plan.key.workflow, task = %plan.key.task, attempt = plan.attempt);
    let mut attempt = Attempt { cx, plan, task_key, task, rules, own: None, live: None };
    let end = attempt.run().instrument(span).await;
    if let Some(live) = &attempt.live {
        live.finish();
    }
    end
}

/// One attempt under way: the records it continues.
struct Attempt {
    cx: Arc<PassContext>,
    plan: AttemptPlan,
    /// The task whose result is at stake (the parent, for a branch todo).
    task_key: TaskKey,
    task: Task,
    rules: Rules,
    /// The runner's own chain: its tip and record, once claimed.
    own: Option<(Oid, TaskStatus)>,
    /// Its live output, while it works.
    live: Option<Arc<LiveAttempt>>,
}

/// The parent's record, when it still waits on the branch todo.
type Parent = Option<(Oid, TaskStatus)>;

impl Attempt {
    async fn run(&mut self) -> Result<AttemptEnd, AttemptError> {
        // The claim replaces exactly the tip decide saw.
        let previous = self.cx.store.status(&self.plan.key)?;
        if previous.as_ref().map(|(tip, _)| *tip) != self.plan.expected {
            return Ok(AttemptEnd::LostClaim);
        }
        // A verified candidate an interrupted attempt left can be published only if its objects
        // are here (another controller's clone may have made it).
        let candidate = previous.as_ref().and_then(|(_, s)| s.verified.as_ref()).and_then(|v| Oid::from_str(&v.commit).ok());
        let candidate_present = candidate.is_some_and(|c| self.cx.store.repo().find_commit(c).is_ok());
        let claim = Event::Claim(Claim {
            key: self.plan.key.clone(),
            attempt: self.plan.attempt,
            attempts_base: self.plan.attempts_base,
            holder: self.cx.holder.clone(),
            lease_expires_at: self.lease(),
            takeover: self.plan.takeover.clone(),
            inputs: inputs_of(&self.plan.direct),
            plan_commit: self.cx.snapshot.plan_commit.to_string(),
            role: self.plan.branch.as_ref().map_or(self.task.agent_role, |b| role_of(&b.info)),
            candidate_present,
        });
        self.own = previous;
        let Some(step) = self.apply(&claim, None)? else { return Ok(AttemptEnd::LostClaim) };
        match step.next {
            Next::Publish(commit) => return self.publish(&commit).instrument(tracing::info_span!("step", step = "publishing")).await,
            Next::Done => return self.end_of(&step),
            Next::Work => {}
        }
        self.live = match LiveAttempt::start(self.cx.store.repo().path(), &self.plan.key, self.plan.attempt) {
            Ok(live) => Some(live),
            Err(e) => {
                tracing::warn!(error = %e, "the attempt's live output cannot be written; its logs are recorded at its end");
                None
            }
        };
        let mut logs = Logs::new(self.plan.attempt).announced(self.plan.key.clone(), self.plan.attempt, self.live.clone());
        let mut cancel = self.cx.cancel.clone();
        let outcome = tokio::select! {
            outcome = work::run(&self.cx, &self.plan, &self.task, &mut logs) => outcome,
            _ = cancel.wait_for(|c| *c) => Err(Stop::Cancelled),
        };
        match outcome {
            Ok(Verdict::Passed(passed)) => self.verified(*passed, logs).await,
            Ok(Verdict::Failed(failure)) => {
                let work = failure.work.as_deref().and_then(|w| Oid::from_str(w).ok());
                self.finish(&Event::Failed(failure), logs, work)
            }
            Err(stop) => self.release(stop, logs),
        }
    }

    /// The lease a claim holds: the task's time, plus the configured grace.
    fn lease(&self) -> Option<Timestamp> {
        let seconds = i64::from(self.task.timeout_seconds) + i64::from(self.cx.snapshot.config.lease_grace_seconds);
        Timestamp::now().checked_add(jiff::SignedDuration::from_secs(seconds)).ok()
    }

    /// The tests passed: the candidate result is committed (objects only), verified on the
    /// runner's chain with the logs, then published.
    async fn verified(&mut self, passed: work::Passed, mut logs: Logs) -> Result<AttemptEnd, AttemptError> {
        let work::Passed { tree, base, files, tests, agent } = passed;
        let (attempt, agent_name) = match &self.plan.branch {
            Some(b) => (b.info.parent_attempt, format!("{} (fixed by {}: {})", self.task.agent_role, b.info.id, agent.agent)),
            None => (self.plan.attempt, agent.agent.clone()),
        };
        let prov = Provenance {
            key: self.task_key.clone(),
            spec_hash: self.rules.spec_hash.clone(),
            attempt,
            agent: agent_name,
            model: agent.model.clone(),
            prompt_hash: agent.prompt_hash.clone(),
            correlation_id: self.cx.correlation_id.clone(),
            plan_commit: self.cx.snapshot.plan_commit,
        };
        let (commit, missing_outputs) = {
            let repo = self.cx.store.repo();
            let commit = publish::result_commit(&repo, base, tree, &self.task.title, &self.task.description, &prov)?;
            (commit, work::missing_in_tree(&repo, tree, &self.task.outputs)?)
        };
        if !missing_outputs.is_empty() {
            // Every declared output exists in a published result, whatever path got it there.
            let message = format!("the result lacks declared output(s): {}", missing_outputs.join(", "));
            let failure = lifecycle::Failure::new(FailureType::MissingOutputs, message);
            return self.finish(&Event::Failed(failure), logs, Some(tree));
        }
        let candidate = Candidate { commit: commit.to_string(), tests, files, missing_outputs };
        let Some(step) = self.apply(&Event::Verified(candidate), Some(&mut logs))? else { return Ok(AttemptEnd::LostClaim) };
        match step.next {
            Next::Publish(commit) => self.publish(&commit).instrument(tracing::info_span!("step", step = "publishing")).await,
            _ => self.end_of(&step),
        }
    }

    /// Publishes the verified `commit` as the task's next result (branch and tag: skipped where
    /// an interrupted run already wrote them), sends it upstream, and records it.
    async fn publish(&mut self, commit: &str) -> Result<AttemptEnd, AttemptError> {
        if let Some(live) = &self.live {
            live.step(LiveStep::Publishing);
        }
        self.cx.emit(super::Event::Step { key: self.plan.key.clone(), attempt: self.plan.attempt, step: LiveStep::Publishing });
        let oid = Oid::from_str(commit)?;
        let accepted = match self.parent()? {
            Some((_, parent)) => parent.accepted,
            None if self.plan.branch.is_some() => return Ok(AttemptEnd::LostClaim),
            None => self.own.as_ref().map_or(0, |(_, s)| s.accepted),
        };
        let published = publish::publish(&self.cx.store.repo(), &self.task_key, oid, accepted);
        let published = match published {
            Ok(published) => published,
            // The claim is given back: the next attempt publishes (or works again) from its record.
            Err(e) => return self.release(Stop::Publish(format!("publishing {}: {e}", self.task_key)), Logs::new(self.plan.attempt)),
        };
        let pull_request = match self.cx.upstream.result_published(&self.cx, &self.task_key, &published).await {
            Ok(pr) => pr,
            Err(e) => {
                let stop = Stop::Remote(format!("publishing {} upstream: {e}", self.task_key));
                return self.release(stop, Logs::new(self.plan.attempt));
            }
        };
        let publication = Publication {
            commit: commit.to_owned(),
            branch: published.branch.clone(),
            tag: published.tag.clone(),
            n: published.n,
            pull_request: pull_request.url,
            pull_request_pending: pull_request.pending,
        };
        self.finish(&Event::Published(publication), Logs::new(self.plan.attempt), None)
    }

    /// Gives the claim back; the attempt does not count.
    fn release(&mut self, stop: Stop, logs: Logs) -> Result<AttemptEnd, AttemptError> {
        let (reason, message) = match stop {
            Stop::Cancelled => (Reason::Cancelled, "the reconcile was stopped; the claim is released".to_owned()),
            Stop::Infrastructure(why) => (Reason::SandboxError, why),
            Stop::Model(why) => (Reason::ModelError, why),
            Stop::Git(e) => (Reason::GitError, format!("git failed while recording the work: {e}")),
            Stop::Remote(why) => (Reason::RemoteError, why),
            Stop::Publish(why) => (Reason::GitError, why),
            Stop::Environment(why) => (Reason::EnvironmentFailed, why),
        };
        self.finish(&Event::Released { reason, message }, logs, None)
    }

    /// Applies a closing event and says how the attempt ended.
    fn finish(&mut self, event: &Event, mut logs: Logs, work: Option<Oid>) -> Result<AttemptEnd, AttemptError> {
        if let Some(work) = work {
            logs.work = Some(work);
        }
        let Some(step) = self.apply(event, Some(&mut logs))? else { return Ok(AttemptEnd::LostClaim) };
        let end = self.end_of(&step)?;
        // A failure is told in its own words, not in those of the record it led to.
        Ok(match (end, event) {
            (AttemptEnd::Debugging { branch, failure_type, .. }, Event::Failed(f)) => {
                AttemptEnd::Debugging { branch, failure_type, message: f.message.clone() }
            }
            (AttemptEnd::Failed { failure_type, .. }, Event::Failed(f)) => AttemptEnd::Failed { failure_type, message: f.message.clone() },
            (end, _) => end,
        })
    }

    /// Runs the lifecycle on `event` and appends its records, each by compare-and-swap on the tip
    /// last read; the logs go with the runner's first record. `None` when another writer moved a
    /// chain first (the claim is lost) or the parent no longer waits on this branch todo.
    fn apply(&mut self, event: &Event, mut logs: Option<&mut Logs>) -> Result<Option<Step>, AttemptError> {
        let parent = self.parent()?;
        let own = self.own.as_ref().map(|(_, s)| s);
        let subject = match (&self.plan.branch, &parent) {
            (None, _) => Subject::Task(own),
            (Some(b), Some((_, p))) => Subject::Branch { parent: p, info: &b.info, own },
            (Some(_), None) => return Ok(None),
        };
        let step = match lifecycle::step(subject, event, &self.rules, Timestamp::now()) {
            Ok(step) => step,
            Err(lifecycle::Refusal::BranchClosed(_)) => return Ok(None),
            Err(refusal) => return Err(AttemptError::Lifecycle { key: self.plan.key.clone(), refusal }),
        };
        let mut parent_tip = parent.map(|(tip, _)| tip);
        let runner = if self.plan.branch.is_some() { Whom::Branch } else { Whom::Task };
        for (whom, record) in &step.records {
            let (key, expected) = match (whom, &self.plan.branch) {
                (Whom::Branch, Some(_)) | (Whom::Task, None) => (&self.plan.key, self.own.as_ref().map(|(tip, _)| *tip)),
                (Whom::Task, Some(b)) => (&b.parent, parent_tip),
                (Whom::Branch, None) => unreachable!("a task's own events write no branch record"),
            };
            let mut record = record.clone();
            let mut files: &[(String, Vec<u8>)] = &[];
            let mut trees = Vec::new();
            if *whom == runner
                && let Some(logs) = logs.take()
            {
                record.add_cost(std::mem::take(&mut logs.cost));
                if let Some(used) = logs.environment.take() {
                    record.environment = Some(used);
                }
                record.network = crate::state::NetworkUse::carried(record.network.take(), logs.network.take(), record.attempt);
                files = &logs.files;
                trees.extend(logs.work.map(|w| (format!("{}/work", logs.dir()), w)));
            }
            let tip = match self.cx.store.append_with_trees(key, expected, &record, files, &trees) {
                Ok(tip) => tip,
                Err(StateError::Conflict { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if *whom == runner {
                self.own = Some((tip, record));
            } else {
                parent_tip = Some(tip);
            }
        }
        Ok(Some(step))
    }

    /// A branch todo's parent, while it still waits on the branch; `None` for a task.
    fn parent(&self) -> Result<Parent, AttemptError> {
        let Some(b) = &self.plan.branch else { return Ok(None) };
        Ok(self
            .cx
            .store
            .status(&b.parent)?
            .filter(|(_, s)| s.phase == Phase::Debugging && s.open_branch.as_ref().is_some_and(|o| o.id == b.info.id)))
    }

    /// How the attempt ended, read from the records the last step wrote.
    fn end_of(&self, step: &Step) -> Result<AttemptEnd, AttemptError> {
        let task = step.records.iter().rev().find(|(w, _)| *w == Whom::Task).map(|(_, s)| s);
        let last = step.records.last().map(|(_, s)| s).expect("every step writes a record");
        let failure_type = |s: &TaskStatus| s.failure_type.clone().unwrap_or(FailureType::Unknown);
        Ok(match task.map(|s| (s.phase, s)) {
            Some((Phase::Succeeded, s)) => {
                let result = s.result.as_ref().expect("a Succeeded record names its result");
                let commit = Oid::from_str(&result.commit)?;
                let tag = result.tag.clone().unwrap_or_default();
                match s.reason {
                    Some(Reason::Adopted) => AttemptEnd::Adopted { commit, tag },
                    _ => AttemptEnd::Succeeded { commit, tag },
                }
            }
            Some((Phase::Debugging, s)) => AttemptEnd::Debugging {
                branch: s.open_branch.as_ref().map(|b| b.id.clone()).unwrap_or_default(),
                failure_type: failure_type(s),
                message: last.message.clone(),
            },
            Some((Phase::Escalated, s)) => AttemptEnd::Escalated { message: s.message.clone() },
            _ => match (last.phase, &last.reason) {
                (Phase::Released, Some(Reason::Cancelled)) => AttemptEnd::Cancelled,
                // Held by another attempt's failed setup: that attempt reports it; this one
                // needs the same person.
                (Phase::Released, Some(r)) if r.is_environment() => {
                    AttemptEnd::Failed { failure_type: FailureType::Environment, message: last.message.clone() }
                }
                (Phase::Released, _) => AttemptEnd::Infrastructure(last.message.clone()),
                (Phase::Running, _) => AttemptEnd::LostClaim,
                _ => AttemptEnd::Failed { failure_type: failure_type(last), message: last.message.clone() },
            },
        })
    }
}

/// The role a branch todo's record names.
fn role_of(info: &BranchInfo) -> Role {
    serde_json::from_value(serde_json::Value::String(info.role.clone())).unwrap_or(Role::Debugger)
}

/// The inputs an attempt builds on, by dependency id.
pub fn inputs_of(direct: &[(String, Oid)]) -> BTreeMap<String, String> {
    direct.iter().map(|(id, c)| (id.clone(), c.to_string())).collect()
}
