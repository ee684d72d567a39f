//! `plancd logs WF/TASK [--attempt N] [-f]`: an attempt's logs, from the task's ref, or as a
//! running attempt writes them.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use super::manage::ManageError;
use crate::live::{self, LOG_NAMES, LiveView};
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

/// What one request of a follower elsewhere gets: the attempt's state and each log's output
/// past the offsets it already has (`plancd serve`'s `/api/v1/live/<wf>/<task>`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveChunk {
    /// The attempt.
    pub attempt: u32,
    /// Its step.
    pub step: live::Step,
    /// Whether it still runs; once false, this chunk holds the rest of its output.
    pub running: bool,
    /// Each log, in step order.
    pub logs: Vec<LiveLog>,
}

/// New output of one live log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveLog {
    /// `agent.log`, `checks.log`, `tests.log` or `probe.log`.
    pub name: &'static str,
    /// Where the next request starts reading.
    pub offset: u64,
    /// The output past the requested offset.
    pub text: String,
}

/// `key`'s latest live attempt in the repository whose git folder is `git_dir`, with its logs'
/// output past `offsets` (one per log in step order; missing ones are 0). `None` when the task
/// has no live attempt.
pub fn live_chunk(git_dir: &Path, key: &TaskKey, offsets: &[u64]) -> Option<LiveChunk> {
    let view = live::latest(git_dir, key)?;
    let running = view.running();
    let logs = LOG_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut offset = offsets.get(i).copied().unwrap_or(0);
            let data = read_from(&view.dir.join(name), &mut offset, running);
            LiveLog { name, offset, text: String::from_utf8_lossy(&data).into_owned() }
        })
        .collect();
    Some(LiveChunk { attempt: view.attempt, step: view.marker.step, running, logs })
}

/// What `key`'s attempt running now in this repository has written so far; `None` when no
/// attempt of `key` runs.
pub fn live_so_far(repo: &Path, key: &TaskKey) -> Result<Option<LiveChunk>, ManageError> {
    let store = Store::open(repo)?;
    let git_dir = store.repo().path().to_path_buf();
    Ok(live_chunk(&git_dir, key, &[]).filter(|c| c.running))
}

/// How often a follower looks for more output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The attempt of `key` that runs now in this repository (by any process), if one does.
pub fn running_attempt(repo: &Path, key: &TaskKey) -> Result<Option<LiveView>, ManageError> {
    let store = Store::open(repo)?;
    let git_dir = store.repo().path().to_path_buf();
    Ok(live::latest(&git_dir, key).filter(LiveView::running))
}

