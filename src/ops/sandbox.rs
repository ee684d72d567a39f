//! `plancd sandbox run|check`: one command in a sandbox, or the adversarial suite against a
//! backend.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plancd_sandbox::attacks::{SuiteOptions, SuiteReport, run_suite};
use plancd_sandbox::docker::DockerSandbox;
use plancd_sandbox::process::ProcessSandbox;
use plancd_sandbox::{
    CopyOut, CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, Limits, Sandbox, SandboxError, SessionSpec, check_relative,
};

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// bubblewrap, cgroups, seccomp; no daemon.
    #[default]
    Process,
    /// A local Docker engine.
    Docker,
}

impl Backend {
    /// `process` or `docker`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Process => "process",
            Backend::Docker => "docker",
        }
    }
}

/// What `plancd sandbox run` runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The backend.
    pub backend: Backend,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Deadline.
    pub timeout: Duration,
    /// Memory limit, MiB; the default limits otherwise.
    pub memory_mb: Option<u64>,
    /// A host folder copied in before and whose changed files are copied back after.
    pub workspace: Option<PathBuf>,
    /// Docker: the image.
    pub image: Option<String>,
    /// Process: a root folder instead of the host's.
    pub root: Option<PathBuf>,
    /// Bytes kept of stdout and of stderr each.
    pub output_limit: usize,
}

/// What `plancd sandbox run` did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The backend that ran it.
    pub backend: &'static str,
    /// The command's outcome.
    pub outcome: ExecOutcome,
    /// Files copied back into the workspace folder.
    pub copied_back: usize,
    /// Entries left inside, with why.
    pub skipped: Vec<(String, String)>,
}

/// What `plancd sandbox check` runs.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The backend.
    pub backend: Backend,
    /// Docker: the image.
    pub image: Option<String>,
    /// Process: a root folder instead of the host's.
    pub root: Option<PathBuf>,
    /// Only the cases whose names contain one of these.
    pub only: Vec<String>,
    /// The plancd program, to hold a session in a process of its own for the `killed-owner`
    /// case (left out without it).
    pub holder: Option<PathBuf>,
}

/// Why a sandbox operation could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SandboxOpError {
    /// The backend cannot run here (exit 3).
    #[error("{error}; {hint}")]
    Unavailable {
        /// What the backend said.
        error: SandboxError,
        /// How to fix it.
        hint: String,
    },
    /// The sandbox failed while working (exit 3).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The workspace folder could not be read or written (exit 2).
    #[error("workspace `{path}`: {source}")]
    Workspace {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The prefix of the owner labels of command-line sessions on this host.
fn owner_prefix() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("plancd-cli-{}-", host.trim())
}

/// The owner label of this process's sessions.
fn owner() -> String {
    format!("{}{}", owner_prefix(), std::process::id())
}

/// Whether `owner` belongs to a command-line plancd of this host that is no longer running.
fn dead_cli_owner(owner: &str) -> bool {
    let pid = owner.strip_prefix(&owner_prefix()).and_then(|p| p.parse::<u32>().ok());
    pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists())
}

/// Opens a backend.
pub async fn open(backend: Backend) -> Result<Box<dyn Sandbox>, SandboxOpError> {
    open_warm(backend, 0).await
}

/// Opens a backend that keeps up to `warm` sessions ready ahead (one per expected concurrent
/// attempt), where making one costs much (docker).
pub async fn open_warm(backend: Backend, warm: usize) -> Result<Box<dyn Sandbox>, SandboxOpError> {
    let opened: Result<Box<dyn Sandbox>, SandboxError> = match backend {
        Backend::Process => ProcessSandbox::new().map(|s| Box::new(s) as Box<dyn Sandbox>),
        Backend::Docker => match DockerSandbox::connect(&owner()).await {
            Ok(s) => {
                // What command-line runs of this host left when they were killed.
                let _ = s.sweep_owners(dead_cli_owner).await;
                s.keep_warm(warm);
                Ok(Box::new(s) as Box<dyn Sandbox>)
            }
            Err(e) => Err(e),
        },
    };
    opened.map_err(|error| match error {
        SandboxError::Unavailable { ref hint, .. } => SandboxOpError::Unavailable { hint: hint.clone(), error },
        other => SandboxOpError::Sandbox(other),
    })
}

fn unavailable_on_create(error: SandboxError) -> SandboxOpError {
    match error {
        SandboxError::Unavailable { ref hint, .. } => SandboxOpError::Unavailable { hint: hint.clone(), error },
        other => SandboxOpError::Sandbox(other),
    }
}

/// Runs one command in a fresh session.
pub async fn run(opts: &RunOptions) -> Result<RunReport, SandboxOpError> {
    let sandbox = open(opts.backend).await?;
    let mut limits = Limits::default();
    if let Some(mb) = opts.memory_mb {
        limits.memory_mb = mb;
    }
    let spec = SessionSpec { owner: owner(), image: opts.image.clone(), root: opts.root.clone(), limits, ..SessionSpec::default() };
    let session = sandbox.create(&spec).await.map_err(unavailable_on_create)?;
    let result = run_in(&*session, opts).await;
    session.destroy().await?;
    sandbox.settle().await;
    let (outcome, copied) = result?;
    let copied_back = match (&opts.workspace, &copied) {
        (Some(dir), Some(out)) => write_back(dir, out)?,
        _ => 0,
    };
    let skipped = copied.map(|c| c.skipped).unwrap_or_default();
    Ok(RunReport { backend: opts.backend.name(), outcome, copied_back, skipped })
}

