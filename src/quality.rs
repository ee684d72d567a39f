//! How plancd measures a result's quality figures (coverage of the acceptance tests, security
//! findings) and the `checks:` presets: the commands it runs and how it reads their reports,
//! as pure functions. The attempt runs them in its verifying session; the figures go into the
//! result's status as [`crate::state::quality`] records.
//!
//! # Why the figures can be trusted
//!
//! They are measured by plancd's runner, never reported by the agent:
//! - in the session that verifies the result, which holds exactly the work to be published (a
//!   fresh session: nothing the agent left running or hidden outside the result takes part);
//! - under plancd's own configuration, written at a path chosen at random for each attempt and
//!   emptied before the first test: the data file cannot be pre-seeded, and the work's own
//!   `.coveragerc`, `setup.cfg`, `tox.ini`, `pyproject.toml` or `.bandit` are never read
//!   (`--rcfile`, `--ini`), so the work cannot omit its untested files or skip rules;
//! - with the in-code opt-outs ignored: coverage counts lines marked `# pragma: no cover`
//!   (plancd's exclusion pattern matches nothing) and bandit reports lines marked `# nosec`
//!   (`--ignore-nosec`); node's `node:coverage ignore` comments are the exception (node 20
//!   has no switch for them);
//! - with the tools imported in isolated mode (`python -I`), so that a module of the work cannot
//!   stand in for the report or the scanner (the guard refuses work that shadows `coverage`,
//!   whose run must import the work's modules);
//! - only on a verdict that passed, including the probe that must fail.
//!
//! What stays possible: the code under test runs inside the measured Python process and could
//! disturb the tracer there, as it could any in-process measurement. That is the same trust the
//! acceptance verdict itself rests on, and the probe guards the runner, not the tracer; the
//! figure is a measurement of the published work, not a proof.

use serde::{Deserialize, Serialize};

use crate::config::CheckCommand;
use crate::spec::Role;
use crate::state::quality::{Coverage, CoverageTool, FINDINGS_LISTED, Finding, SecurityScan, SecurityTool, Severity, SeverityCounts};

/// The folder (under the workspace) that holds plancd's measurement files: this prefix and a
/// random tag per attempt.
pub const DIR_PREFIX: &str = ".plancd-quality-";

/// Test files left out of coverage and of the security scan: they measure the code, they are
/// not the code.
const TEST_GLOBS: [&str; 4] = ["*/test_*.py", "*/*_test.py", "*/tests/*", "*/conftest.py"];

/// Bytes kept of a report's output (coverage's JSON lists every line of every file).
pub const REPORT_LIMIT: usize = 16 << 20;

/// Where one attempt's measurement files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    /// The folder, absolute (inside the sandbox).
    pub dir: String,
}

impl Measurement {
    /// The measurement of an attempt whose random tag is `tag`, in `workspace`.
    pub fn new(workspace: &str, tag: &str) -> Measurement {
        Measurement { dir: format!("{}/{DIR_PREFIX}{tag}", workspace.trim_end_matches('/')) }
    }

    fn rcfile(&self) -> String {
        format!("{}/coveragerc", self.dir)
    }

    fn data_file(&self) -> String {
        format!("{}/coverage.data", self.dir)
    }

    /// coverage.py's configuration: the whole workspace measured (files no test imports count
    /// as uncovered), test files and plancd's folder left out, and an exclusion pattern that
    /// matches nothing, so that `# pragma: no cover` in the work does not hide lines.
    pub fn coverage_rc(&self, workspace: &str) -> String {
        let mut omit = vec![format!("{}/*", self.dir)];
        omit.extend(TEST_GLOBS.iter().map(|g| (*g).to_owned()));
        format!(
            "[run]\nsource = {workspace}\nbranch = False\nomit =\n{}\n[report]\nexclude_lines =\n    (?!)\n",
            omit.iter().map(|o| format!("    {o}\n")).collect::<String>()
        )
    }

    /// Empties the folder, writes the configuration and checks that `python` has coverage.py:
    /// exit 0 when measurement can go on.
    pub fn setup_script(&self, workspace: &str, python: &str) -> String {
        format!(
            "rm -rf '{dir}' && mkdir -p '{dir}' && cat > '{rc}' <<'PLANCD_EOF'\n{conf}PLANCD_EOF\nprintf '[bandit]\\n' > '{dir}/bandit.ini' && {python} -I -c 'import coverage'",
            dir = self.dir,
            rc = self.rcfile(),
            conf = self.coverage_rc(workspace),
        )
    }

