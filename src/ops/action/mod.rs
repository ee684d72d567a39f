//! `plancd action`: plancd as a step of a GitHub Actions job. It reads the event that started
//! the job and does what it asks: a push to the watched branch reconciles; a pull request that
//! touches plan files gets a sticky plan preview (its plans with the base branch's
//! configuration, nothing run); `/plancd retry` (or a review asking for changes) on a result's
//! pull request or an escalation issue, and `/plancd approve` there or on a plan pull request, by
//! someone with write access, are recorded ([`command`]). The job summary, annotations and
//! outputs come from its report.

pub mod command;
pub mod event;
pub mod preview;
pub mod summary;

use std::path::{Path, PathBuf};

use git2::Oid;

use crate::config::{Config, Env};
use crate::forge;
use crate::ops::reconcile::{ReconcileError, ReconcileOptions, SandboxOpener};
use crate::reconcile::{EventSink, LoadError, PassReport, Upstream};
use crate::remote::RemoteError;
use crate::spec::{Diagnostic, TreeSource};
use crate::state::StateError;
pub use event::Event;

/// The state refs fetched before plancd looks at anything: task and workflow refs, results and
/// their tags, as the remote has them.
pub const STATE_REFSPECS: [&str; 3] =
    ["+refs/ai/*:refs/ai/*", "+refs/heads/ai/generated/*:refs/heads/ai/generated/*", "+refs/tags/ai/*:refs/tags/ai/*"];

/// What `plancd action` needs.
pub struct ActionOptions {
    /// The checked-out repository.
    pub repo: PathBuf,
    /// The environment: `GITHUB_*`, the token, `PLANCD_*`.
    pub env: Env,
    /// Opens the sandbox (a reconcile only).
    pub sandbox: SandboxOpener,
    /// Progress of a reconcile.
    pub events: Option<EventSink>,
    /// Flips to true to stop.
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

/// What the step did.
#[derive(Debug, Default)]
pub struct ActionReport {
    /// One line: what happened.
    pub headline: String,
    /// The pass, when one ran.
    pub pass: Option<PassReport>,
    /// Problems in the plans (shown as annotations).
    pub diagnostics: Vec<Diagnostic>,
    /// The job summary (Markdown).
    pub summary: String,
    /// Every result's pull request known after the step.
    pub pull_requests: Vec<String>,
}

impl ActionReport {
    fn ignored(why: String) -> ActionReport {
        ActionReport { summary: format!("## plancd\n\n{why}\n"), headline: why, ..ActionReport::default() }
    }

