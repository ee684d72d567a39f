//! Sandboxes for plancd: where untrusted agent code and acceptance tests run.
//!
//! A [`Sandbox`] backend creates [`Session`]s from a [`SessionSpec`]. A session owns a
//! size-capped workspace (seen inside as [`WORKSPACE`]) and a metadata folder ([`META_DIR`],
//! for files plancd hands to agents, such as the task description; never copied out). Files go
//! in with [`Session::put_files`], commands run with [`Session::exec`] under a deadline, and the
//! workspace comes back out with [`Session::get_files`] once every process in it is dead.
//!
//! Backends: [`process`] (bubblewrap namespaces, a cgroup, rlimits and a seccomp filter; the
//! default, no daemon) and [`docker`] (a local engine through bollard); [`fake`] runs nothing
//! and serves the engine's unit tests. Both real backends share the [`seccomp`] policy, the
//! [`copyout`] rules, the [`names`] that may leave a sandbox, and output [`capture`].
//! [`copyback`] writes what a session streams out into a host folder; [`escape`] makes a
//! command's output safe to show on a terminal or in a log.
//!
//! A session has no network. Its one door out is a [`PortForward`]: [`forward`] relays
//! `127.0.0.1:<port>` inside to a host unix socket, such as the [`egress`] proxy's, which lets
//! installers reach only the registry hosts on an allowlist.
//!
//! What runs inside is untrusted, its reports too: [`report`] reads JUnit XML and pytest JSON
//! defensively and sets them against the observed exit code. [`attacks`] is the adversarial
//! suite every backend must contain in full (`plancd sandbox check`).

pub mod attacks;
pub mod capture;
pub mod copyback;
pub mod copyout;
pub mod docker;
pub mod egress;
pub mod escape;
pub mod fake;
pub mod forward;
pub mod names;
pub mod process;
pub mod report;
pub mod seccomp;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

/// Where the workspace is inside a session; commands start here.
pub const WORKSPACE: &str = "/workspace";

/// Where metadata files are inside a session (e.g. `task.json` for command agents).
pub const META_DIR: &str = "/run/plancd";

/// Resource limits of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// CPUs (fractions allowed).
    pub cpus: f64,
    /// Memory, MiB.
    pub memory_mb: u64,
    /// Workspace size, MiB (also caps `/tmp`).
    pub disk_mb: u64,
    /// Processes and threads.
    pub pids: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { cpus: 1.0, memory_mb: 2048, disk_mb: 1024, pids: 256 }
    }
}

/// What network a session has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// No network at all, loopback included where the backend allows.
    #[default]
    None,
    /// A private loopback interface only.
    Loopback,
}

/// A host unix socket a session reaches over TCP at `127.0.0.1:<port>`: its one door out.
/// Each connection to the port inside is relayed to the socket; nothing else of the network
/// becomes reachable. The socket's folder is shown read-only inside the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// The TCP port on the session's loopback (not 0).
    pub port: u16,
    /// The host unix socket connections go to.
    pub socket: std::path::PathBuf,
}

/// How to create a session.
#[derive(Clone, Default)]
pub struct SessionSpec {
    /// Who creates it (a controller instance); labels left-over resources for sweeping.
    pub owner: String,
    /// Docker: the image. Process: ignored.
    pub image: Option<String>,
    /// Process: a root filesystem to use instead of the host's (read-only). Docker: ignored.
    pub root: Option<std::path::PathBuf>,
    /// Resource limits.
    pub limits: Limits,
    /// Network policy.
    pub network: Network,
    /// Environment variables every command gets; nothing else of the host's environment
    /// reaches the session (the backend adds only PATH, HOME, LANG and TMPDIR defaults).
    pub env: Vec<(String, String)>,
    /// Ports on the session's loopback that lead to host unix sockets (an egress proxy, a
    /// model gateway); the session's loopback is up whenever there are any, whatever
    /// [`SessionSpec::network`] says.
    pub ports: Vec<PortForward>,
    /// Host folders shown inside at a fixed path (a prepared environment at `/env`, say).
    pub mounts: Vec<Mount>,
}

