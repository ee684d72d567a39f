//! Actual state in git refs: one ref per task (`refs/ai/tasks/<workflow>/<task>`), a chain of
//! commits with `status.json` and the attempts' logs in the tip's tree, and one ref per
//! workflow (`refs/ai/workflows/<workflow>`) for workflow-wide settings such as suspension.
//!
//! Every write is a compare-and-swap against the tip the writer read, so two writers never both
//! win; the whole actual state is read from one ref listing and the tips' trailers. When several
//! controllers share a remote, the remote is the [`Authority`]: a write lands there first (a
//! push whose expected old value the server checks), and only then in the local repository.

pub mod fault;
mod holder;
mod network;
pub mod objects;
pub mod quality;
mod reason;
mod records;
mod refs;
mod status;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use git2::{ErrorCode, Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

pub use holder::Holder;
pub use network::{Egress, HostCount, NetworkUse};
pub use quality::Quality;
pub use reason::{FailureType, Reason};
pub use records::RecordCache;
pub use refs::cas_ref;
pub use status::{
    Acceptance, BranchInfo, Condition, Cost, EnvironmentHow, EnvironmentUse, Phase, ResultRef, Review, TaskState, TaskStatus, TestSummary,
    Verification, commit_message, parse_trailers,
};

/// The prefix of task refs.
pub const TASK_REFS: &str = "refs/ai/tasks/";
/// The prefix of workflow refs.
pub const WORKFLOW_REFS: &str = "refs/ai/workflows/";

/// A task of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey {
    /// The workflow id.
    pub workflow: String,
    /// The task id.
    pub task: String,
}

impl TaskKey {
    /// The key of `task` in `workflow`.
    pub fn new(workflow: &str, task: &str) -> TaskKey {
        TaskKey { workflow: workflow.to_owned(), task: task.to_owned() }
    }

    /// `refs/ai/tasks/<workflow>/<task>`.
    pub fn ref_name(&self) -> String {
        format!("{TASK_REFS}{}/{}", self.workflow, self.task)
    }

    /// The key of a task ref.
    pub fn from_ref(name: &str) -> Option<TaskKey> {
        let (wf, task) = name.strip_prefix(TASK_REFS)?.split_once('/')?;
        (!task.contains('/')).then(|| TaskKey::new(wf, task))
    }

    /// Parses `WF/TASK` as people type it.
    pub fn parse(s: &str) -> Option<TaskKey> {
        let (wf, task) = s.split_once('/')?;
        (!wf.is_empty() && !task.is_empty() && !task.contains('/')).then(|| TaskKey::new(wf, task))
    }
}

impl std::fmt::Display for TaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.workflow, self.task)
    }
}

/// Workflow-wide settings (`workflow.json` at the tip of `refs/ai/workflows/<workflow>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkflowRecord {
    /// The workflow.
    pub workflow_id: String,
    /// Whether reconciliation of its tasks is suspended.
    #[serde(default)]
    pub suspended: bool,
    /// When and by whom it was last changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The person who last changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The ref of reconcile requests (`plancd reconcile --request`), like Flux's `requestedAt`.
pub const REQUEST_REF: &str = "refs/ai/requests/reconcile";

/// A request for a pass, and its acknowledgement by a controller (`request.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileRequest {
    /// When it was asked for; identifies the request.
    pub requested_at: jiff::Timestamp,
    /// Who asked.
    pub requested_by: String,
    /// When a controller ran a pass for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_at: Option<jiff::Timestamp>,
    /// Which controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_by: Option<String>,
    /// How the pass went.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcome: String,
}

/// One record of a task's chain.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The record's commit.
    pub commit: Oid,
    /// The record (built from the trailers when `status.json` cannot be read).
    pub status: TaskStatus,
}

/// The record a commit of a task's chain holds; `None` for a commit that is no status record.
fn history_entry(repo: &Repository, key: &TaskKey, commit: &git2::Commit<'_>) -> Option<HistoryEntry> {
    let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
    let state = TaskState::from_message(commit.id(), &message)?;
    let from_json = read_blob(repo, commit.id(), "status.json").ok().flatten().and_then(|b| serde_json::from_slice::<TaskStatus>(&b).ok());
    let status = from_json.unwrap_or_else(|| {
        let time = jiff::Timestamp::from_second(commit.time().seconds()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut s = TaskStatus::new(&key.workflow, &key.task, state.phase, time);
        s.attempt = state.attempt;
        s.spec_hash = state.spec_hash;
        s.reason = state.reason;
        s.holder = state.holder;
        s
    });
    Some(HistoryEntry { commit: commit.id(), status })
}

/// Task refs and their tips.
type Tips = Vec<(TaskKey, Oid)>;

/// What is wrong with a task ref that plancd cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Its ref file holds no commit id (git's message).
    RefFile(String),
    /// Its tip is another kind of object.
    TipNotACommit(Oid),
    /// Its tip is a commit that is no plancd status record.
    TipNotAStatus(Oid),
    /// Its status record cannot be read (why).
    Unreadable(String),
}

