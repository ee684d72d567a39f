//! The lifecycle: how a task's record (and its branch todos' records) move on each event of an
//! attempt, as one pure function, [`step`], beside [`decide`](super::decide). It reads nothing and
//! writes nothing: it returns the records to append, in the order DESIGN.md fixes (a branch todo's
//! own record first, the parent's — the commit point — last, except when a fix is accepted, where
//! the parent's `Succeeded` goes first), and what the executor does next.
//!
//! The invariants users trust are enforced here by construction:
//! - `Succeeded` is reachable only from a `Verified` record of the same chain (the subject that
//!   ran the tests) naming the very commit that was published, under the current spec hash: a
//!   result is never adopted from another attempt, and a later attempt that fails cannot inherit
//!   an earlier one's success. The one adoption is a takeover of that same `Verified` attempt
//!   after a crash, which carries the candidate over in its claim.
//! - A candidate without every declared output, or with no passed test when the task has tests,
//!   is refused.
//! - The dependency results an attempt was built on are recorded (`inputs`), so that a new
//!   upstream result makes the task unsatisfied again (see `decide`).

#[cfg(test)]
mod model_tests;
mod records;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::spec::{Role, SpecHash};
use crate::state::{BranchInfo, FailureType, Phase, Reason, TaskKey, TaskStatus, TestSummary};

pub use records::conditions;

/// What the lifecycle needs to know of a task from its plan and the configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The task's current spec hash.
    pub spec_hash: SpecHash,
    /// Attempts before the task fails for good.
    pub max_attempts: u32,
    /// Attempts of each branch todo before the task is escalated.
    pub max_debug_attempts: u32,
    /// How deep branch todos may nest.
    pub max_branch_depth: u32,
    /// The outputs the task declares: each must exist in a published result.
    pub outputs: Vec<String>,
    /// How many acceptance-test commands the task has.
    pub tests: usize,
    /// Which role debugs which failure.
    pub routing: Routing,
}

/// The roles branch todos go to.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// The role that plays the task itself.
    pub task_role: Option<Role>,
    /// The task's `failure_routing`: failure type -> role.
    pub routes: BTreeMap<String, Role>,
    /// The roles that have an agent in plancd.yaml.
    pub available: BTreeSet<Role>,
}

impl Routing {
    /// The role a branch todo for `failure` goes to: the task's `failure_routing`, else the
    /// triage's suggestion; a role without an agent gives way to the debugger, then to the role
    /// that did the work.
    pub fn route(&self, failure: &FailureType, suggested: Role) -> Role {
        let wanted = self.routes.get(failure.as_str()).copied().unwrap_or(suggested);
        let task_role = self.task_role.unwrap_or(Role::Coder);
        [wanted, Role::Debugger, task_role].into_iter().find(|r| self.available.contains(r)).unwrap_or(task_role)
    }
}

/// Whose record an event concerns.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A task's own attempt; `None` before its first record.
    Task(Option<&'a TaskStatus>),
    /// A branch todo's attempt: its parent's record, the branch as the parent opened it, and the
    /// branch's own record (`None` before its first).
    Branch {
        /// The task being debugged.
        parent: &'a TaskStatus,
        /// The branch todo, as the parent's record describes it.
        info: &'a BranchInfo,
        /// The branch todo's own record.
        own: Option<&'a TaskStatus>,
    },
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A holder starts an attempt.
    Claim(Claim),
    /// The acceptance tests passed on a candidate result; it is published next.
    Verified(Candidate),
    /// The verified candidate is published (branch and tag, and the pull request when the forge
    /// took it).
    Published(Publication),
    /// The attempt ended without a result.
    Failed(Failure),
    /// The attempt was stopped from outside (a signal, the sandbox, the model API, git, the
    /// remote); it does not count, and the claim is given back.
    Released {
        /// Why.
        reason: Reason,
        /// For people.
        message: String,
    },
}

/// A claim's facts.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The task or branch todo claimed.
    pub key: TaskKey,
    /// The attempt's number.
    pub attempt: u32,
    /// See [`TaskStatus::attempts_base`].
    pub attempts_base: u32,
    /// Who claims.
    pub holder: String,
    /// Until when.
    pub lease_expires_at: Option<Timestamp>,
    /// The dead or expired holder being replaced.
    pub takeover: Option<String>,
    /// The dependency results the attempt builds on (task id -> result commit).
    pub inputs: BTreeMap<String, String>,
    /// The watched commit.
    pub plan_commit: String,
    /// The role that plays the attempt.
    pub role: Role,
    /// Whether the candidate a verified, interrupted attempt left is here to publish (another
    /// controller's clone may not hold its objects: then the work is done again).
    pub candidate_present: bool,
}

