//! What an agent's work may not do, decided by pure functions: touch protected paths (CI
//! workflows, submodules, attributes, code owners, plancd's own files), or change how the
//! acceptance tests run (files that configure or shadow the test runner, see [`RUNNER_FILES`]),
//! plus the probe that must fail ([`plan_probe`]). The attempt's steps call [`Guard::check`] on the
//! collected change and run the probes after the tests pass; a refusal ends the attempt without
//! publishing anything and never opens a branch todo: it is no bug a coder could fix.

mod probe;
mod runner;

use std::collections::BTreeSet;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::reconcile::input::Input;

use crate::config::{Config, DEFAULT_PROTECTED_PATHS};
use crate::reconcile::workspace::AgentChange;
use crate::spec::{AcceptanceTest, Task, normalize_relative};

pub use probe::{Calls, FailingTest, Interpreter, PROBE_RUNNERS, Probe, ProbePlan, ProbeRunner, plan_probe, probe_env};
pub(crate) use runner::reads_content;
pub use runner::{RUNNER_FILES, RunnerFile, Scope};

/// Why a guard refuses an attempt. Failure types stay strings at the attempt's seam for now:
/// [`Refusal::failure_type`] and [`Refusal::from_failure_type`] convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Refusal {
    /// The result adds, changes or removes a protected path its task does not name.
    ProtectedPath,
    /// The agent changed how the tests run, or the tests pass a probe that must fail.
    TestTampering,
}

impl Refusal {
    /// The CamelCase reason for status, PR comments and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::ProtectedPath => "ProtectedPath",
            Refusal::TestTampering => "TestTampering",
        }
    }

    /// The failure type recorded in the task's status.
    pub fn failure_type(self) -> &'static str {
        match self {
            Refusal::ProtectedPath => "protected_path",
            Refusal::TestTampering => "test_tampering",
        }
    }

    /// The refusal a failure type names, if it is one.
    pub fn from_failure_type(failure_type: &str) -> Option<Refusal> {
        [Refusal::ProtectedPath, Refusal::TestTampering].into_iter().find(|r| r.failure_type() == failure_type)
    }
}

/// A refused change: which rule, the files, and one line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub refusal: Refusal,
    /// The files, sorted.
    pub paths: Vec<String>,
    /// What happened and what a person can do.
    pub message: String,
}

/// What a check looks at besides the change: the task's own declarations and its input.
pub struct Subject<'a> {
    /// The task's declared outputs: protected or runner files it names are allowed (the task is
    /// held for approval instead).
    pub outputs: &'a [String],
    /// Pinned test files: restored before the tests, so never the agent's to decide.
    pub pinned: &'a [String],
    /// The acceptance tests (the scripts they run are runner files too).
    pub tests: &'a [AcceptanceTest],
    /// The files the agent started from.
    pub input: &'a Input,
}

/// The compiled rules of one configuration.
pub struct Guard {
    protected: Gitignore,
}

impl Guard {
    /// The rules of `config`: the default protected paths, then the configuration's (a pattern
    /// the matcher cannot read is reported when the configuration loads and skipped here).
    pub fn new(config: &Config) -> Guard {
        Guard { protected: protected_matcher(&config.protected_paths).0 }
    }

    /// Whether a result may touch `path` only when its task names it.
    pub fn is_protected(&self, path: &str) -> bool {
        self.protected.matched(std::path::Path::new("/").join(normalize_relative(path)), false).is_ignore()
    }

    /// The outputs of `task` that are protected paths or runner files: a task that names any
    /// is held for a person's approval of its spec.
    pub fn held_outputs(&self, task: &Task) -> Vec<String> {
        task.outputs.iter().filter(|o| self.is_protected(o) || runner::is_runner_path(&normalize_relative(o))).cloned().collect()
    }

    /// Refuses a change that touches a protected path (checked first: it would be published)
    /// or a file that decides how the tests run, unless the task names it as an output.
    pub fn check(&self, subject: &Subject<'_>, change: &AgentChange) -> Option<Violation> {
        let outputs: BTreeSet<String> = subject.outputs.iter().map(|o| normalize_relative(o)).collect();
        let pinned: BTreeSet<String> = subject.pinned.iter().map(|p| normalize_relative(p)).collect();
        let mut protected: Vec<String> = change.paths().into_iter().filter(|p| self.is_protected(p) && !outputs.contains(p)).collect();
        if !protected.is_empty() {
            protected.sort();
            let message = format!(
                "the result may not add, change or remove protected paths: {} (a task that lists them in its outputs waits for approval)",
                protected.join(", ")
            );
            return Some(Violation { refusal: Refusal::ProtectedPath, paths: protected, message });
        }
        let findings: Vec<runner::Finding> =
            runner::findings(subject, change).into_iter().filter(|f| !outputs.contains(&f.path) && !pinned.contains(&f.path)).collect();
        if findings.is_empty() {
            return None;
        }
        let shown: Vec<String> = findings.iter().map(|f| format!("{} ({})", f.path, f.why)).collect();
        let message = format!(
            "the agent changed how the tests run, not only the code under test: {} (a task that lists them in its outputs waits for approval)",
            shown.join("; ")
        );
        let paths = findings.into_iter().map(|f| f.path).collect();
        Some(Violation { refusal: Refusal::TestTampering, paths, message })
    }
}

/// The matcher of the default protected paths followed by `extra`, and the entries of `extra`
/// it could not read.
pub(crate) fn protected_matcher(extra: &[String]) -> (Gitignore, Vec<(usize, String)>) {
    let mut b = GitignoreBuilder::new("/");
    b.case_insensitive(true).expect("case folding is always available");
    for line in DEFAULT_PROTECTED_PATHS {
        b.add_line(None, line).expect("the default protected paths are valid globs");
    }
    let mut bad = Vec::new();
    for (i, line) in extra.iter().enumerate() {
        if let Err(e) = b.add_line(None, line) {
            bad.push((i, e.to_string()));
        }
    }
    // Every line was checked as it was added; should building still fail, the defaults stand.
    let matcher = b.build().unwrap_or_else(|_| protected_matcher(&[]).0);
    (matcher, bad)
}

#[cfg(test)]
mod tests;
