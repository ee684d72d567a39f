//! A branch todo's attempt: the routed role works on the parent's failing work; the parent's
//! acceptance tests then decide. Pass: the parent's result is published and the parent is
//! `Succeeded`. Fail: a deeper branch while the depth allows, else the parent is `Escalated`.
//! A branch whose own agent keeps failing escalates the parent after `max_debug_attempts`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use jiff::Timestamp;
use plancd_sandbox::{FileEntry, Session};

use super::steps::{self, Failure, Logs, Report, Stop};
use super::task::{released, task_file};
use super::{
    Accepted, AttemptEnd, AttemptError, AttemptPlan, BranchPlan, PassContext, contract_names, finish_with, new_branch, succeeded,
    verify_and_publish,
};
use crate::agent::{AgentRun, DependencyResult};
use crate::publish::{self, Provenance};
use crate::reconcile::workspace::{self, AgentChange};
use crate::spec::{Role, SpecHash, Task};
use crate::state::{Phase, StateError, TaskKey, TaskStatus, TestSummary};
use crate::triage::python_requirement;

/// What a branch's work came to.
enum Verdict {
    Passed {
        work: Oid,
        change: AgentChange,
        tests: TestSummary,
        agent: Box<AgentRun>,
    },
    /// The branch's agent did not finish: the branch's own attempt failed.
    AgentFailed(Failure),
    /// The agent finished, and the parent's tests still fail on its work.
    StillFailing {
        failure: Failure,
        work: Oid,
        contract_names: Vec<String>,
    },
}

/// Runs one attempt of a branch todo.
pub(super) async fn run(cx: Arc<PassContext>, plan: AttemptPlan, branch: BranchPlan) -> Result<AttemptEnd, AttemptError> {
    let parent = cx.snapshot.task(&branch.parent).expect("branch todos are planned for tasks of the snapshot").clone();
    let hash = cx.snapshot.hashes[&branch.parent].clone();
    let info = branch.info.clone();
    let shape = |s: &mut TaskStatus| {
        s.spec_hash = Some(hash.clone());
        s.role = Some(info.role.clone());
        s.branch = Some(info.clone());
    };
    let Some((tip, claim)) = super::claim(&cx, &plan, parent.timeout_seconds, shape)? else { return Ok(AttemptEnd::LostClaim) };
    if let Some(end) = adopt(&cx, &plan.key, &branch, &hash, (tip, &claim)).await? {
        return Ok(end);
    }
    if claim.attempts_used() > info.max_debug_attempts {
        let message = format!("{} failed {} attempt(s)", info.id, info.max_debug_attempts);
        return escalate(&cx, &plan.key, &branch, (tip, &claim), "BranchAttemptsExhausted", message, Logs::new(plan.attempt));
    }
    let mut logs = Logs::new(plan.attempt);
    let mut report = Report::default();
    let mut cancel = cx.cancel.clone();
    let outcome = tokio::select! {
        outcome = work(&cx, &plan, &branch, &parent, &mut logs, &mut report) => outcome,
        _ = cancel.wait_for(|c| *c) => Err(Stop::Cancelled),
    };
    match outcome {
        Ok((verdict, base)) => judge(&cx, &plan, &branch, &parent, &hash, (tip, claim), verdict, base, logs, report).await,
        Err(stop) => {
            logs.report(&report);
            released(&cx, &plan.key, tip, &claim, stop, &logs)
        }
    }
}

/// The parent's result, published by an interrupted run of this branch, gets recorded.
async fn adopt(
    cx: &PassContext,
    key: &TaskKey,
    branch: &BranchPlan,
    hash: &SpecHash,
    (tip, claim): (Oid, &TaskStatus),
) -> Result<Option<AttemptEnd>, AttemptError> {
    let Some((parent_tip, parent)) = open_parent(cx, branch)? else { return Ok(Some(AttemptEnd::LostClaim)) };
    let published = {
        let repo = cx.store.repo();
        match publish::adoptable(&repo, &branch.parent, hash, parent.accepted) {
            Some((commit, _)) => publish::publish(&repo, &branch.parent, commit, parent.accepted)?,
            None => return Ok(None),
        }
    };
    let published = match super::upstream(cx, (key, tip, claim), &branch.parent, published).await? {
        Ok(published) => published,
        Err(end) => return Ok(Some(end)),
    };
    let message = format!("fixed by {}; recorded the result an interrupted run published", branch.info.id);
    let s = succeeded(&parent, &published, Vec::new(), None, message);
    if write(cx, &branch.parent, parent_tip, &s)?.is_none() {
        return Ok(Some(AttemptEnd::LostClaim));
    }
    let mut done = claim.next(Phase::Succeeded, Timestamp::now());
    done.finished_at = Some(done.updated_at);
    done.reason = Some("Adopted".into());
    done.message = format!("{} is fixed", branch.parent);
    let end = AttemptEnd::Adopted { commit: published.commit, tag: published.tag };
    finish_with(cx, key, tip, &done, &Logs::new(claim.attempt), None, end).map(Some)
}