/// A result whose acceptance tests passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The result commit.
    pub commit: String,
    /// The test counts.
    pub tests: TestSummary,
    /// The files the work changed.
    pub files: Vec<String>,
    /// Declared outputs absent from the candidate's tree (must be empty to publish).
    pub missing_outputs: Vec<String>,
}

/// A published result.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// The result commit.
    pub commit: String,
    /// The result branch.
    pub branch: String,
    /// The tag.
    pub tag: String,
    /// The tag's number.
    pub n: u32,
    /// The pull request, when the forge opened it.
    pub pull_request: Option<String>,
    /// Why the pull request is not open yet (a cap, a forge failure): the result is published
    /// and waits for it.
    pub pull_request_pending: Option<String>,
}

/// An attempt that ended without a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What kind of failure (after triage, for failing tests).
    pub failure_type: FailureType,
    /// One line for people.
    pub message: String,
    /// The failing work's tree, when the agent finished and left some.
    pub work: Option<String>,
    /// The acceptance tests' counts, when they ran.
    pub tests: Option<TestSummary>,
    /// The role triage suggests for a branch todo.
    pub suggested: Role,
    /// Instructions for the role that debugs it.
    pub instructions: String,
    /// What is missing (missing dependencies).
    pub missing: Option<String>,
    /// A reason that says more than the failure type's (`EnvironmentFailed`, ...).
    pub reason: Option<Reason>,
}

impl Failure {
    /// A failure with only a type and a message.
    pub fn new(failure_type: FailureType, message: impl Into<String>) -> Failure {
        let message = message.into();
        Failure {
            failure_type,
            instructions: message.clone(),
            message,
            work: None,
            tests: None,
            suggested: Role::Debugger,
            missing: None,
            reason: None,
        }
    }
}

/// Whose record to append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    /// The task (the parent, for a branch todo's event).
    Task,
    /// The branch todo.
    Branch,
}

/// What the executor does once the records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Run the attempt's work.
    Work,
    /// Publish the verified candidate (a takeover of a verified attempt goes straight here).
    Publish(String),
    /// Nothing: the attempt is over.
    Done,
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Records to append, in order; the last is the commit point.
    pub records: Vec<(Whom, TaskStatus)>,
    /// What comes next.
    pub next: Next,
}

/// An event that means nothing in the record's state: a bug in the caller, never a user's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A claim of a task that holds no claim to replace, or that is another attempt's.
    #[error("attempt {attempt} cannot follow attempt {previous}")]
    AttemptOrder {
        /// The claimed attempt.
        attempt: u32,
        /// The record's attempt.
        previous: u32,
    },
    /// An event of an attempt that is not running.
    #[error("the record is {0}, not Running")]
    NotRunning(Phase),
    /// A publication of a commit that no Verified record of this chain names.
    #[error("commit {0} was not verified by this attempt")]
    NotVerified(String),
    /// A candidate that cannot be accepted.
    #[error("the candidate cannot be accepted: {0}")]
    Unacceptable(String),
    /// A branch todo's event while its parent no longer waits on it.
    #[error("the parent no longer waits on branch todo {0}")]
    BranchClosed(String),
}

/// How a task's record moves on `event`, with the records to write and what comes next.
pub fn step(subject: Subject<'_>, event: &Event, rules: &Rules, now: Timestamp) -> Result<Step, Refusal> {
    if let Subject::Branch { parent, info, .. } = subject
        && (parent.phase != Phase::Debugging || parent.open_branch.as_ref().map(|b| &b.id) != Some(&info.id))
    {
        return Err(Refusal::BranchClosed(info.id.clone()));
    }
    match event {
        Event::Claim(claim) => records::claim(subject, claim, rules, now),
        Event::Verified(candidate) => records::verified(subject, candidate, rules, now),
        Event::Published(publication) => records::published(subject, publication, now),
        Event::Failed(failure) => Ok(records::failed(subject, failure, rules, now)?),
        Event::Released { reason, message } => records::released(subject, reason, message, now),
    }
}

/// The record an event of `subject` continues: the task's own, or the branch todo's.
fn own<'a>(subject: Subject<'a>) -> Option<&'a TaskStatus> {
    match subject {
        Subject::Task(own) => own,
        Subject::Branch { own, .. } => own,
    }
}

/// Whom `subject`'s own record is.
fn whom(subject: Subject<'_>) -> Whom {
    match subject {
        Subject::Task(_) => Whom::Task,
        Subject::Branch { .. } => Whom::Branch,
    }
}
