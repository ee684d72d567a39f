//! `plancd describe WF/TASK`: everything about one task in one screen, from its ref's chain
//! and the plans at the watched commit: the spec hash and why it differs from the plan's, the
//! attempts, the branch-todo tree with failure types and evidence, the tests that decided, the
//! environment, the result and pull request, the cost, what happens next and the last events.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::events::{EventRow, EventsOptions, events_in};
use super::manage::ManageError;
use super::status::{StatusRow, report};
use crate::config::Env;
use crate::reconcile::Snapshot;
use crate::state::{
    Cost, EnvironmentUse, FailureType, HistoryEntry, Phase, Reason, ResultRef, Review, Store, TaskKey, TaskStatus, TestSummary,
};

/// Events shown at the foot of the text.
const RECENT_EVENTS: usize = 10;

/// Everything about one task.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    /// The task.
    pub workflow: String,
    /// Its id.
    pub task: String,
    /// The plan's title for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// For a branch todo: the task it debugs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Where it stands.
    pub phase: Phase,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The record's message.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The spec hash against the plan's.
    pub spec: SpecView,
    /// What a reconcile would do now, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Attempts since the last retry, and the limit.
    pub attempts_used: u32,
    /// The plan's `max_attempts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// One entry per attempt, oldest first.
    pub attempts: Vec<AttemptView>,
    /// The branch todos opened for it, in order (depth tells the nesting).
    pub branch_todos: Vec<BranchView>,
    /// The tests that decided the latest outcome: where they ran and each command's verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Decision>,
    /// The environment the last attempt used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentUse>,
    /// The network the last attempt's agent had through its role's `network.allow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::state::NetworkUse>,
    /// The published result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRef>,
    /// The quality figures plancd measured on the latest work whose tests passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::state::Quality>,
    /// A reviewer's request the next attempts answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// What model calls cost over all attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// The last state changes, oldest first.
    pub events: Vec<EventRow>,
}

/// The recorded spec hash against the plan's current one.
#[derive(Debug, Clone, Serialize)]
pub struct SpecView {
    /// The hash the record is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    /// The hash the plan at the watched commit gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Whether they are the same.
    pub matches: bool,
    /// Why they differ (or why there is nothing to compare).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The watched commit the last attempt worked from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_commit: Option<String>,
}

/// One attempt, as its last record left it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    /// Its number.
    pub attempt: u32,
    /// How it ended (or where it stands).
    pub phase: Phase,
    /// The phases it went through after it started, in order (`Debugging`, `Succeeded`).
    pub phases: Vec<Phase>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The failure's type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<FailureType>,
    /// The message.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<jiff::Timestamp>,
    /// How long it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// Its test counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestSummary>,
    /// Whether plancd stopped while it ran (killed, the machine gone): its last record says it
    /// was running, and a later attempt took over.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// A branch todo of the task.
#[derive(Debug, Clone, Serialize)]
pub struct BranchView {
    /// `<task>_branch_NN`.
    pub id: String,
    /// 1 for the first branch, one more for each branch opened on a branch's work.
    pub depth: u32,
    /// The role that plays it.
    pub role: String,
    /// The triage's failure type that opened it.
    pub failure_type: FailureType,
    /// The parent's attempt whose failure opened it.
    pub parent_attempt: u32,
    /// Where it stands.
    pub phase: Phase,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Its attempts, and the limit.
    pub attempts: u32,
    /// `max_debug_attempts`.
    pub max_attempts: u32,
    /// The message.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The diagnostics it was given (the evidence of the failure).
    pub evidence: String,
}

/// The acceptance tests that decided the latest outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The task or branch todo whose attempt ran them.
    pub task: String,
    /// That attempt.
    pub attempt: u32,
    /// Each test command and its verdict.
    pub tests: Vec<TestVerdict>,
    /// The triage of a failure: its summary and evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
}

/// One acceptance test command, from the attempt's `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestVerdict {
    /// The command.
    pub cmd: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its exit code.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Whether it hit its deadline.
    #[serde(default)]
    pub timed_out: bool,
    /// How long it ran.
    #[serde(default)]
    pub duration_seconds: f64,
}

