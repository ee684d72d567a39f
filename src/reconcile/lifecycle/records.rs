//! The transitions of [`step`](super::step), one function per event, and the conditions every
//! record carries.

use jiff::Timestamp;

use super::{Candidate, Claim, Failure, Next, Publication, Refusal, Rules, Step, Subject, Whom, own, whom};
use crate::spec::Role;
use crate::state::{Acceptance, BranchInfo, Condition, FailureType, Phase, Reason, ResultRef, TaskStatus, Verification};

/// A claim: a `Running` record. A takeover of an attempt that was verified and then interrupted
/// carries its candidate over, and goes straight to publishing it. A branch todo that has used up
/// its attempts escalates its parent instead of working.
pub(super) fn claim(subject: Subject<'_>, claim: &Claim, rules: &Rules, now: Timestamp) -> Result<Step, Refusal> {
    let prev = own(subject);
    if let Some(p) = prev
        && claim.attempt <= p.attempt
    {
        return Err(Refusal::AttemptOrder { attempt: claim.attempt, previous: p.attempt });
    }
    let mut s = match prev {
        Some(p) => p.next(Phase::Running, now),
        None => TaskStatus::new(&claim.key.workflow, &claim.key.task, Phase::Running, now),
    };
    s.attempt = claim.attempt;
    s.attempts_base = claim.attempts_base;
    s.spec_hash = Some(rules.spec_hash.clone());
    s.holder = Some(claim.holder.clone());
    s.lease_expires_at = claim.lease_expires_at;
    s.started_at = Some(now);
    s.finished_at = None;
    s.plan_commit = Some(claim.plan_commit.clone());
    s.role = Some(claim.role.to_string());
    s.inputs = Some(claim.inputs.clone());
    s.reason = Some(if claim.takeover.is_some() { Reason::TakenOver } else { Reason::Claimed });
    s.message = claim.takeover.as_ref().map(|h| format!("claim taken over from {h}")).unwrap_or_default();
    if let Subject::Branch { info, .. } = subject {
        s.branch = Some(info.clone());
        if s.attempts_used() > info.max_debug_attempts {
            let message = format!("{} failed {} attempt(s)", info.id, info.max_debug_attempts);
            return Ok(escalate(subject, info, Reason::BranchAttemptsExhausted, message, now));
        }
    }
    // Only the attempt that verified a candidate, taken over after a crash, may publish it.
    let carried = prev.and_then(|p| {
        let same = claim.candidate_present
            && p.phase == Phase::Running
            && p.reason == Some(Reason::Verified)
            && p.spec_hash.as_ref() == Some(&rules.spec_hash)
            && p.inputs.as_ref() == Some(&claim.inputs);
        same.then(|| p.verified.clone()).flatten()
    });
    let next = match &carried {
        Some(v) => Next::Publish(v.commit.clone()),
        None => Next::Work,
    };
    if carried.is_none() {
        s.tests = None;
    }
    s.verified = carried;
    set_conditions(&mut s, prev, now);
    Ok(Step { records: vec![(whom(subject), s)], next })
}

/// The tests passed on `candidate`: a `Verified` record on the chain of whoever ran them.
pub(super) fn verified(subject: Subject<'_>, candidate: &Candidate, rules: &Rules, now: Timestamp) -> Result<Step, Refusal> {
    let prev = running(subject)?;
    if !candidate.missing_outputs.is_empty() {
        return Err(Refusal::Unacceptable(format!("declared outputs missing: {}", candidate.missing_outputs.join(", "))));
    }
    if candidate.tests.failed > 0 || candidate.tests.errors > 0 {
        return Err(Refusal::Unacceptable(format!("{} acceptance test(s) failed", candidate.tests.failed + candidate.tests.errors)));
    }
    if rules.tests > 0 && candidate.tests.passed == 0 {
        return Err(Refusal::Unacceptable("no acceptance test passed".into()));
    }
    let mut s = prev.clone();
    s.updated_at = now;
    s.reason = Some(Reason::Verified);
    s.message = format!("{} acceptance test(s) passed; publishing {}", candidate.tests.passed, short(&candidate.commit));
    s.tests = Some(candidate.tests.clone());
    s.verified = Some(Verification { commit: candidate.commit.clone(), attempt: prev.attempt, files: candidate.files.clone() });
    set_conditions(&mut s, Some(prev), now);
    Ok(Step { records: vec![(whom(subject), s)], next: Next::Publish(candidate.commit.clone()) })
}

