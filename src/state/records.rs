//! Records already read, by the commit they were read from. A status commit never changes, so
//! a reader that keeps one of these (the dashboard) reads again only the task refs that moved.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use git2::Oid;

use super::{TaskState, TaskStatus};

/// The records read so far, by commit: the state a listing reads from a tip's message and the
/// full `status.json` a task page reads.
#[derive(Debug, Default)]
pub struct RecordCache {
    states: Mutex<HashMap<Oid, TaskState>>,
    statuses: Mutex<HashMap<Oid, TaskStatus>>,
}

impl RecordCache {
    /// The state read from commit `tip`, if it was read before.
    pub(super) fn state(&self, tip: Oid) -> Option<TaskState> {
        self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&tip).cloned()
    }

    /// Keeps the state read from `tip`.
    pub(super) fn keep_state(&self, tip: Oid, state: &TaskState) {
        self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(tip, state.clone());
    }

    /// The status record read from commit `tip`, if it was read before.
    pub(super) fn status(&self, tip: Oid) -> Option<TaskStatus> {
        self.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&tip).cloned()
    }

    /// Keeps the status record read from `tip`.
    pub(super) fn keep_status(&self, tip: Oid, status: &TaskStatus) {
        self.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(tip, status.clone());
    }

    /// Forgets the records of commits that are no task's tip any more, so that the cache holds
    /// at most one record of each kind per task.
    pub fn retain_tips<'a>(&self, tips: impl IntoIterator<Item = &'a Oid>) {
        let tips: HashSet<Oid> = tips.into_iter().copied().collect();
        self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|oid, _| tips.contains(oid));
        self.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|oid, _| tips.contains(oid));
    }

    /// How many records it holds: states and status records.
    pub fn sizes(&self) -> (usize, usize) {
        let states = self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
        (states, self.statuses.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::{Phase, Store, TaskKey};

    #[test]
    fn a_store_with_records_reads_each_commit_once_and_a_moved_ref_anew() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let records = Arc::new(RecordCache::default());
        let store = Store::open(dir.path()).unwrap().with_records(records.clone());
        let key = TaskKey::new("wf", "t1");
        let record = |phase: Phase, message: &str| {
            let mut s = TaskStatus::new("wf", "t1", phase, jiff::Timestamp::now());
            s.message = message.into();
            s
        };
        let first = store.append(&key, None, &record(Phase::Running, "first"), &[]).unwrap();
        assert_eq!(store.status(&key).unwrap().unwrap().1.message, "first");
        assert_eq!(store.list().unwrap()[&key].phase, Phase::Running);
        assert_eq!(records.sizes(), (1, 1), "one state and one record read");

        // Another store of the same reader finds them kept; a moved ref is read anew.
        let again = Store::open(dir.path()).unwrap().with_records(records.clone());
        assert_eq!(again.status(&key).unwrap().unwrap().1.message, "first");
        let second = again.append(&key, Some(first), &record(Phase::Succeeded, "second"), &[]).unwrap();
        assert_eq!(again.status(&key).unwrap().unwrap(), (second, record_read(&again, &key)));
        assert_eq!(again.list().unwrap()[&key].phase, Phase::Succeeded);

        // A whole listing lets go of the records of commits that are no tip any more.
        assert_eq!(records.sizes(), (1, 1), "only the tip's records are kept");
    }

    /// The record at `key`'s tip as a store without a cache reads it.
    fn record_read(store: &Store, key: &TaskKey) -> TaskStatus {
        Store::open(store.path()).unwrap().status(key).unwrap().unwrap().1
    }
}
