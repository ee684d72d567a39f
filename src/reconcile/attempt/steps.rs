//! The steps an attempt takes inside its sandbox session, shared by tasks and branch todos:
//! the agent, collecting its change, checks, pinned files restored, acceptance tests (failing
//! ones re-run once, to tell flaky tests apart), and the logs and report they leave.

use std::sync::Arc;
use std::time::{Duration, Instant};

use plancd_sandbox::copyout::Skip;
use plancd_sandbox::{ExecOutcome, ExecRequest, FileEntry, SandboxError, Session, SessionSpec};
use serde::Serialize;

use super::PassContext;
use crate::agent::{self, AgentContext, AgentError, AgentFailure, AgentRun, TaskFile};
use crate::config::RoleConfig;
use crate::gateway::{Gateway, Upstream};
use crate::live::{LiveAttempt, Step, Teed};
use crate::reconcile::door::Door;
use crate::reconcile::guard::{self, Guard, ProbePlan, Refusal};
use crate::reconcile::input::{Input, PutError};
use crate::reconcile::workspace::{AgentChange, ChangeSink, Ignore};
use crate::spec::{AcceptanceCriteria, AcceptanceTest, Role, Task};
use crate::state::{Cost, TestSummary};
use crate::triage::Classification;

/// Why the work stopped before a verdict.
pub(super) enum Stop {
    Cancelled,
    Infrastructure(String),
    /// The model's API failed (after retries), or the model is not usable.
    Model(String),
    Git(git2::Error),
    /// The remote refused the result or could not be reached.
    Remote(String),
    /// The result's branch or tag could not be written here.
    Publish(String),
    /// The environment another attempt was building for this one failed; that attempt reports it.
    Environment(String),
}

impl From<SandboxError> for Stop {
    fn from(e: SandboxError) -> Stop {
        Stop::Infrastructure(format!("the sandbox failed: {e}"))
    }
}

impl From<git2::Error> for Stop {
    fn from(e: git2::Error) -> Stop {
        Stop::Git(e)
    }
}

impl From<PutError> for Stop {
    fn from(e: PutError) -> Stop {
        match e {
            PutError::Git(e) => Stop::Git(e),
            PutError::Sandbox(e) => e.into(),
        }
    }
}

/// A failed attempt, with what triage needs.
#[derive(Debug, Clone, Default)]
pub(super) struct Failure {
    /// Before triage: agent_error, timeout, missing_outputs, check_failed or test_failure.
    pub failure_type: String,
    /// One line for people.
    pub message: String,
    /// The failing commands' output.
    pub output: String,
    /// Whether the agent finished (so that there is work to debug).
    pub agent_finished: bool,
    /// The failing command's exit code.
    pub exit_code: Option<i32>,
    /// Whether it hit its deadline.
    pub timed_out: bool,
    /// How long it ran, and its deadline.
    pub duration: Option<f64>,
    /// Its deadline.
    pub timeout: Option<f64>,
    /// Whether every failing test passed when run again at once.
    pub rerun_passed: bool,
}

impl From<guard::Violation> for Failure {
    fn from(v: guard::Violation) -> Failure {
        Failure { failure_type: v.refusal.failure_type().into(), output: v.message.clone(), message: v.message, ..Failure::default() }
    }
}

impl Failure {
    /// The guard's refusal this is, if it is one: no branch todo is opened for it (no code fix
    /// helps) and its work is not kept.
    pub fn refusal(&self) -> Option<Refusal> {
        Refusal::from_failure_type(&self.failure_type)
    }

    /// What triage makes of it, given the names the task's contract defines.
    pub fn classify(&self, triage: &crate::triage::Triage, contract_names: Vec<String>) -> Classification {
        triage.classify(&crate::triage::Diagnostics {
            output: &self.output,
            exit_code: self.exit_code,
            timed_out: self.timed_out,
            duration: self.duration,
            timeout: self.timeout,
            rerun_passed: self.rerun_passed,
            contract_names,
            ..crate::triage::Diagnostics::default()
        })
    }
}