/// The verified candidate is published: the task is `Succeeded` (for a branch todo's fix, the
/// parent first, the commit point of its result, then the branch).
pub(super) fn published(subject: Subject<'_>, p: &Publication, now: Timestamp) -> Result<Step, Refusal> {
    let runner = running(subject)?;
    let verification = runner.verified.as_ref().filter(|v| v.commit == p.commit).ok_or_else(|| Refusal::NotVerified(p.commit.clone()))?;
    let (task, ran_in) = match subject {
        Subject::Task(_) => (runner, runner.task_id.clone()),
        Subject::Branch { parent, info, .. } => (parent, info.id.clone()),
    };
    let mut s = task.next(Phase::Succeeded, now);
    s.accepted = p.n;
    s.inputs = runner.inputs.clone();
    s.tests = runner.tests.clone();
    s.finished_at = Some(now);
    s.reason = Some(if verification.attempt == runner.attempt { Reason::Succeeded } else { Reason::Adopted });
    let passed = runner.tests.as_ref().map_or(0, |t| t.passed);
    s.message = match subject {
        Subject::Task(_) if verification.attempt == runner.attempt => format!("{passed} acceptance test(s) passed"),
        Subject::Task(_) => format!(
            "{passed} acceptance test(s) passed in attempt {}; its result, published before an interruption, is recorded",
            verification.attempt
        ),
        Subject::Branch { info, .. } => format!("{passed} acceptance test(s) passed after {}", info.id),
    };
    s.result = Some(ResultRef {
        commit: p.commit.clone(),
        branch: p.branch.clone(),
        tag: Some(p.tag.clone()),
        files: verification.files.clone(),
        pull_request: p.pull_request.clone(),
        accepted_in: Some(Acceptance { task_id: ran_in, attempt: verification.attempt }),
    });
    set_conditions(&mut s, Some(task), now);
    if let Some(why) = &p.pull_request_pending {
        s.message = format!("{}; its pull request waits: {why}", s.message);
        s.conditions.push(condition("PullRequest", false, Reason::PullRequestPending, why.clone(), now));
    }
    let mut records = vec![(Whom::Task, s)];
    if let Subject::Branch { info, .. } = subject {
        let mut done = runner.next(Phase::Succeeded, now);
        done.finished_at = Some(now);
        done.reason = Some(Reason::Resolved);
        done.message = format!("{} passes its acceptance tests", info.parent_id);
        set_conditions(&mut done, Some(runner), now);
        records.push((Whom::Branch, done));
    }
    Ok(Step { records, next: Next::Done })
}

/// The attempt ended without a result.
pub(super) fn failed(subject: Subject<'_>, f: &Failure, rules: &Rules, now: Timestamp) -> Result<Step, Refusal> {
    let prev = running(subject)?;
    let step = match subject {
        Subject::Task(_) => task_failed(prev, f, rules, now),
        Subject::Branch { parent, info, .. } => branch_failed(parent, info, prev, f, rules, now),
    };
    Ok(step)
}

fn task_failed(claim: &TaskStatus, f: &Failure, rules: &Rules, now: Timestamp) -> Step {
    let branchable = f.work.is_some() && f.failure_type.is_debuggable() && rules.max_branch_depth > 0;
    if let (true, Some(work)) = (branchable, &f.work) {
        let info = new_branch(claim, f, rules, work, (1, claim.attempt));
        let mut s = debugging(claim, &info, format!("{}; {} ({}) opened for the {}", f.message, info.id, f.failure_type, info.role), now);
        s.tests = f.tests.clone();
        return Step { records: vec![(Whom::Task, s)], next: Next::Done };
    }
    let over_budget = f.failure_type == FailureType::BudgetExceeded;
    let mut s = claim.next(if over_budget { Phase::BudgetExceeded } else { Phase::Failed }, now);
    s.reason = Some(f.reason.clone().unwrap_or_else(|| failure_reason(&f.failure_type)));
    s.failure_type = Some(f.failure_type.clone());
    s.message = f.message.clone();
    s.tests = f.tests.clone();
    s.finished_at = Some(now);
    let spent = s.phase == Phase::Failed && s.attempts_used() >= rules.max_attempts;
    if spent {
        s.message = format!("{}; no attempts left of {} (plancd retry {}/{})", s.message, rules.max_attempts, s.workflow_id, s.task_id);
    }
    s.conditions = conditions(&s, spent, &claim.conditions, now);
    Step { records: vec![(Whom::Task, s)], next: Next::Done }
}

