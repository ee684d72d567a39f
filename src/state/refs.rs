//! Ref writes as compare-and-swaps under the ref's own lock, and recovery of a lock only when
//! its writer is certainly gone.
//!
//! A ref moves inside a git2 transaction: `<ref>.lock` is taken first, and only then is the
//! ref's value compared with the expected one, so two writers (threads, processes, plancd or
//! git) never both win, creation included. While it holds a lock, a writer records who it is
//! in `<git dir>/plancd/writers/`. A lock whose recorded writer is a dead process of this host is
//! removed at once; a live writer's lock is waited for, however slow it is. A lock that no
//! writer records (git's own, or one whose writer was killed in the instant between taking it
//! and recording itself) is removed only once it is [`UNRECORDED_STALE_LOCK`] old: git holds
//! its ref locks for milliseconds.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use git2::{ErrorCode, Oid, Repository};

use super::{Holder, StateError, fault, signature};

/// How long a write waits for a lock that another writer holds before it counts as a conflict.
const WAIT: Duration = Duration::from_secs(5);

/// How old a lock that no plancd writer records must be before it is taken for a leftover.
pub const UNRECORDED_STALE_LOCK: Duration = Duration::from_secs(600);

/// Where writers record the locks they hold, under the repository's (common) git dir.
const WRITERS: &str = "plancd/writers";

