//! What the step leaves for people and later steps: the job summary (`GITHUB_STEP_SUMMARY`:
//! a status table, the quality figures, blocked requests and the workflows' diagram), annotations for plan errors, and outputs
//! (`GITHUB_OUTPUT`: tasks run, succeeded and failed, pull request addresses).

use std::io::Write;
use std::path::Path;

use super::ActionReport;
use crate::config::Env;
use crate::ops::status::{StatusReport, human_duration};
use crate::reconcile::{AttemptEnd, PassReport, Snapshot};
use crate::spec::Diagnostic;
use crate::state::{StateError, Store, TaskKey};

/// `N/M tasks satisfied, K attempt(s) run[, F failed, escalated or held for a person]`, branch
/// todos apart.
pub fn counts(pass: &PassReport) -> String {
    let c = pass.counts();
    let mut line = format!("{}/{} tasks satisfied, {} attempt(s) run", c.satisfied, c.total, pass.attempts.len());
    if c.failed > 0 {
        line.push_str(&format!(", {} failed, escalated or held for a person", c.failed));
    }
    if !pass.stalled.is_empty() {
        line.push_str(&format!(", {} workflow(s) stalled (invalid plans)", pass.stalled.len()));
    }
    line
}

fn failed(pass: &PassReport) -> usize {
    pass.counts().failed
}

fn succeeded(pass: &PassReport) -> usize {
    pass.attempts.iter().filter(|(_, _, end)| matches!(end, AttemptEnd::Succeeded { .. } | AttemptEnd::Adopted { .. })).count()
}

/// The job summary of a pass: headline, status table, diagram.
pub fn pass(headline: &str, status: &StatusReport, snapshot: Option<&Snapshot>) -> String {
    let mut out = format!("## plancd\n\n{headline}\n\n| task | role | phase | attempt | duration | result |\n|---|---|---|---|---|---|\n");
    for r in &status.tasks {
        out.push_str(&format!(
            "| `{}/{}` | {} | {} | {} | {} | {} |\n",
            r.workflow,
            r.task,
            r.role.as_deref().unwrap_or("-"),
            r.phase,
            if r.attempt == 0 { "-".into() } else { r.attempt.to_string() },
            r.duration_seconds.map_or_else(|| "-".into(), human_duration),
            r.result_tag.as_deref().map_or_else(|| "-".into(), |t| format!("`{t}`")),
        ));
    }
    quality(&mut out, status);
    blocked(&mut out, status);
    out.push_str(&format!("\n```mermaid\n{}```\n", crate::render::mermaid(&crate::ops::status::dag(status, snapshot))));
    out
}

/// The quality figures plancd measured on each task's work (coverage of its acceptance tests,
/// security findings), for the tasks that have them.
fn quality(out: &mut String, status: &StatusReport) {
    let rows: Vec<_> = status
        .tasks
        .iter()
        .filter_map(|r| Some((r, r.quality.as_ref().filter(|q| q.coverage.is_some() || q.security.is_some())?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "\n### Quality\n\nMeasured by plancd on the work the acceptance tests passed.\n\n| task | coverage | security |\n|---|---|---|\n",
    );
    for (r, q) in rows {
        let coverage = q.coverage.as_ref().map_or_else(|| "-".to_owned(), |c| format!("{:.1}%", c.percent));
        let security = q.security.as_ref().map_or_else(|| "-".to_owned(), |s| s.summary());
        out.push_str(&format!("| `{}/{}` | {coverage} | {security} |\n", r.workflow, r.task));
    }
}

/// The requests the agents' egress proxies refused, by task and host, as a warning.
fn blocked(out: &mut String, status: &StatusReport) {
    let rows: Vec<_> = status.tasks.iter().filter_map(|r| Some((r, r.network.as_ref().filter(|n| !n.blocked.is_empty())?))).collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("\n### Blocked network requests\n\n> [!WARNING]\n> Agents tried to reach hosts outside their role's `network.allow` in plancd.yaml; plancd's egress proxy refused them.\n\n| task | attempt | host | port | requests |\n|---|---|---|---|---|\n");
    for (r, n) in rows {
        for h in n.blocked.iter().take(20) {
            out.push_str(&format!("| `{}/{}` | {} | `{}` | {} | {} |\n", r.workflow, r.task, n.attempt, h.host, h.port, h.count));
        }
    }
}

/// The job summary of invalid plans.
pub fn invalid(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::from("## plancd\n\nThe configuration is invalid; nothing ran.\n\n```text\n");
    for d in diagnostics {
        out.push_str(&format!("{d}\n"));
    }
    out.push_str("```\n");
    out
}

/// Every task's pull request, from the status refs.
pub fn pull_requests(repo: &Path, status: &StatusReport) -> Result<Vec<String>, StateError> {
    let store = Store::open(repo)?;
    let mut out = Vec::new();
    for r in &status.tasks {
        if let Some((_, s)) = store.status(&TaskKey::new(&r.workflow, &r.task))?
            && let Some(url) = s.result.and_then(|r| r.pull_request)
        {
            out.push(url);
        }
    }
    Ok(out)
}

/// `::error file=...,line=...,col=...,title=...::message` for each error (warnings as
/// `::warning`), as GitHub reads workflow commands.
pub fn annotations(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| {
            let level = if d.is_error() { "error" } else { "warning" };
            let mut message = match &d.field {
                Some(field) => format!("{field}: {}", d.message),
                None => d.message.clone(),
            };
            if let Some(help) = &d.help {
                message.push_str(&format!("\nhelp: {help}"));
            }
            format!(
                "::{level} file={},line={},col={},title={}::{}",
                property(&d.file),
                d.line,
                d.column,
                property(&format!("plancd {}", d.code)),
                data(&message)
            )
        })
        .collect()
}

fn data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The step's outputs, as `name=value` lines.
pub fn outputs(report: &ActionReport) -> Vec<(String, String)> {
    let pass = report.pass.as_ref();
    vec![
        ("tasks-run".into(), pass.map_or(0, |p| p.attempts.len()).to_string()),
        ("tasks-succeeded".into(), pass.map_or(0, succeeded).to_string()),
        ("tasks-failed".into(), pass.map_or(0, failed).to_string()),
        ("pull-requests".into(), serde_json::to_string(&report.pull_requests).expect("strings always serialise")),
        ("result".into(), report.headline.replace('\n', " ")),
    ]
}

/// Appends the outputs to `GITHUB_OUTPUT` and the summary to `GITHUB_STEP_SUMMARY`, when the
/// environment names them.
pub fn write_files(report: &ActionReport, env: &Env) -> std::io::Result<()> {
    if let Some(path) = env.get("GITHUB_OUTPUT").filter(|p| !p.is_empty()) {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        for (name, value) in outputs(report) {
            writeln!(file, "{name}={value}")?;
        }
    }
    if let Some(path) = env.get("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "{}", report.summary)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_github_would_misread() {
        let d = Diagnostic::error("plans/a,b.yaml", crate::spec::Pos { line: 3, column: 7 }, "cycle", "a -> b\n100% sure").help("cut one");
        let lines = annotations(&[d]);
        insta::assert_snapshot!(lines.join("\n"), @"::error file=plans/a%2Cb.yaml,line=3,col=7,title=plancd cycle::a -> b%0A100%25 sure%0Ahelp: cut one");
    }
}
