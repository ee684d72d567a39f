//! One docker session: its volumes, its keeper container, and a container per command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::config::{self, labels};
use super::{Shared, backend};
use crate::capture::Capture;
use crate::{CopyOut, CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, Limits, META_DIR, SandboxError, Session, SessionSpec, WORKSPACE};
use crate::{check_relative, command_env};

/// How long output may keep arriving once a command's container has stopped.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
const SIGKILL: i32 = 9;
/// How long a killed container may take to stop.
const KILL_PATIENCE: Duration = Duration::from_secs(20);

/// A docker session.
pub struct DockerSession {
    shared: Arc<Shared>,
    id: String,
    image: String,
    spec: SessionSpec,
    keeper: String,
    workspace: String,
    meta: String,
    /// Commands hold it shared; file transfers exclusively.
    busy: tokio::sync::RwLock<()>,
    execs: AtomicU64,
    released: AtomicBool,
    /// Removals of stopped command containers still in flight.
    removals: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl DockerSession {
    pub(super) async fn create(shared: Arc<Shared>, id: String, image: String, spec: &SessionSpec) -> Result<DockerSession, SandboxError> {
        let session = DockerSession {
            keeper: format!("{id}-keeper"),
            workspace: format!("{id}-ws"),
            meta: format!("{id}-meta"),
            shared,
            id,
            image,
            spec: spec.clone(),
            busy: tokio::sync::RwLock::new(()),
            execs: AtomicU64::new(0),
            released: AtomicBool::new(false),
            removals: std::sync::Mutex::default(),
        };
        if let Err(e) = session.provision().await {
            session.release().await;
            return Err(e);
        }
        Ok(session)
    }

    fn labels(&self) -> std::collections::HashMap<String, String> {
        labels(&self.id, &self.shared.owner)
    }

    /// Creates the volumes and starts the keeper.
    async fn provision(&self) -> Result<(), SandboxError> {
        let docker = &self.shared.docker;
        let workspace = docker.create_volume(config::tmpfs_volume(&self.workspace, self.spec.limits.disk_mb.max(1), true, self.labels()));
        let meta = docker.create_volume(config::tmpfs_volume(&self.meta, 16, false, self.labels()));
        let (workspace, meta) = tokio::join!(workspace, meta);
        workspace.map_err(backend)?;
        meta.map_err(backend)?;
        let small = Limits { cpus: 0.1, memory_mb: 16, disk_mb: 1, pids: 4 };
        let host = config::host_config(&small, &self.shared.seccomp, &self.workspace, &self.meta, false);
        let env = vec![format!("PATH={}", crate::DEFAULT_PATH)];
        let body = config::container(&self.image, vec!["sleep".into(), "infinity".into()], env, "", false, host, self.labels());
        let name = CreateContainerOptionsBuilder::default().name(&self.keeper).build();
        docker.create_container(Some(name), body).await.map_err(backend)?;
        docker.start_container(&self.keeper, None).await.map_err(backend)?;
        Ok(())
    }

    /// Removes the keeper, then the volumes (best effort; the next sweep takes what is left).
    async fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        let pending = std::mem::take(&mut *self.removals.lock().expect("the removals lock is never poisoned"));
        for removal in pending {
            let _ = removal.await;
        }
        remove_all(&self.shared.docker, &self.keeper, &[self.workspace.clone(), self.meta.clone()]).await;
    }

    /// Fails with [`SandboxError::Gone`] unless the keeper runs: without it the volumes are
    /// gone, and the engine would quietly create empty ones of the same names.
    async fn check_keeper(&self) -> Result<(), SandboxError> {
        let state = self.shared.docker.inspect_container(&self.keeper, None).await.ok().and_then(|c| c.state);
        match state.and_then(|s| s.running) {
            Some(true) => Ok(()),
            _ => Err(SandboxError::Gone(self.id.clone())),
        }
    }

