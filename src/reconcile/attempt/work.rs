//! The sandboxed part of an attempt, the same for a task and a branch todo: the workspace (the
//! watched commit with the upstream results, or for a branch todo its parent's failing work), the
//! agent (or a safe quick fix), the change collected, outputs, checks, pinned files restored and
//! the acceptance tests. It ends in a [`Verdict`] or a [`Stop`].

use std::time::{Duration, Instant};

use git2::{Oid, Repository};
use plancd_sandbox::copyout::Skip;
use plancd_sandbox::{FileEntry, Session};
use tracing::Instrument;

use super::measure;
use super::steps::{self, Failure, Logs, Report, Stop};
use super::{AttemptPlan, BranchPlan, PassContext, role_of};
use crate::agent::{AgentRun, ContractFile, DependencyResult, TaskFile};
use crate::publish;
use crate::reconcile::environment;
use crate::reconcile::input::Input;
use crate::reconcile::lifecycle;
use crate::reconcile::workspace;
use crate::spec::{Document, Format, Limits, Role, Task};
use crate::state::{EnvironmentHow, EnvironmentUse, FailureType, Reason, TestSummary};
use crate::triage::python_requirement;

/// What the work came to.
pub(super) enum Verdict {
    /// The acceptance tests passed.
    Passed(Box<Passed>),
    /// The work did not pass (triage done).
    Failed(lifecycle::Failure),
}

/// Work whose acceptance tests passed.
pub(super) struct Passed {
    /// The result's tree.
    pub tree: Oid,
    /// The commit it goes on.
    pub base: Oid,
    /// The files the work changed, relative to the base.
    pub files: Vec<String>,
    /// The test counts.
    pub tests: TestSummary,
    /// The agent that did it.
    pub agent: AgentRun,
}

/// Everything the attempt starts from.
struct Prepared {
    /// The tree the agent starts from, and its files.
    input_tree: Oid,
    input: Input,
    /// The commit the result goes on.
    base: Oid,
    task_file: TaskFile,
    role: Role,
}

/// Runs the sandboxed part of an attempt: the agent in one session, then the checks and the
/// acceptance tests in a fresh one that holds exactly the work to be published (the input with
/// the agent's change applied), so nothing the agent left running or hidden outside the result
/// (daemons, `/tmp`, `$HOME`, ignored files) takes part in the verdict.
pub(super) async fn run(cx: &PassContext, plan: &AttemptPlan, task: &Task, logs: &mut Logs) -> Result<Verdict, Stop> {
    let deadline = Instant::now() + Duration::from_secs(u64::from(task.timeout_seconds));
    let prepared = match &plan.branch {
        Some(branch) => prepare_branch(cx, plan, branch, task)?,
        None => prepare(cx, plan, task)?,
    };
    logs.add("task.json", serde_json::to_vec_pretty(&prepared.task_file).expect("a task file always serialises"));
    let mut report = Report::default();
    let mut spec = steps::session_spec(cx);
    let env = Env::of(cx, &prepared);
    if let Some(failed) = env.prepare(cx, &mut spec, &prepared.input, logs).await? {
        return Ok(Verdict::Failed(failed));
    }
    let outcome = match agent_phase(cx, plan, task, &prepared, &spec, deadline, logs, &mut report).await {
        Ok(Ok(work)) => verify_phase(cx, task, &prepared, &spec, work, deadline, logs, &mut report).await,
        Ok(Err(outcome)) => Ok(outcome),
        Err(stop) => Err(stop),
    };
    let outcome = outcome.map(|o| judge(cx, task, &prepared, &env, o, &mut report, logs));
    logs.report(&report);
    outcome
}

/// The span of one step of an attempt (inside the attempt's span, which names the task).
fn step_span(step: &'static str) -> tracing::Span {
    tracing::info_span!("step", step)
}

/// The environment of an attempt: its key, and its declaration when plancd.yaml has one.
struct Env<'a> {
    key: String,
    declared: Option<&'a crate::config::EnvironmentConfig>,
    /// The declared image, on the docker backend: every session of the attempt runs in it.
    image: Option<String>,
}

