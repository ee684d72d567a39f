//! What people are shown about a task, read from the refs: a result's pull request body, and the
//! evidence of an escalation.

use std::path::Path;

use git2::{Oid, Repository};

use crate::forge::body::{AttemptLine, BranchLine, PrFacts, TestLine};
use crate::publish::Published;
use crate::reconcile::Snapshot;
use crate::render;
use crate::state::{StateError, Store, TaskKey, TaskState, TaskStatus, parse_trailers};

/// At most this many records of a task's chain are read for its attempts table.
pub(super) const HISTORY: usize = 200;
/// The last lines of test output an escalation shows.
const TAIL_LINES: usize = 60;
const TAIL_CHARS: usize = 6_000;

/// The pull request facts of `key`'s result `published`, before its `Succeeded` record.
pub fn pr_facts(store: &Store, snapshot: &Snapshot, key: &TaskKey, published: &Published) -> Result<PrFacts, StateError> {
    let task = snapshot.task(key);
    let status = store.status(key)?.map(|(_, s)| s);
    let (report, attempt) = accepting_report(store, key, status.as_ref())?;
    let (trailers, files, mut attempts) = {
        let repo = store.repo();
        let commit = repo.find_commit(published.commit)?;
        let trailers = parse_trailers(&String::from_utf8_lossy(commit.message_bytes()));
        (trailers, changed_files(&repo, &commit)?, history(&repo, &key.ref_name())?)
    };
    attempts.push(AttemptLine { n: attempt, outcome: "Accepted".into(), message: format!("published as {}", published.tag) });
    let mut provenance: Vec<(String, String)> = [
        ("agent", "Plancd-Agent"),
        ("model", "Plancd-Model"),
        ("prompt hash", "Plancd-Prompt-Hash"),
        ("spec hash", "Plancd-Spec-Hash"),
        ("plan commit", "Plancd-Plan-Commit"),
        ("correlation id", "Plancd-Correlation-Id"),
    ]
    .into_iter()
    .filter_map(|(name, trailer)| Some((name.to_owned(), trailers.get(trailer)?.clone())))
    .collect();
    if let Some(cost) = spent(store, key, status.as_ref())? {
        provenance.push(("cost".into(), cost));
    }
    if let Some(e) = status.as_ref().and_then(|s| s.environment.as_ref()) {
        provenance.push(("environment".into(), format!("{} ({} in {:.2}s)", e.key, e.how.as_str(), e.seconds)));
    }
    Ok(PrFacts {
        workflow: key.workflow.clone(),
        task: key.task.clone(),
        title: task.map_or_else(|| key.task.clone(), |t| t.title.clone()),
        description: task.map(|t| t.description.clone()).unwrap_or_default(),
        branch: published.branch.clone(),
        tag: published.tag.clone(),
        commit: published.commit.to_string(),
        attempt: trailers.get("Plancd-Attempt").and_then(|a| a.parse().ok()).unwrap_or(attempt),
        tests: tests(&report),
        pinned_files_changed: strings(&report["pinned_files_changed"]),
        files,
        attempts,
        branch_todos: branch_todos(store, key, status.as_ref())?,
        provenance,
        diagram: diagram(snapshot, key),
        network: accepting_network(store, key, status.as_ref())?,
        quality: accepting_quality(store, key, status.as_ref())?,
    })
}

/// The quality figures of the attempt whose work was accepted: the fixing branch todo's while
/// the task is `Debugging`, else the task's own (its `Verified` record carries them).
fn accepting_quality(store: &Store, key: &TaskKey, status: Option<&TaskStatus>) -> Result<Option<crate::state::Quality>, StateError> {
    let tests = match status.and_then(|s| s.open_branch.as_ref()) {
        Some(branch) => store.status(&TaskKey::new(&key.workflow, &branch.id))?.and_then(|(_, s)| s.tests),
        None => status.and_then(|s| s.tests.clone()),
    };
    Ok(tests.and_then(|t| t.quality).map(|q| *q))
}

/// The network of the attempt whose work was accepted: the fixing branch todo's while the task
/// is `Debugging`, else the task's own.
fn accepting_network(store: &Store, key: &TaskKey, status: Option<&TaskStatus>) -> Result<Option<crate::state::NetworkUse>, StateError> {
    Ok(match status.and_then(|s| s.open_branch.as_ref()) {
        Some(branch) => store.status(&TaskKey::new(&key.workflow, &branch.id))?.and_then(|(_, s)| s.network),
        None => status.and_then(|s| s.network.clone()),
    })
}

