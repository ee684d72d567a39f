//! The `process` backend: daemonless sandboxes from bubblewrap, control groups, resource
//! limits, a tmpfs workspace and a seccomp filter.
//!
//! Each session owns a host folder with the workspace (a tmpfs with size and inode caps when
//! plancd runs as root) and the metadata folder, and a control group with the session's
//! limits. Each command runs in a fresh bubblewrap (new user, pid, mount, net, ipc and uts
//! namespaces) inside its own leaf of that group, as a dedicated host user when plancd is root,
//! and the whole leaf is killed when the command ends or its deadline passes.

mod bwrap;
mod cgroup;
mod exec;
mod files;
mod spawn;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;

use crate::{CopyOut, CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, Limits, Sandbox, SandboxError, Session, SessionSpec};

pub use spawn::Rlimits;

/// The host user and group sandboxed commands run as when plancd runs as root: owned by
/// nobody, so a command can read only what every user may.
pub const DEFAULT_HOST_ID: u32 = 65_533;

const BACKEND: &str = "process";
const INSTALL_HINT: &str = "install Debian's bubblewrap: `apt-get install bubblewrap` (or run scripts/setup)";

/// How the process backend is set up; [`ProcessConfig::default`] suits most hosts.
#[derive(Debug, Clone, Default)]
pub struct ProcessConfig {
    /// The bubblewrap binary; default: `bwrap` on PATH, then `/usr/bin/bwrap`.
    pub bwrap: Option<PathBuf>,
    /// Host user and group for commands when plancd is root; default [`DEFAULT_HOST_ID`].
    pub host_id: Option<u32>,
    /// Where session folders go; default `$TMPDIR/plancd-sandbox` (`-UID` appended unless root).
    pub base_dir: Option<PathBuf>,
    /// Host folders shown read-only at the same path (toolchains outside /usr, say).
    pub extra_ro: Vec<PathBuf>,
    /// The program that serves a session's port forwards inside it (see [`crate::forward`]);
    /// default: the running binary, plancd.
    pub forwarder: Option<PathBuf>,
}

/// The process backend.
#[derive(Clone)]
pub struct ProcessSandbox {
    shared: Arc<Shared>,
}

struct Shared {
    bwrap: PathBuf,
    disable_userns: bool,
    cgroups: Option<cgroup::Layout>,
    host_user: Option<(u32, u32)>,
    seccomp: Vec<Vec<u8>>,
    base: PathBuf,
    extra_ro: Vec<PathBuf>,
    forwarder: Option<PathBuf>,
    next: AtomicU64,
}

fn unavailable(reason: impl Into<String>) -> SandboxError {
    SandboxError::Unavailable { backend: BACKEND, reason: reason.into(), hint: INSTALL_HINT.into() }
}

fn backend(message: impl Into<String>) -> SandboxError {
    SandboxError::Backend { backend: BACKEND, message: message.into() }
}

fn find_bwrap(given: Option<PathBuf>) -> Option<PathBuf> {
    if given.is_some() {
        return given.filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).map(|d| d.join("bwrap")).find(|p| p.is_file()));
    on_path.or_else(|| Some(PathBuf::from("/usr/bin/bwrap")).filter(|p| p.is_file()))
}

impl ProcessSandbox {
    /// The backend with default settings; [`SandboxError::Unavailable`] when bubblewrap is
    /// missing or cannot create namespaces here.
    pub fn new() -> Result<ProcessSandbox, SandboxError> {
        ProcessSandbox::with_config(ProcessConfig::default())
    }

    /// The backend with `config`.
    pub fn with_config(config: ProcessConfig) -> Result<ProcessSandbox, SandboxError> {
        let bwrap = find_bwrap(config.bwrap).ok_or_else(|| unavailable("bubblewrap (bwrap) is not installed"))?;
        let help = std::process::Command::new(&bwrap)
            .arg("--help")
            .env_clear()
            .output()
            .map_err(|e| unavailable(format!("{} does not run: {e}", bwrap.display())))?;
        let help = String::from_utf8_lossy(&help.stdout);
        if !help.contains("--add-seccomp-fd") || !help.contains("--size") {
            return Err(unavailable(format!("{} is too old (bubblewrap 0.7 or later is needed)", bwrap.display())));
        }
        let root = rustix::process::geteuid().is_root();
        let host_user = root.then(|| config.host_id.unwrap_or(DEFAULT_HOST_ID)).map(|id| (id, id));
        let seccomp = crate::seccomp::bpf_programs().map_err(|e| backend(e.to_string()))?;
        let own = if root { "plancd-sandbox".to_owned() } else { format!("plancd-sandbox-{}", rustix::process::geteuid().as_raw()) };
        let base = config.base_dir.unwrap_or_else(|| std::env::temp_dir().join(own));
        let cgroups = if root { cgroup::Layout::detect() } else { None };
        if cgroups.is_none() {
            tracing::warn!("no writable cgroup hierarchy: limits fall back to rlimits");
        }
        let shared = Shared {
            bwrap,
            disable_userns: help.contains("--disable-userns"),
            cgroups,
            host_user,
            seccomp,
            base,
            extra_ro: config.extra_ro,
            forwarder: config.forwarder.or_else(crate::forward::default_program),
            next: AtomicU64::new(0),
        };
        let sandbox = ProcessSandbox { shared: Arc::new(shared) };
        sandbox.probe()?;
        sandbox.sweep();
        Ok(sandbox)
    }

