//! `plancd sandbox run|check`: one command in a sandbox, or the adversarial suite against a
//! backend.

use std::path::{Path, PathBuf};
use std::time::Duration;

use plancd_sandbox::attacks::{SuiteOptions, SuiteReport, run_suite};
use plancd_sandbox::copyback::{CopyBack, CopyBackReport};
use plancd_sandbox::copyout::Skip;
use plancd_sandbox::docker::DockerSandbox;
use plancd_sandbox::process::ProcessSandbox;
use plancd_sandbox::{CopyOutLimits, ExecOutcome, ExecRequest, FileEntry, Limits, Sandbox, SandboxError, SessionSpec, check_relative};

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
    /// Workspace size, MiB; the default limits otherwise.
    pub disk_mb: Option<u64>,
    /// A host folder copied in before and whose files are copied back after (never `.git`,
    /// never through a symlink of the folder; see [`plancd_sandbox::copyback`]).
    pub workspace: Option<PathBuf>,
    /// Caps of the copy-back.
    pub copy_limits: CopyOutLimits,
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
    /// Entries not copied back, with why (names as the sandbox gave them: escape them
    /// before showing them).
    pub skipped: Vec<(String, Skip)>,
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

/// The copy-back caps of `plancd sandbox run`: files are written as they stream, so these
/// bound the disk a command can fill on the host, not plancd's memory.
pub const RUN_COPY_LIMITS: CopyOutLimits = CopyOutLimits { max_file_bytes: 256 << 20, max_total_bytes: 4 << 30, max_files: 100_000 };

/// Runs one command in a fresh session.
pub async fn run(opts: &RunOptions) -> Result<RunReport, SandboxOpError> {
    let sandbox = open(opts.backend).await?;
    let mut limits = Limits::default();
    if let Some(mb) = opts.memory_mb {
        limits.memory_mb = mb;
    }
    if let Some(mb) = opts.disk_mb {
        limits.disk_mb = mb;
    }
    let spec = SessionSpec { owner: owner(), image: opts.image.clone(), root: opts.root.clone(), limits, ..SessionSpec::default() };
    let session = sandbox.create(&spec).await.map_err(unavailable_on_create)?;
    let result = run_in(&*session, opts).await;
    session.destroy().await?;
    sandbox.settle().await;
    let (outcome, back) = result?;
    let back = back.unwrap_or_default();
    Ok(RunReport { backend: opts.backend.name(), outcome, copied_back: back.written.len(), skipped: back.skipped })
}

async fn run_in(session: &dyn plancd_sandbox::Session, opts: &RunOptions) -> Result<(ExecOutcome, Option<CopyBackReport>), SandboxOpError> {
    if let Some(dir) = &opts.workspace {
        // Read and put in runs of at most COPY_IN_BATCH_BYTES (a larger file alone): plancd
        // holds one run at a time, whatever the folder holds.
        let files = list_folder(dir)?;
        for run in plancd_sandbox::runs_by_size(&files, COPY_IN_BATCH_BYTES, |f| f.size) {
            session.put_files(&read_files(dir, run)?).await?;
        }
    }
    let mut req = ExecRequest::new(opts.argv.clone(), opts.timeout);
    req.output_limit = opts.output_limit;
    let outcome = session.exec(&req).await?;
    let Some(dir) = &opts.workspace else { return Ok((outcome, None)) };
    let workspace_error = |e: SandboxError| match e {
        SandboxError::Io(source) => SandboxOpError::Workspace { path: dir.clone(), source },
        other => SandboxOpError::Sandbox(other),
    };
    let mut back = CopyBack::new(dir).map_err(workspace_error)?;
    session.copy_out(&opts.copy_limits, &mut back).await?;
    Ok((outcome, Some(back.finish())))
}

/// The most file data one copy-in run holds.
const COPY_IN_BATCH_BYTES: u64 = 16 << 20;

