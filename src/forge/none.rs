//! The forge of a repository that has none: publishing is a no-op, reading is refused.

use secrecy::SecretString;

use super::{CommitStatus, Forge, ForgeError, IssueSpec, Permission, PullRequest, PullRequestSpec};

/// No forge: results live in git only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoForge;

#[async_trait::async_trait]
impl Forge for NoForge {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn ensure_pull_request(&self, _spec: &PullRequestSpec) -> Result<Option<PullRequest>, ForgeError> {
        Ok(None)
    }

    async fn pull_request(&self, _number: u64) -> Result<PullRequest, ForgeError> {
        Err(ForgeError::Unsupported("reading a pull request"))
    }

    async fn pull_request_files(&self, _number: u64) -> Result<Vec<String>, ForgeError> {
        Err(ForgeError::Unsupported("reading a pull request"))
    }

    async fn upsert_comment(&self, _number: u64, _marker: &str, _body: &str) -> Result<Option<String>, ForgeError> {
        Ok(None)
    }

    async fn statuses(&self, _sha: &str) -> Result<Vec<CommitStatus>, ForgeError> {
        Ok(Vec::new())
    }

    async fn set_status(&self, _sha: &str, _status: &CommitStatus) -> Result<(), ForgeError> {
        Ok(())
    }

    async fn ensure_issue(&self, _spec: &IssueSpec) -> Result<Option<String>, ForgeError> {
        Ok(None)
    }

    async fn close_issue(&self, _marker: &str, _comment: &str) -> Result<Option<String>, ForgeError> {
        Ok(None)
    }

    async fn permission(&self, _user: &str) -> Result<Permission, ForgeError> {
        Err(ForgeError::Unsupported("checking a user's permission"))
    }

    async fn git_token(&self) -> Result<Option<SecretString>, ForgeError> {
        Ok(None)
    }
}
