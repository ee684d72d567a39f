//! Live output of running attempts, outside git: `<git dir>/plancd/live/<wf>/<task>/<attempt>/`
//! holds a marker (which process runs it, its step, whether it ended) and one log per step,
//! appended as the sandboxed commands print, so that any process of the same repository can
//! follow an attempt before its logs are recorded in the task's ref.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use plancd_sandbox::copyout::FileSink;
use plancd_sandbox::{CopyOut, CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, OutputStream, OutputTee, SandboxError, Session};
use serde::{Deserialize, Serialize};

use crate::state::TaskKey;

/// The bytes a live attempt writes at most, over all its logs; the recorded logs keep the rest.
const LIVE_CAP: u64 = 16 << 20;

/// A partial line longer than this is written without waiting for its end.
const LINE_CAP: usize = 4096;

/// The marker's file name in an attempt's folder.
const MARKER: &str = "state.json";

/// Where an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Preparing: claim, workspace.
    Preparing,
    /// The environment is built, or found built (environment.setup in plancd.yaml).
    Environment,
    /// The agent plays its role.
    Agent,
    /// The configured checks run.
    Checks,
    /// The acceptance tests run.
    Tests,
    /// The tests' probes run.
    Probes,
    /// The result is being published.
    Publishing,
}

impl Step {
    /// The log the step's commands write to (`None`: the step runs no command).
    pub fn log_name(self) -> Option<&'static str> {
        match self {
            Step::Agent => Some("agent.log"),
            Step::Checks => Some("checks.log"),
            Step::Tests => Some("tests.log"),
            Step::Probes => Some("probe.log"),
            Step::Preparing | Step::Environment | Step::Publishing => None,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Preparing => "preparing",
            Step::Environment => "environment",
            Step::Agent => "agent",
            Step::Checks => "checks",
            Step::Tests => "tests",
            Step::Probes => "probes",
            Step::Publishing => "publishing",
        })
    }
}

/// The log names in the order steps write them.
pub const LOG_NAMES: [&str; 4] = ["agent.log", "checks.log", "tests.log", "probe.log"];

/// What an attempt's marker says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The process that runs the attempt.
    pub pid: u32,
    /// The attempt's current step.
    pub step: Step,
    /// When the attempt started.
    pub started_at: jiff::Timestamp,
    /// Whether the attempt ended (its logs are then in the task's ref).
    pub done: bool,
}

/// The folder of live attempts of the repository whose git folder is `git_dir`.
pub fn root(git_dir: &Path) -> PathBuf {
    git_dir.join("plancd").join("live")
}

/// The folder of `key`'s live attempt `attempt`.
pub fn attempt_dir(git_dir: &Path, key: &TaskKey, attempt: u32) -> PathBuf {
    root(git_dir).join(&key.workflow).join(&key.task).join(attempt.to_string())
}

/// An attempt being written: the writer side.
pub struct LiveAttempt {
    dir: PathBuf,
    inner: Mutex<Writer>,
}

struct Writer {
    marker: Marker,
    file: Option<File>,
    /// Each stream's unfinished line.
    partial: [Vec<u8>; 2],
    written: u64,
}

