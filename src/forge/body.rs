//! The body of a result's pull request: the task's title and description, its acceptance
//! results, attempts and branch todos, provenance, and the workflow's diagram with the task
//! marked. Kept under GitHub's 65,536-character limit: long parts are cut, and the body says so.

use std::fmt::Write;

/// GitHub refuses bodies longer than this (in characters).
pub const LIMIT: usize = 65_536;

/// Caps that keep the worst case under [`LIMIT`].
const DESCRIPTION_CHARS: usize = 12_000;
const DIAGRAM_CHARS: usize = 12_000;
const TEST_ROWS: usize = 80;
const ROWS: usize = 40;
const FILES: usize = 100;
const CELL_CHARS: usize = 160;

/// One acceptance test command and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct TestLine {
    /// Its name.
    pub name: String,
    /// The command.
    pub cmd: String,
    /// Whether it passed.
    pub passed: bool,
    /// How it ended, e.g. `exit 0`.
    pub outcome: String,
    /// How long it ran.
    pub seconds: f64,
}

/// One attempt of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLine {
    /// Its number.
    pub n: u32,
    /// How it ended: phase and reason.
    pub outcome: String,
    /// What its record says.
    pub message: String,
}

/// One branch todo of the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchLine {
    /// `<task>_branch_NN`.
    pub id: String,
    /// The role that played it.
    pub role: String,
    /// The failure it debugged.
    pub failure_type: String,
    /// Where it stands.
    pub phase: String,
    /// Its attempts.
    pub attempts: u32,
}

/// Everything the body shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrFacts {
    /// The workflow.
    pub workflow: String,
    /// The task.
    pub task: String,
    /// The task's title.
    pub title: String,
    /// The task's description.
    pub description: String,
    /// The result branch.
    pub branch: String,
    /// The result's tag.
    pub tag: String,
    /// The result commit.
    pub commit: String,
    /// The attempt that produced the result.
    pub attempt: u32,
    /// The acceptance tests of that attempt.
    pub tests: Vec<TestLine>,
    /// Pinned test files the agent changed (restored before the tests ran).
    pub pinned_files_changed: Vec<String>,
    /// The files the result changes.
    pub files: Vec<String>,
    /// Every attempt so far.
    pub attempts: Vec<AttemptLine>,
    /// Every branch todo.
    pub branch_todos: Vec<BranchLine>,
    /// Provenance, as `(name, value)` rows: agent, model, prompt hash, spec hash, cost, ...
    pub provenance: Vec<(String, String)>,
    /// A Mermaid flowchart of the workflow with the task marked.
    pub diagram: String,
    /// The network the accepted attempt's agent had through its role's `network.allow`.
    pub network: Option<crate::state::NetworkUse>,
    /// The quality figures plancd measured on the result.
    pub quality: Option<crate::state::Quality>,
}

/// The pull request's title.
pub fn title(facts: &PrFacts) -> String {
    format!("plancd: {} ({}/{})", cell(&facts.title, 200), facts.workflow, facts.task)
}

/// Renders the body, within [`LIMIT`].
pub fn render(f: &PrFacts) -> String {
    let mut out = String::new();
    let mut notes = Vec::new();
    let _ = writeln!(out, "{}\n", super::marker(&format!("pr:{}/{}", f.workflow, f.task)));
    let _ = writeln!(out, "## {}\n", cell(&f.title, 400));
    let _ = writeln!(
        out,
        "> Result of `{}/{}`, attempt {}: branch `{}`, tag `{}`, commit `{}`.\n",
        f.workflow,
        f.task,
        f.attempt,
        f.branch,
        f.tag,
        short(&f.commit)
    );
    let description = cut(f.description.trim(), DESCRIPTION_CHARS, "the description", &mut notes);
    if !description.is_empty() {
        let _ = writeln!(out, "{description}\n");
    }
    tests(&mut out, f, &mut notes);
    quality(&mut out, f);
    network(&mut out, f);
    files(&mut out, f, &mut notes);
    attempts(&mut out, f, &mut notes);
    provenance(&mut out, f);
    diagram(&mut out, f, &mut notes);
    let _ = writeln!(
        out,
        "---\n<sub>Published by plancd. A later result of this task updates this pull request; a comment `/plancd retry` with instructions asks for another attempt.</sub>"
    );
    finish(out, notes)
}

