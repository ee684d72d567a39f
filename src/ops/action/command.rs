//! `/plancd retry` and `/plancd approve` from GitHub: on a result's pull request, on an
//! escalation issue, in a review asking for changes, or (approve) on a pull request that changes
//! plans. Only people with write access are heard; the others are ignored with the reason. The
//! decision is [`check`](crate::reconcile::operations::check)'s, as on the command line, and the
//! record goes to the remote first, with the GitHub login as who did it.

use std::path::Path;

use git2::Oid;

use super::event::{Command, Thread};
use super::{ActionError, ActionOptions, ActionReport, config_at, head, reconcile};
use crate::forge::{self, Forge, Permission};
use crate::ops::manage::{ManageError, Plans, Recorded, Subject, record, shared};
use crate::reconcile::operations::{Operation, Refusal};
use crate::reconcile::{Snapshot, Upstream};
use crate::remote::Remote;
use crate::state::{Phase, Store, TaskKey};

/// A command as it arrived.
pub struct Asked {
    /// The pull request's or issue's number.
    pub number: u64,
    /// Where.
    pub thread: Thread,
    /// Who.
    pub user: String,
    /// What.
    pub command: Command,
    /// The comment's address.
    pub url: Option<String>,
}

/// What a thread is to plancd.
enum About {
    /// A result's pull request, or an escalation issue: one task.
    Task(TaskKey),
    /// A pull request that changes plans, whose head is this commit.
    Plans(Oid),
}

/// Does what a command asks, when its author may.
pub async fn command(opts: &ActionOptions, asked: Asked) -> Result<ActionReport, ActionError> {
    let config = config_at(&opts.repo, head(&opts.repo)?, &opts.env)?;
    let upstream = Upstream::open(&opts.repo, &config, &opts.env).await?;
    let forge = upstream.forge().clone();
    let number = asked.number;
    let about = match (&asked.thread, &asked.command) {
        (Thread::Issue { body }, _) => match escalation_key(body) {
            Some(key) => About::Task(key),
            None => return Ok(ActionReport::ignored(format!("issue #{number} is not a plancd escalation"))),
        },
        (Thread::PullRequest, command) => {
            let pr = forge.pull_request(number).await?;
            match (pr.head.strip_prefix("ai/generated/").and_then(TaskKey::parse), command) {
                (Some(key), _) => About::Task(key),
                (None, Command::Approve { .. }) => match pull_head(&opts.repo, upstream.remote(), number).await? {
                    Some(oid) => About::Plans(oid),
                    None => return Ok(ActionReport::ignored(format!("pull request #{number}'s head cannot be fetched"))),
                },
                (None, Command::Retry { .. }) => {
                    return Ok(ActionReport::ignored(format!(
                        "pull request #{number} is not a plancd result (its branch is `{}`)",
                        pr.head
                    )));
                }
            }
        }
    };
    if forge.permission(&asked.user).await? < Permission::Write {
        return Ok(ActionReport::ignored(format!("@{} cannot push to the repository; plancd leaves #{number} alone", asked.user)));
    }
    ensure_branch(&opts.repo, &config.branch)?;
    let store = shared(Store::open(&opts.repo)?, upstream.remote())?;
    let remote = upstream.remote().map(Remote::name);
    let by = asked.user.clone();
    match about {
        About::Task(key) => {
            let plans = Plans::of(&Snapshot::load(&opts.repo, Some(&config.branch), &opts.env).map_err(ManageError::from)?);
            let op = operation(&asked);
            match record(&store, &plans, remote, &Subject::Task(key.clone()), &op, &by) {
                Ok(done) => after_task_record(opts, forge.as_ref(), &store, &asked, &key, &done).await,
                Err(ManageError::Refused(refusal)) => refused(forge.as_ref(), &asked, &key.to_string(), refusal).await,
                Err(e) => Err(e.into()),
            }
        }
        About::Plans(pr_head) => approve_plans(opts, forge.as_ref(), &store, remote, &asked, pr_head).await,
    }
}

fn operation(asked: &Asked) -> Operation {
    match &asked.command {
        Command::Approve { .. } => Operation::Approve,
        Command::Retry { instructions } if instructions.trim().is_empty() => Operation::Retry,
        Command::Retry { instructions } => Operation::Revise { instructions: instructions.trim().to_owned(), url: asked.url.clone() },
    }
}

/// The sticky comment a command's answer goes to on its thread.
fn marker(asked: &Asked, what: &str) -> String {
    match asked.thread {
        Thread::PullRequest if matches!(asked.command, Command::Retry { .. }) => forge::marker(&format!("task:{what}")),
        _ => forge::marker(&format!("operation:{what}")),
    }
}