    /// The acceptance command `cmd` (the `index`th) run under measurement, when it is a test
    /// run plancd recognises: under coverage.py with plancd's configuration for `python -m
    /// pytest|unittest ...`, `python FILE.py ...` and `pytest ...` (run as its script, as the
    /// shell would); with node's own coverage into plancd's folder for `node --test ...`.
    /// Variable assignments in front are kept, and so is a `cd DIR && ` before them (the
    /// configuration and the data are at absolute paths); the rest of the command is kept as
    /// written. `None`: run it as it is.
    pub fn wrap(&self, cmd: &str, index: usize) -> Option<Wrapped> {
        if let Some((dir, rest)) = cd_first(cmd) {
            let inner = self.wrap(rest, index)?;
            return Some(Wrapped { cmd: format!("cd {dir} && {}", inner.cmd), ..inner });
        }
        let words = words(cmd);
        let mut i = words.iter().take_while(|(_, w)| is_assignment(w)).count();
        let (start, program) = *words.get(i)?;
        let prefix = &cmd[..start];
        if prefix.contains(['\'', '"', '\\', '`', '$', ';', '&', '|', '(', ')', '<', '>']) {
            return None;
        }
        let run = format!("-m coverage run --rcfile={} --data-file={} --append", self.rcfile(), self.data_file());
        i += 1;
        let rest_at = |i: usize| words.get(i).map_or(cmd.len(), |(at, _)| *at);
        if program == "pytest" && !cmd.contains("--cov") {
            let rest = &cmd[rest_at(i)..];
            let cmd = format!("{prefix}python3 {run} \"$(command -v pytest)\" {rest}");
            return Some(Wrapped { cmd, tool: CoverageTool::CoveragePy, program: "python3".into() });
        }
        // A command that picks its own reporters is left as it is: node wants one destination
        // per reporter, in order.
        if program == "node" && words.get(i).is_some_and(|(_, w)| *w == "--test") && !cmd.contains("--test-reporter") {
            // The TAP reporter is node's own when its output is not a terminal: the log reads
            // the same; the lcov report goes to plancd's folder, one file per command.
            let rest = &cmd[rest_at(i + 1)..];
            let cmd = format!(
                "{prefix}node --test --experimental-test-coverage --test-reporter=tap --test-reporter-destination=stdout --test-reporter=lcov --test-reporter-destination={}/lcov-{index}.info {rest}",
                self.dir
            );
            return Some(Wrapped { cmd: cmd.trim_end().to_owned(), tool: CoverageTool::NodeTest, program: "node".into() });
        }
        // pytest-cov measures on its own; two tracers in one process disagree.
        if !is_python(program) || cmd.contains("--cov") {
            return None;
        }
        let (_, next) = *words.get(i)?;
        let target = if next == "-m" {
            let (_, module) = *words.get(i + 1)?;
            if !["pytest", "unittest"].contains(&module) {
                return None;
            }
            i += 2;
            format!("-m {module}")
        } else if next.ends_with(".py") && !next.starts_with('-') && !next.contains(['\'', '"', '$', '`', ';', '&', '|']) {
            i += 1;
            next.to_owned()
        } else {
            return None;
        };
        let rest = &cmd[rest_at(i)..];
        let cmd = format!("{prefix}{program} {run} {target} {rest}").trim_end().to_owned();
        Some(Wrapped { cmd, tool: CoverageTool::CoveragePy, program: program.to_owned() })
    }

    /// Empties the folder for node's reports.
    pub fn node_setup_script(&self) -> String {
        format!("rm -rf '{dir}' && mkdir -p '{dir}'", dir = self.dir)
    }

    /// Writes the lcov reports of the node commands to standard output.
    pub fn node_report_script(&self) -> String {
        format!("cat '{}'/lcov-*.info", self.dir)
    }

    /// Writes coverage.py's JSON report to standard output.
    pub fn coverage_report_script(&self, python: &str) -> String {
        format!("{python} -I -m coverage json --rcfile='{}' --data-file='{}' -o - -q", self.rcfile(), self.data_file())
    }

    /// Bandit over the workspace as JSON on standard output, under plancd's (empty) settings,
    /// `# nosec` ignored, test files and plancd's folder left out.
    pub fn bandit_script(&self, python: &str) -> String {
        let name = self.dir.rsplit('/').next().unwrap_or(DIR_PREFIX);
        let mut exclude = vec![format!("./{name}"), "./.git".to_owned()];
        exclude.extend(TEST_GLOBS.iter().map(|g| (*g).to_owned()));
        format!("{python} -I -m bandit -r . -f json -q --ignore-nosec --ini '{}/bandit.ini' -x '{}'", self.dir, exclude.join(","))
    }
}