    /// Uploads `files` as a tar under `dest`, owned by the sandbox user or by root.
    async fn upload(&self, dest: &str, files: &[FileEntry], sandbox_owned: bool) -> Result<(), SandboxError> {
        for f in files {
            check_relative(&f.path)?;
        }
        let archive = build_tar(files, if sandbox_owned { 65534 } else { 0 })?;
        let options = UploadToContainerOptionsBuilder::default().path(dest).build();
        let body = bollard::body_full(bytes::Bytes::from(archive));
        self.shared.docker.upload_to_container(&self.keeper, Some(options), body).await.map_err(backend)
    }

    /// Creates, attaches to and starts the container of one command.
    async fn start(&self, name: &str, req: &ExecRequest) -> Result<bollard::container::AttachContainerResults, SandboxError> {
        let env = command_env(&self.spec.env, &req.env)?.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        let stdin = !req.stdin.is_empty();
        let host = config::host_config(&self.spec.limits, &self.shared.seccomp, &self.workspace, &self.meta, true);
        let body = config::container(&self.image, req.argv.clone(), env, &req.cwd, stdin, host, self.labels());
        let docker = &self.shared.docker;
        docker.create_container(Some(CreateContainerOptionsBuilder::default().name(name).build()), body).await.map_err(backend)?;
        let attach = AttachContainerOptionsBuilder::default().stream(true).stdout(true).stderr(true).stdin(stdin).build();
        let attached = docker.attach_container(name, Some(attach)).await.map_err(backend)?;
        docker.start_container(name, None).await.map_err(backend)?;
        Ok(attached)
    }

    async fn run(&self, name: &str, req: &ExecRequest) -> Result<ExecOutcome, SandboxError> {
        let docker = &self.shared.docker;
        let start = Instant::now();
        let attached = self.start(name, req).await?;
        let mut input = attached.input;
        let data = req.stdin.clone();
        let feeder = (!data.is_empty()).then(|| {
            tokio::spawn(async move {
                let _ = input.write_all(&data).await;
                let _ = input.shutdown().await;
            })
        });
        let drain = tokio::spawn(drain(attached.output, req.output_limit));
        let wait = WaitContainerOptionsBuilder::default().condition("not-running").build();
        let mut waiter = docker.wait_container(name, Some(wait));
        let waited = tokio::time::timeout(req.timeout, waiter.next()).await;
        let timed_out = waited.is_err();
        if timed_out {
            // A command cannot be killed alone: its container is.
            let kill = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
            let _ = docker.kill_container(name, Some(kill)).await;
            let mut waiter = docker.wait_container(name, Some(WaitContainerOptionsBuilder::default().condition("not-running").build()));
            if tokio::time::timeout(KILL_PATIENCE, waiter.next()).await.is_err() {
                return Err(backend(format!("container {name} still runs {KILL_PATIENCE:?} after SIGKILL")));
            }
        }
        let duration = start.elapsed();
        let (stdout, stderr) = collect(drain).await;
        if let Some(task) = feeder {
            task.abort();
        }
        let state = docker.inspect_container(name, None).await.map_err(backend)?.state.unwrap_or_default();
        let oom_killed = state.oom_killed.unwrap_or(false);
        let killed = timed_out || oom_killed;
        let code = state.exit_code.and_then(|c| i32::try_from(c).ok());
        Ok(ExecOutcome {
            exit_code: if killed { None } else { code },
            signal: killed.then_some(SIGKILL),
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            stdout_truncated: stdout.truncated,
            stderr_truncated: stderr.truncated,
            duration,
            timed_out,
            oom_killed,
        })
    }
}

/// Reads an attach stream into stdout and stderr captures until it ends.
async fn drain<S>(mut output: S, limit: usize) -> (Capture, Capture)
where
    S: futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
{
    let (mut stdout, mut stderr) = (Capture::new(limit), Capture::new(limit));
    while let Some(Ok(chunk)) = output.next().await {
        match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => stdout.push(&message),
            LogOutput::StdErr { message } => stderr.push(&message),
            LogOutput::StdIn { .. } => {}
        }
    }
    (stdout, stderr)
}