/// After a retry or an approval of one task: the answer on the thread, a pass, and how the
/// task's new attempt went.
async fn after_task_record(
    opts: &ActionOptions,
    forge: &dyn Forge,
    store: &Store,
    asked: &Asked,
    key: &TaskKey,
    done: &Recorded,
) -> Result<ActionReport, ActionError> {
    let by = &asked.user;
    let what = match asked.command {
        Command::Approve { .. } => "approved it",
        Command::Retry { .. } => "asked for another attempt",
    };
    let note = format!("**plancd** · `{key}` · @{by} {what}; {done}. It is under way.");
    forge.upsert_comment(asked.number, &marker(asked, &key.to_string()), &note).await?;
    let report = reconcile(opts, &format!("{} `{key}` for @{by}", if what == "approved it" { "approved" } else { "retried" })).await?;
    if let Some((_, s)) = store.status(key)?.filter(|(_, s)| s.phase != Phase::Succeeded) {
        let note = format!("**plancd** · `{key}` · attempt {} for @{by} did not pass ({}): {}", s.attempt, s.phase, s.message);
        forge.upsert_comment(asked.number, &marker(asked, &key.to_string()), &note).await?;
    }
    Ok(report)
}

/// A refusal, answered on the thread with what to do instead; exit 2.
async fn refused(forge: &dyn Forge, asked: &Asked, what: &str, refusal: Refusal) -> Result<ActionReport, ActionError> {
    let note = format!("**plancd** · `{what}` · @{}: {refusal}. {}.", asked.user, capitalised(&refusal.hint()));
    forge.upsert_comment(asked.number, &marker(asked, what), &note).await?;
    Err(ManageError::Refused(refusal).into())
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `/plancd approve [WF/TASK]` on a pull request that changes plans: the task named, else every
/// task of its plans that requires approval, approved for its spec at the pull request's head
/// (so a later push to it needs approving again). Nothing runs before it is merged.
async fn approve_plans(
    opts: &ActionOptions,
    forge: &dyn Forge,
    store: &Store,
    remote: Option<&str>,
    asked: &Asked,
    pr_head: Oid,
) -> Result<ActionReport, ActionError> {
    let config = config_at(&opts.repo, head(&opts.repo)?, &opts.env)?;
    let base = head(&opts.repo)?;
    let snapshot = Snapshot::load_at(&opts.repo, &config.branch, pr_head, base, &opts.env).map_err(ManageError::from)?;
    let plans = Plans::of(&snapshot);
    let named = match &asked.command {
        Command::Approve { task: Some(t) } => {
            vec![TaskKey::parse(t).ok_or_else(|| ActionError::Environment(format!("`{t}` is not WF/TASK")))?]
        }
        _ => {
            let mut gated: Vec<TaskKey> = plans.tasks.iter().filter(|(_, p)| p.requires_approval).map(|(k, _)| k.clone()).collect();
            gated.sort();
            gated
        }
    };
    let Some(first) = named.first() else {
        return refused(forge, asked, "approvals", Refusal::NothingGated).await;
    };
    let first = first.clone();
    let (mut lines, mut approved, mut refusals) = (Vec::new(), 0, Vec::new());
    for key in &named {
        match record(store, &plans, remote, &Subject::Task(key.clone()), &Operation::Approve, &asked.user) {
            Ok(done) => {
                approved += 1;
                lines.push(format!("- `{key}`: approved for its spec at {} ({done})", &pr_head.to_string()[..12]));
            }
            Err(ManageError::Refused(r)) => {
                lines.push(format!("- `{key}`: {r}; {}", r.hint()));
                refusals.push(r);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let note = format!(
        "**plancd** · @{} approved {approved} task(s) of this pull request; they run once it is merged, unless it changes again.\n\n{}",
        asked.user,
        lines.join("\n")
    );
    forge.upsert_comment(asked.number, &marker(asked, "approvals"), &note).await?;
    match refusals.into_iter().next() {
        Some(r) if approved == 0 => Err(ManageError::Refused(r).into()),
        _ => Ok(ActionReport::ignored(format!("approved {approved} task(s) of pull request #{} (first: {first})", asked.number))),
    }
}

/// The task an escalation issue is about, from its hidden marker.
pub fn escalation_key(body: &str) -> Option<TaskKey> {
    let start = body.find("<!-- plancd:escalation:")? + "<!-- plancd:escalation:".len();
    let rest = &body[start..];
    TaskKey::parse(rest[..rest.find(" -->")?].trim())
}

/// Fetches pull request `number`'s head (`refs/pull/<n>/head`, as GitHub serves it, forks
/// included) and returns it.
async fn pull_head(repo: &Path, remote: Option<&Remote>, number: u64) -> Result<Option<Oid>, ActionError> {
    let Some(remote) = remote else { return Ok(None) };
    let local = format!("refs/plancd/pull/{number}");
    remote.fetch(&[&format!("+refs/pull/{number}/head:{local}")]).await?;
    let repo = git2::Repository::discover(repo)?;
    Ok(repo.find_reference(&local).ok().and_then(|r| r.target()))
}

/// The watched branch as a local branch at what was checked out, when the checkout has none (a
/// job checks out a detached commit).
pub fn ensure_branch(repo: &Path, branch: &str) -> Result<(), ActionError> {
    let repo = git2::Repository::discover(repo)?;
    if repo.find_branch(branch, git2::BranchType::Local).is_err() {
        let commit = repo.head()?.peel_to_commit()?;
        repo.branch(branch, &commit, false)?;
    }
    Ok(())
}