/// A host folder shown inside a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The folder on the host (for docker: on the engine's host).
    pub host: std::path::PathBuf,
    /// Where it appears inside: an absolute path outside the workspace, the metadata folder and
    /// the system folders (see [`check_mount_point`]).
    pub inside: String,
    /// Whether commands may write to it; read-only otherwise.
    pub writable: bool,
}

/// Checks where a [`Mount`] goes: an absolute, normalised path of its own, not `/`, not a
/// system folder, the workspace, the metadata folder or `/tmp`, nor inside or above them.
pub fn check_mount_point(inside: &str) -> Result<(), SandboxError> {
    const RESERVED: [&str; 14] =
        ["/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/dev", "/tmp", "/run", WORKSPACE, "/opt"];
    let rest = inside.strip_prefix('/').unwrap_or("");
    let normal = !rest.is_empty() && check_relative(rest).is_ok();
    let clashes = RESERVED
        .iter()
        .chain([&META_DIR])
        .any(|r| inside == *r || inside.starts_with(&format!("{r}/")) || r.starts_with(&format!("{inside}/")));
    if normal && !clashes { Ok(()) } else { Err(SandboxError::BadPath(inside.to_owned())) }
}

/// Variables shown by name only: their values may be tokens (a model gateway's, say).
struct EnvNames<'a>(&'a [(String, String)]);

impl fmt::Debug for EnvNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

impl fmt::Debug for SessionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSpec")
            .field("owner", &self.owner)
            .field("image", &self.image)
            .field("root", &self.root)
            .field("limits", &self.limits)
            .field("network", &self.network)
            .field("env", &EnvNames(&self.env))
            .field("ports", &self.ports)
            .field("mounts", &self.mounts)
            .finish()
    }
}

impl fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecRequest")
            .field("argv", &self.argv)
            .field("env", &EnvNames(&self.env))
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .field("stdin_bytes", &self.stdin.len())
            .field("output_limit", &self.output_limit)
            .field("tee", &self.tee)
            .finish()
    }
}

/// One command to run in a session.
#[derive(Clone)]
pub struct ExecRequest {
    /// Program and arguments (no shell unless the program is one).
    pub argv: Vec<String>,
    /// Extra environment for this command, on top of the session's.
    pub env: Vec<(String, String)>,
    /// Working directory relative to the workspace (`""` is the workspace itself).
    pub cwd: String,
    /// Wall-clock deadline; past it every process of the command is killed.
    pub timeout: Duration,
    /// Bytes fed to standard input (closed after them, or at once when empty).
    pub stdin: Vec<u8>,
    /// Bytes kept of stdout and of stderr each; the rest is drained and dropped.
    pub output_limit: usize,
    /// Sees every chunk of output as the command produces it (all of it, before the limit),
    /// for live logs; the outcome still carries the kept output.
    pub tee: Option<OutputTee>,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A receiver of a command's output while it runs (see [`ExecRequest::tee`]). It is called
/// from the tasks that drain the command's pipes, so it must not block for long.
#[derive(Clone)]
pub struct OutputTee(std::sync::Arc<TeeFn>);

/// What an [`OutputTee`] calls.
type TeeFn = dyn Fn(OutputStream, &[u8]) + Send + Sync;

impl OutputTee {
    /// A tee that hands every chunk to `f`.
    pub fn new(f: impl Fn(OutputStream, &[u8]) + Send + Sync + 'static) -> OutputTee {
        OutputTee(std::sync::Arc::new(f))
    }

    /// Hands `chunk` of `stream` on.
    pub fn write(&self, stream: OutputStream, chunk: &[u8]) {
        (self.0)(stream, chunk);
    }
}

impl fmt::Debug for OutputTee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutputTee")
    }
}

impl ExecRequest {
    /// `sh -c SCRIPT` in the workspace with default limits.
    pub fn shell(script: &str, timeout: Duration) -> ExecRequest {
        ExecRequest::new(["/bin/sh", "-c", script], timeout)
    }

