//! `plancd approve WF/TASK`: records a person's approval of a task's current spec.

use std::path::Path;

use jiff::Timestamp;

use super::manage::{ManageError, append_record};
use crate::config::Env;
use crate::reconcile::Snapshot;
use crate::state::{Phase, Store, TaskKey};

/// Approves `key` for the spec hash it has at the watched commit. Returns that hash.
pub fn approve(repo: &Path, branch: Option<&str>, env: &Env, key: &TaskKey, who: &str) -> Result<String, ManageError> {
    let store = Store::open(repo)?;
    let snapshot = Snapshot::load(store.path(), branch, env)?;
    let task = snapshot.task(key).ok_or_else(|| ManageError::UnknownTask(key.clone()))?;
    if !snapshot.requires_approval(task) {
        let why = "requires_approval is not set, and its outputs name no protected path or test runner file";
        return Err(ManageError::Refused(format!("{key} does not require approval ({why})")));
    }
    let hash = snapshot.hashes[key].clone();
    append_record(&store, key, Phase::Approved, |s| {
        s.approved_spec_hash = Some(hash.clone());
        s.spec_hash = Some(hash.clone());
        s.reason = Some("Approved".into());
        s.message = format!("approved by {who} at {}", Timestamp::now());
        Ok(())
    })?;
    Ok(hash.to_string())
}
