//! What approve, retry, suspend and resume share: the facts read from the plans and the refs,
//! [`check`]'s decision, and its one record written by
//! compare-and-swap: on the remote first when the repository has the one plancd.yaml names
//! (where the controllers look), re-read and re-checked when another writer got there first.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use secrecy::SecretString;

use crate::config::Env;
use crate::reconcile::operations::{Operation, Planned, Record, Refusal, Target, check};
use crate::reconcile::{LoadError, Snapshot};
use crate::remote::{Remote, RemoteAuthority, RemoteError};
use crate::state::{StateError, Store, TaskKey, WORKFLOW_REFS};

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// It means nothing where it was asked for.
    #[error("{0}; {hint}", hint = .0.hint())]
    Refused(Refusal),
    /// No record of the task (`plancd logs`).
    #[error("no task {0} (check `plancd status`)")]
    UnknownTask(TaskKey),
    /// Something asked of a record that it lacks (`plancd logs`).
    #[error("{0}")]
    Missing(String),
    /// `--branch` names a branch other than the watched one.
    #[error("{0}")]
    OtherBranch(String),
    /// Nobody to record it for.
    #[error("who is this? pass --as NAME, or set git's user.email")]
    NoIdentity,
    /// The ref kept moving.
    #[error("{0} keeps changing; try again")]
    Busy(String),
    /// The plans could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The remote could not be opened.
    #[error("{0} (--local records it in this repository only)")]
    Remote(#[from] RemoteError),
    /// Git failed, here or on the remote.
    #[error("{0}{hint}", hint = if matches!(.0, StateError::Authority { .. }) { " (--local records it in this repository only)" } else { "" })]
    State(#[from] StateError),
}

impl ManageError {
    /// Whether the fault is in what the user asked (exit 2) rather than outside (exit 3).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ManageError::Refused(_)
            | ManageError::NoIdentity
            | ManageError::UnknownTask(_)
            | ManageError::Missing(_)
            | ManageError::OtherBranch(_) => true,
            ManageError::Load(e) => !matches!(e, LoadError::Git(_) | LoadError::Io(_)),
            ManageError::Busy(_) | ManageError::Remote(_) | ManageError::State(_) => false,
        }
    }
}

/// What an operation is asked of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A task.
    Task(TaskKey),
    /// A workflow.
    Workflow(String),
}

impl Subject {
    /// The ref its record goes to.
    pub fn ref_name(&self) -> String {
        match self {
            Subject::Task(key) => key.ref_name(),
            Subject::Workflow(wf) => format!("{WORKFLOW_REFS}{wf}"),
        }
    }
}

/// How the command line runs an operation.
#[derive(Debug, Clone)]
pub struct ManageOptions {
    /// The repository.
    pub repo: PathBuf,
    /// The watched branch, overriding the configuration.
    pub branch: Option<String>,
    /// The environment.
    pub env: Env,
    /// Who asks: `--as`; else git's `user.email`, `GITHUB_ACTOR`, `USER`.
    pub by: Option<String>,
    /// Record it in this repository only, even when it has the remote plancd.yaml names.
    pub local: bool,
}

/// Where a record went.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The record.
    pub record: Record,
    /// Its ref.
    pub ref_name: String,
    /// The remote it was pushed to first, if any.
    pub remote: Option<String>,
}

impl fmt::Display for Recorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.remote {
            Some(remote) => write!(f, "recorded on {remote} ({})", self.ref_name),
            None => write!(f, "recorded in this repository ({})", self.ref_name),
        }
    }
}

/// What the plans at the watched commit define: every task's spec, and the workflows.
#[derive(Debug, Clone, Default)]
pub struct Plans {
    /// Each task's facts.
    pub tasks: HashMap<TaskKey, Planned>,
    /// The workflows.
    pub workflows: BTreeSet<String>,
}

impl Plans {
    /// The facts of a snapshot.
    pub fn of(snapshot: &Snapshot) -> Plans {
        let mut plans = Plans::default();
        for plan in &snapshot.plans {
            let wf = &plan.list.todo_list_id;
            plans.workflows.insert(wf.clone());
            for task in &plan.list.tasks {
                let key = TaskKey::new(wf, &task.id);
                let Some(hash) = snapshot.hashes.get(&key) else { continue };
                // Outputs that name a protected path or a runner file hold a task for approval too.
                plans.tasks.insert(key, Planned { spec_hash: hash.clone(), requires_approval: snapshot.requires_approval(task) });
            }
        }
        plans
    }
}