/// The parent's current status, if it still waits on this branch.
fn open_parent(cx: &PassContext, branch: &BranchPlan) -> Result<Option<(Oid, TaskStatus)>, AttemptError> {
    Ok(cx
        .store
        .status(&branch.parent)?
        .filter(|(_, s)| s.phase == Phase::Debugging && s.open_branch.as_ref().is_some_and(|b| b.id == branch.info.id)))
}

fn write(cx: &PassContext, key: &TaskKey, tip: Oid, status: &TaskStatus) -> Result<Option<Oid>, AttemptError> {
    match cx.store.append(key, Some(tip), status, &[]) {
        Ok(tip) => Ok(Some(tip)),
        Err(StateError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The sandboxed part: the failing work, the branch's agent (or a safe quick fix), the
/// parent's checks and acceptance tests.
async fn work(
    cx: &PassContext,
    plan: &AttemptPlan,
    branch: &BranchPlan,
    parent: &Task,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<(Verdict, Oid), Stop> {
    let deadline = Instant::now() + Duration::from_secs(u64::from(parent.timeout_seconds));
    let (base_tree, input, base, dependencies) = {
        let repo = cx.store.repo();
        let base_tree = Oid::from_str(&branch.info.base_tree)?;
        let input = workspace::tree_files(&repo, base_tree)?;
        let mut changes = Vec::new();
        for (_, result) in &plan.upstream {
            changes.push(cx.changes.get(&repo, *result)?);
        }
        let parent_input = workspace::apply(&repo, &repo.find_commit(cx.snapshot.plan_commit)?.tree()?, &changes)?;
        let base = publish::base_commit(&repo, &branch.parent, cx.snapshot.plan_commit, &plan.direct, parent_input)?;
        let mut deps = Vec::new();
        for (id, result) in &plan.direct {
            deps.push(DependencyResult {
                task_id: id.clone(),
                result_commit: result.to_string(),
                files: cx.changes.get(&repo, *result)?.paths(),
            });
        }
        (base_tree, input, base, deps)
    };
    let role: Role = serde_json::from_value(serde_json::Value::String(branch.info.role.clone())).unwrap_or(Role::Debugger);
    let mut file = task_file(cx, plan, parent, &input, dependencies);
    file.role = role;
    file.title = format!("Debug {} - {}", parent.title, branch.info.failure_type);
    file.parent_id = Some(branch.parent.task.clone());
    file.branch_reason = Some(branch.info.branch_reason.clone());
    file.debug_instructions = Some(branch.info.debug_instructions.clone());
    logs.add("task.json", serde_json::to_vec_pretty(&file).expect("a task file always serialises"));
    let session = cx.sandbox.create(&steps::session_spec(cx)).await?;
    let verdict = in_session(cx, plan, branch, parent, role, session.as_ref(), (base_tree, &input), &file, deadline, logs, report).await;
    let _ = session.destroy().await;
    Ok((verdict?, base))
}

#[allow(clippy::too_many_arguments)] // one call site; the steps share these.
async fn in_session(
    cx: &PassContext,
    plan: &AttemptPlan,
    branch: &BranchPlan,
    parent: &Task,
    role: Role,
    session: &dyn Session,
    (base_tree, input): (Oid, &[FileEntry]),
    file: &crate::agent::TaskFile,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Verdict, Stop> {
    session.put_files(input).await?;
    let agent = match quick_fix(plan, branch, input, session, logs).await? {
        Some(fixed) => fixed,
        None => match steps::run_agent(cx, role, session, file, deadline, logs, report).await? {
            Ok(agent) => agent,
            Err(failure) => return Ok(Verdict::AgentFailed(failure)),
        },
    };
    let pinned = &parent.acceptance_criteria.files;
    let change = steps::collect_change(session, input, pinned, report).await?;
    if let Some(refused) = steps::guard_change(cx, parent, input, &change, report) {
        return Ok(Verdict::AgentFailed(refused));
    }
    let work = workspace::apply_agent_change(&cx.store.repo(), base_tree, &change)?;
    let still = |failure| Verdict::StillFailing { failure, work, contract_names: contract_names(input, parent.contract.as_ref()) };
    if let Some(failure) = steps::run_checks(cx, role, session, deadline, logs, report).await? {
        return Ok(still(failure));
    }
    let originals: Vec<FileEntry> = input.iter().filter(|f| pinned.contains(&f.path)).cloned().collect();
    let (mut tests, failure) = steps::run_tests(cx, session, &parent.acceptance_criteria.tests, &originals, deadline, logs, report).await?;
    tests.pinned_files_changed = change.pinned_touched.clone();
    let failure = match failure {
        None => steps::run_probes(cx, session, &parent.acceptance_criteria, input, deadline, logs, report).await?,
        failure => failure,
    };
    Ok(match failure {
        // A refusal fails the branch's own attempt: no deeper branch can fix it.
        Some(failure) if failure.refusal().is_some() => Verdict::AgentFailed(failure),
        Some(failure) => still(failure),
        None => Verdict::Passed { work, change, tests, agent: Box::new(agent) },
    })
}

/// The safe quick fix, tried on a branch's first attempt before any agent: a missing Python
/// package is added to requirements.txt.
async fn quick_fix(
    plan: &AttemptPlan,
    branch: &BranchPlan,
    input: &[FileEntry],
    session: &dyn Session,
    logs: &mut Logs,
) -> Result<Option<AgentRun>, Stop> {
    if plan.attempt != 1 || branch.info.failure_type != "missing_dependency" {
        return Ok(None);
    }
    let paths: Vec<String> = input.iter().map(|f| f.path.clone()).collect();
    let Some(requirement) = branch.info.missing.as_deref().and_then(|m| python_requirement(m, &paths)) else { return Ok(None) };
    let mut text =
        input.iter().find(|f| f.path == "requirements.txt").map(|f| String::from_utf8_lossy(&f.data).into_owned()).unwrap_or_default();
    if text.lines().any(|l| l.trim().eq_ignore_ascii_case(&requirement)) {
        return Ok(None);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{requirement}\n"));
    session.put_files(&[FileEntry::new("requirements.txt", text)]).await?;
    logs.add("agent.log", format!("quick fix: added `{requirement}` to requirements.txt\n").into_bytes());
    Ok(Some(AgentRun {
        outcome: plancd_sandbox::ExecOutcome { exit_code: Some(0), ..Default::default() },
        agent: format!("quickfix: requirements.txt += {requirement}"),
        model: "none".into(),
        prompt_hash: "none".into(),
        argv: vec!["quickfix".into()],
        logs: Vec::new(),
        cost: Default::default(),
        failure: None,
    }))
}

/// Writes what the branch's work came to.
#[allow(clippy::too_many_arguments)] // one call site; the attempt's whole context.
async fn judge(
    cx: &PassContext,
    plan: &AttemptPlan,
    branch: &BranchPlan,
    parent: &Task,
    hash: &SpecHash,
    (tip, claim): (Oid, TaskStatus),
    verdict: Verdict,
    base: Oid,
    mut logs: Logs,
    mut report: Report,
) -> Result<AttemptEnd, AttemptError> {
    let info = &branch.info;
    match verdict {
        Verdict::Passed { work, change, tests, agent } => {
            logs.report(&report);
            fixed(cx, plan, branch, parent, hash, (tip, &claim), (work, base, change, tests, *agent), &logs).await
        }
        Verdict::AgentFailed(failure) if failure.failure_type == "spec_mismatch" => {
            logs.report(&report);
            spec_mismatch(cx, plan, branch, parent, (tip, &claim), failure, logs)
        }
        Verdict::AgentFailed(failure) => {
            logs.report(&report);
            let now = Timestamp::now();
            let mut s = claim.next(Phase::Failed, now);
            s.reason = Some(failure.reason().into());
            s.failure_type = Some(failure.failure_type.clone());
            s.message = failure.message.clone();
            s.finished_at = Some(now);
            if failure.failure_type == "budget_exceeded" {
                // No further attempt can spend anything: a person raises the budget or retries.
                let message = format!("{}: {}", info.id, failure.message);
                return escalate(cx, &plan.key, branch, (tip, &claim), "BudgetExceeded", message, logs);
            }
            if s.attempts_used() < info.max_debug_attempts {
                return finish_with(
                    cx,
                    &plan.key,
                    tip,
                    &s,
                    &logs,
                    None,
                    AttemptEnd::Failed { failure_type: failure.failure_type, message: failure.message },
                );
            }
            let message = format!("{} failed {} attempt(s); last: {}", info.id, info.max_debug_attempts, failure.message);
            escalate(cx, &plan.key, branch, (tip, &claim), "BranchAttemptsExhausted", message, logs)
        }
        Verdict::StillFailing { failure, work, contract_names } => {
            let classification = failure.classify(&cx.triage, contract_names);
            report.triage = Some(classification.clone());
            logs.report(&report);
            if info.depth >= cx.snapshot.config.max_branch_depth {
                let mut message = format!(
                    "still failing after {} branch todo(s), the most allowed (max_branch_depth {}): {}; {}",
                    info.depth, cx.snapshot.config.max_branch_depth, failure.message, classification.summary
                );
                if !classification.evidence.is_empty() {
                    message.push_str(&format!("; evidence: {}", classification.evidence.join(" | ")));
                }
                return escalate(cx, &plan.key, branch, (tip, &claim), "MaxBranchDepth", message, logs);
            }
            deepen(cx, plan, branch, parent, (tip, &claim), failure, &classification, work, logs)
        }
    }
}

/// The parent's tests pass on the branch's work: publish the parent's result.
#[allow(clippy::too_many_arguments)] // one call site; the attempt's whole context.
async fn fixed(
    cx: &PassContext,
    plan: &AttemptPlan,
    branch: &BranchPlan,
    parent: &Task,
    hash: &SpecHash,
    (tip, claim): (Oid, &TaskStatus),
    (work, base, change, tests, agent): (Oid, Oid, AgentChange, TestSummary, AgentRun),
    logs: &Logs,
) -> Result<AttemptEnd, AttemptError> {
    let Some((parent_tip, parent_status)) = open_parent(cx, branch)? else { return Ok(AttemptEnd::LostClaim) };
    // The result holds the parent's work and the branch's fix: what both changed.
    let files = {
        let repo = cx.store.repo();
        workspace::change_between(&repo, repo.find_commit(base)?.tree_id(), work)?.paths()
    };
    let _ = change;
    let prov = Provenance {
        key: branch.parent.clone(),
        spec_hash: hash.clone(),
        attempt: branch.info.parent_attempt,
        agent: format!("{} (fixed by {}: {})", parent.agent_role, branch.info.id, agent.agent),
        model: agent.model,
        prompt_hash: agent.prompt_hash,
        correlation_id: cx.correlation_id.clone(),
        plan_commit: cx.snapshot.plan_commit,
    };
    let accepted = Accepted { tree: work, base, files, tests, prov, title: parent.title.clone(), body: parent.description.clone() };
    let (tip, published) =
        match verify_and_publish(cx, (&plan.key, tip, claim), logs, &branch.parent, parent_status.accepted, &accepted).await? {
            Ok(done) => done,
            Err(end) => return Ok(end),
        };
    let message = format!("{} acceptance test(s) passed after {}", accepted.tests.passed, branch.info.id);
    let s = succeeded(&parent_status, &published, accepted.files, Some(accepted.tests), message);
    if write(cx, &branch.parent, parent_tip, &s)?.is_none() {
        return Ok(AttemptEnd::LostClaim);
    }
    let mut done = claim.next(Phase::Succeeded, Timestamp::now());
    done.finished_at = Some(done.updated_at);
    done.add_cost(logs.cost);
    done.reason = Some("Resolved".into());
    done.message = format!("{} passes its acceptance tests", branch.parent);
    let end = AttemptEnd::Succeeded { commit: published.commit, tag: published.tag };
    finish_with(cx, &plan.key, tip, &done, &Logs::new(plan.attempt), None, end)
}

/// The parent's tests still fail on the branch's work: a deeper branch starts from it. The
/// branch's record goes first, the parent's (the commit point) last.
#[allow(clippy::too_many_arguments)] // one call site; the attempt's whole context.
fn deepen(
    cx: &PassContext,
    plan: &AttemptPlan,
    branch: &BranchPlan,
    parent: &Task,
    (tip, claim): (Oid, &TaskStatus),
    failure: Failure,
    classification: &crate::triage::Classification,
    work: Oid,
    logs: Logs,
) -> Result<AttemptEnd, AttemptError> {
    let Some((parent_tip, parent_status)) = open_parent(cx, branch)? else { return Ok(AttemptEnd::LostClaim) };
    let info = new_branch(cx, parent, &parent_status, &failure, classification, work, (branch.info.depth + 1, branch.info.parent_attempt));
    let now = Timestamp::now();
    let mut s = claim.next(Phase::Failed, now);
    s.reason = Some("Deepened".into());
    s.failure_type = Some(classification.failure_type.clone());
    s.message = format!("{}; {} goes on from this work", failure.message, info.id);
    s.finished_at = Some(now);
    s.add_cost(logs.cost);
    let trees = [(format!("{}/work", logs.dir()), work)];
    match cx.store.append_with_trees(&plan.key, Some(tip), &s, &logs.files, &trees) {
        Ok(_) => {}
        Err(StateError::Conflict { .. }) => return Ok(AttemptEnd::LostClaim),
        Err(e) => return Err(e.into()),
    }
    let message = format!("{} did not fix it; {} ({}) opened for the {}", branch.info.id, info.id, classification.failure_type, info.role);
    let p = super::debugging(&parent_status, &info, message);
    match write(cx, &branch.parent, parent_tip, &p)? {
        Some(_) => {
            Ok(AttemptEnd::Debugging { branch: info.id, failure_type: classification.failure_type.clone(), message: failure.message })
        }
        None => Ok(AttemptEnd::LostClaim),
    }
}

/// The debugger says the contract or the tests ask for something inconsistent: no fix of the
/// code can pass, so the work goes to the role `spec_mismatch` routes to (the architect unless
/// the task's `failure_routing` says otherwise) in a deeper branch todo, from the work this
/// branch started from. With no such role, or no depth left, a person decides.
fn spec_mismatch(
    cx: &PassContext,
    plan: &AttemptPlan,
    branch: &BranchPlan,
    parent: &Task,
    (tip, claim): (Oid, &TaskStatus),
    failure: Failure,
    logs: Logs,
) -> Result<AttemptEnd, AttemptError> {
    let info = &branch.info;
    let role = super::route(cx, parent, "spec_mismatch", Role::Architect);
    let max_depth = cx.snapshot.config.max_branch_depth;
    if role == Role::Debugger || info.depth >= max_depth {
        let why = if role == Role::Debugger {
            "no role but the debugger to revise the specification (configure an architect, or route spec_mismatch in failure_routing)"
                .to_owned()
        } else {
            format!("no branch depth left (max_branch_depth {max_depth})")
        };
        let message = format!("{}: {}; {why}", info.id, failure.message);
        return escalate(cx, &plan.key, branch, (tip, claim), "SpecMismatch", message, logs);
    }
    let classification = crate::triage::Classification {
        failure_type: "spec_mismatch".into(),
        target_agent: role,
        auto_fixable: false,
        summary: failure.message.clone(),
        evidence: vec![failure.message.clone()],
        missing: None,
    };
    let work = Oid::from_str(&info.base_tree)?;
    deepen(cx, plan, branch, parent, (tip, claim), failure, &classification, work, logs)
}

/// Hands the parent to a person, then closes the branch.
fn escalate(
    cx: &PassContext,
    key: &TaskKey,
    branch: &BranchPlan,
    (tip, claim): (Oid, &TaskStatus),
    reason: &str,
    message: String,
    logs: Logs,
) -> Result<AttemptEnd, AttemptError> {
    let now = Timestamp::now();
    if let Some((parent_tip, parent_status)) = open_parent(cx, branch)? {
        let mut p = parent_status.next(Phase::Escalated, now);
        p.reason = Some(reason.into());
        p.failure_type = Some(branch.info.failure_type.clone());
        p.message = message.clone();
        p.finished_at = Some(now);
        if write(cx, &branch.parent, parent_tip, &p)?.is_none() {
            return Ok(AttemptEnd::LostClaim);
        }
    }
    let mut s = claim.next(Phase::Escalated, now);
    s.reason = Some(reason.into());
    s.message = message.clone();
    s.finished_at = Some(now);
    finish_with(cx, key, tip, &s, &logs, None, AttemptEnd::Escalated { message })
}
