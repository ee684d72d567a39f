//! Environments declared in plancd.yaml (`environment:`, `roles.<role>.environment:`): what keys
//! one, which commands probe the test runners before an agent runs, and which test output says
//! the environment (not the code) is lacking. All pure; [`store`] builds and caches them.
//!
//! The contract setup commands rely on: `/env` is the folder that persists (writable during
//! setup, read-only after), `/env/bin` comes first on PATH in every later command, and the
//! workspace is at `/workspace` during setup and in every attempt, so that
//! `python3 -m venv /env && /env/bin/pip install -e .` works, editable install included.

pub mod store;

use globset::{Glob, GlobSetBuilder};
use sha2::{Digest, Sha256};

use crate::config::{Config, EnvironmentConfig, SandboxBackend};
use crate::spec::Role;
use crate::state::Reason;

pub use store::{Environments, Got, SetupFailure};

/// Where an environment is mounted inside every session.
pub const MOUNT_POINT: &str = "/env";

/// PATH in a session with an environment: its `bin` first.
pub fn path_with_env() -> String {
    format!("{MOUNT_POINT}/bin:{}", plancd_sandbox::DEFAULT_PATH)
}

/// What an environment is built on and from: everything that goes into its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Basis<'a> {
    /// `process` or `docker`.
    pub backend: &'static str,
    /// The docker image, the process backend's root, or `host`.
    pub base: String,
    /// The environment's declaration; `None` for the bare sandbox.
    pub declared: Option<&'a EnvironmentConfig>,
}

impl<'a> Basis<'a> {
    /// The basis of `role`'s environment under `config`.
    pub fn of(config: &'a Config, role: Role) -> Basis<'a> {
        let declared = config.environment_for(role);
        let sandbox = &config.sandbox;
        let (backend, base) = match sandbox.backend {
            SandboxBackend::Process => ("process", sandbox.root.clone().map_or_else(|| "host".to_owned(), |r| format!("root:{r}"))),
            SandboxBackend::Docker => {
                ("docker", format!("image:{}", declared.and_then(|d| d.image.clone()).unwrap_or_else(|| sandbox.image.clone())))
            }
        };
        Basis { backend, base, declared }
    }

    /// The image its sessions run in on the docker backend, when the declaration names one
    /// (else the sandbox's); the process backend has none.
    pub fn image(&self) -> Option<&str> {
        (self.backend == "docker").then(|| self.declared.and_then(|d| d.image.as_deref())).flatten()
    }

    /// The globs of the files that key it.
    pub fn cache_globs(&self) -> &[String] {
        self.declared.map_or(&[], |d| &d.cache)
    }

    /// The key: a hash of the backend, the base, the setup commands and the content of the
    /// cache files (`files`: path and content, in any order; only those the globs match count).
    pub fn key(&self, files: &[(&str, &[u8])]) -> String {
        let matcher = matcher(self.cache_globs());
        let mut keyed: Vec<&(&str, &[u8])> = files.iter().filter(|(p, _)| matcher.is_match(p)).collect();
        keyed.sort_by_key(|(p, _)| *p);
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(b"plancd-environment/v1");
        field(self.backend.as_bytes());
        field(self.base.as_bytes());
        for cmd in self.declared.map_or(&[][..], |d| &d.setup) {
            field(b"setup");
            field(cmd.as_bytes());
        }
        for (path, data) in keyed {
            field(b"file");
            field(path.as_bytes());
            field(data);
        }
        format!("env-{}", &crate::spec::hex(&h.finalize())[..20])
    }

    /// Which of `paths` key the environment.
    pub fn cache_paths<'p>(&self, paths: impl IntoIterator<Item = &'p str>) -> Vec<&'p str> {
        let matcher = matcher(self.cache_globs());
        paths.into_iter().filter(|p| matcher.is_match(p)).collect()
    }
}

/// The cache globs as one matcher (globs were checked when the configuration loaded).
fn matcher(globs: &[String]) -> globset::GlobSet {
    let mut b = GlobSetBuilder::new();
    for g in globs.iter().filter_map(|g| Glob::new(g).ok()) {
        b.add(g);
    }
    b.build().unwrap_or_else(|_| globset::GlobSet::empty())
}

/// A command that checks, before any agent runs, that an acceptance test's runner is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerProbe {
    /// What the test needs: a program (`pytest`, `npm`) or a Python module (`pytest`).
    pub runner: String,
    /// A shell command that exits 0 when it is there.
    pub script: String,
    /// What to add to `environment.setup` when it is not.
    pub advice: String,
}

/// Programs that run tests, which the environment (never the agent) provides.
const RUNNERS: [&str; 16] =
    ["pytest", "py.test", "tox", "nox", "nose2", "npm", "npx", "node", "yarn", "pnpm", "jest", "vitest", "mocha", "cargo", "go", "make"];
/// Python modules run with `-m` that run tests.
const PY_RUNNERS: [&str; 6] = ["pytest", "nose2", "tox", "nox", "coverage", "hypothesis"];