fn branch_failed(parent: &TaskStatus, info: &BranchInfo, claim: &TaskStatus, f: &Failure, rules: &Rules, now: Timestamp) -> Step {
    let subject = Subject::Branch { parent, info, own: Some(claim) };
    if f.failure_type == FailureType::BudgetExceeded {
        // No further attempt can spend anything: a person raises the budget or retries.
        return escalate(subject, info, Reason::BudgetExceeded, format!("{}: {}", info.id, f.message), now);
    }
    if f.failure_type == FailureType::SpecMismatch && f.work.is_none() {
        // The debugger says the contract or the tests ask for something inconsistent: the work
        // goes to the role that revises the specification, from where this branch started.
        let role = rules.routing.route(&FailureType::SpecMismatch, Role::Architect);
        if role == Role::Debugger || info.depth >= rules.max_branch_depth {
            let why = if role == Role::Debugger {
                "no role but the debugger to revise the specification (configure an architect, or route spec_mismatch in failure_routing)"
                    .to_owned()
            } else {
                format!("no branch depth left (max_branch_depth {})", rules.max_branch_depth)
            };
            return escalate(subject, info, Reason::SpecMismatch, format!("{}: {}; {why}", info.id, f.message), now);
        }
        let f = Failure { suggested: role, work: Some(info.base_tree.clone()), ..f.clone() };
        return deepen(parent, info, claim, &f, rules, now);
    }
    if f.failure_type == FailureType::Environment {
        // No agent can fix the environment: the branch waits for it (see `decide`) without
        // spending one of its debug attempts, and the parent keeps debugging.
        let mut s = claim.next(Phase::Failed, now);
        s.attempts_base += 1;
        s.reason = Some(f.reason.clone().unwrap_or(Reason::EnvironmentFailed));
        s.failure_type = Some(FailureType::Environment);
        s.message = f.message.clone();
        s.tests = f.tests.clone();
        s.finished_at = Some(now);
        set_conditions(&mut s, Some(claim), now);
        return Step { records: vec![(Whom::Branch, s)], next: Next::Done };
    }
    if f.work.is_some() && f.failure_type.is_debuggable() {
        if info.depth >= rules.max_branch_depth {
            let message = format!(
                "still failing after {} branch todo(s), the most allowed (max_branch_depth {}): {}",
                info.depth, rules.max_branch_depth, f.message
            );
            return escalate(subject, info, Reason::MaxBranchDepth, message, now);
        }
        return deepen(parent, info, claim, f, rules, now);
    }
    let mut s = claim.next(Phase::Failed, now);
    s.reason = Some(f.reason.clone().unwrap_or_else(|| failure_reason(&f.failure_type)));
    s.failure_type = Some(f.failure_type.clone());
    s.message = f.message.clone();
    s.tests = f.tests.clone();
    s.finished_at = Some(now);
    if s.attempts_used() >= info.max_debug_attempts {
        let message = format!("{} failed {} attempt(s); last: {}", info.id, info.max_debug_attempts, f.message);
        return escalate(subject, info, Reason::BranchAttemptsExhausted, message, now);
    }
    set_conditions(&mut s, Some(claim), now);
    Step { records: vec![(Whom::Branch, s)], next: Next::Done }
}

/// The branch's work still fails: a deeper branch goes on from it. The branch's record goes
/// first, the parent's (the commit point) last.
fn deepen(parent: &TaskStatus, info: &BranchInfo, claim: &TaskStatus, f: &Failure, rules: &Rules, now: Timestamp) -> Step {
    let work = f.work.clone().unwrap_or_else(|| info.base_tree.clone());
    let deeper = new_branch(parent, f, rules, &work, (info.depth + 1, info.parent_attempt));
    let mut s = claim.next(Phase::Failed, now);
    s.reason = Some(Reason::Deepened);
    s.failure_type = Some(f.failure_type.clone());
    s.message = format!("{}; {} goes on from this work", f.message, deeper.id);
    s.tests = f.tests.clone();
    s.finished_at = Some(now);
    set_conditions(&mut s, Some(claim), now);
    let message = format!("{} did not fix it; {} ({}) opened for the {}", info.id, deeper.id, f.failure_type, deeper.role);
    let p = debugging(parent, &deeper, message, now);
    Step { records: vec![(Whom::Branch, s), (Whom::Task, p)], next: Next::Done }
}

/// Hands the parent to a person, then closes the branch.
fn escalate(subject: Subject<'_>, info: &BranchInfo, reason: Reason, message: String, now: Timestamp) -> Step {
    let Subject::Branch { parent, own, .. } = subject else { unreachable!("only branch todos escalate their parent") };
    let mut p = parent.next(Phase::Escalated, now);
    p.reason = Some(reason.clone());
    p.failure_type = Some(info.failure_type.clone());
    p.message = message.clone();
    p.finished_at = Some(now);
    set_conditions(&mut p, Some(parent), now);
    let mut records = vec![(Whom::Task, p)];
    if let Some(claim) = own {
        let mut s = claim.next(Phase::Escalated, now);
        s.reason = Some(reason);
        s.message = message;
        s.finished_at = Some(now);
        set_conditions(&mut s, Some(claim), now);
        records.push((Whom::Branch, s));
    }
    Step { records, next: Next::Done }
}