    /// Removes what sessions of dead plancd processes left (their workspace mounts, folders
    /// and control groups): a crash never runs their cleanup. Returns how many.
    pub fn sweep(&self) -> usize {
        let ours = std::process::id();
        // Session ids start with `p<pid>-`; a live process of that pid keeps them.
        let stale = |name: &str| {
            let pid = name.strip_prefix('p').and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok());
            pid.is_some_and(|pid| pid != ours && !Path::new(&format!("/proc/{pid}")).exists())
        };
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.shared.base).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if stale(&name) {
                unmount_all(&entry.path());
                if std::fs::remove_dir_all(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed += self.shared.cgroups.as_ref().map_or(0, |l| l.sweep(stale));
        if removed > 0 {
            tracing::info!(removed, "swept what crashed sandbox sessions left");
        }
        removed
    }

    /// Runs `true` in a sandbox once, so that a host without user namespaces says so now.
    fn probe(&self) -> Result<(), SandboxError> {
        exec::probe(&self.shared.bwrap, self.shared.host_user)
            .map_err(|why| unavailable(format!("bubblewrap cannot create a sandbox here: {why}")))
    }

    /// One line per protection in force, for people deciding whether to trust this host.
    pub fn describe(&self) -> Vec<String> {
        let s = &self.shared;
        let mut lines = vec![format!("bubblewrap: {}", s.bwrap.display())];
        lines.push(match &s.cgroups {
            Some(l) if l.limits_everything() => "cgroups: memory, pids and cpu limits; whole-group kill".to_owned(),
            Some(_) => "cgroups: whole-group kill; some limits fall back to rlimits".to_owned(),
            None => "cgroups: unavailable; limits fall back to rlimits".to_owned(),
        });
        lines.push(match s.host_user {
            Some((uid, _)) => format!("host user: {uid} (dedicated); workspace: tmpfs"),
            None => "host user: the caller's; workspace: a plain folder".to_owned(),
        });
        lines
    }

    fn new_id(&self) -> String {
        let n = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        format!("p{}-{n}-{nanos:08x}", std::process::id())
    }
}

#[async_trait]
impl Sandbox for ProcessSandbox {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn create(&self, spec: &SessionSpec) -> Result<Box<dyn Session>, SandboxError> {
        let id = self.new_id();
        let shared = Arc::clone(&self.shared);
        let spec = spec.clone();
        let session = tokio::task::spawn_blocking(move || ProcessSession::create(shared, id, spec))
            .await
            .map_err(|e| backend(format!("session setup panicked: {e}")))??;
        Ok(Box::new(session))
    }
}

/// One session: folders, mounts and a control group, released on destroy or drop.
pub struct ProcessSession {
    id: String,
    shared: Arc<Shared>,
    dir: PathBuf,
    workspace: PathBuf,
    meta: PathBuf,
    mounted: bool,
    group: Option<cgroup::SessionGroup>,
    spec: SessionSpec,
    /// Port forwards: each socket's host folder and its mount point inside.
    forward_dirs: Vec<(PathBuf, String)>,
    /// Commands hold it shared; file transfers exclusively, so copy-out never races a command.
    busy: tokio::sync::RwLock<()>,
    execs: AtomicU64,
    released: AtomicBool,
}

