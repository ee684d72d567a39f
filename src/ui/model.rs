//! The dashboard's data model: each source's workflows and tasks as `plancd status` reads them
//! (one [`crate::ops::status::report`] per read), summed up per workflow, with the graph facts
//! the pages draw (dependencies, critical path, stacked pull requests); and one task as
//! `plancd describe` and `plancd logs` read it. A source's data is kept until one of the refs it
//! was read from moves.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::Oid;
use jiff::Timestamp;
use serde::Serialize;

use super::{PassInfo, UiSource};
use crate::config::Env;
use crate::ops::describe::{Description, describe_in};
use crate::ops::manage::ManageError;
use crate::ops::status::{StatusRow, report};
use crate::reconcile::{Snapshot, StalledWorkflow};
use crate::state::{Phase, StateError, Store, TaskKey, parse_trailers};

/// How long data read at unchanged refs is kept: durations and leases age meanwhile.
const FRESH_FOR: Duration = Duration::from_secs(30);
/// The most tasks one page of a workflow lists.
pub const MAX_PAGE: usize = 1000;
/// Tasks per page when the request says nothing.
pub const DEFAULT_PAGE: usize = 200;
/// The most bytes of one log a task page shows (the end of it).
pub const LOG_TAIL: usize = 64 * 1024;

/// Why the dashboard could not answer.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No such workflow or task.
    #[error("{0}")]
    NotFound(String),
    /// The refs could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// An operation was refused or failed.
    #[error(transparent)]
    Manage(#[from] ManageError),
    /// Git failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// The refs a source's data was read at: the branches, and plancd's task and workflow refs.
/// Equal tips mean equal data (up to the clock).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tips {
    /// Each task ref's tip.
    pub tasks: BTreeMap<TaskKey, Oid>,
    /// Every other ref that matters: branches and workflow records.
    pub other: Vec<(String, Oid)>,
}

impl Tips {
    /// Reads the tips of the repository at `path`: one ref listing, no objects.
    pub fn read(path: &std::path::Path) -> Result<Tips, git2::Error> {
        let repo = git2::Repository::open(path)?;
        let mut tips = Tips::default();
        for glob in ["refs/ai/tasks/*", "refs/ai/workflows/*", "refs/heads/*"] {
            for reference in repo.references_glob(glob)? {
                let reference = reference?;
                let (Ok(name), Some(tip)) = (reference.name(), reference.target()) else { continue };
                match TaskKey::from_ref(name) {
                    Some(key) => {
                        tips.tasks.insert(key, tip);
                    }
                    None => tips.other.push((name.to_owned(), tip)),
                }
            }
        }
        Ok(tips)
    }

    /// The tasks whose tips differ between `self` and `before` (new, moved or gone).
    pub fn changed(&self, before: &Tips) -> Vec<TaskKey> {
        let mut out: Vec<TaskKey> = self.tasks.iter().filter(|(k, t)| before.tasks.get(*k) != Some(*t)).map(|(k, _)| k.clone()).collect();
        out.extend(before.tasks.keys().filter(|k| !self.tasks.contains_key(*k)).cloned());
        out
    }
}

/// A source's data and the tips it was read at, and the plans it read (kept while the
/// branches do not move: task refs move far more often than plans).
pub(crate) struct Cached {
    tips: Tips,
    read: Instant,
    data: Arc<SourceData>,
    plans: Option<(PlanKey, Arc<Snapshot>)>,
}

/// The refs the plans read were read at.
type PlanKey = Vec<(String, Oid)>;

impl Tips {
    /// What the plans read depend on: the branches other than results, and HEAD (whose
    /// plancd.yaml may name the watched branch).
    fn plan_key(&self, path: &std::path::Path) -> PlanKey {
        let mut key: PlanKey =
            self.other.iter().filter(|(name, _)| name.starts_with("refs/heads/") && !name.starts_with("refs/heads/ai/")).cloned().collect();
        if let Some(head) = git2::Repository::open(path).ok().and_then(|r| r.head().ok()?.target()) {
            key.push(("HEAD".into(), head));
        }
        key
    }
}

/// What one read of a source holds.
#[derive(Debug, Clone)]
pub struct SourceData {
    /// The source's name.
    pub source: String,
    /// The watched commit, when the plans loaded.
    pub plan_commit: Option<String>,
    /// Why the plans could not be read, if they could not.
    pub plans_error: Option<String>,
    /// Its workflows: in plan order, then those only the refs know.
    pub workflows: Vec<WorkflowData>,
    /// When it was read.
    pub read_at: Timestamp,
}