/// The probe for an acceptance-test command's runner, when it names a known one: its first
/// word after variable assignments (`pytest`, `npm test`), or `python -m <runner>`. Programs
/// of the repository (`./run.sh`) and modules of unknown kind get none.
pub fn runner_probe(cmd: &str) -> Option<RunnerProbe> {
    let mut words = cmd.split_whitespace().skip_while(|w| w.contains('=') && !w.starts_with('-'));
    let program = words.next()?;
    let is_python = program.strip_prefix("python").is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'));
    if is_python && words.next() == Some("-m") {
        let module = words.next()?;
        if !PY_RUNNERS.contains(&module) {
            return None;
        }
        return Some(RunnerProbe {
            runner: module.to_owned(),
            script: format!("{program} -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(\"{module}\") is None)'"),
            advice: format!("install it, e.g. `{MOUNT_POINT}/bin/pip install {module}` after `python3 -m venv {MOUNT_POINT}`"),
        });
    }
    if !RUNNERS.contains(&program) && !is_python {
        return None;
    }
    let advice = match program {
        "npm" | "npx" | "node" | "yarn" | "pnpm" | "jest" | "vitest" | "mocha" => {
            "use an image with Node.js (environment.image) and `npm ci` in environment.setup".to_owned()
        }
        "cargo" | "go" | "make" => format!("use an image or root that has `{program}`"),
        _ => format!("install it, e.g. `{MOUNT_POINT}/bin/pip install {program}` after `python3 -m venv {MOUNT_POINT}`"),
    };
    Some(RunnerProbe { runner: program.to_owned(), script: format!("command -v {program} >/dev/null"), advice })
}

/// What test output says the environment lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lack {
    /// Always [`Reason::EnvironmentIncomplete`] for now: a setup that fails is found earlier.
    pub reason: Reason,
    /// The missing runner, module or package.
    pub missing: String,
    /// The line that says so.
    pub evidence: String,
    /// What the environment does wrong, when it has the thing in a version that does not do.
    pub wrong_version: bool,
}

impl Lack {
    /// What is wrong, for a sentence that begins "the environment ...".
    pub fn problem(&self) -> String {
        if self.wrong_version { format!("has a `{}` that refuses the tests", self.missing) } else { format!("lacks `{}`", self.missing) }
    }

    /// What to do about it in `environment.setup`.
    pub fn advice(&self) -> &'static str {
        if self.wrong_version { "pin the version the tests were written for (the project's test requirements)" } else { "install it" }
    }
}

/// Whether `output` (of failing acceptance tests) says the environment lacks something: a test
/// runner not found (`pytest: not found`, `No module named pytest`), a Python module that is no
/// module of the repository (`paths`: the files the tests ran on and the task's outputs; only
/// when `declared`, an environment exists whose setup could provide it), or a package whose
/// metadata is missing (the project itself not installed); or a test runner newer than the
/// tests, which turns its own deprecations into errors when it collects them.
pub fn lack_in(output: &str, paths: &[String], declared: bool) -> Option<Lack> {
    for line in output.lines().map(str::trim) {
        if runner_refuses(line) {
            return Some(Lack {
                reason: Reason::EnvironmentIncomplete,
                missing: "pytest".into(),
                evidence: line.to_owned(),
                wrong_version: true,
            });
        }
        let module = missing_module(line);
        let missing = not_found_program(line)
            .filter(|p| RUNNERS.contains(p) || PY_RUNNERS.contains(p))
            .or_else(|| module.filter(|m| PY_RUNNERS.contains(m)))
            .or_else(|| module.filter(|m| declared && !is_repo_module(m, paths)))
            .or_else(|| line.split("No package metadata was found for ").nth(1).map(str::trim));
        if let Some(missing) = missing.filter(|m| !m.is_empty()) {
            return Some(Lack {
                reason: Reason::EnvironmentIncomplete,
                missing: missing.to_owned(),
                evidence: line.to_owned(),
                wrong_version: false,
            });
        }
    }
    None
}

/// `E   pytest.PytestRemovedIn10Warning: ...`: pytest's own deprecation of what the tests do,
/// raised as an error (the project's `filterwarnings = error`) by a pytest newer than they are.
fn runner_refuses(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('E').map(str::trim_start) else { return false };
    rest.strip_prefix("pytest.PytestRemovedIn").is_some_and(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()).starts_with("Warning:"))
}

/// `sh: 1: pytest: not found`, `bash: npm: command not found`, `pytest: not found`.
fn not_found_program(line: &str) -> Option<&str> {
    let rest = line.strip_suffix(": not found").or_else(|| line.strip_suffix(": command not found"))?;
    rest.rsplit(": ").next().map(str::trim)
}

/// `ModuleNotFoundError: No module named 'x.y'` -> `x`; also `No module named pytest`.
fn missing_module(line: &str) -> Option<&str> {
    let rest = line.split("No module named ").nth(1)?;
    let name = rest.trim().trim_matches(|c| c == '\'' || c == '"');
    let top = name.split('.').next()?;
    let valid = !top.is_empty() && top.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(top)
}

/// Whether `module` is a module or package of the repository: `module.py` or `module/` at any
/// depth (a `src/` layout included).
fn is_repo_module(module: &str, paths: &[String]) -> bool {
    paths.iter().any(|p| p.split('/').any(|part| part == module || part.strip_suffix(".py") == Some(module)))
}

#[cfg(test)]
mod tests;
