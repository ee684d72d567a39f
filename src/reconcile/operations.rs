//! Operations people ask for (approve, retry, suspend, resume): whether one means something in
//! the task's or workflow's phase, and if so the one record it writes. [`check`] is pure and
//! table-tested; the command line and the GitHub Action both call it, and write what it returns
//! by compare-and-swap (re-checking on a lost race, so one operation is one record).

use std::fmt;

use jiff::Timestamp;

use crate::spec::SpecHash;
use crate::state::{Phase, Reason, Review, TaskKey, TaskStatus, WorkflowRecord};

/// What a person asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Let a task that requires approval run for its current spec.
    Approve,
    /// Another attempt of a task that failed, was escalated or ran out of budget, with a fresh
    /// count of attempts.
    Retry,
    /// Another attempt with a reviewer's instructions (`/plancd retry <instructions>`, a review
    /// asking for changes, `plancd retry -m`): also for a task that succeeded.
    Revise {
        /// What to do differently.
        instructions: String,
        /// Where it was asked (a comment's address).
        url: Option<String>,
    },
    /// Stop starting work in a workflow.
    Suspend,
    /// Start again.
    Resume,
}

impl Operation {
    /// The verb, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Operation::Approve => "approve",
            Operation::Retry | Operation::Revise { .. } => "retry",
            Operation::Suspend => "suspend",
            Operation::Resume => "resume",
        }
    }
}

/// What the plans at the watched commit say about a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Its spec hash.
    pub spec_hash: SpecHash,
    /// Whether a person must approve it first.
    pub requires_approval: bool,
}

/// What an operation is about, with everything known of it.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A task.
    Task {
        /// Which.
        key: &'a TaskKey,
        /// Its entry in the plans; `None` when no plan has it (a branch todo, a removed task, a typo).
        planned: Option<&'a Planned>,
        /// Its record, if it has one.
        status: Option<&'a TaskStatus>,
    },
    /// A workflow.
    Workflow {
        /// Which.
        id: &'a str,
        /// Whether a plan at the watched commit defines it.
        planned: bool,
        /// Its record, if it has one.
        record: Option<&'a WorkflowRecord>,
    },
}

/// The record an operation writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Appended to the task's chain.
    Task(Box<TaskStatus>),
    /// The workflow's new record.
    Workflow(WorkflowRecord),
}

/// Why an operation means nothing where it was asked for. Exit 2 on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No plan defines the workflow.
    UnknownWorkflow(String),
    /// No plan defines the task, and it is no branch todo.
    UnknownTask(TaskKey),
    /// A branch todo: its parent is what people retry or approve.
    BranchTodo {
        /// The branch todo.
        key: TaskKey,
        /// The task it debugs.
        parent: String,
    },
    /// The task does not require approval.
    NotGated(TaskKey),
    /// The task's current spec is approved already.
    AlreadyApproved(TaskKey),
    /// The task succeeded for its current spec.
    AlreadySucceeded {
        /// The task.
        key: TaskKey,
        /// The accepted attempt.
        attempt: u32,
    },
    /// An attempt holds the task.
    Busy {
        /// The task.
        key: TaskKey,
        /// Its phase.
        phase: Phase,
        /// Its attempt.
        attempt: u32,
    },
    /// The next reconcile runs it anyway (it never ran, is pending, or its spec changed).
    WillRun {
        /// The task.
        key: TaskKey,
        /// Its phase, `None` when it never ran.
        phase: Option<Phase>,
    },
    /// It waits for an approval, which is what it needs.
    NeedsApproval(TaskKey),
    /// A branch todo is debugging it.
    Debugging {
        /// The task.
        key: TaskKey,
        /// The branch todo.
        branch: String,
    },
    /// The workflow is suspended already.
    AlreadySuspended(String),
    /// The workflow is not suspended.
    NotSuspended(String),
    /// No task of the plans requires approval (`/plancd approve` on a plan pull request).
    NothingGated,
    /// A task operation on a workflow, or the other way round.
    WrongTarget {
        /// The operation.
        verb: &'static str,
        /// What it was given.
        target: String,
    },
}