/// A failure's triage, from the attempt's `report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Triage {
    /// The failure type.
    pub failure_type: FailureType,
    /// In words.
    #[serde(default)]
    pub summary: String,
    /// The lines that show it.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// The parts of `report.json` a description shows.
#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    tests: Vec<TestVerdict>,
    #[serde(default)]
    triage: Option<Triage>,
}

/// Describes `key`, with the plans read at `branch` (or the configured watched branch).
pub fn describe(repo: &Path, branch: Option<&str>, env: &Env, key: &TaskKey) -> Result<Description, ManageError> {
    let store = Store::open(repo)?;
    let snapshot = Snapshot::load(store.path(), branch, env).map_err(|e| e.to_string());
    let row = report(&store, snapshot.as_ref().map_err(Clone::clone), Some(&key.to_string()))?
        .tasks
        .into_iter()
        .find(|r| r.workflow == key.workflow && r.task == key.task);
    describe_in(&store, snapshot.as_ref().ok(), row, key)
}

/// Describes `key` from what a caller has read already: `store`, the plans (when they loaded)
/// and the task's status row (what `plancd status` says of it, when it has one).
pub fn describe_in(store: &Store, snapshot: Option<&Snapshot>, row: Option<StatusRow>, key: &TaskKey) -> Result<Description, ManageError> {
    // A task of the plan that never ran is described too: its spec and what it waits for.
    let record = match store.status(key)? {
        Some((_, record)) => record,
        None if snapshot.is_some_and(|s| s.task(key).is_some()) => {
            TaskStatus::new(&key.workflow, &key.task, Phase::Pending, jiff::Timestamp::now())
        }
        None => return Err(ManageError::UnknownTask(key.clone())),
    };
    let history = store.history(key)?;
    let task = snapshot.and_then(|s| s.task(key));
    let mut branch_todos = Vec::new();
    for id in &record.branch_todos {
        if let Some((_, b)) = store.status(&TaskKey::new(&key.workflow, id))? {
            branch_todos.push(branch_view(&b));
        }
    }
    let all_events = events_in(store, &EventsOptions { target: Some(&key.to_string()), since: None })?;
    Ok(Description {
        workflow: key.workflow.clone(),
        task: key.task.clone(),
        title: task.map(|t| t.title.clone()),
        role: row.as_ref().and_then(|r| r.role.clone()).or_else(|| record.role.clone()),
        parent: record.branch.as_ref().map(|b| b.parent_id.clone()),
        phase: record.phase,
        reason: record.reason.clone(),
        message: record.message.clone(),
        spec: spec_view(store, snapshot, key, &record),
        next: row.as_ref().filter(|r| r.action.is_some()).map(|r| r.why.clone().unwrap_or_else(|| "up to date".into())),
        attempts_used: record.attempts_used(),
        max_attempts: task.map(|t| t.max_attempts),
        attempts: attempts(&history),
        branch_todos,
        decided_by: decision(store, key, &record),
        environment: record.environment.clone(),
        network: record.network.clone(),
        result: record.result.clone(),
        quality: record.tests.as_ref().and_then(|t| t.quality.as_deref().cloned()),
        review: record.review.clone(),
        cost: record.cost,
        events: all_events.iter().skip(all_events.len().saturating_sub(RECENT_EVENTS)).cloned().collect(),
    })
}