impl<'a> Env<'a> {
    fn of(cx: &'a PassContext, prepared: &Prepared) -> Env<'a> {
        let basis = environment::Basis::of(&cx.snapshot.config, prepared.role);
        // The files that key the environment are small (lockfiles, manifests): read here only.
        let read: Vec<(&str, Vec<u8>)> =
            basis.cache_paths(prepared.input.paths()).into_iter().filter_map(|p| Some((p, prepared.input.read(p)?))).collect();
        let keyed: Vec<(&str, &[u8])> = read.iter().map(|(p, data)| (*p, data.as_slice())).collect();
        Env { key: basis.key(&keyed), declared: basis.declared, image: basis.image().map(str::to_owned) }
    }

    /// Gets the declared environment (built once, or reused) and mounts it in `spec`; a setup
    /// that failed is this attempt's failure when it ran it, and holds the attempt otherwise.
    async fn prepare(
        &self,
        cx: &PassContext,
        spec: &mut plancd_sandbox::SessionSpec,
        input: &Input,
        logs: &mut Logs,
    ) -> Result<Option<lifecycle::Failure>, Stop> {
        let Some(declared) = self.declared else { return Ok(None) };
        if let Some(image) = &self.image {
            spec.image = Some(image.clone());
        }
        logs.step(cx, crate::live::Step::Environment);
        let start = Instant::now();
        let request = environment::store::BuildRequest { key: &self.key, declared, sandbox: cx.sandbox.as_ref(), spec, input };
        let (failure, ran_here) = match cx.environments.get(&request).await {
            Ok(got) => {
                got.apply(spec);
                logs.environment = Some(got.used);
                return Ok(None);
            }
            Err(failed) => failed,
        };
        logs.environment =
            Some(EnvironmentUse { key: self.key.clone(), how: EnvironmentHow::Failed, seconds: start.elapsed().as_secs_f64() });
        if !ran_here {
            return Err(Stop::Environment(format!(
                "held: the environment {} failed to build for another attempt: {}",
                self.key, failure.message
            )));
        }
        logs.add("environment.log", format!("$ environment {}\n{}\n-> {}\n", self.key, failure.output, failure.message).into_bytes());
        let message = format!("the environment {} failed to build: {}", self.key, failure.message);
        let mut f = lifecycle::Failure::new(FailureType::Environment, message.clone());
        f.reason = Some(Reason::EnvironmentFailed);
        f.instructions = format!("{message}\nFix environment.setup in plancd.yaml (see environment.log); no agent ran.");
        Ok(Some(f))
    }

    /// The failure for what the environment lacks.
    fn lacking(&self, problem: &str, missing: &str, evidence: &str, advice: &str) -> lifecycle::Failure {
        let message = format!("the environment {problem} ({evidence}): {advice} in environment.setup");
        let mut f = lifecycle::Failure::new(FailureType::Environment, message);
        f.reason = Some(Reason::EnvironmentIncomplete);
        f.missing = Some(missing.to_owned());
        f
    }
}

/// Before any agent runs: every acceptance test's runner is there. `Some` names what is not.
async fn probe_runners(
    cx: &PassContext,
    task: &Task,
    session: &dyn Session,
    logs: &mut Logs,
) -> Result<Option<(String, String, String)>, Stop> {
    let mut probes: Vec<environment::RunnerProbe> =
        task.acceptance_criteria.tests.iter().filter_map(|t| environment::runner_probe(&t.cmd)).collect();
    probes.dedup();
    if probes.is_empty() {
        return Ok(None);
    }
    let mut log = Vec::new();
    let mut lacking = None;
    for probe in probes {
        let o = session.exec(&plancd_sandbox::ExecRequest::shell(&probe.script, Duration::from_secs(60))).await?;
        cx.emit(crate::reconcile::Event::Exec { kind: "probe", duration: o.duration });
        Logs::command(&mut log, &probe.script, &o);
        if !o.success() && lacking.is_none() {
            let evidence = format!("`{}` {}", probe.script, o);
            lacking = Some((probe.runner, evidence, probe.advice));
        }
    }
    logs.add("runners.log", log);
    Ok(lacking)
}

/// What happened in the sessions, before triage.
enum Outcome {
    Passed {
        tree: Oid,
        tests: TestSummary,
        agent: Box<AgentRun>,
    },
    Failed {
        failure: Failure,
        tests: Option<TestSummary>,
        work: Option<Oid>,
    },
    /// The work cannot be committed at all.
    Refused {
        failure_type: FailureType,
        message: String,
    },
    /// A test runner is not there (missing, evidence, advice): no agent ran.
    Environment((String, String, String)),
}

/// The agent's work, committed as a tree and ready for verification.
struct Work {
    tree: Oid,
    change: workspace::AgentChange,
    agent: AgentRun,
}

/// The agent's session: the input in, the agent (or a safe quick fix), the change streamed out
/// and judged by the guard. The session is gone when this returns.
#[allow(clippy::too_many_arguments)] // one call site; the steps share these.
async fn agent_phase(
    cx: &PassContext,
    plan: &AttemptPlan,
    task: &Task,
    prepared: &Prepared,
    spec: &plancd_sandbox::SessionSpec,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Result<Work, Outcome>, Stop> {
    // The model gateway, when the role's command has a model: the session's one door out.
    let gateway = steps::open_gateway(cx, prepared.role, &prepared.task_file).await?;
    // The role's egress allowlist, when it has one: this session's only other door. The
    // verifying session (checks, acceptance tests) gets neither.
    let door = steps::open_door(cx, prepared.role).await?;
    let mut spec = spec.clone();
    if let Some(gateway) = &gateway {
        spec.ports.push(gateway.forward());
    }
    if let Some(door) = &door {
        door.apply(&mut spec);
    }
    let session = cx.sandbox.create(&spec).await?;
    let teed = logs.teed(session.as_ref());
    // Before any agent runs: the acceptance tests' runners are there.
    let outcome = match probe_runners(cx, task, session.as_ref(), logs).await {
        Ok(None) => in_agent_session(cx, plan, task, &teed, gateway.as_ref(), prepared, deadline, logs, report).await,
        Ok(Some(lacking)) => Ok(Err(Outcome::Environment(lacking))),
        Err(stop) => Err(stop),
    };
    // Destroy whatever happened; a failure to clean up is not the task's failure.
    drop(teed);
    let _ = session.destroy().await;
    drop(gateway);
    if let Some(door) = door {
        steps::close_door(door, plan.attempt, logs).await;
    }
    let (agent, change, skipped) = match outcome? {
        Ok(collected) => collected,
        Err(outcome) => return Ok(Err(outcome)),
    };
    steps::log_left_in_sandbox(report, logs);
    let input = &prepared.input;
    // A name the copy-out refuses (under `.git`, a control character) is work git cannot take.
    if let Some((bad, why)) = skipped.iter().find(|(_, why)| matches!(why, Skip::Name(_))) {
        let message = format!("the agent wrote `{}`, which cannot be committed ({why})", plancd_sandbox::escape::name(bad));
        return Ok(Err(Outcome::Refused { failure_type: FailureType::Uncommittable, message }));
    }
    if let Some(refused) = steps::guard_change(cx, task, input, &change, report) {
        return Ok(Err(Outcome::Refused { failure_type: FailureType::parse(&refused.failure_type), message: refused.message }));
    }
    let tree = match workspace::apply_agent_change(&cx.store.repo(), prepared.input_tree, &change) {
        Ok(tree) => tree,
        Err(e) => {
            return Ok(Err(Outcome::Refused {
                failure_type: FailureType::Uncommittable,
                message: format!("the agent's work cannot be committed: {e}"),
            }));
        }
    };
    report.missing_outputs = steps::missing_outputs(&task.outputs, input, &change);
    if !report.missing_outputs.is_empty() {
        let message = steps::missing_message(&report.missing_outputs, &skipped);
        let failure = Failure {
            failure_type: "missing_outputs".into(),
            output: message.clone(),
            message,
            agent_finished: true,
            ..Failure::default()
        };
        return Ok(Err(Outcome::Failed { failure, tests: None, work: Some(tree) }));
    }
    Ok(Ok(Work { tree, change, agent }))
}

type Collected = (AgentRun, workspace::AgentChange, Vec<(String, Skip)>);

#[allow(clippy::too_many_arguments)] // one call site; the steps share these.
async fn in_agent_session(
    cx: &PassContext,
    plan: &AttemptPlan,
    task: &Task,
    session: &dyn Session,
    gateway: Option<&crate::gateway::Gateway>,
    prepared: &Prepared,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Result<Collected, Outcome>, Stop> {
    let input = &prepared.input;
    input.put_into(session, |_| false).await?;
    let quick = match &plan.branch {
        Some(branch) if plan.attempt == 1 => quick_fix(branch, input, session, logs).await?,
        _ => None,
    };
    let agent = match quick {
        Some(fixed) => fixed,
        None => match steps::run_agent(cx, prepared.role, gateway, session, &prepared.task_file, deadline, logs, report)
            .instrument(step_span("agent"))
            .await?
        {
            Ok(agent) => agent,
            Err(failure) => {
                if failure.failure_type == FailureType::BudgetExceeded.as_str() {
                    // Stopped at the budget: what it did so far is kept beside the logs.
                    let (change, _) = steps::collect_change(cx, session, input, &task.acceptance_criteria.files, report).await?;
                    logs.work = workspace::apply_agent_change(&cx.store.repo(), prepared.input_tree, &change).ok();
                }
                return Ok(Err(Outcome::Failed { failure, tests: None, work: None }));
            }
        },
    };
    let (change, skipped) = steps::collect_change(cx, session, input, &task.acceptance_criteria.files, report).await?;
    Ok(Ok((agent, change, skipped)))
}

/// The verifying session: exactly the work's tree, then the checks, the acceptance tests (the
/// pinned files as committed) and the probes. The session is gone when this returns.
#[allow(clippy::too_many_arguments)] // one call site; the steps share these.
async fn verify_phase(
    cx: &PassContext,
    task: &Task,
    prepared: &Prepared,
    spec: &plancd_sandbox::SessionSpec,
    work: Work,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Outcome, Stop> {
    let session = cx.sandbox.create(spec).await?;
    let teed = logs.teed(session.as_ref());
    let outcome = in_verify_session(cx, task, prepared, &work, &teed, deadline, logs, report).await;
    drop(teed);
    let _ = session.destroy().await;
    let Work { tree, agent, .. } = work;
    Ok(match outcome? {
        Ok(tests) => Outcome::Passed { tree, tests, agent: Box::new(agent) },
        // A probe that still passes: the verdict was bought; no branch todo can fix that.
        Err((failure, _)) if failure.refusal().is_some() => {
            Outcome::Refused { failure_type: FailureType::parse(&failure.failure_type), message: failure.message }
        }
        Err((failure, tests)) => Outcome::Failed { failure, tests, work: Some(tree) },
    })
}

#[allow(clippy::too_many_arguments)] // one call site; the steps share these.
async fn in_verify_session(
    cx: &PassContext,
    task: &Task,
    prepared: &Prepared,
    work: &Work,
    session: &dyn Session,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Result<TestSummary, (Failure, Option<TestSummary>)>, Stop> {
    steps::put_work(cx, session, &prepared.input, &work.change).await?;
    if let Some(failure) = steps::run_checks(cx, prepared.role, session, deadline, logs, report).instrument(step_span("checks")).await? {
        return Ok(Err((failure, None)));
    }
    let input = &prepared.input;
    let pinned = &task.acceptance_criteria.files;
    let originals = input.entries(|p| pinned.iter().any(|q| q == p))?;
    let tests = &task.acceptance_criteria.tests;
    let plan = measure::prepare(cx, session, tests).await?;
    let (mut tests, failure) =
        steps::run_tests(cx, session, tests, &plan.run_as, &originals, deadline, logs, report).instrument(step_span("tests")).await?;
    tests.pinned_files_changed = work.change.pinned_touched.clone();
    let failure = match failure {
        None => {
            steps::run_probes(cx, session, &task.acceptance_criteria, input, deadline, logs, report).instrument(step_span("probes")).await?
        }
        failure => failure,
    };
    if failure.is_none() {
        // Measured only on a verdict that passed: the figures describe the published work.
        let has_python = input.paths().chain(work.change.written.iter().map(|f| f.path.as_str())).any(|p| p.ends_with(".py"));
        let quality = measure::finish(cx, plan, session, has_python, logs).instrument(step_span("quality")).await?;
        if let Some(failure) = below_minimum(task, &quality) {
            tests.quality = Some(Box::new(quality));
            return Ok(Err((failure, Some(tests))));
        }
        tests.quality = Some(Box::new(quality)).filter(|q| q.worth_recording());
    }
    Ok(match failure {
        Some(failure) => Err((failure, Some(tests))),
        None => Ok(tests),
    })
}

/// The failure of work whose coverage is below its task's `coverage_min`, or cannot be
/// measured while the task asks for a minimum.
fn below_minimum(task: &Task, quality: &crate::state::Quality) -> Option<Failure> {
    let min = task.acceptance_criteria.coverage_min?;
    let message = match &quality.coverage {
        Some(c) if c.percent + 1e-9 >= min => return None,
        Some(c) => format!(
            "the acceptance tests cover {:.1}% of the code ({} of {} statements), below the task's minimum of {min}%",
            c.percent, c.covered_lines, c.statements
        ),
        None => {
            let why = quality.unmeasured.iter().find(|u| u.figure == crate::state::quality::Figure::Coverage);
            let why = why.map_or("not measured".to_owned(), |u| {
                format!("{}{}", u.reason.describe(), if u.detail.is_empty() { String::new() } else { format!(": {}", u.detail) })
            });
            format!("the task asks for {min}% coverage, but coverage could not be measured ({why})")
        }
    };
    Some(Failure {
        failure_type: FailureType::CoverageBelowMinimum.as_str().into(),
        output: message.clone(),
        message,
        agent_finished: true,
        ..Failure::default()
    })
}

/// Triage of a failure, and the verdict.
fn judge(
    cx: &PassContext,
    task: &Task,
    prepared: &Prepared,
    env: &Env<'_>,
    outcome: Outcome,
    report: &mut Report,
    logs: &mut Logs,
) -> Verdict {
    let mut lacked = |problem: &str, missing: &str, evidence: &str, advice: &str| {
        if logs.environment.is_none() {
            logs.environment = Some(EnvironmentUse { key: env.key.clone(), how: EnvironmentHow::Failed, seconds: 0.0 });
        }
        Verdict::Failed(env.lacking(problem, missing, evidence, advice))
    };
    if let Outcome::Failed { failure, tests: Some(_), .. } = &outcome {
        let mut paths: Vec<String> = prepared.input.paths().map(str::to_owned).collect();
        paths.extend(report.changed_files.iter().cloned());
        paths.extend(task.outputs.iter().cloned());
        if let Some(lack) = environment::lack_in(&failure.output, &paths, env.declared.is_some()) {
            return lacked(&lack.problem(), &lack.missing, &lack.evidence, lack.advice());
        }
    }
    match outcome {
        Outcome::Environment((missing, evidence, advice)) => lacked(&format!("lacks `{missing}`"), &missing, &evidence, &advice),
        Outcome::Passed { tree, tests, agent } => {
            let files = {
                let repo = cx.store.repo();
                repo.find_commit(prepared.base).and_then(|c| workspace::change_between(&repo, c.tree_id(), tree)).map(|c| c.paths())
            }
            .unwrap_or_default();
            Verdict::Passed(Box::new(Passed { tree, base: prepared.base, files, tests, agent: *agent }))
        }
        Outcome::Refused { failure_type, message } => Verdict::Failed(lifecycle::Failure::new(failure_type, message)),
        Outcome::Failed { failure, tests, work } => {
            let finished = failure.agent_finished;
            let mut f = lifecycle::Failure::new(FailureType::parse(&failure.failure_type), failure.message.clone());
            f.tests = tests;
            f.work = work.filter(|_| finished).map(|w| w.to_string());
            if f.failure_type == FailureType::CoverageBelowMinimum {
                // Nothing to classify: the tests pass; more of the code needs testing.
                f.suggested = Role::Tester;
                f.instructions = format!(
                    "{}\nAdd tests that the acceptance commands run (they collect more than the pinned files) for the code they do not reach; see quality.log.",
                    failure.message
                );
            } else if f.work.is_some() {
                let classification = failure.classify(&cx.triage, contract_names(&prepared.input, task.contract.as_ref()));
                // "unknown" says less than what the steps already knew ("test_failure", ...).
                if classification.failure_type != FailureType::Unknown.as_str() {
                    f.failure_type = FailureType::parse(&classification.failure_type);
                }
                f.suggested = classification.target_agent;
                f.instructions = format!("{}\n{}", failure.message, classification.instructions(&failure.output));
                f.missing = classification.missing.clone();
                if !classification.evidence.is_empty() {
                    f.message = format!("{}; {}", f.message, classification.summary);
                }
                report.triage = Some(classification);
            }
            Verdict::Failed(f)
        }
    }
}

/// The declared outputs absent from `tree`.
pub(super) fn missing_in_tree(repo: &Repository, tree: Oid, outputs: &[String]) -> Result<Vec<String>, git2::Error> {
    let tree = repo.find_tree(tree)?;
    Ok(outputs.iter().filter(|o| tree.get_path(std::path::Path::new(o.as_str())).is_err()).cloned().collect())
}

/// The input tree and files, the task file, and the base commit of a task's result.
fn prepare(cx: &PassContext, plan: &AttemptPlan, task: &Task) -> Result<Prepared, Stop> {
    let snapshot = &cx.snapshot;
    let repo = cx.store.repo();
    let watched = repo.find_commit(snapshot.plan_commit)?;
    let input_tree = upstream_tree(cx, &repo, plan, &watched)?;
    let input = Input::of_tree(&repo, input_tree)?;
    let base = publish::base_commit(&repo, &plan.key, snapshot.plan_commit, &plan.direct, input_tree)?;
    let dependencies = dependencies(cx, &repo, plan)?;
    let mut task_file = task_file(cx, plan, task, &input, dependencies);
    // A reviewer's request for another attempt rides on the task's record.
    task_file.instructions = cx.store.status(&plan.key).ok().flatten().and_then(|(_, s)| s.review).map(|r| r.instructions);
    Ok(Prepared { input_tree, input, base, task_file, role: task.agent_role })
}

/// A branch todo starts from its parent's failing work; its result goes on the parent's base.
fn prepare_branch(cx: &PassContext, plan: &AttemptPlan, branch: &BranchPlan, parent: &Task) -> Result<Prepared, Stop> {
    let repo = cx.store.repo();
    let input_tree = Oid::from_str(&branch.info.base_tree)?;
    let input = Input::of_tree(&repo, input_tree)?;
    let parent_input = upstream_tree(cx, &repo, plan, &repo.find_commit(cx.snapshot.plan_commit)?)?;
    let base = publish::base_commit(&repo, &branch.parent, cx.snapshot.plan_commit, &plan.direct, parent_input)?;
    let dependencies = dependencies(cx, &repo, plan)?;
    let role = role_of(&branch.info);
    let mut file = task_file(cx, plan, parent, &input, dependencies);
    file.role = role;
    file.title = format!("Debug {} - {}", parent.title, branch.info.failure_type);
    file.parent_id = Some(branch.parent.task.clone());
    file.branch_reason = Some(branch.info.branch_reason.clone());
    file.debug_instructions = Some(branch.info.debug_instructions.clone());
    // The reviewer's request the parent is answering still stands for its branch todos.
    file.instructions = cx.store.status(&branch.parent).ok().flatten().and_then(|(_, s)| s.review).map(|r| r.instructions);
    Ok(Prepared { input_tree, input, base, task_file: file, role })
}

/// The watched commit's tree with the upstream results applied in dependency order.
fn upstream_tree(cx: &PassContext, repo: &Repository, plan: &AttemptPlan, watched: &git2::Commit<'_>) -> Result<Oid, git2::Error> {
    let changes = plan.upstream.iter().map(|(_, result)| cx.changes.get(repo, *result)).collect::<Result<Vec<_>, _>>()?;
    workspace::apply(repo, &watched.tree()?, &changes)
}

fn dependencies(cx: &PassContext, repo: &Repository, plan: &AttemptPlan) -> Result<Vec<DependencyResult>, git2::Error> {
    let mut deps = Vec::new();
    for (id, result) in &plan.direct {
        deps.push(DependencyResult {
            task_id: id.clone(),
            result_commit: result.to_string(),
            files: cx.changes.get(repo, *result)?.paths(),
        });
    }
    Ok(deps)
}

/// The task file an agent gets (`PLANCD_TASK`).
fn task_file(cx: &PassContext, plan: &AttemptPlan, task: &Task, input: &Input, dependencies: Vec<DependencyResult>) -> TaskFile {
    let contract = task.contract.as_ref().and_then(|path| {
        let data = input.read(path)?;
        let doc = Document::parse(&data, Format::from_path(path), &Limits::default()).ok()?;
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

/// The safe quick fix, tried on a branch's first attempt before any agent: a missing Python
/// package is added to requirements.txt.
async fn quick_fix(branch: &BranchPlan, input: &Input, session: &dyn Session, logs: &mut Logs) -> Result<Option<AgentRun>, Stop> {
    if branch.info.failure_type != FailureType::MissingDependency {
        return Ok(None);
    }
    let paths: Vec<String> = input.paths().map(str::to_owned).collect();
    let Some(requirement) = branch.info.missing.as_deref().and_then(|m| python_requirement(m, &paths)) else { return Ok(None) };
    let mut text = input.text("requirements.txt").unwrap_or_default();
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
        cache_hits: 0,
        failure: None,
    }))
}

/// Interface and method names of the task's contract: a missing one is a spec mismatch.
fn contract_names(input: &Input, contract: Option<&String>) -> Vec<String> {
    let Some(path) = contract else { return Vec::new() };
    let Some(data) = input.read(path) else { return Vec::new() };
    let Ok(doc) = Document::parse(&data, Format::from_path(path), &Limits::default()) else {
        return Vec::new();
    };
    let Ok(contract) = serde_json::from_value::<crate::spec::Contract>(doc.value) else { return Vec::new() };
    contract.interfaces.iter().flat_map(|i| std::iter::once(i.name.clone()).chain(i.methods.iter().map(|m| m.name.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Quality;
    use crate::state::quality::{Coverage, CoverageTool, Figure, Unmeasured, UnmeasuredReason};

    fn task(min: Option<f64>) -> Task {
        let mut criteria = serde_json::json!({"tests": [{"cmd": "python3 -m pytest"}]});
        if let Some(min) = min {
            criteria["coverage_min"] = min.into();
        }
        serde_json::from_value(serde_json::json!({"id": "t", "title": "T", "agent_role": "coder", "acceptance_criteria": criteria}))
            .unwrap()
    }

    fn measured(percent: f64) -> Quality {
        let coverage = Coverage {
            tool: CoverageTool::CoveragePy,
            percent,
            covered_lines: 1,
            statements: 2,
            files: 1,
            commands_measured: 1,
            commands: 1,
        };
        Quality { coverage: Some(coverage), ..Quality::default() }
    }

    #[test]
    fn work_below_its_tasks_coverage_minimum_fails_typed() {
        let missing = Quality {
            unmeasured: vec![Unmeasured {
                figure: Figure::Coverage,
                reason: UnmeasuredReason::ToolMissing,
                detail: "No module named coverage".into(),
            }],
            ..Quality::default()
        };
        // (name, minimum, figures, the failure's message when it fails)
        let rows: [(&str, Option<f64>, Quality, Option<&str>); 5] = [
            ("no minimum", None, measured(10.0), None),
            ("above", Some(80.0), measured(80.5), None),
            ("exactly at it", Some(50.0), measured(50.0), None),
            (
                "below",
                Some(80.0),
                measured(50.0),
                Some("the acceptance tests cover 50.0% of the code (1 of 2 statements), below the task's minimum of 80%"),
            ),
            (
                "not measurable",
                Some(80.0),
                missing,
                Some(
                    "the task asks for 80% coverage, but coverage could not be measured (the sandbox lacks the tool (add it to environment.setup in plancd.yaml): No module named coverage)",
                ),
            ),
        ];
        for (name, min, quality, want) in rows {
            let got = below_minimum(&task(min), &quality);
            assert_eq!(got.as_ref().map(|f| f.message.as_str()), want, "{name}");
            if let Some(f) = got {
                assert_eq!(f.failure_type, FailureType::CoverageBelowMinimum.as_str(), "{name}");
                assert!(f.agent_finished, "{name}: the work is kept for a branch todo");
            }
        }
    }
}