impl Damage {
    /// The damage as a CamelCase reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Damage::RefFile(_) => "RefFileCorrupt",
            Damage::TipNotACommit(_) => "TipNotACommit",
            Damage::TipNotAStatus(_) => "TipNotAStatus",
            Damage::Unreadable(_) => "StatusUnreadable",
        }
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |o: &Oid| o.to_string()[..12].to_owned();
        match self {
            Damage::RefFile(why) => write!(f, "its ref file holds no commit id ({why})"),
            Damage::TipNotACommit(tip) => write!(f, "its tip {} is not a commit", short(tip)),
            Damage::TipNotAStatus(tip) => write!(f, "its tip {} is not a plancd status commit", short(tip)),
            Damage::Unreadable(why) => write!(f, "its status cannot be read ({why})"),
        }
    }
}

/// A task ref that plancd cannot read, and its file when git itself cannot read that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenTask {
    /// The task.
    pub key: TaskKey,
    /// What is wrong.
    pub damage: Damage,
    /// The loose ref file, when that is what is broken (git cannot delete such a ref).
    pub file: Option<PathBuf>,
}

impl BrokenTask {
    /// How to repair it.
    pub fn hint(&self) -> String {
        let name = self.key.ref_name();
        match &self.file {
            Some(file) => format!("remove it with `rm {}`, and the task then runs afresh", file.display()),
            None => format!("inspect it with `git log {name}`; `git update-ref -d {name}` removes it, and the task then runs afresh"),
        }
    }
}

impl std::fmt::Display for BrokenTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is broken ({}): {}; {}", self.key, self.damage.reason(), self.damage, self.hint())
    }
}

/// The state a task ref's tip records, or why it is broken.
fn read_state(repo: &Repository, key: &TaskKey, tip: Oid) -> Result<(TaskKey, TaskState), BrokenTask> {
    let broken = |damage: Damage| BrokenTask { key: key.clone(), damage, file: None };
    let commit = repo.find_commit(tip).map_err(|_| broken(Damage::TipNotACommit(tip)))?;
    let state =
        TaskState::from_message(tip, &String::from_utf8_lossy(commit.message_bytes())).ok_or_else(|| broken(Damage::TipNotAStatus(tip)))?;
    Ok((key.clone(), state))
}

/// The task refs stored as loose files (`refs/ai/tasks/<wf>/<task>`), whatever they hold.
fn loose_task_refs(git_dir: &Path) -> Vec<TaskKey> {
    let root = git_dir.join(TASK_REFS);
    let mut out = Vec::new();
    for wf in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for task in std::fs::read_dir(wf.path()).into_iter().flatten().flatten() {
            let (wf, task) = (wf.file_name(), task.file_name());
            let (Some(wf), Some(task)) = (wf.to_str(), task.to_str()) else { continue };
            if !task.ends_with(".lock") && Path::new(&root).join(wf).join(task).is_file() {
                out.push(TaskKey::new(wf, task));
            }
        }
    }
    out
}

/// Why a state operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Someone else moved the ref first.
    #[error("{ref_name} moved: expected {}, found {}", show(.expected), show(.actual))]
    Conflict {
        /// The ref.
        ref_name: String,
        /// What the writer read.
        expected: Option<Oid>,
        /// What is there now.
        actual: Option<Oid>,
    },
    /// A ref's content is not what plancd writes.
    #[error("{ref_name}: {why}")]
    Corrupt {
        /// The ref.
        ref_name: String,
        /// What is wrong.
        why: String,
    },
    /// The repository could not be opened.
    #[error("cannot open the repository at {path}")]
    Open {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: git2::Error,
    },
    /// Any other git failure.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// The shared remote could not be reached, or git failed talking to it.
    #[error("{ref_name}: {message}")]
    Authority {
        /// The ref being written.
        ref_name: String,
        /// What went wrong.
        message: String,
    },
}

/// Where ref writes must land first: the remote that several controllers share.
pub trait Authority: Send + Sync {
    /// Moves `name` from `expected` to `new` (`None`: absent) on the authority, sending the
    /// objects `new` needs from `repo`. `Ok(None)` when it moved; `Ok(Some(actual))` when the
    /// authority holds another value, which the local ref has then been set to.
    fn swap(&self, repo: &Path, name: &str, expected: Option<Oid>, new: Option<Oid>) -> Result<Option<Option<Oid>>, String>;