/// An acceptance command under coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The command plancd runs instead.
    pub cmd: String,
    /// What measures it.
    pub tool: CoverageTool,
    /// The program that runs it (for coverage.py, the Python of its report too).
    pub program: String,
}

/// `cd DIR && REST`, with DIR a plain relative or absolute path (no quotes, variables or
/// globs): DIR and REST.
pub fn cd_first(cmd: &str) -> Option<(&str, &str)> {
    let (dir, rest) = cmd.trim_start().strip_prefix("cd ")?.split_once("&&")?;
    let dir = dir.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+@:,".contains(c);
    (!dir.is_empty() && dir.chars().all(plain)).then(|| (dir, rest.trim_start()))
}

/// `cmd`'s words (split at ASCII whitespace) with where each starts.
fn words(cmd: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in cmd.char_indices() {
        match (c.is_ascii_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &cmd[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &cmd[s..]));
    }
    out
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// `python`, `python3`, `python3.11`, or such a name under a folder (a venv's).
fn is_python(program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    name.strip_prefix("python").is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        && !program.contains(['\'', '"', '$', '`'])
}

/// A report plancd could not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    /// Not JSON.
    #[error("the report is not JSON: {0}")]
    NotJson(String),
    /// JSON without the expected fields.
    #[error("the report lacks {0}")]
    Missing(&'static str),
}

/// Reads coverage.py's JSON report (`coverage json`): its totals and how many files it measured.
pub fn parse_coverage(report: &[u8], commands_measured: u32, commands: u32) -> Result<Coverage, ReportError> {
    #[derive(Deserialize)]
    struct Report {
        totals: Option<Totals>,
        #[serde(default)]
        files: serde_json::Map<String, serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct Totals {
        covered_lines: u64,
        num_statements: u64,
    }
    let report: Report = serde_json::from_slice(report).map_err(|e| ReportError::NotJson(e.to_string()))?;
    let totals = report.totals.ok_or(ReportError::Missing("totals"))?;
    if totals.covered_lines > totals.num_statements {
        return Err(ReportError::Missing("consistent totals"));
    }
    // Computed here rather than taken from the report: one rounding, whatever the version.
    let percent = if totals.num_statements == 0 { 100.0 } else { 100.0 * totals.covered_lines as f64 / totals.num_statements as f64 };
    Ok(Coverage {
        tool: CoverageTool::CoveragePy,
        percent,
        covered_lines: totals.covered_lines,
        statements: totals.num_statements,
        files: u32::try_from(report.files.len()).unwrap_or(u32::MAX),
        commands_measured,
        commands,
    })
}

/// Whether `path` (relative to the workspace) is a node test file or not the project's code:
/// `test/` or `tests/` folders, `*.test.*`, `*.spec.*`, `*_test.*`, `test-*`, `node_modules/`.
fn node_test_or_dependency(path: &str) -> bool {
    let mut parts = path.split('/');
    let name = parts.next_back().unwrap_or(path);
    parts.any(|d| matches!(d, "test" | "tests" | "__tests__" | "node_modules"))
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.contains("_test.")
        || name.starts_with("test-")
        || name.starts_with("test.")
        || name.starts_with(DIR_PREFIX)
}

/// Reads lcov reports (node's `--test-reporter=lcov`, one or several concatenated): the lines
/// of each source file, merged over the reports (a line hit in any run is covered), test files
/// and dependencies left out.
pub fn parse_lcov(report: &[u8], commands_measured: u32, commands: u32, tool: CoverageTool) -> Result<Coverage, ReportError> {
    let text = std::str::from_utf8(report).map_err(|e| ReportError::NotJson(e.to_string()))?;
    let mut files: std::collections::BTreeMap<String, std::collections::BTreeMap<u32, bool>> = Default::default();
    let mut current: Option<String> = None;
    let mut records = 0;
    for line in text.lines().map(str::trim) {
        if let Some(path) = line.strip_prefix("SF:") {
            let path = path.strip_prefix(plancd_sandbox::WORKSPACE).map_or(path, |p| p.trim_start_matches('/'));
            current = (!node_test_or_dependency(path)).then(|| path.to_owned());
            records += 1;
        } else if let (Some(da), Some(file)) = (line.strip_prefix("DA:"), &current) {
            let mut fields = da.split(',');
            let (Some(Ok(n)), Some(Ok(hits))) = (fields.next().map(str::parse::<u32>), fields.next().map(str::parse::<u64>)) else {
                return Err(ReportError::Missing("well-formed DA lines"));
            };
            *files.entry(file.clone()).or_default().entry(n).or_default() |= hits > 0;
        } else if line == "end_of_record" {
            current = None;
        }
    }
    if records == 0 {
        return Err(ReportError::Missing("source file records"));
    }
    let statements: u64 = files.values().map(|l| l.len() as u64).sum();
    let covered_lines: u64 = files.values().map(|l| l.values().filter(|h| **h).count() as u64).sum();
    let percent = if statements == 0 { 100.0 } else { 100.0 * covered_lines as f64 / statements as f64 };
    Ok(Coverage { tool, percent, covered_lines, statements, files: files.len() as u32, commands_measured, commands })
}

/// Reads bandit's JSON report (`bandit -f json`): every finding counted by severity, the most
/// severe listed (at most [`FINDINGS_LISTED`]), and the lines scanned.
pub fn parse_bandit(report: &[u8]) -> Result<SecurityScan, ReportError> {
    #[derive(Deserialize)]
    struct Report {
        results: Option<Vec<Issue>>,
        #[serde(default)]
        metrics: serde_json::Map<String, serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct Issue {
        #[serde(default)]
        test_id: String,
        #[serde(default)]
        test_name: String,
        #[serde(default)]
        issue_severity: String,
        #[serde(default)]
        issue_confidence: String,
        #[serde(default)]
        filename: String,
        #[serde(default)]
        line_number: u32,
        #[serde(default)]
        issue_text: String,
    }
    let report: Report = serde_json::from_slice(report).map_err(|e| ReportError::NotJson(e.to_string()))?;
    let issues = report.results.ok_or(ReportError::Missing("results"))?;
    let mut counts = SeverityCounts::default();
    let mut findings: Vec<Finding> = issues
        .into_iter()
        .map(|i| {
            let severity = Severity::parse(&i.issue_severity);
            counts.add(severity);
            Finding {
                rule: i.test_id,
                rule_name: i.test_name,
                severity,
                confidence: Severity::parse(&i.issue_confidence),
                path: i.filename.trim_start_matches("./").to_owned(),
                line: i.line_number,
                text: i.issue_text,
            }
        })
        .collect();
    findings.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then(b.confidence.cmp(&a.confidence)).then(a.path.cmp(&b.path)).then(a.line.cmp(&b.line))
    });
    findings.truncate(FINDINGS_LISTED);
    let lines_scanned = report.metrics.get("_totals").and_then(|t| t["loc"].as_u64()).unwrap_or(0);
    Ok(SecurityScan { tool: SecurityTool::Bandit, counts, lines_scanned, findings })
}

/// Whether a tool's failure says the tool is not installed.
pub fn tool_missing(output: &str) -> bool {
    output.contains("No module named") || output.contains("command not found")
}

/// A ready-made set of checks for `checks:` (`- preset: python`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckPreset {
    /// flake8 (lint), mypy (types) and bandit (security; medium severity and above fails), as
    /// the seed's coder gates: each under plancd's settings, not the work's.
    Python,
}

impl CheckPreset {
    /// The preset's checks, each with `roles` and `timeout_seconds` as the entry gives them.
    pub fn checks(self, roles: &[Role], timeout_seconds: Option<u64>) -> Vec<CheckCommand> {
        let tests = TEST_GLOBS.join(",");
        let commands: Vec<(&str, String)> = match self {
            CheckPreset::Python => vec![
                ("lint", "python3 -I -m flake8 --isolated --max-line-length=120 --exclude=.git,__pycache__,.venv,venv,build,dist .".to_owned()),
                (
                    "types",
                    "python3 -I -m mypy --config-file= --ignore-missing-imports --no-error-summary --exclude '(^|/)(\\.venv|venv|build|dist)/' .".to_owned(),
                ),
                ("security", format!("python3 -I -m bandit -r . -q -ll --ignore-nosec --ini /dev/null -x './.git,{tests}'")),
            ],
        };
        commands
            .into_iter()
            .map(|(name, cmd)| CheckCommand { name: name.to_owned(), cmd, timeout_seconds, roles: roles.to_vec() })
            .collect()
    }
}

#[cfg(test)]
mod tests;