async fn collect(mut task: tokio::task::JoinHandle<(Capture, Capture)>) -> (Capture, Capture) {
    match tokio::time::timeout(DRAIN_GRACE, &mut task).await {
        Ok(Ok(captures)) => captures,
        _ => {
            task.abort();
            (Capture::default(), Capture::default())
        }
    }
}

async fn remove_all(docker: &bollard::Docker, container: &str, volumes: &[String]) {
    let force = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(container, Some(force)).await;
    for volume in volumes {
        let _ = docker.remove_volume(volume, Some(RemoveVolumeOptionsBuilder::default().force(true).build())).await;
    }
}

/// A tar of `files` and their folders, owned by `id`.
fn build_tar(files: &[FileEntry], id: u64) -> Result<Vec<u8>, SandboxError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(id);
        h.set_gid(id);
        h.set_size(size);
        h.set_mtime(0);
        h
    };
    for f in files {
        let mut prefix = String::new();
        for part in f.path.split('/').rev().skip(1).collect::<Vec<_>>().into_iter().rev() {
            prefix = if prefix.is_empty() { part.to_owned() } else { format!("{prefix}/{part}") };
            if dirs.insert(prefix.clone()) {
                builder.append_data(&mut header(tar::EntryType::Directory, 0o755, 0), format!("{prefix}/"), std::io::empty())?;
            }
        }
        let mode = if f.executable { 0o755 } else { 0o644 };
        builder.append_data(&mut header(tar::EntryType::Regular, mode, f.data.len() as u64), &f.path, &f.data[..])?;
    }
    Ok(builder.into_inner()?)
}

impl Drop for DockerSession {
    fn drop(&mut self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let docker = self.shared.docker.clone();
        let (keeper, volumes) = (self.keeper.clone(), vec![self.workspace.clone(), self.meta.clone()]);
        handle.spawn(async move { remove_all(&docker, &keeper, &volumes).await });
    }
}

#[async_trait]
impl Session for DockerSession {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put_files(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        self.upload(WORKSPACE, files, true).await
    }

    async fn put_meta(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        self.upload(META_DIR, files, false).await
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutcome, SandboxError> {
        if !req.cwd.is_empty() {
            check_relative(&req.cwd)?;
        }
        if req.argv.is_empty() {
            return Err(backend("a command needs at least a program"));
        }
        let _shared = self.busy.read().await;
        self.check_keeper().await?;
        let name = format!("{}-x{}", self.id, self.execs.fetch_add(1, Ordering::Relaxed));
        let outcome = self.run(&name, req).await;
        // The container has stopped (or failed to start): removing it need not delay the
        // caller. Removals are awaited before the session's volumes go.
        let docker = self.shared.docker.clone();
        let removal = tokio::spawn(async move {
            let force = RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = docker.remove_container(&name, Some(force)).await;
        });
        self.removals.lock().expect("the removals lock is never poisoned").push(removal);
        outcome
    }

    async fn get_files(&self, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
        let mut sink = crate::copyout::Collector::new();
        self.copy_out(limits, &mut sink).await?;
        Ok(sink.finish())
    }

    async fn copy_out(&self, limits: &CopyOutLimits, sink: &mut dyn crate::copyout::FileSink) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        let budget = super::archive::budget(self.spec.limits.disk_mb);
        super::archive::stream_workspace(&self.shared.docker, &self.keeper, limits, budget, sink).await
    }

    async fn destroy(self: Box<Self>) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        self.release().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_carry_their_folders_and_the_sandbox_owner() {
        let files = [FileEntry::new("a/b/c.txt", "x"), FileEntry { path: "run".into(), executable: true, data: b"#!".to_vec() }];
        let bytes = build_tar(&files, 65534).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<(String, u64, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), e.header().uid().unwrap(), e.header().mode().unwrap())
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(names, ["a/", "a/b/", "a/b/c.txt", "run"]);
        assert!(entries.iter().all(|(_, uid, _)| *uid == 65534));
        assert_eq!(entries[3].2, 0o755);
    }
}