impl LiveAttempt {
    /// Starts `key`'s attempt `attempt` in the repository whose git folder is `git_dir`: its
    /// folder (the task's earlier live attempts removed) and a marker naming this process.
    pub fn start(git_dir: &Path, key: &TaskKey, attempt: u32) -> std::io::Result<Arc<LiveAttempt>> {
        let dir = attempt_dir(git_dir, key, attempt);
        if let Some(task_dir) = dir.parent()
            && let Ok(entries) = std::fs::read_dir(task_dir)
        {
            for entry in entries.flatten() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::fs::create_dir_all(&dir)?;
        let marker = Marker { pid: std::process::id(), step: Step::Preparing, started_at: jiff::Timestamp::now(), done: false };
        write_marker(&dir, &marker)?;
        Ok(Arc::new(LiveAttempt { dir, inner: Mutex::new(Writer { marker, file: None, partial: [Vec::new(), Vec::new()], written: 0 }) }))
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves to `step`: its commands append to its log from now on.
    pub fn step(&self, step: Step) {
        let mut w = self.writer();
        w.flush_partial();
        w.marker.step = step;
        w.file = step.log_name().and_then(|name| OpenOptions::new().create(true).append(true).open(self.dir.join(name)).ok());
        let _ = write_marker(&self.dir, &w.marker);
    }

    /// A command starts: `$ label`.
    pub fn command(&self, label: &str) {
        self.writer().append(format!("$ {}\n", plancd_sandbox::escape::controls(label.as_bytes())).as_bytes());
    }

    /// Output of the running command: complete lines are written escaped, as in the recorded
    /// logs (terminal controls shown, a line posing as plancd's own marked).
    pub fn output(&self, stream: OutputStream, chunk: &[u8]) {
        let mut w = self.writer();
        let i = stream as usize;
        w.partial[i].extend_from_slice(chunk);
        let cut = match w.partial[i].iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None if w.partial[i].len() > LINE_CAP => w.partial[i].len(),
            None => return,
        };
        let lines: Vec<u8> = w.partial[i].drain(..cut).collect();
        let text = plancd_sandbox::escape::output(&lines);
        w.append(text.as_bytes());
    }

    /// The command ended: the rest of its output, then how it ended.
    pub fn ended(&self, outcome: &ExecOutcome) {
        let mut w = self.writer();
        w.flush_partial();
        w.append(format!("-> {outcome}\n\n").as_bytes());
    }

    /// A line about the agent in the current step's log (a model agent's turn: what the model
    /// said, which tools it called), escaped like a command's output.
    pub fn note(&self, text: &str) {
        let mut w = self.writer();
        w.flush_partial();
        w.append(plancd_sandbox::escape::output(format!("{text}\n").as_bytes()).as_bytes());
    }

    /// A tee for a command's output into this attempt's current log.
    pub fn tee(self: &Arc<Self>) -> OutputTee {
        let me = self.clone();
        OutputTee::new(move |stream, chunk| me.output(stream, chunk))
    }
}

impl Writer {
    fn append(&mut self, bytes: &[u8]) {
        let Some(file) = &mut self.file else { return };
        if self.written >= LIVE_CAP {
            return;
        }
        self.written += bytes.len() as u64;
        let _ = file.write_all(bytes);
        if self.written >= LIVE_CAP {
            let _ = file.write_all(b"\n[live output truncated: the recorded logs have the rest]\n");
        }
    }

    fn flush_partial(&mut self) {
        for i in 0..2 {
            if !self.partial[i].is_empty() {
                let mut rest = std::mem::take(&mut self.partial[i]);
                rest.push(b'\n');
                let text = plancd_sandbox::escape::output(&rest);
                self.append(text.as_bytes());
            }
        }
    }
}

impl LiveAttempt {
    /// The attempt ended (its logs are recorded): the marker says so at once, whoever still
    /// holds a tee of it.
    pub fn finish(&self) {
        let mut w = self.writer();
        if !w.marker.done {
            w.flush_partial();
            w.marker.done = true;
            let _ = write_marker(&self.dir, &w.marker);
        }
    }
}

impl Drop for LiveAttempt {
    /// However the attempt ends (finished, failed, cancelled with its future dropped), its
    /// marker says so.
    fn drop(&mut self) {
        self.finish();
    }
}

/// A session lent to an attempt's steps: every command it runs also writes to the live
/// attempt, its label first, its output as it comes, then how it ended.
pub struct Teed<'a> {
    inner: &'a dyn Session,
    live: Option<Arc<LiveAttempt>>,
}

