//! Failure triage: from a failed attempt's diagnostics (output, exit code, duration against the
//! timeout, a re-run) to a failure type, the role that should handle it, whether a safe quick
//! fix may be tried, and the lines that decided it.
//!
//! Rules go from the most specific to the least: patterns from `failure_patterns` in
//! plancd.yaml first, then what the structure of real tool output says (pytest, unittest, cargo
//! test, go test, node's test runner, jest, mypy, flake8), then the seed's keyword patterns, and
//! last the generic `test_failure` or `unknown`. The seed's `failure_patterns` table holds on
//! real output: an ImportError that names a package is a `missing_dependency`, and a failed
//! assertion whose message names a signature, a type or an interface is a `spec_mismatch`
//! (tests/data/triage, batch `seed-table`, checks both on cases written before the rules).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

use crate::config::FailurePattern;
use crate::spec::Role;

/// What a failure is known by.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics<'a> {
    /// The combined output of the failing commands (test output, checks, the agent's).
    pub output: &'a str,
    /// The exit code observed, when the command exited.
    pub exit_code: Option<i32>,
    /// Whether plancd killed it at its deadline.
    pub timed_out: bool,
    /// How long it ran, in seconds.
    pub duration: Option<f64>,
    /// Its deadline, in seconds.
    pub timeout: Option<f64>,
    /// Whether an immediate re-run of the failing command passed.
    pub rerun_passed: bool,
    /// Names the contract defines (interfaces and methods): a missing one is a spec mismatch.
    pub contract_names: Vec<String>,
    /// A failure outside the code: the sandbox, a model API or git failed.
    pub infrastructure: Option<&'a str>,
    /// The agent went round in circles.
    pub stuck: bool,
    /// A spending limit stopped the attempt.
    pub budget_exceeded: bool,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// One of the built-in types, or a type from `failure_patterns`.
    pub failure_type: String,
    /// The role that should handle it in a branch todo.
    pub target_agent: Role,
    /// Whether a safe quick fix may be tried before an agent.
    pub auto_fixable: bool,
    /// One line for people.
    pub summary: String,
    /// The lines that decided it.
    pub evidence: Vec<String>,
    /// For `missing_dependency`: the missing module, package or crate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// A classifier with the built-in rules and a configuration's additions.
#[derive(Debug, Clone, Default)]
pub struct Triage {
    custom: Vec<(String, Matcher, FailurePattern)>,
    overrides: BTreeMap<String, FailurePattern>,
}

#[derive(Debug, Clone)]
struct Matcher {
    keywords: Vec<String>,
    regexes: Vec<Regex>,
}

impl Matcher {
    fn first_match<'o>(&self, output: &'o str) -> Option<&'o str> {
        output.lines().find(|line| self.keywords.iter().any(|k| line.contains(k.as_str())) || self.regexes.iter().any(|r| r.is_match(line)))
    }
}

/// A `failure_patterns` entry whose regex does not compile.
#[derive(Debug, thiserror::Error)]
#[error("failure_patterns.{name}: regex `{regex}`: {error}")]
pub struct PatternError {
    name: String,
    regex: String,
    error: regex::Error,
}

/// The built-in types, with the role each goes to and whether it is auto-fixable (the seed's
/// routing; `infrastructure` and `budget_exceeded` are not for agents, so they name none that
/// will be used).
fn builtin(failure_type: &str) -> (Role, bool) {
    match failure_type {
        "missing_dependency" => (Role::Coder, true),
        "spec_mismatch" => (Role::Architect, false),
        "implementation_bug" => (Role::Coder, false),
        "timeout" | "flaky_test" => (Role::Tester, false),
        _ => (Role::Debugger, false),
    }
}

