//! The adversarial suite: attacks that untrusted code could try, run against a backend, each
//! with the outcome that counts as contained. The same cases run on every backend.
//!
//! The host side is real: a TCP listener on the host's loopback, a canary process with a
//! secret in its environment, a canary file in /root. A case is contained only when the attack
//! failed inside *and* the host shows no trace of it (no connection, the canary alive, ...).

mod boundary;
mod cases;
mod doors;
mod host;
mod owner;
mod probes;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{ExecOutcome, ExecRequest, Limits, Sandbox, SandboxError, Session, SessionSpec};

pub use host::Host;

/// The suite's version: bumped whenever a case is added, removed or judged differently.
pub const SUITE_VERSION: &str = "1.3";

/// One attack.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Short stable name, e.g. `net-vsock`.
    pub name: &'static str,
    /// What the attack tries.
    pub attack: &'static str,
}

/// The cases, in the order they run.
pub const CASES: &[Case] = &[
    Case { name: "net-tcp-host-loopback", attack: "connect to a listener on the host's 127.0.0.1" },
    Case { name: "net-raw-socket", attack: "open a raw IP socket" },
    Case { name: "net-packet-socket", attack: "open an AF_PACKET socket" },
    Case { name: "net-vsock", attack: "open an AF_VSOCK socket (reaches the host of a VM)" },
    Case { name: "net-dns", attack: "resolve a public name" },
    Case {
        name: "net-egress-proxy",
        attack: "ask the egress proxy for hosts and ports off its allowlist; reach a port that is not forwarded",
    },
    Case { name: "fork-bomb", attack: "fork without end" },
    Case { name: "thread-bomb", attack: "start threads without end" },
    Case { name: "memory-bomb", attack: "allocate past the memory limit" },
    Case { name: "fill-workspace", attack: "write the workspace full" },
    Case { name: "fill-tmp", attack: "write /tmp full" },
    Case { name: "write-etc", attack: "create a file in /etc" },
    Case { name: "write-usr", attack: "create a file in /usr" },
    Case { name: "write-root-fs", attack: "create a file in /" },
    Case { name: "read-controller-env", attack: "read plancd's environment" },
    Case { name: "read-root-home", attack: "read /root (a canary file is there)" },
    Case { name: "read-proc1-environ", attack: "read /proc/1/environ and every /proc/*/environ" },
    Case { name: "docker-socket", attack: "connect to the Docker and containerd sockets" },
    Case { name: "proc-leaks", attack: "find host processes in /proc" },
    Case { name: "kill-all", attack: "kill(-1, SIGKILL)" },
    Case { name: "kill-host-canary", attack: "kill a host process by its pid" },
    Case { name: "busy-loop-timeout", attack: "spin past the deadline" },
    Case { name: "ignore-sigterm", attack: "ignore SIGTERM and SIGINT past the deadline" },
    Case { name: "daemon-holding-stdout", attack: "double-fork a daemon that keeps stdout open" },
    Case { name: "daemon-stdio-closed", attack: "double-fork a daemon with stdio closed" },
    Case { name: "probe-mount", attack: "mount a tmpfs" },
    Case { name: "probe-unshare", attack: "unshare a user namespace" },
    Case { name: "probe-ptrace", attack: "ptrace the parent process" },
    Case { name: "probe-keyctl", attack: "use the kernel keyring" },
    Case { name: "probe-bpf", attack: "create a BPF map" },
    Case { name: "probe-io-uring", attack: "set up an io_uring" },
    Case { name: "probe-32bit-syscall", attack: "make a syscall through the 32-bit int 0x80 entry" },
    Case { name: "probe-x32-syscall", attack: "make an x32 ABI syscall" },
    Case { name: "copyout-symlink", attack: "plant symlinks to host files for copy-out" },
    Case { name: "copyout-fifo", attack: "plant a FIFO and a socket for copy-out" },
    Case { name: "copyout-hardlink", attack: "plant hard links for copy-out" },
    Case { name: "copyout-dotdot", attack: "use `..` and odd names in and out of the workspace" },
    Case { name: "stdout-flood", attack: "write 4 GiB to stdout" },
    Case { name: "cpu-spinners", attack: "spin 4 processes under a 1-CPU limit" },
    Case { name: "stdin-read", attack: "read standard input" },
    Case { name: "killed-owner", attack: "outlive a plancd SIGKILLed mid-command (runs with a holder command only)" },
    Case { name: "copyback-git-config", attack: "write .git/config (core.fsmonitor) and hooks, in every spelling of .git, for copy-back" },
    Case { name: "copyback-symlinked-parent", attack: "write through folder symlinks of the host folder (docs -> elsewhere, up -> ..)" },
    Case { name: "copyout-sparse-files", attack: "leave sparse files as large as allowed for copy-out" },
    Case { name: "copyout-control-names", attack: "name files with terminal escapes, newlines and bidi overrides" },
    Case { name: "output-terminal-escapes", attack: "print terminal escape sequences and forged plancd status lines" },
    Case { name: "fill-dev", attack: "write files into /dev and fill /dev/shm" },
    Case { name: "tmp-inodes", attack: "create files in /tmp until the inodes run out" },
];