/// Detaches the mounts of a session folder: the workspace, and the scratch mounts of
/// commands a crash left.
fn unmount_all(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if name == "ws" || name.to_string_lossy().starts_with('x') {
            let _ = rustix::mount::unmount(entry.path(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn mkdir_mode(path: &Path, mode: u32) -> Result<(), SandboxError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => Ok(other?),
    }
}

impl ProcessSession {
    fn create(shared: Arc<Shared>, id: String, spec: SessionSpec) -> Result<ProcessSession, SandboxError> {
        if let Some(root) = &spec.root {
            // A read-only root must already hold every mount point (sandbox/images/build.sh
            // makes roots that do).
            let forwards = (!spec.ports.is_empty()).then_some(crate::forward::INSIDE_DIR.trim_start_matches('/'));
            let needed = ["usr", "proc", "dev", "tmp", "workspace", "run/plancd"].into_iter().chain(forwards);
            let missing: Vec<&str> = needed.filter(|d| !root.join(d).is_dir()).collect();
            if !missing.is_empty() {
                return Err(backend(format!("root `{}` lacks the folders {}", root.display(), missing.join(", "))));
            }
        }
        for m in &spec.mounts {
            crate::check_mount_point(&m.inside)?;
            if !m.host.is_dir() {
                return Err(backend(format!("mount source `{}` is not a folder", m.host.display())));
            }
            let point = m.inside.trim_start_matches('/');
            if let Some(root) = spec.root.as_ref().filter(|r| !r.join(point).is_dir()) {
                return Err(backend(format!(
                    "root `{}` lacks the folder {point} to mount at (sandbox/images/build.sh makes it)",
                    root.display()
                )));
            }
            // A writable mount is written by the sandbox's host user.
            if let (true, Some((uid, gid))) = (m.writable, shared.host_user) {
                std::os::unix::fs::chown(&m.host, Some(uid), Some(gid))?;
            }
        }
        crate::forward::check(&spec.ports)?;
        if !spec.ports.is_empty() && shared.forwarder.is_none() {
            return Err(backend("port forwards need a forwarder program, and none was found"));
        }
        mkdir_mode(&shared.base, 0o711)?;
        let dir = shared.base.join(&id);
        mkdir_mode(&dir, 0o711)?;
        let (workspace, meta) = (dir.join("ws"), dir.join("meta"));
        mkdir_mode(&workspace, 0o700)?;
        // Readable by the sandbox's host user (through its group) and nobody else on the host.
        mkdir_mode(&meta, 0o750)?;
        if let Some((_, gid)) = shared.host_user {
            std::os::unix::fs::chown(&meta, None, Some(gid))?;
        }
        let forward_dirs = crate::forward::socket_binds(&spec.ports);
        let mut session = ProcessSession {
            id,
            dir,
            workspace,
            meta,
            mounted: false,
            group: None,
            spec,
            forward_dirs,
            busy: tokio::sync::RwLock::new(()),
            execs: AtomicU64::new(0),
            released: AtomicBool::new(false),
            shared,
        };
        session.mounted = session.mount_workspace();
        if let Some(layout) = &session.shared.cgroups {
            session.group =
                Some(layout.session(&session.id, &session.spec.limits).map_err(|e| backend(format!("cgroup setup failed: {e}")))?);
        }
        Ok(session)
    }

    /// A tmpfs with the session's size and inode caps, owned by the sandbox's host user.
    fn mount_workspace(&self) -> bool {
        let Some((uid, gid)) = self.shared.host_user else { return false };
        let mb = self.spec.limits.disk_mb.max(1);
        let inodes = (mb * 256).clamp(4096, 1 << 22);
        let data = format!("size={mb}m,nr_inodes={inodes},mode=0700,uid={uid},gid={gid}");
        let flags = rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV;
        let data = std::ffi::CString::new(data).expect("mount options hold no NUL");
        match rustix::mount::mount("tmpfs", &self.workspace, "tmpfs", flags, data.as_c_str()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "tmpfs workspace refused; using a plain folder");
                let _ = std::os::unix::fs::chown(&self.workspace, Some(uid), Some(gid));
                false
            }
        }
    }

    fn limits(&self) -> &Limits {
        &self.spec.limits
    }

    fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.mounted || self.shared.host_user.is_some() {
            unmount_all(&self.dir);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(group) = &self.group {
            group.remove();
        }
    }
}

impl Drop for ProcessSession {
    fn drop(&mut self) {
        self.release();
    }
}

#[async_trait]
impl Session for ProcessSession {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put_files(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        files::put(&self.workspace, files, self.shared.host_user)
    }

    async fn put_meta(&self, files: &[FileEntry]) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        files::put(&self.meta, files, None)
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutcome, SandboxError> {
        let _shared = self.busy.read().await;
        exec::run(self, req).await
    }

    async fn get_files(&self, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError> {
        let mut sink = crate::copyout::Collector::new();
        self.copy_out(limits, &mut sink).await?;
        Ok(sink.finish())
    }

    async fn copy_out(&self, limits: &CopyOutLimits, sink: &mut dyn crate::copyout::FileSink) -> Result<(), SandboxError> {
        let _exclusive = self.busy.write().await;
        crate::copyout::walk_dir(&self.workspace, limits, sink)
    }

    async fn destroy(self: Box<Self>) -> Result<(), SandboxError> {
        // Unmounting and removing a large workspace blocks: off the async threads.
        tokio::task::spawn_blocking(move || self.release()).await.map_err(|e| backend(format!("session removal panicked: {e}")))
    }
}