/// The claim is given back; the attempt does not count.
pub(super) fn released(subject: Subject<'_>, reason: &Reason, message: &str, now: Timestamp) -> Result<Step, Refusal> {
    let prev = running(subject)?;
    let mut s = prev.next(Phase::Released, now);
    s.attempts_base += 1;
    s.finished_at = Some(now);
    s.reason = Some(reason.clone());
    s.message = message.to_owned();
    if reason.is_environment() {
        s.failure_type = Some(FailureType::Environment);
    } else if *reason != Reason::Cancelled {
        s.failure_type = Some(FailureType::Infrastructure);
    }
    set_conditions(&mut s, Some(prev), now);
    Ok(Step { records: vec![(whom(subject), s)], next: Next::Done })
}

/// The running record an attempt's event continues.
fn running(subject: Subject<'_>) -> Result<&TaskStatus, Refusal> {
    match own(subject) {
        Some(s) if s.phase == Phase::Running => Ok(s),
        Some(s) => Err(Refusal::NotRunning(s.phase)),
        None => Err(Refusal::NotRunning(Phase::Pending)),
    }
}

/// A branch todo for the task of `parent_status`, the next of its branches, starting from `work`.
fn new_branch(parent_status: &TaskStatus, f: &Failure, rules: &Rules, work: &str, (depth, parent_attempt): (u32, u32)) -> BranchInfo {
    let role = rules.routing.route(&f.failure_type, f.suggested);
    BranchInfo {
        id: format!("{}_branch_{:02}", parent_status.task_id, parent_status.branch_todos.len() + 1),
        parent_id: parent_status.task_id.clone(),
        parent_attempt,
        branch_reason: f.failure_type.branch_reason().into(),
        failure_type: f.failure_type.clone(),
        depth,
        role: role.to_string(),
        debug_instructions: f.instructions.clone(),
        max_debug_attempts: rules.max_debug_attempts,
        base_tree: work.to_owned(),
        missing: f.missing.clone(),
    }
}

/// The `Debugging` record of a task whose branch todo `info` is now at work.
fn debugging(prev: &TaskStatus, info: &BranchInfo, message: String, now: Timestamp) -> TaskStatus {
    let mut s = prev.next(Phase::Debugging, now);
    s.reason = Some(Reason::BranchTodoOpened);
    s.failure_type = Some(info.failure_type.clone());
    s.message = message;
    s.finished_at = Some(now);
    s.branch_todos.push(info.id.clone());
    s.open_branch = Some(info.clone());
    set_conditions(&mut s, Some(prev), now);
    s
}

/// The reason a failed attempt's record gives.
fn failure_reason(t: &FailureType) -> Reason {
    match t {
        FailureType::BudgetExceeded => Reason::BudgetExceeded,
        FailureType::ProtectedPath => Reason::ProtectedPath,
        FailureType::TestTampering => Reason::TestTampering,
        FailureType::Uncommittable => Reason::UncommittableWork,
        FailureType::MissingOutputs => Reason::MissingOutputs,
        _ => Reason::AttemptFailed,
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn condition(kind: &str, status: bool, reason: Reason, message: String, now: Timestamp) -> Condition {
    Condition {
        kind: kind.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.to_string(),
        message,
        last_transition_time: Some(now),
    }
}

/// The conditions of a record in `phase` (Kubernetes style): `Ready` (accepted for its spec),
/// `Reconciling` (work under way or to come) and `Stalled` (a person must act; `spent` says a
/// failed task has no attempts left), each keeping its last transition time while its status
/// stays.
pub fn conditions(s: &TaskStatus, spent: bool, prev: &[Condition], now: Timestamp) -> Vec<Condition> {
    let reason = s.reason.clone().unwrap_or_else(|| Reason::parse(s.phase.as_str()));
    let stalled = matches!(s.phase, Phase::Escalated | Phase::BudgetExceeded | Phase::NeedsApproval | Phase::Suspended) || spent;
    let reconciling =
        matches!(s.phase, Phase::Pending | Phase::Claimed | Phase::Running | Phase::Debugging | Phase::Approved | Phase::Released)
            || (s.phase == Phase::Failed && !spent);
    [("Ready", s.phase == Phase::Succeeded), ("Reconciling", reconciling), ("Stalled", stalled)]
        .into_iter()
        .map(|(kind, status)| {
            let mut c = condition(kind, status, reason.clone(), s.message.clone(), now);
            if let Some(old) = prev.iter().find(|o| o.kind == kind && o.status == c.status) {
                c.last_transition_time = old.last_transition_time;
            }
            c
        })
        .collect()
}

fn set_conditions(s: &mut TaskStatus, prev: Option<&TaskStatus>, now: Timestamp) {
    s.conditions = conditions(s, false, prev.map(|p| p.conditions.as_slice()).unwrap_or_default(), now);
}