fn tests(out: &mut String, f: &PrFacts, notes: &mut Vec<String>) {
    let passed = f.tests.iter().filter(|t| t.passed).count();
    let _ = writeln!(out, "### Acceptance tests\n\n{passed} of {} passed.\n", f.tests.len());
    if !f.tests.is_empty() {
        out.push_str("| | test | command | result | time |\n|---|---|---|---|---|\n");
        for t in f.tests.iter().take(TEST_ROWS) {
            let mark = if t.passed { "✅" } else { "❌" };
            let _ = writeln!(out, "| {mark} | {} | {} | {} | {:.1}s |", cell(&t.name, 80), code(&t.cmd), cell(&t.outcome, 60), t.seconds);
        }
        omitted(out, f.tests.len(), TEST_ROWS, "test", notes);
    }
    if !f.pinned_files_changed.is_empty() {
        let files: Vec<String> = f.pinned_files_changed.iter().take(ROWS).map(|p| code(p)).collect();
        let _ = writeln!(out, "\nThe agent changed pinned test files; they were restored before the tests ran: {}.", files.join(", "));
    }
    out.push('\n');
}

/// The quality figures plancd measured on the result: coverage, and the security findings with
/// the most severe listed.
fn quality(out: &mut String, f: &PrFacts) {
    let Some(q) = &f.quality else { return };
    out.push_str(
        "### Quality\n\nMeasured by plancd in the session that verified this result, under its own settings.\n\n| | |\n|---|---|\n",
    );
    match &q.coverage {
        Some(c) => {
            let _ = writeln!(
                out,
                "| coverage | {:.1}% ({} of {} statements, {} file(s); {} of {} test command(s) measured) |",
                c.percent, c.covered_lines, c.statements, c.files, c.commands_measured, c.commands
            );
        }
        None => out.push_str("| coverage | not measured |\n"),
    }
    match &q.security {
        Some(s) => {
            let _ = writeln!(out, "| security | {} (bandit, {} line(s)) |", cell(&s.summary(), 200), s.lines_scanned);
        }
        None => out.push_str("| security | not measured |\n"),
    }
    for u in &q.unmeasured {
        let figure = match u.figure {
            crate::state::quality::Figure::Coverage => "coverage",
            crate::state::quality::Figure::Security => "security",
        };
        let detail = if u.detail.is_empty() { String::new() } else { format!(": {}", u.detail) };
        let _ = writeln!(out, "\n_{figure} not measured: {}{}_", u.reason.describe(), cell(&detail, CELL_CHARS));
    }
    if let Some(s) = q.security.as_ref().filter(|s| !s.findings.is_empty()) {
        out.push_str("\n| severity | rule | where | finding |\n|---|---|---|---|\n");
        for finding in s.findings.iter().take(ROWS) {
            let place = format!("{}:{}", finding.path, finding.line);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                finding.severity.as_str(),
                code(&finding.rule),
                code(&place),
                cell(&finding.text, CELL_CHARS)
            );
        }
        if s.counts.total() as usize > s.findings.len().min(ROWS) {
            let _ = writeln!(out, "\n…and {} more finding(s).", s.counts.total() as usize - s.findings.len().min(ROWS));
        }
    }
    out.push('\n');
}

/// The requests the agent's egress proxy refused, as a warning (as GitHub's Copilot agent
/// reports its firewall's blocks), and the allowed hosts it used.
fn network(out: &mut String, f: &PrFacts) {
    let Some(n) = &f.network else { return };
    let allowed: Vec<String> = n.allow.iter().take(ROWS).map(|h| code(h)).collect();
    let allowed = if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") };
    if !n.blocked.is_empty() {
        let _ = writeln!(
            out,
            "### Blocked network requests\n\n> [!WARNING]\n> The agent's sandbox made {} request(s) outside its role's `network.allow` in plancd.yaml; plancd's egress proxy refused them. If the work needs one of these hosts, add it to the allowlist.\n\n| host | port | requests |\n|---|---|---|",
            n.blocked_total
        );
        for h in n.blocked.iter().take(ROWS) {
            let _ = writeln!(out, "| {} | {} | {} |", code(&h.host), h.port, h.count);
        }
        if n.blocked.len() > ROWS {
            let _ = writeln!(out, "\n…and {} more host(s).", n.blocked.len() - ROWS);
        }
        out.push('\n');
    }
    let used = crate::state::NetworkUse::list_text(&n.used, ROWS);
    let used = if used.is_empty() { "none used".to_owned() } else { format!("used: {}", cell(&used, 2000)) };
    let _ = writeln!(out, "Network of attempt {}: allowed {allowed}; {used}.\n", n.attempt);
}

