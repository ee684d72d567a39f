//! Forges: where plancd's results meet the people who review them. The [`Forge`] trait holds
//! what plancd publishes (pull requests, sticky comments, commit statuses, escalation issues)
//! and the little it reads back for the GitHub Action; [`github::GitHub`] speaks GitHub's REST
//! API through octocrab, [`NoForge`] does nothing for repositories without one.

pub mod body;
pub mod github;
mod none;

use std::sync::Arc;

use secrecy::SecretString;

use crate::config::{Env, ForgeConfig};
pub use none::NoForge;

/// Why a forge call failed. Messages never hold a token.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The configuration cannot work: a missing token variable, an unreadable key file.
    #[error("forge configuration: {0}")]
    Config(String),
    /// The API answered with an error.
    #[error("{operation}: {status} {message}")]
    Api {
        /// What was asked, e.g. `POST /repos/o/r/pulls`.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
    /// The API could not be reached, or answered with something unreadable.
    #[error("{operation}: {message}")]
    Transport {
        /// What was asked.
        operation: String,
        /// What went wrong.
        message: String,
    },
    /// Opening one more pull request would pass `max_prs_per_hour`.
    #[error(
        "{opened} pull request(s) opened in the last hour, the most max_prs_per_hour allows; the result is published and its pull request opens on a later pass"
    )]
    PullRequestCap {
        /// Opened in the last hour.
        opened: usize,
    },
    /// The forge does not do this.
    #[error("{0} is not available without a forge (set forge.github in plancd.yaml)")]
    Unsupported(&'static str),
}

impl ForgeError {
    /// A CamelCase reason for status and summaries.
    pub fn reason(&self) -> &'static str {
        match self {
            ForgeError::Config(_) => "ForgeConfigInvalid",
            ForgeError::Api { .. } => "ForgeApiError",
            ForgeError::Transport { .. } => "ForgeUnreachable",
            ForgeError::PullRequestCap { .. } => "PullRequestCapReached",
            ForgeError::Unsupported(_) => "NoForge",
        }
    }
}

/// A pull request to open or bring up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestSpec {
    /// The branch with the work (`ai/generated/<workflow>/<task>`).
    pub head: String,
    /// The branch it goes into (the watched branch).
    pub base: String,
    /// Its title.
    pub title: String,
    /// Its body (Markdown).
    pub body: String,
    /// Labels it carries.
    pub labels: Vec<String>,
}

/// A pull request as the forge has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its web address.
    pub url: String,
    /// Its head branch.
    pub head: String,
    /// Its base branch.
    pub base: String,
    /// Whether `ensure_pull_request` opened it (rather than finding it).
    pub opened: bool,
}

/// The state of a commit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    /// Work is under way.
    Pending,
    /// Every task is satisfied or waits on a person's approval.
    Success,
    /// A task failed or was escalated.
    Failure,
    /// plancd itself could not finish.
    Error,
}

impl StatusState {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A commit status: one per workflow on the plan commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    /// E.g. `plancd/<workflow>`.
    pub context: String,
    /// Its state.
    pub state: StatusState,
    /// One line (GitHub keeps 140 characters).
    pub description: String,
}

/// An issue to open, or to update when one with the same marker is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSpec {
    /// A hidden marker in the body that identifies the issue.
    pub marker: String,
    /// Its title.
    pub title: String,
    /// Its body (Markdown), without the marker.
    pub body: String,
    /// Labels it carries.
    pub labels: Vec<String>,
}

/// How much a user may do in the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    /// Nothing, or read only.
    Read,
    /// Triage.
    Triage,
    /// Push.
    Write,
    /// Maintain.
    Maintain,
    /// Everything.
    Admin,
}

/// The API's request budget as its last answer gave it (GitHub's `x-ratelimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests left in the current window.
    pub remaining: u64,
    /// Requests the window allows.
    pub limit: u64,
}

/// The hidden marker of a sticky comment or issue: `<!-- plancd:<key> -->`.
pub fn marker(key: &str) -> String {
    format!("<!-- plancd:{key} -->")
}

/// What plancd publishes to a forge, and the little it reads back.
#[async_trait::async_trait]
pub trait Forge: Send + Sync {
    /// `github` or `none`.
    fn name(&self) -> &'static str;

    /// Finds the open pull request whose head is `spec.head` and brings its title, body, base
    /// and labels up to date, or opens one; never two for one head. `None` without a forge.
    async fn ensure_pull_request(&self, spec: &PullRequestSpec) -> Result<Option<PullRequest>, ForgeError>;

    /// The pull request with this number.
    async fn pull_request(&self, number: u64) -> Result<PullRequest, ForgeError>;

    /// The files a pull request changes (every page of them).
    async fn pull_request_files(&self, number: u64) -> Result<Vec<String>, ForgeError>;

    /// Writes the comment marked `marker` on issue or pull request `number`: the existing one is
    /// edited in place (when its text differs), else one is added. Returns its address.
    async fn upsert_comment(&self, number: u64, marker: &str, body: &str) -> Result<Option<String>, ForgeError>;

    /// The current commit statuses of `sha`, the latest per context.
    async fn statuses(&self, sha: &str) -> Result<Vec<CommitStatus>, ForgeError>;

    /// Sets a commit status on `sha`.
    async fn set_status(&self, sha: &str, status: &CommitStatus) -> Result<(), ForgeError>;

    /// Opens the issue, or updates the open one with the same marker. Returns its address.
    async fn ensure_issue(&self, spec: &IssueSpec) -> Result<Option<String>, ForgeError>;

    /// Closes the open issue with this marker, with `comment` on it first. Returns its address;
    /// `None` when no such issue is open (or there is no forge).
    async fn close_issue(&self, marker: &str, comment: &str) -> Result<Option<String>, ForgeError>;

    /// What `user` may do in the repository.
    async fn permission(&self, user: &str) -> Result<Permission, ForgeError>;

    /// A token git may use to push to the forge's repositories, if the forge has one.
    async fn git_token(&self) -> Result<Option<SecretString>, ForgeError>;

    /// The request budget the forge's last answer reported; `None` before any, or without one.
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }
}

/// Opens the forge the configuration names: GitHub, or none.
pub fn open(config: &ForgeConfig, env: &Env) -> Result<Arc<dyn Forge>, ForgeError> {
    match &config.github {
        Some(github) => Ok(Arc::new(github::GitHub::new(github, env)?)),
        None => Ok(Arc::new(NoForge)),
    }
}
