//! One docker session: its volumes, its keeper container, and a container per command.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;

use super::channel;
use super::pool::Provisioned;
use super::runner::{Place, Runner};
use super::{Shared, backend, config::labels};
use crate::check_relative;
use crate::{CopyOut, CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, META_DIR, SandboxError, Session, SessionSpec, WORKSPACE};

/// The runner of a session's next command: started, or starting.
enum Next {
    Ready(Runner),
    Starting(tokio::task::JoinHandle<Result<Runner, SandboxError>>),
}

/// A docker session.
pub struct DockerSession {
    shared: Arc<Shared>,
    id: String,
    image: String,
    spec: SessionSpec,
    /// Host binds of its mounts and port forwards, for every runner.
    binds: Arc<Vec<bollard::models::Mount>>,
    keeper: String,
    workspace: String,
    meta: String,
    /// Its resources until destroyed.
    provisioned: std::sync::Mutex<Option<Provisioned>>,
    /// File transfers through the keeper.
    channel: channel::Shared,
    /// The runner of the next command. The first comes with the session; from the second
    /// command on, the next one is started while the last one runs.
    next: std::sync::Mutex<Option<Next>>,
    /// Commands hold it shared; file transfers exclusively.
    busy: tokio::sync::RwLock<()>,
    /// Runner containers named so far.
    execs: AtomicU64,
    /// Commands run so far.
    commands: AtomicU64,
    released: AtomicBool,
}

impl DockerSession {
    pub(super) fn new(
        shared: Arc<Shared>,
        mut provisioned: Provisioned,
        image: String,
        spec: &SessionSpec,
        binds: Vec<bollard::models::Mount>,
    ) -> DockerSession {
        let next = provisioned.runner.take().map(Next::Ready);
        let channel = provisioned.channel.take().expect("a provisioned session has its keeper's channel");
        DockerSession {
            channel: Arc::new(tokio::sync::Mutex::new(channel)),
            keeper: provisioned.keeper.clone(),
            workspace: provisioned.workspace.clone(),
            meta: provisioned.meta.clone(),
            id: provisioned.id.clone(),
            provisioned: std::sync::Mutex::new(Some(provisioned)),
            next: std::sync::Mutex::new(next),
            shared,
            image,
            spec: spec.clone(),
            binds: Arc::new(binds),
            busy: tokio::sync::RwLock::new(()),
            execs: AtomicU64::new(1),
            commands: AtomicU64::new(0),
            released: AtomicBool::new(false),
        }
    }

    /// Starts a runner for a later command of this session.
    fn start_runner(&self) -> tokio::task::JoinHandle<Result<Runner, SandboxError>> {
        let shared = Arc::clone(&self.shared);
        let name = format!("{}-x{}", self.id, self.execs.fetch_add(1, Ordering::Relaxed));
        let (image, limits, workspace, meta) = (self.image.clone(), self.spec.limits.clone(), self.workspace.clone(), self.meta.clone());
        let labels = labels(&self.id, &shared.owner);
        let binds = Arc::clone(&self.binds);
        tokio::spawn(async move {
            let place = Place { image: &image, limits: &limits, workspace: &workspace, meta: &meta, labels, binds: &binds };
            Runner::start(&shared, name, &place).await
        })
    }

    /// The runner for this command. From the second command on, the one for the next is
    /// started while this one runs.
    async fn runner(&self) -> Result<Runner, SandboxError> {
        let earlier = self.commands.fetch_add(1, Ordering::Relaxed);
        let taken = self.next.lock().expect("the runner lock is never poisoned").take();
        let ready = match taken {
            Some(Next::Ready(runner)) => Some(runner),
            Some(Next::Starting(task)) => task.await.ok().and_then(Result::ok),
            None => None,
        };
        let runner = match ready.and_then(|mut r| (!r.stopped()).then_some(r)) {
            Some(runner) => runner,
            None => self.start_runner().await.map_err(|e| backend(format!("a runner failed to start: {e}")))??,
        };
        if earlier > 0 {
            let mut next = self.next.lock().expect("the runner lock is never poisoned");
            if next.is_none() {
                *next = Some(Next::Starting(self.start_runner()));
            }
        }
        Ok(runner)
    }