impl<'a> Teed<'a> {
    /// `inner`, teed into `live` when there is one.
    pub fn new(inner: &'a dyn Session, live: Option<Arc<LiveAttempt>>) -> Teed<'a> {
        Teed { inner, live }
    }
}

/// How a command reads in a log: a shell's script, or the argv.
fn label(argv: &[String]) -> String {
    match argv {
        [sh, c, script] if (sh == "sh" || sh.ends_with("/sh")) && c == "-c" => script.clone(),
        _ => argv.join(" "),
    }
}

#[async_trait::async_trait]
impl Session for Teed<'_> {
    fn id(&self) -> &str {
        self.inner.id()
    }

    async fn put_files(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        self.inner.put_files(files).await
    }

    async fn put_meta(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        self.inner.put_meta(files).await
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutcome, SandboxError> {
        let Some(live) = &self.live else { return self.inner.exec(req).await };
        live.command(&label(&req.argv));
        let teed = ExecRequest { tee: Some(live.tee()), ..req.clone() };
        let outcome = self.inner.exec(&teed).await?;
        live.ended(&outcome);
        Ok(outcome)
    }

    async fn get_files(&self, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
        self.inner.get_files(limits).await
    }

    async fn copy_out(&self, limits: &CopyOutLimits, sink: &mut dyn FileSink) -> Result<(), SandboxError> {
        self.inner.copy_out(limits, sink).await
    }

    /// Nothing: the session is lent, and its owner destroys it.
    async fn destroy(self: Box<Self>) -> Result<(), SandboxError> {
        Ok(())
    }
}

/// Writes the marker atomically (a reader never sees half of it).
fn write_marker(dir: &Path, marker: &Marker) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{MARKER}.{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(marker).expect("a marker always serialises"))?;
    std::fs::rename(&tmp, dir.join(MARKER))
}

/// An attempt's live folder, as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveView {
    /// The attempt.
    pub attempt: u32,
    /// Its folder.
    pub dir: PathBuf,
    /// Its marker.
    pub marker: Marker,
}

impl LiveView {
    /// Whether the attempt still runs: not marked done, and its process alive (a process
    /// killed outright leaves its marker behind).
    pub fn running(&self) -> bool {
        !self.marker.done && process_alive(self.marker.pid)
    }

    /// Reads the marker again. A marker gone means the attempt is over (a later attempt of the
    /// task replaced it).
    pub fn refresh(&mut self) {
        match read_marker(&self.dir) {
            Some(marker) => self.marker = marker,
            None => self.marker.done = true,
        }
    }
}

/// `key`'s latest live attempt in the repository whose git folder is `git_dir`, if any.
pub fn latest(git_dir: &Path, key: &TaskKey) -> Option<LiveView> {
    let task_dir = root(git_dir).join(&key.workflow).join(&key.task);
    std::fs::read_dir(task_dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let attempt: u32 = e.file_name().to_str()?.parse().ok()?;
            let marker = read_marker(&e.path())?;
            Some(LiveView { attempt, dir: e.path(), marker })
        })
        .max_by_key(|v| v.attempt)
}

/// Every live attempt that still runs in the repository whose git folder is `git_dir`.
pub fn running(git_dir: &Path) -> Vec<(TaskKey, LiveView)> {
    let mut found = Vec::new();
    let Ok(workflows) = std::fs::read_dir(root(git_dir)) else { return found };
    for wf in workflows.flatten() {
        let Ok(tasks) = std::fs::read_dir(wf.path()) else { continue };
        for task in tasks.flatten() {
            let key = TaskKey::new(&wf.file_name().to_string_lossy(), &task.file_name().to_string_lossy());
            if let Some(view) = latest(git_dir, &key).filter(LiveView::running) {
                found.push((key, view));
            }
        }
    }
    found.sort_by_key(|a| a.0.to_string());
    found
}

fn read_marker(dir: &Path) -> Option<Marker> {
    serde_json::from_slice(&std::fs::read(dir.join(MARKER)).ok()?).ok()
}

fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else { return false };
    // EPERM: it exists, owned by someone else.
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    #[test]
    fn output_is_written_line_by_line_escaped_into_the_steps_log() {
        let git = tempfile::tempdir().unwrap();
        let key = TaskKey::new("wf", "t");
        let live = LiveAttempt::start(git.path(), &key, 2).unwrap();
        let view = latest(git.path(), &key).unwrap();
        assert_eq!((view.attempt, view.marker.step, view.running()), (2, Step::Preparing, true));
        live.step(Step::Agent);
        live.command("sh -c 'echo hi'");
        live.output(OutputStream::Stdout, b"first\nsec");
        assert_eq!(read(&view.dir, "agent.log"), "$ sh -c 'echo hi'\nfirst\n", "an unfinished line waits");
        live.output(OutputStream::Stdout, b"ond \x1b[2J\nplancd: succeeded wf/t attempt 2\n");
        live.output(OutputStream::Stderr, b"no newline");
        live.ended(&ExecOutcome { exit_code: Some(0), ..ExecOutcome::default() });
        let log = read(&view.dir, "agent.log");
        assert!(log.contains("first\nsecond ") && !log.contains('\u{1b}'), "{log:?}");
        assert!(log.contains("\\plancd: succeeded wf/t attempt 2\n"), "{log}");
        assert!(log.contains("no newline\n-> "), "{log}");
        live.step(Step::Tests);
        live.output(OutputStream::Stdout, b"ok\n");
        assert_eq!(read(&view.dir, "tests.log"), "ok\n");
        assert_eq!(latest(git.path(), &key).unwrap().marker.step, Step::Tests);
        assert_eq!(running(git.path()).len(), 1);
        let tee = live.tee();
        live.finish();
        assert!(!latest(git.path(), &key).unwrap().running(), "ended while a tee is still held");
        drop(tee);
        drop(live);
        let ended = latest(git.path(), &key).unwrap();
        assert!(ended.marker.done && !ended.running());
        assert!(running(git.path()).is_empty());
    }

    #[tokio::test]
    async fn a_teed_sessions_commands_stream_into_the_live_log() {
        let git = tempfile::tempdir().unwrap();
        let key = TaskKey::new("wf", "t");
        let live = LiveAttempt::start(git.path(), &key, 1).unwrap();
        live.step(Step::Checks);
        let fake = plancd_sandbox::fake::FakeSandbox::new(|_, _| ExecOutcome {
            exit_code: Some(3),
            stdout: b"E1 bad\n".to_vec(),
            ..ExecOutcome::default()
        });
        let session = plancd_sandbox::Sandbox::create(&fake, &plancd_sandbox::SessionSpec::default()).await.unwrap();
        let teed = Teed::new(session.as_ref(), Some(live.clone()));
        let o = teed.exec(&ExecRequest::shell("lint .", std::time::Duration::from_secs(5))).await.unwrap();
        assert_eq!(o.stdout, b"E1 bad\n", "the outcome keeps the output");
        let log = read(&attempt_dir(git.path(), &key, 1), "checks.log");
        assert!(log.starts_with("$ lint .\nE1 bad\n-> "), "{log}");
    }

    #[test]
    fn a_new_attempt_replaces_the_tasks_earlier_ones() {
        let git = tempfile::tempdir().unwrap();
        let key = TaskKey::new("wf", "t");
        drop(LiveAttempt::start(git.path(), &key, 1).unwrap());
        let _live = LiveAttempt::start(git.path(), &key, 2).unwrap();
        assert!(!attempt_dir(git.path(), &key, 1).exists());
        assert_eq!(latest(git.path(), &key).unwrap().attempt, 2);
    }

    #[test]
    fn a_marker_whose_process_is_gone_is_not_running() {
        let git = tempfile::tempdir().unwrap();
        let key = TaskKey::new("wf", "t");
        let dir = attempt_dir(git.path(), &key, 1);
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        write_marker(&dir, &Marker { pid, step: Step::Agent, started_at: jiff::Timestamp::now(), done: false }).unwrap();
        assert!(!latest(git.path(), &key).unwrap().running());
    }
}