    /// Brings the local state refs, and the results they name, up to the authority's.
    fn refresh(&self) -> Result<(), String>;

    /// What the authority's `name` points at now.
    fn tip(&self, name: &str) -> Result<Option<Oid>, String>;
}

fn show(oid: &Option<Oid>) -> String {
    oid.map_or_else(|| "nothing".to_owned(), |o| o.to_string()[..12].to_owned())
}

/// The state store of one repository. A repository handle is not shared between threads, so
/// the store keeps a few, each used by one thread at a time; git's own locks (and the
/// compare-and-swap on refs) keep writers from different handles, or processes, apart.
pub struct Store {
    repos: Vec<Mutex<Repository>>,
    path: PathBuf,
    authority: Option<Arc<dyn Authority>>,
    /// Records read before, by commit, shared with earlier stores of a long-lived reader.
    records: Option<Arc<RecordCache>>,
}

/// Handles per store: enough for the cores of a small machine to write at once.
const HANDLES: usize = 4;

impl Store {
    /// Opens the repository at (or above) `path`.
    pub fn open(path: &Path) -> Result<Store, StateError> {
        let open_err = |source| StateError::Open { path: path.to_path_buf(), source };
        let first = Repository::discover(path).map_err(open_err)?;
        let git_dir = first.path().to_path_buf();
        let path = first.workdir().unwrap_or_else(|| first.path()).to_path_buf();
        let mut repos = vec![Mutex::new(first)];
        for _ in 1..HANDLES {
            repos.push(Mutex::new(Repository::open(&git_dir).map_err(open_err)?));
        }
        Ok(Store { repos, path, authority: None, records: None })
    }

    /// The store that reads each status commit once: records read before come from `records`.
    pub fn with_records(mut self, records: Arc<RecordCache>) -> Store {
        self.records = Some(records);
        self
    }

    /// The store whose writes go to `authority` first.
    pub fn with_authority(mut self, authority: Arc<dyn Authority>) -> Store {
        self.authority = Some(authority);
        self
    }

    /// Brings the local state up to the authority's, when there is one: what the other
    /// controllers sharing it have written since.
    pub fn refresh(&self) -> Result<(), StateError> {
        let Some(authority) = &self.authority else { return Ok(()) };
        blocking(|| authority.refresh()).map_err(|message| StateError::Authority { ref_name: "refs/ai/".into(), message })
    }

    /// What the authority's `name` points at now; `None` without an authority.
    pub fn authority_tip(&self, name: &str) -> Result<Option<Oid>, StateError> {
        let Some(authority) = &self.authority else { return Ok(None) };
        blocking(|| authority.tip(name)).map_err(|message| StateError::Authority { ref_name: name.to_owned(), message })
    }

    /// Whether writes go to a shared remote first.
    pub fn is_shared(&self) -> bool {
        self.authority.is_some()
    }

    /// Moves `name` from `expected` to `new`: on the authority first, if there is one (a
    /// refusal is a conflict, and the local ref then holds the authority's value), then here.
    /// No repository handle is held while the authority is asked: that is network time.
    fn move_ref(&self, name: &str, expected: Option<Oid>, new: Option<Oid>, log: &str) -> Result<(), StateError> {
        let Some(authority) = &self.authority else { return cas_ref(&self.repo(), name, expected, new, log) };
        let swapped = blocking(|| authority.swap(&self.path, name, expected, new))
            .map_err(|message| StateError::Authority { ref_name: name.to_owned(), message })?;
        if let Some(actual) = swapped {
            return Err(StateError::Conflict { ref_name: name.to_owned(), expected, actual });
        }
        // The authority took it; this repository follows, unless a look at the authority has
        // meanwhile brought in a later record on top of this one.
        let repo = self.repo();
        match cas_ref(&repo, name, expected, new, log) {
            Err(StateError::Conflict { actual: Some(actual), .. })
                if new.is_some_and(|new| repo.graph_descendant_of(actual, new).unwrap_or(false)) =>
            {
                Ok(())
            }
            Err(StateError::Conflict { actual, .. }) => cas_ref(&repo, name, actual, new, log),
            other => other,
        }
    }