/// One command's record in the attempt's report.
#[derive(Debug, Clone, Serialize)]
pub(super) struct CommandRecord {
    pub name: String,
    pub cmd: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: bool,
    pub duration_seconds: f64,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_passed: Option<bool>,
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
            rerun_passed: None,
        }
    }

    /// How it ended, in words.
    pub fn describe(&self) -> String {
        match (self.timed_out, self.oom_killed, self.exit_code, self.signal) {
            (true, ..) => format!("timed out after {:.0}s", self.duration_seconds),
            (_, true, ..) => "killed: out of memory".into(),
            (_, _, Some(code), _) => format!("exit {code}{}", plancd_sandbox::shell_signal_note(code)),
            (_, _, None, Some(sig)) => format!("killed by {}", plancd_sandbox::signal_words(sig)),
            _ => "no exit status".into(),
        }
    }
}

/// The attempt's report (`attempts/<n>/report.json`).
#[derive(Debug, Default, Serialize)]
pub(super) struct Report {
    pub agent: Option<CommandRecord>,
    pub changed_files: Vec<String>,
    pub pinned_files_changed: Vec<String>,
    pub missing_outputs: Vec<String>,
    pub checks: Vec<CommandRecord>,
    pub tests: Vec<CommandRecord>,
    /// Files the guard refused (protected paths, or files that decide how the tests run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_files: Vec<String>,
    /// Each acceptance command's probe: run (and whether it wrongly passed) or skipped, why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeRecord>,
    /// What the agent left that the copy-out did not take (symbolic links, files over the size
    /// caps, ...), with why: not part of the result. Ignored paths are left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_in_sandbox: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<Classification>,
}

/// One acceptance command's probe in the attempt's report.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ProbeRecord {
    pub cmd: String,
    /// The probe's files (pinned tests with a failing test added).
    pub files: Vec<String>,
    /// How the probe ended; `None` when it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Logs collected along the way, written into the task's ref at the end.
pub(super) struct Logs {
    dir: String,
    pub files: Vec<(String, Vec<u8>)>,
    /// What the agent's model calls cost, for the task's status.
    pub cost: Cost,
    /// The attempt's work, kept in the runner's ref beside the logs.
    pub work: Option<git2::Oid>,
    /// The environment the attempt used, for its status.
    pub environment: Option<crate::state::EnvironmentUse>,
    /// The network the agent had through its role's `network.allow`, for its status.
    pub network: Option<crate::state::NetworkUse>,
    /// The task and attempt whose steps are announced, and their live output, if any.
    live: Option<(crate::state::TaskKey, u32, Option<Arc<LiveAttempt>>)>,
}

impl Logs {
    pub fn new(attempt: u32) -> Logs {
        Logs {
            dir: format!("attempts/{attempt}"),
            files: Vec::new(),
            cost: Cost::default(),
            work: None,
            environment: None,
            network: None,
            live: None,
        }
    }

    /// Logs that announce `key`'s attempt's steps, and tee its commands into `live`.
    pub fn announced(mut self, key: crate::state::TaskKey, attempt: u32, live: Option<Arc<LiveAttempt>>) -> Logs {
        self.live = Some((key, attempt, live));
        self
    }

    /// The attempt moves to `step`: its live output goes to the step's log, and listeners hear.
    pub fn step(&self, cx: &PassContext, step: Step) {
        let Some((key, attempt, live)) = &self.live else { return };
        if let Some(live) = live {
            live.step(step);
        }
        tracing::debug!(%step, "step started");
        cx.emit(crate::reconcile::Event::Step { key: key.clone(), attempt: *attempt, step });
    }

    /// The live output, if the attempt has one.
    pub fn live_attempt(&self) -> Option<Arc<LiveAttempt>> {
        self.live.as_ref().and_then(|(_, _, live)| live.clone())
    }

