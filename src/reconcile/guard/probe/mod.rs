//! The probe: an acceptance command run once more, after it passed, with a test that cannot
//! pass appended to the pinned test files it runs. A command that still exits 0 does not judge
//! the code: a shadowed runner, a hook that rewrites outcomes, or code under test that forces
//! the exit status. Planned from one table of runners ([`PROBE_RUNNERS`]: Python's unittest,
//! pytest and scripts; node's test runner, scripts, jest, vitest and mocha, through package
//! scripts and `npx` too; `go test`; `cargo test`). A command the planner cannot be sure runs
//! the pinned files, with the added test reached and counted, is skipped with a note, never
//! failed: a probe that wrongly passes would refuse honest work.
//!
//! There is no fallback for runners the table does not know: a command that names a test file
//! need not run it (a linter, a type checker, `node --check`, `grep`), and a probe that such a
//! command passes would be a false `TestTampering`.

mod cargo;
mod go;
mod node;
mod python;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use plancd_sandbox::FileEntry;

use crate::reconcile::input::Input;

/// A probe to run: the command, and the pinned files with the failing test added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The acceptance command, unchanged.
    pub cmd: String,
    /// The pinned test files it runs, each with a failing test appended.
    pub files: Vec<FileEntry>,
    /// Text the failing test's message holds.
    pub marker: String,
}

/// What to do with one acceptance command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbePlan {
    /// Run it against the probe; it must fail.
    Run(Probe),
    /// No probe for it, and why.
    Skip(String),
}

/// The environment tests and probes run with: a `$HOME` the agent never saw (it may have left
/// `~/.npmrc`, `~/.config/go/env`, `~/.cargo/config.toml` or a user site-package in the
/// session's), no user site-packages, and bytecode caches kept outside the workspace (a forged
/// `__pycache__` entry would replace a pinned test).
pub fn probe_env(tag: &str) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), format!("/tmp/.plancd-home-{tag}")),
        ("PYTHONNOUSERSITE".into(), "1".into()),
        ("PYTHONPYCACHEPREFIX".into(), format!("/tmp/.plancd-pycache-{tag}")),
    ]
}

/// One runner the probe knows: how a command calls it, which pinned files it certainly runs,
/// and the test that cannot pass, in the syntax it collects.
#[derive(Debug, Clone, Copy)]
pub struct ProbeRunner {
    /// How logs and skip notes name it.
    pub name: &'static str,
    /// How a command calls it.
    pub calls: Calls,
    /// The pinned files a call certainly runs, or why the probe cannot know.
    targets: fn(&Call<'_>) -> Result<Vec<String>, String>,
    /// The failing test appended to each of them.
    pub test: FailingTest,
}

/// How a command calls a runner (after `VAR=value` words, and after the package scripts and
/// `npx` that `node::launched` unwraps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calls {
    /// A program, by its file name (`./node_modules/.bin/jest` is `jest`).
    Program(&'static [&'static str]),
    /// A program's subcommand: `go test`.
    Subcommand(&'static str, &'static str),
    /// `python [options] -m MODULE`.
    PythonModule(&'static str),
    /// `node [options] --test`.
    NodeTest,
    /// An interpreter running a file itself: `python3 FILE`, `node FILE`.
    Script(Interpreter),
}

/// An interpreter that runs a file given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpreter {
    /// `python`, `python3`, `python3.12`.
    Python,
    /// `node`, `nodejs`.
    Node,
}

/// The test that cannot pass, by the syntax a runner collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailingTest {
    /// A `unittest.TestCase` (pytest collects those too).
    Unittest,
    /// A script's own failure: a test case before its closing `unittest.main()`, or a failing
    /// statement at its end.
    PythonScript,
    /// A `node:test` test, required or imported as the file's module system wants.
    NodeTest,
    /// A `node:test` test when the file uses `node:test`, else a `throw` at its end.
    NodeScript,
    /// jest's global `test`.
    Jest,
    /// vitest's `test`, imported.
    Vitest,
    /// mocha's global `it`.
    Mocha,
    /// A `func TestX(t *testing.T)` that fails.
    Go,
    /// A `#[test] fn` that panics.
    Rust,
}

