//! `plancd validate`: check plan, contract and configuration files without running anything,
//! with the same checks `diff`, the pull request preview and `reconcile` make (spec::load_specs).

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::spec::{
    CheckContext, Diagnostic, DirSource, FileKind, FileSource, Schema, Specs, classify, load_contract, load_plan, load_specs,
    load_specs_in, parse_checked,
};

/// What to validate.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Files or folders. Empty: the repository around `cwd`, by its configuration's globs.
    pub paths: Vec<PathBuf>,
    /// The directory relative paths are read against.
    pub cwd: PathBuf,
}

/// One file that was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedFile {
    /// As shown in diagnostics.
    pub path: String,
    /// Plan, contract or configuration.
    pub kind: FileKind,
}

/// The outcome: every file checked and every problem found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidateReport {
    /// Whether no errors were found (warnings allowed).
    pub valid: bool,
    /// The files checked.
    pub files: Vec<CheckedFile>,
    /// The problems, by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl ValidateReport {
    /// How many errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// How many warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Why validation could not run at all (as opposed to finding problems).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A path does not exist.
    #[error("`{0}` does not exist")]
    NotFound(PathBuf),
    /// Reading failed.
    #[error("cannot read `{path}`")]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Validates what `opts` names.
pub fn validate(opts: &ValidateOptions) -> Result<ValidateReport, ValidateError> {
    let mut report = ValidateReport::default();
    if opts.paths.is_empty() {
        let root = repository_root(&opts.cwd);
        validate_repository(&root, &display_prefix(&opts.cwd, &root), &mut report)?;
    }
    for given in &opts.paths {
        let full = opts.cwd.join(given);
        let meta = std::fs::metadata(&full).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ValidateError::NotFound(given.clone()),
            _ => ValidateError::Io { path: given.clone(), source: e },
        })?;
        let root = repository_root(if meta.is_dir() { &full } else { full.parent().unwrap_or(&full) });
        if meta.is_dir() && same_dir(&root, &full) {
            validate_repository(&root, &display_prefix(&opts.cwd, &root), &mut report)?;
        } else {
            validate_files(&full, &root, &display_prefix(&opts.cwd, &root), &mut report)?;
        }
    }
    report.diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    report.diagnostics.dedup();
    report.files.dedup();
    report.valid = report.errors() == 0;
    Ok(report)
}

/// The repository around `dir`: the nearest ancestor with `plancd.yaml` or `.git`, else `dir`.
pub fn repository_root(dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.ancestors()
        .find(|d| crate::config::CONFIG_FILES.iter().any(|f| d.join(f).is_file()) || d.join(".git").exists())
        .map_or_else(|| dir.clone(), Path::to_path_buf)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    b.canonicalize().is_ok_and(|b| b == a)
}

/// How to show paths under `root` to someone in `cwd`: relative when inside it.
fn display_prefix(cwd: &Path, root: &Path) -> String {
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    match root.strip_prefix(&cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => String::new(),
        Ok(rel) => format!("{}/", rel.display()),
        Err(_) => format!("{}/", root.display()),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ValidateError + '_ {
    move |source| ValidateError::Io { path: path.to_path_buf(), source }
}

fn validate_repository(root: &Path, prefix: &str, report: &mut ValidateReport) -> Result<(), ValidateError> {
    validate_source_into(&DirSource::new(root), prefix, report).map_err(io_err(root))
}

/// Validates the repository `source` holds as `plancd validate` does a folder with its
/// configuration: for files that are not (or not yet) on disk.
pub fn validate_source(source: &dyn FileSource) -> io::Result<ValidateReport> {
    let mut report = ValidateReport::default();
    validate_source_into(source, "", &mut report)?;
    report.diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    report.valid = report.errors() == 0;
    Ok(report)
}

fn validate_source_into(source: &dyn FileSource, prefix: &str, report: &mut ValidateReport) -> io::Result<()> {
    let specs: Specs = match Config::load(source) {
        Ok((config, name)) => {
            if let Some(name) = name {
                report.files.push(CheckedFile { path: format!("{prefix}{name}"), kind: FileKind::Config });
            }
            load_specs(source, &config)
        }
        Err(diags) => {
            // The plans are still checked, but not against a configuration that cannot be read.
            report.files.push(CheckedFile { path: format!("{prefix}plancd.yaml"), kind: FileKind::Config });
            report.diagnostics.extend(diags.into_iter().map(|d| prefixed(d, prefix)));
            load_specs_in(source, &Config::default(), &CheckContext::without_config(source))
        }
    }?;
    report.files.extend(specs.checked.into_iter().map(|(path, kind)| CheckedFile { path: format!("{prefix}{path}"), kind }));
    report.diagnostics.extend(specs.diagnostics.into_iter().map(|d| prefixed(d, prefix)));
    Ok(())
}

/// Checks a file, or every YAML and JSON file under a folder, against the repository `root`
/// (where contract and test paths are resolved).
fn validate_files(target: &Path, root: &Path, prefix: &str, report: &mut ValidateReport) -> Result<(), ValidateError> {
    let source = DirSource::new(root);
    let config = Config::load(&source).map(|(c, _)| c).ok();
    let cx = config.as_ref().map_or_else(|| CheckContext::without_config(&source), |c| CheckContext::new(&source, c));
    let target = target.canonicalize().map_err(io_err(target))?;
    let rel_target = target.strip_prefix(root).unwrap_or(&target).to_string_lossy().replace('\\', "/");
    let files: Vec<String> = if target.is_dir() {
        let all = source.files().map_err(io_err(root))?;
        all.into_iter()
            .filter(|f| rel_target.is_empty() || f.starts_with(&format!("{rel_target}/")))
            .filter(|f| [".yaml", ".yml", ".json"].iter().any(|ext| f.ends_with(ext)))
            .collect()
    } else {
        vec![rel_target]
    };
    for rel in files {
        let bytes = std::fs::read(root.join(&rel)).map_err(io_err(&root.join(&rel)))?;
        let kind = classify(&rel, &bytes);
        let diags = match kind {
            FileKind::Plan => load_plan(&rel, &bytes, &cx).1,
            FileKind::Contract => load_contract(&rel, &bytes).1,
            FileKind::Config => match parse_checked::<Config>(&rel, &bytes, Schema::Config) {
                (Some((config, _)), diags) if diags.is_empty() => config.checked(&rel).err().unwrap_or_default(),
                (_, diags) => diags,
            },
            FileKind::Scripted => parse_checked::<crate::agent::model::scripted::Script>(&rel, &bytes, Schema::Scripted).1,
        };
        report.files.push(CheckedFile { path: format!("{prefix}{rel}"), kind });
        report.diagnostics.extend(diags.into_iter().map(|d| prefixed(d, prefix)));
    }
    Ok(())
}

fn prefixed(mut d: Diagnostic, prefix: &str) -> Diagnostic {
    d.file = format!("{prefix}{}", d.file);
    d
}
