//! `plancd retry WF/TASK [-m INSTRUCTIONS]`: another attempt of a failed or escalated task with a
//! fresh count of attempts; with instructions, also of a task that succeeded.

use super::manage::{ManageError, ManageOptions, Recorded, Subject, operate};
use crate::reconcile::operations::Operation;
use crate::state::TaskKey;

/// Re-opens `key`, with `instructions` for its next attempt when there are some.
pub fn retry(opts: &ManageOptions, key: &TaskKey, instructions: Option<&str>) -> Result<Recorded, ManageError> {
    let op = match instructions.map(str::trim).filter(|i| !i.is_empty()) {
        Some(text) => Operation::Revise { instructions: text.to_owned(), url: None },
        None => Operation::Retry,
    };
    operate(opts, &op, &Subject::Task(key.clone()))
}