/// The runners the probe knows, one row each, tried in order (the first that matches a
/// command plans its probe). Add a row to probe another runner.
pub const PROBE_RUNNERS: &[ProbeRunner] = &[
    runner("python -m unittest", Calls::PythonModule("unittest"), python::unittest, FailingTest::Unittest),
    runner("python -m pytest", Calls::PythonModule("pytest"), python::pytest, FailingTest::Unittest),
    runner("pytest", Calls::Program(&["pytest", "py.test"]), python::pytest, FailingTest::Unittest),
    runner("python FILE", Calls::Script(Interpreter::Python), python::script, FailingTest::PythonScript),
    runner("node --test", Calls::NodeTest, node::node_test, FailingTest::NodeTest),
    runner("node FILE", Calls::Script(Interpreter::Node), node::script, FailingTest::NodeScript),
    runner("jest", Calls::Program(&["jest"]), node::jest, FailingTest::Jest),
    runner("vitest", Calls::Program(&["vitest"]), node::vitest, FailingTest::Vitest),
    runner("mocha", Calls::Program(&["mocha", "_mocha"]), node::mocha, FailingTest::Mocha),
    runner("go test", Calls::Subcommand("go", "test"), go::go_test, FailingTest::Go),
    runner("cargo test", Calls::Subcommand("cargo", "test"), cargo::cargo_test, FailingTest::Rust),
];

const fn runner(name: &'static str, calls: Calls, targets: fn(&Call<'_>) -> Result<Vec<String>, String>, test: FailingTest) -> ProbeRunner {
    ProbeRunner { name, calls, targets, test }
}

/// What a runner row reads: the arguments after the runner, the pinned files as committed, and
/// the input's files (configuration, package manifests).
pub(super) struct Call<'a> {
    pub args: &'a [&'a str],
    pub pinned: &'a [FileEntry],
    pub input: &'a Input,
}

impl Call<'_> {
    /// Every path of the input.
    pub fn paths(&self) -> BTreeSet<&str> {
        self.input.paths().collect()
    }

    /// The text of an input file.
    pub fn text(&self, path: &str) -> Option<String> {
        self.input.text(path)
    }
}