/// Runs `op` on `subject` from the command line: the plans of the watched branch, the record on
/// the configured remote unless `--local` (or the repository lacks it).
pub fn operate(opts: &ManageOptions, op: &Operation, subject: &Subject) -> Result<Recorded, ManageError> {
    let by = identity(&opts.repo, &opts.env, opts.by.as_deref()).ok_or(ManageError::NoIdentity)?;
    let store = Store::open(&opts.repo)?;
    let snapshot = Snapshot::load(store.path(), opts.branch.as_deref(), &opts.env)?;
    // Records are one set per repository: only the watched branch's plans may write them.
    crate::ops::reconcile::check_watched(&snapshot, opts.branch.is_some(), &opts.env)
        .map_err(|e| ManageError::OtherBranch(e.to_string()))?;
    let remote = if opts.local {
        None
    } else {
        let token =
            snapshot.config.forge.github.as_ref().and_then(|g| opts.env.get(&g.token_env)).map(|t| SecretString::from(t.to_owned()));
        Remote::open(store.path(), &snapshot.config.remote, token)?
    };
    let store = shared(store, remote.as_ref())?;
    record(&store, &Plans::of(&snapshot), remote.as_ref().map(Remote::name), subject, op, &by)
}

/// `store`, writing through `remote` first when there is one, brought up to what it holds.
pub fn shared(store: Store, remote: Option<&Remote>) -> Result<Store, ManageError> {
    let Some(remote) = remote else { return Ok(store) };
    let store = store.with_authority(Arc::new(RemoteAuthority::new(remote.clone())));
    store.refresh()?;
    Ok(store)
}

/// Reads the facts, checks `op` and writes its record if the ref has not moved meanwhile; reads
/// and checks again when it has (so a second approval racing the first is refused, not
/// written). `remote` names where `store` writes first, for the report.
pub fn record(
    store: &Store,
    plans: &Plans,
    remote: Option<&str>,
    subject: &Subject,
    op: &Operation,
    by: &str,
) -> Result<Recorded, ManageError> {
    for _ in 0..5 {
        let now = Timestamp::now();
        let (record, expected) = match subject {
            Subject::Task(key) => {
                let current = store.status(key)?;
                let target = Target::Task { key, planned: plans.tasks.get(key), status: current.as_ref().map(|(_, s)| s) };
                (check(op, target, by, now), current.map(|(tip, _)| tip))
            }
            Subject::Workflow(wf) => {
                let current = store.workflows()?.remove(wf);
                let target = Target::Workflow { id: wf, planned: plans.workflows.contains(wf), record: current.as_ref().map(|(_, r)| r) };
                (check(op, target, by, now), current.map(|(tip, _)| tip))
            }
        };
        let record = record.map_err(ManageError::Refused)?;
        let written = match (subject, &record) {
            (Subject::Task(key), Record::Task(status)) => store.append(key, expected, status, &[]),
            (_, Record::Workflow(new)) => store.set_workflow(new, expected),
            (Subject::Workflow(wf), Record::Task(_)) => {
                return Err(ManageError::Refused(Refusal::WrongTarget { verb: op.verb(), target: wf.clone() }));
            }
        };
        match written {
            Ok(_) => return Ok(Recorded { record, ref_name: subject.ref_name(), remote: remote.map(str::to_owned) }),
            Err(StateError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ManageError::Busy(subject.ref_name()))
}

/// Who asks: `explicit` (`--as`), else the repository's git `user.email`, else `GITHUB_ACTOR`
/// (a step of a GitHub job), else the login `USER`.
pub fn identity(repo: &Path, env: &Env, explicit: Option<&str>) -> Option<String> {
    let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    explicit
        .and_then(nonempty)
        .or_else(|| {
            let repo = git2::Repository::discover(repo).ok()?;
            let email = repo.config().ok()?.get_string("user.email").ok()?;
            nonempty(&email)
        })
        .or_else(|| env.get("GITHUB_ACTOR").and_then(nonempty))
        .or_else(|| env.get("USER").and_then(nonempty))
}
