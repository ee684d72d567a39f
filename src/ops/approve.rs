//! `plancd approve WF/TASK`: records a person's approval of a task's current spec.

use super::manage::{ManageError, ManageOptions, Recorded, Subject, operate};
use crate::reconcile::operations::Operation;
use crate::state::TaskKey;

/// Approves `key` for the spec hash it has at the watched commit.
pub fn approve(opts: &ManageOptions, key: &TaskKey) -> Result<Recorded, ManageError> {
    operate(opts, &Operation::Approve, &Subject::Task(key.clone()))
}