    /// Hands everything to a background removal: the keeper, an unused runner, the volumes.
    fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        let next = self.next.lock().expect("the runner lock is never poisoned").take();
        let provisioned = self.provisioned.lock().expect("the session lock is never poisoned").take();
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let shared = Arc::clone(&self.shared);
        let task = handle.spawn(async move {
            let runner = match next {
                Some(Next::Ready(runner)) => Some(runner),
                Some(Next::Starting(task)) => task.await.ok().and_then(Result::ok),
                None => None,
            };
            if let Some(mut provisioned) = provisioned {
                provisioned.runner = runner;
                provisioned.tear_down(&shared).await;
            }
        });
        self.shared.track(task);
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

    /// Uploads `files` under `dest`, owned by the sandbox user or by root, as tars of about
    /// [`UPLOAD_BATCH_BYTES`] each: the copy a tar makes of its files stays that small whatever
    /// the files add up to.
    async fn upload(&self, dest: &str, files: &[FileEntry], sandbox_owned: bool) -> Result<(), SandboxError> {
        for f in files {
            check_relative(&f.path)?;
        }
        for batch in upload_runs(files) {
            let archive = build_tar(batch, if sandbox_owned { 65534 } else { 0 })?;
            self.channel.lock().await.put(dest, &archive).await?;
        }
        Ok(())
    }

    /// The tar of the workspace (entries under `workspace/`), streamed from the keeper.
    fn download_workspace(&self) -> impl futures_util::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>> + Send + 'static {
        channel::get(Arc::clone(&self.channel), "/", WORKSPACE.trim_start_matches('/'))
    }
}

/// The most file data one upload's tar holds (a larger file goes alone).
const UPLOAD_BATCH_BYTES: u64 = 16 << 20;

/// The tars an upload of `files` is cut in; no files still make one (empty) upload, which
/// checks the channel.
fn upload_runs(files: &[FileEntry]) -> Vec<&[FileEntry]> {
    match files {
        [] => vec![files],
        _ => crate::runs_by_size(files, UPLOAD_BATCH_BYTES, |f| f.data.len() as u64),
    }
}

/// A tar of `files` and their folders, owned by `id`.
fn build_tar(files: &[FileEntry], id: u64) -> Result<Vec<u8>, SandboxError> {
    // Sized up front (each file a header and its data in whole blocks; folders, the end and
    // slack for long names on top), so the archive is never copied while it grows.
    let blocks: u64 = files.iter().map(|f| 2 + (f.data.len() as u64).div_ceil(512) + f.path.matches('/').count() as u64 * 2).sum();
    let mut builder = tar::Builder::new(Vec::with_capacity(((blocks + 4) * 512) as usize));
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
        self.release();
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
        if self.spec.ports.is_empty() {
            return self.runner().await?.run(&self.shared, &self.spec.env, req).await;
        }
        let forwarded = ExecRequest { argv: crate::forward::wrap(&self.spec.ports, &req.argv), ..req.clone() };
        self.runner().await?.run(&self.shared, &self.spec.env, &forwarded).await
    }

    async fn get_files(&self, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
        let mut sink = crate::copyout::Collector::new();
        self.copy_out(limits, &mut sink).await?;
        Ok(sink.finish())
    }

    async fn copy_out(&self, limits: &CopyOutLimits, sink: &mut dyn crate::copyout::FileSink) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        let budget = super::archive::budget(self.spec.limits.disk_mb);
        super::archive::stream_workspace(self.download_workspace(), limits, budget, sink).await
    }

    async fn destroy(self: Box<Self>) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        self.release();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_cut_in_runs_of_bounded_size() {
        let f = |mib: usize| FileEntry::new(format!("f{mib}"), vec![0u8; mib << 20]);
        let files = [f(4), f(5), f(2), f(20), f(1)];
        let runs: Vec<Vec<&str>> = upload_runs(&files).iter().map(|run| run.iter().map(|f| f.path.as_str()).collect()).collect();
        assert_eq!(runs, [vec!["f4", "f5", "f2"], vec!["f20"], vec!["f1"]]);
        assert_eq!(upload_runs(&[]).len(), 1, "no files: one empty upload");
    }

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