impl Refusal {
    /// A CamelCase reason, for summaries and comments.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnknownWorkflow(_) => "UnknownWorkflow",
            Refusal::UnknownTask(_) => "UnknownTask",
            Refusal::BranchTodo { .. } => "BranchTodo",
            Refusal::NotGated(_) => "ApprovalNotRequired",
            Refusal::AlreadyApproved(_) => "AlreadyApproved",
            Refusal::AlreadySucceeded { .. } => "AlreadySucceeded",
            Refusal::Busy { .. } => "AttemptRunning",
            Refusal::WillRun { .. } => "RunsAnyway",
            Refusal::NeedsApproval(_) => "NeedsApproval",
            Refusal::Debugging { .. } => "Debugging",
            Refusal::AlreadySuspended(_) => "AlreadySuspended",
            Refusal::NotSuspended(_) => "NotSuspended",
            Refusal::NothingGated => "ApprovalNotRequired",
            Refusal::WrongTarget { .. } => "WrongTarget",
        }
    }

    /// What to do instead.
    pub fn hint(&self) -> String {
        match self {
            Refusal::UnknownWorkflow(_) => "`plancd status` lists the workflows".into(),
            Refusal::UnknownTask(key) => format!("`plancd status {}` lists its tasks", key.workflow),
            Refusal::BranchTodo { key, parent } => format!("retry the parent: plancd retry {}/{parent}", key.workflow),
            Refusal::NotGated(_) | Refusal::AlreadyApproved(_) => "nothing to do: the next reconcile runs it when it is due".into(),
            Refusal::AlreadySucceeded { key, .. } => {
                format!(
                    "to ask for changes: plancd retry {key} -m '<what to change>' (or comment `/plancd retry <what to change>` on its pull request)"
                )
            }
            Refusal::Busy { key, .. } => format!("try again when it has finished (`plancd status {key}`)"),
            Refusal::WillRun { .. } => "nothing to do: run `plancd reconcile`".into(),
            Refusal::NeedsApproval(key) => format!("approve it: plancd approve {key}"),
            Refusal::Debugging { key, .. } => format!("wait for the branch todo; retry {key} if it is escalated or fails"),
            Refusal::AlreadySuspended(wf) => format!("`plancd resume {wf}` resumes it"),
            Refusal::NotSuspended(wf) => format!("`plancd suspend {wf}` suspends it"),
            Refusal::NothingGated => "nothing to do: its tasks run once it is merged".into(),
            Refusal::WrongTarget { verb: "suspend" | "resume", .. } => "suspend and resume take a workflow: WF".into(),
            Refusal::WrongTarget { .. } => "approve and retry take a task: WF/TASK".into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownWorkflow(wf) => write!(f, "no plan defines workflow `{wf}`"),
            Refusal::UnknownTask(key) => write!(f, "no plan defines task {key}"),
            Refusal::BranchTodo { key, parent } => write!(f, "{key} is a branch todo of {}/{parent}", key.workflow),
            Refusal::NotGated(key) => {
                write!(
                    f,
                    "{key} does not require approval (requires_approval is not set, and its outputs name no protected path or test runner file)"
                )
            }
            Refusal::AlreadyApproved(key) => write!(f, "{key} is approved for its current spec already"),
            Refusal::AlreadySucceeded { key, attempt } => write!(f, "{key} succeeded (attempt {attempt}) for its current spec"),
            Refusal::Busy { key, phase, attempt } => write!(f, "{key} is {phase} (attempt {attempt})"),
            Refusal::WillRun { key, phase: None } => write!(f, "{key} has not run yet; the next reconcile runs it"),
            Refusal::WillRun { key, phase: Some(p) } => write!(f, "{key} is {p}; the next reconcile runs it"),
            Refusal::NeedsApproval(key) => write!(f, "{key} waits for approval, not for a retry"),
            Refusal::Debugging { key, branch } => write!(f, "{key} is being debugged by branch todo {branch}"),
            Refusal::AlreadySuspended(wf) => write!(f, "{wf} is suspended already"),
            Refusal::NotSuspended(wf) => write!(f, "{wf} is not suspended"),
            Refusal::NothingGated => f.write_str("no task of these plans requires approval"),
            Refusal::WrongTarget { verb, target } => write!(f, "`{verb}` does not apply to `{target}`"),
        }
    }
}

/// Decides whether `op`, asked by `by` at `now`, means something for `target`, and returns the
/// one record it writes. Pure: the caller reads the facts and writes the record.
pub fn check(op: &Operation, target: Target<'_>, by: &str, now: Timestamp) -> Result<Record, Refusal> {
    match (op, target) {
        (Operation::Approve | Operation::Retry | Operation::Revise { .. }, Target::Task { key, planned, status }) => {
            let planned = match (planned, status.and_then(|s| s.branch.as_ref())) {
                (Some(p), _) => p,
                (None, Some(branch)) => return Err(Refusal::BranchTodo { key: key.clone(), parent: branch.parent_id.clone() }),
                (None, None) => return Err(Refusal::UnknownTask(key.clone())),
            };
            if let Some(s) = status.filter(|s| s.phase.is_held() && s.lease_expires_at.is_some_and(|t| t > now)) {
                return Err(Refusal::Busy { key: key.clone(), phase: s.phase, attempt: s.attempt });
            }
            let record = match op {
                Operation::Approve => approve(key, planned, status, by, now)?,
                _ => retry(op, key, planned, status, by, now)?,
            };
            Ok(Record::Task(Box::new(record)))
        }
        (Operation::Suspend | Operation::Resume, Target::Workflow { id, planned, record }) => {
            workflow(op, id, planned, record, by).map(Record::Workflow)
        }
        (_, Target::Task { key, .. }) => Err(Refusal::WrongTarget { verb: op.verb(), target: key.to_string() }),
        (_, Target::Workflow { id, .. }) => Err(Refusal::WrongTarget { verb: op.verb(), target: id.to_owned() }),
    }
}

