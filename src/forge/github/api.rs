//! The REST calls behind [`Forge`] for GitHub: pull requests found by head branch, comments and
//! issues found by their hidden marker, commit statuses, permissions.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::GitHub;
use crate::forge::{CommitStatus, Forge, ForgeError, IssueSpec, Permission, PullRequest, PullRequestSpec, RateLimit, StatusState};

/// The fields of a pull request that plancd reads.
#[derive(Debug, Deserialize)]
struct PullJson {
    number: u64,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    head: RefJson,
    base: RefJson,
    #[serde(default)]
    labels: Vec<LabelJson>,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RefJson {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Debug, Deserialize)]
struct LabelJson {
    name: String,
}

#[derive(Debug, Deserialize)]
struct CommentJson {
    id: u64,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IssueJson {
    number: u64,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct FileJson {
    filename: String,
    #[serde(default)]
    previous_filename: Option<String>,
}

impl PullJson {
    fn into_pr(self, opened: bool) -> PullRequest {
        PullRequest { number: self.number, url: self.html_url, head: self.head.name, base: self.base.name, opened }
    }
}

/// GitHub keeps 140 characters of a status description.
fn description(text: &str) -> String {
    if text.chars().count() <= 140 { text.to_owned() } else { format!("{}…", text.chars().take(139).collect::<String>()) }
}

impl GitHub {
    /// The open pull request whose head is `head` in this repository.
    async fn open_pull(&self, head: &str) -> Result<Option<PullJson>, ForgeError> {
        let params = [("state", "open"), ("head", &format!("{}:{head}", self.owner)), ("per_page", "100")];
        let pulls: Vec<PullJson> = self.all(&self.route("/pulls"), &params).await?;
        Ok(pulls.into_iter().find(|p| p.head.name == head))
    }

    /// Opens a pull request, within `max_prs_per_hour`.
    async fn open_new(&self, spec: &PullRequestSpec) -> Result<PullJson, ForgeError> {
        let mut opened = self.opened.lock().await;
        let hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
        if opened.is_none() {
            *opened = Some(self.recently_opened(hour_ago).await?);
        }
        let times = opened.get_or_insert_with(Vec::new);
        times.retain(|t| *t > hour_ago);
        if times.len() >= self.max_prs_per_hour as usize {
            return Err(ForgeError::PullRequestCap { opened: times.len() });
        }
        let body = json!({ "title": spec.title, "head": spec.head, "base": spec.base, "body": spec.body });
        let pull: PullJson = self.post(&self.route("/pulls"), &body).await?;
        times.push(jiff::Timestamp::now());
        Ok(pull)
    }

    /// When plancd's pull requests (heads under `ai/generated/`) were opened since `since`.
    async fn recently_opened(&self, since: jiff::Timestamp) -> Result<Vec<jiff::Timestamp>, ForgeError> {
        let params = [("state", "all"), ("sort", "created"), ("direction", "desc"), ("per_page", "100")];
        let page: octocrab::Page<PullJson> = self.get(&self.route("/pulls"), Some(&params)).await?;
        Ok(page
            .items
            .iter()
            .filter(|p| p.head.name.starts_with("ai/generated/"))
            .filter_map(|p| p.created_at.as_deref()?.parse::<jiff::Timestamp>().ok())
            .filter(|t| *t > since)
            .collect())
    }

    /// The open issue (not a pull request) whose body holds `marker`, among those labelled
    /// `label` when one is given.
    async fn open_issue(&self, marker: &str, label: Option<&str>) -> Result<Option<IssueJson>, ForgeError> {
        let mut params = vec![("state", "open"), ("per_page", "100")];
        if let Some(label) = label {
            params.push(("labels", label));
        }
        let issues: Vec<IssueJson> = self.all(&self.route("/issues"), &params).await?;
        Ok(issues.into_iter().find(|i| i.pull_request.is_none() && i.body.as_deref().is_some_and(|b| b.contains(marker))))
    }

    /// Brings an open pull request's title, body, base and labels up to date.
    async fn update(&self, pull: PullJson, spec: &PullRequestSpec) -> Result<PullRequest, ForgeError> {
        let number = pull.number;
        let missing: Vec<&String> = spec.labels.iter().filter(|l| !pull.labels.iter().any(|have| &have.name == *l)).collect();
        let stale = pull.title != spec.title || pull.body.as_deref().unwrap_or_default() != spec.body || pull.base.name != spec.base;
        let pull = if stale {
            let body = json!({ "title": spec.title, "body": spec.body, "base": spec.base });
            self.patch::<PullJson, _>(&self.route(&format!("/pulls/{number}")), &body).await?
        } else {
            pull
        };
        if !missing.is_empty() {
            self.post::<serde_json::Value, _>(&self.route(&format!("/issues/{number}/labels")), &json!({ "labels": missing })).await?;
        }
        Ok(pull.into_pr(false))
    }
}

#[async_trait::async_trait]
impl Forge for GitHub {
    fn name(&self) -> &'static str {
        "github"
    }

    async fn ensure_pull_request(&self, spec: &PullRequestSpec) -> Result<Option<PullRequest>, ForgeError> {
        if let Some(pull) = self.open_pull(&spec.head).await? {
            return self.update(pull, spec).await.map(Some);
        }
        let pull = self.open_new(spec).await?;
        let number = pull.number;
        if !spec.labels.is_empty() {
            self.post::<serde_json::Value, _>(&self.route(&format!("/issues/{number}/labels")), &json!({ "labels": spec.labels })).await?;
        }
        Ok(Some(pull.into_pr(true)))
    }

    async fn pull_request(&self, number: u64) -> Result<PullRequest, ForgeError> {
        self.get::<PullJson, ()>(&self.route(&format!("/pulls/{number}")), None).await.map(|p| p.into_pr(false))
    }

    async fn pull_request_files(&self, number: u64) -> Result<Vec<String>, ForgeError> {
        let files: Vec<FileJson> = self.all(&self.route(&format!("/pulls/{number}/files")), &[("per_page", "100")]).await?;
        Ok(files.into_iter().flat_map(|f| std::iter::once(f.filename).chain(f.previous_filename)).collect())
    }

    async fn upsert_comment(&self, number: u64, marker: &str, body: &str) -> Result<Option<String>, ForgeError> {
        let text = format!("{marker}\n{body}");
        let comments: Vec<CommentJson> = self.all(&self.route(&format!("/issues/{number}/comments")), &[("per_page", "100")]).await?;
        let found = comments.into_iter().find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)));
        let comment: CommentJson = match found {
            Some(c) if c.body.as_deref() == Some(text.as_str()) => c,
            Some(c) => self.patch(&self.route(&format!("/issues/comments/{}", c.id)), &json!({ "body": text })).await?,
            None => self.post(&self.route(&format!("/issues/{number}/comments")), &json!({ "body": text })).await?,
        };
        Ok(Some(comment.html_url))
    }

    async fn statuses(&self, sha: &str) -> Result<Vec<CommitStatus>, ForgeError> {
        #[derive(Deserialize)]
        struct Combined {
            #[serde(default)]
            statuses: Vec<One>,
        }
        #[derive(Deserialize)]
        struct One {
            context: String,
            state: String,
            #[serde(default)]
            description: Option<String>,
        }
        let combined: Combined = self.get(&self.route(&format!("/commits/{sha}/status")), Some(&[("per_page", "100")])).await?;
        let state = |s: &str| match s {
            "success" => StatusState::Success,
            "failure" => StatusState::Failure,
            "error" => StatusState::Error,
            _ => StatusState::Pending,
        };
        Ok(combined
            .statuses
            .into_iter()
            .map(|s| CommitStatus { state: state(&s.state), context: s.context, description: s.description.unwrap_or_default() })
            .collect())
    }

    async fn set_status(&self, sha: &str, status: &CommitStatus) -> Result<(), ForgeError> {
        let body = json!({ "state": status.state.as_str(), "context": status.context, "description": description(&status.description) });
        self.post::<serde_json::Value, _>(&self.route(&format!("/statuses/{sha}")), &body).await.map(drop)
    }

    async fn ensure_issue(&self, spec: &IssueSpec) -> Result<Option<String>, ForgeError> {
        let text = format!("{}\n{}", spec.marker, spec.body);
        let found = self.open_issue(&spec.marker, spec.labels.first().map(String::as_str)).await?;
        let issue: IssueJson = match found {
            Some(i) if i.body.as_deref() == Some(text.as_str()) && i.title == spec.title => i,
            Some(i) => self.patch(&self.route(&format!("/issues/{}", i.number)), &json!({ "title": spec.title, "body": text })).await?,
            None => self.post(&self.route("/issues"), &json!({ "title": spec.title, "body": text, "labels": spec.labels })).await?,
        };
        Ok(Some(issue.html_url))
    }

    async fn close_issue(&self, marker: &str, comment: &str) -> Result<Option<String>, ForgeError> {
        let Some(issue) = self.open_issue(marker, None).await? else { return Ok(None) };
        let number = issue.number;
        self.post::<serde_json::Value, _>(&self.route(&format!("/issues/{number}/comments")), &json!({ "body": comment })).await?;
        let closed: IssueJson =
            self.patch(&self.route(&format!("/issues/{number}")), &json!({ "state": "closed", "state_reason": "completed" })).await?;
        Ok(Some(closed.html_url))
    }

    async fn permission(&self, user: &str) -> Result<Permission, ForgeError> {
        #[derive(Deserialize)]
        struct Answer {
            permission: String,
            #[serde(default)]
            role_name: Option<String>,
        }
        let answer: Answer = self.get::<Answer, ()>(&self.route(&format!("/collaborators/{user}/permission")), None).await?;
        Ok(match answer.role_name.as_deref().unwrap_or(answer.permission.as_str()) {
            "admin" => Permission::Admin,
            "maintain" => Permission::Maintain,
            "write" => Permission::Write,
            "triage" => Permission::Triage,
            _ => Permission::Read,
        })
    }

    async fn git_token(&self) -> Result<Option<SecretString>, ForgeError> {
        match &self.auth {
            super::Auth::Token(token) => Ok(Some(token.clone())),
            super::Auth::App => {
                self.client.installation_token().await.map(Some).map_err(|e| self.error("POST installation access token".into(), e))
            }
        }
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        *self.rate_limit.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