    /// `ARGV` in the workspace with default limits.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>, timeout: Duration) -> ExecRequest {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: String::new(),
            timeout,
            stdin: Vec::new(),
            output_limit: 1 << 20,
            tee: None,
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when killed.
    pub signal: Option<i32>,
    /// Standard output, up to the request's limit.
    pub stdout: Vec<u8>,
    /// Standard error, up to the request's limit.
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the limit.
    pub stderr_truncated: bool,
    /// Wall-clock time from start to the last process's death.
    pub duration: Duration,
    /// Killed at the deadline.
    pub timed_out: bool,
    /// Killed for exceeding the memory limit.
    pub oom_killed: bool,
}

impl ExecOutcome {
    /// Exited 0, in time, within memory.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.oom_killed
    }

    /// stdout and stderr as text, lossily.
    pub fn output_text(&self) -> (String, String) {
        (String::from_utf8_lossy(&self.stdout).into_owned(), String::from_utf8_lossy(&self.stderr).into_owned())
    }
}

impl fmt::Display for ExecOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.exit_code, self.signal) {
            _ if self.timed_out => write!(f, "timed out after {:.1}s", self.duration.as_secs_f64()),
            _ if self.oom_killed => f.write_str("killed: out of memory"),
            (Some(code), _) => write!(f, "exit {code}{} in {:.2}s", shell_signal_note(code), self.duration.as_secs_f64()),
            (None, Some(sig)) => write!(f, "killed by {}", signal_words(sig)),
            (None, None) => f.write_str("no exit status"),
        }
    }
}

/// A signal as people read it: `signal 25 (SIGXFSZ: a file grew past the size limit)`, or
/// `signal N` for one without a name here.
pub fn signal_words(sig: i32) -> String {
    let known = match sig {
        1 => Some(("SIGHUP", "its terminal went away")),
        2 => Some(("SIGINT", "interrupted")),
        4 => Some(("SIGILL", "an illegal instruction")),
        6 => Some(("SIGABRT", "it aborted")),
        7 => Some(("SIGBUS", "a bad memory access")),
        8 => Some(("SIGFPE", "an arithmetic error")),
        9 => Some(("SIGKILL", "killed outright")),
        11 => Some(("SIGSEGV", "a segmentation fault")),
        13 => Some(("SIGPIPE", "it wrote to a closed pipe")),
        15 => Some(("SIGTERM", "asked to stop")),
        24 => Some(("SIGXCPU", "its CPU time limit")),
        25 => Some(("SIGXFSZ", "a file grew past the size limit")),
        31 => Some(("SIGSYS", "a system call the sandbox refuses")),
        _ => None,
    };
    match known {
        Some((name, why)) => format!("signal {sig} ({name}: {why})"),
        None => format!("signal {sig}"),
    }
}

/// For an exit code a shell gives a command a signal ended (128 + the signal), what it means:
/// ` (a shell's code for signal 25 (SIGXFSZ: ...))`; otherwise nothing.
pub fn shell_signal_note(code: i32) -> String {
    match code {
        129..=159 => format!(" (a shell's code for {})", signal_words(code - 128)),
        _ => String::new(),
    }
}

/// A regular file, by workspace-relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative path with `/` separators; never absolute, never with `..`.
    pub path: String,
    /// Whether it is executable.
    pub executable: bool,
    /// The content.
    pub data: Vec<u8>,
}

impl FileEntry {
    /// A non-executable file.
    pub fn new(path: impl Into<String>, data: impl Into<Vec<u8>>) -> FileEntry {
        FileEntry { path: path.into(), executable: false, data: data.into() }
    }
}

/// `items` cut in runs whose sizes add up to at most `max` (a larger item is a run of its own),
/// in order; none for no items. What copies files in a run at a time holds at most one run.
pub fn runs_by_size<T>(items: &[T], max: u64, size: impl Fn(&T) -> u64) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        if i > start && bytes + size(item) > max {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size(item);
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// Caps on what [`Session::get_files`] brings out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyOutLimits {
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Largest total.
    pub max_total_bytes: u64,
    /// Most files.
    pub max_files: usize,
}

impl Default for CopyOutLimits {
    fn default() -> Self {
        CopyOutLimits { max_file_bytes: 10 << 20, max_total_bytes: 200 << 20, max_files: 20_000 }
    }
}

