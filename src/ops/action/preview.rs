//! The plan preview of a pull request: its plans (at the checked-out commit) with the base
//! branch's configuration, validated and compared with the state in the refs. Nothing runs; a
//! sticky comment says which tasks would run, with which agents, at what estimated cost.

use std::fmt::Write;

use git2::Oid;

use super::{ActionError, ActionOptions, ActionReport, config_at, fetch_state, summary};
use crate::config::{Config, RoleConfig};
use crate::forge;
use crate::reconcile::{Action, Context, LoadError, Snapshot, Upstream, decide, read_actual};
use crate::spec::Diagnostic;
use crate::state::Store;

/// The marker of the preview comment.
pub const MARKER: &str = "preview";

/// Previews pull request `number` into `base` (at `base_sha`).
pub async fn preview(opts: &ActionOptions, number: u64, base: &str, base_sha: &str) -> Result<ActionReport, ActionError> {
    let repo = git2::Repository::discover(&opts.repo)?;
    let head = repo.head()?.peel_to_commit()?.id();
    let base_commit = match Oid::from_str(base_sha) {
        Ok(oid) if repo.find_commit(oid).is_ok() => oid,
        _ => repo.find_branch(&format!("origin/{base}"), git2::BranchType::Remote)?.get().peel_to_commit()?.id(),
    };
    drop(repo);
    // The configuration comes from the base: a pull request never configures its own preview.
    let config = config_at(&opts.repo, base_commit, &opts.env)?;
    let upstream = Upstream::open(&opts.repo, &config, &opts.env).await?;
    let forge = upstream.forge().clone();
    let files = forge.pull_request_files(number).await?;
    let touched: Vec<&String> = files.iter().filter(|f| crate::reconcile::upstream::facts::is_plan_file(&config, f)).collect();
    if touched.is_empty() {
        return Ok(ActionReport::ignored(format!("pull request #{number} changes no plan files")));
    }
    fetch_state(&upstream).await?;
    let (text, report) = match Snapshot::load_at(&opts.repo, base, head, base_commit, &opts.env) {
        Ok(snapshot) => previewed(&opts.repo, &snapshot, number)?,
        Err(LoadError::Invalid(diagnostics)) => invalid(number, diagnostics),
        Err(e) => return Err(ActionError::Reconcile(e.into())),
    };
    forge.upsert_comment(number, &forge::marker(MARKER), &text).await?;
    Ok(report)
}

fn invalid(number: u64, diagnostics: Vec<Diagnostic>) -> (String, ActionReport) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let mut text =
        format!("### plancd plan preview\n\n❌ plancd.yaml of the base branch has {errors} error(s); nothing would run.\n\n```text\n");
    for d in &diagnostics {
        let _ = writeln!(text, "{d}");
    }
    text.push_str("```\n");
    let headline = format!("pull request #{number}: plancd.yaml of the base branch is invalid");
    let report = ActionReport { headline, summary: summary::invalid(&diagnostics), diagnostics, ..ActionReport::default() };
    (text, report)
}