/// The report of the attempt whose work was accepted: the fixing branch todo's while the task is
/// `Debugging`, else the task's own latest. With the attempt's number.
fn accepting_report(store: &Store, key: &TaskKey, status: Option<&TaskStatus>) -> Result<(serde_json::Value, u32), StateError> {
    let owner = match status.and_then(|s| s.open_branch.as_ref()) {
        Some(branch) => TaskKey::new(&key.workflow, &branch.id),
        None => key.clone(),
    };
    // The attempt that verified the result: a takeover after a crash carries it over.
    let attempt = match store.status(&owner)? {
        Some((_, s)) => s.verified.map_or(s.attempt, |v| v.attempt),
        None => status.map_or(0, |s| s.attempt),
    };
    let bytes = store.read_file(&owner, &format!("attempts/{attempt}/report.json"))?.unwrap_or_default();
    let own_attempt = status.map_or(attempt, |s| s.attempt);
    Ok((serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null), own_attempt))
}

fn tests(report: &serde_json::Value) -> Vec<TestLine> {
    let Some(list) = report["tests"].as_array() else { return Vec::new() };
    list.iter()
        .map(|t| {
            let outcome = match (t["timed_out"].as_bool(), t["oom_killed"].as_bool(), t["exit_code"].as_i64(), t["signal"].as_i64()) {
                (Some(true), ..) => "timed out".to_owned(),
                (_, Some(true), ..) => "out of memory".to_owned(),
                (_, _, Some(code), _) => format!("exit {code}"),
                (_, _, None, Some(sig)) => format!("signal {sig}"),
                _ => "no exit status".to_owned(),
            };
            TestLine {
                name: t["name"].as_str().unwrap_or_default().to_owned(),
                cmd: t["cmd"].as_str().unwrap_or_default().to_owned(),
                passed: t["passed"].as_bool().unwrap_or(false),
                outcome,
                seconds: t["duration_seconds"].as_f64().unwrap_or(0.0),
            }
        })
        .collect()
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// The files a result commit changes against its parent.
fn changed_files(repo: &Repository, commit: &git2::Commit<'_>) -> Result<Vec<String>, git2::Error> {
    let parent = commit.parent(0).ok().map(|p| p.tree()).transpose()?;
    let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&commit.tree()?), None)?;
    let mut files: Vec<String> = diff
        .deltas()
        .filter_map(|d| d.new_file().path().or_else(|| d.old_file().path()).map(|p| p.to_string_lossy().into_owned()))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Every finished record of a task's chain, oldest first: how each attempt ended.
fn history(repo: &Repository, ref_name: &str) -> Result<Vec<AttemptLine>, git2::Error> {
    let Ok(reference) = repo.find_reference(ref_name) else { return Ok(Vec::new()) };
    let mut next = reference.target();
    let mut lines = Vec::new();
    while let Some(oid) = next.filter(|_| lines.len() < HISTORY) {
        let commit = repo.find_commit(oid)?;
        let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
        if let Some(state) = TaskState::from_message(oid, &message).filter(|s| !s.phase.is_held()) {
            let outcome = match &state.reason {
                Some(r) if r.as_str() != state.phase.as_str() => format!("{} ({r})", state.phase),
                _ => state.phase.to_string(),
            };
            lines.push(AttemptLine { n: state.attempt, outcome, message: body_of(&message) });
        }
        next = commit.parent_id(0).ok();
    }
    lines.reverse();
    Ok(lines)
}

/// The body of a status commit: what lies between the subject and the trailers.
fn body_of(message: &str) -> String {
    let paragraphs: Vec<&str> = message.trim_end().split("\n\n").collect();
    if paragraphs.len() <= 2 { String::new() } else { paragraphs[1..paragraphs.len() - 1].join(" ") }
}

fn branch_todos(store: &Store, key: &TaskKey, status: Option<&TaskStatus>) -> Result<Vec<BranchLine>, StateError> {
    let mut out = Vec::new();
    for id in status.map(|s| s.branch_todos.as_slice()).unwrap_or_default() {
        let Some((_, s)) = store.status(&TaskKey::new(&key.workflow, id))? else { continue };
        let info = s.branch.as_ref();
        out.push(BranchLine {
            id: id.clone(),
            role: info.map(|b| b.role.clone()).or(s.role.clone()).unwrap_or_default(),
            failure_type: info.map(|b| b.failure_type.to_string()).unwrap_or_default(),
            phase: s.phase.to_string(),
            attempts: s.attempt,
        });
    }
    Ok(out)
}