/// The workspace as copied out: regular files only, and what was left behind and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyOut {
    /// The files, sorted by path.
    pub files: Vec<FileEntry>,
    /// Paths not copied (symlinks, FIFOs, devices, oversized files, refused names), with why.
    pub skipped: Vec<(String, copyout::Skip)>,
}

/// Why a sandbox operation failed. These are failures of the sandbox itself (infrastructure),
/// never of the code run inside it: a command that fails is an [`ExecOutcome`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The backend cannot run on this machine.
    #[error("the {backend} sandbox is not available: {reason}")]
    Unavailable {
        /// `process` or `docker`.
        backend: &'static str,
        /// What is missing.
        reason: String,
        /// How to fix it.
        hint: String,
    },
    /// A file name that would leave the workspace.
    #[error("refused path `{0}`: sandbox paths are relative and stay inside the workspace")]
    BadPath(String),
    /// The session is gone (destroyed, or its resources were removed).
    #[error("session {0} is gone")]
    Gone(String),
    /// Anything else the backend reports.
    #[error("{backend} sandbox: {message}")]
    Backend {
        /// `process`, `docker` or `fake`.
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// Host I/O.
    #[error("sandbox i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// A sandbox backend.
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// `process`, `docker` or `fake`.
    fn name(&self) -> &'static str;

    /// Creates a session.
    async fn create(&self, spec: &SessionSpec) -> Result<Box<dyn Session>, SandboxError>;

    /// Waits for what destroyed sessions left to the background (removals), and gives up
    /// warm sessions kept ahead. Call before the program ends.
    async fn settle(&self) {}

    /// What `spec`'s sessions stand on, as the backend identifies it (docker: the image's id),
    /// so that what was built on it can tell when a name now stands for something else. `None`
    /// when the backend has no such identity or cannot tell.
    async fn base_id(&self, _spec: &SessionSpec) -> Option<String> {
        None
    }
}

/// One isolated workspace with its limits. Dropping a session without [`Session::destroy`]
/// must still release its resources (best effort).
#[async_trait]
pub trait Session: Send + Sync {
    /// A unique id (labels, logs).
    fn id(&self) -> &str;

    /// Writes files into the workspace, creating folders; existing files are replaced.
    async fn put_files(&self, files: &[FileEntry]) -> Result<(), SandboxError>;

    /// Writes files into [`META_DIR`].
    async fn put_meta(&self, files: &[FileEntry]) -> Result<(), SandboxError>;

    /// Runs one command to completion, deadline or memory kill. Every process it started is
    /// dead when this returns.
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutcome, SandboxError>;

    /// Copies the workspace out: regular files only, no symlinks followed, within `limits`.
    async fn get_files(&self, limits: &CopyOutLimits) -> Result<CopyOut, SandboxError>;

    /// Streams the workspace out to `sink`, file by file in chunks, with the rules of
    /// [`Session::get_files`]: what plancd holds stays bounded whatever the workspace holds.
    /// Backends that keep files in memory anyway need not override it.
    async fn copy_out(&self, limits: &CopyOutLimits, sink: &mut dyn copyout::FileSink) -> Result<(), SandboxError> {
        let out = self.get_files(limits).await?;
        copyout::replay(out, sink)
    }

    /// Removes the session and everything it holds.
    async fn destroy(self: Box<Self>) -> Result<(), SandboxError>;
}

/// PATH inside a session unless the session's or the command's environment sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The whole environment of a command: PATH, HOME (`/tmp`, so caches stay out of the
/// workspace), LANG and TMPDIR defaults, then the session's variables, then the command's;
/// later ones win. Nothing comes from plancd's own environment.
pub fn command_env(session: &[(String, String)], command: &[(String, String)]) -> Result<Vec<(String, String)>, SandboxError> {
    let defaults = [("PATH", DEFAULT_PATH), ("HOME", "/tmp"), ("LANG", "C.UTF-8"), ("TMPDIR", "/tmp")];
    let mut env: Vec<(String, String)> = defaults.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    for (name, value) in session.iter().chain(command) {
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(SandboxError::Backend { backend: "sandbox", message: format!("invalid environment variable `{name}`") });
        }
        env.retain(|(k, _)| k != name);
        env.push((name.clone(), value.clone()));
    }
    Ok(env)
}

