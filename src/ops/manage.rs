//! What approve, retry, suspend and resume share: appending a record to a task's chain by
//! compare-and-swap, retrying when the ref moves underneath.

use jiff::Timestamp;

use crate::reconcile::LoadError;
use crate::state::{Phase, StateError, Store, TaskKey, TaskStatus};

/// Why a management command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No such task in the plans (or in the refs).
    #[error("no task {0} (check `plancd status`)")]
    UnknownTask(TaskKey),
    /// The task is not in a state the command applies to.
    #[error("{0}")]
    Refused(String),
    /// The ref kept moving.
    #[error("{0} keeps changing; try again")]
    Busy(String),
    /// The plans could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Git failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl ManageError {
    /// Whether the fault is in what the user asked (exit 2) rather than outside (exit 3).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ManageError::UnknownTask(_) | ManageError::Refused(_) => true,
            ManageError::Load(e) => !matches!(e, LoadError::Git(_) | LoadError::Io(_)),
            ManageError::Busy(_) | ManageError::State(_) => false,
        }
    }
}

/// Appends a `phase` record to `key`'s chain, shaped by `edit` from the current record (a fresh
/// one when the task never ran). Retries a few times if another writer gets there first.
pub fn append_record(
    store: &Store,
    key: &TaskKey,
    phase: Phase,
    mut edit: impl FnMut(&mut TaskStatus) -> Result<(), ManageError>,
) -> Result<(), ManageError> {
    for _ in 0..5 {
        let current = store.status(key)?;
        let expected = current.as_ref().map(|(tip, _)| *tip);
        if let Some((_, prev)) = &current
            && prev.phase.is_held()
            && prev.lease_expires_at.is_some_and(|t| t > Timestamp::now())
        {
            return Err(ManageError::Refused(format!(
                "{key} is {} (attempt {}); try again when it has finished",
                prev.phase, prev.attempt
            )));
        }
        let mut record = match &current {
            Some((_, prev)) => {
                let mut next = prev.next(phase, Timestamp::now());
                next.phase = prev.phase; // `edit` may look at where the task stands
                next
            }
            None => TaskStatus::new(&key.workflow, &key.task, Phase::Pending, Timestamp::now()),
        };
        edit(&mut record)?;
        record.phase = phase;
        match store.append(key, expected, &record, &[]) {
            Ok(_) => return Ok(()),
            Err(StateError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ManageError::Busy(key.to_string()))
}
