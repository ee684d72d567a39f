//! A task's attempt: from the watched commit and its dependencies' results to a published
//! result, a branch todo, or a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use jiff::Timestamp;
use plancd_sandbox::{FileEntry, Session};

use super::steps::{self, Failure, Logs, Report, Stop};
use super::{
    Accepted, AttemptEnd, AttemptError, AttemptPlan, PassContext, claim, contract_names, debugging, finish_with, new_branch, succeeded,
    verify_and_publish,
};
use crate::agent::{AgentRun, ContractFile, DependencyResult, TaskFile};
use crate::publish::{self, Provenance};
use crate::reconcile::workspace::{self, AgentChange};
use crate::spec::{Document, Format, Limits, SpecHash, Task};
use crate::state::{Phase, StateError, TaskStatus, TestSummary};

/// What the sandboxed part came to.
enum Verdict {
    Passed { work: Oid, change: AgentChange, tests: TestSummary, agent: Box<AgentRun> },
    Failed { failure: Failure, tests: Option<TestSummary>, work: Option<Oid>, contract_names: Vec<String> },
}

/// Everything the attempt starts from.
struct Prepared {
    input_tree: Oid,
    input: Vec<FileEntry>,
    task_file: TaskFile,
    base: Oid,
}

/// Runs one attempt of a task.
pub(super) async fn run(cx: Arc<PassContext>, plan: AttemptPlan) -> Result<AttemptEnd, AttemptError> {
    let task = cx.snapshot.task(&plan.key).expect("the executor only plans tasks of the snapshot").clone();
    let hash = cx.snapshot.hashes[&plan.key].clone();
    let shape = |s: &mut TaskStatus| {
        s.spec_hash = Some(hash.clone());
        s.role = Some(task.agent_role.to_string());
    };
    let Some((tip, claim)) = claim(&cx, &plan, task.timeout_seconds, shape)? else { return Ok(AttemptEnd::LostClaim) };
    if let Some(end) = adopt(&cx, &plan, &hash, tip, &claim).await? {
        return Ok(end);
    }
    let mut logs = Logs::new(plan.attempt);
    let mut report = Report::default();
    let mut cancel = cx.cancel.clone();
    let outcome = tokio::select! {
        outcome = work(&cx, &plan, &task, &mut logs, &mut report) => outcome,
        _ = cancel.wait_for(|c| *c) => Err(Stop::Cancelled),
    };
    finish(&cx, &plan, &task, &hash, (tip, claim), outcome, logs, report).await
}

/// Records a result that an interrupted run published but never recorded.
async fn adopt(
    cx: &PassContext,
    plan: &AttemptPlan,
    hash: &SpecHash,
    tip: Oid,
    claim: &TaskStatus,
) -> Result<Option<AttemptEnd>, AttemptError> {
    let published = {
        let repo = cx.store.repo();
        // The result already recorded is no interrupted run's: a review asked to redo it.
        let recorded = claim.result.as_ref().map(|r| r.commit.clone());
        match publish::adoptable(&repo, &plan.key, hash, claim.accepted) {
            Some((commit, _)) if recorded.as_deref() != Some(commit.to_string().as_str()) => {
                publish::publish(&repo, &plan.key, commit, claim.accepted)?
            }
            _ => return Ok(None),
        }
    };
    let published = match super::upstream(cx, (&plan.key, tip, claim), &plan.key, published).await? {
        Ok(published) => published,
        Err(end) => return Ok(Some(end)),
    };
    let from = publish::result_attempt(&cx.store.repo(), published.commit).map_or_else(String::new, |n| format!(" of attempt {n}"));
    let mut s = succeeded(claim, &published, Vec::new(), None, format!("recorded the result{from}, published by an interrupted run"));
    s.reason = Some("Adopted".into());
    let end = AttemptEnd::Adopted { commit: published.commit, tag: published.tag };
    match cx.store.append(&plan.key, Some(tip), &s, &[]) {
        Ok(_) => Ok(Some(end)),
        Err(StateError::Conflict { .. }) => Ok(Some(AttemptEnd::LostClaim)),
        Err(e) => Err(e.into()),
    }
}