/// Checks a workspace-relative path: no absolute paths, no `..`, no empty components.
pub fn check_relative(path: &str) -> Result<(), SandboxError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path.contains('\\')
        || path.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad { Err(SandboxError::BadPath(path.to_owned())) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_says_which_signal_ended_it_and_what_that_means() {
        let out = |exit_code: Option<i32>, signal: Option<i32>| {
            ExecOutcome { exit_code, signal, duration: Duration::from_millis(1500), ..ExecOutcome::default() }.to_string()
        };
        let rows = [
            (Some(1), None, "exit 1 in 1.50s"),
            (Some(128), None, "exit 128 in 1.50s"),
            (Some(153), None, "exit 153 (a shell's code for signal 25 (SIGXFSZ: a file grew past the size limit)) in 1.50s"),
            (Some(139), None, "exit 139 (a shell's code for signal 11 (SIGSEGV: a segmentation fault)) in 1.50s"),
            (Some(160), None, "exit 160 in 1.50s"),
            (None, Some(25), "killed by signal 25 (SIGXFSZ: a file grew past the size limit)"),
            (None, Some(30), "killed by signal 30"),
            (None, None, "no exit status"),
        ];
        for (code, signal, want) in rows {
            assert_eq!(out(code, signal), want);
        }
    }

    #[test]
    fn runs_are_cut_at_a_size_and_a_large_item_goes_alone() {
        let cut: Vec<&[u64]> = runs_by_size(&[4, 5, 2, 20, 1], 10, |n| *n);
        assert_eq!(cut, [&[4, 5][..], &[2], &[20], &[1]]);
        assert!(runs_by_size(&[] as &[u64], 10, |n| *n).is_empty());
    }

    #[test]
    fn relative_paths_stay_inside() {
        assert!(check_relative("a/b.txt").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "a\0b"] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn command_environments_hold_defaults_and_what_was_given_only() {
        let session = vec![("PATH".to_owned(), "/opt/bin".to_owned()), ("A".to_owned(), "1".to_owned())];
        let command = vec![("A".to_owned(), "2".to_owned())];
        let env = command_env(&session, &command).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/opt/bin"));
        assert_eq!(get("A"), Some("2"));
        assert_eq!(get("HOME"), Some("/tmp"));
        assert_eq!(env.len(), 5);
        assert!(command_env(&[("A=B".to_owned(), String::new())], &[]).is_err());
    }

    #[test]
    fn requests_and_specs_print_their_variables_names_never_their_values() {
        let env = vec![("OPENAI_API_KEY".to_owned(), "tok-canary-9876".to_owned())];
        let req = ExecRequest { env: env.clone(), ..ExecRequest::shell("true", Duration::from_secs(1)) };
        let spec = SessionSpec { env, ..SessionSpec::default() };
        let shown = format!("{req:?} {req:#?} {spec:?} {spec:#?}");
        assert!(!shown.contains("tok-canary-9876"), "{shown}");
        assert!(shown.contains("OPENAI_API_KEY"), "{shown}");
    }

    #[test]
    fn mounts_go_to_folders_of_their_own() {
        for ok in ["/env", "/opt-env", "/cache/pip"] {
            assert!(check_mount_point(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "/", "env", "/usr", "/usr/local", "/workspace", "/workspace/x", "/run", "/run/plancd/x", "/tmp", "/env/../etc", "/env/"]
        {
            assert!(check_mount_point(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outcomes_describe_themselves() {
        let ok = ExecOutcome { exit_code: Some(0), duration: Duration::from_millis(1500), ..Default::default() };
        assert!(ok.success());
        assert_eq!(ok.to_string(), "exit 0 in 1.50s");
        let late = ExecOutcome { timed_out: true, signal: Some(9), duration: Duration::from_secs(3), ..Default::default() };
        assert!(!late.success());
        assert_eq!(late.to_string(), "timed out after 3.0s");
    }
}