    /// `session`, its commands teed into the live output.
    pub fn teed<'a>(&self, session: &'a dyn Session) -> Teed<'a> {
        Teed::new(session, self.live_attempt())
    }

    /// The attempt's folder in the task's ref.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn add(&mut self, name: &str, data: Vec<u8>) {
        self.files.push((format!("{}/{name}", self.dir), data));
    }

    /// Adds the report (last, so that it holds everything).
    pub fn report(&mut self, report: &Report) {
        self.add("report.json", serde_json::to_vec_pretty(report).expect("a report always serialises"));
    }

    pub(super) fn command(log: &mut Vec<u8>, label: &str, o: &ExecOutcome) {
        log.extend_from_slice(format!("$ {label}\n").as_bytes());
        log.extend_from_slice(&output_of(o));
        log.extend_from_slice(format!("-> {o}\n\n").as_bytes());
    }
}

/// A command's stdout then stderr, with a note where either was cut.
/// Escaped (terminal controls shown, not interpreted; a line posing as plancd's own marked), so
/// that what a sandboxed command printed reaches logs, status, issues and pull requests inert.
pub(super) fn output_of(o: &ExecOutcome) -> Vec<u8> {
    let mut out = Vec::new();
    for (stream, truncated) in [(&o.stdout, o.stdout_truncated), (&o.stderr, o.stderr_truncated)] {
        let stream = plancd_sandbox::escape::output(stream).into_bytes();
        out.extend_from_slice(&stream);
        if !stream.is_empty() && !stream.ends_with(b"\n") {
            out.push(b'\n');
        }
        if truncated {
            out.extend_from_slice(b"[output truncated]\n");
        }
    }
    out
}

/// The session every attempt of the pass gets.
pub(super) fn session_spec(cx: &PassContext) -> SessionSpec {
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
        mounts: Vec::new(),
        ports: Vec::new(),
    }
}

/// Time left before `deadline`, at most `cap`.
pub(super) fn remaining(deadline: Instant, cap: Duration) -> Duration {
    deadline.saturating_duration_since(Instant::now()).min(cap)
}

/// The model gateway of an attempt of `role`, when the role has both a command and a model.
/// A model plancd cannot use is the model's problem; a gateway that cannot start is plancd's.
pub(super) async fn open_gateway(cx: &PassContext, role: Role, task: &TaskFile) -> Result<Option<Gateway>, Stop> {
    let config = &cx.snapshot.config;
    let Some(RoleConfig { command: Some(_), model: Some(model), .. }) = config.roles.get(&role) else { return Ok(None) };
    let upstream = Upstream::open(model, config, cx.models.env()).map_err(|e| Stop::Model(e.to_string()))?;
    let key = crate::state::TaskKey::new(&task.workflow_id, &task.task_id);
    let gateway = Gateway::open(cx.models.opening(upstream, &key)).await.map_err(|e| Stop::Infrastructure(e.to_string()))?;
    Ok(Some(gateway))
}

/// The egress door of an attempt of `role`, when the role has `network.allow`: a proxy that
/// lets the agent's session reach those hosts and refuses (and records) everything else.
pub(super) async fn open_door(cx: &PassContext, role: Role) -> Result<Option<Door>, Stop> {
    let Some(network) = cx.snapshot.config.roles.get(&role).and_then(|r| r.network.as_ref()) else { return Ok(None) };
    let door = Door::open(&network.allow, "plancd-agent-net-").await;
    door.map(Some).map_err(|e| Stop::Infrastructure(format!("the agent's egress proxy could not start: {e}")))
}

