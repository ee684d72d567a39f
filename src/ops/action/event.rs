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
    /// A command (`/plancd retry`, `/plancd approve`, a review asking for changes) in a comment
    /// on a pull request or an issue.
    Command {
        /// The pull request's or issue's number.
        number: u64,
        /// Where it was written.
        thread: Thread,
        /// Who wrote it.
        user: String,
        /// What it asks.
        command: Command,
        /// Where (the comment's address).
        url: Option<String>,
    },
    /// Nothing to do, and why.
    Ignored(String),
}

/// Where a command was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thread {
    /// A pull request: a result's, or one that changes plans.
    PullRequest,
    /// An issue, with its body (where an escalation issue's marker names its task).
    Issue {
        /// The issue's body.
        body: String,
    },
}

/// What a command asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Another attempt, with what to do differently (may be empty).
    Retry {
        /// The text after the command.
        instructions: String,
    },
    /// An approval: of the task named, else of the thread's task (or, on a plan pull request,
    /// of every task of its plans that requires one).
    Approve {
        /// `WF/TASK` after the command, if any.
        task: Option<String>,
    },
}

/// The command that asks for another attempt.
pub const RETRY_COMMAND: &str = "/plancd retry";
/// The command that approves.
pub const APPROVE_COMMAND: &str = "/plancd approve";

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
    let Some(command) = parse_command(&text(&p["comment"]["body"])) else {
        return Event::Ignored(format!("the comment starts with neither `{RETRY_COMMAND}` nor `{APPROVE_COMMAND}`"));
    };
    let thread = if p["issue"]["pull_request"].is_null() { Thread::Issue { body: text(&p["issue"]["body"]) } } else { Thread::PullRequest };
    match p["issue"]["number"].as_u64() {
        Some(number) => Event::Command {
            number,
            thread,
            user: text(&p["comment"]["user"]["login"]),
            command,
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
    let command = match parse_command(&body) {
        Some(c) => c,
        None if text(&p["review"]["state"]) == "changes_requested" && !body.trim().is_empty() => {
            Command::Retry { instructions: body.trim().to_owned() }
        }
        None => return Event::Ignored(format!("the review neither requests changes nor starts with `{RETRY_COMMAND}`")),
    };
    match p["pull_request"]["number"].as_u64() {
        Some(number) => Event::Command {
            number,
            thread: Thread::PullRequest,
            user: text(&p["review"]["user"]["login"]),
            command,
            url: p["review"]["html_url"].as_str().map(str::to_owned),
        },
        None => Event::Ignored("the event has no pull request number".into()),
    }
}

/// The command at the start of a comment, if there is one.
pub fn parse_command(body: &str) -> Option<Command> {
    if let Some(instructions) = retry_instructions(body) {
        return Some(Command::Retry { instructions });
    }
    let rest = after_word(body, APPROVE_COMMAND)?;
    Some(Command::Approve { task: rest.split_whitespace().next().map(str::to_owned) })
}

/// What follows `command` at the start of `body`, when it is a word of its own.
fn after_word<'a>(body: &'a str, command: &str) -> Option<&'a str> {
    let rest = body.trim_start().strip_prefix(command)?;
    rest.chars().next().is_none_or(char::is_whitespace).then_some(rest)
}

/// The instructions after `/plancd retry` at the start of a comment; `None` without it.
pub fn retry_instructions(body: &str) -> Option<String> {
    after_word(body, RETRY_COMMAND).map(|rest| rest.trim().to_owned())
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
            Event::Command {
                number: 3,
                thread: Thread::PullRequest,
                user: "ann".into(),
                command: Command::Retry { instructions: "use floats".into() },
                url: None
            }
        );
        // On an issue (an escalation), with the issue's body, where its marker is.
        let on_issue = json!({"action": "created", "issue": {"number": 500, "body": "<!-- plancd:escalation:p/t -->"}, "comment": {"body": "/plancd approve", "user": {"login": "ann"}}});
        assert_eq!(
            parse("issue_comment", &on_issue),
            Event::Command {
                number: 500,
                thread: Thread::Issue { body: "<!-- plancd:escalation:p/t -->".into() },
                user: "ann".into(),
                command: Command::Approve { task: None },
                url: None
            }
        );
        let chat = json!({"action": "created", "issue": {"number": 3, "pull_request": {}}, "comment": {"body": "looks good", "user": {"login": "ann"}}});
        assert!(matches!(parse("issue_comment", &chat), Event::Ignored(_)));
        let review = json!({"action": "submitted", "pull_request": {"number": 4}, "review": {"state": "changes_requested", "body": "handle empty input", "user": {"login": "bo"}}});
        assert_eq!(
            parse("pull_request_review", &review),
            Event::Command {
                number: 4,
                thread: Thread::PullRequest,
                user: "bo".into(),
                command: Command::Retry { instructions: "handle empty input".into() },
                url: None
            }
        );
    }

    #[test]
    fn the_retry_command_must_be_a_word_of_its_own() {
        assert_eq!(retry_instructions("  /plancd retry   "), Some(String::new()));
        assert_eq!(retry_instructions("/plancd retrying"), None);
        assert_eq!(retry_instructions("please /plancd retry"), None);
        assert_eq!(parse_command("/plancd approve wf/c please"), Some(Command::Approve { task: Some("wf/c".into()) }));
        assert_eq!(parse_command("/plancd approved"), None);
    }
}
