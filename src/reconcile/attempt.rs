//! One attempt at a task, in order: claim -> adopt a result a crashed run already published,
//! or: workspace -> agent -> checks -> pinned files restored -> acceptance tests -> publish ->
//! `Succeeded` (the commit point), or `Failed` with the diagnostics. Logs go into the task's ref.

use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use jiff::Timestamp;
use plancd_sandbox::{CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, Sandbox, SandboxError, Session, SessionSpec};
use serde::Serialize;
use tokio::sync::watch;

use super::snapshot::Snapshot;
use super::workspace::{self, AgentChange, Ignore};
use crate::agent::{self, AgentError, AgentFailure, ContractFile, DependencyResult, TaskFile};
use crate::publish::{self, Provenance};
use crate::spec::{Document, Format, Limits, SpecHash, Task};
use crate::state::{Cost, Phase, ResultRef, StateError, Store, TaskKey, TaskStatus, TestSummary};

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
    /// Model access shared by the pass's model agents: keys, response cache, spending.
    pub models: Arc<agent::Models>,
}

/// What the executor asks for.
#[derive(Debug, Clone)]
pub struct AttemptPlan {
    /// The task.
    pub key: TaskKey,
    /// The attempt's number.
    pub attempt: u32,
    /// See [`TaskStatus::attempts_base`].
    pub attempts_base: u32,
    /// The tip the claim replaces.
    pub expected: Option<Oid>,
    /// A dead or expired holder being replaced.
    pub takeover: Option<String>,
    /// Every upstream task's result, dependencies first.
    pub upstream: Vec<(String, Oid)>,
    /// The direct dependencies' results.
    pub direct: Vec<(String, Oid)>,
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
    /// The work did not pass.
    Failed {
        /// The failure's type.
        failure_type: String,
        /// What failed.
        message: String,
    },
    /// Another holder moved the task's ref first; nothing was published by this attempt.
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

/// One command's record in the attempt's report.
#[derive(Debug, Clone, Serialize)]
struct CommandRecord {
    name: String,
    cmd: String,
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    oom_killed: bool,
    duration_seconds: f64,
    passed: bool,
}

impl CommandRecord {
    fn new(name: &str, cmd: &str, o: &ExecOutcome) -> CommandRecord {
        CommandRecord {
            name: name.into(),
            cmd: cmd.into(),
            exit_code: o.exit_code,
            signal: o.signal,
            timed_out: o.timed_out,
            oom_killed: o.oom_killed,
            duration_seconds: o.duration.as_secs_f64(),
            passed: o.success(),
        }
    }
}

/// The attempt's report (`attempts/<n>/report.json`).
#[derive(Debug, Default, Serialize)]
struct Report {
    agent: Option<CommandRecord>,
    changed_files: Vec<String>,
    pinned_files_changed: Vec<String>,
    missing_outputs: Vec<String>,
    checks: Vec<CommandRecord>,
    tests: Vec<CommandRecord>,
}

/// Logs collected along the way, written into the task's ref at the end.
struct Logs {
    dir: String,
    files: Vec<(String, Vec<u8>)>,
    /// What the agent's model calls cost, for the task's status.
    cost: Cost,
}

impl Logs {
    fn new(attempt: u32) -> Logs {
        Logs { dir: format!("attempts/{attempt}"), files: Vec::new(), cost: Cost::default() }
    }

    /// The agent's own log files (a model agent's transcript) and what it spent.
    fn agent(&mut self, run: &agent::AgentRun) {
        for (name, data) in &run.logs {
            self.add(name, data.clone());
        }
        self.cost = run.cost;
    }

    fn add(&mut self, name: &str, data: Vec<u8>) {
        self.files.push((format!("{}/{name}", self.dir), data));
    }