/// What a reconcile of `snapshot` would do, as the comment and the step's report.
fn previewed(repo: &std::path::Path, snapshot: &Snapshot, number: u64) -> Result<(String, ActionReport), ActionError> {
    let store = Store::open(repo)?;
    let actual = read_actual(&store)?;
    let actions = decide(&snapshot.desired(), &actual, &Context { now: jiff::Timestamp::now(), prune: snapshot.config.prune });
    let runs = actions.iter().filter(|a| matches!(a, Action::Run { .. })).count();
    let mut text = format!(
        "### plancd plan preview\n\nWith this pull request, a reconcile of `{}` would start {runs} task(s) now; nothing runs until it is merged.\n\n| task | role | agent | would | why | estimated cost |\n|---|---|---|---|---|---|\n",
        snapshot.branch
    );
    let mut costs = Vec::new();
    for action in &actions {
        let Some(task) = snapshot.task(action.key()) else { continue };
        let role = snapshot.config.roles.get(&task.agent_role);
        let cost = if action.is_work() { estimate(&snapshot.config, role) } else { Estimate::None };
        costs.push(cost);
        let _ = writeln!(
            text,
            "| `{}` | {} | {} | {} | {} | {} |",
            action.key(),
            task.agent_role,
            agent(role).replace('|', "\\|"),
            action.name(),
            action.to_string().replace('|', "\\|"),
            cost.text()
        );
    }
    let _ = writeln!(text, "\nEstimated cost of the work: {}.", total(&snapshot.config, &costs));
    let mut diagnostics = snapshot.warnings.clone();
    for stalled in &snapshot.stalled {
        let _ = writeln!(
            text,
            "\n❌ Workflow `{}` has {} error(s); nothing would run for it (a reconcile reports it Stalled, {}).\n\n```text",
            stalled.plan.name(),
            stalled.plan.errors(),
            stalled.reason
        );
        for d in &stalled.plan.diagnostics {
            let _ = writeln!(text, "{d}");
        }
        text.push_str("```\n");
        diagnostics.extend(stalled.plan.diagnostics.iter().cloned());
    }
    for w in snapshot.warnings.iter().filter(|d| !d.is_error()) {
        let _ = writeln!(text, "\n⚠️ {w}");
    }
    let _ = writeln!(text, "\n<sub>The preview reads the plans of this pull request and plancd.yaml of its base branch.</sub>");
    let mut headline = format!("pull request #{number}: {runs} task(s) would run");
    if !snapshot.stalled.is_empty() {
        headline.push_str(&format!("; {} workflow(s) have invalid plans", snapshot.stalled.len()));
    }
    let summary = format!("## plancd\n\n{headline}\n\n{text}");
    Ok((text, ActionReport { headline, summary, diagnostics, ..ActionReport::default() }))
}

/// How a role is played, in words.
fn agent(role: Option<&RoleConfig>) -> String {
    match role {
        Some(RoleConfig { label: Some(label), command: Some(_), .. }) => format!("command ({label})"),
        Some(RoleConfig { command: Some(cmd), .. }) => format!("command `{}`", cmd.argv().join(" ")),
        Some(RoleConfig { model: Some(model), .. }) => format!("model `{model}`"),
        _ => "none".into(),
    }
}

/// What one task's work may cost.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Estimate {
    /// It does not run.
    None,
    /// A command agent: no model is paid.
    Free,
    /// At most this many dollars (the budget per task).
    AtMost(f64),
    /// A model without a budget.
    Unknown,
}

impl Estimate {
    fn text(self) -> String {
        match self {
            Estimate::None => "-".into(),
            Estimate::Free => "$0 (command agent)".into(),
            Estimate::AtMost(usd) => format!("≤ ${usd:.2}"),
            Estimate::Unknown => "unknown (no budget.usd_per_task)".into(),
        }
    }
}

fn estimate(config: &Config, role: Option<&RoleConfig>) -> Estimate {
    match role {
        Some(RoleConfig { command: Some(_), .. }) => Estimate::Free,
        Some(RoleConfig { model: Some(_), .. }) => config.budget.usd_per_task.map_or(Estimate::Unknown, Estimate::AtMost),
        _ => Estimate::None,
    }
}

fn total(config: &Config, costs: &[Estimate]) -> String {
    if costs.contains(&Estimate::Unknown) {
        return match config.budget.usd_per_workflow {
            Some(cap) => format!("unknown, capped at ${cap:.2} per workflow"),
            None => "unknown: a model without budget.usd_per_task".into(),
        };
    }
    let sum: f64 = costs.iter().map(|c| if let Estimate::AtMost(usd) = c { *usd } else { 0.0 }).sum();
    if sum == 0.0 { "$0 (command agents only)".into() } else { format!("at most ${sum:.2}") }
}