    /// The repository's folder (work tree, or the git dir of a bare repository).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repository handle, for the duration of one short operation. When every handle is in
    /// use, this waits for whichever comes free first, never for one in particular: a caller
    /// that already holds one (a nested call) would otherwise wait for itself for ever.
    pub fn repo(&self) -> MutexGuard<'_, Repository> {
        let mut tries = 0u32;
        loop {
            for handle in &self.repos {
                match handle.try_lock() {
                    Ok(guard) => return guard,
                    Err(std::sync::TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                    Err(std::sync::TryLockError::WouldBlock) => {}
                }
            }
            tries += 1;
            if tries < 100 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
    }

    /// Every task's state, from one ref listing and the tips' commit messages (read on a few
    /// threads when there are many). A task whose ref cannot be read is left out: see
    /// [`Store::scan`].
    pub fn list(&self) -> Result<BTreeMap<TaskKey, TaskState>, StateError> {
        Ok(self.scan()?.0)
    }

    /// Every task's state, and the task refs that cannot be read ([`BrokenTask`]): one broken
    /// ref is that task's problem, never the listing's.
    pub fn scan(&self) -> Result<(BTreeMap<TaskKey, TaskState>, Vec<BrokenTask>), StateError> {
        let (tips, mut broken) = self.task_tips()?;
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(self.repos.len()).min(tips.len() / 256 + 1);
        let chunk = tips.len().div_ceil(threads.max(1)).max(1);
        let read = |part: &[(TaskKey, Oid)]| -> Vec<Result<(TaskKey, TaskState), BrokenTask>> {
            let repo = self.repo();
            part.iter()
                .map(|(key, tip)| match self.records.as_ref().and_then(|r| r.state(*tip)) {
                    Some(state) => Ok((key.clone(), state)),
                    None => {
                        let read = read_state(&repo, key, *tip);
                        if let (Some(records), Ok((_, state))) = (&self.records, &read) {
                            records.keep_state(*tip, state);
                        }
                        read
                    }
                })
                .collect()
        };
        let parts: Vec<Vec<Result<(TaskKey, TaskState), BrokenTask>>> = if threads <= 1 {
            vec![read(&tips)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = tips.chunks(chunk).map(|part| scope.spawn(move || read(part))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            })
        };
        if let Some(records) = &self.records {
            // A whole listing knows every tip: what is kept of older commits is let go.
            records.retain_tips(tips.iter().map(|(_, tip)| tip));
        }
        let mut out = BTreeMap::new();
        for item in parts.into_iter().flatten() {
            match item {
                Ok((key, state)) => {
                    out.insert(key, state);
                }
                Err(b) => broken.push(b),
            }
        }
        broken.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((out, broken))
    }

    /// The tip of every readable task ref, and the loose task refs whose file is not a commit
    /// id (which a ref listing skips without a word).
    fn task_tips(&self) -> Result<(Tips, Vec<BrokenTask>), StateError> {
        let repo = self.repo();
        let mut tips: Vec<(TaskKey, Oid)> = Vec::new();
        for reference in repo.references_glob(&format!("{TASK_REFS}*"))? {
            let reference = reference?;
            let (Ok(name), Some(tip)) = (reference.name(), reference.target()) else { continue };
            if let Some(key) = TaskKey::from_ref(name) {
                tips.push((key, tip));
            }
        }
        let listed: std::collections::HashSet<TaskKey> = tips.iter().map(|(k, _)| k.clone()).collect();
        let mut broken = Vec::new();
        for key in loose_task_refs(repo.commondir()).into_iter().filter(|k| !listed.contains(k)) {
            match repo.find_reference(&key.ref_name()) {
                Err(e) if e.code() != ErrorCode::NotFound => {
                    let file = Some(repo.commondir().join(key.ref_name()));
                    broken.push(BrokenTask { key, damage: Damage::RefFile(e.message().to_owned()), file })
                }
                _ => {}
            }
        }
        Ok((tips, broken))
    }

    /// The tip of a task's ref.
    pub fn tip(&self, key: &TaskKey) -> Result<Option<Oid>, StateError> {
        ref_target(&self.repo(), &key.ref_name())
    }

    /// One task's state, from its tip's trailers.
    pub fn state(&self, key: &TaskKey) -> Result<Option<TaskState>, StateError> {
        let repo = self.repo();
        let Some(tip) = ref_target(&repo, &key.ref_name())? else { return Ok(None) };
        let commit = repo.find_commit(tip)?;
        TaskState::from_message(tip, &String::from_utf8_lossy(commit.message_bytes()))
            .map(Some)
            .ok_or_else(|| StateError::Corrupt { ref_name: key.ref_name(), why: "the tip is not a plancd status commit".into() })
    }

    /// A task's full status record and the tip it was read from.
    pub fn status(&self, key: &TaskKey) -> Result<Option<(Oid, TaskStatus)>, StateError> {
        let repo = self.repo();
        let Some(tip) = ref_target(&repo, &key.ref_name())? else { return Ok(None) };
        if let Some(status) = self.records.as_ref().and_then(|r| r.status(tip)) {
            return Ok(Some((tip, status)));
        }
        let bytes = read_blob(&repo, tip, "status.json")?
            .ok_or_else(|| StateError::Corrupt { ref_name: key.ref_name(), why: "no status.json at the tip".into() })?;
        let status = serde_json::from_slice(&bytes)
            .map_err(|e| StateError::Corrupt { ref_name: key.ref_name(), why: format!("status.json: {e}") })?;
        if let Some(records) = &self.records {
            records.keep_status(tip, &status);
        }
        Ok(Some((tip, status)))
    }

    /// Every record in a task's chain, oldest first: one per state change (the audit trail).
    /// A commit whose `status.json` cannot be read still counts, from its trailers.
    pub fn history(&self, key: &TaskKey) -> Result<Vec<HistoryEntry>, StateError> {
        let repo = self.repo();
        let Some(tip) = ref_target(&repo, &key.ref_name())? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut next = Some(repo.find_commit(tip)?);
        while let Some(commit) = next {
            if let Some(entry) = history_entry(&repo, key, &commit) {
                out.push(entry);
            }
            next = commit.parents().next();
        }
        out.reverse();
        Ok(out)
    }

    /// A file of the task's tip tree (e.g. `attempts/2/agent.log`).
    pub fn read_file(&self, key: &TaskKey, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        let repo = self.repo();
        match ref_target(&repo, &key.ref_name())? {
            Some(tip) => read_blob(&repo, tip, path),
            None => Ok(None),
        }
    }

    /// The files under `dir` in the task's tip tree, by path relative to `dir`.
    pub fn list_files(&self, key: &TaskKey, dir: &str) -> Result<Vec<String>, StateError> {
        let repo = self.repo();
        let Some(tip) = ref_target(&repo, &key.ref_name())? else { return Ok(Vec::new()) };
        let tree = repo.find_commit(tip)?.tree()?;
        let Ok(entry) = tree.get_path(Path::new(dir)) else { return Ok(Vec::new()) };
        let Ok(sub) = repo.find_tree(entry.id()) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        sub.walk(git2::TreeWalkMode::PreOrder, |root, e| {
            if e.kind() == Some(git2::ObjectType::Blob) {
                out.push(format!("{root}{}", e.name().unwrap_or_default()));
            }
            git2::TreeWalkResult::Ok
        })?;
        Ok(out)
    }

    /// Appends `status` (with `files` added to the tree) to the task's chain if its tip is still
    /// `expected`; `None` means the ref must not exist yet.
    pub fn append(
        &self,
        key: &TaskKey,
        expected: Option<Oid>,
        status: &TaskStatus,
        files: &[(String, Vec<u8>)],
    ) -> Result<Oid, StateError> {
        self.append_with_trees(key, expected, status, files, &[])
    }

    /// [`Store::append`], with whole trees added too (e.g. an attempt's work, kept reachable
    /// under `attempts/<n>/work`).
    pub fn append_with_trees(
        &self,
        key: &TaskKey,
        expected: Option<Oid>,
        status: &TaskStatus,
        files: &[(String, Vec<u8>)],
        trees: &[(String, Oid)],
    ) -> Result<Oid, StateError> {
        let json = serde_json::to_vec_pretty(status).expect("a status always serialises");
        let mut all: Vec<(&str, &[u8])> = vec![("status.json", &json)];
        all.extend(files.iter().map(|(p, d)| (p.as_str(), d.as_slice())));
        let message = commit_message(&status.subject(), &status.message, &status.trailers());
        let oid = commit_on_chain(&self.repo(), expected, &all, trees, &message)?;
        self.move_ref(&key.ref_name(), expected, Some(oid), &status.subject())?;
        Ok(oid)
    }

    /// Deletes a task's ref if its tip is still `expected`.
    pub fn delete(&self, key: &TaskKey, expected: Oid) -> Result<(), StateError> {
        self.move_ref(&key.ref_name(), Some(expected), None, "plancd: prune")
    }

    /// Every workflow record.
    pub fn workflows(&self) -> Result<BTreeMap<String, (Oid, WorkflowRecord)>, StateError> {
        let repo = self.repo();
        let mut out = BTreeMap::new();
        for reference in repo.references_glob(&format!("{WORKFLOW_REFS}*"))? {
            let reference = reference?;
            let (Ok(name), Some(tip)) = (reference.name(), reference.target()) else { continue };
            let Some(wf) = name.strip_prefix(WORKFLOW_REFS).filter(|w| !w.contains('/')) else { continue };
            let bytes = read_blob(&repo, tip, "workflow.json")?.unwrap_or_default();
            let record = serde_json::from_slice(&bytes)
                .map_err(|e| StateError::Corrupt { ref_name: name.to_owned(), why: format!("workflow.json: {e}") })?;
            out.insert(wf.to_owned(), (tip, record));
        }
        Ok(out)
    }

    /// Writes a workflow record if the ref is still at `expected`.
    pub fn set_workflow(&self, record: &WorkflowRecord, expected: Option<Oid>) -> Result<Oid, StateError> {
        let json = serde_json::to_vec_pretty(record).expect("a record always serialises");
        let subject = format!("{} {}", if record.suspended { "Suspended" } else { "Active" }, record.workflow_id);
        let mut trailers = vec![("Plancd-Suspended", record.suspended.to_string())];
        if let Some(by) = &record.by {
            trailers.push(("Plancd-By", by.clone()));
        }
        let message = commit_message(&subject, &record.message, &trailers);
        let oid = commit_on_chain(&self.repo(), expected, &[("workflow.json", &json)], &[], &message)?;
        self.move_ref(&format!("{WORKFLOW_REFS}{}", record.workflow_id), expected, Some(oid), &subject)?;
        Ok(oid)
    }
}

impl Store {
    /// The latest reconcile request, handled or not.
    pub fn reconcile_request(&self) -> Result<Option<(Oid, ReconcileRequest)>, StateError> {
        let repo = self.repo();
        let Some(tip) = ref_target(&repo, REQUEST_REF)? else { return Ok(None) };
        let bytes = read_blob(&repo, tip, "request.json")?.unwrap_or_default();
        let request = serde_json::from_slice(&bytes)
            .map_err(|e| StateError::Corrupt { ref_name: REQUEST_REF.into(), why: format!("request.json: {e}") })?;
        Ok(Some((tip, request)))
    }