fn files(out: &mut String, f: &PrFacts, notes: &mut Vec<String>) {
    if f.files.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Files\n");
    for path in f.files.iter().take(FILES) {
        let _ = writeln!(out, "- {}", code(path));
    }
    omitted(out, f.files.len(), FILES, "file", notes);
    out.push('\n');
}

fn attempts(out: &mut String, f: &PrFacts, notes: &mut Vec<String>) {
    if !f.attempts.is_empty() {
        out.push_str("### Attempts\n\n| attempt | outcome | message |\n|---|---|---|\n");
        for a in f.attempts.iter().take(ROWS) {
            let _ = writeln!(out, "| {} | {} | {} |", a.n, cell(&a.outcome, 60), cell(&a.message, CELL_CHARS));
        }
        omitted(out, f.attempts.len(), ROWS, "attempt", notes);
        out.push('\n');
    }
    if !f.branch_todos.is_empty() {
        out.push_str("### Branch todos\n\n| branch todo | role | failure | phase | attempts |\n|---|---|---|---|---|\n");
        for b in f.branch_todos.iter().take(ROWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                code(&b.id),
                cell(&b.role, 40),
                cell(&b.failure_type, 60),
                cell(&b.phase, 40),
                b.attempts
            );
        }
        omitted(out, f.branch_todos.len(), ROWS, "branch todo", notes);
        out.push('\n');
    }
}

fn provenance(out: &mut String, f: &PrFacts) {
    out.push_str("### Provenance\n\n| | |\n|---|---|\n");
    for (name, value) in f.provenance.iter().take(ROWS) {
        let _ = writeln!(out, "| {} | {} |", cell(name, 60), code(value));
    }
    out.push('\n');
}

fn diagram(out: &mut String, f: &PrFacts, notes: &mut Vec<String>) {
    if f.diagram.is_empty() {
        return;
    }
    out.push_str("### Workflow\n\n");
    if f.diagram.chars().count() > DIAGRAM_CHARS {
        let _ = writeln!(out, "The diagram is left out: run `plancd graph {}` to draw it.\n", f.workflow);
        notes.push(format!("the workflow diagram ({} characters) was left out", f.diagram.chars().count()));
        return;
    }
    let _ = writeln!(out, "```mermaid\n{}\n```\n", f.diagram.trim_end());
}

/// Appends the notes on what was cut, and a last guard on the length.
fn finish(mut out: String, notes: Vec<String>) -> String {
    if !notes.is_empty() {
        let _ = writeln!(out, "\n_Shortened to stay under GitHub's 65,536-character limit: {}._", notes.join("; "));
    }
    if out.chars().count() > LIMIT {
        let note = "\n\n_Cut at GitHub's 65,536-character limit._\n";
        let keep = LIMIT - note.chars().count();
        out = out.chars().take(keep).collect::<String>() + note;
    }
    out
}

/// `text` cut to `max` characters, with a note when it was.
fn cut(text: &str, max: usize, what: &str, notes: &mut Vec<String>) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    notes.push(format!("{what} was cut to {} of {} characters", group(max), group(total)));
    format!("{}…", text.chars().take(max).collect::<String>())
}

fn omitted(out: &mut String, total: usize, shown: usize, what: &str, notes: &mut Vec<String>) {
    if total > shown {
        let _ = writeln!(out, "\n…and {} more {what}(s).", total - shown);
        notes.push(format!("{} of {total} {what}(s) are listed", shown));
    }
}

/// Text fit for a table cell: one line, pipes escaped, at most `max` characters.
fn cell(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String =
        if one_line.chars().count() > max { format!("{}…", one_line.chars().take(max).collect::<String>()) } else { one_line };
    short.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// Inline code for a table cell; text with backticks goes in double backticks.
fn code(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let short: String = if one_line.chars().count() > CELL_CHARS {
        format!("{}…", one_line.chars().take(CELL_CHARS).collect::<String>())
    } else {
        one_line
    };
    let escaped = short.replace('|', "\\|");
    if escaped.contains('`') { format!("`` {escaped} ``") } else { format!("`{escaped}`") }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// 12345 -> `12,345`.
fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