    fn command(log: &mut Vec<u8>, label: &str, o: &ExecOutcome) {
        log.extend_from_slice(format!("$ {label}\n").as_bytes());
        for (stream, truncated) in [(&o.stdout, o.stdout_truncated), (&o.stderr, o.stderr_truncated)] {
            log.extend_from_slice(stream);
            if !stream.is_empty() && !stream.ends_with(b"\n") {
                log.push(b'\n');
            }
            if truncated {
                log.extend_from_slice(b"[output truncated]\n");
            }
        }
        log.extend_from_slice(format!("-> {o}\n\n").as_bytes());
    }
}

/// Runs one attempt end to end.
pub async fn run(cx: Arc<PassContext>, plan: AttemptPlan) -> Result<AttemptEnd, AttemptError> {
    let snapshot = cx.snapshot.clone();
    let task = snapshot.task(&plan.key).expect("the executor only plans tasks of the snapshot").clone();
    let hash = snapshot.hashes[&plan.key].clone();
    let Some((tip, claim)) = claim(&cx, &plan, &task, &hash)? else { return Ok(AttemptEnd::LostClaim) };
    if let Some(end) = adopt(&cx, &plan.key, &hash, tip, &claim)? {
        return Ok(end);
    }
    let mut logs = Logs::new(plan.attempt);
    let work = work(&cx, &plan, &task, &mut logs);
    let mut cancel = cx.cancel.clone();
    let outcome = tokio::select! {
        outcome = work => outcome,
        _ = cancel.wait_for(|c| *c) => Err(Stop::Cancelled),
    };
    finish(&cx, &plan, &task, &hash, tip, claim, outcome, logs)
}

/// Why the work stopped before a verdict.
enum Stop {
    Cancelled,
    Infrastructure(String),
    /// The model's API failed (after retries), or the model is not usable.
    Model(String),
    Git(git2::Error),
}

impl From<SandboxError> for Stop {
    fn from(e: SandboxError) -> Stop {
        Stop::Infrastructure(e.to_string())
    }
}

impl From<git2::Error> for Stop {
    fn from(e: git2::Error) -> Stop {
        Stop::Git(e)
    }
}

/// The verdict of finished work.
enum Verdict {
    Passed { tree: Oid, base: Oid, change: AgentChange, tests: TestSummary, agent: Box<agent::AgentRun> },
    Failed { failure_type: String, message: String, tests: Option<TestSummary> },
}

fn claim(cx: &PassContext, plan: &AttemptPlan, task: &Task, hash: &SpecHash) -> Result<Option<(Oid, TaskStatus)>, AttemptError> {
    let now = Timestamp::now();
    let previous = cx.store.status(&plan.key)?;
    if previous.as_ref().map(|(tip, _)| *tip) != plan.expected {
        return Ok(None);
    }
    let mut s = match previous {
        Some((_, prev)) => prev.next(Phase::Running, now),
        None => TaskStatus::new(&plan.key.workflow, &plan.key.task, Phase::Running, now),
    };
    s.spec_hash = Some(hash.clone());
    s.attempt = plan.attempt;
    s.attempts_base = plan.attempts_base;
    s.holder = Some(cx.holder.clone());
    let lease = jiff::SignedDuration::from_secs(i64::from(task.timeout_seconds) + 120);
    s.lease_expires_at = now.checked_add(lease).ok();
    s.started_at = Some(now);
    s.finished_at = None;
    s.plan_commit = Some(cx.snapshot.plan_commit.to_string());
    s.role = Some(task.agent_role.to_string());
    s.reason = Some(if plan.takeover.is_some() { "TakenOver" } else { "Claimed" }.into());
    s.message = plan.takeover.as_ref().map(|h| format!("claim taken over from {h}")).unwrap_or_default();
    match cx.store.append(&plan.key, plan.expected, &s, &[]) {
        Ok(tip) => Ok(Some((tip, s))),
        Err(StateError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records a result that an interrupted run published but never recorded.
fn adopt(cx: &PassContext, key: &TaskKey, hash: &SpecHash, tip: Oid, claim: &TaskStatus) -> Result<Option<AttemptEnd>, AttemptError> {
    let published = {
        let repo = cx.store.repo();
        match publish::adoptable(&repo, key, hash, claim.accepted) {
            Some((commit, _)) => publish::publish(&repo, key, commit, claim.accepted)?,
            None => return Ok(None),
        }
    };
    let mut s = claim.next(Phase::Succeeded, Timestamp::now());
    s.finished_at = Some(s.updated_at);
    s.accepted = published.n;
    s.reason = Some("Adopted".into());
    let from = publish::result_attempt(&cx.store.repo(), published.commit).map_or_else(String::new, |n| format!(" of attempt {n}"));
    s.message = format!("recorded the result{from}, published by an interrupted run");
    s.result = Some(ResultRef {
        commit: published.commit.to_string(),
        branch: published.branch.clone(),
        tag: Some(published.tag.clone()),
        files: Vec::new(),
        pull_request: None,
    });
    match cx.store.append(key, Some(tip), &s, &[]) {
        Ok(_) => Ok(Some(AttemptEnd::Adopted { commit: published.commit, tag: published.tag })),
        Err(StateError::Conflict { .. }) => Ok(Some(AttemptEnd::LostClaim)),
        Err(e) => Err(e.into()),
    }
}

/// The sandboxed part: workspace, agent, checks, tests.
async fn work(cx: &PassContext, plan: &AttemptPlan, task: &Task, logs: &mut Logs) -> Result<Verdict, Stop> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(u64::from(task.timeout_seconds));
    let (input_tree, input, task_file, base) = prepare(cx, plan, task)?;
    logs.add("task.json", serde_json::to_vec_pretty(&task_file).expect("a task file always serialises"));
    let session = cx.sandbox.create(&session_spec(cx)).await?;
    let result = in_session(cx, task, session.as_ref(), &input, &task_file, deadline, logs).await;
    // Destroy whatever happened; a failure to clean up is not the task's failure.
    let _ = session.destroy().await;
    let (change, report, agent_run) = match result? {
        Ok(done) => done,
        Err(failed) => return Ok(failed),
    };
    logs.add("report.json", serde_json::to_vec_pretty(&report).expect("a report always serialises"));
    let passed = report.tests.iter().filter(|t| t.passed).count() as u32;
    let tests = TestSummary {
        passed,
        failed: report.tests.len() as u32 - passed,
        duration_seconds: report.tests.iter().map(|t| t.duration_seconds).sum(),
        pinned_files_changed: change.pinned_touched.clone(),
        ..Default::default()
    };
    if let Some(failed) = report.tests.iter().find(|t| !t.passed) {
        let failure_type = if failed.timed_out { "timeout" } else { "test_failure" };
        let message =
            format!("{} of {} acceptance test(s) failed; first: `{}` ({})", tests.failed, report.tests.len(), failed.cmd, describe(failed));
        return Ok(Verdict::Failed { failure_type: failure_type.into(), message, tests: Some(tests) });
    }
    let tree = {
        let repo = cx.store.repo();
        workspace::apply_agent_change(&repo, input_tree, &change)?
    };
    Ok(Verdict::Passed { tree, base, change, tests, agent: Box::new(agent_run) })
}

fn describe(c: &CommandRecord) -> String {
    match (c.timed_out, c.oom_killed, c.exit_code, c.signal) {
        (true, ..) => format!("timed out after {:.0}s", c.duration_seconds),
        (_, true, ..) => "killed: out of memory".into(),
        (_, _, Some(code), _) => format!("exit {code}"),
        (_, _, None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "no exit status".into(),
    }
}

type Prepared = (Oid, Vec<FileEntry>, TaskFile, Oid);

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
    let contract = task.contract.as_ref().and_then(|path| {
        let file = input.iter().find(|f| &f.path == path)?;
        let doc = Document::parse(&file.data, Format::from_path(path), &Limits::default()).ok()?;
        Some(ContractFile { path: path.clone(), content: doc.value })
    });
    let task_file = TaskFile {
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
        plan_commit: snapshot.plan_commit.to_string(),
        workspace: plancd_sandbox::WORKSPACE.into(),
    };
    Ok((input_tree, input, task_file, base))
}

fn session_spec(cx: &PassContext) -> SessionSpec {
    let sandbox = &cx.snapshot.config.sandbox;
    SessionSpec {
        owner: cx.holder.clone(),
        image: Some(sandbox.image.clone()),
        root: sandbox.root.as_ref().map(Into::into),
        limits: plancd_sandbox::Limits {
            cpus: sandbox.limits.cpus,
            memory_mb: sandbox.limits.memory_mb,
            disk_mb: sandbox.limits.disk_mb,
            pids: sandbox.limits.pids,
        },
        network: match sandbox.network {
            crate::config::NetworkPolicy::None => plancd_sandbox::Network::None,
            crate::config::NetworkPolicy::Loopback => plancd_sandbox::Network::Loopback,
        },
        env: Vec::new(),
    }
}

type Done = (AgentChange, Report, agent::AgentRun);

/// Agent, checks and tests in one session. The outer error stops the attempt; the inner one is
/// a verdict of failure.
async fn in_session(
    cx: &PassContext,
    task: &Task,
    session: &dyn Session,
    input: &[FileEntry],
    task_file: &TaskFile,
    deadline: Instant,
    logs: &mut Logs,
) -> Result<Result<Done, Verdict>, Stop> {
    let remaining = |cap: Duration| deadline.saturating_duration_since(Instant::now()).min(cap);
    session.put_files(input).await?;
    let config = &cx.snapshot.config;
    let role_timeout = config.roles.get(&task.agent_role).and_then(|r| r.timeout_seconds).map_or(Duration::MAX, Duration::from_secs);
    let agents = agent::AgentContext { config, source: &cx.snapshot.source, models: &cx.models };
    let run = match agent::run(&agents, task.agent_role, task_file, session, remaining(role_timeout)).await {
        Ok(run) => run,
        Err(AgentError::Sandbox(e)) => return Err(e.into()),
        Err(e) => return Err(Stop::Infrastructure(e.to_string())),
    };
    let mut agent_log = Vec::new();
    Logs::command(&mut agent_log, &run.argv.join(" "), &run.outcome);
    logs.add("agent.log", agent_log);
    logs.agent(&run);
    let mut report = Report { agent: Some(CommandRecord::new("agent", &run.argv.join(" "), &run.outcome)), ..Report::default() };
    match &run.failure {
        Some(AgentFailure::Outside(why)) => return Err(Stop::Model(why.clone())),
        Some(AgentFailure::Verdict { failure_type, message }) => {
            return Ok(Err(Verdict::Failed { failure_type: failure_type.clone(), message: message.clone(), tests: None }));
        }
        None => {}
    }
    if !run.outcome.success() {
        let failure_type = if run.outcome.timed_out { "timeout" } else { "agent_error" };
        return Ok(Err(Verdict::Failed {
            failure_type: failure_type.into(),
            message: format!("the {} agent did not finish: {}", task.agent_role, run.outcome),
            tests: None,
        }));
    }
    let copied = session.get_files(&CopyOutLimits::default()).await?;
    let skipped: Vec<String> = copied.skipped.iter().map(|(p, _)| p.clone()).collect();
    let gitignore = input.iter().find(|f| f.path == ".gitignore").map(|f| String::from_utf8_lossy(&f.data).into_owned());
    let pinned = &task.acceptance_criteria.files;
    let change = workspace::agent_change(input, &copied.files, &skipped, pinned, &Ignore::new(gitignore.as_deref()));
    report.changed_files = change.paths();
    report.pinned_files_changed = change.pinned_touched.clone();
    report.missing_outputs = missing_outputs(task, input, &change);
    if !report.missing_outputs.is_empty() {
        let message = format!("the agent did not produce: {}", report.missing_outputs.join(", "));
        logs.add("report.json", serde_json::to_vec_pretty(&report).expect("a report always serialises"));
        return Ok(Err(Verdict::Failed { failure_type: "missing_outputs".into(), message, tests: None }));
    }
    // Checks (lint, types, security) after the roles they name, coder by default.
    let mut check_log = Vec::new();
    for check in config
        .checks
        .iter()
        .filter(|c| if c.roles.is_empty() { task.agent_role == crate::spec::Role::Coder } else { c.roles.contains(&task.agent_role) })
    {
        let timeout = remaining(Duration::from_secs(check.timeout_seconds.unwrap_or(config.sandbox.limits.timeout_seconds)));
        let o = session.exec(&ExecRequest::shell(&check.cmd, timeout)).await?;
        Logs::command(&mut check_log, &check.cmd, &o);
        report.checks.push(CommandRecord::new(&check.name, &check.cmd, &o));
    }
    if !check_log.is_empty() {
        logs.add("checks.log", check_log);
    }
    if let Some(failed) = report.checks.iter().find(|c| !c.passed) {
        let message = format!("check `{}` failed: `{}` ({})", failed.name, failed.cmd, describe(failed));
        logs.add("report.json", serde_json::to_vec_pretty(&report).expect("a report always serialises"));
        return Ok(Err(Verdict::Failed { failure_type: "check_failed".into(), message, tests: None }));
    }
    // Pinned test files as committed, whatever the agent did to them.
    let originals: Vec<FileEntry> = input.iter().filter(|f| pinned.contains(&f.path)).cloned().collect();
    session.put_files(&originals).await?;
    let mut test_log = Vec::new();
    for (i, test) in task.acceptance_criteria.tests.iter().enumerate() {
        let o = session.exec(&ExecRequest::shell(&test.cmd, remaining(Duration::from_secs(u64::from(test.timeout_seconds))))).await?;
        Logs::command(&mut test_log, &test.cmd, &o);
        let name = test.name.clone().unwrap_or_else(|| format!("test {}", i + 1));
        report.tests.push(CommandRecord::new(&name, &test.cmd, &o));
    }
    if !test_log.is_empty() {
        logs.add("tests.log", test_log);
    }
    Ok(Ok((change, report, run)))
}

/// Declared outputs that are neither in the input nor written, or that were removed.
fn missing_outputs(task: &Task, input: &[FileEntry], change: &AgentChange) -> Vec<String> {
    task.outputs
        .iter()
        .filter(|o| {
            let written = change.written.iter().any(|f| &f.path == *o);
            let kept = input.iter().any(|f| &f.path == *o) && !change.removed.contains(o);
            !written && !kept
        })
        .cloned()
        .collect()
}

/// What passed, ready to publish.
struct Passed {
    tree: Oid,
    base: Oid,
    change: AgentChange,
    tests: TestSummary,
    agent: Box<agent::AgentRun>,
}

/// Publishes a passing result: the result commit, the logs (before anything is published, so
/// that a crash between publishing and the commit point loses none: the run that adopts the
/// result finds them), branch and tag, then `Succeeded`.
#[allow(clippy::too_many_arguments)] // one call site; the attempt's whole context.
fn succeed(
    cx: &PassContext,
    plan: &AttemptPlan,
    task: &Task,
    hash: &SpecHash,
    tip: Oid,
    claim: &TaskStatus,
    passed: Passed,
    logs: Logs,
) -> Result<AttemptEnd, AttemptError> {
    let now = Timestamp::now();
    let Passed { tree, base, change, tests, agent } = passed;
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
    let commit = publish::result_commit(&cx.store.repo(), base, tree, &task.title, &task.description, &prov)?;
    let mut verified = claim.clone();
    verified.updated_at = now;
    verified.reason = Some("Verified".into());
    verified.message = format!("{} acceptance test(s) passed; publishing {}", tests.passed, &commit.to_string()[..12]);
    verified.tests = Some(tests.clone());
    verified.add_cost(logs.cost);
    // This compare-and-swap also proves the claim is still ours right before publishing.
    let tip = match cx.store.append(&plan.key, Some(tip), &verified, &logs.files) {
        Ok(tip) => tip,
        Err(StateError::Conflict { .. }) => return Ok(AttemptEnd::LostClaim),
        Err(e) => return Err(e.into()),
    };
    let published = publish::publish(&cx.store.repo(), &plan.key, commit, claim.accepted)?;
    let mut s = claim.next(Phase::Succeeded, now);
    s.accepted = published.n;
    s.reason = Some("Succeeded".into());
    s.message = format!("{} acceptance test(s) passed", tests.passed);
    s.tests = Some(tests);
    s.finished_at = Some(now);
    s.add_cost(logs.cost);
    s.result = Some(ResultRef {
        commit: published.commit.to_string(),
        branch: published.branch.clone(),
        tag: Some(published.tag.clone()),
        files: change.paths(),
        pull_request: None,
    });
    match cx.store.append(&plan.key, Some(tip), &s, &[]) {
        Ok(_) => Ok(AttemptEnd::Succeeded { commit: published.commit, tag: published.tag }),
        Err(StateError::Conflict { .. }) => Ok(AttemptEnd::LostClaim),
        Err(e) => Err(e.into()),
    }
}

/// Writes the verdict: publish then `Succeeded`, or `Failed`, or the claim released.
#[allow(clippy::too_many_arguments)] // one call site; the attempt's whole context.
fn finish(
    cx: &PassContext,
    plan: &AttemptPlan,
    task: &Task,
    hash: &SpecHash,
    tip: Oid,
    claim: TaskStatus,
    outcome: Result<Verdict, Stop>,
    logs: Logs,
) -> Result<AttemptEnd, AttemptError> {
    let now = Timestamp::now();
    let (status, end) = match outcome {
        Ok(Verdict::Passed { tree, base, change, tests, agent }) => {
            let passed = Passed { tree, base, change, tests, agent };
            return succeed(cx, plan, task, hash, tip, &claim, passed, logs);
        }
        Ok(Verdict::Failed { failure_type, message, tests }) => {
            // A spent budget stops the task until a person raises it (or retries).
            let over_budget = failure_type == "budget_exceeded";
            let mut s = claim.next(if over_budget { Phase::BudgetExceeded } else { Phase::Failed }, now);
            s.reason = Some(if over_budget { "BudgetExceeded" } else { "AttemptFailed" }.into());
            s.failure_type = Some(failure_type.clone());
            s.message = message.clone();
            s.tests = tests;
            (s, AttemptEnd::Failed { failure_type, message })
        }
        Err(Stop::Cancelled) => {
            let mut s = claim.next(Phase::Released, now);
            s.reason = Some("Cancelled".into());
            s.message = "the reconcile was stopped; the claim is released".into();
            s.attempts_base += 1;
            (s, AttemptEnd::Cancelled)
        }
        Err(Stop::Infrastructure(why)) => {
            let mut s = claim.next(Phase::Released, now);
            s.reason = Some("SandboxError".into());
            s.failure_type = Some("infrastructure".into());
            s.message = why.clone();
            s.attempts_base += 1;
            (s, AttemptEnd::Infrastructure(why))
        }
        Err(Stop::Model(why)) => {
            let mut s = claim.next(Phase::Released, now);
            s.reason = Some("ModelError".into());
            s.failure_type = Some("infrastructure".into());
            s.message = why.clone();
            s.attempts_base += 1;
            (s, AttemptEnd::Infrastructure(why))
        }
        Err(Stop::Git(e)) => return Err(e.into()),
    };
    let mut status = status;
    status.finished_at = Some(now);
    status.add_cost(logs.cost);
    match cx.store.append(&plan.key, Some(tip), &status, &logs.files) {
        Ok(_) => Ok(end),
        Err(StateError::Conflict { .. }) => Ok(AttemptEnd::LostClaim),
        Err(e) => Err(e.into()),
    }
}
