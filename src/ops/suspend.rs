//! `plancd suspend WF` and `plancd resume WF`: stop and restart reconciliation of a workflow.

use super::manage::{ManageError, ManageOptions, Recorded, Subject, operate};
use crate::reconcile::operations::Operation;

/// Suspends (`true`) or resumes (`false`) a workflow.
pub fn set_suspended(opts: &ManageOptions, workflow: &str, suspended: bool) -> Result<Recorded, ManageError> {
    let op = if suspended { Operation::Suspend } else { Operation::Resume };
    operate(opts, &op, &Subject::Workflow(workflow.to_owned()))
}
