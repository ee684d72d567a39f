//! `plancd triage`: classify a failure log the way the engine does.

use std::path::Path;

use crate::config::Config;
use crate::spec::{Diagnostic, DirSource};
use crate::triage::{Classification, Diagnostics, PatternError, Triage};

/// What is known of the failure besides its output.
#[derive(Debug, Clone, Default)]
pub struct TriageOptions {
    /// The exit code.
    pub exit_code: Option<i32>,
    /// How long it ran, seconds.
    pub duration: Option<f64>,
    /// Its deadline, seconds.
    pub timeout: Option<f64>,
    /// Whether an immediate re-run passed.
    pub rerun_passed: bool,
}

/// Why triage could not run.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// The repository's plancd.yaml is invalid.
    #[error("plancd.yaml is invalid")]
    Config(Vec<Diagnostic>),
    /// A configured pattern is invalid.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// Classifies `output`, with the `failure_patterns` of the plancd.yaml in `repo` (if any).
pub fn triage(repo: &Path, output: &str, opts: &TriageOptions) -> Result<Classification, TriageError> {
    let root = super::validate::repository_root(repo);
    let config = Config::load(&DirSource::new(root)).map_err(TriageError::Config)?.0;
    let triage = Triage::new(&config.failure_patterns)?;
    Ok(triage.classify(&Diagnostics {
        output,
        exit_code: opts.exit_code,
        timed_out: false,
        duration: opts.duration,
        timeout: opts.timeout,
        rerun_passed: opts.rerun_passed,
        ..Diagnostics::default()
    }))
}
