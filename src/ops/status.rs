//! `plancd status`: every task's phase, attempt, duration, result and why it waits, from the
//! refs (and from the plans at the watched commit, when they load).

use std::collections::HashMap;
use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;

use crate::config::Env;
use crate::reconcile::{Action, Context, Snapshot, StalledWorkflow, decide, read_actual};
use crate::render::Dag;
use crate::spec::PlanFile;
use crate::state::{BrokenTask, Cost, Damage, StateError, Store, TaskKey, TaskStatus};

/// One task's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusRow {
    /// The workflow.
    pub workflow: String,
    /// The task.
    pub task: String,
    /// The role, when the task is in a plan.
    pub role: Option<String>,
    /// The phase in the refs (`Pending` when never run).
    pub phase: String,
    /// What a reconcile would do now: Run, Wait, UpToDate, ...
    pub action: Option<String>,
    /// Why, in words.
    pub why: Option<String>,
    /// The latest attempt.
    pub attempt: u32,
    /// When the latest attempt started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// How long it took (or has taken so far).
    pub duration_seconds: Option<f64>,
    /// The result branch.
    pub result_branch: Option<String>,
    /// The result tag.
    pub result_tag: Option<String>,
    /// The result commit.
    pub result_commit: Option<String>,
    /// The status message.
    pub message: String,
    /// The failure type, when failed.
    pub failure_type: Option<String>,
    /// What model calls cost over all attempts, when any did.
    pub cost: Option<Cost>,
    /// The environment the last attempt used: its key, and whether it was built, reused or
    /// failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<crate::state::EnvironmentUse>,
    /// The network the last attempt's agent had through its role's `network.allow`: the hosts
    /// it reached and the requests refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::state::NetworkUse>,
    /// For a branch todo: the task it debugs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The result's pull request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
    /// The quality figures (coverage, security findings) plancd measured on the latest work
    /// whose tests passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::state::Quality>,
}

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The watched commit, when the plans loaded.
    pub plan_commit: Option<String>,
    /// One row per task.
    pub tasks: Vec<StatusRow>,
    /// Why the plans could not be read, if they could not.
    pub plans_error: Option<String>,
    /// The workflows whose plans are invalid: Stalled, with the reason and every diagnostic.
    pub stalled: Vec<StalledWorkflow>,
}

/// Collects the status of every task, or of one workflow or task.
pub fn status(repo: &Path, branch: Option<&str>, env: &Env, filter: Option<&str>) -> Result<StatusReport, StateError> {
    let store = Store::open(repo)?;
    let snapshot = Snapshot::load(store.path(), branch, env).map_err(|e| e.to_string());
    report(&store, snapshot.as_ref().map_err(Clone::clone), filter)
}