/// One workflow of a source.
#[derive(Debug, Clone)]
pub struct WorkflowData {
    /// Its counts.
    pub summary: WorkflowSummary,
    /// Its tasks in plan order, each followed by its branch todos.
    pub rows: Vec<StatusRow>,
    /// Each task's dependencies, from the plan.
    pub dependencies: HashMap<String, Vec<String>>,
    /// The tasks in dependency order (empty when the plan did not load).
    pub order: Vec<String>,
    /// The heaviest chain of dependent tasks.
    pub critical_path: Vec<String>,
    /// Why the workflow is stalled, when it is.
    pub stalled: Option<StalledWorkflow>,
}

/// Where a task of a plan stands, for the counts people look at first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Standing {
    /// Succeeded for its current spec.
    Satisfied,
    /// An attempt or a branch todo is at work.
    Running,
    /// Waits for another task.
    Waiting,
    /// Waits for a person: an approval, a retry after its attempts ran out or its budget did.
    NeedsPerson,
    /// Handed to a person after its branch todos could not fix it.
    Escalated,
    /// The next pass runs it.
    ToRun,
    /// Suspended, orphaned, stalled or unreadable.
    Other,
}

/// Where a task stands, from its status row: the phase in the refs and what a pass would do.
pub fn standing(row: &StatusRow) -> Standing {
    let phase = Phase::parse(&row.phase);
    match (phase, row.action.as_deref()) {
        (Some(Phase::Succeeded), Some("UpToDate")) => Standing::Satisfied,
        (Some(Phase::Claimed | Phase::Running | Phase::Debugging), _) => Standing::Running,
        (Some(Phase::Escalated), _) | (_, Some("Escalated")) => Standing::Escalated,
        (_, Some("NeedsApproval" | "Failed")) | (Some(Phase::NeedsApproval | Phase::BudgetExceeded), Some("Wait")) => Standing::NeedsPerson,
        (_, Some("Wait")) => Standing::Waiting,
        (_, Some("Run")) => Standing::ToRun,
        _ => Standing::Other,
    }
}

/// One workflow at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowSummary {
    /// The source it belongs to.
    pub source: String,
    /// Its id.
    pub id: String,
    /// The plan's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Tasks of the plan (branch todos not counted).
    pub tasks: usize,
    /// Tasks succeeded for their current spec.
    pub satisfied: usize,
    /// Tasks at work.
    pub running: usize,
    /// Tasks waiting for others.
    pub waiting: usize,
    /// Tasks waiting for a person.
    pub needs_person: usize,
    /// Escalated tasks.
    pub escalated: usize,
    /// Branch todos, open or closed.
    pub branch_todos: usize,
    /// Tasks (and branch todos) by phase.
    pub phases: BTreeMap<String, usize>,
    /// What its tasks spent on models.
    pub spend_usd: f64,
    /// `budget.usd_per_workflow`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
    /// Whether it is suspended.
    pub suspended: bool,
    /// Why it is stalled, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled: Option<String>,
}

/// Counts the rows of one workflow into its summary's numbers.
pub fn summarize(summary: &mut WorkflowSummary, rows: &[StatusRow]) {
    for row in rows {
        *summary.phases.entry(row.phase.clone()).or_default() += 1;
        summary.spend_usd += row.cost.map_or(0.0, |c| c.usd);
        if row.parent.is_some() {
            summary.branch_todos += 1;
            continue;
        }
        if row.action.as_deref() == Some("Orphaned") {
            continue;
        }
        summary.tasks += 1;
        match standing(row) {
            Standing::Satisfied => summary.satisfied += 1,
            Standing::Running => summary.running += 1,
            Standing::Waiting => summary.waiting += 1,
            Standing::NeedsPerson => summary.needs_person += 1,
            Standing::Escalated => summary.escalated += 1,
            Standing::ToRun | Standing::Other => {}
        }
    }
}

/// The overview: every source and its workflows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The sources.
    pub sources: Vec<SourceSummary>,
}

/// One source in the overview.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    /// Its name.
    pub name: String,
    /// The watched commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_commit: Option<String>,
    /// Why the plans could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans_error: Option<String>,
    /// The controller's last pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_pass: Option<PassInfo>,
    /// Its workflows.
    pub workflows: Vec<WorkflowSummary>,
}