impl Triage {
    /// The built-in rules plus `patterns` (a `failure_patterns` section). A pattern named like a
    /// built-in type overrides its routing and adds its keywords; any other name is a new type.
    pub fn new(patterns: &BTreeMap<String, FailurePattern>) -> Result<Triage, PatternError> {
        let mut triage = Triage::default();
        for (name, p) in patterns {
            let regexes = p
                .regexes
                .iter()
                .map(|r| Regex::new(r).map_err(|error| PatternError { name: name.clone(), regex: r.clone(), error }))
                .collect::<Result<Vec<_>, _>>()?;
            if !p.keywords.is_empty() || !regexes.is_empty() {
                triage.custom.push((name.clone(), Matcher { keywords: p.keywords.clone(), regexes }, p.clone()));
            }
            triage.overrides.insert(name.clone(), p.clone());
        }
        Ok(triage)
    }

    /// Classifies one failure.
    pub fn classify(&self, d: &Diagnostics<'_>) -> Classification {
        let found = self.find(d);
        let (mut role, mut auto) = builtin(&found.failure_type);
        if let Some(p) = self.overrides.get(&found.failure_type) {
            role = p.target_agent.unwrap_or(role);
            auto = p.auto_fixable || (auto && p.keywords.is_empty() && p.regexes.is_empty());
        }
        Classification {
            failure_type: found.failure_type,
            target_agent: role,
            auto_fixable: auto,
            summary: found.summary,
            evidence: found.evidence,
            missing: found.missing,
        }
    }

    fn find(&self, d: &Diagnostics<'_>) -> Found {
        if let Some(why) = d.infrastructure {
            return Found::new("infrastructure", format!("the infrastructure failed, not the code: {why}"), vec![why.to_owned()]);
        }
        if d.budget_exceeded {
            return Found::new("budget_exceeded", "a spending limit stopped the attempt".into(), Vec::new());
        }
        if d.stuck {
            return Found::new("stuck", "the agent repeated itself without progress".into(), Vec::new());
        }
        for (name, matcher, _) in &self.custom {
            if let Some(line) = matcher.first_match(d.output) {
                return Found::new(name, format!("matches the `{name}` pattern of plancd.yaml"), vec![line.trim().to_owned()]);
            }
        }
        rules::structured(d).or_else(|| rules::seed_keywords(d.output)).unwrap_or_else(|| rules::fallback(d))
    }
}

/// A classification before routing.
struct Found {
    failure_type: String,
    summary: String,
    evidence: Vec<String>,
    missing: Option<String>,
}

impl Found {
    fn new(failure_type: &str, summary: String, evidence: Vec<String>) -> Found {
        Found { failure_type: failure_type.to_owned(), summary, evidence, missing: None }
    }
}

mod rules {
    //! The built-in rules, most specific first.

    use super::*;

    fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
        cell.get_or_init(|| Regex::new(pattern).expect("built-in patterns compile"))
    }

    macro_rules! pattern {
        ($name:ident, $re:expr) => {
            fn $name() -> &'static Regex {
                static CELL: OnceLock<Regex> = OnceLock::new();
                re(&CELL, $re)
            }
        };
    }

    pattern!(py_no_module, r#"(?:ModuleNotFoundError|ImportError): No module named '?([A-Za-z0-9_.]+)'?"#);
    pattern!(py_cannot_import, r#"ImportError: cannot import name '([A-Za-z0-9_]+)' from '([A-Za-z0-9_.]+)'"#);
    // The seed's row: an ImportError is a missing dependency, also when the package says so in
    // its own words ("Missing optional dependency 'x'", "x requires y: pip install y"). Not the
    // wrappers and the import mistakes of the project itself, which say nothing of a package.
    pattern!(py_import_error, r#"^(?:E\s+)?ImportError: (.+)$"#);
    pattern!(py_import_not_a_package, r#"^(?:cannot import name|Failed to import test module|attempted relative import|No module named)"#);
    pattern!(quoted_name, r#"['"`]([A-Za-z0-9_.-]+)['"`]|\binstall (?:-U )?([A-Za-z0-9_.-]+)"#);
    pattern!(
        py_signature,
        r#"TypeError: .*(?:got an unexpected keyword argument|missing \d+ required (?:positional|keyword-only) arguments?|takes (?:from )?\d+ (?:to \d+ )?positional arguments? but \d+ (?:was|were) given|got multiple values for argument|takes no arguments)"#
    );
    pattern!(
        py_attribute,
        r#"AttributeError: (?:module '([A-Za-z0-9_.]+)'|'([A-Za-z0-9_]+)' object|type object '([A-Za-z0-9_]+)') has no attribute '([A-Za-z0-9_]+)'"#
    );
    pattern!(node_missing, r#"Cannot find (?:module|package) '([^']+)'"#);
    pattern!(
        node_not_function,
        r#"(?:TypeError: )?[A-Za-z0-9_.$]+ is not a (?:function|constructor)|does not provide an export named|'[A-Za-z0-9_]+' object is not callable"#
    );
    pattern!(
        rust_missing_crate,
        r#"(?:can't find crate for `([A-Za-z0-9_]+)`|unresolved import `([A-Za-z0-9_]+)`|use of (?:undeclared crate or module|unresolved module or unlinked crate) `([A-Za-z0-9_]+)`|no matching package named `([A-Za-z0-9_-]+)` found)"#
    );
    pattern!(
        rust_signature,
        r#"error\[E0(?:061|425|599|433|412|107|063|560|609|614|616)\]|this (?:function|method) takes \d+ arguments? but \d+ arguments? (?:was|were) supplied|unresolved import `[A-Za-z0-9_]+::"#
    );
    pattern!(go_missing, r#"(?:cannot find package|no required module provides package|package [^ ]+ is not in (?:GOROOT|std))"#);
    pattern!(
        go_signature,
        r#"(?:undefined: [A-Za-z0-9_.]+|too many arguments in call|not enough arguments in call|has no field or method)"#
    );
    pattern!(
        mypy_signature,
        r#"error: (?:Argument \d+ to "[^"]+" has incompatible type|Too (?:many|few) arguments for|Unexpected keyword argument|Missing positional argument|Module "[^"]+" has no attribute|"[^"]+" has no attribute)"#
    );
    pattern!(mypy_error, r#"^[^:\s]+\.py:\d+: error: "#);
    pattern!(mypy_in_test, r#"^(?:tests?/)?test_[^:\s]*\.py:\d+: error: .*incompatible type"#);
    pattern!(mypy_missing, r#"(?:Cannot find implementation or library stub for module named|Library stubs not installed for) "([^"]+)""#);
    pattern!(
        pytest_plugin_missing,
        r#"(?:async def functions are not natively supported|You need to install a suitable plugin|fixture '(mocker|benchmark|httpx_mock|requests_mock|freezer|aioresponses|respx_mock|snapshot|faker|event_loop|capsys_plugin)' not found)"#
    );
    pattern!(compile_error, r#"^error(?:\[E\d{4}\])?: |^\S+\.go:\d+:\d+: "#);
    // Where an assertion's message starts: Python's AssertionError (unittest, pytest, a bare
    // assert), node's (`AssertionError [ERR_ASSERTION]: msg`, or the TAP block's `error:` field),
    // Rust's assert macros.
    pattern!(assertion_start, r#"AssertionError|^E\s+assert |^\s*error: |assertion `left == right` failed|assertion failed"#);
    // Where it ends: the separators and summaries of the runners.
    pattern!(
        assertion_end,
        r#"^(?:={5,}|-{5,}|_{5,}|Ran \d+ tests?|FAILED|not ok |ok \d|# Subtest|\s*code: 'ERR_ASSERTION'|\s*name: 'AssertionError'|note: run with|\s*at )"#
    );
    // The seed's spec_mismatch keywords, as words that name the interface: a signature, a type
    // (a class in its repr, isinstance, typeof, an annotation) or an interface.
    pattern!(
        names_interface,
        r#"(?i)\b(?:signatures?|interfaces?|types?|isinstance|instance of|typeof|annotations?|type hints?)\b|<class '"#
    );
    pattern!(
        explicit_fail,
        r#"(?:\bself\.fail\(|\bpytest\.fail\(|\bassert\.fail\(|operator: 'fail'|^E\s+assert (?:False|0|None)$|the test returned a termination value with a non-zero status)"#
    );
    pattern!(flake8, r#"^[^:\s]+\.py:\d+:\d+: [EFWC]\d{3} "#);
    pattern!(
        timeout_text,
        r#"(?i)(?:panic: test timed out after|Exceeded timeout of \d+ ?ms|Timeout \(>|timed out after \d+|TimeoutError|Timed out|deadline exceeded|time limit exceeded|TimeoutExpired)"#
    );
    pattern!(
        assertion,
        r#"(?:AssertionError|assertion `left == right` failed|assertion failed|assert_eq!|Expected:|expect\(received\)|AssertionError \[ERR_ASSERTION\]|\bFAIL: test|Error: expect\(|expected .* to (?:equal|be)|got .*, want |\bwant\b.*\bgot\b|= .*, want )"#
    );
    pattern!(
        runtime_error,
        r#"(?:ZeroDivisionError|AttributeError|TypeError|IndexError|KeyError|ValueError|RecursionError|OverflowError|UnboundLocalError|NameError|SyntaxError|IndentationError|TabError|FileNotFoundError|RuntimeError|StopIteration|panicked at|index out of bounds|called `(?:Option|Result)::unwrap\(\)`|ReferenceError|RangeError|SyntaxError:|runtime error:|^panic: |^E\s+[A-Za-z0-9_.]+(?:Error|Exception)\b|^[A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception): )"#
    );
    pattern!(
        test_summary,
        r#"(?:FAILED|FAILURES|\d+ failed|tests? failed|failures=\d+|errors=\d+|not ok \d+|test result: FAILED|--- FAIL|✖)"#
    );

    /// Lines around a match: the match itself and what names it.
    fn line_of<'o>(output: &'o str, r: &Regex) -> Option<&'o str> {
        output.lines().find(|l| r.is_match(l)).map(str::trim)
    }

    pub(super) fn structured(d: &Diagnostics<'_>) -> Option<Found> {
        timeout(d)
            .or_else(|| flaky(d))
            .or_else(|| missing_dependency(d.output))
            .or_else(|| spec_mismatch(d))
            .or_else(|| explicit_failure(d.output))
            .or_else(|| implementation_bug(d.output))
    }

    /// A test that fails on purpose (`self.fail()`, a bare `assert False`, a test returning an
    /// error) says nothing more than that it failed.
    fn explicit_failure(output: &str) -> Option<Found> {
        let line = line_of(output, explicit_fail())?;
        Some(Found::new("test_failure", "a test failed without saying what it expected".into(), vec![line.to_owned()]))
    }

    fn timeout(d: &Diagnostics<'_>) -> Option<Found> {
        let over = matches!((d.duration, d.timeout), (Some(took), Some(limit)) if took >= limit);
        if d.timed_out || over {
            let limit = d.timeout.map_or_else(String::new, |t| format!(" of {t:.0}s"));
            return Some(Found::new("timeout", format!("killed at the deadline{limit}"), Vec::new()));
        }
        let line = line_of(d.output, timeout_text())?;
        Some(Found::new("timeout", "a test ran out of time".into(), vec![line.to_owned()]))
    }

    fn flaky(d: &Diagnostics<'_>) -> Option<Found> {
        d.rerun_passed.then(|| Found::new("flaky_test", "failed, then passed on an immediate re-run of the same code".into(), Vec::new()))
    }

    fn missing_dependency(output: &str) -> Option<Found> {
        let found = |what: &str, line: &str| {
            let mut f = Found::new("missing_dependency", format!("`{what}` is not installed or not found"), vec![line.trim().to_owned()]);
            f.missing = Some(what.to_owned());
            f
        };
        for line in output.lines() {
            if let Some(c) = py_no_module().captures(line) {
                return Some(found(&c[1], line));
            }
            if let Some(c) = node_missing().captures(line) {
                // A relative path is a file of the project, which the code should have written.
                if !c[1].starts_with('.') && !c[1].starts_with('/') {
                    return Some(found(&c[1], line));
                }
            }
            if let Some(c) = rust_missing_crate().captures(line) {
                let name = c.iter().skip(1).flatten().next().map_or("", |m| m.as_str());
                if !matches!(name, "crate" | "self" | "super") {
                    return Some(found(name, line));
                }
            }
            if go_missing().is_match(line) {
                return Some(found(line.split('"').nth(1).unwrap_or("a package"), line));
            }
            if let Some(c) = mypy_missing().captures(line) {
                return Some(found(&c[1], line));
            }
            if let Some(c) = pytest_plugin_missing().captures(line) {
                return Some(found(c.get(1).map_or("a pytest plugin", |m| m.as_str()), line));
            }
            if let Some(c) = py_import_error().captures(line.trim())
                && !py_import_not_a_package().is_match(&c[1])
            {
                let name = quoted_name().captures(&c[1]).and_then(|n| n.get(1).or_else(|| n.get(2)).map(|m| m.as_str().to_owned()));
                return Some(found(name.as_deref().unwrap_or("a dependency"), line));
            }
        }
        None
    }

    fn spec_mismatch(d: &Diagnostics<'_>) -> Option<Found> {
        let out = d.output;
        let named = |what: &str, line: &str| {
            Found::new(
                "spec_mismatch",
                format!("the code's interface does not match what is expected: {what}"),
                vec![line.trim().to_owned()],
            )
        };
        if let Some(line) = line_of(out, py_signature()).or_else(|| line_of(out, node_not_function())) {
            return Some(named("a call does not fit the signature", line));
        }
        if let Some(line) = line_of(out, mypy_signature()).or_else(|| line_of(out, mypy_in_test())) {
            return Some(named("a call does not fit the signature", line));
        }
        for line in out.lines() {
            if let Some(c) = py_cannot_import().captures(line) {
                return Some(named(&format!("`{}` is not defined in `{}`", &c[1], &c[2]), line));
            }
            if let Some(c) = py_attribute().captures(line) {
                let attr = &c[4];
                // A missing name is the interface when the contract (or the tests) name it; an
                // attribute of an object the code itself built wrong is a bug.
                let in_contract = d.contract_names.iter().any(|n| n == attr);
                let builtin = c.get(2).is_some_and(|t| {
                    matches!(t.as_str(), "NoneType" | "int" | "float" | "str" | "list" | "dict" | "tuple" | "bool" | "bytes" | "set")
                });
                if !builtin && (in_contract || c.get(1).is_some() || d.contract_names.is_empty()) {
                    return Some(named(&format!("`{attr}` is missing"), line));
                }
            }
        }
        if let Some(line) = line_of(out, rust_signature()).or_else(|| line_of(out, go_signature())) {
            return Some(named("a name or signature the tests use does not exist", line));
        }
        if let Some(line) = assertion_about_interface(out) {
            return Some(named("a test's assertion names the signature, type or interface", line));
        }
        None
    }

    /// The line of the first failed assertion whose message names a signature, a type or an
    /// interface (the seed's spec_mismatch row), when there is one. A word in quotes is a
    /// value (`{'type': 'limit'}`), not a name of the interface.
    fn assertion_about_interface(output: &str) -> Option<&str> {
        let lines: Vec<&str> = output.lines().collect();
        for (i, first) in lines.iter().enumerate() {
            if !assertion_start().is_match(first) || (first.trim_start().starts_with("error:") && !in_assertion_block(&lines, i)) {
                continue;
            }
            let block = lines[i..].iter().take(40).enumerate().take_while(|(k, l)| *k == 0 || !assertion_end().is_match(l));
            for (_, line) in block {
                if names_interface().find_iter(line).any(|m| !quoted(line, m.start(), m.end())) {
                    return Some(line.trim());
                }
            }
        }
        None
    }

    /// Whether the TAP `error:` field at `i` belongs to a failed assertion (its block names
    /// `AssertionError` before it ends).
    fn in_assertion_block(lines: &[&str], i: usize) -> bool {
        lines[i..].iter().take(60).take_while(|l| l.trim() != "...").any(|l| l.trim() == "name: 'AssertionError'")
    }

    fn quoted(line: &str, start: usize, end: usize) -> bool {
        let before = line[..start].chars().next_back();
        let after = line[end..].chars().next();
        matches!((before, after), (Some('\'' | '"'), Some('\'' | '"')))
    }

    fn implementation_bug(output: &str) -> Option<Found> {
        let bug = |what: &str, line: &str| Found::new("implementation_bug", what.to_owned(), vec![line.trim().to_owned()]);
        if let Some(line) = line_of(output, assertion()) {
            return Some(bug("a test's expectation is not met", line));
        }
        if let Some(line) = line_of(output, runtime_error()) {
            return Some(bug("the code fails at run time", line));
        }
        if let Some(line) = line_of(output, flake8()) {
            return Some(bug("the linter rejects the code", line));
        }
        if let Some(line) = line_of(output, mypy_error()) {
            return Some(bug("the type checker rejects the code", line));
        }
        if let Some(line) = line_of(output, compile_error()) {
            return Some(bug("the code does not compile", line));
        }
        None
    }

    /// The seed's keyword patterns, applied when nothing structured matched.
    pub(super) fn seed_keywords(output: &str) -> Option<Found> {
        const SEED: &[(&str, &[&str])] = &[
            ("missing_dependency", &["ImportError", "ModuleNotFoundError"]),
            ("implementation_bug", &["AssertionError", "ValueError", "calculation"]),
            ("timeout", &["timeout", "exceeded"]),
            ("spec_mismatch", &["signature", "interface"]),
        ];
        // Headers name plugins and settings ("plugins: timeout-2.4.0"), not failures.
        let header =
            |l: &str| ["plugins:", "rootdir:", "platform ", "configfile:", "cachedir:"].iter().any(|h| l.trim_start().starts_with(h));
        for (failure_type, keywords) in SEED {
            if let Some(line) = output.lines().filter(|l| !header(l)).find(|l| keywords.iter().any(|k| l.contains(k))) {
                return Some(Found::new(failure_type, format!("mentions {}", keywords.join(" / ")), vec![line.trim().to_owned()]));
            }
        }
        None
    }

    pub(super) fn fallback(d: &Diagnostics<'_>) -> Found {
        match line_of(d.output, test_summary()) {
            Some(line) => Found::new("test_failure", "tests failed without a more specific reason".into(), vec![line.to_owned()]),
            None => {
                let code = d.exit_code.map_or_else(|| "no exit code".to_owned(), |c| format!("exit {c}"));
                let last = d.output.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_owned());
                let summary = match &last {
                    None => format!("failed ({code}) without output"),
                    Some(_) => format!("failed ({code}); nothing in its output names a known cause (see the last line, and the log)"),
                };
                Found::new("unknown", summary, last.into_iter().collect())
            }
        }
    }
}

impl Classification {
    /// Debug instructions for a branch todo: what failed, the evidence, and the output's tail.
    pub fn instructions(&self, output: &str) -> String {
        let mut s = format!("Failure type: {} ({})\n", self.failure_type, self.summary);
        if !self.evidence.is_empty() {
            s.push_str("Evidence:\n");
            for e in &self.evidence {
                let _ = writeln!(s, "  {e}");
            }
        }
        let tail: Vec<&str> = output.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        if !tail.is_empty() {
            s.push_str("Last lines of the output:\n");
            for line in tail {
                let _ = writeln!(s, "  {line}");
            }
        }
        s
    }
}

/// The safe quick fix for a missing Python module: the requirement line to add (the PyPI name
/// where it differs from the import name), or `None` when the module looks like the project's
/// own code.
pub fn python_requirement(module: &str, project_files: &[String]) -> Option<String> {
    let top = module.split('.').next().unwrap_or(module);
    let own = project_files.iter().any(|f| f == &format!("{top}.py") || f.starts_with(&format!("{top}/")));
    if own || top.is_empty() {
        return None;
    }
    let name = match top {
        "yaml" => "PyYAML",
        "cv2" => "opencv-python",
        "PIL" => "Pillow",
        "sklearn" => "scikit-learn",
        "bs4" => "beautifulsoup4",
        "dateutil" => "python-dateutil",
        "dotenv" => "python-dotenv",
        "jwt" => "PyJWT",
        "attr" => "attrs",
        other => other,
    };
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(output: &str) -> Classification {
        Triage::default().classify(&Diagnostics { output, exit_code: Some(1), ..Default::default() })
    }

    #[test]
    fn a_missing_module_is_a_missing_dependency_named() {
        let c = classify(
            "Traceback (most recent call last):\n  File \"t.py\", line 1, in <module>\n    import numpy\nModuleNotFoundError: No module named 'numpy'\n",
        );
        assert_eq!((c.failure_type.as_str(), c.target_agent, c.auto_fixable), ("missing_dependency", Role::Coder, true));
        assert_eq!(c.missing.as_deref(), Some("numpy"));
        assert_eq!(c.evidence, ["ModuleNotFoundError: No module named 'numpy'"]);
    }

    #[test]
    fn signature_errors_are_spec_mismatches() {
        for out in [
            "TypeError: sma() got an unexpected keyword argument 'period'",
            "TypeError: crossover_signals() missing 1 required positional argument: 'slow'",
            "ImportError: cannot import name 'SmaStrategy' from 'strategy.sma' (/w/strategy/sma.py)",
            "error[E0061]: this function takes 2 arguments but 1 argument was supplied",
            "t.py:3: error: Too many arguments for \"f\"  [call-arg]",
        ] {
            let c = classify(out);
            assert_eq!((c.failure_type.as_str(), c.target_agent), ("spec_mismatch", Role::Architect), "{out}");
        }
    }

    #[test]
    fn a_missing_attribute_is_a_mismatch_when_the_contract_names_it() {
        let out = "AttributeError: 'SmaCrossoverStrategy' object has no attribute 'generate_signals'";
        let d = |names: Vec<String>| Diagnostics { output: out, contract_names: names, ..Default::default() };
        assert_eq!(Triage::default().classify(&d(vec!["generate_signals".into()])).failure_type, "spec_mismatch");
        assert_eq!(Triage::default().classify(&d(vec!["other".into()])).failure_type, "implementation_bug");
    }

    #[test]
    fn an_assertion_whose_message_names_a_signature_type_or_interface_is_a_spec_mismatch() {
        for out in [
            "AssertionError: Lists differ: ['prices', 'window'] != ['prices', 'period']\n\n+ ['prices', 'period']\n : rsi's signature does not match the contract\n\n------",
            "AssertionError: (None, 1, 2, 3) is not an instance of <class 'list'>",
            "AssertionError: False is not true : MomentumStrategy does not implement the Strategy interface: no reset()",
            "E       assert False\nE        +  where False = isinstance(9.5, int)\n\ntest_sizing.py:6: AssertionError",
            "  error: 'wrong return type: expected an array of candles, got Map'\n  code: 'ERR_ASSERTION'\n  name: 'AssertionError'\n  ...",
            "panicked at 'assertion failed: `(left == right)`\n  left: `1`,\n right: `2`: returns() must return Vec<f64>, the contract's return type'",
        ] {
            let c = classify(out);
            assert_eq!((c.failure_type.as_str(), c.target_agent), ("spec_mismatch", Role::Architect), "{out}");
        }
        // A word of the table as a value, a failure outside an assertion, and a message about a
        // calculation stay bugs.
        for out in [
            "AssertionError: {'type': 'limit', 'qty': 4} != {'type': 'limit', 'qty': 5}",
            "AssertionError: 998.0 != 999.0 within 6 places (1.0 difference) : fee calculation is off",
            "TypeError: unsupported operand type(s) for *: 'str' and 'float'",
        ] {
            assert_eq!(classify(out).failure_type, "implementation_bug", "{out}");
        }
        // A TAP `error:` that is no failed assertion says nothing about the interface.
        let thrown = "  error: 'the type is wrong'\n  code: 'ERR_TEST_FAILURE'\n  name: 'Error'\n  ...\nnot ok 1";
        assert_ne!(classify(thrown).failure_type, "spec_mismatch");
    }

    #[test]
    fn an_import_error_that_names_a_package_is_a_missing_dependency() {
        let c = classify(
            "ImportError: Failed to import test module: t\nImportError: Missing optional dependency 'numpy'. Use pip to install numpy.",
        );
        assert_eq!((c.failure_type.as_str(), c.missing.as_deref(), c.auto_fixable), ("missing_dependency", Some("numpy"), true));
        assert_eq!(classify("E   ImportError: scipy is required: pip install scipy").missing.as_deref(), Some("scipy"));
        // The project's own import mistakes are not packages to install.
        assert_ne!(classify("ImportError: attempted relative import with no known parent package").failure_type, "missing_dependency");
        assert_eq!(classify("ImportError: cannot import name 'ema' from 'indicators' (/w/indicators.py)").failure_type, "spec_mismatch");
    }

    #[test]
    fn failed_expectations_and_crashes_are_bugs() {
        for out in [
            "AssertionError: Lists differ: [None, 2.0] != [None, 1.5]",
            "thread 'sma' panicked at src/lib.rs:4:9:\nassertion `left == right` failed",
            "ZeroDivisionError: division by zero",
            "app.py:3:1: F821 undefined name 'pd'",
        ] {
            assert_eq!(classify(out).failure_type, "implementation_bug", "{out}");
        }
    }

    #[test]
    fn deadlines_reruns_and_silence() {
        let t = Triage::default();
        let timed = t.classify(&Diagnostics { output: "", timed_out: true, timeout: Some(30.0), ..Default::default() });
        assert_eq!((timed.failure_type.as_str(), timed.summary.as_str()), ("timeout", "killed at the deadline of 30s"));
        let over = t.classify(&Diagnostics { output: "", duration: Some(31.0), timeout: Some(30.0), ..Default::default() });
        assert_eq!(over.failure_type, "timeout");
        let flaky = t.classify(&Diagnostics { output: "AssertionError", rerun_passed: true, ..Default::default() });
        assert_eq!((flaky.failure_type.as_str(), flaky.target_agent), ("flaky_test", Role::Tester));
        assert_eq!(classify("Ran 3 tests\nFAILED (failures=1)").failure_type, "test_failure");
        let unknown = classify("");
        assert_eq!((unknown.failure_type.as_str(), unknown.summary.as_str()), ("unknown", "failed (exit 1) without output"));
        let unexplained = classify("collecting ...\nsomething odd happened");
        assert_eq!(unexplained.summary, "failed (exit 1); nothing in its output names a known cause (see the last line, and the log)");
        assert_eq!(unexplained.evidence, ["something odd happened"]);
        let infra = t.classify(&Diagnostics { infrastructure: Some("bwrap: No permissions"), ..Default::default() });
        assert_eq!(infra.failure_type, "infrastructure");
    }

    #[test]
    fn configured_patterns_add_types_and_override_routing() {
        let mut patterns = BTreeMap::new();
        patterns.insert(
            "segfault".to_owned(),
            FailurePattern { keywords: vec!["Segmentation fault".into()], target_agent: Some(Role::Debugger), ..Default::default() },
        );
        patterns.insert("timeout".to_owned(), FailurePattern { target_agent: Some(Role::Coder), ..Default::default() });
        let t = Triage::new(&patterns).unwrap();
        let seg = t.classify(&Diagnostics { output: "x\nSegmentation fault (core dumped)\n", ..Default::default() });
        assert_eq!((seg.failure_type.as_str(), seg.target_agent), ("segfault", Role::Debugger));
        assert_eq!(seg.evidence, ["Segmentation fault (core dumped)"]);
        let to = t.classify(&Diagnostics { timed_out: true, ..Default::default() });
        assert_eq!(to.target_agent, Role::Coder);
        let bad = BTreeMap::from([("x".to_owned(), FailurePattern { regexes: vec!["(".into()], ..Default::default() })]);
        assert!(Triage::new(&bad).unwrap_err().to_string().starts_with("failure_patterns.x: regex `(`"));
    }

    #[test]
    fn quick_fixes_name_the_package_not_the_project() {
        assert_eq!(python_requirement("yaml", &[]).as_deref(), Some("PyYAML"));
        assert_eq!(python_requirement("numpy.linalg", &[]).as_deref(), Some("numpy"));
        assert_eq!(python_requirement("strategy.indicators", &["strategy/__init__.py".into()]), None);
    }
}
