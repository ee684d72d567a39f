//! `plancd suspend WF` and `plancd resume WF`: stop and restart reconciliation of a workflow.

use std::path::Path;

use super::manage::ManageError;
use crate::state::{StateError, Store, WorkflowRecord};

/// Suspends (`true`) or resumes (`false`) a workflow. Returns whether anything changed.
pub fn set_suspended(repo: &Path, workflow: &str, suspended: bool, who: &str) -> Result<bool, ManageError> {
    let store = Store::open(repo)?;
    for _ in 0..5 {
        let current = store.workflows()?.remove(workflow);
        if current.as_ref().is_some_and(|(_, r)| r.suspended == suspended) || (current.is_none() && !suspended) {
            return Ok(false);
        }
        let verb = if suspended { "suspended" } else { "resumed" };
        let record = WorkflowRecord { workflow_id: workflow.to_owned(), suspended, message: format!("{verb} by {who}") };
        match store.set_workflow(&record, current.map(|(tip, _)| tip)) {
            Ok(_) => return Ok(true),
            Err(StateError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ManageError::Busy(workflow.to_owned()))
}