/// How to run the suite.
#[derive(Debug, Clone, Default)]
pub struct SuiteOptions {
    /// The owner label of the sessions.
    pub owner: String,
    /// Docker: the image (python3 and coreutils needed).
    pub image: Option<String>,
    /// Process: a root folder instead of the host's.
    pub root: Option<std::path::PathBuf>,
    /// Only the cases whose name contains one of these; all when empty.
    pub only: Vec<String>,
    /// A program and arguments that run their trailing arguments as one command in a session
    /// of this backend, in a process of its own, with `{timeout}` standing for the deadline in
    /// seconds (plancd: `plancd sandbox run --backend B --timeout {timeout} --`). The
    /// `killed-owner` case needs it and is left out without it.
    pub holder: Vec<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: &'static str,
    /// What it tried.
    pub attack: &'static str,
    /// Whether the sandbox held.
    pub contained: bool,
    /// What was observed.
    pub detail: String,
    /// How long it took, seconds.
    pub seconds: f64,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// [`SUITE_VERSION`].
    pub version: &'static str,
    /// The backend's name.
    pub backend: &'static str,
    /// One result per case run.
    pub cases: Vec<CaseResult>,
}

impl SuiteReport {
    /// How many attacks were contained.
    pub fn contained(&self) -> usize {
        self.cases.iter().filter(|c| c.contained).count()
    }

    /// How many attacks ran.
    pub fn total(&self) -> usize {
        self.cases.len()
    }

    /// Whether every attack was contained.
    pub fn all_contained(&self) -> bool {
        self.contained() == self.total()
    }
}

/// What a case concluded.
#[derive(Debug, Clone)]
struct Verdict {
    contained: bool,
    detail: String,
}

impl Verdict {
    fn new(contained: bool, detail: impl Into<String>) -> Verdict {
        Verdict { contained, detail: detail.into() }
    }
}

/// Everything a case works with.
struct Ctx<'a> {
    sandbox: &'a dyn Sandbox,
    options: &'a SuiteOptions,
    host: &'a Host,
}

/// Limits of the suite's sessions: small, so that bombs hit them quickly.
pub fn suite_limits() -> Limits {
    Limits { cpus: 1.0, memory_mb: 256, disk_mb: 64, pids: 64 }
}

impl Ctx<'_> {
    async fn session(&self, limits: Limits) -> Result<Box<dyn Session>, SandboxError> {
        let spec = SessionSpec {
            owner: self.options.owner.clone(),
            image: self.options.image.clone(),
            root: self.options.root.clone(),
            limits,
            ..SessionSpec::default()
        };
        self.sandbox.create(&spec).await
    }
}

/// Runs `python3 -c script` with a deadline.
async fn py(session: &dyn Session, script: &str, timeout: Duration) -> Result<ExecOutcome, SandboxError> {
    session.exec(&ExecRequest::new(["python3", "-c", script], timeout)).await
}

/// Runs a shell script with a deadline.
async fn sh(session: &dyn Session, script: &str, timeout: Duration) -> Result<ExecOutcome, SandboxError> {
    session.exec(&ExecRequest::shell(script, timeout)).await
}

/// Short text of an outcome for details.
fn said(out: &ExecOutcome) -> String {
    let (stdout, stderr) = out.output_text();
    let text = format!("{} {}", stdout.trim(), stderr.trim());
    let text = text.trim();
    let cut: String = text.chars().take(160).collect();
    format!("[{out}] {}", crate::escape::name(&cut))
}

/// Runs every case (or those `options.only` names) against `sandbox`.
pub async fn run_suite(sandbox: &dyn Sandbox, options: &SuiteOptions) -> SuiteReport {
    let mut report = SuiteReport { version: SUITE_VERSION, backend: sandbox.name(), cases: Vec::new() };
    let host = match Host::start().await {
        Ok(host) => host,
        Err(e) => {
            let detail = format!("the host fixtures could not start: {e}");
            report.cases.push(CaseResult { name: "host-fixtures", attack: "", contained: false, detail, seconds: 0.0 });
            return report;
        }
    };
    let ctx = Ctx { sandbox, options, host: &host };
    let wanted = |c: &&Case| options.only.is_empty() || options.only.iter().any(|o| c.name.contains(o.as_str()));
    let runnable = |c: &&Case| c.name != "killed-owner" || !options.holder.is_empty();
    for case in CASES.iter().filter(wanted).filter(runnable) {
        let start = Instant::now();
        let verdict = match tokio::time::timeout(Duration::from_secs(240), cases::run(case.name, &ctx)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => Verdict::new(false, format!("sandbox error: {e}")),
            Err(_) => Verdict::new(false, "the case did not finish in 240s"),
        };
        tracing::info!(case = case.name, contained = verdict.contained, detail = %verdict.detail, "attack");
        let seconds = start.elapsed().as_secs_f64();
        report.cases.push(CaseResult {
            name: case.name,
            attack: case.attack,
            contained: verdict.contained,
            detail: verdict.detail,
            seconds,
        });
    }
    host.stop();
    report
}