/// The sandboxed part: workspace, agent, checks, tests.
async fn work(cx: &PassContext, plan: &AttemptPlan, task: &Task, logs: &mut Logs, report: &mut Report) -> Result<(Verdict, Oid), Stop> {
    let deadline = Instant::now() + Duration::from_secs(u64::from(task.timeout_seconds));
    let prepared = prepare(cx, plan, task)?;
    logs.add("task.json", serde_json::to_vec_pretty(&prepared.task_file).expect("a task file always serialises"));
    let session = cx.sandbox.create(&steps::session_spec(cx)).await?;
    let verdict = in_session(cx, task, session.as_ref(), &prepared, deadline, logs, report).await;
    // Destroy whatever happened; a failure to clean up is not the task's failure.
    let _ = session.destroy().await;
    Ok((verdict?, prepared.base))
}

async fn in_session(
    cx: &PassContext,
    task: &Task,
    session: &dyn Session,
    prepared: &Prepared,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Verdict, Stop> {
    let input = &prepared.input;
    let failed =
        |failure, tests, work| Verdict::Failed { failure, tests, work, contract_names: contract_names(input, task.contract.as_ref()) };
    session.put_files(input).await?;
    let agent = match steps::run_agent(cx, task.agent_role, session, &prepared.task_file, deadline, logs, report).await? {
        Ok(agent) => agent,
        Err(failure) => return Ok(failed(failure, None, None)),
    };
    let pinned = &task.acceptance_criteria.files;
    let change = steps::collect_change(session, input, pinned, report).await?;
    if let Some(refused) = steps::guard_change(cx, task, input, &change, report) {
        return Ok(failed(refused, None, None));
    }
    let work = workspace::apply_agent_change(&cx.store.repo(), prepared.input_tree, &change)?;
    report.missing_outputs = steps::missing_outputs(&task.outputs, input, &change);
    if !report.missing_outputs.is_empty() {
        let message = format!("the agent did not produce: {}", report.missing_outputs.join(", "));
        let failure = Failure {
            failure_type: "missing_outputs".into(),
            message: message.clone(),
            output: message,
            agent_finished: true,
            ..Failure::default()
        };
        return Ok(failed(failure, None, Some(work)));
    }
    if let Some(failure) = steps::run_checks(cx, task.agent_role, session, deadline, logs, report).await? {
        return Ok(failed(failure, None, Some(work)));
    }
    let originals: Vec<FileEntry> = input.iter().filter(|f| pinned.contains(&f.path)).cloned().collect();
    let (mut tests, failure) = steps::run_tests(cx, session, &task.acceptance_criteria.tests, &originals, deadline, logs, report).await?;
    tests.pinned_files_changed = change.pinned_touched.clone();
    let failure = match failure {
        None => steps::run_probes(cx, session, &task.acceptance_criteria, input, deadline, logs, report).await?,
        failure => failure,
    };
    match failure {
        Some(failure) => Ok(failed(failure, Some(tests), Some(work))),
        None => Ok(Verdict::Passed { work, change, tests, agent: Box::new(agent) }),
    }
}

/// The input tree and files, the task file, and the base commit of the result.
fn prepare(cx: &PassContext, plan: &AttemptPlan, task: &Task) -> Result<Prepared, Stop> {
    let snapshot = &cx.snapshot;
    let repo = cx.store.repo();
    let watched = repo.find_commit(snapshot.plan_commit)?;
    let mut changes = Vec::new();
    for (_, result) in &plan.upstream {
        changes.push(cx.changes.get(&repo, *result)?);
    }
    let input_tree = workspace::apply(&repo, &watched.tree()?, &changes)?;
    let input = workspace::tree_files(&repo, input_tree)?;
    let base = publish::base_commit(&repo, &plan.key, snapshot.plan_commit, &plan.direct, input_tree)?;
    let mut dependencies = Vec::new();
    for (id, result) in &plan.direct {
        dependencies.push(DependencyResult {
            task_id: id.clone(),
            result_commit: result.to_string(),
            files: cx.changes.get(&repo, *result)?.paths(),
        });
    }
    let mut task_file = task_file(cx, plan, task, &input, dependencies);
    // A reviewer's request for another attempt rides on the claim's record.
    task_file.instructions = cx.store.status(&plan.key).ok().flatten().and_then(|(_, s)| s.review).map(|r| r.instructions);
    Ok(Prepared { input_tree, input, task_file, base })
}

/// The task file an agent gets (`PLANCD_TASK`).
pub(super) fn task_file(
    cx: &PassContext,
    plan: &AttemptPlan,
    task: &Task,
    input: &[FileEntry],
    dependencies: Vec<DependencyResult>,
) -> TaskFile {
    let contract = task.contract.as_ref().and_then(|path| {
        let file = input.iter().find(|f| &f.path == path)?;
        let doc = Document::parse(&file.data, Format::from_path(path), &Limits::default()).ok()?;
        Some(ContractFile { path: path.clone(), content: doc.value })
    });
    TaskFile {
        workflow_id: plan.key.workflow.clone(),
        task_id: plan.key.task.clone(),
        role: task.agent_role,
        attempt: plan.attempt,
        title: task.title.clone(),
        description: task.description.clone(),
        acceptance_tests: task.acceptance_criteria.tests.clone(),
        pinned_files: task.acceptance_criteria.files.clone(),
        inputs: task.inputs.clone(),
        outputs: task.outputs.clone(),
        contract,
        dependencies,
        parent_id: task.parent_id.clone(),
        branch_reason: task
            .branch_reason
            .map(|r| serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()),
        debug_instructions: task.debug_instructions.clone(),
        instructions: None,
        plan_commit: cx.snapshot.plan_commit.to_string(),
        workspace: plancd_sandbox::WORKSPACE.into(),
    }
}

/// Writes the verdict: publish then `Succeeded`; a branch todo (`Debugging`); `Failed`; or the
/// claim released.
#[allow(clippy::too_many_arguments)] // one call site; the attempt's whole context.
async fn finish(
    cx: &PassContext,
    plan: &AttemptPlan,
    task: &Task,
    hash: &SpecHash,
    (tip, claim): (Oid, TaskStatus),
    outcome: Result<(Verdict, Oid), Stop>,
    mut logs: Logs,
    report: Report,
) -> Result<AttemptEnd, AttemptError> {
    let now = Timestamp::now();
    match outcome {
        Ok((Verdict::Passed { work, change, tests, agent }, base)) => {
            logs.report(&report);
            let prov = Provenance {
                key: plan.key.clone(),
                spec_hash: hash.clone(),
                attempt: plan.attempt,
                agent: agent.agent,
                model: agent.model,
                prompt_hash: agent.prompt_hash,
                correlation_id: cx.correlation_id.clone(),
                plan_commit: cx.snapshot.plan_commit,
            };
            let accepted = Accepted {
                tree: work,
                base,
                files: change.paths(),
                tests,
                prov,
                title: task.title.clone(),
                body: task.description.clone(),
            };
            let (tip, published) =
                match verify_and_publish(cx, (&plan.key, tip, &claim), &logs, &plan.key, claim.accepted, &accepted).await? {
                    Ok(done) => done,
                    Err(end) => return Ok(end),
                };
            let message = format!("{} acceptance test(s) passed", accepted.tests.passed);
            let mut s = succeeded(&claim, &published, accepted.files, Some(accepted.tests), message);
            s.add_cost(logs.cost);
            let end = AttemptEnd::Succeeded { commit: published.commit, tag: published.tag };
            finish_with(cx, &plan.key, tip, &s, &Logs::new(plan.attempt), None, end)
        }
        Ok((Verdict::Failed { failure, tests, work, contract_names }, _)) => {
            // A refusal is no bug to debug, and its work is kept nowhere.
            let work = work.filter(|_| failure.refusal().is_none());
            let branchable = work.is_some() && failure.agent_finished && cx.snapshot.config.max_branch_depth > 0;
            if let (true, Some(work)) = (branchable, work) {
                return open_branch(cx, plan, task, (tip, &claim), failure, tests, work, &contract_names, logs, report);
            }
            logs.report(&report);
            // A spent budget stops the task until a person raises it (or retries).
            let over_budget = failure.failure_type == "budget_exceeded";
            let mut s = claim.next(if over_budget { Phase::BudgetExceeded } else { Phase::Failed }, now);
            s.reason = Some(if over_budget { "BudgetExceeded" } else { failure.reason() }.into());
            s.failure_type = Some(failure.failure_type.clone());
            s.message = failure.message.clone();
            s.tests = tests;
            s.finished_at = Some(now);
            let end = AttemptEnd::Failed { failure_type: failure.failure_type, message: failure.message };
            finish_with(cx, &plan.key, tip, &s, &logs, work, end)
        }
        Err(stop) => {
            logs.report(&report);
            released(cx, &plan.key, tip, &claim, stop, &logs)
        }
    }
}

/// Gives a claim back after a signal or an infrastructure failure; the attempt does not count.
pub(super) fn released(
    cx: &PassContext,
    key: &crate::state::TaskKey,
    tip: Oid,
    claim: &TaskStatus,
    stop: Stop,
    logs: &Logs,
) -> Result<AttemptEnd, AttemptError> {
    let now = Timestamp::now();
    let mut s = claim.next(Phase::Released, now);
    s.attempts_base += 1;
    s.finished_at = Some(now);
    let end = match stop {
        Stop::Cancelled => {
            s.reason = Some("Cancelled".into());
            s.message = "the reconcile was stopped; the claim is released".into();
            AttemptEnd::Cancelled
        }
        Stop::Infrastructure(why) => {
            s.reason = Some("SandboxError".into());
            s.failure_type = Some("infrastructure".into());
            s.message = why.clone();
            AttemptEnd::Infrastructure(why)
        }
        Stop::Model(why) => {
            s.reason = Some("ModelError".into());
            s.failure_type = Some("infrastructure".into());
            s.message = why.clone();
            AttemptEnd::Infrastructure(why)
        }
        Stop::Git(e) => return Err(e.into()),
    };
    finish_with(cx, key, tip, &s, logs, None, end)
}

/// Triage, then the task goes `Debugging` with a branch todo that starts from its work.
#[allow(clippy::too_many_arguments)] // one call site; the failed attempt's whole context.
fn open_branch(
    cx: &PassContext,
    plan: &AttemptPlan,
    task: &Task,
    (tip, claim): (Oid, &TaskStatus),
    failure: Failure,
    tests: Option<TestSummary>,
    work: Oid,
    contract_names: &[String],
    mut logs: Logs,
    mut report: Report,
) -> Result<AttemptEnd, AttemptError> {
    let classification = failure.classify(&cx.triage, contract_names.to_vec());
    let info = new_branch(cx, task, claim, &failure, &classification, work, (1, plan.attempt));
    report.triage = Some(classification.clone());
    logs.report(&report);
    let message = format!("{}; {} ({}) opened for the {}", failure.message, info.id, classification.failure_type, info.role);
    let mut s = debugging(claim, &info, message);
    s.tests = tests;
    let end = AttemptEnd::Debugging { branch: info.id, failure_type: classification.failure_type, message: failure.message };
    finish_with(cx, &plan.key, tip, &s, &logs, Some(work), end)
}