/// Follows `key`'s running attempt: hands each log's new output to `on` (log name, bytes) as
/// the attempt writes it, until the attempt ends; then returns it (with its last step). `None`
/// when no attempt of `key` runs now.
pub fn follow(repo: &Path, key: &TaskKey, on: &mut dyn FnMut(&str, &[u8])) -> Result<Option<LiveView>, ManageError> {
    let store = Store::open(repo)?;
    let Some(mut view) = live::latest(store.repo().path(), key).filter(LiveView::running) else { return Ok(None) };
    let mut offsets = [0u64; LOG_NAMES.len()];
    loop {
        // The marker first: once it says the attempt ended, one more read gets the rest. The
        // task's record too: a marker left by a process whose pid was taken again (a restarted
        // container's pid 1) must not be followed for ever.
        view.refresh();
        let recorded = store.status(key).ok().flatten().map(|(_, s)| (s.phase, s.attempt));
        let running = view.running() && !recorded.is_some_and(|(phase, n)| record_says_ended(phase, n, view.attempt));
        for (name, offset) in LOG_NAMES.iter().zip(offsets.iter_mut()) {
            let fresh = read_from(&view.dir.join(name), offset, running);
            if !fresh.is_empty() {
                on(name, &fresh);
            }
        }
        if !running {
            return Ok(Some(view));
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Whether the task's record (its phase, for its attempt `recorded`) says that live attempt
/// `live` is over: a later attempt started, or this one's record is no longer held. A record
/// of an earlier attempt says nothing (the claim may not have reached this clone yet).
fn record_says_ended(phase: crate::state::Phase, recorded: u32, live: u32) -> bool {
    recorded > live || (recorded == live && !phase.is_held())
}

/// What `path` holds past `offset`, which moves past it: whole lines only while the writer
/// may be in the middle of one, everything once it is done.
fn read_from(path: &Path, offset: &mut u64, writing: bool) -> Vec<u8> {
    let mut data = Vec::new();
    let Ok(mut file) = std::fs::File::open(path) else { return data };
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_end(&mut data).is_err() {
        return Vec::new();
    }
    if writing {
        data.truncate(data.iter().rposition(|b| *b == b'\n').map_or(0, |end| end + 1));
    }
    *offset += data.len() as u64;
    data
}

/// Why a controller's live attempt could not be followed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteFollowError {
    /// The controller did not answer, or answered something else than its API.
    #[error("{url}: {why}")]
    Unreachable {
        /// The URL asked (without credentials).
        url: String,
        /// Why.
        why: String,
    },
}

/// Follows `key`'s running attempt at the controller serving `base` (`plancd serve`'s
/// `/api/v1/live`): hands each log's new output to `on` as it comes, until the attempt ends;
/// returns its last answer. `None` when no attempt of `key` runs there.
pub async fn follow_remote(
    base: &str,
    key: &TaskKey,
    on: &mut (dyn FnMut(&str, &str) + Send),
) -> Result<Option<(u32, live::Step)>, RemoteFollowError> {
    let mut offsets = [0u64; LOG_NAMES.len()];
    loop {
        let list: Vec<String> = offsets.iter().map(ToString::to_string).collect();
        let url = format!("{}/api/v1/live/{}/{}?offsets={}", base.trim_end_matches('/'), key.workflow, key.task, list.join(","));
        let shown = crate::remote::redact_url(&url);
        let fail = |why: String| RemoteFollowError::Unreachable { url: shown.clone(), why };
        let response = crate::agent::model::http::client().get(&url).send().await.map_err(|e| fail(e.to_string()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(fail(format!("answered {}", response.status())));
        }
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        let chunk: serde_json::Value = serde_json::from_str(&text).map_err(|e| fail(format!("not the live API: {e}")))?;
        for (i, log) in chunk["logs"].as_array().into_iter().flatten().enumerate().take(offsets.len()) {
            offsets[i] = log["offset"].as_u64().unwrap_or(offsets[i]);
            if let (Some(name), Some(text)) = (log["name"].as_str(), log["text"].as_str())
                && !text.is_empty()
            {
                on(name, text);
            }
        }
        if chunk["running"].as_bool() != Some(true) {
            let attempt = chunk["attempt"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
            let step = serde_json::from_value(chunk["step"].clone()).unwrap_or(live::Step::Preparing);
            return Ok(Some((attempt, step)));
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_record_of_this_attempt_or_a_later_one_ends_a_live_attempt() {
        use crate::state::Phase;
        let rows = [
            ("running, same attempt", Phase::Running, 2, 2, false),
            ("claimed, same attempt", Phase::Claimed, 2, 2, false),
            ("finished, same attempt", Phase::Failed, 2, 2, true),
            ("released, same attempt", Phase::Released, 2, 2, true),
            ("a later attempt runs", Phase::Running, 3, 2, true),
            ("the claim is not here yet", Phase::Failed, 1, 2, false),
        ];
        for (name, phase, recorded, live, ended) in rows {
            assert_eq!(record_says_ended(phase, recorded, live), ended, "{name}");
        }
    }

    #[test]
    fn a_follower_reads_whole_lines_while_the_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.log");
        let mut offset = 0;
        assert!(read_from(&path, &mut offset, true).is_empty(), "no file yet");
        std::fs::write(&path, "one\ntw").unwrap();
        assert_eq!(read_from(&path, &mut offset, true), b"one\n");
        assert!(read_from(&path, &mut offset, true).is_empty());
        std::fs::write(&path, "one\ntwo").unwrap();
        assert_eq!(read_from(&path, &mut offset, false), b"two", "the rest once it is done");
    }
}