fn approve(key: &TaskKey, planned: &Planned, status: Option<&TaskStatus>, by: &str, now: Timestamp) -> Result<TaskStatus, Refusal> {
    let hash = &planned.spec_hash;
    if !planned.requires_approval {
        return Err(Refusal::NotGated(key.clone()));
    }
    if let Some(s) = status.filter(|s| s.phase == Phase::Succeeded && s.spec_hash.as_ref() == Some(hash)) {
        return Err(Refusal::AlreadySucceeded { key: key.clone(), attempt: s.attempt });
    }
    if status.is_some_and(|s| s.approved_spec_hash.as_ref() == Some(hash)) {
        return Err(Refusal::AlreadyApproved(key.clone()));
    }
    // An approval of a spec the task's record is not about yet (a plan pull request's) keeps a
    // finished record as it is: the approval waits for that spec in `approved_spec_hash`.
    let keeps = status.filter(|s| {
        s.spec_hash.as_ref() != Some(hash) && matches!(s.phase, Phase::Succeeded | Phase::Failed | Phase::Escalated | Phase::BudgetExceeded)
    });
    let mut record = match (status, keeps) {
        (_, Some(s)) => s.next(s.phase, now),
        (Some(s), None) => {
            let mut r = s.next(Phase::Approved, now);
            r.spec_hash = Some(hash.clone());
            r
        }
        (None, None) => {
            let mut r = TaskStatus::new(&key.workflow, &key.task, Phase::Approved, now);
            r.spec_hash = Some(hash.clone());
            r
        }
    };
    if let Some(s) = keeps {
        // The finished record's own words stay; the approval is one more fact.
        record.reason = s.reason.clone();
        record.failure_type = s.failure_type.clone();
        record.conditions = s.conditions.clone();
    } else {
        record.reason = Some(Reason::Approved);
    }
    record.approved_spec_hash = Some(hash.clone());
    record.message = format!("approved by {by} for spec {}", hash.short());
    record.by = Some(by.to_owned());
    Ok(record)
}

fn retry(
    op: &Operation,
    key: &TaskKey,
    planned: &Planned,
    status: Option<&TaskStatus>,
    by: &str,
    now: Timestamp,
) -> Result<TaskStatus, Refusal> {
    let Some(s) = status else { return Err(Refusal::WillRun { key: key.clone(), phase: None }) };
    let current = s.spec_hash.as_ref() == Some(&planned.spec_hash);
    let revise = matches!(op, Operation::Revise { .. });
    match s.phase {
        Phase::Failed | Phase::Escalated | Phase::BudgetExceeded if current || revise => {}
        Phase::Succeeded if revise => {}
        Phase::Succeeded if current => return Err(Refusal::AlreadySucceeded { key: key.clone(), attempt: s.attempt }),
        Phase::NeedsApproval => return Err(Refusal::NeedsApproval(key.clone())),
        Phase::Debugging if current => {
            let branch = s.open_branch.as_ref().map(|b| b.id.clone()).unwrap_or_default();
            return Err(Refusal::Debugging { key: key.clone(), branch });
        }
        phase => return Err(Refusal::WillRun { key: key.clone(), phase: Some(phase) }),
    }
    let mut record = s.next(Phase::Pending, now);
    record.attempts_base = s.attempt;
    record.by = Some(by.to_owned());
    match op {
        Operation::Revise { instructions, url } => {
            record.reason = Some(Reason::RevisionRequested);
            record.message = format!("another attempt requested by {by}");
            record.review = Some(Review { by: by.to_owned(), instructions: instructions.clone(), url: url.clone() });
        }
        _ => {
            record.reason = Some(Reason::RetryRequested);
            record.message = format!("retry requested by {by}");
        }
    }
    Ok(record)
}

fn workflow(op: &Operation, id: &str, planned: bool, record: Option<&WorkflowRecord>, by: &str) -> Result<WorkflowRecord, Refusal> {
    let suspended = record.is_some_and(|r| r.suspended);
    let wanted = match op {
        Operation::Suspend if !planned => return Err(Refusal::UnknownWorkflow(id.to_owned())),
        Operation::Suspend if suspended => return Err(Refusal::AlreadySuspended(id.to_owned())),
        Operation::Suspend => true,
        // A workflow removed from the plans while suspended can still be resumed.
        Operation::Resume if !planned && record.is_none() => return Err(Refusal::UnknownWorkflow(id.to_owned())),
        Operation::Resume if !suspended => return Err(Refusal::NotSuspended(id.to_owned())),
        _ => false,
    };
    let verb = if wanted { "suspended" } else { "resumed" };
    Ok(WorkflowRecord { workflow_id: id.to_owned(), suspended: wanted, message: format!("{verb} by {by}"), by: Some(by.to_owned()) })
}

#[cfg(test)]
mod tests;
