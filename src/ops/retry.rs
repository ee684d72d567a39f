//! `plancd retry WF/TASK`: re-opens a failed or escalated task with a fresh count of attempts.

use std::path::Path;

use super::manage::{ManageError, append_record};
use crate::state::{Phase, Store, TaskKey};

/// Re-opens `key`. Returns the number the next attempt will have.
pub fn retry(repo: &Path, key: &TaskKey, who: &str) -> Result<u32, ManageError> {
    let store = Store::open(repo)?;
    let mut next = 0;
    append_record(&store, key, Phase::Pending, |s| {
        if !matches!(s.phase, Phase::Failed | Phase::Escalated | Phase::BudgetExceeded) {
            return Err(ManageError::Refused(format!(
                "{key} is {}; only Failed, Escalated or BudgetExceeded tasks can be retried",
                s.phase
            )));
        }
        s.attempts_base = s.attempt;
        s.reason = Some("RetryRequested".into());
        s.message = format!("retry requested by {who}");
        next = s.attempt + 1;
        Ok(())
    })?;
    Ok(next)
}