    /// Writes a request (or its acknowledgement) if the ref is still at `expected`.
    pub fn write_request(&self, request: &ReconcileRequest, expected: Option<Oid>) -> Result<Oid, StateError> {
        let json = serde_json::to_vec_pretty(request).expect("a request always serialises");
        let state = if request.handled_at.is_some() { "handled" } else { "requested" };
        let subject = format!("Reconcile {state} ({})", request.requested_at);
        let trailers = [("Plancd-Request", state.to_owned()), ("Plancd-Requested-At", request.requested_at.to_string())];
        let message = commit_message(&subject, &request.outcome, &trailers);
        let oid = commit_on_chain(&self.repo(), expected, &[("request.json", &json)], &[], &message)?;
        self.move_ref(REQUEST_REF, expected, Some(oid), &subject)?;
        Ok(oid)
    }
}

/// Runs `f`, which blocks (a `git` process), without stalling the other tasks of a
/// multi-threaded runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// plancd's identity on the commits it writes.
pub fn signature() -> Result<Signature<'static>, git2::Error> {
    let now = jiff::Timestamp::now();
    Signature::new("plancd", "plancd@localhost", &git2::Time::new(now.as_second(), 0))
}

fn ref_target(repo: &Repository, name: &str) -> Result<Option<Oid>, StateError> {
    match repo.find_reference(name) {
        Ok(r) => Ok(r.target()),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_blob(repo: &Repository, commit: Oid, path: &str) -> Result<Option<Vec<u8>>, StateError> {
    let tree = repo.find_commit(commit)?.tree()?;
    let Ok(entry) = tree.get_path(Path::new(path)) else { return Ok(None) };
    Ok(repo.find_blob(entry.id()).ok().map(|b| b.content().to_vec()))
}

/// A commit whose parent is `parent` (if any) and whose tree is the parent's with `files`
/// written into it; no ref moves.
fn commit_on_chain(
    repo: &Repository,
    parent: Option<Oid>,
    files: &[(&str, &[u8])],
    trees: &[(String, Oid)],
    message: &str,
) -> Result<Oid, StateError> {
    let parent = parent.map(|p| repo.find_commit(p)).transpose()?;
    let sig = signature()?;
    Ok(objects::retrying(|| {
        let base = match &parent {
            Some(p) => p.tree()?,
            None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
        };
        let mut update = git2::build::TreeUpdateBuilder::new();
        for (path, data) in files {
            update.upsert(*path, repo.blob(data)?, git2::FileMode::Blob);
        }
        for (path, tree) in trees {
            update.upsert(path.as_str(), *tree, git2::FileMode::Tree);
        }
        let tree = repo.find_tree(update.create_updated(repo, &base)?)?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(None, &sig, &sig, message, &tree, &parents)
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        Repository::init(dir.path()).unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn status(phase: Phase, attempt: u32) -> TaskStatus {
        let mut s = TaskStatus::new("wf", "t1", phase, jiff::Timestamp::now());
        s.attempt = attempt;
        s
    }

    #[test]
    fn appends_chain_and_list_reads_trailers() {
        let (_dir, store) = store();
        let key = TaskKey::new("wf", "t1");
        let first = store.append(&key, None, &status(Phase::Running, 1), &[("attempts/1/agent.log".into(), b"hi".to_vec())]).unwrap();
        let second = store.append(&key, Some(first), &status(Phase::Succeeded, 1), &[]).unwrap();
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[&key].phase, Phase::Succeeded);
        assert_eq!(listed[&key].tip, second);
        // The log of the earlier commit is still in the tip's tree.
        assert_eq!(store.read_file(&key, "attempts/1/agent.log").unwrap().as_deref(), Some(&b"hi"[..]));
        assert_eq!(store.list_files(&key, "attempts/1").unwrap(), ["agent.log"]);
        let (tip, full) = store.status(&key).unwrap().unwrap();
        assert_eq!((tip, full.phase), (second, Phase::Succeeded));
        assert_eq!(store.repo().find_commit(second).unwrap().parent_id(0).unwrap(), first);
    }

    /// An authority that takes every write and, while it does, lets `meanwhile` move the
    /// local ref (what a concurrent look at the remote does).
    struct Meanwhile(fn(&Repository, &str, Oid));

    impl Authority for Meanwhile {
        fn swap(&self, repo: &Path, name: &str, _: Option<Oid>, new: Option<Oid>) -> Result<Option<Option<Oid>>, String> {
            (self.0)(&Repository::open(repo).unwrap(), name, new.unwrap());
            Ok(None)
        }
        fn refresh(&self) -> Result<(), String> {
            Ok(())
        }
        fn tip(&self, _: &str) -> Result<Option<Oid>, String> {
            Ok(None)
        }
    }

    #[test]
    fn a_later_record_brought_in_meanwhile_stays_and_anything_else_follows_the_authority() {
        // Another writer's record on top of ours arrived while ours was being pushed: it stays.
        let (_dir, store) = store();
        let store = store.with_authority(Arc::new(Meanwhile(|repo, name, new| {
            let parent = repo.find_commit(new).unwrap();
            let sig = signature().unwrap();
            let later = repo.commit(None, &sig, &sig, "Succeeded by another", &parent.tree().unwrap(), &[&parent]).unwrap();
            repo.reference(name, later, true, "fetch").unwrap();
        })));
        let key = TaskKey::new("wf", "t1");
        let ours = store.append(&key, None, &status(Phase::Running, 1), &[]).unwrap();
        let (tip, _) = store.status(&key).unwrap().unwrap();
        assert_ne!(tip, ours);
        assert_eq!(store.repo().find_commit(tip).unwrap().parent_id(0).unwrap(), ours);

        // A value that does not descend from ours is replaced by what the authority took.
        let (_dir, store) = store_with(Meanwhile(|repo, name, _| {
            let sig = signature().unwrap();
            let tree = repo.treebuilder(None).unwrap().write().unwrap();
            let stray = repo.commit(None, &sig, &sig, "stray", &repo.find_tree(tree).unwrap(), &[]).unwrap();
            repo.reference(name, stray, true, "fetch").unwrap();
        }));
        let ours = store.append(&key, None, &status(Phase::Running, 1), &[]).unwrap();
        assert_eq!(store.status(&key).unwrap().map(|(tip, _)| tip), Some(ours));
    }

    fn store_with(authority: Meanwhile) -> (tempfile::TempDir, Store) {
        let (dir, store) = store();
        (dir, store.with_authority(Arc::new(authority)))
    }

    #[test]
    fn a_stale_writer_loses_the_compare_and_swap() {
        let (_dir, store) = store();
        let key = TaskKey::new("wf", "t1");
        let first = store.append(&key, None, &status(Phase::Running, 1), &[]).unwrap();
        assert!(matches!(store.append(&key, None, &status(Phase::Running, 1), &[]), Err(StateError::Conflict { .. })));
        let second = store.append(&key, Some(first), &status(Phase::Failed, 1), &[]).unwrap();
        match store.append(&key, Some(first), &status(Phase::Succeeded, 1), &[]) {
            Err(StateError::Conflict { actual, .. }) => assert_eq!(actual, Some(second)),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(matches!(store.delete(&key, first), Err(StateError::Conflict { .. })));
        store.delete(&key, second).unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn a_lock_nobody_records_is_cleared_past_the_bound_and_a_fresh_one_waited_for() {
        let (dir, store) = store();
        let key = TaskKey::new("wf", "t1");
        let lock = dir.path().join(".git").join(format!("{}.lock", key.ref_name()));
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        std::fs::write(&lock, "").unwrap();
        let old = std::time::SystemTime::now() - refs::UNRECORDED_STALE_LOCK - std::time::Duration::from_secs(1);
        std::fs::File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
        store.append(&key, None, &status(Phase::Running, 1), &[]).unwrap();
        assert!(!lock.exists());
        // A fresh lock is someone's: the write waits until it is gone (here: taken away).
        std::fs::write(&lock, "").unwrap();
        let remover = std::thread::spawn({
            let lock = lock.clone();
            move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                std::fs::remove_file(lock).unwrap();
            }
        });
        let tip = store.tip(&key).unwrap();
        store.append(&key, tip, &status(Phase::Succeeded, 1), &[]).unwrap();
        remover.join().unwrap();
        assert_eq!(store.state(&key).unwrap().unwrap().phase, Phase::Succeeded);
    }

    /// Seen 14: a task ref that cannot be read is that task's problem, named with its damage,
    /// never the listing's.
    #[test]
    fn broken_task_refs_are_listed_apart_with_their_damage() {
        let (dir, store) = store();
        let ok = TaskKey::new("wf", "ok");
        store.append(&ok, None, &status(Phase::Succeeded, 1), &[]).unwrap();
        let repo = store.repo();
        let blob = repo.blob(b"not a commit").unwrap();
        let plain = commit_on_chain(&repo, None, &[("x", b"y")], &[], "no status here").unwrap();
        repo.reference("refs/ai/tasks/wf/blob", blob, false, "test").unwrap();
        repo.reference("refs/ai/tasks/wf/plain", plain, false, "test").unwrap();
        drop(repo);
        let garbage = dir.path().join(".git/refs/ai/tasks/wf/garbage");
        std::fs::write(&garbage, "garbage\n").unwrap();
        let (tasks, broken) = store.scan().unwrap();
        assert_eq!(tasks.keys().collect::<Vec<_>>(), [&ok]);
        let found: Vec<(&str, &str)> = broken.iter().map(|b| (b.key.task.as_str(), b.damage.reason())).collect();
        assert_eq!(found, [("blob", "TipNotACommit"), ("garbage", "RefFileCorrupt"), ("plain", "TipNotAStatus")]);
        assert!(
            broken[1].hint().contains(&format!("rm {}", garbage.canonicalize().unwrap().display())) || broken[1].hint().contains("rm ")
        );
        assert!(broken[0].hint().contains("git update-ref -d refs/ai/tasks/wf/blob"));
        assert_eq!(store.list().unwrap().len(), 1);
    }

    /// A caller that holds a handle and asks for another while every other one is busy gets
    /// one once it comes free, rather than waiting for its own (a deadlock seen in a stress run).
    #[test]
    fn a_nested_handle_request_waits_for_any_handle_not_its_own() {
        let (_dir, store) = store();
        let store = Arc::new(store);
        let (mine_taken, others_go) = (Arc::new(std::sync::Barrier::new(2)), Arc::new(std::sync::Barrier::new(HANDLES)));
        let (tx, rx) = std::sync::mpsc::channel();
        // The first handle is this caller's; the others are held for a moment by other threads.
        std::thread::spawn({
            let (store, mine_taken, others_go) = (store.clone(), mine_taken.clone(), others_go.clone());
            move || {
                let mine = store.repo();
                mine_taken.wait();
                others_go.wait();
                let nested = store.repo();
                drop((nested, mine));
                tx.send(()).unwrap();
            }
        });
        mine_taken.wait();
        for _ in 1..HANDLES {
            let (store, others_go) = (store.clone(), others_go.clone());
            std::thread::spawn(move || {
                let _held = store.repo();
                others_go.wait();
                std::thread::sleep(std::time::Duration::from_millis(200));
            });
        }
        assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok(), "the nested request got a handle");
    }

    #[test]
    fn workflow_records_round_trip() {
        let (_dir, store) = store();
        let record =
            WorkflowRecord { workflow_id: "wf".into(), suspended: true, message: "by test".into(), by: Some("ann@example.com".into()) };
        let tip = store.set_workflow(&record, None).unwrap();
        let all = store.workflows().unwrap();
        assert_eq!(all["wf"], (tip, record));
    }

    #[test]
    fn keys_parse_from_refs_and_arguments() {
        assert_eq!(TaskKey::from_ref("refs/ai/tasks/wf/t1"), Some(TaskKey::new("wf", "t1")));
        assert_eq!(TaskKey::from_ref("refs/ai/tasks/wf"), None);
        assert_eq!(TaskKey::parse("wf/t1").map(|k| k.ref_name()).as_deref(), Some("refs/ai/tasks/wf/t1"));
        assert_eq!(TaskKey::parse("wf"), None);
    }
}