/// The status of the tasks `filter` selects (all when `None`), from `store`'s refs and the
/// plans of `snapshot` (or why they could not be loaded): for callers that have loaded the
/// snapshot already, such as the dashboard.
pub fn report(store: &Store, snapshot: Result<&Snapshot, String>, filter: Option<&str>) -> Result<StatusReport, StateError> {
    let (snapshot, plans_error) = match snapshot {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    let actual = read_actual(store)?;
    let screened = snapshot.map(|s| s.screen(actual.clone()));
    let actions: HashMap<TaskKey, Action> = match (snapshot, &screened) {
        (Some(s), Some(actual)) => decide(&s.desired(), actual, &Context { now: Timestamp::now(), prune: s.config.prune })
            .into_iter()
            .map(|a| (a.key().clone(), a))
            .collect(),
        _ => HashMap::new(),
    };
    let stalled: Vec<StalledWorkflow> = snapshot.map(|s| s.stalled.clone()).unwrap_or_default();
    let broken: HashMap<TaskKey, BrokenTask> = store.scan()?.1.into_iter().map(|b| (b.key.clone(), b)).collect();
    let keys = ordered_keys(snapshot, &actual, &broken);
    let matches = |k: &TaskKey| match filter {
        None => true,
        Some(f) => f == k.workflow || f == k.to_string(),
    };
    // An attempt running now in this repository (any process) tells its step.
    let git_dir = store.repo().path().to_path_buf();
    let mut tasks = Vec::new();
    for key in keys.into_iter().filter(|k| matches(k)) {
        let role = snapshot.and_then(|s| s.task(&key)).map(|t| t.agent_role.to_string());
        // One unreadable record is that task's row, not the end of the listing.
        let full = match broken.get(&key) {
            Some(b) => Err(b.clone()),
            None => store.status(&key).map_err(|e| BrokenTask { key: key.clone(), damage: Damage::Unreadable(e.to_string()), file: None }),
        };
        let mut row = match full {
            Ok(full) => row(&key, full.map(|(_, s)| s).as_ref(), role, actions.get(&key)),
            Err(b) => StatusRow { phase: "Broken".into(), message: format!("{}; {}", b.damage, b.hint()), ..row(&key, None, role, None) },
        };
        if let Some(view) = crate::live::latest(&git_dir, &key).filter(crate::live::LiveView::running) {
            let step = format!("step: {}", view.marker.step);
            row.why = Some(row.why.map_or_else(|| step.clone(), |w| format!("{w}; {step}")));
        }
        if let Some(st) = stalled.iter().find(|s| s.plan.workflow.as_deref() == Some(key.workflow.as_str())) {
            row.action = Some("Stalled".into());
            row.why = Some(format!("workflow stalled ({}): {} error(s) in {}", st.reason, st.plan.errors(), st.plan.path));
        }
        tasks.push(row);
    }
    let stalled = stalled
        .into_iter()
        .filter(|s| filter.is_none_or(|f| s.plan.workflow.as_deref() == Some(f.split('/').next().unwrap_or(f))))
        .collect();
    Ok(StatusReport { plan_commit: snapshot.map(|s| s.plan_commit.to_string()), tasks, plans_error, stalled })
}

/// Tasks in plan order, each followed by its branch todos; then what no plan has, and the refs
/// that cannot be read. Linear in the number of tasks: a plan may have thousands.
fn ordered_keys(snapshot: Option<&Snapshot>, actual: &crate::reconcile::Actual, broken: &HashMap<TaskKey, BrokenTask>) -> Vec<TaskKey> {
    let mut children: HashMap<(&str, &str), Vec<&TaskKey>> = HashMap::new();
    for (k, s) in &actual.tasks {
        if let Some(parent) = s.parent.as_deref() {
            children.entry((k.workflow.as_str(), parent)).or_default().push(k);
        }
    }
    let mut keys: Vec<TaskKey> = Vec::new();
    let mut seen: std::collections::HashSet<TaskKey> = std::collections::HashSet::new();
    let mut push = |k: &TaskKey, keys: &mut Vec<TaskKey>| {
        if seen.insert(k.clone()) {
            keys.push(k.clone());
        }
    };
    if let Some(s) = snapshot {
        for wf in s.desired().workflows {
            for t in &wf.tasks {
                push(&TaskKey::new(&wf.id, &t.id), &mut keys);
                for child in children.get(&(wf.id.as_str(), t.id.as_str())).into_iter().flatten() {
                    push(child, &mut keys);
                }
            }
        }
    }
    for k in actual.tasks.keys() {
        push(k, &mut keys);
    }
    let mut unreadable: Vec<&TaskKey> = broken.keys().collect();
    unreadable.sort();
    for k in unreadable {
        push(k, &mut keys);
    }
    keys
}

/// The stalled workflows, each with its plan's diagnostics, as `plancd status` shows them
/// under the table.
pub fn stalled_text(report: &StatusReport) -> String {
    let mut out = String::new();
    for s in &report.stalled {
        out.push_str(&format!("\nworkflow {}: Stalled ({}) — nothing of it runs until the plan is fixed\n", s.plan.name(), s.reason));
        for d in &s.plan.diagnostics {
            for line in d.to_string().lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

fn row(key: &TaskKey, s: Option<&TaskStatus>, role: Option<String>, action: Option<&Action>) -> StatusRow {
    let duration = s.and_then(|s| {
        let start = s.started_at?;
        let end = if s.phase.is_held() { Timestamp::now() } else { s.finished_at? };
        Some(end.duration_since(start).as_secs_f64().max(0.0))
    });
    StatusRow {
        workflow: key.workflow.clone(),
        task: key.task.clone(),
        role: role.or_else(|| s.and_then(|s| s.role.clone())),
        phase: s.map_or_else(|| "Pending".to_owned(), |s| s.phase.to_string()),
        action: action.map(|a| a.name().to_owned()),
        why: action.filter(|a| !matches!(a, Action::UpToDate { .. })).map(ToString::to_string),
        attempt: s.map_or(0, |s| s.attempt),
        started_at: s.and_then(|s| s.started_at),
        finished_at: s.and_then(|s| s.finished_at),
        duration_seconds: duration,
        result_branch: s.and_then(|s| s.result.as_ref()).map(|r| r.branch.clone()),
        result_tag: s.and_then(|s| s.result.as_ref()).and_then(|r| r.tag.clone()),
        result_commit: s.and_then(|s| s.result.as_ref()).map(|r| r.commit.clone()),
        message: s.map(|s| s.message.clone()).unwrap_or_default(),
        failure_type: s.and_then(|s| s.failure_type.as_ref()).map(ToString::to_string),
        cost: s.and_then(|s| s.cost),
        environment: s.and_then(|s| s.environment.clone()),
        network: s.and_then(|s| s.network.clone()),
        parent: s.and_then(|s| s.branch.as_ref()).map(|b| b.parent_id.clone()),
        pull_request: s.and_then(|s| s.result.as_ref()).and_then(|r| r.pull_request.clone()),
        quality: s.and_then(|s| s.tests.as_ref()).and_then(|t| t.quality.as_deref().cloned()),
    }
}

/// The quality figures of each task that has them, one line each, as `plancd status` shows
/// them under the table (nothing when no task has any).
pub fn quality_text(report: &StatusReport) -> String {
    let mut out = String::new();
    for r in &report.tasks {
        let Some(q) = r.quality.as_ref().filter(|q| q.coverage.is_some() || q.security.is_some()) else { continue };
        if out.is_empty() {
            out.push_str("\nquality (measured by plancd on the work the tests passed):\n");
        }
        out.push_str(&format!("  {}/{}: {}\n", r.workflow, r.task, q.summary()));
    }
    out
}

/// The requests the agents' egress proxies refused, one line per task, as `plancd status`
/// shows them under the table (nothing when none was refused).
pub fn network_text(report: &StatusReport) -> String {
    let mut out = String::new();
    for r in &report.tasks {
        let Some(n) = r.network.as_ref().filter(|n| !n.blocked.is_empty()) else { continue };
        if out.is_empty() {
            out.push_str("\nblocked network requests (hosts outside the role's network.allow):\n");
        }
        let hosts = crate::state::NetworkUse::list_text(&n.blocked, 10);
        out.push_str(&format!("  {}/{} attempt {}: {hosts}\n", r.workflow, r.task, n.attempt));
    }
    out
}

/// Tokens and dollars in a few characters: `48.2k tok $0.0312`.
pub fn human_cost(cost: &Cost) -> String {
    let tokens = match cost.tokens() {
        n if n < 10_000 => n.to_string(),
        n if n < 10_000_000 => format!("{:.1}k", n as f64 / 1000.0),
        n => format!("{:.1}M", n as f64 / 1_000_000.0),
    };
    format!("{tokens} tok {}", cost.dollars())
}

/// A duration as people read it: `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn human_duration(seconds: f64) -> String {
    match seconds {
        s if s < 1.0 => format!("{:.0}ms", s * 1000.0),
        s if s < 60.0 => format!("{s:.1}s"),
        s if s < 3600.0 => format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        s => format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64),
    }
}

/// The table `plancd status` prints; a COST column when a model agent spent anything.
pub fn table(report: &StatusReport) -> String {
    let with_cost = report.tasks.iter().any(|r| r.cost.is_some());
    let mut header: Vec<String> = ["TASK", "ROLE", "PHASE", "ATTEMPT", "DURATION", "RESULT", "WHY"].map(str::to_owned).to_vec();
    if with_cost {
        header.insert(6, "COST".into());
    }
    let rows: Vec<Vec<String>> = report
        .tasks
        .iter()
        .map(|r| {
            let why = match (&r.why, r.message.is_empty()) {
                (Some(w), _) => w.clone(),
                (None, false) if r.phase != "Succeeded" => r.message.clone(),
                _ => String::new(),
            };
            let mut row = vec![
                format!("{}/{}", r.workflow, r.task),
                r.role.clone().unwrap_or_else(|| "-".into()),
                r.phase.clone(),
                if r.attempt == 0 { "-".into() } else { r.attempt.to_string() },
                r.duration_seconds.map_or_else(|| "-".into(), human_duration),
                r.result_tag.clone().or_else(|| r.result_branch.clone()).unwrap_or_else(|| "-".into()),
                why,
            ];
            if with_cost {
                row.insert(6, r.cost.as_ref().map_or_else(|| "-".into(), human_cost));
            }
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The workflows' graphs with each task's phase, for [`crate::render`]: the plans' tasks and
/// dependencies when `snapshot` has them, and every row (branch todos, tasks of plans gone); the
/// workflows the report lists, no others.
pub fn dag(report: &StatusReport, snapshot: Option<&Snapshot>) -> Dag {
    let listed = |p: &&PlanFile| report.tasks.iter().any(|r| r.workflow == p.list.todo_list_id);
    let plans: Vec<&PlanFile> = snapshot.map(|s| s.plans.iter().filter(listed).collect()).unwrap_or_default();
    let mut dag = Dag::from_plans(&plans);
    for r in &report.tasks {
        dag.set_phase(&r.workflow, &r.task, &r.phase, r.role.as_deref(), r.parent.as_deref());
    }
    dag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0.25), "250ms");
        assert_eq!(human_duration(12.34), "12.3s");
        assert_eq!(human_duration(245.0), "4m05s");
        assert_eq!(human_duration(7800.0), "2h10m");
    }

    #[test]
    fn costs_read_well() {
        assert_eq!(human_cost(&Cost { input_tokens: 400, output_tokens: 80, usd: 0.00072 }), "480 tok $0.0007");
        assert_eq!(human_cost(&Cost { input_tokens: 48_000, output_tokens: 250, usd: 0.0312 }), "48.2k tok $0.0312");
        assert_eq!(human_cost(&Cost { input_tokens: 40, output_tokens: 12, usd: 0.0000132 }), "52 tok <$0.0001");
        assert_eq!(human_cost(&Cost { input_tokens: 40, output_tokens: 0, usd: 0.0 }), "40 tok $0.0000");
    }

    fn succeeded_row() -> StatusRow {
        StatusRow {
            workflow: "wf".into(),
            task: "a".into(),
            role: Some("coder".into()),
            phase: "Succeeded".into(),
            action: Some("UpToDate".into()),
            why: None,
            attempt: 1,
            started_at: None,
            finished_at: None,
            duration_seconds: Some(1.5),
            result_branch: Some("ai/generated/wf/a".into()),
            result_tag: Some("ai/wf/a/1".into()),
            result_commit: None,
            message: "1 acceptance test(s) passed".into(),
            failure_type: None,
            cost: None,
            environment: None,
            network: None,
            parent: None,
            pull_request: None,
            quality: None,
        }
    }

    #[test]
    fn the_table_aligns_columns() {
        let r = succeeded_row();
        let waiting = StatusRow {
            task: "bb".into(),
            phase: "Pending".into(),
            attempt: 0,
            duration_seconds: None,
            result_tag: None,
            result_branch: None,
            why: Some("waiting on a: Running, attempt 1".into()),
            message: String::new(),
            ..r.clone()
        };
        let text = table(&StatusReport { plan_commit: None, tasks: vec![r, waiting], plans_error: None, stalled: Vec::new() });
        assert_eq!(
            text,
            "TASK   ROLE   PHASE      ATTEMPT  DURATION  RESULT     WHY\n\
             wf/a   coder  Succeeded  1        1.5s      ai/wf/a/1\n\
             wf/bb  coder  Pending    -        -         -          waiting on a: Running, attempt 1\n"
        );
    }

    #[test]
    fn blocked_requests_are_shown_under_the_table_and_in_the_job_summary() {
        use crate::state::{Egress, NetworkUse};
        let row = succeeded_row();
        let quiet = StatusReport { plan_commit: None, tasks: vec![row.clone()], plans_error: None, stalled: Vec::new() };
        assert_eq!(network_text(&quiet), "", "nothing refused, nothing said");
        let requests = [(Egress::Used, "pypi.org", 443), (Egress::Blocked, "evil.example", 443), (Egress::Blocked, "evil.example", 80)];
        let network = NetworkUse::tally(2, &["pypi.org".to_owned()], requests);
        let blocked = StatusRow { network: Some(network), ..row.clone() };
        let report = StatusReport { plan_commit: None, tasks: vec![row, blocked], plans_error: None, stalled: Vec::new() };
        assert_eq!(
            network_text(&report),
            "\nblocked network requests (hosts outside the role's network.allow):\n  wf/a attempt 2: evil.example:80 ×1, evil.example:443 ×1\n"
        );
        let summary = crate::ops::action::summary::pass("1 attempt run", &report, None);
        assert!(
            summary.contains("### Blocked network requests\n\n> [!WARNING]\n")
                && summary.contains("| `wf/a` | 2 | `evil.example` | 80 | 1 |\n| `wf/a` | 2 | `evil.example` | 443 | 1 |\n"),
            "{summary}"
        );
    }

    #[test]
    fn measured_quality_is_shown_under_the_table_and_in_the_job_summary() {
        use crate::state::quality::*;
        let row = succeeded_row();
        let quiet = StatusReport { plan_commit: None, tasks: vec![row.clone()], plans_error: None, stalled: Vec::new() };
        assert_eq!(quality_text(&quiet), "", "nothing measured, nothing said");
        assert!(!crate::ops::action::summary::pass("1 attempt run", &quiet, None).contains("### Quality"));
        let quality = measured(Some(87.5), SeverityCounts { high: 1, medium: 0, low: 2 });
        let measured = StatusRow { task: "b".into(), quality: Some(quality), ..row.clone() };
        let report = StatusReport { plan_commit: None, tasks: vec![row, measured], plans_error: None, stalled: Vec::new() };
        assert_eq!(
            quality_text(&report),
            "\nquality (measured by plancd on the work the tests passed):\n  wf/b: coverage 87.5%, 3 security findings (1 high, 2 low)\n"
        );
        let summary = crate::ops::action::summary::pass("1 attempt run", &report, None);
        assert!(
            summary.contains("### Quality\n")
                && summary.contains("| `wf/b` | 87.5% | 3 security findings (1 high, 2 low) |\n")
                && !summary.contains("| `wf/a` | 8"),
            "{summary}"
        );
    }
}