/// A regular file of the workspace folder: its path, size and whether it is executable.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FolderFile {
    path: String,
    size: u64,
    executable: bool,
}

/// The regular files under `dir` (never `.git`, in any of its forms), without their content.
fn list_folder(dir: &Path) -> Result<Vec<FolderFile>, SandboxOpError> {
    let io = |path: &Path, source: std::io::Error| SandboxOpError::Workspace { path: path.to_path_buf(), source };
    let mut files = Vec::new();
    let not_git = |e: &walkdir::DirEntry| e.depth() == 0 || !e.file_name().to_str().is_some_and(plancd_sandbox::names::is_git_name);
    let walk = walkdir::WalkDir::new(dir).follow_links(false).into_iter().filter_entry(not_git);
    for entry in walk {
        let entry = entry.map_err(|e| io(dir, e.into()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
        let Some(rel) = rel.to_str().filter(|r| check_relative(r).is_ok()) else { continue };
        let meta = entry.metadata().map_err(|e| io(entry.path(), e.into()))?;
        let executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
        files.push(FolderFile { path: rel.to_owned(), size: meta.len(), executable });
    }
    Ok(files)
}

/// The content of `files` under `dir`, as workspace entries.
fn read_files(dir: &Path, files: &[FolderFile]) -> Result<Vec<FileEntry>, SandboxOpError> {
    files
        .iter()
        .map(|f| {
            let path = dir.join(&f.path);
            let data = std::fs::read(&path).map_err(|source| SandboxOpError::Workspace { path, source })?;
            Ok(FileEntry { path: f.path.clone(), executable: f.executable, data })
        })
        .collect()
}

/// How `plancd sandbox run` exits, so that its own codes (2 bad input, 3 the sandbox failed)
/// are never confused with the command's: 0 the command exited 0; 1 it exited with another
/// code (which plancd prints); 124 it was killed at its deadline; 125 it was killed otherwise
/// (out of memory, a signal, no status).
pub fn run_exit_code(outcome: &ExecOutcome) -> u8 {
    match outcome.exit_code {
        _ if outcome.timed_out => 124,
        _ if outcome.oom_killed => 125,
        Some(0) => 0,
        Some(_) => 1,
        None => 125,
    }
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
    fn exit_codes_keep_the_command_apart_from_plancd() {
        let out = |exit_code: Option<i32>, signal: Option<i32>, timed_out: bool, oom_killed: bool| ExecOutcome {
            exit_code,
            signal,
            timed_out,
            oom_killed,
            ..ExecOutcome::default()
        };
        let rows = [
            ("success", out(Some(0), None, false, false), 0),
            ("failure", out(Some(1), None, false, false), 1),
            ("the command's own 2", out(Some(2), None, false, false), 1),
            ("the command's own 3", out(Some(3), None, false, false), 1),
            ("the command's own 124", out(Some(124), None, false, false), 1),
            ("the command's own 255", out(Some(255), None, false, false), 1),
            ("deadline", out(None, Some(9), true, false), 124),
            ("memory", out(None, Some(9), false, true), 125),
            ("signal", out(None, Some(11), false, false), 125),
            ("no status", out(None, None, false, false), 125),
        ];
        for (name, outcome, code) in rows {
            assert_eq!(run_exit_code(&outcome), code, "{name}");
        }
    }

    #[test]
    fn workspace_folders_go_in_without_links_or_git() {
        let dir = std::env::temp_dir().join(format!("plancd-ops-sandbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for git in [".git", "sub/.GIT", "GIT~1"] {
            std::fs::create_dir_all(dir.join(git)).unwrap();
            std::fs::write(dir.join(git).join("config"), "secret").unwrap();
        }
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/a.py"), "print(1)").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();
        let files = list_folder(&dir).unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["src/a.py"]);
        let read = read_files(&dir, &files).unwrap();
        assert_eq!((read[0].path.as_str(), read[0].data.as_slice()), ("src/a.py", &b"print(1)"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