/// The data of `source`: the last read when no ref moved since (and it is fresh), else a new
/// one. Blocking: git and the plans are read here.
pub fn source_data(source: &UiSource, env: &Env) -> Result<Arc<SourceData>, UiError> {
    let tips = Tips::read(&source.path)?;
    let mut cache = source.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = cache.as_ref().filter(|c| c.tips == tips && c.read.elapsed() < FRESH_FOR) {
        return Ok(c.data.clone());
    }
    let plan_key = tips.plan_key(&source.path);
    let kept = cache.as_ref().and_then(|c| c.plans.as_ref()).filter(|(key, _)| *key == plan_key).map(|(_, s)| s.clone());
    let snapshot = match kept {
        Some(s) => Ok(s),
        None => Snapshot::load(&source.path, source.branch.as_deref(), env).map(Arc::new).map_err(|e| e.to_string()),
    };
    let data = Arc::new(read_source(&source.name, &source.store()?, snapshot.as_deref().map_err(Clone::clone))?);
    let plans = snapshot.ok().map(|s| (plan_key, s));
    *cache = Some(Cached { tips, read: Instant::now(), data: data.clone(), plans });
    Ok(data)
}

/// Reads a source from `store`: the status of every task with the plans of `snapshot` (or why
/// they could not be loaded), grouped by workflow.
pub fn read_source(name: &str, store: &Store, snapshot: Result<&Snapshot, String>) -> Result<SourceData, UiError> {
    let status = report(store, snapshot.clone(), None)?;
    let snapshot = snapshot.ok();
    let suspended: Vec<String> = store.workflows()?.into_iter().filter(|(_, (_, r))| r.suspended).map(|(wf, _)| wf).collect();
    // Workflows in plan order, then the stalled ones, then those only the refs know.
    let mut ids: Vec<String> = Vec::new();
    let mut add = |id: &str| {
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    };
    for plan in snapshot.iter().flat_map(|s| &s.plans) {
        add(&plan.list.todo_list_id);
    }
    for st in &status.stalled {
        if let Some(wf) = &st.plan.workflow {
            add(wf);
        }
    }
    for row in &status.tasks {
        add(&row.workflow);
    }
    let mut by_workflow: HashMap<String, Vec<StatusRow>> = HashMap::new();
    for row in status.tasks {
        by_workflow.entry(row.workflow.clone()).or_default().push(row);
    }
    let workflows = ids
        .into_iter()
        .map(|id| {
            let rows = by_workflow.remove(&id).unwrap_or_default();
            let stalled = status.stalled.iter().find(|s| s.plan.workflow.as_deref() == Some(id.as_str())).cloned();
            workflow_data(name, &id, rows, snapshot, suspended.contains(&id), stalled)
        })
        .collect();
    Ok(SourceData {
        source: name.to_owned(),
        plan_commit: status.plan_commit,
        plans_error: status.plans_error,
        workflows,
        read_at: Timestamp::now(),
    })
}