    /// Whether the plans were invalid and nothing ran (a pass that ran the valid workflows
    /// reports the invalid ones as stalled instead).
    pub fn invalid(&self) -> bool {
        self.pass.is_none() && self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Why the step could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// A `GITHUB_*` variable is missing or its file unreadable.
    #[error("{0}")]
    Environment(String),
    /// The configuration could not be read.
    #[error("{} error(s) in plancd.yaml", .0.len())]
    Config(Vec<Diagnostic>),
    /// A reconcile could not run.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    /// The forge or the remote failed.
    #[error(transparent)]
    Upstream(#[from] crate::reconcile::upstream::UpstreamError),
    /// The refs could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A management write was refused.
    #[error(transparent)]
    Manage(#[from] crate::ops::manage::ManageError),
    /// Git failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

impl From<RemoteError> for ActionError {
    fn from(e: RemoteError) -> Self {
        ActionError::Upstream(e.into())
    }
}

impl From<forge::ForgeError> for ActionError {
    fn from(e: forge::ForgeError) -> Self {
        ActionError::Upstream(e.into())
    }
}

impl ActionError {
    /// Whether the fault is in the input (exit 2) rather than an outside part (exit 3).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ActionError::Environment(_) | ActionError::Config(_) => true,
            ActionError::Reconcile(e) => e.is_bad_input(),
            ActionError::Manage(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

/// Does what the job's event asks.
pub async fn action(opts: ActionOptions) -> Result<ActionReport, ActionError> {
    let name = opts.env.get("GITHUB_EVENT_NAME").ok_or_else(|| ActionError::Environment("GITHUB_EVENT_NAME is not set".into()))?;
    let path = opts.env.get("GITHUB_EVENT_PATH").ok_or_else(|| ActionError::Environment("GITHUB_EVENT_PATH is not set".into()))?;
    let text = std::fs::read(path).map_err(|e| ActionError::Environment(format!("GITHUB_EVENT_PATH {path}: {e}")))?;
    let payload: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| ActionError::Environment(format!("GITHUB_EVENT_PATH {path}: not JSON: {e}")))?;
    match event::parse(name, &payload) {
        Event::Push { branch, after } => push(&opts, &branch, &after).await,
        Event::PullRequest { number, base, base_sha } => preview::preview(&opts, number, &base, &base_sha).await,
        Event::Command { number, thread, user, command, url } => {
            command::command(&opts, command::Asked { number, thread, user, command, url }).await
        }
        Event::Ignored(why) => Ok(ActionReport::ignored(why)),
    }
}

/// The configuration at `commit`.
pub fn config_at(repo: &Path, commit: Oid, env: &Env) -> Result<Config, ActionError> {
    let mut config = Config::load_env(&TreeSource::new(repo, commit).map_err(|e| ActionError::Environment(e.to_string()))?, env)
        .map_err(ActionError::Config)?;
    config.apply_env(env).map_err(|e| ActionError::Environment(e.to_string()))?;
    Ok(config)
}

/// Brings the local state refs to what the remote holds (when there is a remote).
pub async fn fetch_state(upstream: &Upstream) -> Result<(), ActionError> {
    if let Some(remote) = upstream.remote() {
        remote.fetch(&STATE_REFSPECS).await?;
    }
    Ok(())
}

async fn push(opts: &ActionOptions, branch: &str, after: &str) -> Result<ActionReport, ActionError> {
    let commit = Oid::from_str(after).or_else(|_| head(&opts.repo))?;
    let config = config_at(&opts.repo, commit, &opts.env)?;
    if branch != config.branch {
        return Ok(ActionReport::ignored(format!("a push to `{branch}`; plancd watches `{}`", config.branch)));
    }
    {
        let repo = git2::Repository::discover(&opts.repo)?;
        if repo.find_branch(branch, git2::BranchType::Local).is_err() {
            repo.branch(branch, &repo.find_commit(commit)?, false)?;
        }
    }
    let upstream = Upstream::open(&opts.repo, &config, &opts.env).await?;
    fetch_state(&upstream).await?;
    reconcile(opts, &format!("reconciled `{branch}` at {}", &commit.to_string()[..12])).await
}

/// Runs a pass over the watched branch and reports it.
async fn reconcile(opts: &ActionOptions, what: &str) -> Result<ActionReport, ActionError> {
    let pass = crate::ops::reconcile::reconcile(ReconcileOptions {
        repo: opts.repo.clone(),
        branch: None,
        env: opts.env.clone(),
        sandbox: opts.sandbox.clone(),
        events: opts.events.clone(),
        cancel: opts.cancel.clone(),
        shared: false,
        remote: None,
    })
    .await;
    let pass = match pass {
        Err(ReconcileError::Load(LoadError::Invalid(diagnostics))) => {
            let summary = summary::invalid(&diagnostics);
            return Ok(ActionReport { headline: "plancd.yaml is invalid".into(), diagnostics, summary, ..ActionReport::default() });
        }
        other => other?,
    };
    let status = crate::ops::status::status(&opts.repo, None, &opts.env, None)?;
    let snapshot = crate::reconcile::Snapshot::load(&opts.repo, None, &opts.env).ok();
    let headline = format!("{what}: {}", summary::counts(&pass));
    let mut text = summary::pass(&headline, &status, snapshot.as_ref());
    for stalled in &pass.stalled {
        text.push_str(&format!("\n### `{}` is Stalled ({})\n\n", stalled.plan.name(), stalled.reason));
        text.push_str("Nothing of it ran; the other workflows did.\n\n```text\n");
        for d in &stalled.plan.diagnostics {
            text.push_str(&format!("{d}\n"));
        }
        text.push_str("```\n");
    }
    // The stalled workflows' problems become annotations; the exit code is the pass's (1).
    let diagnostics = pass.stalled.iter().flat_map(|s| s.plan.diagnostics.iter().cloned()).collect();
    Ok(ActionReport { summary: text, pull_requests: summary::pull_requests(&opts.repo, &status)?, headline, pass: Some(pass), diagnostics })
}

fn head(repo: &Path) -> Result<Oid, git2::Error> {
    git2::Repository::discover(repo)?.head()?.peel_to_commit().map(|c| c.id())
}
