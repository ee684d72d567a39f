//! `plancd init`: starts plancd in an existing repository. Detects the project and its test
//! command, reads the environment its other tools declare, and writes plancd.yaml, an example
//! plan and the offline model's replies — checked as `plancd validate` checks them before
//! anything is written.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::init::files::{self, Inputs, PLAN_FILE, REPLIES_FILE};
use crate::init::{DetectedEnvironment, Project, Root, detect, from_conventions};
use crate::ops::validate::{ValidateReport, repository_root, validate_source};
use crate::spec::{Diagnostic, DirSource, FileSource, Schema, parse_checked};

/// What to initialise.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// A folder in the repository.
    pub cwd: PathBuf,
    /// Print what would be written; write nothing.
    pub dry_run: bool,
    /// Replace files that exist.
    pub force: bool,
}

/// One file `plancd init` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitFile {
    /// Relative to the repository's root.
    pub path: String,
    /// The content.
    pub content: String,
    /// Whether a file is there already (replaced only with `--force`).
    pub exists: bool,
}

/// What `plancd init` found and wrote.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The repository's root.
    pub root: PathBuf,
    /// The detected project.
    pub project: Project,
    /// What the repository's dev container or Copilot setup steps declare, if it has either.
    pub conventions: Option<DetectedEnvironment>,
    /// The environment written to plancd.yaml.
    pub environment: DetectedEnvironment,
    /// The files, in the order they are written.
    pub files: Vec<InitFile>,
    /// Whether they were written (not with `--dry-run`).
    pub written: bool,
    /// The files checked as `plancd validate` checks the repository.
    pub validation: ValidateReport,
}

/// Why `plancd init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// No project plancd knows.
    #[error(
        "no project found in `{}`: plancd init knows Python (pyproject.toml, setup.cfg, setup.py, requirements*.txt), Node (package.json), Rust (Cargo.toml) and Go (go.mod)",
        root.display()
    )]
    NoProject {
        /// Where it looked.
        root: PathBuf,
    },
    /// Files would be replaced.
    #[error("{} already exist{}: nothing was written (pass --force to replace)", files.join(", "), if files.len() == 1 { "s" } else { "" })]
    Exists {
        /// The files that exist.
        files: Vec<String>,
    },
    /// Reading or writing failed.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Runs `plancd init`.
pub fn init(opts: &InitOptions) -> Result<InitReport, InitError> {
    let root = repository_root(&opts.cwd);
    let entries = root_entries(&root)?;
    let read = |path: &str| -> Option<Vec<u8>> {
        crate::spec::relative_path_problem(path).is_none().then(|| std::fs::read(root.join(path)).ok()).flatten()
    };
    let project = detect(&Root::new(&entries, &read)).ok_or_else(|| InitError::NoProject { root: root.clone() })?;
    let conventions = from_conventions(read);
    let environment = choose_environment(&project, conventions.as_ref());
    let branch = current_branch(&root);
    let notes_file =
        ["TESTING.md", "docs/testing.md", "PLANCD_TESTING.md"].into_iter().find(|f| !root.join(f).exists()).unwrap_or("TESTING.md");
    let inputs = Inputs { project: &project, environment: &environment, branch: &branch, notes_file };
    let files: Vec<InitFile> =
        [("plancd.yaml", files::config(&inputs)), (PLAN_FILE, files::plan(&inputs)), (REPLIES_FILE, files::replies(&inputs))]
            .into_iter()
            .map(|(path, content)| InitFile { path: path.to_owned(), content, exists: root.join(path).exists() })
            .collect();
    let mut existing: Vec<String> = files.iter().filter(|f| f.exists).map(|f| f.path.clone()).collect();
    if root.join("plancd.yml").exists() {
        existing.push("plancd.yml".to_owned());
    }
    if !existing.is_empty() && !opts.force {
        return Err(InitError::Exists { files: existing });
    }
    let validation = validate(&root, &files).map_err(|source| InitError::Io { action: "read", path: root.clone(), source })?;
    if !opts.dry_run {
        for file in &files {
            write(&root.join(&file.path), &file.content)?;
        }
    }
    Ok(InitReport { root, project, conventions, environment, files, written: !opts.dry_run, validation })
}

/// The project's environment, or the setup a dev container or Copilot's setup steps declare
/// (with their image), keyed by the files of both.
pub fn choose_environment(project: &Project, conventions: Option<&DetectedEnvironment>) -> DetectedEnvironment {
    let mut env = project.environment.clone();
    env.source = format!("the {} project's files", project.language);
    let Some(found) = conventions else { return env };
    if found.image.is_some() {
        env.image.clone_from(&found.image);
    }
    if !found.setup.is_empty() {
        env.setup.clone_from(&found.setup);
        env.source = format!("the setup commands of {}", found.source);
        env.network.extend(found.network.iter().cloned());
    }
    for key in &found.cache {
        if !env.cache.contains(key) {
            env.cache.push(key.clone());
        }
    }
    env
}