fn workflow_data(
    source: &str,
    id: &str,
    rows: Vec<StatusRow>,
    snapshot: Option<&Snapshot>,
    suspended: bool,
    stalled: Option<StalledWorkflow>,
) -> WorkflowData {
    let plan = snapshot.and_then(|s| s.plan(id));
    let mut summary = WorkflowSummary {
        source: source.to_owned(),
        id: id.to_owned(),
        title: plan.map(|p| p.list.title.clone()),
        tasks: 0,
        satisfied: 0,
        running: 0,
        waiting: 0,
        needs_person: 0,
        escalated: 0,
        branch_todos: 0,
        phases: BTreeMap::new(),
        spend_usd: 0.0,
        budget_usd: snapshot.and_then(|s| s.config.budget.usd_per_workflow),
        suspended,
        stalled: stalled.as_ref().map(StalledWorkflow::summary),
    };
    summarize(&mut summary, &rows);
    let mut dependencies = HashMap::new();
    let (mut order, mut critical_path) = (Vec::new(), Vec::new());
    if let (Some(plan), Some(graph)) = (plan, snapshot.and_then(|s| s.graphs.get(id))) {
        for task in &plan.list.tasks {
            dependencies.insert(task.id.clone(), graph.dependencies(&task.id).into_iter().map(str::to_owned).collect());
        }
        order = graph.topological_order().map(|o| o.into_iter().map(str::to_owned).collect()).unwrap_or_default();
        // Each task weighs what its last attempt took; one that has not run, a second.
        let took: HashMap<&str, u64> =
            rows.iter().map(|r| (r.task.as_str(), r.duration_seconds.map_or(1000, |s| (s * 1000.0) as u64).max(1))).collect();
        critical_path = graph
            .critical_path(|t| took.get(t).copied().unwrap_or(1000))
            .map(|(_, path)| path.into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
    }
    WorkflowData { summary, rows, dependencies, order, critical_path, stalled }
}

/// The overview of every source (each read, or taken from its last read).
pub fn overview(sources: &[Arc<UiSource>], env: &Env) -> Result<Overview, UiError> {
    let mut out = Vec::new();
    for source in sources {
        let data = source_data(source, env)?;
        out.push(SourceSummary {
            name: source.name.clone(),
            plan_commit: data.plan_commit.clone(),
            plans_error: data.plans_error.clone(),
            last_pass: source.last_pass.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            workflows: data.workflows.iter().map(|w| w.summary.clone()).collect(),
        });
    }
    Ok(Overview { sources: out })
}

/// The first source (in order) with workflow `wf`, or the one named `source`.
pub fn find_workflow(
    sources: &[Arc<UiSource>],
    env: &Env,
    wf: &str,
    source: Option<&str>,
) -> Result<(Arc<UiSource>, Arc<SourceData>), UiError> {
    for s in sources.iter().filter(|s| source.is_none_or(|n| n == s.name)) {
        let data = source_data(s, env)?;
        if data.workflows.iter().any(|w| w.summary.id == wf) {
            return Ok((s.clone(), data));
        }
    }
    Err(UiError::NotFound(format!("no workflow `{wf}`")))
}

/// Which tasks a page lists: at most `limit`, after the task `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct PageQuery {
    /// Tasks per page (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    pub limit: Option<usize>,
    /// The last task of the previous page.
    pub after: Option<String>,
    /// The source, when several have the workflow.
    pub source: Option<String>,
}

/// The slice of `items` a page shows (by each item's `id`), and the cursor of the next page.
pub fn page<'a, T>(items: &'a [T], id: impl Fn(&T) -> &str, query: &PageQuery) -> (&'a [T], Option<String>) {
    let start = match &query.after {
        Some(after) => items.iter().position(|i| id(i) == after).map_or(items.len(), |p| p + 1),
        None => 0,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let end = (start + limit).min(items.len());
    let shown = &items[start.min(end)..end];
    let next = (end < items.len()).then(|| shown.last().map(|i| id(i).to_owned())).flatten();
    (shown, next)
}

/// One workflow's page of tasks, with what the workflow page shows besides.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowView {
    /// Its counts.
    pub summary: WorkflowSummary,
    /// The watched commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_commit: Option<String>,
    /// Tasks of this page.
    pub tasks: Vec<TaskRow>,
    /// The cursor of the next page (`?after=`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Every task (and branch todo) of the workflow.
    pub total: usize,
    /// The heaviest chain of dependent tasks, first to last.
    pub critical_path: Vec<String>,
    /// Published results, in the order their pull requests merge (dependencies first).
    pub pull_requests: Vec<StackedPr>,
    /// The plan's problems, when it is stalled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled: Option<StalledWorkflow>,
}

/// A task's row on the workflow page.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    /// The status row.
    #[serde(flatten)]
    pub row: StatusRow,
    /// Where it stands.
    pub standing: Standing,
    /// Its dependencies.
    pub dependencies: Vec<String>,
    /// Whether it is on the critical path.
    pub critical: bool,
}

/// One result of a stack of pull requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackedPr {
    /// The task.
    pub task: String,
    /// The result branch.
    pub branch: String,
    /// The result tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The pull request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
    /// The results it stacks on.
    pub depends_on: Vec<String>,
}

impl WorkflowData {
    /// A task's row, with its graph facts.
    pub fn task_row(&self, row: &StatusRow) -> TaskRow {
        TaskRow {
            row: row.clone(),
            standing: standing(row),
            dependencies: self.dependencies.get(&row.task).cloned().unwrap_or_default(),
            critical: self.critical_path.contains(&row.task),
        }
    }

