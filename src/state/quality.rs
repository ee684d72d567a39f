//! The quality figures of a result, as its status records them: the acceptance tests' code
//! coverage and the security scanner's findings, both measured by plancd in the session that
//! verified exactly the published work (see [`crate::quality`] for how, and why they can be
//! trusted).

use serde::{Deserialize, Serialize};

/// Most findings a record lists one by one; the counts cover all of them.
pub const FINDINGS_LISTED: usize = 50;

/// What plancd measured on a verified result, and what it could not measure, with why.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Quality {
    /// The acceptance tests' line coverage, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// The security scan, when run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityScan>,
    /// The figures not measured, each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmeasured: Vec<Unmeasured>,
}

impl Quality {
    /// Whether anything was measured or noted.
    pub fn is_empty(&self) -> bool {
        self.coverage.is_none() && self.security.is_none() && self.unmeasured.is_empty()
    }

    /// Whether the record is worth keeping: a figure was measured, or a tool that should have
    /// measured one is missing or failed (not merely: nothing here for it to measure).
    pub fn worth_recording(&self) -> bool {
        self.coverage.is_some()
            || self.security.is_some()
            || self.unmeasured.iter().any(|u| matches!(u.reason, UnmeasuredReason::ToolMissing | UnmeasuredReason::ReportUnreadable))
    }

    /// One line for tables: `coverage 87.5%, 2 security findings (1 high)`.
    pub fn summary(&self) -> String {
        let coverage = match &self.coverage {
            Some(c) => format!("coverage {:.1}%", c.percent),
            None => "coverage -".to_owned(),
        };
        let security = match &self.security {
            Some(s) => s.summary(),
            None => "security -".to_owned(),
        };
        format!("{coverage}, {security}")
    }
}

/// A tool that measures coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageTool {
    /// coverage.py (`python -m coverage`).
    CoveragePy,
    /// Node's test runner (`node --test --experimental-test-coverage`), lines from its lcov
    /// report.
    NodeTest,
}

/// Line coverage of the acceptance tests over the repository's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// What measured it.
    pub tool: CoverageTool,
    /// Covered statements over all statements, in percent (0 to 100).
    pub percent: f64,
    /// Statements the tests ran.
    pub covered_lines: u64,
    /// Statements in the measured files.
    pub statements: u64,
    /// Files measured.
    pub files: u32,
    /// Acceptance commands that ran under measurement (of all the task's commands).
    pub commands_measured: u32,
    /// All the task's acceptance commands.
    pub commands: u32,
}

/// A tool that scans for security issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityTool {
    /// Bandit, for Python.
    Bandit,
}

/// A finding's severity or the scanner's confidence in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The scanner gives none.
    Undefined,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
}

impl Severity {
    /// The severities counted separately, highest first (also the metric's label values).
    pub const COUNTED: [Severity; 3] = [Severity::High, Severity::Medium, Severity::Low];

    /// The word, as written in records and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Undefined => "undefined",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }

    /// Reads a scanner's word (`HIGH`, `Medium`, ...); anything else is `Undefined`.
    pub fn parse(word: &str) -> Severity {
        match word.to_ascii_lowercase().as_str() {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            _ => Severity::Undefined,
        }
    }
}

/// Findings by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SeverityCounts {
    /// High severity.
    pub high: u32,
    /// Medium severity.
    pub medium: u32,
    /// Low (or undefined) severity.
    pub low: u32,
}

impl SeverityCounts {
    /// All findings.
    pub fn total(&self) -> u32 {
        self.high + self.medium + self.low
    }

    /// The count of `severity` (undefined counts as low).
    pub fn of(&self, severity: Severity) -> u32 {
        match severity {
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low | Severity::Undefined => self.low,
        }
    }

    /// Counts one more finding of `severity`.
    pub fn add(&mut self, severity: Severity) {
        match severity {
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low | Severity::Undefined => self.low += 1,
        }
    }
}

/// One issue the scanner reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The scanner's rule, e.g. `B602`.
    pub rule: String,
    /// The rule's name, e.g. `subprocess_popen_with_shell_equals_true`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule_name: String,
    /// How bad it is.
    pub severity: Severity,
    /// How sure the scanner is.
    pub confidence: Severity,
    /// The file, relative to the workspace.
    pub path: String,
    /// The line.
    pub line: u32,
    /// What the scanner says.
    pub text: String,
}

/// A security scan of the result's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityScan {
    /// What scanned it.
    pub tool: SecurityTool,
    /// Findings by severity (all of them, whether listed or not).
    pub counts: SeverityCounts,
    /// Lines of code scanned.
    pub lines_scanned: u64,
    /// The findings, most severe first, at most [`FINDINGS_LISTED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

impl SecurityScan {
    /// `2 security findings (1 high, 1 low)`, or `no security findings`.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        if c.total() == 0 {
            return "no security findings".to_owned();
        }
        let parts: Vec<String> =
            Severity::COUNTED.iter().filter(|s| c.of(**s) > 0).map(|s| format!("{} {}", c.of(*s), s.as_str())).collect();
        format!("{} security finding{} ({})", c.total(), if c.total() == 1 { "" } else { "s" }, parts.join(", "))
    }
}

/// A figure of [`Quality`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Coverage.
    Coverage,
    /// Security findings.
    Security,
}

/// Why a figure was not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmeasuredReason {
    /// No acceptance command is one plancd knows how to measure (e.g. not a Python test run).
    NoMeasurableCommand,
    /// The work holds no file the tool reads (e.g. no `.py` file).
    NothingToScan,
    /// The sandbox lacks the tool (coverage.py, bandit).
    ToolMissing,
    /// The tool ran but its report could not be read.
    ReportUnreadable,
    /// `quality:` in plancd.yaml turns it off.
    Disabled,
}

impl UnmeasuredReason {
    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            UnmeasuredReason::NoMeasurableCommand => "no acceptance command plancd can measure",
            UnmeasuredReason::NothingToScan => "nothing to scan",
            UnmeasuredReason::ToolMissing => "the sandbox lacks the tool (add it to environment.setup in plancd.yaml)",
            UnmeasuredReason::ReportUnreadable => "the tool's report could not be read",
            UnmeasuredReason::Disabled => "turned off in plancd.yaml",
        }
    }
}

/// A figure that was not measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmeasured {
    /// Which.
    pub figure: Figure,
    /// Why.
    pub reason: UnmeasuredReason,
    /// Details for people (the tool's error, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// A result's figures for tests: coverage.py's `percent` (none when `None`) and bandit's
/// `counts`, without findings listed.
#[cfg(test)]
pub(crate) fn measured(percent: Option<f64>, counts: SeverityCounts) -> Quality {
    Quality {
        coverage: percent.map(|percent| Coverage {
            tool: CoverageTool::CoveragePy,
            percent,
            covered_lines: 7,
            statements: 8,
            files: 1,
            commands_measured: 1,
            commands: 1,
        }),
        security: Some(SecurityScan { tool: SecurityTool::Bandit, counts, lines_scanned: 40, findings: Vec::new() }),
        unmeasured: Vec::new(),
    }
}