fn root_entries(root: &Path) -> Result<Vec<String>, InitError> {
    let io = |source| InitError::Io { action: "read", path: root.to_path_buf(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let dir = entry.file_type().map_err(io)?.is_dir();
        out.push(if dir { format!("{name}/") } else { name });
    }
    out.sort();
    Ok(out)
}

/// The branch HEAD names (even before the first commit), else `main`.
fn current_branch(root: &Path) -> String {
    git2::Repository::open(root)
        .ok()
        .and_then(|repo| repo.find_reference("HEAD").ok().and_then(|h| h.symbolic_target().ok().flatten().map(str::to_owned)))
        .and_then(|target| target.strip_prefix("refs/heads/").map(str::to_owned))
        .unwrap_or_else(|| "main".to_owned())
}

/// Checks the repository as it will be once `files` are written.
fn validate(root: &Path, files: &[InitFile]) -> io::Result<ValidateReport> {
    let overlay =
        Overlay { base: DirSource::new(root), files: files.iter().map(|f| (f.path.clone(), f.content.clone().into_bytes())).collect() };
    let mut report = validate_source(&overlay)?;
    let replies = files.iter().find(|f| f.path == REPLIES_FILE).map(|f| f.content.as_bytes()).unwrap_or_default();
    let (_, diags) = parse_checked::<crate::agent::model::scripted::Script>(REPLIES_FILE, replies, Schema::Scripted);
    report.diagnostics.extend(diags);
    report.valid = !report.diagnostics.iter().any(Diagnostic::is_error);
    Ok(report)
}

fn write(path: &Path, content: &str) -> Result<(), InitError> {
    let io = |source| InitError::Io { action: "write", path: path.to_path_buf(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, content).map_err(io)
}

/// A directory with some files replaced or added in memory.
struct Overlay {
    base: DirSource,
    files: BTreeMap<String, Vec<u8>>,
}

impl FileSource for Overlay {
    fn describe(&self) -> String {
        self.base.describe()
    }

    fn read(&self, path: &str) -> io::Result<Option<Vec<u8>>> {
        match self.files.get(path) {
            Some(bytes) => Ok(Some(bytes.clone())),
            None => self.base.read(path),
        }
    }

    fn is_file(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.base.is_file(path)
    }

    fn files(&self) -> io::Result<Vec<String>> {
        let mut all = self.base.files()?;
        all.extend(self.files.keys().cloned());
        all.sort();
        all.dedup();
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::detect::Language;

    fn project(setup: &[&str]) -> Project {
        Project {
            language: Language::Python,
            test_command: "python3 -m pytest -q".into(),
            environment: DetectedEnvironment {
                setup: setup.iter().map(|s| (*s).to_owned()).collect(),
                cache: vec!["pyproject.toml".into()],
                network: vec!["pypi.org".into()],
                ..DetectedEnvironment::default()
            },
            reasons: Vec::new(),
        }
    }

    #[test]
    fn a_conventions_setup_and_image_win_and_both_key_the_cache() {
        let detected = project(&["python3 -m venv /env"]);
        type Row<'a> = (Option<DetectedEnvironment>, Vec<&'a str>, Option<&'a str>, Vec<&'a str>, &'a str);
        let rows: [Row<'_>; 3] = [
            (None, vec!["python3 -m venv /env"], None, vec!["pyproject.toml"], "the Python project's files"),
            (
                Some(DetectedEnvironment {
                    setup: vec!["pip install -e ."].into_iter().map(String::from).collect(),
                    image: Some("python:3.12".into()),
                    cache: vec![".devcontainer/devcontainer.json".into(), "pyproject.toml".into()],
                    source: ".devcontainer/devcontainer.json".into(),
                    ..DetectedEnvironment::default()
                }),
                vec!["pip install -e ."],
                Some("python:3.12"),
                vec!["pyproject.toml", ".devcontainer/devcontainer.json"],
                "the setup commands of .devcontainer/devcontainer.json",
            ),
            (
                Some(DetectedEnvironment {
                    image: Some("python:3.11".into()),
                    cache: vec![".devcontainer.json".into()],
                    source: ".devcontainer.json".into(),
                    ..DetectedEnvironment::default()
                }),
                vec!["python3 -m venv /env"],
                Some("python:3.11"),
                vec!["pyproject.toml", ".devcontainer.json"],
                "the Python project's files",
            ),
        ];
        for (conventions, setup, image, cache, source) in rows {
            let env = choose_environment(&detected, conventions.as_ref());
            assert_eq!((env.setup.iter().map(String::as_str).collect::<Vec<_>>(), env.image.as_deref()), (setup, image));
            assert_eq!((env.cache.iter().map(String::as_str).collect::<Vec<_>>(), env.source.as_str()), (cache, source));
            assert_eq!(env.network, ["pypi.org"]);
        }
    }
}