async fn run_in(session: &dyn plancd_sandbox::Session, opts: &RunOptions) -> Result<(ExecOutcome, Option<CopyOut>), SandboxOpError> {
    if let Some(dir) = &opts.workspace {
        session.put_files(&read_folder(dir)?).await?;
    }
    let mut req = ExecRequest::new(opts.argv.clone(), opts.timeout);
    req.output_limit = opts.output_limit;
    let outcome = session.exec(&req).await?;
    let copied = match opts.workspace {
        Some(_) => Some(session.get_files(&CopyOutLimits::default()).await?),
        None => None,
    };
    Ok((outcome, copied))
}

/// The regular files under `dir` (not `.git`), as workspace entries.
fn read_folder(dir: &Path) -> Result<Vec<FileEntry>, SandboxOpError> {
    let io = |path: &Path, source: std::io::Error| SandboxOpError::Workspace { path: path.to_path_buf(), source };
    let mut files = Vec::new();
    let walk = walkdir::WalkDir::new(dir).follow_links(false).into_iter().filter_entry(|e| e.file_name() != ".git");
    for entry in walk {
        let entry = entry.map_err(|e| io(dir, e.into()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
        let Some(rel) = rel.to_str().filter(|r| check_relative(r).is_ok()) else { continue };
        let data = std::fs::read(entry.path()).map_err(|e| io(entry.path(), e))?;
        let executable =
            std::os::unix::fs::PermissionsExt::mode(&entry.metadata().map_err(|e| io(entry.path(), e.into()))?.permissions()) & 0o111 != 0;
        files.push(FileEntry { path: rel.to_owned(), executable, data });
    }
    Ok(files)
}

/// Writes copied-out files into `dir`, replacing what is there; returns how many.
fn write_back(dir: &Path, out: &CopyOut) -> Result<usize, SandboxOpError> {
    let io = |path: &Path, source: std::io::Error| SandboxOpError::Workspace { path: path.to_path_buf(), source };
    for f in &out.files {
        // Names were checked by the copy-out; checked again where they become host paths.
        check_relative(&f.path)?;
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
        std::fs::write(&path, &f.data).map_err(|e| io(&path, e))?;
    }
    Ok(out.files.len())
}

/// Runs the adversarial suite against a backend.
pub async fn check(opts: &CheckOptions) -> Result<SuiteReport, SandboxOpError> {
    // One warm session: the cases run one after the other, on sessions from the pool.
    let sandbox = open_warm(opts.backend, 1).await?;
    let image = match opts.backend {
        Backend::Docker => Some(opts.image.clone().unwrap_or_else(|| plancd_sandbox::docker::DEFAULT_IMAGE.to_owned())),
        Backend::Process => None,
    };
    if let Some(image) = &image {
        // An image that is missing makes every case fail; say so once instead.
        let probe = SessionSpec { owner: owner(), image: Some(image.clone()), ..SessionSpec::default() };
        sandbox.create(&probe).await.map_err(unavailable_on_create)?.destroy().await?;
    }
    let holder = opts.holder.as_ref().map(|program| holder_command(program, opts)).unwrap_or_default();
    let options = SuiteOptions { owner: owner(), image, root: opts.root.clone(), only: opts.only.clone(), holder };
    let report = run_suite(&*sandbox, &options).await;
    sandbox.settle().await;
    Ok(report)
}

/// `PROGRAM sandbox run` with the checked backend, image and root, a `{timeout}` deadline, and
/// the command to follow.
fn holder_command(program: &Path, opts: &CheckOptions) -> Vec<String> {
    let mut argv = vec![program.display().to_string(), "sandbox".into(), "run".into(), "--backend".into(), opts.backend.name().into()];
    if let Some(image) = &opts.image {
        argv.extend(["--image".into(), image.clone()]);
    }
    if let Some(root) = &opts.root {
        argv.extend(["--root".into(), root.display().to_string()]);
    }
    argv.extend(["--timeout".into(), "{timeout}".into(), "--".into()]);
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_command_line_owners_of_this_host_are_stale() {
        assert!(!dead_cli_owner(&owner()));
        assert!(dead_cli_owner(&format!("{}{}", owner_prefix(), u32::MAX - 1)));
        assert!(!dead_cli_owner(&format!("plancd-cli-elsewhere-{}", u32::MAX - 1)));
        assert!(!dead_cli_owner("plancd-tests-1"));
    }

    #[test]
    fn workspace_folders_round_trip_without_links_or_git() {
        let dir = std::env::temp_dir().join(format!("plancd-ops-sandbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join(".git/config"), "secret").unwrap();
        std::fs::write(dir.join("src/a.py"), "print(1)").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let files = read_folder(&dir).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/a.py"]);

        let out = CopyOut { files: vec![FileEntry::new("link", "replaced"), FileEntry::new("new/b.txt", "b")], skipped: vec![] };
        assert_eq!(write_back(&dir, &out).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(dir.join("new/b.txt")).unwrap(), "b");
        assert!(!std::fs::symlink_metadata(dir.join("link")).unwrap().file_type().is_symlink());
        let bad = CopyOut { files: vec![FileEntry::new("../escape", "x")], skipped: vec![] };
        assert!(write_back(&dir, &bad).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
