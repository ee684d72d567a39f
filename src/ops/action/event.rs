//! The GitHub event that started the job (`GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`), reduced to
//! what plancd acts on.

use serde_json::Value;

/// What plancd does for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A push to `branch` at `after`: reconcile when it is the watched branch.
    Push {
        /// The branch pushed to.
        branch: String,
        /// The commit pushed.
        after: String,
    },
    /// A pull request opened or updated: preview what its plans would do.
    PullRequest {
        /// Its number.
        number: u64,
        /// The branch it goes into.
        base: String,
        /// The base's commit, where the configuration is read.
        base_sha: String,
    },
    /// A request for another attempt on a plancd pull request.
    Retry {
        /// The pull request's number.
        number: u64,
        /// Who asked.
        user: String,
        /// What they asked for.
        instructions: String,
        /// Where.
        url: Option<String>,
    },
    /// Nothing to do, and why.
    Ignored(String),
}

/// The command that asks for another attempt.
pub const RETRY_COMMAND: &str = "/plancd retry";

/// Reads an event of kind `name` from its payload.
pub fn parse(name: &str, payload: &Value) -> Event {
    match name {
        "push" => push(payload),
        "pull_request" | "pull_request_target" => pull_request(payload),
        "issue_comment" => comment(payload),
        "pull_request_review" => review(payload),
        other => Event::Ignored(format!("plancd does nothing on `{other}` events")),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn push(p: &Value) -> Event {
    let reference = text(&p["ref"]);
    match reference.strip_prefix("refs/heads/") {
        Some(branch) if p["deleted"].as_bool() != Some(true) => Event::Push { branch: branch.to_owned(), after: text(&p["after"]) },
        _ => Event::Ignored(format!("a push to `{reference}` is not a push to a branch")),
    }
}

fn pull_request(p: &Value) -> Event {
    let action = text(&p["action"]);
    if !matches!(action.as_str(), "opened" | "synchronize" | "reopened" | "ready_for_review" | "edited") {
        return Event::Ignored(format!("pull request {action}: nothing to preview"));
    }
    let pr = &p["pull_request"];
    match pr["number"].as_u64() {
        Some(number) => Event::PullRequest { number, base: text(&pr["base"]["ref"]), base_sha: text(&pr["base"]["sha"]) },
        None => Event::Ignored("the event has no pull request number".into()),
    }
}

fn comment(p: &Value) -> Event {
    if text(&p["action"]) != "created" {
        return Event::Ignored("only new comments are read".into());
    }
    if p["issue"]["pull_request"].is_null() {
        return Event::Ignored("a comment on an issue, not on a pull request".into());
    }
    let body = text(&p["comment"]["body"]);
    let Some(instructions) = retry_instructions(&body) else {
        return Event::Ignored(format!("the comment does not start with `{RETRY_COMMAND}`"));
    };
    match p["issue"]["number"].as_u64() {
        Some(number) => Event::Retry {
            number,
            user: text(&p["comment"]["user"]["login"]),
            instructions,
            url: p["comment"]["html_url"].as_str().map(str::to_owned),
        },
        None => Event::Ignored("the event has no issue number".into()),
    }
}

fn review(p: &Value) -> Event {
    if text(&p["action"]) != "submitted" {
        return Event::Ignored("only submitted reviews are read".into());
    }
    let body = text(&p["review"]["body"]);
    let instructions = match retry_instructions(&body) {
        Some(i) => i,
        None if text(&p["review"]["state"]) == "changes_requested" && !body.trim().is_empty() => body.trim().to_owned(),
        None => return Event::Ignored(format!("the review neither requests changes nor starts with `{RETRY_COMMAND}`")),
    };
    match p["pull_request"]["number"].as_u64() {
        Some(number) => Event::Retry {
            number,
            user: text(&p["review"]["user"]["login"]),
            instructions,
            url: p["review"]["html_url"].as_str().map(str::to_owned),
        },
        None => Event::Ignored("the event has no pull request number".into()),
    }
}

/// The instructions after `/plancd retry` at the start of a comment; `None` without it.
pub fn retry_instructions(body: &str) -> Option<String> {
    let rest = body.trim_start().strip_prefix(RETRY_COMMAND)?;
    if rest.chars().next().is_some_and(|c| !c.is_whitespace()) {
        return None;
    }
    Some(rest.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_reduce_to_what_plancd_does() {
        assert_eq!(
            parse("push", &json!({"ref": "refs/heads/main", "after": "abc"})),
            Event::Push { branch: "main".into(), after: "abc".into() }
        );
        assert!(matches!(parse("push", &json!({"ref": "refs/tags/v1"})), Event::Ignored(_)));
        let pr = json!({"action": "synchronize", "pull_request": {"number": 7, "base": {"ref": "main", "sha": "b1"}}});
        assert_eq!(parse("pull_request", &pr), Event::PullRequest { number: 7, base: "main".into(), base_sha: "b1".into() });
        assert!(matches!(parse("pull_request", &json!({"action": "closed"})), Event::Ignored(_)));
        let comment = json!({"action": "created", "issue": {"number": 3, "pull_request": {}}, "comment": {"body": "/plancd retry\nuse floats", "user": {"login": "ann"}}});
        assert_eq!(
            parse("issue_comment", &comment),
            Event::Retry { number: 3, user: "ann".into(), instructions: "use floats".into(), url: None }
        );
        let chat = json!({"action": "created", "issue": {"number": 3, "pull_request": {}}, "comment": {"body": "looks good", "user": {"login": "ann"}}});
        assert!(matches!(parse("issue_comment", &chat), Event::Ignored(_)));
        let review = json!({"action": "submitted", "pull_request": {"number": 4}, "review": {"state": "changes_requested", "body": "handle empty input", "user": {"login": "bo"}}});
        assert_eq!(
            parse("pull_request_review", &review),
            Event::Retry { number: 4, user: "bo".into(), instructions: "handle empty input".into(), url: None }
        );
    }

    #[test]
    fn the_retry_command_must_be_a_word_of_its_own() {
        assert_eq!(retry_instructions("  /plancd retry   "), Some(String::new()));
        assert_eq!(retry_instructions("/plancd retrying"), None);
        assert_eq!(retry_instructions("please /plancd retry"), None);
    }
}