    /// The results with a branch, dependencies first.
    pub fn stacked(&self) -> Vec<StackedPr> {
        let rows: HashMap<&str, &StatusRow> = self.rows.iter().map(|r| (r.task.as_str(), r)).collect();
        let order: Vec<&str> = if self.order.is_empty() {
            self.rows.iter().map(|r| r.task.as_str()).collect()
        } else {
            self.order.iter().map(String::as_str).collect()
        };
        order
            .into_iter()
            .filter_map(|t| rows.get(t))
            .filter_map(|r| {
                Some(StackedPr {
                    task: r.task.clone(),
                    branch: r.result_branch.clone()?,
                    tag: r.result_tag.clone(),
                    pull_request: r.pull_request.clone(),
                    depends_on: self.dependencies.get(&r.task).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The page of tasks `query` asks for.
    pub fn view(&self, plan_commit: Option<String>, query: &PageQuery) -> WorkflowView {
        let (shown, next) = page(&self.rows, |r| r.task.as_str(), query);
        WorkflowView {
            summary: self.summary.clone(),
            plan_commit,
            tasks: shown.iter().map(|r| self.task_row(r)).collect(),
            next,
            total: self.rows.len(),
            critical_path: self.critical_path.clone(),
            pull_requests: self.stacked(),
            stalled: self.stalled.clone(),
        }
    }
}

/// Everything about one task: its description, the output of the tests that decided, the
/// attempt's logs, the model transcript and the result's provenance.
#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    /// What `plancd describe` says.
    #[serde(flatten)]
    pub description: Description,
    /// Its dependencies.
    pub dependencies: Vec<String>,
    /// The end of the log of the tests that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_output: Option<String>,
    /// The latest attempt's logs (their ends).
    pub logs: Vec<LogFile>,
    /// The attempt those logs are of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_attempt: Option<u32>,
    /// A model agent's turns in that attempt.
    pub transcript: Vec<Turn>,
    /// The result commit's provenance trailers.
    pub provenance: BTreeMap<String, String>,
}

/// One log file of an attempt.
#[derive(Debug, Clone, Serialize)]
pub struct LogFile {
    /// Its name.
    pub name: String,
    /// Its size.
    pub bytes: usize,
    /// Its last [`LOG_TAIL`] bytes, as text.
    pub tail: String,
}

/// One turn of a model agent: its reply, tool calls and their results, and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Turn {
    /// The turn's number.
    pub turn: u64,
    /// The model's text.
    pub text: String,
    /// Its tool calls: name and arguments (as JSON).
    pub calls: Vec<(String, String)>,
    /// The tools' answers: name, whether it failed, the start of the content.
    pub results: Vec<(String, bool, String)>,
    /// Tokens in.
    pub input_tokens: u64,
    /// Tokens out.
    pub output_tokens: u64,
    /// Dollars.
    pub usd: f64,
    /// Answered from the response cache.
    pub cached: bool,
    /// An error of the turn (a retry), or how the conversation ended.
    pub notes: Vec<String>,
}

/// Reads the turns of a `transcript.jsonl`; lines it does not know are skipped.
pub fn transcript(text: &str) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let n = event["turn"].as_u64().unwrap_or(0);
        let kind = event["event"].as_str().unwrap_or_default();
        if !matches!(kind, "reply" | "tool_results" | "error" | "end") {
            continue;
        }
        if turns.last().is_none_or(|t| t.turn != n) {
            turns.push(Turn { turn: n, ..Turn::default() });
        }
        let turn = turns.last_mut().expect("pushed above");
        match kind {
            "reply" => {
                turn.text = event["reply"]["text"].as_str().unwrap_or_default().to_owned();
                for call in event["reply"]["calls"].as_array().into_iter().flatten() {
                    turn.calls.push((call["name"].as_str().unwrap_or_default().to_owned(), clip(&call["arguments"].to_string(), 2000)));
                }
                turn.input_tokens = event["cost"]["input_tokens"].as_u64().unwrap_or(0);
                turn.output_tokens = event["cost"]["output_tokens"].as_u64().unwrap_or(0);
                turn.usd = event["cost"]["usd"].as_f64().unwrap_or(0.0);
                turn.cached = event["cached"].as_bool().unwrap_or(false);
            }
            "tool_results" => {
                for r in event["results"].as_array().into_iter().flatten() {
                    let content = clip(r["content"].as_str().unwrap_or_default(), 2000);
                    turn.results.push((
                        r["name"].as_str().unwrap_or_default().to_owned(),
                        r["is_error"].as_bool().unwrap_or(false),
                        content,
                    ));
                }
            }
            "error" => turn.notes.push(format!("error: {}", event["error"].as_str().unwrap_or_default())),
            _ => turn.notes.push(format!(
                "ended: {} {}",
                event["outcome"].as_str().unwrap_or_default(),
                event["message"].as_str().unwrap_or_default()
            )),
        }
    }
    turns
}

/// At most `max` bytes of `text` (cut at a character boundary), marked when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The last `max` bytes of `bytes` as text, marked when cut.
pub fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= max {
        return text.into_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("… ({} bytes before)\n{}", start, &text[start..])
}

/// The plans `source`'s last read was made with, if they loaded.
fn read_plans(source: &UiSource) -> Option<Arc<Snapshot>> {
    let cache = source.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    cache.as_ref().and_then(|c| c.plans.as_ref()).map(|(_, s)| s.clone())
}

/// One task's view, from `data` (the source's last read, with the task's status row and
/// dependencies) and the task's own records: only what moved since is read. Blocking.
pub fn task_view(source: &UiSource, data: &SourceData, key: &TaskKey) -> Result<TaskView, UiError> {
    let store = source.store()?;
    let workflow = data.workflows.iter().find(|w| w.summary.id == key.workflow);
    let row = workflow.and_then(|w| w.rows.iter().find(|r| r.task == key.task)).cloned();
    let dependencies = workflow.and_then(|w| w.dependencies.get(&key.task).cloned()).unwrap_or_default();
    let plans = read_plans(source);
    let description = describe_in(&store, plans.as_deref(), row, key).map_err(|e| match e {
        ManageError::UnknownTask(k) => UiError::NotFound(format!("no task {k}")),
        other => UiError::Manage(other),
    })?;
    // The tests that decided; while a branch todo is still at work, the task's own last run.
    let decided = description.decided_by.as_ref().map(|d| (TaskKey::new(&key.workflow, &d.task), d.attempt));
    let own = description.attempts.last().map(|a| (key.clone(), a.attempt));
    let test_output = decided.into_iter().chain(own).find_map(|(at, attempt)| {
        store.read_file(&at, &format!("attempts/{attempt}/tests.log")).ok().flatten().map(|b| tail(&b, LOG_TAIL))
    });
    let (mut logs, mut logs_attempt, mut turns) = (Vec::new(), None, Vec::new());
    if description.attempts.last().is_some()
        && let Ok(found) = crate::ops::logs::logs(&source.path, key, None)
    {
        logs_attempt = Some(found.attempt);
        for (name, data) in found.files {
            if name == "transcript.jsonl" {
                turns = transcript(&String::from_utf8_lossy(&data));
            }
            logs.push(LogFile { bytes: data.len(), tail: tail(&data, LOG_TAIL), name });
        }
    }
    let provenance = description
        .result
        .as_ref()
        .and_then(|r| Oid::from_str(&r.commit).ok())
        .and_then(|oid| {
            let repo = store.repo();
            let commit = repo.find_commit(oid).ok()?;
            let trailers = parse_trailers(&String::from_utf8_lossy(commit.message_bytes()));
            Some(trailers.into_iter().filter(|(k, _)| k.starts_with("Plancd-")).collect())
        })
        .unwrap_or_default();
    Ok(TaskView { description, dependencies, test_output, logs, logs_attempt, transcript: turns, provenance })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(task: &str, phase: &str, action: Option<&str>) -> StatusRow {
        StatusRow {
            workflow: "wf".into(),
            task: task.into(),
            role: None,
            phase: phase.into(),
            action: action.map(str::to_owned),
            why: None,
            attempt: 0,
            started_at: None,
            finished_at: None,
            duration_seconds: None,
            result_branch: None,
            result_tag: None,
            result_commit: None,
            message: String::new(),
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
    fn standings_follow_the_phase_and_the_next_action() {
        for (phase, action, want) in [
            ("Succeeded", Some("UpToDate"), Standing::Satisfied),
            ("Succeeded", Some("Run"), Standing::ToRun),
            ("Running", Some("Wait"), Standing::Running),
            ("Debugging", Some("Wait"), Standing::Running),
            ("Claimed", None, Standing::Running),
            ("Escalated", Some("Escalated"), Standing::Escalated),
            ("NeedsApproval", Some("NeedsApproval"), Standing::NeedsPerson),
            ("Pending", Some("NeedsApproval"), Standing::NeedsPerson),
            ("Failed", Some("Failed"), Standing::NeedsPerson),
            ("BudgetExceeded", Some("Wait"), Standing::NeedsPerson),
            ("Pending", Some("Wait"), Standing::Waiting),
            ("Pending", Some("Run"), Standing::ToRun),
            ("Suspended", Some("Suspended"), Standing::Other),
            ("Broken", None, Standing::Other),
        ] {
            assert_eq!(standing(&row("t", phase, action)), want, "{phase} {action:?}");
        }
    }

    #[test]
    fn summaries_count_tasks_apart_from_branch_todos_and_add_up_spend() {
        let mut branch = row("a_branch_01", "Escalated", Some("BranchClosed"));
        branch.parent = Some("a".into());
        branch.cost = Some(crate::state::Cost { input_tokens: 1, output_tokens: 1, usd: 0.25 });
        let mut a = row("a", "Escalated", Some("Escalated"));
        a.cost = Some(crate::state::Cost { input_tokens: 1, output_tokens: 1, usd: 0.5 });
        let rows = vec![
            a,
            branch,
            row("b", "Succeeded", Some("UpToDate")),
            row("c", "Running", Some("Wait")),
            row("d", "Pending", Some("Wait")),
            row("e", "NeedsApproval", Some("NeedsApproval")),
            row("old", "Succeeded", Some("Orphaned")),
        ];
        let mut s = WorkflowSummary {
            source: "s".into(),
            id: "wf".into(),
            title: None,
            tasks: 0,
            satisfied: 0,
            running: 0,
            waiting: 0,
            needs_person: 0,
            escalated: 0,
            branch_todos: 0,
            phases: BTreeMap::new(),
            spend_usd: 0.0,
            budget_usd: None,
            suspended: false,
            stalled: None,
        };
        summarize(&mut s, &rows);
        assert_eq!((s.tasks, s.satisfied, s.running, s.waiting, s.needs_person, s.escalated, s.branch_todos), (5, 1, 1, 1, 1, 1, 1));
        assert_eq!(s.phases["Escalated"], 2);
        assert!((s.spend_usd - 0.75).abs() < 1e-9);
    }

    #[test]
    fn pages_follow_the_cursor_and_stop_at_the_end() {
        let items: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
        let q = |limit, after: Option<&str>| PageQuery { limit, after: after.map(str::to_owned), source: None };
        let ids = |(s, n): (&[String], Option<String>)| (s.to_vec(), n);
        assert_eq!(ids(page(&items, |s| s, &q(Some(2), None))), (vec!["t0".into(), "t1".into()], Some("t1".into())));
        assert_eq!(ids(page(&items, |s| s, &q(Some(2), Some("t1")))), (vec!["t2".into(), "t3".into()], Some("t3".into())));
        assert_eq!(ids(page(&items, |s| s, &q(Some(2), Some("t3")))), (vec!["t4".into()], None));
        assert_eq!(ids(page(&items, |s| s, &q(Some(0), None))).0.len(), 1, "at least one a page");
        assert_eq!(ids(page(&items, |s| s, &q(None, Some("gone")))), (vec![], None), "an unknown cursor is past the end");
    }

    #[test]
    fn transcripts_read_as_turns_with_calls_results_and_cost() {
        let text = r#"{"event":"start","agent":{}}
{"event":"request","turn":1}
{"event":"reply","turn":1,"cached":false,"reply":{"text":"Let me look","calls":[{"id":"c1","name":"read_file","arguments":{"path":"a.py"}}],"usage":{}},"cost":{"input_tokens":100,"output_tokens":20,"usd":0.01}}
{"event":"tool_results","turn":1,"results":[{"call_id":"c1","name":"read_file","content":"print(1)","is_error":true}]}
not json
{"event":"end","turn":2,"outcome":"finished","message":"done","spent":{}}"#;
        let turns = transcript(text);
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].calls, vec![("read_file".to_owned(), r#"{"path":"a.py"}"#.to_owned())]);
        assert_eq!(turns[0].results, vec![("read_file".to_owned(), true, "print(1)".to_owned())]);
        assert_eq!((turns[0].input_tokens, turns[0].output_tokens), (100, 20));
        assert_eq!(turns[1].notes, vec!["ended: finished done".to_owned()]);
    }

    #[test]
    fn tails_and_clips_cut_at_character_boundaries() {
        assert_eq!(tail("héllo".as_bytes(), 3), "… (3 bytes before)\nllo");
        assert_eq!(clip("héllo", 2), "h…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