/// Moves `name` from `expected` to `new` atomically (`None`: absent). The conflict case is
/// told apart from other git errors, so callers can re-read and move on.
pub fn cas_ref(repo: &Repository, name: &str, expected: Option<Oid>, new: Option<Oid>, log: &str) -> Result<(), StateError> {
    if fault::write_fails() {
        return Err(StateError::Git(git2::Error::new(ErrorCode::GenericError, git2::ErrorClass::Os, "no space left on device (injected)")));
    }
    let result = with_lock_recovery(repo, name, || try_cas(repo, name, expected, new, log));
    match result {
        Ok(Some(conflict)) => Err(conflict),
        Ok(None) => {
            fault::after_ref_write();
            Ok(())
        }
        Err(e) if matches!(e.code(), ErrorCode::Exists | ErrorCode::Modified | ErrorCode::Locked) => {
            Err(StateError::Conflict { ref_name: name.to_owned(), expected, actual: super::ref_target(repo, name)? })
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs a ref write, waiting (up to [`WAIT`]) for a lock another writer holds and removing
/// one whose writer is gone ([`recover`]).
fn with_lock_recovery<T>(repo: &Repository, name: &str, mut write: impl FnMut() -> Result<T, git2::Error>) -> Result<T, git2::Error> {
    let started = Instant::now();
    loop {
        match write() {
            Err(e) if e.code() == ErrorCode::Locked && started.elapsed() < WAIT => {
                recover(repo.commondir(), name);
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// One compare-and-swap under the ref's lock: `Ok(Some(conflict))` when the ref is not at
/// `expected`.
fn try_cas(repo: &Repository, name: &str, expected: Option<Oid>, new: Option<Oid>, log: &str) -> Result<Option<StateError>, git2::Error> {
    // The writer is recorded before it takes the lock, so that a lock of a live plancd writer
    // always has a record; the lock's inode is added once it is held.
    let record = WriterRecord::create(repo.commondir(), name);
    let mut tx = repo.transaction()?;
    tx.lock_ref(name)?;
    record.locked(repo.commondir(), name);
    fault::while_ref_locked();
    let staged = stage(repo, &mut tx, name, expected, new, log);
    let outcome = match staged {
        Ok(None) => tx.commit().map(|()| None),
        other => {
            drop(tx);
            other
        }
    };
    // Only now that the lock is gone: a lock without its record would be taken for git's.
    drop(record);
    outcome
}

/// Compares the locked ref with `expected` and stages its move to `new`.
fn stage(
    repo: &Repository,
    tx: &mut git2::Transaction<'_>,
    name: &str,
    expected: Option<Oid>,
    new: Option<Oid>,
    log: &str,
) -> Result<Option<StateError>, git2::Error> {
    let actual = match repo.find_reference(name) {
        Ok(r) => r.target(),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(e),
    };
    if actual != expected {
        return Ok(Some(StateError::Conflict { ref_name: name.to_owned(), expected, actual }));
    }
    match new {
        Some(new) => tx.set_target(name, new, Some(&signature()?), log)?,
        None if actual.is_some() => tx.remove(name)?,
        None => {}
    }
    Ok(None)
}

/// What is known about the writer of a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockVerdict {
    /// A recorded writer is alive (or on another host): wait.
    Live,
    /// Every writer recorded for it is a dead process of this host: remove it.
    Dead,
    /// No writer records it, and it is [`UNRECORDED_STALE_LOCK`] old: remove it.
    StaleUnrecorded,
    /// No writer records it yet (git's own, or a writer about to record itself): wait.
    Unrecorded,
}

/// A writer's record of a lock it holds: who, and since when.
#[derive(Debug, Clone)]
pub struct Record {
    /// The writer.
    pub holder: Holder,
    /// The lock, relative to the git dir (`refs/ai/tasks/wf/t.lock`).
    pub lock: String,
    /// The lock file's inode when the record was written: git writes into its lock, which moves
    /// the lock's time past the record's, but never changes the inode.
    pub ino: Option<u64>,
}

/// Judges the lock `lock` (inode `ino`), taken at `taken`: the records of that very lock file
/// speak for it (by inode; a record without one was written before its writer took the lock of
/// that name and never got further); others are leftovers of an earlier lock of the same name.
pub fn judge(
    records: &[Record],
    (lock, ino): (&str, u64),
    taken: SystemTime,
    now: SystemTime,
    is_dead: impl Fn(&Holder) -> bool,
) -> LockVerdict {
    let mine: Vec<&Record> = records.iter().filter(|r| r.lock == lock && r.ino.is_none_or(|i| i == ino)).collect();
    if mine.iter().any(|r| !is_dead(&r.holder)) {
        LockVerdict::Live
    } else if !mine.is_empty() {
        LockVerdict::Dead
    } else if now.duration_since(taken).is_ok_and(|age| age >= UNRECORDED_STALE_LOCK) {
        LockVerdict::StaleUnrecorded
    } else {
        LockVerdict::Unrecorded
    }
}

/// Removes `<name>.lock` and `packed-refs.lock` if their writers are gone, and the records of
/// dead writers that speak for no lock.
fn recover(git_dir: &Path, name: &str) {
    let records = read_records(git_dir);
    let now = SystemTime::now();
    for lock in [format!("{name}.lock"), "packed-refs.lock".to_owned()] {
        let path = git_dir.join(&lock);
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let Ok(taken) = meta.modified() else { continue };
        let all: Vec<Record> = records.iter().map(|(_, r)| r.clone()).collect();
        let verdict = judge(&all, (&lock, meta.ino()), taken, now, Holder::is_dead_here);
        if matches!(verdict, LockVerdict::Dead | LockVerdict::StaleUnrecorded) {
            let why = if verdict == LockVerdict::Dead { "its writer died" } else { "no writer records it, and it is old" };
            tracing::warn!(lock = %path.display(), why, "removing a ref lock whose writer is gone");
            let _ = std::fs::remove_file(&path);
        }
    }
    for (file, record) in &records {
        let lock = git_dir.join(&record.lock);
        let speaks_for_it = std::fs::metadata(&lock).is_ok_and(|m| record.ino.is_none_or(|i| i == m.ino()));
        if !speaks_for_it && record.holder.is_dead_here() {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Every writer record, with its file.
fn read_records(git_dir: &Path) -> Vec<(PathBuf, Record)> {
    let Ok(entries) = std::fs::read_dir(git_dir.join(WRITERS)) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let mut lines = text.lines();
            let (holder, lock) = (lines.next()?, lines.next()?);
            let ino = lines.next().and_then(|i| i.trim().parse().ok());
            let record = Record { holder: Holder::parse(holder)?, lock: lock.trim().to_owned(), ino };
            Some((entry.path(), record))
        })
        .collect()
}

/// This process's record of a lock it takes, removed when dropped. Written (whole, by a rename)
/// before the lock is taken, then with the lock's inode once it is held. Best effort: a writer
/// that cannot record itself (a full disk) still writes, and its lock counts as unrecorded.
pub struct WriterRecord(Option<(PathBuf, Holder)>);

impl WriterRecord {
    /// Records that this process takes `<name>.lock`.
    pub fn create(git_dir: &Path, name: &str) -> WriterRecord {
        static ME: OnceLock<Holder> = OnceLock::new();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let me = ME.get_or_init(Holder::current);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let holder = Holder { nonce: n.to_string(), ..me.clone() };
        let dir = git_dir.join(WRITERS);
        let path = dir.join(format!("{}-{}-{n}", me.host.replace('/', "_"), me.pid));
        let written = std::fs::create_dir_all(&dir).and_then(|()| write_whole(&path, &format!("{holder}\n{name}.lock\n")));
        WriterRecord(written.ok().map(|()| (path, holder)))
    }

    /// Adds the inode of the lock now held to the record.
    pub fn locked(&self, git_dir: &Path, name: &str) {
        let Some((path, holder)) = &self.0 else { return };
        if let Ok(meta) = std::fs::metadata(git_dir.join(format!("{name}.lock"))) {
            let _ = write_whole(path, &format!("{holder}\n{name}.lock\n{}\n", meta.ino()));
        }
    }
}

/// Writes `text` to `path` whole or not at all: a kill never leaves a half-written record.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

impl Drop for WriterRecord {
    fn drop(&mut self) {
        if let Some((path, _)) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
#[path = "refs_tests.rs"]
mod tests;