/// What an interpreter's arguments ask it to run.
pub(super) enum Interpreted<'a> {
    /// `-m MODULE ARGS`.
    Module(&'a str, Vec<&'a str>),
    /// `FILE ARGS`.
    File(Vec<&'a str>),
    /// `node --test ARGS` (`--test` left out).
    NodeTest(Vec<&'a str>),
    /// Anything else (`-c CODE`, an option the probe does not know).
    Other,
}

impl Calls {
    /// The arguments the runner gets when `program ARGS` calls it.
    fn matches<'a>(self, program: &str, args: &[&'a str]) -> Option<Vec<&'a str>> {
        match (self, interpreter(program)) {
            (Calls::Program(names), _) => names.contains(&program).then(|| args.to_vec()),
            (Calls::Subcommand(name, sub), _) => (program == name && args.first() == Some(&sub)).then(|| args[1..].to_vec()),
            (Calls::PythonModule(module), Some(Interpreter::Python)) => match python::interpreted(args) {
                Interpreted::Module(m, rest) if m == module => Some(rest),
                _ => None,
            },
            (Calls::NodeTest, Some(Interpreter::Node)) => match node::interpreted(args) {
                Interpreted::NodeTest(rest) => Some(rest),
                _ => None,
            },
            (Calls::Script(want), Some(got)) if want == got => {
                match if got == Interpreter::Python { python::interpreted(args) } else { node::interpreted(args) } {
                    Interpreted::File(rest) => Some(rest),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn interpreter(program: &str) -> Option<Interpreter> {
    match program {
        "python" | "python3" => Some(Interpreter::Python),
        p if p.strip_prefix("python3.").is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit())) => {
            Some(Interpreter::Python)
        }
        "node" | "nodejs" => Some(Interpreter::Node),
        _ => None,
    }
}

impl FailingTest {
    /// `file` with the failing test added, or why this file cannot take one that certainly runs.
    fn add(self, file: &FileEntry, input: &Input, tag: &str, marker: &str) -> Result<Vec<u8>, String> {
        let text = String::from_utf8(file.data.clone()).map_err(|_| "it is not UTF-8 text".to_owned())?;
        let added = match self {
            FailingTest::Unittest => format!("{text}{}", python::unittest_case(tag, marker)),
            FailingTest::PythonScript => python::script_test(&text, tag, marker)?,
            FailingTest::NodeTest | FailingTest::NodeScript | FailingTest::Jest | FailingTest::Vitest | FailingTest::Mocha => {
                node::with_test(self, &file.path, &text, input, tag, marker)?
            }
            FailingTest::Go => go::with_test(&text, tag, marker)?,
            FailingTest::Rust => cargo::with_test(&text, tag, marker)?,
        };
        Ok(added.into_bytes())
    }
}

/// Plans the probe of `cmd`, given the pinned files (as committed) and the input's files.
/// `tag` makes the failing test's name unpredictable.
/// A command that starts with `cd DIR && ` is planned as the rest of it sees the workspace
/// from DIR (see [`Input::within`]).
pub fn plan_probe(cmd: &str, pinned: &[FileEntry], input: &Input, tag: &str) -> ProbePlan {
    let marker = format!("plancd-probe-{tag}");
    let (dir, rest) = match crate::quality::cd_first(cmd).map(|(dir, rest)| (super::runner::enter("", dir), rest)) {
        Some((Some(dir), rest)) => (dir, rest),
        Some((None, _)) => return ProbePlan::Skip("the command changes to a folder outside the workspace".into()),
        None => (String::new(), cmd),
    };
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    let pinned: Vec<FileEntry> =
        pinned.iter().filter_map(|f| Some(FileEntry { path: f.path.strip_prefix(&prefix)?.to_owned(), ..f.clone() })).collect();
    let input = &input.within(&dir);
    let pinned = &pinned[..];
    let planned = words(rest).and_then(|words| choose(&words, pinned, input, 3)).and_then(|(runner, targets)| {
        let found: Vec<&FileEntry> = pinned.iter().filter(|f| targets.contains(&f.path)).collect();
        if found.is_empty() {
            return Err(format!("none of the files {} runs is a pinned test file", runner.name));
        }
        let mut files = Vec::new();
        let mut refused = Vec::new();
        for f in found {
            match runner.test.add(f, input, tag, &marker) {
                Ok(data) => files.push(FileEntry { path: format!("{prefix}{}", f.path), executable: f.executable, data }),
                Err(why) => refused.push(format!("{}: {why}", f.path)),
            }
        }
        if files.is_empty() {
            return Err(format!("no pinned file certainly runs a test added to it ({})", refused.join("; ")));
        }
        Ok(files)
    });
    match planned {
        Ok(files) => ProbePlan::Run(Probe { cmd: cmd.to_owned(), files, marker }),
        Err(why) => ProbePlan::Skip(why),
    }
}

/// The runner a command calls, and the pinned files it certainly runs. Package scripts and
/// `npx` are unwrapped first, `depth` times at most.
fn choose(words: &[String], pinned: &[FileEntry], input: &Input, depth: u8) -> Result<(&'static ProbeRunner, Vec<String>), String> {
    let mut rest = words.iter().map(String::as_str).skip_while(|w| is_assignment(w));
    let program = rest.next().ok_or("an empty command")?;
    let args: Vec<&str> = rest.collect();
    let name = program.rsplit('/').next().unwrap_or(program);
    if let Some(inner) = node::launched(name, &args, input)? {
        if depth == 0 {
            return Err("package scripts call each other too deep".into());
        }
        return choose(&inner, pinned, input, depth - 1);
    }
    for runner in PROBE_RUNNERS {
        if let Some(args) = runner.calls.matches(name, &args) {
            let targets = (runner.targets)(&Call { args: &args, pinned, input })?;
            return Ok((runner, targets));
        }
    }
    let known: Vec<&str> = PROBE_RUNNERS.iter().map(|r| r.name).collect();
    let called = match (interpreter(name), args.first()) {
        (Some(_), Some(first)) => format!("{name} {first}"),
        _ => name.to_owned(),
    };
    Err(format!("`{called}` is not a runner the probe knows ({})", known.join(", ")))
}

/// `text` with `failure` inserted after its last top-level line that `is_import` takes (after a
/// `#!` line when there is none): code under test loaded there runs first, the script's own
/// checks and ending after it.
fn after_imports(text: &str, is_import: fn(&str) -> bool, failure: &str) -> String {
    let mut at = if text.starts_with("#!") { text.find('\n').map_or(text.len(), |i| i + 1) } else { 0 };
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        if is_import(line.trim_end_matches(['\n', '\r'])) {
            at = offset;
        }
    }
    let (head, tail) = text.split_at(at);
    let newline = if head.is_empty() || head.ends_with('\n') { "" } else { "\n" };
    format!("{head}{newline}{failure}{tail}")
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The words of a simple command: quotes honoured; anything the shell would expand, redirect
/// or chain refused (the probe must know exactly what runs).
fn words(cmd: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = cmd.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('$' | '`' | '\\') if c == '"' => return Err("the command expands variables in quotes".into()),
                        Some(other) => w.push(other),
                        None => return Err("the command has an unclosed quote".into()),
                    }
                }
            }
            c if c.is_whitespace() => out.extend(word.take()),
            c if "|&;<>()$`\\*?[]{}~#!".contains(c) => {
                return Err(format!("the command is more than one simple command (`{c}`)"));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    Ok(out)
}