/// Closes the agent's door once its session is gone: every request in `egress.log`, and what
/// they came to in the attempt's status.
pub(super) async fn close_door(door: Door, attempt: u32, logs: &mut Logs) {
    let allow = door.hosts().to_vec();
    let records = door.close().await;
    let mut log =
        format!("# egress of attempt {attempt}; allowed: {}\n", if allow.is_empty() { "nothing".to_owned() } else { allow.join(", ") });
    for r in &records {
        log.push_str(&format!("{r}\n"));
    }
    logs.add("egress.log", log.into_bytes());
    logs.network = Some(crate::reconcile::door::network_use(attempt, &allow, &records));
}

/// Runs `role`'s agent. An agent that does not finish is a failure, not an error.
#[allow(clippy::too_many_arguments)] // one call site; the steps share these.
pub(super) async fn run_agent(
    cx: &PassContext,
    role: Role,
    gateway: Option<&Gateway>,
    session: &dyn Session,
    task_file: &TaskFile,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Result<AgentRun, Failure>, Stop> {
    logs.step(cx, Step::Agent);
    let config = &cx.snapshot.config;
    let role_timeout = config.roles.get(&role).and_then(|r| r.timeout_seconds).map_or(Duration::MAX, Duration::from_secs);
    let agents = AgentContext { config, source: &cx.snapshot.source, models: &cx.models, gateway, live: logs.live_attempt() };
    let run = match agent::run(&agents, role, task_file, session, remaining(deadline, role_timeout)).await {
        Ok(run) => run,
        Err(AgentError::Sandbox(e)) => return Err(e.into()),
        Err(e) => return Err(Stop::Infrastructure(e.to_string())),
    };
    cx.emit(crate::reconcile::Event::Exec { kind: "agent", duration: run.outcome.duration });
    let label = run.argv.join(" ");
    let mut log = Vec::new();
    Logs::command(&mut log, &label, &run.outcome);
    logs.add("agent.log", log);
    for (name, data) in &run.logs {
        logs.add(name, data.clone());
    }
    logs.cost += run.cost;
    if !run.cost.is_zero() || run.cache_hits > 0 {
        cx.emit(crate::reconcile::Event::Spent {
            key: crate::state::TaskKey::new(&task_file.workflow_id, &task_file.task_id),
            role: role.to_string(),
            model: config.roles.get(&role).and_then(|r| r.model.clone()).unwrap_or_else(|| "none".into()),
            cost: run.cost,
            cache_hits: run.cache_hits,
        });
    }
    report.agent = Some(CommandRecord::new("agent", &label, &run.outcome));
    match &run.failure {
        Some(AgentFailure::Outside(why)) => return Err(Stop::Model(why.clone())),
        Some(AgentFailure::Verdict { failure_type, message }) => {
            return Ok(Err(Failure {
                failure_type: failure_type.clone(),
                message: message.clone(),
                output: String::from_utf8_lossy(&output_of(&run.outcome)).into_owned(),
                exit_code: run.outcome.exit_code,
                timed_out: run.outcome.timed_out,
                duration: Some(run.outcome.duration.as_secs_f64()),
                ..Failure::default()
            }));
        }
        None if run.outcome.success() => return Ok(Ok(run)),
        None => {}
    }
    Ok(Err(Failure {
        failure_type: if run.outcome.timed_out { "timeout" } else { "agent_error" }.into(),
        message: format!("the {role} agent did not finish: {}", run.outcome),
        output: String::from_utf8_lossy(&output_of(&run.outcome)).into_owned(),
        exit_code: run.outcome.exit_code,
        timed_out: run.outcome.timed_out,
        duration: Some(run.outcome.duration.as_secs_f64()),
        ..Failure::default()
    }))
}

/// What the agent changed, compared with `input` (caches, ignored paths and pinned files left
/// out; pinned files it touched are listed), and what was left in the sandbox, with why. The
/// workspace streams out into the repository's objects one file at a time.
pub(super) async fn collect_change(
    cx: &PassContext,
    session: &dyn Session,
    input: &Input,
    pinned: &[String],
    report: &mut Report,
) -> Result<(AgentChange, Vec<(String, Skip)>), Stop> {
    let gitignore = input.text(".gitignore");
    let ignore = Ignore::new(gitignore.as_deref());
    let store = cx.store.clone();
    let mut sink = ChangeSink::new(
        input,
        pinned,
        &ignore,
        guard::reads_content,
        Box::new(move |data| crate::state::objects::retrying(|| store.repo().blob(data))),
    );
    session.copy_out(&input.copy_out_limits(), &mut sink).await?;
    let (change, skipped) = sink.finish();
    report.changed_files = change.paths();
    report.pinned_files_changed = change.pinned_touched.clone();
    report.left_in_sandbox = left_in_sandbox(&skipped, &ignore, |p| input.contains(p));
    Ok((change, skipped))
}

/// The skipped entries people are told about, as `path (why)` with the path escaped: those
/// outside ignored paths (caches, `node_modules/`, ...), at most [`LEFT_SHOWN`] and a count.
/// A file of the input over the size cap is not read back: the result keeps it as committed,
/// which the line says, since a change the agent made to it is lost.
fn left_in_sandbox(skipped: &[(String, Skip)], ignore: &Ignore, committed: impl Fn(&str) -> bool) -> Vec<String> {
    let told: Vec<&(String, Skip)> = skipped.iter().filter(|(path, _)| !ignore.is_ignored(path)).collect();
    let line = |(path, why): &&(String, Skip)| {
        let kept = if matches!(why, Skip::TooLarge(_)) && committed(path) {
            "; the result keeps the committed file, and a change the agent made to it is not taken"
        } else {
            ""
        };
        format!("{} ({why}{kept})", plancd_sandbox::escape::name(path))
    };
    let mut lines: Vec<String> = told.iter().take(LEFT_SHOWN).map(line).collect();
    if told.len() > LEFT_SHOWN {
        lines.push(format!("... and {} more", told.len() - LEFT_SHOWN));
    }
    lines
}

/// At most this many entries left in the sandbox are listed.
const LEFT_SHOWN: usize = 50;

/// `left.log`: what the agent left in the sandbox, outside the result, with why.
pub(super) fn log_left_in_sandbox(report: &Report, logs: &mut Logs) {
    if report.left_in_sandbox.is_empty() {
        return;
    }
    let mut log = String::from("left in the sandbox, not part of the result:\n");
    for line in &report.left_in_sandbox {
        log.push_str(&format!("  {line}\n"));
    }
    logs.add("left.log", log.into_bytes());
}

/// Puts the work into a fresh session: the input without what the agent removed, then what it
/// wrote, read back from the repository a few files at a time so that what plancd holds stays
/// bounded.
pub(super) async fn put_work(cx: &PassContext, session: &dyn Session, input: &Input, change: &AgentChange) -> Result<(), Stop> {
    const BATCH_BYTES: usize = 4 << 20;
    let replaced: std::collections::BTreeSet<&str> =
        change.removed.iter().map(String::as_str).chain(change.written.iter().map(|f| f.path.as_str())).collect();
    input.put_into(session, |p| replaced.contains(p)).await?;
    let mut pending = change.written.iter().peekable();
    while pending.peek().is_some() {
        let mut batch = Vec::new();
        let mut bytes = 0;
        {
            let repo = cx.store.repo();
            while let Some(file) = pending.next_if(|_| bytes < BATCH_BYTES) {
                let data = repo.find_blob(file.blob)?.content().to_vec();
                bytes += data.len();
                batch.push(FileEntry { path: file.path.clone(), executable: file.executable, data });
            }
        }
        session.put_files(&batch).await?;
    }
    Ok(())
}

/// Why declared outputs are missing: not written, or written and left in the sandbox (too big,
/// not a regular file, ...).
pub(super) fn missing_message(missing: &[String], skipped: &[(String, Skip)]) -> String {
    let cut = skipped.iter().find(|(_, why)| matches!(why, Skip::ArchiveOverBudget(_)));
    let parts: Vec<String> = missing
        .iter()
        .map(|m| match (skipped.iter().find(|(p, _)| p == m), cut) {
            (Some((_, why)), _) => format!("{m} (written, but left in the sandbox: {why})"),
            (None, Some((at, why))) => {
                format!("{m} (or it was not read: at {}, {why})", plancd_sandbox::escape::name(at))
            }
            (None, None) => m.clone(),
        })
        .collect();
    format!("the agent did not produce: {}", parts.join(", "))
}

/// The guard's verdict on an agent's change: a protected path or a file that decides how the
/// tests run, not named by the task's outputs, refuses the attempt.
pub(super) fn guard_change(cx: &PassContext, task: &Task, input: &Input, change: &AgentChange, report: &mut Report) -> Option<Failure> {
    let subject =
        guard::Subject { outputs: &task.outputs, pinned: &task.acceptance_criteria.files, tests: &task.acceptance_criteria.tests, input };
    let violation = Guard::new(&cx.snapshot.config).check(&subject, change)?;
    report.refused_files = violation.paths.clone();
    Some(violation.into())
}

/// Declared outputs that are neither in the input nor written, or that were removed.
pub(super) fn missing_outputs(outputs: &[String], input: &Input, change: &AgentChange) -> Vec<String> {
    outputs
        .iter()
        .filter(|o| {
            let written = change.written.iter().any(|f| &f.path == *o);
            let kept = input.contains(o) && !change.removed.contains(o);
            !written && !kept
        })
        .cloned()
        .collect()
}

/// The configured checks (lint, types, security) after the roles they name, coder by default.
pub(super) async fn run_checks(
    cx: &PassContext,
    role: Role,
    session: &dyn Session,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Option<Failure>, Stop> {
    logs.step(cx, Step::Checks);
    let config = &cx.snapshot.config;
    let mut log = Vec::new();
    let mut failure = None;
    for check in config.checks.iter().filter(|c| if c.roles.is_empty() { role == Role::Coder } else { c.roles.contains(&role) }) {
        let timeout = remaining(deadline, Duration::from_secs(check.timeout_seconds.unwrap_or(config.sandbox.limits.timeout_seconds)));
        let o = session.exec(&ExecRequest::shell(&check.cmd, timeout)).await?;
        cx.emit(crate::reconcile::Event::Exec { kind: "check", duration: o.duration });
        Logs::command(&mut log, &check.cmd, &o);
        let record = CommandRecord::new(&check.name, &check.cmd, &o);
        if !record.passed && failure.is_none() {
            failure = Some(Failure {
                failure_type: "check_failed".into(),
                message: format!("check `{}` failed: `{}` ({})", check.name, check.cmd, record.describe()),
                output: String::from_utf8_lossy(&output_of(&o)).into_owned(),
                agent_finished: true,
                exit_code: o.exit_code,
                timed_out: o.timed_out,
                duration: Some(o.duration.as_secs_f64()),
                timeout: Some(timeout.as_secs_f64()),
                rerun_passed: false,
            });
        }
        report.checks.push(record);
    }
    if !log.is_empty() {
        logs.add("checks.log", log);
    }
    Ok(failure)
}

/// Restores the pinned files as committed, then runs the acceptance tests (each as `run_as`
/// says where it says something: under plancd's coverage measurement). Tests that fail are run
/// once more at once: if all then pass, the failure is reported as flaky.
#[allow(clippy::too_many_arguments)] // one call site; the steps share these.
pub(super) async fn run_tests(
    cx: &PassContext,
    session: &dyn Session,
    tests: &[AcceptanceTest],
    run_as: &[Option<String>],
    originals: &[FileEntry],
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<(TestSummary, Option<Failure>), Stop> {
    logs.step(cx, Step::Tests);
    session.put_files(originals).await?;
    let mut log = Vec::new();
    let mut failing: Vec<(usize, ExecOutcome, Duration)> = Vec::new();
    let env = guard::probe_env(&fastrand::u64(..).to_string());
    let request = |cmd: &str, timeout| ExecRequest { env: env.clone(), ..ExecRequest::shell(cmd, timeout) };
    let command = |i: usize| run_as.get(i).cloned().flatten().unwrap_or_else(|| tests[i].cmd.clone());
    for (i, test) in tests.iter().enumerate() {
        let timeout = remaining(deadline, Duration::from_secs(u64::from(test.timeout_seconds)));
        let o = session.exec(&request(&command(i), timeout)).await?;
        cx.emit(crate::reconcile::Event::Exec { kind: "test", duration: o.duration });
        let measured = if run_as.get(i).is_some_and(Option::is_some) { "  # under plancd's coverage measurement" } else { "" };
        Logs::command(&mut log, &format!("{}{measured}", test.cmd), &o);
        let name = test.name.clone().unwrap_or_else(|| format!("test {}", i + 1));
        report.tests.push(CommandRecord::new(&name, &test.cmd, &o));
        if !o.success() {
            failing.push((i, o, timeout));
        }
    }
    // Re-run what failed (not what timed out: that would only wait again).
    let mut all_rerun_passed = !failing.is_empty();
    for (i, o, timeout) in &failing {
        if o.timed_out || o.oom_killed {
            all_rerun_passed = false;
            continue;
        }
        session.put_files(originals).await?;
        let again = session.exec(&request(&command(*i), *timeout)).await?;
        Logs::command(&mut log, &format!("{}  # re-run", tests[*i].cmd), &again);
        report.tests[*i].rerun_passed = Some(again.success());
        all_rerun_passed &= again.success();
    }
    if !log.is_empty() {
        logs.add("tests.log", log);
    }
    let passed = report.tests.iter().filter(|t| t.passed).count() as u32;
    let summary = TestSummary {
        passed,
        failed: report.tests.len() as u32 - passed,
        duration_seconds: report.tests.iter().map(|t| t.duration_seconds).sum(),
        ..TestSummary::default()
    };
    let Some((i, first, timeout)) = failing.first() else { return Ok((summary, None)) };
    let record = &report.tests[*i];
    let output = failing.iter().map(|(_, o, _)| String::from_utf8_lossy(&output_of(o)).into_owned()).collect::<Vec<_>>().join("\n");
    let failure = Failure {
        failure_type: if first.timed_out { "timeout" } else { "test_failure" }.into(),
        message: format!(
            "{} of {} acceptance test(s) failed; first: `{}` ({})",
            summary.failed,
            tests.len(),
            record.cmd,
            record.describe()
        ),
        output,
        agent_finished: true,
        exit_code: first.exit_code,
        timed_out: first.timed_out,
        duration: Some(first.duration.as_secs_f64()),
        timeout: Some(timeout.as_secs_f64()),
        rerun_passed: all_rerun_passed,
    };
    Ok((summary, Some(failure)))
}

/// After the acceptance tests passed: each command runs once more against its probe (its
/// pinned test files with a failing test added), which must fail. One that still passes ends
/// the attempt as `TestTampering`. The pinned files are restored after each probe.
pub(super) async fn run_probes(
    cx: &PassContext,
    session: &dyn Session,
    criteria: &AcceptanceCriteria,
    input: &Input,
    deadline: Instant,
    logs: &mut Logs,
    report: &mut Report,
) -> Result<Option<Failure>, Stop> {
    if !cx.snapshot.config.test_probe {
        return Ok(None);
    }
    logs.step(cx, Step::Probes);
    let pinned = input.entries(|p| criteria.files.iter().any(|f| f == p))?;
    let tag = fastrand::u64(..).to_string();
    let mut log = Vec::new();
    let mut failure = None;
    for test in &criteria.tests {
        let probe = match guard::plan_probe(&test.cmd, &pinned, input, &tag) {
            ProbePlan::Run(probe) => probe,
            ProbePlan::Skip(why) => {
                log.extend_from_slice(format!("$ {}  # probe skipped: {why}\n\n", test.cmd).as_bytes());
                report.probes.push(ProbeRecord { cmd: test.cmd.clone(), files: Vec::new(), outcome: None, skipped: Some(why) });
                continue;
            }
        };
        session.put_files(&probe.files).await?;
        let timeout = remaining(deadline, Duration::from_secs(u64::from(test.timeout_seconds)));
        let o = session.exec(&ExecRequest { env: guard::probe_env(&tag), ..ExecRequest::shell(&test.cmd, timeout) }).await;
        session.put_files(&pinned).await?;
        let o = o?;
        let files: Vec<String> = probe.files.iter().map(|f| f.path.clone()).collect();
        Logs::command(&mut log, &format!("{}  # probe: a failing test added to {}", test.cmd, files.join(", ")), &o);
        report.probes.push(ProbeRecord { cmd: test.cmd.clone(), files: files.clone(), outcome: Some(o.to_string()), skipped: None });
        if o.success() && failure.is_none() {
            let message = format!(
                "the acceptance test `{}` still passes with a test that must fail added to {}: the runner or the code under test decides the verdict",
                test.cmd,
                files.join(", ")
            );
            failure = Some(Failure {
                failure_type: Refusal::TestTampering.failure_type().into(),
                message,
                output: String::from_utf8_lossy(&output_of(&o)).into_owned(),
                agent_finished: true,
                exit_code: o.exit_code,
                ..Failure::default()
            });
        }
    }
    if !log.is_empty() {
        logs.add("probe.log", log);
    }
    Ok(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_output_says_why_it_may_not_have_been_read() {
        type Row = (&'static str, Vec<(String, Skip)>, &'static str);
        let rows: [Row; 3] = [
            ("not written", vec![], "the agent did not produce: one.py"),
            (
                "left over a cap",
                vec![("one.py".into(), Skip::TooLarge(10))],
                "the agent did not produce: one.py (written, but left in the sandbox: larger than 10 bytes)",
            ),
            (
                "past an archive read in part",
                vec![("huge.bin".into(), Skip::ArchiveOverBudget(64))],
                "the agent did not produce: one.py (or it was not read: at huge.bin, the archive passed 64 bytes here; the rest was not read)",
            ),
        ];
        for (name, skipped, expected) in rows {
            assert_eq!(missing_message(&["one.py".into()], &skipped), expected, "{name}");
        }
    }

    #[test]
    fn a_committed_file_over_the_cap_is_said_to_keep_its_committed_content() {
        let skipped = vec![("data/huge.bin".to_owned(), Skip::TooLarge(10)), ("new.bin".to_owned(), Skip::TooLarge(10))];
        let lines = left_in_sandbox(&skipped, &Ignore::new(None), |p| p == "data/huge.bin");
        assert_eq!(
            lines,
            [
                "data/huge.bin (larger than 10 bytes; the result keeps the committed file, and a change the agent made to it is not taken)",
                "new.bin (larger than 10 bytes)",
            ]
        );
    }

    #[test]
    fn a_commands_output_reaches_logs_escaped() {
        let o = ExecOutcome {
            stdout: b"\x1b[2J\x1b]0;owned\x07ok\nplancd: succeeded p/t attempt 1\n".to_vec(),
            stderr: b"warn\r".to_vec(),
            exit_code: Some(0),
            ..ExecOutcome::default()
        };
        let shown = String::from_utf8(output_of(&o)).unwrap();
        assert!(!shown.contains('\u{1b}') && !shown.contains('\u{7}') && !shown.contains('\r'), "{shown:?}");
        assert!(shown.contains("\\plancd: succeeded p/t attempt 1"), "{shown}");
        assert!(shown.contains("ok\n"), "{shown}");
    }
}