/// What the model calls behind a result cost: the task's attempts and its branch todos'.
fn spent(store: &Store, key: &TaskKey, status: Option<&TaskStatus>) -> Result<Option<String>, StateError> {
    let Some(status) = status else { return Ok(None) };
    let mut total = status.cost.unwrap_or_default();
    for id in &status.branch_todos {
        if let Some((_, branch)) = store.status(&TaskKey::new(&key.workflow, id))? {
            total += branch.cost.unwrap_or_default();
        }
    }
    Ok((!total.is_zero()).then(|| format!("{} ({} tokens)", total.dollars(), total.tokens())))
}

/// The workflow's flowchart with `key`'s task marked.
pub fn diagram(snapshot: &Snapshot, key: &TaskKey) -> String {
    let Some(plan) = snapshot.plan(&key.workflow) else { return String::new() };
    let mut workflow = render::Workflow::from_plan(plan);
    workflow.mark(&key.task);
    render::mermaid(&render::Dag { workflows: vec![workflow] })
}

/// The evidence of an escalated task: its status, its branch todos, the last test output.
pub fn escalation_body(store: &Store, snapshot: &Snapshot, key: &TaskKey, status: &TaskStatus) -> Result<String, StateError> {
    let title = snapshot.task(key).map_or_else(|| key.task.clone(), |t| t.title.clone());
    let mut out = format!("**`{key}`** ({title}) was escalated to a person after attempt {}.\n\n| | |\n|---|---|\n", status.attempt);
    let rows = [
        ("reason", status.reason.as_ref().map(ToString::to_string).unwrap_or_default()),
        ("failure type", status.failure_type.as_ref().map(ToString::to_string).unwrap_or_default()),
        ("branch todos", status.branch_todos.join(", ")),
        ("plan commit", status.plan_commit.clone().unwrap_or_default()),
    ];
    for (name, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        out.push_str(&format!("| {name} | `{}` |\n", value.replace('|', "\\|")));
    }
    out.push_str(&format!("\n### What plancd saw\n\n{}\n", quote(&status.message)));
    if let Some(tail) = last_test_output(store, key, status)? {
        out.push_str(&format!("\n### Last test output\n\n```text\n{tail}\n```\n"));
    }
    out.push_str(&format!(
        "\n### What to do\n\n- Comment `/plancd retry <what to do differently>` on this issue (with write access to the repository): the next attempt gets your words as instructions. From a shell: `plancd retry {key} -m '<instructions>'`, or `plancd retry {key}` once the plan or the code it depends on is fixed.\n- `plancd describe {key}` shows its attempts, branch todos, failure types and evidence; `plancd logs {key}` every attempt's logs.\n\nThis issue is closed when the task succeeds.\n"
    ));
    Ok(out)
}

fn quote(text: &str) -> String {
    text.lines().map(|l| format!("> {l}")).collect::<Vec<_>>().join("\n")
}

/// The tail of the last tests.log: the last branch todo's last attempt, else the task's own.
fn last_test_output(store: &Store, key: &TaskKey, status: &TaskStatus) -> Result<Option<String>, StateError> {
    let mut owners: Vec<TaskKey> = status.branch_todos.iter().rev().map(|b| TaskKey::new(&key.workflow, b)).collect();
    owners.push(key.clone());
    for owner in owners {
        let Some((_, s)) = store.status(&owner)? else { continue };
        for n in (1..=s.attempt).rev() {
            if let Some(log) = store.read_file(&owner, &format!("attempts/{n}/tests.log"))? {
                return Ok(Some(tail(&String::from_utf8_lossy(&log))));
            }
        }
    }
    Ok(None)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let mut out = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if out.chars().count() > TAIL_CHARS {
        out = out.chars().rev().take(TAIL_CHARS).collect::<Vec<_>>().into_iter().rev().collect();
    }
    out.replace("```", "'''")
}

/// Whether `path` is a repository's config or matches one of the plan or contract globs.
pub fn is_plan_file(config: &crate::config::Config, path: &str) -> bool {
    if crate::config::CONFIG_FILES.contains(&path) {
        return true;
    }
    config.plans.iter().chain(&config.contracts).any(|g| globset::Glob::new(g).is_ok_and(|g| g.compile_matcher().is_match(Path::new(path))))
}

/// The result commit's oid as a short string for people.
pub fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_owned()
}