/// The recorded spec hash against the plan's, and why they differ: an upstream task's spec
/// changed, or the task's own spec, contract or test files did.
fn spec_view(store: &Store, snapshot: Option<&Snapshot>, key: &TaskKey, record: &TaskStatus) -> SpecView {
    let recorded = record.spec_hash.as_ref().map(ToString::to_string);
    let mut view =
        SpecView { recorded: recorded.clone(), current: None, matches: false, why: None, plan_commit: record.plan_commit.clone() };
    let Some(snapshot) = snapshot else {
        view.why = Some("the plans at the watched commit cannot be read".into());
        return view;
    };
    if let Some(parent) = record.branch.as_ref().map(|b| &b.parent_id) {
        view.current = snapshot.hashes.get(&TaskKey::new(&key.workflow, parent)).map(ToString::to_string);
        view.matches = view.current == recorded;
        view.why = Some(format!("a branch todo works under its parent {parent}'s spec"));
        return view;
    }
    let Some(current) = snapshot.hashes.get(key) else {
        view.why = Some(format!("no plan at {} names the task", short(&snapshot.plan_commit.to_string())));
        return view;
    };
    view.current = Some(current.to_string());
    view.matches = view.current == recorded;
    if view.matches {
        return view;
    }
    let task = snapshot.task(key);
    let changed_upstream: Vec<String> = task
        .map(|t| t.dependencies.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|dep| {
            let dep_key = TaskKey::new(&key.workflow, dep);
            let recorded = store.state(&dep_key).ok().flatten().and_then(|s| s.spec_hash);
            recorded.is_some() && recorded.as_ref() != snapshot.hashes.get(&dep_key)
        })
        .collect();
    view.why = Some(match (recorded.is_some(), changed_upstream.is_empty()) {
        (false, _) => "it has not run for any spec yet".into(),
        (true, true) => "its own spec changed since it last ran: the task in the plan, its contract or its test files".into(),
        (true, false) => {
            format!("an upstream spec changed: {} (the next reconcile runs them, then this task)", changed_upstream.join(", "))
        }
    });
    view
}

/// The last record of each attempt.
fn attempts(history: &[HistoryEntry]) -> Vec<AttemptView> {
    let mut out: Vec<AttemptView> = Vec::new();
    for entry in history.iter().filter(|e| e.status.attempt > 0) {
        let s = &entry.status;
        let view = AttemptView {
            attempt: s.attempt,
            phase: s.phase,
            phases: vec![s.phase],
            reason: s.reason.clone(),
            failure_type: s.failure_type.clone(),
            message: s.message.clone(),
            started_at: s.started_at,
            duration_seconds: s.started_at.zip(s.finished_at).map(|(a, b)| b.duration_since(a).as_secs_f64().max(0.0)),
            tests: s.tests.clone(),
            interrupted: false,
        };
        match out.last_mut() {
            Some(last) if last.attempt == s.attempt => {
                // A later record of the same attempt that only carries a result on keeps the
                // failure it reported (e.g. Debugging, then Succeeded after the branch todo).
                let (failure, mut phases) = (last.failure_type.take(), std::mem::take(&mut last.phases));
                if phases.last() != Some(&s.phase) {
                    phases.push(s.phase);
                }
                *last = AttemptView { phases, ..view };
                last.failure_type = last.failure_type.take().or(failure);
            }
            _ => out.push(view),
        }
    }
    // An attempt that never recorded how it ended, with a later one after it, was cut off.
    let later = out.len().saturating_sub(1);
    for a in &mut out[..later] {
        a.interrupted = a.phase.is_held();
    }
    out
}

fn branch_view(b: &TaskStatus) -> BranchView {
    let info = b.branch.clone();
    BranchView {
        id: b.task_id.clone(),
        depth: info.as_ref().map_or(1, |i| i.depth),
        role: info.as_ref().map_or_else(|| b.role.clone().unwrap_or_default(), |i| i.role.clone()),
        failure_type: info.as_ref().map_or(FailureType::Unknown, |i| i.failure_type.clone()),
        parent_attempt: info.as_ref().map_or(0, |i| i.parent_attempt),
        phase: b.phase,
        reason: b.reason.clone(),
        attempts: b.attempt,
        max_attempts: info.as_ref().map_or(0, |i| i.max_debug_attempts),
        message: b.message.clone(),
        evidence: info.map(|i| i.debug_instructions).unwrap_or_default(),
    }
}

