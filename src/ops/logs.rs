//! `plancd logs WF/TASK [--attempt N]`: an attempt's logs, from the task's ref.

use std::path::Path;

use super::manage::ManageError;
use crate::state::{Store, TaskKey};

/// The log files of one attempt, in the order they were written: agent, checks, tests, then
/// the report, the task file and a model agent's transcript.
pub struct AttemptLogs {
    /// The attempt.
    pub attempt: u32,
    /// (file name, content).
    pub files: Vec<(String, Vec<u8>)>,
}

/// The logs of `attempt`, or of the latest attempt.
pub fn logs(repo: &Path, key: &TaskKey, attempt: Option<u32>) -> Result<AttemptLogs, ManageError> {
    let store = Store::open(repo)?;
    let (_, status) = store.status(key)?.ok_or_else(|| ManageError::UnknownTask(key.clone()))?;
    // By default the latest attempt that left logs (an attempt that only recorded a result
    // published by an interrupted run has none of its own).
    let attempt = match attempt {
        Some(n) => n,
        None => (1..=status.attempt)
            .rev()
            .find(|n| store.list_files(key, &format!("attempts/{n}")).is_ok_and(|f| !f.is_empty()))
            .unwrap_or(status.attempt),
    };
    if attempt == 0 || attempt > status.attempt {
        return Err(ManageError::Missing(format!("{key} has no attempt {attempt} (latest: {})", status.attempt)));
    }
    let dir = format!("attempts/{attempt}");
    let mut names = store.list_files(key, &dir)?;
    let order = |n: &str| {
        ["agent.log", "checks.log", "tests.log", "report.json", "task.json", "transcript.jsonl"]
            .iter()
            .position(|x| *x == n)
            .unwrap_or(usize::MAX)
    };
    names.sort_by_key(|n| (order(n), n.clone()));
    let mut files = Vec::new();
    for name in names {
        if let Some(data) = store.read_file(key, &format!("{dir}/{name}"))? {
            files.push((name, data));
        }
    }
    Ok(AttemptLogs { attempt, files })
}