/// The tests that decided: those of the attempt that accepted the result, else those of the
/// latest attempt that ran tests.
fn decision(store: &Store, key: &TaskKey, record: &TaskStatus) -> Option<Decision> {
    // After a branch todo, the last tests run were its (against this task's tests).
    let last_branch = record.branch_todos.last().and_then(|id| {
        let b = store.state(&TaskKey::new(&key.workflow, id)).ok().flatten()?;
        (b.attempt > 0).then(|| (id.clone(), b.attempt))
    });
    let (task, attempt) = match (record.result.as_ref().and_then(|r| r.accepted_in.as_ref()), last_branch) {
        (Some(a), _) => (a.task_id.clone(), a.attempt),
        (None, Some(branch)) if record.phase != Phase::Succeeded => branch,
        (None, _) => (key.task.clone(), record.attempt),
    };
    let at = TaskKey::new(&key.workflow, &task);
    let bytes = store.read_file(&at, &format!("attempts/{attempt}/report.json")).ok().flatten()?;
    let report: Report = serde_json::from_slice(&bytes).ok()?;
    Some(Decision { task, attempt, tests: report.tests, triage: report.triage })
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// The description as people read it. One field after the other, in the order a person asks
/// about a task (what, where it stands, why, what was tried, what came of it): long, and
/// flat on purpose.
pub fn text(d: &Description, now: jiff::Timestamp) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| out.push_str(&format!("{:<14}{value}\n", format!("{name}:")));
    field("Task", &format!("{}/{}", d.workflow, d.task));
    if let Some(t) = &d.title {
        field("Title", t);
    }
    if let Some(p) = &d.parent {
        field("Branch todo of", &format!("{}/{p}", d.workflow));
    }
    field("Role", d.role.as_deref().unwrap_or("-"));
    let reason = d.reason.as_ref().filter(|r| r.as_str() != d.phase.as_str()).map(|r| format!(" ({r})")).unwrap_or_default();
    field("Phase", &format!("{}{reason}", d.phase));
    if !d.message.is_empty() {
        field("Message", d.message.lines().next().unwrap_or_default());
    }
    if let Some(next) = &d.next {
        let key = format!("{}/{}", d.workflow, d.task);
        // An environment's failure already says what to do (change environment.setup, or
        // retry); instructions for an agent that never ran would mislead.
        let environment = d.reason.as_ref().is_some_and(Reason::is_environment);
        let hint = match d.phase {
            Phase::Escalated | Phase::Failed if d.parent.is_none() && !environment => {
                format!(" — fix the plan or its inputs and `plancd retry {key}`, or `plancd retry {key} -m '<what to do differently>'`")
            }
            _ => String::new(),
        };
        field("Next", &format!("{next}{hint}"));
    }
    let spec = match (&d.spec.recorded, &d.spec.current, d.spec.matches) {
        (Some(r), _, true) => format!("{} (the plan's current spec)", short(r)),
        (Some(r), Some(c), false) => format!("{} — the plan's is now {}", short(r), short(c)),
        (Some(r), None, _) => short(r).to_owned(),
        (None, Some(c), _) => format!("- (it has not run yet; the plan's spec is {})", short(c)),
        (None, None, _) => "-".into(),
    };
    field("Spec hash", &spec);
    if let Some(why) = d.spec.why.as_ref().filter(|_| (!d.spec.matches && d.spec.recorded.is_some()) || d.parent.is_some()) {
        field("", why);
    }
    if let Some(c) = &d.spec.plan_commit {
        field("Plan commit", short(c));
    }
    if let Some(e) = &d.environment {
        field("Environment", &format!("{} ({}, {})", e.key, e.how.as_str(), super::status::human_duration(e.seconds)));
    }
    if let Some(n) = &d.network {
        let allowed = if n.allow.is_empty() { "nothing".to_owned() } else { n.allow.join(", ") };
        field("Network", &format!("attempt {}: allowed {allowed}", n.attempt));
        let used = crate::state::NetworkUse::list_text(&n.used, 10);
        field("", &format!("used: {}", if used.is_empty() { "none" } else { &used }));
        if !n.blocked.is_empty() {
            field("", &format!("blocked {} request(s): {}", n.blocked_total, crate::state::NetworkUse::list_text(&n.blocked, 10)));
        }
    }
    if let Some(c) = &d.cost {
        field("Cost", &format!("{} in, {} out tokens, {}", c.input_tokens, c.output_tokens, c.dollars()));
    }
    if let Some(r) = &d.review {
        field("Review", &format!("{} asked: {}", r.by, r.instructions.lines().next().unwrap_or_default()));
    }
    let limit = d.max_attempts.map(|m| format!(" of {m}")).unwrap_or_default();
    out.push_str(&format!("{:<14}{}{limit} used since the last retry or spec change\n", "Attempts:", d.attempts_used));
    attempts_text(&mut out, &d.attempts);
    if let Some(last) = d.attempts.last() {
        out.push_str(&format!("{:<14}plancd logs {}/{} --attempt {}\n", "Logs:", d.workflow, d.task, last.attempt));
    }
    branches_text(&mut out, &d.branch_todos);
    if let Some(dec) = &d.decided_by {
        decision_text(&mut out, dec);
    }
    if let Some(r) = &d.result {
        out.push_str("Result:\n");
        out.push_str(&format!("  Branch:       {}\n", r.branch));
        if let Some(tag) = &r.tag {
            out.push_str(&format!("  Tag:          {tag}\n"));
        }
        out.push_str(&format!("  Commit:       {}\n", short(&r.commit)));
        if !r.files.is_empty() {
            out.push_str(&format!("  Files:        {}\n", r.files.join(", ")));
        }
        out.push_str(&format!("  Pull request: {}\n", r.pull_request.as_deref().unwrap_or("-")));
        if let Some(a) = &r.accepted_in {
            out.push_str(&format!("  Accepted in:  {} attempt {}\n", a.task_id, a.attempt));
        }
    }
    if let Some(q) = &d.quality {
        quality_text(&mut out, q);
    }
    if !d.events.is_empty() {
        out.push_str("Events:\n");
        for line in super::events::table(&d.events, now).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

fn attempts_text(out: &mut String, attempts: &[AttemptView]) {
    for a in attempts {
        let took = a.duration_seconds.map(super::status::human_duration).unwrap_or_else(|| "-".into());
        let tests = a.tests.as_ref().map(|t| format!("  tests {}/{} passed", t.passed, t.passed + t.failed + t.errors)).unwrap_or_default();
        // The way it went: `Debugging [implementation_bug] → Succeeded`; the claim's phases
        // (Claimed, Running) are left out once it moved on.
        let mut way: Vec<String> = a.phases.iter().filter(|p| !p.is_held() || a.phases.len() == 1).map(ToString::to_string).collect();
        if let (Some(f), Some(first)) = (&a.failure_type, way.first_mut()) {
            first.push_str(&format!(" [{f}]"));
        }
        if a.interrupted {
            way.push("interrupted".to_owned());
        }
        let message = match a.message.lines().next().unwrap_or_default() {
            "" if a.interrupted => "plancd stopped while it ran (killed, or its machine went away); a later attempt took over",
            line => line,
        };
        out.push_str(&format!("  #{:<3}{}  {took}{tests}\n", a.attempt, way.join(" → ")));
        if !message.is_empty() {
            out.push_str(&format!("      {message}\n"));
        }
    }
}

/// The quality figures: coverage, security findings (the most severe listed), and what was not
/// measured, with why.
fn quality_text(out: &mut String, q: &crate::state::Quality) {
    out.push_str("Quality:\n");
    if let Some(c) = &q.coverage {
        out.push_str(&format!(
            "  Coverage:     {:.1}% ({} of {} statements in {} file(s); {} of {} test command(s) measured)\n",
            c.percent, c.covered_lines, c.statements, c.files, c.commands_measured, c.commands
        ));
    }
    if let Some(s) = &q.security {
        out.push_str(&format!("  Security:     {} in {} line(s) (bandit)\n", s.summary(), s.lines_scanned));
        for f in s.findings.iter().take(10) {
            out.push_str(&format!("    {:<6} {}  {}:{}  {}\n", f.severity.as_str(), f.rule, f.path, f.line, f.text));
        }
        if s.counts.total() as usize > 10 {
            out.push_str(&format!("    …and {} more\n", s.counts.total() as usize - 10));
        }
    }
    for u in &q.unmeasured {
        let figure = match u.figure {
            crate::state::quality::Figure::Coverage => "Coverage:",
            crate::state::quality::Figure::Security => "Security:",
        };
        let detail = if u.detail.is_empty() { String::new() } else { format!(" ({})", u.detail) };
        out.push_str(&format!("  {figure:<14}not measured: {}{detail}\n", u.reason.describe()));
    }
}

fn branches_text(out: &mut String, branches: &[BranchView]) {
    if branches.is_empty() {
        return;
    }
    out.push_str("Branch todos:\n");
    for (i, b) in branches.iter().enumerate() {
        let indent = "  ".repeat(b.depth.max(1) as usize);
        let elbow = if i + 1 == branches.len() || branches[i + 1].depth < b.depth { "└─" } else { "├─" };
        out.push_str(&format!(
            "{indent}{elbow} {}  depth {}  {}  [{}] from attempt {}  {}  attempt {}/{}\n",
            b.id, b.depth, b.role, b.failure_type, b.parent_attempt, b.phase, b.attempts, b.max_attempts
        ));
        if !b.message.is_empty() {
            out.push_str(&format!("{indent}     {}\n", b.message.lines().next().unwrap_or_default()));
        }
        for line in evidence_lines(&b.evidence) {
            out.push_str(&format!("{indent}     | {line}\n"));
        }
    }
}

/// The diagnostics' head: what failed and the evidence, not the whole output.
fn evidence_lines(evidence: &str) -> Vec<&str> {
    let head = evidence.split("Last lines of the output:").next().unwrap_or_default();
    head.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).take(6).collect()
}

fn decision_text(out: &mut String, d: &Decision) {
    out.push_str(&format!("Tests that decided ({} attempt {}):\n", d.task, d.attempt));
    for t in &d.tests {
        let verdict = if t.passed {
            "passed"
        } else if t.timed_out {
            "timed out"
        } else {
            "failed"
        };
        let code = t.exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
        out.push_str(&format!("  {verdict:<9} {}{code}  {}\n", t.cmd, super::status::human_duration(t.duration_seconds)));
    }
    if let Some(t) = &d.triage {
        out.push_str(&format!("  triage: {} — {}\n", t.failure_type, t.summary));
        for e in t.evidence.iter().take(5) {
            out.push_str(&format!("    {e}\n"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attempt: u32, phase: Phase) -> HistoryEntry {
        let mut status = TaskStatus::new("wf", "t", phase, jiff::Timestamp::UNIX_EPOCH);
        status.attempt = attempt;
        HistoryEntry { commit: git2::Oid::ZERO_SHA1, status }
    }

    #[test]
    fn an_attempt_cut_off_while_running_reads_as_interrupted() {
        // (records, which attempts read as interrupted)
        let cases: [(Vec<HistoryEntry>, Vec<bool>); 4] = [
            (vec![entry(1, Phase::Running), entry(2, Phase::Running), entry(2, Phase::Succeeded)], vec![true, false]),
            (vec![entry(1, Phase::Claimed), entry(2, Phase::Running)], vec![true, false]),
            (vec![entry(1, Phase::Running), entry(1, Phase::Failed), entry(2, Phase::Succeeded)], vec![false, false]),
            (vec![entry(1, Phase::Running)], vec![false]),
        ];
        for (history, want) in cases {
            let got: Vec<bool> = attempts(&history).iter().map(|a| a.interrupted).collect();
            assert_eq!(got, want, "{:?}", history.iter().map(|e| (e.status.attempt, e.status.phase)).collect::<Vec<_>>());
        }
        let mut text = String::new();
        attempts_text(&mut text, &attempts(&[entry(1, Phase::Running), entry(2, Phase::Succeeded)]));
        assert!(text.contains("#1  Running → interrupted"), "{text}");
        assert!(text.contains("a later attempt took over"), "{text}");
    }
}
